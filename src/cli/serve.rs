//! `certwipe serve`: the records office's read-only page over the ledger.

use clap::Args;

use super::trust::TrustArgs;
use super::{EXIT_OK, Failure, signals};
use crate::ledger::{Ledger, Location};
use crate::serve::{Limits, Site, serve};

pub const AFTER_HELP: &str = "\
Read-only: the page searches by ledger number, serial, certificate id or the
text of a printed certificate's QR code; shows each medium's whole history
with the ledger's state; and shows each certificate with its signatures
verified again (against --allowed-signers) on every view, with its exact files
and PDF to download. It needs only read access: a PostgreSQL role with SELECT
rights, or a ledger file it can read. Plain HTML, no JavaScript.

Example:
  certwipe serve --ledger postgres://office@db.example/ledger \\
      --allowed-signers /etc/certwipe/allowed_signers --listen 127.0.0.1:8080

Put it behind the organisation's HTTPS reverse proxy to reach it from other
machines; set verify_url in the stations' profile to that address so that a
printed certificate's QR code opens its page.";

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    listen: String,

    /// The page's public address, for the QR codes of the PDFs it renders
    /// [default: verify_url in the station profile]
    #[arg(long, value_name = "URL")]
    verify_url: Option<String>,

    /// Requests answered at once, each with its own ledger connection; more
    /// wait up to 10 s for one, then get 503.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,

    /// Connections held open at once; at the limit, a new one takes the place
    /// of the one idle longest [default: what the open-file limit allows, at most 4096]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(16..))]
    max_connections: Option<u16>,

    #[command(flatten)]
    trust: TrustArgs,
}

pub fn run(args: &ServeArgs, location: Option<&Location>) -> Result<u8, Failure> {
    let allowed = args.trust.require("the page verifies every certificate it shows")?;
    let location = Location::or_default(location);
    let verify_url = args.trust.verify_url(args.verify_url.as_ref())?;
    let sites = (0..args.workers)
        .map(|_| {
            let ledger = Ledger::open_read_only(&location)?.trusting(allowed.clone());
            Ok(Site::new(ledger, allowed.clone(), verify_url.clone()))
        })
        .collect::<Result<Vec<Site>, Failure>>()?;
    let limits = Limits {
        workers: sites.len(),
        max_connections: args
            .max_connections
            .map_or_else(|| raise_open_files_limit().saturating_sub(64).clamp(64, 4096), usize::from),
        ..Limits::default()
    };
    signals::install();
    let ready = |address: std::net::SocketAddr| {
        eprintln!("certwipe: serving ledger {location} read-only at http://{address}/ (Ctrl-C stops)")
    };
    serve(&args.listen, sites, limits, &signals::STOP, &ready)?;
    Ok(EXIT_OK)
}

/// Raises this process's open-file limit to its hard limit (at most 8,192),
/// so the page can hold that many connections; returns the limit in force.
fn raise_open_files_limit() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else { return 1024 };
    let wanted = hard.min(8192).max(soft);
    if setrlimit(Resource::RLIMIT_NOFILE, wanted, hard).is_ok() { wanted as usize } else { soft as usize }
}
