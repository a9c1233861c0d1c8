//! What a sanitization may claim: the NIST SP 800-88 category each technique
//! reaches, on which media. Host overwrites are Clear; the drive's own
//! sanitize commands are Purge — but only once they are proven (the drive
//! reported success and reading the medium confirmed it).
//!
//! Sources: NIST SP 800-88 Rev. 1 §2.5 and Appendix A (Tables ),
//! Rev. 2 §3 (which defers to IEEE 2883-2022 for techniques).

use crate::device::MediaType;

crate::named! {
    /// NIST SP 800-88 sanitization categories, and "none" for a drive command
    /// that was not proven.
    pub enum Category: "category" {
        Clear = "clear",
        Purge = "purge",
        Destroy = "destroy",
        /// A drive's erase command that did not report success or failed its
        /// verification: nothing is claimed.
        None = "none",
    }
}

crate::named! {
    /// How a medium was sanitized, by IEEE 2883-2022's names.
    pub enum Technique: "technique" {
        /// Host writes over every user-addressable location.
        Overwrite = "overwrite",
        /// ATA CRYPTO SCRAMBLE EXT, NVMe Sanitize Crypto Erase, SCSI SANITIZE
        /// CRYPTOGRAPHIC ERASE.
        SanitizeCryptoErase = "sanitize-crypto-erase",
        /// ATA BLOCK ERASE EXT, NVMe Sanitize Block Erase, SCSI SANITIZE BLOCK ERASE.
        SanitizeBlockErase = "sanitize-block-erase",
        /// ATA OVERWRITE EXT, NVMe Sanitize Overwrite, SCSI SANITIZE OVERWRITE.
        SanitizeOverwrite = "sanitize-overwrite",
        /// NVMe Format NVM with Secure Erase Setting 1.
        FormatUserDataErase = "format-user-data-erase",
        /// NVMe Format NVM with Secure Erase Setting 2.
        FormatCryptoErase = "format-crypto-erase",
        /// ATA SECURITY ERASE UNIT, normal.
        SecurityErase = "security-erase",
        /// ATA SECURITY ERASE UNIT, enhanced.
        SecurityEraseEnhanced = "security-erase-enhanced",
    }
}

impl Technique {
    /// Run by the drive rather than by host writes.
    pub fn is_drive_command(self) -> bool {
        self != Technique::Overwrite
    }

    /// The most this technique can claim on this medium, once proven.
    ///
    /// * A host overwrite is Clear on every medium.
    /// * The SANITIZE commands and NVMe Format with secure erase are Purge
    ///   (Rev. 1 Tables; IEEE 2883 §6).
    /// * SECURITY ERASE UNIT: Purge only as the enhanced erase on a magnetic
    ///   disk (Rev. 1 Table A-7); on flash its coverage of spare blocks is
    ///   vendor-defined, and the normal erase need not reach reallocated
    ///   sectors, so it stays Clear.
    pub fn reach(self, media: MediaType) -> Category {
        match self {
            Technique::Overwrite | Technique::SecurityErase => Category::Clear,
            Technique::SecurityEraseEnhanced if media == MediaType::Hdd => Category::Purge,
            Technique::SecurityEraseEnhanced => Category::Clear,
            _ => Category::Purge,
        }
    }

    /// The category a certificate states: a drive command claims its reach
    /// only when proven, and nothing otherwise; a host overwrite always states
    /// Clear (its status says whether it finished).
    pub fn category(self, media: MediaType, proven: bool) -> Category {
        match (self.is_drive_command(), proven) {
            (true, false) => Category::None,
            _ => self.reach(media),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overwrite_is_clear_everywhere_and_drive_commands_purge_only_when_proven() {
        for media in [MediaType::Hdd, MediaType::Ssd, MediaType::Nvme, MediaType::UsbFlash] {
            assert_eq!(Technique::Overwrite.category(media, true), Category::Clear);
            assert_eq!(Technique::Overwrite.category(media, false), Category::Clear);
            assert_eq!(Technique::SanitizeBlockErase.category(media, true), Category::Purge);
            assert_eq!(Technique::SanitizeBlockErase.category(media, false), Category::None);
            assert_eq!(Technique::SecurityErase.category(media, true), Category::Clear);
        }
        assert_eq!(Technique::SecurityEraseEnhanced.category(MediaType::Hdd, true), Category::Purge);
        assert_eq!(Technique::SecurityEraseEnhanced.category(MediaType::Ssd, true), Category::Clear);
        assert_eq!(Technique::FormatCryptoErase.category(MediaType::Nvme, true), Category::Purge);
    }
}
