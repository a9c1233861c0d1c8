//! The certificate document: what was done, to which medium, by whom, with what
//! result. Made from the wipe report and the organisation's records; the category
//! is computed, never chosen.

use serde::{Deserialize, Serialize};

use super::CertError;
use super::records::Records;
use crate::device::{CacheBypass, Identity, MediaType, TargetKind};
use crate::report::Interruption;
use crate::report::{
    ContentDigest, ErrorLog, FirmwareRecord, MethodRecord, PassRecord, Report, Status, Tool,
    VerificationSummary, VerifyMode,
};

pub const CERTIFICATE_FORMAT: &str = "certwipe.certificate/v1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Certificate {
    pub format: String,
    /// Random and unique (a UUID v4).
    pub certificate_id: String,
    pub issued_at: String,
    pub tool: Tool,
    pub host: String,
    pub medium: Identity,
    pub records: Records,
    pub sanitization: Sanitization,
}

pub use crate::sanitization::{Category, Technique};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sanitization {
    pub category: Category,
    pub technique: Technique,
    pub method: MethodRecord,
    pub verify_mode: VerifyMode,
    pub cache_bypass: CacheBypass,
    pub started_at: String,
    pub finished_at: String,
    pub passes: Vec<PassRecord>,
    pub verification: VerificationSummary,
    pub final_content_digest: Option<ContentDigest>,
    pub errors: ErrorLog,
    pub retried_io_errors: u64,
    /// Interruptions the wipe was resumed from, and how the medium was recognised.
    pub interruptions: Vec<Interruption>,
    /// The drive's own command and the reading that proved it, for a drive
    /// technique; absent for a host overwrite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<FirmwareRecord>,
    pub status: Status,
    pub status_reason: String,
    /// What this certificate does not attest, in plain words.
    pub warnings: Vec<String>,
}

impl Certificate {
    pub fn issue(report: Report, records: Records) -> Certificate {
        let technique = report.firmware.as_ref().map_or(Technique::Overwrite, |f| f.technique);
        let category = technique.category(report.target.media_type, report.status == Status::Erased);
        let warnings = warnings(&report, &records);
        // Every field of the report is named here, with no `..`: a field added
        // to the report does not compile until it is either carried into the
        // certificate or deliberately left out, so nothing the engine records
        // silently fails to reach the signed record.
        let Report {
            format: _report_format,
            tool,
            host,
            target,
            method,
            verify_mode,
            cache_bypass,
            started_at,
            finished_at,
            passes,
            verification,
            final_content_digest,
            errors,
            retried_io_errors,
            interruptions,
            firmware,
            status,
            status_reason,
        } = report;
        Certificate {
            format: CERTIFICATE_FORMAT.into(),
            certificate_id: new_id(),
            issued_at: crate::report::now(),
            tool,
            host,
            medium: target,
            records,
            sanitization: Sanitization {
                category,
                technique,
                method,
                verify_mode,
                cache_bypass,
                started_at,
                finished_at,
                passes,
                verification,
                final_content_digest,
                errors,
                retried_io_errors,
                interruptions,
                firmware,
                status,
                status_reason,
                warnings,
            },
        }
    }

    /// The exact bytes that are written and signed: the canonical form
    /// ([`canonical`](super::canonical)).
    pub fn to_bytes(&self) -> Vec<u8> {
        super::canonical::to_bytes(self)
    }

    /// Parses a certificate strictly: one reading only (no duplicate keys, only the
    /// canonical form), no unknown fields, wrong types or unknown format versions.
    pub fn parse(bytes: &[u8]) -> Result<Certificate, CertError> {
        let value = super::canonical::parse_value(bytes)?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(CERTIFICATE_FORMAT) => {}
            Some(other) => return Err(CertError::UnknownFormat(other.to_string())),
            None => return Err(CertError::NotACertificate),
        }
        Ok(super::canonical::parse(bytes)?)
    }
}

pub const FLASH_WARNING: &str = "flash medium: a host overwrite cannot reach spare, remapped or over-provisioned blocks, so this is Clear, not Purge; Purge needs the device's own sanitize command, and NIST SP 800-88 advises destroying USB sticks and memory cards that need Purge";
pub const UNKNOWN_MEDIA_WARNING: &str = "media type unknown: if this is flash, a host overwrite cannot reach spare or remapped blocks (Clear, not Purge)";
pub const HIDDEN_AREA_WARNING: &str =
    "ATA hidden areas (HPA/DCO) were neither examined nor reset; anything stored there was not overwritten";
pub const IMAGE_FILE_WARNING: &str = "image file: this attests the file's content only; copy-on-write, snapshotting or journaling file systems and the disk below may keep earlier copies of its data";
pub const NO_VERIFICATION_WARNING: &str = "no verification was performed: the overwrite was not read back";

pub const CRYPTO_ERASE_WARNING: &str = "cryptographic erase: it is Purge only because the drive encrypts all user data with the key it replaced; the sample read afterwards held none of the content written before";

fn warnings(report: &Report, records: &Records) -> Vec<String> {
    let target = &report.target;
    let mut warnings = Vec::new();
    match &report.firmware {
        None if target.media_type.is_flash() => warnings.push(FLASH_WARNING.to_string()),
        None if target.media_type == MediaType::Unknown => warnings.push(UNKNOWN_MEDIA_WARNING.to_string()),
        None => {}
        Some(firmware) => warnings.extend(firmware_warnings(firmware)),
    }
    match target.hidden {
        Some(hidden) if hidden.hidden_sectors() > 0 && !(hidden.hpa_restored || hidden.dco_restored) => {
            warnings.push(format!(
                "{} sectors hidden by an HPA or DCO were not sanitized: the drive has {} sectors, the host could reach {}",
                hidden.hidden_sectors(),
                hidden.full_sectors(),
                hidden.accessible_sectors
            ));
        }
        Some(_) => {}
        None if target.kind == TargetKind::BlockDevice
            && matches!(target.transport.as_str(), "sata" | "usb" | "scsi" | "sas") =>
        {
            warnings.push(HIDDEN_AREA_WARNING.to_string());
        }
        None => {}
    }
    if target.kind == TargetKind::ImageFile {
        warnings.push(IMAGE_FILE_WARNING.to_string());
    }
    if report.verify_mode == VerifyMode::Off {
        warnings.push(NO_VERIFICATION_WARNING.to_string());
    }
    if report.status != Status::Erased {
        warnings.push(format!(
            "status {}: this certificate does NOT attest that the medium was erased",
            report.status.as_str()
        ));
    }
    let level = records.classification_before.max(records.classification_after);
    if let Some(level) = level.filter(|l| l.is_controlled()) {
        warnings.push(format!(
            "classified medium ({} {}): it keeps its classification and must be physically destroyed when scrapped; it may not be reused below its level",
            level.english(),
            level.chinese()
        ));
    }
    warnings
}

/// What a drive's erase, even proven, does not attest.
fn firmware_warnings(firmware: &FirmwareRecord) -> Vec<String> {
    let mut warnings = Vec::new();
    let v = &firmware.verification;
    if v.sample.is_some() {
        warnings.push(format!(
            "the drive's erase was checked by NIST SP 800-88 representative sampling ({:.1} % of the medium read back); sectors outside the sample were not read",
            v.coverage * 100.0
        ));
    }
    if firmware.technique == Technique::SanitizeCryptoErase
        || firmware.technique == Technique::FormatCryptoErase
    {
        warnings.push(CRYPTO_ERASE_WARNING.to_string());
    }
    warnings
}

/// A random UUID (version 4) as the certificate id.
fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_uuid_v4_and_unique() {
        let (a, b) = (new_id(), new_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!("89ab".contains(&a[19..20]));
    }
}
