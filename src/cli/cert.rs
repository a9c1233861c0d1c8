//! `certwipe keygen` and `certwipe cert verify|show|countersign`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;
use ssh_key::{Algorithm, LineEnding, PrivateKey};

use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, Failure, print_json};
use crate::cert::files::{self, Checked, Countersigner, Role};
use crate::cert::pdf::{self, Lang};
use crate::cert::sign::{self, AllowedSigners, PASSPHRASE_ENV, SigningKey};
use crate::cert::{CertError, render};
use crate::engine::report::Status;

#[derive(Subcommand, Debug)]
pub enum CertCommand {
    /// Check every signature (and signer, with --allowed-signers), the schema and
    /// the internal consistency. Exit 0 only when all holds.
    Verify(VerifyArgs),
    /// Print a readable summary, with the state of every signature.
    Show(ShowArgs),
    /// Add a countersignature (validator, witness or approver) beside the
    /// certificate, without touching its bytes.
    Countersign(CountersignArgs),
    /// Print the certificate as an A4 PDF (Chinese and English), with a QR code of
    /// its id and SHA-256, and the signed files attached.
    Pdf(PdfArgs),
}

#[derive(Args, Debug)]
pub struct PdfArgs {
    cert: PathBuf,
    /// Output file [default: CERT with .pdf instead of .json].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Lang::Both)]
    lang: Lang,
    /// Font file with Chinese glyphs, FILE[:INDEX] for a collection [default: Noto Sans CJK SC].
    #[arg(long, value_name = "FILE")]
    font: Option<String>,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    cert: PathBuf,
    /// OpenSSH allowed_signers file: every signer must be listed in it (namespace certwipe).
    #[arg(long, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
    /// Also fail unless the certificate's status is `erased` (for scripts that
    /// accept a medium only when it was erased).
    #[arg(long)]
    require_erased: bool,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    cert: PathBuf,
    #[arg(long, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct CountersignArgs {
    cert: PathBuf,
    /// The countersigner's OpenSSH Ed25519 private key.
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    #[arg(long, value_enum)]
    role: Role,
    /// The countersigner's name.
    #[arg(long)]
    name: String,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    organisation: Option<String>,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the private key (the public key goes to FILE.pub).
    #[arg(short = 'f', long, default_value = "certwipe_ed25519", value_name = "FILE")]
    file: PathBuf,
    /// Who signs with this key, for the allowed_signers line [default: certwipe@HOST].
    #[arg(long)]
    principal: Option<String>,
    /// Write the key unencrypted (otherwise a passphrase is asked, or taken from CERTWIPE_KEY_PASSPHRASE).
    #[arg(long)]
    no_passphrase: bool,
}

pub fn run(command: &CertCommand) -> Result<u8, Failure> {
    match command {
        CertCommand::Verify(args) => verify(args),
        CertCommand::Show(args) => show(args),
        CertCommand::Countersign(args) => countersign(args),
        CertCommand::Pdf(args) => {
            let output = args.output.clone().unwrap_or_else(|| args.cert.with_extension("pdf"));
            write_pdf(&args.cert, &output, args.lang, args.font.as_deref())?;
            println!("{}", output.display());
            Ok(EXIT_OK)
        }
    }
}

/// Renders a certificate file (with its signature files attached) to `output`.
pub fn write_pdf(cert: &Path, output: &Path, lang: Lang, font: Option<&str>) -> Result<(), Failure> {
    let checked = files::check_files(cert, None)?;
    let Some(certificate) = &checked.certificate else {
        return Err(Failure::usage(format!("{}: {}", cert.display(), checked.problems.join("; "))));
    };
    let bytes = pdf::render(certificate, &checked, &files::with_companions(cert), lang, font)
        .map_err(|e| Failure::usage(e.to_string()))?;
    crate::durable::write_atomically(output, &bytes, 0o644)
        .map_err(|e| Failure::usage(format!("{}: {e}", output.display())))
}

fn allowed(path: Option<&Path>) -> Result<Option<AllowedSigners>, Failure> {
    Ok(path.map(AllowedSigners::load).transpose()?)
}

pub fn load_key(path: &Path) -> Result<SigningKey, Failure> {
    Ok(SigningKey::load(path, || sign::passphrase_from_env_or_tty(path))?)
}

fn verify(args: &VerifyArgs) -> Result<u8, Failure> {
    let allowed = allowed(args.allowed_signers.as_deref())?;
    let mut checked = files::check_files(&args.cert, allowed.as_ref())?;
    let status = checked.certificate.as_ref().map(|c| c.sanitization.status);
    if args.require_erased && status.is_some_and(|s| s != Status::Erased) {
        let status = status.map(Status::as_str).unwrap_or_default();
        checked.problems.push(format!("status is {status}, not erased (--require-erased)"));
    }
    let valid = checked.is_valid();
    if args.json {
        print_json(&json!({
            "certificate": args.cert,
            "valid": valid,
            "status": status,
            "sha256": checked.sha256,
            "signatures": checked.signatures.iter().map(|s| json!({
                "role": s.role,
                "file": s.file,
                "name": s.statement.as_ref().map(|st| st.name.clone()),
                "ok": s.result.is_ok(),
                "fingerprint": s.result.as_ref().ok().map(|g| g.fingerprint.clone()),
                "principals": s.result.as_ref().ok().map(|g| g.principals.clone()),
                "error": s.result.as_ref().err(),
            })).collect::<Vec<_>>(),
            "problems": checked.problems,
        }))?;
    } else {
        print_check(&args.cert, &checked);
    }
    Ok(if valid { EXIT_OK } else { EXIT_FAILED })
}

fn print_check(path: &Path, checked: &Checked) {
    for signature in &checked.signatures {
        match &signature.result {
            Ok(good) if good.principals.is_empty() => {
                println!("{}: good signature, key {}", signature.role, good.fingerprint)
            }
            Ok(good) => println!(
                "{}: good signature by {} (key {})",
                signature.role,
                good.principals.join(", "),
                good.fingerprint
            ),
            Err(why) => println!("{}: BAD signature ({}): {why}", signature.role, signature.file.display()),
        }
    }
    for problem in &checked.problems {
        println!("problem: {problem}");
    }
    let status = checked.certificate.as_ref().map(|c| c.sanitization.status.as_str()).unwrap_or("unknown");
    if checked.is_valid() {
        println!("{}: valid (status {status})", path.display());
    } else {
        println!("{}: NOT valid", path.display());
    }
}

fn show(args: &ShowArgs) -> Result<u8, Failure> {
    let allowed = allowed(args.allowed_signers.as_deref())?;
    let checked = files::check_files(&args.cert, allowed.as_ref())?;
    let Some(cert) = &checked.certificate else {
        return Err(Failure::usage(format!("{}: {}", args.cert.display(), checked.problems.join("; "))));
    };
    print!("{}", render::summary(cert, &checked));
    Ok(EXIT_OK)
}

fn countersign(args: &CountersignArgs) -> Result<u8, Failure> {
    let key = load_key(&args.key)?;
    let signer = Countersigner {
        key: &key,
        role: args.role,
        name: args.name.clone(),
        title: args.title.clone(),
        organisation: args.organisation.clone(),
    };
    let written = files::countersign(&args.cert, &signer).map_err(|e| match e {
        CertError::Invalid(why) => Failure {
            code: EXIT_FAILED,
            message: format!("{}: refusing to countersign: {why}", args.cert.display()),
        },
        other => other.into(),
    })?;
    for file in written {
        println!("{}", file.display());
    }
    Ok(EXIT_OK)
}

pub fn keygen(args: &KeygenArgs) -> Result<u8, Failure> {
    let public_path = PathBuf::from(format!("{}.pub", args.file.display()));
    for path in [&args.file, &public_path] {
        if path.exists() {
            return Err(Failure::usage(format!(
                "{} exists; certwipe never overwrites a key",
                path.display()
            )));
        }
    }
    let host = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    let principal = args.principal.clone().unwrap_or_else(|| format!("certwipe@{host}"));
    let mut key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
        .map_err(|e| Failure::usage(format!("key generation failed: {e}")))?;
    key.set_comment(&principal);
    let passphrase = if args.no_passphrase { None } else { Some(new_passphrase()?) };
    let key = match passphrase.filter(|p| !p.is_empty()) {
        Some(passphrase) => key
            .encrypt(&mut ssh_key::rand_core::OsRng, passphrase)
            .map_err(|e| Failure::usage(format!("encrypting the key failed: {e}")))?,
        None => key,
    };
    let private = key.to_openssh(LineEnding::LF).map_err(|e| Failure::usage(e.to_string()))?;
    write_private(&args.file, private.as_bytes())?;
    let public = key.public_key().to_openssh().map_err(|e| Failure::usage(e.to_string()))?;
    crate::durable::write_new(&public_path, format!("{public}\n").as_bytes(), 0o644)
        .map_err(|e| Failure::usage(format!("{}: {e}", public_path.display())))?;
    eprintln!("wrote {} (private, mode 600) and {}", args.file.display(), public_path.display());
    eprintln!("add this line to the auditors' allowed_signers file:");
    println!("{}", sign::allowed_signers_line(&principal, key.public_key()));
    Ok(EXIT_OK)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    crate::durable::write_new(path, bytes, 0o600)
        .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))
}

fn new_passphrase() -> Result<String, Failure> {
    if let Ok(passphrase) = std::env::var(PASSPHRASE_ENV) {
        return Ok(passphrase);
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure {
            code: EXIT_USAGE,
            message: format!(
                "no terminal to ask for a passphrase: set {PASSPHRASE_ENV}, or pass --no-passphrase"
            ),
        });
    }
    let first = rpassword::prompt_password("Passphrase for the new key (empty for none): ")
        .map_err(|e| Failure::usage(e.to_string()))?;
    let second =
        rpassword::prompt_password("Same passphrase again: ").map_err(|e| Failure::usage(e.to_string()))?;
    if first != second {
        return Err(Failure::usage("the passphrases differ; no key written"));
    }
    Ok(first)
}
