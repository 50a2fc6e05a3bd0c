//! The `Platform` trait: everything the driver needs from the host.
//!
//! The driver core never touches hardware or an operating system directly. A platform gives it
//! four things, in the style of rcore-os/virtio-drivers' `Hal`:
//!
//! 1. 32-bit MMIO reads and writes of BAR0 at a byte offset,
//! 2. DMA memory: memory the device can reach, allocated and freed,
//! 3. translation of a virtual address in DMA memory to the bus address the device uses
//!    (the physical address, or the IOVA under an IOMMU),
//! 4. a delay, used only by the bounded polls of the init sequence,
//! 5. private memory: memory the device can NOT reach, for everything the driver trusts (which
//!    buffer a descriptor holds, the pools' free stacks and bus-address tables). Nothing the
//!    driver relies on lives where the device can write: the device may scribble on rings and
//!    buffers, never on the driver's bookkeeping.
//!
//! The data path is generic over `P: Platform`, so on a real platform `read32`/`write32` inline to
//! plain volatile loads and stores: no dynamic dispatch per packet.

use core::fmt;
use core::ptr::NonNull;
use core::time::Duration;

/// Size of a DMA page: the granularity at which a [`DmaRegion`] is physically contiguous.
///
/// Linux user space gets DMA memory from 2 MiB hugepages; two hugepages next to each other in
/// virtual memory are in general *not* next to each other in physical memory.
pub const DMA_PAGE_SIZE: usize = 2 * 1024 * 1024;

/// The read-only accessors both kinds of region share.
macro_rules! region_accessors {
    ($region:ident) => {
        impl $region {
            /// Start of the region in this process's address space.
            pub fn virt(&self) -> NonNull<u8> {
                self.virt
            }

            /// Length in bytes.
            pub fn len(&self) -> usize {
                self.len
            }

            /// True when the region has no bytes.
            pub fn is_empty(&self) -> bool {
                self.len == 0
            }

            /// The platform's own tag for this region.
            pub fn cookie(&self) -> usize {
                self.cookie
            }
        }
    };
}

/// A block of DMA memory handed out by [`Platform::dma_alloc`].
///
/// Guarantees made by the platform that allocated it (see the safety contract of [`Platform`]):
/// - `virt` is valid for reads and writes of `len` bytes, zero-initialised, and 4096-byte aligned;
/// - the memory stays valid and is not used by anyone else until it is passed to
///   [`Platform::dma_free`];
/// - bytes whose offsets from `virt` lie in the same [`DMA_PAGE_SIZE`]-sized chunk
///   (`offset / DMA_PAGE_SIZE` equal) are contiguous in bus-address space, and the bus address of
///   `virt` is 4096-byte aligned. Nothing is promised across chunks.
#[derive(Debug)]
pub struct DmaRegion {
    virt: NonNull<u8>,
    len: usize,
    cookie: usize,
}

// SAFETY: a DmaRegion is an owned handle to memory that nobody else uses (platform contract); it
// carries no thread-affine state, so moving it to another thread is sound.
unsafe impl Send for DmaRegion {}
// SAFETY: `&DmaRegion` only exposes the address and length, never the memory itself.
unsafe impl Sync for DmaRegion {}

impl DmaRegion {
    /// Wraps memory a platform allocated.
    ///
    /// # Safety
    /// `virt` must satisfy every guarantee listed on [`DmaRegion`] for `len` bytes. `cookie` is
    /// opaque to the driver and handed back to the platform in [`Platform::dma_free`].
    pub unsafe fn new(virt: NonNull<u8>, len: usize, cookie: usize) -> Self {
        Self { virt, len, cookie }
    }
}

region_accessors!(DmaRegion);

/// A block of private memory handed out by [`Platform::private_alloc`]: like a [`DmaRegion`]
/// (zeroed, 4096-byte aligned, valid until [`Platform::private_free`]) but never mapped for the
/// device, so the device cannot read or write it where the platform isolates devices (an IOMMU;
/// a simulator). No bus address exists for it.
#[derive(Debug)]
pub struct PrivateRegion {
    virt: NonNull<u8>,
    len: usize,
    cookie: usize,
}

// SAFETY: an owned handle to memory nobody else uses (platform contract), as DmaRegion.
unsafe impl Send for PrivateRegion {}
// SAFETY: `&PrivateRegion` only exposes the address and length.
unsafe impl Sync for PrivateRegion {}

impl PrivateRegion {
    /// Wraps memory a platform allocated.
    ///
    /// # Safety
    /// `virt` must be valid for reads and writes of `len` bytes, zero-initialised, 4096-byte
    /// aligned, used by nobody else until it is passed to [`Platform::private_free`], and not
    /// reachable by the device where the platform can prevent that. `cookie` is opaque to the
    /// driver and handed back to the platform.
    pub unsafe fn new(virt: NonNull<u8>, len: usize, cookie: usize) -> Self {
        Self { virt, len, cookie }
    }
}

region_accessors!(PrivateRegion);

/// Why a platform could not provide DMA memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaError {
    /// Not enough memory of the kind the device can reach (e.g. too few hugepages reserved).
    OutOfMemory,
    /// The platform may not allocate DMA memory (e.g. no permission to read physical addresses).
    PermissionDenied,
    /// Mapping the memory for the device failed (e.g. an IOMMU mapping was refused).
    MapFailed,
    /// The requested size or alignment is not supported.
    Unsupported,
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DmaError::OutOfMemory => "out of DMA memory (are enough hugepages reserved?)",
            DmaError::PermissionDenied => "no permission to allocate or translate DMA memory",
            DmaError::MapFailed => "mapping DMA memory for the device failed",
            DmaError::Unsupported => "unsupported DMA allocation size",
        })
    }
}

/// What the driver needs from its host: BAR0 MMIO, DMA memory, address translation and a delay.
///
/// Implementations are cheap handles (`Clone`): every queue keeps one to reach its tail register.
/// Three exist: `platform-linux` (sysfs or VFIO), `platform-mock` (the simulator) and the
/// bare-metal test fixture that docs/porting.md walks through. Code that drives a device is
/// generic over it:
///
/// ```
/// use ixgbe_core::{Platform, Mempool, Device, Config, DEFAULT_BUF_SIZE};
///
/// /// Brings any 82599 up and reports its MAC address.
/// fn mac_of<P: Platform>(platform: P) -> Result<[u8; 6], ixgbe_core::Error> {
///     let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE)?];
///     let started = Device::init(platform, &Config::default(), &pools)?;
///     Ok(started.device.mac())
/// }
///
/// let sim = platform_mock::Sim::new();
/// let nic = sim.add_nic(platform_mock::NicConfig { mac: [2, 0, 0, 0, 0, 7], ..Default::default() });
/// assert_eq!(mac_of(sim.platform(nic)).unwrap(), [2, 0, 0, 0, 0, 7]);
/// ```
///
/// # Safety
/// Implementing this trait promises:
/// - `read32`/`write32` perform exactly one 32-bit access to the device's BAR0 at `offset` (a
///   multiple of 4 inside BAR0), in program order with respect to other MMIO of the same handle,
///   and never touch memory other than the BAR. An offset outside the BAR must not cause
///   undefined behaviour (a platform may panic or ignore the access).
/// - `write32` is ordered after all earlier memory writes of the calling thread to DMA memory
///   (a release fence before the store, or an architecture where uncached stores are ordered).
/// - `read32` is ordered before all later memory reads of the calling thread.
/// - `dma_alloc` returns regions that satisfy every guarantee listed on [`DmaRegion`], and that
///   the device can read and write at the bus addresses `virt_to_phys` reports.
/// - `virt_to_phys` returns, for any address inside a live region, the bus address at which the
///   device reaches that byte; `None` for anything else (private memory included).
/// - `private_alloc` returns regions that satisfy every guarantee listed on [`PrivateRegion`]
///   and are never handed to the device: where the platform isolates the device (an IOMMU, a
///   simulator) the device cannot reach them. Without an IOMMU nothing can stop a device from
///   reaching any memory; the platform documents that.
/// - All handles cloned from one platform value refer to the same device and the same DMA
///   memory, and may be used from several threads at once.
pub unsafe trait Platform: Clone + Send + Sync {
    /// Reads the 32-bit register at byte `offset` in BAR0.
    fn read32(&self, offset: u32) -> u32;

    /// Writes the 32-bit register at byte `offset` in BAR0.
    ///
    /// # Safety
    /// A register write can make the device read or write host memory (ring bases, tail bumps,
    /// queue enables). The caller must ensure that, after this write, the device only accesses
    /// DMA memory that the caller owns and keeps alive for as long as the device may use it.
    unsafe fn write32(&self, offset: u32, value: u32);

    /// Allocates `size` bytes of zeroed DMA memory (see [`DmaRegion`] for what is guaranteed).
    fn dma_alloc(&self, size: usize) -> Result<DmaRegion, DmaError>;

    /// Returns a region to the platform.
    ///
    /// # Safety
    /// `region` must come from `dma_alloc` of this platform (or a clone), and neither the CPU nor
    /// the device may access it afterwards.
    unsafe fn dma_free(&self, region: DmaRegion);

    /// Allocates `size` bytes of zeroed private memory (see [`PrivateRegion`]): never mapped for
    /// the device. The driver keeps there everything it must be able to trust.
    fn private_alloc(&self, size: usize) -> Result<PrivateRegion, DmaError>;

    /// Returns private memory to the platform.
    ///
    /// # Safety
    /// `region` must come from `private_alloc` of this platform (or a clone) and not be used
    /// afterwards.
    unsafe fn private_free(&self, region: PrivateRegion);

    /// Translates an address inside a live DMA region to the bus address the device uses.
    fn virt_to_phys(&self, virt: *const u8) -> Option<u64>;

    /// Waits at least `duration`. On a simulator this advances virtual time.
    fn delay(&self, duration: Duration);

    /// The PCI device ID of the function (configuration space offset 0x02). The core takes
    /// the board's media from it (SFP+ or backplane: how the link is set up) and refuses IDs
    /// it does not handle.
    fn pci_device_id(&self) -> u16;
}

/// Private memory owned by the driver: freed when dropped.
pub(crate) struct PrivateMem<P: Platform> {
    platform: P,
    region: Option<PrivateRegion>,
}

impl<P: Platform> PrivateMem<P> {
    /// At least `size` bytes of zeroed private memory; a region shorter than asked is refused.
    pub(crate) fn alloc(platform: &P, size: usize) -> Result<Self, crate::Error> {
        let region = platform.private_alloc(size)?;
        let mem = PrivateMem {
            platform: platform.clone(),
            region: Some(region),
        };
        if mem.len() < size {
            return Err(crate::Error::Translation {
                what: "a private region shorter than requested",
            });
        }
        Ok(mem)
    }

    /// Start of the memory (4096-byte aligned).
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        match &self.region {
            Some(r) => r.virt(),
            None => NonNull::dangling(),
        }
    }

    fn len(&self) -> usize {
        self.region.as_ref().map_or(0, PrivateRegion::len)
    }
}

impl<P: Platform> Drop for PrivateMem<P> {
    fn drop(&mut self) {
        if let Some(region) = self.region.take() {
            // SAFETY: allocated by this platform in `alloc`; whoever used it (a ring's side
            // array, a pool's tables) is dropped before its owner's fields, and the device
            // never had it.
            unsafe { self.platform.private_free(region) };
        }
    }
}
