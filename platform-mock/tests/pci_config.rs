//! PCI configuration space as Linux's PCI core and ixgbe read it; Bus Master Enable gating;
//! Function Level Reset.

mod common;

use std::time::Duration;

use common::*;
use platform_mock::{pci, NicConfig, NicId, Sim};

fn cfg16(sim: &Sim, nic: NicId, off: u16) -> u16 {
    let mut b = [0u8; 2];
    sim.config_read(nic, off, &mut b);
    u16::from_le_bytes(b)
}

fn cfg32(sim: &Sim, nic: NicId, off: u16) -> u32 {
    let mut b = [0u8; 4];
    sim.config_read(nic, off, &mut b);
    u32::from_le_bytes(b)
}

fn wcfg16(sim: &Sim, nic: NicId, off: u16, v: u16) {
    sim.config_write(nic, off, &v.to_le_bytes());
}

fn wcfg32(sim: &Sim, nic: NicId, off: u16, v: u32) {
    sim.config_write(nic, off, &v.to_le_bytes());
}

fn power_on_nic() -> (Sim, NicId) {
    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig {
        mac: MAC,
        pci_enabled: false,
        ..NicConfig::default()
    });
    (sim, nic)
}

#[test]
fn header_identifies_an_x520() {
    let (sim, nic) = power_on_nic();
    assert_eq!(cfg16(&sim, nic, 0x00), 0x8086);
    assert_eq!(cfg16(&sim, nic, 0x02), 0x10FB);
    assert_eq!(
        cfg32(&sim, nic, 0x08),
        0x0200_0001,
        "class 020000, revision 01"
    );
    assert_eq!(cfg16(&sim, nic, 0x2C), 0x8086);
    assert_eq!(cfg16(&sim, nic, 0x2E), 0x000C);
    assert_eq!(cfg16(&sim, nic, 0x04), 0, "power-on command register");
    assert_ne!(cfg16(&sim, nic, 0x06) & (1 << 4), 0, "capabilities list");
    assert_eq!(cfg32(&sim, nic, 0x10) & 0xF, 0x4, "BAR0: 64-bit memory");
    assert_eq!(cfg32(&sim, nic, 0x20) & 0xF, 0x4, "BAR4: 64-bit memory");
    assert_eq!(cfg32(&sim, nic, 0x18), 0, "no BAR2 (I/O)");
    assert_eq!(cfg16(&sim, nic, 0x3C) >> 8, 1, "INTA#");
}

#[test]
fn bar_sizing_and_writable_masks() {
    let (sim, nic) = power_on_nic();
    for (bar, size) in [(0x10u16, pci::BAR0_SIZE), (0x20, pci::BAR4_SIZE)] {
        wcfg32(&sim, nic, bar, 0xFFFF_FFFF);
        wcfg32(&sim, nic, bar + 4, 0xFFFF_FFFF);
        let lo = cfg32(&sim, nic, bar);
        assert_eq!(
            lo,
            !(size as u32 - 1) | 0x4,
            "BAR at {bar:#x} sizes to {size}"
        );
        assert_eq!(cfg32(&sim, nic, bar + 4), 0xFFFF_FFFF);
        wcfg32(&sim, nic, bar, 0xFE00_0000);
        assert_eq!(cfg32(&sim, nic, bar), 0xFE00_0004);
    }
    // Read-only IDs and class.
    wcfg32(&sim, nic, 0x00, 0);
    wcfg32(&sim, nic, 0x08, 0);
    assert_eq!(cfg32(&sim, nic, 0x00), 0x10FB_8086);
    assert_eq!(cfg32(&sim, nic, 0x08), 0x0200_0001);
    // Command: memory, bus master, parity, SERR#, INTx disable (no I/O BAR: bit 0 stays 0).
    wcfg16(&sim, nic, 0x04, 0xFFFF);
    assert_eq!(cfg16(&sim, nic, 0x04), 0x0546);
    // MSI: address low is dword aligned, data 16 bits, enable writable, MME not (1 message).
    let msi = pci::CAP_MSI;
    wcfg32(&sim, nic, msi + 4, 0xFEE0_0003);
    assert_eq!(cfg32(&sim, nic, msi + 4), 0xFEE0_0000);
    wcfg16(&sim, nic, msi + 2, 0xFFFF);
    assert_eq!(
        cfg16(&sim, nic, msi + 2),
        0x0181,
        "per-vector masking, 64-bit, enabled"
    );
    // MSI-X control: only Enable and Function Mask are writable; table size stays 63.
    let mx = pci::CAP_MSIX;
    wcfg16(&sim, nic, mx + 2, 0xFFFF);
    assert_eq!(cfg16(&sim, nic, mx + 2), 0xC000 | 63);
    // PM control: D3hot is accepted, D1 is not supported.
    let pmcsr = pci::CAP_PM + 4;
    wcfg16(&sim, nic, pmcsr, 1);
    assert_eq!(
        cfg16(&sim, nic, pmcsr) & 3,
        0,
        "D1 unsupported: stays in D0"
    );
    wcfg16(&sim, nic, pmcsr, 3);
    assert_eq!(cfg16(&sim, nic, pmcsr) & 3, 3);
    // PCIe Device Control: MRRS and MPS writable; Initiate FLR reads 0.
    let devctl = pci::CAP_PCIE + 8;
    wcfg16(&sim, nic, devctl, 0x5020);
    assert_eq!(cfg16(&sim, nic, devctl), 0x5020);
}

#[test]
fn capability_list_as_linux_reads_it() {
    let (sim, nic) = power_on_nic();
    let mut at = cfg16(&sim, nic, 0x34) & 0xFF;
    let mut found = Vec::new();
    while at != 0 {
        let h = cfg16(&sim, nic, at);
        found.push((at, h & 0xFF));
        at = h >> 8;
        assert!(found.len() < 16, "capability list loops");
    }
    assert_eq!(
        found,
        [(0x40, 0x01), (0x50, 0x05), (0x70, 0x11), (0xA0, 0x10)]
    );
    // ixgbe_get_pcie_msix_count_generic: (word at 0x72 & 0x7FF) + 1 vectors.
    assert_eq!((cfg16(&sim, nic, 0x72) & 0x7FF) + 1, 64);
    assert_eq!(cfg32(&sim, nic, 0x74), 4, "table: BIR 4, offset 0");
    assert_eq!(
        cfg32(&sim, nic, 0x78),
        0x2000 | 4,
        "PBA: BIR 4, offset 0x2000"
    );
    // ixgbe_get_bus_info_generic reads Link Status at 0xB2: 5 GT/s (2), x8.
    let ls = cfg16(&sim, nic, 0xB2);
    assert_eq!(ls & 0xF, 2);
    assert_eq!((ls >> 4) & 0x3F, 8);
    assert_eq!(cfg16(&sim, nic, 0xA2) & 0xF0, 0, "endpoint");
    assert_ne!(cfg32(&sim, nic, 0xA4) & (1 << 28), 0, "FLR capable");
    // Extended capabilities: AER then the serial number.
    assert_eq!(cfg32(&sim, nic, 0x100) & 0xFFFF, 0x0001);
    assert_eq!(cfg32(&sim, nic, 0x100) >> 20, 0x140);
    assert_eq!(cfg32(&sim, nic, 0x140) & 0xFFFF, 0x0003);
    assert_eq!(cfg32(&sim, nic, 0x140) >> 20, 0);
    let dsn = u64::from(cfg32(&sim, nic, 0x148)) << 32 | u64::from(cfg32(&sim, nic, 0x144));
    assert_eq!(
        dsn.to_be_bytes(),
        [MAC[0], MAC[1], MAC[2], 0xFF, 0xFF, MAC[3], MAC[4], MAC[5]]
    );
}

#[test]
fn in_process_nic_starts_enabled() {
    let (sim, nic, _p) = one_nic();
    assert_eq!(cfg16(&sim, nic, 0x04), pci::CMD_MEM | pci::CMD_BME);
}

#[test]
fn no_dma_without_bus_master_enable() {
    let (sim, nic, p) = one_nic();
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    let t = setup_tx(&p, 0, 8);
    wcfg16(&sim, nic, 0x04, pci::CMD_MEM);
    assert_eq!(
        rd(&p, STATUS) & (1 << 19),
        0,
        "no master enable status without BME"
    );
    sim.inject(nic, &frame_to(MAC, 100));
    assert_eq!(r.desc_status(0) & 1, 0, "no RX write-back without BME");
    t.put(&p, 0, &frame_to(MAC_B, 60), data_cmd());
    wr(&p, tx_base(0) + 0x18, 1);
    assert!(
        sim.take_transmitted(nic).is_empty(),
        "no TX fetch without BME"
    );
    assert!(!t.dd(0));
    wcfg16(&sim, nic, 0x04, pci::CMD_MEM | pci::CMD_BME);
    assert_eq!(
        r.desc_status(0) & 3,
        3,
        "held frame delivered once BME is set"
    );
    assert_eq!(
        sim.take_transmitted(nic).len(),
        1,
        "TX resumes once BME is set"
    );
    assert!(t.dd(0));
    assert_no_violations(&sim);
}

#[test]
fn function_level_reset_returns_to_power_on() {
    let (sim, nic, p) = one_nic();
    wr(&p, HLREG0, 0x0000_0008);
    wr(&p, EIMS, 0xFFFF);
    wcfg16(&sim, nic, pci::CAP_MSIX + 2, pci::MSIX_ENABLE);
    sim.bar4_write(nic, 12, 0); // unmask vector 0
                                // Initiate FLR through PCIe Device Control.
    wcfg16(&sim, nic, pci::CAP_PCIE + 8, 0x2810 | pci::DEVCTL_FLR);
    assert_eq!(cfg16(&sim, nic, 0x04), 0, "command back to 0");
    assert_eq!(cfg16(&sim, nic, pci::CAP_MSIX + 2), 63, "MSI-X disabled");
    assert_eq!(sim.bar4_read(nic, 12), 1, "vector masked again");
    assert_eq!(cfg16(&sim, nic, pci::CAP_PCIE + 8), 0x2810);
    assert_eq!(rd(&p, HLREG0), 0x0801_2C0B);
    assert_eq!(rd(&p, EIMS), 0);
    assert_eq!(rd(&p, EEC) & (1 << 9), 0, "auto-read runs again");
    assert_eq!(rd(&p, LINKS) & (1 << 30), 0, "link retrains");
    sim.advance(Duration::from_millis(25));
    assert_ne!(rd(&p, EEC) & (1 << 9), 0);
    assert_ne!(rd(&p, LINKS) & (1 << 30), 0);
    // The API entry point does the same.
    wr(&p, HLREG0, 0x0000_0008);
    sim.function_reset(nic);
    assert_eq!(rd(&p, HLREG0), 0x0801_2C0B);
    assert_eq!(rd(&p, 0x10148) & (1 << 15), 1 << 15, "FWSM.FW_Val_bit");
}
