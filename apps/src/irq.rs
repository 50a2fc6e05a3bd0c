//! `--interrupts`: the mode option, the counters the worker threads publish for the per-second
//! lines, and the process's CPU time (getrusage) to show what sleeping saves.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use clap::ValueEnum;
use ixgbe_core::{InterruptConfig, InterruptCounters, InterruptMode};

/// How receive queues wait for frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum InterruptArg {
    /// Poll without pause (a core per queue at 100 %).
    #[default]
    Off,
    /// Sleep on the queue's MSI-X vector whenever the ring is empty.
    Always,
    /// Sleep while the rate is low, poll while it is high (ixy.rs's hybrid policy).
    Hybrid,
}

impl InterruptArg {
    /// The driver configuration for this mode (`None`: polling).
    pub fn config(self) -> Option<InterruptConfig> {
        let mode = match self {
            InterruptArg::Off => return None,
            InterruptArg::Always => InterruptMode::Always,
            InterruptArg::Hybrid => InterruptMode::Hybrid,
        };
        Some(InterruptConfig {
            mode,
            // A sleeping worker looks at the stop flag at least this often; stopping wakes it
            // at once (Device::wake_sleepers), so this only bounds a lost wake-up. Each
            // timeout costs a wake-up: with eight threads asleep, 10 ms would be 800 a second.
            wait_timeout: Duration::from_secs(1),
            ..InterruptConfig::default()
        })
    }
}

/// One worker's counters, published with relaxed stores (read once a second).
#[derive(Default)]
struct Slot {
    sleeps: AtomicU64,
    wake_ups: AtomicU64,
    interrupts: AtomicU64,
    timeouts: AtomicU64,
    to_polling: AtomicU64,
    to_interrupts: AtomicU64,
    polling: AtomicBool,
}

/// The interrupt counters of every queue, for the printer.
#[derive(Default)]
pub struct IrqTotals {
    slots: Vec<Slot>,
}

impl IrqTotals {
    /// Room for `queues` queues.
    pub fn new(queues: usize) -> Self {
        IrqTotals {
            slots: (0..queues).map(|_| Slot::default()).collect(),
        }
    }

    /// Queue `i`'s counters as they are now.
    pub fn publish(&self, i: usize, c: &InterruptCounters, polling: bool) {
        let Some(s) = self.slots.get(i) else { return };
        s.sleeps.store(c.sleeps, Ordering::Relaxed);
        s.wake_ups.store(c.wake_ups, Ordering::Relaxed);
        s.interrupts.store(c.interrupts, Ordering::Relaxed);
        s.timeouts.store(c.timeouts, Ordering::Relaxed);
        s.to_polling.store(c.to_polling, Ordering::Relaxed);
        s.to_interrupts.store(c.to_interrupts, Ordering::Relaxed);
        s.polling.store(polling, Ordering::Relaxed);
    }

    /// The sum over queues, and how many queues poll right now.
    pub fn sum(&self) -> (InterruptCounters, usize) {
        let mut total = InterruptCounters::default();
        let mut polling = 0;
        for s in &self.slots {
            // The counters type is #[non_exhaustive]: fill a default value field by field.
            let mut c = InterruptCounters::default();
            c.sleeps = s.sleeps.load(Ordering::Relaxed);
            c.wake_ups = s.wake_ups.load(Ordering::Relaxed);
            c.interrupts = s.interrupts.load(Ordering::Relaxed);
            c.timeouts = s.timeouts.load(Ordering::Relaxed);
            c.to_polling = s.to_polling.load(Ordering::Relaxed);
            c.to_interrupts = s.to_interrupts.load(Ordering::Relaxed);
            total = total.add(&c);
            polling += usize::from(s.polling.load(Ordering::Relaxed));
        }
        (total, polling)
    }

    /// Number of queues.
    pub fn queues(&self) -> usize {
        self.slots.len()
    }
}

/// User plus system CPU time of the whole process (every thread) so far.
pub fn cpu_time() -> Duration {
    // SAFETY: rusage is plain old data; all zero is a valid value for it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes one rusage into the valid, exclusively borrowed `ru`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The per-second interrupt line: rates over `secs` from `old` to `new`.
pub fn irq_line(
    old: &InterruptCounters,
    new: &InterruptCounters,
    polling: usize,
    queues: usize,
    secs: f64,
) -> String {
    let rate = |a: u64, b: u64| (b.saturating_sub(a)) as f64 / secs.max(1e-9);
    format!(
        "[irq] {:.0} interrupts/s, {:.0} wake-ups/s, {:.0} timeouts/s, {polling}/{queues} queues \
         polling, switches to polling {} / to interrupts {}",
        rate(old.interrupts, new.interrupts),
        rate(old.wake_ups, new.wake_ups),
        rate(old.timeouts, new.timeouts),
        new.to_polling,
        new.to_interrupts,
    )
}

/// The CPU line: the process's CPU time over `wall` as a share of it.
pub fn cpu_line(cpu: Duration, wall: Duration) -> String {
    format!(
        "[cpu] {:.3} s CPU in {:.3} s: {:.1} % of wall time",
        cpu.as_secs_f64(),
        wall.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_is_polling_and_the_others_ask_for_interrupts() {
        assert_eq!(InterruptArg::Off.config(), None);
        assert_eq!(
            InterruptArg::Hybrid.config().map(|c| c.mode),
            Some(InterruptMode::Hybrid)
        );
        assert_eq!(
            InterruptArg::Always.config().map(|c| c.mode),
            Some(InterruptMode::Always)
        );
    }

    #[test]
    fn totals_sum_the_queues() {
        let t = IrqTotals::new(2);
        let c = {
            let mut v = InterruptCounters::default(); // #[non_exhaustive]
            v.interrupts = 5;
            v.wake_ups = 4;
            v.to_polling = 1;
            v
        };
        t.publish(0, &c, true);
        t.publish(1, &c, false);
        t.publish(7, &c, false);
        let (sum, polling) = t.sum();
        assert_eq!((sum.interrupts, sum.wake_ups, sum.to_polling), (10, 8, 2));
        assert_eq!(polling, 1);
        let line = irq_line(&InterruptCounters::default(), &sum, polling, 2, 2.0);
        assert!(line.contains("5 interrupts/s, 4 wake-ups/s"), "{line}");
    }

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_time();
        let mut x = 0u64;
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
        }
        assert!(cpu_time() > before);
        assert!(cpu_line(Duration::from_millis(50), Duration::from_secs(1)).contains("5.0 %"));
    }
}
