//! Interrupts (datasheet §7.3, registers §8.2.3.5): MSI-X with one vector per receive queue,
//! the "other" vector for link status changes, throttling (EITR), auto-clear (EIAC) and
//! auto-mask (EIAM), and the hybrid policy that sleeps while traffic is low and polls while it is
//! high.
//!
//! The driver programs the device; the waiting itself belongs to the platform
//! ([`InterruptPlatform`]: VFIO eventfds on Linux, the model's messages in the simulator), so
//! platforms without interrupts implement nothing more than [`Platform`].
//!
//! Protocol per queue (race-free without reading EICR): with MSI-X a sleeping queue's vector
//! stays enabled between wake-ups. Its cause auto-clears when the message goes out (EIAC), EITR
//! spaces the messages, and the platform counts every message that arrives while the program is
//! busy, so the next wait returns at once: a frame is never slept through, and a wake-up costs
//! no register write (a trapped write costs tens of µs under a hypervisor). The vector is not
//! auto-masked (EIAM_EX 0): that would need a write to EIMS_EX before every wait. When the
//! hybrid policy switches the queue to polling it masks the vector once (EIMC_EX), and arms it
//! again ([`QueueInterrupt::arm`], EIMS_EX) on its next sleep, where a cause latched meanwhile
//! fires at once. With a single interrupt (MSI, INTx) every wake-up masks and clears the cause
//! so the shared line can fall, and every sleep arms it again.
//!
//! The hybrid policy is ixy.rs's design: a moving average of packets per millisecond over the
//! last [`SAMPLES`] intervals; above a threshold, or on a full batch, the queue polls; below one,
//! it sleeps again.

use core::time::Duration;

use crate::config::MAX_RX_QUEUES;
pub use crate::config::{HybridConfig, InterruptConfig, InterruptMode};
use crate::device::Device;
use crate::error::Error;
use crate::platform::Platform;
use crate::regs::{self, Regs};

/// How interrupts reach the program, as the platform could set them up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// MSI-X: one notification per vector, `vectors` of them from 0.
    MsiX {
        /// How many vectors the platform enabled.
        vectors: u16,
    },
    /// One interrupt for everything (MSI or INTx): waits name vector 0.
    Single,
}

/// A platform that can deliver the device's interrupts to the program and wait for them.
///
/// A separate trait, so that platforms without interrupts keep implementing only [`Platform`].
pub trait InterruptPlatform: Platform {
    /// Sets up delivery of vectors `0..vectors` (MSI-X when the device and host allow it,
    /// otherwise MSI or INTx as [`Delivery::Single`]). Calling it again replaces the set-up.
    fn enable_interrupts(&self, vectors: u16) -> Result<Delivery, Error>;

    /// Waits until `vector` has fired since the previous wait on it returned, or `timeout` has
    /// passed. Returns how many messages arrived (0: the wait timed out) and consumes them.
    fn wait_interrupt(&self, vector: u16, timeout: Duration) -> Result<u64, Error>;

    /// Stops delivery (the host side; the device side is masked by the driver).
    fn disable_interrupts(&self);

    /// A monotonic clock (virtual time on a simulator), read by the hybrid policy.
    fn now(&self) -> Duration;

    /// Makes the current or the next wait on `vector` return at once, as one message would
    /// (with a single interrupt: the waits on it). A program stopping its sleeping threads
    /// uses it instead of waiting for their timeouts. A vector that is not set up is ignored.
    fn wake(&self, vector: u16);
}

/// Rate samples in the moving average (ixy.rs: 5).
pub const SAMPLES: usize = 5;

/// The hybrid decision for one queue: pure logic over the receive calls and a clock.
#[derive(Debug, Clone)]
pub struct HybridPolicy {
    cfg: HybridConfig,
    polling: bool,
    calls: u32,
    window_start: Option<Duration>,
    window_packets: u64,
    samples: [u64; SAMPLES],
    filled: usize,
    next: usize,
    to_polling: u64,
    to_interrupts: u64,
}

impl HybridPolicy {
    /// A policy that starts asleep (in interrupt mode).
    pub fn new(cfg: HybridConfig) -> Self {
        HybridPolicy {
            cfg,
            polling: false,
            calls: 0,
            window_start: None,
            window_packets: 0,
            samples: [0; SAMPLES],
            filled: 0,
            next: 0,
            to_polling: 0,
            to_interrupts: 0,
        }
    }

    /// Records a receive call that returned `received` frames of at most `max`, reading the
    /// clock through `now` only when a sample may be due. Returns true when the caller should
    /// sleep: interrupt mode and nothing received.
    pub fn record(&mut self, received: usize, max: usize, now: impl FnOnce() -> Duration) -> bool {
        self.window_packets = self.window_packets.saturating_add(received as u64);
        if !self.polling && max > 0 && received >= max {
            // A full batch: frames are waiting, sleeping now would only add latency.
            self.switch(true);
        }
        self.calls = self.calls.saturating_add(1);
        // Asleep, calls are rare (one per wake-up): look at the clock on each.
        if !self.polling || self.calls >= self.cfg.check_every {
            self.calls = 0;
            self.sample(now());
        }
        !self.polling && received == 0
    }

    fn sample(&mut self, t: Duration) {
        let Some(start) = self.window_start else {
            self.window_start = Some(t);
            return;
        };
        let elapsed = t.saturating_sub(start);
        if elapsed < self.cfg.interval {
            return;
        }
        let nanos = elapsed.as_nanos().max(1);
        let per_ms = (u128::from(self.window_packets) * 1_000_000 / nanos) as u64;
        self.samples[self.next] = per_ms;
        self.next = (self.next + 1) % SAMPLES;
        self.filled = (self.filled + 1).min(SAMPLES);
        self.window_start = Some(t);
        self.window_packets = 0;
        let avg = self.average();
        if self.polling {
            // Only a full window of samples since the switch may send the queue back to sleep:
            // a burst that made it poll is not judged by the quiet time before it.
            if self.filled == SAMPLES && avg < u64::from(self.cfg.sleep_below) {
                self.switch(false);
            }
        } else if avg > u64::from(self.cfg.poll_above) {
            self.switch(true);
        }
    }

    fn switch(&mut self, polling: bool) {
        self.polling = polling;
        if polling {
            self.to_polling += 1;
        } else {
            self.to_interrupts += 1;
        }
        self.samples = [0; SAMPLES];
        self.filled = 0;
        self.next = 0;
    }

    /// True while the queue polls.
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// The moving average in packets per millisecond over the samples taken since the last
    /// switch (0 before the first).
    pub fn average(&self) -> u64 {
        if self.filled == 0 {
            return 0;
        }
        self.samples[..self.filled].iter().sum::<u64>() / self.filled as u64
    }

    /// Switches to polling and back to interrupt mode so far.
    pub fn switches(&self) -> (u64, u64) {
        (self.to_polling, self.to_interrupts)
    }
}

/// What one queue's interrupt handling did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InterruptCounters {
    /// Times the queue went to sleep.
    pub sleeps: u64,
    /// Sleeps that ended because the vector fired.
    pub wake_ups: u64,
    /// Messages the platform reported (several may coalesce into one wake-up).
    pub interrupts: u64,
    /// Sleeps that ended by their timeout.
    pub timeouts: u64,
    /// Switches from sleeping to polling (hybrid mode).
    pub to_polling: u64,
    /// Switches from polling back to sleeping (hybrid mode).
    pub to_interrupts: u64,
}

impl InterruptCounters {
    /// The sum of two sets of counters (e.g. over queues).
    pub fn add(&self, o: &InterruptCounters) -> InterruptCounters {
        InterruptCounters {
            sleeps: self.sleeps.saturating_add(o.sleeps),
            wake_ups: self.wake_ups.saturating_add(o.wake_ups),
            interrupts: self.interrupts.saturating_add(o.interrupts),
            timeouts: self.timeouts.saturating_add(o.timeouts),
            to_polling: self.to_polling.saturating_add(o.to_polling),
            to_interrupts: self.to_interrupts.saturating_add(o.to_interrupts),
        }
    }
}

/// One receive queue's interrupt: arm it, sleep on it, and the policy deciding when.
pub struct QueueInterrupt<P: InterruptPlatform> {
    regs: Regs<P>,
    queue: u16,
    vector: u16,
    single: bool,
    mode: InterruptMode,
    timeout: Duration,
    policy: HybridPolicy,
    counters: InterruptCounters,
    /// The vector is enabled (EIMS) as far as this handle knows.
    armed: bool,
}

impl<P: InterruptPlatform> QueueInterrupt<P> {
    /// Call after every receive call on the queue with what it returned (`received` of at most
    /// `max`). When the mode says so (nothing received, and traffic low in hybrid mode), arms
    /// the vector and sleeps until it fires or the wait timeout passes. Returns true if it
    /// slept. Frames are never lost by sleeping: they wait in the ring.
    pub fn after_rx(&mut self, received: usize, max: usize) -> Result<bool, Error> {
        let sleep = match self.mode {
            InterruptMode::Always => received == 0,
            InterruptMode::Hybrid => {
                let platform = self.regs.platform();
                self.policy.record(received, max, || platform.now())
            }
        };
        if sleep {
            self.sleep(self.timeout)?;
        } else if self.armed && self.polling() {
            // Polling: no messages wanted until the queue sleeps again.
            self.disarm();
        }
        Ok(sleep)
    }

    /// Enables the vector (EIMS_EX; never EIMS bit 31, which is reserved). A cause that is
    /// already pending fires at once.
    pub fn arm(&mut self) {
        if self.single {
            self.regs.write(regs::EIMS, 1 << (self.queue % 16));
        } else {
            let v = u32::from(self.vector);
            self.regs.write(regs::eims_ex(v / 32), 1 << (v % 32));
        }
        self.armed = true;
    }

    /// Masks the vector (EIMC_EX): causes latch in EICR without a message until it is armed.
    pub fn disarm(&mut self) {
        if self.single {
            self.regs.write(regs::EIMC, 1 << (self.queue % 16));
        } else {
            let v = u32::from(self.vector);
            self.regs.write(regs::eimc_ex(v / 32), 1 << (v % 32));
        }
        self.armed = false;
    }

    /// Sleeps until the vector fires or `timeout` passes, arming it first if it is masked.
    /// Returns true when it fired.
    pub fn sleep(&mut self, timeout: Duration) -> Result<bool, Error> {
        if !self.armed {
            self.arm();
        }
        self.counters.sleeps += 1;
        let n = self.regs.platform().wait_interrupt(self.vector, timeout)?;
        if self.single {
            // One line for every cause: mask ours and clear it so the line can fall (MSI sends
            // on a rising edge, INTx stays asserted while an enabled cause is set). A frame
            // arriving later sets the cause again and fires on the next arm.
            let bit = 1 << (self.queue % 16);
            self.regs.write(regs::EIMC, bit);
            self.regs.write(regs::EICR, bit);
            self.armed = false;
        }
        if n == 0 {
            self.counters.timeouts += 1;
            return Ok(false);
        }
        self.counters.wake_ups += 1;
        self.counters.interrupts = self.counters.interrupts.saturating_add(n);
        Ok(true)
    }

    /// What this queue's interrupt handling did so far.
    pub fn counters(&self) -> InterruptCounters {
        let (to_polling, to_interrupts) = self.policy.switches();
        InterruptCounters {
            to_polling,
            to_interrupts,
            ..self.counters
        }
    }

    /// True while the hybrid policy has the queue polling (never in [`InterruptMode::Always`]).
    pub fn polling(&self) -> bool {
        self.mode == InterruptMode::Hybrid && self.policy.polling()
    }

    /// The policy's current moving average, packets per millisecond.
    pub fn average_rate(&self) -> u64 {
        self.policy.average()
    }

    /// The receive queue this belongs to.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// The vector it waits on.
    pub fn vector(&self) -> u16 {
        self.vector
    }
}

/// The "other" vector: link status changes (EICR.LSC), MSI-X only.
pub struct LinkInterrupt<P: InterruptPlatform> {
    regs: Regs<P>,
    vector: u16,
}

impl<P: InterruptPlatform> LinkInterrupt<P> {
    /// Waits up to `timeout` for a link status change. True when one happened (its cause is
    /// cleared, so the next change fires again); false on timeout or another cause.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, Error> {
        let n = self.regs.platform().wait_interrupt(self.vector, timeout)?;
        // EICS reads return the causes without clearing them; reading EICR would also clear
        // the queue causes other threads wait for.
        let causes = self.regs.read(regs::EICS);
        if causes & regs::EICR_LSC != 0 {
            self.regs.write(regs::EICR, regs::EICR_LSC);
        }
        Ok(n > 0 && causes & regs::EICR_LSC != 0)
    }

    /// The vector it waits on.
    pub fn vector(&self) -> u16 {
        self.vector
    }
}

/// What [`Device::enable_interrupts`] returns.
pub struct Interrupts<P: InterruptPlatform> {
    /// How the platform delivers them.
    pub delivery: Delivery,
    /// One per receive queue, in queue order (move each to the thread serving its queue).
    pub queues: heapless::Vec<QueueInterrupt<P>, MAX_RX_QUEUES>,
    /// Link changes, with MSI-X (with a single interrupt the link cause stays masked: an
    /// uncleared cause would hold the shared line).
    pub link: Option<LinkInterrupt<P>>,
}

impl<P: InterruptPlatform> Device<P> {
    /// Sets up interrupts as [`crate::Config::interrupts`] asked: the platform side first
    /// (vectors 0..=rx_queues), then the device (§7.3): MSI-X mode with one vector per receive
    /// queue and the next one for link changes, or a single interrupt when the platform has
    /// only MSI or INTx. Queue vectors stay masked until armed.
    pub fn enable_interrupts(&self) -> Result<Interrupts<P>, Error> {
        let Some(cfg) = self.interrupt_config() else {
            return Err(Error::InvalidConfig {
                what: "interrupts were not asked for in Config::interrupts",
            });
        };
        let (rx_queues, tx_queues) = self.queue_counts();
        let regs = self.regs();
        let delivery = regs.platform().enable_interrupts(rx_queues + 1)?;
        let single = match delivery {
            Delivery::MsiX { vectors } if vectors > rx_queues => false,
            Delivery::MsiX { .. } => {
                regs.platform().disable_interrupts();
                return Err(Error::Interrupt {
                    what: "the platform enabled fewer MSI-X vectors than asked for",
                    os_error: None,
                });
            }
            Delivery::Single => true,
        };
        mask_all(regs);
        program(regs, &cfg, rx_queues, tx_queues, single);
        let mut queues = heapless::Vec::new();
        for q in 0..rx_queues {
            let _ = queues.push(QueueInterrupt {
                regs: regs.clone(),
                queue: q,
                vector: if single { 0 } else { q },
                single,
                mode: cfg.mode,
                timeout: cfg.wait_timeout,
                policy: HybridPolicy::new(cfg.hybrid),
                counters: InterruptCounters::default(),
                armed: false,
            });
        }
        let link = (!single).then(|| LinkInterrupt {
            regs: regs.clone(),
            vector: rx_queues,
        });
        Ok(Interrupts {
            delivery,
            queues,
            link,
        })
    }

    /// Wakes every thread sleeping on a receive queue's vector ([`InterruptPlatform::wake`]):
    /// each returns from its wait as if its interrupt had fired (and counts it as one).
    pub fn wake_sleepers(&self) {
        let (rx_queues, _) = self.queue_counts();
        for v in 0..rx_queues {
            self.regs().platform().wake(v);
        }
    }

    /// Masks every cause and stops delivery on the platform; queues can still be polled.
    pub fn disable_interrupts(&self) {
        mask_all(self.regs());
        self.regs().platform().disable_interrupts();
    }
}

/// EIMC = 0x7FFFFFFF (bit 31 is reserved: ixy.rs #29) and both extended banks.
pub(crate) fn mask_all<P: Platform>(regs: &Regs<P>) {
    regs.write(regs::EIMC, regs::EIMC_ALL);
    regs.write(regs::eimc_ex(0), u32::MAX);
    regs.write(regs::eimc_ex(1), u32::MAX);
}

/// An IVAR entry: vector in bits 5:0, valid bit 7 (§8.2.3.5.16).
fn ivar_entry(vector: u16) -> u32 {
    0x80 | (u32::from(vector) & 0x3F)
}

/// Programs GPIE, IVAR, IVAR_MISC, EITR, EIAC and EIAM (§7.3.1–§7.3.4), with every cause
/// masked, and enables the link cause on the other vector.
fn program<P: Platform>(
    regs: &Regs<P>,
    cfg: &InterruptConfig,
    rx_queues: u16,
    tx_queues: u16,
    single: bool,
) {
    let queue_vectors: u64 = if single { 1 } else { (1u64 << rx_queues) - 1 };
    if single {
        regs.modify(
            regs::GPIE,
            regs::GPIE::MULTIPLE_MSIX::CLEAR + regs::GPIE::EIAME::CLEAR,
        );
    } else {
        // No auto-mask (EIAME clear, EIAM_EX 0): see the protocol in the module docs.
        regs.modify(
            regs::GPIE,
            regs::GPIE::MULTIPLE_MSIX::SET
                + regs::GPIE::EIAME::CLEAR
                + regs::GPIE::PBA_SUPPORT::SET,
        );
    }
    // IVAR: Rx queue q on vector q (single: on EICR bit q mod 16); Tx queue q, when asked,
    // with Rx queue q mod rx_queues. Entries of unused queues are invalid.
    let max_q = rx_queues.max(tx_queues);
    for n in 0..u32::from(max_q).div_ceil(2) {
        let mut v = 0;
        for k in 0..2u32 {
            let q = (2 * n + k) as u16;
            let rx_vec = if single { q % 16 } else { q };
            if q < rx_queues {
                v |= ivar_entry(rx_vec) << (16 * k);
            }
            if cfg.tx_completions && q < tx_queues {
                let owner = q % rx_queues;
                let tx_vec = if single { owner % 16 } else { owner };
                v |= ivar_entry(tx_vec) << (16 * k + 8);
            }
        }
        regs.write(regs::ivar(n), v);
    }
    let itr = regs::EITR::ITR_INTERVAL.val(cfg.itr_interval());
    if single {
        regs.write_fields(regs::eitr(0), itr);
        regs.write(regs::EIAC, 0);
        regs.write(regs::EIAM, 0);
        regs.write(regs::eiam_ex(0), 0);
        regs.write(regs::eiam_ex(1), 0);
        regs.write(regs::IVAR_MISC, 0);
    } else {
        for v in 0..u32::from(rx_queues) + 1 {
            regs.write_fields(regs::eitr(v), itr);
        }
        // The other causes on the vector after the queues'.
        regs.write(regs::IVAR_MISC, ivar_entry(rx_queues) << 8);
        // Auto-clear the queue causes when their message goes out (bits 15:0; never 29:20);
        // the link cause is cleared by software. Nothing auto-masks.
        regs.write(regs::EIAC, (queue_vectors & 0xFFFF) as u32);
        regs.write(regs::EIAM, 0);
        regs.write(regs::eiam_ex(0), 0);
        regs.write(regs::eiam_ex(1), 0);
    }
    // Stale causes from before (the first link-up's LSC among them) would fire at once.
    regs.write(regs::EICR, regs::EIMC_ALL);
    if !single {
        regs.write(regs::EIMS, regs::EICR_LSC);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::fake::FakePlatform;

    impl InterruptPlatform for FakePlatform {
        fn enable_interrupts(&self, vectors: u16) -> Result<Delivery, Error> {
            Ok(Delivery::MsiX { vectors })
        }
        fn wait_interrupt(&self, _vector: u16, _timeout: Duration) -> Result<u64, Error> {
            Ok(1)
        }
        fn disable_interrupts(&self) {}
        fn now(&self) -> Duration {
            Duration::ZERO
        }
        fn wake(&self, _vector: u16) {}
    }

    fn written(
        p: &FakePlatform,
        reg: crate::regs::Reg<impl tock_registers::RegisterLongName>,
    ) -> Option<u32> {
        p.writes()
            .iter()
            .rev()
            .find(|(off, _)| *off == reg.offset())
            .map(|&(_, v)| v)
    }

    /// The register values of §8.2.3.5 for 4 Rx and 4 Tx queues.
    #[test]
    fn msix_set_up_writes_what_the_datasheet_asks() {
        for tx_completions in [false, true] {
            let p = FakePlatform::default();
            let config = crate::Config {
                rx_queues: 4,
                tx_queues: 4,
                interrupts: Some(InterruptConfig {
                    tx_completions,
                    ..InterruptConfig::default()
                }),
                ..crate::Config::default()
            };
            let device = Device::new(Regs::new(p.clone()), &config);
            let irqs = device.enable_interrupts().unwrap();
            assert_eq!(irqs.delivery, Delivery::MsiX { vectors: 5 });
            let gpie = written(&p, regs::GPIE).unwrap();
            assert_eq!(gpie & (1 << 4 | 1 << 30 | 1 << 31), 1 << 4 | 1 << 31);
            // Rx 2n and 2n+1 on vectors 2n, 2n+1 (valid bit 7); Tx with them when asked.
            let tx = |entries: u32| if tx_completions { entries } else { 0 };
            assert_eq!(
                written(&p, regs::ivar(0)),
                Some(0x0081_0080 | tx(0x8100_8000))
            );
            assert_eq!(
                written(&p, regs::ivar(1)),
                Some(0x0083_0082 | tx(0x8300_8200))
            );
            assert_eq!(
                written(&p, regs::IVAR_MISC),
                Some(0x8400),
                "other causes on vector 4"
            );
            for v in 0..5 {
                assert_eq!(
                    written(&p, regs::eitr(v)),
                    Some(25 << 3),
                    "50 µs on vector {v}"
                );
            }
            assert_eq!(written(&p, regs::EIAC), Some(0xF));
            assert_eq!(written(&p, regs::eiam_ex(0)), Some(0), "no auto-mask");
            assert_eq!(written(&p, regs::EIMS), Some(regs::EICR_LSC));
            let mut irqs = irqs;
            irqs.queues[2].arm();
            assert_eq!(written(&p, regs::eims_ex(0)), Some(1 << 2));
            irqs.queues[2].disarm();
            assert_eq!(written(&p, regs::eimc_ex(0)), Some(1 << 2));
            for (off, v) in p.writes() {
                if off == regs::EIMS.offset() || off == regs::EIMC.offset() {
                    assert_eq!(v & (1 << 31), 0, "reserved bit 31 of EIMS/EIMC");
                }
            }
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds `per_ms` packets per ms for `for_ms` ms as calls of `batch`, clock in µs.
    fn feed(p: &mut HybridPolicy, t: &mut Duration, per_ms: usize, for_ms: u64, max: usize) {
        for _ in 0..for_ms {
            let mut left = per_ms;
            // Ten calls per millisecond, the last ones empty when the rate is low.
            for _ in 0..10 {
                let n = left.min(per_ms.div_ceil(10)).min(max);
                left -= n;
                *t += Duration::from_micros(100);
                let now = *t;
                p.record(n, max, || now);
            }
        }
    }

    fn cfg() -> HybridConfig {
        HybridConfig {
            check_every: 1,
            ..HybridConfig::default()
        }
    }

    #[test]
    fn starts_asleep_and_sleeps_on_an_empty_call() {
        let mut p = HybridPolicy::new(cfg());
        assert!(!p.polling());
        assert!(p.record(0, 32, || ms(0)));
        assert!(!p.record(3, 32, || ms(0)));
    }

    #[test]
    fn a_full_batch_switches_to_polling_at_once() {
        let mut p = HybridPolicy::new(cfg());
        assert!(!p.record(32, 32, || ms(0)));
        assert!(p.polling());
        assert!(!p.record(0, 32, || ms(0)), "polling never sleeps");
        assert_eq!(p.switches(), (1, 0));
    }

    #[test]
    fn the_rate_switches_both_ways_at_the_thresholds() {
        let mut p = HybridPolicy::new(HybridConfig {
            poll_above: 1000,
            sleep_below: 500,
            ..cfg()
        });
        let mut t = Duration::ZERO;
        // 900/ms in batches that are never full (max 1000): stays asleep.
        feed(&mut p, &mut t, 900, 20, 1000);
        assert!(!p.polling());
        // 1100/ms: above poll_above.
        feed(&mut p, &mut t, 1100, 5, 1000);
        assert!(p.polling(), "average {}", p.average());
        // 700/ms: between the thresholds (hysteresis) keeps polling.
        feed(&mut p, &mut t, 700, 20, 1000);
        assert!(p.polling());
        // 400/ms: below sleep_below, after a full window.
        feed(&mut p, &mut t, 400, 2, 1000);
        assert!(p.polling(), "the average still holds the 700s");
        feed(&mut p, &mut t, 400, 10, 1000);
        assert!(!p.polling());
        assert_eq!(p.switches(), (1, 1));
    }

    #[test]
    fn polling_reads_the_clock_only_every_check_every_calls() {
        let mut p = HybridPolicy::new(HybridConfig {
            check_every: 4,
            ..HybridConfig::default()
        });
        p.record(32, 32, || ms(0));
        let mut reads = 0;
        for _ in 0..16 {
            p.record(1, 32, || {
                reads += 1;
                ms(0)
            });
        }
        assert_eq!(reads, 4);
    }

    #[test]
    fn config_limits() {
        let ok = InterruptConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.itr_interval(), 25);
        let too_long = InterruptConfig {
            throttle: Duration::from_micros(1024),
            ..ok
        };
        assert!(too_long.validate().is_err());
        let inverted = InterruptConfig {
            hybrid: HybridConfig {
                poll_above: 10,
                sleep_below: 20,
                ..HybridConfig::default()
            },
            ..ok
        };
        assert!(inverted.validate().is_err());
    }
}
