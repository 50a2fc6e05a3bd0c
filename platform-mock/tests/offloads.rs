//! The model's checksum and VLAN offloads through hand-built rings: Rx checksum status and error
//! bits (§7.1.11), VLAN stripping (RXDCTL.VME) and filtering (VLNCTRL.VFE, VFTA), Tx context
//! descriptors (§7.2.3.2.3) with IXSM / TXSM and VLE, and the violations for malformed ones.

mod common;

use common::*;
use platform_mock::{SimPlatform, ViolationKind};

const DD: u32 = 1;
const EOP: u32 = 2;
const VP: u32 = 1 << 3;
const UDPCS: u32 = 1 << 4;
const L4CS: u32 = 1 << 5;
const IPCS: u32 = 1 << 6;
const L4E: u32 = 1 << 30;
const IPE: u32 = 1 << 31;
const VLNCTRL: u32 = 0x05088;
const VFTA: u32 = 0x0A000;
const VME: u32 = 1 << 30;

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        acc += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc
}

/// `frame` with an 802.1Q tag `tci` after the MAC addresses.
fn tagged(frame: &[u8], tci: u16) -> Vec<u8> {
    let mut t = frame[..12].to_vec();
    t.extend_from_slice(&[0x81, 0x00]);
    t.extend_from_slice(&tci.to_be_bytes());
    t.extend_from_slice(&frame[12..]);
    t
}

/// A UDP/IPv4 frame to MAC with right IPv4 header and UDP checksums.
fn good_udp(len: usize) -> Vec<u8> {
    let mut f = frame_to(MAC, len);
    let c = !(sum16(&f[14..34], 0) as u16);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f[38..40].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    let pseudo = sum16(&f[26..34], 17 + (len - 34) as u32);
    let c = !(sum16(&f[34..], pseudo) as u16);
    f[40..42].copy_from_slice(&c.to_be_bytes());
    f
}

#[test]
fn rx_write_back_carries_checksum_results() {
    let (sim, nic, p) = one_nic();
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    let good = good_udp(100);
    let mut bad_ip = good.clone();
    bad_ip[24] ^= 0x40;
    let mut bad_udp = good.clone();
    bad_udp[50] ^= 1; // payload: the UDP checksum no longer matches
    let no_udp_sum = frame_to(MAC, 100); // IPv4 checksum and UDP checksum 0
    for f in [&good, &bad_ip, &bad_udp, &no_udp_sum, &tagged(&good, 7)] {
        sim.inject(nic, f);
    }
    let st = |i| r.desc_status(i) & (DD | EOP | UDPCS | L4CS | IPCS | L4E | IPE | VP);
    let ok = DD | EOP | IPCS | L4CS | UDPCS;
    assert_eq!(st(0), ok);
    assert_eq!(st(1), ok | IPE);
    assert_eq!(st(2), ok | L4E);
    assert_eq!(
        st(3),
        ok | IPE | L4E,
        "no header checksum; no UDP checksum (erratum)"
    );
    assert_eq!(st(4), ok, "tagged, not stripped: checked all the same");
    assert_eq!(r.desc_len(4), 104);
    assert_no_violations(&sim);
}

#[test]
fn vme_strips_the_tag_into_the_write_back() {
    let (sim, nic, p) = one_nic();
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    let good = good_udp(100);
    // Stripping off: the tag stays, VP stays clear.
    sim.inject(nic, &tagged(&good, 0xA00C));
    assert_eq!(r.desc_status(0) & VP, 0);
    assert_eq!(r.buf(0, 104), tagged(&good, 0xA00C));
    wr(&p, rx_base(0) + 0x28, rd(&p, rx_base(0) + 0x28) | VME);
    sim.inject(nic, &tagged(&good, 0xA00C));
    sim.inject(nic, &good);
    assert_eq!(r.desc_status(1) & (VP | IPCS | L4E), VP | IPCS);
    assert_eq!(r.desc_len(1), 100);
    assert_eq!(
        get_u64(&r.ring, 16 + 8) >> 48,
        0xA00C,
        "tag in bits 127:112"
    );
    assert_eq!(r.buf(1, 100), good);
    assert_eq!(r.desc_status(2) & VP, 0, "untagged: nothing stripped");
    assert_eq!(get_u64(&r.ring, 32 + 8) >> 48, 0);
    assert_eq!(rd(&p, QPRC0), 3);
    assert_no_violations(&sim);
}

#[test]
fn vfta_decides_for_tagged_frames_only_with_vfe() {
    let (sim, nic, p) = one_nic();
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    let good = good_udp(80);
    for n in 0..128 {
        wr(&p, VFTA + 4 * n, 0);
    }
    sim.inject(nic, &tagged(&good, 100));
    assert_eq!(
        r.desc_status(0) & DD,
        DD,
        "VFE clear: the table does not decide"
    );
    wr(&p, VLNCTRL, rd(&p, VLNCTRL) | 1 << 30);
    wr(&p, VFTA + 4 * (100 / 32), 1 << (100 % 32));
    // PCP and DEI do not matter, only the VID.
    for (f, pass) in [
        (tagged(&good, 100 | 0xE000), true),
        (tagged(&good, 101), false),
        (good.clone(), true),
        (tagged(&good, 4095), false),
    ] {
        let before = sim.wire_counters(nic).rx_filtered;
        sim.inject(nic, &f);
        assert_eq!(
            sim.wire_counters(nic).rx_filtered,
            before + u64::from(!pass)
        );
    }
    assert_eq!(rd(&p, rx_base(0) + 0x10), 3, "three frames delivered");
    assert_no_violations(&sim);
}

/// Writes a context descriptor at `i`.
fn put_context(t: &TxRing, i: usize, vlan: u16, maclen: u32, iplen: u32, tucmd: u32, idx: u32) {
    let w0 = u64::from(u32::from(vlan) << 16 | maclen << 9 | iplen);
    let w1 = u64::from(tucmd | 0b0010 << 20 | TX_DEXT) | u64::from(idx << 4) << 32;
    put_u64(&t.ring, 16 * i, w0);
    put_u64(&t.ring, 16 * i + 8, w1);
}

/// Writes a data descriptor at `i` for `data` (buffer slot `i`) with POPTS and IDX.
fn put_data(p: &SimPlatform, t: &TxRing, i: usize, data: &[u8], vle: bool, popts: u32, idx: u32) {
    let cmd = data_cmd() | if vle { 1 << 30 } else { 0 };
    t.put(p, i, data, cmd);
    let olinfo = (data.len() as u32) << 14 | popts << 8 | idx << 4;
    put_u64(
        &t.ring,
        16 * i + 8,
        u64::from(cmd | data.len() as u32) | u64::from(olinfo) << 32,
    );
}

const IPV4: u32 = 1 << 10;
const IXSM: u32 = 1;
const TXSM: u32 = 2;

#[test]
fn tx_context_fills_checksums_and_inserts_the_tag() {
    let (sim, nic, p) = one_nic();
    let t = setup_tx(&p, 0, 16);
    // Software leaves the IPv4 checksum 0 and the pseudo-header sum in the UDP field.
    let mut f = frame_to(MAC_B, 90);
    f[38..40].copy_from_slice(&56u16.to_be_bytes());
    let pseudo = sum16(&f[26..34], 17 + 56) as u16;
    f[40..42].copy_from_slice(&pseudo.to_be_bytes());
    put_context(&t, 0, 0x3064, 14, 20, IPV4, 1);
    put_data(&p, &t, 1, &f, true, IXSM | TXSM, 1);
    put_data(&p, &t, 2, &f, false, TXSM, 1); // same context, no tag, UDP only
    wr(&p, tx_base(0) + 0x18, 3);
    let out = sim.take_transmitted(nic);
    assert_eq!(out.len(), 2);
    let o = &out[0];
    assert_eq!(o.len(), 94);
    assert_eq!(
        &o[12..16],
        &[0x81, 0x00, 0x30, 0x64],
        "TPID DMATXCTL.VT, the context's tag"
    );
    assert_eq!(
        sum16(&o[18..38], 0),
        0xFFFF,
        "IPv4 header checksum filled in"
    );
    assert_eq!(
        sum16(&o[38..], sum16(&o[30..38], 17 + 56)),
        0xFFFF,
        "UDP checksum"
    );
    assert_eq!(&o[..12], &f[..12]);
    let o = &out[1];
    assert_eq!(o.len(), 90);
    assert_eq!(&o[24..26], &[0, 0], "no IXSM: the header checksum stays");
    assert_eq!(sum16(&o[34..], sum16(&o[26..34], 17 + 56)), 0xFFFF);
    assert!(t.dd(1) && t.dd(2));
    assert_no_violations(&sim);
}

#[test]
fn malformed_contexts_are_violations() {
    let (sim, _nic, p) = one_nic();
    let t = setup_tx(&p, 0, 16);
    let f = frame_to(MAC_B, 90);
    // A context index never written (the queue's contexts start empty at enable).
    put_data(&p, &t, 0, &f, false, TXSM, 0);
    // VLE without a context.
    put_data(&p, &t, 1, &f, true, 0, 1);
    // MACLEN 18 on an untagged frame: the header at 18 is not IPv4.
    put_context(&t, 2, 0, 18, 20, IPV4, 0);
    put_data(&p, &t, 3, &f, false, IXSM, 0);
    // IPLEN 24 for a 20-byte header.
    put_context(&t, 4, 0, 14, 24, IPV4, 1);
    put_data(&p, &t, 5, &f, false, TXSM, 1);
    wr(&p, tx_base(0) + 0x18, 6);
    let v = sim.violations();
    let what: Vec<&str> = v.iter().map(|v| v.what.as_str()).collect();
    assert_eq!(v.len(), 4, "{what:#?}");
    assert!(v.iter().all(|v| v.kind == ViolationKind::InvalidConfig));
    assert!(what[0].contains("no context"), "{}", what[0]);
    assert!(what[1].contains("VLAN insertion"), "{}", what[1]);
    assert!(what[2].contains("MACLEN"), "{}", what[2]);
    assert!(what[3].contains("IPLEN"), "{}", what[3]);
}
