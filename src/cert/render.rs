//! `cert show`: a certificate as a person reads it.

use std::fmt::Write;

use indicatif::HumanBytes;

use super::display::escape;
use super::judge::{Judgement as Checked, Verdict};
use super::model::{Certificate, Sanitization};
use super::records::{Person, Records};
use crate::device::Identity;
use crate::report::total_sectors;

/// The summary of `cert`; every text that came from the certificate is shown with
/// its hidden characters escaped, so it cannot forge lines of the summary.
pub fn summary(cert: &Certificate, checked: &Checked) -> String {
    let cert = &super::display::escaped(cert);
    let mut out = String::new();
    let s = &cert.sanitization;
    let _ = writeln!(out, "Destruction certificate {}", cert.certificate_id);
    let _ = writeln!(
        out,
        "  issued {} by {} {} on {}",
        cert.issued_at, cert.tool.name, cert.tool.version, cert.host
    );
    match checked.verdict() {
        Verdict::Valid => {
            let _ = writeln!(out, "\nVerdict: valid");
            let _ = writeln!(out, "Result: {} — {}", s.status.as_str().to_uppercase(), s.status_reason);
        }
        verdict => {
            let _ = writeln!(
                out,
                "\nVerdict: {}",
                if verdict == Verdict::Invalid {
                    "NOT VALID"
                } else {
                    "NOT verified (signatures intact, signer not checked: give --allowed-signers)"
                }
            );
            for reason in checked.reasons() {
                let _ = writeln!(out, "  why: {}", escape(&reason));
            }
            let _ = writeln!(
                out,
                "Result it claims (not to be relied on): {} — {}",
                s.status.as_str(),
                s.status_reason
            );
        }
    }
    let _ = writeln!(out, "  category {}, technique {}", s.category.as_str(), s.technique.as_str());
    medium_section(&mut out, &cert.medium);
    records_section(&mut out, &cert.records);
    sanitization_section(&mut out, s);
    signatures_section(&mut out, checked);
    out
}

fn or_dash(v: &Option<String>) -> String {
    v.clone().unwrap_or_else(|| "-".into())
}

fn medium_section(out: &mut String, m: &Identity) {
    let _ = writeln!(out, "\nMedium");
    let _ = writeln!(
        out,
        "  vendor {}, model {}, serial {}, firmware {}",
        or_dash(&m.vendor),
        or_dash(&m.model),
        or_dash(&m.serial),
        or_dash(&m.firmware)
    );
    let _ = writeln!(
        out,
        "  {} ({}, {}), {} = {} bytes, sectors {}/{}",
        m.path,
        m.transport,
        m.media_type,
        HumanBytes(m.size_bytes),
        m.size_bytes,
        m.logical_sector_size,
        m.physical_sector_size
    );
    for (_, label, value) in medium_rows(m) {
        let _ = writeln!(out, "  {label}: {value}");
    }
}

fn records_section(out: &mut String, r: &Records) {
    let _ = writeln!(out, "\nRecords");
    let _ = writeln!(out, "  organisation {}, site {}", or_dash(&r.organisation), or_dash(&r.site));
    let _ = writeln!(out, "  ledger/asset number {}", or_dash(&r.asset_number));
    let level = |c: Option<super::records::Classification>| {
        c.map(|c| format!("{} ({})", c.english(), c.chinese())).unwrap_or_else(|| "-".into())
    };
    let _ = writeln!(
        out,
        "  classification before {}, after {}",
        level(r.classification_before),
        level(r.classification_after)
    );
    let _ = writeln!(
        out,
        "  source {}, backed up {}{}, destination {}",
        or_dash(&r.media_source),
        r.data_backed_up,
        r.backup_location.as_ref().map(|l| format!(" ({l})")).unwrap_or_default(),
        r.destination.map_or("-", |d| d.as_str())
    );
    let _ = writeln!(out, "  operator {}", person(&r.operator));
    if let Some(notes) = &r.notes {
        let _ = writeln!(out, "  notes: {notes}");
    }
}

fn sanitization_section(out: &mut String, s: &Sanitization) {
    let _ =
        writeln!(out, "\nSanitization: {} ({}), {} round(s)", s.method.name, s.method.id, s.method.rounds);
    let _ = writeln!(out, "  source: {}", s.method.source);
    for pass in &s.passes {
        let content = &pass.content;
        let verified = pass
            .verification
            .as_ref()
            .map(|v| {
                format!(
                    ", verified {} {} ({:.1}%, {} mismatched, {} unreadable sectors)",
                    v.kind,
                    v.result,
                    v.coverage * 100.0,
                    total_sectors(&v.mismatches),
                    total_sectors(&v.unreadable)
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  pass {}: {content}, {} written, {} sectors unwritten{verified}",
            pass.index,
            HumanBytes(pass.bytes_written),
            total_sectors(&pass.unwritten)
        );
    }
    if let Some(firmware) = &s.firmware {
        for (_, label, value) in firmware_rows(firmware) {
            let _ = writeln!(out, "  {label}: {value}");
        }
    }
    let _ = writeln!(out, "  verification: verify {}, {}", s.verify_mode, s.verification.result);
    if let Some(digest) = &s.final_content_digest {
        let _ = writeln!(
            out,
            "  final content SHA-256 {}\n  final content BLAKE3  {}",
            digest.sha256, digest.blake3
        );
    }
    if !s.errors.is_empty() {
        let _ =
            writeln!(out, "  {} error(s) logged, {} more omitted", s.errors.entries.len(), s.errors.omitted);
    }
    for warning in &s.warnings {
        let _ = writeln!(out, "  warning: {warning}");
    }
}

fn signatures_section(out: &mut String, checked: &Checked) {
    let _ = writeln!(out, "\nSignatures (certificate SHA-256 {})", checked.sha256);
    for signature in &checked.signatures {
        let who = signature
            .statement
            .as_ref()
            .map(|st| {
                let title = st.title.as_deref().map(|t| format!(", {}", escape(t))).unwrap_or_default();
                format!(" {}{title}", escape(&st.name))
            })
            .unwrap_or_default();
        let role = escape(&signature.role);
        match &signature.result {
            Ok(good) if good.signer.is_none() => {
                let _ = writeln!(out, "  {role}{who}: intact, signer not checked, key {}", good.fingerprint);
            }
            Ok(good) => {
                let by = escape(&good.principals().join(", ")).into_owned();
                let _ = writeln!(out, "  {role}{who}: good, by {by}, key {}", good.fingerprint);
            }
            Err(why) => {
                let _ = writeln!(out, "  {role}{who}: BAD — {}", escape(&why.to_string()));
            }
        }
    }
    for problem in &checked.problems {
        let _ = writeln!(out, "  problem: {}", escape(problem));
    }
    for note in &checked.notes {
        let _ = writeln!(out, "  note: {}", escape(note));
    }
}

fn person(p: &Person) -> String {
    let parts: Vec<String> =
        [&p.name, &p.title, &p.id, &p.contact].iter().filter_map(|v| (*v).clone()).collect();
    if parts.is_empty() { "-".into() } else { parts.join(", ") }
}

/// Where the identity came from and the hidden areas, when known: (Chinese
/// label, English label, value), for `cert show` and the PDF alike.
pub fn medium_rows(m: &crate::device::Identity) -> Vec<(&'static str, &'static str, String)> {
    let mut rows = Vec::new();
    if let Some(source) = m.identity_source {
        rows.push(("标识来源", "Identity from", source.as_str().to_string()));
    }
    if let Some(h) = m.hidden {
        let or_unknown = |v: Option<u64>| v.map_or("unknown".to_string(), |v| v.to_string());
        rows.push((
            "隐藏区",
            "Hidden areas",
            format!(
                "accessible {} sectors, native {}, factory {}; {} hidden{}",
                h.accessible_sectors,
                or_unknown(h.native_sectors),
                or_unknown(h.factory_sectors),
                h.hidden_sectors(),
                match (h.hpa_restored, h.dco_restored) {
                    (_, true) => ", DCO restored before sanitizing",
                    (true, false) => ", HPA restored (until power-off) before sanitizing",
                    _ => "",
                }
            ),
        ));
    }
    rows
}

/// A drive's erase command and its verification, as rows.
pub fn firmware_rows(f: &crate::report::FirmwareRecord) -> Vec<(&'static str, &'static str, String)> {
    let v = &f.verification;
    let estimate =
        f.drive_estimate_seconds.map(|s| format!(", the drive estimated {s} s")).unwrap_or_default();
    vec![
        ("驱动器命令", "Drive command", format!("{} [{}] over {}", f.command, f.command_bytes, f.protocol)),
        ("选择理由", "Chosen because", f.chosen_because.clone()),
        (
            "驱动器应答",
            "Drive's answer",
            format!(
                "{} — {}, {:.1} s{estimate}",
                if f.drive_reported_success { "success" } else { "no success" },
                f.drive_status,
                f.seconds
            ),
        ),
        (
            "读取校验",
            "Read-back check",
            format!(
                "{}: {} bytes ({:.1} %) marked before and read after; {} sectors kept the marker, {} not {:?}, {} unreadable; before SHA-256 {}",
                v.result,
                v.bytes,
                v.coverage * 100.0,
                total_sectors(&v.marker_remaining),
                total_sectors(&v.unexpected),
                v.expected,
                total_sectors(&v.unreadable),
                v.before_sha256
            ),
        ),
    ]
}
