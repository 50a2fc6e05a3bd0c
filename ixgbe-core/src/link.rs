//! Link set-up (datasheet §4.6.4) as the board's media needs it, and the software/firmware
//! semaphore that guards AUTOC (§10.5.4, §8.2.3.4.9–11).
//!
//! - SFP+ boards: the laser on (SDP3 an output driven low: it is the module's TX_DISABLE, and
//!   Linux's ixgbe leaves it high when it lets a port go; ESDP survives resets), then AUTOC.LMS
//!   = 10 Gb/s serial with Restart_AN, as Linux's `ixgbe_setup_sfp_modules_82599` and ixy do:
//!   a board whose NVM carries another mode would otherwise link at 1 Gb/s or not at all.
//! - Backplane and CX4 boards: the NVM's mode is the board's; only Restart_AN.
//! - Manageability firmware may own the link: with MMNGC.MNG_VETO set nothing is written
//!   (Linux's `ixgbe_check_reset_blocked`). AUTOC is written only under the MAC_CSR semaphore.

use core::time::Duration;

use crate::error::Error;
use crate::ids::Media;
use crate::platform::Platform;
use crate::regs::{self, Regs};
use crate::wait::poll;

/// How long each semaphore step may wait (Intel's shared code: 2000 × 50 µs for SWSM, 200 ×
/// 5 ms for SW_FW_SYNC).
const SWSM_TIMEOUT: Duration = Duration::from_millis(100);
const SW_FW_SYNC_TIMEOUT: Duration = Duration::from_secs(1);

/// Manageability firmware forbids link resets and link-mode changes.
pub(crate) fn reset_blocked<P: Platform>(regs: &Regs<P>) -> bool {
    regs.is_set(regs::MMNGC, regs::MMNGC::MNG_VETO)
}

/// Turns the laser on (SFP+ boards) and applies the link mode; waiting for link is
/// `Device::wait_for_link`.
pub(crate) fn setup<P: Platform>(regs: &Regs<P>, media: Media) -> Result<(), Error> {
    if media == Media::Sfp {
        // Linux's ixgbe_enable_tx_laser_multispeed_fiber, with the direction bit so the pin
        // drives the line even where the NVM left it an input.
        regs.modify(
            regs::ESDP,
            regs::ESDP::SDP3_IODIR::SET + regs::ESDP::SDP3::CLEAR,
        );
    }
    if reset_blocked(regs) {
        log::warn!("MMNGC.MNG_VETO: manageability owns the link; keeping its link settings");
        return Ok(());
    }
    let _lock = MacCsrLock::take(regs)?;
    let mut autoc = regs.get(regs::AUTOC);
    if media == Media::Sfp {
        autoc.modify(regs::AUTOC::LMS::TenGSerial);
    }
    autoc.modify(regs::AUTOC::RESTART_AN::SET);
    regs.write(regs::AUTOC, autoc.get());
    log::debug!(
        "link: AUTOC = {:#010x} ({media:?}: {})",
        autoc.get(),
        if media == Media::Sfp {
            "laser on, 10 Gb/s serial"
        } else {
            "the NVM's link mode"
        }
    );
    Ok(())
}

/// Software's hold on SW_FW_SYNC.SW_MAC_CSR, released on drop.
struct MacCsrLock<'r, P: Platform> {
    regs: &'r Regs<P>,
}

impl<'r, P: Platform> MacCsrLock<'r, P> {
    /// Intel's `ixgbe_acquire_swfw_sync`: under the SWSM semaphore, take the MAC_CSR bit once
    /// neither software nor firmware holds it.
    fn take(regs: &'r Regs<P>) -> Result<Self, Error> {
        // A failure to get SWSM ends the poll; it is reported after it.
        let mut swsm = Ok(());
        poll(
            regs.platform(),
            SW_FW_SYNC_TIMEOUT,
            "SW_FW_SYNC MAC_CSR semaphore",
            || {
                if let Err(e) = take_swsm(regs) {
                    swsm = Err(e);
                    return true;
                }
                let sync = regs.get(regs::SW_FW_SYNC);
                let free = !sync.is_set(regs::SW_FW_SYNC::SW_MAC_CSR)
                    && !sync.is_set(regs::SW_FW_SYNC::FW_MAC_CSR);
                if free {
                    regs.modify(regs::SW_FW_SYNC, regs::SW_FW_SYNC::SW_MAC_CSR::SET);
                }
                release_swsm(regs);
                free
            },
        )?;
        swsm?;
        Ok(MacCsrLock { regs })
    }
}

impl<P: Platform> Drop for MacCsrLock<'_, P> {
    fn drop(&mut self) {
        let regs = self.regs;
        // Releasing needs SWSM too; if it cannot be had the bit stays set and firmware's
        // own timeout reclaims it (§10.5.4), which is all a driver can do.
        if take_swsm(regs).is_ok() {
            regs.modify(regs::SW_FW_SYNC, regs::SW_FW_SYNC::SW_MAC_CSR::CLEAR);
            release_swsm(regs);
        } else {
            log::warn!("SWSM semaphore not free: SW_FW_SYNC.SW_MAC_CSR left set");
        }
    }
}

/// SWSM.SMBI (reading sets it: whoever reads 0 owns it), then SWSM.SWESMBI.
fn take_swsm<P: Platform>(regs: &Regs<P>) -> Result<(), Error> {
    poll(regs.platform(), SWSM_TIMEOUT, "SWSM.SMBI semaphore", || {
        !regs.is_set(regs::SWSM, regs::SWSM::SMBI)
    })?;
    poll(
        regs.platform(),
        SWSM_TIMEOUT,
        "SWSM.SWESMBI semaphore",
        || {
            regs.modify(regs::SWSM, regs::SWSM::SWESMBI::SET);
            regs.is_set(regs::SWSM, regs::SWSM::SWESMBI)
        },
    )
    .inspect_err(|_| release_swsm(regs))
}

fn release_swsm<P: Platform>(regs: &Regs<P>) {
    regs.write(regs::SWSM, 0);
}
