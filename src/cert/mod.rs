//! Signed destruction certificates: the document (`model`), the organisation's
//! records (`records`), OpenSSH signatures (`sign`), files and countersignatures
//! on disk (`files`), consistency rules (`check`) and the summary for people (`render`).

pub mod allowed_signers;
pub mod canonical;
pub mod check;
mod check_firmware;
pub mod countersign;
pub mod display;
pub mod files;
pub mod judge;
pub mod model;
pub mod pdf;
pub mod records;
pub mod render;
pub mod sign;

use thiserror::Error;

pub use model::Certificate;

#[derive(Debug, Error)]
pub enum CertError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Input { path: String, source: crate::input::InputError },
    #[error("not a certwipe certificate: it has no \"format\" field")]
    NotACertificate,
    #[error("not a readable certificate: {0}")]
    Document(#[from] canonical::CanonicalError),
    #[error("unknown certificate format {0:?}; this certwipe reads certwipe.certificate/v1")]
    UnknownFormat(String),
    #[error("signing key {path}: {why}")]
    Key { path: String, why: String },
    #[error(
        "signing key {path} is readable by others (mode {mode:03o}); like ssh, certwipe refuses it: chmod 600 {path}"
    )]
    KeyPermissions { path: String, mode: u32 },
    #[error(
        "signing key {path} is a public key; signing needs the private key, the file of the same name without .pub ({private})"
    )]
    PublicKeyGiven { path: String, private: String },
    #[error(
        "signing key {path} is {algorithm}, not Ed25519; certificates are signed with Ed25519 (certwipe keygen, or ssh-keygen -t ed25519)"
    )]
    NotEd25519 { path: String, algorithm: String },
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("allowed signers {0}")]
    AllowedSigners(String),
    #[error("the certificate does not verify: {0}")]
    Invalid(String),
    #[error("this countersignature would not verify: {0}")]
    Countersign(judge::SignatureProblem),
    #[error(transparent)]
    Records(#[from] records::RecordsError),
}

impl crate::exit::ExitStatus for CertError {
    /// A certificate that does not verify is a finding; everything else stops a
    /// command before it writes anything.
    fn exit_status(&self) -> u8 {
        match self {
            CertError::Invalid(_) => crate::exit::FAILED,
            _ => crate::exit::USAGE,
        }
    }
}
