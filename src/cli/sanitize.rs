//! `certwipe sanitize`: the drive's own erase (ATA SANITIZE, NVMe Sanitize or
//! Format NVM, SCSI SANITIZE, ATA SECURITY ERASE UNIT), checked by reading
//! the medium, and certified like a wipe. `--status` only asks where a
//! sanitize stands.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use clap::Args;

use crate::ledger::Location;

use super::output::Ui;
use super::wipe::{self, CertificateArgs, HiddenArgs};
use super::{EXIT_OK, Failure, print_json, signals};
use crate::device::{self, SystemUse};
use crate::drive::linux::with_drive;
use crate::drive::probe;
use crate::drive::sanitize::{self, Action};
use crate::engine::checkpoint;
use crate::target::{ResumePolicy, Settings};

pub const AFTER_HELP: &str = "\
When to use it: on flash (SSD, NVMe) an overwrite cannot reach spare and remapped
blocks, so `wipe` is only NIST SP 800-88 Clear. The drive's own sanitize command
reaches them: Purge. certwipe sends it, follows it to its end, and does not take
the drive at its word: before the command it overwrites a NIST sample of the
medium (1,000 subsections, first and last sector) with a marker, and afterwards
reads it again. The certificate says purge only when the drive reported success
AND no sampled sector still holds the marker (and each reads as the command
leaves it: zeros after an overwrite, erased flash after a block erase).

Actions: auto (the strongest the drive offers: crypto erase, block erase,
sanitize overwrite, then NVMe Format with secure erase), crypto-erase,
block-erase, overwrite, format-user-data, format-crypto (NVMe), security-erase,
security-erase-enhanced (ATA; never chosen by auto: one command that blocks for
hours and sets a temporary password). `certwipe identify DEVICE` shows what a
drive offers.

Examples:
  certwipe identify /dev/nvme0n1
  certwipe sanitize --action auto --cert-dir certs/ --sign-key station_ed25519 /dev/nvme0n1
  certwipe sanitize --status /dev/sdb

A sanitize cannot be stopped: Ctrl-C stops certwipe following it, the drive
carries on (and resumes after a power cycle). A drive whose sanitize is frozen
by the BIOS is refused with the remedy (suspend and resume, or re-plug).

Exit status: 0 erased and proven, 1 failed/incomplete/interrupted,
2 refused (unsupported, frozen, busy, not a drive): nothing was written.";

#[derive(Args, Debug)]
pub struct SanitizeArgs {
    /// The block device whose drive erases itself (/dev/sdX, /dev/nvmeXnY).
    #[arg(value_name = "TARGET")]
    target: PathBuf,

    /// What the drive does (see below).
    #[arg(long, value_parser = super::named::<Action>(), value_name = "ACTION", required_unless_present = "status")]
    action: Option<Action>,

    /// Only report where a sanitize stands on TARGET; nothing is started.
    #[arg(long, conflicts_with_all = ["action", "yes", "report"])]
    status: bool,

    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(short, long)]
    yes: bool,

    /// Print newline-delimited JSON events on stdout and nothing else there.
    #[arg(long)]
    json: bool,

    /// Write the report (JSON) to FILE or into DIR.
    #[arg(long, value_name = "FILE|DIR")]
    report: Option<PathBuf>,

    #[command(flatten)]
    hidden: HiddenArgs,

    #[command(flatten)]
    certificates: CertificateArgs,
}

pub fn run(args: &SanitizeArgs, ledger: Option<&Location>) -> Result<u8, Failure> {
    if args.status {
        return status(&args.target, args.json);
    }
    let action = args.action.expect("clap requires --action without --status");
    let (certificates, records) = match args.certificates.plan(1)? {
        Some((plan, mut records)) => (Some(plan), records.pop()),
        None => (None, None),
    };
    let settings = Settings::new(
        None,
        ResumePolicy::Never,
        crate::engine::Options::default(),
        checkpoint::default_state_dir(),
        false,
        certificates,
    )
    .with_drive_erase(action)
    .with_hidden_restore(args.hidden.restore());
    let settings = wipe::with_ledger(settings, ledger)?;
    let note = |text: &str| eprintln!("certwipe: {text}");
    let targets = std::slice::from_ref(&args.target);
    let prepared =
        crate::target::prepare_all(&settings, targets, vec![records], args.report.as_deref(), &note)?;
    if !args.yes {
        wipe::confirm(&prepared, "erase, by the drive's own command,")?;
    }
    let prepared = crate::target::restore_all(prepared, &settings, &note)?;
    signals::install();
    let ui = Ui::choose(args.json);
    let outcomes =
        crate::target::run_all(prepared, &settings, |id| ui.view(&id.name, &id.path), &signals::STOP);
    Ok(wipe::finish(&ui, &outcomes, args.json))
}

/// `--status`: asks the drive where a sanitize stands.
fn status(path: &Path, json: bool) -> Result<u8, Failure> {
    let inspected = device::inspect(path, &SystemUse::read())?;
    let shown = path.display();
    let file = std::fs::File::open(path).map_err(|e| Failure::usage(format!("{shown}: {e}")))?;
    let no_drive =
        || Failure::usage(format!("{shown}: no drive answers commands here (a loop device or image file)"));
    let (probed, state) = with_drive(file.as_fd(), |drive| {
        let probed = probe::probe(drive, &inspected.identity.transport)
            .map_err(|e| Failure::usage(format!("{shown}: {e}")))?
            .ok_or_else(no_drive)?;
        let state =
            sanitize::status(drive, probed.protocol).map_err(|e| Failure::usage(format!("{shown}: {e}")))?;
        Ok::<_, Failure>((probed, state))
    })?;
    if json {
        print_json(&serde_json::json!({"path": path, "protocol": probed.protocol, "status": state}))?;
    } else {
        println!("{shown}: {state}");
    }
    Ok(EXIT_OK)
}
