//! A certificate on disk: `CERT.json`, its station signature `CERT.json.sig`, and
//! countersignatures beside it, none of which touches the certificate's bytes:
//!
//! - `CERT.json.<role>-<n>.sig`: the countersigner's SSHSIG over `CERT.json`
//! - `CERT.json.<role>-<n>.json`: who countersigned, in what role, over which bytes
//!   (the SHA-256 of `CERT.json`), and when
//! - `CERT.json.<role>-<n>.json.sig`: the countersigner's SSHSIG over that statement
//!
//! What they add up to is decided by the one judge, [`super::judge`].

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::CertError;
use super::judge::SignatureProblem;
use super::model::Certificate;
use super::sign::{Duty, SigningKey};

pub const STATEMENT_FORMAT: &str = "certwipe.countersignature/v1";

crate::named! {
    pub enum Role: "role" {
        /// Checked the sanitization (NIST's validation signature).
        Validator = "validator",
        /// Witnessed the sanitization or destruction (监销).
        Witness = "witness",
        /// Approved it (审批).
        Approver = "approver",
    }
}

impl Role {
    /// The signing duty, and so the namespace, of this role.
    pub fn duty(self) -> Duty {
        match self {
            Role::Validator => Duty::Validator,
            Role::Witness => Duty::Witness,
            Role::Approver => Duty::Approver,
        }
    }
}

/// A countersigner's signed statement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub format: String,
    pub certificate_id: String,
    /// SHA-256 of the certificate file's exact bytes, lowercase hex.
    pub certificate_sha256: String,
    pub role: Role,
    pub name: String,
    pub title: Option<String>,
    pub organisation: Option<String>,
    pub signed_at: String,
    pub key_fingerprint: String,
}

pub fn signature_path(cert: &Path) -> PathBuf {
    append(cert, ".sig")
}

/// Reads a certificate; one too large to be real is refused unread, as a
/// document that does not verify.
fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    use crate::input::InputError;
    crate::input::read_regular(path, crate::input::DOCUMENT).map_err(|error| match error {
        too_large @ InputError::TooLarge { .. } => {
            CertError::Invalid(format!("{}: {too_large}", path.display()))
        }
        other => CertError::Input { path: path.display().to_string(), source: other },
    })
}

/// Writes a new file; never replaces one (certificates are records).
pub(super) fn write_new(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    crate::durable::write_new(path, bytes, 0o644)
        .map_err(|source| CertError::Io { path: path.display().to_string(), source })
}

/// Writes `CERT.json` and, with a key, `CERT.json.sig`.
pub fn write_certificate(path: &Path, cert: &Certificate, key: Option<&SigningKey>) -> Result<(), CertError> {
    let bytes = cert.to_bytes();
    let signature = key.map(|k| k.sign(&bytes, Duty::Station)).transpose()?;
    write_new(path, &bytes)?;
    if let Some(signature) = signature {
        write_new(&signature_path(path), signature.as_bytes())?;
    }
    Ok(())
}

/// A document's part: where it comes from (a file, a ledger record) and its
/// bytes, or `None` when it is missing or unreadable.
#[derive(Clone, Debug)]
pub struct Part {
    pub label: String,
    pub bytes: Option<Vec<u8>>,
}

impl Part {
    fn read(path: &Path) -> Part {
        Part {
            label: path.display().to_string(),
            bytes: crate::input::read_regular(path, crate::input::DOCUMENT).ok(),
        }
    }

    pub(crate) fn get(&self) -> Result<&[u8], SignatureProblem> {
        self.bytes.as_deref().ok_or_else(|| SignatureProblem::Missing(self.label.clone()))
    }

    pub(crate) fn text(&self) -> Result<String, SignatureProblem> {
        Ok(String::from_utf8_lossy(self.get()?).into_owned())
    }
}

/// One countersignature: the signed statement and the two signatures over the
/// statement and over the certificate.
#[derive(Clone, Debug)]
pub struct CounterParts {
    pub role: String,
    pub statement: Part,
    pub statement_signature: Part,
    pub certificate_signature: Part,
    /// When a ledger first recorded it; `None` for loose files.
    pub recorded_at: Option<SystemTime>,
}

/// A certificate with every signature that belongs to it, as bytes: read from
/// the files beside each other, or from the ledger. Both are judged the same way.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub certificate: Vec<u8>,
    pub signature: Part,
    pub countersignatures: Vec<CounterParts>,
    /// When a ledger first recorded the certificate; `None` for loose files.
    pub recorded_at: Option<SystemTime>,
}

impl Bundle {
    /// `CERT.json`, `CERT.json.sig` and every countersignature beside them.
    /// `Err` only when the certificate itself cannot be read.
    pub fn from_files(path: &Path) -> Result<Bundle, CertError> {
        let certificate = read(path)?;
        let countersignatures = countersignature_stems(path)
            .into_iter()
            .map(|(role, stem, statement)| CounterParts {
                role,
                statement: Part::read(&append(&stem, statement)),
                statement_signature: Part::read(&append(&append(&stem, statement), ".sig")),
                certificate_signature: Part::read(&append(&stem, ".sig")),
                recorded_at: None,
            })
            .collect();
        Ok(Bundle {
            certificate,
            signature: Part::read(&signature_path(path)),
            countersignatures,
            recorded_at: None,
        })
    }
}

impl Bundle {
    /// The exact files, named as `cert verify` expects them side by side, for
    /// a certificate called `name` (`NAME.json`, `NAME.json.sig`, and each
    /// countersignature's three files): name, content type, bytes. Missing
    /// parts are left out.
    pub fn files(&self, name: &str) -> Vec<(String, &'static str, Vec<u8>)> {
        const JSON: &str = "application/json";
        const TEXT: &str = "text/plain; charset=utf-8";
        let mut files = vec![(format!("{name}.json"), JSON, Some(self.certificate.clone()))];
        files.push((format!("{name}.json.sig"), TEXT, self.signature.bytes.clone()));
        let mut seen: Vec<&str> = Vec::new();
        for c in &self.countersignatures {
            seen.push(&c.role);
            let n = seen.iter().filter(|r| **r == c.role).count();
            let stem = format!("{name}.json.{}-{n}", c.role);
            files.extend([
                (format!("{stem}{STATEMENT}"), JSON, c.statement.bytes.clone()),
                (format!("{stem}{STATEMENT}.sig"), TEXT, c.statement_signature.bytes.clone()),
                (format!("{stem}.sig"), TEXT, c.certificate_signature.bytes.clone()),
            ]);
        }
        files.into_iter().filter_map(|(name, kind, bytes)| Some((name, kind, bytes?))).collect()
    }
}

/// The suffix of a countersignature's statement, after its stem
/// `CERT.json.ROLE-n`: not `.json`, so that `*.json` picks only certificates.
pub const STATEMENT: &str = ".statement";
/// The statement's suffix before certwipe 0.2 (still read).
const LEGACY_STATEMENT: &str = ".json";

/// `(role, CERT.json.<role>-<n>, statement suffix)` for every countersignature
/// statement beside `cert`, named as now or as before. A countersignature
/// exists once its statement does: the statement is written last, so a set
/// cut short leaves nothing that counts.
fn countersignature_stems(cert: &Path) -> Vec<(String, PathBuf, &'static str)> {
    let dir = cert.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Some(name) = cert.file_name().map(|n| n.to_string_lossy().into_owned()) else { return Vec::new() };
    let stem_of = |file: &str| {
        let rest = file.strip_prefix(&format!("{name}."))?;
        let (tag, suffix) = [STATEMENT, LEGACY_STATEMENT]
            .into_iter()
            .find_map(|suffix| Some((rest.strip_suffix(suffix)?, suffix)))?;
        let (role, number) = tag.rsplit_once('-')?;
        number.parse::<u32>().ok()?;
        Some((role.to_string(), dir.join(format!("{name}.{tag}")), suffix))
    };
    let mut stems: Vec<(String, PathBuf, &'static str)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(|e| e.ok()).filter_map(|e| stem_of(&e.file_name().to_string_lossy())).collect()
        })
        .unwrap_or_default();
    stems.sort();
    stems
}

/// `path` with `suffix` appended to its file name.
pub(super) fn append(path: &Path, suffix: &str) -> PathBuf {
    let mut text = path.as_os_str().to_os_string();
    text.push(suffix);
    PathBuf::from(text)
}
