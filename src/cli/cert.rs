//! `certwipe keygen` and `certwipe cert verify|show|countersign`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde_json::json;
use ssh_key::{Algorithm, LineEnding, PrivateKey};

use super::trust::TrustArgs;
use super::{EXIT_FAILED, EXIT_OK, EXIT_USAGE, Failure, print_json};
use crate::cert::countersign::{self, Countersigner};
use crate::cert::files::Role;
use crate::cert::judge;
use crate::cert::judge::{Judgement, Trust, Verdict};
use crate::cert::pdf::{self, Lang};
use crate::cert::sign::{self, PASSPHRASE_ENV, SigningKey};
use crate::cert::{display, render};
use crate::report::Status;

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
    #[arg(long, value_parser = super::named::<Lang>(), default_value_t = Lang::Both)]
    lang: Lang,
    /// Font file with Chinese glyphs, FILE[:INDEX] for a collection [default: Noto Sans CJK SC].
    #[arg(long, value_name = "FILE")]
    font: Option<String>,
    /// The records office's page: the QR code opens URL/c/<id>?sha256=<hex>
    /// [default: verify_url in the station profile; else the QR holds certwipe:<id>:sha256:<hex>]
    #[arg(long, value_name = "URL")]
    verify_url: Option<String>,
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    cert: PathBuf,
    #[command(flatten)]
    trust: TrustArgs,
    /// Require the station signature to be by this principal, as `ssh-keygen -Y
    /// verify -I PRINCIPAL` does [default: any principal the allowed signers grant the key]
    #[arg(long, value_name = "NAME")]
    principal: Option<String>,
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
    #[command(flatten)]
    trust: TrustArgs,
}

#[derive(Args, Debug)]
pub struct CountersignArgs {
    cert: PathBuf,
    /// The countersigner's OpenSSH Ed25519 private key.
    #[arg(long = "sign-key", alias = "key", value_name = "KEY")]
    sign_key: PathBuf,
    #[arg(long, value_parser = super::named::<Role>())]
    role: Role,
    /// The countersigner's name.
    #[arg(long)]
    name: String,
    #[arg(long)]
    title: Option<String>,
    #[arg(long)]
    organisation: Option<String>,
    #[command(flatten)]
    trust: TrustArgs,
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
    /// What the key may sign, for its allowed_signers line (repeat for several):
    /// station (certificates and ledger entries), office (ledger entries only),
    /// validator, witness, approver (countersignatures) [default: station].
    #[arg(long = "role", value_enum, value_name = "ROLE")]
    roles: Vec<KeyRole>,
}

/// What a new key is for: the duties its allowed_signers line grants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyRole {
    /// Signs certificates (namespace certwipe) and ledger entries (certwipe-ledger).
    Station,
    /// The records office: ledger entries only (certwipe-ledger).
    Office,
    Validator,
    Witness,
    Approver,
}

impl KeyRole {
    fn duties(self) -> &'static [sign::Duty] {
        use sign::Duty;
        match self {
            KeyRole::Station => &[Duty::Station, Duty::Ledger],
            KeyRole::Office => &[Duty::Ledger],
            KeyRole::Validator => &[Duty::Validator],
            KeyRole::Witness => &[Duty::Witness],
            KeyRole::Approver => &[Duty::Approver],
        }
    }
}

pub fn run(command: &CertCommand) -> Result<u8, Failure> {
    match command {
        CertCommand::Verify(args) => verify(args),
        CertCommand::Show(args) => show(args),
        CertCommand::Countersign(args) => countersign(args),
        CertCommand::Pdf(args) => {
            let output = args.output.clone().unwrap_or_else(|| args.cert.with_extension("pdf"));
            let allowed = args.trust.load()?;
            let trust = allowed.as_ref().map(|allowed| Trust { allowed, station: None });
            let verify_url = args.trust.verify_url(args.verify_url.as_ref())?;
            let options = pdf::Options {
                lang: args.lang,
                font: args.font.as_deref(),
                verify_url: verify_url.as_deref(),
            };
            crate::durable::Replaceable::Pdf
                .check(&output)
                .map_err(|e| Failure::usage(format!("-o {}: {e}", output.display())))?;
            let verdict = write_pdf(&args.cert, &output, &options, trust)?;
            println!("{}", output.display());
            Ok(match verdict {
                Verdict::Valid => EXIT_OK,
                Verdict::SignerNotChecked => {
                    eprintln!(
                        "certwipe: warning: {}: the signer was not checked (give --allowed-signers); the PDF says so",
                        args.cert.display()
                    );
                    EXIT_OK
                }
                Verdict::Invalid => {
                    eprintln!(
                        "certwipe: {}: the certificate is NOT VALID; the PDF says so and why",
                        args.cert.display()
                    );
                    EXIT_FAILED
                }
            })
        }
    }
}

/// Renders a certificate file (with its signature files attached) to `output`.
pub fn write_pdf(
    cert: &Path,
    output: &Path,
    options: &pdf::Options<'_>,
    trust: Option<Trust<'_>>,
) -> Result<Verdict, Failure> {
    let written = pdf::write_file(cert, output, options, trust)?;
    if let Some(warning) = missing_glyphs_warning(output, &written.missing_glyphs) {
        eprintln!("certwipe: warning: {warning}");
    }
    Ok(written.verdict)
}

/// What to tell the operator about characters the font lacked.
pub fn missing_glyphs_warning(output: &Path, missing: &[char]) -> Option<String> {
    (!missing.is_empty()).then(|| {
        let codes: Vec<String> = missing.iter().map(|c| format!("U+{:04X}", *c as u32)).collect();
        format!(
            "{}: the font has no glyphs for {}; they are printed as code points (give --font with a font that has them)",
            output.display(),
            codes.join(", ")
        )
    })
}

pub fn load_key(path: &Path) -> Result<SigningKey, Failure> {
    Ok(SigningKey::load(path, || sign::passphrase_from_env_or_tty(path))?)
}

fn verify(args: &VerifyArgs) -> Result<u8, Failure> {
    let allowed = args.trust.load()?;
    if args.principal.is_some() && allowed.is_none() {
        return Err(Failure::usage(
            "--principal is checked against allowed signers: give --allowed-signers FILE",
        ));
    }
    let trust = allowed.as_ref().map(|allowed| Trust { allowed, station: args.principal.as_deref() });
    let mut checked = judge::judge_files(&args.cert, trust)?;
    let status = checked.certificate.as_ref().map(|c| c.sanitization.status);
    if args.require_erased && status.is_some_and(|s| s != Status::Erased) {
        let status = status.map(Status::as_str).unwrap_or_default();
        checked.problems.push(format!("status is {status}, not erased (--require-erased)"));
    }
    let verdict = checked.verdict();
    if args.json {
        print_json(&json!({
            "certificate": args.cert,
            "valid": verdict == Verdict::Valid,
            "verdict": match verdict {
                Verdict::Valid => "valid",
                Verdict::SignerNotChecked => "signer-not-checked",
                Verdict::Invalid => "invalid",
            },
            "status": status,
            "sha256": checked.sha256,
            "signatures": checked.signatures.iter().map(|s| json!({
                "role": s.role,
                "file": s.label,
                "name": s.statement.as_ref().map(|st| st.name.clone()),
                "ok": s.result.is_ok(),
                "signer_checked": s.result.as_ref().is_ok_and(|g| g.signer.is_some()),
                "fingerprint": s.result.as_ref().ok().map(|g| g.fingerprint.clone()),
                "principals": s.result.as_ref().ok().map(|g| g.principals().to_vec()),
                "error": s.result.as_ref().err().map(|e| e.to_string()),
            })).collect::<Vec<_>>(),
            "problems": checked.problems,
            "notes": checked.notes,
        }))?;
    } else {
        print_check(&args.cert, &checked);
    }
    Ok(if verdict == Verdict::Valid { EXIT_OK } else { EXIT_FAILED })
}

fn print_check(path: &Path, checked: &Judgement) {
    for signature in &checked.signatures {
        let role = display::escape(&signature.role);
        match &signature.result {
            Ok(good) if good.signer.is_none() => {
                println!("{role}: signature intact, signer not checked (key {})", good.fingerprint)
            }
            Ok(good) => println!(
                "{role}: good signature by {} (key {})",
                display::escape(&good.principals().join(", ")),
                good.fingerprint
            ),
            Err(why) => println!("{role}: BAD signature: {}", display::escape(&why.to_string())),
        }
    }
    for problem in &checked.problems {
        println!("problem: {}", display::escape(problem));
    }
    for note in &checked.notes {
        println!("note: {}", display::escape(note));
    }
    let status = checked.certificate.as_ref().map(|c| c.sanitization.status.as_str()).unwrap_or("unknown");
    match checked.verdict() {
        Verdict::Valid => println!("{}: valid (status {status})", path.display()),
        Verdict::SignerNotChecked => println!(
            "{}: NOT verified: the signatures are intact, but no allowed signers were given, so anyone could have made them; give --allowed-signers FILE (or allowed_signers in the station profile)",
            path.display()
        ),
        Verdict::Invalid => println!("{}: NOT valid", path.display()),
    }
}

fn show(args: &ShowArgs) -> Result<u8, Failure> {
    let allowed = args.trust.load()?;
    let trust = allowed.as_ref().map(|allowed| Trust { allowed, station: None });
    let checked = judge::judge_files(&args.cert, trust)?;
    let Some(cert) = &checked.certificate else {
        return Err(Failure::usage(format!("{}: {}", args.cert.display(), checked.problems.join("; "))));
    };
    print!("{}", render::summary(cert, &checked));
    Ok(EXIT_OK)
}

fn countersign(args: &CountersignArgs) -> Result<u8, Failure> {
    let allowed = args.trust.require(
        "countersigning needs the allowed signers, to check the certificate's signer and that your key is listed",
    )?;
    let key = load_key(&args.sign_key)?;
    let signer = Countersigner {
        key: &key,
        role: args.role,
        name: args.name.clone(),
        title: args.title.clone(),
        organisation: args.organisation.clone(),
    };
    let trust = Trust { allowed: &allowed, station: None };
    let written = countersign::countersign(&args.cert, &signer, trust).map_err(|e| {
        let failure = Failure::from(e);
        Failure {
            message: format!("{}: refusing to countersign: {}", args.cert.display(), failure.message),
            ..failure
        }
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
    let host = crate::report::host_name();
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
    let mut duties: Vec<sign::Duty> = Vec::new();
    for role in if args.roles.is_empty() { &[KeyRole::Station][..] } else { &args.roles } {
        for duty in role.duties() {
            if !duties.contains(duty) {
                duties.push(*duty);
            }
        }
    }
    eprintln!("add this line to the auditors' allowed_signers file:");
    println!("{}", sign::allowed_signers_line(&principal, key.public_key(), &duties));
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
