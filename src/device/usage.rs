//! Who else is using a block device: mounts, swap, stacked devices, and the root
//! file system. A device in any such use must never be written.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::MetadataExt;

use serde::{Deserialize, Serialize};

use super::sysfs::{DevNum, SysBlock, unescape_octal};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Mount points of the device or any of its partitions.
    pub mounted_at: Vec<String>,
    /// Swap areas on the device or its partitions.
    pub swap: Vec<String>,
    /// Devices stacked on it (device-mapper, LVM, md RAID, ...).
    pub held_by: Vec<String>,
    /// The disk holds the root file system.
    pub holds_root: bool,
}

impl Usage {
    pub fn of(block: &SysBlock, system: &SystemUse) -> Usage {
        let members = block.with_partitions();
        let numbers: BTreeSet<(u32, u32)> =
            members.iter().map(|b| (b.devnum.major, b.devnum.minor)).collect();
        let in_device = |n: &DevNum| numbers.contains(&(n.major, n.minor));
        let holds_root = block.disk().is_some_and(|disk| system.root_disks.contains(&disk.devnum));
        Usage {
            mounted_at: system.mounts.iter().filter(|(n, _)| in_device(n)).map(|(_, m)| m.clone()).collect(),
            swap: system.swaps.iter().filter(|(n, _)| in_device(n)).map(|(_, s)| s.clone()).collect(),
            held_by: members.iter().flat_map(SysBlock::holders).collect(),
            holds_root,
        }
    }

    /// Why writing this device would be unsafe, each reason with its remedy.
    pub fn refusals(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.holds_root {
            reasons.push(
                "it holds the running system's root file system (/); certwipe never wipes that disk — boot from other media to wipe it"
                    .to_string(),
            );
        }
        if !self.mounted_at.is_empty() {
            reasons
                .push(format!("it is mounted at {}; unmount it first (umount)", self.mounted_at.join(", ")));
        }
        if !self.swap.is_empty() {
            reasons.push(format!("it is in use as swap ({}); run swapoff first", self.swap.join(", ")));
        }
        if !self.held_by.is_empty() {
            reasons.push(format!(
                "it is held by {}; stop those first (dmsetup remove, vgchange -an, mdadm --stop, cryptsetup close)",
                self.held_by.join(", ")
            ));
        }
        reasons
    }
}

/// A snapshot of the system-wide tables, read once per command.
#[derive(Debug, Default)]
pub struct SystemUse {
    /// Device number and mount point of every mount backed by a block device.
    pub mounts: Vec<(DevNum, String)>,
    /// Device number and name of every swap area on a block device.
    pub swaps: Vec<(DevNum, String)>,
    /// The whole disks under `/`, following device-mapper and md down to the disks.
    pub root_disks: Vec<DevNum>,
}

impl SystemUse {
    pub fn read() -> SystemUse {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mounts: Vec<MountEntry> = mountinfo.lines().filter_map(MountEntry::parse).collect();
        let root_disks = mounts
            .iter()
            .filter(|m| m.mount_point == "/")
            .filter_map(MountEntry::block_device)
            .filter_map(SysBlock::by_devnum)
            .flat_map(|b| underlying_disks(&b, 0))
            .collect();
        SystemUse {
            mounts: mounts.iter().filter_map(|m| Some((m.block_device()?, m.mount_point.clone()))).collect(),
            swaps: read_swaps(),
            root_disks,
        }
    }

    /// Whether a regular file is an active swap file (writing it would crash the system).
    pub fn is_swap_file(&self, path: &std::path::Path) -> bool {
        let Ok(canonical) = fs::canonicalize(path) else { return false };
        fs::read_to_string("/proc/swaps")
            .unwrap_or_default()
            .lines()
            .skip(1)
            .filter_map(|line| line.split_whitespace().next())
            .any(|name| fs::canonicalize(unescape_octal(name)).is_ok_and(|p| p == canonical))
    }
}

struct MountEntry {
    devnum: DevNum,
    mount_point: String,
    source: String,
}

impl MountEntry {
    /// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
    fn parse(line: &str) -> Option<MountEntry> {
        let mut fields = line.split(' ');
        let devnum = DevNum::parse(fields.nth(2)?)?;
        let mount_point = unescape_octal(fields.nth(1)?);
        let mut after_separator = fields.skip_while(|f| *f != "-").skip(2);
        let source = unescape_octal(after_separator.next().unwrap_or_default());
        Some(MountEntry { devnum, mount_point, source })
    }

    /// The block device behind a mount. btrfs and overlay report an anonymous
    /// device number (major 0), so the mount source names the device instead.
    fn block_device(&self) -> Option<DevNum> {
        if self.devnum.major != 0 && SysBlock::by_devnum(self.devnum).is_some() {
            return Some(self.devnum);
        }
        let meta = fs::metadata(&self.source).ok()?;
        use std::os::unix::fs::FileTypeExt;
        meta.file_type().is_block_device().then(|| DevNum::from_rdev(meta.rdev()))
    }
}

fn read_swaps() -> Vec<(DevNum, String)> {
    fs::read_to_string("/proc/swaps")
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|line| {
            let name = unescape_octal(line.split_whitespace().next()?);
            let meta = fs::metadata(&name).ok()?;
            use std::os::unix::fs::FileTypeExt;
            meta.file_type().is_block_device().then(|| (DevNum::from_rdev(meta.rdev()), name))
        })
        .collect()
}

/// The whole disks a device lives on: its own disk, or, for dm and md, the disks of
/// the devices it is stacked on.
fn underlying_disks(block: &SysBlock, depth: usize) -> Vec<DevNum> {
    let Some(disk) = block.disk() else { return Vec::new() };
    let slaves = disk.slaves();
    if slaves.is_empty() || depth > 8 {
        return vec![disk.devnum];
    }
    let mut disks: Vec<DevNum> = slaves.iter().flat_map(|s| underlying_disks(s, depth + 1)).collect();
    disks.push(disk.devnum);
    disks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_line_parses() {
        let line = r"36 35 98:0 / /mnt/my\040disk rw,noatime shared:1 - ext4 /dev/sdb1 rw";
        let entry = MountEntry::parse(line).unwrap();
        assert_eq!(entry.devnum, DevNum { major: 98, minor: 0 });
        assert_eq!(entry.mount_point, "/mnt/my disk");
        assert_eq!(entry.source, "/dev/sdb1");
    }

    #[test]
    fn the_running_system_has_a_root_disk() {
        // The machine's root is on a block device here and in CI; finding it is what
        // keeps `wipe` away from it.
        let system = SystemUse::read();
        assert!(!system.root_disks.is_empty(), "no disk found under /");
    }
}
