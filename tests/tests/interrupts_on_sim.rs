//! The driver's interrupts (`ixgbe_core::interrupts`) against the simulated 82599's interrupt
//! model, waited for through `SimPlatform`'s `InterruptPlatform`: one MSI-X vector per receive
//! queue, throttling, masking, auto-clear, the link-change vector, the single-interrupt fallback
//! and the hybrid policy. Every test ends with no simulator violation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ixgbe_core::heapless::Vec as HVec;
use ixgbe_core::{
    Config, Delivery, HybridConfig, InterruptConfig, InterruptMode, InterruptPlatform, Mempool,
    Packet, Platform, Started, DEFAULT_BUF_SIZE,
};
use platform_mock::{SimPlatform, TrafficSource};
use tests::on_sim::{assert_clean, sim_nic, start_within};

const MAC: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01];
const EICR: u32 = 0x00800;
const EICS: u32 = 0x00808;
const EIMS: u32 = 0x00880;
const EIMS_EX0: u32 = 0x00AA0;

/// A UDP/IPv4 frame to us whose payload carries `seq`; `flow` varies the addresses and ports
/// (what RSS hashes).
fn frame(seq: u32, flow: u16) -> Vec<u8> {
    let len = 64;
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&MAC);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x42]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14] = 0x45;
    f[16..18].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&[10, 0, (flow >> 8) as u8, flow as u8]);
    f[30..34].copy_from_slice(&[10, 1, 0, 1]);
    f[34..36].copy_from_slice(&(1000 + flow).to_be_bytes());
    f[36..38].copy_from_slice(&4242u16.to_be_bytes());
    f[42..46].copy_from_slice(&seq.to_be_bytes());
    f
}

fn seq_of(p: &Packet<'_>) -> u32 {
    u32::from_be_bytes([p[42], p[43], p[44], p[45]])
}

fn irq_config(mode: InterruptMode, throttle_us: u64) -> InterruptConfig {
    InterruptConfig {
        mode,
        throttle: Duration::from_micros(throttle_us),
        ..InterruptConfig::default()
    }
}

fn config(queues: u16, ring: u16, irq: InterruptConfig) -> Config {
    Config::default()
        .rx_queues(queues)
        .tx_queues(queues)
        .rx_ring_size(ring)
        .tx_ring_size(64)
        .promiscuous(false)
        .interrupts(Some(irq))
}

#[test]
fn polling_users_see_no_interrupt_set_up() {
    let (sim, _nic, p) = sim_nic(MAC);
    let pools = [Mempool::new(&p, 128, DEFAULT_BUF_SIZE).unwrap()];
    let cfg = Config::default().rx_ring_size(64).tx_ring_size(64);
    let s = start_within(&p, &cfg, &pools, Duration::from_secs(1));
    assert_eq!(p.read32(EIMS), 0, "everything masked");
    assert!(
        s.device.enable_interrupts().is_err(),
        "interrupts are opt-in through Config::interrupts"
    );
    assert_clean(&sim);
}

#[test]
fn sixteen_rx_queues_each_wake_on_their_own_vector() {
    let (sim, nic, p) = sim_nic(MAC);
    let pools: Vec<_> = (0..16)
        .map(|_| Mempool::new(&p, 128, DEFAULT_BUF_SIZE).unwrap())
        .collect();
    let cfg = config(16, 64, irq_config(InterruptMode::Always, 0));
    let Started { device, mut rx, .. } = start_within(&p, &cfg, &pools, Duration::from_secs(1));
    let mut irqs = device.enable_interrupts().expect("interrupts");
    assert_eq!(irqs.delivery, Delivery::MsiX { vectors: 17 });
    assert_eq!(irqs.link.as_ref().map(|l| l.vector()), Some(16));
    let mut seen = [false; 16];
    let mut batch: HVec<Packet<'_>, 32> = HVec::new();
    let mut flow = 0u16;
    // Armed once: a vector stays enabled after it fires.
    for irq in irqs.queues.iter_mut() {
        irq.arm();
    }
    while seen.iter().any(|s| !s) {
        assert!(flow < 2000, "RSS never reached queues {seen:?}");
        sim.inject(nic, &frame(u32::from(flow), flow));
        // A zero-timeout sleep consumes what is pending without waiting.
        let fired: Vec<u16> = irqs
            .queues
            .iter_mut()
            .filter_map(|irq| {
                irq.sleep(Duration::ZERO)
                    .expect("wait")
                    .then_some(irq.vector())
            })
            .collect();
        let got: Vec<u16> = rx
            .iter_mut()
            .filter_map(|q| {
                let n = q.rx_batch(&mut batch, 32);
                batch.clear();
                (n == 1).then_some(q.id())
            })
            .collect();
        assert_eq!(got.len(), 1, "one queue received flow {flow}");
        assert_eq!(
            fired, got,
            "flow {flow}: the vector that fired is its queue's"
        );
        seen[usize::from(got[0])] = true;
        flow += 1;
    }
    for (q, irq) in irqs.queues.iter().enumerate() {
        assert_eq!(irq.vector(), q as u16);
        assert!(irq.counters().wake_ups >= 1);
    }
    device.disable_interrupts();
    assert_clean(&sim);
}

#[test]
fn throttling_holds_the_next_message_for_the_eitr_interval() {
    for throttle_us in [0u64, 200] {
        let (sim, nic, p) = sim_nic(MAC);
        let pools = [Mempool::new(&p, 128, DEFAULT_BUF_SIZE).unwrap()];
        let cfg = config(1, 64, irq_config(InterruptMode::Always, throttle_us));
        let Started { device, mut rx, .. } = start_within(&p, &cfg, &pools, Duration::from_secs(1));
        let mut irqs = device.enable_interrupts().expect("interrupts");
        let irq = &mut irqs.queues[0];
        let mut batch: HVec<Packet<'_>, 32> = HVec::new();
        sim.inject(nic, &frame(0, 1));
        let t0 = sim.now();
        assert!(irq.sleep(Duration::from_millis(5)).unwrap());
        assert_eq!(sim.now(), t0, "the first message goes out at once");
        assert_eq!(rx[0].rx_batch(&mut batch, 32), 1);
        batch.clear();
        sim.inject(nic, &frame(1, 1));
        assert!(irq.sleep(Duration::from_millis(5)).unwrap());
        let waited = sim.now() - t0;
        if throttle_us == 0 {
            assert_eq!(waited, Duration::ZERO, "no throttling");
        } else {
            assert!(
                waited >= Duration::from_micros(throttle_us)
                    && waited < Duration::from_micros(throttle_us + 100),
                "second message after {waited:?}"
            );
        }
        assert_eq!(rx[0].rx_batch(&mut batch, 32), 1);
        batch.clear();
        device.disable_interrupts();
        assert_clean(&sim);
    }
}

#[test]
fn a_fired_vector_is_auto_cleared_and_stays_armed_until_disarmed() {
    let (sim, nic, p) = sim_nic(MAC);
    let pools = [Mempool::new(&p, 512, DEFAULT_BUF_SIZE).unwrap()];
    let cfg = config(2, 64, irq_config(InterruptMode::Always, 0));
    let Started { device, mut rx, .. } = start_within(&p, &cfg, &pools, Duration::from_secs(1));
    let mut irqs = device.enable_interrupts().expect("interrupts");
    // Before arming, a frame only latches its cause: no message.
    let flow = (0..100)
        .find(|&f| {
            sim.inject(nic, &frame(0, f));
            sim.advance(Duration::from_micros(10));
            let mut batch: HVec<Packet<'_>, 32> = HVec::new();
            let on_0 = rx[0].rx_batch(&mut batch, 32) == 1;
            rx[1].rx_batch(&mut batch, 32);
            on_0
        })
        .expect("a flow RSS puts on queue 0");
    // SAFETY: EICR is write-1-to-clear cause bits; it makes the device touch no memory.
    unsafe { p.write32(EICR, 0b11) };
    sim.inject(nic, &frame(1, flow));
    assert_eq!(p.wait_interrupt(0, Duration::from_millis(1)).unwrap(), 0);
    assert_eq!(p.read32(EICS) & 0b11, 0b01, "queue 0's cause latched");
    // Arming fires for the latched cause; the message auto-clears it (EIAC) and the vector
    // stays enabled (no auto-mask), so the next frame fires without a register write.
    let irq = &mut irqs.queues[0];
    assert!(irq.sleep(Duration::from_millis(1)).unwrap());
    assert_eq!(p.read32(EICS) & 1, 0, "auto-cleared");
    assert_eq!(p.read32(EIMS_EX0) & 1, 1, "still armed");
    sim.inject(nic, &frame(2, flow));
    assert_eq!(
        p.wait_interrupt(0, Duration::from_millis(1)).unwrap(),
        1,
        "armed: the next frame fires"
    );
    // Disarmed, a frame latches its cause without a message; the next sleep arms and fires.
    irq.disarm();
    assert_eq!(p.read32(EIMS_EX0) & 1, 0, "masked");
    sim.inject(nic, &frame(3, flow));
    assert_eq!(
        p.wait_interrupt(0, Duration::from_millis(1)).unwrap(),
        0,
        "masked: no message"
    );
    assert_eq!(p.read32(EICS) & 1, 1, "cause latched while masked");
    assert!(irq.sleep(Duration::from_millis(1)).unwrap(), "re-armed");
    let mut batch: HVec<Packet<'_>, 32> = HVec::new();
    assert_eq!(rx[0].rx_batch(&mut batch, 32), 3);
    assert_eq!(batch.iter().map(seq_of).collect::<Vec<_>>(), [1, 2, 3]);
    batch.clear();
    // Queue 1's vector saw nothing of it.
    assert!(!irqs.queues[1].sleep(Duration::ZERO).unwrap());
    // EIMS bit 31 is reserved: the driver never set it.
    assert_eq!(p.read32(EIMS) & (1 << 31), 0);
    device.disable_interrupts();
    assert_clean(&sim);
}

/// Stopping a program: wake_sleepers makes every queue's wait return at once, without waiting
/// for its timeout or advancing the clock to it.
#[test]
fn wake_sleepers_ends_every_queues_wait_at_once() {
    let (sim, _nic, p) = sim_nic(MAC);
    let pools = [Mempool::new(&p, 512, DEFAULT_BUF_SIZE).unwrap()];
    let cfg = config(4, 64, irq_config(InterruptMode::Always, 50));
    let Started { device, .. } = start_within(&p, &cfg, &pools, Duration::from_secs(1));
    let mut irqs = device.enable_interrupts().expect("interrupts");
    let t0 = sim.now();
    assert!(
        !irqs.queues[0].sleep(Duration::from_millis(5)).unwrap(),
        "no traffic: times out"
    );
    assert!(sim.now() - t0 >= Duration::from_millis(5));
    device.wake_sleepers();
    let t1 = sim.now();
    for irq in irqs.queues.iter_mut() {
        assert!(
            irq.sleep(Duration::from_millis(100)).unwrap(),
            "queue {} woken",
            irq.queue()
        );
    }
    assert!(
        sim.now() - t1 < Duration::from_millis(1),
        "no queue waited for its timeout"
    );
    device.disable_interrupts();
    assert_clean(&sim);
}

#[test]
fn a_link_change_fires_the_other_vector() {
    let (sim, nic, p) = sim_nic(MAC);
    let pools = [Mempool::new(&p, 128, DEFAULT_BUF_SIZE).unwrap()];
    let cfg = config(1, 64, irq_config(InterruptMode::Always, 0));
    let Started { device, .. } = start_within(&p, &cfg, &pools, Duration::from_secs(1));
    let mut irqs = device.enable_interrupts().expect("interrupts");
    let link = irqs.link.as_mut().expect("MSI-X has a link vector");
    assert_eq!(link.vector(), 1);
    assert!(
        !link.wait(Duration::from_millis(2)).unwrap(),
        "the link-up of init is not reported late"
    );
    sim.set_link(nic, false);
    assert!(link.wait(Duration::from_millis(2)).unwrap(), "link down");
    assert!(!device.link().up);
    sim.set_link(nic, true);
    let t0 = sim.now();
    assert!(link.wait(Duration::from_millis(100)).unwrap(), "link up");
    assert!(
        sim.now() - t0 >= Duration::from_millis(20),
        "after training"
    );
    assert!(device.link().up);
    assert!(!irqs.queues[0].sleep(Duration::ZERO).unwrap());
    device.disable_interrupts();
    assert_clean(&sim);
}

#[test]
fn msi_fallback_puts_every_queue_on_one_interrupt() {
    let (sim, nic, p) = sim_nic(MAC);
    p.prefer_single_interrupt(true);
    let pools = [Mempool::new(&p, 128, DEFAULT_BUF_SIZE).unwrap()];
    let cfg = config(1, 64, irq_config(InterruptMode::Always, 0));
    let Started { device, mut rx, .. } = start_within(&p, &cfg, &pools, Duration::from_secs(1));
    let mut irqs = device.enable_interrupts().expect("interrupts");
    assert_eq!(irqs.delivery, Delivery::Single);
    assert!(irqs.link.is_none());
    let irq = &mut irqs.queues[0];
    let mut batch: HVec<Packet<'_>, 32> = HVec::new();
    for seq in 0..3 {
        assert!(!irq.sleep(Duration::from_millis(1)).unwrap(), "nothing yet");
        sim.inject(nic, &frame(seq, 1));
        assert!(irq.sleep(Duration::from_millis(1)).unwrap(), "frame {seq}");
        assert_eq!(rx[0].rx_batch(&mut batch, 32), 1);
        batch.clear();
    }
    device.disable_interrupts();
    assert_clean(&sim);
}

/// Frames at a rate that can be changed while it runs (packets per millisecond), each with the
/// next sequence number.
struct RateSource {
    per_ms: Arc<AtomicU64>,
    sent: Arc<AtomicU64>,
    next: Duration,
}

impl TrafficSource for RateSource {
    fn poll(&mut self, now: Duration, out: &mut dyn FnMut(&[u8])) {
        let rate = self.per_ms.load(Ordering::Relaxed);
        if rate == 0 {
            self.next = now;
            return;
        }
        let gap = Duration::from_nanos(1_000_000 / rate);
        while self.next <= now {
            let seq = self.sent.fetch_add(1, Ordering::Relaxed);
            out(&frame(seq as u32, 7));
            self.next += gap;
        }
    }
}

/// The hybrid policy: asleep at a low rate, polling above `poll_above` (first through a full
/// batch), asleep again once the average fell below `sleep_below`; every frame arrives once and
/// in order across the switches.
#[test]
fn hybrid_switches_both_ways_at_its_thresholds_without_losing_a_frame() {
    let (sim, nic, p) = sim_nic(MAC);
    let pools = [Mempool::new(&p, 2048, DEFAULT_BUF_SIZE).unwrap()];
    let irq_cfg = InterruptConfig {
        hybrid: HybridConfig {
            poll_above: 1000,
            sleep_below: 500,
            interval: Duration::from_millis(1),
            check_every: 16,
        },
        ..irq_config(InterruptMode::Hybrid, 50)
    };
    let cfg = config(1, 1024, irq_cfg);
    let Started { device, mut rx, .. } = start_within(&p, &cfg, &pools, Duration::from_secs(1));
    let mut irqs = device.enable_interrupts().expect("interrupts");
    let irq = &mut irqs.queues[0];
    let per_ms = Arc::new(AtomicU64::new(100));
    let sent = Arc::new(AtomicU64::new(0));
    sim.attach_source(
        nic,
        Box::new(RateSource {
            per_ms: per_ms.clone(),
            sent: sent.clone(),
            next: sim.now(),
        }),
    );
    let mut expected = 0u32;
    let mut batch: HVec<Packet<'_>, 32> = HVec::new();
    // Runs the receive loop for `ms` of virtual time; each call that does not sleep costs 2 µs.
    let mut run = |ms: u64, irq: &mut ixgbe_core::QueueInterrupt<SimPlatform>| {
        let end = sim.now() + Duration::from_millis(ms);
        while sim.now() < end {
            let n = rx[0].rx_batch(&mut batch, 32);
            for pkt in batch.iter() {
                assert_eq!(seq_of(pkt), expected, "frames in order, none lost");
                expected += 1;
            }
            batch.clear();
            if !irq.after_rx(n, 32).unwrap() {
                sim.advance(Duration::from_micros(2));
            }
        }
    };
    run(20, irq);
    let low = irq.counters();
    assert!(!irq.polling(), "100/ms: asleep");
    assert_eq!(low.to_polling, 0);
    // Frames arrive in the simulator's 100 µs slices: at least a wake-up every other slice.
    assert!(low.wake_ups >= 100, "{low:?}");
    per_ms.store(2000, Ordering::Relaxed);
    run(20, irq);
    assert!(irq.polling(), "2000/ms: polling");
    assert_eq!(p.read32(EIMS_EX0) & 1, 0, "polling: the vector is masked");
    let high = irq.counters();
    assert_eq!(high.to_polling, 1, "{high:?}");
    assert!(
        high.sleeps - low.sleeps < 50,
        "polling does not sleep: {high:?}"
    );
    per_ms.store(700, Ordering::Relaxed);
    run(20, irq);
    assert!(irq.polling(), "700/ms is above sleep_below: still polling");
    per_ms.store(100, Ordering::Relaxed);
    run(20, irq);
    assert!(!irq.polling(), "100/ms again: asleep");
    assert_eq!(p.read32(EIMS_EX0) & 1, 1, "asleep: armed again");
    let back = irq.counters();
    assert_eq!((back.to_polling, back.to_interrupts), (1, 1), "{back:?}");
    per_ms.store(0, Ordering::Relaxed);
    run(2, irq);
    assert_eq!(u64::from(expected), sent.load(Ordering::Relaxed));
    let wire = sim.wire_counters(nic);
    assert_eq!((wire.rx_dropped, wire.rx_missed), (0, 0));
    device.disable_interrupts();
    assert_clean(&sim);
}
