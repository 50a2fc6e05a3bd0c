//! The error type of this crate: every variant says what went wrong and what to do about it.

use std::fmt;
use std::io;
use std::path::PathBuf;

use ixgbe_core::DmaError;

use crate::pci::{PciAddress, PciIdentity};

/// Why a device could not be opened or DMA memory could not be provided.
///
/// `Display` is one sentence meant for the person running the program: it names the problem and
/// the fix.
#[derive(Debug)]
pub enum Error {
    /// The PCI address string could not be parsed.
    BadAddress {
        /// What the caller passed.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No device with that address exists under the sysfs root.
    NoSuchDevice {
        /// The address that was looked up.
        addr: PciAddress,
        /// The sysfs directory that does not exist.
        path: PathBuf,
    },
    /// The device is not one this driver supports; nothing was changed.
    Unsupported {
        /// The device's address.
        addr: PciAddress,
        /// What the device is.
        identity: PciIdentity,
        /// What would have been accepted.
        supported: String,
    },
    /// The operating system refused an operation.
    PermissionDenied {
        /// What was refused.
        what: String,
        /// How to get the permission.
        fix: String,
    },
    /// No free 2 MiB hugepages are reserved.
    NoHugepages {
        /// How to reserve them.
        fix: String,
    },
    /// The device's IOMMU group contains devices still bound to host drivers.
    IommuGroupNotViable {
        /// The IOMMU group number.
        group: u32,
    },
    /// `mmap` (of BAR0 or of DMA memory) failed.
    Mmap {
        /// What was being mapped.
        what: String,
        /// The operating system's error.
        source: io::Error,
    },
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A VFIO ioctl or VFIO file failed.
    Vfio {
        /// Which step failed.
        what: String,
        /// The operating system's error.
        source: io::Error,
    },
}

impl Error {
    /// Builds an [`Error::Io`], turning `EACCES`/`EPERM` into [`Error::PermissionDenied`].
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if source.kind() == io::ErrorKind::PermissionDenied {
            Error::PermissionDenied {
                what: format!("access to {}", path.display()),
                fix: "run as root, or bind the device to vfio-pci with scripts/bind-vfio.sh \
                      <address> <user> and run as that user"
                    .into(),
            }
        } else {
            Error::Io { path, source }
        }
    }

    /// The closest [`DmaError`] for an error met while allocating DMA memory.
    pub(crate) fn to_dma_error(&self) -> DmaError {
        match self {
            Error::NoHugepages { .. } | Error::Mmap { .. } => DmaError::OutOfMemory,
            Error::PermissionDenied { .. } => DmaError::PermissionDenied,
            _ => DmaError::MapFailed,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::BadAddress { input, reason } => write!(
                f,
                "bad PCI address {input:?} ({reason}): give it as DDDD:BB:DD.F or BB:DD.F, \
                 e.g. 0000:03:00.0, as `lspci -D` prints it"
            ),
            Error::NoSuchDevice { addr, path } => write!(
                f,
                "no PCI device {addr} ({} does not exist): check the address with `lspci -D`",
                path.display()
            ),
            Error::Unsupported {
                addr,
                identity,
                supported,
            } => write!(
                f,
                "refusing {addr}: {identity} is not a supported device ({supported}); \
                 nothing was changed"
            ),
            Error::PermissionDenied { what, fix } => {
                write!(f, "permission denied for {what}: {fix}")
            }
            Error::NoHugepages { fix } => write!(f, "no free 2 MiB hugepages reserved: {fix}"),
            Error::IommuGroupNotViable { group } => write!(
                f,
                "IOMMU group {group} is not viable: bind every device listed in \
                 /sys/kernel/iommu_groups/{group}/devices to vfio-pci (scripts/bind-vfio.sh) \
                 or unbind it from its driver"
            ),
            Error::Mmap { what, source } => write!(
                f,
                "could not map {what} ({source}): check that the device is enabled and that \
                 enough hugepages and locked memory are available"
            ),
            Error::Io { path, source } => write!(
                f,
                "I/O error on {} ({source}): check that the file exists and is accessible",
                path.display()
            ),
            Error::Vfio { what, source } => write!(
                f,
                "VFIO {what} failed ({source}): check that vfio-pci is loaded and the device is \
                 bound to it with scripts/bind-vfio.sh"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Mmap { source, .. } | Error::Io { source, .. } | Error::Vfio { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}
