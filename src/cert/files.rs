//! A certificate on disk: `CERT.json`, its station signature `CERT.json.sig`, and
//! countersignatures beside it, none of which touches the certificate's bytes:
//!
//! - `CERT.json.<role>-<n>.sig`: the countersigner's SSHSIG over `CERT.json`
//! - `CERT.json.<role>-<n>.json`: who countersigned, in what role, over which bytes
//!   (the SHA-256 of `CERT.json`), and when
//! - `CERT.json.<role>-<n>.json.sig`: the countersigner's SSHSIG over that statement

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::model::Certificate;
use super::sign::{self, AllowedSigners, GoodSignature, Signers, SigningKey};
use super::{CertError, check};

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
        match self {
            Role::Validator => "validator",
            Role::Witness => "witness",
            Role::Approver => "approver",
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

fn append(path: &Path, suffix: &str) -> PathBuf {
    let mut text = path.as_os_str().to_os_string();
    text.push(suffix);
    PathBuf::from(text)
}

/// Reads a certificate or statement; one too large to be real is refused unread
/// (the parse that follows names the limit).
fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    super::canonical::read_bounded(path)
        .map_err(|source| CertError::Io { path: path.display().to_string(), source })
}

/// Writes a new file; never replaces one (certificates are records).
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), CertError> {
    crate::durable::write_new(path, bytes, 0o644)
        .map_err(|source| CertError::Io { path: path.display().to_string(), source })
}

/// Writes `CERT.json` and, with a key, `CERT.json.sig`.
pub fn write_certificate(path: &Path, cert: &Certificate, key: Option<&SigningKey>) -> Result<(), CertError> {
    let bytes = cert.to_bytes();
    let signature = key.map(|k| k.sign(&bytes)).transpose()?;
    write_new(path, &bytes)?;
    if let Some(signature) = signature {
        write_new(&signature_path(path), signature.as_bytes())?;
    }
    Ok(())
}

/// The outcome of checking one signature file.
#[derive(Debug)]
pub struct SignatureCheck {
    /// `station` for the certificate's own signature, else the countersigner's role.
    pub role: String,
    pub file: PathBuf,
    /// The countersigner's statement, when this is a countersignature.
    pub statement: Option<Statement>,
    pub result: Result<GoodSignature, String>,
}

/// Everything `cert verify` found.
#[derive(Debug)]
pub struct Checked {
    pub certificate: Option<Certificate>,
    pub sha256: String,
    pub signatures: Vec<SignatureCheck>,
    pub problems: Vec<String>,
}

impl Checked {
    pub fn is_valid(&self) -> bool {
        self.problems.is_empty()
            && !self.signatures.is_empty()
            && self.signatures.iter().all(|s| s.result.is_ok())
    }
}

/// Checks a certificate file, its signature, every countersignature beside it, and
/// its internal consistency. `Err` only when the file cannot be read at all.
pub fn check_files(path: &Path, allowed: Option<&AllowedSigners>) -> Result<Checked, CertError> {
    let bytes = read(path)?;
    let mut problems = Vec::new();
    let certificate = match Certificate::parse(&bytes) {
        Ok(cert) => {
            problems.extend(check::inconsistencies(&cert));
            Some(cert)
        }
        Err(error) => {
            problems.push(error.to_string());
            None
        }
    };
    let mut signatures = Vec::new();
    let sig_path = signature_path(path);
    let issued_at = certificate.as_ref().and_then(|c| humantime::parse_rfc3339(&c.issued_at).ok());
    let station = allowed.map(|allowed| Signers { allowed, at: issued_at.unwrap_or_else(SystemTime::now) });
    match std::fs::read_to_string(&sig_path) {
        Ok(armored) => signatures.push(SignatureCheck {
            role: "station".into(),
            result: sign::verify(&bytes, &armored, station),
            file: sig_path,
            statement: None,
        }),
        Err(_) => problems.push(format!("no signature {}: the certificate is unsigned", sig_path.display())),
    }
    let sha256 = crate::stream::sha256_hex(&bytes);
    for (role, stem) in countersignature_stems(path) {
        let check = check_countersignature(&bytes, &sha256, certificate.as_ref(), &role, &stem, allowed);
        signatures.push(check);
    }
    Ok(Checked { certificate, sha256, signatures, problems })
}

/// The certificate and every signature file that belongs to it, as they exist.
pub fn with_companions(cert: &Path) -> Vec<PathBuf> {
    let mut paths = vec![cert.to_path_buf(), signature_path(cert)];
    for (_, stem) in countersignature_stems(cert) {
        paths.extend([append(&stem, ".sig"), append(&stem, ".json"), append(&stem, ".json.sig")]);
    }
    paths.retain(|p| p.exists());
    paths
}

/// `(role, CERT.json.<role>-<n>)` for every countersignature statement beside `cert`.
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

fn check_countersignature(
    cert_bytes: &[u8],
    cert_sha256: &str,
    cert: Option<&Certificate>,
    role: &str,
    stem: &Path,
    allowed: Option<&AllowedSigners>,
) -> SignatureCheck {
    let statement_path = append(stem, ".json");
    let over_cert = append(stem, ".sig");
    let result = (|| {
        let statement_bytes = read(&statement_path).map_err(|e| e.to_string())?;
        let statement: Statement = super::canonical::parse(&statement_bytes)
            .map_err(|e| format!("statement {}: {e}", statement_path.display()))?;
        let signed_at =
            humantime::parse_rfc3339(&statement.signed_at).map_err(|e| format!("statement time: {e}"))?;
        let signers = allowed.map(|allowed| Signers { allowed, at: signed_at });
        let statement_sig = std::fs::read_to_string(append(&statement_path, ".sig"))
            .map_err(|e| format!("statement signature missing: {e}"))?;
        let on_statement = sign::verify(&statement_bytes, &statement_sig, signers)
            .map_err(|e| format!("statement {}: {e}", statement_path.display()))?;
        let cert_sig =
            std::fs::read_to_string(&over_cert).map_err(|e| format!("{}: {e}", over_cert.display()))?;
        let on_cert = sign::verify(cert_bytes, &cert_sig, signers)
            .map_err(|e| format!("{}: {e}", over_cert.display()))?;
        if on_cert.public_key != on_statement.public_key {
            return Err("the statement and the countersignature were made with different keys".to_string());
        }
        if statement.format != STATEMENT_FORMAT || statement.role.as_str() != role {
            return Err(format!("statement format or role does not match its file name ({role})"));
        }
        if statement.certificate_sha256 != cert_sha256 {
            return Err("the statement names other certificate bytes (SHA-256 differs)".to_string());
        }
        if cert.is_some_and(|c| c.certificate_id != statement.certificate_id) {
            return Err("the statement names another certificate id".to_string());
        }
        Ok((statement, on_cert))
    })();
    match result {
        Ok((statement, good)) => SignatureCheck {
            role: role.into(),
            file: over_cert,
            statement: Some(statement),
            result: Ok(good),
        },
        Err(why) => SignatureCheck { role: role.into(), file: over_cert, statement: None, result: Err(why) },
    }
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
/// certificate whose own signature or content does not check out: nobody should
/// put their name under a certificate that fails verification.
pub fn countersign(cert: &Path, signer: &Countersigner<'_>) -> Result<Vec<PathBuf>, CertError> {
    let checked = check_files(cert, None)?;
    if !checked.is_valid() {
        let mut why: Vec<String> = checked.problems.clone();
        why.extend(checked.signatures.iter().filter_map(|s| s.result.as_ref().err().cloned()));
        return Err(CertError::Invalid(why.join("; ")));
    }
    let bytes = read(cert)?;
    let certificate = checked.certificate.expect("a valid check has a certificate");
    let stem = (1..)
        .map(|n| append(cert, &format!(".{}-{n}", signer.role.as_str())))
        .find(|stem| !append(stem, ".json").exists() && !append(stem, ".sig").exists())
        .expect("some index is free");
    let statement = Statement {
        format: STATEMENT_FORMAT.into(),
        certificate_id: certificate.certificate_id,
        certificate_sha256: crate::stream::sha256_hex(&bytes),
        role: signer.role,
        name: signer.name.clone(),
        title: signer.title.clone(),
        organisation: signer.organisation.clone(),
        signed_at: crate::engine::report::now(),
        key_fingerprint: signer.key.fingerprint(),
    };
    let statement_bytes = super::canonical::to_bytes(&statement);
    let files = [append(&stem, ".sig"), append(&stem, ".json"), append(&stem, ".json.sig")];
    let contents = [
        signer.key.sign(&bytes)?.into_bytes(),
        statement_bytes.clone(),
        signer.key.sign(&statement_bytes)?.into_bytes(),
    ];
    for (file, content) in files.iter().zip(&contents) {
        write_new(file, content)?;
    }
    Ok(files.to_vec())
}
