//! PCI configuration through configuration mechanism #1 (I/O ports 0xCF8 address, 0xCFC data;
//! PCI Local Bus Specification 3.0 §3.2.2.3.2), bus 0 only: QEMU's q35 puts the devices of the
//! test there.

use crate::port::{inl, outl};

const ADDRESS: u16 = 0xCF8;
const DATA: u16 = 0xCFC;
const COMMAND: u8 = 0x04;
const COMMAND_MEMORY: u32 = 1 << 1;
const COMMAND_BUS_MASTER: u32 = 1 << 2;
const BAR0: u8 = 0x10;
const HEADER_TYPE: u8 = 0x0E;

/// One PCI function on bus 0.
#[derive(Clone, Copy, Debug)]
pub struct Function {
    /// Device (slot) number, 0..32.
    pub dev: u8,
    /// Function number, 0..8.
    pub func: u8,
}

impl Function {
    fn address(self, offset: u8) -> u32 {
        1 << 31 | u32::from(self.dev) << 11 | u32::from(self.func) << 8 | u32::from(offset & 0xFC)
    }

    /// Reads the configuration dword at `offset` (rounded down to a multiple of 4).
    pub fn read(self, offset: u8) -> u32 {
        // SAFETY: 0xCF8/0xCFC are the host bridge's configuration ports, used by this program
        // alone (one thread, no interrupts); a configuration read has no memory effect.
        unsafe {
            outl(ADDRESS, self.address(offset));
            inl(DATA)
        }
    }

    /// Writes the configuration dword at `offset`. The callers below only write the command
    /// register and BAR0/1 (sizing, then the firmware's value back), with decoding off.
    fn write(self, offset: u8, value: u32) {
        // SAFETY: as in `read`. Enabling memory decoding or bus mastering is memory-safe here:
        // the BAR is mapped at an address no Rust object uses, and the device gets no bus
        // address before the driver hands it one in DMA memory.
        unsafe {
            outl(ADDRESS, self.address(offset));
            outl(DATA, value);
        }
    }

    /// Vendor and device ID.
    pub fn ids(self) -> (u16, u16) {
        let v = self.read(0);
        (v as u16, (v >> 16) as u16)
    }
}

/// The functions on bus 0 with this vendor and device ID, in slot order (at most 8).
pub fn find(vendor: u16, device: u16) -> ixgbe_core::heapless::Vec<Function, 8> {
    let mut found = ixgbe_core::heapless::Vec::new();
    for dev in 0..32 {
        let first = Function { dev, func: 0 };
        if first.ids().0 == 0xFFFF {
            continue; // no device in this slot: reads return all ones
        }
        let multi = first.read(HEADER_TYPE) >> 16 & 0x80 != 0;
        for func in 0..if multi { 8 } else { 1 } {
            let f = Function { dev, func };
            if f.ids() == (vendor, device) {
                let _ = found.push(f);
            }
        }
    }
    found
}

/// A memory BAR: physical address and length.
#[derive(Clone, Copy, Debug)]
pub struct Bar {
    /// Physical (bus) address the firmware assigned.
    pub base: u64,
    /// Length in bytes (a power of two).
    pub len: u64,
}

/// Reads and sizes BAR0, which must be a 64-bit memory BAR (the 82599's is, §9.3.6.1), the
/// datasheet way: decoding off, all ones written, the size read back, the value restored.
pub fn bar0_64(f: Function) -> Result<Bar, &'static str> {
    let (low, high) = (f.read(BAR0), f.read(BAR0 + 4));
    if low & 1 != 0 || (low >> 1) & 3 != 2 {
        return Err("BAR0 is not a 64-bit memory BAR");
    }
    let command = f.read(COMMAND) & 0xFFFF;
    f.write(COMMAND, command & !COMMAND_MEMORY);
    f.write(BAR0, u32::MAX);
    f.write(BAR0 + 4, u32::MAX);
    let mask = u64::from(f.read(BAR0 + 4)) << 32 | u64::from(f.read(BAR0) & !0xF);
    f.write(BAR0, low);
    f.write(BAR0 + 4, high);
    f.write(COMMAND, command);
    let base = u64::from(high) << 32 | u64::from(low & !0xF);
    let len = (!mask).wrapping_add(1);
    if base == 0 || mask == 0 || !len.is_power_of_two() {
        return Err("BAR0 is not assigned (the firmware left it at 0) or sizes wrongly");
    }
    Ok(Bar { base, len })
}

/// Sets Memory Space Enable and Bus Master Enable in the command register.
pub fn enable(f: Function) {
    let command = f.read(COMMAND) & 0xFFFF;
    f.write(COMMAND, command | COMMAND_MEMORY | COMMAND_BUS_MASTER);
}
