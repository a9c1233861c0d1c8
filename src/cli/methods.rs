//! `certwipe methods`: the method table for people and scripts.

use clap::Args;
use serde_json::json;

use super::{EXIT_OK, Failure, print_json};
use crate::method::{METHODS, PassKind};

#[derive(Args, Debug)]
pub struct MethodsArgs {
    /// Print a JSON array instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &MethodsArgs) -> Result<u8, Failure> {
    let passes = |m: &crate::method::Method| -> Vec<String> {
        m.steps.iter().map(|s| PassKind::from(*s).to_string()).collect()
    };
    if args.json {
        let table: Vec<_> = METHODS
            .iter()
            .map(|m| json!({"id": m.id, "name": m.name, "passes": passes(m), "source": m.source, "note": m.note}))
            .collect();
        print_json(&table)?;
        return Ok(EXIT_OK);
    }
    for method in METHODS {
        let list = passes(method);
        println!(
            "{:<18} {} ({} pass{})",
            method.id,
            method.name,
            list.len(),
            if list.len() == 1 { "" } else { "es" }
        );
        println!("{:<18} passes: {}", "", list.join(", "));
        println!("{:<18} source: {}", "", method.source);
        if !method.note.is_empty() {
            println!("{:<18} note:   {}", "", method.note);
        }
    }
    println!(
        "\nEvery method is a host overwrite: NIST SP 800-88 Clear. None is Purge, and on flash media\n\
         (SSD, NVMe, USB sticks, memory cards) no overwrite reaches spare or remapped blocks."
    );
    Ok(EXIT_OK)
}
