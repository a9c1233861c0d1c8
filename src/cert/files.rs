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
use super::judge::{self, Context, SignatureProblem, Trust};
use super::model::Certificate;
use super::sign::{Duty, SigningKey};

pub const STATEMENT_FORMAT: &str = "certwipe.countersignature/v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Checked the sanitization (NIST's validation signature).
    Validator,
    /// Witnessed the sanitization or destruction (监销).
    Witness,
    /// Approved it (审批).
    Approver,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        self.duty().name()
    }

    /// The signing duty, and so the namespace, of this role.
    pub fn duty(self) -> Duty {
        match self {
            Role::Validator => Duty::Validator,
            Role::Witness => Duty::Witness,
            Role::Approver => Duty::Approver,
        }
    }

    /// The role a countersignature file names (`validator`, `witness`, `approver`).
    pub fn from_name(name: &str) -> Option<Role> {
        [Role::Validator, Role::Witness, Role::Approver].into_iter().find(|r| r.as_str() == name)
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

fn append(path: &Path, suffix: &str) -> PathBuf {
    let mut text = path.as_os_str().to_os_string();
    text.push(suffix);
    PathBuf::from(text)
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
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
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
            .map(|(role, stem)| CounterParts {
                role,
                statement: Part::read(&append(&stem, ".json")),
                statement_signature: Part::read(&append(&stem, ".json.sig")),
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
                (format!("{stem}.json"), JSON, c.statement.bytes.clone()),
                (format!("{stem}.json.sig"), TEXT, c.statement_signature.bytes.clone()),
                (format!("{stem}.sig"), TEXT, c.certificate_signature.bytes.clone()),
            ]);
        }
        files.into_iter().filter_map(|(name, kind, bytes)| Some((name, kind, bytes?))).collect()
    }
}

/// Judges a certificate file and everything beside it, now.
pub fn judge_files(path: &Path, trust: Option<Trust<'_>>) -> Result<judge::Judgement, CertError> {
    Ok(judge::judge(&Bundle::from_files(path)?, &Context::now(trust)))
}

/// `(role, CERT.json.<role>-<n>)` for every countersignature statement beside
/// `cert`. A countersignature exists once its statement does: the statement is
/// written last, so a set cut short leaves nothing that counts.
fn countersignature_stems(cert: &Path) -> Vec<(String, PathBuf)> {
    let dir = cert.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let Some(name) = cert.file_name().map(|n| n.to_string_lossy().into_owned()) else { return Vec::new() };
    let mut stems: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let file = e.file_name().to_string_lossy().into_owned();
                    let tag = file.strip_prefix(&format!("{name}."))?.strip_suffix(".json")?.to_string();
                    let (role, number) = tag.rsplit_once('-')?;
                    number.parse::<u32>().ok()?;
                    Some((role.to_string(), dir.join(file.trim_end_matches(".json"))))
                })
                .collect()
        })
        .unwrap_or_default();
    stems.sort();
    stems
}

/// Who countersigns.
pub struct Countersigner<'a> {
    pub key: &'a SigningKey,
    pub role: Role,
    pub name: String,
    pub title: Option<String>,
    pub organisation: Option<String>,
}

/// Adds a countersignature beside `cert`; returns the files written. Refuses a
/// certificate that the judge does not find valid (nobody should put their
/// name under one), and a countersignature the judge would refuse: a key the
/// allowed signers do not list for this role, or a key or person already on
/// the certificate.
pub fn countersign(
    cert: &Path,
    signer: &Countersigner<'_>,
    trust: Trust<'_>,
) -> Result<Vec<PathBuf>, CertError> {
    use super::records::{MAX_NAME_CHARS, check_optional, check_text};
    check_text("name", &signer.name, MAX_NAME_CHARS)?;
    check_optional("title", signer.title.as_deref(), MAX_NAME_CHARS)?;
    check_optional("organisation", signer.organisation.as_deref(), MAX_NAME_CHARS)?;
    // The bytes judged are the bytes countersigned.
    let mut bundle = Bundle::from_files(cert)?;
    let judgement = judge::judge(&bundle, &Context::now(Some(trust)));
    let Some(certificate) = judgement.valid_certificate() else {
        return Err(CertError::Invalid(judgement.reasons().join("; ")));
    };
    let certificate_id = certificate.certificate_id.clone();
    let stem = (1..)
        .map(|n| append(cert, &format!(".{}-{n}", signer.role.as_str())))
        .find(|stem| [".json", ".json.sig", ".sig"].iter().all(|suffix| !append(stem, suffix).exists()))
        .expect("some index is free");
    let statement = Statement {
        format: STATEMENT_FORMAT.into(),
        certificate_id,
        certificate_sha256: judgement.sha256.clone(),
        role: signer.role,
        name: signer.name.clone(),
        title: signer.title.clone(),
        organisation: signer.organisation.clone(),
        signed_at: crate::engine::report::now(),
        key_fingerprint: signer.key.fingerprint(),
    };
    let statement_bytes = super::canonical::to_bytes(&statement);
    let duty = signer.role.duty();
    let certificate_signature = signer.key.sign(&bundle.certificate, duty)?;
    let statement_signature = signer.key.sign(&statement_bytes, duty)?;
    // The countersignature must itself pass the judge, with everything
    // already on the certificate, before a file is written.
    let label = |suffix: &str| append(&stem, suffix).display().to_string();
    let part = |suffix: &str, bytes: &[u8]| Part { label: label(suffix), bytes: Some(bytes.to_vec()) };
    bundle.countersignatures.push(CounterParts {
        role: signer.role.as_str().to_string(),
        statement: part(".json", &statement_bytes),
        statement_signature: part(".json.sig", statement_signature.as_bytes()),
        certificate_signature: part(".sig", certificate_signature.as_bytes()),
        recorded_at: None,
    });
    let with_it = judge::judge(&bundle, &Context::now(Some(trust)));
    if let Some(problem) = with_it.signatures.into_iter().last().and_then(|s| s.result.err()) {
        return Err(CertError::Countersign(problem));
    }
    if !with_it.problems.is_empty() {
        return Err(CertError::Invalid(with_it.problems.join("; ")));
    }
    // The statement last: until it exists, the other two files count for nothing.
    let files = [append(&stem, ".sig"), append(&stem, ".json.sig"), append(&stem, ".json")];
    let contents = [certificate_signature.into_bytes(), statement_signature.into_bytes(), statement_bytes];
    for (file, content) in files.iter().zip(&contents) {
        write_new(file, content)?;
    }
    Ok(files.to_vec())
}
