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
            DEXT OFFSET(29) NUMBITS(1) [],
            /// Insert the VLAN tag of the packet's context (§7.2.3.2.4).
            VLE OFFSET(30) NUMBITS(1) []
        ],
        /// `type_tucmd_mlhl` of an advanced Tx context descriptor (descriptor bits 95:64,
        /// §7.2.3.2.3).
        pub TX_CTX_CMD [
            /// TUCMD.IPV4: the packet is IPv4 (0: IPv6).
            IPV4 OFFSET(10) NUMBITS(1) [],
            /// TUCMD.L4T: the L4 protocol whose checksum TXSM asks for.
            L4T OFFSET(11) NUMBITS(2) [
                /// UDP.
                Udp = 0b00,
                /// TCP.
                Tcp = 0b01
            ],
            /// Descriptor type.
            DTYP OFFSET(20) NUMBITS(4) [
                /// Advanced context descriptor.
                Context = 0b0010
            ],
            /// Descriptor extension: advanced format.
            DEXT OFFSET(29) NUMBITS(1) []
        ],
        /// `olinfo_status` of an advanced Tx data descriptor (descriptor bits 127:96).
        pub TX_STATUS [
            /// Descriptor done (write-back).
            DD OFFSET(0) NUMBITS(1) [],
            /// The context (0 or 1) whose offloads apply to this packet.
            IDX OFFSET(4) NUMBITS(3) [],
            /// POPTS.IXSM: insert the IPv4 header checksum.
            IXSM OFFSET(8) NUMBITS(1) [],
            /// POPTS.TXSM: insert the TCP or UDP checksum.
            TXSM OFFSET(9) NUMBITS(1) [],
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
    /// DD without EOP: the first descriptors of a frame spanning several (§7.1.6), which
    /// `rx_batch` does not take (`rx_chains` does).
    NoEop,
    /// The device flagged a MAC error.
    Error,
    /// A length of zero or larger than the buffer.
    BadLength,
}

/// The status bits a receive write-back is judged by (DD, EOP, RXE) ...
pub(crate) const RX_CHECKED: u32 =
    RX_STATUS::DD::SET.value | RX_STATUS::EOP::SET.value | RX_STATUS::RXE::SET.value;
/// ... and their values for a complete frame without errors.
pub(crate) const RX_GOOD: u32 = RX_STATUS::DD::SET.value | RX_STATUS::EOP::SET.value;

/// Decodes the second word of an advanced Rx descriptor (§4.2: status_error in bits 31:0,
/// PKT_LEN in bits 47:32).
///
/// The common case, a complete good frame, costs one mask-and-compare of the status and one
/// unsigned compare of the length; everything else is decided out of line.
#[inline(always)]
pub(crate) fn decode_rx(word1: u64, buf_size: u32) -> RxWriteback {
    match good_frame_len(word1, buf_size) {
        Some(len) => RxWriteback::Frame(len),
        None => decode_rx_slow(word1, buf_size),
    }
}

/// [`decode_rx`]'s common case alone: the length of a complete good frame, `None` for any
/// other write-back (for a loop that stops at the first one whatever it is, without a call).
#[inline(always)]
pub(crate) fn good_frame_len(word1: u64, buf_size: u32) -> Option<u16> {
    let status = word1 as u32;
    let len = (word1 >> 32) as u16;
    // `len - 1 < buf_size` is `0 < len <= buf_size` (len 0 wraps to u32::MAX).
    (status & RX_CHECKED == RX_GOOD && u32::from(len).wrapping_sub(1) < buf_size).then_some(len)
}

/// Everything but a good frame: not done yet, or a write-back the driver rejects.
#[cold]
#[inline(never)]
fn decode_rx_slow(word1: u64, buf_size: u32) -> RxWriteback {
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

/// True when an Rx write-back has EOP set: the last descriptor of a frame.
#[inline(always)]
pub(crate) fn rx_eop(word1: u64) -> bool {
    LocalRegisterCopy::<u32, RX_STATUS::Register>::new(word1 as u32).is_set(RX_STATUS::EOP)
}

/// True when an Rx write-back flags a MAC error (valid on the EOP descriptor only).
#[inline(always)]
pub(crate) fn rx_error(word1: u64) -> bool {
    LocalRegisterCopy::<u32, RX_STATUS::Register>::new(word1 as u32).is_set(RX_STATUS::RXE)
}

/// True when the device wrote back an Rx descriptor (DD set), whatever it says.
#[inline(always)]
pub(crate) fn rx_done(word1: u64) -> bool {
    LocalRegisterCopy::<u32, RX_STATUS::Register>::new(word1 as u32).is_set(RX_STATUS::DD)
}

/// The second word of an advanced Tx data descriptor for a one-buffer frame of `len` bytes:
/// `cmd_type_len` = EOP | IFCS | RS | DEXT | DTYP_DATA | len, `olinfo_status` = PAYLEN = len.
///
/// `len` must fit DTALEN (16 bits); a [`Packet`](crate::Packet) is at most one buffer, 16 KiB.
#[inline(always)]
pub(crate) fn tx_word1(len: u32) -> u64 {
    tx_word1_without_rs(len) | u64::from(TX_CMD::RS::SET.value)
}

/// [`tx_word1`] without RS: for descriptors before the last of a batch, into which the device
/// writes nothing back.
#[inline(always)]
pub(crate) fn tx_word1_without_rs(len: u32) -> u64 {
    debug_assert!(len <= 0xFFFF);
    let cmd = TX_CMD::DTYP::Data + TX_CMD::EOP::SET + TX_CMD::IFCS::SET + TX_CMD::DEXT::SET;
    // DTALEN is bits 15:0 and PAYLEN bits 63:46 of the word: one multiplication puts the length
    // into both (len < 2^16, so the two copies and the command bits never overlap).
    let both = TX_CMD::DTALEN.val(1).value as u64 | (TX_STATUS::PAYLEN.val(1).value as u64) << 32;
    (u64::from(len) * both) | u64::from(cmd.value)
}

/// [`tx_word1`] with offloads: VLE in the command, IXSM / TXSM and the context index in
/// `olinfo_status` (§7.2.3.2.4).
#[inline]
pub(crate) fn tx_word1_offload(len: u32, vle: bool, ixsm: bool, txsm: bool, idx: u32) -> u64 {
    let vle = if vle { TX_CMD::VLE::SET.value } else { 0 };
    let olinfo = TX_STATUS::IDX.val(idx).value
        | if ixsm { TX_STATUS::IXSM::SET.value } else { 0 }
        | if txsm { TX_STATUS::TXSM::SET.value } else { 0 };
    tx_word1(len) | u64::from(vle) | u64::from(olinfo) << 32
}

/// The two words of an advanced Tx context descriptor (§7.2.3.2.3): `vlan_macip_lens` (VLAN
/// 31:16, MACLEN 15:9, IPLEN 8:0) and `seqnum_seed` 0 in the first, TUCMD | DTYP_CTXT | DEXT and
/// `mss_l4len_idx` = IDX in the second.
#[inline]
pub(crate) fn tx_context(vlan_macip_lens: u32, tucmd: u32, idx: u32) -> (u64, u64) {
    let cmd = tucmd | (TX_CTX_CMD::DTYP::Context + TX_CTX_CMD::DEXT::SET).value;
    (
        u64::from(vlan_macip_lens),
        u64::from(cmd) | u64::from(idx << 4) << 32,
    )
}

/// The second word of the advanced Tx data descriptor for segment `len` bytes long of a
/// packet of `paylen` bytes in several descriptors (§7.2.3.2.4): DTALEN = len; PAYLEN = the
/// whole packet in the first descriptor, 0 in the others (as Linux's ixgbe writes them);
/// EOP and RS only on the last, so the device writes back one DD per packet.
#[inline]
pub(crate) fn tx_segment_word1(len: u32, paylen: u32, first: bool, last: bool) -> u64 {
    let mut cmd =
        TX_CMD::DTYP::Data + TX_CMD::IFCS::SET + TX_CMD::DEXT::SET + TX_CMD::DTALEN.val(len);
    if last {
        cmd += TX_CMD::EOP::SET + TX_CMD::RS::SET;
    }
    let olinfo = if first {
        TX_STATUS::PAYLEN.val(paylen).value
    } else {
        0
    };
    u64::from(cmd.value) | u64::from(olinfo) << 32
}

/// `cmd_type_len` bit 19 (MAC.1588) in the descriptor's second word: time-stamp this frame
/// as it leaves (§7.9.2.1; Linux's `IXGBE_ADVTXD_MAC_TSTAMP`).
pub(crate) const TX_CMD_TSTAMP: u64 = 1 << 19;

/// `cmd_type_len`'s RS bit in the descriptor's second word: the device writes DD back into
/// this descriptor once it is done (with WTHRESH 0, only into descriptors with RS).
pub(crate) const TX_RS: u64 = TX_CMD::RS::SET.value as u64;

/// True when the device wrote back DD into the second word of a Tx descriptor.
#[inline(always)]
pub(crate) fn tx_done(word1: u64) -> bool {
    LocalRegisterCopy::<u32, TX_STATUS::Register>::new((word1 >> 32) as u32).is_set(TX_STATUS::DD)
}

/// A ring of `mask + 1` descriptors (a power of two) at `base` in DMA memory, and a side array
/// with one `S` per descriptor (which buffer the descriptor holds) in private memory, which the
/// device cannot reach: the driver trusts the side array, never the descriptors.
///
/// Invariant: `base` points to `mask + 1` descriptors of valid, 16-byte aligned DMA memory, and
/// `side` is a [`SideArray`] of as many values; both stay allocated as long as this value
/// exists (the owning queue frees them after dropping us); only this ring and the device access
/// the descriptors, only this ring the side array.
///
/// `Copy` so that a queue's data path can keep base and mask in registers for one call: a copy
/// is a view of the queue's own ring, used only while the queue is borrowed by that call.
pub(crate) struct DescRing<S: Copy> {
    base: NonNull<[u64; 2]>,
    side: SideArray<S>,
    mask: usize,
}

impl<S: Copy> Clone for DescRing<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: Copy> Copy for DescRing<S> {}

// SAFETY: the ring is plain memory owned by one queue; moving it between threads is sound as
// long as the side values may move (S: Send).
unsafe impl<S: Copy + Send> Send for DescRing<S> {}

impl<S: Copy> DescRing<S> {
    /// Bytes of DMA memory a ring of `len` descriptors takes.
    pub(crate) const fn ring_bytes(len: usize) -> usize {
        len * DESC_SIZE
    }

    /// Bytes of private memory its side array takes.
    pub(crate) const fn side_bytes(len: usize) -> usize {
        SideArray::<S>::bytes(len)
    }

    /// # Safety
    /// `base` and `side` must satisfy the invariant on [`DescRing`] for `len` (a power of two)
    /// descriptors: `base` points to [`DescRing::ring_bytes`]`(len)` bytes of DMA memory, `side`
    /// to [`DescRing::side_bytes`]`(len)` bytes of private memory, both 16-byte aligned; the
    /// side array must be initialised before it is read.
    pub(crate) unsafe fn new(base: NonNull<u8>, side: NonNull<u8>, len: u16) -> Self {
        debug_assert!(len.is_power_of_two());
        const { assert!(core::mem::align_of::<S>() <= DESC_SIZE) };
        Self {
            base: base.cast(),
            // SAFETY: the caller's contract on `side` is SideArray::new's.
            side: unsafe { SideArray::new(side, len) },
            mask: usize::from(len - 1),
        }
    }

    /// Ring length - 1. Positions (`i` below) are free-running counters: each access uses
    /// `i & mask`.
    #[inline(always)]
    pub(crate) fn mask(&self) -> usize {
        self.mask
    }

    #[inline(always)]
    fn slot(&self, i: usize) -> *mut [u64; 2] {
        let i = i & self.mask;
        // SAFETY: `i <= mask`, so the offset stays inside the ring (type invariant).
        unsafe { self.base.as_ptr().add(i) }
    }

    /// The side value of descriptor `i` (set with [`DescRing::set_side`] before).
    #[inline(always)]
    pub(crate) fn side(&self, i: usize) -> S {
        self.side.get(i)
    }

    /// Sets the side value of descriptor `i`.
    #[inline(always)]
    pub(crate) fn set_side(&self, i: usize, value: S) {
        self.side.set(i, value)
    }

    /// The side values of descriptors `first..first + len`, where `first <= mask` and the range
    /// does not wrap (`first + len <= mask + 1`; panics otherwise), as a slice: walked with a
    /// pointer instead of masking every position.
    ///
    /// # Safety
    /// As [`SideArray::slice`]: no copy of this ring may write the side array
    /// ([`DescRing::set_side`]) while the slice lives, and every value in the range must have
    /// been set.
    #[inline(always)]
    pub(crate) unsafe fn side_run(&self, first: usize, len: usize) -> &[S] {
        // SAFETY: the caller's contract.
        unsafe { self.side.slice(first, len) }
    }

    /// Descriptors `first..first + len` (`first <= mask`, no wrap-around: `first + len <=
    /// mask + 1`; panics otherwise) as a run, accessed by offset from `first`: the data path
    /// walks a run with pointers instead of masking every position.
    #[inline(always)]
    pub(crate) fn run(&self, first: usize, len: usize) -> DescRun<'_, S> {
        assert!(first <= self.mask && len <= self.mask + 1 - first);
        DescRun {
            // SAFETY: `first <= mask`: inside the ring and the side array (type invariant).
            base: unsafe { self.base.add(first) },
            // SAFETY: as above.
            side: unsafe { self.side.base.add(first) },
            len,
            _ring: core::marker::PhantomData,
        }
    }

    /// Reads the device-written second word of descriptor `i`; acquire-ordered before any later
    /// read of the memory it describes.
    #[inline(always)]
    pub(crate) fn read_word1(&self, i: usize) -> u64 {
        // SAFETY: an aligned descriptor inside the ring (slot).
        unsafe { read_word1_at(self.slot(i)) }
    }

    /// Writes both words of descriptor `i` (first word, then second).
    #[inline(always)]
    pub(crate) fn write(&self, i: usize, word0: u64, word1: u64) {
        // SAFETY: an aligned descriptor inside the ring (slot), owned by the CPU while it
        // writes it (it is not between head and tail).
        unsafe { write_at(self.slot(i), word0, word1) }
    }
}

/// Reads the second word of the descriptor at `p`, acquire-ordered before any later read of
/// the memory it describes: one volatile 64-bit load and never a reference, because the device
/// may write it concurrently.
///
/// # Safety
/// `p` is an aligned descriptor inside a live ring.
#[inline(always)]
unsafe fn read_word1_at(p: *mut [u64; 2]) -> u64 {
    // SAFETY: the caller's contract.
    let w = unsafe { core::ptr::addr_of!((*p)[1]).read_volatile() };
    fence(Ordering::Acquire);
    u64::from_le(w)
}

/// Writes both words of the descriptor at `p` (first word, then second), with volatile stores
/// that the compiler neither merges nor moves past the tail write's release fence.
///
/// # Safety
/// `p` is an aligned descriptor inside a live ring that the device does not own (it is not
/// between head and tail).
#[inline(always)]
unsafe fn write_at(p: *mut [u64; 2], word0: u64, word1: u64) {
    // SAFETY: the caller's contract.
    unsafe {
        core::ptr::addr_of_mut!((*p)[0]).write_volatile(word0.to_le());
        core::ptr::addr_of_mut!((*p)[1]).write_volatile(word1.to_le());
    }
}

/// A second array of one `T` per descriptor beside a [`DescRing`]'s side array, also in private
/// memory (the transmit queue keeps the buffers' indices in the ring's side array and their
/// pools here: two arrays, so that cleaning checks the pools and copies the indices a run at a
/// time).
///
/// Invariant: `base` points to `mask + 1` values of `T` (valid for reads and writes, aligned)
/// in private memory, allocated as long as this value exists, touched only through it.
pub(crate) struct SideArray<T: Copy> {
    base: NonNull<T>,
    mask: usize,
}

impl<T: Copy> Clone for SideArray<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Copy> Copy for SideArray<T> {}

// SAFETY: plain private memory owned by one queue, as DescRing.
unsafe impl<T: Copy + Send> Send for SideArray<T> {}

impl<T: Copy> SideArray<T> {
    /// Bytes of private memory an array for `len` descriptors takes.
    pub(crate) const fn bytes(len: usize) -> usize {
        len * core::mem::size_of::<T>()
    }

    /// # Safety
    /// `base` must satisfy the invariant on [`SideArray`] for `len` (a power of two) values;
    /// each value must be set before it is read.
    pub(crate) unsafe fn new(base: NonNull<u8>, len: u16) -> Self {
        debug_assert!(len.is_power_of_two());
        debug_assert!(base.cast::<T>().is_aligned());
        Self {
            base: base.cast(),
            mask: usize::from(len - 1),
        }
    }

    /// The value of descriptor `i` (free-running: masked).
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> T {
        // SAFETY: `i & mask` is inside the array (type invariant); values are set before read.
        unsafe { self.base.as_ptr().add(i & self.mask).read() }
    }

    /// Sets the value of descriptor `i` (free-running: masked).
    #[inline(always)]
    pub(crate) fn set(&self, i: usize, value: T) {
        // SAFETY: `i & mask` is inside the array (type invariant).
        unsafe { self.base.as_ptr().add(i & self.mask).write(value) }
    }

    /// The values of descriptors `first..first + len` (no wrap-around, as [`DescRing::run`];
    /// panics otherwise) as a slice.
    ///
    /// # Safety
    /// Nothing may write the array (through any copy) while the slice lives, and every value
    /// in the range must have been set.
    #[inline(always)]
    pub(crate) unsafe fn slice(&self, first: usize, len: usize) -> &[T] {
        assert!(first <= self.mask && len <= self.mask + 1 - first);
        // SAFETY: inside the array, initialised and not written while borrowed (caller).
        unsafe { core::slice::from_raw_parts(self.base.as_ptr().add(first), len) }
    }

    /// The values of descriptors `first..first + len` (no wrap-around; panics otherwise) as a
    /// slice to write.
    ///
    /// # Safety
    /// Nothing else may read or write the array (through any copy) while the slice lives.
    #[inline(always)]
    pub(crate) unsafe fn slice_mut(&mut self, first: usize, len: usize) -> &mut [T] {
        assert!(first <= self.mask && len <= self.mask + 1 - first);
        // SAFETY: inside the array, and exclusively borrowed for the slice's life (caller);
        // every bit pattern written through it is a `T` the caller provides.
        unsafe { core::slice::from_raw_parts_mut(self.base.as_ptr().add(first), len) }
    }
}

/// A run of consecutive descriptors of a [`DescRing`] that does not wrap around
/// ([`DescRing::run`]): descriptor `k` of the run is the ring's `first + k`. Every access
/// checks `k < len`; in the data path's loops (`k` in `0..n`, `n <= len`) the compiler proves
/// it and the check costs nothing.
pub(crate) struct DescRun<'r, S: Copy> {
    base: NonNull<[u64; 2]>,
    side: NonNull<S>,
    len: usize,
    _ring: core::marker::PhantomData<&'r DescRing<S>>,
}

impl<S: Copy> DescRun<'_, S> {
    /// Number of descriptors in the run.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    fn slot(&self, k: usize) -> *mut [u64; 2] {
        assert!(k < self.len);
        // SAFETY: `k < len`, and the run lies inside the ring (DescRing::run).
        unsafe { self.base.as_ptr().add(k) }
    }

    /// [`DescRing::read_word1`] of the run's descriptor `k`.
    #[inline(always)]
    pub(crate) fn read_word1(&self, k: usize) -> u64 {
        // SAFETY: an aligned descriptor inside the ring (slot).
        unsafe { read_word1_at(self.slot(k)) }
    }

    /// [`DescRun::read_word1`] of descriptors `k..k + 4`, in order, with one acquire fence
    /// after the four reads.
    #[inline(always)]
    #[cfg_attr(
        not(all(target_arch = "x86_64", target_feature = "sse2", not(miri))),
        allow(dead_code)
    )]
    pub(crate) fn read_word1_x4(&self, k: usize) -> [u64; 4] {
        assert!(k < self.len && self.len - k >= 4);
        let p = self.base.as_ptr();
        // SAFETY: `k + 3 < len`: four aligned descriptors inside the ring (the run lies in it),
        // read as `read_word1_at` reads one (volatile, for the device may write them).
        let w = unsafe {
            [0, 1, 2, 3].map(|j| core::ptr::addr_of!((*p.add(k + j))[1]).read_volatile())
        };
        fence(Ordering::Acquire);
        w.map(u64::from_le)
    }

    /// [`DescRing::write`] of the run's descriptor `k`.
    #[inline(always)]
    pub(crate) fn write(&self, k: usize, word0: u64, word1: u64) {
        // SAFETY: an aligned descriptor inside the ring (slot), owned by the CPU while it
        // writes it.
        unsafe { write_at(self.slot(k), word0, word1) }
    }

    /// ORs `bits` into the second word of the run's descriptor `k`, which the CPU still owns
    /// (written and not yet handed to the device).
    #[inline(always)]
    pub(crate) fn or_word1(&self, k: usize, bits: u64) {
        let p = self.slot(k);
        // SAFETY: as in `write`: an aligned descriptor inside the ring that the device does not
        // own (it is beyond the tail), so nothing writes it concurrently.
        unsafe {
            let w = core::ptr::addr_of!((*p)[1]).read_volatile();
            core::ptr::addr_of_mut!((*p)[1]).write_volatile(w | bits.to_le());
        }
    }

    /// [`DescRing::side`] of the run's descriptor `k`.
    #[inline(always)]
    pub(crate) fn side(&self, k: usize) -> S {
        assert!(k < self.len);
        // SAFETY: `k < len`: inside the side array; only the ring's owner touches it, and it
        // sets a value before reading it.
        unsafe { self.side.as_ptr().add(k).read() }
    }

    /// [`DescRun::side`] of descriptors `k..k + 4`.
    #[inline(always)]
    #[cfg_attr(
        not(all(target_arch = "x86_64", target_feature = "sse2", not(miri))),
        allow(dead_code)
    )]
    pub(crate) fn side_x4(&self, k: usize) -> [S; 4] {
        assert!(k < self.len && self.len - k >= 4);
        // SAFETY: `k + 3 < len`: inside the side array, as in `side`.
        unsafe { self.side.as_ptr().add(k).cast::<[S; 4]>().read_unaligned() }
    }

    /// [`DescRun::side_x4`] read as four separate loads (volatile, so that the compiler does
    /// not take them from a 16-byte read of the same values: moving four lanes out of a vector
    /// register costs seven instructions, four loads cost four).
    #[inline(always)]
    #[cfg_attr(
        not(all(target_arch = "x86_64", target_feature = "sse2", not(miri))),
        allow(dead_code)
    )]
    pub(crate) fn side_x4_apart(&self, k: usize) -> [S; 4] {
        assert!(k < self.len && self.len - k >= 4);
        // SAFETY: `k + 3 < len`: inside the side array, as in `side`; aligned elements.
        [0, 1, 2, 3].map(|j| unsafe { self.side.as_ptr().add(k + j).read_volatile() })
    }

    /// [`DescRing::set_side`] of the run's descriptor `k`.
    #[inline(always)]
    pub(crate) fn set_side(&self, k: usize, value: S) {
        assert!(k < self.len);
        // SAFETY: `k < len`: inside the side array; only the ring's owner touches it.
        unsafe { self.side.as_ptr().add(k).write(value) }
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
    fn fast_rx_decoding_agrees_with_the_field_by_field_one() {
        let statuses = [
            0u32,
            1,
            2,
            3,
            1 << 29,
            3 | 1 << 29,
            1 | 1 << 29,
            3 | 0xF0,
            0xFFFF_FFFF,
        ];
        let lens = [
            0u16, 1, 59, 60, 1023, 1024, 1025, 2047, 2048, 2049, 16384, 65535,
        ];
        for buf_size in [1024, 2048, 16384] {
            for status in statuses {
                for len in lens {
                    let w = wb(status, len) | 0xABCD << 48;
                    assert_eq!(
                        decode_rx(w, buf_size),
                        decode_rx_slow(w, buf_size),
                        "{w:#x}"
                    );
                }
            }
        }
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

    #[test]
    fn segment_descriptors_carry_eop_and_rs_only_on_the_last() {
        // A one-segment packet is the same descriptor as tx_word1's.
        assert_eq!(tx_segment_word1(60, 60, true, true), tx_word1(60));
        let first = tx_segment_word1(2048, 5000, true, false);
        assert_eq!(first as u32, 0x2230_0800);
        assert_eq!((first >> 32) as u32, 5000 << 14);
        let middle = tx_segment_word1(2048, 5000, false, false);
        assert_eq!((middle as u32, (middle >> 32) as u32), (0x2230_0800, 0));
        let last = tx_segment_word1(904, 5000, false, true);
        assert_eq!((last as u32, (last >> 32) as u32), (0x2B30_0388, 0));
    }
}
