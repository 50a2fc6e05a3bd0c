//! Simulated DMA memory: host-heap allocations with scattered, non-contiguous bus addresses.
//!
//! Every [`DMA_PAGE_SIZE`] chunk of a region gets its own bus "slot" (2 MiB aligned). Slots of one
//! region are handed out in reverse order with a free slot between neighbours, so a buffer that
//! crosses a 2 MiB boundary in virtual memory is never contiguous in bus space.
//!
//! All device-side accesses go through raw pointers that keep the provenance of the original
//! allocation; no reference into DMA memory is ever created here.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::BTreeMap;
use std::ptr::NonNull;

use ixgbe_core::DMA_PAGE_SIZE;

/// First bus slot (slot * 2 MiB = 0x40_0000_0000): far from typical heap addresses.
const FIRST_SLOT: u64 = 0x2_0000;
const SLOT_SHIFT: u32 = 21;

/// One live allocation.
struct Region {
    /// Pointer returned by the allocator (keeps the allocation's provenance).
    host: *mut u8,
    len: usize,
    layout: Layout,
    /// Bus slot of each chunk.
    slots: Vec<u64>,
}

/// A cached bus-to-host translation for one chunk (or window).
#[derive(Clone, Copy)]
struct Chunk {
    bus: u64,
    len: u64,
    host: *mut u8,
}

impl Chunk {
    /// An empty entry: no address is inside it.
    const NONE: Chunk = Chunk {
        bus: 0,
        len: 0,
        host: std::ptr::null_mut(),
    };
}

/// Entries of the translation cache, indexed by the bus slot counted from [`FIRST_SLOT`]:
/// the first 128 slots handed out (every ring and buffer chunk of `ixgbe-fwd`'s two ports
/// with two queues: 60 slots) never evict each other, so the data path always hits. With 16
/// entries by the slot's low bits, which chunks collided depended on the allocation order:
/// queue 1's lane missed on 3 % of its time (`translate_slow`), queue 0's never.
const CACHE_ENTRIES: usize = 128;

fn cache_index(bus: u64) -> usize {
    ((bus >> SLOT_SHIFT).wrapping_sub(FIRST_SLOT)) as usize % CACHE_ENTRIES
}

/// The DMA address space of a simulation.
pub(crate) struct DmaSpace {
    regions: Vec<Option<Region>>,
    /// bus slot -> (region id, chunk index)
    by_slot: BTreeMap<u64, (usize, usize)>,
    /// host start address -> region id
    by_host: BTreeMap<usize, usize>,
    next_slot: u64,
    /// Recently used chunks and windows; entry `(bus >> SLOT_SHIFT) % CACHE_ENTRIES` holds the
    /// last one looked up for such an address.
    cache: [Chunk; CACHE_ENTRIES],
    /// Foreign memory mapped at fixed bus addresses (a VM's RAM under vfio-user), by bus start.
    windows: BTreeMap<u64, Chunk>,
    /// Look-ups the cache did not answer (tests check the data path's working set hits).
    misses: u64,
}

// SAFETY: the raw pointers are owned allocations that only this struct (behind the simulator's
// mutex) dereferences on the device side; they are not tied to any thread.
unsafe impl Send for DmaSpace {}

/// Why a device-side access failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DmaFault {
    pub bus: u64,
    pub len: usize,
}

/// A volatile little-endian u64 read at `p`: one load when aligned (a volatile read of a
/// byte array compiles to eight byte loads; descriptors are aligned, so this is the usual
/// case).
///
/// # Safety
/// `p` must be valid for reading 8 bytes.
#[inline(always)]
unsafe fn read_u64_at(p: *mut u8) -> u64 {
    let p64 = p.cast::<u64>();
    if p64.is_aligned() {
        // SAFETY: 8 valid bytes at `p` (the caller's promise), aligned for a u64.
        return u64::from_le(unsafe { std::ptr::read_volatile(p64) });
    }
    // SAFETY: 8 valid bytes at `p`; unaligned volatile read of plain bytes.
    u64::from_le_bytes(unsafe { std::ptr::read_volatile(p as *const [u8; 8]) })
}

/// A volatile little-endian u64 write at `p`: one store when aligned.
///
/// # Safety
/// `p` must be valid for writing 8 bytes.
#[inline(always)]
unsafe fn write_u64_at(p: *mut u8, val: u64) {
    let p64 = p.cast::<u64>();
    if p64.is_aligned() {
        // SAFETY: 8 valid bytes at `p` (the caller's promise), aligned for a u64.
        unsafe { std::ptr::write_volatile(p64, val.to_le()) };
        return;
    }
    // SAFETY: 8 valid bytes at `p`; byte-array volatile write has no alignment requirement.
    unsafe { std::ptr::write_volatile(p as *mut [u8; 8], val.to_le_bytes()) };
}

/// `copy_nonoverlapping(src, dst, len)`; a small frame (32..=64 bytes, a minimum-size packet)
/// as two overlapping 32-byte moves instead of a call to `memcpy`.
///
/// # Safety
/// As `copy_nonoverlapping`: `src` valid for reading and `dst` for writing `len` bytes, the
/// two ranges disjoint.
#[inline(always)]
unsafe fn copy_bytes(src: *const u8, dst: *mut u8, len: usize) {
    if (32..=64).contains(&len) {
        // SAFETY: `32 <= len`: bytes `0..32` and `len - 32..len` are inside both ranges (the
        // caller's promise); both halves are read before either is written, unaligned.
        unsafe {
            let head = std::ptr::read_unaligned(src.cast::<[u8; 32]>());
            let tail = std::ptr::read_unaligned(src.add(len - 32).cast::<[u8; 32]>());
            std::ptr::write_unaligned(dst.cast::<[u8; 32]>(), head);
            std::ptr::write_unaligned(dst.add(len - 32).cast::<[u8; 32]>(), tail);
        }
        return;
    }
    // SAFETY: the caller's promise.
    unsafe { std::ptr::copy_nonoverlapping(src, dst, len) };
}

impl DmaSpace {
    pub fn new() -> Self {
        Self {
            regions: Vec::new(),
            by_slot: BTreeMap::new(),
            by_host: BTreeMap::new(),
            next_slot: FIRST_SLOT,
            cache: [Chunk::NONE; CACHE_ENTRIES],
            windows: BTreeMap::new(),
            misses: 0,
        }
    }

    /// Maps `len` bytes of foreign memory at `host` to bus addresses `[bus, bus + len)`.
    ///
    /// Fails (false) if the range is empty, wraps, or overlaps a window already mapped.
    ///
    /// # Safety
    ///
    /// `host` must be valid for reads and writes of `len` bytes until [`Self::unmap_window`]
    /// removes the window (or the space is dropped), and nothing else may hold a Rust reference
    /// to those bytes meanwhile (the device side writes them through raw pointers).
    pub unsafe fn map_window(&mut self, bus: u64, len: usize, host: *mut u8) -> bool {
        let Some(end) = bus.checked_add(len as u64).filter(|_| len > 0) else {
            return false;
        };
        if let Some((&b, c)) = self.windows.range(..end).next_back() {
            if b + c.len > bus {
                return false;
            }
        }
        self.windows.insert(
            bus,
            Chunk {
                bus,
                len: len as u64,
                host,
            },
        );
        self.cache = [Chunk::NONE; CACHE_ENTRIES];
        true
    }

    /// Removes every window that starts inside `[bus, bus + len)`; returns how many.
    pub fn unmap_window(&mut self, bus: u64, len: u64) -> usize {
        let end = bus.saturating_add(len);
        let starts: Vec<u64> = self.windows.range(bus..end).map(|(&b, _)| b).collect();
        for b in &starts {
            self.windows.remove(b);
        }
        self.cache = [Chunk::NONE; CACHE_ENTRIES];
        starts.len()
    }

    /// Removes every window (the client went away).
    pub fn unmap_all_windows(&mut self) {
        self.windows.clear();
        self.cache = [Chunk::NONE; CACHE_ENTRIES];
    }

    /// Allocates `size` zeroed bytes; returns (host pointer, region id).
    pub fn alloc(&mut self, size: usize) -> Option<(NonNull<u8>, usize)> {
        if size == 0 {
            return None;
        }
        let len = size.checked_add(4095)? & !4095;
        let layout = Layout::from_size_align(len, 4096).ok()?;
        // SAFETY: `layout` has a non-zero size.
        let host = unsafe { alloc_zeroed(layout) };
        let nn = NonNull::new(host)?;
        let chunks = len.div_ceil(DMA_PAGE_SIZE);
        // Reverse order with a gap slot between consecutive chunks.
        let base = self.next_slot;
        let slots: Vec<u64> = (0..chunks as u64)
            .map(|i| base + 2 * (chunks as u64 - 1 - i))
            .collect();
        self.next_slot += 2 * chunks as u64 + 1;
        let id = self.regions.len();
        for (i, s) in slots.iter().enumerate() {
            self.by_slot.insert(*s, (id, i));
        }
        self.by_host.insert(host as usize, id);
        self.regions.push(Some(Region {
            host,
            len,
            layout,
            slots,
        }));
        Some((nn, id))
    }

    /// Frees region `id` if `virt` is its start. Returns false if it was not live.
    pub fn free(&mut self, id: usize, virt: *const u8) -> bool {
        let Some(slot) = self.regions.get_mut(id) else {
            return false;
        };
        match slot {
            Some(r) if std::ptr::eq(r.host, virt) => {}
            _ => return false,
        }
        let r = slot.take().expect("checked above");
        for s in &r.slots {
            self.by_slot.remove(s);
        }
        self.by_host.remove(&(r.host as usize));
        self.cache = [Chunk::NONE; CACHE_ENTRIES];
        // SAFETY: `r.host` was allocated with `r.layout` by `alloc` and is freed only once
        // (the region entry has just been taken out).
        unsafe { dealloc(r.host, r.layout) };
        true
    }

    /// Host virtual address -> bus address.
    pub fn virt_to_bus(&self, virt: *const u8) -> Option<u64> {
        let addr = virt as usize;
        let (&start, &id) = self.by_host.range(..=addr).next_back()?;
        let r = self.regions.get(id)?.as_ref()?;
        let off = addr - start;
        if off >= r.len {
            return None;
        }
        let chunk = off / DMA_PAGE_SIZE;
        Some((r.slots[chunk] << SLOT_SHIFT) + (off % DMA_PAGE_SIZE) as u64)
    }

    /// Translates `[bus, bus + len)` to a host pointer; the range must lie in one chunk.
    #[inline(always)]
    fn translate(&mut self, bus: u64, len: usize) -> Result<*mut u8, DmaFault> {
        let c = &self.cache[cache_index(bus)];
        let off = bus.wrapping_sub(c.bus);
        if off < c.len && len as u64 <= c.len - off {
            // SAFETY: the offset is inside the cached chunk or window (an empty entry has
            // length 0 and matches nothing), which lies inside a live allocation or a window
            // `map_window`'s caller promised valid; entries are dropped when either goes.
            return Ok(unsafe { c.host.add(off as usize) });
        }
        self.translate_slow(bus, len)
    }

    /// [`Self::translate`] when the cache entry for `bus` does not hold its chunk.
    #[inline(never)]
    fn translate_slow(&mut self, bus: u64, len: usize) -> Result<*mut u8, DmaFault> {
        self.misses += 1;
        let fault = DmaFault { bus, len };
        if let Some((_, w)) = (!self.windows.is_empty())
            .then(|| self.windows.range(..=bus).next_back())
            .flatten()
        {
            let w = *w;
            if bus - w.bus < w.len {
                self.cache[cache_index(bus)] = w;
                if bus - w.bus + len as u64 > w.len {
                    return Err(fault);
                }
                // SAFETY: `bus - w.bus + len <= w.len`: inside the window `map_window`'s caller
                // promised valid.
                return Ok(unsafe { w.host.add((bus - w.bus) as usize) });
            }
        }
        let slot = bus >> SLOT_SHIFT;
        let &(id, ci) = self.by_slot.get(&slot).ok_or(fault)?;
        let r = self.regions[id].as_ref().ok_or(fault)?;
        let clen = (r.len - ci * DMA_PAGE_SIZE).min(DMA_PAGE_SIZE);
        // SAFETY: `ci * DMA_PAGE_SIZE < r.len`, so the chunk start is inside the allocation.
        let chost = unsafe { r.host.add(ci * DMA_PAGE_SIZE) };
        let chunk = Chunk {
            bus: slot << SLOT_SHIFT,
            len: clen as u64,
            host: chost,
        };
        self.cache[cache_index(bus)] = chunk;
        let off = bus - chunk.bus;
        if off + len as u64 > chunk.len {
            return Err(fault);
        }
        // SAFETY: `off + len <= clen`, so the pointer stays inside the chunk.
        Ok(unsafe { chost.add(off as usize) })
    }

    /// Device read of `len` bytes at `bus`, appended to `dst` (no zero-filling first).
    #[inline(always)]
    pub fn read_append(&mut self, bus: u64, len: usize, dst: &mut Vec<u8>) -> Result<(), DmaFault> {
        let p = self.translate(bus, len)?;
        dst.reserve(len);
        let old = dst.len();
        // SAFETY: `p` is valid for `len` bytes inside a live allocation (checked by
        // `translate`); `reserve` made room for `len` more bytes after `old` in `dst`, a
        // distinct Rust buffer, and `set_len` covers exactly the bytes just initialised.
        unsafe {
            copy_bytes(p as *const u8, dst.as_mut_ptr().add(old), len);
            dst.set_len(old + len);
        }
        Ok(())
    }

    /// The host address of `[bus, bus + len)` where it lies in one chunk (or window), as a
    /// device access translates it (so `translate(bus + k, m)` is this pointer plus `k` for
    /// every `k + m <= len`): for the model reading a range (a descriptor ring) many times
    /// within one register write with one look-up. `None` where a device access of
    /// the whole range would fault. The address stays valid until a region is freed or a
    /// window unmapped, which no device access does.
    #[inline(always)]
    pub fn map_range(&mut self, bus: u64, len: usize) -> Option<*mut u8> {
        self.translate(bus, len).ok()
    }

    /// Device write of `src` at `bus`.
    #[inline(always)]
    pub fn write(&mut self, bus: u64, src: &[u8]) -> Result<(), DmaFault> {
        let p = self.translate(bus, src.len())?;
        // SAFETY: `p` is valid for `src.len()` bytes inside a live allocation; `src` is not DMA
        // memory handed out by this space to the device path, so the ranges do not overlap.
        unsafe { copy_bytes(src.as_ptr(), p, src.len()) };
        Ok(())
    }

    /// Device read of a little-endian u64.
    #[inline(always)]
    pub fn read_u64(&mut self, bus: u64) -> Result<u64, DmaFault> {
        let p = self.translate(bus, 8)?;
        // SAFETY: 8 valid bytes at `p`.
        Ok(unsafe { read_u64_at(p) })
    }

    /// Device write of a little-endian u32.
    #[inline(always)]
    pub fn write_u32(&mut self, bus: u64, val: u32) -> Result<(), DmaFault> {
        let p = self.translate(bus, 4)?;
        let p32 = p.cast::<u32>();
        if p32.is_aligned() {
            // SAFETY: 4 valid bytes at `p`, aligned for a u32 (one store instead of four).
            unsafe { std::ptr::write_volatile(p32, val.to_le()) };
            return Ok(());
        }
        // SAFETY: 4 valid bytes at `p`; byte-array volatile write has no alignment requirement.
        unsafe { std::ptr::write_volatile(p as *mut [u8; 4], val.to_le_bytes()) };
        Ok(())
    }

    /// Device write of a little-endian u64.
    #[inline(always)]
    pub fn write_u64(&mut self, bus: u64, val: u64) -> Result<(), DmaFault> {
        let p = self.translate(bus, 8)?;
        // SAFETY: 8 valid bytes at `p`.
        unsafe { write_u64_at(p, val) };
        Ok(())
    }

    /// Device read of a 16-byte descriptor at `bus`: its two little-endian u64 words, with one
    /// translation. A fault is the one [`Self::read_u64`] of the first failing word reports.
    #[inline(always)]
    pub fn read_desc(&mut self, bus: u64) -> Result<(u64, u64), DmaFault> {
        if let Ok(p) = self.translate(bus, 16) {
            // SAFETY: 16 valid bytes at `p`.
            return Ok(unsafe { (read_u64_at(p), read_u64_at(p.add(8))) });
        }
        Ok((self.read_u64(bus)?, self.read_u64(bus + 8)?))
    }

    /// A receive into one descriptor at `desc`: reads the buffer address (its first word),
    /// writes `data` there, then writes the descriptor back as `lo`, `hi`; what
    /// [`Self::read_u64`], [`Self::write`] and [`Self::write_desc`] in that order do, with one
    /// translation of the descriptor. `Err`: the descriptor read's fault (nothing written);
    /// `Ok(Some(f))`: the buffer write's fault (the descriptor is still written back).
    #[inline(always)]
    pub fn receive_one(
        &mut self,
        desc: u64,
        data: &[u8],
        lo: u64,
        hi: u64,
    ) -> Result<Option<DmaFault>, DmaFault> {
        let Ok(p) = self.translate(desc, 16) else {
            let buf = self.read_u64(desc)?;
            let fault = self.write(buf, data).err();
            self.write_desc(desc, lo, hi);
            return Ok(fault);
        };
        // SAFETY: 16 valid bytes at `p` (checked by `translate`); nothing below frees or
        // unmaps memory, so `p` stays valid across the buffer write, which may even land on
        // the descriptor itself (raw pointer accesses, in the device's order).
        let buf = unsafe { read_u64_at(p) };
        let fault = self.write(buf, data).err();
        // SAFETY: as above.
        unsafe {
            write_u64_at(p, lo);
            write_u64_at(p.add(8), hi);
        }
        Ok(fault)
    }

    /// [`Self::receive_one`] for a descriptor whose host address is known (`desc`, from
    /// [`Self::map_range`]): reads the buffer address, writes `data` there, writes the
    /// descriptor back as `lo`, `hi`; the buffer write's fault, if any (the descriptor is
    /// still written back).
    ///
    /// # Safety
    /// `desc` must be valid for reading and writing 16 bytes (a pointer [`Self::map_range`]
    /// gave for a range covering the descriptor, no region freed or window unmapped since).
    #[inline(always)]
    pub(crate) unsafe fn receive_at(
        &mut self,
        desc: *mut u8,
        data: &[u8],
        lo: u64,
        hi: u64,
    ) -> Option<DmaFault> {
        // SAFETY: 16 valid bytes at `desc` (the caller's promise); the buffer write between
        // the accesses goes through raw pointers too and frees nothing.
        let buf = unsafe { read_u64_at(desc) };
        let fault = self.write(buf, data).err();
        // SAFETY: as above.
        unsafe {
            write_u64_at(desc, lo);
            write_u64_at(desc.add(8), hi);
        }
        fault
    }

    /// Device write of a 16-byte descriptor at `bus` (`lo` then `hi`, little-endian), with one
    /// translation; where the 16 bytes are not in one chunk, each word as [`Self::write_u64`]
    /// would (a word outside DMA memory is not written).
    #[inline(always)]
    pub fn write_desc(&mut self, bus: u64, lo: u64, hi: u64) {
        if let Ok(p) = self.translate(bus, 16) {
            // SAFETY: 16 valid bytes at `p`.
            unsafe {
                write_u64_at(p, lo);
                write_u64_at(p.add(8), hi);
            }
            return;
        }
        let _ = self.write_u64(bus, lo);
        let _ = self.write_u64(bus + 8, hi);
    }

    /// A bus address inside some live region or window, chosen by `r` (a random number); `None`
    /// when the device has no memory at all.
    pub fn random_target(&self, r: u64) -> Option<u64> {
        let chunks = self.by_slot.len() as u64;
        let total = chunks + self.windows.len() as u64;
        if total == 0 {
            return None;
        }
        let pick = r % total;
        let off = r >> 20;
        if pick < chunks {
            let (&slot, &(id, ci)) = self.by_slot.iter().nth(pick as usize)?;
            let region = self.regions.get(id)?.as_ref()?;
            let clen = (region.len - ci * DMA_PAGE_SIZE).min(DMA_PAGE_SIZE) as u64;
            Some((slot << SLOT_SHIFT) + off % clen)
        } else {
            let w = self.windows.values().nth((pick - chunks) as usize)?;
            Some(w.bus + off % w.len)
        }
    }

    /// Does `[bus, bus+len)` touch region `id`?
    pub fn bus_in_region(&self, bus: u64, id: usize) -> bool {
        self.by_slot
            .get(&(bus >> SLOT_SHIFT))
            .is_some_and(|&(rid, _)| rid == id)
    }
}

impl Drop for DmaSpace {
    fn drop(&mut self) {
        for r in self.regions.iter_mut().filter_map(Option::take) {
            // SAFETY: every live region was allocated with its layout and is freed once here.
            unsafe { dealloc(r.host, r.layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `receive_one` does what a descriptor read, a buffer write and a write-back do, also
    /// with the buffer on the descriptor, outside DMA memory, or the descriptor at a chunk's
    /// end.
    #[test]
    fn receive_one_equals_read_write_write_back() {
        let run = |desc_off: u64, buf: Option<u64>, data: &[u8]| {
            let mut out = Vec::new();
            for one in [true, false] {
                let mut dma = DmaSpace::new();
                let (a, _) = dma.alloc(4096).unwrap();
                let bus = dma.virt_to_bus(a.as_ptr()).unwrap();
                let d = bus + desc_off;
                let target = buf.map_or(0xDEAD_0000_0000, |b| bus + b);
                let _ = dma.write_u64(d, target);
                let r = if one {
                    dma.receive_one(d, data, 0x1111, 0x2222)
                } else {
                    dma.read_u64(d).map(|b| {
                        let f = dma.write(b, data).err();
                        dma.write_desc(d, 0x1111, 0x2222);
                        f
                    })
                };
                let mut mem = Vec::new();
                dma.read_append(bus, 4096, &mut mem).unwrap();
                out.push((r, mem));
            }
            assert!(out[0] == out[1], "desc {desc_off} buf {buf:?}");
        };
        let frame: Vec<u8> = (0..60u8).collect();
        run(0, Some(256), &frame);
        run(16, Some(8), &frame); // the frame over the descriptor itself
        run(32, Some(4090), &frame); // the buffer past the end
        run(48, None, &frame);
        run(4088, Some(0), &frame); // the descriptor's second word past the end
        run(4096 - 16, Some(64), &[]);
    }

    /// The small-frame copy copies what `copy_nonoverlapping` copies, for every length around
    /// its range and every offset in a word, and nothing outside it.
    #[test]
    fn copy_bytes_equals_copy_nonoverlapping() {
        let src: Vec<u8> = (0..100u8).map(|k| k.wrapping_mul(37) ^ 0x5A).collect();
        let lens = if cfg!(miri) { 28..=68 } else { 0..=100 };
        for len in lens {
            for at in 0..8.min(100 - len + 1) {
                let (mut a, mut b) = (vec![0xEEu8; 120], vec![0xEEu8; 120]);
                // SAFETY: `at + len <= 100` bytes of `src`, `3 + len <= 103` of `a` and `b`.
                unsafe {
                    copy_bytes(src.as_ptr().add(at), a.as_mut_ptr().add(3), len);
                    std::ptr::copy_nonoverlapping(src.as_ptr().add(at), b.as_mut_ptr().add(3), len);
                }
                assert_eq!(a, b, "len {len} at {at}");
            }
        }
    }

    /// A descriptor read or write with one translation gives what two word accesses give,
    /// aligned or not, and the same fault where the 16 bytes leave DMA memory.
    #[test]
    fn descriptor_accesses_equal_two_word_accesses() {
        let mut dma = DmaSpace::new();
        let (a, _) = dma.alloc(4096).unwrap();
        let bus = dma.virt_to_bus(a.as_ptr()).unwrap();
        for at in [bus, bus + 16, bus + 3, bus + 4088 - 8] {
            dma.write_desc(at, 0x0102_0304_0506_0708, 0x1112_1314_1516_1718);
            assert_eq!(dma.read_u64(at).unwrap(), 0x0102_0304_0506_0708);
            assert_eq!(dma.read_u64(at + 8).unwrap(), 0x1112_1314_1516_1718);
            let two = (dma.read_u64(at).unwrap(), dma.read_u64(at + 8).unwrap());
            assert_eq!(dma.read_desc(at).unwrap(), two);
        }
        // The second word past the end: its fault, and the first word is still written.
        let end = bus + 4096;
        assert_eq!(dma.read_desc(end - 8), Err(dma.read_u64(end).unwrap_err()));
        assert_eq!(
            dma.read_desc(end - 8).unwrap_err(),
            DmaFault { bus: end, len: 8 }
        );
        assert_eq!(
            dma.read_desc(end - 4).unwrap_err(),
            DmaFault {
                bus: end - 4,
                len: 8
            }
        );
        dma.write_desc(end - 8, 7, 9);
        assert_eq!(dma.read_u64(end - 8).unwrap(), 7);
        // u32 writes, unaligned and aligned: little-endian bytes.
        dma.write_u32(bus + 5, 0xA1B2_C3D4).unwrap();
        dma.write_u32(bus + 12, 0x0A0B_0C0D).unwrap();
        let mut got = Vec::new();
        dma.read_append(bus + 5, 11, &mut got).unwrap();
        assert_eq!(got[..4], 0xA1B2_C3D4u32.to_le_bytes());
        assert_eq!(got[7..], 0x0A0B_0C0Du32.to_le_bytes());
        assert!(dma.write_u32(end - 2, 0).is_err());
    }

    #[test]
    fn cached_translations_still_fault_outside_chunks_and_after_free() {
        let mut dma = DmaSpace::new();
        // Two chunks: the region's second chunk has a bus slot of its own, not contiguous.
        let (a, ida) = dma.alloc(DMA_PAGE_SIZE + 4096).unwrap();
        let (b, _) = dma.alloc(4096).unwrap();
        let bus_a = dma.virt_to_bus(a.as_ptr()).unwrap();
        let bus_b = dma.virt_to_bus(b.as_ptr()).unwrap();
        dma.write(bus_a + 8, &[1, 2, 3]).unwrap();
        dma.write_u64(bus_b, 0x0807_0605_0403_0201).unwrap();
        // Unaligned: the same little-endian value as aligned.
        dma.write_u64(bus_b + 19, 0x1817_1615_1413_1211).unwrap();
        assert_eq!(dma.read_u64(bus_b + 19).unwrap(), 0x1817_1615_1413_1211);
        assert_eq!(dma.read_u64(bus_b + 16).unwrap() >> 24, 0x15_1413_1211);
        // Hits in the cache from now on: the same answers.
        for _ in 0..2 {
            let mut got = Vec::new();
            dma.read_append(bus_a + 8, 3, &mut got).unwrap();
            assert_eq!(got, [1, 2, 3]);
            assert_eq!(dma.read_u64(bus_b).unwrap(), 0x0807_0605_0403_0201);
        }
        // Across the end of a chunk, or past a region's end: a fault, cached entry or not.
        let end = bus_a + DMA_PAGE_SIZE as u64;
        let fault = DmaFault {
            bus: end - 4,
            len: 8,
        };
        assert_eq!(dma.read_u64(end - 4), Err(fault));
        assert_eq!(dma.read_u64(end - 4), Err(fault));
        assert_eq!(dma.read_u64(bus_b + 4092).unwrap_err().len, 8);
        assert!(dma.write_u32(bus_b + 4096, 0).is_err());
        // The second chunk works at its own bus address, not right after the first.
        // SAFETY: the region is DMA_PAGE_SIZE + 4096 bytes long.
        let second = dma
            .virt_to_bus(unsafe { a.as_ptr().add(DMA_PAGE_SIZE) })
            .unwrap();
        assert_ne!(second, end);
        dma.write_u32(second, 7).unwrap();
        assert!(dma.write_u32(end, 7).is_err());
        // Appending reads: what is there, after what the buffer held; nothing on a fault.
        let mut buf = vec![9u8];
        dma.read_append(bus_a + 8, 3, &mut buf).unwrap();
        dma.read_append(bus_b, 2, &mut buf).unwrap();
        assert_eq!(buf, [9, 1, 2, 3, 1, 2]);
        assert!(dma.read_append(end - 4, 8, &mut buf).is_err());
        assert_eq!(buf.len(), 6);
        // Freed: the cached chunk goes with it.
        assert!(dma.free(ida, a.as_ptr()));
        assert!(dma.read_u64(bus_a + 8).is_err());
        assert!(dma.write_u32(second, 7).is_err());
        assert_eq!(dma.read_u64(bus_b).unwrap(), 0x0807_0605_0403_0201);
    }

    #[test]
    fn a_working_set_of_up_to_128_slots_hits_after_its_first_pass() {
        let mut dma = DmaSpace::new();
        // 60 one-chunk regions take 120 slots (each with its gap slot): rings and buffers of
        // a few queues, touched in turn as the data path does.
        let bus: Vec<u64> = (0..60)
            .map(|_| {
                let (p, _) = dma.alloc(4096).unwrap();
                dma.virt_to_bus(p.as_ptr()).unwrap()
            })
            .collect();
        for (k, &b) in bus.iter().enumerate() {
            dma.write_u64(b, k as u64).unwrap();
        }
        assert_eq!(dma.misses, 60, "one miss per chunk on its first use");
        for _ in 0..3 {
            for (k, &b) in bus.iter().enumerate() {
                assert_eq!(dma.read_u64(b + 8).unwrap(), 0);
                assert_eq!(dma.read_u64(b).unwrap(), k as u64);
            }
        }
        assert_eq!(dma.misses, 60, "no chunk evicted another");
    }

    #[test]
    fn cached_windows_end_where_they_end_and_go_when_unmapped() {
        let mut dma = DmaSpace::new();
        let mut mem = vec![0u8; 3 << SLOT_SHIFT];
        let host = mem.as_mut_ptr();
        let bus = 0x1_0000_0000u64;
        // SAFETY: `mem` outlives the window (unmapped below) and is only accessed through it.
        assert!(unsafe { dma.map_window(bus, mem.len(), host) });
        // One window over three slots: reachable through any of their cache entries.
        for off in [0u64, 1 << SLOT_SHIFT, (3 << SLOT_SHIFT) - 8] {
            dma.write_u64(bus + off, off + 1).unwrap();
            assert_eq!(dma.read_u64(bus + off).unwrap(), off + 1);
        }
        assert!(dma.read_u64(bus + (3 << SLOT_SHIFT) - 4).is_err());
        assert!(dma.read_u64(bus - 8).is_err());
        assert_eq!(dma.unmap_window(bus, 1), 1);
        assert!(dma.read_u64(bus).is_err());
        assert!(dma.read_u64(bus + (1 << SLOT_SHIFT)).is_err());
        drop(mem);
    }
}
