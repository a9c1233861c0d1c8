//! The real [`Passthrough`]: `SG_IO` (sg v3, `<scsi/sg.h>`) and
//! `NVME_IOCTL_ADMIN_CMD` / `NVME_IOCTL_ID` (`<linux/nvme_ioctl.h>`) on an open
//! block device. Only this file talks to the kernel; everything above it is
//! tested against scripted drives.

use std::ffi::c_void;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use rustix::ioctl::{Ioctl, IoctlOutput, Opcode, ioctl, opcode};

use super::probe::DescriptorSense;
use super::{NvmeAdmin, NvmeReply, Passthrough, ScsiReply, Transfer};

/// `SG_IO` predates the _IOC encoding: its number is plain 0x2285.
const SG_IO: Opcode = 0x2285;
const NVME_IOCTL_ID: Opcode = opcode::none(b'N', 0x40);
const NVME_IOCTL_ADMIN_CMD: Opcode = opcode::read_write::<NvmePassthruCmd>(b'N', 0x41);

const SG_DXFER_NONE: i32 = -1;
const SG_DXFER_TO_DEV: i32 = -2;
const SG_DXFER_FROM_DEV: i32 = -3;

/// Room for any sense data (SPC allows 252 bytes).
const SENSE_CAPACITY: usize = 252;

/// `struct sg_io_hdr`.
#[repr(C)]
struct SgIoHdr {
    interface_id: i32,
    dxfer_direction: i32,
    cmd_len: u8,
    mx_sb_len: u8,
    iovec_count: u16,
    dxfer_len: u32,
    dxferp: *mut c_void,
    cmdp: *const u8,
    sbp: *mut u8,
    timeout: u32,
    flags: u32,
    pack_id: i32,
    usr_ptr: *mut c_void,
    status: u8,
    masked_status: u8,
    msg_status: u8,
    sb_len_wr: u8,
    host_status: u16,
    driver_status: u16,
    resid: i32,
    duration: u32,
    info: u32,
}

/// `struct nvme_passthru_cmd` (= `nvme_admin_cmd`).
#[repr(C)]
#[derive(Default)]
struct NvmePassthruCmd {
    opcode: u8,
    flags: u8,
    rsvd1: u16,
    nsid: u32,
    cdw2: u32,
    cdw3: u32,
    metadata: u64,
    addr: u64,
    metadata_len: u32,
    data_len: u32,
    cdw10: u32,
    cdw11: u32,
    cdw12: u32,
    cdw13: u32,
    cdw14: u32,
    cdw15: u32,
    timeout_ms: u32,
    result: u32,
}

// The kernel's sizes on 64-bit Linux (checked with gcc against the headers).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(size_of::<SgIoHdr>() == 88 && size_of::<NvmePassthruCmd>() == 72);

/// An ioctl whose return value is the answer: the NVMe status of an admin
/// command, or the namespace id.
struct ReturnsInt<'a, const OPCODE: Opcode, T> {
    argument: Option<&'a mut T>,
}

// SAFETY: `as_ptr` is either null (NVME_IOCTL_ID takes no argument) or points
// at the exact struct the opcode expects, alive for the call; the output is
// the ioctl's own non-negative return value, which needs no pointer.
unsafe impl<const OPCODE: Opcode, T> Ioctl for ReturnsInt<'_, OPCODE, T> {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;

    fn opcode(&self) -> Opcode {
        OPCODE
    }

    fn as_ptr(&mut self) -> *mut c_void {
        match &mut self.argument {
            Some(value) => (*value as *mut T).cast(),
            None => std::ptr::null_mut(),
        }
    }

    /// # Safety
    /// rustix's contract: called once the ioctl returned, with the pointer
    /// [`as_ptr`](Self::as_ptr) gave; nothing is read through it here, the
    /// kernel wrote the argument in place.
    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> rustix::io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// Pass-through on an open block device (`/dev/sdX`, `/dev/nvmeXnY`).
pub struct LinuxDrive<'a> {
    fd: BorrowedFd<'a>,
}

/// Runs `work` against the drive behind `fd`, which answers in descriptor-format
/// sense while it runs (see [`DescriptorSense`]); every command to a real drive
/// goes through here.
pub fn with_drive<T>(fd: BorrowedFd<'_>, work: impl FnOnce(&mut dyn Passthrough) -> T) -> T {
    let mut linux = LinuxDrive::new(fd);
    let mut drive = DescriptorSense::enable(&mut linux);
    work(&mut drive)
}

impl<'a> LinuxDrive<'a> {
    pub fn new(fd: BorrowedFd<'a>) -> LinuxDrive<'a> {
        LinuxDrive { fd }
    }
}

fn millis(timeout: Duration) -> u32 {
    u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX)
}

impl Passthrough for LinuxDrive<'_> {
    fn scsi(&mut self, cdb: &[u8], transfer: Transfer<'_>, timeout: Duration) -> io::Result<ScsiReply> {
        let mut sense = [0u8; SENSE_CAPACITY];
        let (direction, data, length): (i32, *mut c_void, usize) = match transfer {
            Transfer::None => (SG_DXFER_NONE, std::ptr::null_mut(), 0),
            Transfer::FromDevice(buf) => (SG_DXFER_FROM_DEV, buf.as_mut_ptr().cast(), buf.len()),
            // The kernel only reads a TO_DEV buffer; sg_io_hdr has one pointer type for both.
            Transfer::ToDevice(buf) => (SG_DXFER_TO_DEV, buf.as_ptr().cast_mut().cast(), buf.len()),
        };
        let mut header = SgIoHdr {
            interface_id: i32::from(b'S'),
            dxfer_direction: direction,
            cmd_len: u8::try_from(cdb.len()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            mx_sb_len: SENSE_CAPACITY as u8,
            iovec_count: 0,
            dxfer_len: u32::try_from(length).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            dxferp: data,
            cmdp: cdb.as_ptr(),
            sbp: sense.as_mut_ptr(),
            timeout: millis(timeout),
            flags: 0,
            pack_id: 0,
            usr_ptr: std::ptr::null_mut(),
            status: 0,
            masked_status: 0,
            msg_status: 0,
            sb_len_wr: 0,
            host_status: 0,
            driver_status: 0,
            resid: 0,
            duration: 0,
            info: 0,
        };
        // SAFETY: SG_IO takes a `struct sg_io_hdr`, which SgIoHdr mirrors (size
        // asserted above); its CDB, data and sense pointers point at buffers of
        // the stated lengths that outlive this synchronous call.
        unsafe { ioctl(self.fd, ReturnsInt::<SG_IO, SgIoHdr> { argument: Some(&mut header) }) }?;
        let written = usize::from(header.sb_len_wr).min(SENSE_CAPACITY);
        Ok(ScsiReply {
            status: header.status,
            sense: sense[..written].to_vec(),
            host_status: header.host_status,
            driver_status: header.driver_status,
        })
    }

    fn nvme_admin(
        &mut self,
        command: &NvmeAdmin,
        transfer: Transfer<'_>,
        timeout: Duration,
    ) -> io::Result<NvmeReply> {
        let (addr, length) = match transfer {
            Transfer::None => (0, 0),
            Transfer::FromDevice(buf) => (buf.as_mut_ptr() as u64, buf.len()),
            Transfer::ToDevice(buf) => (buf.as_ptr() as u64, buf.len()),
        };
        let mut cmd = NvmePassthruCmd {
            opcode: command.opcode,
            nsid: command.nsid,
            addr,
            data_len: u32::try_from(length).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
            cdw10: command.cdw10,
            cdw11: command.cdw11,
            cdw12: command.cdw12,
            timeout_ms: millis(timeout),
            ..NvmePassthruCmd::default()
        };
        // SAFETY: NVME_IOCTL_ADMIN_CMD takes a `struct nvme_passthru_cmd`, which
        // NvmePassthruCmd mirrors (size asserted above); `addr` points at a
        // buffer of `data_len` bytes that outlives this synchronous call.
        let status = unsafe {
            ioctl(self.fd, ReturnsInt::<NVME_IOCTL_ADMIN_CMD, NvmePassthruCmd> { argument: Some(&mut cmd) })
        }?;
        // A positive return is the NVMe status field without its phase bit.
        Ok(NvmeReply { status: u16::try_from(status).unwrap_or(u16::MAX), result: cmd.result })
    }

    fn nvme_namespace(&mut self) -> io::Result<u32> {
        // SAFETY: NVME_IOCTL_ID takes no argument and returns the namespace id.
        let id = unsafe { ioctl(self.fd, ReturnsInt::<NVME_IOCTL_ID, ()> { argument: None }) }?;
        u32::try_from(id).map_err(|_| io::Error::from(io::ErrorKind::InvalidData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_numbers_match_the_kernel_headers() {
        // <linux/nvme_ioctl.h> on x86_64: _IOWR('N', 0x41, 72) and _IO('N', 0x40).
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(NVME_IOCTL_ADMIN_CMD as u64, 0xC048_4E41);
            assert_eq!(NVME_IOCTL_ID as u64, 0x4E40);
        }
        assert_eq!(SG_IO as u64, 0x2285);
    }

    #[test]
    fn a_file_has_no_passthrough() {
        // SG_IO on a regular file: ENOTTY, which callers read as "no pass-through here".
        let file = tempfile::tempfile().unwrap();
        use std::os::fd::AsFd;
        let mut drive = LinuxDrive::new(file.as_fd());
        let error = drive.scsi(&[0x12, 0, 0, 0, 36, 0], Transfer::None, Duration::from_secs(1)).unwrap_err();
        let error = super::super::CommandError::io("INQUIRY", error);
        assert!(error.is_unsupported(), "{error}");
    }
}
