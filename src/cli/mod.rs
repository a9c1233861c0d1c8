//! The command line: parsing, dispatch, and the mapping from library errors to
//! messages and exit codes.

mod audit;
mod cert;
mod choice;
mod identify;
mod ledger;
mod list;
mod methods;
mod output;
mod records_args;
mod sanitize;
mod serve;
mod signals;
mod station;
mod station_view;
mod trust;
mod wipe;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::ExitStatus;
pub use crate::exit::{FAILED as EXIT_FAILED, OK as EXIT_OK, USAGE as EXIT_USAGE};
use choice::named;

const AFTER_HELP: &str = "\
Exit status:
  0  every target was fully overwritten and verified as asked
  1  a target failed, is incomplete (bad sectors), or was interrupted
  2  usage error or refusal (mounted, read-only, in use, not found...): nothing was written

Safety: certwipe refuses the disk holding /, anything mounted, used as swap, held
by LVM/md/dm, open exclusively by another program, or read-only. Start with
`certwipe list` to see every disk and whether it would be refused.";

#[derive(Parser, Debug)]
#[command(
    name = "certwipe",
    version,
    about = "Verified overwrite of block devices and disk images, with a report of exactly what was done",
    long_about = "certwipe overwrites every addressable sector of block devices (or disk image files) in one \
or more passes, reads the result back to verify it, and writes a report per target saying exactly what \
was done and proved.\n\nA host overwrite is NIST SP 800-88 'Clear'. It is never 'Purge', and on flash media \
(SSD, NVMe, USB sticks, memory cards) it cannot reach spare or remapped blocks.",
    after_help = AFTER_HELP
)]
pub struct Cli {
    /// The media ledger: a file (SQLite) [default: ledger.sqlite in /var/lib/certwipe for root, else
    /// ~/.local/state/certwipe], or a PostgreSQL server, postgres://user@host/database. With
    /// `wipe`, `sanitize` and `station`, each certificate is filed in it.
    #[arg(long, global = true, value_name = "PATH|URL", env = "CERTWIPE_LEDGER")]
    ledger: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List every whole block device and whether `wipe` would refuse it (and why).
    List(list::ListArgs),
    /// List the overwrite methods with their passes and sources.
    Methods(methods::MethodsArgs),
    /// Overwrite, verify and report on one or more targets.
    #[command(after_help = wipe::AFTER_HELP)]
    Wipe(Box<wipe::WipeArgs>),
    /// The drive's own account: identity, size, erase commands, security state, hidden areas.
    #[command(after_help = identify::AFTER_HELP)]
    Identify(identify::IdentifyArgs),
    /// Purge by the drive's own erase command (SSD, NVMe), proven by reading the medium.
    #[command(after_help = sanitize::AFTER_HELP)]
    Sanitize(Box<sanitize::SanitizeArgs>),
    /// Wipe, verify and certify USB media as they are plugged in, one row per port.
    #[command(after_help = station::AFTER_HELP)]
    Station(Box<station::StationArgs>),
    /// Verify, show or countersign a destruction certificate.
    #[command(subcommand)]
    Cert(cert::CertCommand),
    /// Make an Ed25519 station key for signing certificates and print its allowed_signers line.
    Keygen(cert::KeygenArgs),
    /// Re-read a medium and confirm it still holds what its certificate says was written last.
    Audit(audit::AuditArgs),
    /// The records office's read-only page over the ledger: search, media histories, certificates verified.
    #[command(after_help = serve::AFTER_HELP)]
    Serve(serve::ServeArgs),
    /// The media ledger (台帐): register media, import certificates, record approvals and destruction.
    #[command(after_help = ledger::AFTER_HELP)]
    Ledger(ledger::LedgerArgs),
}

/// An error the CLI reports: a message and the exit status it maps to.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure { code: EXIT_USAGE, message: message.into() }
    }
}

/// A library error becomes a failure with the exit status the error itself chose.
impl<E: ExitStatus + std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Failure {
        Failure { code: error.exit_status(), message: error.to_string() }
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(
        cli.command,
        Command::Wipe(_) | Command::Station(_) | Command::Sanitize(_) | Command::Serve(_)
    ) {
        quit_quietly_on_a_closed_pipe();
    }
    // Parsed only by the commands that use a ledger, so that a bad
    // CERTWIPE_LEDGER never stops `list` or `cert verify`.
    let location = || -> Result<Option<crate::ledger::Location>, Failure> {
        Ok(cli.ledger.as_deref().map(crate::ledger::Location::parse).transpose()?)
    };
    let result = match cli.command {
        Command::List(args) => list::run(&args),
        Command::Methods(args) => methods::run(&args),
        Command::Wipe(args) => location().and_then(|l| wipe::run(&args, l.as_ref())),
        Command::Station(args) => location().and_then(|l| station::run(&args, l.as_ref())),
        Command::Identify(args) => identify::run(&args),
        Command::Sanitize(args) => location().and_then(|l| sanitize::run(&args, l.as_ref())),
        Command::Cert(command) => cert::run(&command),
        Command::Keygen(args) => cert::keygen(&args),
        Command::Audit(args) => audit::run(&args),
        Command::Ledger(command) => location().and_then(|l| ledger::run(&command, l.as_ref())),
        Command::Serve(args) => location().and_then(|l| serve::run(&args, l.as_ref())),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("certwipe: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// A command that only prints (`ledger show | head -1`) ends quietly, as `cat`
/// does, when whatever reads its output stops reading: Rust ignores SIGPIPE,
/// which turns the write into an error that `println!` panics on. Commands
/// that write media keep ignoring it: their output is written without
/// panicking, and a closed pipe must never stop a wipe half-way.
fn quit_quietly_on_a_closed_pipe() {
    use nix::sys::signal::{SigHandler, Signal, signal};
    // SAFETY: restoring the default disposition installs no handler, so no
    // code runs in signal context; nothing else in this process has changed
    // SIGPIPE's disposition at this point.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// Prints one JSON document on stdout.
fn print_json(value: &impl serde::Serialize) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Failure::usage(e.to_string()))?;
    println!("{text}");
    Ok(())
}
