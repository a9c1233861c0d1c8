//! Station mode: media are plugged in one after another, and each that the
//! policy accepts gets the whole treatment `wipe` gives (the shared
//! [`target`](crate::target) life), without anybody typing its name.
//!
//! The policy, in the order it is applied to a medium that appears:
//! 1. it was not present when the station started ([`scan::Snapshot`]);
//! 2. it hangs off USB — or, for tests only, is a loop device the test made
//!    (`CERTWIPE_STATION_TEST_TRANSPORT=loop:DIR`, which accepts loop devices
//!    whose backing file lies under DIR and changes nothing else);
//! 3. it passes every safety check `wipe` makes (root disk, mounted, held, swap,
//!    read-only);
//! 4. its size is within the limits;
//! 5. with a ledger, it is registered there;
//! 6. this station run has not erased it already (unless `--again`);
//! 7. once opened exclusively, its disk sequence number is still the one seen,
//!    so a stick swapped in that window is refused.

pub mod scan;
pub mod uevent;

use std::path::{Path, PathBuf};

use indicatif::HumanBytes;
use serde::Serialize;

use crate::device::marks::Marks;
use scan::Seen;

/// The environment variable that lets tests use loop devices as USB sticks.
pub const TEST_TRANSPORT_ENV: &str = "CERTWIPE_STATION_TEST_TRANSPORT";

/// What besides USB counts as a station's medium: only ever loop devices a test
/// made, under a directory it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestLoops {
    pub under: PathBuf,
}

impl TestLoops {
    /// From `CERTWIPE_STATION_TEST_TRANSPORT=loop:DIR`. Anything else is ignored:
    /// the override can only ever add the test's own loop devices.
    pub fn from_env() -> Option<TestLoops> {
        let value = std::env::var(TEST_TRANSPORT_ENV).ok()?;
        let dir = value.strip_prefix("loop:")?;
        let under = std::fs::canonicalize(dir).ok()?;
        Some(TestLoops { under })
    }

    fn admits(&self, seen: &Seen) -> bool {
        seen.name.starts_with("loop")
            && seen.backing_file.as_ref().is_some_and(|file| Path::new(file).starts_with(&self.under))
    }
}

/// The station's policy for what it accepts.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub min_size: Option<u64>,
    pub max_size: Option<u64>,
    pub test_loops: Option<TestLoops>,
    /// Wipe media this run has erased already.
    pub again: bool,
}

impl Policy {
    /// Whether `seen` hangs where the station takes media from: USB, or a
    /// test's own loop device.
    pub fn reaches(&self, seen: &Seen) -> bool {
        seen.usb_port.is_some() || self.test_loops.as_ref().is_some_and(|t| t.admits(seen))
    }

    /// Why a medium is not the station's to wipe, by transport and size (the
    /// safety checks and the ledger come after).
    pub fn refusal(&self, seen: &Seen) -> Option<String> {
        if !self.reaches(seen) {
            return Some("not on USB: the station wipes USB media only".into());
        }
        if let Some(min) = self.min_size.filter(|min| seen.size_bytes < *min) {
            return Some(format!("{} is below --min-size {}", HumanBytes(seen.size_bytes), HumanBytes(min)));
        }
        if let Some(max) = self.max_size.filter(|max| seen.size_bytes > *max) {
            return Some(format!("{} is above --max-size {}", HumanBytes(seen.size_bytes), HumanBytes(max)));
        }
        None
    }
}

/// The content marks of a device the station sees, read without writing.
pub fn marks_of(seen: &Seen) -> Result<Marks, String> {
    let path = PathBuf::from(format!("/dev/{}", seen.name));
    let target =
        crate::device::inspect(&path, &crate::device::SystemUse::read()).map_err(|e| e.to_string())?;
    crate::device::marks::of_target(&target).map_err(|e| e.to_string())
}

/// What identifies a medium across plugging it in again: its serial (and size),
/// or for a test's loop device the file behind it.
pub fn medium_identity(seen: &Seen) -> Option<String> {
    match (&seen.serial, &seen.backing_file) {
        (Some(serial), _) => Some(format!("serial {serial}, {} bytes", seen.size_bytes)),
        (None, Some(file)) => Some(format!("file {file}")),
        (None, None) => None,
    }
}

/// A ledger number from `--asset-template`: `{date}` (YYYYMMDD), `{seq}` or
/// `{seq:0N}` (the station run's count of media, from 1), `{serial}`, `{port}`.
pub fn asset_number(template: &str, seq: u32, seen: &Seen, today: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            out.push_str(&rest[open..]);
            return out;
        };
        let field = &rest[open + 1..open + close];
        match field.split_once(':') {
            _ if field == "date" => out.push_str(today),
            _ if field == "serial" => out.push_str(seen.serial.as_deref().unwrap_or("unknown")),
            _ if field == "port" => out.push_str(&seen.port()),
            _ if field == "seq" => out.push_str(&seq.to_string()),
            Some(("seq", width)) if seq_width(width).is_some() => {
                let width = seq_width(width).expect("checked");
                out.push_str(&format!("{seq:0width$}"));
            }
            _ => out.push_str(&rest[open..open + close + 1]),
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    out
}

/// The width of `{seq:0N}`: `0` and 1 to 2 digits; nothing wider than a
/// ledger number may be (and a format width past 65,535 panics).
fn seq_width(spec: &str) -> Option<usize> {
    let digits = spec.strip_prefix('0')?;
    (1..=2).contains(&digits.len()).then(|| digits.parse().ok()).flatten().filter(|w| *w <= MAX_SEQ_WIDTH)
}

const MAX_SEQ_WIDTH: usize = 20;

/// Why an `--asset-template` cannot number media.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("--asset-template {0:?}: unknown field; use {{date}}, {{seq}}, {{seq:04}}, {{serial}}, {{port}}")]
    UnknownField(String),
    #[error("--asset-template: {0}")]
    Text(#[from] crate::cert::records::RecordsError),
}

impl crate::exit::ExitStatus for TemplateError {
    fn exit_status(&self) -> u8 {
        crate::exit::USAGE
    }
}

/// Checks an `--asset-template` before the station starts.
pub fn check_template(template: &str) -> Result<(), TemplateError> {
    let sample = Seen {
        name: "sdz".into(),
        devnum: crate::device::sysfs::DevNum { major: 8, minor: 0 },
        diskseq: None,
        size_bytes: 0,
        serial: Some("S".into()),
        wwn: None,
        usb_port: Some("1-1".into()),
        usb_device: None,
        backing_file: None,
    };
    let number = asset_number(template, 1, &sample, "20260101");
    if number.contains(['{', '}']) {
        return Err(TemplateError::UnknownField(template.to_string()));
    }
    Ok(crate::cert::records::check_text("asset template", &number, crate::cert::records::MAX_NUMBER_CHARS)?)
}

/// One medium's line in the station's summary.
#[derive(Clone, Debug, Serialize)]
pub struct SummaryRow {
    pub port: String,
    pub device: String,
    pub serial: Option<String>,
    pub size_bytes: u64,
    /// `erased` (and recorded as asked), `erased-not-recorded` (the report,
    /// certificate or ledger filing failed), `incomplete`, `failed`,
    /// `aborted`, or `refused`.
    pub status: String,
    pub reason: String,
    pub certificate: Option<String>,
}

/// Powers a USB device off once its medium is erased, so its LED goes dark and
/// the technician knows to pull it: the kernel's `remove` attribute of the USB
/// device disconnects it.
pub fn power_off(usb_device: &Path) -> std::io::Result<()> {
    std::fs::write(usb_device.join("remove"), b"1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::sysfs::DevNum;

    fn stick(size: u64) -> Seen {
        Seen {
            name: "sdc".into(),
            devnum: DevNum { major: 8, minor: 32 },
            diskseq: Some(7),
            size_bytes: size,
            serial: Some("AA11".into()),
            wwn: None,
            usb_port: Some("2-1.3".into()),
            usb_device: None,
            backing_file: None,
        }
    }

    #[test]
    fn the_policy_takes_usb_media_within_the_size_limits_only() {
        let policy = Policy { min_size: Some(1 << 20), max_size: Some(64 << 30), ..Policy::default() };
        assert_eq!(policy.refusal(&stick(8 << 30)), None);
        assert!(policy.refusal(&stick(4096)).unwrap().contains("below --min-size"));
        assert!(policy.refusal(&stick(128 << 30)).unwrap().contains("above --max-size"));
        let sata = Seen { usb_port: None, ..stick(8 << 30) };
        assert!(policy.refusal(&sata).unwrap().contains("USB media only"));
        let dir = tempfile::tempdir().unwrap();
        let test_loop = Seen {
            name: "loop200".into(),
            usb_port: None,
            backing_file: Some(dir.path().join("stick.img").display().to_string()),
            ..stick(8 << 30)
        };
        assert!(policy.refusal(&test_loop).is_some(), "loop devices need the test override");
        let with_loops =
            Policy { test_loops: Some(TestLoops { under: dir.path().to_path_buf() }), ..policy.clone() };
        assert_eq!(with_loops.refusal(&test_loop), None);
        let someone_elses = Seen { backing_file: Some("/var/tmp/other.img".into()), ..test_loop.clone() };
        assert!(with_loops.refusal(&someone_elses).is_some(), "only the test's own loop devices");
        let not_a_loop = Seen { name: "sdz".into(), ..test_loop };
        assert!(with_loops.refusal(&not_a_loop).is_some(), "the override adds loop devices and nothing else");
    }

    #[test]
    fn asset_templates_fill_in_date_sequence_serial_and_port() {
        let seen = stick(1);
        assert_eq!(asset_number("USB-{date}-{seq:04}", 7, &seen, "20261129"), "USB-20261129-0007");
        assert_eq!(asset_number("{serial}@{port}#{seq}", 12, &seen, "d"), "AA11@2-1.3#12");
        assert_eq!(asset_number("plain", 1, &seen, "d"), "plain");
        assert!(check_template("USB-{date}-{seq:04}").is_ok());
        assert!(check_template("USB-{nope}").is_err());
        assert!(check_template("USB-{seq:4}").is_err());
        for wide in ["{seq:0100000}", "{seq:099999999999}", "{seq:021}", "{seq:0}", "{seq:0x}"] {
            assert!(check_template(wide).is_err(), "{wide}");
        }
        assert_eq!(asset_number("{seq:020}", 7, &seen, "d"), format!("{:020}", 7));
        assert!(check_template("\u{1b}[2J{seq}").is_err());
    }

    #[test]
    fn a_number_made_from_what_a_device_says_is_checked_like_typed_text() {
        use crate::cert::records::{MAX_NUMBER_CHARS, check_text};
        // What Records::check_fields asks of the station's records.
        let checked = |serial: &str| {
            let seen = Seen { serial: Some(serial.into()), ..stick(1) };
            check_text("asset number", &asset_number("USB-{serial}", 1, &seen, "d"), MAX_NUMBER_CHARS)
        };
        assert!(checked("AA11").is_ok());
        assert!(checked("AA\u{1b}]0;Result: ERASED\u{7}").is_err(), "terminal escapes from a serial");
        assert!(checked(&"9".repeat(200)).is_err(), "a serial longer than a ledger number may be");
    }
}
