//! Targets: discovery (`list`), identity (what goes into the report), safety checks
//! (what `wipe` refuses) and opening a target for direct I/O.

#[cfg(test)]
pub(crate) mod fake;
mod ioctl;
pub mod marks;
mod medium;
pub mod protect;
pub mod sysfs;
mod usage;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use medium::{Access, CacheBypass, Medium};
pub use protect::Protect;
pub use sysfs::DevNum;
use sysfs::SysBlock;
pub use usage::{SystemUse, Usage};

/// What the engine needs of an opened target: positioned I/O that bypasses the
/// page cache, and its geometry. [`Medium`] is the real one; tests script fakes
/// (failing sectors, a device that vanishes) behind the same seam.
pub trait BlockIo: Sync {
    fn size(&self) -> u64;
    /// The unit of bad ranges: the logical sector.
    fn sector_size(&self) -> usize;
    /// The smallest transfer that works everywhere on the medium; bad-sector
    /// narrowing stops here.
    fn smallest_transfer(&self) -> usize;
    /// Writes all of `buf` at `offset` (sector-aligned, as O_DIRECT demands).
    fn write_at(&self, buf: &[u8], offset: u64) -> std::io::Result<()>;
    /// Fills all of `buf` from `offset`.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
    /// Makes everything written durable and drops cached copies.
    fn sync(&self) -> std::io::Result<()>;
    fn cache_bypass(&self) -> CacheBypass;
}

crate::named! {
    pub enum TargetKind: "target kind" {
        BlockDevice = "block-device",
        ImageFile = "image-file",
    }
}

crate::named! {
    /// What kind of medium this is, which decides what an overwrite can honestly claim.
    pub enum MediaType: "media type" {
        Hdd = "hdd",
        Ssd = "ssd",
        Nvme = "nvme",
        UsbFlash = "usb-flash",
        MemoryCard = "memory-card",
        Virtual = "virtual",
        ImageFile = "image-file",
        Unknown = "unknown",
    }
}

impl MediaType {
    /// Flash keeps spare and remapped blocks that no host write can reach.
    pub fn is_flash(self) -> bool {
        matches!(self, MediaType::Ssd | MediaType::Nvme | MediaType::UsbFlash | MediaType::MemoryCard)
    }

    fn classify(transport: &str, rotational: Option<bool>) -> MediaType {
        match (transport, rotational) {
            ("loop" | "dm" | "md" | "nbd" | "zram" | "ram" | "virtio" | "xen", _) => MediaType::Virtual,
            ("nvme", _) => MediaType::Nvme,
            ("mmc", _) => MediaType::MemoryCard,
            ("usb", Some(false)) => MediaType::UsbFlash,
            (_, Some(true)) => MediaType::Hdd,
            ("sata" | "sas" | "scsi", Some(false)) => MediaType::Ssd,
            _ => MediaType::Unknown,
        }
    }
}

/// Everything known about a target: the report's and the certificate's "which medium".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The path the operator gave.
    pub path: String,
    /// That path with symlinks resolved (e.g. `/dev/sdb` for `/dev/disk/by-id/...`).
    pub resolved_path: String,
    pub name: String,
    pub kind: TargetKind,
    pub size_bytes: u64,
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    pub firmware: Option<String>,
    pub wwn: Option<String>,
    pub transport: String,
    pub rotational: Option<bool>,
    pub removable: bool,
    pub read_only: bool,
    pub media_type: MediaType,
    /// For loop devices: the file behind it.
    pub backing_file: Option<String>,
    pub usage: Usage,
    /// Where model, serial and firmware came from: the drive itself, or sysfs.
    /// Absent in records made before certwipe asked drives (sysfs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_source: Option<IdentitySource>,
    /// ATA hidden areas: the accessible, native and factory sizes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<HiddenAreas>,
}

impl Identity {
    /// A block device of `size` bytes known by nothing else, for unit tests.
    #[cfg(test)]
    pub fn for_tests(size: u64) -> Identity {
        Identity {
            path: "fake".into(),
            resolved_path: "fake".into(),
            name: "fake".into(),
            kind: TargetKind::BlockDevice,
            logical_sector_size: 512,
            physical_sector_size: 512,
            transport: "fake".into(),
            media_type: MediaType::Unknown,
            ..image_identity("fake", Path::new("fake"), size)
        }
    }

    /// Every free-text field, by name: what a device or a path put there.
    pub fn texts(&self) -> [(&'static str, Option<&str>); 10] {
        [
            ("path", Some(self.path.as_str())),
            ("resolved path", Some(self.resolved_path.as_str())),
            ("name", Some(self.name.as_str())),
            ("vendor", self.vendor.as_deref()),
            ("model", self.model.as_deref()),
            ("serial", self.serial.as_deref()),
            ("firmware", self.firmware.as_deref()),
            ("WWN", self.wwn.as_deref()),
            ("transport", Some(self.transport.as_str())),
            ("backing file", self.backing_file.as_deref()),
        ]
    }

    /// Reasons to believe `now` is not the medium this identity describes. An
    /// image file is the file at its path, and a loop device the file behind
    /// it: another file of the same size and content is another medium.
    pub fn differences(&self, now: &Identity) -> Vec<String> {
        let mut problems = Vec::new();
        if self.kind != now.kind {
            problems.push(format!("it is a {}, the record says {}", now.kind, self.kind));
        }
        if self.kind == TargetKind::ImageFile && self.resolved_path != now.resolved_path {
            problems.push(format!(
                "it is the file {}, the record says {}",
                now.resolved_path, self.resolved_path
            ));
        }
        if self.backing_file != now.backing_file {
            problems.push(format!(
                "the file behind it is {}, the record says {}",
                now.backing_file.as_deref().unwrap_or("none"),
                self.backing_file.as_deref().unwrap_or("none")
            ));
        }
        if self.size_bytes != now.size_bytes {
            problems.push(format!("size is {} bytes, the record says {}", now.size_bytes, self.size_bytes));
        }
        if self.logical_sector_size != now.logical_sector_size {
            problems.push(format!(
                "logical sector size is {}, the record says {}",
                now.logical_sector_size, self.logical_sector_size
            ));
        }
        for (what, was, is) in [
            ("serial", &self.serial, &now.serial),
            ("model", &self.model, &now.model),
            ("WWN", &self.wwn, &now.wwn),
        ] {
            if was != is {
                problems.push(format!(
                    "{what} is {}, the record says {}",
                    is.as_deref().unwrap_or("unknown"),
                    was.as_deref().unwrap_or("unknown")
                ));
            }
        }
        problems
    }
}

crate::named! {
    /// Where a medium's identity came from, as the certificate records it.
    pub enum IdentitySource: "identity source" {
        AtaIdentify = "ata-identify",
        NvmeIdentify = "nvme-identify",
        ScsiVpd = "scsi-vpd",
        Sysfs = "sysfs",
    }
}

/// Both sizes, as the certificate records them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HiddenAreas {
    /// Sectors the host can address now (IDENTIFY).
    pub accessible_sectors: u64,
    /// Sectors without the HPA (native max address + 1), when the drive says.
    pub native_sectors: Option<u64>,
    /// Sectors without the DCO (its maximum LBA + 1), when the drive says.
    pub factory_sectors: Option<u64>,
    /// What certwipe restored before overwriting.
    pub hpa_restored: bool,
    pub dco_restored: bool,
}

impl HiddenAreas {
    /// The largest size the drive admits to.
    pub fn full_sectors(&self) -> u64 {
        self.accessible_sectors.max(self.native_sectors.unwrap_or(0)).max(self.factory_sectors.unwrap_or(0))
    }

    /// Sectors beyond what the host can address.
    pub fn hidden_sectors(&self) -> u64 {
        self.full_sectors() - self.accessible_sectors
    }

    pub fn hpa_sectors(&self) -> u64 {
        self.native_sectors.map_or(0, |n| n.saturating_sub(self.accessible_sectors))
    }

    pub fn dco_sectors(&self) -> u64 {
        match (self.factory_sectors, self.native_sectors) {
            (Some(factory), Some(native)) => factory.saturating_sub(native),
            (Some(factory), None) => factory.saturating_sub(self.accessible_sectors),
            _ => 0,
        }
    }
}

#[derive(Debug, Error)]
pub enum DeviceError {
    #[error("{path}: no such file or device; `certwipe list` shows the block devices")]
    NotFound { path: String },
    #[error("{path}: is a directory; give a block device such as /dev/sdb or a disk image file")]
    Directory { path: String },
    #[error(
        "{path}: is a character device, not a block device or image file; certwipe writes only block devices and image files"
    )]
    CharacterDevice { path: String },
    #[error(
        "{path}: the path holds control or invisible characters, which would reach the certificate and every screen; rename the file"
    )]
    HiddenCharacters { path: String },
    #[error("{path}: is not a block device or a regular file")]
    UnsupportedFileType { path: String },
    #[error("{path}: refused: {}", reasons.join("; "))]
    InUse { path: String, reasons: Vec<String> },
    #[error("{path}: is read-only ({why}); nothing was written")]
    ReadOnly { path: String, why: String },
    #[error(
        "{path}: is busy — another program has it open exclusively (a mount, a RAID or LVM, a partitioner); close it and try again"
    )]
    Busy { path: String },
    #[error(
        "{path}: is open in another program (an editor, a virtual machine, a copy in progress), which could write it after certwipe; close it and try again (fuser -v shows who)"
    )]
    OpenElsewhere { path: String },
    #[error("{path}: permission denied; writing a block device needs root (sudo certwipe ...)")]
    PermissionDenied { path: String },
    #[error("{path}: is empty (0 bytes); there is nothing to overwrite")]
    Empty { path: String },
    #[error(
        "{path}: changed between the safety checks and opening it ({what}); check the device and run again"
    )]
    Changed { path: String, what: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

// Targets are inspected and opened before anything is written.
impl crate::exit::ExitStatus for DeviceError {
    fn exit_status(&self) -> u8 {
        crate::exit::USAGE
    }
}

impl DeviceError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        let path = path.display().to_string();
        match source.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ENXIO) | Some(libc::ENODEV) => DeviceError::NotFound { path },
            Some(libc::EACCES) | Some(libc::EPERM) => DeviceError::PermissionDenied { path },
            Some(libc::EBUSY) => DeviceError::Busy { path },
            Some(libc::EROFS) => {
                DeviceError::ReadOnly { path, why: "read-only file system or device".into() }
            }
            _ => DeviceError::Io { path, source },
        }
    }
}

/// A target that passed inspection, with the facts needed to open it again safely.
#[derive(Clone, Debug)]
pub struct Inspected {
    pub identity: Identity,
    /// Device number (block devices) or device+inode (files): the same medium under
    /// two names is one target.
    pub key: (u64, u64),
    /// Reasons `wipe` must refuse this target; empty when it may be written.
    pub refusals: Vec<String>,
    /// Files: the inode change time at inspection. Inode numbers are reused, so a
    /// file replaced under the same name is recognised by this.
    pub changed_at: Option<(i64, i64)>,
    /// Loop devices: device+inode of the file behind it, the medium itself.
    pub backing: Option<(u64, u64)>,
}

impl Inspected {
    /// What a block device holds, as `lsblk -f` shows it, for the operator
    /// to read before confirming: its partition table, and each partition
    /// (or the whole disk, where it carries a file system itself) with its
    /// size, file-system type and label, from sysfs and udev's database.
    /// Empty for an image file, and where neither knows anything.
    pub fn contents(&self) -> Vec<String> {
        if self.identity.kind != TargetKind::BlockDevice {
            return Vec::new();
        }
        let Some(block) = SysBlock::by_devnum(DevNum::from_rdev(self.key.0)) else { return Vec::new() };
        let table = probed(&block, "ID_PART_TABLE_TYPE", "PTTYPE")
            .map(|t| format!("{} partition table {t}", block.name));
        let parts = block.with_partitions().into_iter().filter_map(|part| {
            let (fs, label) = (probed(&part, "ID_FS_TYPE", "TYPE"), probed(&part, "ID_FS_LABEL", "LABEL"));
            if !part.is_partition && fs.is_none() && label.is_none() {
                return None;
            }
            let sectors: u64 = part.attr("size").and_then(|s| s.parse().ok()).unwrap_or(0);
            Some(format!(
                "{} {} {}{}",
                part.name,
                indicatif::HumanBytes(sectors * 512),
                fs.as_deref().unwrap_or("(no file system known)"),
                label.map(|l| format!(" \"{l}\"")).unwrap_or_default()
            ))
        });
        table.into_iter().chain(parts).collect()
    }

    /// What identifies the medium itself: the file behind a loop device, else
    /// the device or file. `/dev/loop0` and the file behind it are one medium.
    pub fn medium_key(&self) -> (u64, u64) {
        self.backing.unwrap_or(self.key)
    }
}

/// Device+inode of the file behind a loop device, if it has one.
fn loop_backing(block: &SysBlock) -> Option<(u64, u64)> {
    let raw = block.disk()?.attr("loop/backing_file")?;
    let meta = fs::metadata(raw.strip_suffix(" (deleted)").unwrap_or(&raw)).ok()?;
    Some((meta.dev(), meta.ino()))
}

/// The attached loop device whose backing file is `file` (by device+inode).
fn loop_over(file: (u64, u64)) -> Option<String> {
    sysfs::whole_disk_names()
        .into_iter()
        .filter(|name| name.starts_with("loop"))
        .find(|name| SysBlock::by_name(name).and_then(|b| loop_backing(&b)) == Some(file))
}

/// Every whole block device, as `list` shows them.
pub fn list_all(system: &SystemUse) -> Vec<Inspected> {
    sysfs::whole_disk_names()
        .iter()
        .filter_map(|name| SysBlock::by_name(name))
        // An unattached loop device has no medium behind it.
        .filter(|b| !(b.name.starts_with("loop") && b.attr("loop/backing_file").is_none()))
        .map(|b| {
            let path = format!("/dev/{}", b.name);
            let identity = block_identity(&path, &path, &b, system);
            let refusals = refusals_of(&identity);
            let key = (libc::makedev(b.devnum.major, b.devnum.minor), 0);
            let backing = loop_backing(&b);
            Inspected { identity, key, refusals, changed_at: None, backing }
        })
        .collect()
}

/// Looks at a target path without opening it for writing: what it is, and whether
/// writing it is safe.
pub fn inspect(path: &Path, system: &SystemUse) -> Result<Inspected, DeviceError> {
    let shown = path.display().to_string();
    if shown.chars().any(crate::text::is_hidden) {
        return Err(DeviceError::HiddenCharacters { path: crate::text::escape(&shown).into_owned() });
    }
    let meta = fs::metadata(path).map_err(|e| DeviceError::io(path, e))?;
    let resolved = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let file_type = meta.file_type();
    if file_type.is_dir() {
        return Err(DeviceError::Directory { path: shown });
    }
    if file_type.is_char_device() {
        return Err(DeviceError::CharacterDevice { path: shown });
    }
    if file_type.is_block_device() {
        let devnum = DevNum::from_rdev(meta.rdev());
        let block =
            SysBlock::by_devnum(devnum).ok_or_else(|| DeviceError::NotFound { path: shown.clone() })?;
        let identity = block_identity(&shown, &resolved.display().to_string(), &block, system);
        let refusals = refusals_of(&identity);
        let backing = loop_backing(&block);
        return Ok(Inspected { identity, key: (meta.rdev(), 0), refusals, changed_at: None, backing });
    }
    if !file_type.is_file() {
        return Err(DeviceError::UnsupportedFileType { path: shown });
    }
    let mut refusals = Vec::new();
    if let Some(kind) = pseudo_file_system(path) {
        refusals.push(format!(
            "it lies on {kind}, whose files are the kernel's settings and state, not storage; an image file must be on a disk's file system"
        ));
    }
    if system.is_swap_file(path) {
        refusals.push("it is an active swap file; run swapoff first".to_string());
    }
    if let Some(device) = loop_over((meta.dev(), meta.ino())) {
        refusals.push(format!(
            "it is the file behind /dev/{device}, which is in use as a disk; wipe /dev/{device} instead, or detach it first (losetup -d /dev/{device})"
        ));
    }
    let identity = image_identity(&shown, &resolved, meta.len());
    Ok(Inspected {
        identity,
        key: (meta.dev(), meta.ino()),
        refusals,
        changed_at: Some((meta.ctime(), meta.ctime_nsec())),
        backing: None,
    })
}

/// A fact udev's database keeps about a block device (`udev_key`), or, where
/// udev does not run (a rescue system, a container), what `blkid -p` reads
/// from the device itself (`blkid_key`), read-only; escaped as device text.
fn probed(block: &SysBlock, udev_key: &str, blkid_key: &str) -> Option<String> {
    let raw = block.udev_property(udev_key).or_else(|| {
        let out = std::process::Command::new("blkid")
            .args(["-p", "-o", "export", &format!("/dev/{}", block.name)])
            .stderr(std::process::Stdio::null())
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|line| line.strip_prefix(blkid_key)?.strip_prefix('=').map(str::to_string))
    })?;
    crate::text::from_device(&raw)
}

/// The kernel's own file systems, by `statfs` magic number (linux/magic.h):
/// their regular files are settings and state (`/proc/sys/...`,
/// `/sys/.../power/...`), and writing one is never wiping a medium.
fn pseudo_file_system(path: &Path) -> Option<&'static str> {
    const KERNEL_FILE_SYSTEMS: [(u64, &str); 13] = [
        (0x9fa0, "procfs"),
        (0x6265_6572, "sysfs"),
        (0x6462_6720, "debugfs"),
        (0x7472_6163, "tracefs"),
        (0x6265_6570, "configfs"),
        (0x0027_e0eb, "cgroupfs"),
        (0x6367_7270, "cgroup2fs"),
        (0x7363_6673, "securityfs"),
        (0xcafe_4a11, "bpffs"),
        (0x6165_676c, "pstorefs"),
        (0xde5e_81e4, "efivarfs"),
        (0x6573_5543, "fusectl"),
        (0x1cd1, "devpts"),
    ];
    let found = rustix::fs::statfs(path).ok()?.f_type as u64;
    KERNEL_FILE_SYSTEMS.iter().find(|(magic, _)| *magic == found).map(|(_, name)| *name)
}

fn refusals_of(identity: &Identity) -> Vec<String> {
    let mut reasons = identity.usage.refusals();
    if identity.read_only {
        reasons.push("it is read-only (write-protect switch, or `blockdev --setrw`)".to_string());
    }
    if identity.size_bytes == 0 {
        reasons.push("it has no medium (size 0)".to_string());
    }
    reasons
}

fn image_identity(path: &str, resolved: &Path, size: u64) -> Identity {
    Identity {
        path: path.to_string(),
        resolved_path: resolved.display().to_string(),
        name: resolved.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        kind: TargetKind::ImageFile,
        size_bytes: size,
        logical_sector_size: medium::IMAGE_SECTOR,
        physical_sector_size: medium::IMAGE_IO_ALIGN as u32,
        vendor: None,
        model: None,
        serial: None,
        firmware: None,
        wwn: None,
        transport: "file".to_string(),
        rotational: None,
        removable: false,
        read_only: false,
        media_type: MediaType::ImageFile,
        backing_file: None,
        usage: Usage::default(),
        identity_source: None,
        hidden: None,
    }
}

fn block_identity(path: &str, resolved: &str, block: &SysBlock, system: &SystemUse) -> Identity {
    let transport = sysfs::transport(block);
    let rotational = block.disk().and_then(|d| d.attr("queue/rotational")).map(|r| r == "1");
    let disk = block.disk().unwrap_or_else(|| block.clone());
    let size_sectors: u64 = block.attr("size").and_then(|s| s.parse().ok()).unwrap_or(0);
    let queue = |name: &str| disk.attr(&format!("queue/{name}")).and_then(|s| s.parse().ok()).unwrap_or(512);
    // What the device reports is escaped and bounded before it goes anywhere.
    let hardware = |names: &[&str]| {
        names.iter().find_map(|n| block.hardware_attr(n)).and_then(|t| crate::text::from_device(&t))
    };
    let udev = |key: &str| block.udev_property(key).and_then(|t| crate::text::from_device(&t));
    let attr = |dir: &SysBlock, name: &str| dir.attr(name).and_then(|t| crate::text::from_device(&t));
    Identity {
        path: path.to_string(),
        resolved_path: resolved.to_string(),
        name: block.name.clone(),
        kind: TargetKind::BlockDevice,
        // sysfs counts 512-byte units whatever the sector size.
        size_bytes: size_sectors * 512,
        logical_sector_size: queue("logical_block_size"),
        physical_sector_size: queue("physical_block_size"),
        vendor: hardware(&["vendor"]).or_else(|| udev("ID_VENDOR")),
        model: hardware(&["model"]).or_else(|| udev("ID_MODEL")),
        serial: hardware(&["serial"]).or_else(|| attr(&disk, "serial")).or_else(|| udev("ID_SERIAL_SHORT")),
        firmware: hardware(&["firmware_rev", "rev"]).or_else(|| udev("ID_REVISION")),
        wwn: hardware(&["wwid"]).or_else(|| attr(&disk, "wwid")).or_else(|| udev("ID_WWN")),
        transport: transport.to_string(),
        rotational,
        removable: disk.flag("removable"),
        read_only: block.flag("ro"),
        media_type: MediaType::classify(transport, rotational),
        backing_file: disk.attr("loop/backing_file").map(|f| crate::text::escape(&f).into_owned()),
        usage: Usage::of(block, system),
        identity_source: Some(IdentitySource::Sysfs),
        hidden: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_follow_transport_and_rotation() {
        assert_eq!(MediaType::classify("usb", Some(false)), MediaType::UsbFlash);
        assert_eq!(MediaType::classify("usb", Some(true)), MediaType::Hdd);
        assert_eq!(MediaType::classify("sata", Some(false)), MediaType::Ssd);
        assert_eq!(MediaType::classify("sata", Some(true)), MediaType::Hdd);
        assert_eq!(MediaType::classify("loop", Some(true)), MediaType::Virtual);
        assert_eq!(MediaType::classify("mmc", Some(false)), MediaType::MemoryCard);
        assert!(MediaType::Nvme.is_flash() && !MediaType::Hdd.is_flash());
    }

    #[test]
    fn directories_character_devices_and_missing_paths_are_refused() {
        let system = SystemUse::read();
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(inspect(dir.path(), &system), Err(DeviceError::Directory { .. })));
        assert!(matches!(inspect(Path::new("/dev/null"), &system), Err(DeviceError::CharacterDevice { .. })));
        assert!(matches!(
            inspect(&dir.path().join("missing.img"), &system),
            Err(DeviceError::NotFound { .. })
        ));
    }
}
