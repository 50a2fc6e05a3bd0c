//! BAR0: a mapped register window accessed only through volatile raw-pointer loads and stores.

use std::sync::atomic::{fence, Ordering};

use crate::sys::Mapping;

/// A mapped BAR. No Rust reference into the mapping is ever created.
#[derive(Debug)]
pub(crate) struct Bar {
    map: Mapping,
}

impl Bar {
    pub(crate) fn new(map: Mapping) -> Self {
        Bar { map }
    }

    /// Length of the BAR in bytes.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// A pointer to the 32-bit register at `offset`, if it lies inside the BAR and is aligned.
    fn reg(&self, offset: u32) -> Option<*mut u32> {
        let offset = usize::try_from(offset).ok()?;
        if offset % 4 != 0 || offset.checked_add(4)? > self.map.len() {
            return None;
        }
        // SAFETY: `offset + 4 <= len`, so the result stays inside the mapping.
        Some(unsafe { self.map.ptr().as_ptr().add(offset) }.cast::<u32>())
    }

    /// One volatile 32-bit load, followed by an acquire fence; `None` when out of range.
    pub(crate) fn read32(&self, offset: u32) -> Option<u32> {
        let reg = self.reg(offset)?;
        // SAFETY: `reg` is 4-byte aligned (mmap returns page-aligned addresses and offset % 4 ==
        // 0) and lies inside the live mapping; volatile access through a raw pointer creates no
        // reference to device memory.
        let value = unsafe { reg.read_volatile() };
        fence(Ordering::Acquire);
        Some(value)
    }

    /// A release fence, then one volatile 32-bit store; `None` when out of range.
    pub(crate) fn write32(&self, offset: u32, value: u32) -> Option<()> {
        let reg = self.reg(offset)?;
        fence(Ordering::Release);
        // SAFETY: as in `read32`.
        unsafe { reg.write_volatile(value) };
        Some(())
    }
}
