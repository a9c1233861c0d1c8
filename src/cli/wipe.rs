//! `certwipe wipe`: check every target, confirm, run them concurrently, report.

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use clap::Args;
use indicatif::HumanBytes;

use super::output::Ui;
use super::records_args::RecordArgs;
use super::{EXIT_FAILED, EXIT_OK, Failure, signals};
use crate::cert::Certificate;
use crate::cert::pdf::Lang;
use crate::cert::records::Records;
use crate::cert::sign::SigningKey;
use crate::device::{self, Access, Inspected, Medium, SystemUse};
use crate::engine::checkpoint::{self, Checkpoint, FileJournal, Interruption, Journal, JournalError};
use crate::engine::report::{Report, Status};
use crate::engine::{self, Job, Options, VerifyMode};
use crate::method::{self, Plan};
use crate::stream::Prng;

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
    #[arg(short, long, default_value = "random", value_name = "NAME", conflicts_with_all = ["passes", "resume"])]
    method: String,

    /// Custom pass list instead of a method, e.g. 0x00,0xff,random,0x924924.
    #[arg(long, value_name = "LIST", conflicts_with = "resume")]
    passes: Option<String>,

    /// Repeat the method's passes N times.
    #[arg(long, default_value_t = 1, value_name = "N", conflicts_with = "resume")]
    rounds: u64,

    /// What to read back: off, last (the whole medium after the last pass), all
    /// (after every pass), sample (NIST 800-88 sampling, >= 10 %).
    #[arg(long, value_enum, default_value_t = VerifyMode::Last, value_name = "MODE", conflicts_with = "resume")]
    verify: VerifyMode,

    /// Random generator: aes-ctr (regenerable with `openssl enc -aes-128-ctr`) or
    /// chacha8 [default: aes-ctr where the CPU has AES instructions, else chacha8]
    #[arg(long, value_enum, value_name = "PRNG", conflicts_with = "resume")]
    prng: Option<Prng>,

    /// Continue the interrupted wipe of each TARGET from its last checkpoint, with
    /// its method, passes and seeds (only if the medium is the same one).
    #[arg(long)]
    resume: bool,

    /// Where checkpoint journals live [default: /var/lib/certwipe for root, else ~/.local/state/certwipe].
    #[arg(long, value_name = "DIR", env = "CERTWIPE_STATE_DIR")]
    state_dir: Option<PathBuf>,

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

    /// Also print each certificate as a PDF beside it (see `certwipe cert pdf`).
    #[arg(long, requires = "cert_dir", help_heading = "Certificates")]
    pdf: bool,

    /// Write certificates without a signature (they will not pass `cert verify`).
    #[arg(long, requires = "cert_dir", conflicts_with = "sign_key", help_heading = "Certificates")]
    unsigned: bool,

    #[command(flatten)]
    records: RecordArgs,
}

/// A target ready to run: opened, with its plan and journal.
struct Prepared {
    target: Inspected,
    medium: Medium,
    plan: Plan,
    options: Options,
    journal: Option<FileJournal>,
    resume: Option<Checkpoint>,
}

pub fn run(args: &WipeArgs, ledger: Option<&Path>) -> Result<u8, Failure> {
    let plan = match (&args.passes, args.resume) {
        (_, true) => None,
        (Some(list), false) => Some(Plan::custom(method::parse_passes(list)?, args.rounds)?),
        (None, false) => Some(Plan::from_method(method::find(&args.method)?, args.rounds)?),
    };
    let system = SystemUse::read();
    let targets = inspect_all(&args.targets, &system)?;
    let report_paths = report_paths(args.report.as_deref(), &targets)?;
    let certificates = CertificatePlan::prepare(args, targets.len())?;
    // Opened and checked now, so that every reason a certificate could not be filed
    // is found before anything is written.
    let mut ledger = ledger.map(|path| filing_ledger(path, certificates.as_ref(), &targets)).transpose()?;
    let state_dir = args.state_dir.clone().unwrap_or_else(checkpoint::default_state_dir);
    // A certificate records the digest of the final content whenever it is read back in full.
    let options = Options {
        verify: args.verify,
        digest: certificates.is_some(),
        prng: args.prng.unwrap_or_else(Prng::for_this_cpu),
        ..Options::default()
    };
    let mut prepared = Vec::new();
    for mut target in targets {
        let medium = Medium::open(&mut target, Access::ReadWrite)?;
        let journal = match FileJournal::new(&state_dir, &target.identity) {
            Ok(journal) => Some(journal),
            Err(error) if args.state_dir.is_some() || args.resume => {
                return Err(Failure::usage(error.to_string()));
            }
            Err(error) => {
                eprintln!(
                    "certwipe: warning: no checkpoints, so an interrupted wipe cannot be resumed: {error}"
                );
                None
            }
        };
        let (plan, options, resume) = match (&plan, &journal) {
            (Some(plan), _) => {
                if journal.as_ref().is_some_and(|j| j.path().exists()) {
                    eprintln!(
                        "certwipe: note: an interrupted wipe of {} is discarded; this run starts over (--resume continues one)",
                        target.identity.path
                    );
                }
                (plan.clone(), options.clone(), None)
            }
            (None, Some(journal)) => {
                let mut checkpoint =
                    journal.load(&target.identity.path).map_err(|e| Failure::usage(e.to_string()))?;
                let how = checkpoint::recognise(&checkpoint, &target.identity, &medium).map_err(|why| {
                    Failure::usage(
                        JournalError::NotTheSameMedium { target: target.identity.path.clone(), why }
                            .to_string(),
                    )
                })?;
                checkpoint.interruptions.push(Interruption {
                    checkpoint_at: checkpoint.saved_at.clone(),
                    pass: checkpoint.current.as_ref().map(|f| f.index),
                    phase: checkpoint.current.as_ref().map(|f| f.phase),
                    offset: checkpoint.current.as_ref().map_or(0, |f| f.offset),
                    resumed_at: crate::engine::report::now(),
                    medium_check: how,
                });
                let options = Options {
                    verify: checkpoint.verify,
                    digest: checkpoint.digest || certificates.is_some(),
                    prng: checkpoint.prng,
                    ..Options::default()
                };
                (checkpoint.plan.clone(), options, Some(checkpoint))
            }
            (None, None) => unreachable!("--resume without a journal returned above"),
        };
        prepared.push(Prepared { target, medium, plan, options, journal, resume });
    }
    if !args.yes {
        confirm(&prepared)?;
    }
    signals::install();

    let ui = Ui::choose(args.json);
    let reports: Vec<Report> = std::thread::scope(|scope| {
        let handles: Vec<_> = prepared
            .iter_mut()
            .map(|job| {
                let ui = &ui;
                scope.spawn(move || {
                    let identity = &job.target.identity;
                    let view = ui.view(&identity.name, &identity.path);
                    engine::run(Job {
                        medium: &job.medium,
                        target: identity,
                        plan: &job.plan,
                        options: &job.options,
                        observer: &view,
                        stop: &signals::STOP,
                        journal: job.journal.as_ref().map(|j| j as &dyn Journal),
                        resume: job.resume.take(),
                    })
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
            None if certificates.is_none() => " (no report saved: add --report FILE)".to_string(),
            None => String::new(),
        };
        let saved = match &certificates {
            Some(plan) => match plan.write(index, report) {
                Ok(cert_path) => match ledger.as_mut().map(|l| file_in_ledger(l, &cert_path, plan)) {
                    Some(Err(failure)) => {
                        code = EXIT_FAILED;
                        format!(
                            "{saved} (certificate: {}; NOT filed in the ledger: {})",
                            cert_path.display(),
                            failure.message
                        )
                    }
                    Some(Ok(imported)) => {
                        format!(
                            "{saved} (certificate: {}, in ledger as {})",
                            cert_path.display(),
                            imported.number
                        )
                    }
                    None => format!("{saved} (certificate: {})", cert_path.display()),
                },
                Err(error) => {
                    code = EXIT_FAILED;
                    format!("{saved} (certificate NOT written: {error})")
                }
            },
            None => saved,
        };
        let resumable = match (&prepared[index].journal, report.status) {
            (Some(journal), Status::Aborted | Status::Failed) if journal.path().exists() => {
                format!(" — continue with: certwipe wipe --resume {}", report.target.path)
            }
            _ => String::new(),
        };
        if !args.json {
            ui.say(&format!(
                "{}: {} — {}{saved}{resumable}",
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
    pdf: bool,
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
        crate::durable::check_writable_dir(dir).map_err(|e| {
            Failure::usage(format!(
                "cannot write certificates into {}: {e}; choose another --cert-dir",
                dir.display()
            ))
        })?;
        let records = args.records.records_for(targets)?;
        let key = args.sign_key.as_deref().map(super::cert::load_key).transpose()?;
        Ok(Some(CertificatePlan { dir: dir.clone(), key, records, pdf: args.pdf }))
    }

    fn write(&self, index: usize, report: &Report) -> Result<PathBuf, crate::cert::CertError> {
        let cert = Certificate::issue(report.clone(), self.records[index].clone());
        let path = self.dir.join(format!("{}-{}.json", report.target.name, cert.certificate_id));
        crate::cert::files::write_certificate(&path, &cert, self.key.as_ref())?;
        if self.pdf
            && let Err(failure) =
                super::cert::write_pdf(&path, &path.with_extension("pdf"), Lang::Both, None, None)
        {
            eprintln!("certwipe: {}: the PDF was not written: {}", path.display(), failure.message);
        }
        Ok(path)
    }
}

/// The ledger `wipe --ledger` files into, checked before anything is written: it
/// files signed certificates only, the station key must be one of its allowed
/// signers, and every medium must be registered (by asset number or serial).
fn filing_ledger(
    path: &Path,
    certificates: Option<&CertificatePlan>,
    targets: &[Inspected],
) -> Result<crate::ledger::Ledger, Failure> {
    let key = certificates.and_then(|c| c.key.as_ref()).ok_or_else(|| {
        Failure::usage(
            "--ledger files signed certificates: give --cert-dir and --sign-key too (not --unsigned)",
        )
    })?;
    let mut ledger = crate::ledger::Ledger::open(path)?;
    ledger.check_writer(key)?;
    let records = certificates.map(|c| c.records.as_slice()).unwrap_or_default();
    for (target, records) in targets.iter().zip(records) {
        let (asset, serial) = (records.asset_number.as_deref(), target.identity.serial.as_deref());
        if ledger.find_medium(asset, serial)?.is_none() {
            return Err(Failure::usage(format!(
                "{}: no medium in the ledger has asset number {} or serial {}; register it first (certwipe ledger register) — nothing was written",
                target.identity.path,
                asset.unwrap_or("(none given)"),
                serial.unwrap_or("(unknown)")
            )));
        }
    }
    Ok(ledger)
}

fn file_in_ledger(
    ledger: &mut crate::ledger::Ledger,
    cert: &Path,
    plan: &CertificatePlan,
) -> Result<crate::ledger::Imported, Failure> {
    let key = plan.key.as_ref().expect("filing_ledger required a key");
    let bundle = crate::cert::files::Bundle::from_files(cert)?;
    Ok(ledger.import(&bundle, &cert.display().to_string(), key)?)
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
    crate::durable::check_writable_dir(dir).map_err(|e| {
        Failure::usage(format!("cannot write the report {}: {e}; choose another --report", path.display()))
    })
}

fn write_report(path: &Path, report: &Report) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(report).map_err(std::io::Error::other)?;
    text.push(b'\n');
    crate::durable::write_atomically(path, &text, 0o644)
}

fn confirm(prepared: &[Prepared]) -> Result<(), Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::usage(
            "refusing to wipe without confirmation: stdin is not a terminal; pass --yes once you have checked the targets",
        ));
    }
    eprintln!("certwipe will overwrite ALL data on:");
    for job in prepared {
        let id = &job.target.identity;
        eprintln!(
            "  {}  model {}  serial {}  size {} ({} bytes)",
            id.path,
            id.model.as_deref().unwrap_or("unknown"),
            id.serial.as_deref().unwrap_or("unknown"),
            HumanBytes(id.size_bytes),
            id.size_bytes
        );
    }
    for job in prepared {
        let resuming = if job.resume.is_some() { ", resuming" } else { "" };
        eprintln!(
            "{}: {} [{}], {} pass(es){resuming}",
            job.target.identity.path,
            job.plan.method_name,
            job.plan.method,
            job.plan.passes.len()
        );
    }
    for job in prepared {
        let target = &job.target;
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
