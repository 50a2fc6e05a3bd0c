//! Memory pools of fixed-size packet buffers in DMA memory, and the owned [`Packet`] type.
//!
//! A pool is one DMA region of `entries × buf_size` bytes of buffers, and one private region
//! (which the device cannot reach, see [`Platform::private_alloc`]) laid out as
//! `[ free stack: entries × u32 | bus addresses: entries × u64 ]`: the device may write any
//! byte of the buffers, never which buffer is free or where a buffer is.
//! Buffer sizes are powers of two that divide [`DMA_PAGE_SIZE`], so no buffer crosses a 2 MiB
//! chunk and each buffer is contiguous in bus-address space, even when the region spans several
//! hugepages that are not (see `anchors.md`). Every buffer's bus address is translated once, when
//! the pool is created, so the data path never calls `virt_to_phys`.
//!
//! The free stack sits behind a `spin::Mutex`, but the data path takes it once per *batch*
//! (`alloc_indices` / `free_indices`), never per packet. A [`Packet`] dropped by the user returns
//! its one buffer through the same lock: that is the slow path.

use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;
use crate::platform::{DmaRegion, Platform, PrivateMem, DMA_PAGE_SIZE};

/// Default buffer size: 2 KiB, one 1518-byte frame plus room (SRRCTL.BSIZEPACKET = 2).
pub const DEFAULT_BUF_SIZE: u32 = 2048;

/// Where a pool's buffers are: fixed when the pool is built, copied into registers by the data
/// path (a `PoolCore` holds a lock, so the compiler would otherwise reload these fields after
/// every store).
#[derive(Clone, Copy)]
pub(crate) struct BufLayout {
    /// First byte of buffer 0.
    base: NonNull<u8>,
    /// Buffer size in bytes (a power of two). Offsets are computed with a multiplication: one
    /// instruction like a shift, but it needs no count register, and the same register holds
    /// the size the receive path checks lengths against.
    buf_size: u32,
    entries: u32,
    /// Bus address of each buffer, `entries` of them.
    phys: NonNull<u64>,
}

impl BufLayout {
    /// Buffer size in bytes.
    #[inline(always)]
    pub(crate) fn buf_size(&self) -> u32 {
        self.buf_size
    }

    /// Address of buffer `index`. The caller must own the index or not dereference the result.
    #[inline(always)]
    pub(crate) fn buf_ptr(&self, index: u32) -> NonNull<u8> {
        debug_assert!(index < self.entries);
        let offset = index as usize * self.buf_size as usize;
        // SAFETY: every index handed out is below `entries`, so the offset lies inside the buffer
        // area of the region (entries * buf_size bytes).
        unsafe { NonNull::new_unchecked(self.base.as_ptr().add(offset)) }
    }

    /// Bus address of buffer `index`.
    #[inline(always)]
    pub(crate) fn phys(&self, index: u32) -> u64 {
        debug_assert!(index < self.entries);
        // SAFETY: the table has `entries` initialised u64s and indices are below `entries`.
        unsafe { self.phys.as_ptr().add(index as usize).read() }
    }
}

/// The part of a pool that packets and queues point to; not generic over the platform.
///
/// Cache lines of its own (two 64-byte lines, which the adjacent-line prefetcher fetches in
/// pairs): a device's pools sit side by side in one slice (`Device::init`), one per queue,
/// and the threads serving two queues lock their pools' free stacks once or twice a batch;
/// sharing a line, each lock moved it between the cores.
#[repr(align(128))]
pub struct PoolCore {
    layout: BufLayout,
    free: spin::Mutex<FreeStack>,
    /// Set when a queue could not stop the device from using our buffers: never free the memory.
    leak: AtomicBool,
}

/// The stack of free buffer indices (behind the pool's mutex), in private memory.
pub(crate) struct FreeStack {
    /// `cap` slots; `stack[..top]` are free buffer indices.
    stack: NonNull<u32>,
    top: u32,
    /// Number of slots (the pool's entries).
    cap: u32,
}

/// The free stack, locked for a batch: pops and pushes work on a copy of the top (in a
/// register), written back when the batch is dropped, before the lock is released.
pub(crate) struct FreeBatch<'p> {
    guard: spin::MutexGuard<'p, FreeStack>,
    stack: NonNull<u32>,
    top: u32,
    cap: u32,
}

impl FreeBatch<'_> {
    /// Takes a free buffer index, or `None` when the pool is empty.
    #[inline(always)]
    pub(crate) fn pop(&mut self) -> Option<u32> {
        if self.top == 0 {
            return None;
        }
        self.top -= 1;
        // SAFETY: top < cap: a valid, initialised stack slot, and the stack is ours while the
        // guard is held.
        Some(unsafe { self.stack.as_ptr().add(self.top as usize).read() })
    }

    /// Number of free buffers.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.top as usize
    }

    /// Takes the `n` (at most [`FreeBatch::len`]) buffer indices on top of the stack; in pop
    /// order when iterated in reverse.
    #[inline(always)]
    pub(crate) fn take(&mut self, n: usize) -> &[u32] {
        let n = n.min(self.top as usize);
        self.top -= n as u32;
        // SAFETY: slots top..top + n (the old top) are initialised slots of the stack array,
        // ours while the guard is held; the slice borrows `self`, so nothing pushes over them
        // while it lives.
        unsafe { core::slice::from_raw_parts(self.stack.as_ptr().add(self.top as usize), n) }
    }

    /// Returns a buffer index. Indices have one owner each, so the stack never overflows; if it
    /// would (a bug), the index is dropped rather than written out of bounds.
    #[inline(always)]
    pub(crate) fn push(&mut self, index: u32) {
        if self.top < self.cap {
            // SAFETY: top < cap: a valid stack slot, ours while the guard is held.
            unsafe { self.stack.as_ptr().add(self.top as usize).write(index) };
            self.top += 1;
        }
    }
}

impl FreeBatch<'_> {
    /// Returns the buffer indices `metas & mask` (a mask clears flag bits kept beside them);
    /// one bounds check and one copy when they fit, which they always do (indices have one
    /// owner each); if they would not (a bug), the overflow is dropped, as in `push`.
    #[inline(always)]
    pub(crate) fn push_indices(&mut self, metas: &[u32], mask: u32) {
        let top = self.top as usize;
        if metas.len() <= (self.cap - self.top) as usize {
            // SAFETY: slots top..top + len are inside the stack array (len <= cap - top), ours
            // while the guard is held, and no other reference to them exists.
            let dst = unsafe {
                core::slice::from_raw_parts_mut(self.stack.as_ptr().add(top), metas.len())
            };
            for (d, &m) in dst.iter_mut().zip(metas) {
                *d = m & mask;
            }
            self.top += metas.len() as u32;
        } else {
            for &m in metas {
                self.push(m & mask);
            }
        }
    }
}

impl Drop for FreeBatch<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.guard.top = self.top;
    }
}

// SAFETY: PoolCore's raw pointers point into the pool's DMA region and its private region,
// which live as long as the pool. The free stack is only touched under its mutex; a buffer's bytes are only touched by the
// single owner of its index (a Packet, an Rx or Tx ring slot), which the stack hands out once.
unsafe impl Send for PoolCore {}
// SAFETY: see Send; shared access goes through the mutex or through exclusively owned indices.
unsafe impl Sync for PoolCore {}
// SAFETY: the stack pointer points into the pool's private region (see PoolCore), and a
// FreeStack is only reached through its mutex.
unsafe impl Send for FreeStack {}

impl PoolCore {
    /// Buffer size in bytes.
    #[inline(always)]
    pub fn buf_size(&self) -> u32 {
        self.layout.buf_size()
    }

    /// Number of buffers.
    pub fn entries(&self) -> u32 {
        self.layout.entries
    }

    /// Number of buffers currently free.
    pub fn free_count(&self) -> usize {
        self.free.lock().top as usize
    }

    /// Where the buffers are (a copy, for the data path's registers).
    #[inline(always)]
    pub(crate) fn layout(&self) -> BufLayout {
        self.layout
    }

    /// Bus address of buffer `index`.
    #[inline(always)]
    pub(crate) fn phys(&self, index: u32) -> u64 {
        self.layout.phys(index)
    }

    /// Locks the free stack for a batch of pops or pushes (once per batch on the data path).
    #[inline(always)]
    pub(crate) fn lock_free(&self) -> FreeBatch<'_> {
        let guard = self.free.lock();
        let (stack, top, cap) = (guard.stack, guard.top, guard.cap);
        FreeBatch {
            guard,
            stack,
            top,
            cap,
        }
    }

    /// Pops up to `out.len()` free buffer indices into `out`; returns how many. One lock per call.
    #[inline]
    pub(crate) fn alloc_indices(&self, out: &mut [u32]) -> usize {
        let mut free = self.lock_free();
        let mut n = 0;
        for slot in out.iter_mut() {
            let Some(index) = free.pop() else { break };
            *slot = index;
            n += 1;
        }
        n
    }

    /// Returns buffer indices to the pool. One lock per call.
    #[inline]
    pub(crate) fn free_indices(&self, indices: &[u32]) {
        self.lock_free().push_indices(indices, u32::MAX);
    }

    pub(crate) fn mark_leaked(&self) {
        self.leak.store(true, Ordering::Relaxed);
    }
}

/// A pool of packet buffers in DMA memory.
pub struct Mempool<P: Platform> {
    core: PoolCore,
    platform: P,
    region: Option<DmaRegion>,
    /// The free stack and the bus-address table (dropped after `core`, which points into it).
    _private: PrivateMem<P>,
}

impl<P: Platform> Mempool<P> {
    /// Allocates a pool of `entries` buffers of `buf_size` bytes each.
    ///
    /// `buf_size` must be a power of two from 1 KiB to 16 KiB (the Rx buffer size is programmed
    /// in 1 KiB units, §8.2.3.8.7); `entries` must be at least 1.
    ///
    /// ```
    /// use ixgbe_core::{Mempool, DEFAULT_BUF_SIZE};
    /// let sim = platform_mock::Sim::new();
    /// let platform = sim.platform(sim.add_nic(platform_mock::NicConfig::default()));
    /// let pool = Mempool::new(&platform, 128, DEFAULT_BUF_SIZE).unwrap();
    /// let mut packet = pool.alloc().unwrap(); // an empty packet that owns a buffer
    /// packet.set_len(60).unwrap();
    /// packet[..6].copy_from_slice(&[0xFF; 6]);
    /// assert_eq!(pool.free_count(), 127);
    /// drop(packet); // back to the pool
    /// assert_eq!(pool.free_count(), 128);
    /// assert!(Mempool::new(&platform, 128, 3000).is_err(), "not a power of two");
    /// ```
    pub fn new(platform: &P, entries: u32, buf_size: u32) -> Result<Self, Error> {
        if !(1024..=16 * 1024).contains(&buf_size) || !buf_size.is_power_of_two() {
            return Err(Error::InvalidConfig {
                what: "buffer size must be a power of two from 1024 to 16384",
            });
        }
        if entries == 0 || entries > (1 << 24) {
            return Err(Error::InvalidConfig {
                what: "pool entries must be from 1 to 2^24",
            });
        }
        let n = entries as usize;
        let size = n * buf_size as usize;
        let phys_off = (n * 4).next_multiple_of(8);
        let private = PrivateMem::alloc(platform, phys_off + n * 8)?;
        let region = platform.dma_alloc(size)?;
        if region.len() < size {
            // SAFETY: fresh from this platform, never given to the device.
            unsafe { platform.dma_free(region) };
            return Err(Error::Translation {
                what: "a DMA region shorter than requested",
            });
        }
        let base = region.virt();
        let tables = private.ptr();
        // SAFETY: both offsets lie inside the private region (allocated above with room for
        // both), which is 4096-byte aligned, so the u32 stack and the u64 table are aligned too.
        let (stack, phys) = unsafe { (tables.cast::<u32>(), tables.add(phys_off).cast::<u64>()) };
        let mut pool = Mempool {
            core: PoolCore {
                layout: BufLayout {
                    base,
                    buf_size,
                    entries,
                    phys,
                },
                free: spin::Mutex::new(FreeStack {
                    stack,
                    top: 0,
                    cap: entries,
                }),
                leak: AtomicBool::new(false),
            },
            platform: platform.clone(),
            region: Some(region),
            _private: private,
        };
        debug_assert!(DMA_PAGE_SIZE.is_multiple_of(buf_size as usize));
        for i in 0..entries {
            let start = pool.core.layout.buf_ptr(i).as_ptr();
            // SAFETY-free arithmetic: the last byte of buffer i, still inside the region.
            let last = start.wrapping_add(buf_size as usize - 1);
            let (Some(a), Some(b)) = (platform.virt_to_phys(start), platform.virt_to_phys(last))
            else {
                return Err(Error::Translation {
                    what: "a pool buffer",
                });
            };
            if a.checked_add(u64::from(buf_size) - 1) != Some(b) {
                return Err(Error::Translation {
                    what: "a pool buffer that is not contiguous",
                });
            }
            // SAFETY: i < entries: inside the table, which only this constructor writes.
            unsafe { phys.as_ptr().add(i as usize).write(a) };
            // Stack order: index 0 on top, so buffers are handed out in address order.
            // SAFETY: entries - 1 - i < entries.
            unsafe { stack.as_ptr().add((entries - 1 - i) as usize).write(i) };
        }
        pool.core.free.get_mut().top = entries;
        Ok(pool)
    }

    /// Allocates one buffer as an empty packet (length 0), or `None` when the pool is empty.
    pub fn alloc(&self) -> Option<Packet<'_>> {
        let mut index = [0u32];
        (self.core.alloc_indices(&mut index) == 1)
            .then(|| Packet::from_raw(&self.core, index[0], 0))
    }

    /// Fills `out` with up to `n` packets of length `len` (clamped to the buffer size); returns
    /// how many were added. Takes the pool lock once.
    pub fn alloc_batch<'a, const N: usize>(
        &'a self,
        out: &mut heapless::Vec<Packet<'a>, N>,
        n: usize,
        len: usize,
    ) -> usize {
        let mut indices = [0u32; 64];
        let want = n.min(N - out.len());
        let len = len.min(self.core.buf_size() as usize) as u32;
        let mut added = 0;
        while added < want {
            let chunk = (want - added).min(indices.len());
            let got = self.core.alloc_indices(&mut indices[..chunk]);
            for &index in &indices[..got] {
                // Capacity was checked above (want <= N - len), so push cannot fail.
                let _ = out.push(Packet::from_raw(&self.core, index, len));
            }
            added += got;
            if got < chunk {
                break;
            }
        }
        added
    }

    /// Number of free buffers.
    pub fn free_count(&self) -> usize {
        self.core.free_count()
    }

    /// Number of buffers in the pool.
    pub fn capacity(&self) -> usize {
        self.core.layout.entries as usize
    }

    /// Buffer size in bytes.
    pub fn buf_size(&self) -> u32 {
        self.core.buf_size()
    }

    pub(crate) fn core(&self) -> &PoolCore {
        &self.core
    }
}

impl<P: Platform> Drop for Mempool<P> {
    fn drop(&mut self) {
        if let Some(region) = self.region.take() {
            if self.core.leak.load(Ordering::Relaxed) {
                // A queue failed to stop the device: it may still write here. Leak it.
                let _leaked = region; // never passed to dma_free
                return;
            }
            // SAFETY: the region came from this platform; no Packet or queue can outlive the
            // pool (they borrow it), so neither the CPU nor the device uses it any more.
            unsafe { self.platform.dma_free(region) };
        }
    }
}

/// A packet buffer owned by the program: derefs to the frame bytes, goes back to its pool on drop.
///
/// It is `Send`: a packet received on one core can be dropped or sent on another.
#[repr(C, align(32))]
pub struct Packet<'a> {
    data: NonNull<u8>,
    pool: &'a PoolCore,
    /// The buffer index in bits 23:0 (pools have at most 2^24 buffers), the receive offload
    /// flags in bits 31:24 ([`crate::offload`]; 0 without offloads).
    id: u32,
    /// The length (buffers are at most 16 KiB). Right after `id`, and `vlan` after it, so that
    /// receive writes all three with one store (the vector path builds four such words in two
    /// registers, [`Packet::from_meta`]). 32-byte aligned, so that arrays of packets are
    /// indexed with a scaled register.
    len: u16,
    /// The stripped VLAN tag (0 without offloads).
    vlan: u16,
}

// SAFETY: a Packet exclusively owns its buffer (its index was handed out once by the pool), and
// returning it goes through the pool's mutex, so moving it to another thread is sound.
unsafe impl Send for Packet<'_> {}
// SAFETY: `&Packet` only gives shared access to the bytes.
unsafe impl Sync for Packet<'_> {}

/// Asked for a packet length larger than its buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

impl core::fmt::Display for TooLong {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("packet length exceeds the buffer size")
    }
}

impl<'a> Packet<'a> {
    #[inline(always)]
    pub(crate) fn from_raw(pool: &'a PoolCore, index: u32, len: u32) -> Self {
        Self::from_parts(pool, pool.layout.buf_ptr(index), index, len)
    }

    /// A packet for buffer `index` of `pool` whose first byte is at `data` (the caller computed
    /// it with the pool's [`BufLayout::buf_ptr`]) and that now owns the index.
    #[inline(always)]
    pub(crate) fn from_parts(pool: &'a PoolCore, data: NonNull<u8>, index: u32, len: u32) -> Self {
        Self::from_rx(pool, data, index, len as u16, 0, 0)
    }

    /// Where [`Packet::from_meta`]'s word keeps the length field; below it, `id`.
    pub(crate) const META_LEN_SHIFT: u32 = 32;
    const INDEX_MASK: u32 = (1 << 24) - 1;

    /// As [`Packet::from_parts`] for a received frame of `len` (at most the buffer size) bytes,
    /// with the receive offload flags `flags` ([`crate::offload`]) and the stripped VLAN tag.
    #[inline(always)]
    pub(crate) fn from_rx(
        pool: &'a PoolCore,
        data: NonNull<u8>,
        index: u32,
        len: u16,
        flags: u8,
        vlan: u16,
    ) -> Self {
        debug_assert_eq!(data, pool.layout.buf_ptr(index));
        debug_assert!(index <= Self::INDEX_MASK);
        Packet {
            data,
            pool,
            id: index | u32::from(flags) << 24,
            len,
            vlan,
        }
    }

    /// A packet from its fields in one word, `id | len << 32 | vlan << 48` (the vector receive
    /// path builds four at once, without flags and VLAN tags); the index in it must be owned, `data` its
    /// buffer, the length at most its size.
    #[cfg_attr(
        not(all(target_arch = "x86_64", target_feature = "sse2", not(miri))),
        allow(dead_code)
    )]
    #[inline(always)]
    pub(crate) fn from_meta(pool: &'a PoolCore, data: NonNull<u8>, meta: u64) -> Self {
        let packet = Packet {
            data,
            pool,
            id: meta as u32,
            len: (meta >> Self::META_LEN_SHIFT) as u16,
            vlan: (meta >> 48) as u16,
        };
        debug_assert_eq!(data, pool.layout.buf_ptr(packet.index()));
        debug_assert!(packet.len() <= pool.layout.buf_size() as usize);
        packet
    }

    /// The pool, buffer index and length, without giving up ownership.
    #[inline(always)]
    pub(crate) fn raw_parts(&self) -> (&'a PoolCore, u32, u32) {
        (self.pool, self.index(), self.len() as u32)
    }

    /// The receive offload flags and the stripped VLAN tag ([`crate::offload`]).
    #[inline(always)]
    pub(crate) fn rx_parts(&self) -> (u8, u16) {
        ((self.id >> 24) as u8, self.vlan)
    }

    /// The buffer index this packet owns.
    #[inline(always)]
    fn index(&self) -> u32 {
        self.id & Self::INDEX_MASK
    }

    /// Frame length in bytes.
    #[inline(always)]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// True for a zero-length packet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the underlying buffer: the largest length this packet can have.
    pub fn capacity(&self) -> usize {
        self.pool.buf_size() as usize
    }

    /// Sets the frame length (bytes beyond the old length keep whatever the buffer held).
    pub fn set_len(&mut self, len: usize) -> Result<(), TooLong> {
        if len > self.capacity() {
            return Err(TooLong);
        }
        // `len <= capacity <= 16 KiB`: it fits the field's 16 bits.
        self.len = len as u16;
        Ok(())
    }

    /// Bus address of the frame's first byte (what a descriptor carries).
    pub fn phys(&self) -> u64 {
        self.pool.phys(self.index())
    }
}

impl Deref for Packet<'_> {
    type Target = [u8];
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        // SAFETY: `data` points to this packet's buffer of `buf_size >= len` bytes, initialised
        // (the region is zeroed at allocation), owned exclusively by this packet, and the device
        // does not write it while it is not in a ring.
        unsafe { core::slice::from_raw_parts(self.data.as_ptr(), self.len()) }
    }
}

impl DerefMut for Packet<'_> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` makes the access unique.
        unsafe { core::slice::from_raw_parts_mut(self.data.as_ptr(), self.len()) }
    }
}

impl Drop for Packet<'_> {
    fn drop(&mut self) {
        self.pool.free_indices(&[self.index()]);
    }
}

impl core::fmt::Debug for Packet<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Packet")
            .field("index", &self.index())
            .field("len", &self.len())
            .finish()
    }
}

/// A platform for the data path's unit tests: registers in a map (a read returns the last value
/// written), DMA memory from the heap with bus address = virtual address, no device behind it.
/// Tests play the device by writing descriptors themselves.
#[cfg(test)]
pub(crate) mod fake {
    extern crate std;

    use std::alloc::{alloc_zeroed, dealloc, Layout};
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use std::vec::Vec;

    use core::ptr::NonNull;
    use core::time::Duration;

    use crate::platform::{DmaError, DmaRegion, Platform, PrivateRegion};

    #[derive(Clone, Default)]
    pub(crate) struct FakePlatform {
        regs: Arc<Mutex<BTreeMap<u32, u32>>>,
        /// Writes seen, in order.
        writes: Arc<Mutex<Vec<(u32, u32)>>>,
        /// Live DMA regions (by start address: pointer, length): what a hostile device may
        /// scribble on.
        dma: Arc<Mutex<BTreeMap<usize, (Raw, usize)>>>,
        /// Bytes the next `dma_alloc` reports less than asked (a platform breaking its word).
        shorten: Arc<Mutex<usize>>,
    }

    impl FakePlatform {
        /// Every register write so far, in order.
        pub(crate) fn writes(&self) -> Vec<(u32, u32)> {
            self.writes.lock().unwrap().clone()
        }

        /// Makes the next `dma_alloc` report a region `by` bytes shorter than asked.
        pub(crate) fn shorten_next_dma(&self, by: usize) {
            *self.shorten.lock().unwrap() = by;
        }

        /// Number of DMA regions allocated and not freed.
        pub(crate) fn live_dma_regions(&self) -> usize {
            self.dma.lock().unwrap().len()
        }

        /// Plays a hostile device: calls `f(offset, byte)` for every byte of every live DMA
        /// region, and stores what it returns there.
        pub(crate) fn scribble(&self, mut f: impl FnMut(usize, u8) -> u8) {
            for &(Raw(start), len) in self.dma.lock().unwrap().values() {
                for k in 0..len {
                    // SAFETY: k < len: inside the region.
                    let p = unsafe { start.add(k) };
                    // SAFETY: inside a live region of this platform (tracked from dma_alloc to
                    // dma_free); the test calls this while it holds no reference into DMA
                    // memory (packets are only touched between calls), as a device would.
                    unsafe { p.write_volatile(f(k, p.read_volatile())) };
                }
            }
        }
    }

    /// A pointer to a live DMA region (kept with its provenance for `scribble`).
    #[derive(Clone, Copy)]
    struct Raw(*mut u8);
    // SAFETY: only dereferenced by `scribble`, under the map's mutex, while the region is live.
    unsafe impl Send for Raw {}

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size.max(1), 4096).unwrap()
    }

    // SAFETY: MMIO touches only the map; DMA regions are fresh zeroed heap blocks, 4096-aligned,
    // freed only in dma_free, and the identity bus address is contiguous everywhere. No device
    // ever accesses them (the tests write descriptors themselves).
    unsafe impl Platform for FakePlatform {
        fn read32(&self, offset: u32) -> u32 {
            self.regs.lock().unwrap().get(&offset).copied().unwrap_or(0)
        }

        unsafe fn write32(&self, offset: u32, value: u32) {
            self.regs.lock().unwrap().insert(offset, value);
            self.writes.lock().unwrap().push((offset, value));
        }

        fn dma_alloc(&self, size: usize) -> Result<DmaRegion, DmaError> {
            // SAFETY: the layout has a non-zero size.
            let ptr = unsafe { alloc_zeroed(layout(size)) };
            let ptr = NonNull::new(ptr).ok_or(DmaError::OutOfMemory)?;
            self.dma
                .lock()
                .unwrap()
                .insert(ptr.as_ptr() as usize, (Raw(ptr.as_ptr()), size));
            let short = core::mem::take(&mut *self.shorten.lock().unwrap());
            // SAFETY: fresh zeroed block of at least the reported bytes, 4096-aligned, ours
            // until dma_free. The cookie keeps the real size for dealloc.
            Ok(unsafe { DmaRegion::new(ptr, size.saturating_sub(short), size) })
        }

        unsafe fn dma_free(&self, region: DmaRegion) {
            self.dma
                .lock()
                .unwrap()
                .remove(&(region.virt().as_ptr() as usize));
            // SAFETY: allocated in dma_alloc with the layout of the size kept in the cookie.
            unsafe { dealloc(region.virt().as_ptr(), layout(region.cookie())) };
        }

        fn private_alloc(&self, size: usize) -> Result<PrivateRegion, DmaError> {
            // SAFETY: the layout has a non-zero size.
            let ptr = unsafe { alloc_zeroed(layout(size)) };
            let ptr = NonNull::new(ptr).ok_or(DmaError::OutOfMemory)?;
            // SAFETY: fresh zeroed block, 4096-aligned, ours until private_free; never
            // listed among the DMA regions, so `scribble` (the device) never reaches it.
            Ok(unsafe { PrivateRegion::new(ptr, size, 0) })
        }

        unsafe fn private_free(&self, region: PrivateRegion) {
            // SAFETY: allocated in private_alloc with this very layout (caller contract).
            unsafe { dealloc(region.virt().as_ptr(), layout(region.len())) };
        }

        fn virt_to_phys(&self, virt: *const u8) -> Option<u64> {
            Some(virt as u64)
        }

        fn delay(&self, _duration: Duration) {}

        fn pci_device_id(&self) -> u16 {
            0x10FB
        }
    }
}

#[cfg(test)]
mod line_tests {
    use super::fake::FakePlatform;
    use super::*;

    #[test]
    fn the_lines_of_one_pools_free_stack_hold_nothing_of_its_neighbours() {
        extern crate std;
        let p = FakePlatform::default();
        let pools: std::vec::Vec<Mempool<FakePlatform>> =
            (0..3).map(|_| Mempool::new(&p, 8, 2048).unwrap()).collect();
        let size = core::mem::size_of::<Mempool<FakePlatform>>();
        for (i, a) in pools.iter().enumerate() {
            // The 128-byte blocks the core (free stack and its lock) occupies.
            let start = core::ptr::from_ref(a.core()) as usize;
            let end = start + core::mem::size_of::<PoolCore>();
            let (lo, hi) = (start / 128 * 128, end.div_ceil(128) * 128);
            for (j, b) in pools.iter().enumerate().filter(|&(j, _)| j != i) {
                let b0 = core::ptr::from_ref(b) as usize;
                assert!(
                    b0 + size <= lo || b0 >= hi,
                    "pool {j} shares a line with pool {i}'s lock"
                );
            }
        }
    }
}

#[cfg(test)]
mod packet_tests {
    use super::fake::FakePlatform;
    use super::*;

    #[test]
    fn a_packets_fields_survive_every_way_of_building_and_changing_it() {
        // Arrays of packets are indexed with a scaled register: 32 bytes each.
        assert_eq!(core::mem::size_of::<Packet<'_>>(), 32);
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 1 << 10, 16384).unwrap();
        let core = pool.core();
        let index = (1 << 10) - 1;
        let data = core.layout.buf_ptr(index);
        for (len, flags, vlan) in [(1, 0, 0), (16384, 0xFF, 0xFFFF), (60, 0x81, 0x0123)] {
            let p = Packet::from_rx(core, data, index, len, flags, vlan);
            assert_eq!(p.raw_parts().1, index);
            assert_eq!((p.len(), p.rx_parts()), (usize::from(len), (flags, vlan)));
            let m = Packet::from_meta(core, data, u64::from(index) | u64::from(len) << 32);
            assert_eq!(
                (m.raw_parts().1, m.len(), m.rx_parts()),
                (index, p.len(), (0, 0))
            );
            let mut p = p;
            p.set_len(17).unwrap();
            assert_eq!(
                (p.raw_parts().1, p.len(), p.rx_parts()),
                (index, 17, (flags, vlan))
            );
            assert_eq!(p.set_len(16385), Err(TooLong));
            core::mem::forget((p, m)); // the index was never taken from the pool
        }
    }
}
