//! Ties the model's virtual clock to wall time.
//!
//! The model only moves in `Sim::advance`. A guest driver polls registers while sleeping in wall
//! time (e.g. `msleep` while waiting for a reset to self-clear), so virtual time follows the wall
//! clock: on every MMIO access, before it is served, and every ~200 µs from a thread of its own
//! (frames from the wire and the peer generator are processed then, and interrupts fire).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use log::warn;
use platform_mock::Sim;

/// Longest virtual step per sync: when the model cannot keep up (a flood from the peer), virtual
/// time lags behind instead of the steps growing without bound. Long enough that a clock thread
/// starved by the CPU-hungry TCG guest (2 cores) loses nothing in practice.
const MAX_STEP: Duration = Duration::from_millis(50);

/// Lag worth a warning (once).
const LAG_WARNING: Duration = Duration::from_millis(100);

/// Wall-clock pacing of one model.
pub struct Clock {
    sim: Sim,
    start: Instant,
    /// Wall time (since `start`) the model has been advanced to, plus the accumulated lag.
    state: Mutex<State>,
    /// Virtual time lost because the model could not keep up (ns).
    lag_ns: AtomicU64,
    lag_warned: AtomicBool,
}

struct State {
    synced: Duration,
}

impl Clock {
    /// A clock whose wall-time origin is now.
    pub fn new(sim: Sim) -> Arc<Clock> {
        Arc::new(Clock {
            sim,
            start: Instant::now(),
            state: Mutex::new(State {
                synced: Duration::ZERO,
            }),
            lag_ns: AtomicU64::new(0),
            lag_warned: AtomicBool::new(false),
        })
    }

    /// Advances the model to the current wall time (at most [`MAX_STEP`] at once).
    pub fn sync(&self) {
        // One syncing thread at a time, so two threads never advance by the same interval.
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let wall = self.start.elapsed();
        let Some(due) = wall.checked_sub(st.synced) else {
            return;
        };
        if due.is_zero() {
            return;
        }
        let step = due.min(MAX_STEP);
        self.sim.advance(step);
        st.synced = wall;
        if step < due {
            let lost = (due - step).as_nanos() as u64;
            let total = self.lag_ns.fetch_add(lost, Ordering::Relaxed) + lost;
            if Duration::from_nanos(total) >= LAG_WARNING
                && !self.lag_warned.swap(true, Ordering::Relaxed)
            {
                warn!(
                    "virtual time lags wall time by {} ms: the model cannot keep up",
                    total / 1_000_000
                );
            }
        }
    }

    /// Virtual time the model lost against wall time because it could not keep up.
    pub fn lag(&self) -> Duration {
        Duration::from_nanos(self.lag_ns.load(Ordering::Relaxed))
    }

    /// Runs [`Clock::sync`] every `period` until `stop` is set.
    pub fn spawn(
        self: &Arc<Self>,
        period: Duration,
        stop: Arc<AtomicBool>,
    ) -> thread::JoinHandle<()> {
        let clock = self.clone();
        thread::Builder::new()
            .name("clock".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    clock.sync();
                    thread::sleep(period);
                }
            })
            .expect("spawn the clock thread")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform_mock::NicConfig;

    #[test]
    #[cfg_attr(miri, ignore = "wall-clock sleeps are slow under Miri")]
    fn virtual_time_follows_wall_time() {
        let sim = Sim::new();
        sim.add_nic(NicConfig::default());
        let clock = Clock::new(sim.clone());
        thread::sleep(Duration::from_millis(3));
        clock.sync();
        let t = sim.now();
        assert!(
            t >= Duration::from_millis(3),
            "advanced to wall time: {t:?}"
        );
        assert!(
            t <= clock.start.elapsed(),
            "never ahead of wall time: {t:?}"
        );
        clock.sync();
        assert!(sim.now() >= t);
    }
}
