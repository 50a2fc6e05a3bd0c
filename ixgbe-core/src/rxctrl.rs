//! Receive control shared by bring-up and the running device: RXCTRL.RXEN with the security
//! path handshake (§4.6.7 step 11), and the filter control value (FCTRL, §8.2.3.7.1).

use core::time::Duration;

use crate::platform::Platform;
use crate::regs::{self, Regs};
use crate::wait::until;

/// How long SECRXSTAT.SECRX_RDY may take (Intel's shared code polls 40 × 1 ms).
const SECRX_TIMEOUT: Duration = Duration::from_millis(40);

pub(crate) fn fctrl_value(
    promiscuous: bool,
) -> tock_registers::fields::FieldValue<u32, regs::FCTRL::Register> {
    if promiscuous {
        regs::FCTRL::BAM::SET + regs::FCTRL::UPE::SET + regs::FCTRL::MPE::SET
    } else {
        regs::FCTRL::BAM::SET + regs::FCTRL::UPE::CLEAR + regs::FCTRL::MPE::CLEAR
    }
}

/// §4.6.7 step 11: stop the security Rx path, wait until it is empty, set RXEN, restart it
/// (a silicon erratum workaround in Intel's drivers). A security block that does not report
/// ready in time is not fatal: Intel's shared code (Linux, DPDK) warns and goes on.
pub(crate) fn enable_rx<P: Platform>(regs: &Regs<P>) {
    regs.modify(regs::SECRXCTRL, regs::SECRXCTRL::RX_DIS::SET);
    if let Err(e) = until(
        regs.platform(),
        SECRX_TIMEOUT,
        "SECRXSTAT.SECRX_RDY",
        || regs.is_set(regs::SECRXSTAT, regs::SECRXSTAT::SECRX_RDY),
    ) {
        log::warn!("{e}: enabling receive before the security path drained");
    }
    regs.modify(regs::RXCTRL, regs::RXCTRL::RXEN::SET);
    regs.modify(regs::SECRXCTRL, regs::SECRXCTRL::RX_DIS::CLEAR);
}
