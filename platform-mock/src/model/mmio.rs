//! BAR0 register reads and writes: decoding, side effects, and the checks on them.

use super::*;

/// Which register a (de-aliased) offset refers to, for queue registers.
#[derive(Clone, Copy)]
pub(crate) enum QReg {
    Rx(u32, u32),
    Tx(u32, u32),
    /// A per-queue statistics register inside a queue block: canonical offset.
    Stat(u32),
    None,
}

pub(crate) fn decode_queue(off: u32) -> QReg {
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

pub(crate) fn is_stat(off: u32) -> bool {
    is_stat32(off) || is_stat36_low(off) || (off >= 4 && is_stat36_low(off - 4))
}

/// Offsets whose access can change what the interrupt logic must deliver.
fn is_irq_reg(off: u32) -> bool {
    (0x00800..0x00900).contains(&off) || (0x00A00..0x00B00).contains(&off)
}

impl World {
    /// A BAR0 read of NIC `i`.
    #[inline(never)]
    pub fn mmio_read(&mut self, i: usize, off: u32) -> u32 {
        let v = self.mmio_read_inner(i, off);
        if is_irq_reg(off) {
            self.irq_update(i);
        }
        v
    }

    /// A BAR0 write of NIC `i`.
    #[inline(never)]
    pub fn mmio_write(&mut self, i: usize, off: u32, v: u32) {
        self.nics[i].bound_stats();
        self.mmio_write_inner(i, off, v);
        if off == ESDP {
            // SDP3 is the module's TX_DISABLE on SFP+ boards.
            self.link_conditions_changed(i);
        }
        self.irq_update(i);
    }

    fn mmio_read_inner(&mut self, i: usize, off: u32) -> u32 {
        let core = &mut self.core;
        let n = &mut self.nics[i];
        // Any register software reads sees the statistics counted so far.
        n.sync_stats();
        if !off.is_multiple_of(4) {
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
        if is_irq_reg(off) {
            if let Some(v) = n.irq_read(off) {
                return v;
            }
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
                // LAN_ID (bits 3:2), PCIe Master Enable Status (bit 19).
                let lan = u32::from(n.cfg.lan_id & 1) << 2;
                if n.dma_blocked() {
                    lan
                } else {
                    lan | STATUS_MASTER_ENABLE
                }
            }
            SWSM => {
                let v = n.r(SWSM);
                n.set(SWSM, v | 1);
                v
            }
            ESDP => {
                // Input pins (direction bit clear) read the pin: SDP2 is the SFP+ cage's
                // "module present" on SFP+ boards (Linux's crosstalk check reads it).
                let v = n.r(ESDP);
                if v & ESDP_SDP2_DIR == 0 {
                    (v & !ESDP_SDP2) | if n.i2c.present() { ESDP_SDP2 } else { 0 }
                } else {
                    v
                }
            }
            I2CCTL => {
                let v = n.r(I2CCTL) & (I2C_CLK_OUT | I2C_DATA_OUT);
                let clk = if v & I2C_CLK_OUT != 0 { I2C_CLK_IN } else { 0 };
                let data = if n.i2c.sda_line(v & I2C_DATA_OUT != 0) {
                    I2C_DATA_IN
                } else {
                    0
                };
                v | clk | data
            }
            EEC => {
                let v = n.r(EEC) & !(EEC_EE_GNT | EEC_EE_DO);
                if !n.eeprom_granted() {
                    return v;
                }
                let out = if n.spi.data_out(&n.eeprom) {
                    EEC_EE_DO
                } else {
                    0
                };
                v | EEC_EE_GNT | out
            }
            EERD => {
                let v = n.r(EERD);
                let Some(due) = n.eerd_due.take() else {
                    return v;
                };
                // The word is there on the next look, or once the read time passed
                // (§8.2.3.2.2: DONE set when DATA is valid).
                let addr = ((v >> 2) & 0x3FFF) as usize;
                let word = n.eeprom.get(addr).copied().unwrap_or(0xFFFF);
                let done = (v & 0xFFFC) | EERD_DONE | u32::from(word) << 16;
                n.set(EERD, done);
                if core.now >= due {
                    done
                } else {
                    v
                }
            }
            SECTXSTAT => {
                let rdy = u32::from(n.r(SECTXCTRL) & SECTXCTRL_TX_DIS != 0);
                rdy | SEC_OFF_DIS
            }
            RTTBCNRC => n.rate.read(n.r(RTTDQSEL)),
            x if super::timesync::owns(x) => n.clock.read(core.now, x),
            MSRWD => 0xFFFF_0000 | (n.r(MSRWD) & 0xFFFF), // no PHY answers on MDIO
            x if in_array(x, EITR_HI, 104) => n.r(x) & !(1 << 31), // CNT_WDIS is write-only
            LINKS => {
                if n.link_is_up() {
                    LINKS_UP | LINKS_SPEED_10G | LINKS_AN_DONE
                } else {
                    0
                }
            }
            // SECRX_RDY follows RX_DIS; SECRX_OFF_DIS: the security offload is fused off (as on
            // the 82599EN), so Linux does not set up IPsec.
            // SECRX_RDY once the block has drained after RX_DIS (`NicConfig::secrx_drain`).
            SECRXSTAT => {
                let rdy = n.r(SECRXCTRL) & SECRXCTRL_RX_DIS != 0
                    && !n.faults.secrx_never
                    && n.secrx_rdy_at.is_some_and(|t| t <= core.now);
                u32::from(rdy) | SEC_OFF_DIS
            }
            x if is_stat(x) => {
                let v = n.r(x);
                n.set(x, 0);
                v
            }
            x => n.r(x),
        }
    }

    fn mmio_write_inner(&mut self, i: usize, off: u32, v: u32) {
        if !off.is_multiple_of(4) {
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
                if v & CTRL_LRST != 0 && n.cfg.mng_veto {
                    core.violate(
                        i,
                        ViolationKind::LinkResetVetoed,
                        "CTRL.LRST while MMNGC.MNG_VETO is set (use CTRL.RST alone)".into(),
                    );
                }
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
            STATUS | LINKS | SECRXSTAT | ANLP1 | MMNGC => core.violate(
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
                // The pins reach the EEPROM only while software holds the grant.
                let (cs, sk, di) = if n.eeprom_granted() {
                    (v & EEC_EE_CS != 0, v & EEC_EE_SK != 0, v & EEC_EE_DI != 0)
                } else {
                    (true, false, false)
                };
                let bytes = n.eeprom.len() * 2;
                n.spi.drive(cs, sk, di, bytes);
            }
            EERD => {
                if v & EERD_START != 0 {
                    // The read starts; DONE shows on the next read of EERD or after 1 µs.
                    n.set(EERD, v & 0xFFFC);
                    n.eerd_due = Some(now + Duration::from_micros(1));
                }
            }
            SWSM => n.set(SWSM, v & 0b11),
            EICS | EIMS | EIMC => {
                let name = ["EICS", "EIMS", "EIMC"][match off {
                    EICS => 0,
                    EIMS => 1,
                    _ => 2,
                }];
                reserved(core, name, v & (1 << 31));
                n.irq_write(off, v);
            }
            x if is_irq_reg(x) && n.irq_write(x, v) => {}
            I2CCTL => {
                let v = v & (I2C_CLK_OUT | I2C_DATA_OUT);
                n.set(I2CCTL, v);
                n.i2c.drive(v & I2C_CLK_OUT != 0, v & I2C_DATA_OUT != 0);
            }
            CTRL_EXT => n.set(CTRL_EXT, v & !CTRL_EXT_PFRSTD), // PFRSTD self-clears
            MSCA => {
                // The MDIO cycle completes at once (nobody answers: MSRWD reads 0xFFFF).
                n.set(MSCA, v & !MSCA_MDI_COMMAND);
            }
            FDIRCTRL => n.set(FDIRCTRL, v | FDIRCTRL_INIT_DONE), // table init completes
            FDIRCMD => n.set(FDIRCMD, v & !0b11),                // command done at once
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
                    for (bit, name) in [
                        (RDRXCTL_RSCACKC, "RSCACKC"),
                        (RDRXCTL_FCOE_WRFIX, "FCOE_WRFIX"),
                    ] {
                        if rd & bit == 0 {
                            core.violate(
                                i,
                                ViolationKind::ReservedBits,
                                format!("RXCTRL.RXEN set while RDRXCTL.{name} = 0 (must be 1)"),
                            );
                        }
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
                if n.cfg.manageability && n.r(SW_FW_SYNC) & SW_FW_SYNC_SW_MAC == 0 {
                    core.violate(
                        i,
                        ViolationKind::SemaphoreNotHeld,
                        format!(
                            "AUTOC written ({v:#x}) without the SW_FW_SYNC MAC_CSR semaphore while manageability firmware runs"
                        ),
                    );
                }
                let lms_mask = 0b111 << AUTOC_LMS_SHIFT;
                if n.cfg.mng_veto && (v & AUTOC_RESTART_AN != 0 || (v ^ n.r(AUTOC)) & lms_mask != 0)
                {
                    core.violate(
                        i,
                        ViolationKind::LinkResetVetoed,
                        format!("AUTOC written ({v:#x}) while MMNGC.MNG_VETO forbids link changes"),
                    );
                }
                n.set(AUTOC, v & !AUTOC_RESTART_AN);
                if v & AUTOC_RESTART_AN != 0 && n.reset_until.is_none() {
                    n.link_mode = (v & !AUTOC_RESTART_AN, n.r(AUTOC2));
                    // AN leaves state 0 (idle): ANLP1.ANAS (bits 19:16), which Linux's
                    // ixgbe_reset_pipeline_82599 waits for. The model does not step through
                    // the arbitration states.
                    n.set(ANLP1, 0x4 << 16);
                    n.set_link_down();
                    if n.plugged {
                        n.link_at = Some(now + n.cfg.link_up_delay);
                    }
                }
            }
            SECRXCTRL => {
                let old = n.r(SECRXCTRL);
                if v & SECRXCTRL_RX_DIS == 0 {
                    n.secrx_rdy_at = None;
                } else if old & SECRXCTRL_RX_DIS == 0 || n.secrx_rdy_at.is_none() {
                    n.secrx_rdy_at = Some(now + n.cfg.secrx_drain);
                }
                n.set(SECRXCTRL, v);
            }
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
            FWSTS => {
                let old = n.r(FWSTS);
                n.set(FWSTS, old & !v);
            }
            x if super::timesync::owns(x) => n.clock.write(core, i, now, x, v),
            RTTBCNRC => {
                let sel = n.r(RTTDQSEL);
                n.rate.write(core, i, sel, v, now);
            }
            DTXMXSZRQ => {
                reserved(core, "DTXMXSZRQ", v & !0xFFF);
                n.set(DTXMXSZRQ, v & 0xFFF);
            }
            x if is_plain(x) => {
                if (RAL..MPSAR + 0x400).contains(&x) {
                    n.rar_dirty = true;
                }
                // RETA and RSSRK are side by side (0xEB00..0xEBA8).
                if (RETA..RSSRK + 40).contains(&x) {
                    n.rss.dirty = true;
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

impl World {
    pub(crate) fn ring_checks(&mut self, i: usize, tx: bool, q: usize) {
        let n = &self.nics[i];
        let base = if tx {
            tx_base(q as u32)
        } else {
            rx_base(q as u32)
        };
        let len = n.r(base + Q_LEN);
        if len == 0 || !len.is_multiple_of(128) {
            let name = if tx { "TDLEN" } else { "RDLEN" };
            self.core.violate(
                i,
                ViolationKind::RingLength,
                format!("queue {q}: {name} = {len:#x} when enabling (must be a non-zero multiple of 128)"),
            );
        }
    }

    #[inline(never)]
    pub(crate) fn write_rx_queue(&mut self, i: usize, q: usize, f: u32, v: u32) {
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
                if f == Q_LEN && (!v.is_multiple_of(128) || v >= 1 << 20) {
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
                // Drop_En may change while the queue runs: Linux's ixgbe sets it at every
                // link-up (ixgbe_set_rx_drop_en from its watchdog) on real boards. Anything
                // else (buffer sizes, descriptor type) must be set before the queue is enabled.
                if enabled && (v ^ n.r(base + f)) & !SRRCTL_DROP_EN != 0 {
                    reprogram(core, "SRRCTL (beyond Drop_En)");
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
                // SWFLSH (bit 26) self-clears (Linux sets it when disabling a queue).
                n.set(base + Q_DCTL, v & !(1 << 26));
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
    pub(crate) fn write_tx_queue(&mut self, i: usize, q: usize, f: u32, v: u32) {
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
                if f == Q_LEN && (!v.is_multiple_of(128) || v >= 1 << 20) {
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
}
