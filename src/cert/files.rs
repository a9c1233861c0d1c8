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
use thiserror::Error;

use super::sign::{self, AllowedSigners, GoodSignature, SignatureError, Signers, SigningKey};
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

/// Reads a certificate or statement; one too large to be real is refused
/// unread, as a document that does not verify.
fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    use crate::input::InputError;
    crate::input::read_regular(path, crate::input::DOCUMENT).map_err(|error| match error {
        too_large @ InputError::TooLarge { .. } => CertError::Invalid(format!("{}: {too_large}", path.display())),
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
    /// Which file (or ledger record) holds the signature.
    pub label: String,
    /// The countersigner's statement, when this is a countersignature.
    pub statement: Option<Statement>,
    pub result: Result<GoodSignature, SignatureProblem>,
}

/// Why one signature file does not count.
#[derive(Debug, Error)]
pub enum SignatureProblem {
    #[error("{0}: missing or unreadable")]
    Missing(String),
    #[error("{path}: {source}")]
    Signature { path: String, source: SignatureError },
    #[error("statement {path}: {source}")]
    Statement { path: String, source: super::canonical::CanonicalError },
    #[error("statement {path}: its time {time:?} is not an RFC 3339 time")]
    StatementTime { path: String, time: String },
    #[error("the statement and the countersignature were made with different keys")]
    KeysDiffer,
    #[error("statement format or role does not match its file name ({0})")]
    RoleMismatch(String),
    #[error("the statement names other certificate bytes (SHA-256 differs)")]
    OtherBytes,
    #[error("the statement names another certificate id")]
    OtherCertificate,
    #[error(
        "signed with key {fingerprint}, which already signed this certificate as {role}: every signature on a certificate needs its own key"
    )]
    KeyAlreadySigned { fingerprint: String, role: String },
    #[error(
        "signed as principal {principal:?}, who already signed this certificate as {role}: separation of duties needs another person"
    )]
    PrincipalAlreadySigned { principal: String, role: String },
}

/// Whom signatures are checked against.
#[derive(Clone, Copy)]
pub struct Trust<'a> {
    pub allowed: &'a AllowedSigners,
    /// The principal the station signature must be from (`ssh-keygen -I`), if any.
    pub station: Option<&'a str>,
}

/// What a certificate's files add up to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every signature is good, by an allowed signer, and the content is consistent.
    Valid,
    /// As valid, except that nobody's keys were checked against allowed signers:
    /// the bytes are intact, but anyone could have signed them.
    SignerNotChecked,
    Invalid,
}

/// Everything `cert verify` found.
#[derive(Debug)]
pub struct Checked {
    pub certificate: Option<Certificate>,
    pub sha256: String,
    pub signatures: Vec<SignatureCheck>,
    pub problems: Vec<String>,
    /// Whether signers were checked against an allowed-signers list.
    pub signers_checked: bool,
}

impl Checked {
    pub fn verdict(&self) -> Verdict {
        let intact = self.problems.is_empty()
            && !self.signatures.is_empty()
            && self.signatures.iter().all(|s| s.result.is_ok());
        match (intact, self.signers_checked) {
            (false, _) => Verdict::Invalid,
            (true, true) => Verdict::Valid,
            (true, false) => Verdict::SignerNotChecked,
        }
    }

    pub fn is_valid(&self) -> bool {
        self.verdict() == Verdict::Valid
    }

    /// Every reason the certificate does not verify, one sentence each.
    pub fn reasons(&self) -> Vec<String> {
        let mut why = self.problems.clone();
        why.extend(self.signatures.iter().filter_map(|s| s.result.as_ref().err().map(|e| e.to_string())));
        if why.is_empty() && !self.signers_checked {
            why.push("the signer was not checked: no allowed signers were given".to_string());
        }
        why
    }

    /// The station signature, when it checked out.
    pub fn station(&self) -> Option<&GoodSignature> {
        self.signatures.iter().find(|s| s.role == STATION).and_then(|s| s.result.as_ref().ok())
    }
}

/// The role name of the certificate's own signature.
pub const STATION: &str = "station";

/// A document's part: where it comes from (a file, a ledger record) and its
/// bytes, or `None` when it is missing or unreadable.
#[derive(Clone, Debug)]
pub struct Part {
    pub label: String,
    pub bytes: Option<Vec<u8>>,
}

impl Part {
    fn read(path: &Path) -> Part {
        Part { label: path.display().to_string(), bytes: crate::input::read_regular(path, crate::input::DOCUMENT).ok() }
    }

    fn get(&self) -> Result<&[u8], SignatureProblem> {
        self.bytes.as_deref().ok_or_else(|| SignatureProblem::Missing(self.label.clone()))
    }

    fn text(&self) -> Result<String, SignatureProblem> {
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
}

/// A certificate with every signature that belongs to it, as bytes: read from
/// the files beside each other, or from the ledger. Both are checked the same way.
#[derive(Clone, Debug)]
pub struct Bundle {
    pub certificate: Vec<u8>,
    pub signature: Part,
    pub countersignatures: Vec<CounterParts>,
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
            })
            .collect();
        Ok(Bundle { certificate, signature: Part::read(&signature_path(path)), countersignatures })
    }

    /// Checks the signature, every countersignature and the certificate's internal
    /// consistency. Without `trust`, signatures are checked for integrity only.
    pub fn check(&self, trust: Option<Trust<'_>>) -> Checked {
        let bytes = &self.certificate;
        let mut problems = Vec::new();
        let certificate = match Certificate::parse(bytes) {
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
        let issued_at = certificate.as_ref().and_then(|c| humantime::parse_rfc3339(&c.issued_at).ok());
        let station = trust.map(|trust| Signers {
            allowed: trust.allowed,
            at: issued_at.unwrap_or_else(SystemTime::now),
            principal: trust.station,
        });
        match self.signature.text() {
            Ok(armored) => signatures.push(SignatureCheck {
                role: STATION.into(),
                result: sign::verify(bytes, &armored, station).map_err(|source| {
                    SignatureProblem::Signature { path: self.signature.label.clone(), source }
                }),
                label: self.signature.label.clone(),
                statement: None,
            }),
            Err(_) => {
                problems.push(format!("no signature {}: the certificate is unsigned", self.signature.label))
            }
        }
        let sha256 = crate::stream::sha256_hex(bytes);
        for parts in &self.countersignatures {
            let allowed = trust.map(|t| t.allowed);
            signatures.push(check_countersignature(bytes, &sha256, certificate.as_ref(), parts, allowed));
        }
        separate_duties(&mut signatures);
        Checked { certificate, sha256, signatures, problems, signers_checked: trust.is_some() }
    }
}

/// Checks a certificate file and everything beside it (see [`Bundle::check`]).
pub fn check_files(path: &Path, trust: Option<Trust<'_>>) -> Result<Checked, CertError> {
    Ok(Bundle::from_files(path)?.check(trust))
}

/// No key and no principal may sign one certificate twice: the station cannot
/// witness or approve its own work, and one person holds one role. Signatures
/// keep their place in the order they were made (the station's first, then
/// countersignatures by their statements' signing time); a later one that
/// repeats a key or a principal fails.
fn separate_duties(signatures: &mut [SignatureCheck]) {
    let mut order: Vec<usize> = (0..signatures.len()).collect();
    order.sort_by_key(|&i| {
        let s = &signatures[i];
        (s.role != STATION, s.statement.as_ref().map(|st| st.signed_at.clone()), i)
    });
    let mut seen: Vec<(String, String, Vec<String>)> = Vec::new();
    for i in order {
        let signature = &mut signatures[i];
        let Ok(good) = &signature.result else { continue };
        let clash = seen.iter().find_map(|(role, fingerprint, principals)| {
            clash(role, fingerprint, principals, &good.fingerprint, good.principals())
        });
        match clash {
            Some(problem) => signature.result = Err(problem),
            None => seen.push((signature.role.clone(), good.fingerprint.clone(), good.principals().to_vec())),
        }
    }
}

/// Why a signature by key `fingerprint` for `principals` may not join one
/// already made in `role` by `earlier_fingerprint` for `earlier_principals`.
fn clash(
    role: &str,
    earlier_fingerprint: &str,
    earlier_principals: &[String],
    fingerprint: &str,
    principals: &[String],
) -> Option<SignatureProblem> {
    if earlier_fingerprint == fingerprint {
        return Some(SignatureProblem::KeyAlreadySigned {
            fingerprint: fingerprint.to_string(),
            role: role.to_string(),
        });
    }
    super::allowed_signers::shared_principal(earlier_principals, principals)
        .map(|principal| SignatureProblem::PrincipalAlreadySigned { principal, role: role.to_string() })
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
    parts: &CounterParts,
    allowed: Option<&AllowedSigners>,
) -> SignatureCheck {
    let role = parts.role.as_str();
    let result = (|| {
        let statement_bytes = parts.statement.get()?;
        let statement: Statement = super::canonical::parse(statement_bytes)
            .map_err(|source| SignatureProblem::Statement { path: parts.statement.label.clone(), source })?;
        let signed_at =
            humantime::parse_rfc3339(&statement.signed_at).map_err(|_| SignatureProblem::StatementTime {
                path: parts.statement.label.clone(),
                time: statement.signed_at.clone(),
            })?;
        let signers = allowed.map(|allowed| Signers { allowed, at: signed_at, principal: None });
        let verify = |bytes: &[u8], part: &Part| {
            sign::verify(bytes, &part.text()?, signers)
                .map_err(|source| SignatureProblem::Signature { path: part.label.clone(), source })
        };
        let on_statement = verify(statement_bytes, &parts.statement_signature)?;
        let on_cert = verify(cert_bytes, &parts.certificate_signature)?;
        if on_cert.public_key != on_statement.public_key {
            return Err(SignatureProblem::KeysDiffer);
        }
        if statement.format != STATEMENT_FORMAT || statement.role.as_str() != role {
            return Err(SignatureProblem::RoleMismatch(role.to_string()));
        }
        if statement.certificate_sha256 != cert_sha256 {
            return Err(SignatureProblem::OtherBytes);
        }
        if cert.is_some_and(|c| c.certificate_id != statement.certificate_id) {
            return Err(SignatureProblem::OtherCertificate);
        }
        Ok((statement, on_cert))
    })();
    let label = parts.certificate_signature.label.clone();
    match result {
        Ok((statement, good)) => {
            SignatureCheck { role: role.into(), label, statement: Some(statement), result: Ok(good) }
        }
        Err(why) => SignatureCheck { role: role.into(), label, statement: None, result: Err(why) },
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
pub fn countersign(
    cert: &Path,
    signer: &Countersigner<'_>,
    trust: Trust<'_>,
) -> Result<Vec<PathBuf>, CertError> {
    super::records::check_text("name", &signer.name, super::records::MAX_NAME_CHARS)?;
    super::records::check_optional("title", signer.title.as_deref(), super::records::MAX_NAME_CHARS)?;
    super::records::check_optional(
        "organisation",
        signer.organisation.as_deref(),
        super::records::MAX_NAME_CHARS,
    )?;
    // The bytes checked are the bytes countersigned.
    let bundle = Bundle::from_files(cert)?;
    let checked = bundle.check(Some(trust));
    if !checked.is_valid() {
        return Err(CertError::Invalid(checked.reasons().join("; ")));
    }
    // The countersignature must itself verify: a listed key, and no key or
    // principal already on the certificate.
    let public = signer.key.public_key();
    let fingerprint = signer.key.fingerprint();
    let principals = trust
        .allowed
        .authorize(&public, None, sign::NAMESPACE, SystemTime::now())
        .map_err(|why| {
            CertError::Countersign(SignatureProblem::Signature {
                path: "your key".into(),
                source: SignatureError::NotAllowed {
                    fingerprint: fingerprint.clone(),
                    at: crate::engine::report::now(),
                    why,
                },
            })
        })?
        .principals;
    for existing in &checked.signatures {
        let Ok(good) = &existing.result else { continue };
        if let Some(problem) =
            clash(&existing.role, &good.fingerprint, good.principals(), &fingerprint, &principals)
        {
            return Err(CertError::Countersign(problem));
        }
    }
    let bytes = &bundle.certificate;
    let certificate = checked.certificate.expect("a valid check has a certificate");
    let stem = (1..)
        .map(|n| append(cert, &format!(".{}-{n}", signer.role.as_str())))
        .find(|stem| !append(stem, ".json").exists() && !append(stem, ".sig").exists())
        .expect("some index is free");
    let statement = Statement {
        format: STATEMENT_FORMAT.into(),
        certificate_id: certificate.certificate_id,
        certificate_sha256: checked.sha256.clone(),
        role: signer.role,
        name: signer.name.clone(),
        title: signer.title.clone(),
        organisation: signer.organisation.clone(),
        signed_at: crate::engine::report::now(),
        key_fingerprint: fingerprint,
    };
    let statement_bytes = super::canonical::to_bytes(&statement);
    let files = [append(&stem, ".sig"), append(&stem, ".json"), append(&stem, ".json.sig")];
    let contents = [
        signer.key.sign(bytes)?.into_bytes(),
        statement_bytes.clone(),
        signer.key.sign(&statement_bytes)?.into_bytes(),
    ];
    for (file, content) in files.iter().zip(&contents) {
        write_new(file, content)?;
    }
    Ok(files.to_vec())
}
