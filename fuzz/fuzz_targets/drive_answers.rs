#![no_main]
//! What drives (and the bridges in front of them) answer is decoded without
//! ever panicking: sense data in either format, IDENTIFY DEVICE, NVMe Identify
//! and the sanitize log, SCSI INQUIRY, VPD pages, capacity and opcode support.

use certwipe::drive::{identify, nvme, scsi, sense};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let _ = sense::parse(bytes);
    let mut block = [0u8; 512];
    let n = bytes.len().min(512);
    block[..n].copy_from_slice(&bytes[..n]);
    let _ = identify::decode_ata(&block);
    let _ = nvme::SanitizeLog::decode(&block);
    let mut page = [0u8; 4096];
    let n = bytes.len().min(4096);
    page[..n].copy_from_slice(&bytes[..n]);
    let _ = nvme::decode_controller(&page);
    let _ = nvme::decode_namespace(&page);
    let _ = scsi::decode_inquiry(bytes);
    for code in [0x80, 0x83, 0x89, 0xB1] {
        if let Some(payload) = scsi::vpd_payload(bytes, code) {
            let _ = scsi::decode_serial(payload);
            let _ = scsi::decode_naa(payload);
            let _ = scsi::decode_rotation(payload);
            let _ = scsi::decode_ata_information(payload);
        }
    }
    let mut capacity = [0u8; 32];
    let n = bytes.len().min(32);
    capacity[..n].copy_from_slice(&bytes[..n]);
    let _ = scsi::decode_capacity(&capacity);
    let _ = scsi::decode_supported(bytes);
});
