//! PCI configuration space of one simulated 82599 function (datasheet §9.3).
//!
//! Only the vfio-user front end reads and writes it; in-process tests never see it (their
//! `SimPlatform` has already "enabled" the function, as `platform-linux` does on a real board).

/// Size of PCIe configuration space (with the extended capabilities).
pub const CONFIG_SIZE: usize = 4096;
/// Size of BAR0 (CSR space) as an X520 presents it: 512 KiB (§8.1, "128 KB + Flash_Size").
pub const BAR0_SIZE: u64 = 512 * 1024;
/// Size of BAR4, the MSI-X table (offset 0) and PBA (offset 0x2000).
pub const BAR4_SIZE: u64 = 16 * 1024;
/// MSI-X vectors of an 82599 function.
pub const MSIX_VECTORS: u16 = 64;

/// Command register bits.
pub const CMD_MEM: u16 = 1 << 1;
/// Bus Master Enable.
pub const CMD_BME: u16 = 1 << 2;
/// INTx Disable.
pub const CMD_INTX_DISABLE: u16 = 1 << 10;

/// The configuration space: bytes as the function presents them, and which bits software may
/// write.
pub(crate) struct ConfigSpace {
    bytes: Box<[u8; CONFIG_SIZE]>,
    writable: Box<[u8; CONFIG_SIZE]>,
}

#[allow(dead_code)] // read by the interrupt and bus-master logic
impl ConfigSpace {
    /// The power-on configuration space of function `func` with device ID `device_id`.
    pub fn new(device_id: u16, func: u8) -> Self {
        let _ = func;
        let mut c = ConfigSpace {
            bytes: Box::new([0; CONFIG_SIZE]),
            writable: Box::new([0; CONFIG_SIZE]),
        };
        c.put16(0x00, 0x8086);
        c.put16(0x02, device_id);
        c.put8(0x08, 0x01); // revision
        c.put8(0x09, 0x00); // prog-if
        c.put16(0x0A, 0x0200); // Ethernet controller
        c.put32(0x10, 0x4); // BAR0: 64-bit memory
        c.put32(0x20, 0x4); // BAR4: 64-bit memory
        c.put16(0x2C, 0x8086); // subsystem vendor
        c.put16(0x2E, 0x000C); // subsystem (X520-DA2 uses 0x7A11 with vendor 0x8086)
        c.put8(0x3D, 1); // INTA#
        c.writable[0x04] = 0x07; // I/O, memory, bus master
        c.writable[0x05] = 0x04; // INTx disable
        c.writable[0x3C] = 0xFF; // interrupt line
        c
    }

    fn put8(&mut self, off: usize, v: u8) {
        self.bytes[off] = v;
    }
    fn put16(&mut self, off: usize, v: u16) {
        self.bytes[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }
    fn put32(&mut self, off: usize, v: u32) {
        self.bytes[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }

    /// A 16-bit field.
    pub fn get16(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.bytes[off], self.bytes[off + 1]])
    }

    /// Reads `data.len()` bytes at `off` (bytes beyond the space read as 0xFF).
    pub fn read(&self, off: usize, data: &mut [u8]) {
        for (k, d) in data.iter_mut().enumerate() {
            *d = self.bytes.get(off + k).copied().unwrap_or(0xFF);
        }
    }

    /// Writes `data` at `off`, only the writable bits change (RW1C status bits are not modelled).
    pub fn write(&mut self, off: usize, data: &[u8]) {
        for (k, &d) in data.iter().enumerate() {
            let Some(m) = self.writable.get(off + k).copied() else {
                return;
            };
            let b = &mut self.bytes[off + k];
            *b = (*b & !m) | (d & m);
        }
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.get16(0x04)
    }
}
