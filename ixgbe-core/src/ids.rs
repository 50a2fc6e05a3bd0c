//! PCI identities the driver supports: the 82599 family (82599 datasheet §9.3.3.2; device IDs as
//! listed in Linux and DPDK `ixgbe_type.h`, see `82599.md` §1.1).
//!
//! X540 and X550 share most of the register map but differ in PHY, link and reset handling that
//! this driver does not implement, so they are deliberately not listed: a platform asks
//! [`supported_device`] before it takes a device over and refuses anything else.

/// Intel's PCI vendor ID.
pub const INTEL_VENDOR_ID: u16 = 0x8086;

/// PCI class code of an Ethernet controller (class 0x02, subclass 0x00).
pub const CLASS_ETHERNET: u32 = 0x02_0000;

/// One supported PCI identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceInfo {
    /// PCI vendor ID.
    pub vendor: u16,
    /// PCI device ID.
    pub device: u16,
    /// Marketing or macro name.
    pub name: &'static str,
}

const fn intel(device: u16, name: &'static str) -> DeviceInfo {
    DeviceInfo {
        vendor: INTEL_VENDOR_ID,
        device,
        name,
    }
}

/// Every physical-function device ID of the 82599 family (VFs need a different driver).
pub const SUPPORTED_DEVICES: &[DeviceInfo] = &[
    intel(0x10F7, "82599 KX4"),
    intel(0x1514, "82599 KX4 Mezzanine"),
    intel(0x1517, "82599 KR"),
    intel(0x10F8, "82599 Combo Backplane"),
    intel(0x10F9, "82599 CX4"),
    intel(0x10FB, "82599ES SFI/SFP+"),
    intel(0x1507, "82599 SFP EM"),
    intel(0x1529, "82599 SFP FCoE"),
    intel(0x152A, "82599 Backplane FCoE"),
    intel(0x154D, "82599 SFP SF2"),
    intel(0x154A, "82599 SFP SF QP"),
    intel(0x1558, "82599 QSFP SF QP"),
    intel(0x1557, "82599EN SFP"),
    intel(0x10FC, "82599 XAUI LOM"),
    intel(0x151C, "82599 T3 LOM"),
    intel(0x154F, "82599 LS"),
    intel(0x155D, "82599 Bypass"),
];

/// Looks up a PCI identity; `None` means the driver must not take the device over.
pub fn supported_device(vendor: u16, device: u16) -> Option<&'static DeviceInfo> {
    SUPPORTED_DEVICES
        .iter()
        .find(|d| d.vendor == vendor && d.device == device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x520_is_supported_and_others_are_not() {
        assert_eq!(
            supported_device(0x8086, 0x10FB).map(|d| d.device),
            Some(0x10FB)
        );
        // X540-T (same vendor, not handled), an 82576 (igb) and a virtio NIC.
        assert!(supported_device(0x8086, 0x1528).is_none());
        assert!(supported_device(0x8086, 0x10C9).is_none());
        assert!(supported_device(0x1AF4, 0x1000).is_none());
    }
}
