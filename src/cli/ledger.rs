//! `certwipe ledger ...`: the media ledger (台帐).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, Failure, print_json};
use crate::cert::files::Role;
use crate::cert::records::{Classification, Destination};
use crate::cert::sign::AllowedSigners;
use crate::ledger::{self, DestructionMethod, Ledger, Medium};

#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Register a medium under a unique ledger number.
    Register(RegisterArgs),
    /// Verify certificates and add them to their media's history (once each).
    Import(ImportArgs),
    /// Record an approval, validation or witness made outside certwipe.
    Approve(ApproveArgs),
    /// Record where a medium goes; classified media may only be destroyed or repaired.
    Dispose(DisposeArgs),
    /// Record a medium's physical destruction (degauss, shred, ...), with destroyer and witness.
    Destroy(DestroyArgs),
    /// Every registered medium.
    List(FormatArgs),
    /// One medium's whole history.
    Show(ShowArgs),
    /// The rows a disposal form needs, as CSV or JSON.
    Export(ExportArgs),
    /// Check that no entry was altered, removed or reordered, and re-verify every certificate.
    Verify(VerifyArgs),
}

#[derive(Args, Debug)]
pub struct RegisterArgs {
    number: String,
    /// hdd, ssd, usb-flash, memory-card, optical, tape, ...
    #[arg(long = "type", value_name = "TYPE")]
    media_type: String,
    /// unclassified/非密, internal/内部, confidential/秘密, secret/机密, top-secret/绝密
    #[arg(long)]
    classification: String,
    /// Holder or department.
    #[arg(long)]
    holder: Option<String>,
    #[arg(long)]
    serial: Option<String>,
    #[arg(long)]
    notes: Option<String>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[arg(required = true)]
    certs: Vec<PathBuf>,
    #[arg(long, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    number: String,
    #[arg(long, value_enum)]
    role: Role,
    #[arg(long)]
    name: String,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    note: Option<String>,
}

#[derive(Args, Debug)]
pub struct DisposeArgs {
    number: String,
    #[arg(long, value_enum)]
    destination: Destination,
    #[arg(long)]
    note: Option<String>,
}

#[derive(Args, Debug)]
pub struct DestroyArgs {
    number: String,
    #[arg(long, value_enum)]
    method: DestructionMethod,
    /// Date of destruction (YYYY-MM-DD).
    #[arg(long)]
    date: String,
    #[arg(long)]
    place: String,
    /// Who destroyed it.
    #[arg(long)]
    destroyer: String,
    /// Who supervised (监销).
    #[arg(long)]
    witness: String,
    #[arg(long)]
    note: Option<String>,
}

#[derive(Args, Debug)]
pub struct FormatArgs {
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    number: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[arg(long, conflicts_with = "json")]
    csv: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[arg(long, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub fn run(command: &LedgerCommand, path: Option<&Path>) -> Result<u8, Failure> {
    let path = path.map(Path::to_path_buf).unwrap_or_else(ledger::default_path);
    let mut ledger = Ledger::open(&path)?;
    match command {
        LedgerCommand::Register(args) => {
            let classification: Classification = args
                .classification
                .parse()
                .map_err(|e: crate::cert::records::RecordsError| Failure::usage(e.to_string()))?;
            ledger.register(&Medium {
                number: args.number.clone(),
                media_type: args.media_type.clone(),
                classification,
                holder: args.holder.clone(),
                serial: args.serial.clone(),
                notes: args.notes.clone(),
            })?;
            println!("registered {}", args.number);
        }
        LedgerCommand::Import(args) => {
            return import(&mut ledger, &args.certs, args.allowed_signers.as_deref());
        }
        LedgerCommand::Approve(args) => {
            ledger.approve(
                &args.number,
                args.role,
                &args.name,
                args.title.as_deref(),
                args.note.as_deref(),
            )?;
            println!("recorded {} {} for {}", args.role.as_str(), args.name, args.number);
        }
        LedgerCommand::Dispose(args) => {
            ledger.dispose(&args.number, args.destination, args.note.as_deref())?;
            println!("recorded destination {:?} for {}", args.destination, args.number);
        }
        LedgerCommand::Destroy(args) => {
            ledger.destroy(
                &args.number,
                args.method,
                &args.date,
                &args.place,
                &args.destroyer,
                &args.witness,
                args.note.as_deref(),
            )?;
            println!("recorded destruction of {}", args.number);
        }
        LedgerCommand::List(args) => {
            let media = ledger.media()?;
            if args.json {
                print_json(&media)?;
            } else {
                for m in media {
                    println!(
                        "{:<16} {:<12} {:<14} {:<20} {}",
                        m.number,
                        m.media_type,
                        format!("{} {}", m.classification.english(), m.classification.chinese()),
                        m.holder.as_deref().unwrap_or("-"),
                        m.serial.as_deref().unwrap_or("-")
                    );
                }
            }
        }
        LedgerCommand::Show(args) => {
            let medium = ledger.medium(&args.number)?;
            let history = ledger.history(&args.number)?;
            if args.json {
                print_json(&json!({"medium": medium, "history": history}))?;
            } else {
                println!(
                    "{} — {}, {} ({}), holder {}, serial {}",
                    medium.number,
                    medium.media_type,
                    medium.classification.english(),
                    medium.classification.chinese(),
                    medium.holder.as_deref().unwrap_or("-"),
                    medium.serial.as_deref().unwrap_or("-")
                );
                for entry in history {
                    println!("  #{:<4} {} {:<16} {}", entry.seq, entry.at, entry.kind, entry.data);
                }
            }
        }
        LedgerCommand::Export(args) => {
            let rows = ledger.export_rows()?;
            if args.csv {
                print!("{}", to_csv(&rows));
            } else {
                print_json(&rows)?;
            }
        }
        LedgerCommand::Verify(args) => {
            let allowed = args.allowed_signers.as_deref().map(AllowedSigners::load).transpose()?;
            let verification = ledger.verify(allowed.as_ref())?;
            if args.json {
                print_json(&verification)?;
            } else {
                for problem in &verification.problems {
                    println!("problem: {problem}");
                }
                println!(
                    "{} entries, {} certificates; head {}: {}",
                    verification.entries,
                    verification.certificates,
                    verification.head,
                    if verification.problems.is_empty() { "intact" } else { "NOT intact" }
                );
            }
            return Ok(if verification.problems.is_empty() { EXIT_OK } else { EXIT_FAILED });
        }
    }
    Ok(EXIT_OK)
}

/// Imports each certificate; one that fails is reported and the others go on.
pub fn import(ledger: &mut Ledger, certs: &[PathBuf], allowed: Option<&Path>) -> Result<u8, Failure> {
    let allowed = allowed.map(AllowedSigners::load).transpose()?;
    let mut code = EXIT_OK;
    for cert in certs {
        match ledger.import(cert, allowed.as_ref()) {
            Ok(number) => println!("imported {} into {number}", cert.display()),
            Err(error) => {
                eprintln!("certwipe: {error}");
                code = EXIT_FAILED;
            }
        }
    }
    Ok(code)
}

fn to_csv(rows: &[serde_json::Value]) -> String {
    let Some(first) = rows.first().and_then(|r| r.as_object()) else { return String::new() };
    let columns: Vec<&String> = first.keys().collect();
    let cell = |value: &serde_json::Value| {
        let text = match value {
            serde_json::Value::Null => String::new(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if text.contains([',', '"', '\n']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
    };
    let mut out = columns.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(",") + "\n";
    for row in rows {
        let line: Vec<String> = columns.iter().map(|c| cell(&row[c.as_str()])).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}
