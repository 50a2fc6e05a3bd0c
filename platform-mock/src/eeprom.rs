//! The NVM (EEPROM) image of one simulated port (datasheet §6), read through EERD
//! (§8.2.3.2.2).
//!
//! The layout follows what Linux's ixgbe reads on an 82599 SFP+ board:
//!
//! | Word | Content | Linux reader |
//! |---|---|---|
//! | 0x00 | Control word 1, signature 01b in bits 7:6 | — |
//! | 0x03..0x0E | module pointers; the LAN core 0 pointer (0x09) leads to the MAC address | `ixgbe_calc_eeprom_checksum_generic` sums every pointed section |
//! | 0x0F | firmware module pointer (LESM off, patch version 6) | `ixgbe_verify_fw_version_82599`, `ixgbe_verify_lesm_fw_enabled_82599` |
//! | 0x15, 0x16 | PBA: 0xFAFA guard + pointer to a string block | `ixgbe_read_pba_string_generic` |
//! | 0x2B | SFP+ PHY init list (`IXGBE_PHY_INIT_OFFSET_NL`) | `ixgbe_get_sfp_init_sequence_offsets` |
//! | 0x2C | device caps (crosstalk fix applies: bit 7 clear) | `ixgbe_get_device_caps_generic` |
//! | 0x3F | checksum: 0xBABA − (words 0x00..0x3E + pointed sections) | `ixgbe_validate_eeprom_checksum_generic` |
//!
//! The SFP init sequences are opaque words that Linux writes to CORECTL (analog core
//! settings); the model stores CORECTL and does not interpret them.

/// Words in the image: EEC.EE_Size = 4, which Linux decodes as 1 << (4 + 6) words.
pub const WORDS: usize = 1024;
/// EEC.EE_Size value for [`WORDS`].
pub const EE_SIZE_CODE: u32 = 4;
/// Checksum word (`IXGBE_EEPROM_CHECKSUM`).
pub const CHECKSUM_WORD: usize = 0x3F;
/// The sum every valid image has (`IXGBE_EEPROM_SUM`).
pub const EEPROM_SUM: u16 = 0xBABA;

const LAN_CORE0_PTR: usize = 0x09;
const FW_PTR: usize = 0x0F;
const PBA0: usize = 0x15;
const PBA1: usize = 0x16;
const PHY_INIT_PTR: usize = 0x2B;
const DEVICE_CAPS: usize = 0x2C;

const LAN_CORE0_AT: u16 = 0x60;
const PBA_AT: u16 = 0x80;
const SFP_LIST_AT: u16 = 0x100;
const SFP_DATA_AT: u16 = 0x120;
const FW_AT: u16 = 0x200;

/// The PBA number the image carries (10 characters: "xxxxxx-0xx" style).
pub const PBA_STRING: &str = "SIM520-001";

/// Builds the image of a port with MAC address `mac`.
pub fn image(mac: [u8; 6]) -> Vec<u16> {
    let mut w = vec![0u16; WORDS];
    w[0x00] = 0x0040; // signature 01b (§6.3.1)
                      // Module pointers 0x03..0x0E: only LAN core 0 is present; the others are absent (0xFFFF),
                      // which Linux's checksum skips.
    for p in w.iter_mut().take(0x0F).skip(0x03) {
        *p = 0xFFFF;
    }
    w[LAN_CORE0_PTR] = LAN_CORE0_AT;
    // LAN core 0 module: length, then the Ethernet address as three little-endian words.
    let l = usize::from(LAN_CORE0_AT);
    let lan = [
        3u16,
        u16::from_le_bytes([mac[0], mac[1]]),
        u16::from_le_bytes([mac[2], mac[3]]),
        u16::from_le_bytes([mac[4], mac[5]]),
    ];
    w[l..l + lan.len()].copy_from_slice(&lan);

    // PBA in the string format: guard word, pointer; the block holds its length in words
    // (including the length word) and two characters per word, high byte first.
    w[PBA0] = 0xFAFA;
    w[PBA1] = PBA_AT;
    let b = usize::from(PBA_AT);
    let chars = PBA_STRING.as_bytes();
    w[b] = (chars.len() / 2 + 1) as u16;
    for (k, c) in chars.chunks(2).enumerate() {
        w[b + 1 + k] = u16::from_be_bytes([c[0], c[1]]);
    }

    // SFP+ init list (`ixgbe_get_sfp_init_sequence_offsets`): the word at the pointer is
    // skipped, then (sfp_type, data offset) pairs end with 0xFFFF. Types 3/4 are
    // da_cu_core0/1, 5/6 srlr_core0/1 (which limiting active cables and 1G modules use).
    w[PHY_INIT_PTR] = SFP_LIST_AT;
    let s = usize::from(SFP_LIST_AT);
    let list = [
        0x0000,
        3,
        SFP_DATA_AT,
        4,
        SFP_DATA_AT,
        5,
        SFP_DATA_AT + 8,
        6,
        SFP_DATA_AT + 8,
        0xFFFF,
    ];
    w[s..s + list.len()].copy_from_slice(&list);
    // Data blocks: the word at the offset is skipped, then CORECTL values up to 0xFFFF.
    let d = usize::from(SFP_DATA_AT);
    let da = [0x0003, 0x0B1D, 0x0C05, 0x1402, 0xFFFF];
    w[d..d + da.len()].copy_from_slice(&da);
    let sr = [0x0003, 0x0B2D, 0x0C05, 0x1403, 0xFFFF];
    w[d + 8..d + 8 + sr.len()].copy_from_slice(&sr);

    // Firmware module: LESM parameters (+2) with LESM disabled, pass-through patch
    // configuration (+4) with patch version 6 (> 5, so not a "pre-production adapter").
    w[FW_PTR] = FW_AT;
    let f = usize::from(FW_AT);
    w[f] = 0x0010;
    w[f + 2] = FW_AT + 0x10;
    w[f + 4] = FW_AT + 0x20;
    w[f + 0x10 + 1] = 0x0000; // IXGBE_FW_LESM_STATE_1: bit 15 (enabled) clear
    w[f + 0x20 + 7] = 0x0006; // IXGBE_FW_PATCH_VERSION_4

    w[DEVICE_CAPS] = 0x0000;
    // Words 0x27 (alternate SAN MAC block) and 0x28 (SAN MAC block) are 0: none.
    w[CHECKSUM_WORD] = checksum(&w);
    w
}

/// The checksum word as Linux computes it (`ixgbe_calc_eeprom_checksum_generic`): 0xBABA
/// minus the sum of words 0x00..0x3E and of every section pointed to by words 0x03..0x0E
/// (pointer and length not 0 or 0xFFFF; the section is the `length` words after the length).
pub fn checksum(w: &[u16]) -> u16 {
    let word = |i: usize| w.get(i).copied().unwrap_or(0xFFFF);
    let mut sum = 0u16;
    for i in 0..CHECKSUM_WORD {
        sum = sum.wrapping_add(word(i));
    }
    for i in 0x03..FW_PTR {
        let p = word(i);
        if p == 0 || p == 0xFFFF {
            continue;
        }
        let len = word(usize::from(p));
        if len == 0 || len == 0xFFFF {
            continue;
        }
        for j in usize::from(p) + 1..=usize::from(p) + usize::from(len) {
            sum = sum.wrapping_add(word(j));
        }
    }
    EEPROM_SUM.wrapping_sub(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_holds_and_covers_pointed_sections() {
        let mut w = image([0x02, 0, 0, 0, 0, 1]);
        assert_eq!(checksum(&w), w[CHECKSUM_WORD]);
        // A change inside the LAN core section (pointed to) breaks it.
        w[usize::from(LAN_CORE0_AT) + 1] ^= 1;
        assert_ne!(checksum(&w), w[CHECKSUM_WORD]);
    }
}
