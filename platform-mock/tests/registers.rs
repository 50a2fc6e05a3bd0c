//! Register-level behaviour: reset, EEPROM/DMA-init flags, link, interrupts, statistics, aliases.

mod common;

use std::time::Duration;

use common::*;
use ixgbe_core::Platform;
use platform_mock::{Fault, NicConfig, Sim, ViolationKind};

const MS: Duration = Duration::from_millis(1);

#[test]
fn reset_self_clears_and_restores_defaults() {
    let (sim, _nic, p) = one_nic();
    // Dirty some registers.
    wr(&p, HLREG0, 0x0000_0008);
    wr(&p, 0x02100, SRRCTL_ADV_2K); // SRRCTL[0] via alias
    wr(&p, DTXMXSZRQ, 0xFFF);
    wr(&p, RTTDCS, 1 << 6);
    wr(&p, RXPBSIZE0, 0x0002_0000);
    wr(&p, EIMS, 0x0000_FFFF);
    wr(&p, RAL0, 0xDEAD_BEEF);
    wr(&p, CTRL, (1 << 26) | (1 << 3));
    assert_ne!(
        rd(&p, CTRL) & (1 << 26),
        0,
        "RST reads 1 while the reset runs"
    );
    p.delay(MS);
    assert_eq!(
        rd(&p, CTRL) & ((1 << 26) | (1 << 3)),
        0,
        "RST/LRST self-clear"
    );
    assert_eq!(rd(&p, RDRXCTL), 0x0010_8800);
    assert_eq!(rd(&p, HLREG0), 0x0801_2C0B);
    assert_eq!(rd(&p, rx_base(0) + 0x14), 0x402);
    assert_eq!(rd(&p, 0x02100), 0x402, "SRRCTL alias");
    assert_eq!(rd(&p, rx_base(5) + 0x0C), 0xB200, "DCA_RXCTRL");
    assert_eq!(rd(&p, 0x02200 + 4 * 5), 0xB200, "DCA_RXCTRL alias");
    assert_eq!(rd(&p, tx_base(7) + 0x0C), 0x2A00, "DCA_TXCTRL");
    assert_eq!(rd(&p, DMATXCTL), 0x8100_0004);
    assert_eq!(rd(&p, RTTDCS), 0x00C0_0000);
    assert_eq!(rd(&p, RXPBSIZE0), 0x0008_0000);
    assert_eq!(rd(&p, TXPBSIZE0), 0x0002_8000);
    assert_eq!(rd(&p, DTXMXSZRQ), 0x10);
    assert_eq!(rd(&p, EIMS), 0);
    assert_eq!(rd(&p, RXCTRL), 0);
    assert_ne!(rd(&p, STATUS) & (1 << 19), 0);
    // RAR0 reloaded from the configured MAC with AV.
    assert_eq!(
        rd(&p, RAL0),
        u32::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3]])
    );
    assert_eq!(
        rd(&p, RAL0 + 4),
        u32::from(MAC[4]) | u32::from(MAC[5]) << 8 | 1 << 31
    );
    assert_eq!(rd(&p, RAL0 + 8 + 4) & (1 << 31), 0, "RAR1 not valid");
    assert_eq!(rd(&p, LINKS) & (1 << 30), 0, "link down after reset");
    assert_no_violations(&sim);
}

#[test]
fn auto_rd_and_dmaidone_set_after_virtual_time() {
    let (sim, _nic, p) = one_nic();
    assert_ne!(rd(&p, EEC) & (1 << 9), 0, "power-on: auto-read done");
    wr(&p, CTRL, 1 << 26);
    p.delay(Duration::from_micros(20));
    let eec = rd(&p, EEC);
    assert_ne!(eec & (1 << 8), 0, "EE_PRES");
    assert_eq!(eec & (1 << 9), 0, "Auto_RD clear right after reset");
    assert_eq!(
        rd(&p, RDRXCTL) & (1 << 3),
        0,
        "DMAIDONE clear right after reset"
    );
    p.delay(5 * MS);
    assert_ne!(rd(&p, EEC) & (1 << 9), 0, "Auto_RD set later");
    assert_eq!(rd(&p, RDRXCTL), 0x0010_8808, "DMAIDONE set later");
    assert_no_violations(&sim);
}

#[test]
fn reset_faults_keep_flags_clear_until_cleared() {
    let (sim, nic, p) = one_nic();
    sim.set_fault(nic, Fault::ResetNeverCompletes);
    wr(&p, CTRL, 1 << 26);
    p.delay(50 * MS);
    assert_ne!(rd(&p, CTRL) & (1 << 26), 0, "reset never completes");
    sim.clear_faults(nic);
    p.delay(MS);
    assert_eq!(rd(&p, CTRL) & (1 << 26), 0);

    sim.set_fault(nic, Fault::EepromAutoReadNeverDone);
    sim.set_fault(nic, Fault::DmaInitNeverDone);
    wr(&p, CTRL, 1 << 26);
    p.delay(50 * MS);
    assert_eq!(rd(&p, CTRL) & (1 << 26), 0);
    assert_eq!(rd(&p, EEC) & (1 << 9), 0);
    assert_eq!(rd(&p, RDRXCTL) & (1 << 3), 0);
    sim.clear_faults(nic);
    assert_ne!(rd(&p, EEC) & (1 << 9), 0);
    assert_ne!(rd(&p, RDRXCTL) & (1 << 3), 0);
}

#[test]
fn link_up_after_an_restart_with_links_bits() {
    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig::default());
    let p = sim.platform(nic);
    assert_eq!(rd(&p, LINKS) & (1 << 30), 0, "link trains after power-on");
    p.delay(25 * MS);
    let links = rd(&p, LINKS);
    assert_ne!(links & (1 << 30), 0);
    assert_eq!((links >> 28) & 3, 0b11, "10G");
    // Restart AN: link drops, comes back link_up_delay later, bit 12 self-clears.
    let autoc = rd(&p, AUTOC);
    wr(&p, AUTOC, autoc | (1 << 12));
    assert_eq!(rd(&p, AUTOC) & (1 << 12), 0);
    assert_eq!(rd(&p, LINKS) & (1 << 30), 0);
    p.delay(10 * MS);
    assert_eq!(rd(&p, LINKS) & (1 << 30), 0);
    p.delay(15 * MS);
    assert_ne!(rd(&p, LINKS) & (1 << 30), 0);
    assert_ne!(rd(&p, EICR) & (1 << 20), 0, "LSC");
    // Unplug / plug.
    sim.set_link(nic, false);
    assert_eq!(rd(&p, LINKS) & (1 << 30), 0);
    sim.set_link(nic, true);
    p.delay(25 * MS);
    assert_ne!(rd(&p, LINKS) & (1 << 30), 0);
    // LinkNeverUp.
    sim.set_fault(nic, Fault::LinkNeverUp);
    wr(&p, AUTOC, autoc | (1 << 12));
    p.delay(200 * MS);
    assert_eq!(rd(&p, LINKS) & (1 << 30), 0);
    sim.clear_faults(nic);
    assert_ne!(rd(&p, LINKS) & (1 << 30), 0);
    assert_no_violations(&sim);
}

#[test]
fn master_disable_clears_status_bit_19() {
    let (sim, _nic, p) = one_nic();
    assert_ne!(rd(&p, STATUS) & (1 << 19), 0);
    wr(&p, CTRL, 1 << 2);
    assert_eq!(rd(&p, STATUS) & (1 << 19), 0);
    wr(&p, CTRL, (1 << 26) | (1 << 3));
    p.delay(MS);
    assert_ne!(rd(&p, STATUS) & (1 << 19), 0, "reset clears master disable");
    assert_no_violations(&sim);
}

#[test]
fn interrupt_mask_and_cause_registers() {
    let (sim, _nic, p) = one_nic();
    let _ = rd(&p, EICR);
    wr(&p, EIMS, 0x0000_00F0);
    wr(&p, EIMS, 0); // no effect
    assert_eq!(rd(&p, EIMS), 0xF0);
    wr(&p, EIMC, 0x0000_0030);
    assert_eq!(rd(&p, EIMS), 0xC0);
    wr(&p, EIMC, 0x7FFF_FFFF);
    assert_eq!(rd(&p, EIMS), 0);
    wr(&p, EICS, 0x0000_0003);
    assert_eq!(rd(&p, EICR), 3);
    assert_eq!(rd(&p, EICR), 0, "clear on read");
    wr(&p, EICS, 0x0000_0003);
    wr(&p, EICR, 0x1); // RW1C
    assert_eq!(rd(&p, EICR), 2);
    assert_no_violations(&sim);
    wr(&p, EIMC, 0xFFFF_FFFF);
    assert_eq!(kinds(&sim), vec![ViolationKind::ReservedBits]);
}

#[test]
fn ral_rah_alias_both_offsets() {
    let (sim, _nic, p) = one_nic();
    let ral = u32::from_le_bytes([MAC[0], MAC[1], MAC[2], MAC[3]]);
    assert_eq!(rd(&p, RAL0), ral);
    assert_eq!(rd(&p, RAL0_ALIAS), ral);
    assert_eq!(rd(&p, RAL0_ALIAS + 4), rd(&p, RAL0 + 4));
    wr(&p, RAL0_ALIAS + 8, 0x1234_5678);
    assert_eq!(rd(&p, RAL0 + 8), 0x1234_5678);
    wr(&p, RAL0 + 12, 0x8000_9ABC);
    assert_eq!(rd(&p, RAL0_ALIAS + 12), 0x8000_9ABC);
    // Other aliases: MRQC, RSSRK, RETA.
    wr(&p, 0x05818, 0x1);
    assert_eq!(rd(&p, MRQC), 0x1);
    wr(&p, 0x05C80, 0xAABB_CCDD);
    assert_eq!(rd(&p, RSSRK), 0xAABB_CCDD);
    wr(&p, 0x05C00 + 4, 0x0302_0100);
    assert_eq!(rd(&p, RETA + 4), 0x0302_0100);
    assert_no_violations(&sim);
}

#[test]
fn queue_enable_reads_back_with_lag() {
    let (sim, nic, p) = one_nic();
    let ring = p.dma_alloc(4096).unwrap();
    let b = bus(&p, &ring, 0);
    let base = rx_base(3);
    wr(&p, base, b as u32);
    wr(&p, base + 4, (b >> 32) as u32);
    wr(&p, base + 8, 1024);
    wr(&p, base + 0x28, ENABLE);
    assert_eq!(rd(&p, base + 0x28) & ENABLE, 0, "first read still 0");
    let mut n = 1;
    while rd(&p, base + 0x28) & ENABLE == 0 {
        n += 1;
        assert!(n < 10);
    }
    assert!(n >= 2, "lags by a couple of reads");
    // Time also settles it.
    let tb = tx_base(9);
    wr(&p, tb, b as u32);
    wr(&p, tb + 4, (b >> 32) as u32);
    wr(&p, tb + 8, 1024);
    wr(&p, tb + 0x28, ENABLE);
    p.delay(Duration::from_micros(10));
    assert_ne!(rd(&p, tb + 0x28) & ENABLE, 0);
    // DMATXCTL.TE also enables TX queue 0.
    assert_eq!(rd(&p, tx_base(0) + 0x28) & ENABLE, 0);
    let t0 = p.dma_alloc(4096).unwrap();
    let b0 = bus(&p, &t0, 0);
    wr(&p, tx_base(0), b0 as u32);
    wr(&p, tx_base(0) + 4, (b0 >> 32) as u32);
    wr(&p, tx_base(0) + 8, 1024);
    wr(&p, DMATXCTL, rd(&p, DMATXCTL) | 1);
    p.delay(Duration::from_micros(10));
    assert_ne!(rd(&p, tx_base(0) + 0x28) & ENABLE, 0);
    // Stuck fault.
    sim.set_fault(nic, Fault::QueueEnableStuck);
    let base4 = rx_base(4);
    wr(&p, base4, b as u32);
    wr(&p, base4 + 4, (b >> 32) as u32);
    wr(&p, base4 + 8, 1024);
    wr(&p, base4 + 0x28, ENABLE);
    p.delay(MS);
    for _ in 0..10 {
        assert_eq!(rd(&p, base4 + 0x28) & ENABLE, 0);
    }
    sim.clear_faults(nic);
    assert_ne!(rd(&p, base4 + 0x28) & ENABLE, 0);
    assert_no_violations(&sim);
}

#[test]
fn secrx_ready_follows_rx_dis() {
    let (_sim, _nic, p) = one_nic();
    assert_eq!(rd(&p, SECRXSTAT) & 1, 0);
    wr(&p, SECRXCTRL, 1 << 1);
    assert_eq!(rd(&p, SECRXSTAT) & 1, 0, "the security block drains first");
    p.delay(Duration::from_micros(50));
    assert_eq!(rd(&p, SECRXSTAT) & 1, 1);
}

#[test]
fn statistics_clear_on_read() {
    let (sim, nic, p) = one_nic();
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    for _ in 0..3 {
        sim.inject(nic, &frame_to(MAC, 60));
    }
    sim.inject(nic, &frame_to([0xFF; 6], 100));
    assert_eq!(rd(&p, GPRC), 4);
    assert_eq!(rd(&p, GPRC), 0, "cleared by the read");
    assert_eq!(rd(&p, BPRC), 1);
    // Without the CRC, which is stripped (DPDK: "RX byte count not including CRC bytes when
    // CRC strip is enabled").
    assert_eq!(rd(&p, GORCL), 3 * 60 + 100);
    assert_eq!(rd(&p, GORCH), 0);
    assert_eq!(rd(&p, GORCL), 0);
    assert_eq!(rd(&p, TPR), 4);
    assert_eq!(rd(&p, QPRC0), 4);
    assert_eq!(rd(&p, QPRC0), 0);
    assert_eq!(rd(&p, 0x02F50), 4, "RXDGPC");
    // Undocumented-by-model counters read 0.
    assert_eq!(rd(&p, 0x04000), 0, "CRCERRS");
    assert_no_violations(&sim);
}
