//! The `Platform` of this bare-metal program: the only glue between ixgbe-core and it.
//!
//! - MMIO: volatile 32-bit accesses to BAR0, identity-mapped uncached (`paging::map_mmio`).
//! - DMA memory: a bump-allocated frame arena of RAM; virtual = physical = bus address (no
//!   IOMMU: the device sees guest-physical addresses). Freed regions are not reused (the
//!   program runs once), but they stop being translated.
//! - Private memory: a second arena. Without an IOMMU nothing stops a device from reaching any
//!   RAM, so "private" here means only that no bus address of it is ever handed out.
//! - Delay: the calibrated TSC.

use core::ptr::NonNull;
use core::sync::atomic::{fence, Ordering};
use core::time::Duration;

use ixgbe_core::heapless::Vec;
use ixgbe_core::{DmaError, DmaRegion, Platform, PrivateRegion};

use crate::time;

const PAGE: usize = 4096;
/// Most regions alive at once per arena (a port takes a pool and one ring per queue).
const MAX_LIVE: usize = 32;

/// A range of RAM handed out page by page, never reused.
struct Arena {
    next: usize,
    end: usize,
    /// Regions not freed yet: (start, length).
    live: Vec<(usize, usize), MAX_LIVE>,
}

impl Arena {
    const fn empty() -> Self {
        Arena {
            next: 0,
            end: 0,
            live: Vec::new(),
        }
    }

    /// `size` bytes rounded up to pages, zeroed.
    fn alloc(&mut self, size: usize) -> Result<(NonNull<u8>, usize), DmaError> {
        let len = size
            .checked_next_multiple_of(PAGE)
            .filter(|&l| l > 0)
            .ok_or(DmaError::Unsupported)?;
        if self.end - self.next < len || self.live.is_full() {
            return Err(DmaError::OutOfMemory);
        }
        let start = self.next;
        self.next += len;
        let _ = self.live.push((start, len));
        let ptr = NonNull::new(start as *mut u8).ok_or(DmaError::OutOfMemory)?;
        // SAFETY: [start, start + len) is RAM of the arena (from the firmware's memory map,
        // identity-mapped, above this program's image), handed out now for the first time.
        unsafe { ptr.as_ptr().write_bytes(0, len) };
        Ok((ptr, len))
    }

    fn free(&mut self, start: usize) {
        self.live.retain(|&(s, _)| s != start);
    }

    fn contains(&self, addr: usize) -> bool {
        self.live.iter().any(|&(s, l)| (s..s + l).contains(&addr))
    }
}

static DMA: spin::Mutex<Arena> = spin::Mutex::new(Arena::empty());
static PRIVATE: spin::Mutex<Arena> = spin::Mutex::new(Arena::empty());

/// Gives the arenas their RAM: `private` bytes from `start` for private memory, the rest up to
/// `end` for DMA. Both page-aligned.
pub fn init_memory(start: usize, private: usize, end: usize) {
    let mut p = PRIVATE.lock();
    p.next = start;
    p.end = start + private;
    let mut d = DMA.lock();
    d.next = start + private;
    d.end = end;
}

/// One PCI function's BAR0 and ID. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BareMetal {
    bar: usize,
    bar_len: usize,
    device_id: u16,
}

impl BareMetal {
    /// A platform for the device whose BAR0 is mapped at `bar` (identity, uncached).
    ///
    /// # Safety
    /// `bar..bar + bar_len` must be the function's BAR0, mapped uncached at that address, with
    /// memory decoding enabled, and used by nothing else.
    pub unsafe fn new(bar: usize, bar_len: usize, device_id: u16) -> Self {
        BareMetal {
            bar,
            bar_len,
            device_id,
        }
    }

    fn register(&self, offset: u32) -> *mut u32 {
        let offset = offset as usize;
        if !offset.is_multiple_of(4) || offset + 4 > self.bar_len {
            panic!(
                "MMIO at {offset:#x}: outside BAR0 ({:#x} bytes) or unaligned",
                self.bar_len
            );
        }
        (self.bar + offset) as *mut u32
    }
}

// SAFETY: read32/write32 are single volatile 32-bit accesses inside BAR0 (`register` checks the
// offset, panicking outside), in program order (volatile accesses are not reordered with each
// other; x86 keeps uncached accesses in order), with the fences the contract asks for. DMA
// regions are identity-mapped RAM, zeroed, page-aligned, contiguous as a whole (so within
// every 2 MiB chunk), not used by anything else until freed; the bus address is the physical
// address, which is the virtual one. virt_to_phys answers only inside live DMA regions.
// Private regions come from another arena and are never translated; without an IOMMU the
// device could still reach them (documented above). Clones share the BAR and the arenas, which
// are behind spin locks.
unsafe impl Platform for BareMetal {
    fn read32(&self, offset: u32) -> u32 {
        let reg = self.register(offset);
        // SAFETY: `reg` is an aligned register inside the mapped BAR (the constructor's promise).
        let value = unsafe { reg.read_volatile() };
        fence(Ordering::Acquire);
        value
    }

    unsafe fn write32(&self, offset: u32, value: u32) {
        let reg = self.register(offset);
        fence(Ordering::Release);
        // SAFETY: as in read32; what the device does after the write is the caller's contract.
        unsafe { reg.write_volatile(value) };
    }

    fn dma_alloc(&self, size: usize) -> Result<DmaRegion, DmaError> {
        let (ptr, len) = DMA.lock().alloc(size)?;
        // SAFETY: zeroed, page-aligned (also in bus space: identity), contiguous, ours alone.
        Ok(unsafe { DmaRegion::new(ptr, len, 0) })
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        DMA.lock().free(region.virt().as_ptr() as usize);
    }

    fn private_alloc(&self, size: usize) -> Result<PrivateRegion, DmaError> {
        let (ptr, len) = PRIVATE.lock().alloc(size)?;
        // SAFETY: zeroed, page-aligned, ours alone, never given a bus address.
        Ok(unsafe { PrivateRegion::new(ptr, len, 0) })
    }

    unsafe fn private_free(&self, region: PrivateRegion) {
        PRIVATE.lock().free(region.virt().as_ptr() as usize);
    }

    fn virt_to_phys(&self, virt: *const u8) -> Option<u64> {
        let addr = virt as usize;
        DMA.lock().contains(addr).then_some(addr as u64)
    }

    fn delay(&self, duration: Duration) {
        time::delay(duration);
    }

    fn pci_device_id(&self) -> u16 {
        self.device_id
    }
}
