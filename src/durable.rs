//! Files that survive a crash whole and cannot be turned against their writer.
//!
//! Every file certwipe writes (reports, certificates, signatures, PDFs, journals,
//! keys, summaries) is first written to a temporary file with an unpredictable
//! name, created with `O_CREAT | O_EXCL` (so a planted symlink or file is never
//! followed or truncated), flushed, and then renamed into place. A reader sees the
//! old content or the new, never half; certwipe runs as root, so a predictable
//! temporary name in a shared directory would let anyone overwrite any file.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tempfile::NamedTempFile;

/// Whether files can be created in `dir`: found by creating one (under a random
/// name, never following a link) and removing it, since permission bits alone miss
/// read-only mounts and ACLs.
pub fn check_writable_dir(dir: &Path) -> std::io::Result<()> {
    // The error names the kind only: the probe's random name means nothing to
    // the reader, who is told which directory by the caller.
    tempfile::Builder::new()
        .prefix(".certwipe-probe-")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| std::io::Error::from(e.kind()))
}

/// Whether `dir` is the running user's alone to change: owned by them, and
/// writable by nobody else. A journal or certificate in a directory others can
/// write could be replaced by theirs (an edited journal resumed, a forged
/// certificate filed), so certwipe keeps them only in such a directory.
pub fn check_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir)?;
    let me = nix::unistd::geteuid().as_raw();
    let refused = |why: String| Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, why));
    if meta.uid() != me {
        return refused(format!(
            "it belongs to uid {}, not to you (uid {me}); use a directory of your own",
            meta.uid()
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return refused(format!(
            "others may write in it (mode {:03o}), so they could replace what certwipe keeps there; chmod go-w {}",
            meta.mode() & 0o777,
            dir.display()
        ));
    }
    Ok(())
}

/// What certwipe replaces when asked to write over it: only a file of the same
/// kind that it wrote itself. A PDF, report, head or summary written over a
/// certificate, its signature or a wiped image would destroy a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replaceable {
    Pdf,
    Report,
    Head,
    /// An SSHSIG made in `namespace` (a ledger head's, say): another
    /// record's signature, in another namespace, is never replaced.
    Signature {
        namespace: &'static str,
    },
    Summary,
}

impl Replaceable {
    fn name(self) -> &'static str {
        match self {
            Replaceable::Pdf => "PDF",
            Replaceable::Report => "wipe report",
            Replaceable::Head => "ledger head",
            Replaceable::Signature { .. } => "signature of this kind",
            Replaceable::Summary => "station summary",
        }
    }

    /// Whether a file that holds `head` (its first 64 KiB) is one of this kind.
    fn is(self, head: &[u8]) -> bool {
        let text = String::from_utf8_lossy(head);
        match self {
            Replaceable::Pdf => head.starts_with(b"%PDF-"),
            Replaceable::Report => text.starts_with("{\n  \"format\": \"certwipe.report/"),
            Replaceable::Head => text.starts_with("{\n  \"format\": \"certwipe.ledger-head/"),
            Replaceable::Signature { namespace } => {
                ssh_key::SshSig::from_pem(head).is_ok_and(|signature| signature.namespace() == namespace)
            }
            Replaceable::Summary => text.starts_with("port,device,") || text.starts_with("{\n  \"erased\":"),
        }
    }

    /// Refuses `path` when something is there that is not a file of this
    /// kind: another file, a directory, a device. A link is replaced, never
    /// followed, so what it points to is safe either way.
    pub fn check(self, path: &Path) -> std::io::Result<()> {
        use std::io::Read;
        let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        let mut head = Vec::new();
        if meta.is_file() {
            std::fs::File::open(path)?.take(64 << 10).read_to_end(&mut head)?;
        }
        if meta.is_file() && self.is(&head) {
            return Ok(());
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("it exists and is not a {} certwipe wrote; certwipe never writes over it", self.name()),
        ))
    }
}

/// Creates `path` with permissions `mode`, whole or not at all, and never replaces
/// an existing file or link (certificates and keys are records).
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let temp = write_temporary(path, bytes, mode)?;
    temp.persist_noclobber(path).map_err(|e| e.error)?;
    sync_parent(path)
}

/// Replaces `path` (a file, or a link, which is replaced and not followed) with
/// `bytes`, atomically.
pub fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let temp = write_temporary(path, bytes, mode)?;
    temp.persist(path).map_err(|e| e.error)?;
    sync_parent(path)
}

fn parent(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// `.NAME.XXXXXX.tmp` beside `path`: random, created exclusively, flushed.
fn write_temporary(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<NamedTempFile> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut temp =
        tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(parent(path))?;
    temp.as_file().set_permissions(std::fs::Permissions::from_mode(mode))?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    Ok(temp)
}

/// The rename itself is durable once the directory is.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(parent(path))?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_planted_link_is_replaced_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let out = dir.path().join("out.json");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_atomically(&out, b"report", 0o644).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&out).unwrap(), b"report");
        assert!(!std::fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
    }

    #[test]
    fn a_new_file_never_replaces_a_file_or_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = dir.path().join("cert.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let error = write_new(&link, b"certificate", 0o644).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        write_new(&dir.path().join("new.json"), b"certificate", 0o600).unwrap();
        let mode = std::fs::metadata(dir.path().join("new.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No temporary file is left behind, whether the write succeeded or not.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }
}
