//! Errors of the driver core.

use core::fmt;

use crate::platform::DmaError;

/// Everything that can go wrong while bringing up or running a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A bounded poll of the device ran out of time; names the register and what was awaited.
    Timeout {
        /// What the driver was waiting for (e.g. "CTRL.RST to self-clear").
        what: &'static str,
    },
    /// The platform could not provide DMA memory.
    Dma(DmaError),
    /// A platform handed out DMA memory whose bus address cannot be found or breaks the contract.
    Translation {
        /// What was being translated.
        what: &'static str,
    },
    /// A configuration value is out of range.
    InvalidConfig {
        /// What is wrong, in one phrase.
        what: &'static str,
    },
    /// The platform's PCI device ID is not one the driver handles (`ids`).
    UnsupportedDevice {
        /// The PCI device ID.
        device: u16,
    },
    /// EEC.EE_PRES reads 0 after the auto-read: no NVM with a valid signature, so the MAC
    /// address and link settings were not loaded.
    NoEeprom,
    /// Firmware reports an error (FWSM.Ext_err_ind, datasheet §8.2.3.4.10).
    Firmware {
        /// The error code (0x01: bad NVM checksum).
        code: u8,
    },
    /// The platform could not set up or wait for interrupts.
    Interrupt {
        /// What failed, in one phrase.
        what: &'static str,
        /// The operating system's error number, when there is one.
        os_error: Option<i32>,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout { what } => write!(f, "timed out waiting for {what}"),
            Error::Dma(e) => write!(f, "DMA allocation failed: {e}"),
            Error::Translation { what } => {
                write!(
                    f,
                    "no bus address for {what}: the platform broke its contract"
                )
            }
            Error::InvalidConfig { what } => write!(f, "invalid configuration: {what}"),
            Error::UnsupportedDevice { device } => {
                match crate::ids::unsupported_reason(crate::ids::INTEL_VENDOR_ID, *device) {
                    Some(why) => write!(f, "device 8086:{device:04x} is not handled: {why}"),
                    None => write!(
                        f,
                        "device 8086:{device:04x} is not an 82599 this driver handles"
                    ),
                }
            }
            Error::NoEeprom => write!(
                f,
                "no valid EEPROM (EEC.EE_PRES = 0): MAC address and link settings were not loaded"
            ),
            Error::Firmware { code } => write!(
                f,
                "firmware reports error {code:#04x} (FWSM.Ext_err_ind{})",
                if *code == 1 {
                    ": bad EEPROM checksum"
                } else {
                    ""
                }
            ),
            Error::Interrupt {
                what,
                os_error: None,
            } => write!(f, "interrupts: {what}"),
            Error::Interrupt {
                what,
                os_error: Some(e),
            } => write!(f, "interrupts: {what} (os error {e})"),
        }
    }
}

impl From<DmaError> for Error {
    fn from(e: DmaError) -> Self {
        Error::Dma(e)
    }
}

impl core::error::Error for Error {}
