//! PCI addresses, identities and the sysfs files that describe a device.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::Error;

/// A PCI address: domain, bus, device and function (`0000:03:00.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    /// PCI domain (segment), usually 0.
    pub domain: u16,
    /// Bus number.
    pub bus: u8,
    /// Device number, below 32.
    pub device: u8,
    /// Function number, below 8.
    pub function: u8,
}

impl PciAddress {
    /// The device's directory: `<sysfs_root>/bus/pci/devices/<address>`.
    pub fn sysfs_dir(&self, sysfs_root: &Path) -> PathBuf {
        sysfs_root.join("bus/pci/devices").join(self.to_string())
    }
}

fn parse_hex<T: TryFrom<u32>>(
    input: &str,
    field: &str,
    max_digits: usize,
    what: &'static str,
) -> Result<T, Error> {
    let bad = |reason| Error::BadAddress {
        input: input.to_string(),
        reason,
    };
    if field.is_empty() || field.len() > max_digits || !field.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(bad(what));
    }
    let value = u32::from_str_radix(field, 16).map_err(|_| bad(what))?;
    T::try_from(value).map_err(|_| bad(what))
}

impl FromStr for PciAddress {
    type Err = Error;

    /// Parses `DDDD:BB:DD.F` or the short form `BB:DD.F` (domain 0), hexadecimal.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |reason| Error::BadAddress {
            input: s.to_string(),
            reason,
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (domain, bus, devfn) = match parts.as_slice() {
            [domain, bus, devfn] => (
                parse_hex::<u16>(s, domain, 4, "domain must be 1 to 4 hex digits")?,
                *bus,
                *devfn,
            ),
            [bus, devfn] => (0, *bus, *devfn),
            _ => return Err(bad("expected two or three ':'-separated fields")),
        };
        let bus = parse_hex::<u8>(s, bus, 2, "bus must be 1 or 2 hex digits")?;
        let (device, function) = devfn
            .split_once('.')
            .ok_or_else(|| bad("missing '.' before the function"))?;
        let device = parse_hex::<u8>(s, device, 2, "device must be 1 or 2 hex digits")?;
        if device >= 32 {
            return Err(bad("device must be below 0x20"));
        }
        let function = parse_hex::<u8>(s, function, 1, "function must be one digit")?;
        if function >= 8 {
            return Err(bad("function must be below 8"));
        }
        Ok(PciAddress {
            domain,
            bus,
            device,
            function,
        })
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:02x}:{:02x}.{:x}",
            self.domain, self.bus, self.device, self.function
        )
    }
}

/// What a PCI function is: vendor ID, device ID and 24-bit class code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciIdentity {
    /// Vendor ID (0x8086 for Intel).
    pub vendor: u16,
    /// Device ID (0x10fb for an 82599ES SFP+).
    pub device: u16,
    /// Class code: base class, subclass, programming interface (0x020000 for Ethernet).
    pub class: u32,
}

impl fmt::Display for PciIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04x}:{:04x} class {:06x}",
            self.vendor, self.device, self.class
        )
    }
}

/// Reads a sysfs attribute holding one hexadecimal number such as `0x8086\n`.
fn read_hex_attr(path: &Path) -> Result<u32, Error> {
    let text = fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix("0x").unwrap_or(trimmed);
    u32::from_str_radix(digits, 16).map_err(|_| {
        Error::io(
            path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a hex number: {trimmed:?}"),
            ),
        )
    })
}

/// Reads vendor, device and class of `addr` from `<sysfs_root>/bus/pci/devices/<addr>/`.
///
/// Only reads: nothing is written.
pub fn read_identity(sysfs_root: &Path, addr: &PciAddress) -> Result<PciIdentity, Error> {
    let dir = addr.sysfs_dir(sysfs_root);
    if !dir.is_dir() {
        return Err(Error::NoSuchDevice {
            addr: *addr,
            path: dir,
        });
    }
    let too_wide = |path: PathBuf| {
        Error::io(
            path,
            io::Error::new(io::ErrorKind::InvalidData, "ID wider than 16 bits"),
        )
    };
    let vendor_path = dir.join("vendor");
    let vendor = u16::try_from(read_hex_attr(&vendor_path)?).map_err(|_| too_wide(vendor_path))?;
    let device_path = dir.join("device");
    let device = u16::try_from(read_hex_attr(&device_path)?).map_err(|_| too_wide(device_path))?;
    let class = read_hex_attr(&dir.join("class"))? & 0x00ff_ffff;
    Ok(PciIdentity {
        vendor,
        device,
        class,
    })
}

/// The name of the symlink target's last component, if `link` is a symlink.
pub(crate) fn link_name(link: &Path) -> Option<String> {
    let target = fs::read_link(link).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// The IOMMU group of a device, from its `iommu_group` symlink.
pub(crate) fn iommu_group(dev_dir: &Path) -> Option<u32> {
    link_name(&dev_dir.join("iommu_group"))?.parse().ok()
}

/// The name of the kernel driver bound to a device, from its `driver` symlink (or directory).
pub(crate) fn bound_driver(dev_dir: &Path) -> Option<String> {
    let link = dev_dir.join("driver");
    link_name(&link).or_else(|| link.is_dir().then(|| "unknown".to_string()))
}

/// The PCI command register: offset in configuration space and the bits this driver sets.
pub(crate) mod command {
    /// Offset of the 16-bit command register in configuration space.
    pub const OFFSET: u64 = 4;
    /// Memory Space Enable.
    pub const MEMORY_SPACE: u16 = 1 << 1;
    /// Bus Master Enable.
    pub const BUS_MASTER: u16 = 1 << 2;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_pads() {
        let a = PciAddress {
            domain: 0,
            bus: 3,
            device: 0x1f,
            function: 7,
        };
        assert_eq!(a.to_string(), "0000:03:1f.7");
        let id = PciIdentity {
            vendor: 0x8086,
            device: 0x10fb,
            class: 0x020000,
        };
        assert_eq!(id.to_string(), "8086:10fb class 020000");
    }
}
