//! `certwipe identify`: the drive's own account of itself — identity, size,
//! erase capabilities, security state and hidden areas — asked through
//! pass-through, or decoded from a saved IDENTIFY dump (`--from FILE`).

use std::fmt::Write as _;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::HumanBytes;
use serde::Serialize;

use super::{EXIT_FAILED, EXIT_OK, Failure, print_json};
use crate::device::{self, SystemUse, TargetKind};
use crate::drive::identify::{self, Checksum, DriveInfo, EraseTime, Rotation};
use crate::drive::linux::with_drive;
use crate::drive::probe::{self, Probed, Protocol};
use crate::drive::{nvme, sanitize};

pub const AFTER_HELP: &str = "\
Examples:
  certwipe identify /dev/sda
  certwipe identify --json /dev/nvme0n1
  certwipe identify --from sda.identify.bin     a 512-byte ATA IDENTIFY DEVICE dump
                                                (hdparm --Istdout, smartctl -r ataioctl)
                                                or a 4096-byte NVMe Identify Controller
                                                (nvme id-ctrl -b)

Nothing is written: only identification and status commands are sent. Exit
status 1 when a dump fails its checksum (its data is corrupt), 2 when the
target has no drive to ask (a loop device, an image file).";

#[derive(Args, Debug)]
pub struct IdentifyArgs {
    /// The block device to ask.
    #[arg(value_name = "TARGET", required_unless_present = "from", conflicts_with = "from")]
    target: Option<PathBuf>,

    /// Decode a saved raw IDENTIFY dump instead of asking a device.
    #[arg(long, value_name = "FILE")]
    from: Option<PathBuf>,

    /// One JSON document on stdout.
    #[arg(long)]
    json: bool,
}

/// What `identify` reports.
#[derive(Serialize)]
struct Account {
    source: String,
    protocol: Option<Protocol>,
    drive: DriveInfo,
    /// The erase actions the drive offers, strongest first.
    offers: Vec<String>,
    /// What `sanitize --action auto` would send, and why.
    auto: Option<String>,
    notes: Vec<String>,
}

pub fn run(args: &IdentifyArgs) -> Result<u8, Failure> {
    let account = match (&args.from, &args.target) {
        (Some(file), _) => from_file(file)?,
        (None, Some(target)) => from_device(target)?,
        (None, None) => unreachable!("clap requires a target or --from"),
    };
    let corrupt = matches!(account.drive.checksum, Some(Checksum::Invalid { .. }));
    if args.json {
        print_json(&account)?;
    } else {
        print!("{}", describe(&account));
    }
    Ok(if corrupt { EXIT_FAILED } else { EXIT_OK })
}

fn from_file(file: &Path) -> Result<Account, Failure> {
    let shown = file.display();
    let bytes = crate::input::read_regular(file, crate::input::DUMP)
        .map_err(|e| Failure::usage(format!("{shown}: {e}")))?;
    let (drive, protocol) = match bytes.len() {
        512 => (identify::decode_ata(&bytes.try_into().expect("512 bytes")), Protocol::Ata),
        4096 => (nvme::decode_controller(&bytes.try_into().expect("4096 bytes")), Protocol::Nvme),
        n => {
            return Err(Failure::usage(format!(
                "{shown}: {n} bytes; expected a 512-byte ATA IDENTIFY DEVICE or a 4096-byte NVMe Identify Controller dump"
            )));
        }
    };
    let mut notes = Vec::new();
    if let Some(Checksum::Invalid { sum }) = drive.checksum {
        notes.push(format!("CHECKSUM INVALID: the 512 bytes sum to {sum:#04x}, not 0 — the dump is corrupt"));
    }
    let probed = Probed { protocol, info: drive, namespace: None, max_address: None, notes };
    Ok(account(format!("file {shown}"), &probed))
}

fn from_device(target: &Path) -> Result<Account, Failure> {
    let inspected = device::inspect(target, &SystemUse::read())?;
    let shown = target.display();
    if inspected.identity.kind == TargetKind::ImageFile {
        return Err(Failure::usage(format!("{shown}: an image file has no drive to ask")));
    }
    let file = std::fs::File::open(target).map_err(|e| Failure::usage(format!("{shown}: {e}")))?;
    let probed = with_drive(file.as_fd(), |drive| probe::probe(drive, &inspected.identity.transport))
        .map_err(|e| Failure { code: EXIT_FAILED, message: format!("{shown}: {e}") })?
        .ok_or_else(|| {
            Failure::usage(format!(
                "{shown}: no drive answers pass-through commands here (a loop device or virtual disk has no drive firmware)"
            ))
        })?;
    Ok(account(format!("device {shown}"), &probed))
}

fn account(source: String, probed: &Probed) -> Account {
    let offers =
        sanitize::offered(probed).into_iter().map(|(a, _)| sanitize::action_name(a).to_string()).collect();
    let auto = match sanitize::choose(probed, sanitize::Action::Auto) {
        Ok((command, _)) => Some(format!("{} ({})", command.name(), command.technique().as_str())),
        Err(refusal) => Some(format!("none: {refusal}")),
    };
    Account {
        source,
        protocol: Some(probed.protocol),
        drive: probed.info.clone(),
        offers,
        auto,
        notes: probed.notes.clone(),
    }
}

fn yes(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn minutes(time: Option<EraseTime>) -> String {
    match time {
        Some(t) if t.at_least => format!("more than {} min", t.minutes),
        Some(t) => format!("{} min", t.minutes),
        None => "not reported".into(),
    }
}

/// The account for a person.
fn describe(a: &Account) -> String {
    let d = &a.drive;
    let mut out = String::new();
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let source = d.source.map_or("-", |s| s.as_str());
    let _ = writeln!(
        out,
        "{}: {} drive (identity from {source})",
        a.source,
        a.protocol.map_or("?", |p| p.as_str())
    );
    let _ = writeln!(out, "  model      {}", dash(&d.model));
    if d.vendor.is_some() {
        let _ = writeln!(out, "  vendor     {}", dash(&d.vendor));
    }
    let _ = writeln!(out, "  serial     {}", dash(&d.serial));
    let _ = writeln!(out, "  firmware   {}", dash(&d.firmware));
    for (label, value) in [("WWN", &d.wwn), ("EUI-64", &d.eui64), ("NGUID", &d.nguid)] {
        if value.is_some() {
            let _ = writeln!(out, "  {label:<10} {}", dash(value));
        }
    }
    if let Some(c) = d.capacity {
        let _ = writeln!(
            out,
            "  capacity   {} sectors of {} bytes (physical {}) = {} ({} bytes)",
            c.sectors,
            c.logical_sector_size,
            c.physical_sector_size,
            HumanBytes(c.bytes()),
            c.bytes()
        );
    }
    let rotation = match d.rotation {
        Rotation::SolidState => "solid state (flash)".to_string(),
        Rotation::Rpm(rpm) => format!("{rpm} rpm (magnetic)"),
        Rotation::NotReported => "not reported".to_string(),
    };
    let _ = writeln!(out, "  rotation   {rotation}");
    describe_capabilities(&mut out, d);
    let _ = writeln!(
        out,
        "  offers     {}",
        if a.offers.is_empty() { "no erase command".into() } else { a.offers.join(", ") }
    );
    if let Some(auto) = &a.auto {
        let _ = writeln!(out, "  auto       {auto}");
    }
    for note in &a.notes {
        let _ = writeln!(out, "  note       {note}");
    }
    out
}

fn describe_capabilities(out: &mut String, d: &DriveInfo) {
    if let Some(ata) = d.ata {
        let s = ata.sanitize;
        let _ = writeln!(
            out,
            "  sanitize   {}: crypto scramble {}, block erase {}, overwrite {}, antifreeze lock {}",
            if s.supported { "supported" } else { "not supported" },
            yes(s.crypto_scramble),
            yes(s.block_erase),
            yes(s.overwrite),
            yes(s.antifreeze_lock)
        );
        let sec = ata.security;
        let _ = writeln!(
            out,
            "  security   {}{}{}{}, enhanced erase {}; erase {}, enhanced {}",
            if sec.supported { "supported" } else { "not supported" },
            if sec.enabled { ", password SET" } else { ", no password" },
            if sec.locked { ", LOCKED" } else { "" },
            if sec.frozen { ", FROZEN" } else { ", not frozen" },
            yes(sec.enhanced_erase),
            minutes(sec.erase_time),
            minutes(sec.enhanced_erase_time)
        );
        let _ = writeln!(out, "  encrypts   all user data: {}", yes(ata.encrypts_all_user_data));
    }
    if let Some(n) = d.nvme {
        let _ = writeln!(
            out,
            "  sanitize   crypto erase {}, block erase {}, overwrite {} (SANICAP {:#010x})",
            yes(n.sanitize_crypto_erase),
            yes(n.sanitize_block_erase),
            yes(n.sanitize_overwrite),
            n.sanicap
        );
        let _ = writeln!(
            out,
            "  format     {}; crypto erase by format {}; applies to all namespaces: format {}, secure erase {} (OACS {:#06x}, FNA {:#04x})",
            if n.format_nvm { "supported" } else { "not supported" },
            yes(n.format_crypto_erase),
            yes(n.format_all_namespaces),
            yes(n.erase_all_namespaces),
            n.oacs,
            n.fna
        );
    }
    if let Some(s) = d.scsi {
        let known = |v: Option<bool>| v.map_or("unknown", yes);
        let _ = writeln!(
            out,
            "  sanitize   overwrite {}, block erase {}, crypto erase {}",
            known(s.sanitize_overwrite),
            known(s.sanitize_block_erase),
            known(s.sanitize_crypto_erase)
        );
    }
    if let Some(h) = d.hidden {
        let unknown = |v: Option<u64>| v.map_or("unknown".to_string(), |v| v.to_string());
        let _ = writeln!(
            out,
            "  hidden     {} sectors (HPA {}, DCO {}); accessible {}, native {}, factory {}",
            h.hidden_sectors(),
            h.hpa_sectors(),
            h.dco_sectors(),
            h.accessible_sectors,
            unknown(h.native_sectors),
            unknown(h.factory_sectors)
        );
    }
    if let Some(checksum) = d.checksum {
        let text = match checksum {
            Checksum::Valid => "valid".to_string(),
            Checksum::NotPresent => "not kept by the drive".to_string(),
            Checksum::Invalid { sum } => format!("INVALID (sum {sum:#04x}): corrupt data"),
        };
        let _ = writeln!(out, "  checksum   {text}");
    }
}
