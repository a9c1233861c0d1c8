//! Internal consistency of a certificate for a drive's own erase: purge is
//! claimed only with the drive's recorded command, its reported success, and
//! a reading of the medium that found none of the content written before.

use super::model::Certificate;
use crate::report::{FirmwareRecord, SectorRange, Status, VerificationResult, VerifyMode};

pub fn check(cert: &Certificate, firmware: &FirmwareRecord, fail: &mut impl FnMut(String)) {
    let s = &cert.sanitization;
    let v = &firmware.verification;
    check_a_drive_answered(cert, firmware, fail);
    if firmware.technique != s.technique {
        fail(format!(
            "the technique is {}, but the drive's command recorded is a {}",
            s.technique.as_str(),
            firmware.technique.as_str()
        ));
    }
    if firmware.command.is_empty() || firmware.command_bytes.is_empty() {
        fail("the drive's command is not recorded".into());
    }
    if !s.passes.is_empty() || s.final_content_digest.is_some() {
        fail("a drive's erase lists host overwrite passes or a content digest".into());
    }
    if s.method.id != firmware.technique.as_str() {
        fail(format!("method {:?} is not the drive technique {}", s.method.id, firmware.technique.as_str()));
    }
    let summary_agrees = s.verify_mode == VerifyMode::Sample
        && s.verification.result == v.result
        && s.verification.passes_verified.is_empty();
    if !summary_agrees {
        fail("the verification summary does not follow from the drive erase's verification".into());
    }
    if v.result != VerificationResult::NotRun && !firmware.drive_reported_success {
        fail("a verification is recorded although the drive never reported success".into());
    }
    if s.status == Status::Erased {
        let clean = v.marker_remaining.is_empty() && v.unexpected.is_empty() && v.unreadable.is_empty();
        if !firmware.drive_reported_success
            || v.result != VerificationResult::Passed
            || !clean
            || v.bytes == 0
        {
            fail(
                "status erased, but the drive did not report success or the reading of the medium did not prove it"
                    .into(),
            );
        }
    }
    check_verification(cert, firmware, fail);
}

/// A drive's own erase needs a drive: a block device whose identity the drive
/// itself gave, reached by the protocol its transport carries. An image file,
/// a loop device or a virtual disk has no firmware to erase anything.
fn check_a_drive_answered(cert: &Certificate, firmware: &FirmwareRecord, fail: &mut impl FnMut(String)) {
    use crate::device::{IdentitySource, MediaType, TargetKind};
    let m = &cert.medium;
    let no_drive = m.kind != TargetKind::BlockDevice
        || matches!(m.media_type, MediaType::ImageFile | MediaType::Virtual);
    if no_drive {
        fail(format!(
            "it records the drive's own erase ({}) on a medium of type {} (transport {}), which has no drive firmware",
            firmware.command,
            m.media_type.as_str(),
            m.transport
        ));
    }
    if !matches!(
        m.identity_source,
        Some(IdentitySource::AtaIdentify | IdentitySource::NvmeIdentify | IdentitySource::ScsiVpd)
    ) {
        fail(
            "it records the drive's own erase, but not the drive's own identity (the drive never answered)"
                .into(),
        );
    }
    let carried = match firmware.protocol.as_str() {
        "nvme" => m.transport == "nvme",
        "ata" | "scsi" => matches!(m.transport.as_str(), "sata" | "sas" | "scsi" | "usb"),
        _ => false,
    };
    if !carried {
        fail(format!("a {} command cannot reach a drive over transport {}", firmware.protocol, m.transport));
    }
}

fn check_verification(cert: &Certificate, firmware: &FirmwareRecord, fail: &mut impl FnMut(String)) {
    let v = &firmware.verification;
    let size = cert.medium.size_bytes;
    let wrong_result = match v.result {
        VerificationResult::Passed => {
            !v.marker_remaining.is_empty() || !v.unexpected.is_empty() || !v.unreadable.is_empty()
        }
        VerificationResult::Failed => v.marker_remaining.is_empty() && v.unexpected.is_empty(),
        VerificationResult::Incomplete => v.unreadable.is_empty(),
        VerificationResult::NotRun => false,
    };
    if wrong_result {
        fail(format!("the drive erase's verification result {} contradicts its sector lists", v.result));
    }
    if v.bytes > size || (v.coverage - v.bytes as f64 / size as f64).abs() > 1e-9 {
        fail(format!(
            "the drive erase's verification: coverage {} does not match {} bytes",
            v.coverage, v.bytes
        ));
    }
    if v.result != VerificationResult::NotRun {
        let unit = crate::engine::sample::unit(u64::from(cert.medium.logical_sector_size));
        let planned = match &v.sample {
            Some(sample) => crate::engine::sample::plan(size, unit, sample.seed).map(|plan| plan.bytes()),
            None => Some(size),
        };
        if planned != Some(v.bytes) {
            fail(format!("the drive erase's sample does not give the {} bytes said to be read", v.bytes));
        }
    }
    let sectors = size.div_ceil(u64::from(cert.medium.logical_sector_size));
    let outside =
        |ranges: &[SectorRange]| ranges.iter().any(|r| r.first_lba.saturating_add(r.sectors) > sectors);
    if outside(&v.marker_remaining) || outside(&v.unexpected) || outside(&v.unreadable) {
        fail("the drive erase's verification lists a sector beyond the end of the medium".into());
    }
    for time in [&firmware.started_at, &firmware.finished_at] {
        if humantime::parse_rfc3339(time).is_err() {
            fail(format!("the drive command's time {time:?} is not an RFC 3339 UTC time"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::cert::check::inconsistencies;
    use crate::cert::model::{Category, Certificate, Technique};
    use crate::cert::records::Records;
    use crate::device::{BlockIo, HiddenAreas, MediaType};
    use crate::drive::Passthrough;
    use crate::drive::fake::{FakeAta, FakeNvme, SanitizeScript, SecurityScript};
    use crate::drive::sanitize::Action;
    use crate::report::{SectorRange, Status, VerificationResult};

    fn certificate(
        pt: &mut dyn Passthrough,
        disk: &dyn BlockIo,
        transport: &str,
        action: Action,
        media: MediaType,
    ) -> Certificate {
        let report = crate::purge::run_scripted(pt, disk, transport, action, media);
        let records = Records {
            organisation: None,
            site: None,
            asset_number: None,
            classification_before: None,
            classification_after: None,
            media_source: None,
            data_backed_up: crate::cert::records::BackedUp::Unknown,
            backup_location: None,
            destination: None,
            operator: Default::default(),
            notes: None,
        };
        Certificate::issue(report, records)
    }

    fn proven_block_erase() -> Certificate {
        let script = SanitizeScript { block: true, polls: 1, ..SanitizeScript::default() };
        let mut drive = FakeAta::new(4096).with_sanitize(script);
        let disk = drive.disk.clone();
        certificate(&mut drive, &*disk, "sata", Action::BlockErase, MediaType::Ssd)
    }

    fn problems_after(change: impl FnOnce(&mut Certificate)) -> Vec<String> {
        let mut cert = proven_block_erase();
        change(&mut cert);
        inconsistencies(&cert)
    }

    fn says(problems: &[String], text: &str) -> bool {
        problems.iter().any(|p| p.contains(text))
    }

    #[test]
    fn a_proven_drive_erase_is_a_consistent_purge() {
        let cert = proven_block_erase();
        assert_eq!((cert.sanitization.status, cert.sanitization.category), (Status::Erased, Category::Purge));
        assert_eq!(cert.sanitization.technique, Technique::SanitizeBlockErase);
        assert!(inconsistencies(&cert).is_empty(), "{:?}", inconsistencies(&cert));
        // The flash warning is about host overwrites; a drive erase does not carry it.
        assert!(!cert.sanitization.warnings.iter().any(|w| w.contains("host overwrite cannot")));
    }

    #[test]
    fn an_unproven_drive_erase_claims_nothing() {
        let script = SanitizeScript { block: true, lies: true, ..SanitizeScript::default() };
        let mut liar = FakeAta::new(4096).with_sanitize(script);
        let disk = liar.disk.clone();
        let cert = certificate(&mut liar, &*disk, "sata", Action::BlockErase, MediaType::Ssd);
        assert_eq!((cert.sanitization.status, cert.sanitization.category), (Status::Failed, Category::None));
        assert!(inconsistencies(&cert).is_empty(), "{:?}", inconsistencies(&cert));
    }

    #[test]
    fn purge_without_the_drive_command_or_its_proof_is_rejected() {
        let problems = problems_after(|c| c.sanitization.firmware = None);
        assert!(says(&problems, "records neither the drive's command"), "{problems:?}");

        let problems =
            problems_after(|c| c.sanitization.firmware.as_mut().unwrap().drive_reported_success = false);
        assert!(says(&problems, "did not report success or the reading"), "{problems:?}");

        let problems = problems_after(|c| {
            let v = &mut c.sanitization.firmware.as_mut().unwrap().verification;
            v.marker_remaining.push(SectorRange { first_lba: 3, sectors: 1 });
        });
        assert!(says(&problems, "contradicts its sector lists"), "{problems:?}");

        let problems = problems_after(|c| {
            let firmware = c.sanitization.firmware.as_mut().unwrap();
            firmware.verification.result = VerificationResult::NotRun;
            c.sanitization.verification.result = VerificationResult::NotRun;
        });
        assert!(says(&problems, "did not report success or the reading"), "{problems:?}");

        let problems = problems_after(|c| c.sanitization.firmware.as_mut().unwrap().verification.bytes /= 2);
        assert!(says(&problems, "coverage"), "{problems:?}");

        let problems = problems_after(|c| c.sanitization.firmware.as_mut().unwrap().command_bytes.clear());
        assert!(says(&problems, "command is not recorded"), "{problems:?}");

        let problems = problems_after(|c| c.sanitization.technique = Technique::SanitizeCryptoErase);
        assert!(says(&problems, "the drive's command recorded is a sanitize-block-erase"), "{problems:?}");
    }

    #[test]
    fn categories_follow_technique_medium_and_proof() {
        let problems = problems_after(|c| {
            c.sanitization.status = Status::Failed;
            c.sanitization.warnings.push("status failed: this certificate does NOT attest".into());
        });
        assert!(says(&problems, "category purge is not what"), "{problems:?}");
        // A normal security erase is Clear even when proven.
        let script = SecurityScript { supported: true, ..SecurityScript::default() };
        let mut drive = FakeAta::new(4096).with_security(script);
        let disk = drive.disk.clone();
        let mut cert = certificate(&mut drive, &*disk, "sata", Action::SecurityErase, MediaType::Hdd);
        assert_eq!((cert.sanitization.status, cert.sanitization.category), (Status::Erased, Category::Clear));
        assert!(inconsistencies(&cert).is_empty(), "{:?}", inconsistencies(&cert));
        cert.sanitization.category = Category::Purge;
        assert!(says(&inconsistencies(&cert), "category purge is not what"));
        // NVMe Format with secure erase on QEMU's controller: purge once proven.
        let mut nvme = FakeNvme::new(4096);
        let disk = nvme.disk.clone();
        let cert = certificate(&mut nvme, &*disk, "nvme", Action::Auto, MediaType::Nvme);
        assert_eq!(
            (cert.sanitization.technique, cert.sanitization.category),
            (Technique::FormatUserDataErase, Category::Purge)
        );
    }

    #[test]
    fn hidden_sectors_left_hidden_forbid_erased() {
        let problems = problems_after(|c| {
            c.medium.hidden = Some(HiddenAreas {
                accessible_sectors: 4096,
                native_sectors: Some(5000),
                factory_sectors: None,
                hpa_restored: false,
                dco_restored: false,
            });
        });
        assert!(says(&problems, "904 hidden sectors were not restored"), "{problems:?}");
    }
}
