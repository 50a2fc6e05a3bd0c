//! PCI configuration space of one simulated 82599 function (datasheet §9.3, §9.4).
//!
//! The vfio-user front end reads and writes it through [`Sim::config_read`] /
//! [`Sim::config_write`](crate::Sim::config_write). A NIC made by [`Sim::add_nic`] starts enabled
//! (memory space and bus master on, as `platform-linux` leaves a real board) unless
//! [`NicConfig::pci_enabled`](crate::NicConfig::pci_enabled) is false (reset state, command = 0).
//!
//! Layout (as Linux's ixgbe and the PCI core read it):
//!
//! | Offset | Capability |
//! |---|---|
//! | 0x40 | Power Management (version 3, D0/D3hot, No_Soft_Reset = 0) |
//! | 0x50 | MSI: 64-bit, per-vector masking, one message |
//! | 0x70 | MSI-X: 64 vectors; table in BAR4 at 0, PBA in BAR4 at 0x2000 (ixgbe reads the table size at 0x72, `IXGBE_PCIE_MSIX_82599_CAPS`) |
//! | 0xA0 | PCI Express v2 endpoint, 5 GT/s x8 (ixgbe reads Link Status at 0xB2 and Device Status at 0xAA), FLR capable |
//! | 0x100 | AER (extended) |
//! | 0x140 | Device Serial Number (extended), EUI-64 from the MAC |
//!
//! [`Sim::config_read`]: crate::Sim::config_read
//! [`Sim::add_nic`]: crate::Sim::add_nic

/// Size of PCIe configuration space (with the extended capabilities).
pub const CONFIG_SIZE: usize = 4096;
/// Size of BAR0 (CSR space) as an X520 presents it: 512 KiB (§8.1, "128 KB + Flash_Size").
pub const BAR0_SIZE: u64 = 512 * 1024;
/// Size of BAR4, the MSI-X table (offset 0) and PBA (offset 0x2000).
pub const BAR4_SIZE: u64 = 16 * 1024;
/// MSI-X vectors of an 82599 function.
pub const MSIX_VECTORS: u16 = 64;
/// Offset of the MSI-X PBA in BAR4.
pub const MSIX_PBA_OFFSET: u64 = 0x2000;

/// Command register: Memory Space Enable.
pub const CMD_MEM: u16 = 1 << 1;
/// Command register: Bus Master Enable.
pub const CMD_BME: u16 = 1 << 2;
/// Command register: INTx Disable.
pub const CMD_INTX_DISABLE: u16 = 1 << 10;

/// Offset of the Power Management capability.
pub const CAP_PM: u16 = 0x40;
/// Offset of the MSI capability.
pub const CAP_MSI: u16 = 0x50;
/// Offset of the MSI-X capability.
pub const CAP_MSIX: u16 = 0x70;
/// Offset of the PCI Express capability.
pub const CAP_PCIE: u16 = 0xA0;
/// Offset of the AER extended capability.
pub const ECAP_AER: u16 = 0x100;
/// Offset of the Device Serial Number extended capability.
pub const ECAP_DSN: u16 = 0x140;

/// MSI-X Message Control: MSI-X Enable.
pub const MSIX_ENABLE: u16 = 1 << 15;
/// MSI-X Message Control: Function Mask.
pub const MSIX_FUNCTION_MASK: u16 = 1 << 14;
/// MSI Message Control: MSI Enable.
pub const MSI_ENABLE: u16 = 1;
/// PCIe Device Control: Initiate Function Level Reset.
pub const DEVCTL_FLR: u16 = 1 << 15;

/// What a configuration write asks the device to do beyond storing bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ConfigEffects {
    /// Initiate Function Level Reset (PCIe Device Control bit 15) was written as 1.
    pub flr: bool,
    /// PMCSR went from D3hot to D0 with No_Soft_Reset = 0: an internal reset (§9.3.7.1.4).
    pub d3_to_d0: bool,
}

/// The configuration space: bytes as the function presents them, which bits software may
/// write, and which are write-1-to-clear.
pub(crate) struct ConfigSpace {
    bytes: Box<[u8; CONFIG_SIZE]>,
    writable: Box<[u8; CONFIG_SIZE]>,
    w1c: Box<[u8; CONFIG_SIZE]>,
}

impl ConfigSpace {
    /// The power-on configuration space of a function (§9.3: every field at its EEPROM or
    /// hardware default; command = 0, so no memory decoding and no bus mastering).
    pub fn new(device_id: u16, subsystem_id: u16, mac: [u8; 6]) -> Self {
        let mut c = ConfigSpace {
            bytes: Box::new([0; CONFIG_SIZE]),
            writable: Box::new([0; CONFIG_SIZE]),
            w1c: Box::new([0; CONFIG_SIZE]),
        };
        // Header (type 0).
        c.put16(0x00, 0x8086);
        c.put16(0x02, device_id);
        c.put16(0x06, 1 << 4); // Status: capabilities list
        c.mask16(0x04, 0x0546); // memory, bus master, parity response, SERR#, INTx disable
        c.w1c16(0x06, 0xF900); // error status bits 15:11 and 8
        c.put8(0x08, 0x01); // revision (82599 B0 silicon reads 01)
        c.put8(0x09, 0x00); // prog-if
        c.put16(0x0A, 0x0200); // Ethernet controller
        c.mask8(0x0C, 0xFF); // cache line size
        c.put8(0x0E, 0x00); // header type 0, one function per simulated NIC
                            // BAR0: 64-bit non-prefetchable memory, 512 KiB; BAR4: 64-bit, 16 KiB (§9.3.6.1).
                            // Non-prefetchable: CSR reads have side effects (clear-on-read counters).
        c.put32(0x10, 0x4);
        c.mask32(0x10, !(BAR0_SIZE as u32 - 1));
        c.mask32(0x14, 0xFFFF_FFFF);
        c.put32(0x20, 0x4);
        c.mask32(0x20, !(BAR4_SIZE as u32 - 1));
        c.mask32(0x24, 0xFFFF_FFFF);
        c.put16(0x2C, 0x8086); // subsystem vendor
        c.put16(0x2E, subsystem_id);
        c.put8(0x34, CAP_PM as u8);
        c.mask8(0x3C, 0xFF); // interrupt line
        c.put8(0x3D, 1); // INTA#

        // Power management (§9.3.7): PMC version 3, DSI, PME from D0 and D3hot.
        let pm = usize::from(CAP_PM);
        c.put8(pm, 0x01);
        c.put8(pm + 1, CAP_MSI as u8);
        c.put16(pm + 2, 0x4823);
        c.mask16(pm + 4, 0x0103); // PowerState, PME_En
        c.w1c16(pm + 4, 0x8000); // PME_Status

        // MSI (§9.3.8): 64-bit, per-vector masking, one message.
        let msi = usize::from(CAP_MSI);
        c.put8(msi, 0x05);
        c.put8(msi + 1, CAP_MSIX as u8);
        c.put16(msi + 2, (1 << 8) | (1 << 7));
        c.mask16(msi + 2, MSI_ENABLE);
        c.mask32(msi + 4, 0xFFFF_FFFC); // address low (dword aligned)
        c.mask32(msi + 8, 0xFFFF_FFFF); // address high
        c.mask16(msi + 12, 0xFFFF); // data
        c.mask32(msi + 16, 0x1); // mask bits (one vector)

        // MSI-X (§9.3.9): table size N-1 = 63, table BIR 4 offset 0, PBA BIR 4 offset 0x2000.
        let mx = usize::from(CAP_MSIX);
        c.put8(mx, 0x11);
        c.put8(mx + 1, CAP_PCIE as u8);
        c.put16(mx + 2, MSIX_VECTORS - 1);
        c.mask16(mx + 2, MSIX_ENABLE | MSIX_FUNCTION_MASK);
        c.put32(mx + 4, 4);
        c.put32(mx + 8, MSIX_PBA_OFFSET as u32 | 4);

        // PCI Express v2 endpoint (§9.3.10).
        let e = usize::from(CAP_PCIE);
        c.put8(e, 0x10);
        c.put8(e + 1, 0);
        c.put16(e + 2, 0x0002); // version 2, endpoint
                                // Device Capabilities: MPS 512, extended tag, L0s/L1 latency, RBER, FLR.
        c.put32(e + 4, 0x1000_8DA2);
        // Device Control: relaxed ordering, no snoop, MRRS 512 (reset values).
        c.put16(e + 8, 0x2810);
        c.mask16(e + 8, 0x7FFF);
        c.w1c16(e + 10, 0x000F); // Device Status error bits
                                 // Link Capabilities: 5 GT/s, x8, ASPM L0s and L1.
        c.put32(e + 12, 0x0003_1C82);
        c.mask16(e + 16, 0x00C3); // Link Control: ASPM, common clock, extended synch
        c.put16(e + 18, 0x1082); // Link Status: 5 GT/s, x8, slot clock
        c.put32(e + 0x24, 0x0000_001F); // Device Capabilities 2: completion timeout ranges
        c.mask16(e + 0x28, 0x001F); // Device Control 2: completion timeout value / disable
        c.put16(e + 0x30, 0x0002); // Link Control 2: target speed 5 GT/s
        c.mask16(e + 0x30, 0x003F);

        // AER (§9.4.1), next: DSN.
        let a = usize::from(ECAP_AER);
        c.put32(a, (u32::from(ECAP_DSN) << 20) | (1 << 16) | 0x0001);
        c.w1c32(a + 4, 0x001F_F010); // uncorrectable status
        c.mask32(a + 8, 0x001F_F010); // uncorrectable mask
        c.put32(a + 12, 0x0006_2030); // uncorrectable severity (PCIe default)
        c.mask32(a + 12, 0x001F_F010);
        c.w1c32(a + 16, 0x0000_31C1); // correctable status
        c.put32(a + 20, 0x0000_2000); // correctable mask (advisory non-fatal masked)
        c.mask32(a + 20, 0x0000_31C1);

        // Device Serial Number (§9.4.2): EUI-64 built from the MAC (OUI, FF FF, NIC part).
        let s = usize::from(ECAP_DSN);
        c.put32(s, (1 << 16) | 0x0003);
        let m = mac;
        c.put32(s + 4, u32::from_be_bytes([0xFF, m[3], m[4], m[5]]));
        c.put32(s + 8, u32::from_be_bytes([m[0], m[1], m[2], 0xFF]));
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
    fn mask8(&mut self, off: usize, m: u8) {
        self.writable[off] = m;
    }
    fn mask16(&mut self, off: usize, m: u16) {
        self.writable[off..off + 2].copy_from_slice(&m.to_le_bytes());
    }
    fn mask32(&mut self, off: usize, m: u32) {
        self.writable[off..off + 4].copy_from_slice(&m.to_le_bytes());
    }
    fn w1c16(&mut self, off: usize, m: u16) {
        self.w1c[off..off + 2].copy_from_slice(&m.to_le_bytes());
    }
    fn w1c32(&mut self, off: usize, m: u32) {
        self.w1c[off..off + 4].copy_from_slice(&m.to_le_bytes());
    }

    /// A 16-bit field.
    pub fn get16(&self, off: usize) -> u16 {
        u16::from_le_bytes([self.bytes[off], self.bytes[off + 1]])
    }

    /// A 32-bit field.
    pub fn get32(&self, off: usize) -> u32 {
        u32::from_le_bytes([
            self.bytes[off],
            self.bytes[off + 1],
            self.bytes[off + 2],
            self.bytes[off + 3],
        ])
    }

    /// Reads `data.len()` bytes at `off` (bytes beyond the space read as 0xFF).
    pub fn read(&self, off: usize, data: &mut [u8]) {
        for (k, d) in data.iter_mut().enumerate() {
            *d = self.bytes.get(off + k).copied().unwrap_or(0xFF);
        }
    }

    /// Writes `data` at `off`: writable bits take the new value, write-1-to-clear bits clear
    /// where a 1 is written, everything else is kept. Returns the side effects asked for.
    pub fn write(&mut self, off: usize, data: &[u8]) -> ConfigEffects {
        let pmcsr = usize::from(CAP_PM) + 4;
        let old_state = self.bytes[pmcsr] & 3;
        let devctl = usize::from(CAP_PCIE) + 8;
        let mut fx = ConfigEffects::default();
        for (k, &d) in data.iter().enumerate() {
            let o = off + k;
            if o >= CONFIG_SIZE {
                break;
            }
            // Initiate FLR (Device Control bit 15) always reads 0 (PCIe 2.0 §7.8.4).
            if o == devctl + 1 && d & 0x80 != 0 {
                fx.flr = true;
            }
            let m = self.writable[o];
            let b = &mut self.bytes[o];
            *b = (*b & !m) | (d & m);
            *b &= !(d & self.w1c[o]);
        }
        // PowerState 10b (D2) and 01b (D1) are not supported: such a write keeps the old state.
        let new_state = self.bytes[pmcsr] & 3;
        if new_state == 1 || new_state == 2 {
            self.bytes[pmcsr] = (self.bytes[pmcsr] & !3) | old_state;
        } else if old_state == 3 && new_state == 0 {
            fx.d3_to_d0 = true;
        }
        fx
    }

    /// The command register.
    pub fn command(&self) -> u16 {
        self.get16(0x04)
    }

    /// Sets the command register (the in-process platform's "already enabled" start).
    pub fn set_command(&mut self, v: u16) {
        self.put16(0x04, v);
    }

    /// Status bit 3, Interrupt Status: the function's INTx is pending (independent of
    /// INTx Disable).
    pub fn set_intx_status(&mut self, pending: bool) {
        let s = self.get16(0x06) & !(1 << 3);
        self.put16(0x06, s | if pending { 1 << 3 } else { 0 });
    }

    /// MSI-X Message Control.
    pub fn msix_control(&self) -> u16 {
        self.get16(usize::from(CAP_MSIX) + 2)
    }

    /// MSI Message Control.
    pub fn msi_control(&self) -> u16 {
        self.get16(usize::from(CAP_MSI) + 2)
    }

    /// MSI Mask Bits (bit 0 masks the only message).
    pub fn msi_masked(&self) -> bool {
        self.get32(usize::from(CAP_MSI) + 16) & 1 != 0
    }

    /// Sets MSI Pending Bits bit 0 (read-only to software).
    pub fn set_msi_pending(&mut self, pending: bool) {
        self.put32(usize::from(CAP_MSI) + 20, u32::from(pending));
    }

    /// Bus Master Enable.
    pub fn bus_master(&self) -> bool {
        self.command() & CMD_BME != 0
    }
}
