//! VFIO: device access through the kernel's vfio-pci driver and the IOMMU.
//!
//! Structures and constants come from the `vfio-bindings` crate (generated from the kernel's
//! `linux/vfio.h`); the ioctl request numbers are `_IO(VFIO_TYPE, VFIO_BASE + n)` as that header
//! defines them (the header's macros are not turned into constants by bindgen).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::mem::size_of;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use vfio_bindings::bindings::vfio as sys;

use crate::error::Error;
use crate::pci::PciAddress;
use crate::sys::{ioctl_ptr, ioctl_val, Mapping};

/// `_IO(VFIO_TYPE, VFIO_BASE + nr)`: no direction or size bits.
const fn vfio_io(nr: u32) -> u32 {
    ((sys::VFIO_TYPE as u32) << 8) | (sys::VFIO_BASE + nr)
}

const VFIO_GET_API_VERSION: u32 = vfio_io(0);
const VFIO_CHECK_EXTENSION: u32 = vfio_io(1);
const VFIO_SET_IOMMU: u32 = vfio_io(2);
const VFIO_GROUP_GET_STATUS: u32 = vfio_io(3);
const VFIO_GROUP_SET_CONTAINER: u32 = vfio_io(4);
const VFIO_GROUP_GET_DEVICE_FD: u32 = vfio_io(6);
const VFIO_DEVICE_GET_REGION_INFO: u32 = vfio_io(8);
const VFIO_IOMMU_MAP_DMA: u32 = vfio_io(13);
const VFIO_IOMMU_UNMAP_DMA: u32 = vfio_io(14);

fn argsz<T>() -> u32 {
    size_of::<T>() as u32
}

fn vfio_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| {
        if source.kind() == io::ErrorKind::PermissionDenied {
            Error::PermissionDenied {
                what,
                fix:
                    "chown /dev/vfio/<group> to your user (scripts/bind-vfio.sh <address> <user>) \
                      and raise the locked-memory limit (ulimit -l)"
                        .into(),
            }
        } else {
            Error::Vfio { what, source }
        }
    }
}

/// First IOVA handed out: above the 32-bit MMIO/MSI window.
const IOVA_BASE: u64 = 1 << 32;

/// A VFIO container: one IOMMU context, and the IOVA space of every device in it.
///
/// One per process (per `/dev` root): every device this process opens joins the same container,
/// so DMA memory mapped for one device is reachable by the others at the same IOVA. A forwarder
/// hands the buffers a packet was received into on one port to another port's transmit ring;
/// with a container per device the second port would read other memory at that IOVA.
#[derive(Debug)]
struct Container {
    file: File,
    iova: Mutex<IovaSpace>,
}

/// The IOVA space of a container: free ranges (start, len) and the first never-used IOVA.
#[derive(Debug)]
struct IovaSpace {
    free: Vec<(u64, u64)>,
    next: u64,
}

impl IovaSpace {
    /// First fit among freed ranges, else fresh space.
    fn alloc(&mut self, len: u64) -> u64 {
        if let Some(i) = self.free.iter().position(|&(_, l)| l >= len) {
            let (start, l) = self.free[i];
            if l == len {
                self.free.swap_remove(i);
            } else {
                self.free[i] = (start + len, l - len);
            }
            return start;
        }
        let start = self.next;
        self.next += len;
        start
    }

    fn release(&mut self, start: u64, len: u64) {
        if start + len == self.next {
            self.next = start;
        } else {
            self.free.push((start, len));
        }
    }
}

/// The containers of this process, by `/dev` root (tests use fake roots).
static CONTAINERS: Mutex<Vec<(PathBuf, Weak<Container>)>> = Mutex::new(Vec::new());

/// An open VFIO device: its group and device file descriptors, and the shared container.
///
/// Field order is drop order: the device is closed before its group, the group before the
/// container (closed with its last device).
#[derive(Debug)]
pub(crate) struct Vfio {
    device: File,
    _group: File,
    container: Arc<Container>,
    config_offset: u64,
}

/// A region of the device file: where it is (offset into the device fd) and how large.
#[derive(Debug, Clone, Copy)]
struct Region {
    offset: u64,
    size: u64,
    flags: u32,
}

impl Vfio {
    /// Opens (or joins) the process's container, attaches the group, selects the Type1 IOMMU
    /// for a new container, and opens the device.
    pub(crate) fn open(dev_root: &Path, group: u32, addr: &PciAddress) -> Result<Vfio, Error> {
        let rw = |path: &Path| OpenOptions::new().read(true).write(true).open(path);
        // Held until the group is attached, so two threads never both set up one container.
        let mut containers = CONTAINERS.lock().unwrap_or_else(|p| p.into_inner());
        containers.retain(|(_, c)| c.strong_count() > 0);
        let shared = containers
            .iter()
            .find(|(root, _)| root == dev_root)
            .and_then(|(_, c)| c.upgrade());
        let fresh = shared.is_none();
        let container = match shared {
            Some(c) => c,
            None => Arc::new(Container {
                file: open_container(dev_root)?,
                iova: Mutex::new(IovaSpace {
                    free: Vec::new(),
                    next: IOVA_BASE,
                }),
            }),
        };

        let group_path = dev_root.join(format!("vfio/{group}"));
        let group_file =
            rw(&group_path).map_err(vfio_err(format!("open {}", group_path.display())))?;
        let mut status = sys::vfio_group_status {
            argsz: argsz::<sys::vfio_group_status>(),
            flags: 0,
        };
        // SAFETY: VFIO_GROUP_GET_STATUS takes a vfio_group_status, whose argsz covers it.
        unsafe { ioctl_ptr(&group_file, VFIO_GROUP_GET_STATUS, &mut status) }
            .map_err(vfio_err("VFIO_GROUP_GET_STATUS"))?;
        if status.flags & sys::VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(Error::IommuGroupNotViable { group });
        }
        let mut container_fd = std::os::fd::AsRawFd::as_raw_fd(&container.file);
        // SAFETY: VFIO_GROUP_SET_CONTAINER reads one int, the container fd.
        unsafe { ioctl_ptr(&group_file, VFIO_GROUP_SET_CONTAINER, &mut container_fd) }
            .map_err(vfio_err("VFIO_GROUP_SET_CONTAINER"))?;
        if fresh {
            // Only once per container, after its first group is attached.
            ioctl_val(
                &container.file,
                VFIO_SET_IOMMU,
                sys::VFIO_TYPE1_IOMMU.into(),
            )
            .map_err(vfio_err("VFIO_SET_IOMMU(TYPE1)"))?;
            containers.push((dev_root.to_path_buf(), Arc::downgrade(&container)));
        }
        drop(containers);

        let name = CString::new(addr.to_string()).expect("a PCI address has no NUL byte");
        // SAFETY: VFIO_GROUP_GET_DEVICE_FD reads a NUL-terminated string, which `name` is; the
        // kernel does not write through the pointer.
        let fd = unsafe {
            ioctl_ptr(
                &group_file,
                VFIO_GROUP_GET_DEVICE_FD,
                name.as_ptr().cast_mut(),
            )
        }
        .map_err(vfio_err("VFIO_GROUP_GET_DEVICE_FD"))?;
        // SAFETY: the ioctl returned a new file descriptor that nothing else owns.
        let device = unsafe { <File as std::os::fd::FromRawFd>::from_raw_fd(fd) };

        let config = region_info(&device, sys::VFIO_PCI_CONFIG_REGION_INDEX)?;
        Ok(Vfio {
            device,
            _group: group_file,
            container,
            config_offset: config.offset,
        })
    }

    /// The device fd (for interrupt set-up).
    pub(crate) fn device(&self) -> &File {
        &self.device
    }

    /// The configuration space region: the device fd and the offset of config byte 0.
    pub(crate) fn config(&self) -> (&File, u64) {
        (&self.device, self.config_offset)
    }

    /// Maps BAR0 through the device fd.
    pub(crate) fn map_bar0(&self) -> Result<Mapping, Error> {
        let bar = region_info(&self.device, sys::VFIO_PCI_BAR0_REGION_INDEX)?;
        if bar.flags & sys::VFIO_REGION_INFO_FLAG_MMAP == 0 || bar.size == 0 {
            return Err(Error::Vfio {
                what: "BAR0 region info".into(),
                source: io::Error::new(io::ErrorKind::Unsupported, "BAR0 cannot be mmapped"),
            });
        }
        let len = usize::try_from(bar.size).expect("BAR0 size fits in usize");
        Mapping::map_file(&self.device, bar.offset, len).map_err(|source| Error::Mmap {
            what: "BAR0 (VFIO region 0)".into(),
            source,
        })
    }

    /// Maps `len` bytes at `vaddr` into the IOMMU at `iova`, readable and writable by the device.
    pub(crate) fn map_dma(&self, vaddr: usize, iova: u64, len: usize) -> io::Result<()> {
        let mut map = sys::vfio_iommu_type1_dma_map {
            argsz: argsz::<sys::vfio_iommu_type1_dma_map>(),
            flags: sys::VFIO_DMA_MAP_FLAG_READ | sys::VFIO_DMA_MAP_FLAG_WRITE,
            vaddr: vaddr as u64,
            iova,
            size: len as u64,
        };
        // SAFETY: VFIO_IOMMU_MAP_DMA reads a vfio_iommu_type1_dma_map, whose argsz covers it.
        unsafe { ioctl_ptr(&self.container.file, VFIO_IOMMU_MAP_DMA, &mut map) }.map(drop)
    }

    /// Removes an IOMMU mapping made by [`Vfio::map_dma`].
    pub(crate) fn unmap_dma(&self, iova: u64, len: usize) -> io::Result<()> {
        let mut unmap = sys::vfio_iommu_type1_dma_unmap {
            argsz: argsz::<sys::vfio_iommu_type1_dma_unmap>(),
            flags: 0,
            iova,
            size: len as u64,
            data: Default::default(),
        };
        // SAFETY: VFIO_IOMMU_UNMAP_DMA reads and writes a vfio_iommu_type1_dma_unmap (without
        // the optional bitmap, so the zero-length `data` tail is never touched); argsz covers it.
        unsafe { ioctl_ptr(&self.container.file, VFIO_IOMMU_UNMAP_DMA, &mut unmap) }.map(drop)
    }
}

impl Vfio {
    /// IOVA space for `len` bytes (a multiple of 2 MiB), shared by every device of the
    /// container.
    pub(crate) fn iova_alloc(&self, len: u64) -> u64 {
        self.iova_space().alloc(len)
    }

    /// Gives IOVA space back.
    pub(crate) fn iova_release(&self, start: u64, len: u64) {
        self.iova_space().release(start, len);
    }

    fn iova_space(&self) -> std::sync::MutexGuard<'_, IovaSpace> {
        self.container
            .iova
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// Opens `/dev/vfio/vfio` and checks the API version and Type1 support.
fn open_container(dev_root: &Path) -> Result<File, Error> {
    let container_path = dev_root.join("vfio/vfio");
    let container = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&container_path)
        .map_err(vfio_err(format!("open {}", container_path.display())))?;
    let version =
        ioctl_val(&container, VFIO_GET_API_VERSION, 0).map_err(vfio_err("VFIO_GET_API_VERSION"))?;
    if version != sys::VFIO_API_VERSION as i32 {
        return Err(Error::Vfio {
            what: format!("API version check (kernel reports {version})"),
            source: io::Error::new(io::ErrorKind::Unsupported, "unknown VFIO API version"),
        });
    }
    let has_type1 = ioctl_val(
        &container,
        VFIO_CHECK_EXTENSION,
        sys::VFIO_TYPE1_IOMMU.into(),
    )
    .map_err(vfio_err("VFIO_CHECK_EXTENSION"))?;
    if has_type1 != 1 {
        return Err(Error::Vfio {
            what: "VFIO_CHECK_EXTENSION(TYPE1_IOMMU)".into(),
            source: io::Error::new(io::ErrorKind::Unsupported, "no Type1 IOMMU support"),
        });
    }
    Ok(container)
}

fn region_info(device: &File, index: u32) -> Result<Region, Error> {
    let mut info = sys::vfio_region_info {
        argsz: argsz::<sys::vfio_region_info>(),
        flags: 0,
        index,
        cap_offset: 0,
        size: 0,
        offset: 0,
    };
    // SAFETY: VFIO_DEVICE_GET_REGION_INFO reads and writes a vfio_region_info; argsz covers only
    // the fixed part, so the kernel writes no capability chain behind it.
    unsafe { ioctl_ptr(device, VFIO_DEVICE_GET_REGION_INFO, &mut info) }
        .map_err(vfio_err(format!("VFIO_DEVICE_GET_REGION_INFO({index})")))?;
    Ok(Region {
        offset: info.offset,
        size: info.size,
        flags: info.flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_the_kernel_header() {
        // linux/vfio.h: VFIO_TYPE ';' (0x3b), VFIO_BASE 100.
        assert_eq!(VFIO_GET_API_VERSION, 0x3b64);
        assert_eq!(VFIO_GROUP_GET_DEVICE_FD, 0x3b6a);
        assert_eq!(VFIO_IOMMU_MAP_DMA, 0x3b71);
        assert_eq!(VFIO_IOMMU_UNMAP_DMA, 0x3b72);
    }
}
