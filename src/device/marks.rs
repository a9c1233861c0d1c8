//! What identifies a medium by its content, for media that report no serial or
//! WWN (many USB bridges report none): a fingerprint of a few fixed places, and
//! the identifiers its partition table and file systems carry. A station takes
//! them of every medium present when it starts, so that one which re-enumerates
//! (a hub's power glitch, a loose cable) and comes back as a "new" device is
//! still recognised and left alone; `--protect` names media by these
//! identifiers rather than by a device name that changes.
//!
//! Everything is read through [`BlockIo`] (read-only, direct I/O); nothing is
//! ever written. The parsers are pure functions over the bytes read.

use sha2::{Digest, Sha256};

use super::BlockIo;
use crate::buffer::AlignedBuf;

const MIB: u64 = 1 << 20;
/// Places sampled between the first and last MiB.
const BETWEEN: u64 = 8;
const BLOCK: usize = 4096;
/// Partitions looked into for file-system identifiers.
const MAX_PARTITIONS: usize = 16;

/// A medium's content identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Marks {
    pub size_bytes: u64,
    /// SHA-256 (hex) of the first and last MiB and of eight 4 KiB blocks
    /// evenly spread between them.
    pub fingerprint: String,
    /// Identifiers of the partition table (GPT disk GUID, MBR signature),
    /// its partitions (GPT partition GUIDs) and the file systems on the medium
    /// and in its partitions (ext2/3/4, XFS, btrfs, FAT, exFAT, NTFS, LUKS,
    /// swap), normalised: lowercase hex without dashes.
    pub ids: Vec<String>,
}

/// The marks of an inspected target, opened read-only (direct I/O) for it.
pub fn of_target(target: &super::Inspected) -> Result<Marks, super::DeviceError> {
    let mut reading = target.clone();
    let medium = super::Medium::open(&mut reading, super::Access::ReadOnly)?;
    read(&medium).map_err(|e| super::DeviceError::io(std::path::Path::new(&target.identity.path), e))
}

/// Reads the marks of `medium`. Fails only when the medium cannot be read.
pub fn read(medium: &dyn BlockIo) -> std::io::Result<Marks> {
    let size = medium.size();
    let mut hasher = Sha256::new();
    hasher.update(size.to_le_bytes());
    let head = read_range(medium, 0, MIB.min(size))?;
    hasher.update(&head);
    let tail_start = size.saturating_sub(MIB).max(MIB.min(size)) / BLOCK as u64 * BLOCK as u64;
    hasher.update(read_range(medium, tail_start, size - tail_start)?);
    for k in 1..=BETWEEN {
        let at = size / (BETWEEN + 1) * k / BLOCK as u64 * BLOCK as u64;
        hasher.update(read_range(medium, at, (BLOCK as u64).min(size - at))?);
    }
    let fingerprint = hex::encode(hasher.finalize());
    let mut ids = Vec::new();
    let sector = medium.sector_size() as u64;
    let mut starts = vec![0u64];
    if let Some(table) = partition_table(&head, sector) {
        ids.extend(table.ids);
        starts.extend(table.starts.into_iter().take(MAX_PARTITIONS).filter(|s| *s < size));
    }
    for start in starts {
        let first = read_range(medium, start, (2 * BLOCK as u64).min(size - start))?;
        let btrfs_at = start + BTRFS_SUPER;
        let btrfs = if btrfs_at + BLOCK as u64 <= size {
            Some(read_range(medium, btrfs_at, BLOCK as u64)?)
        } else {
            None
        };
        ids.extend(file_system_ids(&first, btrfs.as_deref()));
    }
    ids.sort();
    ids.dedup();
    Ok(Marks { size_bytes: size, fingerprint, ids })
}

/// `len` bytes at `offset` (sector-aligned by the caller), through an aligned buffer.
fn read_range(medium: &dyn BlockIo, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    let sector = medium.smallest_transfer() as u64;
    let start = offset / sector * sector;
    let end = (offset + len).div_ceil(sector) * sector;
    let end = end.min(medium.size().div_ceil(sector) * sector);
    let mut buf = AlignedBuf::new((end - start) as usize);
    let whole = (end - start) as usize;
    medium.read_at(&mut buf[..whole], start)?;
    let skip = (offset - start) as usize;
    Ok(buf[skip..skip + len as usize].to_vec())
}

/// A partition table's own identifiers and where its partitions start (bytes).
struct Table {
    ids: Vec<String>,
    starts: Vec<u64>,
}

/// The GPT (with its protective MBR) or MBR at the start of a medium.
fn partition_table(head: &[u8], sector: u64) -> Option<Table> {
    let sector = sector as usize;
    let gpt = head.get(sector..sector + 92).filter(|h| &h[..8] == b"EFI PART");
    if let Some(header) = gpt {
        let mut ids = vec![guid(&header[56..72])];
        let entries_lba = le64(&header[72..80]) as usize;
        let count = (le32(&header[80..84]) as usize).min(128);
        let size = le32(&header[84..88]) as usize;
        let mut starts = Vec::new();
        for n in 0..count {
            let at = entries_lba.saturating_mul(sector).saturating_add(n.saturating_mul(size));
            let Some(entry) = head.get(at..at + 48) else { break };
            if entry[..16].iter().all(|b| *b == 0) {
                continue;
            }
            ids.push(guid(&entry[16..32]));
            starts.push(le64(&entry[32..40]).saturating_mul(sector as u64));
        }
        return Some(Table { ids, starts });
    }
    let mbr = head.get(..512).filter(|m| m[510] == 0x55 && m[511] == 0xAA)?;
    // A FAT or NTFS boot sector also ends in 55AA; its partition entries are code.
    let entries: Vec<&[u8]> = (0..4).map(|i| &mbr[446 + 16 * i..462 + 16 * i]).collect();
    let plausible = entries.iter().all(|e| e[0] == 0 || e[0] == 0x80);
    let used: Vec<&&[u8]> = entries.iter().filter(|e| e[4] != 0).collect();
    if !plausible || used.is_empty() {
        return None;
    }
    let signature = &mbr[440..444];
    let ids = if signature.iter().any(|b| *b != 0) {
        vec![hex::encode(signature.iter().rev().copied().collect::<Vec<u8>>())]
    } else {
        Vec::new()
    };
    let starts = used
        .iter()
        .filter(|e| !matches!(e[4], 0x05 | 0x0F | 0x85))
        .map(|e| u64::from(le32(&e[8..12])) * 512)
        .collect();
    Some(Table { ids, starts })
}

/// Where btrfs keeps its first superblock.
const BTRFS_SUPER: u64 = 64 << 10;

/// The identifiers of the file system whose first 8 KiB are `first` (and, for
/// btrfs, whose superblock at 64 KiB is `btrfs`).
fn file_system_ids(first: &[u8], btrfs: Option<&[u8]>) -> Vec<String> {
    let mut ids = Vec::new();
    let at = |range: std::ops::Range<usize>| first.get(range);
    // ext2/3/4: superblock at 1024, magic 0xEF53 at 0x38, UUID at 0x68.
    if at(1024 + 0x38..1024 + 0x3A) == Some(&[0x53, 0xEF]) {
        ids.extend(at(1024 + 0x68..1024 + 0x78).map(hex::encode));
    }
    // XFS: "XFSB", UUID at 32.
    if at(0..4) == Some(b"XFSB") {
        ids.extend(at(32..48).map(hex::encode));
    }
    // LUKS1 and LUKS2: the UUID as text at 168.
    if at(0..6) == Some(b"LUKS\xba\xbe") {
        ids.extend(at(168..208).map(|text| normalise(&String::from_utf8_lossy(text).replace('\0', ""))));
    }
    // Linux swap: "SWAPSPACE2" at the end of the first page, UUID at 1024 + 12.
    if at(4086..4096) == Some(b"SWAPSPACE2") {
        ids.extend(at(1024 + 12..1024 + 28).map(hex::encode));
    }
    // NTFS: OEM id, 8-byte serial at 0x48.
    if at(3..11) == Some(b"NTFS    ") {
        ids.extend(at(0x48..0x50).map(|s| hex::encode(s.iter().rev().copied().collect::<Vec<u8>>())));
    }
    // exFAT: OEM id, 4-byte serial at 0x64.
    if at(3..11) == Some(b"EXFAT   ") {
        ids.extend(at(0x64..0x68).map(|s| hex::encode(s.iter().rev().copied().collect::<Vec<u8>>())));
    }
    // FAT32 ("FAT32   " at 0x52, volume id at 0x43) and FAT12/16 ("FAT" at 0x36, id at 0x27).
    let fat_id = if at(0x52..0x57) == Some(b"FAT32") {
        at(0x43..0x47)
    } else if at(0x36..0x39) == Some(b"FAT") {
        at(0x27..0x2B)
    } else {
        None
    };
    ids.extend(fat_id.map(|s| hex::encode(s.iter().rev().copied().collect::<Vec<u8>>())));
    // btrfs: "_BHRfS_M" at 0x40 of its superblock, fsid at 0x20.
    if let Some(sb) = btrfs.filter(|sb| sb.get(0x40..0x48) == Some(b"_BHRfS_M")) {
        ids.extend(sb.get(0x20..0x30).map(hex::encode));
    }
    ids.retain(|id| id.chars().any(|c| c != '0'));
    ids
}

/// A GUID as it is written on disk (the first three fields little-endian),
/// as the hex of its usual text form.
fn guid(bytes: &[u8]) -> String {
    let mut ordered = Vec::with_capacity(16);
    ordered.extend(bytes[0..4].iter().rev());
    ordered.extend(bytes[4..6].iter().rev());
    ordered.extend(bytes[6..8].iter().rev());
    ordered.extend(&bytes[8..16]);
    hex::encode(ordered)
}

/// An identifier as a person writes it (`ABCD-1234`, a GUID with dashes, in
/// any case) in the form the marks hold: lowercase hex without dashes.
pub fn normalise(text: &str) -> String {
    text.trim().chars().filter(|c| *c != '-').flat_map(char::to_lowercase).collect()
}

fn le32(bytes: &[u8]) -> u32 {
    u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"))
}

fn le64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::fake::FakeDisk;

    fn disk_with(size: u64, writes: &[(u64, &[u8])]) -> FakeDisk {
        let disk = FakeDisk::new(size as usize, []);
        disk.contents().fill(0);
        for (at, bytes) in writes {
            disk.write_at(&pad(bytes), *at).unwrap();
        }
        disk
    }

    /// `bytes` padded to whole sectors.
    fn pad(bytes: &[u8]) -> Vec<u8> {
        let mut v = bytes.to_vec();
        v.resize(bytes.len().next_multiple_of(512), 0);
        v
    }

    fn ext4_superblock(uuid: [u8; 16]) -> Vec<u8> {
        let mut block = vec![0u8; 2048];
        block[1024 + 0x38..1024 + 0x3A].copy_from_slice(&[0x53, 0xEF]);
        block[1024 + 0x68..1024 + 0x78].copy_from_slice(&uuid);
        block
    }

    #[test]
    fn a_whole_disk_file_system_and_the_fingerprint_are_found() {
        let uuid = *b"\x12\x34\x56\x78\x9a\xbc\xde\xf0\x11\x22\x33\x44\x55\x66\x77\x88";
        let disk = disk_with(8 * MIB, &[(0, &ext4_superblock(uuid))]);
        let marks = read(&disk).unwrap();
        assert_eq!(marks.ids, [normalise("12345678-9abc-def0-1122-334455667788")]);
        assert_eq!(marks.fingerprint.len(), 64);
        let same = disk_with(8 * MIB, &[(0, &ext4_superblock(uuid))]);
        assert_eq!(read(&same).unwrap(), marks, "the same content has the same marks");
        let sampled = 8 * MIB / (BETWEEN + 1) * 3 / BLOCK as u64 * BLOCK as u64;
        let other = disk_with(8 * MIB, &[(0, &ext4_superblock(uuid)), (sampled, b"changed")]);
        assert_ne!(read(&other).unwrap().fingerprint, marks.fingerprint, "a place in between counts");
        let last = disk_with(8 * MIB, &[(0, &ext4_superblock(uuid)), (8 * MIB - 512, b"changed")]);
        assert_ne!(read(&last).unwrap().fingerprint, marks.fingerprint, "the last MiB counts");
        let bigger = disk_with(9 * MIB, &[(0, &ext4_superblock(uuid))]);
        assert_ne!(read(&bigger).unwrap().fingerprint, marks.fingerprint, "the size counts");
    }

    #[test]
    fn gpt_and_mbr_partitions_and_their_file_systems_are_found() {
        // A GPT: header at LBA 1, entries at LBA 2, one partition at LBA 2048.
        let mut header = vec![0u8; 512];
        header[..8].copy_from_slice(b"EFI PART");
        header[56..72]
            .copy_from_slice(&[0x78, 0x56, 0x34, 0x12, 0xBC, 0x9A, 0xF0, 0xDE, 1, 2, 3, 4, 5, 6, 7, 8]);
        header[72..80].copy_from_slice(&2u64.to_le_bytes());
        header[80..84].copy_from_slice(&128u32.to_le_bytes());
        header[84..88].copy_from_slice(&128u32.to_le_bytes());
        let mut entry = vec![0u8; 128];
        entry[..16].copy_from_slice(&[0xAF; 16]);
        entry[16..32].copy_from_slice(&[0x11; 16]);
        entry[32..40].copy_from_slice(&2048u64.to_le_bytes());
        let mut fat = vec![0u8; 512];
        fat[0x52..0x57].copy_from_slice(b"FAT32");
        fat[0x43..0x47].copy_from_slice(&[0x34, 0x12, 0xCD, 0xAB]);
        let disk = disk_with(16 * MIB, &[(512, &header), (1024, &entry), (2048 * 512, &fat)]);
        let marks = read(&disk).unwrap();
        assert!(marks.ids.contains(&normalise("12345678-9ABC-DEF0-0102-030405060708")), "{:?}", marks.ids);
        assert!(marks.ids.contains(&"11".repeat(16)), "the partition's GUID: {:?}", marks.ids);
        assert!(marks.ids.contains(&normalise("ABCD-1234")), "the FAT volume id: {:?}", marks.ids);

        // An MBR with one NTFS partition at 1 MiB.
        let mut mbr = vec![0u8; 512];
        mbr[440..444].copy_from_slice(&[0x1A, 0x3D, 0x2C, 0x5F]);
        mbr[446 + 4] = 0x07;
        mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        let mut ntfs = vec![0u8; 512];
        ntfs[3..11].copy_from_slice(b"NTFS    ");
        ntfs[0x48..0x50].copy_from_slice(&[0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01]);
        let disk = disk_with(16 * MIB, &[(0, &mbr), (MIB, &ntfs)]);
        let marks = read(&disk).unwrap();
        assert!(marks.ids.contains(&"5f2c3d1a".to_string()), "the MBR signature: {:?}", marks.ids);
        assert!(marks.ids.contains(&"0123456789abcdef".to_string()), "the NTFS serial: {:?}", marks.ids);
    }

    #[test]
    fn other_file_systems_and_blank_media() {
        let mut xfs = vec![0u8; 512];
        xfs[..4].copy_from_slice(b"XFSB");
        xfs[32..48].copy_from_slice(&[0x42; 16]);
        assert_eq!(file_system_ids(&xfs, None), ["42".repeat(16)]);
        let mut luks = vec![0u8; 512];
        luks[..6].copy_from_slice(b"LUKS\xba\xbe");
        luks[168..204].copy_from_slice(b"0b9e8f36-1d2c-4a5b-8c7d-6e5f4a3b2c1d");
        assert_eq!(file_system_ids(&luks, None), [normalise("0b9e8f36-1d2c-4a5b-8c7d-6e5f4a3b2c1d")]);
        let mut btrfs = vec![0u8; 4096];
        btrfs[0x40..0x48].copy_from_slice(b"_BHRfS_M");
        btrfs[0x20..0x30].copy_from_slice(&[0x77; 16]);
        assert_eq!(file_system_ids(&[0u8; 8192], Some(&btrfs)), ["77".repeat(16)]);
        let blank = read(&disk_with(4 * MIB, &[])).unwrap();
        assert!(blank.ids.is_empty(), "a blank medium carries no identifier");
        // Smaller than the places sampled: read whole, no panic.
        let tiny = read(&disk_with(64 << 10, &[])).unwrap();
        assert_eq!(tiny.size_bytes, 64 << 10);
    }
}
