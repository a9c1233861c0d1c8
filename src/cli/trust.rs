//! Whom signatures are checked against: `--allowed-signers`, or the station
//! profile's `allowed_signers`. Without either, a signature can only be found
//! intact, never verified, and every command says so.

use std::path::{Path, PathBuf};

use clap::Args;

use super::Failure;
use crate::cert::records::Profile;
use crate::cert::sign::AllowedSigners;

#[derive(Args, Debug, Default)]
pub struct TrustArgs {
    /// OpenSSH allowed_signers file: who may sign certificates (namespace certwipe)
    /// [default: allowed_signers in the station profile]
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// Station profile (TOML) [default: /etc/certwipe/profile.toml if present]
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
}

impl TrustArgs {
    /// The allowed signers, if any were named; unreadable ones are an error, and
    /// lines OpenSSH would skip are pointed out.
    pub fn load(&self) -> Result<Option<AllowedSigners>, Failure> {
        let path = match &self.allowed_signers {
            Some(path) => Some(path.clone()),
            None => Profile::find(self.profile.as_deref())?.allowed_signers,
        };
        path.map(|path| load_allowed_signers(&path)).transpose()
    }

    /// The allowed signers, required because `why` (a command that cannot go on
    /// without checking signers says so).
    pub fn require(&self, why: &str) -> Result<AllowedSigners, Failure> {
        self.load()?.ok_or_else(|| {
            Failure::usage(format!(
                "{why}: give --allowed-signers FILE (or allowed_signers in the station profile)"
            ))
        })
    }

    /// The records office's address for printed QR codes: `given`, else the
    /// station profile's `verify_url`.
    pub fn verify_url(&self, given: Option<&String>) -> Result<Option<String>, Failure> {
        match given {
            Some(url) => Ok(Some(url.clone())),
            None => Ok(Profile::find(self.profile.as_deref())?.verify_url),
        }
    }
}

pub fn load_allowed_signers(path: &Path) -> Result<AllowedSigners, Failure> {
    let allowed = AllowedSigners::load(path).map_err(|e| {
        Failure::usage(format!(
            "allowed signers {}: {e}; give a readable --allowed-signers FILE",
            path.display()
        ))
    })?;
    for problem in allowed.problems() {
        eprintln!(
            "certwipe: warning: allowed signers {}: {problem} (the line allows nobody)",
            path.display()
        );
    }
    Ok(allowed)
}
