//! `certwipe station`: wipe, verify and certify USB media as they are plugged in,
//! one row per port, without anybody typing a device name. The policy is in
//! [`crate::station`]; each medium's life is the one `wipe` gives
//! ([`crate::target`]).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Args;

use crate::ledger::Location;
use indicatif::HumanBytes;
use serde_json::json;

use super::station_view::{RowState, Rows};
use super::wipe::WipeOptions;
use super::{EXIT_FAILED, EXIT_OK, Failure, signals};
use crate::cert::records::{Records, RecordsError};
use crate::device::{self, SystemUse};
use crate::engine::workers::{self, Workers};
use crate::report::Status;
use crate::station::scan::{self, Change, MediumKey, Seen, Snapshot, Watch};
use crate::station::uevent::{Uevents, Wake};
use crate::station::{self as policy, Policy, SummaryRow, TestLoops};
use crate::target::{HiddenRestore, Outcome, Prepared, ResumePolicy, Settings};

pub const AFTER_HELP: &str = "\
The station records every block device present when it starts and never touches
those. It accepts a medium that appears later on USB, passes every safety check
`wipe` makes and fits the size limits, and gives it the whole treatment `wipe`
gives: passes, verification, report, signed certificate, PDF, ledger. Pull a
stick when its row says `done — remove`; plug in the next. A stick pulled early
ends `failed` and resumes when plugged in again.

Examples:
  certwipe station --cert-dir certs/ --sign-key station_ed25519 --profile station.toml
  certwipe station --min-size 1G --max-size 256G --asset-template 'USB-{date}-{seq:04}' --power-off
  certwipe station --yes --json --stop-after 20 --summary batch.csv

Ctrl-C stops accepting media and aborts running wipes (they resume when the
stick is plugged in again); a second Ctrl-C exits at once.";

#[derive(Args, Debug)]
pub struct StationArgs {
    #[command(flatten)]
    options: WipeOptions,

    /// End the station once N media have been wiped (erased or failed).
    #[arg(long, value_name = "N")]
    stop_after: Option<usize>,

    /// Refuse media smaller than SIZE: 64M, 1G and 1GiB are binary (like
    /// lsblk and dd), 500MB and 1GB decimal (like a drive's label).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    min_size: Option<u64>,

    /// Refuse media larger than SIZE (a disk plugged in by mistake, say).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_size: Option<u64>,

    /// Ledger number for media the ledger does not give one: {date}, {seq},
    /// {seq:04}, {serial}, {port}, e.g. USB-{date}-{seq:04}.
    #[arg(long, value_name = "TEMPLATE")]
    asset_template: Option<String>,

    /// Power a USB device off once its medium is erased and recorded, so its
    /// light goes out and the technician knows to pull it.
    #[arg(long)]
    power_off: bool,

    /// Write the station's summary to FILE when it ends: CSV (.csv) or JSON.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,

    /// Write each medium's wipe report (JSON) into DIR.
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,

    /// Wipe again a medium this station run has already erased.
    #[arg(long)]
    again: bool,

    /// Start without asking (required when stdin is not a terminal).
    #[arg(short, long)]
    yes: bool,
}

/// A size as `lsblk`, `dd` and `truncate` read it: a bare unit letter or one
/// with `i` is binary (`2G` = `2GiB` = 2·2³⁰ bytes); a unit letter with `B`
/// alone is decimal (`2GB` = 2·10⁹), as drive makers print it.
fn parse_size(text: &str) -> Result<u64, String> {
    let unit = text.trim().to_ascii_uppercase();
    let decimal = unit.ends_with('B')
        && !unit.ends_with("IB")
        && unit[..unit.len() - 1].ends_with(|c: char| c.is_ascii_alphabetic());
    let config = if decimal { parse_size::Config::new() } else { parse_size::Config::new().with_binary() };
    config
        .parse_size(text)
        .map_err(|e| format!("{e}: give a size such as 64M, 2G (GiB), 2GiB or 500MB (10⁶ bytes)"))
}

/// Scans of sysfs happen at least this often, events or not.
const RESCAN: Duration = Duration::from_secs(2);
/// How often the station looks for finished wipes and a stop request.
const TICK: Duration = Duration::from_millis(250);

pub fn run(args: &StationArgs, ledger: Option<&Location>) -> Result<u8, Failure> {
    let setup = Setup::check(args, ledger)?;
    let start = scan::scan(Path::new("/sys"));
    // Every medium present now that the station could ever take is read (never
    // written) for its content marks, so that it is recognised if it comes back.
    let snapshot = Snapshot::take(&start, |seen| setup.policy.reaches(seen).then(|| policy::marks_of(seen)));
    setup.announce(args, &snapshot);
    if !args.yes {
        confirm()?;
    }
    signals::install();
    let uevents = Uevents::open()
        .map_err(|e| {
            eprintln!("certwipe: warning: no kernel events ({e}); scanning every {} s", RESCAN.as_secs())
        })
        .ok();
    let rows = Rows::choose(args.options.json);
    let mut station =
        Station { setup: &setup, snapshot, rows: &rows, erased: HashSet::new(), summary: Vec::new(), seq: 0 };
    let workers = Workers::new(16, workers::DEFAULT_BUDGET);
    let mut watch = Watch::starting_with(&start);
    rows.ready(station.snapshot.len());
    std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<(MediumKey, Seen, Outcome)>();
        let mut running: BTreeMap<MediumKey, Seen> = BTreeMap::new();
        // Media pulled while their wipe ran: the wipe's own end says whether
        // it had finished first.
        let mut pulled: HashSet<MediumKey> = HashSet::new();
        let mut finished = 0;
        let mut last_scan = None;
        loop {
            while let Ok((key, seen, outcome)) = done_rx.try_recv() {
                running.remove(&key);
                finished += 1;
                let pulled = pulled.remove(&key);
                station.finished(&seen, &outcome, args.power_off, pulled);
            }
            let stopping = signals::STOP.load(Ordering::Relaxed)
                || args.stop_after.is_some_and(|n| finished + running.len() >= n);
            if stopping && running.is_empty() {
                break;
            }
            // Wake often to collect finished wipes; scan sysfs only when the
            // kernel says a block device changed (or dropped events), and every
            // RESCAN in any case.
            let woken = match &uevents {
                Some(uevents) => !matches!(uevents.wait(TICK), Ok(Wake::Timeout)),
                None => {
                    std::thread::sleep(TICK);
                    false
                }
            };
            if !woken && last_scan.is_some_and(|at: Instant| at.elapsed() < RESCAN) {
                continue;
            }
            last_scan = Some(Instant::now());
            for change in watch.update(&scan::scan(Path::new("/sys"))) {
                match change {
                    Change::Removed(seen) => {
                        let while_wiping = running.contains_key(&seen.medium_key());
                        if while_wiping {
                            pulled.insert(seen.medium_key());
                        }
                        rows.removed(&seen, while_wiping)
                    }
                    Change::Arrived(seen) if stopping => rows.refused(&seen, "the station is stopping"),
                    Change::Arrived(seen) => {
                        if let Some(prepared) = station.accept(&seen) {
                            running.insert(seen.medium_key(), seen.clone());
                            let (done_tx, workers, setup, rows) = (done_tx.clone(), &workers, &setup, &rows);
                            scope.spawn(move || {
                                let view = rows.view(&seen);
                                let outcome = prepared.run(&setup.settings, workers, &view, &signals::STOP);
                                let _ = done_tx.send((seen.medium_key(), seen, outcome));
                            });
                        }
                    }
                }
            }
        }
    });
    station.end(args.summary.as_deref())
}

/// The station's checked settings.
struct Setup {
    settings: Settings,
    records: Option<Records>,
    policy: Policy,
    asset_template: Option<String>,
    report_dir: Option<PathBuf>,
}

impl Setup {
    fn check(args: &StationArgs, ledger: Option<&Location>) -> Result<Setup, Failure> {
        if args.options.certificates.records.has_assets() {
            return Err(Failure::usage(
                "--asset names one medium; a station numbers media from the ledger or --asset-template",
            ));
        }
        if let Some(template) = &args.asset_template {
            policy::check_template(template)?;
        }
        if let (Some(min), Some(max)) = (args.min_size, args.max_size)
            && min > max
        {
            return Err(Failure::usage(format!(
                "--min-size {} is above --max-size {}",
                HumanBytes(min),
                HumanBytes(max)
            )));
        }
        if let Some(dir) = &args.report {
            crate::durable::check_writable_dir(dir).map_err(|e| {
                Failure::usage(format!("--report {}: {e}; give a writable directory", dir.display()))
            })?;
        }
        if let Some(file) = &args.summary {
            crate::durable::Replaceable::Summary
                .check(file)
                .map_err(|e| Failure::usage(format!("--summary {}: {e}", file.display())))?;
        }
        let (settings, mut records) = args.options.settings(ResumePolicy::WhenJournaled, ledger, 1)?;
        let records = records.pop().flatten();
        let policy = Policy {
            min_size: args.min_size,
            max_size: args.max_size,
            test_loops: TestLoops::from_env(),
            again: args.again,
        };
        Ok(Setup {
            settings,
            records,
            policy,
            asset_template: args.asset_template.clone(),
            report_dir: args.report.clone(),
        })
    }

    /// The policy, printed before anything is accepted.
    fn announce(&self, args: &StationArgs, snapshot: &Snapshot) {
        let s = &self.settings;
        let plan = s.plan.as_ref().expect("a station always has a plan");
        let limits = match (args.min_size, args.max_size) {
            (None, None) => "any size".to_string(),
            (min, max) => format!(
                "{} to {}",
                min.map_or("any".into(), |m| HumanBytes(m).to_string()),
                max.map_or("any".into(), |m| HumanBytes(m).to_string())
            ),
        };
        let certificates = match &s.certificates {
            Some(plan) => format!(
                "{}{}",
                plan.dir.display(),
                if plan.key.is_some() { ", signed" } else { ", UNSIGNED" }
            ),
            None => "none (give --cert-dir)".into(),
        };
        let lines = [
            format!(
                "station: method {} ({} pass(es)), verify {}, {}",
                plan.method,
                plan.passes.len(),
                s.options.verify,
                s.options.prng.as_str()
            ),
            format!(
                "station: accepts USB media of {limits}; {} device(s) present now are left alone",
                snapshot.len()
            ),
            format!(
                "station: certificates {certificates}; ledger {}; hidden areas (HPA/DCO) {}",
                if s.has_ledger() { "yes" } else { "no" },
                match s.hidden_restore() {
                    HiddenRestore::Leave => "left alone (such media end incomplete)",
                    HiddenRestore::Hpa => "HPA restored until power-off",
                    HiddenRestore::HpaAndDco => "HPA restored, DCO restored PERMANENTLY",
                }
            ),
        ];
        for line in lines {
            eprintln!("{line}");
        }
        if self.policy.test_loops.is_some() {
            eprintln!(
                "station: TEST MODE ({}): the test's loop devices count as USB media",
                policy::TEST_TRANSPORT_ENV
            );
        }
    }
}

fn confirm() -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "refusing to start a station without confirmation: stdin is not a terminal; pass --yes once you have checked the policy",
        ));
    }
    eprint!("Every USB medium plugged in from now on will be overwritten. Type station to start: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| Failure::usage(e.to_string()))?;
    if line.trim() != "station" {
        return Err(Failure::usage("not confirmed (station was not typed); nothing was written"));
    }
    Ok(())
}

/// What the station has done so far.
struct Station<'a> {
    setup: &'a Setup,
    snapshot: Snapshot,
    rows: &'a Rows,
    /// Media erased by this run, by identity.
    erased: HashSet<String>,
    summary: Vec<SummaryRow>,
    seq: u32,
}

impl Station<'_> {
    /// Applies the policy to a medium that appeared; opens it when accepted.
    fn accept(&mut self, seen: &Seen) -> Option<Prepared> {
        self.rows.arrived(seen);
        match self.prepare(seen) {
            Ok(prepared) => {
                self.rows.started(seen, &prepared);
                Some(prepared)
            }
            Err(reason) => {
                self.rows.refused(seen, &reason);
                self.summary.push(row(seen, "refused", &reason, None));
                None
            }
        }
    }

    fn prepare(&mut self, seen: &Seen) -> Result<Prepared, String> {
        if let Some(why) = self.snapshot.protects(seen) {
            return Err(why);
        }
        if let Some(why) = self.setup.policy.refusal(seen) {
            return Err(why);
        }
        let target = device::inspect(Path::new(&format!("/dev/{}", seen.name)), &SystemUse::read())
            .map_err(|e| e.to_string())?;
        if !target.refusals.is_empty() {
            return Err(target.refusals.join("; "));
        }
        // A medium without a serial or WWN is told apart from those present at
        // the start by its content, read without writing.
        let marks = device::marks::of_target(&target).map_err(|e| e.to_string());
        if let Some(why) = self.snapshot.recognises(seen, &marks) {
            return Err(why);
        }
        let identity = policy::medium_identity(seen);
        if !self.setup.policy.again && identity.as_ref().is_some_and(|id| self.erased.contains(id)) {
            return Err("already done by this station (--again wipes it again)".into());
        }
        let records = self.records_for(seen).map_err(|e| e.to_string())?;
        let report = self
            .setup
            .report_dir
            .as_ref()
            .map(|dir| crate::target::report_file(dir, &seen.name, &crate::target::report_stamp()));
        let note = |text: &str| self.rows.note(seen, text);
        let prepared =
            self.setup.settings.prepare(target, records, report, &note).map_err(|e| e.to_string())?;
        // Opened exclusively: the medium must still be the one that was seen.
        if seen.diskseq.is_some() && prepared.disk_sequence() != seen.diskseq {
            return Err(
                "the medium changed between being seen and being opened (another stick?); plug it in again"
                    .into(),
            );
        }
        // The station's policy, confirmed at its start, covers restoring.
        prepared.restore_hidden(&self.setup.settings, &note).map_err(|e| e.to_string())
    }

    /// The certificate's records: the station's, with the ledger number the
    /// ledger has for this serial, else one from the template.
    fn records_for(&mut self, seen: &Seen) -> Result<Option<Records>, RecordsRefusal> {
        let Some(mut records) = self.setup.records.clone() else { return Ok(None) };
        self.seq += 1;
        let registered = match &seen.serial {
            Some(serial) => self.setup.settings.registered(None, Some(serial))?,
            None => None,
        };
        records.asset_number = match (registered, &self.setup.asset_template) {
            (Some(medium), _) => Some(medium.number),
            (None, Some(template)) => Some(policy::asset_number(template, self.seq, seen, &today())),
            (None, None) => None,
        };
        // A template's {serial} is whatever the device says.
        records.check_fields()?;
        Ok(Some(records))
    }

    fn finished(&mut self, seen: &Seen, outcome: &Outcome, power_off: bool, pulled: bool) {
        let report = &outcome.report;
        let certificate =
            outcome.certificate.as_ref().and_then(|c| c.as_ref().ok()).map(|p| p.display().to_string());
        if outcome.succeeded()
            && let Some(id) = policy::medium_identity(seen)
        {
            self.erased.insert(id);
        }
        let mut reason = report.status_reason.clone();
        let records = outcome.records_line();
        if !records.is_empty() {
            reason = format!("{reason} ({records})");
        }
        let state = if outcome.succeeded() { RowState::Done } else { RowState::Failed(reason.clone()) };
        self.rows.finished(seen, state, outcome, pulled);
        // Erased but not recorded as asked (report, certificate or ledger) is
        // not a success: it counts as failed, and the station exits 1.
        let status = match (report.status, outcome.succeeded()) {
            (Status::Erased, false) => "erased-not-recorded",
            (status, _) => status.as_str(),
        };
        self.summary.push(row(seen, status, &reason, certificate));
        if power_off
            && outcome.succeeded()
            && let Some(usb) = &seen.usb_device
            && let Err(error) = policy::power_off(usb)
        {
            self.rows.note(seen, &format!("could not power the USB device off: {error}"));
        }
    }

    /// Prints (and writes) the summary; exit 1 when a medium was not erased.
    fn end(self, file: Option<&Path>) -> Result<u8, Failure> {
        let count = |status: &str| self.summary.iter().filter(|r| r.status == status).count();
        let (erased, refused) = (count("erased"), count("refused"));
        let failed = self.summary.len() - erased - refused;
        self.rows.say(&format!("station: {erased} erased, {failed} failed, {refused} refused"));
        for r in &self.summary {
            self.rows.say(&format!(
                "  {} {} serial {} {} — {}",
                r.port,
                r.device,
                r.serial.as_deref().unwrap_or("-"),
                r.status,
                r.reason,
            ));
        }
        if let Some(path) = file {
            write_summary(path, &self.summary, erased, failed, refused)?;
        }
        Ok(if failed > 0 { EXIT_FAILED } else { EXIT_OK })
    }
}

/// Why a medium's certificate records could not be made.
#[derive(Debug, thiserror::Error)]
enum RecordsRefusal {
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("its records: {0}")]
    Records(#[from] RecordsError),
}

fn row(seen: &Seen, status: &str, reason: &str, certificate: Option<String>) -> SummaryRow {
    SummaryRow {
        port: seen.port(),
        device: format!("/dev/{}", seen.name),
        serial: seen.serial.clone(),
        size_bytes: seen.size_bytes,
        status: status.to_string(),
        reason: reason.to_string(),
        certificate,
    }
}

fn write_summary(
    path: &Path,
    rows: &[SummaryRow],
    erased: usize,
    failed: usize,
    refused: usize,
) -> Result<(), Failure> {
    // Media were wiped by now: a summary that cannot be written is a failure, not a usage error.
    let failure = |e: &dyn std::fmt::Display| Failure {
        code: EXIT_FAILED,
        message: format!("summary NOT written to {}: {e}", path.display()),
    };
    let bytes = if path.extension().is_some_and(|e| e == "csv") {
        let totals = format!("{erased} erased, {failed} failed, {refused} refused");
        summary_csv(rows, &totals).map_err(|e| failure(&e))?
    } else {
        let value = json!({"erased": erased, "failed": failed, "refused": refused, "media": rows});
        crate::cert::canonical::to_bytes(&value)
    };
    crate::durable::write_atomically(path, &bytes, 0o644).map_err(|e| failure(&e))
}

/// One row per medium, every cell safe to open in a spreadsheet (serials and
/// reasons come from the devices), and a last `total` row with the counts.
fn summary_csv(rows: &[SummaryRow], totals: &str) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(["port", "device", "serial", "size_bytes", "status", "reason", "certificate"])?;
    for r in rows {
        let cells = [
            r.port.clone(),
            r.device.clone(),
            r.serial.clone().unwrap_or_default(),
            r.size_bytes.to_string(),
            r.status.clone(),
            r.reason.clone(),
            r.certificate.clone().unwrap_or_default(),
        ];
        writer.write_record(cells.map(super::output::spreadsheet_cell))?;
    }
    writer.write_record(["total", "", "", "", "", totals, ""])?;
    writer.into_inner().map_err(|e| e.into_error().into())
}

/// Today's date, UTC, as `{date}` in an asset template: `20261130`.
fn today() -> String {
    crate::target::report_stamp()[..8].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_lsblk_and_dd_read_them() {
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
        assert!(parse_size("2 gigs").unwrap_err().contains("2G (GiB)"));
    }

    #[test]
    fn the_csv_summary_keeps_device_text_as_text_and_ends_with_the_counts() {
        let hostile = SummaryRow {
            port: "1-1".into(),
            device: "/dev/sdc".into(),
            serial: Some("=HYPERLINK(\"http://x\",\"y\")".into()),
            size_bytes: 4096,
            status: "failed".into(),
            reason: "-removed\r\nline".into(),
            certificate: None,
        };
        let bytes = summary_csv(&[hostile], "0 erased, 1 failed, 0 refused").unwrap();
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
        assert_eq!(&records[0][2], "'=HYPERLINK(\"http://x\",\"y\")");
        assert_eq!(&records[0][5], "'-removed\r\nline");
        assert_eq!(&records[1][0], "total");
        assert_eq!(&records[1][5], "0 erased, 1 failed, 0 refused");
    }
}
