//! Advanced receive and transmit descriptors (datasheet §7.1.6 and §7.2.3.2.4; layouts in
//! `82599.md` §4) and the descriptor ring in DMA memory that holds them.
//!
//! A descriptor is 16 bytes, two little-endian 64-bit words. The device writes descriptors
//! concurrently with the CPU, so every access is a volatile load or store of a whole word; a
//! device-written word is read first and only then, behind an acquire fence, is anything it
//! guards (the packet bytes) looked at.

use core::ptr::NonNull;
use core::sync::atomic::{fence, Ordering};

use tock_registers::LocalRegisterCopy;

/// Field definitions (`tock-registers`); each register's fields are documented inline.
#[allow(missing_docs)]
mod fields {
    use tock_registers::register_bitfields;

    register_bitfields![u32,
        /// Status and error bits of an advanced Rx write-back descriptor (descriptor bits 95:64).
        pub RX_STATUS [
            /// Descriptor done: the device wrote this descriptor back.
            DD OFFSET(0) NUMBITS(1) [],
            /// End of packet: the last descriptor of a frame.
            EOP OFFSET(1) NUMBITS(1) [],
            /// RXE: any MAC error (82599, status_error bit 29).
            RXE OFFSET(29) NUMBITS(1) []
        ],
        /// `cmd_type_len` of an advanced Tx data descriptor (descriptor bits 95:64).
        pub TX_CMD [
            /// Data length of this buffer in bytes.
            DTALEN OFFSET(0) NUMBITS(16) [],
            /// Descriptor type.
            DTYP OFFSET(20) NUMBITS(4) [
                /// Advanced data descriptor.
                Data = 0b0011
            ],
            /// End of packet.
            EOP OFFSET(24) NUMBITS(1) [],
            /// Insert FCS (also needed for hardware padding).
            IFCS OFFSET(25) NUMBITS(1) [],
            /// Report status: write DD back when done.
            RS OFFSET(27) NUMBITS(1) [],
            /// Descriptor extension: advanced format.
            DEXT OFFSET(29) NUMBITS(1) []
        ],
        /// `olinfo_status` of an advanced Tx data descriptor (descriptor bits 127:96).
        pub TX_STATUS [
            /// Descriptor done (write-back).
            DD OFFSET(0) NUMBITS(1) [],
            /// Payload length: the whole packet for non-TSO.
            PAYLEN OFFSET(14) NUMBITS(18) []
        ]
    ];
}
pub use fields::*;

/// Size of one descriptor in bytes.
pub const DESC_SIZE: usize = 16;

/// What a valid Rx write-back says about one received frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RxWriteback {
    /// The device still owns the descriptor.
    NotDone,
    /// A complete frame of this many bytes.
    Frame(u16),
    /// DD without EOP: a frame spanning several descriptors (no jumbo support).
    NoEop,
    /// The device flagged a MAC error.
    Error,
    /// A length of zero or larger than the buffer.
    BadLength,
}

/// Decodes the second word of an advanced Rx descriptor (§4.2: status_error in bits 31:0,
/// PKT_LEN in bits 47:32).
#[inline(always)]
pub(crate) fn decode_rx(word1: u64, buf_size: u32) -> RxWriteback {
    let status = LocalRegisterCopy::<u32, RX_STATUS::Register>::new(word1 as u32);
    if !status.is_set(RX_STATUS::DD) {
        return RxWriteback::NotDone;
    }
    if !status.is_set(RX_STATUS::EOP) {
        return RxWriteback::NoEop;
    }
    if status.is_set(RX_STATUS::RXE) {
        return RxWriteback::Error;
    }
    let len = (word1 >> 32) as u16;
    if len == 0 || u32::from(len) > buf_size {
        return RxWriteback::BadLength;
    }
    RxWriteback::Frame(len)
}

/// The second word of an advanced Tx data descriptor for a one-buffer frame of `len` bytes:
/// `cmd_type_len` = EOP | IFCS | RS | DEXT | DTYP_DATA | len, `olinfo_status` = PAYLEN = len.
#[inline(always)]
pub(crate) fn tx_word1(len: u16) -> u64 {
    let cmd = TX_CMD::DTALEN.val(u32::from(len))
        + TX_CMD::DTYP::Data
        + TX_CMD::EOP::SET
        + TX_CMD::IFCS::SET
        + TX_CMD::RS::SET
        + TX_CMD::DEXT::SET;
    let olinfo = TX_STATUS::PAYLEN.val(u32::from(len));
    u64::from(cmd.value) | (u64::from(olinfo.value) << 32)
}

/// True when the device wrote back DD into the second word of a Tx descriptor.
#[inline(always)]
pub(crate) fn tx_done(word1: u64) -> bool {
    LocalRegisterCopy::<u32, TX_STATUS::Register>::new((word1 >> 32) as u32).is_set(TX_STATUS::DD)
}

/// A ring of `mask + 1` descriptors (a power of two) at `base` in DMA memory.
///
/// Invariant: `base` points to `mask + 1` descriptors of valid, 16-byte aligned DMA memory that
/// stays allocated as long as this value exists (the owning queue frees it after dropping us),
/// and only this ring and the device access it.
pub(crate) struct DescRing {
    base: NonNull<[u64; 2]>,
    mask: u16,
}

// SAFETY: the ring is plain memory owned by one queue; moving it between threads is sound.
unsafe impl Send for DescRing {}

impl DescRing {
    /// # Safety
    /// `base` must satisfy the invariant on [`DescRing`] for `len` (a power of two) descriptors.
    pub(crate) unsafe fn new(base: NonNull<u8>, len: u16) -> Self {
        debug_assert!(len.is_power_of_two());
        Self {
            base: base.cast(),
            mask: len - 1,
        }
    }

    #[inline(always)]
    pub(crate) fn mask(&self) -> u16 {
        self.mask
    }

    #[inline(always)]
    fn slot(&self, i: u16) -> *mut [u64; 2] {
        let i = usize::from(i & self.mask);
        // SAFETY: `i <= mask`, so the offset stays inside the ring (type invariant).
        unsafe { self.base.as_ptr().add(i) }
    }

    /// Reads the device-written second word of descriptor `i`; acquire-ordered before any later
    /// read of the memory it describes.
    #[inline(always)]
    pub(crate) fn read_word1(&self, i: u16) -> u64 {
        let p = self.slot(i);
        // SAFETY: `p` is an aligned descriptor inside the ring (slot); the device may write it
        // concurrently, which is why this is one volatile 64-bit load and never a reference.
        let w = unsafe { core::ptr::addr_of!((*p)[1]).read_volatile() };
        fence(Ordering::Acquire);
        u64::from_le(w)
    }

    /// Writes both words of descriptor `i` (first word, then second).
    #[inline(always)]
    pub(crate) fn write(&self, i: u16, word0: u64, word1: u64) {
        let p = self.slot(i);
        // SAFETY: as in `read_word1`; the CPU owns this descriptor while it writes it (it is not
        // between head and tail), and volatile stores keep the compiler from merging or
        // reordering them with the tail write, which comes after a release fence.
        unsafe {
            core::ptr::addr_of_mut!((*p)[0]).write_volatile(word0.to_le());
            core::ptr::addr_of_mut!((*p)[1]).write_volatile(word1.to_le());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wb(status: u32, len: u16) -> u64 {
        u64::from(status) | (u64::from(len) << 32)
    }

    #[test]
    fn rx_writeback_decoding_rejects_what_the_device_should_not_say() {
        assert_eq!(decode_rx(wb(0, 60), 2048), RxWriteback::NotDone);
        assert_eq!(decode_rx(wb(0b11, 60), 2048), RxWriteback::Frame(60));
        assert_eq!(decode_rx(wb(0b01, 60), 2048), RxWriteback::NoEop);
        assert_eq!(decode_rx(wb(0b11 | 1 << 29, 60), 2048), RxWriteback::Error);
        assert_eq!(decode_rx(wb(0b11, 0), 2048), RxWriteback::BadLength);
        assert_eq!(decode_rx(wb(0b11, 2049), 2048), RxWriteback::BadLength);
        assert_eq!(decode_rx(wb(0b11, 2048), 2048), RxWriteback::Frame(2048));
    }

    #[test]
    fn tx_descriptor_matches_the_minimal_driver_command_word() {
        // ixy: EOP | RS | IFCS | DEXT | DTYP_DATA | len, olinfo = len << 14.
        let w = tx_word1(60);
        assert_eq!(w as u32, 0x2B30_003C);
        assert_eq!((w >> 32) as u32, 60 << 14);
        assert!(!tx_done(w));
        assert!(tx_done(w | 1 << 32));
    }
}
