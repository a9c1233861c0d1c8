//! `certwipe ledger ...`: the media ledger (台帐).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;

use super::trust::load_allowed_signers;
use super::{EXIT_FAILED, EXIT_OK, Failure, print_json};
use crate::cert::display::escape;
use crate::cert::files::{Bundle, Role};
use crate::cert::records::{Classification, Destination, Profile};
use crate::cert::sign::SigningKey;
use crate::ledger::{self, Destruction, DestructionMethod, KeptHead, Ledger, Location, Medium};

pub const AFTER_HELP: &str = "\
Every change to the ledger is an entry in a hash chain, signed by the station
key that wrote it (--sign-key, or sign_key in the station profile). Whose keys
count comes from a file you control, never from the database: --allowed-signers
FILE (or allowed_signers in the station profile) on every command that writes
or verifies. Start a ledger with `certwipe ledger init --allowed-signers FILE
--sign-key KEY`, which records that list, signed; a later change to it must be
signed by a key the list before allowed. Keep the signed head (`ledger head -o
FILE`) somewhere the database is not, and check against it with `ledger verify
--head FILE`.";

#[derive(Args, Debug)]
pub struct LedgerArgs {
    #[command(subcommand)]
    command: LedgerCommand,
    /// Station key that signs the entries this command writes [default: sign_key in the station profile]
    #[arg(long, global = true, value_name = "KEY")]
    sign_key: Option<PathBuf>,
    /// Station profile (TOML) [default: /etc/certwipe/profile.toml if present]
    #[arg(long, global = true, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// The allowed signers, kept outside the database: whose keys may write
    /// entries and sign the certificates filed (duties by namespaces=). For
    /// `init`, the list to record [default: allowed_signers in the station profile]
    #[arg(long, global = true, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Set (or change) the allowed signers of the stations that may write to the ledger.
    Init(InitArgs),
    /// Register a medium under a unique ledger number.
    Register(RegisterArgs),
    /// Verify certificates against the ledger's allowed signers and add them to
    /// their media's history (once each; again only for new countersignatures).
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
    /// Check every entry's hash and signature, the media, every certificate and
    /// countersignature, and (with --head) that no newer entry was cut off.
    Verify(VerifyArgs),
    /// Print the newest entry, signed, to keep outside the ledger for `verify --head`.
    Head(HeadArgs),
}

/// `ledger init --allowed-signers FILE`: the file lists every key that may
/// write (namespaces="certwipe-ledger") or sign certificates filed here.
#[derive(Args, Debug)]
pub struct InitArgs {}

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
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    number: String,
    #[arg(long, value_parser = super::named::<Role>())]
    role: Role,
    #[arg(long)]
    name: String,
    #[arg(long)]
    title: Option<String>,
    /// A note kept with the entry.
    #[arg(long = "notes", alias = "note", value_name = "TEXT")]
    note: Option<String>,
}

#[derive(Args, Debug)]
pub struct DisposeArgs {
    number: String,
    #[arg(long, value_parser = super::named::<Destination>())]
    destination: Destination,
    /// A note kept with the entry.
    #[arg(long = "notes", alias = "note", value_name = "TEXT")]
    note: Option<String>,
}

#[derive(Args, Debug)]
pub struct DestroyArgs {
    number: String,
    #[arg(long, value_parser = super::named::<DestructionMethod>())]
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
    /// A note kept with the entry.
    #[arg(long = "notes", alias = "note", value_name = "TEXT")]
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
    /// A head kept earlier (`ledger head -o FILE`): the ledger must still hold it.
    #[arg(long, value_name = "FILE")]
    head: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct HeadArgs {
    /// Write the head to FILE and its signature to FILE.sig (else print it).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn run(args: &LedgerArgs, location: Option<&Location>) -> Result<u8, Failure> {
    let location = Location::or_default(location);
    // Only `init` creates a ledger; reading never creates or migrates one.
    let access = match &args.command {
        LedgerCommand::Init(_) => ledger::Access::Create,
        LedgerCommand::List(_)
        | LedgerCommand::Show(_)
        | LedgerCommand::Export(_)
        | LedgerCommand::Verify(_) => ledger::Access::Read,
        _ => ledger::Access::Write,
    };
    let heads = ledger::heads_file(&crate::engine::checkpoint::default_state_dir());
    let mut ledger = Ledger::open_as(&location, access)?.remembering(heads);
    let profile = || -> Result<Profile, Failure> { Ok(Profile::find(args.profile.as_deref())?) };
    let anchor_path = match &args.allowed_signers {
        Some(path) => Some(path.clone()),
        None => profile()?.allowed_signers,
    };
    if (access == ledger::Access::Write || matches!(args.command, LedgerCommand::Verify(_)))
        && let Some(path) = &anchor_path
    {
        ledger = ledger.trusting(load_allowed_signers(path)?);
    }
    let key = || -> Result<SigningKey, Failure> {
        let path = match &args.sign_key {
            Some(path) => path.clone(),
            None => profile()?.sign_key.ok_or_else(|| {
                Failure::usage(
                    "ledger entries are signed: give --sign-key KEY (or sign_key in the station profile)",
                )
            })?,
        };
        super::cert::load_key(&path)
    };
    match &args.command {
        LedgerCommand::Init(_) => {
            let path = anchor_path.ok_or_else(|| {
                Failure::usage("ledger init records whose keys may write: give --allowed-signers FILE")
            })?;
            let text = crate::input::read_regular(&path, crate::input::LIST)
                .map_err(|e| Failure::usage(format!("allowed signers {}: {e}", path.display())))?;
            let id = ledger.configure(&text, &key()?)?;
            println!("ledger {id} at {} allows the signers in {}", ledger.location(), path.display());
        }
        LedgerCommand::Register(a) => {
            let classification: Classification = a.classification.parse()?;
            let medium = Medium {
                number: a.number.clone(),
                media_type: a.media_type.clone(),
                classification,
                holder: a.holder.clone(),
                serial: a.serial.clone(),
                notes: a.notes.clone(),
            };
            ledger.register(&medium, &key()?)?;
            println!("registered {}", a.number);
        }
        LedgerCommand::Import(a) => return import(&mut ledger, &a.certs, &key()?),
        LedgerCommand::Approve(a) => {
            ledger.approve(&a.number, a.role, &a.name, a.title.as_deref(), a.note.as_deref(), &key()?)?;
            println!("recorded {} {} for {}", a.role.as_str(), a.name, a.number);
        }
        LedgerCommand::Dispose(a) => {
            ledger.dispose(&a.number, a.destination, a.note.as_deref(), &key()?)?;
            println!("recorded destination {} for {}", a.destination, a.number);
        }
        LedgerCommand::Destroy(a) => {
            let record = Destruction {
                method: a.method,
                date: a.date.clone(),
                place: a.place.clone(),
                destroyer: a.destroyer.clone(),
                witness: a.witness.clone(),
                note: a.note.clone(),
            };
            ledger.destroy(&a.number, &record, &key()?)?;
            println!("recorded destruction of {}", a.number);
        }
        LedgerCommand::List(a) => list(&mut ledger, a.json)?,
        LedgerCommand::Show(a) => show(&mut ledger, &a.number, a.json)?,
        LedgerCommand::Export(a) => export(&mut ledger, a.csv)?,
        LedgerCommand::Verify(a) => return verify(&mut ledger, a),
        LedgerCommand::Head(a) => head(&mut ledger, a.output.as_deref(), &key()?)?,
    }
    Ok(EXIT_OK)
}

fn export(ledger: &mut Ledger, csv: bool) -> Result<(), Failure> {
    let rows = ledger.export_rows()?;
    warn_unrecorded(
        &rows
            .iter()
            .filter(|r| r["record"].as_str().is_some_and(|s| s.starts_with("NOT")))
            .map(|r| {
                (
                    r["ledger_number"].as_str().unwrap_or("").to_string(),
                    r["record"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect(),
    );
    if !csv {
        return print_json(&rows);
    }
    use std::io::Write;
    std::io::stdout()
        .write_all(&to_csv(&rows)?)
        .map_err(|e| Failure { code: EXIT_FAILED, message: format!("CSV export: {e}") })
}

/// The signed statement of the chain's head, to stdout or into FILE and FILE.sig.
fn head(ledger: &mut Ledger, output: Option<&Path>, key: &SigningKey) -> Result<(), Failure> {
    use crate::durable::Replaceable;
    if let Some(file) = output {
        for (path, kind) in [
            (file.to_path_buf(), Replaceable::Head),
            (
                crate::cert::files::signature_path(file),
                Replaceable::Signature { namespace: crate::cert::sign::Duty::Ledger.namespace() },
            ),
        ] {
            kind.check(&path).map_err(|e| Failure::usage(format!("-o {}: {e}", path.display())))?;
        }
    }
    let (bytes, signature) = ledger.head(key)?;
    let Some(file) = output else {
        print!("{}{signature}", String::from_utf8_lossy(&bytes));
        return Ok(());
    };
    let write = |path: &Path, bytes: &[u8]| {
        crate::durable::write_atomically(path, bytes, 0o644)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
    };
    write(file, &bytes)?;
    write(&crate::cert::files::signature_path(file), signature.as_bytes())?;
    println!("{}", file.display());
    Ok(())
}

/// Imports each certificate; one that fails is reported and the others go on.
pub fn import(ledger: &mut Ledger, certs: &[PathBuf], key: &SigningKey) -> Result<u8, Failure> {
    let mut code = EXIT_OK;
    for cert in certs {
        let label = cert.display().to_string();
        let result = Bundle::from_files(cert)
            .map_err(Failure::from)
            .and_then(|bundle| Ok(ledger.import(&bundle, &label, key)?));
        match result {
            Ok(imported) => println!("{}", describe_import(&label, &imported)),
            Err(failure) => {
                eprintln!("certwipe: {}", failure.message);
                code = EXIT_FAILED;
            }
        }
    }
    Ok(code)
}

pub fn describe_import(label: &str, imported: &ledger::Imported) -> String {
    let mut line = format!("imported {label} into {}", escape(&imported.number));
    if imported.countersignatures > 0 {
        line += &format!(" ({} countersignature(s))", imported.countersignatures);
    }
    if let Some(level) = imported.raised_to {
        line += &format!("; its classification is now {} ({})", level.english(), level.chinese());
    }
    line
}

fn list(ledger: &mut Ledger, json: bool) -> Result<(), Failure> {
    let media = ledger.media()?;
    let unrecorded = ledger.unrecorded()?;
    if json {
        return print_json(&media);
    }
    for m in media {
        println!(
            "{:<16} {:<12} {:<14} {:<20} {}{}",
            escape(&m.number),
            escape(&m.media_type),
            format!("{} {}", m.classification.english(), m.classification.chinese()),
            escape(m.holder.as_deref().unwrap_or("-")),
            escape(m.serial.as_deref().unwrap_or("-")),
            if unrecorded.contains_key(&m.number) { "  NOT AS RECORDED" } else { "" }
        );
    }
    warn_unrecorded(&unrecorded);
    Ok(())
}

/// Media whose rows are not what their histories record, on stderr.
fn warn_unrecorded(unrecorded: &std::collections::BTreeMap<String, String>) {
    for (number, why) in unrecorded {
        eprintln!(
            "certwipe: warning: medium {}: {}; what is shown is not what the ledger's signed history records — run `certwipe ledger verify`",
            escape(number),
            escape(why)
        );
    }
}

fn show(ledger: &mut Ledger, number: &str, json: bool) -> Result<(), Failure> {
    let (medium, history, problem) = ledger.history(number)?;
    warn_unrecorded(&problem.map(|why| (medium.number.clone(), why)).into_iter().collect());
    if json {
        return print_json(&json!({"medium": medium, "history": history}));
    }
    println!(
        "{} — {}, {} ({}), holder {}, serial {}",
        escape(&medium.number),
        escape(&medium.media_type),
        medium.classification.english(),
        medium.classification.chinese(),
        escape(medium.holder.as_deref().unwrap_or("-")),
        escape(medium.serial.as_deref().unwrap_or("-"))
    );
    for entry in history {
        println!("  #{:<4} {} {:<16} {}", entry.seq, entry.at, entry.kind, escape(&entry.data.to_string()));
    }
    Ok(())
}

fn verify(ledger: &mut Ledger, args: &VerifyArgs) -> Result<u8, Failure> {
    let kept = args.head.as_deref().map(KeptHead::load).transpose()?;
    let verification = ledger.verify(kept.as_ref())?;
    let intact = verification.problems.is_empty();
    if args.json {
        print_json(&verification)?;
    } else {
        for problem in &verification.problems {
            println!("problem: {}", escape(problem));
        }
        println!("signers checked against {}", verification.signers_checked_against);
        if let Some(kept) = &kept {
            println!("kept head {} (entry {})", kept.path.display(), kept.head.seq);
        }
        println!(
            "{} entries, {} certificates, {} countersignatures; head {}: {}",
            verification.entries,
            verification.certificates,
            verification.countersignatures,
            verification.head,
            match (intact, verification.signers_checked) {
                (false, _) => "NOT intact",
                (true, true) => "intact",
                (true, false) => "intact, but signers NOT checked (give --allowed-signers FILE)",
            }
        );
    }
    Ok(if intact && verification.signers_checked { EXIT_OK } else { EXIT_FAILED })
}

/// The rows as CSV (RFC 4180, through the `csv` crate: every CR, LF, quote and
/// comma quoted). A cell that a spreadsheet would run as a formula (starting
/// with `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`, so it shows as text.
fn to_csv(rows: &[serde_json::Value]) -> Result<Vec<u8>, Failure> {
    let Some(first) = rows.first().and_then(|r| r.as_object()) else { return Ok(Vec::new()) };
    let columns: Vec<&String> = first.keys().collect();
    let mut out = csv::Writer::from_writer(Vec::new());
    let failed = |e: csv::Error| Failure { code: EXIT_FAILED, message: format!("CSV export: {e}") };
    out.write_record(columns.iter().map(|c| c.as_str())).map_err(failed)?;
    for row in rows {
        out.write_record(columns.iter().map(|c| spreadsheet_text(&row[c.as_str()]))).map_err(failed)?;
    }
    out.into_inner().map_err(|e| failed(e.into_error().into()))
}

/// A cell as text a spreadsheet shows as it is: hidden characters (a row
/// edited in the database could hold any) as visible escapes, and a formula
/// as text.
fn spreadsheet_text(value: &serde_json::Value) -> String {
    super::output::spreadsheet_cell(match value {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => escape(s).into_owned(),
        other => escape(&other.to_string()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_cells_stay_text_and_parse_back() {
        let rows = vec![json!({
            "holder": "=HYPERLINK(\"http://evil.example\",\"click\")",
            "notes": "line one\r\nline \"two\", with a comma",
            "serial": "+1-555",
            "tab": "\tx",
            "plain": "MJ-2026-0042",
            "missing": null,
        })];
        let bytes = to_csv(&rows).unwrap();
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        let record = reader.records().next().unwrap().unwrap();
        let field = |name: &str| record[header.iter().position(|h| h == name).unwrap()].to_string();
        assert_eq!(field("holder"), "'=HYPERLINK(\"http://evil.example\",\"click\")");
        // Hidden characters are spelled out, so a cell can neither break a
        // line of a printout nor hide text.
        assert_eq!(field("notes"), "line one\\u{000d}\\u{000a}line \"two\", with a comma");
        assert_eq!(field("serial"), "'+1-555");
        assert_eq!(field("tab"), "\\u{0009}x");
        assert_eq!(field("plain"), "MJ-2026-0042");
        assert_eq!(field("missing"), "");
    }
}
