//! Scripted drives for unit tests: an ATA drive behind a SAT translator, an
//! NVMe controller and a SCSI device, each decoding the commands it is sent
//! as the standards define them and answering as a drive would — including
//! the ways drives fail: frozen, unsupported, refusing with error sense,
//! reporting success while leaving the data, vanishing mid-sanitize, and
//! answering in fixed-format sense that loses the upper register bytes.
//! Each holds its medium as a [`FakeDisk`], so a test can read what the drive
//! "did".

use std::io;
use std::sync::Arc;
use std::time::Duration;

use super::{NvmeAdmin, NvmeReply, Passthrough, ScsiReply, Transfer};
use crate::device::fake::{FakeDisk, SECTOR};

/// What a scripted erase does to the medium.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Zeros,
    Ones,
    /// Unrecognisable new content, as a changed key leaves.
    Scramble,
    /// Nothing: the drive claims success and leaves the data.
    Nothing,
}

fn apply(disk: &FakeDisk, effect: Effect) {
    let mut data = disk.contents();
    match effect {
        Effect::Zeros => data.fill(0),
        Effect::Ones => data.fill(0xFF),
        Effect::Scramble => {
            for (i, byte) in data.iter_mut().enumerate() {
                *byte = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ 0x5C;
            }
        }
        Effect::Nothing => {}
    }
}

/// An IDENTIFY DEVICE block from (word, value) pairs and strings, with a valid
/// checksum: the synthetic fixtures for what the real dumps lack.
pub fn identify_block(words: &[(usize, u16)], model: &str, serial: &str, firmware: &str) -> [u8; 512] {
    let mut data = [0u8; 512];
    let mut put_string = |at: usize, len: usize, text: &str| {
        let padded = format!("{text:<len$}");
        for (i, pair) in padded.as_bytes()[..len].chunks(2).enumerate() {
            data[at + 2 * i] = pair[1];
            data[at + 2 * i + 1] = pair[0];
        }
    };
    put_string(20, 20, serial);
    put_string(46, 8, firmware);
    put_string(54, 40, model);
    for &(word, value) in words {
        data[2 * word..2 * word + 2].copy_from_slice(&value.to_le_bytes());
    }
    seal(&mut data);
    data
}

/// Sets word 255 to signature and checksum.
pub fn seal(data: &mut [u8; 512]) {
    data[510] = 0xA5;
    let sum = data[..511].iter().fold(0u8, |s, &b| s.wrapping_add(b));
    data[511] = 0u8.wrapping_sub(sum);
}

fn enodev() -> io::Error {
    io::Error::from_raw_os_error(libc::ENODEV)
}

fn illegal_request(asc: u8) -> ScsiReply {
    let mut sense = vec![0x70, 0, 0x05, 0, 0, 0, 0, 0x0A, 0, 0, 0, 0, asc, 0, 0, 0, 0, 0];
    sense.truncate(18);
    ScsiReply::check_condition(sense)
}

/// The registers of an ATA command as its PASS-THROUGH(16) CDB carries them.
#[derive(Clone, Copy, Debug)]
struct Registers {
    command: u8,
    feature: u16,
    count: u16,
    lba: u64,
}

fn decode_cdb(cdb: &[u8]) -> Registers {
    let b = |i: usize| u64::from(cdb[i]);
    Registers {
        command: cdb[14],
        feature: u16::from_be_bytes([cdb[3], cdb[4]]),
        count: u16::from_be_bytes([cdb[5], cdb[6]]),
        lba: b(8) | b(10) << 8 | b(12) << 16 | b(7) << 24 | b(9) << 32 | b(11) << 40,
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SanitizeScript {
    pub crypto: bool,
    pub block: bool,
    pub overwrite: bool,
    pub frozen: bool,
    /// Status polls that report "in progress" before the end.
    pub polls: u32,
    /// The drive claims success but leaves the data.
    pub lies: bool,
    /// The drive vanishes at this status poll.
    pub vanish_at_poll: Option<u32>,
    /// The sanitize ends in failure.
    pub fails: bool,
    /// The drive refuses to start one (aborted, "unsupported sub-command").
    pub refuses: bool,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SecurityScript {
    pub supported: bool,
    pub enabled: bool,
    pub frozen: bool,
    pub locked: bool,
    pub enhanced: bool,
}

/// An ATA drive behind a SAT translator.
pub struct FakeAta {
    pub disk: Arc<FakeDisk>,
    native: u64,
    accessible: u64,
    factory: Option<u64>,
    pub sanitize: SanitizeScript,
    pub security: SecurityScript,
    /// Answers CK_COND in fixed format unless D_SENSE is set.
    fixed_sense: bool,
    d_sense: bool,
    volatile_set_max: bool,
    running: Option<(u16, u32)>,
    last_ok: bool,
    last_failed: bool,
    polls_seen: u32,
    password: Option<Vec<u8>>,
    pub sent: Vec<u8>,
}

impl FakeAta {
    /// A drive of `sectors` 512-byte sectors, no HPA, no DCO, no erase
    /// commands. Its medium in memory holds at most 64 Ki sectors: enough for
    /// the tests that read it, without allocating a real drive's size.
    pub fn new(sectors: u64) -> FakeAta {
        FakeAta {
            disk: Arc::new(FakeDisk::new(sectors.min(1 << 16) as usize * SECTOR, [])),
            native: sectors,
            accessible: sectors,
            factory: None,
            sanitize: SanitizeScript::default(),
            security: SecurityScript::default(),
            fixed_sense: false,
            d_sense: false,
            volatile_set_max: false,
            running: None,
            last_ok: false,
            last_failed: false,
            polls_seen: 0,
            password: None,
            sent: Vec::new(),
        }
    }

    pub fn with_hpa(mut self, accessible: u64) -> FakeAta {
        self.accessible = accessible;
        self
    }

    /// A DCO that cut the native size to `native`.
    pub fn with_dco(mut self, native: u64) -> FakeAta {
        self.factory = Some(self.native);
        self.native = native;
        self.accessible = self.accessible.min(native);
        self
    }

    pub fn with_fixed_sense(mut self) -> FakeAta {
        self.fixed_sense = true;
        self
    }

    pub fn with_sanitize(mut self, script: SanitizeScript) -> FakeAta {
        self.sanitize = script;
        self
    }

    pub fn with_security(mut self, script: SecurityScript) -> FakeAta {
        self.security = script;
        self
    }

    pub fn accessible(&self) -> u64 {
        self.accessible
    }

    pub fn volatile_set_max(&self) -> bool {
        self.volatile_set_max
    }

    pub fn descriptor_sense(&self) -> bool {
        self.d_sense
    }

    pub fn identify_block(&self) -> [u8; 512] {
        let s = &self.sanitize;
        let w59 = if s.crypto || s.block || s.overwrite {
            0x1000 | u16::from(s.crypto) << 13 | u16::from(s.overwrite) << 14 | u16::from(s.block) << 15
        } else {
            0
        };
        let sec = &self.security;
        let enabled = sec.enabled || self.password.is_some();
        let w128 = u16::from(sec.supported)
            | u16::from(enabled) << 1
            | u16::from(sec.locked) << 2
            | u16::from(sec.frozen) << 3
            | u16::from(sec.enhanced) << 5;
        let sectors = self.accessible;
        identify_block(
            &[
                (59, w59 | 0x0100),
                (60, sectors.min(0x0FFF_FFFF) as u16),
                (61, (sectors.min(0x0FFF_FFFF) >> 16) as u16),
                (82, 0x4000 | 0x0400 | u16::from(sec.supported) << 1),
                (83, 0x4000 | 0x0400 | u16::from(self.factory.is_some()) << 11),
                (89, 5),
                (90, 10),
                (100, sectors as u16),
                (101, (sectors >> 16) as u16),
                (102, (sectors >> 32) as u16),
                (128, w128),
                (217, 1),
            ],
            "FAKE ATA SSD",
            "FAKE-ATA-SERIAL",
            "FW1",
        )
    }

    fn dco_block(&self) -> [u8; 512] {
        let max = self.factory.unwrap_or(self.native) - 1;
        let mut data = [0u8; 512];
        data[0..2].copy_from_slice(&2u16.to_le_bytes());
        for (i, word) in [max as u16, (max >> 16) as u16, (max >> 32) as u16].iter().enumerate() {
            data[6 + 2 * i..8 + 2 * i].copy_from_slice(&word.to_le_bytes());
        }
        seal(&mut data);
        data
    }

    /// CK_COND's answer: the registers in descriptor format, or in SAT's
    /// fixed format (which has no room for the upper bytes).
    fn registers(&self, count: u16, lba: u64) -> ScsiReply {
        if self.fixed_sense && !self.d_sense {
            let upper_nonzero = u8::from(count > 0xFF) << 6 | u8::from(lba > 0xFF_FFFF) << 5;
            let l = lba.to_le_bytes();
            let sense = vec![
                0xF0,
                0,
                0x01,
                0x00,
                0x50,
                0x40,
                count as u8,
                0x0A,
                0x80 | upper_nonzero,
                l[0],
                l[1],
                l[2],
                0x00,
                0x1D,
                0,
                0,
                0,
                0,
            ];
            return ScsiReply::check_condition(sense);
        }
        let l = lba.to_le_bytes();
        let [count_high, count_low] = count.to_be_bytes();
        let sense = vec![
            0x72, 0x01, 0x00, 0x1D, 0, 0, 0, 0x0E, 0x09, 0x0C, 0x01, 0x00, count_high, count_low, l[3], l[0],
            l[4], l[1], l[5], l[2], 0x40, 0x50,
        ];
        ScsiReply::check_condition(sense)
    }

    /// An aborted command: ERR with ABRT, the reason in LBA 7:0.
    fn aborted(&self, reason: u8) -> ScsiReply {
        let sense = vec![
            0x72, 0x0B, 0x00, 0x00, 0, 0, 0, 0x0E, 0x09, 0x0C, 0x01, 0x04, 0, 0, 0, reason, 0, 0, 0, 0, 0x40,
            0x51,
        ];
        ScsiReply::check_condition(sense)
    }

    fn ata(&mut self, cdb: &[u8], transfer: Transfer<'_>) -> io::Result<ScsiReply> {
        let r = decode_cdb(cdb);
        self.sent.push(r.command);
        Ok(match (r.command, r.feature) {
            (0xEC, _) => {
                if let Transfer::FromDevice(buf) = transfer {
                    buf.copy_from_slice(&self.identify_block());
                }
                ScsiReply::good()
            }
            (0x27, _) => self.registers(0, self.native - 1),
            (0x37, _) if r.lba < self.native => {
                self.accessible = r.lba + 1;
                self.volatile_set_max = r.count & 1 == 0;
                self.registers(0, r.lba)
            }
            (0xB1, 0xC2) if self.factory.is_some() => {
                if let Transfer::FromDevice(buf) = transfer {
                    buf.copy_from_slice(&self.dco_block());
                }
                ScsiReply::good()
            }
            (0xB1, 0xC0) if self.factory.is_some() => {
                self.native = self.factory.take().unwrap_or(self.native);
                self.accessible = self.native;
                self.registers(0, 0)
            }
            (0xB4, 0x0000) => return self.sanitize_status(),
            (0xB4, sub) => self.sanitize_start(sub),
            (0xF1, _) => self.set_password(transfer),
            (0xF3, _) if self.password.is_some() => self.registers(0, 0),
            (0xF4, _) => self.security_erase(transfer),
            _ => self.aborted(0),
        })
    }

    fn sanitize_start(&mut self, sub: u16) -> ScsiReply {
        let s = self.sanitize;
        let supported = match sub {
            0x11 => s.crypto,
            0x12 => s.block,
            0x14 => s.overwrite,
            _ => false,
        };
        match (supported && !s.refuses, s.frozen) {
            (false, _) => self.aborted(2),
            (true, true) => self.aborted(3),
            (true, false) => {
                self.running = Some((sub, s.polls));
                self.last_ok = false;
                self.registers(0, 0)
            }
        }
    }

    fn sanitize_status(&mut self) -> io::Result<ScsiReply> {
        self.polls_seen += 1;
        if self.sanitize.vanish_at_poll.is_some_and(|n| self.polls_seen >= n) {
            self.disk.pull();
            return Err(enodev());
        }
        if self.sanitize.frozen {
            return Ok(self.registers(0x2000, 0xFFFF));
        }
        Ok(match self.running {
            Some((sub, left)) if left > 0 => {
                self.running = Some((sub, left - 1));
                let done = (self.sanitize.polls - left + 1) * 65536 / (self.sanitize.polls + 1);
                self.registers(0x4000, u64::from(done))
            }
            Some((sub, _)) => {
                self.running = None;
                if self.sanitize.fails {
                    self.last_failed = true;
                    return Ok(self.aborted(1));
                }
                let effect = match (self.sanitize.lies, sub) {
                    (true, _) => Effect::Nothing,
                    (false, 0x11) => Effect::Scramble,
                    (false, 0x12) => Effect::Ones,
                    (false, _) => Effect::Zeros,
                };
                apply(&self.disk, effect);
                self.last_ok = true;
                self.registers(0x8000, 0xFFFF)
            }
            None if self.last_failed => self.aborted(1),
            None => self.registers(if self.last_ok { 0x8000 } else { 0 }, 0xFFFF),
        })
    }

    fn set_password(&mut self, transfer: Transfer<'_>) -> ScsiReply {
        let sec = self.security;
        if !sec.supported || sec.frozen || sec.locked {
            return self.aborted(0);
        }
        if let Transfer::ToDevice(block) = transfer {
            self.password = Some(block[2..34].to_vec());
        }
        ScsiReply::good()
    }

    fn security_erase(&mut self, transfer: Transfer<'_>) -> ScsiReply {
        let Transfer::ToDevice(block) = transfer else { return self.aborted(0) };
        if self.password.as_deref() != Some(&block[2..34]) {
            return self.aborted(0);
        }
        let enhanced = block[0] & 0x02 != 0;
        apply(&self.disk, if enhanced { Effect::Scramble } else { Effect::Zeros });
        self.password = None;
        ScsiReply::good()
    }

    fn mode(&mut self, cdb: &[u8], transfer: Transfer<'_>) -> ScsiReply {
        match (cdb[0], transfer) {
            (0x5A, Transfer::FromDevice(buf)) => {
                let page =
                    [0x0A, 0x0A, if self.d_sense { 0x06 } else { 0x02 }, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0x1E];
                let mut data = vec![0, 18, 0, 0, 0, 0, 0, 0];
                data.extend_from_slice(&page);
                buf[..data.len()].copy_from_slice(&data);
                ScsiReply::good()
            }
            (0x55, Transfer::ToDevice(list)) if list.len() == 20 && list[9] == 0x0A => {
                self.d_sense = list[10] & 0x04 != 0;
                ScsiReply::good()
            }
            _ => illegal_request(0x24),
        }
    }
}

impl Passthrough for FakeAta {
    fn scsi(&mut self, cdb: &[u8], transfer: Transfer<'_>, _: Duration) -> io::Result<ScsiReply> {
        if self.disk.gone() {
            return Err(enodev());
        }
        match cdb[0] {
            0x85 => self.ata(cdb, transfer),
            0x5A | 0x55 => Ok(self.mode(cdb, transfer)),
            _ => Ok(illegal_request(0x20)),
        }
    }

    fn nvme_admin(&mut self, _: &NvmeAdmin, _: Transfer<'_>, _: Duration) -> io::Result<NvmeReply> {
        Err(io::Error::from_raw_os_error(libc::ENOTTY))
    }

    fn nvme_namespace(&mut self) -> io::Result<u32> {
        Err(io::Error::from_raw_os_error(libc::ENOTTY))
    }
}

/// An NVMe controller with one namespace.
pub struct FakeNvme {
    pub disk: Arc<FakeDisk>,
    pub sanicap: u32,
    pub fna: u8,
    pub format: bool,
    /// Namespaces attached to the controller.
    pub active: u32,
    pub sanitize: SanitizeScript,
    /// What a format's secure erase does (QEMU: zeros for SES 1 and 2).
    pub format_effect: Effect,
    state: u16,
    last_cdw10: u32,
    running: Option<(u32, u32)>,
    polls_seen: u32,
    pub sent: Vec<NvmeAdmin>,
}

impl FakeNvme {
    /// QEMU's controller: Format NVM only, no Sanitize.
    pub fn new(sectors: u64) -> FakeNvme {
        FakeNvme {
            disk: Arc::new(FakeDisk::new(sectors as usize * SECTOR, [])),
            sanicap: 0,
            fna: 0,
            format: true,
            active: 1,
            sanitize: SanitizeScript::default(),
            format_effect: Effect::Zeros,
            state: 0,
            last_cdw10: 0,
            running: None,
            polls_seen: 0,
            sent: Vec::new(),
        }
    }

    pub fn with_sanitize(mut self, script: SanitizeScript) -> FakeNvme {
        self.sanicap =
            u32::from(script.crypto) | u32::from(script.block) << 1 | u32::from(script.overwrite) << 2;
        self.sanitize = script;
        self
    }

    fn controller(&self) -> [u8; 4096] {
        let mut data = [0u8; 4096];
        data[4..24].copy_from_slice(b"NVME-SERIAL-1       ");
        data[24..64].copy_from_slice(format!("{:<40}", "QEMU NVMe Ctrl").as_bytes());
        data[64..72].copy_from_slice(b"10.0.2  ");
        data[256..258].copy_from_slice(&(0x0128u16 | u16::from(self.format) << 1).to_le_bytes());
        data[328..332].copy_from_slice(&self.sanicap.to_le_bytes());
        data[516..520].copy_from_slice(&256u32.to_le_bytes());
        data[524] = self.fna;
        data
    }

    fn namespace(&self) -> [u8; 4096] {
        let mut data = [0u8; 4096];
        data[0..8].copy_from_slice(&(self.disk.contents().len() as u64 / SECTOR as u64).to_le_bytes());
        data[130] = 9;
        data
    }

    fn log(&mut self) -> io::Result<[u8; 512]> {
        self.polls_seen += 1;
        if self.sanitize.vanish_at_poll.is_some_and(|n| self.polls_seen >= n) {
            self.disk.pull();
            return Err(enodev());
        }
        let mut progress = 0xFFFF;
        if let Some((cdw10, left)) = self.running {
            if left > 0 {
                self.running = Some((cdw10, left - 1));
                self.state = 2;
                progress = ((self.sanitize.polls - left + 1) * 65536 / (self.sanitize.polls + 1)) as u16;
            } else {
                self.running = None;
                self.state = if self.sanitize.fails { 3 } else { 1 };
                let effect = match cdw10 & 7 {
                    _ if self.sanitize.fails || self.sanitize.lies => Effect::Nothing,
                    4 => Effect::Scramble,
                    2 => Effect::Ones,
                    _ => Effect::Zeros,
                };
                apply(&self.disk, effect);
            }
        }
        let mut page = [0u8; 512];
        page[0..2].copy_from_slice(&progress.to_le_bytes());
        page[2..4].copy_from_slice(&self.state.to_le_bytes());
        page[4..8].copy_from_slice(&self.last_cdw10.to_le_bytes());
        page[8..20].fill(0xFF);
        Ok(page)
    }

    fn sanitize_command(&mut self, cdw10: u32) -> u16 {
        let supported = match cdw10 & 7 {
            2 => self.sanicap & 2 != 0,
            3 => self.sanicap & 4 != 0,
            4 => self.sanicap & 1 != 0,
            _ => false,
        };
        if self.sanicap == 0 {
            return 0x4001;
        }
        if !supported {
            return 0x4002;
        }
        self.last_cdw10 = cdw10;
        self.running = Some((cdw10, self.sanitize.polls));
        0
    }
}

impl Passthrough for FakeNvme {
    fn scsi(&mut self, _: &[u8], _: Transfer<'_>, _: Duration) -> io::Result<ScsiReply> {
        Err(io::Error::from_raw_os_error(libc::ENOTTY))
    }

    fn nvme_admin(
        &mut self,
        command: &NvmeAdmin,
        transfer: Transfer<'_>,
        _: Duration,
    ) -> io::Result<NvmeReply> {
        if self.disk.gone() {
            return Err(enodev());
        }
        self.sent.push(*command);
        let fill = |transfer: Transfer<'_>, data: &[u8]| {
            if let Transfer::FromDevice(buf) = transfer {
                buf[..data.len()].copy_from_slice(data);
            }
        };
        let status = match (command.opcode, command.cdw10 & 0xFF) {
            (0x06, 0x01) => (fill(transfer, &self.controller()), 0).1,
            (0x06, 0x00) => (fill(transfer, &self.namespace()), 0).1,
            (0x06, 0x02) => {
                let list: Vec<u8> = (1..=self.active).flat_map(u32::to_le_bytes).collect();
                (fill(transfer, &list), 0).1
            }
            (0x02, 0x81) if self.sanicap != 0 => {
                let page = self.log()?;
                (fill(transfer, &page), 0).1
            }
            (0x02, _) => 0x4002,
            (0x84, _) => self.sanitize_command(command.cdw10),
            (0x80, _) if self.format => {
                apply(&self.disk, self.format_effect);
                0
            }
            _ => 0x4001,
        };
        Ok(NvmeReply { status, result: 0 })
    }

    fn nvme_namespace(&mut self) -> io::Result<u32> {
        Ok(1)
    }
}

/// A SCSI disk that knows SANITIZE (or does not), polled with REQUEST SENSE.
pub struct FakeScsi {
    pub disk: Arc<FakeDisk>,
    pub sanitize: SanitizeScript,
    /// Answers REPORT SUPPORTED OPERATION CODES (QEMU's disk does not).
    pub reports_opcodes: bool,
    /// Has the SANITIZE command at all.
    pub knows_sanitize: bool,
    /// SANITIZE commands received with the reserved service action 00h.
    pub reserved_sanitize_probes: usize,
    running: Option<(u8, u32)>,
    failed: bool,
}

impl FakeScsi {
    /// Block erase and overwrite supported, crypto erase not.
    pub fn new(sectors: u64) -> FakeScsi {
        let script = SanitizeScript { block: true, overwrite: true, polls: 2, ..SanitizeScript::default() };
        FakeScsi {
            disk: Arc::new(FakeDisk::new(sectors as usize * SECTOR, [])),
            sanitize: script,
            reports_opcodes: true,
            knows_sanitize: true,
            reserved_sanitize_probes: 0,
            running: None,
            failed: false,
        }
    }

    fn data(transfer: Transfer<'_>, data: &[u8]) -> ScsiReply {
        if let Transfer::FromDevice(buf) = transfer {
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
        }
        ScsiReply::good()
    }

    fn inquiry(&self, cdb: &[u8], transfer: Transfer<'_>) -> ScsiReply {
        let data: Vec<u8> = match (cdb[1] & 1, cdb[2]) {
            (0, _) => {
                [&[0u8, 0, 5, 0x12, 0x5b, 0, 0, 0x12][..], b"FAKEVEND", b"FAKE SCSI DISK  ", b"1.00"].concat()
            }
            (_, 0x80) => [&[0u8, 0x80, 0, 16][..], b"FAKE-SCSI-SERIAL"].concat(),
            (_, 0xB1) => vec![0, 0xB1, 0, 4, 0, 1, 0, 0],
            _ => return illegal_request(0x24),
        };
        Self::data(transfer, &data)
    }

    fn supported(&self, service_action: u8) -> bool {
        match service_action {
            1 => self.sanitize.overwrite,
            2 => self.sanitize.block,
            3 => self.sanitize.crypto,
            _ => false,
        }
    }

    fn request_sense(&mut self, transfer: Transfer<'_>) -> ScsiReply {
        let sense: Vec<u8> = match self.running {
            Some((sa, left)) if left > 0 => {
                self.running = Some((sa, left - 1));
                vec![0x72, 0x02, 0x04, 0x1B, 0, 0, 0, 0x08, 0x02, 0x06, 0, 0, 0x80, 0x40, 0, 0]
            }
            Some((sa, _)) => {
                self.running = None;
                self.failed = self.sanitize.fails;
                let effect = match (self.sanitize.lies || self.sanitize.fails, sa) {
                    (true, _) => Effect::Nothing,
                    (false, 3) => Effect::Scramble,
                    _ => Effect::Zeros,
                };
                apply(&self.disk, effect);
                vec![0x72, 0, 0, 0, 0, 0, 0, 0]
            }
            None => vec![0x72, 0, 0, 0, 0, 0, 0, 0],
        };
        Self::data(transfer, &sense)
    }
}

impl Passthrough for FakeScsi {
    fn scsi(&mut self, cdb: &[u8], transfer: Transfer<'_>, _: Duration) -> io::Result<ScsiReply> {
        if self.disk.gone() {
            return Err(enodev());
        }
        let sectors = self.disk.contents().len() as u64 / SECTOR as u64;
        if cdb[0] == 0x48 && cdb[1] & 0x1F == 0 {
            self.reserved_sanitize_probes += 1;
        }
        Ok(match cdb[0] {
            0x12 => self.inquiry(cdb, transfer),
            0x9E => {
                let mut data = [0u8; 32];
                data[0..8].copy_from_slice(&(sectors - 1).to_be_bytes());
                data[8..12].copy_from_slice(&512u32.to_be_bytes());
                Self::data(transfer, &data)
            }
            0xA3 if !self.reports_opcodes => illegal_request(0x20),
            0x48 if !self.knows_sanitize => illegal_request(0x20),
            0xA3 => {
                let support = if self.supported(cdb[5]) { 3 } else { 1 };
                Self::data(transfer, &[0, support, 0, 10])
            }
            0x48 if self.supported(cdb[1] & 0x1F) => {
                self.running = Some((cdb[1] & 0x1F, self.sanitize.polls));
                ScsiReply::good()
            }
            0x48 => illegal_request(0x24),
            0x03 => self.request_sense(transfer),
            0x00 if self.failed => ScsiReply::check_condition(vec![
                0x70, 0, 0x03, 0, 0, 0, 0, 0x0A, 0, 0, 0, 0, 0x31, 0x03, 0, 0, 0, 0,
            ]),
            0x00 => ScsiReply::good(),
            _ => illegal_request(0x20),
        })
    }

    fn nvme_admin(&mut self, _: &NvmeAdmin, _: Transfer<'_>, _: Duration) -> io::Result<NvmeReply> {
        Err(io::Error::from_raw_os_error(libc::ENOTTY))
    }

    fn nvme_namespace(&mut self) -> io::Result<u32> {
        Err(io::Error::from_raw_os_error(libc::ENOTTY))
    }
}
