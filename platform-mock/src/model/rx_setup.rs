//! A port's receive set-up: what its registers say about receiving a frame, derived once per
//! register change instead of once per frame (some twenty register reads and the arithmetic
//! on them).
//!
//! [`Nic::set`] drops it (every register write goes through it: software's, through
//! `mmio_write`, the model's own and a reset's); the receive path derives it again on its next
//! frame. Debug builds compare the kept set-up with a fresh one on every frame.

use super::*;

/// Port-wide receive registers, as the receive path uses them.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct RxSetup {
    /// The largest untagged frame with CRC: MAXFRS.MFS with HLREG0.JUMBOEN, else 1518
    /// (§8.2.3.22.13).
    pub(crate) max: u32,
    /// HLREG0.RXCRCSTRP.
    pub(crate) hl_strip: bool,
    /// RDRXCTL.CRCStrip (must equal HLREG0.RXCRCSTRP).
    pub(crate) rd_strip: bool,
    /// RXCTRL.RXEN.
    pub(crate) rxen: bool,
    pub(crate) mrqc: u32,
    /// RXCSUM.PCSD: the write-back's RSS field holds the hash, not the fragment checksum.
    pub(crate) pcsd: bool,
    pub(crate) fctrl: u32,
    pub(crate) vlnctrl: u32,
    /// RXDSTATCTRL's queue select (bits 4:0): the queue RXDGPC and RXDGBCL count.
    pub(crate) qsel: u32,
}

/// [`RxQueueSetup::q`] of no queue.
pub(crate) const NO_QUEUE: u16 = u16::MAX;

/// One receive queue's registers, as the receive path uses them (kept for the last queue a
/// frame went to).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct RxQueueSetup {
    /// The queue this is for ([`NO_QUEUE`]: none).
    pub(crate) q: u16,
    pub(crate) srrctl: u32,
    /// RXDCTL.VME: strip the VLAN tag into the write-back.
    pub(crate) vme: bool,
    /// Descriptors in the ring (RDLEN / 16).
    pub(crate) len: u32,
    /// The ring's bus address (RDBAH, RDBAL).
    pub(crate) ring: u64,
    /// The queue's statistics slot (RQSMR).
    pub(crate) slot: u32,
    /// The interrupt cause bit a write-back sets (IVAR, GPIE: `Nic::queue_cause_bit`).
    pub(crate) cause: u64,
}

impl Default for RxQueueSetup {
    fn default() -> Self {
        RxQueueSetup {
            q: NO_QUEUE,
            srrctl: 0,
            vme: false,
            len: 0,
            ring: 0,
            slot: 0,
            cause: 0,
        }
    }
}

impl RxSetup {
    /// What port `n`'s registers say now.
    pub(crate) fn derive(n: &Nic) -> RxSetup {
        let hlreg0 = n.r(HLREG0);
        RxSetup {
            max: if hlreg0 & HLREG0_JUMBOEN != 0 {
                n.r(MAXFRS) >> 16
            } else {
                1518
            },
            hl_strip: hlreg0 & HLREG0_RXCRCSTRP != 0,
            rd_strip: n.r(RDRXCTL) & RDRXCTL_CRCSTRIP != 0,
            rxen: n.r(RXCTRL) & RXCTRL_RXEN != 0,
            mrqc: n.r(MRQC),
            pcsd: n.r(RXCSUM) & RXCSUM_PCSD != 0,
            fctrl: n.r(FCTRL),
            vlnctrl: n.r(VLNCTRL),
            qsel: n.r(RXDSTATCTRL) & 0x1F,
        }
    }

    /// VLNCTRL.VET: the type that marks an 802.1Q tag.
    #[inline(always)]
    pub(crate) fn vet(&self) -> u16 {
        (self.vlnctrl & 0xFFFF) as u16
    }
}

impl RxQueueSetup {
    /// What queue `q`'s registers (`q` < 128) say now.
    pub(crate) fn derive(n: &Nic, q: usize) -> RxQueueSetup {
        RxQueueSetup {
            q: q as u16,
            srrctl: n.r(rx_base(q as u32) + Q_SRRCTL),
            vme: n.r(rx_base(q as u32) + Q_DCTL) & RXDCTL_VME != 0,
            len: n.ring_len(false, q),
            ring: n.ring_base(false, q),
            slot: n.stat_slot(RQSMR, q),
            cause: n.queue_cause_bit(false, q),
        }
    }
}

impl Nic {
    /// Makes [`Nic::rxs`] current (after a register write).
    #[inline(always)]
    pub(crate) fn rx_setup(&mut self) {
        if !self.rxs_valid {
            self.derive_rx_setup();
        }
        debug_assert_eq!(self.rxs, RxSetup::derive(self), "kept receive set-up");
    }

    #[cold]
    #[inline(never)]
    fn derive_rx_setup(&mut self) {
        self.rxs = RxSetup::derive(self);
        self.rxq.q = NO_QUEUE;
        self.rx_memo.valid = false;
        self.rxs_valid = true;
    }

    /// Makes [`Nic::rxq`] current for queue `q` (< 128), and [`Nic::rxs`].
    #[inline(always)]
    pub(crate) fn rx_queue_setup(&mut self, q: usize) {
        self.rx_setup();
        if usize::from(self.rxq.q) != q {
            self.rxq = RxQueueSetup::derive(self, q);
        }
        debug_assert_eq!(self.rxq, RxQueueSetup::derive(self, q), "kept queue set-up");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every register write drops the kept set-up: writing each register the set-up reads,
    /// with random values, the next look derives what the registers say.
    #[test]
    fn a_register_write_drops_the_kept_set_up() {
        let mut n = Nic::new(NicConfig::default(), Duration::ZERO);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let port = [
            HLREG0,
            MAXFRS,
            RDRXCTL,
            RXCTRL,
            MRQC,
            RXCSUM,
            FCTRL,
            VLNCTRL,
            RXDSTATCTRL,
            GPIE,
        ];
        for step in 0..2000 {
            let q = (rnd() % 3) as usize * 61;
            let b = rx_base(q as u32);
            let regs = [
                b + Q_SRRCTL,
                b + Q_DCTL,
                b + Q_LEN,
                b + Q_BAL,
                b + Q_BAH,
                RQSMR + 4 * (q as u32 / 4),
                IVAR + 4 * (q as u32 / 2),
            ];
            let all: Vec<u32> = port.iter().chain(regs.iter()).copied().collect();
            let off = all[(rnd() % all.len() as u64) as usize];
            n.set(off, rnd() as u32);
            n.rx_queue_setup(q);
            assert_eq!(n.rxs, RxSetup::derive(&n), "step {step}");
            assert_eq!(n.rxq, RxQueueSetup::derive(&n, q), "step {step}");
        }
        // The kept cause bit is what `queue_cause` as it was (OR-ing the bit itself) sets.
        for step in 0..2000 {
            let q = (rnd() % 128) as usize;
            let tx = rnd() % 2 == 0;
            n.set(IVAR + 4 * (q as u32 / 2), rnd() as u32);
            n.set(GPIE, rnd() as u32);
            let ivar = n.r(IVAR + 4 * (q as u32 / 2));
            let entry = (ivar >> (16 * (q as u32 % 2) + if tx { 8 } else { 0 })) & 0xFF;
            let mut old = 0u64;
            if entry & 0x80 != 0 {
                let multi = n.r(GPIE) & GPIE_MULTIPLE_MSIX != 0;
                old |= 1 << if multi { entry & 0x3F } else { entry & 0xF };
            }
            assert_eq!(n.queue_cause_bit(tx, q), old, "step {step}");
            n.irq.qcause = 0;
            n.queue_cause(tx, q);
            assert_eq!(n.irq.qcause, old, "step {step}");
        }
        // A reset, and the model's own writes (DMA init done) too.
        n.reset_state();
        n.rx_queue_setup(0);
        assert_eq!(n.rxs, RxSetup::derive(&n));
        assert_eq!(n.rxq, RxQueueSetup::derive(&n, 0));
    }
}
