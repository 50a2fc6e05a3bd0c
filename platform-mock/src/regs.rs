//! Register offsets and bits of the simulated 82599, from the datasheet (Intel 82599 10 GbE
//! Controller Datasheet, chapter 8). Private to the mock: the driver has its own definitions.

#![allow(dead_code)]

// §2.1 general
pub const CTRL: u32 = 0x00000;
pub const CTRL_ALIAS: u32 = 0x00004;
pub const STATUS: u32 = 0x00008;
pub const CTRL_EXT: u32 = 0x00018;
pub const ESDP: u32 = 0x00020;
pub const LEDCTL: u32 = 0x00200;
pub const EEC: u32 = 0x10010;
pub const EERD: u32 = 0x10014;
pub const SWSM: u32 = 0x10140;
pub const FWSM: u32 = 0x10148;
pub const SW_FW_SYNC: u32 = 0x10160;
pub const GCR_EXT: u32 = 0x11050;
pub const GCR: u32 = 0x11000;
pub const DCA_ID: u32 = 0x11070;
pub const DCA_CTRL: u32 = 0x11074;
pub const I2CCTL: u32 = 0x00028;
pub const I2C_CLK_IN: u32 = 1;
pub const I2C_CLK_OUT: u32 = 1 << 1;
pub const I2C_DATA_IN: u32 = 1 << 2;
pub const I2C_DATA_OUT: u32 = 1 << 3;
pub const CTRL_EXT_PFRSTD: u32 = 1 << 14;
/// ESDP: SDP2 data (module present on SFP+ boards) and its direction bit (1 = output).
pub const ESDP_SDP2: u32 = 1 << 2;
pub const ESDP_SDP2_DIR: u32 = 1 << 10;
/// FWSM.FW_Val_bit.
pub const FWSM_FW_VAL: u32 = 1 << 15;
pub const FACTPS: u32 = 0x10150;
pub const EEC_SIZE_SHIFT: u32 = 11;
pub const EERD_START: u32 = 1;
pub const EERD_DONE: u32 = 1 << 1;
pub const CORECTL: u32 = 0x014F00;
pub const MSCA: u32 = 0x0425C;
pub const MSRWD: u32 = 0x04260;
pub const MSCA_MDI_COMMAND: u32 = 1 << 30;
pub const PCS1GLCTL: u32 = 0x04208;
pub const PCS1GANA: u32 = 0x04218;
pub const MMNGC: u32 = 0x042D0;
pub const WUC: u32 = 0x05800;
pub const WUFC: u32 = 0x05808;
pub const WUS: u32 = 0x05810;
pub const MANC: u32 = 0x05820;
pub const TSYNCRXCTL: u32 = 0x05188;
pub const RXMTRL: u32 = 0x05120;
pub const TSYNCTXCTL: u32 = 0x08C00;
pub const FDIR_BASE: u32 = 0x0EE00;
pub const FDIRCTRL: u32 = 0x0EE00;
pub const FDIRCTRL_INIT_DONE: u32 = 1 << 3;
pub const FDIRCMD: u32 = 0x0EE2C;
pub const PFDTXGSWC: u32 = 0x08220;
pub const SECTXCTRL: u32 = 0x08800;
pub const SECTXSTAT: u32 = 0x08804;
pub const SECTXBUFFAF: u32 = 0x08808;
pub const SECTXMINIFG: u32 = 0x08810;
pub const SECTXCTRL_TX_DIS: u32 = 1 << 1;
/// SECTXSTAT / SECRXSTAT bit 1: the security offload is fused off.
pub const SEC_OFF_DIS: u32 = 1 << 1;

pub const CTRL_MASTER_DISABLE: u32 = 1 << 2;
pub const CTRL_LRST: u32 = 1 << 3;
pub const CTRL_RST: u32 = 1 << 26;
/// Bits of CTRL that are not reserved.
pub const CTRL_VALID: u32 = CTRL_MASTER_DISABLE | CTRL_LRST | CTRL_RST;
pub const STATUS_MASTER_ENABLE: u32 = 1 << 19;
pub const EEC_EE_SK: u32 = 1 << 0;
pub const EEC_EE_CS: u32 = 1 << 1;
pub const EEC_EE_DI: u32 = 1 << 2;
pub const EEC_EE_DO: u32 = 1 << 3;
pub const EEC_EE_REQ: u32 = 1 << 6;
pub const EEC_EE_GNT: u32 = 1 << 7;
pub const EEC_EE_PRES: u32 = 1 << 8;
pub const EEC_AUTO_RD: u32 = 1 << 9;
/// EEC bit 10 (reserved, reads 1) plus FWE = 01b.
pub const EEC_FIXED: u32 = (1 << 10) | (1 << 4);
/// EEC *_DONE bits 21:15, set when the auto-read completes.
pub const EEC_DONE_BITS: u32 = 0x7F << 15;
/// EEC bits software may write: EE_SK, EE_CS, EE_DI, FWE, EE_REQ.
pub const EEC_SW_BITS: u32 = 0b111 | (0b11 << 4) | (1 << 6);

// §2.2 interrupts
pub const EICR: u32 = 0x00800;
pub const EICS: u32 = 0x00808;
pub const EIAC: u32 = 0x00810;
pub const EIMS: u32 = 0x00880;
pub const EIMC: u32 = 0x00888;
pub const EIAM: u32 = 0x00890;
pub const GPIE: u32 = 0x00898;
pub const IVAR_MISC: u32 = 0x00A00;
pub const EICS_EX: u32 = 0x00A90;
pub const EIMS_EX: u32 = 0x00AA0;
pub const EIMC_EX: u32 = 0x00AB0;
pub const EIAM_EX: u32 = 0x00AD0;
pub const GPIE_MULTIPLE_MSIX: u32 = 1 << 4;
pub const GPIE_OCD: u32 = 1 << 5;
pub const GPIE_EIAME: u32 = 1 << 30;
pub const EITR_LO: u32 = 0x00820;
pub const EITR_HI: u32 = 0x12300;
pub const IVAR: u32 = 0x00900;
pub const EICR_TCP_TIMER: u32 = 1 << 30;
pub const EICR_RX_MISS: u32 = 1 << 17;
pub const EICR_LSC: u32 = 1 << 20;

// §2.3 receive global
pub const RXCTRL: u32 = 0x03000;
pub const RXCTRL_RXEN: u32 = 1;
pub const RDRXCTL: u32 = 0x02F00;
pub const RDRXCTL_CRCSTRIP: u32 = 1 << 1;
pub const RDRXCTL_DMAIDONE: u32 = 1 << 3;
pub const RDRXCTL_RSCFRSTSIZE: u32 = 0x1F << 17;
pub const RDRXCTL_INIT: u32 = 0x0010_8800;
pub const RXPBSIZE: u32 = 0x03C00;
pub const FCTRL: u32 = 0x05080;
pub const FCTRL_SBP: u32 = 1 << 1;
pub const FCTRL_MPE: u32 = 1 << 8;
pub const FCTRL_UPE: u32 = 1 << 9;
pub const FCTRL_BAM: u32 = 1 << 10;
/// Pass MAC control frames (§8.2.3.7.1).
pub const FCTRL_PMCF: u32 = 1 << 12;
/// Discard pause frames (§8.2.3.7.1).
pub const FCTRL_DPF: u32 = 1 << 13;
pub const FCTRL_VALID: u32 = FCTRL_SBP | FCTRL_MPE | FCTRL_UPE | FCTRL_BAM | FCTRL_PMCF | FCTRL_DPF;
/// Firmware status (Linux's `IXGBE_FWSTS`): bit 9 FWRI, firmware reset indication, write 1 to
/// clear. No firmware resets here, so it reads 0.
pub const FWSTS: u32 = 0x15F0C;
pub const VLNCTRL: u32 = 0x05088;
/// VLNCTRL.CFI (bit 28), CFIEN (29) and VFE (30), §8.2.3.7.2.
pub const VLNCTRL_CFI: u32 = 1 << 28;
pub const VLNCTRL_CFIEN: u32 = 1 << 29;
pub const VLNCTRL_VFE: u32 = 1 << 30;
/// RXDCTL.VME: strip the VLAN tag of frames for this queue (§8.2.3.8.6).
pub const RXDCTL_VME: u32 = 1 << 30;
pub const MCSTCTRL: u32 = 0x05090;
pub const MTA: u32 = 0x05200;
pub const RAL: u32 = 0x0A200;
pub const RAL_ALIAS: u32 = 0x05400;
pub const RAH_AV: u32 = 1 << 31;
pub const MPSAR: u32 = 0x0A600;
pub const VFTA: u32 = 0x0A000;
pub const RXCSUM: u32 = 0x05000;
pub const RXCSUM_PCSD: u32 = 1 << 13;
pub const RFCTL: u32 = 0x05008;
pub const MRQC: u32 = 0x0EC80;
pub const MRQC_ALIAS: u32 = 0x05818;
pub const RSSRK: u32 = 0x0EB80;
pub const RSSRK_ALIAS: u32 = 0x05C80;
pub const RETA: u32 = 0x0EB00;
pub const RETA_ALIAS: u32 = 0x05C00;
pub const RQSMR: u32 = 0x02300;
pub const TQSM: u32 = 0x08600;
pub const RXDSTATCTRL: u32 = 0x02F40;
pub const MRQC_TCP_IPV4: u32 = 1 << 16;
pub const MRQC_IPV4: u32 = 1 << 17;
pub const MRQC_IPV6: u32 = 1 << 20;
pub const MRQC_TCP_IPV6: u32 = 1 << 21;
pub const MRQC_UDP_IPV4: u32 = 1 << 22;
pub const MRQC_UDP_IPV6: u32 = 1 << 23;

// §2.4 receive queues
pub const RX_BLOCK_LO: u32 = 0x01000;
pub const RX_BLOCK_HI: u32 = 0x0D000;
pub const SRRCTL_ALIAS: u32 = 0x02100;
pub const DCA_RXCTRL_ALIAS: u32 = 0x02200;
pub const Q_BAL: u32 = 0x00;
pub const Q_BAH: u32 = 0x04;
pub const Q_LEN: u32 = 0x08;
pub const Q_DCA: u32 = 0x0C;
pub const Q_HEAD: u32 = 0x10;
pub const Q_SRRCTL: u32 = 0x14;
pub const Q_TAIL: u32 = 0x18;
pub const Q_DCTL: u32 = 0x28;
pub const Q_RSCCTL: u32 = 0x2C;
pub const Q_WBAL: u32 = 0x38;
pub const Q_WBAH: u32 = 0x3C;
pub const DCTL_ENABLE: u32 = 1 << 25;
pub const SRRCTL_INIT: u32 = 0x402;
pub const SRRCTL_RESERVED: u32 = 0b111 << 5;
pub const SRRCTL_DROP_EN: u32 = 1 << 28;
pub const DCA_RXCTRL_INIT: u32 = 0xB200;
pub const QPRC: u32 = 0x01030;
pub const QBRC_L: u32 = 0x01034;
pub const QPRDC: u32 = 0x01430;

// §2.5 transmit
pub const DMATXCTL: u32 = 0x04A80;
pub const DMATXCTL_TE: u32 = 1;
pub const DMATXCTL_INIT: u32 = 0x8100_0004;
pub const DTXMXSZRQ: u32 = 0x08100;
pub const TX_BLOCK: u32 = 0x06000;
pub const QPTC_ALIAS: u32 = 0x06030;
pub const DCA_TXCTRL_INIT: u32 = 0x2A00;
pub const TXDCTL_RESERVED: u32 = (1 << 7) | (1 << 15) | (0b11 << 23) | (0x1F << 27);
pub const TXDCTL_SWFLSH: u32 = 1 << 26;
pub const TXPBSIZE: u32 = 0x0CC00;
pub const TXPBTHRESH: u32 = 0x04950;
pub const MTQC: u32 = 0x08120;
pub const RTTDCS: u32 = 0x04900;
pub const QPTC: u32 = 0x08680;
pub const QBTC_L: u32 = 0x08700;

// §2.6 MAC and link
pub const HLREG0: u32 = 0x04240;
pub const HLREG0_TXCRCEN: u32 = 1;
pub const HLREG0_RXCRCSTRP: u32 = 1 << 1;
pub const HLREG0_JUMBOEN: u32 = 1 << 2;
pub const HLREG0_FIXED_MASK: u32 = 0x7F << 3;
pub const HLREG0_FIXED_VAL: u32 = 1 << 3;
pub const HLREG0_TXPADEN: u32 = 1 << 10;
pub const HLREG0_LPBK: u32 = 1 << 15;
pub const HLREG0_INIT: u32 = 0x0801_2C0B;
pub const MAXFRS: u32 = 0x04268;
pub const MFLCN: u32 = 0x04294;
pub const FCCFG: u32 = 0x03D00;
pub const FCTTV: u32 = 0x03200;
pub const FCRTL: u32 = 0x03220;
pub const FCRTH: u32 = 0x03260;
pub const FCRTV: u32 = 0x032A0;
pub const AUTOC: u32 = 0x042A0;
pub const AUTOC_INIT: u32 = 0xC19D_8284;
pub const AUTOC_RESTART_AN: u32 = 1 << 12;
/// AUTOC.LMS (bits 15:13) position, and its 10 Gb/s serial value 011b.
pub const AUTOC_LMS_SHIFT: u32 = 13;
pub const AUTOC_LMS_10G_SERIAL: u32 = 0b011 << AUTOC_LMS_SHIFT;
/// MMNGC.MNG_VETO: manageability firmware forbids link resets and link-mode changes.
pub const MMNGC_MNG_VETO: u32 = 1;
/// SW_FW_SYNC: software's MAC_CSR semaphore bit (3) and firmware's (8).
pub const SW_FW_SYNC_SW_MAC: u32 = 1 << 3;
pub const SW_FW_SYNC_FW_MAC: u32 = 1 << 8;
/// SWSM.SWESMBI (bit 1): software's hold on SW_FW_SYNC.
pub const SWSM_SWESMBI: u32 = 1 << 1;
/// FWSM.FW_mode (bits 3:1): 0 = no manageability.
pub const FWSM_FW_MODE_SHIFT: u32 = 1;
/// RDRXCTL.RSCACKC (bit 25) and FCOE_WRFIX (bit 26): both must be 1 (datasheet §8.2.3.8.8).
pub const RDRXCTL_RSCACKC: u32 = 1 << 25;
pub const RDRXCTL_FCOE_WRFIX: u32 = 1 << 26;
pub const LINKS: u32 = 0x042A4;
pub const LINKS_UP: u32 = 1 << 30;
pub const LINKS_SPEED_10G: u32 = 0b11 << 28;
pub const LINKS_AN_DONE: u32 = 1 << 31;
pub const AUTOC2: u32 = 0x042A8;
pub const ANLP1: u32 = 0x042B0;
pub const SECRXCTRL: u32 = 0x08D00;
pub const SECRXCTRL_RX_DIS: u32 = 1 << 1;
pub const SECRXSTAT: u32 = 0x08D04;

// Other configuration registers a driver may program during init (stored, no behaviour).
pub const PFQDE: u32 = 0x02F04;
pub const RTRUP2TC: u32 = 0x03020;
pub const RSCDBU: u32 = 0x03028;
pub const RTRPT4C: u32 = 0x02140;
pub const RTRPCS: u32 = 0x02430;
pub const RTTDQSEL: u32 = 0x04904;
pub const RTTDT1C: u32 = 0x04908;
pub const RTTDT2C: u32 = 0x04910;
pub const DTXTCPFLGL: u32 = 0x04A88;
pub const DTXTCPFLGH: u32 = 0x04A8C;
pub const ETQF: u32 = 0x05128;
pub const RXFECCERR0: u32 = 0x051B8;
pub const RTTPCS: u32 = 0x0CD00;
pub const MNGTXMAP: u32 = 0x0CD10;
pub const RTTPT2C: u32 = 0x0CD20;
pub const SAQF: u32 = 0x0E000;
pub const DAQF: u32 = 0x0E200;
pub const SDPQF: u32 = 0x0E400;
pub const FTQF: u32 = 0x0E600;
pub const PSRTYPE: u32 = 0x0EA00;
pub const PSRTYPE_ALIAS: u32 = 0x05480;
pub const VMOLR: u32 = 0x0F000;
pub const RTTUP2TC: u32 = 0x0C800;
pub const RTTBCNRC: u32 = 0x04984;
pub const RTTBCNRM: u32 = 0x04980;
pub const ETQS: u32 = 0x0EC00;
pub const SYNQF: u32 = 0x0EC30;
pub const RQTC: u32 = 0x0EC70;
pub const PFVLVF: u32 = 0x0F100;
pub const PFVLVFB: u32 = 0x0F200;
pub const PFUTA: u32 = 0x0F400;

// §2.7 statistics (clear on read)
pub const CRCERRS: u32 = 0x04000;
pub const RXMPC: u32 = 0x03FA0;
pub const PRC64: u32 = 0x0405C;
pub const GPRC: u32 = 0x04074;
pub const BPRC: u32 = 0x04078;
pub const MPRC: u32 = 0x0407C;
pub const GPTC: u32 = 0x04080;
pub const GORCL: u32 = 0x04088;
pub const GOTCL: u32 = 0x04090;
pub const RUC: u32 = 0x040A4;
pub const ROC: u32 = 0x040AC;
pub const TORL: u32 = 0x040C0;
pub const TPR: u32 = 0x040D0;
pub const TPT: u32 = 0x040D4;
pub const PTC64: u32 = 0x040D8;
pub const MPTC: u32 = 0x040F0;
pub const BPTC: u32 = 0x040F4;
pub const RXNFGPC: u32 = 0x041B0;
pub const RXNFGBCL: u32 = 0x041B4;
pub const RXDGPC: u32 = 0x02F50;
pub const RXDGBCL: u32 = 0x02F54;
pub const TXDGPC: u32 = 0x087A0;
pub const TXDGBCL: u32 = 0x087A4;

/// 32-bit clear-on-read counters (documented; those the model never counts read 0).
pub fn is_stat32(off: u32) -> bool {
    matches!(off,
        0x04000 | 0x04004 | 0x04008 | 0x04010 | 0x04034 | 0x04038 | 0x04040
        | 0x0405C..=0x04080 // PRC64..PRC1522, GPRC, BPRC, MPRC, GPTC
        | 0x040A4..=0x040B8 // RUC RFC ROC RJC MNGPRC MNGPDC
        | 0x040D0 | 0x040D4
        | 0x040D8..=0x040F4 // PTC64..PTC1522, MPTC, BPTC
        | 0x04120 | 0x041A4 | 0x041A8 | 0x041B0
        | 0x02F50 | 0x087A0
        | 0x03F60 | 0x03F68
        | 0x03FA0..=0x03FBC // RXMPC[0..7]
        | 0x03F00..=0x03F1C | 0x03F20..=0x03F3C // PXONTXC / PXOFFTXC
        | 0x04140..=0x0417C // PXONRXCNT / PXOFFRXCNT
        | 0x08680..=0x086BC // QPTC[0..15]
        | 0x0CF90 | 0x08780)
        && off.is_multiple_of(4)
}

/// Low halves of 36-bit clear-on-read byte counters (the high half is at `+4`).
pub fn is_stat36_low(off: u32) -> bool {
    matches!(off, GORCL | GOTCL | TORL | RXNFGBCL | RXDGBCL | TXDGBCL)
        || (QBTC_L..QBTC_L + 16 * 8).contains(&off) && (off - QBTC_L).is_multiple_of(8)
}

/// Base offset of RX queue `n`'s register block.
pub fn rx_base(n: u32) -> u32 {
    if n < 64 {
        RX_BLOCK_LO + 0x40 * n
    } else {
        RX_BLOCK_HI + 0x40 * (n - 64)
    }
}

/// Base offset of TX queue `n`'s register block.
pub fn tx_base(n: u32) -> u32 {
    TX_BLOCK + 0x40 * n
}

/// `off` lies in `[base, base + 4 * count)` and is 4-aligned.
pub fn in_array(off: u32, base: u32, count: u32) -> bool {
    off >= base && off < base + 4 * count && (off - base).is_multiple_of(4)
}

/// Plain configuration registers (stored and read back, no behaviour in the model):
/// `(name, first offset, count)` of 4-byte registers, datasheet §8.2.3 / Linux `ixgbe_type.h`.
pub const PLAIN: &[(&str, u32, u32)] = &[
    ("CTRL_EXT", CTRL_EXT, 1),
    ("ESDP", ESDP, 1),
    ("LEDCTL", LEDCTL, 1),
    ("FWSM", FWSM, 1),
    ("SW_FW_SYNC", SW_FW_SYNC, 1),
    ("GCR", GCR, 1),
    ("GCR_EXT", GCR_EXT, 1),
    ("DCA_ID", DCA_ID, 1),
    ("DCA_CTRL", DCA_CTRL, 1),
    ("EIAC", EIAC, 1),
    ("GPIE", GPIE, 1),
    ("IVAR_MISC", IVAR_MISC, 1),
    ("EITR[0..23]", EITR_LO, 24),
    ("EITR[24..127]", EITR_HI, 104),
    ("IVAR", IVAR, 64),
    ("VLNCTRL", VLNCTRL, 1),
    ("MCSTCTRL", MCSTCTRL, 1),
    ("RXCSUM", RXCSUM, 1),
    ("RFCTL", RFCTL, 1),
    ("MRQC", MRQC, 1),
    ("RXDSTATCTRL", RXDSTATCTRL, 1),
    ("MTQC", MTQC, 1),
    ("RTTDCS", RTTDCS, 1),
    ("MAXFRS", MAXFRS, 1),
    ("MFLCN", MFLCN, 1),
    ("FCCFG", FCCFG, 1),
    ("FCRTV", FCRTV, 1),
    ("AUTOC2", AUTOC2, 1),
    ("PCS1GLCTL", PCS1GLCTL, 1),
    ("PCS1GANA", PCS1GANA, 1),
    ("MMNGC", MMNGC, 1),
    ("PFQDE", PFQDE, 1),
    ("RTRUP2TC", RTRUP2TC, 1),
    ("RTTUP2TC", RTTUP2TC, 1),
    ("RSCDBU", RSCDBU, 1),
    ("RTRPCS", RTRPCS, 1),
    ("RTTDQSEL", RTTDQSEL, 1),
    ("RTTDT1C", RTTDT1C, 1),
    ("RTTBCNRC", RTTBCNRC, 1),
    ("RTTBCNRM", RTTBCNRM, 1),
    ("DTXTCPFLGL", DTXTCPFLGL, 1),
    ("DTXTCPFLGH", DTXTCPFLGH, 1),
    ("RXFECCERR0", RXFECCERR0, 1),
    ("RTTPCS", RTTPCS, 1),
    ("MNGTXMAP", MNGTXMAP, 1),
    ("SYNQF", SYNQF, 1),
    ("RQTC", RQTC, 1),
    ("PFDTXGSWC", PFDTXGSWC, 1),
    ("SECTXCTRL", SECTXCTRL, 1),
    ("SECTXBUFFAF", SECTXBUFFAF, 1),
    ("SECTXMINIFG", SECTXMINIFG, 1),
    ("CORECTL", CORECTL, 1),
    ("WUC", WUC, 1),
    ("WUFC", WUFC, 1),
    ("WUS", WUS, 1),
    ("MANC", MANC, 1),
    ("TSYNCRXCTL", TSYNCRXCTL, 1),
    ("RXMTRL", RXMTRL, 1),
    ("TSYNCTXCTL..TSAUXC and targets (IEEE 1588)", TSYNCTXCTL, 16),
    ("FDIR registers", FDIR_BASE, 32),
    ("RXPBSIZE", RXPBSIZE, 8),
    ("MTA", MTA, 128),
    ("RAL/RAH", RAL, 256),
    ("MPSAR", MPSAR, 256),
    ("VFTA", VFTA, 128),
    ("RSSRK", RSSRK, 10),
    ("RETA", RETA, 32),
    ("RQSMR", RQSMR, 32),
    ("TQSM", TQSM, 32),
    ("TXPBSIZE", TXPBSIZE, 8),
    ("TXPBTHRESH", TXPBTHRESH, 8),
    ("FCTTV", FCTTV, 4),
    ("FCRTL", FCRTL, 8),
    ("FCRTH", FCRTH, 8),
    ("RTRPT4C", RTRPT4C, 8),
    ("RTTDT2C", RTTDT2C, 8),
    ("RTTPT2C", RTTPT2C, 8),
    ("ETQF", ETQF, 8),
    ("ETQS", ETQS, 8),
    ("SAQF", SAQF, 128),
    ("DAQF", DAQF, 128),
    ("SDPQF", SDPQF, 128),
    ("FTQF", FTQF, 128),
    ("PSRTYPE", PSRTYPE, 64),
    ("VMOLR", VMOLR, 64),
    ("PFVLVF", PFVLVF, 64),
    ("PFVLVFB", PFVLVFB, 128),
    ("PFUTA", PFUTA, 128),
];

/// Plain configuration registers: stored and read back, no behaviour in the model.
pub fn is_plain(off: u32) -> bool {
    static MAP: std::sync::OnceLock<Box<[u64]>> = std::sync::OnceLock::new();
    let map = MAP.get_or_init(|| {
        let mut m = vec![0u64; (0x20000 / 4) / 64].into_boxed_slice();
        for &(_, base, count) in PLAIN {
            for k in 0..count {
                let w = ((base + 4 * k) / 4) as usize;
                m[w / 64] |= 1 << (w % 64);
            }
        }
        m
    });
    let w = (off / 4) as usize;
    off.is_multiple_of(4) && w / 64 < map.len() && map[w / 64] & (1 << (w % 64)) != 0
}

/// Maps 82598-compatible aliases of plain registers to their primary 82599 offset.
pub fn unalias(off: u32) -> u32 {
    if in_array(off, RAL_ALIAS, 32) {
        RAL + (off - RAL_ALIAS)
    } else if off == MRQC_ALIAS {
        MRQC
    } else if in_array(off, RSSRK_ALIAS, 10) {
        RSSRK + (off - RSSRK_ALIAS)
    } else if in_array(off, RETA_ALIAS, 32) {
        RETA + (off - RETA_ALIAS)
    } else if off == CTRL_ALIAS {
        CTRL
    } else if in_array(off, PSRTYPE_ALIAS, 16) {
        PSRTYPE + (off - PSRTYPE_ALIAS)
    } else {
        off
    }
}
