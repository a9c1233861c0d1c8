//! Files certwipe reads: certificates, signatures, statements, allowed signers,
//! profiles, keys, journals, kept heads, drive dumps. Every one is opened
//! without blocking, must be a regular file, and is read up to a cap: a FIFO
//! put beside a certificate would hang `cert verify` forever, and
//! `--allowed-signers /dev/zero` would read until memory runs out.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use thiserror::Error;

/// Why a file was not read.
#[derive(Debug, Error)]
pub enum InputError {
    #[error("not a regular file ({0}); certwipe reads only regular files")]
    NotRegular(&'static str),
    #[error("{bytes} bytes is more than the {max} such a file can have; refused unread")]
    TooLarge { bytes: u64, max: u64 },
    #[error("not UTF-8 text")]
    NotText,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl InputError {
    /// Whether the file is simply not there.
    pub fn is_missing(&self) -> bool {
        matches!(self, InputError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Certificates, countersignature statements, ledger heads: the largest
/// document certwipe reads. A real certificate is a few kilobytes; the worst
/// honest one (256 passes, 4,096 bad areas, 1,000 logged errors) stays under
/// 2 MiB.
pub const DOCUMENT: u64 = 4 << 20;
/// An armored SSHSIG is under 1 KiB.
pub const SIGNATURE: u64 = 64 << 10;
/// Allowed-signers files and profiles: thousands of lines.
pub const LIST: u64 = 4 << 20;
/// A private key file.
pub const KEY: u64 = 64 << 10;
/// A checkpoint journal (a pass list with its bad-sector ranges and error log).
pub const JOURNAL: u64 = 64 << 20;
/// A drive's IDENTIFY or Identify Controller dump.
pub const DUMP: u64 = 64 << 10;

/// The whole of `path`, if it is a regular file of at most `max` bytes. A
/// FIFO, socket or device is refused without being read or waited on, and a
/// larger file without being read into memory.
pub fn read_regular(path: &Path, max: u64) -> Result<Vec<u8>, InputError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // Opening a FIFO with no writer would block; with O_NONBLOCK it does not,
        // and the type check below refuses it.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(InputError::NotRegular(kind_of(&meta)));
    }
    if meta.len() > max {
        return Err(InputError::TooLarge { bytes: meta.len(), max });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // The file may grow after the size was read: the cap holds anyway.
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(InputError::TooLarge { bytes: bytes.len() as u64, max });
    }
    Ok(bytes)
}

/// As [`read_regular`], as UTF-8 text.
pub fn read_text(path: &Path, max: u64) -> Result<String, InputError> {
    String::from_utf8(read_regular(path, max)?).map_err(|_| InputError::NotText)
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_oversized_files_are_refused_without_waiting_or_reading() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let error = read_regular(&fifo, LIST).unwrap_err();
        assert!(error.to_string().contains("a FIFO"), "{error}");
        let error = read_regular(Path::new("/dev/zero"), LIST).unwrap_err();
        assert!(error.to_string().contains("a character device"), "{error}");
        assert!(read_regular(dir.path(), LIST).unwrap_err().to_string().contains("directory"));
        let big = dir.path().join("big");
        std::fs::File::create(&big).unwrap().set_len(LIST + 1).unwrap();
        assert!(read_regular(&big, LIST).unwrap_err().to_string().contains("refused unread"));
        let small = dir.path().join("small");
        std::fs::write(&small, b"line\n").unwrap();
        assert_eq!(read_text(&small, 5).unwrap(), "line\n");
        assert!(read_regular(&small, 4).is_err());
    }
}
