//! Checksum and VLAN offloads of the driver against the simulated 82599: what the device checks
//! on receive (§7.1.11), strips and filters (§8.2.3.7.2, RXDCTL.VME), and computes and inserts on
//! transmit (§7.2.3.2.3). Frames come from `tests::frames`, whose checksums are computed apart
//! from the simulator's.

use std::time::Duration;

use ixgbe_core::heapless::Vec as HVec;
use ixgbe_core::{Checksum, Config, Mempool, Packet, RxOffload, DEFAULT_BUF_SIZE};
use platform_mock::{NicConfig, NicId, Sim, SimPlatform};
use tests::frames::{self, Shape};
use tests::on_sim::{assert_clean, sim_nic_with, start};

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
    let (sim, nic, platform) = sim_nic_with(NicConfig::default());
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
    let (sim, nic, platform) = sim_nic_with(NicConfig::default());
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
    let (sim, _nic, platform) = sim_nic_with(NicConfig::default());
    let pool = Mempool::new(&platform, 16, DEFAULT_BUF_SIZE).unwrap();
    let p = pool.alloc().unwrap();
    let o = p.rx_offload();
    assert_eq!((o.ipv4_header, o.l4, o.vlan), (N, N, None));
    settle(&sim);
}

#[test]
fn vlan_strip_on_and_off() {
    let (sim, nic, platform) = sim_nic_with(NicConfig::default());
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
    let (sim, nic, platform) = sim_nic_with(NicConfig::default());
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

use ixgbe_core::TxOffload;

/// Copies `frame` into a fresh packet of `pool`.
fn packet<'p>(pool: &'p Mempool<SimPlatform>, frame: &[u8]) -> Packet<'p> {
    let mut p = pool.alloc().expect("a free buffer");
    p.set_len(frame.len()).unwrap();
    p.copy_from_slice(frame);
    p
}

/// All eight shapes: IPv4 / IPv6, TCP / UDP, with and without a tag in memory.
fn shapes(payload: usize) -> Vec<Shape> {
    let mut v = Vec::new();
    for vlan in [None, Some(0x0123)] {
        for ipv6 in [false, true] {
            for tcp in [false, true] {
                v.push(Shape {
                    vlan,
                    ipv6,
                    tcp,
                    payload,
                });
            }
        }
    }
    v
}

#[test]
fn tx_offload_fills_checksums_the_peer_verifies() {
    let (sim, nic, platform) = sim_nic_with(NicConfig::default());
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let mut started = start(&platform, &config(), &pools);
    let tx = &mut started.tx[0];
    let mut expected = Vec::new();
    for (k, shape) in shapes(37).into_iter().enumerate() {
        let good = frames::build(shape, k as u8);
        // What software hands over: checksum fields with garbage in them.
        let mut f = good.clone();
        frames::break_l4_checksum(&mut f);
        if !shape.ipv6 {
            frames::break_ip_checksum(&mut f);
        }
        let insert = (k % 3 == 0 && shape.vlan.is_none()).then_some(0x4000 | k as u16);
        let mut batch = HVec::<Packet<'_>, 4>::new();
        batch.push(packet(&pools[0], &f)).unwrap();
        let sent = tx.tx_batch_offload(&mut batch, |p| {
            let o = TxOffload::for_frame(p).unwrap();
            match insert {
                Some(tci) => o.with_vlan(tci),
                None => o,
            }
        });
        assert_eq!(sent, 1, "{shape:?}");
        expected.push((shape, insert, good));
    }
    sim.advance(Duration::from_micros(100));
    let out = sim.take_transmitted(nic);
    assert_eq!(out.len(), expected.len());
    for ((shape, insert, good), o) in expected.iter().zip(&out) {
        let o = match insert {
            Some(tci) => {
                assert_eq!(&o[12..16], &[0x81, 0x00, (tci >> 8) as u8, *tci as u8]);
                [&o[..12], &o[16..]].concat()
            }
            None => o.clone(),
        };
        let ip = (!shape.ipv6).then_some(true);
        assert_eq!(frames::verify(&o), (ip, true), "{shape:?}");
        assert_eq!(
            &o, good,
            "{shape:?}: exactly the frame with right checksums"
        );
    }
    assert_eq!(tx.counters().offload_invalid, 0);
    assert_clean(&sim);
}

/// Sends copies of `frames` in one batch with every checksum they have offloaded, lets them go
/// out and cleans.
fn send_offloaded<'p>(
    sim: &Sim,
    tx: &mut ixgbe_core::TxQueue<'p, SimPlatform>,
    pool: &'p Mempool<SimPlatform>,
    frames: &[&Vec<u8>],
) {
    let mut batch = HVec::<Packet<'p>, 32>::new();
    for f in frames {
        batch.push(packet(pool, f)).unwrap();
    }
    let n = batch.len();
    assert_eq!(
        tx.tx_batch_offload(&mut batch, |p| TxOffload::for_frame(p).unwrap()),
        n
    );
    sim.advance(Duration::from_micros(100));
    tx.clean();
}

#[test]
fn one_context_for_a_batch_of_same_shaped_packets() {
    let (sim, nic, platform) = sim_nic_with(NicConfig::default());
    let pools = [Mempool::new(&platform, 512, DEFAULT_BUF_SIZE).unwrap()];
    let mut started = start(&platform, &config(), &pools);
    let tx = &mut started.tx[0];
    let udp = frames::build(Shape::udp4(30), 1);
    let tcp = frames::build(
        Shape {
            tcp: true,
            ..Shape::udp4(30)
        },
        2,
    );
    let udp6 = frames::build(
        Shape {
            ipv6: true,
            ..Shape::udp4(30)
        },
        3,
    );
    let pool = &pools[0];
    send_offloaded(&sim, tx, pool, &[&udp; 16]);
    assert_eq!(tx.counters().contexts, 1, "one context for 16 packets");
    send_offloaded(&sim, tx, pool, &[&udp; 16]);
    assert_eq!(tx.counters().contexts, 1, "still cached");
    // Two shapes alternating: each gets one of the two contexts, once.
    let mixed: Vec<&Vec<u8>> = (0..16)
        .map(|k| if k % 2 == 0 { &tcp } else { &udp })
        .collect();
    send_offloaded(&sim, tx, pool, &mixed);
    assert_eq!(tx.counters().contexts, 2);
    // A third shape replaces the older one; going back costs one more.
    send_offloaded(&sim, tx, pool, &[&udp6, &udp6, &tcp, &udp]);
    assert_eq!(tx.counters().contexts, 4);
    let out = sim.take_transmitted(nic);
    assert_eq!(out.len(), 16 + 16 + 16 + 4);
    for o in &out {
        assert!(frames::verify(o).1);
    }
    // Everything sent came back to the pool (context descriptors hold no buffer), across the
    // ring's wrap-around (64 descriptors).
    assert_eq!(tx.in_flight(), 0);
    assert_eq!(pools[0].free_count(), 512 - started.rx[0].ring_size());
    assert_eq!(tx.counters().completed, 52);
    assert_clean(&sim);
}

#[test]
fn offload_requests_that_do_not_fit_the_packet_are_dropped() {
    let (sim, nic, platform) = sim_nic_with(NicConfig::default());
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let mut started = start(&platform, &config(), &pools);
    let tx = &mut started.tx[0];
    let f = frames::build(Shape::udp4(30), 1);
    let good = TxOffload::for_frame(&f).unwrap();
    let mut wrong_mac = good;
    wrong_mac.mac_len = 18;
    let mut wrong_ip = good;
    wrong_ip.ip_len = 24;
    let mut v6 = good;
    v6.ipv6 = true;
    v6.ipv4_checksum = false;
    let mut tiny = good;
    tiny.mac_len = 2;
    for bad in [wrong_mac, wrong_ip, v6, tiny] {
        let mut batch = HVec::<Packet<'_>, 4>::new();
        batch.push(packet(&pools[0], &f)).unwrap();
        batch.push(packet(&pools[0], &f)).unwrap();
        let mut first = true;
        let sent = tx.tx_batch_offload(&mut batch, |_| {
            let o = if first { bad } else { good };
            first = false;
            o
        });
        assert_eq!(sent, 0, "{bad:?}");
        assert_eq!(batch.len(), 1, "the bad one dropped, the next one kept");
        assert_eq!(tx.tx_batch_offload(&mut batch, |_| good), 1);
    }
    assert_eq!(tx.counters().offload_invalid, 4);
    sim.advance(Duration::from_micros(100));
    assert_eq!(sim.take_transmitted(nic).len(), 4);
    // Only a tag: any frame, no lengths needed.
    let mut batch = HVec::<Packet<'_>, 4>::new();
    batch.push(packet(&pools[0], &[0xFF; 60])).unwrap();
    let tag_only = TxOffload::NONE.with_vlan(7);
    assert_eq!(tx.tx_batch_offload(&mut batch, |_| tag_only), 1);
    sim.advance(Duration::from_micros(100));
    let out = sim.take_transmitted(nic);
    assert_eq!((out[0].len(), &out[0][12..16]), (64, &[0x81, 0, 0, 7][..]));
    assert_clean(&sim);
}

/// A jumbo frame received as a chain (`RxQueue::rx_chains`): the results of the EOP descriptor
/// come with the first segment, which holds the headers.
#[test]
fn chains_carry_the_offload_results_on_their_first_segment() {
    let (sim, nic, platform) = sim_nic_with(NicConfig::default());
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let cfg = config().rx_checksum(true).vlan_strip(true).mtu(9000);
    let mut started = start(&platform, &cfg, &pools);
    let shape = Shape {
        vlan: Some(0x0FFE),
        tcp: true,
        ..Shape::udp4(5000)
    };
    let good = frames::build(shape, 4);
    let mut bad = good.clone();
    frames::break_l4_checksum(&mut bad);
    sim.inject(nic, &good);
    sim.inject(nic, &bad);
    let mut chains = HVec::<ixgbe_core::PacketChain<'_>, 4>::new();
    assert_eq!(started.rx[0].rx_chains(&mut chains, 4), 2);
    for (chain, l4) in chains.iter().zip([G, B]) {
        assert_eq!(chain.len(), good.len() - 4, "tag stripped");
        assert!(chain.segments().len() > 1);
        let o = chain.segments()[0].rx_offload();
        assert_eq!(
            (o.ipv4_header, o.l4, o.udp, o.vlan),
            (G, l4, false, Some(0x0FFE))
        );
        let rest = chain.segments()[1].rx_offload();
        assert_eq!((rest.l4, rest.vlan), (N, None));
    }
    assert_clean(&sim);
}
