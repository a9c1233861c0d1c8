//! Resume: an interrupted wipe's journal is continued only for the same
//! medium, with the plan and verification this run asks for.

use crate::device::{Inspected, Medium};
use crate::engine::checkpoint::{self, Checkpoint, FileJournal, JournalError};
use crate::method::Plan;
use crate::report::Interruption;

/// The checkpoint of an interrupted wipe of this medium, once its plan and
/// verification are the ones this run asks for and the medium is recognised
/// as the one it was writing; the interruption is recorded, and the last pass
/// is set to be read back over the whole medium again.
pub(super) fn resumed_checkpoint(
    journal: &FileJournal,
    target: &Inspected,
    medium: &Medium,
    planned: &Plan,
    verify: crate::engine::VerifyMode,
) -> Result<Checkpoint, JournalError> {
    let path = &target.identity.path;
    let mut checkpoint = journal.load(path)?;
    if checkpoint.plan != *planned || checkpoint.verify != verify {
        let describe = |plan: &Plan, verify: crate::engine::VerifyMode| {
            format!("method {} x{} with verify {}", plan.method, plan.rounds, verify.as_str())
        };
        return Err(JournalError::PlanDiffers {
            target: path.clone(),
            journal: describe(&checkpoint.plan, checkpoint.verify),
            asked: describe(planned, verify),
        });
    }
    let how = checkpoint::recognise(&checkpoint, &target.identity, medium)
        .map_err(|why| JournalError::NotTheSameMedium { target: path.clone(), why })?;
    checkpoint.reverify_last(planned.passes.len());
    let how =
        format!("{how}; the last pass is read back over the whole medium again, whatever the journal said");
    checkpoint.interruptions.push(Interruption {
        checkpoint_at: checkpoint.saved_at.clone(),
        pass: checkpoint.current.as_ref().map(|f| f.index),
        phase: checkpoint.current.as_ref().map(|f| f.phase),
        offset: checkpoint.current.as_ref().map_or(0, |f| f.offset),
        resumed_at: crate::report::now(),
        medium_check: how,
    });
    Ok(checkpoint)
}
