//! What the kernel says about block devices: /sys/block, /sys/dev/block and udev's
//! database. Reading these never opens a device, so `list` is safe on any machine.

use std::fs;
use std::path::{Path, PathBuf};

/// A block device number, as `MAJ:MIN` in sysfs and mountinfo.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DevNum {
    pub major: u32,
    pub minor: u32,
}

impl DevNum {
    pub fn from_rdev(rdev: u64) -> Self {
        DevNum { major: libc::major(rdev), minor: libc::minor(rdev) }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (major, minor) = text.trim().split_once(':')?;
        Some(DevNum { major: major.parse().ok()?, minor: minor.parse().ok()? })
    }

    /// The sysfs directory of this device (a disk or a partition), resolved.
    pub fn sysfs_dir(self) -> Option<PathBuf> {
        fs::canonicalize(format!("/sys/dev/block/{}:{}", self.major, self.minor)).ok()
    }
}

pub fn read_attr(dir: &Path, name: &str) -> Option<String> {
    let text = fs::read_to_string(dir.join(name)).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

fn read_flag(dir: &Path, name: &str) -> bool {
    read_attr(dir, name).as_deref() == Some("1")
}

/// Names of the whole block devices the kernel knows (`/sys/block`), sorted.
pub fn whole_disk_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir("/sys/block")
        .map(|entries| {
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default();
    names.sort_by_key(|name| natural_key(name));
    names
}

fn natural_key(name: &str) -> (String, u64) {
    let digits = name.len() - name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (stem, number) = name.split_at(name.len() - digits);
    (stem.to_string(), number.parse().unwrap_or(0))
}

/// The sysfs facts about one whole disk or partition, gathered once.
#[derive(Debug, Clone)]
pub struct SysBlock {
    /// e.g. `sda`, `loop3`, `nvme0n1p2`
    pub name: String,
    /// Resolved `/sys/devices/...` directory.
    pub dir: PathBuf,
    pub devnum: DevNum,
    /// The whole disk this partition belongs to (itself for a whole disk).
    pub disk_dir: PathBuf,
    pub is_partition: bool,
}

impl SysBlock {
    pub fn by_name(name: &str) -> Option<Self> {
        let dir = fs::canonicalize(Path::new("/sys/class/block").join(name)).ok()?;
        Self::from_dir(dir)
    }

    pub fn by_devnum(devnum: DevNum) -> Option<Self> {
        Self::from_dir(devnum.sysfs_dir()?)
    }

    fn from_dir(dir: PathBuf) -> Option<Self> {
        let name = dir.file_name()?.to_string_lossy().into_owned();
        let devnum = DevNum::parse(&read_attr(&dir, "dev")?)?;
        let is_partition = dir.join("partition").exists();
        let disk_dir = if is_partition { dir.parent()?.to_path_buf() } else { dir.clone() };
        Some(SysBlock { name, dir, devnum, disk_dir, is_partition })
    }

    pub fn disk(&self) -> Option<SysBlock> {
        if self.is_partition { Self::from_dir(self.disk_dir.clone()) } else { Some(self.clone()) }
    }

    /// The partitions of this whole disk.
    pub fn partitions(&self) -> Vec<SysBlock> {
        let Ok(entries) = fs::read_dir(&self.dir) else { return Vec::new() };
        entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.join("partition").exists())
            .filter_map(Self::from_dir)
            .collect()
    }

    /// This device and, for a whole disk, its partitions: everything whose use
    /// would make writing to it unsafe.
    pub fn with_partitions(&self) -> Vec<SysBlock> {
        let mut all = vec![self.clone()];
        if !self.is_partition {
            all.extend(self.partitions());
        }
        all
    }

    pub fn attr(&self, name: &str) -> Option<String> {
        read_attr(&self.dir, name)
    }

    pub fn flag(&self, name: &str) -> bool {
        read_flag(&self.dir, name)
    }

    /// Devices stacked on this one (dm, md, bcache...), named as people know them.
    pub fn holders(&self) -> Vec<String> {
        list_dir(&self.dir.join("holders")).into_iter().map(|h| friendly_name(&h)).collect()
    }

    /// Devices this one is stacked on (for dm and md).
    pub fn slaves(&self) -> Vec<SysBlock> {
        list_dir(&self.dir.join("slaves")).iter().filter_map(|n| SysBlock::by_name(n)).collect()
    }

    /// udev's database entry (`E:KEY=value` lines): the serial and model on real
    /// hardware, where sysfs often lacks them.
    pub fn udev_property(&self, key: &str) -> Option<String> {
        let text = fs::read_to_string(format!("/run/udev/data/b{}:{}", self.devnum.major, self.devnum.minor))
            .ok()?;
        text.lines().find_map(|line| {
            let (k, v) = line.strip_prefix("E:")?.split_once('=')?;
            (k == key && !v.trim().is_empty()).then(|| v.trim().to_string())
        })
    }

    /// The hardware device behind the disk (`/sys/block/X/device`), when there is one.
    pub fn hardware_attr(&self, name: &str) -> Option<String> {
        read_attr(&self.disk_dir.join("device"), name)
    }
}

fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `dm-3` means little to a technician; `dm-3 (vg0-home)` does.
fn friendly_name(kernel_name: &str) -> String {
    let dir = Path::new("/sys/block").join(kernel_name);
    match read_attr(&dir.join("dm"), "name").or_else(|| read_attr(&dir.join("md"), "array_state")) {
        Some(label) if kernel_name.starts_with("dm-") => format!("{kernel_name} ({label})"),
        Some(_) => format!("{kernel_name} (md array)"),
        None => kernel_name.to_string(),
    }
}

/// The bus a disk hangs off, from its name and its place in the device tree.
pub fn transport(block: &SysBlock) -> &'static str {
    let name = block.name.as_str();
    let path = block.disk_dir.to_string_lossy();
    let prefixes: [(&str, &str); 10] = [
        ("loop", "loop"),
        ("nvme", "nvme"),
        ("mmcblk", "mmc"),
        ("vd", "virtio"),
        ("xvd", "xen"),
        ("dm-", "dm"),
        ("md", "md"),
        ("nbd", "nbd"),
        ("zram", "zram"),
        ("ram", "ram"),
    ];
    if path.contains("/usb") {
        return "usb";
    }
    if let Some((_, transport)) = prefixes.iter().find(|(prefix, _)| name.starts_with(prefix)) {
        return transport;
    }
    if path.contains("/ata") {
        "sata"
    } else if path.contains("/sas_") || path.contains("/end_device-") {
        "sas"
    } else if path.contains("/virtio") {
        "virtio"
    } else if name.starts_with("sr") {
        "optical"
    } else if name.starts_with("sd") {
        "scsi"
    } else {
        "unknown"
    }
}

/// Decodes the octal escapes (`\040` for a space) of /proc/self/mountinfo and /proc/swaps.
pub fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'\\' && i + 3 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 4]).ok())
            .flatten()
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_decode() {
        assert_eq!(unescape_octal(r"/mnt/my\040disk"), "/mnt/my disk");
        assert_eq!(unescape_octal(r"/plain"), "/plain");
        assert_eq!(unescape_octal(r"trailing\04"), r"trailing\04");
    }

    #[test]
    fn devnum_parses() {
        assert_eq!(DevNum::parse("8:16\n"), Some(DevNum { major: 8, minor: 16 }));
        assert_eq!(DevNum::parse("8"), None);
    }

    #[test]
    fn disks_sort_naturally() {
        let mut names = vec!["loop10", "loop2", "sda"];
        names.sort_by_key(|name| natural_key(name));
        assert_eq!(names, ["loop2", "loop10", "sda"]);
    }
}
