//! `certwipe wipe`: check every target, confirm, run them concurrently, report.
//! The options shared with `station` ([`WipeOptions`]) become a checked
//! [`Settings`] before anything is written.

use serde_json::json;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use clap::Args;

use crate::ledger::Location;
use indicatif::HumanBytes;

use super::output::Ui;
use super::records_args::RecordArgs;
use super::{EXIT_FAILED, EXIT_OK, Failure, signals};
use crate::cert::records::Records;
use crate::device::Protect;
use crate::engine::checkpoint;
use crate::engine::{Options, VerifyMode};
use crate::method::{self, Plan};
use crate::stream::Prng;
use crate::target::{self, CertificatePlan, HiddenRestore, Outcome, Prepared, ResumePolicy, Settings};

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

    /// Continue the interrupted wipe of each TARGET from its last checkpoint
    /// (only if the medium is the same one): give the same method, passes,
    /// rounds and --verify as the interrupted run; its random keys are kept,
    /// and the last pass is read back over the whole medium again.
    #[arg(long)]
    resume: bool,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short, long)]
    yes: bool,

    /// Write the wipe report (JSON) to FILE, or into DIR for several targets.
    #[arg(long, value_name = "FILE|DIR")]
    report: Option<PathBuf>,

    #[command(flatten)]
    options: WipeOptions,
}

/// What every wipe does, for `wipe` and `station` alike.
#[derive(Args, Debug)]
pub struct WipeOptions {
    /// Overwrite method (see `certwipe methods`) [default: random].
    #[arg(short, long, value_name = "NAME", conflicts_with = "passes")]
    method: Option<String>,

    /// Custom pass list instead of a method, e.g. 0x00,0xff,random,0x924924.
    #[arg(long, value_name = "LIST")]
    passes: Option<String>,

    /// Repeat the method's passes N times [default: 1].
    #[arg(long, value_name = "N")]
    rounds: Option<u64>,

    /// What to read back: off, last (the whole medium after the last pass), all
    /// (after every pass), sample (NIST 800-88 sampling, >= 10 %) [default: last].
    #[arg(long, value_parser = super::named::<VerifyMode>(), value_name = "MODE")]
    verify: Option<VerifyMode>,

    /// Random generator: aes-ctr (regenerable with `openssl enc -aes-128-ctr`) or
    /// chacha8 [default: aes-ctr where the CPU has AES instructions, else chacha8]
    #[arg(long, value_parser = super::named::<Prng>(), value_name = "PRNG")]
    prng: Option<Prng>,

    /// Where checkpoint journals live [default: /var/lib/certwipe for root, else ~/.local/state/certwipe].
    #[arg(long, value_name = "DIR", env = "CERTWIPE_STATE_DIR")]
    state_dir: Option<PathBuf>,

    /// Print newline-delimited JSON events on stdout and nothing else there,
    /// each with its RFC 3339 time (schema: docs/events.schema.json). wipe and
    /// sanitize: progress, pass-end, verification-end, done (the report), then
    /// records (where the report, certificate and PDF went, the ledger number,
    /// problems). station: ready, arrived, refused, started, progress, note,
    /// removed, done.
    #[arg(long)]
    pub json: bool,

    /// Never write a medium with this serial, WWN, or partition-table or
    /// file-system UUID (repeat for several; adds to the profile's protect list).
    #[arg(long, value_name = "ID")]
    protect: Vec<String>,

    #[command(flatten)]
    pub hidden: HiddenArgs,

    #[command(flatten)]
    pub certificates: CertificateArgs,
}

/// ATA hidden areas (HPA, DCO): sectors the host cannot reach until they are
/// restored. Left alone, a medium that has them can only end `incomplete`.
#[derive(Args, Debug)]
pub struct HiddenArgs {
    /// Make a Host Protected Area addressable first (until the next power-off), so it is erased too.
    #[arg(long, help_heading = "Hidden areas")]
    restore_hidden: bool,

    /// Also restore a Device Configuration Overlay to the factory size. This is
    /// PERMANENT (the drive keeps its full size afterwards), hence its own flag.
    #[arg(long, requires = "restore_hidden", help_heading = "Hidden areas")]
    restore_dco: bool,
}

impl HiddenArgs {
    pub fn restore(&self) -> HiddenRestore {
        match (self.restore_hidden, self.restore_dco) {
            (_, true) => HiddenRestore::HpaAndDco,
            (true, false) => HiddenRestore::Hpa,
            (false, false) => HiddenRestore::Leave,
        }
    }
}

/// The certificate, its PDF and the organisation's records, for every command
/// that certifies a medium.
#[derive(Args, Debug)]
pub struct CertificateArgs {
    /// Write a destruction certificate per medium into DIR (NAME-ID.json, signed as NAME-ID.json.sig).
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

    /// OpenSSH allowed_signers file you keep outside any database: the trust
    /// list each printed certificate is checked against, and with --ledger the
    /// only list the ledger is trusted by [default: allowed_signers in the profile]
    #[arg(long, value_name = "FILE", requires = "cert_dir", help_heading = "Certificates")]
    allowed_signers: Option<PathBuf>,

    #[command(flatten)]
    pub records: RecordArgs,
}

impl WipeOptions {
    /// The settings of a run, checked: a plan (unless resuming), the certificate
    /// directory, key and records, and the ledger each certificate is filed in;
    /// with them, each of the `targets` targets' certificate records.
    pub fn settings(
        &self,
        resume: ResumePolicy,
        ledger: Option<&Location>,
        targets: usize,
    ) -> Result<(Settings, Vec<Option<Records>>), Failure> {
        // Resuming too: the plan comes from the command line, and an
        // interrupted wipe's journal must match it.
        let plan = match &self.passes {
            Some(list) => Plan::custom(method::parse_passes(list)?, self.rounds.unwrap_or(1))?,
            None => Plan::from_method(
                method::find(self.method.as_deref().unwrap_or("random"))?,
                self.rounds.unwrap_or(1),
            )?,
        };
        let (certificates, records) = match self.certificates.plan(targets)? {
            Some((plan, records)) => (Some(plan), records.into_iter().map(Some).collect()),
            None => (None, vec![None; targets]),
        };
        // A certificate records the digest of the final content whenever it is read back in full.
        let options = Options {
            verify: self.verify.unwrap_or(VerifyMode::Last),
            digest: certificates.is_some(),
            prng: self.prng.unwrap_or_else(Prng::for_this_cpu),
        };
        let state_dir = self.state_dir.clone().unwrap_or_else(checkpoint::default_state_dir);
        let protected = self.protect.iter().cloned().chain(self.certificates.records.profile()?.protect);
        let settings =
            Settings::new(Some(plan), resume, options, state_dir, self.state_dir.is_some(), certificates)
                .with_hidden_restore(self.hidden.restore())
                .with_protect(Protect::new(protected));
        Ok((with_ledger(settings, ledger)?, records))
    }
}

impl CertificateArgs {
    /// The certificate directory, key, and the records of each of `targets`
    /// targets, checked (and the key unlocked) before anything is written.
    pub fn plan(&self, targets: usize) -> Result<Option<(CertificatePlan, Vec<Records>)>, Failure> {
        let Some(dir) = &self.cert_dir else { return Ok(None) };
        if self.sign_key.is_none() && !self.unsigned {
            return Err(Failure::usage(
                "refusing to write unsigned certificates: give --sign-key KEY (see `certwipe keygen`) or --unsigned",
            ));
        }
        if !dir.is_dir() {
            return Err(Failure::usage(format!("--cert-dir {}: not a directory", dir.display())));
        }
        crate::durable::check_private_dir(dir)
            .and_then(|()| crate::durable::check_writable_dir(dir))
            .map_err(|e| {
                Failure::usage(format!(
                    "cannot keep certificates in {}: {e}; choose another --cert-dir",
                    dir.display()
                ))
            })?;
        // The records are checked here, before any key is unlocked.
        let (records, profile) = self.records.records_for(targets)?;
        let allowed = self
            .allowed_signers
            .clone()
            .or(profile.allowed_signers)
            .map(|path| super::trust::load_allowed_signers(&path))
            .transpose()?;
        let key = self.sign_key.as_deref().map(super::cert::load_key).transpose()?;
        let plan =
            CertificatePlan { dir: dir.clone(), key, pdf: self.pdf, verify_url: profile.verify_url, allowed };
        Ok(Some((plan, records)))
    }
}

/// Opened and checked now, so that every reason a certificate could not be
/// filed is found before anything is written. The ledger is trusted by the
/// allowed signers given, never by its own copy.
pub fn with_ledger(settings: Settings, ledger: Option<&Location>) -> Result<Settings, Failure> {
    let Some(location) = ledger else { return Ok(settings) };
    let certificates = settings.certificates.as_ref().filter(|c| c.key.is_some());
    let certificates = certificates.ok_or(crate::ledger::LedgerError::NeedsSignedCertificates)?;
    let anchor = certificates.allowed.clone().ok_or_else(|| {
        Failure::usage(
            "--ledger needs the allowed signers the ledger is trusted by: give --allowed-signers FILE (or allowed_signers in the profile)",
        )
    })?;
    let heads = crate::ledger::heads_file(&settings.state_dir);
    Ok(settings.with_ledger(crate::ledger::Ledger::open(location)?.trusting(anchor).remembering(heads))?)
}

pub fn run(args: &WipeArgs, ledger: Option<&Location>) -> Result<u8, Failure> {
    let resume = if args.resume { ResumePolicy::Always } else { ResumePolicy::Never };
    let (settings, records) = args.options.settings(resume, ledger, args.targets.len())?;
    let note = |text: &str| eprintln!("certwipe: {text}");
    let prepared = target::prepare_all(&settings, &args.targets, records, args.report.as_deref(), &note)?;
    if !args.yes {
        confirm(&prepared, "overwrite")?;
    }
    // Hidden areas are restored only once every target is confirmed (a DCO
    // restore is permanent).
    let prepared = target::restore_all(prepared, &settings, &note)?;
    signals::install();
    let ui = Ui::choose(args.options.json);
    let outcomes = target::run_all(prepared, &settings, |id| ui.view(&id.name, &id.path), &signals::STOP);
    Ok(finish(&ui, &outcomes, args.options.json))
}

/// Tells the operator how each target ended; the exit status: 0 only when
/// every target succeeded.
pub fn finish(ui: &Ui, outcomes: &[Outcome], json: bool) -> u8 {
    let mut code = EXIT_OK;
    for outcome in outcomes {
        if !outcome.succeeded() {
            code = EXIT_FAILED;
        }
        if let Some(Ok((pdf, missing))) = &outcome.pdf
            && let Some(warning) = super::cert::missing_glyphs_warning(pdf, missing)
        {
            ui.say(&format!("certwipe: warning: {warning}"));
        }
        if json {
            let target = json!({"target": outcome.report.target.name, "path": outcome.report.target.path});
            Ui::emit_event("records", target, records_event(outcome));
        } else {
            ui.say(&summary_line(outcome));
        }
    }
    code
}

/// `--json`: what became of a target's records after its `done` event, so a
/// script learns why the exit status is 1 when the wipe itself succeeded.
fn records_event(outcome: &Outcome) -> serde_json::Value {
    let path = |step: &Option<Result<PathBuf, crate::target::StepError>>| {
        step.as_ref().and_then(|r| r.as_ref().ok()).map(|p| p.display().to_string())
    };
    serde_json::json!({
        "status": outcome.report.status,
        "erased_and_recorded": outcome.succeeded(),
        "report": path(&outcome.report_path),
        "certificate": path(&outcome.certificate),
        "pdf": outcome.pdf.as_ref().and_then(|r| r.as_ref().ok()).map(|(p, _)| p.display().to_string()),
        "ledger_number": outcome.filed.as_ref().and_then(|r| r.as_ref().ok()).map(|i| i.number.clone()),
        "resumable": outcome.resumable,
        "problems": outcome.step_errors().map(|e| e.to_string()).collect::<Vec<_>>(),
    })
}

fn summary_line(outcome: &Outcome) -> String {
    let report = &outcome.report;
    let resumable = if outcome.resumable {
        format!(" — continue with: certwipe wipe --resume {}", report.target.path)
    } else {
        String::new()
    };
    let records = outcome.records_line();
    let records = if records.is_empty() { String::new() } else { format!(" ({records})") };
    format!(
        "{}: {} — {}{records}{resumable}",
        report.target.path,
        report.status.as_str(),
        report.status_reason
    )
}

/// Shows every target and what will be done to it, and asks for each target's
/// name to be typed. `what` says what happens ("overwrite", "erase").
pub fn confirm(prepared: &[Prepared], what: &str) -> Result<(), Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::usage(format!(
            "refusing to {what} without confirmation: stdin is not a terminal; pass --yes once you have checked the targets"
        )));
    }
    eprintln!("certwipe will {what} ALL data on:");
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
        for held in job.target.contents() {
            eprintln!("    holds {held}");
        }
    }
    for job in prepared {
        eprintln!("{}: {}", job.medium_path(), job.describe());
    }
    for job in prepared {
        let name = &job.target.identity.name;
        eprint!("Type {name} to confirm: {what} {}: ", job.medium_path());
        let mut line = String::new();
        stdin.lock().read_line(&mut line).map_err(|e| Failure::usage(e.to_string()))?;
        if line.trim() != name {
            return Err(Failure::usage(format!("not confirmed ({name} was not typed); nothing was written")));
        }
    }
    Ok(())
}
