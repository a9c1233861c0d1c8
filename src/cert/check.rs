//! Internal consistency: a certificate must not claim what its own content
//! contradicts. A signature proves who wrote the bytes; these checks catch bytes
//! that lie, even when properly signed.

use super::model::{CERTIFICATE_FORMAT, Certificate, FLASH_WARNING, Technique};
use crate::method::{PassKind, Plan};
use crate::report::{
    PassContent, PassRecord, PassVerification, SectorRange, Status, VerificationKind, VerificationResult,
    VerifyMode, total_sectors,
};

/// Everything that does not hold, one sentence each; empty when consistent.
pub fn inconsistencies(cert: &Certificate) -> Vec<String> {
    let mut problems = Vec::new();
    let mut fail = |problem: String| problems.push(problem);
    let s = &cert.sanitization;
    let size = cert.medium.size_bytes;

    if cert.format != CERTIFICATE_FORMAT {
        fail(format!("format {:?} is not {CERTIFICATE_FORMAT:?}", cert.format));
    }
    if size == 0 || cert.medium.logical_sector_size == 0 || cert.medium.physical_sector_size == 0 {
        fail("the medium's size or sector size is zero".into());
        return problems;
    }
    match humantime::parse_rfc3339(&cert.issued_at) {
        Err(_) => fail(format!("issued_at {:?} is not an RFC 3339 UTC time", cert.issued_at)),
        Ok(issued) => {
            // Issued once the sanitization ended, never before it.
            let finished = humantime::parse_rfc3339(&s.finished_at);
            if finished.is_ok_and(|finished| issued + super::judge::CLOCK_TOLERANCE < finished) {
                fail(format!(
                    "issued_at {} is before the sanitization finished ({})",
                    cert.issued_at, s.finished_at
                ));
            }
        }
    }
    let proven = s.status == Status::Erased;
    let allowed = s.technique.category(cert.medium.media_type, proven);
    if s.category != allowed {
        fail(format!(
            "category {} is not what a {} with status {} achieves on this medium ({})",
            s.category.as_str(),
            s.technique.as_str(),
            s.status.as_str(),
            allowed.as_str()
        ));
    }
    if s.technique == Technique::Overwrite
        && cert.medium.media_type.is_flash()
        && !s.warnings.iter().any(|w| w == FLASH_WARNING)
    {
        fail(
            "a flash medium's certificate lacks the warning that an overwrite cannot reach spare blocks"
                .into(),
        );
    }
    if s.status != Status::Erased && !s.warnings.iter().any(|w| w.contains("does NOT attest")) {
        fail(format!("status {} lacks the warning that the medium was not erased", s.status.as_str()));
    }
    if let Some(hidden) = cert.medium.hidden
        && proven
        && hidden.hidden_sectors() > 0
        && !(hidden.hpa_restored || hidden.dco_restored)
    {
        fail(format!(
            "status erased, yet {} hidden sectors were not restored and covered",
            hidden.hidden_sectors()
        ));
    }
    for (field, text, _) in cert.records.texts() {
        if text.is_some_and(|text| text.chars().any(super::display::is_hidden)) {
            fail(format!("the {field} holds control characters, which certwipe never writes into a record"));
        }
    }
    for (field, text) in cert.medium.texts() {
        if text.is_some_and(|text| text.chars().any(super::display::is_hidden)) {
            fail(format!(
                "the medium's {field} holds control or invisible characters, which certwipe writes only escaped"
            ));
        }
    }
    match (&s.firmware, s.technique) {
        (Some(firmware), _) => super::check_firmware::check(cert, firmware, &mut fail),
        (None, Technique::Overwrite) => check_overwrite(cert, &mut fail),
        (None, technique) => fail(format!(
            "it claims {} by the drive, but records neither the drive's command nor the verification of it",
            technique.as_str()
        )),
    }
    check_records(cert, &mut fail);
    problems
}

/// A host overwrite: its passes, their verification, and what the status says of them.
fn check_overwrite(cert: &Certificate, fail: &mut impl FnMut(String)) {
    let s = &cert.sanitization;
    let size = cert.medium.size_bytes;
    check_passes(cert, fail);
    check_verification(cert, fail);
    let recomputed = crate::engine::outcome::summarize_verification(s.verify_mode, &s.passes);
    if recomputed != s.verification {
        fail(format!(
            "the verification summary ({}, passes {:?}) does not follow from the passes ({}, passes {:?})",
            s.verification.result,
            s.verification.passes_verified,
            recomputed.result,
            recomputed.passes_verified
        ));
    }
    if s.status == Status::Erased {
        for verification in s.passes.iter().filter_map(|p| p.verification.as_ref()) {
            if verification.result != VerificationResult::Passed || !verification.unreadable.is_empty() {
                fail("status erased, but a pass's read-back did not pass".into());
            }
        }
        for pass in &s.passes {
            if !pass.completed || pass.bytes_written != size || !pass.unwritten.is_empty() {
                fail(format!(
                    "status erased, but pass {} wrote {} of {size} bytes ({} sectors unwritten)",
                    pass.index,
                    pass.bytes_written,
                    total_sectors(&pass.unwritten)
                ));
            }
        }
        if s.verify_mode != VerifyMode::Off && s.verification.result != VerificationResult::Passed {
            fail(format!(
                "status erased, but the requested verification result is {}",
                s.verification.result
            ));
        }
    }
    if let Some(digest) = &s.final_content_digest {
        let last_full = s.passes.last().and_then(|p| p.verification.as_ref()).is_some_and(|v| {
            v.kind == VerificationKind::Full && v.result == VerificationResult::Passed && v.bytes_read == size
        });
        if s.status != Status::Erased || !last_full || digest.bytes != size {
            fail(
                "a content digest is present although the last pass was not read back in full and matched"
                    .into(),
            );
        }
    }
}

/// The records: classification never drops, and the destination suits it.
fn check_records(cert: &Certificate, fail: &mut impl FnMut(String)) {
    if let (Some(before), Some(after)) =
        (cert.records.classification_before, cert.records.classification_after)
        && after < before
    {
        fail(format!("classification dropped from {} to {}", before.english(), after.english()));
    }
    let level = cert.records.classification_before.max(cert.records.classification_after);
    if let (Some(level), Some(destination)) = (level, cert.records.destination)
        && !destination.allowed_for(level)
    {
        fail(format!("a {} medium may not go to {destination:?}", level.english()));
    }
}

fn check_passes(cert: &Certificate, fail: &mut impl FnMut(String)) {
    let s = &cert.sanitization;
    let size = cert.medium.size_bytes;
    if s.passes.is_empty() {
        fail("no passes recorded".into());
    }
    if s.passes.len() > crate::method::MAX_PASSES {
        fail(format!(
            "{} passes recorded; certwipe runs at most {}",
            s.passes.len(),
            crate::method::MAX_PASSES
        ));
    }
    for (position, pass) in s.passes.iter().enumerate() {
        if pass.index != position + 1 {
            fail(format!("pass {} is numbered {}", position + 1, pass.index));
        }
        if pass.bytes_total != size || pass.bytes_written > size {
            fail(format!(
                "pass {}: {} of {} bytes does not fit a medium of {size} bytes",
                pass.index, pass.bytes_written, pass.bytes_total
            ));
        }
        if pass.content.data().is_none() {
            fail(format!(
                "pass {}: its content cannot be regenerated (unknown generator or bad pattern)",
                pass.index
            ));
        }
    }
    if s.method.id == "custom" {
        return;
    }
    let Some(expected) = Plan::expected_passes(&s.method.id, s.method.rounds) else {
        fail(format!("method {:?} with {} round(s) is not a known method", s.method.id, s.method.rounds));
        return;
    };
    let finished = matches!(s.status, Status::Erased | Status::Incomplete);
    if s.passes.len() > expected.len() || (finished && s.passes.len() != expected.len()) {
        fail(format!(
            "method {} x{} has {} passes, the certificate lists {}",
            s.method.id,
            s.method.rounds,
            expected.len(),
            s.passes.len()
        ));
    }
    for (pass, kind) in s.passes.iter().zip(&expected) {
        if !content_matches(&pass.content, kind) {
            fail(format!(
                "pass {} wrote {:?}, but method {} prescribes {kind}",
                pass.index, pass.content, s.method.id
            ));
        }
    }
}

fn content_matches(content: &PassContent, kind: &PassKind) -> bool {
    match (content, kind) {
        (PassContent::Random { .. }, PassKind::Random) => true,
        (PassContent::Fixed { pattern }, PassKind::Fixed { pattern: expected }) => {
            *pattern == hex::encode(expected)
        }
        _ => false,
    }
}

fn check_verification(cert: &Certificate, fail: &mut impl FnMut(String)) {
    let s = &cert.sanitization;
    let verified: Vec<&PassRecord> = s.passes.iter().filter(|p| p.verification.is_some()).collect();
    let indexes: Vec<usize> = verified.iter().map(|p| p.index).collect();
    if indexes != s.verification.passes_verified {
        fail(format!(
            "verification lists passes {:?} as verified, the passes say {indexes:?}",
            s.verification.passes_verified
        ));
    }
    if s.verification.mode != s.verify_mode {
        fail("the verification summary's mode differs from the requested mode".into());
    }
    let last = s.passes.len();
    let complete_run = matches!(s.status, Status::Erased | Status::Incomplete);
    let expected: Vec<usize> = match s.verify_mode {
        VerifyMode::Off => Vec::new(),
        VerifyMode::Last | VerifyMode::Sample => vec![last],
        VerifyMode::All => (1..=last).collect(),
    };
    if complete_run && indexes != expected {
        fail(format!(
            "verify mode {} should have read back passes {expected:?}, not {indexes:?}",
            s.verify_mode
        ));
    }
    for pass in verified {
        let v = pass.verification.as_ref().expect("filtered on is_some");
        check_pass_verification(cert, pass, v, fail);
    }
    let mismatched =
        s.passes.iter().filter_map(|p| p.verification.as_ref()).any(|v| !v.mismatches.is_empty());
    if mismatched && s.status != Status::Failed && s.status != Status::Aborted {
        fail(format!(
            "data read back differed from what was written, yet the status is {}",
            s.status.as_str()
        ));
    }
}

/// One verified pass: its result, coverage, kind and listed sectors agree
/// with each other and with the medium.
fn check_pass_verification(
    cert: &Certificate,
    pass: &PassRecord,
    v: &PassVerification,
    fail: &mut impl FnMut(String),
) {
    let s = &cert.sanitization;
    let size = cert.medium.size_bytes;
    let wrong_result = match v.result {
        VerificationResult::Passed => !v.mismatches.is_empty() || !v.unreadable.is_empty(),
        VerificationResult::Failed => v.mismatches.is_empty(),
        VerificationResult::Incomplete | VerificationResult::NotRun => false,
    };
    if wrong_result {
        fail(format!("pass {}: verification result {} contradicts its mismatch lists", pass.index, v.result));
    }
    let expected_coverage = v.bytes_read as f64 / size as f64;
    if (v.coverage - expected_coverage).abs() > 1e-9 || v.bytes_read > size {
        fail(format!(
            "pass {}: coverage {} does not match {} bytes read",
            pass.index, v.coverage, v.bytes_read
        ));
    }
    let expected_kind = if s.verify_mode == VerifyMode::Sample { v.kind } else { VerificationKind::Full };
    if v.kind != expected_kind {
        fail(format!("pass {}: a {} verification under verify mode {}", pass.index, v.kind, s.verify_mode));
    }
    if let Some(sample) = &v.sample {
        let unit = crate::engine::sample::unit(u64::from(cert.medium.logical_sector_size));
        let planned = crate::engine::sample::plan(size, unit, sample.seed).map(|plan| plan.bytes());
        if v.result == VerificationResult::Passed && planned != Some(v.bytes_read) {
            fail(format!(
                "pass {}: the sample seed does not give the {} bytes said to be read",
                pass.index, v.bytes_read
            ));
        }
    }
    // Saturating: these numbers come from the file being checked.
    let sectors_on_medium = size.div_ceil(u64::from(cert.medium.logical_sector_size));
    let outside = |ranges: &[SectorRange]| {
        ranges.iter().any(|r| r.first_lba.saturating_add(r.sectors) > sectors_on_medium)
    };
    if outside(&v.mismatches) || outside(&v.unreadable) || outside(&pass.unwritten) {
        fail(format!("pass {}: a listed sector lies beyond the end of the medium", pass.index));
    }
    match v.kind {
        VerificationKind::Full if v.result == VerificationResult::Passed && v.bytes_read != size => {
            fail(format!(
                "pass {}: a full verification that passed read {} of {size} bytes",
                pass.index, v.bytes_read
            ))
        }
        VerificationKind::Sample
            if v.result == VerificationResult::Passed && (v.coverage < 0.10 || v.sample.is_none()) =>
        {
            fail(format!(
                "pass {}: a sampled verification below 10 % coverage or without its seed",
                pass.index
            ))
        }
        _ => {}
    }
}
