//! `certwipe wipe`: check every target, confirm, run them concurrently, report.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::HumanBytes;

use super::output::Ui;
use super::records_args::RecordArgs;
use super::{EXIT_FAILED, EXIT_OK, Failure, signals};
use crate::cert::Certificate;
use crate::cert::records::Records;
use crate::cert::sign::SigningKey;
use crate::device::{self, Access, Inspected, Medium, SystemUse};
use crate::engine::report::{Report, Status};
use crate::engine::{self, Options, VerifyMode};
use crate::method::{self, Plan};

pub const AFTER_HELP: &str = "\
Examples:
  certwipe wipe /dev/sdb                        one random pass, read back in full
  certwipe wipe --method dod-short --verify all /dev/sdb /dev/sdc
  certwipe wipe --passes 0x00,0xff,random --rounds 2 disk.img
  certwipe wipe --yes --json --report reports/ /dev/sdb /dev/sdc
  certwipe wipe --cert-dir certs/ --sign-key station_ed25519 --profile station.toml \\
      --asset LEDGER-0042 --classification secret --destination destruction --operator \"Li Wei\" /dev/sdb

Before writing, certwipe shows each target's path, model, serial and size and asks
you to type its name. Several targets run at the same time; one failing never
stops the others.

Exit status: 0 all erased as asked, 1 some target failed/incomplete/aborted,
2 usage error or refusal (nothing written).";

#[derive(Args, Debug)]
pub struct WipeArgs {
    /// Block devices (/dev/sdX) or disk image files to overwrite.
    #[arg(required = true, value_name = "TARGET")]
    targets: Vec<PathBuf>,

    /// Overwrite method (see `certwipe methods`).
    #[arg(short, long, default_value = "random", value_name = "NAME", conflicts_with = "passes")]
    method: String,

    /// Custom pass list instead of a method, e.g. 0x00,0xff,random,0x924924.
    #[arg(long, value_name = "LIST")]
    passes: Option<String>,

    /// Repeat the method's passes N times.
    #[arg(long, default_value_t = 1, value_name = "N")]
    rounds: u64,

    /// What to read back: off, last (the whole medium after the last pass), all
    /// (after every pass), sample (NIST 800-88 sampling, >= 10 %).
    #[arg(long, value_enum, default_value_t = VerifyMode::Last, value_name = "MODE")]
    verify: VerifyMode,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short, long)]
    yes: bool,

    /// Print newline-delimited JSON events on stdout (start, progress, pass-end,
    /// verification-end, done) and nothing else there.
    #[arg(long)]
    json: bool,

    /// Write the wipe report (JSON) to FILE, or into DIR for several targets.
    #[arg(long, value_name = "FILE|DIR")]
    report: Option<PathBuf>,

    /// Write a destruction certificate per target into DIR (NAME-ID.json, signed as NAME-ID.json.sig).
    #[arg(long, value_name = "DIR", help_heading = "Certificates")]
    cert_dir: Option<PathBuf>,

    /// OpenSSH Ed25519 private key that signs the certificates (asks for its
    /// passphrase, or reads CERTWIPE_KEY_PASSPHRASE).
    #[arg(long, value_name = "KEY", requires = "cert_dir", help_heading = "Certificates")]
    sign_key: Option<PathBuf>,

    /// Write certificates without a signature (they will not pass `cert verify`).
    #[arg(long, requires = "cert_dir", conflicts_with = "sign_key", help_heading = "Certificates")]
    unsigned: bool,

    #[command(flatten)]
    records: RecordArgs,
}

pub fn run(args: &WipeArgs) -> Result<u8, Failure> {
    let plan = match &args.passes {
        Some(list) => Plan::custom(method::parse_passes(list)?, args.rounds)?,
        None => Plan::from_method(method::find(&args.method)?, args.rounds)?,
    };
    let system = SystemUse::read();
    let mut targets = inspect_all(&args.targets, &system)?;
    let report_paths = report_paths(args.report.as_deref(), &targets)?;
    let certificates = CertificatePlan::prepare(args, targets.len())?;
    if !args.yes {
        confirm(&targets, &plan)?;
    }
    let media =
        targets.iter_mut().map(|t| Medium::open(t, Access::ReadWrite)).collect::<Result<Vec<_>, _>>()?;
    signals::install();

    let ui = Ui::choose(args.json);
    // A certificate records the digest of the final content whenever it is read back in full.
    let options = Options { verify: args.verify, digest: certificates.is_some(), ..Options::default() };
    let reports: Vec<Report> = std::thread::scope(|scope| {
        let handles: Vec<_> = targets
            .iter()
            .zip(&media)
            .map(|(target, medium)| {
                let (ui, plan, options) = (&ui, &plan, &options);
                scope.spawn(move || {
                    let identity = &target.identity;
                    let view = ui.view(&identity.name, &identity.path);
                    engine::wipe(medium, identity, plan, options, &view, &signals::STOP)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a wipe thread panicked")).collect()
    });

    let mut code = EXIT_OK;
    for (index, (report, path)) in reports.iter().zip(&report_paths).enumerate() {
        if report.status != Status::Erased {
            code = EXIT_FAILED;
        }
        let saved = match path {
            Some(path) => match write_report(path, report) {
                Ok(()) => format!(" (report: {})", path.display()),
                Err(error) => {
                    code = EXIT_FAILED;
                    format!(" (report NOT saved to {}: {error})", path.display())
                }
            },
            None => String::new(),
        };
        let saved = match &certificates {
            Some(plan) => match plan.write(index, report) {
                Ok(cert_path) => format!("{saved} (certificate: {})", cert_path.display()),
                Err(error) => {
                    code = EXIT_FAILED;
                    format!("{saved} (certificate NOT written: {error})")
                }
            },
            None => saved,
        };
        if !args.json {
            ui.say(&format!(
                "{}: {} — {}{saved}",
                report.target.path,
                report.status.as_str(),
                report.status_reason
            ));
        }
    }
    Ok(code)
}

/// Everything needed to issue the certificates, gathered (and the key unlocked)
/// before any wiping starts, so a wrong passphrase or an unwritable directory is
/// found in seconds, not after hours.
struct CertificatePlan {
    dir: PathBuf,
    key: Option<SigningKey>,
    records: Vec<Records>,
}

impl CertificatePlan {
    fn prepare(args: &WipeArgs, targets: usize) -> Result<Option<CertificatePlan>, Failure> {
        let Some(dir) = &args.cert_dir else { return Ok(None) };
        if args.sign_key.is_none() && !args.unsigned {
            return Err(Failure::usage(
                "refusing to write unsigned certificates: give --sign-key KEY (see `certwipe keygen`) or --unsigned",
            ));
        }
        if !dir.is_dir() {
            return Err(Failure::usage(format!("--cert-dir {}: not a directory", dir.display())));
        }
        check_writable(&dir.join("certificate"))?;
        let records = args.records.records_for(targets)?;
        let key = args.sign_key.as_deref().map(super::cert::load_key).transpose()?;
        Ok(Some(CertificatePlan { dir: dir.clone(), key, records }))
    }

    fn write(&self, index: usize, report: &Report) -> Result<PathBuf, crate::cert::CertError> {
        let cert = Certificate::issue(report.clone(), self.records[index].clone());
        let path = self.dir.join(format!("{}-{}.json", report.target.name, cert.certificate_id));
        crate::cert::files::write_certificate(&path, &cert, self.key.as_ref())?;
        Ok(path)
    }
}

/// Inspects every target and refuses the whole run if any is unsafe, so a typo in a
/// list of devices never wipes the others half-way through a batch.
fn inspect_all(paths: &[PathBuf], system: &SystemUse) -> Result<Vec<Inspected>, Failure> {
    let mut seen: HashMap<(u64, u64), &Path> = HashMap::new();
    let mut targets = Vec::new();
    for path in paths {
        let target = device::inspect(path, system)?;
        if !target.refusals.is_empty() {
            return Err(Failure::usage(format!(
                "{}: refused: {}. Nothing was written.",
                path.display(),
                target.refusals.join("; ")
            )));
        }
        if let Some(first) = seen.insert(target.key, path) {
            return Err(Failure::usage(format!(
                "{} and {} are the same {}; give each target once",
                first.display(),
                path.display(),
                if target.key.1 == 0 { "device" } else { "file" }
            )));
        }
        targets.push(target);
    }
    Ok(targets)
}

/// Where each target's report goes, checked before anything is written so hours of
/// wiping never end in an unwritable report.
fn report_paths(report: Option<&Path>, targets: &[Inspected]) -> Result<Vec<Option<PathBuf>>, Failure> {
    let Some(report) = report else { return Ok(vec![None; targets.len()]) };
    let stamp =
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace([':', '-'], "");
    let paths: Vec<PathBuf> = if report.is_dir() {
        targets.iter().map(|t| report.join(format!("{}-{stamp}.report.json", t.identity.name))).collect()
    } else if targets.len() == 1 {
        vec![report.to_path_buf()]
    } else {
        return Err(Failure::usage(format!(
            "--report {}: with several targets, give an existing directory",
            report.display()
        )));
    };
    for path in &paths {
        check_writable(path)?;
    }
    Ok(paths.into_iter().map(Some).collect())
}

fn check_writable(path: &Path) -> Result<(), Failure> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let probe = tempfile_in(dir).map_err(|e| {
        Failure::usage(format!("cannot write the report {}: {e}; choose another --report", path.display()))
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn tempfile_in(dir: &Path) -> std::io::Result<PathBuf> {
    let probe = dir.join(format!(".certwipe-probe-{}", std::process::id()));
    std::fs::OpenOptions::new().write(true).create_new(true).open(&probe)?;
    Ok(probe)
}

/// Writes atomically: a crash leaves the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let mut file = std::fs::File::create(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temp, path)
}

fn write_report(path: &Path, report: &Report) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    text.push(b'\n');
    write_atomically(path, &text)
}

fn confirm(targets: &[Inspected], plan: &Plan) -> Result<(), Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::usage(
            "refusing to wipe without confirmation: stdin is not a terminal; pass --yes once you have checked the targets",
        ));
    }
    eprintln!("certwipe will overwrite ALL data on:");
    for target in targets {
        let id = &target.identity;
        eprintln!(
            "  {}  model {}  serial {}  size {} ({} bytes)",
            id.path,
            id.model.as_deref().unwrap_or("unknown"),
            id.serial.as_deref().unwrap_or("unknown"),
            HumanBytes(id.size_bytes),
            id.size_bytes
        );
    }
    eprintln!("method: {} ({} pass(es))", plan.method_name, plan.passes.len());
    for target in targets {
        let name = &target.identity.name;
        eprint!("Type {name} to confirm wiping {}: ", target.identity.path);
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| Failure::usage(e.to_string()))?;
        if line.trim() != name {
            return Err(Failure::usage(format!("not confirmed ({name} was not typed); nothing was written")));
        }
    }
    Ok(())
}
