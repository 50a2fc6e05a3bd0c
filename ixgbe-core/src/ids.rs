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

/// How the MAC reaches the wire, which decides the link set-up (Linux's
/// `ixgbe_get_media_type_82599` maps device IDs the same way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Media {
    /// An SFP+ cage (X520-DA/SR/LR): 10 Gb/s serial (SFI) link mode, the module's laser on
    /// SDP3.
    Sfp,
    /// A KX4 / KX / KR backplane or a XAUI link: the NVM's link mode is the board's.
    Backplane,
    /// A CX4 connector: the NVM's link mode is the board's.
    Cx4,
}

/// One supported PCI identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceInfo {
    /// PCI vendor ID.
    pub vendor: u16,
    /// PCI device ID.
    pub device: u16,
    /// Marketing or macro name.
    pub name: &'static str,
    /// How the link is set up.
    pub media: Media,
}

const fn intel(device: u16, name: &'static str, media: Media) -> DeviceInfo {
    DeviceInfo {
        vendor: INTEL_VENDOR_ID,
        device,
        name,
        media,
    }
}

/// Every physical-function device ID of the 82599 family this driver handles (VFs need a
/// different driver; see [`unsupported_reason`] for the family members it does not handle).
pub const SUPPORTED_DEVICES: &[DeviceInfo] = &[
    intel(0x10F7, "82599 KX4", Media::Backplane),
    intel(0x1514, "82599 KX4 Mezzanine", Media::Backplane),
    intel(0x1517, "82599 KR", Media::Backplane),
    intel(0x10F8, "82599 Combo Backplane", Media::Backplane),
    intel(0x152A, "82599 Backplane FCoE", Media::Backplane),
    intel(0x10FC, "82599 XAUI LOM", Media::Backplane),
    intel(0x10F9, "82599 CX4", Media::Cx4),
    intel(0x10FB, "82599ES SFI/SFP+", Media::Sfp),
    intel(0x1507, "82599 SFP EM", Media::Sfp),
    intel(0x1529, "82599 SFP FCoE", Media::Sfp),
    intel(0x154D, "82599 SFP SF2", Media::Sfp),
    intel(0x154A, "82599 SFP SF QP", Media::Sfp),
    intel(0x1557, "82599EN SFP", Media::Sfp),
];

/// 82599-family device IDs the driver refuses, with the reason: they need PHY, QSFP or
/// bypass handling it does not have.
const REFUSED: &[(u16, &str)] = &[
    (
        0x151C,
        "82599 T3 LOM: an external 10GBASE-T PHY needs MDIO set-up this driver lacks",
    ),
    (
        0x154F,
        "82599 LS: LCO fiber needs laser and link handling this driver lacks",
    ),
    (
        0x1558,
        "82599 QSFP SF QP: QSFP+ modules need handling this driver lacks",
    ),
    (
        0x155D,
        "82599 Bypass: the bypass logic needs handling this driver lacks",
    ),
];

/// Looks up a PCI identity; `None` means the driver must not take the device over.
pub fn supported_device(vendor: u16, device: u16) -> Option<&'static DeviceInfo> {
    SUPPORTED_DEVICES
        .iter()
        .find(|d| d.vendor == vendor && d.device == device)
}

/// Why an 82599-family device that [`supported_device`] refuses is not handled (`None` for a
/// device that is not of the family at all).
pub fn unsupported_reason(vendor: u16, device: u16) -> Option<&'static str> {
    if vendor != INTEL_VENDOR_ID {
        return None;
    }
    REFUSED.iter().find(|r| r.0 == device).map(|r| r.1)
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

    #[test]
    fn family_members_without_their_phy_or_module_handling_are_refused_by_name() {
        for id in [0x151C, 0x154F, 0x1558, 0x155D] {
            assert!(supported_device(0x8086, id).is_none(), "{id:#x}");
            assert!(unsupported_reason(0x8086, id).is_some(), "{id:#x}");
        }
        assert_eq!(unsupported_reason(0x8086, 0x10FB), None);
        assert_eq!(
            supported_device(0x8086, 0x10F8).map(|d| d.media),
            Some(Media::Backplane)
        );
    }
}
