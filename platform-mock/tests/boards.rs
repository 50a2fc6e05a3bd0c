//! Board profiles and what they imply (platform-mock/src/board.rs): link rules per media, the
//! laser on SDP3, the NVM's link mode, MPSAR, SECRX_RDY timing, the SW/FW semaphore and
//! MNG_VETO, and the receive details the datasheet specifies (GORC, the PCSD = 0 field,
//! RDRXCTL fixed bits).

mod common;

use std::time::Duration;

use common::*;
use ixgbe_core::Platform;
use platform_mock::{
    Board, Fault, MpsarPowerOn, NicConfig, NicId, Sim, SimPlatform, ViolationKind,
};

const DD: u32 = 1;
const ESDP: u32 = 0x00020;
const SDP3: u32 = 1 << 3;
const SDP3_DIR: u32 = 1 << 11;
const AUTOC2: u32 = 0x042A8;
const RESTART_AN: u32 = 1 << 12;
const LMS_MASK: u32 = 0b111 << 13;
const LMS_SERIAL: u32 = 0b011 << 13;
const LMS_KX_AN: u32 = 0b100 << 13;
const MPSAR: u32 = 0x0A600;
const SWSM: u32 = 0x10140;
const SW_FW_SYNC: u32 = 0x10160;
const MMNGC: u32 = 0x042D0;
const FWSM: u32 = 0x10148;

fn nic_on(cfg: NicConfig) -> (Sim, NicId, SimPlatform) {
    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig { mac: MAC, ..cfg });
    let p = sim.platform(nic);
    (sim, nic, p)
}

fn link_up(p: &SimPlatform) -> bool {
    rd(p, LINKS) & (1 << 30) != 0
}

fn settle(sim: &Sim) {
    sim.advance(Duration::from_millis(25));
}

fn restart_an(p: &SimPlatform, autoc: u32) {
    wr(p, AUTOC, autoc | RESTART_AN);
}

#[test]
fn every_profile_names_itself_and_has_its_device_id() {
    for b in Board::ALL {
        assert_eq!(Board::from_name(b.name()), Some(b));
    }
    assert_eq!(Board::X520Sr.device_id(), 0x10FB);
    assert_eq!(Board::Backplane.device_id(), 0x10F8);
    assert!(Board::X520Da.is_sfp() && !Board::Backplane.is_sfp());
}

#[test]
fn sfp_boards_load_10g_serial_and_sfi_from_the_nvm() {
    let (sim, _nic, p) = nic_on(NicConfig::for_board(Board::X520Sr));
    settle(&sim);
    assert_eq!(rd(&p, AUTOC) & LMS_MASK, LMS_SERIAL);
    assert_eq!((rd(&p, AUTOC2) >> 16) & 3, 0b10, "10G_PMA_PMD_Serial = SFI");
    assert_eq!(rd(&p, ESDP) & (SDP3 | SDP3_DIR), SDP3_DIR, "laser on");
    assert!(link_up(&p));
    assert_no_violations(&sim);
}

#[test]
fn an_sr_link_needs_the_laser_and_sdp3_survives_a_reset() {
    let (sim, _nic, p) = nic_on(NicConfig::for_board(Board::X520Sr));
    settle(&sim);
    assert!(link_up(&p));
    // Linux's ixgbe_disable_tx_laser_multispeed_fiber: SDP3 high.
    wr(&p, ESDP, rd(&p, ESDP) | SDP3);
    assert!(!link_up(&p), "laser off: no link");
    wr(&p, CTRL, 1 << 26);
    settle(&sim);
    assert_ne!(rd(&p, ESDP) & SDP3, 0, "ESDP is not reset by CTRL.RST");
    assert!(!link_up(&p), "still dark after a software reset");
    // An input pin: the module's pull-up keeps TX_DISABLE asserted.
    wr(&p, ESDP, 0);
    settle(&sim);
    assert!(!link_up(&p), "SDP3 as an input: laser off");
    wr(&p, ESDP, SDP3_DIR);
    assert!(!link_up(&p), "the link trains first");
    settle(&sim);
    assert!(link_up(&p), "laser on again: link");
    assert_no_violations(&sim);
}

#[test]
fn a_dark_port_takes_its_cabled_partner_down_too() {
    let sim = Sim::new();
    let a = sim.add_nic(NicConfig::for_board(Board::X520Sr));
    let b = sim.add_nic(NicConfig::for_board(Board::X520Sr));
    sim.cable(a, b);
    let (pa, pb) = (sim.platform(a), sim.platform(b));
    settle(&sim);
    assert!(link_up(&pa) && link_up(&pb));
    wr(&pa, ESDP, SDP3_DIR | SDP3);
    assert!(!link_up(&pa) && !link_up(&pb));
    wr(&pa, ESDP, SDP3_DIR);
    settle(&sim);
    assert!(link_up(&pa) && link_up(&pb));
}

#[test]
fn a_copper_cable_ignores_the_laser_line() {
    let (sim, _nic, p) = nic_on(NicConfig::for_board(Board::X520Da));
    settle(&sim);
    wr(&p, ESDP, SDP3_DIR | SDP3);
    settle(&sim);
    assert!(link_up(&p));
}

#[test]
fn an_sfp_board_links_only_in_10g_serial_mode_once_applied() {
    let mut cfg = NicConfig::for_board(Board::X520Da);
    cfg.nvm.autoc = (cfg.nvm.autoc & !LMS_MASK) | LMS_KX_AN;
    let (sim, _nic, p) = nic_on(cfg);
    settle(&sim);
    assert!(!link_up(&p), "KX/KX4/KR AN on an SFP+ board: no link");
    let autoc = (rd(&p, AUTOC) & !LMS_MASK) | LMS_SERIAL;
    wr(&p, AUTOC, autoc);
    settle(&sim);
    assert!(!link_up(&p), "LMS applies only with Restart_AN");
    restart_an(&p, autoc);
    settle(&sim);
    assert!(link_up(&p));
    // A reset brings the NVM's mode back.
    wr(&p, CTRL, 1 << 26);
    settle(&sim);
    assert_eq!(rd(&p, AUTOC) & LMS_MASK, LMS_KX_AN);
    assert!(!link_up(&p));
    assert_no_violations(&sim);
}

#[test]
fn an_empty_cage_never_links() {
    let (sim, _nic, p) = nic_on(NicConfig::for_board(Board::X520NoModule));
    settle(&sim);
    restart_an(&p, rd(&p, AUTOC));
    settle(&sim);
    assert!(!link_up(&p));
}

#[test]
fn a_backplane_links_in_its_own_modes_and_not_in_serial() {
    let (sim, _nic, p) = nic_on(NicConfig::for_board(Board::Backplane));
    settle(&sim);
    assert_eq!(rd(&p, AUTOC) & LMS_MASK, LMS_KX_AN);
    assert!(link_up(&p));
    restart_an(&p, (rd(&p, AUTOC) & !LMS_MASK) | LMS_SERIAL);
    settle(&sim);
    assert!(!link_up(&p), "no SFI partner on a backplane");
}

#[test]
fn mpsar_has_no_reset_value_and_gates_receive_addresses() {
    // Random power-on content, repeatable per seed.
    let read_all = |seed| {
        let (_s, _n, p) = nic_on(NicConfig {
            mpsar: MpsarPowerOn::Random(seed),
            ..NicConfig::default()
        });
        (0..256).map(|k| rd(&p, MPSAR + 4 * k)).collect::<Vec<_>>()
    };
    assert_eq!(read_all(7), read_all(7));
    assert_ne!(read_all(7), read_all(8));
    assert!(read_all(7).iter().any(|&v| v != 0));

    let (sim, nic, p) = nic_on(NicConfig {
        mpsar: MpsarPowerOn::Zero,
        ..NicConfig::default()
    });
    settle(&sim);
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    sim.inject(nic, &frame_to(MAC, 64));
    assert_eq!(r.desc_status(0) & DD, 0, "RAR0 without a pool: filtered");
    assert_eq!(sim.wire_counters(nic).rx_filtered, 1);
    // Linux's set_rar / set_vmdq: RAR0 to pool 0.
    wr(&p, MPSAR, 1);
    sim.inject(nic, &frame_to(MAC, 64));
    assert_eq!(r.desc_status(0) & DD, DD);
    // MPSAR keeps its content across a software reset.
    wr(&p, CTRL, 1 << 26);
    settle(&sim);
    assert_eq!(rd(&p, MPSAR), 1);
    assert_no_violations(&sim);
}

#[test]
fn secrx_rdy_takes_the_drain_time_or_never_comes() {
    let (sim, nic, p) = nic_on(NicConfig {
        secrx_drain: Duration::from_millis(60),
        ..NicConfig::default()
    });
    wr(&p, SECRXCTRL, 1 << 1);
    assert_eq!(rd(&p, SECRXSTAT) & 1, 0);
    p.delay(Duration::from_millis(59));
    assert_eq!(rd(&p, SECRXSTAT) & 1, 0, "not before 60 ms");
    p.delay(Duration::from_millis(2));
    assert_eq!(rd(&p, SECRXSTAT) & 1, 1);
    wr(&p, SECRXCTRL, 0);
    assert_eq!(rd(&p, SECRXSTAT) & 1, 0, "RDY follows RX_DIS");
    sim.set_fault(nic, Fault::SecRxNeverReady);
    wr(&p, SECRXCTRL, 1 << 1);
    p.delay(Duration::from_secs(1));
    assert_eq!(rd(&p, SECRXSTAT) & 1, 0);
}

/// Intel's semaphore protocol: SWSM.SMBI, SWSM.SWESMBI, then the SW_FW_SYNC bit.
fn take_mac_csr(p: &SimPlatform) {
    assert_eq!(rd(p, SWSM) & 1, 0, "SMBI was free");
    wr(p, SWSM, 0b11);
    assert_ne!(rd(p, SWSM) & 0b10, 0, "SWESMBI taken");
    wr(p, SW_FW_SYNC, rd(p, SW_FW_SYNC) | 1 << 3);
    wr(p, SWSM, 0);
}

#[test]
fn with_manageability_autoc_needs_the_mac_csr_semaphore() {
    let (sim, _nic, p) = nic_on(NicConfig {
        manageability: true,
        ..NicConfig::default()
    });
    assert_eq!((rd(&p, FWSM) >> 1) & 7, 1, "FW_mode: manageability");
    let autoc = rd(&p, AUTOC);
    wr(&p, AUTOC, autoc | RESTART_AN);
    assert_eq!(kinds(&sim), [ViolationKind::SemaphoreNotHeld]);
    take_mac_csr(&p);
    wr(&p, AUTOC, autoc | RESTART_AN | 1);
    assert_eq!(kinds(&sim).len(), 1, "{:?}", sim.violations());
}

#[test]
fn mng_veto_forbids_link_resets_and_mode_changes() {
    let (sim, _nic, p) = nic_on(NicConfig {
        mng_veto: true,
        ..NicConfig::default()
    });
    assert_eq!(rd(&p, MMNGC) & 1, 1);
    wr(&p, CTRL, 1 << 26);
    assert_no_violations(&sim);
    settle(&sim);
    wr(&p, CTRL, 1 << 3);
    settle(&sim);
    let autoc = rd(&p, AUTOC);
    wr(&p, AUTOC, autoc | RESTART_AN);
    wr(&p, AUTOC, (autoc & !LMS_MASK) | LMS_KX_AN);
    assert_eq!(
        kinds(&sim),
        [ViolationKind::LinkResetVetoed; 3],
        "{:?}",
        sim.violations()
    );
}

#[test]
fn gorc_counts_without_the_crc_when_it_is_stripped() {
    let (sim, nic, p) = nic_on(NicConfig::default());
    settle(&sim);
    let _r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    sim.inject(nic, &frame_to(MAC, 100));
    assert_eq!(rd(&p, GORCL), 100, "CRC stripped: 100 bytes reach memory");
    assert_no_violations(&sim);
}

#[test]
fn without_pcsd_the_rss_field_holds_fragment_checksum_and_ip_id() {
    let (sim, nic, p) = nic_on(NicConfig::default());
    settle(&sim);
    let r = setup_rx(&p, 0, 8, SRRCTL_ADV_2K, None);
    let mut f = frame_to(MAC, 80);
    f[18..20].copy_from_slice(&0x1234u16.to_be_bytes());
    sim.inject(nic, &f);
    let field = (r.desc_lo(0) >> 32) as u32;
    assert_eq!(field & 0xFFFF, 0x1234, "IP identification");
    // Ones' complement sum of the IP payload (bytes 34..80).
    let mut sum: u32 = f[34..80]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    assert_eq!(field >> 16, sum);
    assert_no_violations(&sim);
}

#[test]
fn rxen_with_rscackc_or_fcoe_wrfix_clear_is_a_violation() {
    for bit in [25, 26] {
        let (sim, _nic, p) = nic_on(NicConfig::default());
        settle(&sim);
        wr(&p, RDRXCTL, RDRXCTL_GOOD & !(1 << bit));
        wr(&p, SECRXCTRL, 1 << 1);
        p.delay(Duration::from_millis(1));
        wr(&p, RXCTRL, 1);
        assert_eq!(kinds(&sim), [ViolationKind::ReservedBits], "bit {bit}");
    }
}
