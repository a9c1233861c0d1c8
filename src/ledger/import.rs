//! Filing certificates: each is judged (the one judge, against the trust
//! root, as of the time it is filed, for the medium it is filed under) before
//! a row is written; a certificate already filed gains only countersignatures,
//! judged together with those filed before.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::store::{CertificateRow, CountersignatureRow, EntryRow, Tx};
use super::{Imported, LedgerError, Writer, rules};
use crate::cert::Certificate;
use crate::cert::files::{Bundle, CounterParts, Part};
use crate::cert::judge::{self, Context, Judgement, SignatureCheck, Trust};
use crate::cert::sign::GoodSignature;

pub(super) fn import(
    tx: &mut dyn Tx,
    writer: &Writer<'_>,
    bundle: &Bundle,
    label: &str,
) -> Result<Imported, LedgerError> {
    let bad = |why: String| LedgerError::Certificate { path: label.to_string(), why };
    let now = SystemTime::now();
    let cert = Certificate::parse(&bundle.certificate).map_err(|e| bad(format!("does not verify: {e}")))?;
    let sha256 = crate::stream::sha256_hex(&bundle.certificate);
    if let Some(row) = tx.certificate(&cert.certificate_id)? {
        if row.sha256 != sha256 {
            return Err(LedgerError::IdTaken { id: cert.certificate_id, number: row.number });
        }
        return import_countersignatures(tx, writer, &row, bundle, label, now);
    }
    let found = rules::find_medium(tx, cert.records.asset_number.as_deref(), cert.medium.serial.as_deref())?;
    let Some(medium) = found else {
        return Err(bad(format!(
            "no ledger entry matches its asset number ({}) or serial ({}); register the medium first",
            cert.records.asset_number.as_deref().unwrap_or("none"),
            cert.medium.serial.as_deref().unwrap_or("none")
        )));
    };
    if writer.trusted(tx, &medium.number)?.is_destroyed() {
        return Err(LedgerError::AlreadyDestroyed(medium.number));
    }
    let mut filed = bundle.clone();
    filed.recorded_at = Some(now);
    for counter in &mut filed.countersignatures {
        counter.recorded_at = Some(now);
    }
    let registered = rules::registered(&medium);
    let context = Context {
        trust: Some(Trust { allowed: writer.anchor, station: None }),
        now,
        registered: Some(&registered),
    };
    let judgement = judge::judge(&filed, &context);
    let Some(cert) = judgement.valid_certificate() else {
        return Err(bad(format!("does not verify: {}", judgement.reasons().join("; "))));
    };
    let number = medium.number.clone();
    tx.insert_certificate(&CertificateRow {
        certificate_id: cert.certificate_id.clone(),
        number: number.clone(),
        sha256: judgement.sha256.clone(),
        json: bundle.certificate.clone(),
        signature: bundle
            .signature
            .bytes
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default(),
    })?;
    let mut summary = certificate_summary(cert, &judgement.sha256);
    summary["signer"] =
        signer_value(judgement.station().expect("a valid certificate has a station signature"));
    writer.append(tx, &number, "certificate", &summary)?;
    let level = rules::raised_level(&medium, &cert.records);
    let raised_to = (level > medium.classification).then_some(level);
    if let Some(to) = raised_to {
        tx.set_classification(&number, to)?;
        let data = json!({"from": medium.classification, "to": to, "certificate_id": cert.certificate_id});
        writer.append(tx, &number, "reclassify", &data)?;
    }
    let counters: Vec<_> = judgement.signatures.iter().skip(1).zip(&bundle.countersignatures).collect();
    let count = counters.len();
    record_countersignatures(tx, writer, &number, &cert.certificate_id, &counters)?;
    Ok(Imported { number, countersignatures: count, raised_to })
}

/// A certificate filed before, brought again: the countersignatures it did
/// not have are judged together with the ones filed (a person or key already
/// on it cannot sign again in another role) and recorded.
fn import_countersignatures(
    tx: &mut dyn Tx,
    writer: &Writer<'_>,
    row: &CertificateRow,
    bundle: &Bundle,
    label: &str,
    now: SystemTime,
) -> Result<Imported, LedgerError> {
    let mut merged = filed_bundle_of(tx, row)?;
    let known = merged.countersignatures.len();
    let fresh = bundle
        .countersignatures
        .iter()
        .filter(|c| !merged.countersignatures.iter().any(|k| k.statement.bytes == c.statement.bytes))
        .map(|c| CounterParts { recorded_at: Some(now), ..c.clone() })
        .collect::<Vec<_>>();
    if fresh.is_empty() {
        return Err(LedgerError::AlreadyImported(row.certificate_id.clone()));
    }
    merged.countersignatures.extend(fresh);
    writer.trusted(tx, &row.number)?;
    let context = Context::now(Some(Trust { allowed: writer.anchor, station: None }));
    let judgement = judge::judge(&merged, &Context { now, ..context });
    if !judgement.is_valid() {
        return Err(LedgerError::Certificate {
            path: label.to_string(),
            why: format!(
                "does not verify with the countersignatures filed before: {}",
                judgement.reasons().join("; ")
            ),
        });
    }
    let counters: Vec<_> =
        judgement.signatures.iter().skip(1 + known).zip(&merged.countersignatures[known..]).collect();
    let count = counters.len();
    record_countersignatures(tx, writer, &row.number, &row.certificate_id, &counters)?;
    Ok(Imported { number: row.number.clone(), countersignatures: count, raised_to: None })
}

/// Records countersignatures the judge found good: their files' bytes, and an
/// entry naming the statement (and its SHA-256) and who signed it.
fn record_countersignatures(
    tx: &mut dyn Tx,
    writer: &Writer<'_>,
    number: &str,
    certificate_id: &str,
    counters: &[(&SignatureCheck, &CounterParts)],
) -> Result<(), LedgerError> {
    let text = |part: &Part| {
        part.bytes.as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default()
    };
    for (check, parts) in counters {
        let (Some(statement), Ok(good)) = (&check.statement, &check.result) else {
            unreachable!("only a valid judgement's countersignatures are recorded")
        };
        let statement_bytes = parts.statement.bytes.clone().unwrap_or_default();
        let mut data = serde_json::to_value(statement).expect("serializes");
        data["statement_sha256"] = crate::stream::sha256_hex(&statement_bytes).into();
        data["signer"] = signer_value(good);
        // The entry first: the history it is checked against holds the
        // countersignatures filed so far, each with its entry.
        writer.append(tx, number, "countersignature", &data)?;
        tx.insert_countersignature(&CountersignatureRow {
            certificate_id: certificate_id.to_string(),
            role: parts.role.clone(),
            statement: statement_bytes,
            statement_signature: text(&parts.statement_signature),
            certificate_signature: text(&parts.certificate_signature),
        })?;
    }
    Ok(())
}

fn signer_value(good: &GoodSignature) -> Value {
    json!({"principals": good.principals(), "fingerprint": good.fingerprint})
}

fn certificate_summary(cert: &Certificate, sha256: &str) -> Value {
    let s = &cert.sanitization;
    json!({
        "certificate_id": cert.certificate_id,
        "sha256": sha256,
        "model": cert.medium.model,
        "serial": cert.medium.serial,
        "status": s.status,
        "category": s.category,
        "method": s.method.id,
        "finished_at": s.finished_at,
        "verify_mode": s.verify_mode,
        "operator": cert.records.operator.name,
        "destination": cert.records.destination,
        "classification_before": cert.records.classification_before,
        "classification_after": cert.records.classification_after,
    })
}

/// A certificate as the ledger holds it, and what is wrong with how it got
/// there: rows in the database count only as far as the signed history
/// records them.
pub struct Filed {
    pub bundle: Bundle,
    /// Why the rows are not what the signed history records, if they are not.
    pub problems: Vec<String>,
}

impl Filed {
    /// The judge's verdict on the certificate, as of when it was filed, with
    /// every problem of its filing.
    pub fn judge(&self, anchor: Option<&crate::cert::sign::AllowedSigners>) -> Judgement {
        let mut judgement = judge_filed(&self.bundle, anchor);
        judgement.problems.extend(self.problems.iter().cloned());
        judgement
    }
}

/// A filed certificate by id, with its countersignatures, the times the ledger
/// recorded them, and what is wrong with their filing.
pub(super) fn filed(
    tx: &mut dyn Tx,
    anchor: Option<&crate::cert::sign::AllowedSigners>,
    certificate_id: &str,
) -> Result<Option<Filed>, LedgerError> {
    let Some(row) = tx.certificate(certificate_id)? else { return Ok(None) };
    let counters = tx.countersignatures(Some(certificate_id))?;
    let history = tx.entries(Some(&row.number))?;
    let bundle = bundle_of(&row, &counters, &history);
    let ledger_id = super::trust::configured(tx).ok().flatten().map(|c| c.ledger_id).unwrap_or_default();
    let mut problems = row_problems(&row, &counters, &history);
    for e in entries_about(&history, certificate_id) {
        if !super::chain::hash_matches(e) {
            problems.push(format!("its ledger entry {} was altered", e.seq));
        }
        problems.extend(super::trust::signature_problem(e, &ledger_id, anchor, super::chain::entry_time(e)));
    }
    Ok(Some(Filed { bundle, problems }))
}

/// The certificate and countersignature entries of `history` about certificate `id`.
fn entries_about<'h>(history: &'h [EntryRow], id: &'h str) -> impl Iterator<Item = &'h EntryRow> {
    history.iter().filter(move |e| {
        matches!(e.kind.as_str(), "certificate" | "countersignature")
            && serde_json::from_str::<Value>(&e.data).is_ok_and(|d| d["certificate_id"].as_str() == Some(id))
    })
}

/// Whether the history's entries say what the stored rows hold: one
/// certificate entry with the certificate's bytes and what it says (status,
/// category, level, ...), and one countersignature entry per stored
/// statement, naming it and its role and signer. An entry signed by hand
/// with a writer's key cannot claim what no filed document says.
pub(super) fn row_problems(
    row: &CertificateRow,
    counters: &[CountersignatureRow],
    history: &[EntryRow],
) -> Vec<String> {
    let mut problems = Vec::new();
    let about = |kind: &str| -> Vec<(&EntryRow, Value)> {
        entries_about(history, &row.certificate_id)
            .filter(|e| e.kind == kind)
            .filter_map(|e| serde_json::from_str::<Value>(&e.data).ok().map(|d| (e, d)))
            .collect()
    };
    match about("certificate").as_slice() {
        [] => problems.push(
            "no signed ledger entry records this certificate: it was put into the database by hand".into(),
        ),
        [(_, data)] if data["sha256"].as_str() != Some(row.sha256.as_str()) => {
            problems.push("its bytes are not those its ledger entry records".into())
        }
        [(entry, data)] => problems.extend(summary_problem(row, entry, data)),
        _ => problems.push("it is recorded by more than one certificate entry".into()),
    }
    let recorded = about("countersignature");
    if recorded.len() != counters.len() {
        problems.push(format!(
            "{} countersignatures are stored, {} recorded by signed ledger entries",
            counters.len(),
            recorded.len()
        ));
    }
    for (counter, (entry, data)) in counters.iter().zip(&recorded) {
        let named = data["statement_sha256"].as_str();
        let statement: Value = serde_json::from_slice(&counter.statement).unwrap_or(Value::Null);
        let same = |field: &str| statement[field] == data[field];
        if named.is_some_and(|sha| sha != crate::stream::sha256_hex(&counter.statement))
            || !same("role")
            || !same("name")
        {
            problems.push(format!("countersignature of entry {} is not the statement it records", entry.seq));
        }
    }
    problems
}

/// Where a certificate entry says other than the certificate it names: each
/// field the entry gives must be the certificate's.
fn summary_problem(row: &CertificateRow, entry: &EntryRow, data: &Value) -> Option<String> {
    let Ok(cert) = Certificate::parse(&row.json) else {
        return Some("the stored certificate cannot be read".into());
    };
    let summary = certificate_summary(&cert, &row.sha256);
    let differs: Vec<&String> = summary
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(field, value)| data.get(field.as_str()).is_some_and(|given| given != *value))
        .map(|(field, _)| field)
        .collect();
    (!differs.is_empty()).then(|| {
        format!(
            "its ledger entry {} says other than the certificate about {}",
            entry.seq,
            differs.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
        )
    })
}

fn filed_bundle_of(tx: &mut dyn Tx, row: &CertificateRow) -> Result<Bundle, LedgerError> {
    let counters = tx.countersignatures(Some(&row.certificate_id))?;
    let history = tx.entries(Some(&row.number))?;
    Ok(bundle_of(row, &counters, &history))
}

/// A filed certificate and its countersignatures, as a bundle to judge, each
/// with the time of the entry that recorded it (the k-th countersignature of a
/// certificate was recorded by its k-th countersignature entry).
pub(super) fn bundle_of(
    row: &CertificateRow,
    counters: &[CountersignatureRow],
    history: &[EntryRow],
) -> Bundle {
    let id = &row.certificate_id;
    let about_it = |kind: &'static str| {
        history.iter().filter(move |e| {
            e.kind == kind
                && serde_json::from_str::<Value>(&e.data)
                    .is_ok_and(|d| d["certificate_id"].as_str() == Some(id))
        })
    };
    let recorded_at = about_it("certificate").next().map(super::chain::entry_time);
    let mut counter_times = about_it("countersignature").map(super::chain::entry_time);
    let part = |label: String, bytes: Vec<u8>| Part { label, bytes: Some(bytes) };
    Bundle {
        certificate: row.json.clone(),
        signature: part(
            format!("ledger: certificate {id}, station signature"),
            row.signature.clone().into_bytes(),
        ),
        countersignatures: counters
            .iter()
            .enumerate()
            .map(|(n, c)| CounterParts {
                role: c.role.clone(),
                statement: part(
                    format!("ledger: certificate {id}, {} statement {}", c.role, n + 1),
                    c.statement.clone(),
                ),
                statement_signature: part(
                    format!("ledger: certificate {id}, {} statement signature {}", c.role, n + 1),
                    c.statement_signature.clone().into_bytes(),
                ),
                certificate_signature: part(
                    format!("ledger: certificate {id}, {} signature {}", c.role, n + 1),
                    c.certificate_signature.clone().into_bytes(),
                ),
                recorded_at: counter_times.next(),
            })
            .collect(),
        recorded_at,
    }
}

/// The judge's verdict on a filed certificate, as of when it was filed.
pub(super) fn judge_filed(bundle: &Bundle, anchor: Option<&crate::cert::sign::AllowedSigners>) -> Judgement {
    judge::judge(bundle, &Context::now(anchor.map(|allowed| Trust { allowed, station: None })))
}
