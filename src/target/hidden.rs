//! Hidden areas (ATA HPA, DCO): planned before confirmation, restored after
//! it, and a medium with sectors left hidden judged incomplete.

use std::path::Path;

use super::{HiddenRestore, PendingRestore, Prepared, Settings, TargetError, take_identity};
use crate::device::{Access, HiddenAreas, Inspected, Medium};
use crate::drive::ata::AtaDevice;
use crate::drive::hidden::{self, MaxAddressCommands};
use crate::drive::linux::with_drive;
use crate::drive::probe::Probed;
use crate::drive::{CommandError, Passthrough};
use crate::report::{Report, Status};

/// Which hidden sectors will be restored once the operator has confirmed:
/// refused now when that cannot be done as asked, and the operator told when
/// they are left hidden (the result can then only be incomplete).
pub(super) fn plan_restore(
    drive: &Probed,
    path: &str,
    restore: HiddenRestore,
    note: &dyn Fn(&str),
) -> Result<Option<HiddenAreas>, TargetError> {
    let Some(areas) = drive.info.hidden.filter(|h| h.hidden_sectors() > 0) else { return Ok(None) };
    let refused = |why: String| TargetError::HiddenNotRestored { path: path.to_string(), why };
    if restore == HiddenRestore::Leave {
        note(&format!(
            "warning: {path}: {} sectors are hidden by an HPA/DCO and will not be reached, so the result can only be incomplete; --restore-hidden (and --restore-dco for a DCO) makes them addressable first",
            areas.hidden_sectors()
        ));
        return Ok(None);
    }
    if areas.dco_sectors() > 0 && restore != HiddenRestore::HpaAndDco {
        return Err(refused(format!(
            "a DCO hides {} sectors; restoring it is permanent, so it needs --restore-dco as well",
            areas.dco_sectors()
        )));
    }
    if areas.hpa_sectors() > 0 && drive.max_address.is_none() {
        return Err(refused("the drive has no command to restore its HPA".into()));
    }
    Ok(Some(areas))
}

/// Restores what [`plan_restore`] planned: the DCO first (permanent), then the
/// HPA (until power-off) if one still limits the size. The areas, as restored.
fn restore_areas(
    drive: &mut dyn Passthrough,
    mut areas: HiddenAreas,
    commands: Option<MaxAddressCommands>,
    path: &str,
    note: &dyn Fn(&str),
) -> Result<HiddenAreas, CommandError> {
    let mut ata = AtaDevice { pt: drive };
    if areas.dco_sectors() > 0 {
        hidden::restore_dco(&mut ata)?;
        areas.dco_restored = true;
        note(&format!("{path}: DCO restored (permanently) to {} sectors", areas.full_sectors()));
    }
    let identify = ata.read_block("IDENTIFY DEVICE", &crate::drive::ata::identify())?;
    let now = crate::drive::identify::decode_ata(&identify).capacity.map_or(0, |c| c.sectors);
    // Without the commands (checked when planned) the rescan finds the size short.
    if now < areas.full_sectors()
        && let Some(commands) = commands
    {
        hidden::restore_hpa(&mut ata, commands)?;
        areas.hpa_restored = true;
        note(&format!("{path}: HPA restored until power-off: {} sectors addressable", areas.full_sectors()));
    }
    Ok(areas)
}

/// Makes the kernel re-read the drive's size, and checks it now sees all of it.
fn rescan(
    target: &mut Inspected,
    sectors: u64,
    failed: &dyn Fn(String) -> TargetError,
) -> Result<(), TargetError> {
    let name = &target.identity.name;
    std::fs::write(format!("/sys/block/{name}/device/rescan"), "1")
        .map_err(|e| failed(format!("the kernel could not be asked to re-read the size ({e})")))?;
    let logical = u64::from(target.identity.logical_sector_size.max(512));
    let fresh = crate::device::inspect(Path::new(&target.identity.path), &crate::device::SystemUse::read())?;
    if fresh.identity.size_bytes != sectors * logical {
        return Err(failed(format!(
            "the kernel sees {} bytes, not the {} the drive now has",
            fresh.identity.size_bytes,
            sectors * logical
        )));
    }
    target.identity.size_bytes = fresh.identity.size_bytes;
    Ok(())
}

impl PendingRestore {
    pub(super) fn describe(&self) -> String {
        let dco = self.areas.dco_sectors();
        let hpa = self.areas.hpa_sectors();
        let mut steps = Vec::new();
        if dco > 0 {
            steps.push(format!("restore the DCO PERMANENTLY ({dco} sectors)"));
        }
        if hpa > 0 {
            steps.push(format!("restore the HPA until power-off ({hpa} sectors)"));
        }
        format!("first {}, then ", steps.join(" and "))
    }
}

/// Restores the hidden areas of every target, once every target is
/// confirmed (a DCO restore is permanent).
pub fn restore_all(
    prepared: Vec<Prepared>,
    settings: &Settings,
    note: &dyn Fn(&str),
) -> Result<Vec<Prepared>, TargetError> {
    prepared.into_iter().map(|job| job.restore_hidden(settings, note)).collect()
}

impl Prepared {
    /// Makes the planned hidden sectors addressable — after the operator has
    /// confirmed, because a DCO restore is permanent — then opens the medium
    /// again at its full size and plans its work for that size.
    pub fn restore_hidden(
        mut self,
        settings: &Settings,
        note: &dyn Fn(&str),
    ) -> Result<Prepared, TargetError> {
        let Some(PendingRestore { areas, mut probed }) = self.restore.take() else { return Ok(self) };
        let path = self.target.identity.path.clone();
        let fd = self.medium.block_fd().expect("hidden areas are a drive's, on a block device");
        let restored = with_drive(fd, |drive| restore_areas(drive, areas, probed.max_address, &path, note))
            .map_err(|source| TargetError::RestoreFailed { path: path.clone(), source })?;
        let Prepared { mut target, medium, records, report_path, .. } = self;
        drop(medium);
        let after =
            |source: TargetError| TargetError::AfterRestore { path: path.clone(), source: Box::new(source) };
        let failed = |why: String| TargetError::HiddenNotRestored { path: path.clone(), why };
        rescan(&mut target, restored.full_sectors(), &failed).map_err(after)?;
        probed.info.hidden = Some(restored);
        take_identity(&mut target.identity, &probed.info);
        let medium = Medium::open(&mut target, Access::ReadWrite).map_err(|e| after(e.into()))?;
        let work = settings.work(&target, &medium, Some(probed), note).map_err(after)?;
        Ok(Prepared { target, medium, work, records, report_path, restore: None })
    }
}

/// Sectors an HPA or DCO hid, and that were not restored, were not reached:
/// such a medium is not `erased`, whatever the rest says.
pub fn judge_hidden(mut report: Report) -> Report {
    if let Some(hidden) = report.target.hidden
        && report.status == Status::Erased
        && hidden.hidden_sectors() > 0
        && !(hidden.hpa_restored || hidden.dco_restored)
    {
        report.status = Status::Incomplete;
        report.status_reason = format!(
            "{} hidden sectors not overwritten: an HPA/DCO hides them (the drive has {}, the host reached {}); run again with --restore-hidden",
            hidden.hidden_sectors(),
            hidden.full_sectors(),
            hidden.accessible_sectors
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::drive::fake::FakeAta;
    use crate::drive::probe;
    use crate::drive::sanitize::Action;
    use crate::exit::ExitStatus;

    const SET_MAX_ADDRESS_EXT: u8 = 0x37;

    fn probed(drive: &mut FakeAta) -> Probed {
        probe::probe(drive, "sata").unwrap().expect("the fake drive answers")
    }

    #[test]
    fn a_restore_is_planned_without_changing_the_drive_and_done_only_when_asked() {
        let mut drive = FakeAta::new(1000).with_dco(900).with_hpa(700);
        let probed = probed(&mut drive);
        let planned = plan_restore(&probed, "/dev/sdx", HiddenRestore::HpaAndDco, &|_| {}).unwrap();
        let planned = planned.expect("both areas are to be restored");
        assert_eq!(drive.accessible(), 700, "probing and planning left the sizes alone");
        assert!(
            !drive.sent.contains(&SET_MAX_ADDRESS_EXT),
            "no SET MAX before confirmation: {:x?}",
            drive.sent
        );
        let description = PendingRestore { areas: planned, probed: probed.clone() }.describe();
        assert_eq!(
            description,
            "first restore the DCO PERMANENTLY (100 sectors) and restore the HPA until power-off (200 sectors), then "
        );

        let restored = restore_areas(&mut drive, planned, probed.max_address, "/dev/sdx", &|_| {}).unwrap();
        assert_eq!(drive.accessible(), 1000);
        assert!(restored.dco_restored);
        assert_eq!(restored.full_sectors(), 1000);
    }

    #[test]
    fn a_medium_with_sectors_left_hidden_is_incomplete_not_erased() {
        let mut drive = crate::drive::fake::FakeNvme::new(4096);
        let disk = drive.disk.clone();
        let erased = crate::purge::run_scripted(
            &mut drive,
            &*disk,
            "nvme",
            Action::Auto,
            crate::device::MediaType::Nvme,
        );
        assert_eq!(erased.status, Status::Erased, "{}", erased.status_reason);
        let with_hpa = |restored: bool| {
            let mut report = erased.clone();
            report.target.hidden = Some(HiddenAreas {
                accessible_sectors: 4096,
                native_sectors: Some(5000),
                factory_sectors: None,
                hpa_restored: restored,
                dco_restored: false,
            });
            judge_hidden(report)
        };
        let left = with_hpa(false);
        assert_eq!(left.status, Status::Incomplete);
        assert!(
            left.status_reason.starts_with("904 hidden sectors not overwritten"),
            "{}",
            left.status_reason
        );
        assert_eq!(with_hpa(true).status, Status::Erased, "restored first, then reached");
    }

    #[test]
    fn hidden_areas_that_cannot_be_restored_as_asked_are_refused_before_anything() {
        let mut drive = FakeAta::new(1000).with_dco(900).with_hpa(700);
        let mut probed = probed(&mut drive);
        let notes = RefCell::new(Vec::new());
        let note = |text: &str| notes.borrow_mut().push(text.to_string());
        assert!(plan_restore(&probed, "/dev/sdx", HiddenRestore::Leave, &note).unwrap().is_none());
        assert!(notes.borrow()[0].contains("300 sectors are hidden"), "{:?}", notes.borrow());

        let error = plan_restore(&probed, "/dev/sdx", HiddenRestore::Hpa, &note).unwrap_err();
        assert!(error.to_string().contains("needs --restore-dco"), "{error}");
        assert_eq!(error.exit_status(), crate::exit::USAGE);

        probed.max_address = None;
        let error = plan_restore(&probed, "/dev/sdx", HiddenRestore::HpaAndDco, &note).unwrap_err();
        assert!(error.to_string().contains("no command to restore its HPA"), "{error}");
        assert_eq!(drive.accessible(), 700);

        // Once the drive was changed, nothing may promise that nothing was.
        let failed = TargetError::RestoreFailed {
            path: "/dev/sdx".into(),
            source: CommandError::io("SET MAX ADDRESS EXT", std::io::Error::other("gone")),
        };
        assert_eq!(failed.exit_status(), crate::exit::FAILED);
    }
}
