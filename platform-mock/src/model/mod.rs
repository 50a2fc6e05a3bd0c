//! The behavioural model of one 82599 port and of the simulated world around it.

use std::collections::HashSet;
use std::time::Duration;

use crate::dma::DmaSpace;
use crate::regs::*;
use crate::rss;
use crate::{
    Fault, InterruptSink, NicConfig, NicId, RxCorruption, TrafficSink, TrafficSource, Violation,
    ViolationKind, WireCounters,
};

mod filter;
mod interrupts;
mod mmio;
mod nic;
mod offload;
mod ratelimit;
mod rogue;
mod rx;
mod rx_memo;
mod rx_setup;
mod spi_eeprom;
mod timesync;
mod tx;

use nic::{bit_get, bit_set, Faults};
pub(crate) use nic::{Core, Held, Nic};
use rx::{drain_held, rx_burst, rx_frame};
use tx::TxDesc;

/// Size of the modelled register file (everything a minimal driver touches lies below 128 KiB).
const REG_SPACE: u32 = 0x20000;
/// Registers in [`REG_SPACE`].
const REG_WORDS: usize = (REG_SPACE / 4) as usize;
const RESET_TIME: Duration = Duration::from_micros(10);
const AUTO_RD_TIME: Duration = Duration::from_millis(1);
const DMAIDONE_TIME: Duration = Duration::from_millis(2);
const ENABLE_LAG_TIME: Duration = Duration::from_micros(5);
const ENABLE_LAG_READS: u8 = 2;
const MAX_TRANSMITTED: usize = 1 << 20;
const MAX_VIOLATIONS: usize = 10_000;
const RX_DESC_DD: u32 = 1;
const RX_DESC_EOP: u32 = 1 << 1;
const RX_DESC_RXE: u32 = 1 << 29;

pub(crate) struct World {
    pub core: Core,
    pub nics: Vec<Nic>,
    pub cables: Vec<Option<usize>>,
    pub sources: Vec<Option<Box<dyn TrafficSource>>>,
    pub sinks: Vec<Option<Box<dyn TrafficSink>>>,
    pub irq_sinks: Vec<Option<Box<dyn InterruptSink>>>,
    /// Per NIC: the messages [`crate::SimPlatform`]'s interrupt waits consume.
    pub waiters: Vec<crate::waiting::Waiter>,
    /// Interrupt waits advance virtual time themselves (false: someone else drives the clock
    /// and waits sleep in wall time).
    pub waits_advance_clock: bool,
    /// Time slice while sources are attached (and of interrupt waits).
    pub slice: Duration,
    pub(crate) tx_scratch: Vec<u8>,
    pub(crate) tx_descs: Vec<TxDesc>,
    /// Frames sent to a sink, handed over in bursts (`tx::TxBurst`).
    pub(crate) tx_burst: tx::TxBurst,
    /// This instance is lane `lane` of `lanes` (`crate::Sim::with_lanes`): it delivers frames
    /// only to queues `q` with `q % lanes == lane`.
    pub(crate) lane: (u16, u16),
    /// Tests only: every packet through `tx::tx_one` (the reference for `tx::tx_fast`).
    #[cfg(test)]
    pub(crate) no_tx_fast: bool,
}

// ---------------------------------------------------------------------------------------------
// World

impl World {
    /// Lane `lane` of `lanes` (0 of 1: the whole model).
    pub fn new_lane(lane: u16, lanes: u16) -> Self {
        World {
            lane: (lane, lanes.max(1)),
            ..World::new()
        }
    }

    pub fn new() -> Self {
        World {
            lane: (0, 1),
            core: Core {
                now: Duration::ZERO,
                dma: DmaSpace::new(),
                violations: Vec::new(),
                seen: HashSet::new(),
                suppressed: 0,
                rx_scratch: Vec::with_capacity(16 * 1024),
                rx_strip: Vec::with_capacity(16 * 1024),
            },
            nics: Vec::new(),
            cables: Vec::new(),
            sources: Vec::new(),
            sinks: Vec::new(),
            irq_sinks: Vec::new(),
            waiters: Vec::new(),
            waits_advance_clock: true,
            slice: Duration::from_micros(100),
            tx_scratch: Vec::with_capacity(16 * 1024),
            tx_descs: Vec::with_capacity(64),
            tx_burst: tx::TxBurst::default(),
            #[cfg(test)]
            no_tx_fast: false,
        }
    }

    pub fn add_nic(&mut self, cfg: NicConfig) -> usize {
        let mut nic = Nic::new(cfg, self.core.now);
        nic.lane = self.lane;
        nic.rss.dirty = true;
        self.nics.push(nic);
        self.cables.push(None);
        self.sources.push(None);
        self.sinks.push(None);
        self.irq_sinks.push(None);
        self.waiters.push(crate::waiting::Waiter::default());
        self.nics.len() - 1
    }

    pub fn set_fault(&mut self, i: usize, fault: Fault) {
        let f = &mut self.nics[i].faults;
        match fault {
            Fault::ResetNeverCompletes => f.reset_never = true,
            Fault::EepromAutoReadNeverDone => f.autord_never = true,
            Fault::DmaInitNeverDone => f.dmainit_never = true,
            Fault::QueueEnableStuck => f.queue_stuck = true,
            Fault::LinkNeverUp => f.link_never = true,
            Fault::SecRxNeverReady => f.secrx_never = true,
            Fault::NvmMissing => {
                f.nvm_missing = true;
                let n = &mut self.nics[i];
                n.set(EEC, n.r(EEC) & !EEC_EE_PRES);
            }
            Fault::FirmwareError { code } => {
                let n = &mut self.nics[i];
                let v = (n.r(FWSM) & !(0x3F << 19)) | u32::from(code & 0x3F) << 19;
                n.set(FWSM, v);
            }
            Fault::StallTx { queue } => bit_set(&mut f.stall_tx, queue as usize),
            Fault::RxWriteback { corruption, count } => f.rx_wb = Some((corruption, count)),
            Fault::TxSpuriousDone { queue } => bit_set(&mut f.spurious_tx, queue as usize),
            Fault::RogueDma {
                writes_per_ms,
                seed,
            } => {
                f.rogue = Some(rogue::Rogue::new(writes_per_ms, seed, self.core.now));
            }
        }
    }

    pub fn clear_faults(&mut self, i: usize) {
        self.nics[i].faults = Faults::default();
        let now = self.core.now;
        self.nics[i].run_events(now);
    }

    /// NIC `i`'s laser or link mode changed: re-evaluate its link and its cabled partner's.
    pub(crate) fn link_conditions_changed(&mut self, i: usize) {
        let now = self.core.now;
        if let Some(j) = self.cables[i] {
            let dark = !self.nics[i].transmits();
            self.nics[j].partner_dark = dark;
            let dark_j = !self.nics[j].transmits();
            self.nics[i].partner_dark = dark_j;
            self.nics[j].link_conditions_changed(now);
            self.irq_update(j);
        }
        self.nics[i].link_conditions_changed(now);
        self.irq_update(i);
    }

    pub fn set_link(&mut self, i: usize, up: bool) {
        let now = self.core.now;
        let ends = [Some(i), self.cables[i]];
        for j in ends.into_iter().flatten() {
            let n = &mut self.nics[j];
            n.plugged = up;
            if up {
                if !n.link_up && n.link_at.is_none() && n.reset_until.is_none() {
                    n.link_at = Some(now + n.cfg.link_up_delay);
                }
            } else {
                n.set_link_down();
            }
        }
        for j in [Some(i), self.cables[i]].into_iter().flatten() {
            self.irq_update(j);
        }
    }

    /// Advances virtual time by `d`, running events, sources, TX and held RX frames.
    #[inline(never)]
    pub fn advance(&mut self, d: Duration) {
        self.advance_until(d, false, || false);
    }

    /// As [`World::advance`], but stops after the first time slice at whose end `stop` holds.
    /// `sliced`: slice time even without sources, so a waiter notices within one slice what
    /// another thread did.
    pub fn advance_until(&mut self, d: Duration, sliced: bool, mut stop: impl FnMut() -> bool) {
        let target = self.core.now + d;
        let slice = self.slice;
        loop {
            let have_sources = sliced || self.sources.iter().any(Option::is_some);
            let mut step = if have_sources {
                slice.min(target - self.core.now)
            } else {
                target - self.core.now
            };
            // Stop at the next held interrupt message (EITR) so it goes out on time.
            let now = self.core.now;
            if let Some(t) = self.nics.iter().filter_map(|n| n.irq.deadline).min() {
                if t > now && t - now < step {
                    step = t - now;
                }
            }
            self.core.now += step;
            self.tick();
            if self.core.now >= target || stop() {
                break;
            }
        }
    }

    #[inline(never)]
    pub(crate) fn tick(&mut self) {
        let now = self.core.now;
        for n in &mut self.nics {
            n.run_events(now);
        }
        for i in 0..self.nics.len() {
            rogue::strike(&mut self.nics[i], &mut self.core, now);
            if let Some(src) = self.sources[i].as_mut() {
                let nic = &mut self.nics[i];
                let core = &mut self.core;
                src.poll_bursts(now, &mut |f, len| rx_burst(nic, i, core, f, len));
            }
        }
        for i in 0..self.nics.len() {
            // The enabled queues, in order (`Nic::tx_enabled`).
            debug_assert!(
                (0..128).all(|q| self.nics[i].tx[q].en == bit_get(&self.nics[i].tx_enabled, q))
            );
            for w in 0..2 {
                let mut bits = self.nics[i].tx_enabled[w];
                while bits != 0 {
                    let q = 64 * w + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let n = &self.nics[i];
                    let qs = &n.tx[q];
                    if qs.en && (qs.head != qs.tail || bit_get(&n.faults.spurious_tx, q)) {
                        self.tx_process(i, q);
                    }
                }
            }
            self.nics[i].bound_stats();
            self.nics[i].rate.tick_done(now);
            let core = &mut self.core;
            drain_held(&mut self.nics[i], i, core);
            self.irq_update(i);
        }
    }

    /// Writes PCI configuration space of NIC `i`.
    pub fn config_write(&mut self, i: usize, off: usize, data: &[u8]) {
        let fx = self.nics[i].config.write(off, data);
        if fx.flr || fx.d3_to_d0 {
            self.function_reset(i);
        } else {
            // Bus Master Enable may have come back: move held frames, send held messages.
            let core = &mut self.core;
            drain_held(&mut self.nics[i], i, core);
            for q in 0..128 {
                let qs = &self.nics[i].tx[q];
                if qs.en && qs.head != qs.tail {
                    self.tx_process(i, q);
                }
            }
        }
        self.irq_update(i);
    }

    /// A PCIe reset of function `i` (FLR, or D3hot to D0 with No_Soft_Reset = 0): registers,
    /// queues, interrupt state, the MSI-X table and configuration space return to their
    /// power-on values; the EEPROM auto-read and DMA init run again (§4.2.1, §4.6.1). The
    /// wire, its counters and injected faults are outside the function and stay.
    pub fn function_reset(&mut self, i: usize) {
        let now = self.core.now;
        if let Some(s) = self.irq_sinks[i].as_mut() {
            if self.nics[i].irq.level {
                s.legacy(false);
            }
        }
        let old = &mut self.nics[i];
        let mut n = Nic::new(old.cfg.clone(), now);
        n.config.set_command(0);
        n.plugged = old.plugged;
        n.faults = std::mem::take(&mut old.faults);
        n.wire = old.wire;
        n.transmitted = std::mem::take(&mut old.transmitted);
        n.lane = old.lane;
        n.rss.dirty = true;
        let eec = n.r(EEC) & !(EEC_AUTO_RD | EEC_DONE_BITS);
        n.set(EEC, eec);
        let rd = n.r(RDRXCTL) & !RDRXCTL_DMAIDONE;
        n.set(RDRXCTL, rd);
        n.autord_at = Some(now + AUTO_RD_TIME);
        n.dmaidone_at = Some(now + DMAIDONE_TIME);
        n.link_at = n.plugged.then(|| now + n.cfg.link_up_delay);
        self.nics[i] = n;
    }

    /// Receives a frame from the wire of NIC `i`.
    pub fn inject(&mut self, i: usize, frame: &[u8]) {
        rx_frame(&mut self.nics[i], i, &mut self.core, frame);
        self.irq_update(i);
    }
}

impl World {
    /// Is DMA region `id` in use by an enabled queue of any NIC?
    pub fn region_in_use(&self, id: usize) -> Option<String> {
        for (i, n) in self.nics.iter().enumerate() {
            for q in 0..128 {
                for tx in [false, true] {
                    let qs = if tx { &n.tx[q] } else { &n.rx[q] };
                    if (qs.en || qs.en_target) && n.ring_len(tx, q) > 0 {
                        let b = n.ring_base(tx, q);
                        if self.core.dma.bus_in_region(b, id) {
                            let kind = if tx { "TX" } else { "RX" };
                            return Some(format!("NIC {i} {kind} queue {q} ring"));
                        }
                    }
                }
            }
        }
        None
    }
}

// ---------------------------------------------------------------------------------------------
// Lanes (`crate::Sim::with_lanes`)

/// How the lanes' answers to a BAR0 read combine (`crate::Sim`'s reads with lanes).
pub(crate) enum ReadClass {
    /// A register of queue `q` (its owner answers).
    Queue(u16),
    /// A statistics counter (each lane counts its own traffic); `high`: the offset of the
    /// high half when this is the low half of a 36-bit counter.
    Stat { high: Option<u32> },
    /// EICR (each lane sets its queues' causes).
    Eicr,
    /// The same in every lane.
    Other,
}

/// Classifies a BAR0 offset for a read with lanes.
pub(crate) fn read_class(off: u32) -> ReadClass {
    let off = unalias(off);
    match mmio::decode_queue(off) {
        mmio::QReg::Rx(q, _) | mmio::QReg::Tx(q, _) => return ReadClass::Queue(q as u16),
        mmio::QReg::Stat(c) => {
            // QBRC_L/H inside the RX block (0x34 / 0x38 of queues 0..15).
            let low = (off & 0x3F) == 0x34;
            return ReadClass::Stat {
                high: low.then_some(c + 4),
            };
        }
        mmio::QReg::None => {}
    }
    if off == EICR {
        ReadClass::Eicr
    } else if is_stat36_low(off) {
        ReadClass::Stat {
            high: Some(off + 4),
        }
    } else if mmio::is_stat(off) {
        ReadClass::Stat { high: None }
    } else {
        ReadClass::Other
    }
}

/// The queue whose tail register (RDT, TDT) `off` is, if it is one.
pub(crate) fn tail_queue(off: u32) -> Option<u16> {
    match mmio::decode_queue(unalias(off)) {
        mmio::QReg::Rx(q, Q_TAIL) | mmio::QReg::Tx(q, Q_TAIL) => Some(q as u16),
        _ => None,
    }
}

impl World {
    /// This lane received frames for other lanes' queues (a look per tail write and pump,
    /// without building the list [`World::take_foreign`] returns).
    #[inline]
    pub(crate) fn has_foreign(&self) -> bool {
        self.nics.iter().any(|n| !n.foreign.is_empty())
    }

    /// Frames this lane received for other lanes' queues (NIC, frame), oldest first.
    pub(crate) fn take_foreign(&mut self) -> Vec<(usize, Held)> {
        let mut out = Vec::new();
        for (i, n) in self.nics.iter_mut().enumerate() {
            out.extend(n.foreign.drain(..).map(|h| (i, h)));
        }
        out
    }

    /// Delivers a frame another lane received (and counted) for one of this lane's queues.
    pub(crate) fn deliver_foreign(&mut self, i: usize, h: Held) {
        let n = &mut self.nics[i];
        rx::rx_to_queue(n, i, &mut self.core, h.meta, &h.buf[..h.len]);
        n.pool.push(h.buf);
        self.irq_update(i);
    }

    /// Adds `v` to register `off` of NIC `i` (a statistics carry).
    pub(crate) fn add_to_register(&mut self, i: usize, off: u32, v: u32) {
        // After what was counted before it: a 36-bit addition masks the high half to 4 bits,
        // so a carry does not commute with a pending one.
        self.nics[i].sync_stats();
        self.nics[i].inc(off, v);
    }

    /// The receive queue NIC `i`'s RSS set-up selects for `frame` (as [`rx::rx_frame`]). Out
    /// of line, so that the receive path's inlined parser stays as it is.
    #[inline(never)]
    pub(crate) fn rss_queue(&self, i: usize, frame: &[u8]) -> u16 {
        let n = &self.nics[i];
        let mrqc = n.r(MRQC);
        if mrqc & 0xF != 1 {
            return 0;
        }
        let mut key = [0u8; 40];
        for k in 0..10 {
            key[4 * k..4 * k + 4].copy_from_slice(&n.r(RSSRK + 4 * k as u32).to_le_bytes());
        }
        let p = rss::parse(frame);
        match rss::rss_hash(&key, mrqc, frame, &p) {
            Some((h, _)) => {
                let e = h & 0x7F;
                ((n.r(RETA + 4 * (e / 4)) >> (8 * (e % 4))) & 0xF) as u16
            }
            None => 0,
        }
    }
}
