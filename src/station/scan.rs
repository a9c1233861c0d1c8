//! What the station sees: every whole block device under a sysfs root, with what
//! identifies its medium (device number, the kernel's disk sequence number, size,
//! serial) and where it hangs (its USB port). Reading sysfs never opens a device.
//! The root is a parameter so that tests can lay out fake trees the way real USB
//! sticks and bridges appear.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::device::marks::Marks;
use crate::device::sysfs::{DevNum, read_attr};

/// One whole block device as a scan found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// Kernel name, e.g. `sdc`.
    pub name: String,
    pub devnum: DevNum,
    /// The kernel's disk sequence number (`diskseq`, Linux 5.15+): new for every
    /// medium, so a stick swapped for another one under the same name differs.
    pub diskseq: Option<u64>,
    pub size_bytes: u64,
    pub serial: Option<String>,
    /// The World Wide Name, where the device reports one.
    pub wwn: Option<String>,
    /// The USB port (`2-1.3`), when the device hangs off USB.
    pub usb_port: Option<String>,
    /// The sysfs directory of that USB device (its `remove` powers it off).
    pub usb_device: Option<PathBuf>,
    /// For loop devices: the file behind it.
    pub backing_file: Option<String>,
}

impl Seen {
    /// What tells this medium apart from any other that appears under the same
    /// name: the disk sequence number, or (on kernels without one) size and serial.
    pub fn medium_key(&self) -> MediumKey {
        MediumKey {
            devnum: self.devnum,
            diskseq: self.diskseq,
            size_bytes: self.size_bytes,
            serial: self.serial.clone(),
        }
    }

    /// The name of the row a technician sees: the USB port, else the device.
    pub fn port(&self) -> String {
        self.usb_port.clone().unwrap_or_else(|| self.name.clone())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MediumKey {
    pub devnum: DevNum,
    pub diskseq: Option<u64>,
    pub size_bytes: u64,
    pub serial: Option<String>,
}

/// Every whole block device under `root` (normally `/sys`), sorted by name.
pub fn scan(root: &Path) -> Vec<Seen> {
    let Ok(entries) = std::fs::read_dir(root.join("block")) else { return Vec::new() };
    let mut seen: Vec<Seen> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| read_one(root, &e.file_name().to_string_lossy()))
        .collect();
    seen.sort_by(|a, b| a.name.cmp(&b.name));
    seen
}

fn read_one(root: &Path, name: &str) -> Option<Seen> {
    let dir = std::fs::canonicalize(root.join("block").join(name)).ok()?;
    let devnum = DevNum::parse(&read_attr(&dir, "dev")?)?;
    let size_sectors: u64 = read_attr(&dir, "size").and_then(|s| s.parse().ok()).unwrap_or(0);
    let serial = read_attr(&dir.join("device"), "serial")
        .or_else(|| read_attr(&dir, "serial"))
        .and_then(|s| crate::text::from_device(&s));
    let wwn = read_attr(&dir.join("device"), "wwid")
        .or_else(|| read_attr(&dir, "wwid"))
        .and_then(|s| crate::text::from_device(&s));
    let usb = usb_device(&dir);
    Some(Seen {
        name: name.to_string(),
        devnum,
        diskseq: read_attr(&dir, "diskseq").and_then(|s| s.parse().ok()),
        // sysfs counts 512-byte units whatever the sector size.
        size_bytes: size_sectors * 512,
        serial,
        wwn,
        usb_port: usb.as_ref().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().into_owned()),
        usb_device: usb,
        backing_file: read_attr(&dir, "loop/backing_file").map(|f| crate::text::escape(&f).into_owned()),
    })
}

/// The USB device a disk hangs off: the last directory on its path named like a
/// USB device, `BUS-PORT[.PORT...]` (`2-1.3`: bus 2, port 1, port 3 of the hub
/// there). Interfaces (`2-1.3:1.0`), root hubs (`usb2`) and everything else are
/// not. A disk behind a USB-SATA bridge is a USB disk like any stick.
pub fn usb_device(disk_dir: &Path) -> Option<PathBuf> {
    let mut found = None;
    let mut path = PathBuf::new();
    for component in disk_dir.components() {
        path.push(component);
        if component.as_os_str().to_str().is_some_and(is_usb_device_name) {
            found = Some(path.clone());
        }
    }
    found
}

fn is_usb_device_name(name: &str) -> bool {
    let Some((bus, ports)) = name.split_once('-') else { return false };
    let numbers = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    numbers(bus) && ports.split('.').all(numbers)
}

/// The devices present when the station started: never touched while it runs.
/// A medium is recognised as one of them while its device number and disk
/// sequence number stay; by its serial or WWN when it re-enumerates; and, for
/// a medium that reports neither (many USB bridges), by its content: the same
/// size and fingerprint, or a partition-table or file-system identifier in
/// common ([`marks`]).
#[derive(Debug, Default)]
pub struct Snapshot {
    media: BTreeSet<(DevNum, Option<u64>)>,
    present: Vec<Present>,
}

/// One device present at the start, as recorded.
#[derive(Debug)]
pub struct Present {
    pub name: String,
    /// Where it hangs: its USB port, else its device name.
    pub slot: String,
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub size_bytes: u64,
    /// Its content's marks; `None` when it is not a medium the station could
    /// ever take (and is never opened), `Some(Err)` when it could not be read.
    pub marks: Option<Result<Marks, String>>,
}

impl Snapshot {
    /// Records `devices`, with the marks `read` gives for each (read-only).
    pub fn take(devices: &[Seen], read: impl Fn(&Seen) -> Option<Result<Marks, String>>) -> Snapshot {
        let present: Vec<&Seen> = devices.iter().filter(|d| d.size_bytes > 0).collect();
        Snapshot {
            media: present.iter().map(|d| (d.devnum, d.diskseq)).collect(),
            present: present
                .iter()
                .map(|d| Present {
                    name: d.name.clone(),
                    slot: d.port(),
                    serial: d.serial.clone(),
                    wwn: d.wwn.clone(),
                    size_bytes: d.size_bytes,
                    marks: read(d),
                })
                .collect(),
        }
    }

    /// Why `seen` must be left alone, by what sysfs says of it, before it is
    /// opened: it is a device present at the start, or has one's serial or WWN.
    pub fn protects(&self, seen: &Seen) -> Option<String> {
        if self.media.contains(&(seen.devnum, seen.diskseq)) {
            return Some("it was present when the station started".into());
        }
        let same = |a: &Option<String>, b: &Option<String>| a.is_some() && a == b;
        self.present.iter().find_map(|p| {
            let by = if same(&p.serial, &seen.serial) {
                "serial"
            } else if same(&p.wwn, &seen.wwn) {
                "WWN"
            } else {
                return None;
            };
            Some(format!("present when the station started: it has the {by} of {}", p.name))
        })
    }

    /// Why a medium that reports no serial and no WWN must be left alone, by
    /// its content (`marks`, read without writing): it holds what a device
    /// present at the start held, carries one's partition-table or
    /// file-system identifier, or sits in the slot of one that could not be
    /// read then and so cannot be told apart from it. Never a guess in its favour.
    pub fn recognises(&self, seen: &Seen, marks: &Result<Marks, String>) -> Option<String> {
        if seen.serial.is_some() || seen.wwn.is_some() {
            return None;
        }
        let marks = match marks {
            Ok(marks) => marks,
            Err(why) => {
                return Some(format!(
                    "it could not be read to tell it from the media present when the station started ({why})"
                ));
            }
        };
        self.present.iter().find_map(|p| match &p.marks {
            Some(Ok(then)) if then.size_bytes == marks.size_bytes && then.fingerprint == marks.fingerprint => {
                Some(format!("present when the station started: it holds exactly what {} held then", p.name))
            }
            Some(Ok(then)) => then.ids.iter().find(|id| marks.ids.contains(id)).map(|id| {
                format!("present when the station started: it carries {}'s partition-table or file-system id {id}", p.name)
            }),
            Some(Err(why)) if p.serial.is_none() && p.wwn.is_none() && p.slot == seen.port() => Some(format!(
                "{} in this slot could not be read when the station started ({why}), so this medium cannot be told apart from it",
                p.name
            )),
            _ => None,
        })
    }

    pub fn len(&self) -> usize {
        self.media.len()
    }

    pub fn is_empty(&self) -> bool {
        self.media.is_empty()
    }
}

/// A change between two scans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A medium appeared: a new device, a size from 0, or a media change.
    Arrived(Seen),
    /// A medium reported before is gone (pulled, or replaced by another).
    Removed(Seen),
}

/// Remembers which media were reported, so each arrival and removal is reported once.
#[derive(Debug, Default)]
pub struct Watch {
    known: BTreeMap<MediumKey, Seen>,
}

impl Watch {
    /// Starts from `devices`: what is there now is known, not arrived.
    pub fn starting_with(devices: &[Seen]) -> Watch {
        Watch {
            known: devices.iter().filter(|d| d.size_bytes > 0).map(|d| (d.medium_key(), d.clone())).collect(),
        }
    }

    /// The arrivals and removals since the last scan.
    pub fn update(&mut self, devices: &[Seen]) -> Vec<Change> {
        let now: BTreeMap<MediumKey, &Seen> =
            devices.iter().filter(|d| d.size_bytes > 0).map(|d| (d.medium_key(), d)).collect();
        let mut changes: Vec<Change> = Vec::new();
        self.known.retain(|key, seen| {
            let still = now.contains_key(key);
            if !still {
                changes.push(Change::Removed(seen.clone()));
            }
            still
        });
        for (key, seen) in now {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.known.entry(key) {
                slot.insert(seen.clone());
                changes.push(Change::Arrived(seen.clone()));
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake sysfs with `block/NAME` linking to the device's directory, the way
    /// the kernel lays out real disks.
    struct FakeSys {
        root: tempfile::TempDir,
    }

    impl FakeSys {
        fn new() -> FakeSys {
            let root = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(root.path().join("block")).unwrap();
            FakeSys { root }
        }

        fn disk(&self, devpath: &str, dev: &str, sectors: u64, diskseq: u64, serial: Option<&str>) {
            let dir = self.root.path().join(devpath.trim_start_matches('/'));
            std::fs::create_dir_all(dir.join("device")).unwrap();
            std::fs::write(dir.join("dev"), format!("{dev}\n")).unwrap();
            std::fs::write(dir.join("size"), format!("{sectors}\n")).unwrap();
            std::fs::write(dir.join("diskseq"), format!("{diskseq}\n")).unwrap();
            if let Some(serial) = serial {
                std::fs::write(dir.join("device/serial"), format!("{serial}\n")).unwrap();
            }
            let name = dir.file_name().unwrap().to_owned();
            let link = self.root.path().join("block").join(&name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&dir, link).unwrap();
        }

        fn remove(&self, name: &str) {
            std::fs::remove_file(self.root.path().join("block").join(name)).unwrap();
        }

        fn scan(&self) -> Vec<Seen> {
            scan(self.root.path())
        }
    }

    const STICK: &str =
        "devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1.3/2-1.3:1.0/host6/target6:0:0/6:0:0:0/block/sdc";
    const BRIDGE: &str =
        "devices/pci0000:00/0000:00:14.0/usb3/3-2/3-2:1.0/host7/target7:0:0/7:0:0:0/block/sdd";
    const HUBS: &str = "devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4/1-1.4.2/1-1.4.2:1.0/host8/target8:0:0/8:0:0:0/block/sde";
    const SATA: &str = "devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda";
    const NVME: &str = "devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1";

    #[test]
    fn usb_ports_are_named_by_their_place_behind_hubs_and_bridges() {
        let sys = FakeSys::new();
        sys.disk(STICK, "8:32", 1000, 11, Some("STICK1"));
        sys.disk(BRIDGE, "8:48", 2000, 12, Some("BRIDGE1"));
        sys.disk(HUBS, "8:64", 3000, 13, None);
        sys.disk(SATA, "8:0", 4000, 1, Some("SATA1"));
        sys.disk(NVME, "259:0", 5000, 2, Some("NVME1"));
        let ports: Vec<(String, Option<String>)> =
            sys.scan().into_iter().map(|s| (s.name, s.usb_port)).collect();
        assert_eq!(
            ports,
            [
                ("nvme0n1".into(), None),
                ("sda".into(), None),
                ("sdc".into(), Some("2-1.3".into())),
                ("sdd".into(), Some("3-2".into())),
                ("sde".into(), Some("1-1.4.2".into())),
            ]
        );
        let stick = sys.scan().into_iter().find(|s| s.name == "sdc").unwrap();
        assert_eq!(stick.size_bytes, 512_000);
        assert_eq!(stick.serial.as_deref(), Some("STICK1"));
        assert!(stick.usb_device.unwrap().ends_with("usb2/2-1/2-1.3"));
        for name in ["usb2", "2-1.3:1.0", "host6", "6:0:0:0", "0000:00:14.0", "2-", "-1", "2-1..3", "2-1.3a"]
        {
            assert!(!is_usb_device_name(name), "{name}");
        }
    }

    #[test]
    fn powering_off_removes_the_stick_itself_not_the_hub_it_hangs_off() {
        let sys = FakeSys::new();
        sys.disk(HUBS, "8:64", 3000, 13, None);
        let stick = sys.scan().into_iter().find(|s| s.name == "sde").unwrap();
        let usb = stick.usb_device.unwrap();
        assert!(usb.ends_with("usb1/1-1/1-1.4/1-1.4.2"), "{}", usb.display());
        crate::station::power_off(&usb).unwrap();
        assert_eq!(std::fs::read_to_string(usb.join("remove")).unwrap(), "1");
        for hub in usb.ancestors().skip(1).take(3) {
            assert!(!hub.join("remove").exists(), "{} was written", hub.display());
        }
    }

    #[test]
    fn arrivals_removals_and_media_changes_are_each_reported_once() {
        let sys = FakeSys::new();
        sys.disk(SATA, "8:0", 4000, 1, Some("SATA1"));
        let start = sys.scan();
        let snapshot = Snapshot::take(&start, |_| None);
        let mut watch = Watch::starting_with(&start);
        assert!(watch.update(&sys.scan()).is_empty());
        sys.disk(STICK, "8:32", 1000, 11, Some("STICK1"));
        let changes = watch.update(&sys.scan());
        assert!(matches!(&changes[..], [Change::Arrived(s)] if s.name == "sdc"));
        assert!(watch.update(&sys.scan()).is_empty(), "reported once");
        // Another stick in the same slot: a new disk sequence number.
        sys.disk(STICK, "8:32", 1000, 12, Some("STICK2"));
        let changes = watch.update(&sys.scan());
        assert!(
            matches!(&changes[..], [Change::Removed(a), Change::Arrived(b)] if a.diskseq == Some(11) && b.diskseq == Some(12))
        );
        sys.remove("sdc");
        assert!(matches!(&watch.update(&sys.scan())[..], [Change::Removed(s)] if s.name == "sdc"));
        // The system disk is protected, even under another number.
        let sata = start.iter().find(|s| s.name == "sda").unwrap();
        assert!(snapshot.protects(sata).is_some());
        sys.disk(SATA, "8:16", 4000, 30, Some("SATA1"));
        let moved = sys.scan().into_iter().find(|s| s.devnum.minor == 16).unwrap();
        assert!(snapshot.protects(&moved).is_some());
        sys.disk(STICK, "8:32", 1000, 40, Some("STICK3"));
        let stick = sys.scan().into_iter().find(|s| s.name == "sdc").unwrap();
        assert!(snapshot.protects(&stick).is_none());
    }

    fn marks(fingerprint: &str, ids: &[&str]) -> Result<Marks, String> {
        Ok(Marks {
            size_bytes: 512_000,
            fingerprint: fingerprint.into(),
            ids: ids.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn a_medium_present_at_start_is_known_again_by_serial_wwn_or_content() {
        const WWN_DISK: &str =
            "devices/pci0000:00/0000:00:14.0/usb2/2-2/2-2:1.0/host9/target9:0:0/9:0:0:0/block/sdf";
        let sys = FakeSys::new();
        sys.disk(STICK, "8:32", 1000, 11, Some("BACKUP1"));
        sys.disk(BRIDGE, "8:48", 1000, 12, None);
        sys.disk(HUBS, "8:64", 1000, 13, None);
        sys.disk(WWN_DISK, "8:80", 1000, 14, None);
        let wwid = sys.root.path().join(WWN_DISK).join("device/wwid");
        std::fs::write(&wwid, "naa.5000c500a1b2c3d4\n").unwrap();
        let start = sys.scan();
        let snapshot = Snapshot::take(&start, |seen| match seen.name.as_str() {
            "sdd" => Some(marks("f1", &["uuid-of-sdd"])),
            "sde" => Some(Err("no medium".into())),
            _ => None,
        });
        // Re-enumerated under other numbers and disk sequence numbers.
        sys.disk(STICK, "8:96", 1000, 21, Some("BACKUP1"));
        sys.disk(WWN_DISK, "8:112", 1000, 22, None);
        let now = sys.scan();
        let by_name = |name: &str| now.iter().find(|s| s.name == name).unwrap().clone();
        assert!(snapshot.protects(&by_name("sdc")).unwrap().contains("the serial of sdc"));
        assert!(snapshot.protects(&by_name("sdf")).unwrap().contains("the WWN of sdf"));
        // No serial, no WWN: by content.
        sys.disk(BRIDGE, "8:128", 1000, 23, None);
        let bridge = sys.scan().into_iter().find(|s| s.name == "sdd").unwrap();
        assert!(snapshot.protects(&bridge).is_none(), "nothing in sysfs tells it apart");
        let said = snapshot.recognises(&bridge, &marks("f1", &[])).unwrap();
        assert!(said.contains("holds exactly what sdd held"), "{said}");
        let said = snapshot.recognises(&bridge, &marks("f2", &["uuid-of-sdd"])).unwrap();
        assert!(said.contains("id uuid-of-sdd"), "{said}");
        assert!(snapshot.recognises(&bridge, &marks("f2", &["other"])).is_none(), "a new medium in its port");
        let said = snapshot.recognises(&bridge, &Err("I/O error".into())).unwrap();
        assert!(said.contains("could not be read"), "{said}");
        // In the slot of one that could not be read at the start, a medium with
        // no identity of its own is never guessed to be another.
        sys.disk(HUBS, "8:144", 1000, 24, None);
        let in_unread_slot = sys.scan().into_iter().find(|s| s.name == "sde").unwrap();
        let said = snapshot.recognises(&in_unread_slot, &marks("f3", &[])).unwrap();
        assert!(said.contains("sde in this slot could not be read"), "{said}");
        let elsewhere = Seen { usb_port: Some("9-9".into()), ..in_unread_slot };
        assert!(snapshot.recognises(&elsewhere, &marks("f3", &[])).is_none());
    }

    #[test]
    fn an_empty_slot_is_not_a_medium_until_it_has_a_size() {
        let sys = FakeSys::new();
        sys.disk(STICK, "8:32", 0, 11, None);
        let start = sys.scan();
        let snapshot = Snapshot::take(&start, |_| None);
        let mut watch = Watch::starting_with(&start);
        assert!(snapshot.is_empty());
        sys.disk(STICK, "8:32", 1000, 12, None);
        let changes = watch.update(&sys.scan());
        assert!(matches!(&changes[..], [Change::Arrived(s)] if s.size_bytes == 512_000));
        let arrived = sys.scan().into_iter().next().unwrap();
        assert!(snapshot.protects(&arrived).is_none());
    }
}
