//! The one judge of a certificate. Every command that shows, prints, files,
//! serves or relies on a certificate (`cert verify`, `cert show`, `cert pdf`,
//! `cert countersign`, `audit`, `ledger import`, `ledger verify`, `serve`)
//! asks [`judge`], and shows its verdict: a rule written here holds
//! everywhere, and no surface can find valid what another refuses.
//!
//! A certificate is judged with its countersignatures against:
//! - its own content: one reading (canonical form), the schema, the
//!   consistency rules ([`super::check`]);
//! - the trust list (allowed signers): each signature in its duty's namespace,
//!   by a key allowed that duty at the time it had to be valid;
//! - the clock: nothing dated in the future, no countersignature before the
//!   certificate; a key's validity is judged when a ledger first recorded the
//!   signature, else at the time the document claims (and said so);
//! - separation of duties: every signature its own key and its own person;
//! - when given, the ledger's medium it is filed under.

use std::time::{Duration, SystemTime};

use thiserror::Error;

use super::files::{Bundle, CounterParts, Part, Role, STATEMENT_FORMAT, Statement};
use super::model::Certificate;
use super::records::{Classification, MAX_NAME_CHARS, check_optional, check_text};
use super::sign::{self, AllowedSigners, Duty, GoodSignature, SignatureError, Signers};

/// How far a clock may be ahead before a time counts as in the future, and
/// how far a countersigner's clock may be behind the station's.
pub const CLOCK_TOLERANCE: Duration = Duration::from_secs(5 * 60);

/// The role name of the certificate's own signature.
pub const STATION: &str = "station";

/// Whom signatures are checked against.
#[derive(Clone, Copy)]
pub struct Trust<'a> {
    pub allowed: &'a AllowedSigners,
    /// The principal the station signature must be from (`ssh-keygen -I`), if any.
    pub station: Option<&'a str>,
}

/// What the ledger holds about the medium a certificate is to be filed under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    pub number: String,
    pub classification: Classification,
    pub serial: Option<String>,
}

/// Everything a certificate is judged against besides itself.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// `None`: signatures are checked for integrity only, and the verdict is
    /// at best "signer not checked".
    pub trust: Option<Trust<'a>>,
    pub now: SystemTime,
    /// The ledger's medium, when the certificate is being filed.
    pub registered: Option<&'a Registered>,
}

impl<'a> Context<'a> {
    /// Against `trust`, now, with no ledger medium.
    pub fn now(trust: Option<Trust<'a>>) -> Context<'a> {
        Context { trust, now: SystemTime::now(), registered: None }
    }
}

/// What a certificate's files add up to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every signature is good, by a signer allowed its duty, and the content is consistent.
    Valid,
    /// As valid, except that nobody's keys were checked against allowed signers:
    /// the bytes are intact, but anyone could have signed them.
    SignerNotChecked,
    Invalid,
}

/// The outcome of checking one signature.
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

/// Why one signature does not count.
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
    #[error("statement {path}: {source}")]
    StatementText { path: String, source: super::records::RecordsError },
    #[error("the statement and the countersignature were made with different keys")]
    KeysDiffer,
    #[error("the statement names key {named}, but it was signed with key {used}")]
    OtherKey { named: String, used: String },
    #[error("statement format or role does not match its file name ({0})")]
    RoleMismatch(String),
    #[error("the statement names other certificate bytes (SHA-256 differs)")]
    OtherBytes,
    #[error("the statement names another certificate id")]
    OtherCertificate,
    #[error("countersigned at {signed_at}, before the certificate was issued ({issued_at})")]
    BeforeIssue { signed_at: String, issued_at: String },
    #[error("countersigned at {0}, which lies in the future")]
    InTheFuture(String),
    #[error("countersigned at {signed_at}, after the ledger recorded it ({recorded_at})")]
    AfterRecorded { signed_at: String, recorded_at: String },
    #[error(
        "signed with key {fingerprint}, which already signed this certificate as {role}: every signature on a certificate needs its own key"
    )]
    KeyAlreadySigned { fingerprint: String, role: String },
    #[error(
        "signed as principal {principal:?}, who already signed this certificate as {role}: separation of duties needs another person"
    )]
    PrincipalAlreadySigned { principal: String, role: String },
    #[error(
        "the statement names {name:?}, who already appears on this certificate as {role}: separation of duties needs another person"
    )]
    NameAlreadySigned { name: String, role: String },
}

/// Everything the judge found.
#[derive(Debug)]
pub struct Judgement {
    pub certificate: Option<Certificate>,
    pub sha256: String,
    pub signatures: Vec<SignatureCheck>,
    /// What makes the certificate invalid besides its signatures.
    pub problems: Vec<String>,
    /// What the verdict rests on that a reader should know (a time the signer chose).
    pub notes: Vec<String>,
    /// Whether signers were checked against an allowed-signers list.
    pub signers_checked: bool,
}

impl Judgement {
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

    /// The certificate, only when the verdict is valid: the one way to rely
    /// on what a certificate says.
    pub fn valid_certificate(&self) -> Option<&Certificate> {
        self.certificate.as_ref().filter(|_| self.is_valid())
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

/// Judges `bundle` in `context`; see the module's documentation.
pub fn judge(bundle: &Bundle, context: &Context<'_>) -> Judgement {
    let bytes = &bundle.certificate;
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let certificate = match Certificate::parse(bytes) {
        Ok(cert) => {
            problems.extend(super::check::inconsistencies(&cert));
            Some(cert)
        }
        Err(error) => {
            problems.push(error.to_string());
            None
        }
    };
    let issued_at = certificate.as_ref().and_then(|c| humantime::parse_rfc3339(&c.issued_at).ok());
    if let Some(issued_at) = issued_at {
        problems.extend(issue_time_problems(issued_at, bundle.recorded_at, context.now));
    }
    let sha256 = crate::stream::sha256_hex(bytes);
    let mut signatures = Vec::new();
    match station_signature(bundle, issued_at, context, &mut notes) {
        Some(check) => signatures.push(check),
        None => {
            problems.push(format!("no signature {}: the certificate is unsigned", bundle.signature.label))
        }
    }
    let certificate_facts = certificate.as_ref().map(|c| (c.certificate_id.as_str(), issued_at));
    for parts in &bundle.countersignatures {
        let check = countersignature(bytes, &sha256, certificate_facts, parts, context);
        if let (Ok(_), None, Ok(armored)) =
            (&check.result, parts.recorded_at, parts.certificate_signature.text())
        {
            let duty = Role::from_name(&parts.role).map_or(Duty::Witness, Role::duty);
            notes.extend(retired_since(
                bytes,
                &armored,
                duty,
                &Context { trust: context.trust.map(|t| Trust { station: None, ..t }), ..*context },
            ));
        }
        signatures.push(check);
    }
    if context.trust.is_some() && bundle.countersignatures.iter().any(|c| c.recorded_at.is_none()) {
        notes.push(
            "each countersigner's key is judged at the signing time its statement claims; a ledger judges it when it files the countersignature"
                .into(),
        );
    }
    separate_duties(&mut signatures);
    separate_names(certificate.as_ref().and_then(|c| c.records.operator.name.as_deref()), &mut signatures);
    if let (Some(cert), Some(registered)) = (&certificate, context.registered) {
        problems.extend(registered_problems(cert, registered));
    }
    Judgement { certificate, sha256, signatures, problems, notes, signers_checked: context.trust.is_some() }
}

/// A certificate issued in the future, or after a ledger recorded it.
fn issue_time_problems(
    issued_at: SystemTime,
    recorded_at: Option<SystemTime>,
    now: SystemTime,
) -> Vec<String> {
    let mut problems = Vec::new();
    if issued_at > now + CLOCK_TOLERANCE {
        problems.push(format!("issued_at {} lies in the future", stamp(issued_at)));
    }
    if let Some(recorded) = recorded_at.filter(|r| issued_at > *r + CLOCK_TOLERANCE) {
        problems.push(format!(
            "issued_at {} is after the ledger recorded the certificate ({})",
            stamp(issued_at),
            stamp(recorded)
        ));
    }
    problems
}

fn stamp(time: SystemTime) -> String {
    humantime::format_rfc3339_seconds(time).to_string()
}

/// The station's signature, with its key judged when the ledger recorded the
/// certificate, else at its claimed issue time (noted). `None` when unsigned.
fn station_signature(
    bundle: &Bundle,
    issued_at: Option<SystemTime>,
    context: &Context<'_>,
    notes: &mut Vec<String>,
) -> Option<SignatureCheck> {
    let armored = bundle.signature.text().ok()?;
    let at = bundle.recorded_at.or(issued_at).unwrap_or(context.now);
    if context.trust.is_some() && bundle.recorded_at.is_none() {
        notes.push(format!(
            "the station key is judged at the issue time the certificate claims ({}), which its signer wrote; a ledger judges it when it files the certificate",
            stamp(at)
        ));
    }
    let signers = context.trust.map(|trust| Signers { allowed: trust.allowed, at, principal: trust.station });
    let label = bundle.signature.label.clone();
    let result = sign::verify(&bundle.certificate, &armored, Duty::Station, signers)
        .map_err(|source| SignatureProblem::Signature { path: label.clone(), source });
    if result.is_ok() && bundle.recorded_at.is_none() {
        notes.extend(retired_since(&bundle.certificate, &armored, Duty::Station, context));
    }
    Some(SignatureCheck { role: STATION.into(), label, statement: None, result })
}

/// A loud note when a loose signature's key is valid at the time the document
/// claims but not now: a key retired (perhaps because it leaked) could have
/// signed it since and dated it back, which only a ledger that filed it in
/// time can rule out.
fn retired_since(bytes: &[u8], armored: &str, duty: Duty, context: &Context<'_>) -> Option<String> {
    let trust = context.trust?;
    let now = Signers { allowed: trust.allowed, at: context.now, principal: trust.station };
    match sign::verify(bytes, armored, duty, Some(now)) {
        Err(SignatureError::NotAllowed { fingerprint, .. }) => Some(format!(
            "WARNING: the {duty} key {fingerprint} is no longer valid now; this file claims it was signed while it was, which only a ledger that filed it then can confirm (ledger verify, or the records office's page)"
        )),
        _ => None,
    }
}

/// One countersignature: its statement (canonical, naming these bytes, this
/// id, its own key, visible text, a sane time) and both its signatures, by one
/// key allowed the role's duty at the time it had to be valid.
fn countersignature(
    cert_bytes: &[u8],
    cert_sha256: &str,
    certificate: Option<(&str, Option<SystemTime>)>,
    parts: &CounterParts,
    context: &Context<'_>,
) -> SignatureCheck {
    let role = parts.role.as_str();
    let result = (|| {
        let statement_bytes = parts.statement.get()?;
        let statement: Statement = super::canonical::parse(statement_bytes)
            .map_err(|source| SignatureProblem::Statement { path: parts.statement.label.clone(), source })?;
        let Some(duty) = Role::from_name(role).map(Role::duty) else {
            return Err(SignatureProblem::RoleMismatch(role.to_string()));
        };
        if statement.format != STATEMENT_FORMAT || statement.role.as_str() != role {
            return Err(SignatureProblem::RoleMismatch(role.to_string()));
        }
        statement_text(&statement).map_err(|source| SignatureProblem::StatementText {
            path: parts.statement.label.clone(),
            source,
        })?;
        let signed_at =
            humantime::parse_rfc3339(&statement.signed_at).map_err(|_| SignatureProblem::StatementTime {
                path: parts.statement.label.clone(),
                time: statement.signed_at.clone(),
            })?;
        countersignature_time(
            signed_at,
            certificate.and_then(|(_, issued)| issued),
            parts.recorded_at,
            context,
        )?;
        let at = parts.recorded_at.unwrap_or(signed_at);
        let signers = context.trust.map(|trust| Signers { allowed: trust.allowed, at, principal: None });
        let verify = |bytes: &[u8], part: &Part| {
            sign::verify(bytes, &part.text()?, duty, signers)
                .map_err(|source| SignatureProblem::Signature { path: part.label.clone(), source })
        };
        let on_statement = verify(statement_bytes, &parts.statement_signature)?;
        let on_cert = verify(cert_bytes, &parts.certificate_signature)?;
        if on_cert.public_key != on_statement.public_key {
            return Err(SignatureProblem::KeysDiffer);
        }
        if statement.key_fingerprint != on_cert.fingerprint {
            return Err(SignatureProblem::OtherKey {
                named: statement.key_fingerprint.clone(),
                used: on_cert.fingerprint.clone(),
            });
        }
        if statement.certificate_sha256 != cert_sha256 {
            return Err(SignatureProblem::OtherBytes);
        }
        if certificate.is_some_and(|(id, _)| id != statement.certificate_id) {
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

/// A statement's names are records like any other: visible text, bounded.
fn statement_text(statement: &Statement) -> Result<(), super::records::RecordsError> {
    check_text("name", &statement.name, MAX_NAME_CHARS)?;
    check_optional("title", statement.title.as_deref(), MAX_NAME_CHARS)?;
    check_optional("organisation", statement.organisation.as_deref(), MAX_NAME_CHARS)
}

/// Nobody countersigns what was not issued yet, in the future, or after the
/// ledger recorded the countersignature.
fn countersignature_time(
    signed_at: SystemTime,
    issued_at: Option<SystemTime>,
    recorded_at: Option<SystemTime>,
    context: &Context<'_>,
) -> Result<(), SignatureProblem> {
    if let Some(issued_at) = issued_at.filter(|issued| signed_at + CLOCK_TOLERANCE < *issued) {
        return Err(SignatureProblem::BeforeIssue {
            signed_at: stamp(signed_at),
            issued_at: stamp(issued_at),
        });
    }
    if signed_at > context.now + CLOCK_TOLERANCE {
        return Err(SignatureProblem::InTheFuture(stamp(signed_at)));
    }
    if let Some(recorded_at) = recorded_at.filter(|recorded| signed_at > *recorded + CLOCK_TOLERANCE) {
        return Err(SignatureProblem::AfterRecorded {
            signed_at: stamp(signed_at),
            recorded_at: stamp(recorded_at),
        });
    }
    Ok(())
}

/// No key and no person may sign one certificate twice: the station cannot
/// witness or approve its own work, and one person holds one role. A person is
/// every principal the allowed signers name for the key, on any line.
/// Signatures keep their place in the order they were made (the station's
/// first, then countersignatures by their statements' signing time); a later
/// one that repeats a key or a principal fails.
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
            clash(role, fingerprint, principals, &good.fingerprint, good.identities())
        });
        match clash {
            Some(problem) => signature.result = Err(problem),
            None => seen.push((signature.role.clone(), good.fingerprint.clone(), good.identities().to_vec())),
        }
    }
}

/// Keys are not people: one person with two keys, or a countersigner who is
/// the operator, is caught by the names the records give. The names compare
/// as people read them (case, spacing and look-alike letters aside), in the
/// order the signatures were made; a later statement naming someone already on
/// the certificate fails.
fn separate_names(operator: Option<&str>, signatures: &mut [SignatureCheck]) {
    let mut seen: Vec<(String, String)> =
        operator.map(|name| (name.to_string(), "operator".to_string())).into_iter().collect();
    let mut order: Vec<usize> =
        (0..signatures.len()).filter(|&i| signatures[i].statement.is_some()).collect();
    order.sort_by_key(|&i| (signatures[i].statement.as_ref().map(|st| st.signed_at.clone()), i));
    for i in order {
        let signature = &mut signatures[i];
        let (Ok(_), Some(statement)) = (&signature.result, &signature.statement) else { continue };
        let name = statement.name.clone();
        match seen.iter().find(|(earlier, _)| crate::text::same_person(earlier, &name)) {
            Some((_, role)) => {
                signature.result = Err(SignatureProblem::NameAlreadySigned { name, role: role.clone() })
            }
            None => seen.push((name, signature.role.clone())),
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

/// What filing `cert` under `registered` would break (see [`filing_problems`]).
pub fn registered_problems(cert: &Certificate, registered: &Registered) -> Vec<String> {
    filing_problems(registered, &cert.records, cert.medium.serial.as_deref())
}

/// What filing a sanitization with `records` of a medium whose serial is
/// `serial` under `registered` would break: another ledger number, another
/// serial, a level below the medium's, or a destination its level forbids.
/// The same rules are checked before a wipe that will be filed and when its
/// certificate is filed.
pub fn filing_problems(
    registered: &Registered,
    records: &super::records::Records,
    serial: Option<&str>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(asset) = records.asset_number.as_deref().filter(|a| *a != registered.number) {
        problems.push(format!(
            "the certificate names ledger number {asset}, but it would be filed under {}",
            registered.number
        ));
    }
    if let (Some(registered_serial), Some(certified)) = (registered.serial.as_deref(), serial)
        && registered_serial != certified
    {
        problems.push(format!(
            "medium {} is registered with serial {registered_serial}, but the certificate is for serial {certified}",
            registered.number
        ));
    }
    problems.extend(level_problems(
        &registered.number,
        registered.classification,
        records.classification_before,
        records.classification_after,
        records.destination,
    ));
    problems
}

/// The no-downgrade and no-release rules for a medium held at `held`: no
/// level recorded below it, and no destination the higher of the levels
/// forbids. Shared by the judge and by the check made before a wipe.
pub fn level_problems(
    number: &str,
    held: Classification,
    before: Option<Classification>,
    after: Option<Classification>,
    destination: Option<super::records::Destination>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for level in [before, after].into_iter().flatten().filter(|level| *level < held) {
        problems.push(format!(
            "medium {number} is {} ({}): its classification can never be lowered (to {})",
            held.english(),
            held.chinese(),
            level.english()
        ));
    }
    let level = before.max(after).unwrap_or(held).max(held);
    if let Some(destination) = destination.filter(|d| !d.allowed_for(level)) {
        problems.push(format!(
            "medium {number} is {} ({}): it may not go to {}; classified media are never reused or released — destruction is required (or the manufacturer, for supervised repair)",
            level.english(),
            level.chinese(),
            destination.as_str()
        ));
    }
    problems
}

/// Judges a certificate file and everything beside it, now.
pub fn judge_files(path: &std::path::Path, trust: Option<Trust<'_>>) -> Result<Judgement, super::CertError> {
    Ok(judge(&Bundle::from_files(path)?, &Context::now(trust)))
}
