//! The whole driver (`ixgbe-core`) against the simulated 82599 (`platform-mock`).
//!
//! Every test that drives the device normally ends by asserting that the simulator recorded no
//! protocol violation.

use std::time::Duration;

use ixgbe_core::heapless::Vec as HVec;
use ixgbe_core::{Config, Device, Error, Mempool, Packet, Started, DEFAULT_BUF_SIZE};
use platform_mock::{Fault, NicConfig, NicId, RxCorruption, Sim, SimPlatform};
use tests::on_sim::{assert_clean, sim_nic, start};

const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const OTHER_MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x99];

fn small_config() -> Config {
    Config::default()
        .rx_ring_size(64)
        .tx_ring_size(64)
        .promiscuous(false)
}

/// A UDP/IPv4-looking frame to `dst` whose payload encodes `seq` (the filter only looks at L2;
/// RSS looks at the addresses and ports).
fn frame(dst: [u8; 6], seq: u32, len: usize, flow: u16) -> Vec<u8> {
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x42]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45; // IPv4, IHL 5
    f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f[22] = 64; // TTL
    f[23] = 17; // UDP
    f[26..30].copy_from_slice(&[10, 0, (flow >> 8) as u8, flow as u8]);
    f[30..34].copy_from_slice(&[10, 1, 0, 1]);
    f[34..36].copy_from_slice(&(1000 + flow).to_be_bytes());
    f[36..38].copy_from_slice(&4242u16.to_be_bytes());
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    f
}

/// Two NICs (MAC and OTHER_MAC) joined by a cable.
fn cabled_pair() -> (Sim, NicId, NicId) {
    let sim = Sim::new();
    let a = sim.add_nic(NicConfig {
        mac: MAC,
        ..NicConfig::default()
    });
    let b = sim.add_nic(NicConfig {
        mac: OTHER_MAC,
        ..NicConfig::default()
    });
    sim.cable(a, b);
    (sim, a, b)
}

/// `queues` Rx and Tx queues, each Rx queue with a pool of its own.
fn queues_with_own_pools(
    platform: &SimPlatform,
    queues: u16,
) -> (Vec<Mempool<SimPlatform>>, Config) {
    let pools = (0..queues)
        .map(|_| Mempool::new(platform, 128, DEFAULT_BUF_SIZE).unwrap())
        .collect();
    let config = small_config().rx_queues(queues).tx_queues(queues);
    (pools, config)
}

#[test]
fn init_brings_the_device_up_in_order() {
    let (sim, _nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let started = start(&platform, &small_config(), &pools);
    let link = started.device.link();
    assert!(link.up);
    assert_eq!(link.speed.map(|s| s.mbit()), Some(10_000));
    assert_eq!(started.device.mac(), MAC);
    assert!(!started.device.promiscuous());
    // All but one descriptor of the Rx ring hold a buffer.
    assert_eq!(pools[0].free_count(), 256 - 64);
    assert_clean(&sim);
}

fn init_error_with(fault: Fault) -> Error {
    let (sim, nic, platform) = sim_nic(MAC);
    sim.set_fault(nic, fault);
    let pools = [Mempool::new(&platform, 128, DEFAULT_BUF_SIZE).unwrap()];
    let result = Device::init(platform.clone(), &small_config(), &pools);
    let err = match result {
        Ok(_) => panic!("init succeeded despite the fault"),
        Err(e) => e,
    };
    // Whatever was set up is torn down: every buffer is back.
    assert_eq!(pools[0].free_count(), 128);
    err
}

#[test]
fn every_init_wait_is_bounded_and_named() {
    let cases = [
        (Fault::ResetNeverCompletes, "CTRL.RST"),
        (Fault::EepromAutoReadNeverDone, "EEC.AUTO_RD"),
        (Fault::DmaInitNeverDone, "DMAIDONE"),
        (Fault::QueueEnableStuck, "ENABLE"),
    ];
    for (fault, name) in cases {
        match init_error_with(fault) {
            Error::Timeout { what } => assert!(what.contains(name), "{what} should name {name}"),
            other => panic!("expected a timeout naming {name}, got {other:?}"),
        }
    }
}

#[test]
fn link_wait_times_out_with_a_typed_error() {
    let (sim, nic, platform) = sim_nic(MAC);
    sim.set_fault(nic, Fault::LinkNeverUp);
    let pools = [Mempool::new(&platform, 128, DEFAULT_BUF_SIZE).unwrap()];
    let started = Device::init(platform.clone(), &small_config(), &pools).unwrap();
    let err = started
        .device
        .wait_for_link(Duration::from_millis(500))
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { what } if what.contains("LINK")));
    assert!(!started.device.link().up);
}

#[test]
fn receives_a_single_frame_and_a_batch() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let Started { device, mut rx, .. } = start(&platform, &small_config(), &pools);
    let mut batch: HVec<Packet, 64> = HVec::new();
    assert_eq!(rx[0].rx_batch(&mut batch, 32), 0);

    let one = frame(MAC, 1, 60, 0);
    sim.inject(nic, &one);
    sim.advance(Duration::from_micros(10));
    assert_eq!(rx[0].rx_batch(&mut batch, 32), 1);
    assert_eq!(&batch[0][..], &one[..]);
    batch.clear();

    let frames: Vec<Vec<u8>> = (0..40)
        .map(|i| frame(MAC, i, 60 + i as usize * 10, 0))
        .collect();
    for f in &frames {
        sim.inject(nic, f);
    }
    sim.advance(Duration::from_micros(100));
    assert_eq!(rx[0].rx_batch(&mut batch, 32), 32);
    assert_eq!(rx[0].rx_batch(&mut batch, 32), 8);
    for (got, want) in batch.iter().zip(&frames) {
        assert_eq!(&got[..], &want[..]);
    }
    let c = rx[0].counters();
    assert_eq!(c.packets, 41);
    let stats = device.stats();
    assert_eq!(stats.rx_packets, 41);
    assert_eq!(stats.rx_dropped + stats.rx_missed, 0);
    drop(batch);
    assert_clean(&sim);
}

#[test]
fn transmits_single_frames_batches_and_pads_short_ones() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let Started { device, mut tx, .. } = start(&platform, &small_config(), &pools);
    let mut batch: HVec<Packet, 64> = HVec::new();
    assert_eq!(pools[0].alloc_batch(&mut batch, 1, 42), 1);
    batch[0].copy_from_slice(&frame(OTHER_MAC, 7, 60, 0)[..42]);
    assert_eq!(tx[0].tx_batch(&mut batch), 1);
    assert!(batch.is_empty());
    sim.advance(Duration::from_micros(10));
    let out = sim.take_transmitted(nic);
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].len(),
        60,
        "a 42-byte frame is padded to 60 bytes (+ FCS)"
    );
    assert_eq!(&out[0][..42], &frame(OTHER_MAC, 7, 60, 0)[..42]);

    let frames: Vec<Vec<u8>> = (0..32)
        .map(|i| frame(OTHER_MAC, i, 60 + i as usize, 0))
        .collect();
    for f in &frames {
        let mut p = pools[0].alloc().unwrap();
        p.set_len(f.len()).unwrap();
        p.copy_from_slice(f);
        batch.push(p).unwrap();
    }
    assert_eq!(tx[0].tx_batch(&mut batch), 32);
    sim.advance(Duration::from_micros(100));
    assert_eq!(sim.take_transmitted(nic), frames);
    // Cleaning returns every buffer once traffic stops, even fewer than a cleaning batch.
    tx[0].clean();
    assert_eq!(tx[0].in_flight(), 0);
    // (The Rx queues were dropped by the `..` pattern, returning their buffers too.)
    assert_eq!(pools[0].free_count(), 256);
    assert_eq!(device.stats().tx_packets, 33);
    assert_clean(&sim);
}

#[test]
fn few_packets_are_cleaned_when_traffic_stops() {
    let (sim, _nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 128, DEFAULT_BUF_SIZE).unwrap()];
    let Started { mut tx, .. } = start(&platform, &small_config(), &pools);
    let before = pools[0].free_count();
    let mut batch: HVec<Packet, 8> = HVec::new();
    pools[0].alloc_batch(&mut batch, 5, 60);
    assert_eq!(tx[0].tx_batch(&mut batch), 5);
    sim.advance(Duration::from_micros(10));
    // An empty tx_batch still cleans.
    assert_eq!(tx[0].tx_batch(&mut batch), 0);
    assert_eq!(pools[0].free_count(), before);
    assert_clean(&sim);
}

#[test]
fn rings_wrap_around_for_thousands_of_cycles() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let Started {
        device,
        mut rx,
        mut tx,
    } = start(&platform, &small_config(), &pools);
    let cycles = if cfg!(miri) { 40 } else { 5_000 };
    let mut batch: HVec<Packet, 32> = HVec::new();
    let mut seq = 0u32;
    for cycle in 0..cycles {
        let n = 1 + cycle % 13;
        for _ in 0..n {
            sim.inject(nic, &frame(MAC, seq, 60 + (seq % 50) as usize, 0));
            seq += 1;
        }
        sim.advance(Duration::from_micros(5));
        let got = rx[0].rx_batch(&mut batch, 32);
        assert_eq!(got, n as usize, "cycle {cycle}");
        let first = seq - n;
        for (k, p) in batch.iter().enumerate() {
            assert_eq!(p[42..46], (first + k as u32).to_be_bytes(), "cycle {cycle}");
        }
        assert_eq!(tx[0].tx_batch(&mut batch), got);
        sim.advance(Duration::from_micros(5));
        assert_eq!(sim.take_transmitted(nic).len(), got);
    }
    tx[0].clean();
    // Every buffer is back: in the pool or in the ring (all but the few descriptors received
    // into since the last rearm, which waits for 16).
    assert!(64 - rx[0].buffers_held() < 16);
    assert_eq!(pools[0].free_count() + rx[0].buffers_held(), 256);
    let stats = device.stats();
    assert_eq!(stats.rx_packets, u64::from(seq));
    assert_eq!(stats.tx_packets, u64::from(seq));
    assert_clean(&sim);
}

#[test]
fn an_empty_pool_leaves_descriptors_unarmed_until_buffers_return() {
    let (sim, nic, platform) = sim_nic(MAC);
    // 64-descriptor ring (rearmed 16 at a time): 64 buffers in the ring, 8 spare.
    let pools = [Mempool::new(&platform, 72, DEFAULT_BUF_SIZE).unwrap()];
    let Started { mut rx, .. } = start(&platform, &small_config(), &pools);
    let mut held: HVec<Packet, 64> = HVec::new();
    for i in 0..20 {
        sim.inject(nic, &frame(MAC, i, 60, 0));
    }
    sim.advance(Duration::from_micros(20));
    // All 20 are handed out; the rearm finds 8 buffers for their 20 descriptors.
    assert_eq!(rx[0].rx_batch(&mut held, 32), 20);
    assert_eq!(pools[0].free_count(), 0);
    assert_eq!(rx[0].counters().pool_empty, 1);
    assert_eq!(rx[0].buffers_held(), 64 - 12);
    assert_eq!(rx[0].rx_batch(&mut held, 32), 0);
    held.clear(); // buffers go back on drop
    assert_eq!(pools[0].free_count(), 20);
    // The device still owns 51 descriptors: frames keep coming, and the next rearm gives
    // all 17 unarmed descriptors buffers.
    for i in 20..25 {
        sim.inject(nic, &frame(MAC, i, 60, 0));
    }
    sim.advance(Duration::from_micros(20));
    let mut more: HVec<Packet, 64> = HVec::new();
    assert_eq!(rx[0].rx_batch(&mut more, 32), 5);
    assert_eq!((pools[0].free_count(), rx[0].buffers_held()), (3, 64));
    for (k, p) in more.iter().enumerate() {
        assert_eq!(
            p[42..46],
            (20 + k as u32).to_be_bytes(),
            "nothing lost, order kept"
        );
    }
    let wire = sim.wire_counters(nic);
    assert_eq!((wire.rx_delivered, wire.rx_dropped), (25, 0));
    assert_clean(&sim);
}

#[test]
fn a_full_tx_ring_keeps_the_rest_for_the_caller() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 512, DEFAULT_BUF_SIZE).unwrap()];
    let Started { mut tx, .. } = start(&platform, &small_config(), &pools);
    sim.set_fault(nic, Fault::StallTx { queue: 0 });
    let mut batch: HVec<Packet, 256> = HVec::new();
    pools[0].alloc_batch(&mut batch, 100, 60);
    assert_eq!(tx[0].tx_batch(&mut batch), 63, "one descriptor stays empty");
    assert_eq!(batch.len(), 37);
    assert_eq!(tx[0].tx_batch(&mut batch), 0);
    assert_eq!(tx[0].in_flight(), 63);
    sim.clear_faults(nic);
    sim.advance(Duration::from_micros(100));
    assert_eq!(tx[0].tx_batch(&mut batch), 37);
    sim.advance(Duration::from_micros(100));
    tx[0].clean();
    assert_eq!(sim.take_transmitted(nic).len(), 100);
    assert_clean(&sim);
}

#[test]
fn promiscuous_mode_filters_as_configured() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let Started { device, mut rx, .. } = start(&platform, &small_config(), &pools);
    let mut batch: HVec<Packet, 32> = HVec::new();
    sim.inject(nic, &frame(OTHER_MAC, 1, 60, 0));
    sim.inject(nic, &frame([0xFF; 6], 2, 60, 0));
    sim.inject(nic, &frame(MAC, 3, 60, 0));
    sim.advance(Duration::from_micros(10));
    assert_eq!(
        rx[0].rx_batch(&mut batch, 32),
        2,
        "foreign unicast is filtered"
    );
    assert_eq!(batch[0][42..46], 2u32.to_be_bytes());
    batch.clear();

    device.set_promiscuous(true).unwrap();
    assert!(device.promiscuous());
    sim.inject(nic, &frame(OTHER_MAC, 4, 60, 0));
    sim.advance(Duration::from_micros(10));
    assert_eq!(rx[0].rx_batch(&mut batch, 32), 1);
    batch.clear();

    device.set_promiscuous(false).unwrap();
    sim.inject(nic, &frame(OTHER_MAC, 5, 60, 0));
    sim.advance(Duration::from_micros(10));
    assert_eq!(rx[0].rx_batch(&mut batch, 32), 0);
    // A new MAC address takes effect for unicast filtering.
    device.set_mac(OTHER_MAC);
    assert_eq!(device.mac(), OTHER_MAC);
    sim.inject(nic, &frame(OTHER_MAC, 6, 60, 0));
    sim.advance(Duration::from_micros(10));
    assert_eq!(rx[0].rx_batch(&mut batch, 32), 1);
    assert_clean(&sim);
}

#[test]
fn statistics_accumulate_and_count_drops() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let Started {
        device,
        mut rx,
        mut tx,
    } = start(&platform, &small_config(), &pools);
    // 100 frames into a 64-descriptor ring nobody empties: 63 land, 37 are dropped (Drop_En).
    for i in 0..100 {
        sim.inject(nic, &frame(MAC, i, 124, 0));
    }
    sim.advance(Duration::from_micros(100));
    let s = device.stats();
    assert_eq!(s.rx_packets, 63);
    assert_eq!(s.rx_bytes, 63 * 124);
    assert_eq!(s.rx_dropped + s.rx_missed, 37);
    let mut batch: HVec<Packet, 64> = HVec::new();
    assert_eq!(rx[0].rx_batch(&mut batch, 64), 63);
    assert_eq!(tx[0].tx_batch(&mut batch), 63);
    sim.advance(Duration::from_micros(100));
    let s2 = device.stats();
    assert_eq!(s2.rx_packets, 63, "totals persist across clear-on-read");
    assert_eq!(s2.tx_packets, 63);
    assert_eq!(s2.tx_bytes, 63 * 128, "GOTC counts DA through CRC");
    assert_clean(&sim);
}

#[test]
fn eight_queues_receive_and_transmit_at_once() {
    let (sim, nic, platform) = sim_nic(MAC);
    let (pools, config) = queues_with_own_pools(&platform, 8);
    let Started {
        device,
        mut rx,
        mut tx,
    } = start(&platform, &config, &pools);
    assert_eq!((rx.len(), tx.len()), (8, 8));
    let flows = 64u16;
    for flow in 0..flows {
        sim.inject(nic, &frame(MAC, u32::from(flow), 60, flow));
    }
    sim.advance(Duration::from_micros(100));
    let mut total = 0;
    let mut busy_queues = 0;
    let mut seen = std::collections::BTreeSet::new();
    for (q, (rxq, txq)) in rx.iter_mut().zip(tx.iter_mut()).enumerate() {
        let mut batch: HVec<Packet, 64> = HVec::new();
        let n = rxq.rx_batch(&mut batch, 64);
        busy_queues += usize::from(n > 0);
        total += n;
        for p in batch.iter() {
            assert!(
                seen.insert(u32::from_be_bytes(p[42..46].try_into().unwrap())),
                "queue {q}"
            );
        }
        assert_eq!(txq.tx_batch(&mut batch), n);
    }
    assert_eq!(total, usize::from(flows));
    assert!(
        busy_queues >= 6,
        "RSS spreads 64 flows over most of 8 queues, got {busy_queues}"
    );
    sim.advance(Duration::from_micros(100));
    assert_eq!(sim.take_transmitted(nic).len(), usize::from(flows));
    assert_eq!(device.stats().rx_packets, u64::from(flows));
    assert_clean(&sim);
}

#[test]
fn queues_move_to_threads() {
    let (sim, nic, platform) = sim_nic(MAC);
    let (pools, config) = queues_with_own_pools(&platform, 2);
    let Started { mut tx, .. } = start(&platform, &config, &pools);
    std::thread::scope(|s| {
        for (q, txq) in tx.iter_mut().enumerate() {
            let pool = &pools[q];
            s.spawn(move || {
                let mut batch: HVec<Packet, 16> = HVec::new();
                pool.alloc_batch(&mut batch, 10, 60);
                assert_eq!(txq.tx_batch(&mut batch), 10);
            });
        }
    });
    sim.advance(Duration::from_micros(100));
    assert_eq!(sim.take_transmitted(nic).len(), 20);
    assert_clean(&sim);
}

#[test]
#[cfg_attr(miri, ignore = "a million packets is too slow under Miri")]
fn a_million_packets_leave_the_pool_as_it_was() {
    let (sim, a, b) = cabled_pair();
    let (pa, pb) = (sim.platform(a), sim.platform(b));
    let pool_a = [Mempool::new(&pa, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let pool_b = [Mempool::new(&pb, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let config = Config::default().rx_ring_size(256).tx_ring_size(256);
    let mut dev_a = start(&pa, &config, &pool_a);
    let mut dev_b = start(&pb, &config, &pool_b);
    let idle_a = pool_a[0].free_count();
    let idle_b = pool_b[0].free_count();
    // A sends frames it allocates; B receives and sends them back; A receives and drops them.
    let mut sent = 0u64;
    let mut back = 0u64;
    let mut batch: HVec<Packet, 64> = HVec::new();
    while back < 1_000_000 {
        pool_a[0].alloc_batch(&mut batch, 32, 60);
        sent += dev_a.tx[0].tx_batch(&mut batch) as u64;
        batch.clear();
        sim.advance(Duration::from_micros(3));
        dev_b.rx[0].rx_batch(&mut batch, 64);
        dev_b.tx[0].tx_batch(&mut batch);
        batch.clear();
        sim.advance(Duration::from_micros(3));
        back += dev_a.rx[0].rx_batch(&mut batch, 64) as u64;
        batch.clear();
    }
    sim.advance(Duration::from_micros(50));
    dev_a.tx[0].clean();
    dev_b.tx[0].clean();
    back += dev_a.rx[0].rx_batch(&mut batch, 64) as u64;
    batch.clear();
    assert_eq!(sent, back, "nothing lost in a loss-free loop");
    assert_eq!(pool_a[0].free_count(), idle_a);
    assert_eq!(pool_b[0].free_count(), idle_b);
    drop(dev_a);
    drop(dev_b);
    assert_eq!(
        pool_a[0].free_count(),
        1024,
        "dropping the queues returns their buffers"
    );
    assert_eq!(pool_b[0].free_count(), 1024);
    assert_clean(&sim);
}

fn corrupted_writeback(corruption: RxCorruption) -> ixgbe_core::RxCounters {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let Started { mut rx, .. } = start(&platform, &small_config(), &pools);
    let idle = pools[0].free_count();
    sim.set_fault(
        nic,
        Fault::RxWriteback {
            corruption,
            count: 3,
        },
    );
    for i in 0..5 {
        sim.inject(nic, &frame(MAC, i, 60, 0));
    }
    sim.advance(Duration::from_micros(20));
    let mut batch: HVec<Packet, 32> = HVec::new();
    // The three corrupted write-backs are dropped; the two good frames arrive intact.
    assert_eq!(rx[0].rx_batch(&mut batch, 32), 2);
    assert_eq!(batch[0][42..46], 3u32.to_be_bytes());
    assert_eq!(batch[1][42..46], 4u32.to_be_bytes());
    batch.clear();
    assert_eq!(
        pools[0].free_count() + rx[0].buffers_held(),
        idle + 64,
        "dropped frames' buffers went back"
    );
    // The ring keeps working over a full wrap.
    for round in 0..3u32 {
        for i in 0..40 {
            sim.inject(nic, &frame(MAC, 100 + round * 40 + i, 60, 0));
        }
        sim.advance(Duration::from_micros(50));
        assert_eq!(rx[0].rx_batch(&mut batch, 32), 32);
        assert_eq!(rx[0].rx_batch(&mut batch, 32), 0);
        batch.clear();
        let mut rest: HVec<Packet, 32> = HVec::new();
        assert_eq!(rx[0].rx_batch(&mut rest, 32), 8);
    }
    rx[0].counters()
}

#[test]
fn a_length_beyond_the_buffer_is_counted_and_dropped() {
    assert_eq!(
        corrupted_writeback(RxCorruption::LengthTooLong).bad_length,
        3
    );
}

#[test]
fn a_zero_length_is_counted_and_dropped() {
    assert_eq!(corrupted_writeback(RxCorruption::ZeroLength).bad_length, 3);
}

#[test]
fn an_error_bit_is_counted_and_dropped() {
    assert_eq!(corrupted_writeback(RxCorruption::ErrorBit).errors, 3);
}

#[test]
fn descriptors_without_eop_are_one_frame_dropped_whole() {
    // Three write-backs without EOP and the next with it are, to any driver, one frame in
    // four descriptors (§7.1.6): rx_batch drops it whole, and the frame after arrives.
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let Started { mut rx, .. } = start(&platform, &small_config(), &pools);
    let idle = pools[0].free_count();
    sim.set_fault(
        nic,
        Fault::RxWriteback {
            corruption: RxCorruption::NoEop,
            count: 3,
        },
    );
    for i in 0..5 {
        sim.inject(nic, &frame(MAC, i, 60, 0));
    }
    sim.advance(Duration::from_micros(20));
    let mut batch: HVec<Packet, 32> = HVec::new();
    assert_eq!(rx[0].rx_batch(&mut batch, 32), 1);
    assert_eq!(batch[0][42..46], 4u32.to_be_bytes());
    assert_eq!(rx[0].counters().no_eop, 1);
    drop(batch);
    assert_eq!(
        pools[0].free_count() + rx[0].buffers_held(),
        idle + 64,
        "the dropped frame's buffers went back"
    );
}

#[test]
fn spurious_tx_done_bits_beyond_the_tail_are_ignored() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 256, DEFAULT_BUF_SIZE).unwrap()];
    let Started { mut tx, .. } = start(&platform, &small_config(), &pools);
    sim.set_fault(nic, Fault::TxSpuriousDone { queue: 0 });
    let mut batch: HVec<Packet, 32> = HVec::new();
    for _ in 0..10 {
        pools[0].alloc_batch(&mut batch, 20, 60);
        assert_eq!(tx[0].tx_batch(&mut batch), 20);
        sim.advance(Duration::from_micros(20));
    }
    tx[0].clean();
    assert_eq!(tx[0].in_flight(), 0);
    assert_eq!(
        pools[0].free_count(),
        256,
        "Rx queues dropped by `..`, Tx all cleaned"
    );
    assert_eq!(sim.take_transmitted(nic).len(), 200);
    assert_clean(&sim);
}

#[test]
fn bad_configurations_are_refused_before_touching_the_device() {
    let (sim, _nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 128, DEFAULT_BUF_SIZE).unwrap()];
    for config in [
        small_config().rx_queues(0),
        small_config().rx_queues(17),
        small_config().tx_queues(65),
        small_config().rx_ring_size(100),
        small_config().tx_ring_size(4),
    ]
    .iter()
    {
        assert!(matches!(
            Device::init(platform.clone(), config, &pools),
            Err(Error::InvalidConfig { .. })
        ));
    }
    assert!(matches!(
        Mempool::new(&platform, 16, 1000),
        Err(Error::InvalidConfig { .. })
    ));
    assert_clean(&sim);
}

#[test]
fn pool_buffers_spanning_several_dma_pages_translate_per_buffer() {
    let (sim, nic, platform) = sim_nic(MAC);
    // 3000 × 2 KiB = 6 MiB: four 2 MiB chunks the simulator places apart in bus space.
    let (entries, ring) = if cfg!(miri) {
        (1100, 1024)
    } else {
        (3000, 2048)
    };
    let pools = [Mempool::new(&platform, entries, DEFAULT_BUF_SIZE).unwrap()];
    let config = small_config().rx_ring_size(ring);
    let Started { mut rx, mut tx, .. } = start(&platform, &config, &pools);
    let mut batch: HVec<Packet, 64> = HVec::new();
    // Push frames through every descriptor; buffers from all chunks carry them.
    for round in 0..(u32::from(ring) / 32 + 4) {
        for i in 0..32 {
            sim.inject(nic, &frame(MAC, round * 32 + i, 100, 0));
        }
        sim.advance(Duration::from_micros(30));
        assert_eq!(rx[0].rx_batch(&mut batch, 32), 32);
        for (i, p) in batch.iter().enumerate() {
            assert_eq!(p[42..46], (round * 32 + i as u32).to_be_bytes());
        }
        assert_eq!(tx[0].tx_batch(&mut batch), 32);
        sim.advance(Duration::from_micros(30));
        for (i, f) in sim.take_transmitted(nic).iter().enumerate() {
            assert_eq!(f[42..46], (round * 32 + i as u32).to_be_bytes());
        }
    }
    assert_clean(&sim);
}

#[test]
fn packets_too_short_to_send_are_dropped_and_counted() {
    let (sim, nic, platform) = sim_nic(MAC);
    let pools = [Mempool::new(&platform, 128, DEFAULT_BUF_SIZE).unwrap()];
    let Started { mut tx, .. } = start(&platform, &small_config(), &pools);
    let mut batch: HVec<Packet, 8> = HVec::new();
    pools[0].alloc_batch(&mut batch, 1, 60);
    pools[0].alloc_batch(&mut batch, 1, 0); // a zero-length packet
    pools[0].alloc_batch(&mut batch, 1, 13); // shorter than an Ethernet header
    pools[0].alloc_batch(&mut batch, 1, 14); // the shortest the device is given (padded)
    assert_eq!(tx[0].tx_batch(&mut batch), 1, "sending stops at the runt");
    assert_eq!(batch.len(), 2, "the runt was dropped, the rest kept");
    assert_eq!(tx[0].tx_batch(&mut batch), 0);
    assert_eq!(batch.len(), 1);
    assert_eq!(tx[0].tx_batch(&mut batch), 1);
    assert_eq!(tx[0].counters().runts, 2);
    sim.advance(Duration::from_micros(10));
    tx[0].clean();
    assert_eq!(
        pools[0].free_count(),
        128,
        "runts' buffers went back to the pool"
    );
    let out = sim.take_transmitted(nic);
    assert_eq!(out.iter().map(Vec::len).collect::<Vec<_>>(), [60, 60]);
    assert_clean(&sim);
}

/// A rogue device (random bytes anywhere in its memory, random write-backs) under a forwarding
/// loop: frames get lost or mangled, but nothing panics, every anomaly the driver sees is
/// counted, and both pools are whole at the end (no buffer lost or handed out twice).
#[test]
fn a_rogue_device_cannot_break_the_pools() {
    let (sim, a, b) = cabled_pair();
    let (pa, pb) = (sim.platform(a), sim.platform(b));
    let pool_a = [Mempool::new(&pa, 256, DEFAULT_BUF_SIZE).unwrap()];
    let pool_b = [Mempool::new(&pb, 256, DEFAULT_BUF_SIZE).unwrap()];
    let config = Config::default().rx_ring_size(64).tx_ring_size(64);
    let mut dev_a = start(&pa, &config, &pool_a);
    let mut dev_b = start(&pb, &config, &pool_b);
    for (nic, seed) in [(a, 7), (b, 11)] {
        sim.set_fault(
            nic,
            Fault::RogueDma {
                writes_per_ms: 300,
                seed,
            },
        );
    }
    let rounds = if cfg!(miri) { 40 } else { 20_000 };
    let mut batch: HVec<Packet, 64> = HVec::new();
    for _ in 0..rounds {
        pool_a[0].alloc_batch(&mut batch, 16, 60);
        dev_a.tx[0].tx_batch(&mut batch);
        batch.clear();
        sim.advance(Duration::from_micros(3));
        dev_b.rx[0].rx_batch(&mut batch, 64);
        for p in batch.iter() {
            assert!(p.len() <= p.capacity());
        }
        dev_b.tx[0].tx_batch(&mut batch);
        batch.clear();
        sim.advance(Duration::from_micros(3));
        dev_a.rx[0].rx_batch(&mut batch, 64);
        batch.clear();
    }
    let anomalies: u64 = [&dev_a, &dev_b]
        .iter()
        .map(|d| {
            let c = d.rx[0].counters();
            c.no_eop + c.errors + c.bad_length
        })
        .sum();
    if !cfg!(miri) {
        assert!(anomalies > 0, "the rogue device went unnoticed");
    }
    sim.clear_faults(a);
    sim.clear_faults(b);
    drop(dev_a);
    drop(dev_b);
    assert_eq!(pool_a[0].free_count(), 256, "pool A not whole");
    assert_eq!(pool_b[0].free_count(), 256, "pool B not whole");
}
