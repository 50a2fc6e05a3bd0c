//! RX/TX through hand-built rings, L2 filter, packet buffer, RSS, cables, faults.

mod common;

use std::time::Duration;

use common::*;
use ixgbe_core::{Platform, DMA_PAGE_SIZE};
use platform_mock::traffic::{CheckingSink, LineRateSource, PeerCounters};
use platform_mock::{toeplitz_hash, Fault, NicConfig, RxCorruption, Sim, ViolationKind};

const DD: u32 = 1;
const EOP: u32 = 2;

#[test]
fn rx_ring_receives_injected_frame() {
    let (sim, nic, p) = one_nic();
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    let f = frame_to(MAC, 100);
    sim.inject(nic, &f);
    assert_eq!(r.desc_status(0) & (DD | EOP), DD | EOP);
    assert_eq!(r.desc_len(0), 100, "CRC stripped");
    assert_eq!(r.buf(0, 100), f);
    assert_eq!(r.desc_status(1), 0);
    assert_eq!(rd(&p, rx_base(0) + 0x10), 1, "RDH advanced");
    let wc = sim.wire_counters(nic);
    assert_eq!((wc.rx_frames, wc.rx_delivered), (1, 1));
    assert_no_violations(&sim);
}

#[test]
fn rx_without_crc_strip_keeps_fcs() {
    let (sim, nic, p) = one_nic();
    wr(&p, HLREG0, 0x0801_2C0B & !(1 << 1));
    wr(&p, RDRXCTL, RDRXCTL_GOOD & !(1 << 1));
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    // setup_rx programs RDRXCTL_GOOD (CRCStrip = 1); put it back to 0 before traffic.
    wr(&p, RXCTRL, 0);
    wr(&p, RDRXCTL, RDRXCTL_GOOD & !(1 << 1));
    wr(&p, SECRXCTRL, 2);
    wr(&p, RXCTRL, 1);
    wr(&p, SECRXCTRL, 0);
    let f = frame_to(MAC, 60);
    sim.inject(nic, &f);
    assert_eq!(r.desc_len(0), 64);
    // Ethernet FCS of the frame, little-endian on the wire.
    let fcs = r.buf(0, 64);
    assert_eq!(&fcs[..60], &f[..]);
    assert_eq!(
        u32::from_le_bytes(fcs[60..64].try_into().unwrap()),
        !crc32_reference(&f)
    );
    assert_no_violations(&sim);
}

fn crc32_reference(data: &[u8]) -> u32 {
    // Bitwise CRC-32 (reflected 0xEDB88320), returned un-inverted for the assert above.
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    c
}

#[test]
fn crc_strip_mismatch_is_a_violation() {
    let (sim, nic, p) = one_nic();
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    wr(&p, RXCTRL, 0);
    wr(&p, RDRXCTL, RDRXCTL_GOOD & !(1 << 1));
    wr(&p, SECRXCTRL, 2);
    wr(&p, RXCTRL, 1);
    wr(&p, SECRXCTRL, 0);
    sim.inject(nic, &frame_to(MAC, 60));
    sim.inject(nic, &frame_to(MAC, 60));
    assert_eq!(kinds(&sim), vec![ViolationKind::CrcStripMismatch]);
}

#[test]
fn jumbo_frame_spans_descriptors() {
    let (sim, nic, p) = one_nic();
    wr(&p, HLREG0, 0x0801_2C0B | (1 << 2));
    wr(&p, 0x04268, 9018 << 16);
    let r = setup_rx(&p, 0, 8, (1 << 25) | 1, None); // 1 KiB buffers
    let f = frame_to(MAC, 2500);
    sim.inject(nic, &f);
    assert_eq!(r.desc_status(0) & (DD | EOP), DD);
    assert_eq!(r.desc_status(1) & (DD | EOP), DD);
    assert_eq!(r.desc_status(2) & (DD | EOP), DD | EOP);
    assert_eq!(
        (r.desc_len(0), r.desc_len(1), r.desc_len(2)),
        (1024, 1024, 452)
    );
    let mut got = r.buf(0, 1024);
    got.extend(r.buf(1, 1024));
    got.extend(r.buf(2, 452));
    assert_eq!(got, f);
    assert_no_violations(&sim);
}

#[test]
fn tx_descriptor_reaches_wire_with_padding() {
    let (sim, nic, p) = one_nic();
    let t = setup_tx(&p, 0, 8);
    let short = frame_to(MAC_B, 42);
    t.put(&p, 0, &short, data_cmd());
    let long = frame_to(MAC_B, 300);
    // Two-descriptor packet.
    t.put(&p, 1, &long[..100], TX_IFCS | TX_DEXT | TX_DTYP_DATA);
    t.put(&p, 2, &long[100..], data_cmd());
    wr(&p, tx_base(0) + 0x18, 3);
    let out = sim.take_transmitted(nic);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].len(), 60, "padded to 60 bytes (64 with FCS)");
    assert_eq!(&out[0][..42], &short[..]);
    assert!(out[0][42..].iter().all(|&b| b == 0));
    assert_eq!(out[1], long);
    assert!(t.dd(0) && !t.dd(1) && t.dd(2), "DD only where RS was set");
    assert_eq!(rd(&p, tx_base(0) + 0x10), 3, "TDH advanced");
    assert_eq!(rd(&p, GPTC), 2);
    assert_eq!(rd(&p, GOTCL), 64 + 304);
    assert_eq!(rd(&p, QPTC0_ALIAS), 2, "QPTC via 82598 alias");
    assert_eq!(rd(&p, QPTC0), 0, "already cleared");
    assert_no_violations(&sim);
}

#[test]
fn tx_waits_for_link_and_te() {
    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig::default());
    let p = sim.platform(nic);
    let t = setup_tx(&p, 0, 8);
    t.put(&p, 0, &frame_to(MAC_B, 60), data_cmd());
    wr(&p, tx_base(0) + 0x18, 1);
    assert!(sim.take_transmitted(nic).is_empty(), "link still down");
    sim.advance(Duration::from_millis(25));
    assert_eq!(
        sim.take_transmitted(nic).len(),
        1,
        "sent once the link is up"
    );
    assert_no_violations(&sim);
}

#[test]
fn l2_filter_unicast_broadcast_multicast() {
    let (sim, nic, p) = one_nic();
    let r = setup_rx(&p, 0, 16, SRRCTL_ADV_2K, None);
    wr(&p, RXCTRL, 0);
    wr(&p, FCTRL, 0);
    wr(&p, SECRXCTRL, 2);
    wr(&p, RXCTRL, 1);
    wr(&p, SECRXCTRL, 0);
    sim.inject(nic, &frame_to(MAC_B, 60)); // other unicast: dropped
    sim.inject(nic, &frame_to([0xFF; 6], 60)); // broadcast without BAM: dropped
    sim.inject(nic, &frame_to([0x01, 0, 0x5E, 0, 0, 1], 60)); // multicast: dropped
    sim.inject(nic, &frame_to(MAC, 60)); // own MAC: accepted
    assert_eq!(sim.wire_counters(nic).rx_filtered, 3);
    assert_eq!(rd(&p, rx_base(0) + 0x10), 1);
    assert_eq!(r.buf(0, 6), MAC);
    // FCTRL may change only while RXEN = 0.
    wr(&p, RXCTRL, 0);
    wr(&p, FCTRL, FCTRL_UPE | FCTRL_BAM);
    wr(&p, SECRXCTRL, 2);
    wr(&p, RXCTRL, 1);
    wr(&p, SECRXCTRL, 0);
    sim.inject(nic, &frame_to(MAC_B, 60));
    sim.inject(nic, &frame_to([0xFF; 6], 60));
    sim.inject(nic, &frame_to([0x01, 0, 0x5E, 0, 0, 1], 60)); // still dropped
    assert_eq!(rd(&p, rx_base(0) + 0x10), 3);
    assert_eq!(sim.wire_counters(nic).rx_filtered, 4);
    // MPE passes multicast and broadcast.
    wr(&p, RXCTRL, 0);
    wr(&p, FCTRL, FCTRL_MPE);
    wr(&p, SECRXCTRL, 2);
    wr(&p, RXCTRL, 1);
    wr(&p, SECRXCTRL, 0);
    sim.inject(nic, &frame_to([0x01, 0, 0x5E, 0, 0, 1], 60));
    sim.inject(nic, &frame_to([0xFF; 6], 60));
    assert_eq!(rd(&p, rx_base(0) + 0x10), 5);
    // A second RAR entry.
    wr(&p, RXCTRL, 0);
    wr(&p, FCTRL, 0);
    wr(
        &p,
        RAL0 + 8,
        u32::from_le_bytes([MAC_B[0], MAC_B[1], MAC_B[2], MAC_B[3]]),
    );
    wr(
        &p,
        RAL0 + 12,
        u32::from(MAC_B[4]) | u32::from(MAC_B[5]) << 8 | 1 << 31,
    );
    wr(&p, SECRXCTRL, 2);
    wr(&p, RXCTRL, 1);
    wr(&p, SECRXCTRL, 0);
    sim.inject(nic, &frame_to(MAC_B, 60));
    assert_eq!(rd(&p, rx_base(0) + 0x10), 6);
    assert_no_violations(&sim);
}

#[test]
fn rx_disabled_or_link_down_drops() {
    let (sim, nic, p) = one_nic();
    sim.inject(nic, &frame_to(MAC, 60));
    assert_eq!(sim.wire_counters(nic).rx_disabled, 1, "RXEN = 0");
    sim.set_link(nic, false);
    sim.inject(nic, &frame_to(MAC, 60));
    assert_eq!(sim.wire_counters(nic).rx_link_down, 1);
    assert_eq!(
        rd(&p, GPRC),
        1,
        "GPRC counts regardless of RXEN, not with link down"
    );
}

#[test]
fn no_descriptor_drop_with_drop_en() {
    let (sim, nic, p) = one_nic();
    // Ring of 8, tail 2: two free descriptors.
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K | DROP_EN, Some(2));
    for _ in 0..5 {
        sim.inject(nic, &frame_to(MAC, 60));
    }
    assert_eq!(sim.wire_counters(nic).rx_delivered, 2);
    assert_eq!(sim.wire_counters(nic).rx_dropped, 3);
    assert_eq!(rd(&p, QPRDC0), 3);
    assert_eq!(rd(&p, RXMPC0), 0);
    wr(&p, rx_base(0) + 0x18, 5);
    assert_eq!(
        sim.wire_counters(nic).rx_delivered,
        2,
        "dropped frames are gone"
    );
    assert_no_violations(&sim);
}

#[test]
fn no_descriptor_holds_without_drop_en_then_overflows() {
    let (sim, nic, p) = one_nic();
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, Some(1));
    let big = frame_to(MAC, 1514);
    sim.inject(nic, &frame_to(MAC, 60));
    sim.inject(nic, &big);
    sim.inject(nic, &big);
    assert_eq!(sim.wire_counters(nic).rx_delivered, 1);
    assert_eq!(rd(&p, QPRDC0), 0);
    // Held frames are delivered when RDT moves.
    wr(&p, rx_base(0) + 0x18, 3);
    assert_eq!(sim.wire_counters(nic).rx_delivered, 3);
    assert_eq!(r.desc_len(2), 1514);
    // Fill the packet buffer (512 KB; 1518 bytes each -> 345 frames fit).
    #[cfg(not(miri))]
    let (n, fit) = (400, 345);
    // Under Miri: a smaller packet buffer (RXPBSIZE[0] = 16 KB -> 10 frames fit).
    #[cfg(miri)]
    let (n, fit) = {
        wr(&p, RXPBSIZE0, 16 << 10);
        (15, 10)
    };
    for _ in 0..n {
        sim.inject(nic, &big);
    }
    let wc = sim.wire_counters(nic);
    assert_eq!(wc.rx_missed, n - fit);
    assert_eq!(u64::from(rd(&p, RXMPC0)), n - fit);
    assert_ne!(rd(&p, EICR) & (1 << 17), 0, "Rx Miss cause");
    assert_no_violations(&sim);
}

#[test]
fn disabled_queue_drops_into_qprdc() {
    let (sim, nic, p) = one_nic();
    wr(&p, RDRXCTL, RDRXCTL_GOOD);
    wr(&p, FCTRL, FCTRL_BAM);
    wr(&p, SECRXCTRL, 2);
    wr(&p, RXCTRL, 1);
    wr(&p, SECRXCTRL, 0);
    sim.inject(nic, &frame_to(MAC, 60));
    assert_eq!(rd(&p, QPRDC0), 1);
    assert_no_violations(&sim);
}

/// DS §7.1.2.8.3 verification suite.
const KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
];
/// (src ip, src port, dst ip, dst port, IPv4 hash, TCP/IPv4 hash)
type Vector = ([u8; 4], u16, [u8; 4], u16, u32, u32);
const VECTORS: [Vector; 3] = [
    (
        [66, 9, 149, 187],
        2794,
        [161, 142, 100, 80],
        1766,
        0x323e_8fc2,
        0x51cc_c178,
    ),
    (
        [199, 92, 111, 2],
        14230,
        [65, 69, 140, 83],
        4739,
        0xd718_262a,
        0xc626_b0ea,
    ),
    (
        [24, 19, 198, 95],
        12898,
        [12, 22, 207, 184],
        38024,
        0xd2d0_a5de,
        0x5c2b_394a,
    ),
];

#[test]
fn toeplitz_verification_vectors() {
    for (src, sport, dst, dport, h_ip, h_tcp) in VECTORS {
        let mut input = Vec::new();
        input.extend(src);
        input.extend(dst);
        assert_eq!(toeplitz_hash(&KEY, &input), h_ip);
        input.extend(sport.to_be_bytes());
        input.extend(dport.to_be_bytes());
        assert_eq!(toeplitz_hash(&KEY, &input), h_tcp);
    }
}

#[test]
fn rss_selects_queue_and_writes_hash() {
    let (sim, nic, p) = one_nic();
    // Key, RETA entry i = i % 4, MRQC = RSS | IPv4 | UDP/IPv4, PCSD.
    for k in 0..10 {
        let w = u32::from_le_bytes(KEY[4 * k..4 * k + 4].try_into().unwrap());
        wr(&p, RSSRK + 4 * k as u32, w);
    }
    for n in 0..32 {
        wr(&p, RETA + 4 * n, 0x0302_0100);
    }
    wr(&p, MRQC, 1 | (1 << 17) | (1 << 22));
    wr(&p, RXCSUM, 1 << 13);
    let rings: Vec<_> = (0..4)
        .map(|q| setup_rx(&p, q, 8, SRRCTL_ADV_2K, None))
        .collect();
    for (src, sport, dst, dport, h_ip, _) in VECTORS {
        // UDP/IPv4 hash uses the same input as TCP/IPv4.
        let f = udp_frame(MAC, src, dst, sport, dport, 80);
        sim.inject(nic, &f);
        let mut input = Vec::new();
        input.extend(src);
        input.extend(dst);
        input.extend(sport.to_be_bytes());
        input.extend(dport.to_be_bytes());
        let h = toeplitz_hash(&KEY, &input);
        let q = (h & 0x7F) as usize % 4;
        let r = &rings[q];
        let head = rd(&p, rx_base(q as u32) + 0x10) as usize;
        let i = head - 1;
        assert_eq!(r.desc_status(i) & (DD | EOP), DD | EOP);
        let lo = r.desc_lo(i);
        assert_eq!((lo >> 32) as u32, h, "RSS hash in the write-back");
        assert_eq!(lo as u32 & 0xF, 7, "RSS type UDP/IPv4");
        // Non-UDP: IPv4-only hash.
        let mut f2 = f.clone();
        f2[23] = 47; // GRE
        sim.inject(nic, &f2);
        let q2 = (h_ip & 0x7F) as usize % 4;
        let head2 = rd(&p, rx_base(q2 as u32) + 0x10) as usize;
        let lo2 = rings[q2].desc_lo(head2 - 1);
        assert_eq!((lo2 >> 32) as u32, h_ip);
        assert_eq!(lo2 as u32 & 0xF, 2, "RSS type IPv4");
    }
    assert_no_violations(&sim);
}

/// The model keeps the key's table and RETA decoded per NIC: what software writes to RSSRK
/// and RETA (here through their aliases at 0x5C80 and 0x5C00) between frames applies from the
/// next frame on.
#[test]
fn rss_follows_key_and_reta_written_between_frames() {
    let (sim, nic, p) = one_nic();
    let write_key = |base: u32, key: &[u8; 40]| {
        for k in 0..10 {
            let w = u32::from_le_bytes(key[4 * k..4 * k + 4].try_into().unwrap());
            wr(&p, base + 4 * k as u32, w);
        }
    };
    write_key(RSSRK, &KEY);
    for n in 0..32 {
        wr(&p, RETA + 4 * n, 0x0302_0100);
    }
    wr(&p, MRQC, 1 | (1 << 17) | (1 << 22));
    wr(&p, RXCSUM, 1 << 13);
    let rings: Vec<_> = (0..4)
        .map(|q| setup_rx(&p, q, 32, SRRCTL_ADV_2K, None))
        .collect();
    let mut other = KEY;
    other.reverse();
    const UDP: u32 = 1 | (1 << 17) | (1 << 22);
    const IP_ONLY: u32 = 1 | (1 << 17);
    // (key, RETA word, whether entry e's queue is 3 - e % 4 rather than e % 4, MRQC)
    let steps = [
        (&KEY, 0x0302_0100, false, UDP),
        (&other, 0x0302_0100, false, UDP),
        (&other, 0x0001_0203, true, UDP),
        // The field enables change: the addresses alone, the same flows (the model keeps
        // recent inputs' hashes: they must follow the key, RETA and MRQC written since).
        (&other, 0x0001_0203, true, IP_ONLY),
        (&KEY, 0x0001_0203, true, IP_ONLY),
        (&KEY, 0x0302_0100, false, UDP),
    ];
    let mut seen = [0usize; 4];
    for (step, (key, reta, reversed, mrqc)) in steps.into_iter().enumerate() {
        if step > 0 {
            write_key(0x5C80, key);
            for n in 0..32 {
                wr(&p, 0x5C00 + 4 * n, reta);
            }
            wr(&p, MRQC, mrqc);
        }
        // Each flow twice: the second frame's hash from what the model kept of the first.
        for (src, sport, dst, dport, _, _) in VECTORS.iter().chain(VECTORS.iter()) {
            sim.inject(nic, &udp_frame(MAC, *src, *dst, *sport, *dport, 80));
            let mut input = Vec::new();
            input.extend(src);
            input.extend(dst);
            if mrqc == UDP {
                input.extend(sport.to_be_bytes());
                input.extend(dport.to_be_bytes());
            }
            let h = toeplitz_hash(key, &input);
            let q = if reversed {
                3 - h as usize % 4
            } else {
                h as usize % 4
            };
            seen[q] += 1;
            assert_eq!(
                rd(&p, rx_base(q as u32) + 0x10) as usize,
                seen[q],
                "step {step}"
            );
            let lo = rings[q].desc_lo(seen[q] - 1);
            assert_eq!(
                (lo >> 32) as u32,
                h,
                "step {step}: the hash in the write-back"
            );
            // RSS type: UDP/IPv4 (7) or IPv4 (2).
            let t = if mrqc == UDP { 7 } else { 2 };
            assert_eq!(lo & 0xF, t, "step {step}: the RSS type");
        }
    }
    assert_no_violations(&sim);
}

#[test]
fn two_cabled_nics_exchange_frames() {
    let sim = Sim::new();
    let a = sim.add_nic(NicConfig {
        mac: MAC,
        ..NicConfig::default()
    });
    let b = sim.add_nic(NicConfig {
        mac: MAC_B,
        ..NicConfig::default()
    });
    sim.cable(a, b);
    sim.advance(Duration::from_millis(25));
    let pa = sim.platform(a);
    let pb = sim.platform(b);
    let ta = setup_tx(&pa, 0, 8);
    let rb = setup_rx(&pb, 0, 8, SRRCTL_ADV_2K, None);
    let tb = setup_tx(&pb, 0, 8);
    let ra = setup_rx(&pa, 0, 8, SRRCTL_ADV_2K, None);
    let f = frame_to(MAC_B, 128);
    ta.put(&pa, 0, &f, data_cmd());
    wr(&pa, tx_base(0) + 0x18, 1);
    assert_eq!(rb.desc_status(0) & (DD | EOP), DD | EOP);
    assert_eq!(rb.buf(0, 128), f);
    let g = frame_to(MAC, 70);
    tb.put(&pb, 0, &g, data_cmd());
    wr(&pb, tx_base(0) + 0x18, 1);
    assert_eq!(ra.buf(0, 70), g);
    assert!(sim.take_transmitted(a).is_empty(), "consumed by the cable");
    assert_no_violations(&sim);
}

#[test]
fn loopback_sends_tx_to_own_rx() {
    let (sim, _nic, p) = one_nic();
    wr(&p, HLREG0, 0x0801_2C0B | (1 << 15));
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    let t = setup_tx(&p, 0, 8);
    let f = frame_to(MAC, 90);
    t.put(&p, 0, &f, data_cmd());
    wr(&p, tx_base(0) + 0x18, 1);
    assert_eq!(r.buf(0, 90), f);
    assert_no_violations(&sim);
}

#[test]
fn rx_writeback_corruption_faults() {
    let (sim, nic, p) = one_nic();
    let r = setup_rx(&p, 0, 16, SRRCTL_ADV_2K, None);
    let cases = [
        (RxCorruption::LengthTooLong, 0),
        (RxCorruption::ErrorBit, 1),
        (RxCorruption::NoEop, 2),
        (RxCorruption::ZeroLength, 3),
    ];
    for (c, i) in cases {
        sim.set_fault(
            nic,
            Fault::RxWriteback {
                corruption: c,
                count: 1,
            },
        );
        sim.inject(nic, &frame_to(MAC, 60));
        let st = r.desc_status(i);
        match c {
            RxCorruption::LengthTooLong => assert!(r.desc_len(i) > 2048),
            RxCorruption::ErrorBit => assert_ne!(st & (1 << 29), 0),
            RxCorruption::NoEop => assert_eq!(st & (DD | EOP), DD),
            RxCorruption::ZeroLength => assert_eq!(r.desc_len(i), 0),
        }
    }
    // Count exhausted: next write-back is clean.
    sim.inject(nic, &frame_to(MAC, 60));
    assert_eq!(r.desc_status(4) & (DD | EOP | 1 << 29), DD | EOP);
    assert_eq!(r.desc_len(4), 60);
}

#[test]
fn tx_stall_and_spurious_done_faults() {
    let (sim, nic, p) = one_nic();
    let t = setup_tx(&p, 0, 8);
    sim.set_fault(nic, Fault::StallTx { queue: 0 });
    t.put(&p, 0, &frame_to(MAC_B, 60), data_cmd());
    wr(&p, tx_base(0) + 0x18, 1);
    sim.advance(Duration::from_millis(1));
    assert_eq!(rd(&p, tx_base(0) + 0x10), 0, "head does not move");
    assert!(sim.take_transmitted(nic).is_empty());
    sim.clear_faults(nic);
    sim.advance(Duration::from_micros(1));
    assert_eq!(rd(&p, tx_base(0) + 0x10), 1);
    assert_eq!(sim.take_transmitted(nic).len(), 1);

    sim.set_fault(nic, Fault::TxSpuriousDone { queue: 0 });
    t.put(&p, 1, &frame_to(MAC_B, 60), data_cmd());
    t.put(&p, 2, &frame_to(MAC_B, 60), data_cmd());
    wr(&p, tx_base(0) + 0x18, 2);
    assert!(t.dd(1));
    assert!(t.dd(2), "DD on a descriptor beyond TDT");
    assert_eq!(sim.take_transmitted(nic).len(), 1);
}

#[test]
fn dma_bus_addresses_differ_and_are_not_contiguous() {
    let (sim, _nic, p) = one_nic();
    let r = p.dma_alloc(DMA_PAGE_SIZE + 4096).unwrap();
    let v0 = r.virt().as_ptr();
    let b0 = p.virt_to_phys(v0).unwrap();
    assert_ne!(b0, v0 as u64);
    assert_eq!(b0 % 4096, 0);
    let b_last = bus(&p, &r, DMA_PAGE_SIZE - 1);
    assert_eq!(
        b_last,
        b0 + DMA_PAGE_SIZE as u64 - 1,
        "contiguous inside a chunk"
    );
    let b1 = bus(&p, &r, DMA_PAGE_SIZE);
    assert_ne!(b1, b0 + DMA_PAGE_SIZE as u64, "not contiguous across 2 MiB");
    let r2 = p.dma_alloc(100).unwrap();
    let b2 = bus(&p, &r2, 0);
    assert!(b2 != b0 && b2 != b1);
    assert_eq!(p.virt_to_phys(std::ptr::null()), None);
    // SAFETY: regions from this platform, not used by the device.
    unsafe {
        p.dma_free(r);
        p.dma_free(r2);
    }
    assert_eq!(p.virt_to_phys(v0), None, "freed");
    assert_no_violations(&sim);
}

#[test]
fn line_rate_source_and_checking_sink() {
    let sim = Sim::new();
    let a = sim.add_nic(NicConfig {
        mac: MAC,
        ..NicConfig::default()
    });
    let counters = PeerCounters::new();
    let src = LineRateSource::new(MAC)
        .with_flows(4)
        .with_counters(counters.clone());
    sim.attach_source(a, Box::new(src));
    // 10 us of virtual time: 10e-6 * 14.88e6 = 148 frames.
    sim.advance(Duration::from_micros(10));
    let sent = counters.snapshot().0;
    assert!((147..=149).contains(&sent), "sent {sent}");
    // Frames arrive on NIC a (RXEN = 0, so they are dropped there).
    assert_eq!(sim.wire_counters(a).rx_frames, sent);
    // NIC b in a world without a source: send a few source-format frames into the sink.
    let sim = Sim::new();
    let b = sim.add_nic(NicConfig {
        mac: MAC_B,
        ..NicConfig::default()
    });
    sim.attach_sink(b, Box::new(CheckingSink::with_counters(counters.clone())));
    sim.advance(Duration::from_millis(25));
    let pb = sim.platform(b);
    let t = setup_tx(&pb, 0, 8);
    let mut chk = CheckingSink::new();
    let mut frames = Vec::new();
    let mut gen = LineRateSource::new(MAC_B)
        .with_frame_size(128)
        .with_count(3);
    use platform_mock::TrafficSource;
    gen.poll(Duration::from_secs(1), &mut |f| frames.push(f.to_vec()));
    assert_eq!(frames.len(), 3);
    for f in &frames {
        assert!(chk.check(f));
    }
    for (i, f) in frames.iter().enumerate() {
        t.put(&pb, i, f, data_cmd());
    }
    wr(&pb, tx_base(0) + 0x18, 3);
    let (_, received, corrupted, lost, _) = counters.snapshot();
    assert_eq!((received, corrupted, lost), (3, 0, 0));
    // A corrupted and a skipped frame.
    let mut bad = frames[2].clone();
    bad[100] ^= 1;
    assert!(!chk.check(&bad));
    let mut more = Vec::new();
    gen = LineRateSource::new(MAC_B).with_count(5);
    gen.poll(Duration::from_secs(1), &mut |f| more.push(f.to_vec()));
    let mut chk2 = CheckingSink::new();
    chk2.check(&more[0]);
    chk2.check(&more[3]);
    let c2 = chk2.counters().snapshot();
    assert_eq!((c2.1, c2.2, c2.3), (2, 0, 2));
}

#[test]
fn source_burst_is_capped() {
    let mut src = LineRateSource::new(MAC).with_max_burst(10);
    use platform_mock::TrafficSource;
    let mut n = 0;
    src.poll(Duration::from_secs(1), &mut |_| n += 1);
    assert_eq!(n, 10);
    n = 0;
    src.poll(Duration::from_secs(1), &mut |_| n += 1);
    assert_eq!(n, 0, "backlog skipped");
}

#[test]
fn tiny_tx_frame_without_padding() {
    let (sim, nic, p) = one_nic();
    wr(&p, HLREG0, 0x0801_2C0B & !(1 << 10));
    let t = setup_tx(&p, 0, 8);
    t.put(&p, 0, &[0xAB; 17], data_cmd());
    wr(&p, tx_base(0) + 0x18, 1);
    assert_eq!(sim.take_transmitted(nic), vec![vec![0xAB; 17]]);
    assert_eq!(rd(&p, GPTC), 0, "under 64 bytes: not a good packet");
    assert_no_violations(&sim);
}

#[test]
fn tx_packets_under_17_bytes_are_a_violation_and_dropped() {
    let (sim, nic, p) = one_nic();
    let t = setup_tx(&p, 0, 8);
    t.put(&p, 0, &[0xAB; 16], data_cmd());
    wr(&p, tx_base(0) + 0x18, 1);
    assert_eq!(sim.take_transmitted(nic), Vec::<Vec<u8>>::new());
    assert_eq!(kinds(&sim), [ViolationKind::TxDataLength]);
}

#[test]
fn tx_head_write_back() {
    let (sim, nic, p) = one_nic();
    let t = setup_tx(&p, 0, 8);
    let hwb = p.dma_alloc(64).unwrap();
    put_u64(&hwb, 0, 0xFFFF_FFFF);
    let b = bus(&p, &hwb, 0);
    wr(&p, tx_base(0) + 0x38, b as u32 | 1);
    wr(&p, tx_base(0) + 0x3C, (b >> 32) as u32);
    for i in 0..3 {
        t.put(&p, i, &frame_to(MAC_B, 60), data_cmd());
    }
    wr(&p, tx_base(0) + 0x18, 3);
    assert_eq!(get_u64(&hwb, 0) as u32, 3, "head written to host memory");
    assert!(
        !t.dd(0) && !t.dd(2),
        "no descriptor write-back in head write-back mode"
    );
    assert_eq!(sim.take_transmitted(nic).len(), 3);
    assert_no_violations(&sim);
}

#[test]
fn source_frames_reach_rx_ring_during_advance() {
    let (sim, nic, p) = one_nic();
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    let src = LineRateSource::new(MAC).with_count(5);
    let counters = src.counters();
    sim.attach_source(nic, Box::new(src));
    sim.advance(Duration::from_micros(5));
    assert_eq!(counters.snapshot().0, 5);
    let mut chk = CheckingSink::new();
    for i in 0..5 {
        assert_eq!(r.desc_status(i) & (DD | EOP), DD | EOP);
        assert!(chk.check(&r.buf(i, r.desc_len(i) as usize)));
    }
    assert_eq!(chk.counters().snapshot().3, 0, "no gaps");
    // Ring has 7 usable descriptors: the rest of a longer burst waits in the packet buffer.
    assert_no_violations(&sim);
}
