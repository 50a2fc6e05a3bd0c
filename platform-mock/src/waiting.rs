//! Waiting for interrupts in-process: [`SimPlatform`] implements
//! [`ixgbe_core::InterruptPlatform`] on top of the model's message delivery.
//!
//! `enable_interrupts` does what the host's vfio-pci does for `VFIO_DEVICE_SET_IRQS`: it enables
//! MSI-X in configuration space and writes and unmasks the table entries of the vectors asked
//! for (the others stay masked), or enables MSI when the NIC was told to prefer a single
//! interrupt ([`SimPlatform::prefer_single_interrupt`]). The messages go to counters, one per
//! vector, that a wait consumes. A wait advances virtual time (in slices, so it ends within one
//! slice of the message) until its vector has a message or the timeout has passed; when another
//! thread drives the clock ([`crate::Sim::set_waits_advance_clock`]), it sleeps in wall time
//! instead, looking at its counter every [`EXTERNAL_CLOCK_POLL`] (and ends by the wall-clock timeout
//! too, should the pump stop).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ixgbe_core::{Delivery, Error, InterruptPlatform};

use crate::pci::{CAP_MSI, CAP_MSIX, MSIX_ENABLE, MSIX_VECTORS, MSI_ENABLE};
use crate::{InterruptSink, SimPlatform};

/// Messages received and not yet consumed, per MSI-X vector, and for the single interrupt.
pub(crate) struct Pending {
    msix: [AtomicU64; MSIX_VECTORS as usize],
    single: AtomicU64,
}

impl Default for Pending {
    fn default() -> Self {
        Pending {
            msix: std::array::from_fn(|_| AtomicU64::new(0)),
            single: AtomicU64::new(0),
        }
    }
}

impl Pending {
    fn counter(&self, vector: u16, single: bool) -> Option<&AtomicU64> {
        if single {
            Some(&self.single)
        } else {
            self.msix.get(usize::from(vector))
        }
    }
}

/// The interrupt state of one NIC's waiting platform.
#[derive(Default)]
pub(crate) struct Waiter {
    pending: Option<Arc<Pending>>,
    /// Set up MSI instead of MSI-X (to exercise the single-interrupt path).
    prefer_single: bool,
    single: bool,
}

struct PendingSink(Arc<Pending>);

impl InterruptSink for PendingSink {
    fn msix(&mut self, vector: u16) {
        if let Some(c) = self.0.msix.get(usize::from(vector)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn legacy(&mut self, asserted: bool) {
        // MSI is one message per rising edge; so is what a VFIO INTx eventfd reports.
        if asserted {
            self.0.single.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How often a wait looks at its counter while another thread drives the clock.
pub const EXTERNAL_CLOCK_POLL: Duration = Duration::from_micros(50);

impl crate::Sim {
    /// `true` (the default): an interrupt wait advances virtual time itself, as
    /// [`ixgbe_core::Platform::delay`] does. `false`: a program pumps the clock from another
    /// thread, and waits sleep in wall time until the pumped clock brings their message or
    /// their deadline (several waiters advancing one clock would race it ahead of the others).
    pub fn set_waits_advance_clock(&self, on: bool) {
        self.each(|w| w.waits_advance_clock = on);
    }
}

impl SimPlatform {
    /// Makes the next [`InterruptPlatform::enable_interrupts`] set up MSI (one interrupt for
    /// every cause) instead of MSI-X, as a host without MSI-X would.
    pub fn prefer_single_interrupt(&self, on: bool) {
        self.sim.lock().waiters[self.nic].prefer_single = on;
    }
}

impl InterruptPlatform for SimPlatform {
    fn wake(&self, vector: u16) {
        let w = self.sim.lock();
        let waiter = &w.waiters[self.nic];
        if let Some(c) = waiter
            .pending
            .as_ref()
            .and_then(|p| p.counter(vector, waiter.single))
        {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn enable_interrupts(&self, vectors: u16) -> Result<Delivery, Error> {
        if vectors == 0 || vectors > MSIX_VECTORS {
            return Err(Error::Interrupt {
                what: "the simulated 82599 has 64 MSI-X vectors",
                os_error: None,
            });
        }
        if self.sim.lanes() > 1 {
            return Err(Error::Interrupt {
                what: "interrupts need a simulator without lanes (Sim::new)",
                os_error: None,
            });
        }
        let pending = Arc::new(Pending::default());
        let mut w = self.sim.lock();
        let i = self.nic;
        let single = w.waiters[i].prefer_single;
        w.irq_sinks[i] = Some(Box::new(PendingSink(pending.clone())));
        w.waiters[i].pending = Some(pending);
        w.waiters[i].single = single;
        if single {
            let ctl = w.nics[i].config.msi_control() | MSI_ENABLE;
            w.config_write(i, usize::from(CAP_MSI) + 2, &ctl.to_le_bytes());
            return Ok(Delivery::Single);
        }
        for v in 0..u32::from(MSIX_VECTORS) {
            let used = v < u32::from(vectors);
            // Address, data (the vector), vector control: unmasked only for the vectors used.
            w.nics[i].bar4_write(16 * v, 0xFEE0_0000);
            w.nics[i].bar4_write(16 * v + 8, v);
            w.nics[i].bar4_write(16 * v + 12, u32::from(!used));
        }
        w.config_write(i, usize::from(CAP_MSIX) + 2, &MSIX_ENABLE.to_le_bytes());
        Ok(Delivery::MsiX { vectors })
    }

    fn wait_interrupt(&self, vector: u16, timeout: Duration) -> Result<u64, Error> {
        let (pending, single, deadline) = {
            let w = self.sim.lock();
            let waiter = &w.waiters[self.nic];
            let Some(p) = waiter.pending.clone() else {
                return Err(Error::Interrupt {
                    what: "wait before enable_interrupts",
                    os_error: None,
                });
            };
            (p, waiter.single, w.core.now + timeout)
        };
        let Some(counter) = pending.counter(vector, single) else {
            return Err(Error::Interrupt {
                what: "no such vector",
                os_error: None,
            });
        };
        let wall_start = std::time::Instant::now();
        loop {
            let n = counter.swap(0, Ordering::Relaxed);
            if n > 0 {
                return Ok(n);
            }
            let mut w = self.sim.lock();
            let now = w.core.now;
            if now >= deadline {
                return Ok(0);
            }
            if !w.waits_advance_clock {
                drop(w);
                // Bounded in wall time too: the pump may have stopped for good.
                if wall_start.elapsed() >= timeout {
                    return Ok(0);
                }
                std::thread::sleep(EXTERNAL_CLOCK_POLL);
                continue;
            }
            // Other threads advance the same clock: the deadline is virtual time, not the sum
            // of this thread's steps. Sliced, so a frame another thread injects is seen within
            // one slice.
            w.advance_until(deadline - now, true, || counter.load(Ordering::Relaxed) > 0);
        }
    }

    fn disable_interrupts(&self) {
        let mut w = self.sim.lock();
        let i = self.nic;
        if w.waiters[i].pending.take().is_some() {
            w.irq_sinks[i] = None;
            w.config_write(i, usize::from(CAP_MSIX) + 2, &0u16.to_le_bytes());
            let ctl = w.nics[i].config.msi_control() & !MSI_ENABLE;
            w.config_write(i, usize::from(CAP_MSI) + 2, &ctl.to_le_bytes());
        }
    }

    fn now(&self) -> Duration {
        self.sim.now()
    }
}
