//! Checksum and VLAN offloads of the driver against the simulated 82599: what the device checks
//! on receive (§7.1.11), strips and filters (§8.2.3.7.2, RXDCTL.VME), and computes and inserts on
//! transmit (§7.2.3.2.3). Frames come from `tests::frames`, whose checksums are computed apart
//! from the simulator's.

use std::time::Duration;

use ixgbe_core::heapless::Vec as HVec;
use ixgbe_core::{Checksum, Config, Mempool, Packet, RxOffload, DEFAULT_BUF_SIZE};
use platform_mock::{NicConfig, NicId, Sim, SimPlatform};
use tests::frames::{self, Shape};
use tests::on_sim::{assert_clean, start};

fn sim_nic() -> (Sim, NicId, SimPlatform) {
    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig::default());
    let platform = sim.platform(nic);
    (sim, nic, platform)
}

fn config() -> Config {
    Config::default().rx_ring_size(64).tx_ring_size(64)
}

/// Injects each frame and receives it; returns what the packets said, in order.
fn receive_all(
    sim: &Sim,
    nic: NicId,
    rx: &mut ixgbe_core::RxQueue<'_, SimPlatform>,
    frames: &[Vec<u8>],
) -> Vec<(RxOffload, Vec<u8>)> {
    let mut got = Vec::new();
    for f in frames {
        sim.inject(nic, f);
        let mut batch = HVec::<Packet<'_>, 4>::new();
        assert_eq!(rx.rx_batch(&mut batch, 4), 1, "frame {f:02x?} not received");
        got.push((batch[0].rx_offload(), batch[0].to_vec()));
    }
    got
}

const G: Checksum = Checksum::Good;
const B: Checksum = Checksum::Bad;
const N: Checksum = Checksum::NotChecked;

#[test]
fn rx_checksums_good_bad_and_not_checked() {
    let (sim, nic, platform) = sim_nic();
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let mut started = start(&platform, &config().rx_checksum(true), &pools);
    let rx = &mut started.rx[0];
    // (shape, break the IP checksum, break the L4 checksum, expected IP, L4, UDP)
    let mut cases = Vec::new();
    for ipv6 in [false, true] {
        for tcp in [false, true] {
            for vlan in [None, Some(0x0064)] {
                let shape = Shape {
                    vlan,
                    ipv6,
                    tcp,
                    payload: 40,
                };
                let ip = if ipv6 { N } else { G };
                cases.push((shape, false, false, ip, G, !tcp));
                cases.push((shape, false, true, ip, B, !tcp));
                if !ipv6 {
                    cases.push((shape, true, false, B, G, !tcp));
                }
            }
        }
    }
    let frames: Vec<Vec<u8>> = cases
        .iter()
        .enumerate()
        .map(|(k, &(shape, bad_ip, bad_l4, ..))| {
            let mut f = frames::build(shape, k as u8);
            if bad_ip {
                frames::break_ip_checksum(&mut f);
            }
            if bad_l4 {
                frames::break_l4_checksum(&mut f);
            }
            f
        })
        .collect();
    let got = receive_all(&sim, nic, rx, &frames);
    for ((shape, bad_ip, bad_l4, ip, l4, udp), (off, bytes)) in cases.iter().zip(&got) {
        let what = format!("{shape:?} bad ip {bad_ip} bad l4 {bad_l4}");
        assert_eq!(
            (off.ipv4_header, off.l4, off.udp),
            (*ip, *l4, *udp),
            "{what}"
        );
        assert_eq!(off.vlan, None, "{what}: no stripping asked");
        assert_eq!(bytes.len(), frames::build(*shape, 0).len(), "{what}");
    }
    assert_clean(&sim);
}

#[test]
fn rx_checksums_not_checked_without_l4_or_with_offload_off() {
    let (sim, nic, platform) = sim_nic();
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let mut started = start(&platform, &config().rx_checksum(true), &pools);
    let good = frames::build(Shape::udp4(40), 1);
    // A UDP/IPv4 datagram sent without a checksum: the 82599 flags it (erratum), the driver
    // says not checked.
    let mut no_sum = good.clone();
    let at = frames::l4_checksum_at(&no_sum);
    no_sum[at..at + 2].fill(0);
    // A fragment: the IPv4 header is checked, the L4 checksum cannot be.
    let mut fragment = good.clone();
    fragment[20] = 0x20; // MF
    fragment[24..26].fill(0);
    let c = !(frames::sum16(&fragment[14..34], 0) as u16);
    fragment[24..26].copy_from_slice(&c.to_be_bytes());
    // Not IP at all.
    let mut arp = good.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    // ICMP: header checked, no L4 checksum offload.
    let mut icmp = good.clone();
    icmp[23] = 1;
    icmp[24..26].fill(0);
    let c = !(frames::sum16(&icmp[14..34], 0) as u16);
    icmp[24..26].copy_from_slice(&c.to_be_bytes());
    let got = receive_all(
        &sim,
        nic,
        &mut started.rx[0],
        &[no_sum, fragment, arp, icmp],
    );
    let seen: Vec<(Checksum, Checksum)> = got.iter().map(|(o, _)| (o.ipv4_header, o.l4)).collect();
    assert_eq!(seen, [(G, N), (G, N), (N, N), (G, N)]);
    drop(started);

    // With the offload off, nothing is passed on, right or wrong.
    let mut started = start(&platform, &config(), &pools);
    let mut bad = frames::build(Shape::udp4(40), 2);
    frames::break_l4_checksum(&mut bad);
    let got = receive_all(&sim, nic, &mut started.rx[0], &[good, bad]);
    for (o, _) in &got {
        assert_eq!((o.ipv4_header, o.l4, o.vlan), (N, N, None));
    }
    assert_clean(&sim);
}

/// Advances the simulator long enough for a few frames to go out.
fn settle(sim: &Sim) {
    sim.advance(Duration::from_micros(50));
}

#[test]
fn allocated_packets_carry_no_receive_state() {
    let (sim, _nic, platform) = sim_nic();
    let pool = Mempool::new(&platform, 16, DEFAULT_BUF_SIZE).unwrap();
    let p = pool.alloc().unwrap();
    let o = p.rx_offload();
    assert_eq!((o.ipv4_header, o.l4, o.vlan), (N, N, None));
    settle(&sim);
}

#[test]
fn vlan_strip_on_and_off() {
    let (sim, nic, platform) = sim_nic();
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let untagged = frames::build(Shape::udp4(40), 3);
    let shape = Shape {
        vlan: Some(0x6123),
        ..Shape::udp4(40)
    };
    let tagged = frames::build(shape, 3);
    // Off: the tag stays in the frame and nothing is reported.
    let mut started = start(&platform, &config().rx_checksum(true), &pools);
    let got = receive_all(&sim, nic, &mut started.rx[0], std::slice::from_ref(&tagged));
    assert_eq!((got[0].0.vlan, &got[0].1), (None, &tagged));
    drop(started);
    // On: the packet is the untagged frame, the tag comes with it; checksums still checked.
    let cfg = config().rx_checksum(true).vlan_strip(true);
    let mut started = start(&platform, &cfg, &pools);
    let got = receive_all(
        &sim,
        nic,
        &mut started.rx[0],
        &[tagged.clone(), untagged.clone()],
    );
    assert_eq!(got[0].0.vlan, Some(0x6123));
    assert_eq!(got[0].1, untagged, "tag stripped");
    assert_eq!((got[0].0.ipv4_header, got[0].0.l4), (G, G));
    assert_eq!((got[1].0.vlan, &got[1].1), (None, &untagged));
    assert_clean(&sim);
}

#[test]
fn vlan_filter_table_accepts_and_drops() {
    let (sim, nic, platform) = sim_nic();
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let cfg = config().vlan_filter(true).vlan_strip(true);
    let mut started = start(&platform, &cfg, &pools);
    let frame = |vid: Option<u16>| {
        frames::build(
            Shape {
                vlan: vid,
                ..Shape::udp4(40)
            },
            9,
        )
    };
    let offer = |rx: &mut ixgbe_core::RxQueue<'_, SimPlatform>, vid: Option<u16>| {
        sim.inject(nic, &frame(vid));
        let mut batch = HVec::<Packet<'_>, 4>::new();
        rx.rx_batch(&mut batch, 4);
        batch.first().map(|p| p.rx_offload().vlan)
    };
    let rx = &mut started.rx[0];
    assert_eq!(
        offer(rx, Some(100)),
        None,
        "empty table: tagged frames dropped"
    );
    assert_eq!(offer(rx, None), Some(None), "untagged frames pass");
    started.device.set_vlan_filter(100, true).unwrap();
    started.device.set_vlan_filter(4095, true).unwrap();
    assert_eq!(offer(rx, Some(100)), Some(Some(100)));
    assert_eq!(
        offer(rx, Some(0x2000 | 100)),
        Some(Some(0x2064)),
        "PCP ignored"
    );
    assert_eq!(offer(rx, Some(101)), None);
    assert_eq!(offer(rx, Some(4095)), Some(Some(4095)));
    started.device.set_vlan_filter(100, false).unwrap();
    assert_eq!(offer(rx, Some(100)), None, "removed");
    assert_eq!(offer(rx, Some(4095)), Some(Some(4095)), "the other stays");
    assert!(started.device.set_vlan_filter(4096, true).is_err());
    assert_eq!(sim.wire_counters(nic).rx_filtered, 3);
    assert_clean(&sim);
}
