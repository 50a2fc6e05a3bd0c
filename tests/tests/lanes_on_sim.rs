//! Two queues driven by two threads at once on a simulator with two lanes
//! (`Sim::with_lanes`): one model instance per queue, each behind its own lock.
//!
//! The tests assert content and counts, not speed (the speed-up is measured by
//! `scripts/bench-wall.sh`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use ixgbe_core::heapless::Vec as HVec;
use ixgbe_core::{Config, Mempool, Packet, RxQueue, Started, TxQueue, DEFAULT_BUF_SIZE};
use platform_mock::traffic::{CheckingSink, LineRateSource, PeerCounters};
use platform_mock::{NicConfig, NicId, Sim, SimPlatform, ViolationKind};
use tests::on_sim::{assert_clean, start};

const MACS: [[u8; 6]; 2] = [[0x02, 0, 0, 0, 0, 0x01], [0x02, 0, 0, 0, 0, 0x02]];
const QUEUES: u16 = 2;
const FLOWS: u16 = 64;

fn config() -> Config {
    Config::default()
        .rx_ring_size(256)
        .tx_ring_size(256)
        .rx_queues(QUEUES)
        .tx_queues(QUEUES)
}

/// Two ports on a simulator with one lane per queue.
fn two_ports() -> (Sim, [NicId; 2], [SimPlatform; 2]) {
    let sim = Sim::with_lanes(usize::from(QUEUES));
    let nics = MACS.map(|mac| {
        sim.add_nic(NicConfig {
            mac,
            ..NicConfig::default()
        })
    });
    let platforms = nics.map(|n| sim.platform(n));
    (sim, nics, platforms)
}

fn pools(p: &SimPlatform) -> Vec<Mempool<SimPlatform>> {
    (0..QUEUES)
        .map(|_| Mempool::new(p, 1024, DEFAULT_BUF_SIZE).unwrap())
        .collect()
}

/// The flows (of [`FLOWS`]) that `nic`'s RSS sends to each lane.
fn flows_by_lane(sim: &Sim, nic: NicId, mac: [u8; 6]) -> Vec<Vec<u16>> {
    let probe = LineRateSource::new(mac).with_flows(FLOWS);
    let mut ids = vec![Vec::new(); sim.lanes()];
    for f in 0..FLOWS {
        let q = sim.rss_queue(nic, &probe.first_frame_of_flow(f));
        ids[sim.lane_of_queue(q)].push(f);
    }
    ids
}

/// One direction of a worker: receive a batch on `rx`, send it on `tx`.
fn forward<'a>(rx: &mut RxQueue<'a, SimPlatform>, tx: &mut TxQueue<'a, SimPlatform>) -> usize {
    let mut batch: HVec<Packet<'a>, 32> = HVec::new();
    let n = rx.rx_batch(&mut batch, 32);
    if n == 0 {
        tx.clean();
        return 0;
    }
    let sent = tx.tx_batch(&mut batch);
    assert_eq!(sent, n, "the Tx ring has room for every batch");
    n
}

#[test]
fn two_threads_forward_two_queues_without_loss_or_violation() {
    let per_source: u64 = if cfg!(miri) { 40 } else { 20_000 };
    let (sim, nics, platforms) = two_ports();
    let pools = [pools(&platforms[0]), pools(&platforms[1])];
    let Started {
        rx: rx0,
        tx: tx0,
        device: dev0,
    } = start(&platforms[0], &config(), &pools[0]);
    let Started {
        rx: rx1,
        tx: tx1,
        device: dev1,
    } = start(&platforms[1], &config(), &pools[1]);
    // Each lane's sources offer the flows RSS sends to its queue, a fixed number of frames
    // each; each lane's sinks check what its queue transmits.
    let counters: Vec<Arc<PeerCounters>> = (0..QUEUES).map(|_| PeerCounters::new()).collect();
    let mut expected = vec![0u64; usize::from(QUEUES)];
    for (&nic, &mac) in nics.iter().zip(&MACS) {
        for (k, ids) in flows_by_lane(&sim, nic, mac).iter().enumerate() {
            assert!(
                !ids.is_empty(),
                "RSS sends some of {FLOWS} flows to queue {k}"
            );
            let source = LineRateSource::new(mac)
                .with_flow_ids(ids)
                .with_count(per_source)
                .with_max_burst(32)
                .with_counters(counters[k].clone());
            sim.attach_lane_source(k, nic, Box::new(source));
            sim.attach_lane_sink(
                k,
                nic,
                Box::new(CheckingSink::with_counters(counters[k].clone())),
            );
            expected[k] += per_source;
        }
    }
    // Worker q serves queue q of both ports (port 0 to 1 and back) and pumps lane q.
    let mut lanes: Vec<_> = rx0
        .into_iter()
        .zip(tx0)
        .zip(rx1.into_iter().zip(tx1))
        .collect();
    let forwarded: Vec<u64> = std::thread::scope(|s| {
        let workers: Vec<_> = lanes
            .iter_mut()
            .enumerate()
            .map(|(k, ((rx0, tx0), (rx1, tx1)))| {
                let (sim, c, want) = (&sim, &counters[k], expected[k]);
                s.spawn(move || {
                    let mut forwarded = 0u64;
                    for _ in 0..50_000_000u64 {
                        if c.received.load(Ordering::Relaxed) >= want {
                            break;
                        }
                        sim.advance_lane(k, Duration::from_micros(2));
                        forwarded += forward(rx0, tx1) as u64;
                        forwarded += forward(rx1, tx0) as u64;
                    }
                    forwarded
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for (k, c) in counters.iter().enumerate() {
        let (sent, received, corrupted, lost, reordered) = c.snapshot();
        assert_eq!(sent, expected[k], "lane {k}: every frame offered");
        assert_eq!(received, expected[k], "lane {k}: every frame came back");
        assert_eq!((corrupted, lost, reordered), (0, 0, 0), "lane {k}");
        assert_eq!(
            forwarded[k], expected[k],
            "lane {k} forwarded its own queue's frames"
        );
    }
    // The device's counters add up the lanes' (each lane counts the frames it handled).
    let total: u64 = expected.iter().sum();
    let (s0, s1) = (dev0.stats(), dev1.stats());
    assert_eq!(s0.rx_packets + s1.rx_packets, total);
    assert_eq!(s0.tx_packets + s1.tx_packets, total);
    for nic in nics {
        let w = sim.wire_counters(nic);
        assert_eq!(w.rx_delivered, w.rx_frames, "{nic:?}: {w:?}");
        assert_eq!((w.rx_dropped, w.rx_missed), (0, 0), "{nic:?}: {w:?}");
        // Each lane's sources offer only its own queue's flows (by the model's RSS).
        assert_eq!(w.rx_handed_over, 0, "{nic:?}: {w:?}");
    }
    drop(lanes);
    drop((dev0, dev1));
    assert_clean(&sim);
}

#[test]
fn a_frame_for_another_lanes_queue_is_delivered_by_that_lane() {
    let (sim, nics, platforms) = two_ports();
    let pools = pools(&platforms[0]);
    let Started { mut rx, device, .. } = start(&platforms[0], &config(), &pools);
    let ids = flows_by_lane(&sim, nics[0], MACS[0]);
    // Every flow, arriving through lane 0 (inject), lands on the queue RSS picks.
    let source = LineRateSource::new(MACS[0]).with_flows(FLOWS);
    for f in 0..FLOWS {
        sim.inject(nics[0], &source.first_frame_of_flow(f));
    }
    for (q, rxq) in rx.iter_mut().enumerate() {
        let mut batch: HVec<Packet, 64> = HVec::new();
        assert_eq!(rxq.rx_batch(&mut batch, 64), ids[q].len(), "queue {q}");
        for p in batch.iter() {
            let flow = u16::from_le_bytes([p[46], p[47]]);
            assert!(ids[q].contains(&flow), "flow {flow} on queue {q}");
        }
    }
    assert_eq!(device.stats().rx_packets, u64::from(FLOWS));
    let w = sim.wire_counters(nics[0]);
    assert_eq!(w.rx_delivered, u64::from(FLOWS));
    assert_eq!(
        w.rx_handed_over,
        ids[1].len() as u64,
        "queue 1's flows went lane 0 -> 1"
    );
    drop(rx);
    drop(device);
    assert_clean(&sim);
}

#[test]
fn lanes_record_a_violation_once() {
    let (sim, nics, _platforms) = two_ports();
    // RDT of queue 1 (its lane only) and a write to a read-only register (every lane).
    // SAFETY: no DMA is set up; the writes start none.
    unsafe {
        sim.bar0_write(nics[0], 0x01018 + 0x40, 5);
        sim.bar0_write(nics[0], 0x00008, 1); // STATUS
    }
    let v = sim.violations();
    assert_eq!(v.len(), 2, "{v:#?}");
    for kind in [
        ViolationKind::TailOutOfRange,
        ViolationKind::ReadOnlyRegister,
    ] {
        assert_eq!(v.iter().filter(|v| v.kind == kind).count(), 1, "{v:#?}");
    }
}
