//! OpenSSH signatures (SSHSIG, Ed25519, namespace `certwipe`) over the exact bytes
//! of a file, checkable by anyone with stock `ssh-keygen -Y verify`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::SystemTime;

use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use super::CertError;

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
        let text = std::fs::read_to_string(path)
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
    /// Principals that the allowed-signers file grants this key (empty without one).
    pub principals: Vec<String>,
}

/// Who may sign, and when the signature claims to have been made (the
/// certificate's issue time, a countersignature's signing time): a key listed with
/// `valid-after`/`valid-before` counts only within that window.
#[derive(Clone, Copy)]
pub struct Signers<'a> {
    pub allowed: &'a AllowedSigners,
    pub at: SystemTime,
}

/// Checks an armored SSHSIG over `bytes`: namespace, algorithm, the signature
/// itself, and, when given, that the key is an allowed signer for `certwipe`.
pub fn verify(bytes: &[u8], armored: &str, signers: Option<Signers<'_>>) -> Result<GoodSignature, String> {
    let signature = SshSig::from_pem(armored).map_err(|e| format!("not a valid SSHSIG signature ({e})"))?;
    if signature.namespace() != NAMESPACE {
        return Err(format!("signature namespace is {:?}, not {NAMESPACE:?}", signature.namespace()));
    }
    if signature.algorithm() != Algorithm::Ed25519 {
        return Err(format!("signature algorithm is {}, not ssh-ed25519", signature.algorithm()));
    }
    let public = PublicKey::from(signature.public_key().clone());
    public
        .verify(NAMESPACE, bytes, &signature)
        .map_err(|_| "signature does not match the file's bytes".to_string())?;
    let fingerprint = public.fingerprint(HashAlg::Sha256).to_string();
    let principals = match signers {
        Some(signers) => {
            let principals = signers.allowed.principals_for(&public, signers.at);
            if principals.is_empty() {
                return Err(format!(
                    "signer {fingerprint} is not in the allowed-signers file for namespace {NAMESPACE:?} at {}",
                    humantime::format_rfc3339_seconds(signers.at)
                ));
            }
            principals
        }
        None => Vec::new(),
    };
    Ok(GoodSignature { fingerprint, public_key: public.to_openssh().unwrap_or_default(), principals })
}

/// An OpenSSH allowed-signers file (`ssh-keygen(1)`, ALLOWED SIGNERS): lines of
/// `principals [options] keytype base64-key [comment]`. The `namespaces` option is
/// honoured; `cert-authority` lines are skipped (certwipe signs with plain keys).
#[derive(Debug, Default)]
pub struct AllowedSigners {
    entries: Vec<AllowedSigner>,
}

#[derive(Debug)]
struct AllowedSigner {
    principals: Vec<String>,
    namespaces: Option<Vec<String>>,
    valid_after: Option<SystemTime>,
    valid_before: Option<SystemTime>,
    key: PublicKey,
}

impl AllowedSigners {
    pub fn load(path: &Path) -> Result<AllowedSigners, CertError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CertError::AllowedSigners(format!("{}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| CertError::AllowedSigners(format!("{}: {e}", path.display())))
    }

    pub fn parse(text: &str) -> Result<AllowedSigners, String> {
        let mut entries = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_fields(line);
            let bad = |why: &str| format!("line {}: {why}", number + 1);
            let principals = fields.first().ok_or_else(|| bad("no principals"))?;
            let mut rest = &fields[1..];
            let mut options = "";
            if rest
                .first()
                .is_some_and(|f| !f.starts_with("ssh-") && !f.starts_with("ecdsa-") && !f.starts_with("sk-"))
            {
                options = &rest[0];
                rest = &rest[1..];
            }
            let options = split_options(options);
            if options.iter().any(|o| o == "cert-authority") {
                continue;
            }
            let key_text = rest.iter().take(2).cloned().collect::<Vec<_>>().join(" ");
            let key =
                PublicKey::from_openssh(&key_text).map_err(|e| bad(&format!("unreadable key ({e})")))?;
            let option = |name: &str| {
                options.iter().find_map(|o| o.strip_prefix(name).map(|v| v.trim_matches('"').to_string()))
            };
            let namespaces =
                option("namespaces=").map(|v| v.split(',').map(|n| n.trim().to_string()).collect());
            let time = |name: &str| -> Result<Option<SystemTime>, String> {
                option(name).map(|v| parse_time(&v).ok_or_else(|| bad(&format!("bad {name}{v}")))).transpose()
            };
            entries.push(AllowedSigner {
                principals: principals.trim_matches('"').split(',').map(str::to_string).collect(),
                namespaces,
                valid_after: time("valid-after=")?,
                valid_before: time("valid-before=")?,
                key,
            });
        }
        Ok(AllowedSigners { entries })
    }

    /// Principals allowed to sign with `key` in the `certwipe` namespace at time `at`.
    pub fn principals_for(&self, key: &PublicKey, at: SystemTime) -> Vec<String> {
        self.entries
            .iter()
            .filter(|e| e.key.key_data() == key.key_data())
            .filter(|e| e.valid_after.is_none_or(|t| at >= t) && e.valid_before.is_none_or(|t| at < t))
            .filter(|e| e.namespaces.as_ref().is_none_or(|ns| ns.iter().any(|n| n == NAMESPACE || n == "*")))
            .flat_map(|e| e.principals.iter().cloned())
            .collect()
    }
}

/// `YYYYMMDD[HHMM[SS]]`, as ssh-keygen writes validity times; UTC (ssh-keygen reads
/// times without a `Z` as local time; certwipe stations run in UTC).
fn parse_time(text: &str) -> Option<SystemTime> {
    let digits = text.trim_end_matches(['Z', 'z']);
    if !digits.chars().all(|c| c.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return None;
    }
    let part = |range: std::ops::Range<usize>| digits.get(range).unwrap_or("00").to_string();
    let stamp = format!(
        "{}-{}-{}T{}:{}:{}Z",
        part(0..4),
        part(4..6),
        part(6..8),
        part(8..10),
        part(10..12),
        part(12..14)
    );
    humantime::parse_rfc3339(&stamp).ok()
}

/// Splits on whitespace outside double quotes.
fn split_fields(line: &str) -> Vec<String> {
    split_outside_quotes(line, char::is_whitespace).into_iter().filter(|f| !f.is_empty()).collect()
}

/// Splits an options field on commas outside double quotes.
fn split_options(field: &str) -> Vec<String> {
    if field.is_empty() { Vec::new() } else { split_outside_quotes(field, |c| c == ',') }
}

fn split_outside_quotes(text: &str, separator: impl Fn(char) -> bool) -> Vec<String> {
    let (mut parts, mut current, mut quoted) = (Vec::new(), String::new(), false);
    for c in text.chars() {
        if c == '"' {
            quoted = !quoted;
        }
        if separator(c) && !quoted {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
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

    #[test]
    fn allowed_signers_honour_keys_and_namespaces() {
        let (mine, other) = (key(), key());
        let line = allowed_signers_line("station-1", mine.public_key());
        let allowed = AllowedSigners::parse(&format!("# comment\n{line}\n")).unwrap();
        assert_eq!(allowed.principals_for(mine.public_key(), SystemTime::now()), ["station-1"]);
        assert!(allowed.principals_for(other.public_key(), SystemTime::now()).is_empty());
        let key_text = mine.public_key().to_openssh().unwrap();
        let git_only = AllowedSigners::parse(&format!("a@b,c@d namespaces=\"git,file\" {key_text}")).unwrap();
        assert!(git_only.principals_for(mine.public_key(), SystemTime::now()).is_empty());
        let any = AllowedSigners::parse(&format!("a@b,c@d {key_text}")).unwrap();
        assert_eq!(any.principals_for(mine.public_key(), SystemTime::now()), ["a@b", "c@d"]);
        assert!(AllowedSigners::parse("someone ssh-ed25519 notbase64").is_err());
        let retired = AllowedSigners::parse(&format!(
            "old valid-after=\"20250101\",valid-before=\"20260101Z\" {key_text}"
        ))
        .unwrap();
        let at = |text: &str| humantime::parse_rfc3339(text).unwrap();
        assert_eq!(retired.principals_for(mine.public_key(), at("2025-06-01T00:00:00Z")), ["old"]);
        assert!(retired.principals_for(mine.public_key(), at("2026-06-01T00:00:00Z")).is_empty());
        assert!(retired.principals_for(mine.public_key(), at("2024-12-31T23:59:59Z")).is_empty());
        assert!(AllowedSigners::parse(&format!("x valid-before=\"tomorrow\" {key_text}")).is_err());
    }
}
