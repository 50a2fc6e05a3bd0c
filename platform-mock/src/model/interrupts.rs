//! Interrupts (datasheet §7.3; registers §8.2.3.5): causes, masks, IVAR mapping, auto-clear,
//! auto-mask, EITR throttling, the MSI-X table and PBA in BAR4, and delivery to the attached
//! [`InterruptSink`].
//!
//! State: `other` holds EICR bits 30:16 (non-queue causes). `qcause` holds the queue causes:
//! in MSI-X mode (GPIE.Multiple_MSIX) one bit per vector 0..63, mapped through IVAR; otherwise
//! the EICR RTxQ bits 15:0 (IVAR INT_Alloc bits 3:0 choose the bit). EICR bits 15:0 always show
//! `qcause` bits 15:0, EIMS bits 15:0 show `qmask` bits 15:0 and EIMS_EX / EICS_EX / EIMC_EX /
//! EIAM_EX cover all 64 (§8.2.3.5.7–10: EIMS1 bits 15:0 mirror EIMS bits 15:0).
//!
//! Delivery is edge-like per vector: a message goes out when a vector becomes pending (cause and
//! mask set) and its EITR interval since the previous message has passed; it is sent again only
//! after the vector stopped being pending (cause cleared, auto-cleared, or masked) and became
//! pending anew — a write to EIMS that re-enables a vector with a pending cause sends one, as
//! Linux's NAPI re-enable expects. Interpretations (the datasheet text is not at hand):
//! queue vectors 16..63 have no EICR bit, so they always auto-clear when their message is sent
//! (Linux re-arms them with EIMS_EX only); the "other" causes (bits 29:16) never auto-clear
//! (§8.2.3.5.4: bits 29:20 must not be set in EIAC).

use std::time::Duration;

use super::*;
use crate::pci::{MSIX_ENABLE, MSIX_FUNCTION_MASK, MSIX_VECTORS, MSI_ENABLE};

/// EICR bits 30:16 (non-queue causes).
const OTHER_BITS: u32 = 0x7FFF_0000;
/// Bits 29:16: the causes the "other" vector (IVAR_MISC bits 14:8) reports.
const OTHER_VEC_BITS: u32 = 0x3FFF_0000;
/// EICR bit 31, "Other cause": set while any of bits 29:20 is set and enabled.
const EICR_OTHER: u32 = 1 << 31;

/// Per-function interrupt state.
pub(crate) struct Irq {
    pub(crate) other: u32,
    pub(crate) qcause: u64,
    pub(crate) qmask: u64,
    pub(crate) omask: u32,
    /// EIAM bits 15:0 and EIAM_EX (queue vectors).
    pub(crate) eiam_q: u64,
    /// EIAM bits 30:16.
    pub(crate) eiam_o: u32,
    /// Vectors whose message went out for the current pending episode.
    fired: u64,
    /// Earliest virtual time each vector may send again (EITR).
    next_ok: [Duration; 64],
    /// The single interrupt's level as last reported (legacy / MSI / single-vector MSI-X).
    pub(crate) level: bool,
    /// A held (throttled) message is due at this time.
    pub(crate) deadline: Option<Duration>,
    /// MSI-X table: message address low, high, data, vector control (§9.3.9.1; in BAR4).
    pub(crate) table: Box<[[u32; 4]; 64]>,
    /// MSI-X Pending Bit Array.
    pub(crate) pba: u64,
}

impl Irq {
    pub(crate) fn new() -> Self {
        let mut table = Box::new([[0u32; 4]; 64]);
        for e in table.iter_mut() {
            e[3] = 1; // vector control: masked after reset (PCI 3.0 §6.8.2.9)
        }
        Irq {
            other: 0,
            qcause: 0,
            qmask: 0,
            omask: 0,
            eiam_q: 0,
            eiam_o: 0,
            fired: 0,
            next_ok: [Duration::ZERO; 64],
            level: false,
            deadline: None,
            table,
            pba: 0,
        }
    }

    /// What CTRL.RST resets (the MSI-X table and PBA live in PCI space and stay).
    pub(crate) fn reset_regs(&mut self) {
        self.other = 0;
        self.qcause = 0;
        self.qmask = 0;
        self.omask = 0;
        self.eiam_q = 0;
        self.eiam_o = 0;
        self.fired = 0;
        self.next_ok = [Duration::ZERO; 64];
    }

    /// EICR as software reads it.
    pub(crate) fn eicr(&self) -> u32 {
        let mut v = self.other | (self.qcause & 0xFFFF) as u32;
        if self.other & self.omask & 0x3FF0_0000 != 0 {
            v |= EICR_OTHER;
        }
        v
    }

    /// EIMS as software reads it.
    pub(crate) fn eims(&self) -> u32 {
        self.omask | (self.qmask & 0xFFFF) as u32
    }
}

/// Where messages go (the sinks are boxed, so `'static`).
type Sink<'a> = Option<&'a mut (dyn InterruptSink + 'static)>;

fn eitr_offset(v: usize) -> u32 {
    if v < 24 {
        EITR_LO + 4 * v as u32
    } else {
        EITR_HI + 4 * (v as u32 - 24)
    }
}

fn set_half(x: &mut u64, k: usize, v: u32, op: fn(u64, u64) -> u64) {
    let sh = 32 * k;
    *x = op(*x, u64::from(v) << sh);
}

impl Nic {
    fn msix_multi(&self) -> bool {
        self.r(GPIE) & GPIE_MULTIPLE_MSIX != 0
    }

    /// A queue finished a write-back: raise the cause IVAR maps it to (§7.3.4). Inlined: once
    /// per packet on both paths.
    #[inline(always)]
    pub(crate) fn queue_cause(&mut self, tx: bool, q: usize) {
        self.irq.qcause |= self.queue_cause_bit(tx, q);
    }

    /// The cause bit [`Nic::queue_cause`] sets for queue `q` (0: IVAR's entry is not valid),
    /// from IVAR and GPIE (the receive path keeps it with its queue set-up).
    #[inline(always)]
    pub(crate) fn queue_cause_bit(&self, tx: bool, q: usize) -> u64 {
        let ivar = self.r(IVAR + 4 * (q as u32 / 2));
        let shift = 16 * (q as u32 % 2) + if tx { 8 } else { 0 };
        let entry = (ivar >> shift) & 0xFF;
        if entry & 0x80 == 0 {
            return 0;
        }
        let alloc = entry & 0x3F;
        let bit = if self.msix_multi() {
            alloc
        } else {
            alloc & 0xF
        };
        1 << bit
    }

    /// Reads of the interrupt registers; `None` if `off` is not one.
    pub(crate) fn irq_read(&mut self, off: u32) -> Option<u32> {
        let irq = &mut self.irq;
        Some(match off {
            EICR => {
                let v = irq.eicr();
                // Clear on read (§8.2.3.5.1): everything, or with GPIE.OCD only the queue bits.
                irq.qcause &= !0xFFFF;
                if self.regs[(GPIE / 4) as usize] & GPIE_OCD == 0 {
                    irq.other = 0;
                }
                // Outside MSI-X mode, EIAM auto-masks on the read (Linux: "use EIAM to
                // auto-mask when reading EICR").
                if v != 0 && self.regs[(GPIE / 4) as usize] & GPIE_MULTIPLE_MSIX == 0 {
                    irq.qmask &= !(irq.eiam_q & 0xFFFF);
                    irq.omask &= !irq.eiam_o;
                }
                v
            }
            // EICS reads return the causes without clearing them (Linux's ixgbe_msix_other
            // relies on it: "Reading with EICS will return the interrupt causes without
            // clearing").
            EICS => irq.eicr(),
            EIMS => irq.eims(),
            EIMC => 0,
            EIAM => irq.eiam_o | (irq.eiam_q & 0xFFFF) as u32,
            x if in_array(x, EIMS_EX, 2) => (irq.qmask >> (32 * ((x - EIMS_EX) / 4))) as u32,
            x if in_array(x, EIAM_EX, 2) => (irq.eiam_q >> (32 * ((x - EIAM_EX) / 4))) as u32,
            x if in_array(x, EICS_EX, 2) || in_array(x, EIMC_EX, 2) => 0,
            x if in_array(x, EITR_LO, 24) => {
                self.regs[(x / 4) as usize] & !(1 << 31) // CNT_WDIS is write-only
            }
            _ => return None,
        })
    }

    /// Writes of the interrupt registers; false if `off` is not one. Reserved-bit checks are
    /// made by the caller.
    pub(crate) fn irq_write(&mut self, off: u32, v: u32) -> bool {
        let msix = self.msix_multi();
        let irq = &mut self.irq;
        match off {
            EICR => {
                // RW1C.
                irq.other &= !(v & OTHER_BITS);
                irq.qcause &= !u64::from(v & 0xFFFF);
            }
            EICS => {
                let v = v & 0x7FFF_FFFF;
                irq.other |= v & OTHER_BITS;
                irq.qcause |= u64::from(v & 0xFFFF);
                // Outside MSI-X mode an EICS bit that is in EIAM also sets EIMS (Linux's
                // check_hang comment: the write "would set *both* EIMS and EICS for any bit
                // in EIAM").
                if !msix {
                    irq.qmask |= u64::from(v & 0xFFFF) & irq.eiam_q;
                    irq.omask |= v & OTHER_BITS & irq.eiam_o;
                }
            }
            EIMS => {
                irq.qmask |= u64::from(v & 0xFFFF);
                irq.omask |= v & OTHER_BITS;
            }
            EIMC => {
                irq.qmask &= !u64::from(v & 0xFFFF);
                irq.omask &= !(v & OTHER_BITS);
            }
            EIAM => {
                irq.eiam_q = (irq.eiam_q & !0xFFFF) | u64::from(v & 0xFFFF);
                irq.eiam_o = v & OTHER_BITS;
            }
            x if in_array(x, EICS_EX, 2) => {
                set_half(&mut irq.qcause, ((x - EICS_EX) / 4) as usize, v, |a, b| {
                    a | b
                })
            }
            x if in_array(x, EIMS_EX, 2) => {
                set_half(&mut irq.qmask, ((x - EIMS_EX) / 4) as usize, v, |a, b| {
                    a | b
                })
            }
            x if in_array(x, EIMC_EX, 2) => {
                set_half(&mut irq.qmask, ((x - EIMC_EX) / 4) as usize, v, |a, b| {
                    a & !b
                })
            }
            x if in_array(x, EIAM_EX, 2) => {
                let sh = 32 * ((x - EIAM_EX) / 4);
                irq.eiam_q = (irq.eiam_q & !(0xFFFF_FFFFu64 << sh)) | (u64::from(v) << sh);
            }
            _ => return false,
        }
        true
    }

    fn itr(&self, v: usize) -> Duration {
        // EITR.ITR_Interval, bits 11:3, in 2 µs units at 10 Gb/s (§8.2.3.5.12).
        Duration::from_micros(u64::from((self.r(eitr_offset(v)) >> 3) & 0x1FF) * 2)
    }

    /// Sends whatever interrupt messages are due at `now`.
    #[inline(never)]
    pub(crate) fn irq_eval(&mut self, now: Duration, mut sink: Sink<'_>) {
        let irq = &self.irq;
        if irq.qcause == 0 && irq.other == 0 && !irq.level && irq.fired == 0 && irq.pba == 0 {
            self.irq.deadline = None;
            self.config.set_intx_status(false);
            return;
        }
        self.irq.deadline = None;
        let msix_ctl = self.config.msix_control();
        if msix_ctl & MSIX_ENABLE != 0 && self.msix_multi() {
            self.drop_level(sink.as_deref_mut());
            self.eval_vectors(now, msix_ctl & MSIX_FUNCTION_MASK != 0, sink);
        } else {
            self.eval_single(now, msix_ctl, sink);
        }
    }

    fn drop_level(&mut self, sink: Sink<'_>) {
        if self.irq.level {
            self.irq.level = false;
            self.config.set_intx_status(false);
            if let Some(s) = sink {
                s.legacy(false);
            }
        }
    }

    fn eval_vectors(&mut self, now: Duration, function_mask: bool, mut sink: Sink<'_>) {
        let misc = self.r(IVAR_MISC);
        let other_vec = (misc & 0x8000 != 0).then_some(((misc >> 8) & 0x3F) as usize);
        let tcp_vec = (misc & 0x80 != 0).then_some((misc & 0x3F) as usize);
        let pending = |irq: &Irq| {
            let mut p = irq.qcause & irq.qmask;
            if let Some(v) = other_vec {
                if irq.other & irq.omask & OTHER_VEC_BITS != 0 {
                    p |= 1 << v;
                }
            }
            if let Some(v) = tcp_vec {
                if irq.other & irq.omask & EICR_TCP_TIMER != 0 {
                    p |= 1 << v;
                }
            }
            p
        };
        let bme = self.config.bus_master();
        let eiac = self.r(EIAC);
        let eiame = self.r(GPIE) & GPIE_EIAME != 0;
        let mut p = pending(&self.irq);
        self.irq.fired &= p;
        self.irq.pba &= p;
        let mut todo = p & !self.irq.fired;
        while todo != 0 {
            let v = todo.trailing_zeros() as usize;
            todo &= todo - 1;
            // Messages are memory writes: none without Bus Master Enable (PCI 3.0 §6.8.1).
            if !bme {
                continue;
            }
            if now < self.irq.next_ok[v] {
                let t = self.irq.next_ok[v];
                self.irq.deadline = Some(self.irq.deadline.map_or(t, |d| d.min(t)));
                continue;
            }
            if function_mask || self.irq.table[v][3] & 1 != 0 {
                self.irq.pba |= 1 << v;
                continue;
            }
            if let Some(s) = sink.as_deref_mut() {
                s.msix(v as u16);
            }
            self.irq.fired |= 1 << v;
            self.irq.pba &= !(1 << v);
            self.irq.next_ok[v] = now + self.itr(v);
            // Auto-clear (EIAC, §7.3.1.3).
            if v >= 16 || eiac & (1 << v) != 0 {
                self.irq.qcause &= !(1 << v);
            }
            if tcp_vec == Some(v) && eiac & EICR_TCP_TIMER != 0 {
                self.irq.other &= !EICR_TCP_TIMER;
            }
            // Auto-mask (EIAM with GPIE.EIAME, §7.3.1.4).
            if eiame {
                self.irq.qmask &= !(self.irq.eiam_q & (1 << v));
                if other_vec == Some(v) {
                    self.irq.omask &= !self.irq.eiam_o;
                }
            }
        }
        p = pending(&self.irq);
        self.irq.fired &= p;
    }

    fn eval_single(&mut self, now: Duration, msix_ctl: u16, sink: Sink<'_>) {
        let pending = self.irq.eicr() & self.irq.eims() != 0;
        // EITR[0] throttles the single interrupt's assertion.
        let may_rise = now >= self.irq.next_ok[0];
        if pending && !self.irq.level && !may_rise {
            self.irq.deadline = Some(self.irq.next_ok[0]);
        }
        let level = pending && (self.irq.level || may_rise);
        self.config.set_intx_status(level);
        let cmd = self.config.command();
        let bme = self.config.bus_master();
        let rising = level && !self.irq.level;
        if rising {
            self.irq.next_ok[0] = now + self.itr(0);
        }
        if msix_ctl & MSIX_ENABLE != 0 {
            // MSI-X enabled with a single vector (GPIE.Multiple_MSIX = 0): vector 0.
            self.irq.level = level;
            let masked = msix_ctl & MSIX_FUNCTION_MASK != 0 || self.irq.table[0][3] & 1 != 0;
            if !level {
                self.irq.pba &= !1;
            } else if rising || self.irq.pba & 1 != 0 {
                if masked || !bme {
                    self.irq.pba |= 1;
                } else {
                    self.irq.pba &= !1;
                    if let Some(s) = sink {
                        s.msix(0);
                    }
                }
            }
            return;
        }
        let msi = self.config.msi_control() & MSI_ENABLE != 0;
        let out = if msi {
            let masked = self.config.msi_masked();
            self.config.set_msi_pending(level && (masked || !bme));
            level && !masked && bme
        } else {
            level && cmd & crate::pci::CMD_INTX_DISABLE == 0
        };
        if out != self.irq.level {
            self.irq.level = out;
            if let Some(s) = sink {
                s.legacy(out);
            }
        }
    }

    /// A 32-bit read of BAR4 (MSI-X table at 0, PBA at 0x2000).
    pub(crate) fn bar4_read(&self, off: u32) -> u32 {
        let off = off as usize;
        if off < 16 * usize::from(MSIX_VECTORS) {
            return self.irq.table[off / 16][(off % 16) / 4];
        }
        match off {
            0x2000 => self.irq.pba as u32,
            0x2004 => (self.irq.pba >> 32) as u32,
            _ => 0,
        }
    }

    /// A 32-bit write to BAR4 (the PBA is read-only).
    pub(crate) fn bar4_write(&mut self, off: u32, v: u32) {
        let off = off as usize;
        if off < 16 * usize::from(MSIX_VECTORS) {
            let (e, w) = (off / 16, (off % 16) / 4);
            self.irq.table[e][w] = match w {
                0 => v & !3, // message address is dword aligned
                3 => v & 1,  // only the Mask bit is defined
                _ => v,
            };
        }
    }
}

impl World {
    /// Delivers the interrupt messages of NIC `i` that are due now.
    #[inline(never)]
    pub(crate) fn irq_update(&mut self, i: usize) {
        let now = self.core.now;
        let sink = self.irq_sinks[i].as_deref_mut();
        self.nics[i].irq_eval(now, sink);
    }
}
