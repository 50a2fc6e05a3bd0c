//! The behavioural model of one 82599 port and of the simulated world around it.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use crate::dma::{DmaFault, DmaSpace};
use crate::regs::*;
use crate::rss;
use crate::{
    Fault, NicConfig, NicId, RxCorruption, TrafficSink, TrafficSource, Violation, ViolationKind,
    WireCounters,
};

/// Size of the modelled register file (everything a minimal driver touches lies below 128 KiB).
const REG_SPACE: u32 = 0x20000;
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

/// Pending change of a queue's ENABLE state (the read-back lags the write).
#[derive(Clone, Copy)]
struct Pending {
    value: bool,
    reads_left: u8,
    deadline: Duration,
}

#[derive(Clone, Copy, Default)]
struct Queue {
    head: u32,
    tail: u32,
    /// Last ENABLE value written by software.
    en_target: bool,
    /// Real state.
    en: bool,
    pending: Option<Pending>,
}

/// A frame waiting in the RX packet buffer.
struct Held {
    queue: u16,
    hash: u32,
    info: u32,
    len: usize,
    buf: Vec<u8>,
}

#[derive(Default)]
pub(crate) struct Faults {
    reset_never: bool,
    autord_never: bool,
    dmainit_never: bool,
    queue_stuck: bool,
    link_never: bool,
    stall_tx: [u64; 2],
    spurious_tx: [u64; 2],
    rx_wb: Option<(RxCorruption, u32)>,
}

fn bit_get(m: &[u64; 2], q: usize) -> bool {
    q < 128 && m[q / 64] & (1 << (q % 64)) != 0
}

fn bit_set(m: &mut [u64; 2], q: usize) {
    if q < 128 {
        m[q / 64] |= 1 << (q % 64);
    }
}

pub(crate) struct Nic {
    pub cfg: NicConfig,
    regs: Box<[u32]>,
    rx: Box<[Queue]>,
    tx: Box<[Queue]>,
    eicr: u32,
    eims: u32,
    eims_ex: [u32; 2],
    reset_until: Option<Duration>,
    autord_at: Option<Duration>,
    dmaidone_at: Option<Duration>,
    link_at: Option<Duration>,
    link_up: bool,
    plugged: bool,
    pending_q: Vec<(bool, u16)>,
    pub faults: Faults,
    held: VecDeque<Held>,
    held_bytes: usize,
    pool: Vec<Vec<u8>>,
    pub wire: WireCounters,
    pub transmitted: VecDeque<Vec<u8>>,
    once: HashSet<(ViolationKind, u32)>,
    rar_cache: Vec<[u8; 6]>,
    rar_dirty: bool,
}

/// Shared non-NIC state: clock, DMA space, violation log, scratch buffers.
pub(crate) struct Core {
    pub now: Duration,
    pub dma: DmaSpace,
    pub violations: Vec<Violation>,
    seen: HashSet<(usize, String)>,
    pub suppressed: u64,
    rx_scratch: Vec<u8>,
}

impl Core {
    #[inline(never)]
    pub fn violate(&mut self, nic: usize, kind: ViolationKind, what: String) {
        if self.violations.len() >= MAX_VIOLATIONS || !self.seen.insert((nic, what.clone())) {
            self.suppressed += 1;
            return;
        }
        self.violations.push(Violation {
            nic: NicId(nic),
            time: self.now,
            kind,
            what,
        });
    }

    fn dma_fault(&mut self, nic: usize, ctx: &str, f: DmaFault) {
        self.violate(
            nic,
            ViolationKind::DmaOutsideRegion,
            format!(
                "{ctx}: DMA of {} bytes at bus {:#x} is outside every live DMA region (or crosses a 2 MiB chunk)",
                f.len, f.bus
            ),
        );
    }
}

/// TX descriptor as fetched.
#[derive(Clone, Copy)]
struct TxDesc {
    addr: u64,
    cmd: u32,
}

pub(crate) struct World {
    pub core: Core,
    pub nics: Vec<Nic>,
    pub cables: Vec<Option<usize>>,
    pub sources: Vec<Option<Box<dyn TrafficSource>>>,
    pub sinks: Vec<Option<Box<dyn TrafficSink>>>,
    tx_scratch: Vec<u8>,
    tx_descs: Vec<TxDesc>,
}

enum Deliver {
    Done,
    NoDesc,
    Disabled,
    Invalid,
}

enum TxStep {
    Idle,
    Frame,
    Dropped,
}

// ---------------------------------------------------------------------------------------------
// NIC: registers, reset, events

impl Nic {
    fn new(cfg: NicConfig, now: Duration) -> Self {
        let mut n = Nic {
            cfg,
            regs: vec![0u32; (REG_SPACE / 4) as usize].into_boxed_slice(),
            rx: vec![Queue::default(); 128].into_boxed_slice(),
            tx: vec![Queue::default(); 128].into_boxed_slice(),
            eicr: 0,
            eims: 0,
            eims_ex: [0; 2],
            reset_until: None,
            autord_at: None,
            dmaidone_at: None,
            link_at: None,
            link_up: false,
            plugged: true,
            pending_q: Vec::new(),
            faults: Faults::default(),
            held: VecDeque::new(),
            held_bytes: 0,
            pool: Vec::new(),
            wire: WireCounters::default(),
            transmitted: VecDeque::new(),
            once: HashSet::new(),
            rar_cache: Vec::new(),
            rar_dirty: true,
        };
        n.reset_state();
        // Power-on: the EEPROM auto-read and DMA init are done, the link trains.
        n.regs[(EEC / 4) as usize] |= EEC_AUTO_RD | EEC_DONE_BITS;
        n.regs[(RDRXCTL / 4) as usize] |= RDRXCTL_DMAIDONE;
        n.link_at = Some(now + n.cfg.link_up_delay);
        n
    }

    #[inline(always)]
    fn r(&self, off: u32) -> u32 {
        self.regs[(off / 4) as usize]
    }

    #[inline(always)]
    fn set(&mut self, off: u32, v: u32) {
        self.regs[(off / 4) as usize] = v;
    }

    /// Power-on values of everything CTRL.RST resets.
    #[inline(never)]
    fn reset_state(&mut self) {
        let keep = [SWSM, FWSM, SW_FW_SYNC, ESDP];
        let saved: Vec<u32> = keep.iter().map(|&o| self.r(o)).collect();
        self.regs.fill(0);
        for (o, v) in keep.iter().zip(saved) {
            self.set(*o, v);
        }
        self.set(EEC, EEC_EE_PRES | EEC_FIXED);
        self.set(IVAR_MISC, 1 << 15);
        self.set(RDRXCTL, RDRXCTL_INIT);
        for n in 0..8 {
            self.set(RXPBSIZE + 4 * n, 0x0008_0000);
            self.set(TXPBSIZE + 4 * n, 0x0002_8000);
        }
        self.set(TXPBTHRESH, 0x96);
        self.set(VLNCTRL, 0x8100);
        self.set(DMATXCTL, DMATXCTL_INIT);
        self.set(DTXMXSZRQ, 0x10);
        self.set(RTTDCS, 0x00C0_0000);
        self.set(HLREG0, HLREG0_INIT);
        self.set(MAXFRS, 0x05EE_0000);
        self.set(AUTOC, AUTOC_INIT);
        self.set(SECRXCTRL, 1);
        for q in 0..128 {
            let rb = rx_base(q);
            self.set(rb + Q_SRRCTL, SRRCTL_INIT);
            self.set(rb + Q_DCA, DCA_RXCTRL_INIT);
            self.set(tx_base(q) + Q_DCA, DCA_TXCTRL_INIT);
        }
        let m = self.cfg.mac;
        self.set(RAL, u32::from_le_bytes([m[0], m[1], m[2], m[3]]));
        self.set(RAL + 4, u32::from(m[4]) | u32::from(m[5]) << 8 | RAH_AV);
        self.rar_dirty = true;
        self.rx.fill(Queue::default());
        self.tx.fill(Queue::default());
        self.pending_q.clear();
        self.eicr = 0;
        self.eims = 0;
        self.eims_ex = [0; 2];
        while let Some(h) = self.held.pop_front() {
            self.pool.push(h.buf);
        }
        self.held_bytes = 0;
    }

    fn set_link_down(&mut self) {
        if self.link_up {
            self.link_up = false;
            self.eicr |= EICR_LSC;
        }
        self.link_at = None;
    }

    /// Runs every timed event that is due at `now`.
    #[inline(never)]
    fn run_events(&mut self, now: Duration) {
        if let Some(t) = self.reset_until {
            if t <= now && !self.faults.reset_never {
                self.reset_until = None;
                self.autord_at = Some(t + AUTO_RD_TIME);
                self.dmaidone_at = Some(t + DMAIDONE_TIME);
                if self.plugged {
                    self.link_at = Some(t + self.cfg.link_up_delay);
                }
            }
        }
        if let Some(t) = self.autord_at {
            if t <= now && !self.faults.autord_never {
                self.autord_at = None;
                self.regs[(EEC / 4) as usize] |= EEC_AUTO_RD | EEC_DONE_BITS;
            }
        }
        if let Some(t) = self.dmaidone_at {
            if t <= now && !self.faults.dmainit_never {
                self.dmaidone_at = None;
                self.regs[(RDRXCTL / 4) as usize] |= RDRXCTL_DMAIDONE;
            }
        }
        if let Some(t) = self.link_at {
            if t <= now && self.plugged && !self.faults.link_never && self.reset_until.is_none() {
                self.link_at = None;
                if !self.link_up {
                    self.link_up = true;
                    self.eicr |= EICR_LSC;
                }
            }
        }
        if !self.pending_q.is_empty() {
            let mut i = 0;
            while i < self.pending_q.len() {
                let (tx, q) = self.pending_q[i];
                let due = {
                    let qs = if tx {
                        &self.tx[q as usize]
                    } else {
                        &self.rx[q as usize]
                    };
                    qs.pending.is_some_and(|p| p.deadline <= now)
                };
                if due && self.try_apply_enable(tx, q as usize) {
                    self.pending_q.swap_remove(i);
                } else {
                    i += 1;
                }
            }
        }
    }

    /// Applies a pending ENABLE change unless a fault blocks it. True when applied.
    fn try_apply_enable(&mut self, tx: bool, q: usize) -> bool {
        let stuck = self.faults.queue_stuck;
        let qs = if tx { &mut self.tx[q] } else { &mut self.rx[q] };
        let Some(p) = qs.pending else { return true };
        if p.value && stuck {
            return false;
        }
        qs.pending = None;
        qs.en = p.value;
        true
    }

    fn link_is_up(&self) -> bool {
        self.link_up
    }

    fn ring_len(&self, tx: bool, q: usize) -> u32 {
        let base = if tx {
            tx_base(q as u32)
        } else {
            rx_base(q as u32)
        };
        self.r(base + Q_LEN) / 16
    }

    fn ring_base(&self, tx: bool, q: usize) -> u64 {
        let base = if tx {
            tx_base(q as u32)
        } else {
            rx_base(q as u32)
        };
        u64::from(self.r(base + Q_BAH)) << 32 | u64::from(self.r(base + Q_BAL) & !0x7F)
    }

    fn inc(&mut self, off: u32, n: u32) {
        let r = &mut self.regs[(off / 4) as usize];
        *r = r.saturating_add(n);
    }

    fn add36(&mut self, low: u32, n: u64) {
        let l = u64::from(self.r(low));
        let h = u64::from(self.r(low + 4) & 0xF);
        let v = ((h << 32) | l).saturating_add(n).min((1 << 36) - 1);
        self.set(low, v as u32);
        self.set(low + 4, (v >> 32) as u32);
    }

    fn rar_list(&mut self) -> &[[u8; 6]] {
        if self.rar_dirty {
            self.rar_dirty = false;
            self.rar_cache.clear();
            for n in 0..128 {
                let l = self.r(RAL + 8 * n);
                let h = self.r(RAL + 8 * n + 4);
                if h & RAH_AV != 0 {
                    let b = l.to_le_bytes();
                    self.rar_cache
                        .push([b[0], b[1], b[2], b[3], h as u8, (h >> 8) as u8]);
                }
            }
        }
        &self.rar_cache
    }

    fn stat_slot(&self, map_base: u32, q: usize) -> u32 {
        (self.r(map_base + 4 * (q as u32 / 4)) >> (8 * (q % 4))) & 0xF
    }
}

/// Which register a (de-aliased) offset refers to, for queue registers.
#[derive(Clone, Copy)]
enum QReg {
    Rx(u32, u32),
    Tx(u32, u32),
    /// A per-queue statistics register inside a queue block: canonical offset.
    Stat(u32),
    None,
}

fn decode_queue(off: u32) -> QReg {
    let rx_field = |q: u32, f: u32| -> QReg {
        match f {
            Q_BAL | Q_BAH | Q_LEN | Q_DCA | Q_HEAD | Q_SRRCTL | Q_TAIL | Q_DCTL | Q_RSCCTL => {
                QReg::Rx(q, f)
            }
            0x30 if q < 32 => QReg::Stat(off),
            0x34 | 0x38 if q < 16 => QReg::Stat(off),
            _ => QReg::None,
        }
    };
    if (0x01000..0x02000).contains(&off) {
        let q = (off - 0x01000) / 0x40;
        return rx_field(q, (off - 0x01000) % 0x40);
    }
    if (0x0D000..0x0E000).contains(&off) {
        let q = (off - 0x0D000) / 0x40;
        let f = (off - 0x0D000) % 0x40;
        return match rx_field(q + 64, f) {
            QReg::Stat(_) => QReg::None,
            x => x,
        };
    }
    if (0x06000..0x08000).contains(&off) {
        let q = (off - 0x06000) / 0x40;
        let f = (off - 0x06000) % 0x40;
        return match f {
            Q_BAL | Q_BAH | Q_LEN | Q_DCA | Q_HEAD | Q_TAIL | Q_DCTL | Q_WBAL | Q_WBAH => {
                QReg::Tx(q, f)
            }
            0x30 if q < 16 => QReg::Stat(QPTC + 4 * q),
            _ => QReg::None,
        };
    }
    if in_array(off, SRRCTL_ALIAS, 16) {
        return QReg::Rx((off - SRRCTL_ALIAS) / 4, Q_SRRCTL);
    }
    if in_array(off, DCA_RXCTRL_ALIAS, 16) {
        return QReg::Rx((off - DCA_RXCTRL_ALIAS) / 4, Q_DCA);
    }
    QReg::None
}

fn is_stat(off: u32) -> bool {
    is_stat32(off) || is_stat36_low(off) || (off >= 4 && is_stat36_low(off - 4))
}

// ---------------------------------------------------------------------------------------------
// World

impl World {
    pub fn new() -> Self {
        World {
            core: Core {
                now: Duration::ZERO,
                dma: DmaSpace::new(),
                violations: Vec::new(),
                seen: HashSet::new(),
                suppressed: 0,
                rx_scratch: Vec::with_capacity(16 * 1024),
            },
            nics: Vec::new(),
            cables: Vec::new(),
            sources: Vec::new(),
            sinks: Vec::new(),
            tx_scratch: Vec::with_capacity(16 * 1024),
            tx_descs: Vec::with_capacity(64),
        }
    }

    pub fn add_nic(&mut self, cfg: NicConfig) -> usize {
        let nic = Nic::new(cfg, self.core.now);
        self.nics.push(nic);
        self.cables.push(None);
        self.sources.push(None);
        self.sinks.push(None);
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
            Fault::StallTx { queue } => bit_set(&mut f.stall_tx, queue as usize),
            Fault::RxWriteback { corruption, count } => f.rx_wb = Some((corruption, count)),
            Fault::TxSpuriousDone { queue } => bit_set(&mut f.spurious_tx, queue as usize),
        }
    }

    pub fn clear_faults(&mut self, i: usize) {
        self.nics[i].faults = Faults::default();
        let now = self.core.now;
        self.nics[i].run_events(now);
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
    }

    /// Advances virtual time by `d`, running events, sources, TX and held RX frames.
    #[inline(never)]
    pub fn advance(&mut self, d: Duration) {
        let target = self.core.now + d;
        let slice = Duration::from_micros(100);
        loop {
            let have_sources = self.sources.iter().any(Option::is_some);
            let step = if have_sources {
                slice.min(target - self.core.now)
            } else {
                target - self.core.now
            };
            self.core.now += step;
            self.tick();
            if self.core.now >= target {
                break;
            }
        }
    }

    #[inline(never)]
    fn tick(&mut self) {
        let now = self.core.now;
        for n in &mut self.nics {
            n.run_events(now);
        }
        for i in 0..self.nics.len() {
            if let Some(src) = self.sources[i].as_mut() {
                let nic = &mut self.nics[i];
                let core = &mut self.core;
                src.poll(now, &mut |f| rx_frame(nic, i, core, f));
            }
        }
        for i in 0..self.nics.len() {
            for q in 0..128 {
                let n = &self.nics[i];
                let qs = &n.tx[q];
                if qs.en && (qs.head != qs.tail || bit_get(&n.faults.spurious_tx, q)) {
                    self.tx_process(i, q);
                }
            }
            let core = &mut self.core;
            drain_held(&mut self.nics[i], i, core);
        }
    }

    /// Receives a frame from the wire of NIC `i`.
    pub fn inject(&mut self, i: usize, frame: &[u8]) {
        rx_frame(&mut self.nics[i], i, &mut self.core, frame);
    }

    // -----------------------------------------------------------------------------------------
    // MMIO

    #[inline(never)]
    pub fn mmio_read(&mut self, i: usize, off: u32) -> u32 {
        let core = &mut self.core;
        let n = &mut self.nics[i];
        if off % 4 != 0 {
            core.violate(
                i,
                ViolationKind::UnalignedAccess,
                format!("read at unaligned offset {off:#x}"),
            );
            return 0;
        }
        if off >= REG_SPACE {
            return 0;
        }
        let off = unalias(off);
        match decode_queue(off) {
            QReg::Rx(q, f) => return n.read_queue(false, q as usize, f),
            QReg::Tx(q, f) => return n.read_queue(true, q as usize, f),
            QReg::Stat(c) => {
                let v = n.r(c);
                n.set(c, 0);
                return v;
            }
            QReg::None => {}
        }
        match off {
            CTRL => {
                let mut v = n.r(CTRL);
                if n.reset_until.is_some() {
                    v |= CTRL_RST | CTRL_LRST;
                }
                v
            }
            STATUS => {
                if n.r(CTRL) & CTRL_MASTER_DISABLE != 0 {
                    0
                } else {
                    STATUS_MASTER_ENABLE
                }
            }
            SWSM => {
                let v = n.r(SWSM);
                n.set(SWSM, v | 1);
                v
            }
            EICR => {
                let v = n.eicr;
                if n.r(GPIE) & GPIE_OCD != 0 {
                    n.eicr &= !0x3FFF_0000;
                } else {
                    n.eicr = 0;
                }
                v
            }
            EICS | EIMC => 0,
            EIMS => n.eims,
            x if in_array(x, EIMS_EX, 2) => n.eims_ex[((x - EIMS_EX) / 4) as usize],
            x if in_array(x, EICS_EX, 2) || in_array(x, EIMC_EX, 2) => 0,
            LINKS => {
                if n.link_is_up() {
                    LINKS_UP | LINKS_SPEED_10G | LINKS_AN_DONE
                } else {
                    0
                }
            }
            SECRXSTAT => u32::from(n.r(SECRXCTRL) & SECRXCTRL_RX_DIS != 0),
            x if is_stat(x) => {
                let v = n.r(x);
                n.set(x, 0);
                v
            }
            x => n.r(x),
        }
    }

    #[inline(never)]
    pub fn mmio_write(&mut self, i: usize, off: u32, v: u32) {
        if off % 4 != 0 {
            self.core.violate(
                i,
                ViolationKind::UnalignedAccess,
                format!("write {v:#x} at unaligned offset {off:#x}"),
            );
            return;
        }
        if off >= REG_SPACE {
            self.core.violate(
                i,
                ViolationKind::UnknownRegister,
                format!("write {v:#x} to offset {off:#x}, outside the modelled register space"),
            );
            return;
        }
        let off = unalias(off);
        match decode_queue(off) {
            QReg::Rx(q, f) => return self.write_rx_queue(i, q as usize, f, v),
            QReg::Tx(q, f) => return self.write_tx_queue(i, q as usize, f, v),
            QReg::Stat(c) => {
                return self.core.violate(
                    i,
                    ViolationKind::ReadOnlyRegister,
                    format!("write {v:#x} to read-only statistics register {c:#x}"),
                )
            }
            QReg::None => {}
        }
        let now = self.core.now;
        let core = &mut self.core;
        let n = &mut self.nics[i];
        let reserved = |core: &mut Core, name: &str, bits: u32| {
            if bits != 0 {
                core.violate(
                    i,
                    ViolationKind::ReservedBits,
                    format!("{name}: reserved bits {bits:#x} written as 1"),
                );
            }
        };
        match off {
            CTRL => {
                reserved(core, "CTRL", v & !CTRL_VALID);
                if v & (CTRL_RST | CTRL_LRST) != 0 {
                    n.reset_state();
                    n.set_link_down();
                    n.reset_until = Some(now + RESET_TIME);
                    n.autord_at = None;
                    n.dmaidone_at = None;
                } else {
                    n.set(CTRL, v & CTRL_MASTER_DISABLE);
                }
            }
            STATUS | LINKS | SECRXSTAT | ANLP1 => core.violate(
                i,
                ViolationKind::ReadOnlyRegister,
                format!("write {v:#x} to read-only register {off:#x}"),
            ),
            x if is_stat(x) => core.violate(
                i,
                ViolationKind::ReadOnlyRegister,
                format!("write {v:#x} to read-only statistics register {x:#x}"),
            ),
            EEC => {
                let keep = n.r(EEC) & !EEC_SW_BITS;
                n.set(EEC, keep | (v & EEC_SW_BITS));
            }
            EERD => {
                if v & 1 != 0 {
                    // Word read: done at once; the model's EEPROM reads as zeros.
                    n.set(EERD, (v & 0xFFFC) | 0b10);
                }
            }
            SWSM => n.set(SWSM, v & 0b11),
            EICR => n.eicr &= !v,
            EICS => {
                reserved(core, "EICS", v & (1 << 31));
                n.eicr |= v & 0x7FFF_FFFF;
            }
            EIMS => {
                reserved(core, "EIMS", v & (1 << 31));
                n.eims |= v & 0x7FFF_FFFF;
            }
            EIMC => {
                reserved(core, "EIMC", v & (1 << 31));
                n.eims &= !(v & 0x7FFF_FFFF);
            }
            x if in_array(x, EIMS_EX, 2) => n.eims_ex[((x - EIMS_EX) / 4) as usize] |= v,
            x if in_array(x, EIMC_EX, 2) => n.eims_ex[((x - EIMC_EX) / 4) as usize] &= !v,
            x if in_array(x, EICS_EX, 2) => {}
            RXCTRL => {
                reserved(core, "RXCTRL", v & !RXCTRL_RXEN);
                let old = n.r(RXCTRL);
                if old & RXCTRL_RXEN == 0 && v & RXCTRL_RXEN != 0 {
                    let rd = n.r(RDRXCTL);
                    if rd & RDRXCTL_RSCFRSTSIZE != 0 {
                        core.violate(
                            i,
                            ViolationKind::ReservedBits,
                            format!(
                                "RXCTRL.RXEN set while RDRXCTL.RSCFRSTSIZE = {:#x} (must be 0)",
                                (rd >> 17) & 0x1F
                            ),
                        );
                    }
                    if n.r(SECRXCTRL) & SECRXCTRL_RX_DIS == 0 {
                        core.violate(
                            i,
                            ViolationKind::RxEnableWithoutHandshake,
                            "RXCTRL.RXEN set without SECRXCTRL.RX_DIS / SECRX_RDY handshake".into(),
                        );
                    }
                }
                n.set(RXCTRL, v & RXCTRL_RXEN);
            }
            RDRXCTL => {
                let done = n.r(RDRXCTL) & RDRXCTL_DMAIDONE;
                n.set(RDRXCTL, (v & !RDRXCTL_DMAIDONE) | done);
            }
            FCTRL => {
                reserved(core, "FCTRL", v & !FCTRL_VALID);
                if n.r(RXCTRL) & RXCTRL_RXEN != 0 && v != n.r(FCTRL) {
                    core.violate(
                        i,
                        ViolationKind::FctrlChangedWhileRxEnabled,
                        format!(
                            "FCTRL changed {:#x} -> {v:#x} while RXCTRL.RXEN = 1",
                            n.r(FCTRL)
                        ),
                    );
                }
                n.set(FCTRL, v & FCTRL_VALID);
            }
            HLREG0 => {
                if v & HLREG0_FIXED_MASK != HLREG0_FIXED_VAL {
                    core.violate(
                        i,
                        ViolationKind::ReservedBits,
                        format!("HLREG0 bits 9:3 = {:#x}, must be 0x1", (v >> 3) & 0x7F),
                    );
                }
                n.set(HLREG0, v);
            }
            AUTOC => {
                n.set(AUTOC, v & !AUTOC_RESTART_AN);
                if v & AUTOC_RESTART_AN != 0 && n.reset_until.is_none() {
                    n.set_link_down();
                    if n.plugged {
                        n.link_at = Some(now + n.cfg.link_up_delay);
                    }
                }
            }
            SECRXCTRL => n.set(SECRXCTRL, v),
            DMATXCTL => {
                let old = n.r(DMATXCTL);
                n.set(DMATXCTL, v);
                if old & DMATXCTL_TE == 0 && v & DMATXCTL_TE != 0 {
                    // DS8: setting TE also enables TX queue 0.
                    let d = n.r(tx_base(0) + Q_DCTL);
                    n.set(tx_base(0) + Q_DCTL, d | DCTL_ENABLE);
                    n.start_enable(true, 0, true, now);
                }
            }
            DTXMXSZRQ => {
                reserved(core, "DTXMXSZRQ", v & !0xFFF);
                n.set(DTXMXSZRQ, v & 0xFFF);
            }
            x if is_plain(x) => {
                if (RAL..RAL + 0x400).contains(&x) {
                    n.rar_dirty = true;
                }
                n.set(x, v);
            }
            x => core.violate(
                i,
                ViolationKind::UnknownRegister,
                format!("write {v:#x} to offset {x:#x}, a register the model does not know"),
            ),
        }
    }
}

impl Nic {
    fn start_enable(&mut self, tx: bool, q: usize, value: bool, now: Duration) {
        let qs = if tx { &mut self.tx[q] } else { &mut self.rx[q] };
        qs.en_target = value;
        if qs.en == value {
            qs.pending = None;
            return;
        }
        qs.pending = Some(Pending {
            value,
            reads_left: ENABLE_LAG_READS,
            deadline: now + ENABLE_LAG_TIME,
        });
        if !self.pending_q.contains(&(tx, q as u16)) {
            self.pending_q.push((tx, q as u16));
        }
    }

    fn read_queue(&mut self, tx: bool, q: usize, f: u32) -> u32 {
        let base = if tx {
            tx_base(q as u32)
        } else {
            rx_base(q as u32)
        };
        match f {
            Q_HEAD => {
                if tx {
                    self.tx[q].head
                } else {
                    self.rx[q].head
                }
            }
            Q_TAIL => {
                if tx {
                    self.tx[q].tail
                } else {
                    self.rx[q].tail
                }
            }
            Q_DCTL => {
                let qs = if tx { &mut self.tx[q] } else { &mut self.rx[q] };
                if let Some(p) = qs.pending.as_mut() {
                    if p.reads_left == 0 {
                        if self.try_apply_enable(tx, q) {
                            self.pending_q.retain(|&e| e != (tx, q as u16));
                        }
                    } else {
                        p.reads_left -= 1;
                    }
                }
                let en = if tx { self.tx[q].en } else { self.rx[q].en };
                let v = self.r(base + Q_DCTL) & !DCTL_ENABLE;
                if en {
                    v | DCTL_ENABLE
                } else {
                    v
                }
            }
            _ => self.r(base + f),
        }
    }
}

impl World {
    fn ring_checks(&mut self, i: usize, tx: bool, q: usize) {
        let n = &self.nics[i];
        let base = if tx {
            tx_base(q as u32)
        } else {
            rx_base(q as u32)
        };
        let len = n.r(base + Q_LEN);
        if len == 0 || len % 128 != 0 {
            let name = if tx { "TDLEN" } else { "RDLEN" };
            self.core.violate(
                i,
                ViolationKind::RingLength,
                format!("queue {q}: {name} = {len:#x} when enabling (must be a non-zero multiple of 128)"),
            );
        }
    }

    #[inline(never)]
    fn write_rx_queue(&mut self, i: usize, q: usize, f: u32, v: u32) {
        let now = self.core.now;
        let base = rx_base(q as u32);
        let n = &mut self.nics[i];
        let core = &mut self.core;
        let enabled = n.rx[q].en_target || n.rx[q].en;
        let reprogram = |core: &mut Core, name: &str| {
            core.violate(
                i,
                ViolationKind::RingReprogrammedWhileEnabled,
                format!("RX queue {q}: {name} written while the queue is enabled"),
            )
        };
        match f {
            Q_BAL | Q_BAH | Q_LEN => {
                let name = ["RDBAL", "RDBAH", "RDLEN"][(f / 4) as usize];
                if enabled {
                    reprogram(core, name);
                }
                if f == Q_BAL && v & 0x7F != 0 {
                    core.violate(
                        i,
                        ViolationKind::RingAlignment,
                        format!("RX queue {q}: RDBAL {v:#x} is not 128-byte aligned"),
                    );
                }
                if f == Q_LEN && (v % 128 != 0 || v >= 1 << 20) {
                    core.violate(
                        i,
                        ViolationKind::RingLength,
                        format!(
                            "RX queue {q}: RDLEN {v:#x} is not a multiple of 128 (or too large)"
                        ),
                    );
                }
                let v = match f {
                    Q_BAL => v & !0x7F,
                    Q_LEN => v & 0xF_FF80,
                    _ => v,
                };
                n.set(base + f, v);
            }
            Q_SRRCTL => {
                if enabled {
                    reprogram(core, "SRRCTL");
                }
                if v & SRRCTL_RESERVED != 0 {
                    core.violate(
                        i,
                        ViolationKind::ReservedBits,
                        format!("RX queue {q}: SRRCTL reserved bits 7:5 written as 1 ({v:#x})"),
                    );
                }
                if v & 0x1F == 0 {
                    core.violate(
                        i,
                        ViolationKind::InvalidConfig,
                        format!("RX queue {q}: SRRCTL.BSIZEPACKET = 0"),
                    );
                }
                n.set(base + f, v & !SRRCTL_RESERVED);
            }
            Q_HEAD => {
                if enabled && v != n.rx[q].head {
                    core.violate(
                        i,
                        ViolationKind::HeadWrite,
                        format!("RX queue {q}: RDH (read-only) written with {v} while enabled"),
                    );
                } else if !enabled {
                    n.rx[q].head = v & 0xFFFF;
                }
            }
            Q_TAIL => {
                let len = n.ring_len(false, q);
                if v >= len && !(len == 0 && v == 0) {
                    core.violate(
                        i,
                        ViolationKind::TailOutOfRange,
                        format!("RX queue {q}: RDT = {v} >= ring length {len}"),
                    );
                    return;
                }
                if !n.rx[q].en && v != n.rx[q].tail {
                    core.violate(
                        i,
                        ViolationKind::TailBeforeEnable,
                        format!("RX queue {q}: RDT bumped to {v} before RXDCTL.ENABLE reads 1"),
                    );
                }
                n.rx[q].tail = v;
                drain_held(n, i, core);
            }
            Q_DCTL => {
                n.set(base + Q_DCTL, v);
                let want = v & DCTL_ENABLE != 0;
                if want != n.rx[q].en_target {
                    n.start_enable(false, q, want, now);
                    if want {
                        self.ring_checks(i, false, q);
                    }
                }
            }
            _ => n.set(base + f, v),
        }
    }

    #[inline(never)]
    fn write_tx_queue(&mut self, i: usize, q: usize, f: u32, v: u32) {
        let now = self.core.now;
        let base = tx_base(q as u32);
        let n = &mut self.nics[i];
        let core = &mut self.core;
        let enabled = n.tx[q].en_target || n.tx[q].en;
        match f {
            Q_BAL | Q_BAH | Q_LEN => {
                let name = ["TDBAL", "TDBAH", "TDLEN"][(f / 4) as usize];
                if enabled {
                    core.violate(
                        i,
                        ViolationKind::RingReprogrammedWhileEnabled,
                        format!("TX queue {q}: {name} written while the queue is enabled"),
                    );
                }
                if f == Q_BAL && v & 0x7F != 0 {
                    core.violate(
                        i,
                        ViolationKind::RingAlignment,
                        format!("TX queue {q}: TDBAL {v:#x} is not 128-byte aligned"),
                    );
                }
                if f == Q_LEN && (v % 128 != 0 || v >= 1 << 20) {
                    core.violate(
                        i,
                        ViolationKind::RingLength,
                        format!(
                            "TX queue {q}: TDLEN {v:#x} is not a multiple of 128 (or too large)"
                        ),
                    );
                }
                let v = match f {
                    Q_BAL => v & !0x7F,
                    Q_LEN => v & 0xF_FF80,
                    _ => v,
                };
                n.set(base + f, v);
            }
            Q_HEAD => {
                if enabled && v != n.tx[q].head {
                    core.violate(
                        i,
                        ViolationKind::HeadWrite,
                        format!("TX queue {q}: TDH written with {v} after TXDCTL.ENABLE"),
                    );
                } else if !enabled {
                    n.tx[q].head = v & 0xFFFF;
                }
            }
            Q_TAIL => {
                let len = n.ring_len(true, q);
                if v >= len && !(len == 0 && v == 0) {
                    core.violate(
                        i,
                        ViolationKind::TailOutOfRange,
                        format!("TX queue {q}: TDT = {v} >= ring length {len}"),
                    );
                    return;
                }
                if !n.tx[q].en && v != n.tx[q].tail {
                    core.violate(
                        i,
                        ViolationKind::TailBeforeEnable,
                        format!("TX queue {q}: TDT bumped to {v} before TXDCTL.ENABLE reads 1"),
                    );
                }
                n.tx[q].tail = v;
                self.tx_process(i, q);
            }
            Q_DCTL => {
                if v & TXDCTL_RESERVED != 0 {
                    core.violate(
                        i,
                        ViolationKind::ReservedBits,
                        format!(
                            "TX queue {q}: TXDCTL reserved bits {:#x} written as 1",
                            v & TXDCTL_RESERVED
                        ),
                    );
                }
                n.set(base + Q_DCTL, v & !(TXDCTL_RESERVED | TXDCTL_SWFLSH));
                let want = v & DCTL_ENABLE != 0;
                if want != n.tx[q].en_target {
                    n.start_enable(true, q, want, now);
                    if want {
                        self.ring_checks(i, true, q);
                    }
                }
            }
            _ => n.set(base + f, v),
        }
    }

    // -----------------------------------------------------------------------------------------
    // TX

    /// Sends every complete packet of TX queue `q` of NIC `i`.
    #[inline(never)]
    pub fn tx_process(&mut self, i: usize, q: usize) {
        loop {
            let step = tx_one(
                &mut self.nics[i],
                i,
                q,
                &mut self.core,
                &mut self.tx_scratch,
                &mut self.tx_descs,
            );
            match step {
                TxStep::Idle => break,
                TxStep::Dropped => continue,
                TxStep::Frame => {}
            }
            let frame = &self.tx_scratch[..];
            if self.nics[i].r(HLREG0) & HLREG0_LPBK != 0 {
                rx_frame(&mut self.nics[i], i, &mut self.core, frame);
            } else if let Some(j) = self.cables[i] {
                rx_frame(&mut self.nics[j], j, &mut self.core, frame);
            } else if let Some(s) = self.sinks[i].as_mut() {
                s.receive(self.core.now, frame);
            } else {
                let n = &mut self.nics[i];
                let mut buf = if n.transmitted.len() >= MAX_TRANSMITTED {
                    n.transmitted.pop_front().unwrap_or_default()
                } else {
                    Vec::with_capacity(frame.len())
                };
                buf.clear();
                buf.extend_from_slice(frame);
                n.transmitted.push_back(buf);
            }
        }
        let n = &mut self.nics[i];
        if bit_get(&n.faults.spurious_tx, q) && n.tx[q].en {
            let len = n.ring_len(true, q);
            if len > 0 {
                let base = n.ring_base(true, q);
                let t = n.tx[q].tail;
                for k in 0..2.min(len) {
                    let idx = (t + k) % len;
                    if idx == n.tx[q].head && k > 0 {
                        break;
                    }
                    let _ = self.core.dma.write_u32(base + 16 * u64::from(idx) + 12, 1);
                }
            }
        }
    }
}

/// Fetches and sends one packet from TX queue `q`; the frame is left in `scratch`.
#[inline(never)]
fn tx_one(
    n: &mut Nic,
    i: usize,
    q: usize,
    core: &mut Core,
    scratch: &mut Vec<u8>,
    descs: &mut Vec<TxDesc>,
) -> TxStep {
    let qs = n.tx[q];
    if !qs.en
        || qs.head == qs.tail
        || n.r(DMATXCTL) & DMATXCTL_TE == 0
        || !n.link_is_up()
        || n.r(CTRL) & CTRL_MASTER_DISABLE != 0
        || bit_get(&n.faults.stall_tx, q)
    {
        return TxStep::Idle;
    }
    let len = n.ring_len(true, q);
    if len == 0 || qs.head >= len {
        return TxStep::Idle;
    }
    let base = n.ring_base(true, q);
    descs.clear();
    let mut idx = qs.head;
    let mut eop = false;
    while idx != qs.tail {
        let a = base + 16 * u64::from(idx);
        let (addr, hi) = match (core.dma.read_u64(a), core.dma.read_u64(a + 8)) {
            (Ok(x), Ok(y)) => (x, y),
            (Err(f), _) | (_, Err(f)) => {
                core.dma_fault(i, &format!("TX queue {q} descriptor fetch"), f);
                return TxStep::Idle;
            }
        };
        let cmd = hi as u32;
        descs.push(TxDesc { addr, cmd });
        idx = (idx + 1) % len;
        if cmd & (1 << 24) != 0 {
            eop = true;
            break;
        }
    }
    if !eop {
        return TxStep::Idle;
    }
    scratch.clear();
    let mut bad = false;
    for d in descs.iter() {
        let dtyp = (d.cmd >> 20) & 0xF;
        let dext = d.cmd & (1 << 29) != 0;
        if dtyp != 0b0011 || !dext {
            core.violate(
                i,
                ViolationKind::TxDescriptorFormat,
                format!("TX queue {q}: descriptor with DTYP {dtyp:#b}, DEXT {dext} (only advanced data descriptors are supported)"),
            );
            bad = true;
            continue;
        }
        let dlen = (d.cmd & 0xFFFF) as usize;
        if dlen == 0 || dlen > 16 * 1024 {
            core.violate(
                i,
                ViolationKind::TxDataLength,
                format!("TX queue {q}: data length {dlen} (must be 1..=16384)"),
            );
            bad = true;
            continue;
        }
        if !bad {
            let old = scratch.len();
            scratch.resize(old + dlen, 0);
            if let Err(f) = core.dma.read(d.addr, &mut scratch[old..]) {
                core.dma_fault(i, &format!("TX queue {q} buffer read"), f);
                bad = true;
            }
        }
    }
    // Write-back and head update.
    let dctl = n.r(tx_base(q as u32) + Q_DCTL);
    let wthresh = (dctl >> 16) & 0x7F;
    let wbal = n.r(tx_base(q as u32) + Q_WBAL);
    let head_wb = wbal & 1 != 0;
    for (k, d) in descs.iter().enumerate() {
        let rs = d.cmd & (1 << 27) != 0;
        if !head_wb && (rs || wthresh > 0) {
            let di = (qs.head + k as u32) % len;
            if let Err(f) = core.dma.write_u32(base + 16 * u64::from(di) + 12, 1) {
                core.dma_fault(i, &format!("TX queue {q} write-back"), f);
            }
        }
    }
    n.tx[q].head = idx;
    if head_wb {
        let wb = u64::from(n.r(tx_base(q as u32) + Q_WBAH)) << 32 | u64::from(wbal & !3);
        if let Err(f) = core.dma.write_u32(wb, idx) {
            core.dma_fault(i, &format!("TX queue {q} head write-back"), f);
        }
    }
    if bad {
        n.wire.tx_bad += 1;
        return TxStep::Dropped;
    }
    if n.r(HLREG0) & HLREG0_TXPADEN != 0 && scratch.len() < 60 {
        scratch.resize(60, 0);
    }
    let flen = scratch.len();
    let wlen = flen as u32 + 4;
    if wlen >= 64 {
        n.inc(GPTC, 1);
        n.add36(GOTCL, u64::from(wlen));
    }
    n.inc(TPT, 1);
    n.inc(PTC64 + 4 * size_bucket(wlen), 1);
    if flen >= 6 && scratch[..6] == [0xFF; 6] {
        n.inc(BPTC, 1);
    } else if flen >= 6 && scratch[0] & 1 != 0 {
        n.inc(MPTC, 1);
    }
    let slot = n.stat_slot(TQSM, q);
    n.inc(QPTC + 4 * slot, 1);
    n.add36(QBTC_L + 8 * slot, u64::from(wlen));
    n.inc(TXDGPC, 1);
    n.add36(TXDGBCL, u64::from(wlen));
    n.wire.tx_frames += 1;
    n.wire.tx_bytes += flen as u64;
    TxStep::Frame
}

fn size_bucket(wlen: u32) -> u32 {
    match wlen {
        0..=64 => 0,
        65..=127 => 1,
        128..=255 => 2,
        256..=511 => 3,
        512..=1023 => 4,
        _ => 5,
    }
}

// ---------------------------------------------------------------------------------------------
// RX

/// Standard Ethernet CRC-32 (reflected, polynomial 0xEDB88320).
fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in data {
        c = t[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

fn l2_accept(n: &mut Nic, da: &[u8]) -> bool {
    let fctrl = n.r(FCTRL);
    if da == [0xFF; 6] {
        return fctrl & (FCTRL_MPE | FCTRL_BAM) != 0;
    }
    let multicast = da[0] & 1 != 0;
    if multicast && fctrl & FCTRL_MPE != 0 || !multicast && fctrl & FCTRL_UPE != 0 {
        return true;
    }
    if n.rar_list().iter().any(|m| m[..] == *da) {
        return true;
    }
    if multicast {
        let mc = n.r(MCSTCTRL);
        if mc & (1 << 2) != 0 {
            let (a, b) = (u32::from(da[4]), u32::from(da[5]));
            let vector = match mc & 3 {
                0 => (a >> 4) | (b << 4),
                1 => (a >> 3) | (b << 5),
                2 => (a >> 2) | (b << 6),
                _ => a | (b << 8),
            } & 0xFFF;
            return n.r(MTA + 4 * (vector >> 5)) & (1 << (vector & 31)) != 0;
        }
    }
    false
}

/// A frame (without FCS) arrives on NIC `n`'s wire.
#[inline(never)]
pub(crate) fn rx_frame(n: &mut Nic, i: usize, core: &mut Core, frame: &[u8]) {
    n.wire.rx_frames += 1;
    n.wire.rx_bytes += frame.len() as u64;
    if !n.link_is_up() {
        n.wire.rx_link_down += 1;
        return;
    }
    let wlen = frame.len() as u32 + 4;
    n.inc(TPR, 1);
    n.add36(TORL, u64::from(wlen));
    let vlan = frame.len() >= 14 && frame[12] == 0x81 && frame[13] == 0x00;
    let mut max = if n.r(HLREG0) & HLREG0_JUMBOEN != 0 {
        n.r(MAXFRS) >> 16
    } else {
        1518
    };
    if vlan {
        max += 4;
    }
    if wlen < 64 {
        n.inc(RUC, 1);
        n.wire.rx_errors += 1;
        return;
    }
    if wlen > max {
        n.inc(ROC, 1);
        n.wire.rx_errors += 1;
        return;
    }
    n.inc(RXNFGPC, 1);
    n.add36(RXNFGBCL, u64::from(wlen));
    if !l2_accept(n, &frame[..6]) {
        n.wire.rx_filtered += 1;
        return;
    }
    n.inc(GPRC, 1);
    n.add36(GORCL, u64::from(wlen));
    if frame[..6] == [0xFF; 6] {
        n.inc(BPRC, 1);
    } else if frame[0] & 1 != 0 {
        n.inc(MPRC, 1);
    }
    n.inc(PRC64 + 4 * size_bucket(wlen), 1);
    if n.r(RXCTRL) & RXCTRL_RXEN == 0 {
        n.wire.rx_disabled += 1;
        return;
    }
    // Queue selection.
    let p = rss::parse(frame);
    let mut info = p.pkt_type;
    let mut hash = 0;
    let mut queue = 0u16;
    let mrqc = n.r(MRQC);
    if mrqc & 0xF == 1 {
        let mut key = [0u8; 40];
        for k in 0..10 {
            key[4 * k..4 * k + 4].copy_from_slice(&n.r(RSSRK + 4 * k as u32).to_le_bytes());
        }
        if let Some((h, t)) = rss::rss_hash(&key, mrqc, frame, &p) {
            hash = h;
            info |= t;
            let e = h & 0x7F;
            queue = ((n.r(RETA + 4 * (e / 4)) >> (8 * (e % 4))) & 0xF) as u16;
        }
    }
    if !n.held.is_empty() || n.r(CTRL) & CTRL_MASTER_DISABLE != 0 {
        hold(n, queue, hash, info, frame);
        return;
    }
    match deliver(n, i, core, queue as usize, hash, info, frame) {
        Deliver::Done | Deliver::Invalid => {}
        Deliver::Disabled => drop_qprdc(n, queue as usize),
        Deliver::NoDesc => {
            if n.r(rx_base(u32::from(queue)) + Q_SRRCTL) & SRRCTL_DROP_EN != 0 {
                drop_qprdc(n, queue as usize);
            } else {
                hold(n, queue, hash, info, frame);
            }
        }
    }
}

fn drop_qprdc(n: &mut Nic, q: usize) {
    let slot = n.stat_slot(RQSMR, q);
    n.inc(QPRDC + 0x40 * slot, 1);
    n.wire.rx_dropped += 1;
}

fn hold(n: &mut Nic, queue: u16, hash: u32, info: u32, frame: &[u8]) {
    let cap = (((n.r(RXPBSIZE) >> 10) & 0x3FF) as usize) * 1024;
    let need = frame.len() + 4;
    if n.held_bytes + need > cap {
        n.inc(RXMPC, 1);
        n.eicr |= EICR_RX_MISS;
        n.wire.rx_missed += 1;
        return;
    }
    let mut buf = n.pool.pop().unwrap_or_default();
    buf.clear();
    buf.extend_from_slice(frame);
    n.held_bytes += need;
    n.held.push_back(Held {
        queue,
        hash,
        info,
        len: frame.len(),
        buf,
    });
}

/// Moves frames from the packet buffer to their queues while descriptors are available.
#[inline(never)]
pub(crate) fn drain_held(n: &mut Nic, i: usize, core: &mut Core) {
    if n.r(CTRL) & CTRL_MASTER_DISABLE != 0 {
        return;
    }
    while let Some(h) = n.held.pop_front() {
        let q = h.queue as usize;
        let r = deliver(n, i, core, q, h.hash, h.info, &h.buf[..h.len]);
        let consumed = match r {
            Deliver::Done | Deliver::Invalid => true,
            Deliver::Disabled => {
                drop_qprdc(n, q);
                true
            }
            Deliver::NoDesc => {
                if n.r(rx_base(q as u32) + Q_SRRCTL) & SRRCTL_DROP_EN != 0 {
                    drop_qprdc(n, q);
                    true
                } else {
                    false
                }
            }
        };
        if consumed {
            n.held_bytes -= h.len + 4;
            n.pool.push(h.buf);
        } else {
            n.held.push_front(h);
            break;
        }
    }
}

/// DMAs a frame into RX queue `q` and writes back its descriptor(s).
#[inline(never)]
fn deliver(
    n: &mut Nic,
    i: usize,
    core: &mut Core,
    q: usize,
    hash: u32,
    info: u32,
    frame: &[u8],
) -> Deliver {
    if q >= 128 || !n.rx[q].en {
        return Deliver::Disabled;
    }
    let base = rx_base(q as u32);
    let srrctl = n.r(base + Q_SRRCTL);
    let desctype = (srrctl >> 25) & 7;
    if desctype != 1 {
        if n.once.insert((ViolationKind::RxDescriptorType, q as u32)) {
            core.violate(
                i,
                ViolationKind::RxDescriptorType,
                format!("RX queue {q}: SRRCTL.DESCTYPE = {desctype:#b}; only advanced one-buffer (001b) is supported"),
            );
        }
        n.wire.rx_dropped += 1;
        return Deliver::Invalid;
    }
    let bsize = ((srrctl & 0x1F) as usize) * 1024;
    if bsize == 0 {
        n.wire.rx_dropped += 1;
        return Deliver::Invalid;
    }
    let hl = n.r(HLREG0) & HLREG0_RXCRCSTRP != 0;
    let rd = n.r(RDRXCTL) & RDRXCTL_CRCSTRIP != 0;
    if hl != rd && n.once.insert((ViolationKind::CrcStripMismatch, 0)) {
        core.violate(
            i,
            ViolationKind::CrcStripMismatch,
            format!("HLREG0.RXCRCSTRP = {hl} but RDRXCTL.CRCStrip = {rd}; they must be equal"),
        );
    }
    let Core {
        dma, rx_scratch, ..
    } = core;
    let data: &[u8] = if hl && rd {
        frame
    } else {
        rx_scratch.clear();
        rx_scratch.extend_from_slice(frame);
        rx_scratch.extend_from_slice(&crc32(frame).to_le_bytes());
        &rx_scratch[..]
    };
    let len = n.ring_len(false, q);
    let (head, tail) = (n.rx[q].head, n.rx[q].tail);
    if len == 0 || head >= len {
        return Deliver::NoDesc;
    }
    let free = (tail + len - head) % len;
    let need = data.len().div_ceil(bsize).max(1) as u32;
    if free < need {
        return Deliver::NoDesc;
    }
    let ring = n.ring_base(false, q);
    let pcsd = n.r(RXCSUM) & RXCSUM_PCSD != 0;
    let mut h = head;
    let mut faults: [Option<DmaFault>; 2] = [None, None];
    for k in 0..need as usize {
        let d = ring + 16 * u64::from(h);
        let chunk = &data[k * bsize..data.len().min((k + 1) * bsize)];
        let buf = match dma.read_u64(d) {
            Ok(b) => b,
            Err(f) => {
                faults[0] = Some(f);
                break;
            }
        };
        if let Err(f) = dma.write(buf, chunk) {
            faults[1] = Some(f);
        }
        let last = k + 1 == need as usize;
        let mut status = RX_DESC_DD | if last { RX_DESC_EOP } else { 0 };
        let mut plen = chunk.len() as u32;
        if let Some((c, cnt)) = n.faults.rx_wb.as_mut() {
            match c {
                RxCorruption::LengthTooLong => plen = (bsize as u32 + 512).min(0xFFFF),
                RxCorruption::ErrorBit => status |= RX_DESC_RXE,
                RxCorruption::NoEop => status &= !RX_DESC_EOP,
                RxCorruption::ZeroLength => plen = 0,
            }
            *cnt -= 1;
            if *cnt == 0 {
                n.faults.rx_wb = None;
            }
        }
        let lo = u64::from(info) | u64::from(if pcsd { hash } else { 0 }) << 32;
        let hi = u64::from(status) | u64::from(plen) << 32;
        let _ = dma.write_u64(d, lo);
        let _ = dma.write_u64(d + 8, hi);
        h = (h + 1) % len;
    }
    let dlen = data.len();
    if let Some(f) = faults[0] {
        core.dma_fault(i, &format!("RX queue {q} descriptor read"), f);
        n.wire.rx_dropped += 1;
        return Deliver::Invalid;
    }
    if let Some(f) = faults[1] {
        core.dma_fault(i, &format!("RX queue {q} buffer write"), f);
    }
    n.rx[q].head = h;
    let slot = n.stat_slot(RQSMR, q);
    n.inc(QPRC + 0x40 * slot, 1);
    n.add36(QBRC_L + 0x40 * slot, dlen as u64);
    let qsel = n.r(RXDSTATCTRL) & 0x1F;
    if qsel == 0x10 || qsel == slot {
        n.inc(RXDGPC, 1);
        n.add36(RXDGBCL, dlen as u64);
    }
    n.wire.rx_delivered += 1;
    Deliver::Done
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
