//! Time on the simulated 82599: the per-queue transmit rate limiter (§7.7.2.2) paces a queue in
//! virtual time; IEEE 1588 time stamps (§7.9) follow the model's clock.

use std::time::Duration;

use ixgbe_core::heapless::Vec as HVec;
use ixgbe_core::{Config, Error, Mempool, Packet, Platform, TxQueue, DEFAULT_BUF_SIZE};
use platform_mock::{NicConfig, NicId, Sim, SimPlatform, ViolationKind};
use tests::on_sim::{assert_clean, sim_nic_with, start};

fn config() -> Config {
    Config::default().rx_ring_size(64).tx_ring_size(256)
}

/// Keeps `tx` full of `len`-byte frames for `time` of virtual time in steps of `step`; returns
/// how many frames the port put on the wire.
fn send_for<'a>(
    sim: &Sim,
    nic: NicId,
    pool: &'a Mempool<SimPlatform>,
    tx: &mut TxQueue<'a, SimPlatform>,
    len: usize,
    time: Duration,
    step: Duration,
) -> usize {
    let mut sent = 0;
    let mut batch: HVec<Packet, 32> = HVec::new();
    let mut t = Duration::ZERO;
    while t < time {
        // At most a ring's worth per step: unlimited, the model sends at each doorbell.
        for _ in 0..tx.ring_size() / 32 {
            let room = 32 - batch.len();
            pool.alloc_batch(&mut batch, room, len);
            if batch.is_empty() || tx.tx_batch(&mut batch) == 0 {
                break;
            }
        }
        sim.advance(step);
        t += step;
        sent += sim.take_transmitted(nic).len();
    }
    tx.tx_batch(&mut batch);
    sent
}

/// A rate-limited queue sends at its rate within 1 % in virtual time, for small and large
/// frames; without the limit the same loop sends far more.
#[test]
fn rate_limited_queue_keeps_its_rate_within_one_percent() {
    let time = if cfg!(miri) {
        Duration::from_micros(400)
    } else {
        Duration::from_millis(4)
    };
    for (rate, len) in [(1_000_000_000u64, 60usize), (3_000_000_000, 1514)] {
        let (sim, nic, platform) = sim_nic_with(NicConfig::default());
        let tx_pool = Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap();
        let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
        let mut s = start(&platform, &config(), &pools);
        let got = s.device.set_tx_rate_limit(0, rate).unwrap();
        assert!(
            got.abs_diff(rate) <= rate / 10_000,
            "{rate}: programmed {got}"
        );
        let step = Duration::from_micros(5);
        // Warm up (the queue fills), then measure.
        send_for(&sim, nic, &tx_pool, &mut s.tx[0], len, step * 4, step);
        let frames = send_for(&sim, nic, &tx_pool, &mut s.tx[0], len, time, step);
        let bits = frames as f64 * (len + 24) as f64 * 8.0;
        let measured = bits / time.as_secs_f64();
        assert!(
            (measured - rate as f64).abs() <= rate as f64 * 0.01,
            "{rate} bit/s asked, {measured:.0} measured ({frames} frames of {len} bytes)"
        );
        // Unlimited again: the model sends whatever the ring holds at once.
        s.device.clear_tx_rate_limit(0).unwrap();
        let free = send_for(&sim, nic, &tx_pool, &mut s.tx[0], len, time / 4, step);
        assert!(
            free > frames,
            "{free} frames unlimited in a quarter of the time, {frames} limited"
        );
        assert_clean(&sim);
    }
}

/// The driver refuses rates the rate factor cannot express (above link speed, below 1/1024 of
/// it), an absent queue, and a link that is down.
#[test]
fn impossible_rates_are_refused() {
    let (sim, nic, platform) = sim_nic_with(NicConfig::default());
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let s = start(&platform, &config(), &pools);
    let refused = |r: Result<u64, Error>| matches!(r, Err(Error::InvalidConfig { .. }));
    assert!(refused(s.device.set_tx_rate_limit(0, 10_000_000_001)));
    assert!(refused(s.device.set_tx_rate_limit(0, 9_000_000)));
    assert!(refused(s.device.set_tx_rate_limit(1, 1_000_000_000)));
    assert!(s.device.set_tx_rate_limit(0, 10_000_000).is_ok());
    sim.set_link(nic, false);
    assert!(refused(s.device.set_tx_rate_limit(0, 1_000_000_000)));
    assert_clean(&sim);
}

/// RS_ENA with a rate factor below 1 (faster than the link) is what the datasheet rules out:
/// the model records it.
#[test]
fn a_rate_factor_below_one_is_a_violation() {
    let (sim, _nic, platform) = sim_nic_with(NicConfig::default());
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let _s = start(&platform, &config(), &pools);
    // SAFETY: the simulated device's registers; nothing else maps them.
    unsafe {
        platform.write32(0x04904, 0); // RTTDQSEL: queue 0
        platform.write32(0x04984, 1 << 31 | 0x2000); // RS_ENA, RF = 0.5
    }
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].kind, ViolationKind::InvalidConfig);
    assert!(v[0].what.contains("rate factor"), "{}", v[0].what);
}

/// A PTP v2 message of `msg_type` over UDP to port 319 (a Sync is what the driver stamps).
fn ptp_frame(msg_type: u8, id: u64) -> Vec<u8> {
    let flow = ixgbe_tools::frame::Flow {
        dst_mac: [0x02, 0, 0, 0, 0, 0x01],
        src_mac: [0x02, 0, 0, 0, 0, 0x42],
        src_ip: [10, 0, 0, 1],
        dst_ip: [10, 0, 1, 1],
        src_port: 1000,
        dst_port: 2000,
    };
    let mut f = vec![0u8; ixgbe_tools::latency::PROBE_SIZE];
    ixgbe_tools::latency::probe_frame(&mut f, &flow, id);
    f[42] = msg_type;
    f
}

/// SYSTIM counts nanoseconds of virtual time as TIMINCA says (6.4 ns periods at 10 Gb/s).
#[test]
fn the_clock_follows_virtual_time() {
    let (sim, _nic, platform) = sim_nic_with(NicConfig::default());
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let s = start(&platform, &config(), &pools);
    let ts = s.device.enable_timestamps().unwrap();
    let t0 = ts.now_ns();
    sim.advance(Duration::from_millis(3));
    let t1 = ts.now_ns();
    let d = t1 - t0;
    assert!(
        d.abs_diff(3_000_000) <= 13,
        "3 ms of virtual time: {d} ns on the clock"
    );
    assert_clean(&sim);
}

/// A frame sent with tx_timestamped latches the time it left; one time stamp at a time (the
/// next frame is not stamped until the first was read); ordinary frames are never stamped.
#[test]
fn tx_time_stamps_are_latched_once_until_read() {
    let (sim, nic, platform) = sim_nic_with(NicConfig::default());
    let tx_pool = Mempool::new(&platform, 64, DEFAULT_BUF_SIZE).unwrap();
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let mut s = start(&platform, &config(), &pools);
    let ts = s.device.enable_timestamps().unwrap();
    assert_eq!(ts.tx_timestamp(), None);
    let mut batch: HVec<Packet, 4> = HVec::new();
    tx_pool.alloc_batch(&mut batch, 1, 60);
    assert_eq!(s.tx[0].tx_batch(&mut batch), 1);
    sim.advance(Duration::from_micros(10));
    assert_eq!(ts.tx_timestamp(), None, "an ordinary frame is not stamped");
    fn send<'a>(pool: &'a Mempool<SimPlatform>, tx: &mut TxQueue<'a, SimPlatform>) {
        let mut p = pool.alloc().unwrap();
        p.set_len(60).unwrap();
        p.copy_from_slice(&[0xAB; 60]);
        assert!(tx.tx_timestamped(p).is_ok());
    }
    let before = ts.now_ns();
    send(&tx_pool, &mut s.tx[0]);
    sim.advance(Duration::from_micros(50));
    send(&tx_pool, &mut s.tx[0]);
    sim.advance(Duration::from_micros(50));
    let first = ts.wait_tx_timestamp(Duration::from_millis(1)).unwrap();
    assert!((before..before + 10).contains(&first), "{before} {first}");
    assert_eq!(
        ts.tx_timestamp(),
        None,
        "the second frame went while the first was held"
    );
    send(&tx_pool, &mut s.tx[0]);
    sim.advance(Duration::from_micros(5));
    let third = ts.wait_tx_timestamp(Duration::from_millis(1)).unwrap();
    assert!(third.abs_diff(first + 100_000) <= 10, "{first} {third}");
    assert_eq!(sim.take_transmitted(nic).len(), 4);
    assert_clean(&sim);
}

/// A PTP Sync over UDP to port 319 latches the time it arrived; other messages and other
/// frames do not, nor a Sync while a time stamp is held.
#[test]
fn rx_time_stamps_latch_sync_messages_only() {
    let (sim, nic, platform) = sim_nic_with(NicConfig::default());
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let s = start(&platform, &config(), &pools);
    let ts = s.device.enable_timestamps().unwrap();
    let t0 = ts.now_ns();
    sim.advance(Duration::from_micros(20));
    sim.inject(nic, &ptp_frame(1, 1)); // Delay_Req
    let mut udp = ptp_frame(0, 2);
    udp[37] = 0x20; // to port 288
    sim.inject(nic, &udp);
    assert_eq!(ts.rx_timestamp(), None);
    sim.inject(nic, &ptp_frame(0, 3));
    sim.advance(Duration::from_micros(20));
    sim.inject(nic, &ptp_frame(0, 4));
    let got = ts.wait_rx_timestamp(Duration::from_millis(1)).unwrap();
    assert!(got.abs_diff(t0 + 20_000) <= 10, "{t0} {got}");
    assert_eq!(
        ts.rx_timestamp(),
        None,
        "the second Sync came while the first was held"
    );
    sim.inject(nic, &ptp_frame(0, 5));
    let next = ts.rx_timestamp().unwrap();
    assert!(next.abs_diff(t0 + 40_000) <= 10, "{t0} {next}");
    assert_clean(&sim);
}

/// TSYNCRXCTL.TYPE values the 82599 reserves are recorded.
#[test]
fn a_reserved_rx_time_stamp_type_is_a_violation() {
    let (sim, _nic, platform) = sim_nic_with(NicConfig::default());
    let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let _s = start(&platform, &config(), &pools);
    // SAFETY: the simulated device's registers; nothing else maps them.
    unsafe { platform.write32(0x05188, 1 << 4 | 0b011 << 1) };
    let v = sim.violations();
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].what.contains("TSYNCRXCTL.TYPE"), "{}", v[0].what);
}
