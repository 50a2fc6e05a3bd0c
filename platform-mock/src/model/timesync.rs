//! IEEE 1588 time sync (datasheet §7.9, registers §8.2.3.26–27): SYSTIM advances by
//! TIMINCA.IV every TIMINCA.IP periods of the 10 Gb/s clock (6.4 ns); a frame leaving with
//! MAC.1588 in its descriptor latches SYSTIM into TXSTMPL/H while TSYNCTXCTL.EN is set, a PTP
//! frame arriving latches it into RXSTMPL/H while TSYNCRXCTL.EN is set and TYPE and RXMTRL
//! select it. Each pair holds one time stamp: VALID stays set and later frames go unstamped
//! until software reads the high register. Reading SYSTIML latches SYSTIMH.

use std::time::Duration;

use super::{Core, Nic, ViolationKind};
use crate::regs::{ETQF, RXMTRL, TSYNCRXCTL, TSYNCTXCTL};

pub(crate) const TXSTMPL: u32 = 0x08C04;
pub(crate) const TXSTMPH: u32 = 0x08C08;
pub(crate) const SYSTIML: u32 = 0x08C0C;
pub(crate) const SYSTIMH: u32 = 0x08C10;
pub(crate) const TIMINCA: u32 = 0x08C14;
pub(crate) const RXSTMPL: u32 = 0x051E8;
pub(crate) const RXSTMPH: u32 = 0x051A4;
const VALID: u32 = 1;
const EN: u32 = 1 << 4;
const RX_TYPE: u32 = 0b111 << 1;
/// The clock's period at 10 Gb/s (and without link), in picoseconds.
const PERIOD_PS: u64 = 6400;
/// Descriptor `cmd_type_len` bit 19: MAC.1588, stamp this frame.
pub(crate) const TX_CMD_TSTAMP: u32 = 1 << 19;
/// ETQF: filter enable (31), 1588 time stamp (30), EtherType (15:0).
const ETQF_EN: u32 = 1 << 31;
const ETQF_1588: u32 = 1 << 30;
const ETHERTYPE_PTP: u16 = 0x88F7;

/// The time sync unit of one port.
#[derive(Default)]
pub(crate) struct Clock {
    /// SYSTIM at virtual time `at`.
    base: u64,
    at: Duration,
    timinca: u32,
    /// SYSTIMH as latched by the last read of SYSTIML.
    high: Option<u32>,
    tx_ctl: u32,
    rx_ctl: u32,
    tx_stamp: Option<u64>,
    rx_stamp: Option<u64>,
}

/// The registers this module answers for.
pub(crate) fn owns(off: u32) -> bool {
    matches!(
        off,
        TSYNCTXCTL
            | TXSTMPL
            | TXSTMPH
            | SYSTIML
            | SYSTIMH
            | TIMINCA
            | TSYNCRXCTL
            | RXSTMPL
            | RXSTMPH
    )
}

impl Clock {
    /// SYSTIM at `now`: IV added once per IP periods since the last write (IP = 0: stopped).
    fn systim(&self, now: Duration) -> u64 {
        let ip = u64::from(self.timinca >> 24);
        let iv = u64::from(self.timinca & 0x00FF_FFFF);
        if ip == 0 {
            return self.base;
        }
        let elapsed = now.saturating_sub(self.at).as_nanos() as u64 * 1000;
        self.base
            .wrapping_add((elapsed / (ip * PERIOD_PS)).wrapping_mul(iv))
    }

    /// Restarts counting at `now` from `value`.
    fn set(&mut self, now: Duration, value: u64) {
        self.base = value;
        self.at = now;
    }

    pub(crate) fn read(&mut self, now: Duration, off: u32) -> u32 {
        match off {
            TSYNCTXCTL => self.tx_ctl | if self.tx_stamp.is_some() { VALID } else { 0 },
            TSYNCRXCTL => self.rx_ctl | if self.rx_stamp.is_some() { VALID } else { 0 },
            TXSTMPL => self.tx_stamp.unwrap_or(0) as u32,
            TXSTMPH => (self.tx_stamp.take().unwrap_or(0) >> 32) as u32,
            RXSTMPL => self.rx_stamp.unwrap_or(0) as u32,
            RXSTMPH => (self.rx_stamp.take().unwrap_or(0) >> 32) as u32,
            SYSTIML => {
                let t = self.systim(now);
                self.high = Some((t >> 32) as u32);
                t as u32
            }
            SYSTIMH => self.high.take().unwrap_or((self.systim(now) >> 32) as u32),
            TIMINCA => self.timinca,
            _ => 0,
        }
    }

    pub(crate) fn write(&mut self, core: &mut Core, i: usize, now: Duration, off: u32, v: u32) {
        let t = self.systim(now);
        match off {
            TSYNCTXCTL => self.tx_ctl = v & EN,
            TSYNCRXCTL => {
                let ty = (v & RX_TYPE) >> 1;
                if v & EN != 0 && matches!(ty, 0b011 | 0b100 | 0b110 | 0b111) {
                    core.violate(
                        i,
                        ViolationKind::InvalidConfig,
                        format!("TSYNCRXCTL.TYPE {ty:#05b} is reserved on the 82599"),
                    );
                }
                self.rx_ctl = v & (EN | RX_TYPE);
            }
            SYSTIML => self.set(now, (t & !0xFFFF_FFFF) | u64::from(v)),
            SYSTIMH => self.set(now, (t & 0xFFFF_FFFF) | u64::from(v) << 32),
            TIMINCA => {
                // The time counted so far stays; the new increment applies from now.
                self.set(now, t);
                self.timinca = v;
            }
            _ => core.violate(
                i,
                ViolationKind::ReadOnlyRegister,
                format!("write {v:#x} to read-only time stamp register {off:#x}"),
            ),
        }
    }
}

/// Is transmit time stamping on (TSYNCTXCTL.EN)? If not, [`tx_frame`] does nothing.
#[inline(always)]
pub(crate) fn tx_stamping(n: &Nic) -> bool {
    n.clock.tx_ctl & EN != 0
}

/// A frame left NIC `n` at `now`; `cmd` is its first descriptor's `cmd_type_len`.
pub(crate) fn tx_frame(n: &mut Nic, now: Duration, cmd: u32) {
    let c = &mut n.clock;
    if cmd & TX_CMD_TSTAMP != 0 && c.tx_ctl & EN != 0 && c.tx_stamp.is_none() {
        c.tx_stamp = Some(c.systim(now));
    }
}

/// A frame (without FCS) arrives on NIC `n`'s wire at `now`. The test whether receive time
/// stamping is enabled and its register free inline (a call per frame cost 18 instructions
/// of a forwarded packet), the frame's look-up out of line.
#[inline(always)]
pub(crate) fn rx_frame(n: &mut Nic, now: Duration, frame: &[u8]) {
    if n.clock.rx_ctl & EN == 0 || n.clock.rx_stamp.is_some() {
        return;
    }
    rx_stamp(n, now, frame);
}

/// Whether [`rx_frame`] does nothing for every frame until software reads a register:
/// receive time stamping is off, or RXSTMPH holds a stamp (only a register read frees it).
#[inline(always)]
pub(crate) fn rx_stamps_idle(n: &Nic) -> bool {
    n.clock.rx_ctl & EN == 0 || n.clock.rx_stamp.is_some()
}

/// [`rx_frame`] with receive time stamping enabled and RXSTMPL/H free: stamps a PTP message
/// that TSYNCRXCTL.Type and RXMTRL select.
#[inline(never)]
fn rx_stamp(n: &mut Nic, now: Duration, frame: &[u8]) {
    let l2_filter = (0..8).any(|k| {
        let q = n.r(ETQF + 4 * k);
        q & (ETQF_EN | ETQF_1588) == ETQF_EN | ETQF_1588 && q as u16 == ETHERTYPE_PTP
    });
    let Some((l2, ptp)) = ptp_message(frame, l2_filter, n.r(RXMTRL)) else {
        return;
    };
    let mtrl = n.r(RXMTRL);
    let (msgt, ctrlt) = ((mtrl >> 8) as u8, mtrl as u8);
    let v2 = ptp.len() >= 34 && ptp[1] & 0x0F == 2;
    let v1 = ptp.len() >= 34 && u16::from_be_bytes([ptp[0], ptp[1]]) == 1;
    let msg_type = ptp[0] & 0x0F;
    let stamp = match (n.clock.rx_ctl & RX_TYPE) >> 1 {
        0b000 => l2 && v2 && msg_type == msgt,
        0b001 => !l2 && v1 && ptp[32] == ctrlt,
        0b010 => v2 && msg_type == msgt,
        0b101 => v2 && msg_type & 0x8 == 0,
        _ => false,
    };
    if stamp {
        let c = &mut n.clock;
        c.rx_stamp = Some(c.systim(now));
    }
}

/// The PTP message of a frame and whether it came over L2: EtherType 0x88F7 with an ETQF
/// filter that has its 1588 bit set, or UDP over IPv4 to RXMTRL.UDPT (319 when 0).
fn ptp_message(frame: &[u8], l2_filter: bool, mtrl: u32) -> Option<(bool, &[u8])> {
    let mut l3 = 14;
    let mut ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    if ethertype == 0x8100 {
        ethertype = u16::from_be_bytes([*frame.get(16)?, *frame.get(17)?]);
        l3 = 18;
    }
    if ethertype == ETHERTYPE_PTP {
        return l2_filter.then(|| (true, frame.get(l3..).unwrap_or(&[])));
    }
    if ethertype != 0x0800 || *frame.get(l3 + 9)? != 17 {
        return None;
    }
    let ihl = usize::from(frame.get(l3)? & 0xF) * 4;
    let udp = l3 + ihl;
    let port = u16::from_be_bytes([*frame.get(udp + 2)?, *frame.get(udp + 3)?]);
    let want = match (mtrl >> 16) as u16 {
        0 => 319,
        p => p,
    };
    (port == want).then(|| (false, frame.get(udp + 8..).unwrap_or(&[])))
}
