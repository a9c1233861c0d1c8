//! OpenSSH signatures (SSHSIG, Ed25519) over the exact bytes of a file, checkable
//! by anyone with stock `ssh-keygen -Y verify`. Each duty signs in its own
//! namespace, and an allowed_signers line grants a key only the duties its
//! `namespaces=` names: a witness's key can never sign as a station, nor a
//! station's key write what only the records office may.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};
use thiserror::Error;

use super::CertError;
pub use super::allowed_signers::AllowedSigners;
use super::allowed_signers::{Authorized, NotAllowed};

/// The SSHSIG namespace of a station's certificate signature (and, before
/// duties had namespaces of their own, of every certwipe signature): a
/// signature made for another purpose (git commits, files) can never pass.
pub const NAMESPACE: &str = "certwipe";

/// What a signature vouches for. Each duty has its own SSHSIG namespace, so
/// `ssh-keygen -Y verify -n NAMESPACE` checks each file for what it claims to
/// be, and the allowed signers decide per key which duties it may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Duty {
    /// A station's certificate (`certwipe`).
    Station,
    /// NIST's validation signature (`certwipe-validator`).
    Validator,
    /// The supervisor who witnessed (监销) (`certwipe-witness`).
    Witness,
    /// The approver (审批) (`certwipe-approver`).
    Approver,
    /// Ledger entries and heads (`certwipe-ledger`).
    Ledger,
}

impl Duty {
    pub const ALL: [Duty; 5] = [Duty::Station, Duty::Validator, Duty::Witness, Duty::Approver, Duty::Ledger];

    pub fn namespace(self) -> &'static str {
        match self {
            Duty::Station => NAMESPACE,
            Duty::Validator => "certwipe-validator",
            Duty::Witness => "certwipe-witness",
            Duty::Approver => "certwipe-approver",
            Duty::Ledger => "certwipe-ledger",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Duty::Station => "station",
            Duty::Validator => "validator",
            Duty::Witness => "witness",
            Duty::Approver => "approver",
            Duty::Ledger => "ledger",
        }
    }

    /// Signatures made before duties had their own namespaces used
    /// `certwipe` for everything; they are still read, and still need the key
    /// to be allowed for this duty's namespace.
    fn accepts_namespace(self, namespace: &str) -> Option<bool> {
        if namespace == self.namespace() {
            Some(false)
        } else if namespace == NAMESPACE {
            Some(true)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Duty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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
        let text = crate::input::read_text(path, crate::input::KEY)
            .map_err(|e| CertError::Key { path: shown.clone(), why: e.to_string() })?;
        // A public key is what people most often give by mistake: say so,
        // rather than ask to protect a file that needs no protecting.
        if PublicKey::from_openssh(text.trim()).is_ok() {
            let private =
                shown.strip_suffix(".pub").unwrap_or("the key ssh-keygen made beside it").to_string();
            return Err(CertError::PublicKeyGiven { path: shown, private });
        }
        let meta = std::fs::metadata(path)
            .map_err(|e| CertError::Key { path: shown.clone(), why: e.to_string() })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(CertError::KeyPermissions { path: shown, mode });
        }
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

    /// An armored, detached SSHSIG over `bytes`, in the namespace of `duty`.
    pub fn sign(&self, bytes: &[u8], duty: Duty) -> Result<String, CertError> {
        let signature = self
            .key
            .sign(duty.namespace(), HashAlg::Sha512, bytes)
            .map_err(|e| CertError::Sign(e.to_string()))?;
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
    /// Made in the namespace every certwipe signature used before duties had
    /// their own (`certwipe`); still only valid for a key allowed this duty.
    pub legacy_namespace: bool,
}

impl GoodSignature {
    /// The principals the line that allowed the key grants.
    pub fn principals(&self) -> &[String] {
        self.signer.as_ref().map_or(&[], |s| &s.principals)
    }

    /// Every principal any line of the file names for this key: who the
    /// signer is, for separation of duties.
    pub fn identities(&self) -> &[String] {
        self.signer.as_ref().map_or(&[], |s| &s.identities)
    }
}

/// Who may sign, and at what time the key must have been valid (the time the
/// ledger first recorded the signature, or failing that the time the signed
/// document claims): a key listed with `valid-after`/`valid-before` counts only
/// within that window.
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
    #[error("signature namespace is {found:?}, not {expected:?} (the {duty} duty's)")]
    Namespace { found: String, expected: &'static str, duty: Duty },
    #[error("signature algorithm is {0}, not ssh-ed25519")]
    Algorithm(String),
    #[error("signature does not match the file's bytes")]
    Mismatch,
    #[error("signer {fingerprint} at {at}: {why}")]
    NotAllowed { fingerprint: String, at: String, why: NotAllowed },
}

/// Checks an armored SSHSIG over `bytes` made for `duty`: namespace,
/// algorithm, the signature itself, and, when given, that the key is an
/// allowed signer for that duty's namespace at the time given.
pub fn verify(
    bytes: &[u8],
    armored: &str,
    duty: Duty,
    signers: Option<Signers<'_>>,
) -> Result<GoodSignature, SignatureError> {
    let signature = SshSig::from_pem(armored).map_err(|e| SignatureError::Unreadable(e.to_string()))?;
    let legacy_namespace =
        duty.accepts_namespace(signature.namespace()).ok_or_else(|| SignatureError::Namespace {
            found: signature.namespace().to_string(),
            expected: duty.namespace(),
            duty,
        })?;
    if signature.algorithm() != Algorithm::Ed25519 {
        return Err(SignatureError::Algorithm(signature.algorithm().to_string()));
    }
    let public = PublicKey::from(signature.public_key().clone());
    public.verify(signature.namespace(), bytes, &signature).map_err(|_| SignatureError::Mismatch)?;
    let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
    let signer = signers
        .map(|signers| {
            signers.allowed.authorize(&public, signers.principal, duty.namespace(), signers.at).map_err(
                |why| SignatureError::NotAllowed {
                    fingerprint: fingerprint.clone(),
                    at: humantime::format_rfc3339_seconds(signers.at).to_string(),
                    why,
                },
            )
        })
        .transpose()?;
    Ok(GoodSignature {
        fingerprint,
        public_key: public.to_openssh().unwrap_or_default(),
        signer,
        legacy_namespace,
    })
}

/// The `allowed_signers` line for a public key that may take `duties`.
pub fn allowed_signers_line(principal: &str, key: &PublicKey, duties: &[Duty]) -> String {
    let mut key = key.clone();
    key.set_comment("");
    let namespaces: Vec<&str> = duties.iter().map(|d| d.namespace()).collect();
    format!(
        "{principal} namespaces=\"{}\" {}",
        namespaces.join(","),
        key.to_openssh().unwrap_or_default().trim()
    )
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
        let armored = signer.sign(b"certificate bytes", Duty::Station).unwrap();
        let good = verify(b"certificate bytes", &armored, Duty::Station, None).unwrap();
        assert_eq!(good.fingerprint, signer.fingerprint());
        assert!(!good.legacy_namespace);
        assert!(verify(b"certificate bytez", &armored, Duty::Station, None).is_err());
        assert!(verify(b"certificate bytes", &armored[..armored.len() - 40], Duty::Station, None).is_err());
    }

    #[test]
    fn a_signature_counts_only_for_the_duty_its_namespace_and_its_key_allow() {
        let private = key();
        let signer = SigningKey::from_private_key(private.clone());
        let witness = signer.sign(b"statement", Duty::Witness).unwrap();
        assert!(matches!(
            verify(b"statement", &witness, Duty::Station, None),
            Err(SignatureError::Namespace { .. })
        ));
        assert!(verify(b"statement", &witness, Duty::Approver, None).is_err());
        // Old countersignatures and entries were all made in `certwipe`.
        let legacy = signer.sign(b"statement", Duty::Station).unwrap();
        assert!(verify(b"statement", &legacy, Duty::Witness, None).unwrap().legacy_namespace);
        let at = SystemTime::now();
        let line = |namespaces: &str| {
            format!("zhang.san namespaces=\"{namespaces}\" {}", private.public_key().to_openssh().unwrap())
        };
        let witness_only = AllowedSigners::parse(line("certwipe-witness").as_bytes());
        let signers = Some(Signers { allowed: &witness_only, at, principal: None });
        assert!(verify(b"statement", &witness, Duty::Witness, signers).is_ok());
        assert!(verify(b"statement", &legacy, Duty::Witness, signers).is_ok(), "legacy, for its own duty");
        assert!(verify(b"statement", &legacy, Duty::Station, signers).is_err(), "not a station key");
        let station_only = AllowedSigners::parse(line("certwipe").as_bytes());
        let signers = Some(Signers { allowed: &station_only, at, principal: None });
        assert!(verify(b"statement", &legacy, Duty::Witness, signers).is_err(), "not a witness key");
    }
}
