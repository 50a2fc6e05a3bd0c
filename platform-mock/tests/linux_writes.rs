//! Registers Linux's ixgbe writes on probe and open (82599 SFP+, MSI-X, no SR-IOV / DCB) are
//! known to the model, with their side effects where the datasheet gives some.

mod common;

use std::time::Duration;

use common::*;
use platform_mock::ViolationKind;

/// (offset, value, where Linux writes it).
const LINUX_WRITES: &[(u32, u32, &str)] = &[
    (0x00018, 1 << 16, "ixgbe_start_hw_generic: CTRL_EXT.NS_DIS"),
    (0x04904, 5, "ixgbe_start_hw_gen2: RTTDQSEL"),
    (0x04984, 0, "ixgbe_start_hw_gen2: RTTBCNRC"),
    (0x04218, 0x0180, "ixgbe_setup_fc_generic: PCS1GANA"),
    (0x04208, 0, "PCS1GLCTL"),
    (0x04294, 0x8, "ixgbe_fc_enable_generic: MFLCN"),
    (0x03D00, 0x8, "FCCFG"),
    (0x03220, 0, "FCRTL_82599(0)"),
    (0x03260, 0x7_FFE0, "FCRTH_82599(0)"),
    (0x03200, 0x0068_0068, "FCTTV(0)"),
    (0x032A0, 0x34, "FCRTV"),
    (0x00020, 0x0808, "laser control: ESDP"),
    (0x0425C, 0, "MSCA (idle)"),
    (0x014F00, 0x0B1D, "ixgbe_setup_sfp_modules_82599: CORECTL"),
    (0x08C00, 0, "ixgbe_ptp_set_timestamp_mode: TSYNCTXCTL"),
    (0x05188, 0, "TSYNCRXCTL"),
    (0x05120, 0, "RXMTRL"),
    (
        0x08C14,
        0x0100_0000,
        "ixgbe_ptp_start_cyclecounter: TIMINCA",
    ),
    (0x08C0C, 0, "SYSTIML"),
    (0x08C10, 0, "SYSTIMH"),
    (0x0F000, 0x0800_0000, "ixgbe_set_rx_mode: VMOLR(0)"),
    (0x05088, 0x8100, "VLNCTRL"),
    (0x0EA00, 0x1330, "ixgbe_setup_psrtype: PSRTYPE(0)"),
    (0x05480, 0x1330, "PSRTYPE 82598 alias"),
    (0x05818, 0x0033_0001, "ixgbe_setup_mrqc: MRQC (alias)"),
    (0x05C80, 0x1234_5678, "RSSRK(0) (alias)"),
    (0x05C00, 0x0302_0100, "RETA(0) (alias)"),
    (0x03028, 1 << 7, "ixgbe_setup_rdrxctl: RSCDBU"),
    (0x04268, 0x05F2_0000, "ixgbe_set_rx_buffer_len: MAXFRS"),
    (0x05008, 0, "RFCTL"),
    (0x08220, 0, "ixgbe_disable_rx_generic: PFDTXGSWC"),
    (0x0EE68, 0x3DAD_14E2, "ixgbe_fdir_enable_82599: FDIRHKEY"),
    (0x0EE6C, 0x174D_3614, "FDIRSKEY"),
    (
        0x0EE28,
        0,
        "ixgbe_fdir_add_signature_filter_82599: FDIRHASH",
    ),
    (0x0C800, 0, "RTTUP2TC"),
    (0x11074, 2, "DCA_CTRL (DCA disabled)"),
    (0x05810, 0xFFFF_FFFF, "WUS"),
    (0x05808, 0, "WUFC"),
    (0x08800, 0, "SECTXCTRL"),
    (0x00898, 0xC000_0030, "ixgbe_setup_gpie: GPIE"),
    (0x00AD0, 0xFFFF_FFFF, "EIAM_EX(0)"),
    (0x00AD4, 0xFFFF_FFFF, "EIAM_EX(1)"),
    (0x00900, 0x8080_8080, "ixgbe_set_ivar: IVAR(0)"),
    (0x00A00, 0x8000, "IVAR_MISC"),
    (0x00820, 1950, "EITR(0)"),
    (0x12300, 1950, "EITR(24)"),
    (0x00810, 0x4000_FFFF, "EIAC"),
];

#[test]
fn linux_probe_and_open_writes_are_known_registers() {
    let (sim, _nic, p) = one_nic();
    for &(off, v, what) in LINUX_WRITES {
        wr(&p, off, v);
        let unknown: Vec<_> = sim
            .violations()
            .into_iter()
            .filter(|x| x.kind == ViolationKind::UnknownRegister)
            .collect();
        assert!(unknown.is_empty(), "{what} ({off:#x}): {unknown:#?}");
    }
    assert_eq!(rd(&p, 0x0EA00), 0x1330, "PSRTYPE via its alias");
    assert_eq!(rd(&p, 0x0F000), 0x0800_0000);
    // EITR.CNT_WDIS (bit 31) is write-only, in both banks.
    wr(&p, 0x00824, (1 << 31) | 200);
    wr(&p, 0x12304, (1 << 31) | 200);
    assert_eq!(rd(&p, 0x00824), 200);
    assert_eq!(rd(&p, 0x12304), 200);
}

#[test]
fn self_completing_bits() {
    let (sim, _nic, p) = one_nic();
    // ixgbe_up_complete sets CTRL_EXT.PFRSTD, which self-clears.
    wr(&p, 0x00018, (1 << 28) | (1 << 14));
    assert_eq!(rd(&p, 0x00018), 1 << 28);
    // ixgbe_fdir_enable_82599 polls FDIRCTRL.INIT_DONE.
    wr(&p, 0x0EE00, 0x0000_0002);
    assert_ne!(rd(&p, 0x0EE00) & (1 << 3), 0);
    // FDIRCMD commands complete at once.
    wr(&p, 0x0EE2C, 0x0000_0001 | (1 << 3));
    assert_eq!(rd(&p, 0x0EE2C) & 3, 0);
    // ixgbe_disable_rx_queue: RXDCTL.SWFLSH self-clears.
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    wr(&p, rx_base(0) + 0x28, 1 << 26);
    assert_eq!(rd(&p, rx_base(0) + 0x28) & (1 << 26), 0);
    p_delay(&p);
    assert_eq!(rd(&p, rx_base(0) + 0x28) & ENABLE, 0, "queue disabled");
    // IPsec: the offload is fused off, so Linux's ixgbe_init_ipsec_offload gives up early;
    // the ready bits follow the disable bits.
    assert_ne!(rd(&p, 0x08804) & 2, 0, "SECTX_OFF_DIS");
    assert_ne!(rd(&p, SECRXSTAT) & 2, 0, "SECRX_OFF_DIS");
    wr(&p, 0x08800, 1 << 1);
    assert_ne!(rd(&p, 0x08804) & 1, 0, "SECTX_RDY");
    assert_no_violations(&sim);
}

fn p_delay(p: &platform_mock::SimPlatform) {
    use ixgbe_core::Platform;
    p.delay(Duration::from_micros(10));
}
