//! One port's state: register file, queues, reset, timed events, and the shared core.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use super::*;
use crate::dma::{DmaFault, DmaSpace};

/// Pending change of a queue's ENABLE state (the read-back lags the write).
#[derive(Clone, Copy)]
pub(crate) struct Pending {
    pub(crate) value: bool,
    pub(crate) reads_left: u8,
    pub(crate) deadline: Duration,
}

#[derive(Clone, Copy, Default)]
pub(crate) struct Queue {
    pub(crate) head: u32,
    pub(crate) tail: u32,
    /// Last ENABLE value written by software.
    pub(crate) en_target: bool,
    /// Real state.
    pub(crate) en: bool,
    pub(crate) pending: Option<Pending>,
    /// TX only: the two offload contexts (§7.2.3.2.3).
    pub(crate) ctx: [super::offload::TxContext; 2],
}

/// A frame waiting in the RX packet buffer.
pub(crate) struct Held {
    pub(crate) meta: super::rx::RxMeta,
    pub(crate) len: usize,
    pub(crate) buf: Vec<u8>,
}

#[derive(Default)]
pub(crate) struct Faults {
    pub(crate) reset_never: bool,
    pub(crate) autord_never: bool,
    pub(crate) dmainit_never: bool,
    pub(crate) queue_stuck: bool,
    pub(crate) link_never: bool,
    pub(crate) secrx_never: bool,
    pub(crate) nvm_missing: bool,
    pub(crate) stall_tx: [u64; 2],
    pub(crate) spurious_tx: [u64; 2],
    pub(crate) rx_wb: Option<(RxCorruption, u32)>,
    pub(crate) rogue: Option<super::rogue::Rogue>,
}

pub(crate) fn bit_get(m: &[u64; 2], q: usize) -> bool {
    q < 128 && m[q / 64] & (1 << (q % 64)) != 0
}

pub(crate) fn bit_set(m: &mut [u64; 2], q: usize) {
    if q < 128 {
        m[q / 64] |= 1 << (q % 64);
    }
}

/// Statistics the data path counts per packet into plain `u64`s ([`Nic::acc`]), indexed by
/// these constants; [`Nic::fold_stats`] adds them to the registers before software can see
/// them. Clamped additions compose (min(min(r + a, M) + b, M) = min(r + a + b, M) for a, b
/// >= 0), so the registers read the same as with a saturating update per packet (§8.2.3.23).
pub(crate) mod st {
    pub(crate) const TPR: usize = 0;
    pub(crate) const TORL: usize = 1;
    pub(crate) const RXNFGPC: usize = 2;
    pub(crate) const RXNFGBCL: usize = 3;
    pub(crate) const GPRC: usize = 4;
    pub(crate) const GORCL: usize = 5;
    pub(crate) const BPRC: usize = 6;
    pub(crate) const MPRC: usize = 7;
    /// PRC64..PRC1522 (6, by `size_bucket`).
    pub(crate) const PRC64: usize = 8;
    pub(crate) const RXDGPC: usize = 14;
    pub(crate) const RXDGBCL: usize = 15;
    pub(crate) const GPTC: usize = 16;
    pub(crate) const GOTCL: usize = 17;
    pub(crate) const TPT: usize = 18;
    /// PTC64..PTC1522 (6).
    pub(crate) const PTC64: usize = 19;
    pub(crate) const BPTC: usize = 25;
    pub(crate) const MPTC: usize = 26;
    pub(crate) const TXDGPC: usize = 27;
    pub(crate) const TXDGBCL: usize = 28;
    /// QPRC, QBRC, QPTC, QBTC by statistics slot (16 each).
    pub(crate) const QPRC: usize = 29;
    pub(crate) const QBRC: usize = 45;
    pub(crate) const QPTC: usize = 61;
    pub(crate) const QBTC: usize = 77;
    /// Accumulators with a register each (`stat_reg`).
    pub(crate) const N: usize = 93;
    /// Combined accumulators: what a good packet adds to several of the above at once,
    /// counted once and added to each of them ([`COMBINED`]) when folded.
    pub(crate) const RX_GOOD: usize = 93;
    pub(crate) const RX_GOOD_BYTES: usize = 94;
    pub(crate) const TX_GOOD: usize = 95;
    pub(crate) const TX_GOOD_BYTES: usize = 96;
    /// All accumulators.
    pub(crate) const ALL: usize = 97;
    /// Each combined accumulator and the accumulators it stands for: a received frame that
    /// passed the size checks and the filters (TPR, RXNFGPC, GPRC; bytes TORL, RXNFGBCL), a
    /// sent frame of at least 64 bytes (GPTC, TPT, TXDGPC; bytes GOTCL, TXDGBCL).
    pub(crate) const COMBINED: [(usize, &[usize]); 4] = [
        (RX_GOOD, &[TPR, RXNFGPC, GPRC]),
        (RX_GOOD_BYTES, &[TORL, RXNFGBCL]),
        (TX_GOOD, &[GPTC, TPT, TXDGPC]),
        (TX_GOOD_BYTES, &[GOTCL, TXDGBCL]),
    ];
}

/// The register of accumulator `k` ([`st`]) and whether it is a 36-bit counter (low half).
pub(crate) fn stat_reg(k: usize) -> (u32, bool) {
    use crate::regs as r;
    let s = |base: usize| (k - base) as u32;
    match k {
        st::TPR => (r::TPR, false),
        st::TORL => (r::TORL, true),
        st::RXNFGPC => (r::RXNFGPC, false),
        st::RXNFGBCL => (r::RXNFGBCL, true),
        st::GPRC => (r::GPRC, false),
        st::GORCL => (r::GORCL, true),
        st::BPRC => (r::BPRC, false),
        st::MPRC => (r::MPRC, false),
        8..=13 => (r::PRC64 + 4 * s(st::PRC64), false),
        st::RXDGPC => (r::RXDGPC, false),
        st::RXDGBCL => (r::RXDGBCL, true),
        st::GPTC => (r::GPTC, false),
        st::GOTCL => (r::GOTCL, true),
        st::TPT => (r::TPT, false),
        19..=24 => (r::PTC64 + 4 * s(st::PTC64), false),
        st::BPTC => (r::BPTC, false),
        st::MPTC => (r::MPTC, false),
        st::TXDGPC => (r::TXDGPC, false),
        st::TXDGBCL => (r::TXDGBCL, true),
        29..=44 => (r::QPRC + 0x40 * s(st::QPRC), false),
        45..=60 => (r::QBRC_L + 0x40 * s(st::QBRC), true),
        61..=76 => (r::QPTC + 4 * s(st::QPTC), false),
        _ => (r::QBTC_L + 8 * s(st::QBTC), true),
    }
}

pub(crate) struct Nic {
    pub cfg: NicConfig,
    /// Statistics counted since the last [`Nic::fold_stats`] ([`st`]).
    pub(crate) acc: [u64; st::ALL],
    /// Packets counted into `acc` since the last fold (non-zero: a fold is due before
    /// software reads a register).
    pub(crate) acc_packets: u64,
    pub(crate) config: crate::pci::ConfigSpace,
    /// The register file, one word per 4 bytes of BAR0 (a fixed size, so that the accessors
    /// at constant offsets need no bounds check).
    pub(crate) regs: Box<[u32; REG_WORDS]>,
    /// The 128 RX and TX queues (a fixed size: an index checked against 128 needs no other
    /// bounds check).
    pub(crate) rx: Box<[Queue; 128]>,
    pub(crate) tx: Box<[Queue; 128]>,
    pub(crate) irq: super::interrupts::Irq,
    /// The NVM image (§6), read through EERD.
    pub(crate) eeprom: Vec<u16>,
    /// An EERD read in progress: DONE shows after one more read of EERD or at this time.
    pub(crate) eerd_due: Option<Duration>,
    /// The EEPROM's end of the pins software drives through EEC once granted.
    pub(crate) spi: super::spi_eeprom::SpiEeprom,
    /// The SFP+ cage's I2C bus.
    pub(crate) i2c: crate::sfp::I2cBus,
    pub(crate) reset_until: Option<Duration>,
    pub(crate) autord_at: Option<Duration>,
    pub(crate) dmaidone_at: Option<Duration>,
    pub(crate) link_at: Option<Duration>,
    pub(crate) link_up: bool,
    /// AUTOC and AUTOC2 as applied at the last reset or AUTOC.Restart_AN (the starred link
    /// fields take effect only then, §8.2.3.22.19).
    pub(crate) link_mode: (u32, u32),
    /// The cabled partner sends no light (its laser is off): it reports a remote fault.
    pub(crate) partner_dark: bool,
    /// SECRX_RDY reads 1 from this time on (while RX_DIS stays set).
    pub(crate) secrx_rdy_at: Option<Duration>,
    pub(crate) plugged: bool,
    pub(crate) pending_q: Vec<(bool, u16)>,
    /// A bit per TX queue whose `en` is set, so that a tick visits only those.
    pub(crate) tx_enabled: [u64; 2],
    pub faults: Faults,
    pub(crate) held: VecDeque<Held>,
    pub(crate) held_bytes: usize,
    pub(crate) pool: Vec<Vec<u8>>,
    pub wire: WireCounters,
    pub transmitted: VecDeque<Vec<u8>>,
    pub(crate) once: HashSet<(ViolationKind, u32)>,
    pub(crate) rar_cache: Vec<[u8; 6]>,
    pub(crate) rar_dirty: bool,
    /// RSSRK's table and RETA decoded, for the receive path (rebuilt when dirty).
    pub(crate) rss: crate::rss::Rss,
    /// The transmit rate scheduler (§7.7.2.2).
    pub(crate) rate: Box<super::ratelimit::RateScheduler>,
    /// The IEEE 1588 clock and time stamps (§7.9).
    pub(crate) clock: super::timesync::Clock,
    /// Lane `lane.0` of `lane.1` (`crate::Sim::with_lanes`): queues `q % lane.1 == lane.0` are
    /// this instance's; frames for the others go to `foreign`.
    pub(crate) lane: (u16, u16),
    /// Frames received for another lane's queue, already counted here.
    pub(crate) foreign: Vec<Held>,
    /// The receive set-up (`rx_setup`), valid while `rxs_valid`; [`Nic::set`] clears it.
    pub(crate) rxs: super::rx_setup::RxSetup,
    pub(crate) rxs_valid: bool,
    /// The set-up of the last queue a frame went to, valid with `rxs`.
    pub(crate) rxq: super::rx_setup::RxQueueSetup,
    /// The filters' verdict and the parse of the last frame (`rx_memo`), valid with `rxs`.
    pub(crate) rx_memo: super::rx_memo::RxMemo,
}

/// Shared non-NIC state: clock, DMA space, violation log, scratch buffers.
pub(crate) struct Core {
    pub now: Duration,
    pub dma: DmaSpace,
    pub violations: Vec<Violation>,
    pub(crate) seen: HashSet<(usize, String)>,
    pub suppressed: u64,
    pub(crate) rx_scratch: Vec<u8>,
    /// A received frame without its VLAN tag (RXDCTL.VME).
    pub(crate) rx_strip: Vec<u8>,
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

    pub(crate) fn dma_fault(&mut self, nic: usize, ctx: &str, f: DmaFault) {
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

// ---------------------------------------------------------------------------------------------
// NIC: registers, reset, events

impl Nic {
    pub(crate) fn new(cfg: NicConfig, now: Duration) -> Self {
        let mut serial = *b"SIM0000000000000";
        for (k, b) in cfg.mac[3..].iter().enumerate() {
            let hex = format!("{b:02X}");
            serial[10 + 2 * k..12 + 2 * k].copy_from_slice(hex.as_bytes());
        }
        let mut config = crate::pci::ConfigSpace::new(cfg.device_id, cfg.subsystem_id, cfg.mac);
        if cfg.pci_enabled {
            config.set_command(crate::pci::CMD_MEM | crate::pci::CMD_BME);
        }
        let mut n = Nic {
            config,
            eeprom: crate::eeprom::image(cfg.mac),
            eerd_due: None,
            spi: Default::default(),
            i2c: crate::sfp::I2cBus::new(cfg.module, &serial),
            irq: super::interrupts::Irq::new(),
            cfg,
            acc: [0; st::ALL],
            acc_packets: 0,
            regs: vec![0u32; REG_WORDS]
                .into_boxed_slice()
                .try_into()
                .expect("REG_WORDS registers"),
            rx: Box::new([Queue::default(); 128]),
            tx: Box::new([Queue::default(); 128]),
            reset_until: None,
            autord_at: None,
            dmaidone_at: None,
            link_at: None,
            link_up: false,
            link_mode: (0, 0),
            partner_dark: false,
            secrx_rdy_at: None,
            plugged: true,
            pending_q: Vec::new(),
            tx_enabled: [0; 2],
            faults: Faults::default(),
            held: VecDeque::new(),
            held_bytes: 0,
            pool: Vec::new(),
            wire: WireCounters::default(),
            transmitted: VecDeque::new(),
            once: HashSet::new(),
            rar_cache: Vec::new(),
            rar_dirty: true,
            rss: Default::default(),
            rate: Box::default(),
            clock: Default::default(),
            lane: (0, 1),
            foreign: Vec::new(),
            rxs: Default::default(),
            rxs_valid: false,
            rxq: Default::default(),
            rx_memo: Default::default(),
        };
        n.reset_state();
        // LAN Power Good: the NVM's ESDP (kept across software resets from now on) and MPSAR,
        // which has no defined reset value.
        n.set(ESDP, n.cfg.nvm.esdp);
        let mut seed = match n.cfg.mpsar {
            crate::board::MpsarPowerOn::Random(seed) => Some(seed | 1),
            crate::board::MpsarPowerOn::Zero => None,
        };
        for k in 0..256 {
            let v = seed.as_mut().map_or(0, |x| {
                // xorshift64*: repeatable noise.
                *x ^= *x >> 12;
                *x ^= *x << 25;
                *x ^= *x >> 27;
                (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
            });
            n.set(MPSAR + 4 * k, v);
        }
        // Firmware reports itself valid (FWSM.FW_Val_bit; Linux warns "firmware error"
        // otherwise); FW_mode 001b when manageability firmware runs.
        let mode = u32::from(n.cfg.manageability) << FWSM_FW_MODE_SHIFT;
        n.set(FWSM, FWSM_FW_VAL | mode);
        // Power-on: the EEPROM auto-read and DMA init are done, the link trains.
        n.set_bits(EEC, EEC_AUTO_RD | EEC_DONE_BITS);
        n.set_bits(RDRXCTL, RDRXCTL_DMAIDONE);
        n.link_at = Some(now + n.cfg.link_up_delay);
        n
    }

    #[inline(always)]
    pub(crate) fn r(&self, off: u32) -> u32 {
        self.regs[(off / 4) as usize]
    }

    /// Writes a register; the receive set-up derived from the registers is derived again.
    #[inline(always)]
    pub(crate) fn set(&mut self, off: u32, v: u32) {
        self.regs[(off / 4) as usize] = v;
        self.rxs_valid = false;
    }

    /// Sets bits of a register (as [`Nic::set`]).
    #[inline(always)]
    fn set_bits(&mut self, off: u32, bits: u32) {
        self.set(off, self.r(off) | bits);
    }

    /// Power-on values of everything CTRL.RST resets.
    #[inline(never)]
    pub(crate) fn reset_state(&mut self) {
        // Not reset by CTRL.RST: the semaphores, FWSM, ESDP; MPSAR has no reset value, so it
        // keeps whatever it held.
        let keep = [SWSM, FWSM, SW_FW_SYNC, ESDP];
        let saved: Vec<u32> = keep.iter().map(|&o| self.r(o)).collect();
        let mpsar: Vec<u32> = (0..256).map(|k| self.r(MPSAR + 4 * k)).collect();
        self.regs.fill(0);
        self.rxs_valid = false;
        self.acc = [0; st::ALL];
        self.acc_packets = 0;
        *self.rate = Default::default();
        self.clock = Default::default();
        for (o, v) in keep.iter().zip(saved) {
            self.set(*o, v);
        }
        for (k, v) in (0..256).zip(mpsar) {
            self.set(MPSAR + 4 * k, v);
        }
        self.set(MMNGC, u32::from(self.cfg.mng_veto) * MMNGC_MNG_VETO);
        self.secrx_rdy_at = None;
        let present = if self.faults.nvm_missing {
            0
        } else {
            EEC_EE_PRES
        };
        self.set(
            EEC,
            present | EEC_FIXED | (crate::eeprom::EE_SIZE_CODE << EEC_SIZE_SHIFT),
        );
        // I2C lines released (bus idle).
        self.set(I2CCTL, I2C_CLK_OUT | I2C_DATA_OUT);
        self.i2c.drive(true, true);
        self.eerd_due = None;
        self.spi = Default::default();
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
        // The NVM's link mode, applied as the reset completes.
        self.set(AUTOC, self.cfg.nvm.autoc);
        self.set(AUTOC2, self.cfg.nvm.autoc2);
        self.link_mode = (self.cfg.nvm.autoc, self.cfg.nvm.autoc2);
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
        self.rss.dirty = true;
        self.rx.fill(Queue::default());
        self.tx.fill(Queue::default());
        self.tx_enabled = [0; 2];
        self.pending_q.clear();
        self.irq.reset_regs();
        while let Some(h) = self.held.pop_front() {
            self.pool.push(h.buf);
        }
        self.held_bytes = 0;
    }

    /// EEC.EE_GNT: software asked for the EEPROM's pins and the auto-read is not using them
    /// (§8.2.3.2.1).
    pub(crate) fn eeprom_granted(&self) -> bool {
        let eec = self.r(EEC);
        eec & EEC_EE_REQ != 0 && eec & EEC_AUTO_RD != 0
    }

    pub(crate) fn set_link_down(&mut self) {
        if self.link_up {
            self.link_up = false;
            self.irq.other |= EICR_LSC;
        }
        self.link_at = None;
    }

    /// Runs every timed event that is due at `now`.
    #[inline(never)]
    pub(crate) fn run_events(&mut self, now: Duration) {
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
                self.set_bits(EEC, EEC_AUTO_RD | EEC_DONE_BITS);
            }
        }
        if let Some(t) = self.dmaidone_at {
            if t <= now && !self.faults.dmainit_never {
                self.dmaidone_at = None;
                self.set_bits(RDRXCTL, RDRXCTL_DMAIDONE);
            }
        }
        if let Some(t) = self.link_at {
            if t <= now && self.reset_until.is_none() && !self.link_possible() {
                // Training found no signal in this mode: it starts again only when something
                // changes (AUTOC.Restart_AN, a reset, the laser).
                self.link_at = None;
            } else if t <= now
                && self.plugged
                && !self.faults.link_never
                && self.reset_until.is_none()
            {
                self.link_at = None;
                if !self.link_up {
                    self.link_up = true;
                    self.irq.other |= EICR_LSC;
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
    pub(crate) fn try_apply_enable(&mut self, tx: bool, q: usize) -> bool {
        let stuck = self.faults.queue_stuck;
        let qs = if tx { &mut self.tx[q] } else { &mut self.rx[q] };
        let Some(p) = qs.pending else { return true };
        if p.value && stuck {
            return false;
        }
        qs.pending = None;
        if p.value && !qs.en {
            // Enabling a queue initialises its internal state (§8.2.3.9.10): no context yet.
            qs.ctx = Default::default();
        }
        qs.en = p.value;
        if tx {
            let bit = 1 << (q % 64);
            if p.value {
                self.tx_enabled[q / 64] |= bit;
            } else {
                self.tx_enabled[q / 64] &= !bit;
            }
        }
        true
    }

    /// The device may not master the bus: CTRL.PCIe Master Disable, or Bus Master Enable clear
    /// in config space (PCI 3.0 §6.2.2: no master requests without BME).
    #[inline(always)]
    pub(crate) fn dma_blocked(&self) -> bool {
        self.r(CTRL) & CTRL_MASTER_DISABLE != 0 || !self.config.bus_master()
    }

    pub(crate) fn link_is_up(&self) -> bool {
        self.link_up
    }

    /// The board, the applied link mode, the module and the laser allow a 10 Gb/s link
    /// (rules in [`crate::board`]).
    pub(crate) fn link_possible(&self) -> bool {
        let lms = self.link_mode.0 & (0b111 << AUTOC_LMS_SHIFT);
        if !crate::board::media_is_sfp(self.cfg.device_id) {
            return matches!(lms >> AUTOC_LMS_SHIFT, 0b001 | 0b100 | 0b110 | 0b111);
        }
        let serial = lms == AUTOC_LMS_10G_SERIAL
            && self.link_mode.1 & crate::board::AUTOC2_PMA_SERIAL_MASK
                == crate::board::AUTOC2_PMA_SERIAL_SFI;
        serial && self.i2c.present() && self.transmits() && !self.partner_dark
    }

    /// The port sends a signal: a copper cable always, an optical module with its laser on;
    /// backplane boards have no laser.
    pub(crate) fn transmits(&self) -> bool {
        !crate::board::media_is_sfp(self.cfg.device_id)
            || !self.cfg.module.has_laser()
            || self.laser_on()
    }

    /// SDP3 (the module's TX_DISABLE) is an output driven low.
    pub(crate) fn laser_on(&self) -> bool {
        let esdp = self.r(ESDP);
        esdp & crate::board::ESDP_SDP3_DIR != 0 && esdp & crate::board::ESDP_SDP3 == 0
    }

    /// Something the link depends on changed without a retrain (the laser): drop the link
    /// when it is no longer possible; bring it up (after the training time) when it becomes
    /// possible again.
    pub(crate) fn link_conditions_changed(&mut self, now: Duration) {
        if !self.link_possible() {
            self.set_link_down();
        } else if !self.link_up
            && self.link_at.is_none()
            && self.plugged
            && self.reset_until.is_none()
        {
            self.link_at = Some(now + self.cfg.link_up_delay);
        }
    }

    #[inline]
    pub(crate) fn ring_len(&self, tx: bool, q: usize) -> u32 {
        let base = if tx {
            tx_base(q as u32)
        } else {
            rx_base(q as u32)
        };
        self.r(base + Q_LEN) / 16
    }

    #[inline]
    pub(crate) fn ring_base(&self, tx: bool, q: usize) -> u64 {
        let base = if tx {
            tx_base(q as u32)
        } else {
            rx_base(q as u32)
        };
        u64::from(self.r(base + Q_BAH)) << 32 | u64::from(self.r(base + Q_BAL) & !0x7F)
    }

    #[inline]
    pub(crate) fn inc(&mut self, off: u32, n: u32) {
        let r = &mut self.regs[(off / 4) as usize];
        *r = r.saturating_add(n);
    }

    #[inline]
    pub(crate) fn add36(&mut self, low: u32, n: u64) {
        let l = u64::from(self.r(low));
        let h = u64::from(self.r(low + 4) & 0xF);
        // Both terms below 2^36 after `min`: the sum cannot overflow, and saturates the same.
        const MAX: u64 = (1 << 36) - 1;
        let v = (((h << 32) | l) + n.min(MAX)).min(MAX);
        self.set(low, v as u32);
        self.set(low + 4, (v >> 32) as u32);
    }

    /// Adds the statistics counted in [`Nic::acc`] to their registers, with the registers'
    /// saturation (the same values as adding them one packet at a time).
    #[inline(never)]
    pub(crate) fn fold_stats(&mut self) {
        // The combined accumulators into their parts first (sums of at most 2^32 packets of
        // below 2^15 bytes each, `bound_stats`: no overflow).
        for (c, parts) in st::COMBINED {
            let v = std::mem::take(&mut self.acc[c]);
            for &k in parts {
                self.acc[k] += v;
            }
        }
        for k in 0..st::N {
            let v = std::mem::take(&mut self.acc[k]);
            if v == 0 {
                continue;
            }
            match stat_reg(k) {
                (off, true) => self.add36(off, v),
                (off, false) => {
                    let r = &mut self.regs[(off / 4) as usize];
                    *r = (u64::from(*r) + v).min(u64::from(u32::MAX)) as u32;
                }
            }
        }
        self.acc_packets = 0;
    }

    /// Folds the statistics when any are pending (before software reads a register).
    #[inline(always)]
    pub(crate) fn sync_stats(&mut self) {
        if self.acc_packets != 0 {
            self.fold_stats();
        }
    }

    /// Folds the statistics once `acc` holds many packets, long before a sum could overflow
    /// (each packet adds below 2^15 bytes; called by every tick and register write).
    #[inline(always)]
    pub(crate) fn bound_stats(&mut self) {
        if self.acc_packets >= 1 << 32 {
            self.fold_stats();
        }
    }

    pub(crate) fn rar_list(&mut self) -> &[[u8; 6]] {
        if self.rar_dirty {
            self.rar_dirty = false;
            self.rar_cache.clear();
            for n in 0..128 {
                let l = self.r(RAL + 8 * n);
                let h = self.r(RAL + 8 * n + 4);
                // A receive address passes only for the pools MPSAR associates it with
                // (§7.1.2.2, §8.2.3.7.10): none associated, no match.
                let pools = self.r(MPSAR + 8 * n) | self.r(MPSAR + 8 * n + 4);
                if h & RAH_AV != 0 && pools != 0 {
                    let b = l.to_le_bytes();
                    self.rar_cache
                        .push([b[0], b[1], b[2], b[3], h as u8, (h >> 8) as u8]);
                }
            }
        }
        &self.rar_cache
    }

    #[inline]
    pub(crate) fn stat_slot(&self, map_base: u32, q: usize) -> u32 {
        (self.r(map_base + 4 * (q as u32 / 4)) >> (8 * (q % 4))) & 0xF
    }
}

impl Nic {
    pub(crate) fn start_enable(&mut self, tx: bool, q: usize, value: bool, now: Duration) {
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

    pub(crate) fn read_queue(&mut self, tx: bool, q: usize, f: u32) -> u32 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_counters_saturate() {
        let mut n = Nic::new(NicConfig::default(), Duration::ZERO);
        // 36-bit counters (low and high register) carry into the high part and stop at
        // 2^36 - 1, also for an addition that alone exceeds 2^36 or u64.
        n.add36(GORCL, 0xFFFF_FFFF);
        n.add36(GORCL, 2);
        assert_eq!((n.r(GORCL), n.r(GORCL + 4)), (1, 1));
        n.add36(GORCL, (1 << 36) - 3);
        assert_eq!((n.r(GORCL), n.r(GORCL + 4)), (0xFFFF_FFFF, 0xF));
        n.add36(GORCL, 1);
        assert_eq!((n.r(GORCL), n.r(GORCL + 4)), (0xFFFF_FFFF, 0xF));
        n.set(GORCL, 5);
        n.set(GORCL + 4, 0);
        n.add36(GORCL, u64::MAX);
        assert_eq!((n.r(GORCL), n.r(GORCL + 4)), (0xFFFF_FFFF, 0xF));
        // 32-bit counters stop at 2^32 - 1.
        n.inc(GPRC, u32::MAX - 1);
        n.inc(GPRC, 5);
        assert_eq!(n.r(GPRC), u32::MAX);
    }

    /// Statistics counted in `acc` and folded on a read give the registers the values that
    /// the old update per packet (`inc`, `add36`) gave, over long random sequences with
    /// saturation, clear-on-read of either half and carries into a high half (lanes).
    #[test]
    fn folded_statistics_equal_the_per_packet_updates() {
        let mut old = Nic::new(NicConfig::default(), Duration::ZERO);
        let mut new = Nic::new(NicConfig::default(), Duration::ZERO);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut saturated = [false; 2];
        let steps = if cfg!(miri) { 20_000 } else { 200_000 };
        for step in 0..steps {
            let k = (rnd() % st::N as u64) as usize;
            let (off, wide) = stat_reg(k);
            let r = rnd();
            match r % 16 {
                // A read of the register (or of the high half), clear-on-read.
                0 => {
                    let o = if wide && r & 16 != 0 { off + 4 } else { off };
                    new.sync_stats();
                    let (a, b) = (old.r(o), new.r(o));
                    assert_eq!(a, b, "step {step}: register {o:#x}");
                    saturated[usize::from(wide)] |= a == u32::MAX;
                    old.set(o, 0);
                    new.set(o, 0);
                }
                // A lane's carry into a high half (`World::add_to_register`), on both.
                1 if wide => {
                    // It follows a read of every lane (which folds), and folds itself: the
                    // carry lands after what was counted before it, as it did.
                    let c = (r >> 8) as u32 & 3;
                    old.inc(off + 4, c);
                    new.sync_stats();
                    new.inc(off + 4, c);
                }
                // Large additions, to reach saturation between reads.
                2 | 3 => {
                    let v = if wide {
                        (r >> 8) % (1 << 35)
                    } else {
                        (r >> 8) % (1 << 31)
                    };
                    if wide {
                        old.add36(off, v);
                    } else {
                        old.inc(off, v as u32);
                    }
                    new.acc[k] += v;
                    new.acc_packets += 1;
                }
                // A packet's worth.
                _ => {
                    let v = if wide { 60 + (r >> 8) % 16_000 } else { 1 };
                    if wide {
                        old.add36(off, v);
                    } else {
                        old.inc(off, v as u32);
                    }
                    new.acc[k] += v;
                    new.acc_packets += 1;
                }
            }
        }
        new.sync_stats();
        for k in 0..st::N {
            let (off, wide) = stat_reg(k);
            assert_eq!(old.r(off), new.r(off));
            if wide {
                assert_eq!(old.r(off + 4), new.r(off + 4));
            }
        }
        assert_eq!(saturated, [true, true], "the sequence reaches saturation");
        // A reset drops what was counted before it, as it clears the registers.
        new.acc[st::GPRC] += 3;
        new.acc_packets += 1;
        new.reset_state();
        new.sync_stats();
        assert_eq!(new.r(GPRC), 0);
    }

    /// A packet counted into a combined accumulator reads, once folded, as the packet counted
    /// into each of its parts: random packets into both forms, random folds, saturation.
    #[test]
    fn combined_accumulators_fold_as_their_parts() {
        let mut old = Nic::new(NicConfig::default(), Duration::ZERO);
        let mut new = Nic::new(NicConfig::default(), Duration::ZERO);
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let steps = if cfg!(miri) { 2_000 } else { 100_000 };
        for step in 0..steps {
            let r = rnd();
            if r % 64 == 0 {
                old.sync_stats();
                new.sync_stats();
                for k in 0..st::N {
                    let (off, wide) = stat_reg(k);
                    assert_eq!(old.r(off), new.r(off), "step {step}: {off:#x}");
                    if wide {
                        assert_eq!(old.r(off + 4), new.r(off + 4), "step {step}");
                    }
                }
                continue;
            }
            let (c, parts) = st::COMBINED[(r >> 8) as usize % st::COMBINED.len()];
            // Packet-sized values, and now and then one that saturates a 32-bit counter.
            let v = if r % 7 == 0 {
                (r >> 16) % (1 << 33)
            } else {
                1 + (r >> 16) % 9_000
            };
            for &k in parts {
                old.acc[k] += v;
            }
            old.acc_packets += 1;
            new.acc[c] += v;
            new.acc_packets += 1;
            // A plain accumulator too, on both, between combined ones.
            let k = (r >> 40) as usize % st::N;
            old.acc[k] += 1;
            new.acc[k] += 1;
        }
        old.sync_stats();
        new.sync_stats();
        assert_eq!(old.regs[..], new.regs[..]);
        assert_eq!(new.r(TPR), u32::MAX, "the sequence saturates");
    }

    #[test]
    fn every_accumulator_names_a_distinct_statistics_register() {
        let regs: HashSet<u32> = (0..st::N).map(|k| stat_reg(k).0).collect();
        assert_eq!(regs.len(), st::N);
        for k in 0..st::N {
            let (off, wide) = stat_reg(k);
            assert!(
                super::mmio::is_stat(off)
                    || matches!(super::mmio::decode_queue(off), super::mmio::QReg::Stat(_)),
                "{off:#x}"
            );
            assert_eq!(
                wide,
                is_stat36_low(off)
                    || (QBRC_L..QBRC_L + 0x40 * 16).contains(&off) && off % 0x40 == 0x34,
                "{off:#x}"
            );
        }
    }
}
