//! `platform-linux`: the Linux user-space [`Platform`] for `ixgbe-core`.
//!
//! [`LinuxPlatform::open`] takes an 82599 over from the kernel and gives the driver core what it
//! needs: BAR0 MMIO, DMA memory from 2 MiB hugepages, address translation and a delay. Two ways
//! in, chosen automatically ([`AccessPath`]):
//!
//! - **sysfs** (as root): the kernel driver is unbound through sysfs, BAR0 is mapped from
//!   `resource0`, physical addresses come from `/proc/self/pagemap`;
//! - **VFIO** (no root needed): when the device is bound to `vfio-pci` and `/dev/vfio/<group>`
//!   exists, BAR0 is mapped through the VFIO device and DMA memory is mapped into the IOMMU.
//!
//! Under VFIO, [`LinuxPlatform`] also implements [`InterruptPlatform`]: one eventfd per MSI-X
//! vector (MSI, then INTx, as fallbacks), waited for with a timeout. The sysfs path only polls.
//!
//! Before anything is changed the device's identity is read from sysfs and anything the driver
//! does not support is refused. All paths are parameters ([`OpenOptions`]), so tests run against
//! a fake sysfs tree in a temporary directory. See `README.md` for the real-hardware setup.
#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

mod dma;
mod error;
mod irq;
mod mmio;
mod pci;
mod sys;
mod vfio;

use std::fmt;
use std::fs::{self, File, OpenOptions as FileOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ixgbe_core::{Delivery, DmaError, DmaRegion, InterruptPlatform, Platform, PrivateRegion};

pub use error::Error;
pub use pci::{read_identity, PciAddress, PciIdentity};

use dma::{DmaPool, Translator, HUGEPAGE_FIX};
use mmio::Bar;
use pci::command;
use sys::Mapping;
use vfio::Vfio;

/// Linux capability number of `CAP_SYS_ADMIN` (needed to read PFNs from pagemap).
const CAP_SYS_ADMIN: u32 = 21;

/// How the device is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessPath {
    /// sysfs `resource0` for BAR0 and `/proc/self/pagemap` for physical addresses (root).
    Sysfs,
    /// VFIO and the IOMMU; DMA addresses are IOVAs.
    Vfio {
        /// The device's IOMMU group.
        group: u32,
    },
}

impl fmt::Display for AccessPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessPath::Sysfs => f.write_str("sysfs (root, /proc/self/pagemap)"),
            AccessPath::Vfio { group } => write!(f, "vfio (group {group}, IOMMU)"),
        }
    }
}

/// Where [`LinuxPlatform::open`] looks for the kernel's files (tests point these at fakes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// The sysfs mount, `/sys` by default.
    pub sysfs_root: PathBuf,
    /// The device directory, `/dev` by default (for `/dev/vfio`).
    pub dev_root: PathBuf,
    /// The procfs mount, `/proc` by default (for `self/pagemap` and `self/status`).
    pub proc_root: PathBuf,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            sysfs_root: PathBuf::from("/sys"),
            dev_root: PathBuf::from("/dev"),
            proc_root: PathBuf::from("/proc"),
        }
    }
}

/// A device taken over from the kernel: a cheap, clonable handle (`Arc` inside).
///
/// When the last handle is dropped, Bus Master is cleared in the command register (so the
/// device stops DMA), all DMA memory is unmapped from the IOMMU and released, and BAR0 is
/// unmapped. [`DmaRegion`]s must not be used after that.
#[derive(Clone)]
pub struct LinuxPlatform {
    inner: Arc<Inner>,
}

struct Inner {
    addr: PciAddress,
    identity: PciIdentity,
    access: AccessPath,
    /// Declared before `vfio`: BAR0 is unmapped before the device fd is closed.
    bar: Bar,
    /// Configuration space for the sysfs path (`<dev>/config`); `None` under VFIO.
    config: Option<File>,
    proc_root: PathBuf,
    dma: Mutex<DmaPool>,
    /// Private memory (ordinary pages, never mapped for the device), by start address.
    private: Mutex<std::collections::BTreeMap<usize, Mapping>>,
    /// Eventfds of the interrupts set up by `enable_interrupts` (VFIO only); shared with the
    /// threads waiting on them.
    irqs: Mutex<Option<Arc<irq::Irqs>>>,
    vfio: Option<Vfio>,
}

impl Inner {
    fn translator(&self) -> Translator<'_> {
        match &self.vfio {
            Some(vfio) => Translator::Iommu(vfio),
            None => Translator::Pagemap(&self.proc_root),
        }
    }

    fn config(&self) -> (&File, u64) {
        match (&self.vfio, &self.config) {
            (Some(vfio), _) => vfio.config(),
            (None, Some(file)) => (file, 0),
            (None, None) => unreachable!("every access path has a configuration space"),
        }
    }

    fn pool(&self) -> MutexGuard<'_, DmaPool> {
        self.dma
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Stop the device's DMA before its memory goes back to the kernel.
        let (file, base) = self.config();
        let _ = update_command(file, base, |cmd| cmd & !command::BUS_MASTER);
        let tr = self.translator();
        self.dma
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .release_all(&tr);
    }
}

/// Reads the command register, applies `f`, writes it back if it changed; returns the new value.
fn update_command(file: &File, base: u64, f: impl FnOnce(u16) -> u16) -> std::io::Result<u16> {
    let mut bytes = [0u8; 2];
    file.read_exact_at(&mut bytes, base + command::OFFSET)?;
    let old = u16::from_le_bytes(bytes);
    let new = f(old);
    if new != old {
        file.write_all_at(&new.to_le_bytes(), base + command::OFFSET)?;
    }
    Ok(new)
}

/// The `supported` text for the 82599 family.
fn supported_82599() -> String {
    let ids: Vec<String> = ixgbe_core::SUPPORTED_DEVICES
        .iter()
        .map(|d| format!("{:04x}:{:04x}", d.vendor, d.device))
        .collect();
    format!("supported: Intel 82599 family ({})", ids.join(", "))
}

/// Whether the process has `CAP_SYS_ADMIN`, from `<proc_root>/self/status`.
fn has_sys_admin(proc_root: &Path) -> Result<bool, Error> {
    let path = proc_root.join("self/status");
    let status = fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    Ok(caps >> CAP_SYS_ADMIN & 1 == 1)
}

/// Free 2 MiB hugepages according to `<sysfs_root>/kernel/mm/hugepages/hugepages-2048kB/`.
fn free_hugepages(sysfs_root: &Path) -> u64 {
    let path = sysfs_root.join("kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
    fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn open_rw(path: &Path) -> Result<File, Error> {
    FileOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

impl LinuxPlatform {
    /// Opens an 82599-family device: refuses anything [`ixgbe_core::supported_device`] rejects.
    pub fn open(addr: &PciAddress, opts: &OpenOptions) -> Result<LinuxPlatform, Error> {
        Self::open_with(
            addr,
            opts,
            &|id| ixgbe_core::supported_device(id.vendor, id.device).is_some(),
            &supported_82599(),
        )
    }

    /// Opens any device the caller's predicate accepts (tests use it for QEMU's igb/82576
    /// 0x8086:0x10c9); `supported` describes what `accept` accepts, for the error message.
    ///
    /// Order of events: read the identity (refuse before anything is written), check
    /// permissions and hugepages, then unbind the kernel driver, enable Memory Space and Bus
    /// Master, and map BAR0.
    pub fn open_with(
        addr: &PciAddress,
        opts: &OpenOptions,
        accept: &dyn Fn(&PciIdentity) -> bool,
        supported: &str,
    ) -> Result<LinuxPlatform, Error> {
        let identity = read_identity(&opts.sysfs_root, addr)?;
        if !accept(&identity) {
            // Family members the driver knows but does not handle say why.
            let supported =
                match ixgbe_core::ids::unsupported_reason(identity.vendor, identity.device) {
                    Some(why) => format!("{why}; {supported}"),
                    None => supported.to_string(),
                };
            return Err(Error::Unsupported {
                addr: *addr,
                identity,
                supported,
            });
        }
        let dev_dir = addr.sysfs_dir(&opts.sysfs_root);
        let vfio_group = pci::iommu_group(&dev_dir).filter(|group| {
            pci::bound_driver(&dev_dir).as_deref() == Some("vfio-pci")
                && opts.dev_root.join(format!("vfio/{group}")).exists()
        });
        let inner = match vfio_group {
            Some(group) => Self::take_over_vfio(addr, identity, group, opts)?,
            None => Self::take_over_sysfs(addr, identity, &dev_dir, opts)?,
        };
        Ok(LinuxPlatform {
            inner: Arc::new(inner),
        })
    }

    fn take_over_sysfs(
        addr: &PciAddress,
        identity: PciIdentity,
        dev_dir: &Path,
        opts: &OpenOptions,
    ) -> Result<Inner, Error> {
        // Checks first: nothing is changed unless the whole take-over can work.
        if !has_sys_admin(&opts.proc_root)? {
            return Err(Error::PermissionDenied {
                what: "physical addresses from /proc/self/pagemap (needs CAP_SYS_ADMIN)".into(),
                fix: format!(
                    "run as root, or use VFIO without root: scripts/bind-vfio.sh {addr} $USER"
                ),
            });
        }
        if let Some(group) = pci::iommu_group(dev_dir) {
            let kind = opts
                .sysfs_root
                .join(format!("kernel/iommu_groups/{group}/type"));
            let kind = fs::read_to_string(kind).unwrap_or_default();
            if kind.trim().starts_with("DMA") {
                return Err(Error::PermissionDenied {
                    what: format!(
                        "DMA to physical addresses (the IOMMU translates DMA for group {group})"
                    ),
                    fix: format!(
                        "use VFIO: scripts/bind-vfio.sh {addr} $USER, or boot with iommu=pt"
                    ),
                });
            }
        }
        if free_hugepages(&opts.sysfs_root) == 0 {
            return Err(Error::NoHugepages {
                fix: HUGEPAGE_FIX.into(),
            });
        }
        let config = open_rw(&dev_dir.join("config"))?;
        let resource0_path = dev_dir.join("resource0");
        let resource0 = open_rw(&resource0_path)?;
        let bar_len = resource0
            .metadata()
            .map_err(|e| Error::io(&resource0_path, e))?
            .len();

        // Take the device over.
        if pci::bound_driver(dev_dir).is_some() {
            let unbind = dev_dir.join("driver/unbind");
            FileOptions::new()
                .write(true)
                .open(&unbind)
                .and_then(|f| f.write_all_at(addr.to_string().as_bytes(), 0))
                .map_err(|e| Error::io(&unbind, e))?;
        }
        update_command(&config, 0, |c| {
            c | command::MEMORY_SPACE | command::BUS_MASTER
        })
        .map_err(|e| Error::io(dev_dir.join("config"), e))?;
        let bar_len = usize::try_from(bar_len).unwrap_or(0);
        if bar_len == 0 {
            return Err(Error::Mmap {
                what: resource0_path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "BAR0 has size 0"),
            });
        }
        let map = Mapping::map_file(&resource0, 0, bar_len).map_err(|source| Error::Mmap {
            what: resource0_path.display().to_string(),
            source,
        })?;
        Ok(Inner {
            addr: *addr,
            identity,
            access: AccessPath::Sysfs,
            bar: Bar::new(map),
            config: Some(config),
            proc_root: opts.proc_root.clone(),
            dma: Mutex::default(),
            private: Mutex::default(),
            irqs: Mutex::default(),
            vfio: None,
        })
    }

    fn take_over_vfio(
        addr: &PciAddress,
        identity: PciIdentity,
        group: u32,
        opts: &OpenOptions,
    ) -> Result<Inner, Error> {
        let vfio = Vfio::open(&opts.dev_root, group, addr)?;
        let (config, base) = vfio.config();
        update_command(config, base, |c| {
            c | command::MEMORY_SPACE | command::BUS_MASTER
        })
        .map_err(|source| Error::Vfio {
            what: "command register write".into(),
            source,
        })?;
        let bar = Bar::new(vfio.map_bar0()?);
        Ok(Inner {
            addr: *addr,
            identity,
            access: AccessPath::Vfio { group },
            bar,
            config: None,
            proc_root: opts.proc_root.clone(),
            dma: Mutex::default(),
            private: Mutex::default(),
            irqs: Mutex::default(),
            vfio: Some(vfio),
        })
    }

    /// The device's PCI address.
    pub fn address(&self) -> PciAddress {
        self.inner.addr
    }

    /// The device's vendor, device and class, as read before it was taken over.
    pub fn identity(&self) -> PciIdentity {
        self.inner.identity
    }

    /// How the device is reached.
    pub fn access_path(&self) -> AccessPath {
        self.inner.access
    }

    /// Length of the BAR0 mapping in bytes.
    pub fn bar0_len(&self) -> usize {
        self.inner.bar.len()
    }

    /// Like [`Platform::read32`], but returns `None` for an offset outside BAR0 or not a
    /// multiple of 4 instead of panicking.
    pub fn try_read32(&self, offset: u32) -> Option<u32> {
        self.inner.bar.read32(offset)
    }

    /// Like [`Platform::write32`], but returns `None` for an offset outside BAR0 or not a
    /// multiple of 4 instead of panicking.
    ///
    /// # Safety
    /// As for [`Platform::write32`].
    pub unsafe fn try_write32(&self, offset: u32, value: u32) -> Option<()> {
        self.inner.bar.write32(offset, value)
    }

    /// Like [`Platform::dma_alloc`], but with the detailed [`Error`] (e.g. [`Error::NoHugepages`]
    /// naming the fix) instead of a [`DmaError`].
    pub fn try_dma_alloc(&self, size: usize) -> Result<DmaRegion, Error> {
        let mut pool = self.inner.pool();
        let start = pool.alloc(size, &self.inner.translator())?;
        let virt = NonNull::new(start as *mut u8).expect("a mapping never starts at address 0");
        // SAFETY: the pool returns zeroed, 4096-byte-aligned memory of at least `size` bytes that
        // stays mapped and unused by anyone else until freed; a region lies within one hugepage
        // (small requests) or starts at a 2 MiB page boundary of its own mapping, and every 2 MiB
        // page is contiguous and 2 MiB-aligned in bus space (checked via pagemap, or by IOMMU
        // mapping at 2 MiB-aligned IOVAs). The cookie is the start address the pool keys it by.
        Ok(unsafe { DmaRegion::new(virt, size, start) })
    }
}

impl fmt::Debug for LinuxPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinuxPlatform")
            .field("address", &self.inner.addr)
            .field("identity", &self.inner.identity)
            .field("access", &self.inner.access)
            .field("bar0_len", &self.inner.bar.len())
            .finish()
    }
}

// SAFETY: read32/write32 perform exactly one volatile 32-bit access inside the BAR0 mapping, with
// bounds and alignment checked (panicking otherwise), an acquire fence after each read and a
// release fence before each write. DMA regions come from `try_dma_alloc` (see its SAFETY
// comment); virt_to_phys only answers for live regions, from bus addresses recorded at
// allocation. All clones share one `Arc<Inner>`; the DMA pool is behind a mutex and MMIO needs
// no lock.
unsafe impl Platform for LinuxPlatform {
    #[inline]
    fn read32(&self, offset: u32) -> u32 {
        match self.inner.bar.read32(offset) {
            Some(value) => value,
            None => panic!(
                "read32 at {offset:#x}: outside BAR0 ({:#x} bytes) or unaligned",
                self.bar0_len()
            ),
        }
    }

    #[inline]
    unsafe fn write32(&self, offset: u32, value: u32) {
        if self.inner.bar.write32(offset, value).is_none() {
            panic!(
                "write32 at {offset:#x}: outside BAR0 ({:#x} bytes) or unaligned",
                self.bar0_len()
            );
        }
    }

    fn dma_alloc(&self, size: usize) -> Result<DmaRegion, DmaError> {
        if size == 0 {
            return Err(DmaError::Unsupported);
        }
        self.try_dma_alloc(size).map_err(|e| e.to_dma_error())
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        let mut pool = self.inner.pool();
        if pool.region_len(region.cookie()) == Some(region.len()) {
            pool.free(region.cookie(), &self.inner.translator());
        }
    }

    fn private_alloc(&self, size: usize) -> Result<PrivateRegion, DmaError> {
        if size == 0 {
            return Err(DmaError::Unsupported);
        }
        let len = size.next_multiple_of(sys::page_size());
        let map =
            Mapping::anonymous(len, sys::Backing::Normal).map_err(|_| DmaError::OutOfMemory)?;
        let ptr = map.ptr();
        self.inner
            .private
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(map.addr(), map);
        // SAFETY: a fresh anonymous mapping of `len >= size` zeroed bytes, page (4096) aligned,
        // owned by this platform until private_free; it is never registered in the DMA pool nor
        // mapped in the IOMMU, so under VFIO the device cannot reach it (on the sysfs path no
        // IOMMU protects any memory; see the crate docs).
        Ok(unsafe { PrivateRegion::new(ptr, size, len) })
    }

    unsafe fn private_free(&self, region: PrivateRegion) {
        let addr = region.virt().as_ptr() as usize;
        // Dropping the mapping unmaps it.
        drop(
            self.inner
                .private
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&addr),
        );
    }

    fn virt_to_phys(&self, virt: *const u8) -> Option<u64> {
        self.inner.pool().translate(virt as usize)
    }

    fn delay(&self, duration: Duration) {
        std::thread::sleep(duration);
    }

    fn pci_device_id(&self) -> u16 {
        self.inner.identity.device
    }
}

/// What the sysfs path answers to interrupt requests.
const NEEDS_VFIO: &str = "interrupts need VFIO: bind the device to vfio-pci \
                          (scripts/bind-vfio.sh <address> <user>); the sysfs path can only poll";

fn irq_error(what: &'static str) -> impl FnOnce(std::io::Error) -> ixgbe_core::Error {
    move |e| ixgbe_core::Error::Interrupt {
        what,
        os_error: e.raw_os_error(),
    }
}

/// The process's monotonic clock origin (the hybrid policy only needs differences).
fn clock_origin() -> std::time::Instant {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(std::time::Instant::now)
}

/// Interrupts through VFIO eventfds (MSI-X, else MSI, else INTx); the sysfs path has none.
impl InterruptPlatform for LinuxPlatform {
    fn enable_interrupts(&self, vectors: u16) -> Result<Delivery, ixgbe_core::Error> {
        let Some(vfio) = &self.inner.vfio else {
            return Err(ixgbe_core::Error::Interrupt {
                what: NEEDS_VFIO,
                os_error: None,
            });
        };
        self.disable_interrupts();
        let irqs = irq::enable(vfio.device(), u32::from(vectors)).map_err(irq_error(
            "VFIO_DEVICE_SET_IRQS (MSI-X, MSI and INTx all failed)",
        ))?;
        let delivery = match irqs.kind {
            irq::Kind::MsiX => Delivery::MsiX {
                vectors: irqs.vectors() as u16,
            },
            irq::Kind::Msi | irq::Kind::Intx => Delivery::Single,
        };
        *self.inner.irqs.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(irqs));
        Ok(delivery)
    }

    fn wait_interrupt(&self, vector: u16, timeout: Duration) -> Result<u64, ixgbe_core::Error> {
        let (Some(vfio), Some(irqs)) = (
            &self.inner.vfio,
            self.inner
                .irqs
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        ) else {
            return Err(ixgbe_core::Error::Interrupt {
                what: if self.inner.vfio.is_none() {
                    NEEDS_VFIO
                } else {
                    "wait before enable_interrupts"
                },
                os_error: None,
            });
        };
        irqs.wait(vfio.device(), usize::from(vector), timeout)
            .map_err(irq_error("waiting on an interrupt eventfd"))
    }

    fn disable_interrupts(&self) {
        let old = self
            .inner
            .irqs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let (Some(vfio), Some(irqs)) = (&self.inner.vfio, old) {
            // Best effort: closing the device fd tears them down anyway.
            let _ = irq::disable(vfio.device(), &irqs);
        }
    }

    fn now(&self) -> Duration {
        clock_origin().elapsed()
    }

    fn wake(&self, vector: u16) {
        let irqs = self
            .inner
            .irqs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(irqs) = irqs {
            irqs.wake(usize::from(vector));
        }
    }
}

#[doc(hidden)]
impl LinuxPlatform {
    /// Number of separate DMA mappings currently held (for tests).
    pub fn dma_mapping_count(&self) -> usize {
        self.inner.pool().chunk_count()
    }
}
