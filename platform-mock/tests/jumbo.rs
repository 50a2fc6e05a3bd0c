//! Jumbo frames in the model: HLREG0.JUMBOEN and MAXFRS.MFS on receive (§8.2.3.22.8,
//! §8.2.3.22.13, ROC §8.2.3.23.52), frames spread over descriptors with EOP on the last
//! (§7.1.6), and multi-descriptor packets on transmit (§7.2.3).

mod common;

use common::*;
use platform_mock::{SimPlatform, ViolationKind};

const DD: u32 = 1;
const EOP: u32 = 2;
const MAXFRS: u32 = 0x04268;
const ROC: u32 = 0x040AC;
const HLREG0_JUMBOEN: u32 = 1 << 2;
/// 1 KB buffers, advanced one-buffer descriptors.
const SRRCTL_ADV_1K: u32 = (1 << 25) | 1;

/// A VLAN-tagged (802.1Q) frame of `len` bytes.
fn tagged(len: usize) -> Vec<u8> {
    let mut f = frame_to(MAC, len);
    f[12..14].copy_from_slice(&0x8100u16.to_be_bytes());
    f
}

#[test]
fn without_jumboen_the_limit_is_1518_whatever_maxfrs() {
    let (sim, nic, p) = one_nic();
    wr(&p, MAXFRS, 9728 << 16);
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    sim.inject(nic, &frame_to(MAC, 1515)); // 1519 with CRC
    sim.inject(nic, &frame_to(MAC, 1514));
    sim.inject(nic, &tagged(1518)); // a VLAN tag may add 4
    sim.inject(nic, &tagged(1519));
    assert_eq!(rd(&p, ROC), 2);
    assert_eq!((r.desc_len(0), r.desc_len(1)), (1514, 1518));
    assert_eq!(r.desc_status(2), 0);
    assert_no_violations(&sim);
}

#[test]
fn with_jumboen_maxfrs_decides_and_frames_spread_over_buffers() {
    let (sim, nic, p) = one_nic();
    wr(&p, HLREG0, rd(&p, HLREG0) | HLREG0_JUMBOEN);
    wr(&p, MAXFRS, 4000 << 16);
    let r = setup_rx(&p, 0, 16, SRRCTL_ADV_1K, None);
    let f = frame_to(MAC, 3996); // 4000 with CRC: the largest
    sim.inject(nic, &frame_to(MAC, 3997));
    sim.inject(nic, &f);
    assert_eq!(rd(&p, ROC), 1);
    let lens: Vec<u32> = (0..4).map(|i| r.desc_len(i)).collect();
    assert_eq!(lens, [1024, 1024, 1024, 924]);
    let eops: Vec<u32> = (0..4).map(|i| r.desc_status(i) & (DD | EOP)).collect();
    assert_eq!(eops, [DD, DD, DD, DD | EOP]);
    let got: Vec<u8> = (0..4)
        .flat_map(|i| r.buf(i, r.desc_len(i) as usize))
        .collect();
    assert_eq!(got, f);
    // The largest MAXFRS the driver uses, 9728: ten 1 KB buffers, the last one 508 bytes.
    wr(&p, MAXFRS, 9728 << 16);
    let big = frame_to(MAC, 9724);
    sim.inject(nic, &big);
    sim.inject(nic, &frame_to(MAC, 9725));
    assert_eq!(rd(&p, ROC), 1);
    let got: Vec<u8> = (4..14)
        .flat_map(|i| r.buf(i, r.desc_len(i) as usize))
        .collect();
    assert_eq!(got, big);
    assert_eq!(r.desc_status(13) & (DD | EOP), DD | EOP);
    assert_eq!(r.desc_len(13), 508);
    assert_no_violations(&sim);
}

#[test]
fn a_frame_waits_until_the_ring_has_room_for_all_its_descriptors() {
    let (sim, nic, p) = one_nic();
    wr(&p, HLREG0, rd(&p, HLREG0) | HLREG0_JUMBOEN);
    wr(&p, MAXFRS, 9728 << 16);
    // Four descriptors given to the device (RDT = 4): a five-buffer frame does not fit, it
    // waits in the packet buffer (Drop_En = 0) and goes in once the tail moves.
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_1K, Some(4));
    let f = frame_to(MAC, 4500);
    sim.inject(nic, &f);
    assert_eq!(r.desc_status(0), 0);
    wr(&p, rx_base(0) + 0x18, 7);
    sim.advance(std::time::Duration::from_micros(10));
    assert_eq!(r.desc_status(4) & (DD | EOP), DD | EOP);
    let got: Vec<u8> = (0..5)
        .flat_map(|i| r.buf(i, r.desc_len(i) as usize))
        .collect();
    assert_eq!(got, f);
    assert_no_violations(&sim);
}

/// Puts `frame` into descriptors `first..` of `t`, `seg` bytes each (at most 2048), EOP and RS
/// on the last only; returns the next free descriptor.
fn put_packet(p: &SimPlatform, t: &TxRing, first: usize, frame: &[u8], seg: usize) -> usize {
    let parts: Vec<&[u8]> = frame.chunks(seg).collect();
    for (k, part) in parts.iter().enumerate() {
        let cmd = if k + 1 == parts.len() {
            data_cmd()
        } else {
            TX_IFCS | TX_DEXT | TX_DTYP_DATA
        };
        t.put(p, first + k, part, cmd);
    }
    first + parts.len()
}

#[test]
fn tx_gathers_segments_until_eop() {
    let (sim, nic, p) = one_nic();
    let t = setup_tx(&p, 0, 64);
    let big = frame_to(MAC_B, 9724);
    let mid = frame_to(MAC_B, 2049);
    let next = put_packet(&p, &t, 0, &big, 2048);
    assert_eq!(next, 5);
    let next = put_packet(&p, &t, next, &mid, 1000);
    // The tail stops inside a packet: the device sends the first and waits for the rest.
    wr(&p, tx_base(0) + 0x18, next as u32 - 1);
    assert_eq!(sim.take_transmitted(nic), std::slice::from_ref(&big));
    assert_eq!(rd(&p, tx_base(0) + 0x10), 5, "TDH at the packet's end");
    wr(&p, tx_base(0) + 0x18, next as u32);
    assert_eq!(sim.take_transmitted(nic), [mid]);
    let dd: Vec<bool> = (0..next).map(|i| t.dd(i)).collect();
    assert_eq!(dd, [false, false, false, false, true, false, false, true]);
    assert_eq!(rd(&p, GPTC), 2);
    assert_eq!(rd(&p, GOTCL), 9728 + 2053);
    assert_no_violations(&sim);
}

#[test]
fn tx_packets_of_more_than_40_descriptors_without_rs_are_a_violation() {
    let (sim, nic, p) = one_nic();
    let t = setup_tx(&p, 0, 128);
    let forty = frame_to(MAC_B, 40 * 50);
    let next = put_packet(&p, &t, 0, &forty, 50);
    wr(&p, tx_base(0) + 0x18, next as u32);
    assert_eq!(sim.take_transmitted(nic).len(), 1);
    assert_no_violations(&sim);
    let more = frame_to(MAC_B, 41 * 50);
    let end = put_packet(&p, &t, next, &more, 50);
    wr(&p, tx_base(0) + 0x18, end as u32);
    assert_eq!(kinds(&sim), [ViolationKind::TxDescriptorFormat]);
}

#[test]
fn tx_packets_beyond_the_packet_buffer_margin_are_a_violation() {
    let (sim, nic, p) = one_nic();
    let t = setup_tx(&p, 0, 64);
    // TXPBSIZE 160 KB − TXPBTHRESH 150 KB (the reset values): 10 KB with CRC.
    let fits = frame_to(MAC_B, 10 * 1024 - 4);
    let next = put_packet(&p, &t, 0, &fits, 2048);
    wr(&p, tx_base(0) + 0x18, next as u32);
    assert_no_violations(&sim);
    let beyond = frame_to(MAC_B, 10 * 1024 - 3);
    let end = put_packet(&p, &t, next, &beyond, 2048);
    wr(&p, tx_base(0) + 0x18, end as u32);
    assert_eq!(kinds(&sim), [ViolationKind::TxDataLength]);
    assert_eq!(sim.take_transmitted(nic).len(), 2);
}
