//! The per-queue transmit rate scheduler (datasheet §7.7.2.2; RTTDQSEL, RTTBCNRC, RTTBCNRM,
//! §8.2.3.10): with RTTBCNRC.RS_ENA set for a queue, each frame it sends makes it wait RF
//! (RF_INT.RF_DEC, link speed / queue rate) times that frame's time on the wire at link
//! speed before the next one. Time on the wire counts the frame with its CRC, preamble and
//! inter-frame gap (24 bytes more than the frame without FCS), 0.8 ns a byte at 10 Gb/s.

use std::time::Duration;

use super::{Core, ViolationKind};

const RS_ENA: u32 = 1 << 31;
/// RF_INT (23:14) and RF_DEC (13:0).
const RF_MASK: u32 = (1 << 24) - 1;
const RF_ONE: u32 = 1 << 14;
/// Bits 30:24 are reserved.
const RESERVED: u32 = 0x7F << 24;
/// Preamble, start of frame delimiter, CRC and inter-frame gap.
const WIRE_OVERHEAD: u64 = 24;
/// A byte's time at 10 Gb/s, in picoseconds.
const PS_PER_BYTE: u64 = 800;

/// The scheduler's state for every Tx queue of one port.
pub(crate) struct RateScheduler {
    /// RTTBCNRC of each queue.
    rc: [u32; 128],
    /// Picoseconds of virtual time at which each rate-limited queue may send again.
    next_ps: [u64; 128],
    /// Virtual time of the last tick: a queue that was busy may catch up on the time since
    /// then (the model looks at its queues once per tick, the hardware continuously), no more.
    last_tick_ps: u64,
}

impl Default for RateScheduler {
    fn default() -> Self {
        RateScheduler {
            rc: [0; 128],
            next_ps: [0; 128],
            last_tick_ps: 0,
        }
    }
}

fn ps(t: Duration) -> u64 {
    t.as_nanos() as u64 * 1000
}

impl RateScheduler {
    /// RTTBCNRC reads the selected queue's value.
    pub(crate) fn read(&self, sel: u32) -> u32 {
        self.rc[(sel & 0x7F) as usize]
    }

    /// A write of RTTBCNRC for queue `sel`. RS_ENA with a factor below 1 (a rate above link
    /// speed) is what the datasheet rules out: recorded, and the queue is left unlimited.
    pub(crate) fn write(&mut self, core: &mut Core, i: usize, sel: u32, v: u32, now: Duration) {
        let q = (sel & 0x7F) as usize;
        if sel > 0x7F {
            core.violate(
                i,
                ViolationKind::ReservedBits,
                format!("RTTDQSEL: queue {sel} (0..=127)"),
            );
        }
        if v & RESERVED != 0 {
            core.violate(
                i,
                ViolationKind::ReservedBits,
                format!("RTTBCNRC: reserved bits {:#x} written as 1", v & RESERVED),
            );
        }
        if v & RS_ENA != 0 && v & RF_MASK < RF_ONE {
            core.violate(
                i,
                ViolationKind::InvalidConfig,
                format!(
                    "RTTBCNRC of Tx queue {q}: RS_ENA with rate factor {:#x} below 1.0 (a rate above link speed)",
                    v & RF_MASK
                ),
            );
            self.rc[q] = v & !RS_ENA;
            return;
        }
        self.rc[q] = v & !RESERVED;
        self.next_ps[q] = self.next_ps[q].max(ps(now));
    }

    /// The factor of queue `q` when its scheduler is on.
    fn factor(&self, q: usize) -> Option<u64> {
        let v = self.rc[q];
        (v & RS_ENA != 0).then_some(u64::from(v & RF_MASK))
    }

    /// Is queue `q`'s scheduler on? If not, [`Self::may_send`] is always true and
    /// [`Self::sent`] does nothing.
    #[inline]
    pub(crate) fn limited(&self, q: usize) -> bool {
        self.rc[q] & RS_ENA != 0
    }

    /// May queue `q` send a frame at `now`?
    #[inline]
    pub(crate) fn may_send(&mut self, q: usize, now: Duration) -> bool {
        if self.rc[q] & RS_ENA == 0 {
            return true;
        }
        let next = &mut self.next_ps[q];
        *next = (*next).max(self.last_tick_ps);
        *next <= ps(now)
    }

    /// Queue `q` sent a frame of `len` bytes (without FCS).
    #[inline]
    pub(crate) fn sent(&mut self, q: usize, len: usize) {
        if let Some(rf) = self.factor(q) {
            let wire = (len as u64 + WIRE_OVERHEAD) * PS_PER_BYTE;
            self.next_ps[q] += wire * rf / u64::from(RF_ONE);
        }
    }

    /// The end of a tick at `now`.
    pub(crate) fn tick_done(&mut self, now: Duration) {
        self.last_tick_ps = ps(now);
    }
}
