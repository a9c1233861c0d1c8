//! The outcome of a run, by the rule the certificate relies on.

use super::Halt;

use crate::report::*;

pub fn summarize_verification(mode: VerifyMode, passes: &[PassRecord]) -> VerificationSummary {
    let verified: Vec<&PassRecord> = passes.iter().filter(|p| p.verification.is_some()).collect();
    let results = verified.iter().filter_map(|p| p.verification.as_ref().map(|v| v.result));
    let result = results.fold(None, |worst: Option<VerificationResult>, r| {
        Some(match (worst, r) {
            (Some(VerificationResult::Failed), _) | (_, VerificationResult::Failed) => {
                VerificationResult::Failed
            }
            (Some(VerificationResult::Incomplete), _) | (_, VerificationResult::Incomplete) => {
                VerificationResult::Incomplete
            }
            _ => r,
        })
    });
    VerificationSummary {
        mode,
        result: result.unwrap_or(VerificationResult::NotRun),
        passes_verified: verified.iter().map(|p| p.index).collect(),
    }
}

/// `erased` only when every pass wrote every byte and the requested verification passed.
pub(super) fn judge(
    passes: &[PassRecord],
    planned: usize,
    verification: &VerificationSummary,
    halt: Option<&Halt>,
) -> (Status, String) {
    let unwritten: u64 = passes.iter().map(|p| total_sectors(&p.unwritten)).sum();
    let unreadable: u64 =
        passes.iter().filter_map(|p| p.verification.as_ref()).map(|v| total_sectors(&v.unreadable)).sum();
    let mismatched: u64 =
        passes.iter().filter_map(|p| p.verification.as_ref()).map(|v| total_sectors(&v.mismatches)).sum();
    match halt {
        Some(Halt::Aborted) => {
            return (Status::Aborted, format!("interrupted during pass {} of {planned}", passes.len()));
        }
        Some(Halt::Gone(why)) => {
            return (
                Status::Failed,
                format!(
                    "the device stopped answering during pass {} — it was removed, or it failed: {why}",
                    passes.len()
                ),
            );
        }
        Some(Halt::Failed(why)) => return (Status::Failed, why.clone()),
        None => {}
    }
    if mismatched > 0 {
        return (
            Status::Failed,
            format!("verification failed: {mismatched} sector(s) read back differ from what was written"),
        );
    }
    if unwritten > 0 || unreadable > 0 {
        return (
            Status::Incomplete,
            format!(
                "{unwritten} sector(s) could not be written and {unreadable} could not be read back; they are listed"
            ),
        );
    }
    let reason = match (verification.mode, verification.result) {
        (VerifyMode::Off, _) => "every pass wrote every byte; no verification was requested".to_string(),
        (_, VerificationResult::Passed) => {
            "every pass wrote every byte and the verification passed".to_string()
        }
        (_, other) => return (Status::Incomplete, format!("the verification did not pass ({other})")),
    };
    (Status::Erased, reason)
}
