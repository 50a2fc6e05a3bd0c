//! Small audited wrappers around the system calls this crate needs: `mmap`, `munmap`, `mlock`,
//! `ioctl`. Everything unsafe about memory mappings lives here.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;

/// An owned memory mapping, unmapped on drop.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a Mapping owns its address range; it has no thread-affine state. Access to the bytes
// goes through raw pointers whose users synchronise themselves.
unsafe impl Send for Mapping {}
// SAFETY: `&Mapping` only exposes the address and the length.
unsafe impl Sync for Mapping {}

/// How anonymous memory should be backed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backing {
    /// 2 MiB hugepages from the hugetlb pool.
    Huge2M,
    /// Ordinary 4 KiB pages (only where an IOMMU makes physical contiguity irrelevant).
    Normal,
}

impl Mapping {
    /// Maps `len` bytes of `file` at `offset`, readable, writable and shared (BAR0).
    pub(crate) fn map_file(file: &File, offset: u64, len: usize) -> io::Result<Self> {
        let offset = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        // SAFETY: a fresh mapping at an address the kernel chooses cannot alias any Rust object;
        // the fd is valid for the duration of the call.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                offset,
            )
        };
        Self::from_raw(ptr, len)
    }

    /// Maps `len` bytes of zeroed, populated anonymous memory.
    pub(crate) fn anonymous(len: usize, backing: Backing) -> io::Result<Self> {
        let mut flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE;
        if backing == Backing::Huge2M {
            flags |= libc::MAP_HUGETLB | libc::MAP_HUGE_2MB;
        }
        // SAFETY: as in `map_file`; anonymous memory needs no fd.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                -1,
                0,
            )
        };
        Self::from_raw(ptr, len)
    }

    fn from_raw(ptr: *mut libc::c_void, len: usize) -> io::Result<Self> {
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        Ok(Mapping { ptr, len })
    }

    /// Start address.
    pub(crate) fn ptr(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Start address as an integer.
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Locks the mapping into RAM.
    pub(crate) fn lock(&self) -> io::Result<()> {
        // SAFETY: mlock only changes residency of our own mapping; it reads no memory.
        let rc = unsafe { libc::mlock(self.ptr.as_ptr().cast(), self.len) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// Writes a zero byte to the start of every `step`-sized page, so each page is faulted in.
    ///
    /// Only for anonymous memory that nobody uses yet (it is all zero already, so this changes
    /// no value).
    pub(crate) fn touch(&self, step: usize) {
        for off in (0..self.len).step_by(step) {
            // SAFETY: `off < len`, so the byte lies inside our writable mapping; no reference to
            // it exists (the memory has not been handed out yet).
            unsafe { self.ptr.as_ptr().add(off).write_volatile(0) };
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own this mapping; after drop no pointer derived from it is used (owners of
        // DMA regions and BAR handles keep the Mapping alive as long as they use it).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// `ioctl` with an integer argument (or none); returns the non-negative result.
pub(crate) fn ioctl_val(file: &impl AsRawFd, request: u32, arg: libc::c_ulong) -> io::Result<i32> {
    // SAFETY: the argument is passed by value, so the kernel reads or writes none of our memory.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request as libc::Ioctl, arg) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// `ioctl` with a pointer to `T`, which the kernel may read and write.
///
/// # Safety
/// `request` must be an ioctl whose argument is a `T` (or a prefix of it that `T` fully covers,
/// as announced by an `argsz` field inside `T`), so the kernel stays inside `*arg`.
pub(crate) unsafe fn ioctl_ptr<T>(
    file: &impl AsRawFd,
    request: u32,
    arg: *mut T,
) -> io::Result<i32> {
    // SAFETY: the caller guarantees that the kernel accesses only the `T` behind `arg`, which is
    // valid because it comes from a live `&mut T` or `*mut T` of the caller.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), request as libc::Ioctl, arg) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

/// The system's base page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}
