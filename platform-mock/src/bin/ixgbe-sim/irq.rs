//! Interrupt delivery: the eventfds QEMU hands over in SET_IRQS, and the model's
//! [`InterruptSink`] that signals them.
//!
//! Semantics follow the VFIO uAPI (`linux/vfio.h`, `VFIO_DEVICE_SET_IRQS`) as vfio-pci
//! implements it for a PCI function:
//! - INTx is level triggered and automasked: when the line rises (and is unmasked) the
//!   eventfd is signalled and INTx masks itself; an UNMASK while the line is still asserted
//!   signals again (that is how QEMU re-checks the level after the guest's EOI).
//! - MSI and MSI-X vectors are edge events: each message is one eventfd signal.
//! - `DATA_NONE` + `ACTION_TRIGGER` with `count == 0` tears the whole index down; with
//!   `count > 0` it fires the vectors (a loopback test of the eventfds).
//! - `DATA_EVENTFD` + `ACTION_TRIGGER` assigns one fd per vector from `start`; QEMU's
//!   vfio-user client sends such a message with no fds for vectors it de-assigns (fd -1).
//! - MASK/UNMASK are only defined for INTx (the only index advertised `MASKABLE`).
//!
//! `DATA_BOOL` never reaches the back end: the `vfio_user` crate rejects it.

use std::fs::File;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use log::{debug, warn};
use platform_mock::pci::MSIX_VECTORS;
use platform_mock::InterruptSink;
use vfio_bindings::bindings::vfio::{
    VFIO_IRQ_SET_ACTION_MASK, VFIO_IRQ_SET_ACTION_TRIGGER, VFIO_IRQ_SET_ACTION_TYPE_MASK,
    VFIO_IRQ_SET_ACTION_UNMASK, VFIO_IRQ_SET_DATA_BOOL, VFIO_IRQ_SET_DATA_EVENTFD,
    VFIO_IRQ_SET_DATA_NONE, VFIO_IRQ_SET_DATA_TYPE_MASK, VFIO_PCI_INTX_IRQ_INDEX,
    VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX,
};

/// Something an eventfd-like sink can be signalled through (a `File` holding an eventfd in
/// production; a recording fake in the unit tests).
pub trait Signal: Send {
    /// Adds 1 to the eventfd counter.
    fn signal(&mut self) -> io::Result<()>;
}

impl Signal for File {
    fn signal(&mut self) -> io::Result<()> {
        // An eventfd takes exactly 8 bytes: the value to add to its counter.
        self.write_all(&1u64.to_ne_bytes())
    }
}

/// Number of vectors per VFIO IRQ index, as advertised in GET_IRQ_INFO.
pub fn vectors(index: u32) -> u32 {
    match index {
        VFIO_PCI_INTX_IRQ_INDEX | VFIO_PCI_MSI_IRQ_INDEX => 1,
        VFIO_PCI_MSIX_IRQ_INDEX => u32::from(MSIX_VECTORS),
        _ => 0,
    }
}

/// Counters of what was delivered (for the summary).
#[derive(Debug, Default)]
pub struct IrqCounters {
    /// INTx eventfd signals.
    pub intx: AtomicU64,
    /// MSI eventfd signals.
    pub msi: AtomicU64,
    /// MSI-X eventfd signals (all vectors).
    pub msix: AtomicU64,
    /// Interrupts the model raised while no eventfd was set for them.
    pub undelivered: AtomicU64,
}

/// The eventfds of one function and the INTx line state.
pub struct IrqState<S: Signal = File> {
    intx: Option<S>,
    intx_masked: bool,
    intx_asserted: bool,
    msi: Option<S>,
    msix: Vec<Option<S>>,
    counters: Arc<IrqCounters>,
}

impl<S: Signal> Default for IrqState<S> {
    fn default() -> Self {
        IrqState {
            intx: None,
            intx_masked: false,
            intx_asserted: false,
            msi: None,
            msix: (0..MSIX_VECTORS).map(|_| None).collect(),
            counters: Arc::default(),
        }
    }
}

fn einval(what: String) -> io::Error {
    warn!("SET_IRQS rejected: {what}");
    io::Error::from_raw_os_error(libc::EINVAL)
}

fn fire<S: Signal>(s: &mut S, counter: &AtomicU64) {
    match s.signal() {
        Ok(()) => {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => warn!("eventfd signal failed: {e}"),
    }
}

impl<S: Signal> IrqState<S> {
    /// The delivery counters.
    pub fn counters(&self) -> Arc<IrqCounters> {
        self.counters.clone()
    }

    /// Whether the MSI-X eventfd of `vector` is set.
    #[cfg(test)]
    pub fn msix_enabled(&self, vector: u16) -> bool {
        matches!(self.msix.get(usize::from(vector)), Some(Some(_)))
    }

    /// Drops every eventfd (the client went away); the line level is kept.
    pub fn disable_all(&mut self) {
        self.intx = None;
        self.intx_masked = false;
        self.msi = None;
        self.msix.iter_mut().for_each(|s| *s = None);
    }

    fn slot(&mut self, index: u32, v: u32) -> &mut Option<S> {
        match index {
            VFIO_PCI_INTX_IRQ_INDEX => &mut self.intx,
            VFIO_PCI_MSI_IRQ_INDEX => &mut self.msi,
            _ => &mut self.msix[v as usize],
        }
    }

    /// Applies one SET_IRQS message. `fds` are the eventfds that came with it.
    pub fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<S>,
    ) -> io::Result<()> {
        let data = flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
        let action = flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
        let n = vectors(index);
        if n == 0 {
            return Err(einval(format!("index {index} has no interrupts")));
        }
        if !data.is_power_of_two() || !action.is_power_of_two() {
            return Err(einval(format!(
                "flags {flags:#x}: one data and one action type"
            )));
        }
        let end = u64::from(start) + u64::from(count);
        if end > u64::from(n) {
            return Err(einval(format!(
                "index {index}: vectors {start}..{end} beyond {n}"
            )));
        }
        debug!("SET_IRQS index {index} flags {flags:#x} start {start} count {count}");
        match action {
            VFIO_IRQ_SET_ACTION_TRIGGER => self.trigger(index, data, start, count, fds),
            VFIO_IRQ_SET_ACTION_MASK | VFIO_IRQ_SET_ACTION_UNMASK => {
                if index != VFIO_PCI_INTX_IRQ_INDEX {
                    return Err(einval(format!("index {index} is not maskable")));
                }
                if data != VFIO_IRQ_SET_DATA_NONE {
                    // An unmask eventfd (KVM irqfd resampling) is not used without KVM.
                    return Err(einval(format!("INTx mask/unmask with data type {data:#x}")));
                }
                if count == 0 {
                    return Ok(());
                }
                if action == VFIO_IRQ_SET_ACTION_MASK {
                    self.intx_masked = true;
                } else {
                    self.intx_masked = false;
                    // Level triggered: still asserted after the EOI means a new interrupt.
                    if self.intx_asserted {
                        self.raise_intx();
                    }
                }
                Ok(())
            }
            _ => Err(einval(format!("unknown action {action:#x}"))),
        }
    }

    fn trigger(
        &mut self,
        index: u32,
        data: u32,
        start: u32,
        count: u32,
        fds: Vec<S>,
    ) -> io::Result<()> {
        match data {
            VFIO_IRQ_SET_DATA_NONE if count == 0 => {
                for v in 0..vectors(index) {
                    *self.slot(index, v) = None;
                }
                if index == VFIO_PCI_INTX_IRQ_INDEX {
                    self.intx_masked = false;
                }
                Ok(())
            }
            VFIO_IRQ_SET_DATA_NONE => {
                let counters = self.counters.clone();
                for v in start..start + count {
                    if let Some(s) = self.slot(index, v).as_mut() {
                        fire_counted(s, &counters, index);
                    }
                }
                Ok(())
            }
            VFIO_IRQ_SET_DATA_EVENTFD if fds.is_empty() => {
                for v in start..start + count {
                    *self.slot(index, v) = None;
                }
                Ok(())
            }
            VFIO_IRQ_SET_DATA_EVENTFD if fds.len() == count as usize => {
                for (v, fd) in (start..).zip(fds) {
                    *self.slot(index, v) = Some(fd);
                }
                if index == VFIO_PCI_INTX_IRQ_INDEX {
                    self.intx_masked = false;
                    if self.intx_asserted {
                        self.raise_intx();
                    }
                }
                Ok(())
            }
            VFIO_IRQ_SET_DATA_EVENTFD => Err(einval(format!(
                "{} eventfds for {count} vectors",
                fds.len()
            ))),
            VFIO_IRQ_SET_DATA_BOOL => Err(einval("DATA_BOOL is not supported".into())),
            _ => Err(einval(format!("unknown data type {data:#x}"))),
        }
    }

    fn raise_intx(&mut self) {
        if self.intx_masked {
            return;
        }
        if let Some(s) = self.intx.as_mut() {
            fire(s, &self.counters.intx);
            // Automasked, as vfio-pci does: QEMU unmasks after the guest's EOI.
            self.intx_masked = true;
        } else {
            self.counters.undelivered.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An MSI-X message for `vector`.
    pub fn msix(&mut self, vector: u16) {
        match self.msix.get_mut(usize::from(vector)) {
            Some(Some(s)) => fire(s, &self.counters.msix),
            _ => {
                self.counters.undelivered.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The legacy interrupt (MSI when enabled, else INTx) changes level.
    pub fn legacy(&mut self, asserted: bool) {
        let rising = asserted && !self.intx_asserted;
        self.intx_asserted = asserted;
        if !asserted {
            return;
        }
        if let Some(s) = self.msi.as_mut() {
            // MSI is an edge: one message per rising edge of the internal line.
            if rising {
                fire(s, &self.counters.msi);
            }
        } else {
            self.raise_intx();
        }
    }
}

fn fire_counted<S: Signal>(s: &mut S, c: &IrqCounters, index: u32) {
    let counter = match index {
        VFIO_PCI_INTX_IRQ_INDEX => &c.intx,
        VFIO_PCI_MSI_IRQ_INDEX => &c.msi,
        _ => &c.msix,
    };
    fire(s, counter);
}

/// The shared interrupt state of one function (server thread and model both reach it).
pub struct Irqs<S: Signal = File>(Arc<Mutex<IrqState<S>>>);

impl<S: Signal> Clone for Irqs<S> {
    fn clone(&self) -> Self {
        Irqs(self.0.clone())
    }
}

impl<S: Signal> Default for Irqs<S> {
    fn default() -> Self {
        Irqs(Arc::new(Mutex::new(IrqState::default())))
    }
}

impl<S: Signal> Irqs<S> {
    /// Locks the state (a poisoned lock is still usable: the state stays consistent).
    pub fn lock(&self) -> MutexGuard<'_, IrqState<S>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sink to attach to the model with `Sim::attach_interrupts`.
    pub fn sink(&self) -> Box<dyn InterruptSink>
    where
        S: 'static,
    {
        Box::new(ModelSink(self.clone()))
    }
}

/// Routes the model's interrupt messages to the eventfds.
struct ModelSink<S: Signal>(Irqs<S>);

impl<S: Signal> InterruptSink for ModelSink<S> {
    fn msix(&mut self, vector: u16) {
        self.0.lock().msix(vector);
    }

    fn legacy(&mut self, asserted: bool) {
        self.0.lock().legacy(asserted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// A fake eventfd that counts its signals.
    #[derive(Clone, Default)]
    struct Fake(Arc<AtomicU32>);

    impl Signal for Fake {
        fn signal(&mut self) -> io::Result<()> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
    }

    impl Fake {
        fn n(&self) -> u32 {
            self.0.load(Ordering::Relaxed)
        }
    }

    const EVENTFD: u32 = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
    const NONE_TRIGGER: u32 = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER;
    const UNMASK: u32 = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK;
    const MASK: u32 = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_MASK;

    #[test]
    fn msix_vector_routes_to_its_eventfd_only() {
        let irqs = Irqs::<Fake>::default();
        let (a, b) = (Fake::default(), Fake::default());
        let mut st = irqs.lock();
        st.set_irqs(
            VFIO_PCI_MSIX_IRQ_INDEX,
            EVENTFD,
            3,
            2,
            vec![a.clone(), b.clone()],
        )
        .unwrap();
        drop(st);
        let mut sink = ModelSink(irqs.clone());
        sink.msix(4);
        sink.msix(4);
        sink.msix(5); // no eventfd: counted as undelivered
        assert_eq!((a.n(), b.n()), (0, 2));
        let c = irqs.lock().counters();
        assert_eq!(c.msix.load(Ordering::Relaxed), 2);
        assert_eq!(c.undelivered.load(Ordering::Relaxed), 1);
        // De-assign vector 4 (QEMU sends DATA_EVENTFD with no fds for fd -1).
        irqs.lock()
            .set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, EVENTFD, 4, 1, vec![])
            .unwrap();
        sink.msix(4);
        assert_eq!(b.n(), 2);
        assert!(irqs.lock().msix_enabled(3));
        // Disable the whole index.
        irqs.lock()
            .set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, NONE_TRIGGER, 0, 0, vec![])
            .unwrap();
        assert!(!irqs.lock().msix_enabled(3));
    }

    #[test]
    fn intx_is_level_triggered_and_automasked() {
        let irqs = Irqs::<Fake>::default();
        let e = Fake::default();
        irqs.lock()
            .set_irqs(VFIO_PCI_INTX_IRQ_INDEX, EVENTFD, 0, 1, vec![e.clone()])
            .unwrap();
        let mut sink = ModelSink(irqs.clone());
        sink.legacy(true);
        assert_eq!(e.n(), 1);
        // Still asserted, but automasked: nothing new until QEMU unmasks.
        sink.legacy(true);
        assert_eq!(e.n(), 1);
        irqs.lock()
            .set_irqs(VFIO_PCI_INTX_IRQ_INDEX, UNMASK, 0, 1, vec![])
            .unwrap();
        assert_eq!(e.n(), 2, "unmask while asserted signals again");
        sink.legacy(false);
        irqs.lock()
            .set_irqs(VFIO_PCI_INTX_IRQ_INDEX, UNMASK, 0, 1, vec![])
            .unwrap();
        assert_eq!(e.n(), 2, "unmask after deassert is silent");
        sink.legacy(true);
        assert_eq!(e.n(), 3);
        // Explicit mask holds the line back; unmask delivers.
        sink.legacy(false);
        irqs.lock()
            .set_irqs(VFIO_PCI_INTX_IRQ_INDEX, UNMASK, 0, 1, vec![])
            .unwrap();
        irqs.lock()
            .set_irqs(VFIO_PCI_INTX_IRQ_INDEX, MASK, 0, 1, vec![])
            .unwrap();
        sink.legacy(true);
        assert_eq!(e.n(), 3);
        irqs.lock()
            .set_irqs(VFIO_PCI_INTX_IRQ_INDEX, UNMASK, 0, 1, vec![])
            .unwrap();
        assert_eq!(e.n(), 4);
    }

    #[test]
    fn msi_takes_precedence_over_intx_and_is_an_edge() {
        let irqs = Irqs::<Fake>::default();
        let (intx, msi) = (Fake::default(), Fake::default());
        irqs.lock()
            .set_irqs(VFIO_PCI_INTX_IRQ_INDEX, EVENTFD, 0, 1, vec![intx.clone()])
            .unwrap();
        irqs.lock()
            .set_irqs(VFIO_PCI_MSI_IRQ_INDEX, EVENTFD, 0, 1, vec![msi.clone()])
            .unwrap();
        let mut sink = ModelSink(irqs.clone());
        sink.legacy(true);
        sink.legacy(true); // no new edge
        assert_eq!((intx.n(), msi.n()), (0, 1));
        sink.legacy(false);
        sink.legacy(true);
        assert_eq!(msi.n(), 2);
    }

    #[test]
    fn loopback_trigger_and_bad_requests() {
        let irqs = Irqs::<Fake>::default();
        let e = Fake::default();
        let mut st = irqs.lock();
        st.set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, EVENTFD, 63, 1, vec![e.clone()])
            .unwrap();
        st.set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, NONE_TRIGGER, 60, 4, vec![])
            .unwrap();
        assert_eq!(e.n(), 1, "DATA_NONE trigger fires the set vectors");
        // Beyond the 64 vectors.
        assert!(st
            .set_irqs(
                VFIO_PCI_MSIX_IRQ_INDEX,
                EVENTFD,
                63,
                2,
                vec![e.clone(), e.clone()]
            )
            .is_err());
        // fd count mismatch.
        assert!(st
            .set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, EVENTFD, 0, 2, vec![e.clone()])
            .is_err());
        // MSI-X is not maskable through SET_IRQS.
        assert!(st
            .set_irqs(VFIO_PCI_MSIX_IRQ_INDEX, MASK, 0, 1, vec![])
            .is_err());
        // ERR/REQ have no interrupts; two action bits at once.
        assert!(st.set_irqs(3, NONE_TRIGGER, 0, 0, vec![]).is_err());
        assert!(st
            .set_irqs(VFIO_PCI_INTX_IRQ_INDEX, MASK | UNMASK, 0, 1, vec![])
            .is_err());
    }
}
