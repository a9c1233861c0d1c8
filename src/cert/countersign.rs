//! Countersigning: a validator, witness or approver adds a signed statement
//! beside a certificate the judge finds valid, in files named after
//! [`STATEMENT`]; the statement is written last.

use std::path::{Path, PathBuf};

use super::files::{
    Bundle, CounterParts, Part, Role, STATEMENT, STATEMENT_FORMAT, Statement, append, write_new,
};
use super::judge::{self, Context, Trust};
use super::records::{MAX_NAME_CHARS, check_optional, check_text};
use super::sign::SigningKey;
use super::{CertError, canonical};

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
    let stem = free_stem(cert, signer.role)?;
    let statement = Statement {
        format: STATEMENT_FORMAT.into(),
        certificate_id,
        certificate_sha256: judgement.sha256.clone(),
        role: signer.role,
        name: signer.name.clone(),
        title: signer.title.clone(),
        organisation: signer.organisation.clone(),
        signed_at: crate::report::now(),
        key_fingerprint: signer.key.fingerprint(),
    };
    let statement_bytes = canonical::to_bytes(&statement);
    let duty = signer.role.duty();
    let certificate_signature = signer.key.sign(&bundle.certificate, duty)?;
    let statement_signature = signer.key.sign(&statement_bytes, duty)?;
    // The countersignature must itself pass the judge, with everything
    // already on the certificate, before a file is written.
    let label = |suffix: &str| append(&stem, suffix).display().to_string();
    let part = |suffix: &str, bytes: &[u8]| Part { label: label(suffix), bytes: Some(bytes.to_vec()) };
    let statement_sig = format!("{STATEMENT}.sig");
    bundle.countersignatures.push(CounterParts {
        role: signer.role.as_str().to_string(),
        statement: part(STATEMENT, &statement_bytes),
        statement_signature: part(&statement_sig, statement_signature.as_bytes()),
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
    let files = [append(&stem, ".sig"), append(&stem, &statement_sig), append(&stem, STATEMENT)];
    let contents = [certificate_signature.into_bytes(), statement_signature.into_bytes(), statement_bytes];
    for (file, content) in files.iter().zip(&contents) {
        write_new(file, content)?;
    }
    Ok(files.to_vec())
}

/// The stem of the first countersignature of `role` beside `cert` none of
/// whose files exist, under the current names or the old ones.
fn free_stem(cert: &Path, role: Role) -> Result<PathBuf, CertError> {
    let taken = |stem: &PathBuf| {
        [".json", ".json.sig", ".sig", STATEMENT, &format!("{STATEMENT}.sig")]
            .iter()
            .any(|suffix| append(stem, suffix).exists())
    };
    (1..=MAX_COUNTERSIGNATURES)
        .map(|n| append(cert, &format!(".{}-{n}", role.as_str())))
        .find(|stem| !taken(stem))
        .ok_or_else(|| {
            CertError::Invalid(format!(
                "{}: {MAX_COUNTERSIGNATURES} countersignatures of one role are the most certwipe makes",
                cert.display()
            ))
        })
}

/// More countersignatures of one role than anybody needs.
const MAX_COUNTERSIGNATURES: u32 = 100;
