//! OpenSSH signatures (SSHSIG, Ed25519, namespace `certwipe`) over the exact bytes
//! of a file, checkable by anyone with stock `ssh-keygen -Y verify`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};
use thiserror::Error;

use super::CertError;
pub use super::allowed_signers::AllowedSigners;
use super::allowed_signers::{Authorized, NotAllowed};

/// The SSHSIG namespace of every certwipe signature: a signature made for another
/// purpose (git commits, files) can never pass as a certificate signature.
pub const NAMESPACE: &str = "certwipe";

/// Environment variable holding the passphrase of an encrypted key, for unattended use.
pub const PASSPHRASE_ENV: &str = "CERTWIPE_KEY_PASSPHRASE";

/// A decrypted Ed25519 private key, ready to sign.
pub struct SigningKey {
    key: PrivateKey,
}

impl SigningKey {
    /// Loads an OpenSSH private key, refusing what ssh itself would refuse (a key
    /// readable by group or others) and anything but Ed25519. `passphrase` is asked
    /// only when the key is encrypted.
    pub fn load(
        path: &Path,
        passphrase: impl FnOnce() -> Result<String, CertError>,
    ) -> Result<SigningKey, CertError> {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| CertError::Key { path: shown.clone(), why: e.to_string() })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CertError::KeyPermissions { path: shown, mode });
        }
        let text = crate::input::read_text(path, crate::input::KEY)
            .map_err(|e| CertError::Key { path: shown.clone(), why: e.to_string() })?;
        let key = PrivateKey::from_openssh(&text).map_err(|e| CertError::Key {
            path: shown.clone(),
            why: format!("not an OpenSSH private key this tool can read ({e}); create one with `certwipe keygen` or `ssh-keygen -t ed25519`"),
        })?;
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(CertError::NotEd25519 { path: shown, algorithm: key.algorithm().to_string() });
        }
        let key = if key.is_encrypted() {
            key.decrypt(passphrase()?.as_bytes())
                .map_err(|_| CertError::Key { path: shown, why: "wrong passphrase".into() })?
        } else {
            key
        };
        Ok(SigningKey { key })
    }

    pub fn from_private_key(key: PrivateKey) -> SigningKey {
        SigningKey { key }
    }

    /// An armored, detached SSHSIG over `bytes`.
    pub fn sign(&self, bytes: &[u8]) -> Result<String, CertError> {
        let signature =
            self.key.sign(NAMESPACE, HashAlg::Sha512, bytes).map_err(|e| CertError::Sign(e.to_string()))?;
        signature.to_pem(LineEnding::LF).map_err(|e| CertError::Sign(e.to_string()))
    }

    pub fn public_key(&self) -> PublicKey {
        self.key.public_key().clone()
    }

    pub fn fingerprint(&self) -> String {
        self.key.public_key().fingerprint(HashAlg::Sha256).to_string()
    }
}

/// A signature that checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoodSignature {
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// The signer's public key, OpenSSH format.
    pub public_key: String,
    /// Who the allowed-signers file says signed; `None` when no file was given,
    /// so the signature is intact but nobody vouched for the key.
    pub signer: Option<Authorized>,
}

impl GoodSignature {
    pub fn principals(&self) -> &[String] {
        self.signer.as_ref().map_or(&[], |s| &s.principals)
    }
}

/// Who may sign, and when the signature claims to have been made (the
/// certificate's issue time, a countersignature's signing time): a key listed with
/// `valid-after`/`valid-before` counts only within that window.
#[derive(Clone, Copy)]
pub struct Signers<'a> {
    pub allowed: &'a AllowedSigners,
    pub at: SystemTime,
    /// The principal the signer must be (`ssh-keygen -Y verify -I`); any the
    /// file grants when `None`.
    pub principal: Option<&'a str>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("not a valid SSHSIG signature ({0})")]
    Unreadable(String),
    #[error("signature namespace is {0:?}, not {NAMESPACE:?}")]
    Namespace(String),
    #[error("signature algorithm is {0}, not ssh-ed25519")]
    Algorithm(String),
    #[error("signature does not match the file's bytes")]
    Mismatch,
    #[error("signer {fingerprint} at {at}: {why}")]
    NotAllowed { fingerprint: String, at: String, why: NotAllowed },
}

/// Checks an armored SSHSIG over `bytes`: namespace, algorithm, the signature
/// itself, and, when given, that the key is an allowed signer for `certwipe`.
pub fn verify(
    bytes: &[u8],
    armored: &str,
    signers: Option<Signers<'_>>,
) -> Result<GoodSignature, SignatureError> {
    let signature = SshSig::from_pem(armored).map_err(|e| SignatureError::Unreadable(e.to_string()))?;
    if signature.namespace() != NAMESPACE {
        return Err(SignatureError::Namespace(signature.namespace().to_string()));
    }
    if signature.algorithm() != Algorithm::Ed25519 {
        return Err(SignatureError::Algorithm(signature.algorithm().to_string()));
    }
    let public = PublicKey::from(signature.public_key().clone());
    public.verify(NAMESPACE, bytes, &signature).map_err(|_| SignatureError::Mismatch)?;
    let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
    let signer = signers
        .map(|signers| {
            signers.allowed.authorize(&public, signers.principal, NAMESPACE, signers.at).map_err(|why| {
                SignatureError::NotAllowed {
                    fingerprint: fingerprint.clone(),
                    at: humantime::format_rfc3339_seconds(signers.at).to_string(),
                    why,
                }
            })
        })
        .transpose()?;
    Ok(GoodSignature { fingerprint, public_key: public.to_openssh().unwrap_or_default(), signer })
}

/// The `allowed_signers` line for a public key.
pub fn allowed_signers_line(principal: &str, key: &PublicKey) -> String {
    let mut key = key.clone();
    key.set_comment("");
    format!("{principal} namespaces=\"{NAMESPACE}\" {}", key.to_openssh().unwrap_or_default().trim())
}

/// Reads a passphrase from the environment or, failing that, the terminal.
pub fn passphrase_from_env_or_tty(path: &Path) -> Result<String, CertError> {
    if let Ok(passphrase) = std::env::var(PASSPHRASE_ENV) {
        return Ok(passphrase);
    }
    rpassword::prompt_password(format!("Passphrase for {}: ", path.display())).map_err(|_| CertError::Key {
        path: path.display().to_string(),
        why: format!(
            "the key is passphrase-protected and there is no terminal to ask on; set {PASSPHRASE_ENV}"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PrivateKey {
        PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519).unwrap()
    }

    #[test]
    fn sign_and_verify_round_trip_and_reject_changes() {
        let private = key();
        let signer = SigningKey::from_private_key(private.clone());
        let armored = signer.sign(b"certificate bytes").unwrap();
        let good = verify(b"certificate bytes", &armored, None).unwrap();
        assert_eq!(good.fingerprint, signer.fingerprint());
        assert!(verify(b"certificate bytez", &armored, None).is_err());
        assert!(verify(b"certificate bytes", &armored[..armored.len() - 40], None).is_err());
    }
}
