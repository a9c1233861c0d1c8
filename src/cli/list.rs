//! `certwipe list`: every whole block device and whether `wipe` would take it.

use clap::Args;
use indicatif::HumanBytes;
use serde::Serialize;

use super::{EXIT_OK, Failure, print_json};
use crate::device::{self, Identity, SystemUse};

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Listed<'a> {
    #[serde(flatten)]
    identity: &'a Identity,
    wipeable: bool,
    refusals: &'a [String],
}

pub fn run(args: &ListArgs) -> Result<u8, Failure> {
    let devices = device::list_all(&SystemUse::read());
    if args.json {
        let listed: Vec<Listed> = devices
            .iter()
            .map(|d| Listed { identity: &d.identity, wipeable: d.refusals.is_empty(), refusals: &d.refusals })
            .collect();
        print_json(&listed)?;
        return Ok(EXIT_OK);
    }
    println!(
        "{:<14} {:>10} {:>9} {:<10} {:<11} {:<22} {:<18} WIPE",
        "DEVICE", "SIZE", "SECTOR", "TRANSPORT", "TYPE", "MODEL", "SERIAL"
    );
    for device in &devices {
        let id = &device.identity;
        let verdict = if device.refusals.is_empty() {
            "ok".to_string()
        } else {
            format!("refused: {}", device.refusals.join("; "))
        };
        println!(
            "{:<14} {:>10} {:>9} {:<10} {:<11} {:<22} {:<18} {verdict}",
            id.path,
            HumanBytes(id.size_bytes).to_string(),
            format!("{}/{}", id.logical_sector_size, id.physical_sector_size),
            id.transport,
            id.media_type.as_str(),
            id.model.as_deref().unwrap_or("-"),
            id.serial.as_deref().unwrap_or("-"),
        );
    }
    Ok(EXIT_OK)
}
