//! `certwipe audit`: re-read a medium and confirm it is the certified one and still
//! holds what its certificate says was written last.

use std::path::PathBuf;

use clap::Args;
use indicatif::HumanBytes;
use serde_json::json;

use super::output::Ui;
use super::trust::TrustArgs;
use super::{EXIT_FAILED, EXIT_OK, Failure, print_json, signals};
use crate::cert::Certificate;
use crate::cert::judge;
use crate::cert::judge::Trust;
use crate::device::{self, Access, IdentitySource, Medium, SystemUse};
use crate::engine;
use crate::report::VerificationResult;

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// The medium (block device or image file) to re-read. Opened read-only.
    target: PathBuf,
    /// Its certificate (CERT.json, with CERT.json.sig beside it).
    #[arg(long, value_name = "CERT")]
    cert: PathBuf,
    /// Read the whole medium (the default); also checks the recorded content digest.
    #[arg(long, conflicts_with = "sample")]
    full: bool,
    /// Read a NIST 800-88 §4.7 sample (>= 10 %) instead of everything.
    #[arg(long)]
    sample: bool,
    #[command(flatten)]
    trust: TrustArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &AuditArgs) -> Result<u8, Failure> {
    let cert = verified_certificate(args)?;
    let Some(last) = cert.sanitization.passes.last() else {
        return Err(Failure::usage(format!(
            "{}: the drive erased this medium itself ({}), leaving no written content to read back; an audit re-reads host overwrites (certwipe wipe)",
            args.cert.display(),
            cert.sanitization.technique.as_str()
        )));
    };

    let (target, medium) = open_target(&args.target, &cert.medium)?;
    let identity_problems = cert.medium.differences(&target.identity);

    signals::install();
    let sampled = args.sample;
    let digest = cert.sanitization.final_content_digest.is_some();
    let ui = Ui::choose(args.json);
    let view = ui.view(&target.identity.name, &target.identity.path);
    let audit = engine::audit(&medium, last, sampled, digest, &view, &signals::STOP)
        .expect("a valid certificate's passes regenerate");
    view.finish();

    let mut problems = identity_problems;
    if let Some(why) = &audit.halted {
        problems.push(format!("the audit stopped: {why}"));
    }
    let v = &audit.verification;
    if v.result != VerificationResult::Passed {
        problems.push(format!(
            "the medium does not hold pass {}'s content: {} mismatched and {} unreadable sector(s)",
            last.index,
            crate::report::total_sectors(&v.mismatches),
            crate::report::total_sectors(&v.unreadable)
        ));
    }
    if let (Some(recorded), Some(found)) = (&cert.sanitization.final_content_digest, &audit.digest)
        && (recorded.sha256 != found.sha256 || recorded.blake3 != found.blake3)
    {
        problems.push("the content digest differs from the certificate's".to_string());
    }
    let passed = problems.is_empty();
    if args.json {
        print_json(&json!({
            "certificate_id": cert.certificate_id,
            "target": target.identity.path,
            "passed": passed,
            "verification": v,
            "digest": audit.digest,
            "problems": problems,
        }))?;
    } else {
        println!(
            "{}: audited against certificate {}: {} read back, {} ({:.1}% of the medium)",
            target.identity.path,
            cert.certificate_id,
            v.kind,
            HumanBytes(v.bytes_read),
            v.coverage * 100.0
        );
        for problem in &problems {
            println!("problem: {problem}");
        }
        println!("{}", if passed { "audit passed" } else { "audit FAILED" });
    }
    Ok(if passed { EXIT_OK } else { EXIT_FAILED })
}

/// The certificate, only when its signatures verify against the allowed signers.
fn verified_certificate(args: &AuditArgs) -> Result<Certificate, Failure> {
    let allowed = args.trust.require("an audit checks the medium against a verified certificate")?;
    let judgement = judge::judge_files(&args.cert, Some(Trust { allowed: &allowed, station: None }))?;
    match judgement.valid_certificate() {
        Some(certificate) => Ok(certificate.clone()),
        None => Err(Failure {
            code: EXIT_FAILED,
            message: format!(
                "{}: the certificate does not verify, so there is nothing to audit against: {}",
                args.cert.display(),
                judgement.reasons().join("; ")
            ),
        }),
    }
}

/// Opens the medium read-only. A certificate with the drive's own identity is
/// compared with what the drive says now, like with like.
fn open_target(
    path: &std::path::Path,
    recorded: &device::Identity,
) -> Result<(device::Inspected, Medium), Failure> {
    let mut target = device::inspect(path, &SystemUse::read())?;
    if recorded.identity_source.is_some_and(|s| s != IdentitySource::Sysfs) {
        let note = |text: &str| eprintln!("certwipe: {text}");
        crate::target::ask_drive(&mut target, &note)?;
    }
    let medium = Medium::open(&mut target, Access::ReadOnly)?;
    Ok((target, medium))
}
