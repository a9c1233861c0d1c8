//! Asks a drive who it is, in whichever command set it answers: NVMe for
//! NVMe namespaces; otherwise ATA IDENTIFY through ATA PASS-THROUGH (SATA
//! behind libata or a SAT bridge), and SCSI INQUIRY/VPD when that is refused.

use std::io;

use serde::{Deserialize, Serialize};

use super::ata::{self, AtaDevice};
use super::hidden::{self, MaxAddressCommands};
use super::identify::{self, DriveInfo, IdentitySource, ScsiFeatures};
use super::nvme::{self, NvmeDevice};
use super::scsi::{self, ScsiDevice, ScsiError};
use super::{CommandError, NvmeAdmin, Passthrough, ScsiReply, Transfer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Ata,
    Nvme,
    Scsi,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Ata => "ata",
            Protocol::Nvme => "nvme",
            Protocol::Scsi => "scsi",
        }
    }
}

/// An NVMe namespace's facts that a Format NVM needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespaceFacts {
    pub nsid: u32,
    pub lba_format: u8,
    /// Namespaces attached to the controller (Identify CNS 02h), when it says.
    pub active: Option<u32>,
}

/// What probing found.
#[derive(Clone)]
pub struct Probed {
    pub protocol: Protocol,
    pub info: DriveInfo,
    pub namespace: Option<NamespaceFacts>,
    /// ATA: the HPA/AMA commands this drive answers.
    pub max_address: Option<MaxAddressCommands>,
    /// What could not be learned, in words.
    pub notes: Vec<String>,
}

/// Probes the drive behind a block device of the given sysfs transport.
/// `Ok(None)`: nothing answers pass-through (a loop device, an image file).
pub fn probe(pt: &mut dyn Passthrough, transport: &str) -> Result<Option<Probed>, CommandError> {
    let result = if transport == "nvme" { probe_nvme(pt) } else { probe_ata_then_scsi(pt) };
    match result {
        Ok(probed) => Ok(Some(probed)),
        Err(CommandError::NoPassthrough { .. }) => Ok(None),
        Err(error) => Err(error),
    }
}

fn probe_nvme(pt: &mut dyn Passthrough) -> Result<Probed, CommandError> {
    let nsid = pt.nvme_namespace().map_err(|e| CommandError::io("NVME_IOCTL_ID", e))?;
    let mut device = NvmeDevice { pt };
    let controller = device.read_4k("IDENTIFY (controller)", &nvme::identify_controller())?;
    let namespace =
        nvme::decode_namespace(&*device.read_4k("IDENTIFY (namespace)", &nvme::identify_namespace(nsid))?);
    let mut notes = Vec::new();
    let active = match device.read_4k("IDENTIFY (active namespaces)", &active_namespaces()) {
        Ok(list) => Some(list.chunks_exact(4).take_while(|id| id != &[0, 0, 0, 0]).count() as u32),
        Err(error) => {
            notes.push(format!("the controller's namespaces could not be listed: {error}"));
            None
        }
    };
    let mut info = nvme::decode_controller(&controller);
    if let Some(features) = &mut info.nvme {
        features.namespace = nsid;
    }
    info.capacity = Some(namespace.capacity);
    info.rotation = identify::Rotation::SolidState;
    info.nguid = namespace.nguid;
    info.eui64 = namespace.eui64;
    let facts = NamespaceFacts { nsid, lba_format: namespace.lba_format, active };
    Ok(Probed { protocol: Protocol::Nvme, info, namespace: Some(facts), max_address: None, notes })
}

/// Identify CNS 02h: the active namespace ids, a list of up to 1024.
fn active_namespaces() -> NvmeAdmin {
    NvmeAdmin { opcode: nvme::IDENTIFY, cdw10: 0x02, ..NvmeAdmin::default() }
}

fn probe_ata_then_scsi(pt: &mut dyn Passthrough) -> Result<Probed, CommandError> {
    match (AtaDevice { pt: &mut *pt }).read_block("IDENTIFY DEVICE", &ata::identify()) {
        Ok(data) => Ok(probe_ata(pt, &data)),
        // No SAT translator (a plain USB stick, a SAS disk): SCSI it is.
        Err(error)
            if error.is_unsupported()
                || matches!(error, CommandError::Ata { .. } | CommandError::Refused { .. }) =>
        {
            probe_scsi(pt)
        }
        Err(error) => Err(error),
    }
}

fn probe_ata(pt: &mut dyn Passthrough, data: &[u8; 512]) -> Probed {
    let mut info = identify::decode_ata(data);
    let mut notes = Vec::new();
    if let Some(identify::Checksum::Invalid { sum }) = info.checksum {
        notes.push(format!("IDENTIFY DEVICE data fails its checksum (sum {sum:#04x}): the drive or bridge returned corrupt data"));
    }
    let examined = hidden::examine(&mut AtaDevice { pt }, data, &info);
    notes.extend(examined.notes);
    info.hidden = Some(examined.areas);
    Probed { protocol: Protocol::Ata, info, namespace: None, max_address: examined.commands, notes }
}

fn probe_scsi(pt: &mut dyn Passthrough) -> Result<Probed, CommandError> {
    let mut device = ScsiDevice { pt };
    let standard = device.read("INQUIRY", &scsi::inquiry(None, 96), 96).map_err(ScsiError::into_command)?;
    let inquiry = scsi::decode_inquiry(&standard).ok_or(CommandError::Refused {
        command: "INQUIRY",
        answer: "fewer than 36 bytes of INQUIRY data".into(),
    })?;
    let mut notes = Vec::new();
    let serial = device.vpd(0x80).ok().and_then(|page| scsi::decode_serial(&page));
    let wwn = device.vpd(0x83).ok().and_then(|page| scsi::decode_naa(&page));
    let rotation = device.vpd(0xB1).map(|page| scsi::decode_rotation(&page)).unwrap_or_default();
    let capacity = match device.read("READ CAPACITY(16)", &scsi::read_capacity_16(), 32) {
        Ok(data) => Some(scsi::decode_capacity(&data.try_into().expect("32 bytes"))),
        Err(error) => {
            notes.push(format!("the capacity could not be read: {error}"));
            None
        }
    };
    let mut supported = |action: scsi::SanitizeAction| {
        let cdb = scsi::report_supported(0x48, u16::from(action.service_action()));
        device
            .read("REPORT SUPPORTED OPERATION CODES", &cdb, 20)
            .ok()
            .and_then(|data| scsi::decode_supported(&data))
    };
    let scsi_features = ScsiFeatures {
        sanitize_overwrite: supported(scsi::SanitizeAction::Overwrite { pattern: 0 }),
        sanitize_block_erase: supported(scsi::SanitizeAction::BlockErase),
        sanitize_crypto_erase: supported(scsi::SanitizeAction::CryptoErase),
    };
    let info = DriveInfo {
        source: Some(IdentitySource::ScsiVpd),
        vendor: inquiry.vendor,
        model: inquiry.product,
        firmware: inquiry.revision,
        serial,
        wwn,
        capacity,
        rotation,
        scsi: Some(scsi_features),
        ..DriveInfo::default()
    };
    Ok(Probed { protocol: Protocol::Scsi, info, namespace: None, max_address: None, notes })
}

/// Whether a SCSI device knows SANITIZE at all, when it would not say through
/// REPORT SUPPORTED OPERATION CODES: SANITIZE with the reserved service
/// action 00h must be rejected, as an invalid field by a device that has the
/// command and as an invalid opcode by one that does not. Nothing runs either
/// way. Asked only when a sanitize is about to be planned, never by `wipe` or
/// `identify`. `Err` holds the device's answer when it does not know it.
pub fn sanitize_known(pt: &mut dyn Passthrough) -> Result<(), String> {
    let probe = [0x48, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    match (ScsiDevice { pt }).command("SANITIZE (service action 00h)", &probe, Transfer::None) {
        Err(ScsiError::Sense { sense, .. }) if sense.is_invalid_opcode() => {
            Err(format!("SANITIZE: {}", sense.describe()))
        }
        _ => Ok(()),
    }
}

/// A SAT translator answering in fixed-format sense cannot return the upper
/// ATA register bytes that SANITIZE STATUS EXT and READ NATIVE MAX ADDRESS
/// EXT answer in. While this guard lives, the device answers in descriptor
/// format (the Control mode page's D_SENSE bit, SPC-5 §7.5.9); dropping it
/// puts the page back, because the setting is the kernel's, shared with every
/// other user of the disk.
pub struct DescriptorSense<'a> {
    pt: &'a mut dyn Passthrough,
    original: Option<Vec<u8>>,
}

impl<'a> DescriptorSense<'a> {
    /// Sets D_SENSE if it is clear. A device without the mode page stays as it
    /// is (its answers are then decoded in fixed format, upper bytes unknown).
    pub fn enable(pt: &'a mut dyn Passthrough) -> DescriptorSense<'a> {
        let original = control_page(pt).ok().filter(|page| page[2] & 0x04 == 0);
        let switched = original.as_ref().filter(|page| write_control_page(pt, page, true).is_ok()).cloned();
        DescriptorSense { pt, original: switched }
    }
}

/// The Control mode page (0Ah), 12 bytes, from MODE SENSE(10).
fn control_page(pt: &mut dyn Passthrough) -> Result<Vec<u8>, ScsiError> {
    let data = ScsiDevice { pt }.read("MODE SENSE(10)", &scsi::mode_sense_control(), 255)?;
    let descriptors = usize::from(u16::from_be_bytes([data[6], data[7]]));
    let page =
        data.get(8 + descriptors..8 + descriptors + 12).filter(|p| p[0] & 0x3F == 0x0A && p[1] == 0x0A);
    page.map(<[u8]>::to_vec).ok_or(ScsiError::Malformed { command: "MODE SENSE(10)" })
}

fn write_control_page(pt: &mut dyn Passthrough, page: &[u8], d_sense: bool) -> Result<(), ScsiError> {
    // An 8-byte header of zeros (no block descriptors), then the page with PS cleared.
    let mut list = vec![0u8; 8];
    list.extend_from_slice(page);
    list[8] &= 0x3F;
    list[10] = if d_sense { list[10] | 0x04 } else { list[10] & !0x04 };
    let cdb = scsi::mode_select(list.len() as u16);
    ScsiDevice { pt }.command("MODE SELECT(10)", &cdb, Transfer::ToDevice(&list))
}

impl Drop for DescriptorSense<'_> {
    fn drop(&mut self) {
        if let Some(page) = self.original.take() {
            // Best effort: the kernel resets it at the next reboot anyway.
            let _ = write_control_page(self.pt, &page, false);
        }
    }
}

impl Passthrough for DescriptorSense<'_> {
    fn scsi(
        &mut self,
        cdb: &[u8],
        transfer: Transfer<'_>,
        timeout: std::time::Duration,
    ) -> io::Result<ScsiReply> {
        self.pt.scsi(cdb, transfer, timeout)
    }

    fn nvme_admin(
        &mut self,
        command: &NvmeAdmin,
        transfer: Transfer<'_>,
        timeout: std::time::Duration,
    ) -> io::Result<super::NvmeReply> {
        self.pt.nvme_admin(command, transfer, timeout)
    }

    fn nvme_namespace(&mut self) -> io::Result<u32> {
        self.pt.nvme_namespace()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::fake::{FakeAta, FakeNvme, FakeScsi};

    #[test]
    fn an_ata_drive_gives_its_own_identity_and_hidden_areas() {
        let mut drive = FakeAta::new(1000).with_hpa(900);
        let probed = probe(&mut drive, "usb").unwrap().unwrap();
        assert_eq!(probed.protocol, Protocol::Ata);
        assert_eq!(probed.info.source, Some(IdentitySource::AtaIdentify));
        assert_eq!(probed.info.serial.as_deref(), Some("FAKE-ATA-SERIAL"));
        assert_eq!(probed.info.hidden.unwrap().hidden_sectors(), 100);
    }

    #[test]
    fn a_device_refusing_ata_pass_through_is_asked_in_scsi() {
        let mut device = FakeScsi::new(2048);
        let probed = probe(&mut device, "usb").unwrap().unwrap();
        assert_eq!(probed.protocol, Protocol::Scsi);
        assert_eq!(probed.info.serial.as_deref(), Some("FAKE-SCSI-SERIAL"));
        assert_eq!(probed.info.capacity.unwrap().sectors, 2048);
        assert_eq!(probed.info.scsi.unwrap().sanitize_block_erase, Some(true));
    }

    #[test]
    fn a_device_that_will_not_say_is_unknown_and_only_a_sanitize_asks_further() {
        let mut qemu_like = FakeScsi::new(2048);
        qemu_like.reports_opcodes = false;
        qemu_like.knows_sanitize = false;
        let probed = probe(&mut qemu_like, "scsi").unwrap().unwrap();
        assert_eq!(probed.info.scsi.unwrap(), ScsiFeatures::default(), "unknown");
        assert_eq!(qemu_like.reserved_sanitize_probes, 0, "identifying sends no SANITIZE");
        assert_eq!(
            sanitize_known(&mut qemu_like),
            Err("SANITIZE: ILLEGAL REQUEST (ASC/ASCQ 20h/00h)".to_string())
        );
        let mut silent = FakeScsi::new(2048);
        silent.reports_opcodes = false;
        assert_eq!(sanitize_known(&mut silent), Ok(()), "it has SANITIZE but would not say which actions");
    }

    #[test]
    fn an_nvme_namespace_is_asked_in_nvme() {
        let mut drive = FakeNvme::new(4096);
        let probed = probe(&mut drive, "nvme").unwrap().unwrap();
        assert_eq!(probed.protocol, Protocol::Nvme);
        assert_eq!(probed.info.serial.as_deref(), Some("NVME-SERIAL-1"));
        assert_eq!(probed.namespace.unwrap().nsid, 1);
        assert_eq!(probed.namespace.unwrap().active, Some(1));
    }

    #[test]
    fn descriptor_sense_is_switched_on_and_put_back() {
        let mut drive = FakeAta::new(1000).with_fixed_sense();
        {
            let mut guard = DescriptorSense::enable(&mut drive);
            let status = AtaDevice { pt: &mut guard }
                .query("SANITIZE STATUS EXT", &ata::Sanitize::Status { clear_failure: false }.taskfile());
            assert!(status.unwrap().upper_known);
        }
        assert!(!drive.descriptor_sense(), "the device's sense format must be restored");
    }
}
