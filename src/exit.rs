//! What certwipe's exit status promises, and which library errors keep which
//! promise. Every error type knows its own status; the command line only passes
//! it on, so an error is never flattened to text before its status is chosen.

/// Everything asked for was done and proved.
pub const OK: u8 = 0;
/// Something failed, is incomplete, was interrupted, or could not be verified;
/// work may have been done.
pub const FAILED: u8 = 1;
/// Bad usage or a refusal: nothing was written.
pub const USAGE: u8 = 2;

/// An error that knows which exit status it stands for.
pub trait ExitStatus {
    fn exit_status(&self) -> u8;
}
