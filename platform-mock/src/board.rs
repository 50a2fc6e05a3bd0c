//! Boards: what the 82599 is soldered to. A board fixes the PCI device ID (which tells drivers
//! the media, as Linux's `ixgbe_get_media_type_82599` decides from it), the module in the SFP+
//! cage, and the values the NVM loads into the link registers at power-on and at every
//! software reset (AUTOC, AUTOC2: datasheet §8.2.3.22.19/22, "loaded from the EEPROM"; ESDP:
//! §8.2.3.1.4, loaded at LAN Power Good only, so it survives CTRL.RST).
//!
//! Link rules the model applies (datasheet §3.7, §4.6.4):
//! - **SFP+ boards** (media "fiber" by device ID): the MAC links at 10 Gb/s only in 10 Gb/s
//!   serial mode, AUTOC.LMS = 011b with AUTOC2.10G_PMA_PMD_Serial = 10b (SFI), as applied at
//!   the last reset or AUTOC.Restart_AN; a module must sit in the cage; an optical module
//!   must have its laser on. The laser is the module's TX_DISABLE line, which these boards wire
//!   to SDP3: on while SDP3 is an output (ESDP.SDP3_IODIR = 1) driven low, off when driven high
//!   or left an input (the module's pull-up disables the transmitter, SFF-8431 §2.4.3). A
//!   partner that receives no light reports a remote fault (IEEE 802.3 §46.3.4), so the model
//!   takes the link as down on both ends. A passive copper cable has no transmitter: SDP3
//!   does not matter.
//! - **Backplane boards** (KX4 / KX / KR): the link trains in the modes that include 10 Gb/s on
//!   the backplane, LMS = 001b (KX4, no AN) or 100b/110b/111b (KX/KX4/KR auto-negotiation); 10
//!   Gb/s serial (011b) has no partner on a backplane and never links.

use std::time::Duration;

use crate::regs::{AUTOC_INIT, AUTOC_LMS_10G_SERIAL, AUTOC_LMS_SHIFT};
use crate::sfp::SfpModule;

/// ESDP bit 3: SDP3 data (on SFP+ boards the module's TX_DISABLE).
pub const ESDP_SDP3: u32 = 1 << 3;
/// ESDP bit 11: SDP3 direction (1 = output).
pub const ESDP_SDP3_DIR: u32 = 1 << 11;
/// AUTOC2 bits 17:16, 10G_PMA_PMD_Serial: 10b = SFI.
pub const AUTOC2_PMA_SERIAL_SFI: u32 = 0b10 << 16;
/// AUTOC2 bits 17:16 mask.
pub const AUTOC2_PMA_SERIAL_MASK: u32 = 0b11 << 16;

/// The board profiles the model offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Board {
    /// Intel X520-DA2 (82599ES SFI/SFP+, 8086:10FB) with a passive direct-attach copper cable.
    #[default]
    X520Da,
    /// The same board with a 10GBASE-SR optical module.
    X520Sr,
    /// The same board with an empty SFP+ cage.
    X520NoModule,
    /// A KX4/KX/KR backplane board (82599 Combo Backplane, 8086:10F8; mezzanine or blade).
    Backplane,
}

impl Board {
    /// Every profile, in the order [`Board::name`] lists them.
    pub const ALL: [Board; 4] = [
        Board::X520Da,
        Board::X520Sr,
        Board::X520NoModule,
        Board::Backplane,
    ];

    /// Short name (`ixgbe-sim --board`).
    pub fn name(self) -> &'static str {
        match self {
            Board::X520Da => "x520-da",
            Board::X520Sr => "x520-sr",
            Board::X520NoModule => "x520-empty",
            Board::Backplane => "backplane",
        }
    }

    /// The profile called `name` (see [`Board::name`]).
    pub fn from_name(name: &str) -> Option<Board> {
        Board::ALL.into_iter().find(|b| b.name() == name)
    }

    /// PCI device ID.
    pub fn device_id(self) -> u16 {
        match self {
            Board::Backplane => 0x10F8,
            _ => 0x10FB,
        }
    }

    /// PCI subsystem ID (vendor 0x8086): 0x000C is "Ethernet Server Adapter X520-2" in
    /// pci.ids. The backplane board keeps it (drivers do not key on the subsystem).
    pub fn subsystem_id(self) -> u16 {
        0x000C
    }

    /// The module in the cage.
    pub fn module(self) -> SfpModule {
        match self {
            Board::X520Da => SfpModule::DirectAttachCopper,
            Board::X520Sr => SfpModule::SrOptical,
            Board::X520NoModule | Board::Backplane => SfpModule::None,
        }
    }

    /// What the NVM loads into the link registers.
    pub fn nvm(self) -> NvmLink {
        match self {
            Board::Backplane => NvmLink {
                // The datasheet's AUTOC default: KX/KX4/KR auto-negotiation (LMS = 100b).
                autoc: AUTOC_INIT,
                // 10G_PMA_PMD_Serial = 00b: KR.
                autoc2: 0,
                esdp: 0,
            },
            _ => NvmLink {
                // 10 Gb/s serial (SFI) without auto-negotiation, the mode Linux and ixy select
                // on SFP+ boards.
                autoc: (AUTOC_INIT & !(0b111 << AUTOC_LMS_SHIFT)) | AUTOC_LMS_10G_SERIAL,
                autoc2: AUTOC2_PMA_SERIAL_SFI,
                // SDP3 an output driven low: the laser is on from power-up (drivers that never
                // touch SDP3, as ixy, link on SR boards fresh from power-on).
                esdp: ESDP_SDP3_DIR,
            },
        }
    }

    /// SFP+ board (link through the cage) rather than backplane.
    pub fn is_sfp(self) -> bool {
        media_is_sfp(self.device_id())
    }
}

/// An 82599 SFP+ device ID (Linux `ixgbe_get_media_type_82599`: media "fiber"); every other
/// supported ID is taken as a backplane or fixed link.
pub fn media_is_sfp(device_id: u16) -> bool {
    matches!(
        device_id,
        0x10FB | 0x1507 | 0x1529 | 0x154D | 0x154A | 0x1557
    )
}

/// Link register values the NVM loads (at power-on and on every CTRL.RST / LRST for AUTOC and
/// AUTOC2; at power-on only for ESDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NvmLink {
    /// AUTOC.
    pub autoc: u32,
    /// AUTOC2.
    pub autoc2: u32,
    /// ESDP (direction and data of the software-definable pins).
    pub esdp: u32,
}

/// What MPSAR holds at power-on: the datasheet gives no reset value (§8.2.3.7.10: "software
/// should initialize these registers"), so any content is possible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpsarPowerOn {
    /// Random bits from a seeded generator (repeatable).
    Random(u64),
    /// All zero: no receive address is associated with any pool.
    Zero,
}

impl Default for MpsarPowerOn {
    fn default() -> Self {
        MpsarPowerOn::Random(0x5EED_3A11)
    }
}

/// Default time from SECRXCTRL.RX_DIS to SECRXSTAT.SECRX_RDY: the security block drains what
/// it holds (the datasheet gives no bound; Intel's shared code in Linux and DPDK polls 40 × 1 ms,
/// then warns and goes on).
pub const SECRX_DRAIN: Duration = Duration::from_micros(30);
