//! Sectors an ATA drive hides from the host, which no overwrite through the
//! block device reaches (ACS-4 §4.11 and ACS-2 §4.8):
//!
//! * a Host Protected Area (HPA), or on ACS-3 drives an Accessible Max Address
//!   below the native maximum: READ NATIVE MAX ADDRESS EXT / GET NATIVE MAX
//!   ADDRESS EXT say how far the drive really goes;
//! * a Device Configuration Overlay (DCO) that shrank even the native maximum:
//!   DEVICE CONFIGURATION IDENTIFY says how big the drive left the factory.
//!
//! An HPA is restored volatilely (gone at the next power cycle); a DCO restore
//! is permanent and is only done when asked for separately.

use super::CommandError;
use super::ata::{self, AtaDevice};
use super::identify::{self, Checksum, DriveInfo};
pub use crate::device::HiddenAreas;

/// Which commands this drive answers for its native size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaxAddressCommands {
    /// READ NATIVE MAX ADDRESS EXT / SET MAX ADDRESS EXT.
    Hpa,
    /// GET NATIVE MAX ADDRESS EXT / SET ACCESSIBLE MAX ADDRESS EXT.
    AccessibleMax,
}

impl MaxAddressCommands {
    /// From the raw IDENTIFY data (word 119) and what was decoded of it.
    fn of(data: &[u8; 512], ata: &identify::AtaFeatures) -> Option<MaxAddressCommands> {
        let w119 = identify::word(data, 119);
        if w119 & 0xC000 == 0x4000 && w119 & 0x0100 != 0 {
            Some(MaxAddressCommands::AccessibleMax)
        } else if ata.hpa_supported && ata.lba48 {
            Some(MaxAddressCommands::Hpa)
        } else {
            None
        }
    }

    fn read(self) -> (&'static str, ata::Taskfile) {
        match self {
            MaxAddressCommands::Hpa => ("READ NATIVE MAX ADDRESS EXT", ata::read_native_max_ext()),
            MaxAddressCommands::AccessibleMax => ("GET NATIVE MAX ADDRESS EXT", ata::get_native_max_ext()),
        }
    }

    /// Sets the accessible maximum volatilely (it reverts at power-off).
    fn set(self, max_lba: u64) -> (&'static str, ata::Taskfile) {
        match self {
            MaxAddressCommands::Hpa => ("SET MAX ADDRESS EXT", ata::set_max_address_ext(max_lba, false)),
            MaxAddressCommands::AccessibleMax => {
                ("SET ACCESSIBLE MAX ADDRESS EXT", ata::set_accessible_max_ext(max_lba))
            }
        }
    }
}

/// What was found, and what could not be examined (in words).
pub struct Examined {
    pub areas: HiddenAreas,
    pub commands: Option<MaxAddressCommands>,
    pub notes: Vec<String>,
}

/// Looks for an HPA and a DCO; nothing is changed. `info` is `identify_data` decoded.
pub fn examine(drive: &mut AtaDevice<'_>, identify_data: &[u8; 512], info: &DriveInfo) -> Examined {
    let accessible = info.capacity.map_or(0, |c| c.sectors);
    let ata = info.ata.unwrap_or_default();
    let commands = info.ata.as_ref().and_then(|ata| MaxAddressCommands::of(identify_data, ata));
    let mut notes = Vec::new();
    let native_sectors = commands.and_then(|commands| {
        let (name, tf) = commands.read();
        match drive.query(name, &tf) {
            Ok(r) if r.upper_known => Some(r.lba + 1),
            Ok(_) => {
                notes.push(format!(
                    "{name}: the answer lacked the upper address bytes, so the native size is unknown"
                ));
                None
            }
            Err(error) => {
                notes.push(format!("the native size could not be read: {error}"));
                None
            }
        }
    });
    let factory_sectors = if ata.dco_supported { dco_max(drive, &mut notes) } else { None };
    Examined {
        areas: HiddenAreas {
            accessible_sectors: accessible,
            native_sectors,
            factory_sectors,
            hpa_restored: false,
            dco_restored: false,
        },
        commands,
        notes,
    }
}

/// DCO IDENTIFY's maximum LBA (words 3..5) + 1.
fn dco_max(drive: &mut AtaDevice<'_>, notes: &mut Vec<String>) -> Option<u64> {
    let data = match drive.read_block("DEVICE CONFIGURATION IDENTIFY", &ata::dco_identify()) {
        Ok(data) => data,
        // Drives without (or with a frozen) DCO abort it; that hides nothing we can see.
        Err(CommandError::Ata { .. }) => return None,
        Err(error) => {
            notes.push(format!("the factory size (DCO) could not be read: {error}"));
            return None;
        }
    };
    if let Checksum::Invalid { .. } = identify::checksum(&data) {
        notes.push("DEVICE CONFIGURATION IDENTIFY data failed its checksum; ignored".into());
        return None;
    }
    let w = |n: usize| u64::from(identify::word(&data, n));
    let max = w(3) | w(4) << 16 | w(5) << 32;
    (max > 0).then_some(max + 1)
}

/// Makes the whole native area addressable until the next power cycle: the
/// native max read again and set (the standard wants the two back to back).
pub fn restore_hpa(drive: &mut AtaDevice<'_>, commands: MaxAddressCommands) -> Result<u64, CommandError> {
    let (name, tf) = commands.read();
    let native = drive.query(name, &tf)?;
    if !native.upper_known {
        return Err(CommandError::NoRegisters { command: name });
    }
    let (name, tf) = commands.set(native.lba);
    drive.run(name, &tf)?;
    Ok(native.lba + 1)
}

/// DEVICE CONFIGURATION RESTORE: permanent.
pub fn restore_dco(drive: &mut AtaDevice<'_>) -> Result<(), CommandError> {
    drive.run("DEVICE CONFIGURATION RESTORE", &ata::dco_restore()).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drive::fake::FakeAta;

    #[test]
    fn an_hpa_is_found_and_restored_volatilely() {
        let mut drive = FakeAta::new(1000).with_hpa(800);
        let identify = drive.identify_block();
        let examined =
            examine(&mut AtaDevice { pt: &mut drive }, &identify, &identify::decode_ata(&identify));
        assert_eq!(examined.areas.accessible_sectors, 800);
        assert_eq!(examined.areas.native_sectors, Some(1000));
        assert_eq!(examined.areas.hidden_sectors(), 200);
        assert_eq!(examined.areas.hpa_sectors(), 200);
        let commands = examined.commands.unwrap();
        assert_eq!(restore_hpa(&mut AtaDevice { pt: &mut drive }, commands).unwrap(), 1000);
        assert_eq!(drive.accessible(), 1000);
        assert!(drive.volatile_set_max(), "the HPA must come back at power-off: SET MAX with VV clear");
    }

    #[test]
    fn a_dco_is_found_and_only_restored_when_asked() {
        let mut drive = FakeAta::new(1000).with_dco(900).with_hpa(700);
        let identify = drive.identify_block();
        let areas =
            examine(&mut AtaDevice { pt: &mut drive }, &identify, &identify::decode_ata(&identify)).areas;
        assert_eq!(
            (areas.accessible_sectors, areas.native_sectors, areas.factory_sectors),
            (700, Some(900), Some(1000))
        );
        assert_eq!((areas.hpa_sectors(), areas.dco_sectors(), areas.hidden_sectors()), (200, 100, 300));
        restore_dco(&mut AtaDevice { pt: &mut drive }).unwrap();
        assert_eq!(drive.accessible(), 1000);
    }

    #[test]
    fn a_drive_without_hidden_areas_hides_nothing() {
        let mut drive = FakeAta::new(1000);
        let identify = drive.identify_block();
        let examined =
            examine(&mut AtaDevice { pt: &mut drive }, &identify, &identify::decode_ata(&identify));
        assert_eq!(examined.areas.hidden_sectors(), 0);
        assert!(examined.notes.is_empty(), "{:?}", examined.notes);
    }

    #[test]
    fn registers_without_upper_bytes_leave_the_native_size_unknown() {
        let mut drive = FakeAta::new(1 << 30).with_hpa(1 << 29).with_fixed_sense();
        let identify = drive.identify_block();
        let examined =
            examine(&mut AtaDevice { pt: &mut drive }, &identify, &identify::decode_ata(&identify));
        assert_eq!(examined.areas.native_sectors, None);
        assert!(examined.notes[0].contains("native size is unknown"), "{:?}", examined.notes);
        let error = restore_hpa(&mut AtaDevice { pt: &mut drive }, examined.commands.unwrap()).unwrap_err();
        assert!(matches!(error, CommandError::NoRegisters { .. }));
    }
}
