//! Kernel uevents on a `NETLINK_KOBJECT_UEVENT` socket: the kernel's own word that
//! a block device appeared, changed or went. No udevd is needed (live systems
//! often have none) and it works beside one. An event only wakes the station to
//! scan sysfs again, which is the authority; so a lost or unparseable event costs
//! at most the time to the next periodic scan.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recvfrom, socket,
};

/// The kernel's uevent multicast group (udevd re-broadcasts on group 2).
const KERNEL_GROUP: u32 = 1;

pub struct Uevents {
    socket: OwnedFd,
}

/// Why the station should look at sysfs again.
#[derive(Debug, PartialEq, Eq)]
pub enum Wake {
    /// A block device changed.
    Block,
    /// The kernel dropped events (the socket's buffer overflowed): anything may
    /// have changed.
    Overflow,
    /// Nothing arrived in time.
    Timeout,
}

impl Uevents {
    pub fn open() -> std::io::Result<Uevents> {
        let socket = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )?;
        bind(std::os::fd::AsRawFd::as_raw_fd(&socket), &NetlinkAddr::new(0, KERNEL_GROUP))?;
        Ok(Uevents { socket })
    }

    /// Waits up to `timeout` for a block-device event; drains what is queued.
    pub fn wait(&self, timeout: Duration) -> std::io::Result<Wake> {
        let millis = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(self.socket.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(millis)) {
            Ok(0) => return Ok(Wake::Timeout),
            Ok(_) => {}
            Err(Errno::EINTR) => return Ok(Wake::Timeout),
            Err(error) => return Err(error.into()),
        }
        let mut wake = Wake::Timeout;
        let mut buf = [0u8; 16 * 1024];
        loop {
            match recvfrom::<NetlinkAddr>(std::os::fd::AsRawFd::as_raw_fd(&self.socket), &mut buf) {
                Ok((len, sender)) => {
                    // Only the kernel speaks for itself (pid 0); anyone can send to the group.
                    if sender.is_some_and(|a| a.pid() == 0) && is_block_event(&buf[..len]) {
                        wake = Wake::Block;
                    }
                }
                Err(Errno::EAGAIN) => return Ok(wake),
                Err(Errno::ENOBUFS) => wake = Wake::Overflow,
                Err(Errno::EINTR) => return Ok(wake),
                Err(error) => return Err(error.into()),
            }
        }
    }
}

fn is_block_event(packet: &[u8]) -> bool {
    kobject_uevent::UEvent::from_netlink_packet(packet).is_ok_and(|event| event.subsystem == "block")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_events_are_told_apart_from_others() {
        let block = b"add@/devices/virtual/block/loop200\0ACTION=add\0DEVPATH=/devices/virtual/block/loop200\0SUBSYSTEM=block\0SEQNUM=4711\0";
        let usb = b"add@/devices/pci0000:00/usb1/1-1\0ACTION=add\0DEVPATH=/devices/pci0000:00/usb1/1-1\0SUBSYSTEM=usb\0SEQNUM=4712\0";
        assert!(is_block_event(block));
        assert!(!is_block_event(usb));
        assert!(!is_block_event(b"garbage"));
    }
}
