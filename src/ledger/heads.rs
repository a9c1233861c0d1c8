//! A station's own note of the newest entry it wrote to each ledger (by
//! where it is and its id), kept in its state directory. A ledger cut back to before that entry leaves a chain
//! that is whole (only a head kept elsewhere shows it); the note is such a
//! head, kept without anybody having to remember to: the station's next
//! write refuses to build on a ledger that lost its entry, and `verify` says so.

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::LedgerError;
use super::store::Tx;

/// The note's file.
#[derive(Clone, Debug)]
pub struct Remembered {
    pub file: PathBuf,
}

/// The newest entry a station wrote: its number and hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Newest {
    seq: i64,
    hash: String,
}

impl Remembered {
    fn load(&self) -> BTreeMap<String, Newest> {
        crate::input::read_regular(&self.file, crate::input::LIST)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Why the ledger noted as `ledger` (its location and id) no longer holds
    /// the newest entry this station wrote to it, if it does not.
    pub fn problem(&self, tx: &mut dyn Tx, ledger: &str) -> Result<Option<String>, LedgerError> {
        let Some(noted) = self.load().remove(ledger) else { return Ok(None) };
        let held = tx.entry_at(noted.seq)?;
        Ok(match held {
            Some(entry) if entry.hash == noted.hash => None,
            Some(_) => Some(format!(
                "entry {} differs from the one this station wrote (noted in {}): the ledger was rewritten since",
                noted.seq,
                self.file.display()
            )),
            None => Some(format!(
                "the ledger no longer holds entry {}, which this station wrote (noted in {}): newer entries were cut off",
                noted.seq,
                self.file.display()
            )),
        })
    }

    /// Refuses to build on a ledger that lost this station's newest entry.
    pub fn check(&self, tx: &mut dyn Tx, ledger: &str) -> Result<(), LedgerError> {
        match self.problem(tx, ledger)? {
            Some(why) => Err(LedgerError::Tampered { what: "chain".into(), why }),
            None => Ok(()),
        }
    }

    /// Notes `seq` and `hash` as the newest entry of `ledger`. Commands
    /// running at once (several stations' writes on one machine) take turns
    /// on a lock file, so that none loses another's note.
    pub fn remember(&self, ledger: &str, seq: i64, hash: &str) -> std::io::Result<()> {
        if let Some(dir) = self.file.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
                .create(dir)?;
            crate::durable::check_private_dir(dir)?;
        }
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .mode(0o600)
            .open(self.file.with_extension("lock"))?;
        let _turn = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| std::io::Error::from(errno))?;
        let mut noted = self.load();
        noted.insert(ledger.to_string(), Newest { seq, hash: hash.to_string() });
        let bytes = serde_json::to_vec_pretty(&noted).map_err(std::io::Error::other)?;
        crate::durable::write_atomically(&self.file, &bytes, 0o600)
    }
}
