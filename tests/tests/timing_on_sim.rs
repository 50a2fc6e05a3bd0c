//! Time on the simulated 82599: the per-queue transmit rate limiter (§7.7.2.2) paces a queue in
//! virtual time; IEEE 1588 time stamps (§7.9) follow the model's clock.

use std::time::Duration;

use ixgbe_core::heapless::Vec as HVec;
use ixgbe_core::{Config, Error, Mempool, Packet, Platform, TxQueue, DEFAULT_BUF_SIZE};
use platform_mock::{NicConfig, NicId, Sim, SimPlatform, ViolationKind};
use tests::on_sim::{assert_clean, start};

fn sim_nic() -> (Sim, NicId, SimPlatform) {
    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig::default());
    let platform = sim.platform(nic);
    (sim, nic, platform)
}

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
        let (sim, nic, platform) = sim_nic();
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
    let (sim, nic, platform) = sim_nic();
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
    let (sim, _nic, platform) = sim_nic();
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
