//! Every violation kind is recorded (and nothing panics).

mod common;

use common::*;
use ixgbe_core::Platform;
use platform_mock::ViolationKind as K;

fn expect(sim: &platform_mock::Sim, kind: K) {
    let v = sim.violations();
    assert!(
        v.iter().any(|x| x.kind == kind),
        "expected a {kind:?} violation, got {v:#?}"
    );
    // Display works and names the kind.
    let s = v.iter().find(|x| x.kind == kind).unwrap().to_string();
    assert!(s.contains(&format!("{kind:?}")));
}

#[test]
fn reserved_bits() {
    for (off, val) in [
        (EIMC, 1u32 << 31),
        (DTXMXSZRQ, 0xFFFF),
        (CTRL, 1 << 0),
        (CTRL, 1 << 10),
        (FCTRL, 1 << 16),
        (RXCTRL, 1 << 4),
        (rx_base(0) + 0x14, SRRCTL_ADV_2K | 1 << 6),
        (tx_base(0) + 0x28, 1 << 23),
        (tx_base(0) + 0x28, 1 << 28),
        (HLREG0, 0x0801_2C03), // bit 3 must be 1
    ] {
        let (sim, _nic, p) = one_nic();
        wr(&p, off, val);
        assert_eq!(
            kinds(&sim),
            vec![K::ReservedBits],
            "write {val:#x} to {off:#x}"
        );
    }
}

#[test]
fn rscfrstsize_left_nonzero_when_rxen_set() {
    let (sim, _nic, p) = one_nic();
    // RDRXCTL's reset value: RSCFRSTSIZE != 0, RSCACKC = 0, FCOE_WRFIX = 0; all three flagged.
    wr(&p, SECRXCTRL, 2);
    wr(&p, RXCTRL, 1);
    assert_eq!(kinds(&sim), vec![K::ReservedBits; 3]);
    let what: Vec<String> = sim.violations().iter().map(|v| v.what.clone()).collect();
    for name in ["RSCFRSTSIZE", "RSCACKC", "FCOE_WRFIX"] {
        assert!(what.iter().any(|w| w.contains(name)), "{name}: {what:?}");
    }
}

#[test]
fn rxen_without_handshake() {
    let (sim, _nic, p) = one_nic();
    wr(&p, RDRXCTL, RDRXCTL_GOOD);
    wr(&p, RXCTRL, 1);
    assert_eq!(kinds(&sim), vec![K::RxEnableWithoutHandshake]);
}

#[test]
fn fctrl_changed_while_rx_enabled() {
    let (sim, _nic, p) = one_nic();
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    wr(&p, FCTRL, FCTRL_BAM | FCTRL_UPE);
    assert_eq!(kinds(&sim), vec![K::FctrlChangedWhileRxEnabled]);
}

#[test]
fn ring_reprogrammed_while_enabled() {
    let (sim, _nic, p) = one_nic();
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    let t = setup_tx(&p, 1, 8);
    let _ = &t;
    assert_no_violations(&sim);
    for off in [
        rx_base(0),
        rx_base(0) + 4,
        rx_base(0) + 8,
        rx_base(0) + 0x14,
        0x02100,
    ] {
        let v = rd(&p, off);
        // SRRCTL (and its alias): a change of the buffer size; only Drop_En may change.
        let srrctl = off == rx_base(0) + 0x14 || off == 0x02100;
        wr(&p, off, if srrctl { v ^ 1 } else { v });
    }
    for off in [tx_base(1), tx_base(1) + 4, tx_base(1) + 8] {
        let v = rd(&p, off);
        wr(&p, off, v);
    }
    let k = kinds(&sim);
    assert_eq!(k.len(), 7, "{:#?}", sim.violations());
    assert!(k.iter().all(|&x| x == K::RingReprogrammedWhileEnabled));
}

#[test]
fn tail_out_of_range_and_before_enable() {
    let (sim, _nic, p) = one_nic();
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    wr(&p, rx_base(0) + 0x18, 8);
    assert_eq!(kinds(&sim), vec![K::TailOutOfRange]);
    let (sim, _nic, p) = one_nic();
    let _t = setup_tx(&p, 0, 8);
    wr(&p, tx_base(0) + 0x18, 100);
    assert_eq!(kinds(&sim), vec![K::TailOutOfRange]);

    let (sim, _nic, p) = one_nic();
    let ring = p.dma_alloc(4096).unwrap();
    let b = bus(&p, &ring, 0);
    let base = rx_base(2);
    wr(&p, base, b as u32);
    wr(&p, base + 4, (b >> 32) as u32);
    wr(&p, base + 8, 1024);
    wr(&p, base + 0x28, ENABLE);
    wr(&p, base + 0x18, 63); // ENABLE not read back yet
    assert_eq!(kinds(&sim), vec![K::TailBeforeEnable]);
}

#[test]
fn unknown_read_only_and_unaligned() {
    let (sim, _nic, p) = one_nic();
    wr(&p, 0x0FFFC, 1);
    expect(&sim, K::UnknownRegister);
    wr(&p, 0x40000, 1);
    wr(&p, LINKS, 1);
    expect(&sim, K::ReadOnlyRegister);
    wr(&p, GPRC, 1);
    wr(&p, 0x2, 1);
    expect(&sim, K::UnalignedAccess);
    let k = kinds(&sim);
    assert_eq!(
        k,
        vec![
            K::UnknownRegister,
            K::UnknownRegister,
            K::ReadOnlyRegister,
            K::ReadOnlyRegister,
            K::UnalignedAccess
        ]
    );
}

#[test]
fn ring_alignment_and_length() {
    let (sim, _nic, p) = one_nic();
    wr(&p, rx_base(0), 0x1000_0040);
    expect(&sim, K::RingAlignment);
    wr(&p, tx_base(0) + 8, 100);
    expect(&sim, K::RingLength);
    let (sim, _nic, p) = one_nic();
    wr(&p, tx_base(3) + 0x28, ENABLE); // TDLEN still 0
    assert_eq!(kinds(&sim), vec![K::RingLength]);
}

#[test]
fn head_written_while_enabled() {
    let (sim, _nic, p) = one_nic();
    let _t = setup_tx(&p, 0, 8);
    wr(&p, tx_base(0) + 0x10, 0); // same value: tolerated
    assert_no_violations(&sim);
    wr(&p, tx_base(0) + 0x10, 5);
    assert_eq!(kinds(&sim), vec![K::HeadWrite]);
}

#[test]
fn tx_descriptor_format_and_length() {
    let (sim, nic, p) = one_nic();
    let t = setup_tx(&p, 0, 8);
    let f = frame_to(MAC_B, 60);
    // Legacy descriptor (DEXT = 0).
    t.put(&p, 0, &f, TX_EOP | TX_IFCS | TX_RS);
    wr(&p, tx_base(0) + 0x18, 1);
    assert_eq!(kinds(&sim), vec![K::TxDescriptorFormat]);
    // Zero length.
    t.put(&p, 1, &[], data_cmd());
    wr(&p, tx_base(0) + 0x18, 2);
    expect(&sim, K::TxDataLength);
    assert!(sim.take_transmitted(nic).is_empty());
    assert_eq!(sim.wire_counters(nic).tx_bad, 2);
    assert_eq!(rd(&p, tx_base(0) + 0x10), 2, "bad packets are consumed");
}

#[test]
fn rs_needed_at_least_once_every_40_descriptors() {
    let (sim, nic, p) = one_nic();
    let t = setup_tx(&p, 0, 128);
    let f = frame_to(MAC_B, 82);
    let middle = TX_IFCS | TX_DEXT | TX_DTYP_DATA;
    // A packet of 40 descriptors, RS only on the last: 39 in a row without it, allowed.
    for k in 0..40 {
        let cmd = if k == 39 { data_cmd() } else { middle };
        t.put(&p, k, &f[2 * k..2 * k + 2], cmd);
    }
    wr(&p, tx_base(0) + 0x18, 40);
    assert_no_violations(&sim);
    assert_eq!(sim.take_transmitted(nic).len(), 1);
    // 41 descriptors, RS on the last: 40 in a row without it.
    for k in 0..41 {
        let cmd = if k == 40 { data_cmd() } else { middle };
        t.put(&p, 40 + k, &f[2 * k..2 * k + 2], cmd);
    }
    wr(&p, tx_base(0) + 0x18, 81);
    assert_eq!(kinds(&sim), vec![K::TxDescriptorFormat]);
    assert!(sim.violations()[0].what.contains("without RS"));
}

#[test]
fn rx_descriptor_type() {
    let (sim, nic, p) = one_nic();
    let _r = setup_rx(&p, 0, 8, 2, None); // legacy DESCTYPE
    sim.inject(nic, &frame_to(MAC, 60));
    sim.inject(nic, &frame_to(MAC, 60));
    assert_eq!(kinds(&sim), vec![K::RxDescriptorType]);
}

#[test]
fn dma_outside_live_regions() {
    let (sim, nic, p) = one_nic();
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    // Point descriptor 0 at a bus address nobody owns.
    put_u64(&r.ring, 0, 0x1234_5678_0000);
    sim.inject(nic, &frame_to(MAC, 60));
    expect(&sim, K::DmaOutsideRegion);
    // A buffer that crosses a 2 MiB boundary is not contiguous in bus space.
    let (sim, _nic, p) = one_nic();
    let t = setup_tx(&p, 0, 8);
    let big = p.dma_alloc(ixgbe_core::DMA_PAGE_SIZE + 4096).unwrap();
    let addr = bus(&p, &big, ixgbe_core::DMA_PAGE_SIZE - 30);
    put_u64(&t.ring, 0, addr);
    put_u64(&t.ring, 8, u64::from(data_cmd() | 60));
    wr(&p, tx_base(0) + 0x18, 1);
    expect(&sim, K::DmaOutsideRegion);
}

#[test]
fn dma_free_in_use_and_bad_free() {
    let (sim, _nic, p) = one_nic();
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    // SAFETY: deliberately freeing a ring the device still uses; the model reports it and
    // skips later accesses (no frames arrive here).
    unsafe { p.dma_free(r.ring) };
    assert_eq!(kinds(&sim), vec![K::DmaFreeInUse]);
    let other = platform_mock::Sim::new();
    let o = other.add_nic(platform_mock::NicConfig::default());
    let op = other.platform(o);
    let foreign = op.dma_alloc(64).unwrap();
    let cookie_twin = p.dma_alloc(64).unwrap();
    // SAFETY: `foreign` belongs to another simulation: the model must refuse it without
    // touching it (it is freed properly by `op` below via its twin cookie check).
    let stolen =
        unsafe { ixgbe_core::DmaRegion::new(foreign.virt(), foreign.len(), cookie_twin.cookie()) };
    // SAFETY: see above; the cookie matches a live region but the address does not.
    unsafe { p.dma_free(stolen) };
    expect(&sim, K::BadDmaFree);
    // SAFETY: both regions come from their own platforms and are unused.
    unsafe {
        op.dma_free(foreign);
        p.dma_free(cookie_twin);
        p.dma_free(r.bufs);
    }
}

/// What Linux's ixgbe does on real boards is not a violation: FCTRL.DPF and PMCF
/// (§8.2.3.7.1), clearing FWSTS.FWRI, and Drop_En toggled in SRRCTL while the queue runs (its
/// watchdog does at every link-up). Changing the buffer size of a running queue still is one.
#[test]
fn what_linux_writes_on_real_boards_is_accepted() {
    let (sim, _nic, p) = one_nic();
    wr(&p, FCTRL, 1 << 13 | 1 << 12 | 1 << 10);
    assert_eq!(rd(&p, FCTRL), 1 << 13 | 1 << 12 | 1 << 10);
    wr(&p, 0x15F0C, 0x200); // FWSTS.FWRI: write 1 to clear
    assert_eq!(rd(&p, 0x15F0C), 0);
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, Some(1));
    wr(&p, rx_base(0) + 0x14, SRRCTL_ADV_2K | 1 << 28);
    assert_no_violations(&sim);
    wr(&p, rx_base(0) + 0x14, (SRRCTL_ADV_2K & !0x1F) | 4);
    assert_eq!(kinds(&sim), vec![K::RingReprogrammedWhileEnabled]);
}
