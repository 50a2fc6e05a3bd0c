//! `irq_bench`: what polling and the hybrid interrupt policy cost, in the simulator's virtual
//! time, at several offered rates (docs/benchmarks.md, "Interrupts").
//!
//! One receive queue of a simulated 82599 gets 64-byte frames at a fixed rate, each stamped with
//! the virtual time it was due on the wire. The receive loop charges itself `POLL_COST` of
//! virtual time per call and `PER_PACKET` per frame (the CPU it would burn); in hybrid mode it
//! sleeps whenever the policy says so, and a sleep costs nothing. Reported per rate and mode:
//! the share of time the loop was busy (the CPU it would use), wake-ups per second, and the
//! latency from a frame's due time to the loop receiving it (mean, 99th percentile, maximum).
//!
//! Usage: `irq_bench [--ms MILLISECONDS] [--rates r1,r2,...]` (rates in frames per ms).

use std::time::Duration;

use ixgbe_core::heapless::Vec as HVec;
use ixgbe_core::{
    Config, Device, InterruptConfig, InterruptMode, Mempool, Packet, Started, DEFAULT_BUF_SIZE,
};
use platform_mock::{NicConfig, Sim, TrafficSource};

/// Virtual time one receive call costs (a poll of an empty ring and the loop around it).
const POLL_COST: Duration = Duration::from_nanos(500);
/// Virtual time per frame received (descriptor, buffer, the caller's work).
const PER_PACKET: Duration = Duration::from_nanos(50);
/// The simulator's time slice: frames arrive at most this late because of it.
const SLICE: Duration = Duration::from_micros(2);
const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];

/// Frames at `per_ms` per millisecond, each carrying its due time (ns) in bytes 42..50.
struct Stamped {
    gap: Duration,
    next: Duration,
}

impl TrafficSource for Stamped {
    fn poll(&mut self, now: Duration, out: &mut dyn FnMut(&[u8])) {
        while self.next <= now {
            let mut f = [0u8; 60];
            f[0..6].copy_from_slice(&MAC);
            f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x42]);
            f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
            f[42..50].copy_from_slice(&(self.next.as_nanos() as u64).to_le_bytes());
            out(&f);
            self.next += self.gap;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Polling,
    Hybrid,
}

struct Result {
    busy: f64,
    wake_ups_per_s: f64,
    to_polling: u64,
    received: u64,
    offered: u64,
    mean_us: f64,
    p99_us: f64,
    max_us: f64,
}

fn run(mode: Mode, per_ms: u64, ms: u64) -> Result {
    let sim = Sim::new();
    sim.set_time_slice(SLICE);
    let nic = sim.add_nic(NicConfig {
        mac: MAC,
        ..NicConfig::default()
    });
    let p = sim.platform(nic);
    let pools = [Mempool::new(&p, 4096, DEFAULT_BUF_SIZE).expect("pool")];
    let config = Config::default()
        .rx_ring_size(1024)
        .tx_ring_size(64)
        .interrupts((mode == Mode::Hybrid).then(|| InterruptConfig {
            mode: InterruptMode::Hybrid,
            ..InterruptConfig::default()
        }));
    let Started { device, mut rx, .. } = Device::init(p.clone(), &config, &pools).expect("init");
    device.wait_for_link(Duration::from_secs(1)).expect("link");
    let mut irqs = match mode {
        Mode::Hybrid => Some(device.enable_interrupts().expect("interrupts")),
        Mode::Polling => None,
    };
    let start = sim.now();
    sim.attach_source(
        nic,
        Box::new(Stamped {
            gap: Duration::from_nanos(1_000_000 / per_ms),
            next: start,
        }),
    );
    let end = start + Duration::from_millis(ms);
    let mut latencies: Vec<u64> = Vec::new();
    let mut asleep = Duration::ZERO;
    let mut batch: HVec<Packet<'_>, 32> = HVec::new();
    while sim.now() < end {
        let n = rx[0].rx_batch(&mut batch, 32);
        let now = sim.now().as_nanos() as u64;
        for pkt in batch.iter() {
            let due = u64::from_le_bytes(pkt[42..50].try_into().expect("8 bytes"));
            latencies.push(now.saturating_sub(due));
        }
        batch.clear();
        let slept = match irqs.as_mut() {
            Some(irqs) => {
                let t0 = sim.now();
                let slept = irqs.queues[0].after_rx(n, 32).expect("wait");
                if slept {
                    asleep += sim.now() - t0;
                }
                slept
            }
            None => false,
        };
        if !slept {
            sim.advance(POLL_COST + PER_PACKET * n as u32);
        }
    }
    let total = sim.now() - start;
    let wire = sim.wire_counters(nic);
    let counters = irqs
        .as_ref()
        .map(|i| i.queues[0].counters())
        .unwrap_or_default();
    if let Some(_irqs) = irqs.take() {
        device.disable_interrupts();
    }
    let violations = sim.violations();
    assert!(violations.is_empty(), "violations: {violations:#?}");
    latencies.sort_unstable();
    let pct = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |&ns| ns as f64 / 1000.0)
    };
    Result {
        busy: 1.0 - asleep.as_secs_f64() / total.as_secs_f64(),
        wake_ups_per_s: counters.wake_ups as f64 / total.as_secs_f64(),
        to_polling: counters.to_polling,
        received: latencies.len() as u64,
        offered: wire.rx_frames,
        mean_us: latencies.iter().sum::<u64>() as f64 / latencies.len().max(1) as f64 / 1000.0,
        p99_us: pct(0.99),
        max_us: latencies.last().map_or(0.0, |&ns| ns as f64 / 1000.0),
    }
}

fn main() {
    let mut ms = 50u64;
    let mut rates = vec![1u64, 10, 100, 500, 1000, 2000, 4000];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let value = args.next().unwrap_or_default();
        match a.as_str() {
            "--ms" => ms = value.parse().expect("--ms takes a number"),
            "--rates" => {
                rates = value
                    .split(',')
                    .map(|r| r.parse().expect("--rates takes numbers"))
                    .collect()
            }
            _ => panic!("usage: irq_bench [--ms MILLISECONDS] [--rates r1,r2,...]"),
        }
    }
    println!(
        "| offered (frames/ms) | mode | busy (CPU) | wake-ups/s | switches to polling | \
         received / offered | latency mean (µs) | p99 (µs) | max (µs) |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for &rate in &rates {
        for mode in [Mode::Polling, Mode::Hybrid] {
            let r = run(mode, rate, ms);
            println!(
                "| {rate} | {} | {:.1} % | {:.0} | {} | {} / {} | {:.1} | {:.1} | {:.1} |",
                match mode {
                    Mode::Polling => "polling",
                    Mode::Hybrid => "hybrid",
                },
                100.0 * r.busy,
                r.wake_ups_per_s,
                r.to_polling,
                r.received,
                r.offered,
                r.mean_us,
                r.p99_us,
                r.max_us
            );
        }
    }
}
