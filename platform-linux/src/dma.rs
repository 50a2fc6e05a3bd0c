//! DMA memory: 2 MiB hugepages, translated through `/proc/self/pagemap` or mapped into the IOMMU.
//!
//! Memory is obtained in *chunks*, each a separate anonymous mapping whose length is a multiple
//! of [`DMA_PAGE_SIZE`]. The bus address of every 2 MiB page of a chunk is recorded when the chunk
//! is created, so translation never assumes that neighbouring hugepages are physically adjacent.
//! Requests of up to 1 MiB are carved (4 KiB-aligned, bump-allocated, never reused) out of a
//! shared chunk, which is released when its last region is freed; larger requests get a chunk of
//! their own.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use ixgbe_core::DMA_PAGE_SIZE;

use crate::error::Error;
use crate::sys::{page_size, Backing, Mapping};
use crate::vfio::Vfio;

/// Requests up to this size share a chunk.
const SMALL_LIMIT: usize = DMA_PAGE_SIZE / 2;
/// Alignment and granularity of shared-chunk allocations.
const SMALL_ALIGN: usize = 4096;

/// The fix printed whenever hugepages are missing.
pub(crate) const HUGEPAGE_FIX: &str = "run scripts/setup-hugepages.sh 512 as root";

/// How bus addresses are obtained.
pub(crate) enum Translator<'a> {
    /// Physical addresses from pagemap (needs CAP_SYS_ADMIN); hugepages required.
    Pagemap(&'a Path),
    /// IOVAs mapped through VFIO; hugepages used when available, ordinary pages otherwise.
    Iommu(&'a Vfio),
}

#[derive(Debug)]
struct Chunk {
    map: Mapping,
    /// Bus address of each 2 MiB page.
    bus: Vec<u64>,
    /// IOVA of the chunk if it is mapped in the IOMMU.
    iova: Option<u64>,
    /// Live regions inside the chunk.
    users: usize,
}

#[derive(Debug)]
struct Alloc {
    /// Key (start address) of the chunk holding the region.
    chunk: usize,
    len: usize,
}

#[derive(Debug)]
struct Slab {
    chunk: usize,
    next: usize,
}

/// All DMA memory of one platform.
#[derive(Debug, Default)]
pub(crate) struct DmaPool {
    chunks: BTreeMap<usize, Chunk>,
    /// Live regions keyed by start address (which is also the region's cookie).
    allocs: BTreeMap<usize, Alloc>,
    slab: Option<Slab>,
}

fn round_up(value: usize, to: usize) -> Option<usize> {
    value.checked_add(to - 1).map(|v| v / to * to)
}

/// Reads the physical address of `virt` from a pagemap file.
pub(crate) fn pagemap_phys(pagemap: &File, path: &Path, virt: usize) -> Result<u64, Error> {
    let page = page_size();
    let mut entry = [0u8; 8];
    pagemap
        .read_exact_at(&mut entry, (virt / page) as u64 * 8)
        .map_err(|e| Error::io(path, e))?;
    let entry = u64::from_ne_bytes(entry);
    let present = entry >> 63 & 1 == 1;
    let pfn = entry & ((1 << 55) - 1);
    if !present {
        return Err(Error::io(
            path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                "DMA page not present after mlock",
            ),
        ));
    }
    if pfn == 0 {
        return Err(Error::PermissionDenied {
            what: format!("reading physical addresses from {}", path.display()),
            fix: "run as root (CAP_SYS_ADMIN), or use VFIO: bind the device with \
                  scripts/bind-vfio.sh"
                .into(),
        });
    }
    Ok(pfn * page as u64 + (virt % page) as u64)
}

impl DmaPool {
    /// Allocates `size` bytes; returns the start address and the cookie (the same number).
    pub(crate) fn alloc(&mut self, size: usize, tr: &Translator<'_>) -> Result<usize, Error> {
        if size == 0 {
            return Err(Error::Mmap {
                what: "an empty DMA region".into(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "size 0"),
            });
        }
        let too_big = || Error::Mmap {
            what: format!("{size} bytes of DMA memory"),
            source: io::Error::new(io::ErrorKind::InvalidInput, "size too large"),
        };
        if size <= SMALL_LIMIT {
            let need = round_up(size, SMALL_ALIGN).ok_or_else(too_big)?;
            let fits = self
                .slab
                .as_ref()
                .is_some_and(|s| s.next + need <= DMA_PAGE_SIZE);
            if !fits {
                let key = self.new_chunk(DMA_PAGE_SIZE, tr)?;
                self.slab = Some(Slab {
                    chunk: key,
                    next: 0,
                });
            }
            let slab = self.slab.as_mut().expect("slab was just ensured");
            let start = slab.chunk + slab.next;
            slab.next += need;
            let chunk = slab.chunk;
            self.chunks
                .get_mut(&chunk)
                .expect("slab chunk is live")
                .users += 1;
            self.allocs.insert(start, Alloc { chunk, len: size });
            Ok(start)
        } else {
            let len = round_up(size, DMA_PAGE_SIZE).ok_or_else(too_big)?;
            let key = self.new_chunk(len, tr)?;
            self.chunks
                .get_mut(&key)
                .expect("chunk was just made")
                .users = 1;
            self.allocs.insert(
                key,
                Alloc {
                    chunk: key,
                    len: size,
                },
            );
            Ok(key)
        }
    }

    fn new_chunk(&mut self, len: usize, tr: &Translator<'_>) -> Result<usize, Error> {
        let chunk = match tr {
            Translator::Pagemap(proc_root) => Self::pagemap_chunk(len, proc_root)?,
            Translator::Iommu(vfio) => self.iommu_chunk(len, vfio)?,
        };
        let key = chunk.map.addr();
        self.chunks.insert(key, chunk);
        Ok(key)
    }

    fn pagemap_chunk(len: usize, proc_root: &Path) -> Result<Chunk, Error> {
        let map = Mapping::anonymous(len, Backing::Huge2M).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOMEM) | Some(libc::EINVAL) => Error::NoHugepages {
                fix: format!("{HUGEPAGE_FIX} (needed {len} bytes)"),
            },
            _ => Error::Mmap {
                what: format!("{len} bytes of hugepage memory"),
                source: e,
            },
        })?;
        map.lock().map_err(|e| Error::PermissionDenied {
            what: format!("locking {len} bytes of DMA memory ({e})"),
            fix: "run as root or raise the locked-memory limit (ulimit -l)".into(),
        })?;
        map.touch(DMA_PAGE_SIZE);
        let path: PathBuf = proc_root.join("self/pagemap");
        let pagemap = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut bus = Vec::with_capacity(len / DMA_PAGE_SIZE);
        for off in (0..len).step_by(DMA_PAGE_SIZE) {
            let phys = pagemap_phys(&pagemap, &path, map.addr() + off)?;
            if phys % DMA_PAGE_SIZE as u64 != 0 {
                return Err(Error::NoHugepages {
                    fix: format!(
                        "DMA memory at {phys:#x} is not backed by a 2 MiB hugepage; {HUGEPAGE_FIX}"
                    ),
                });
            }
            bus.push(phys);
        }
        Ok(Chunk {
            map,
            bus,
            iova: None,
            users: 0,
        })
    }

    fn iommu_chunk(&mut self, len: usize, vfio: &Vfio) -> Result<Chunk, Error> {
        // Hugepages if there are any (fewer IOTLB misses), ordinary pages otherwise: behind an
        // IOMMU the device sees one contiguous IOVA range either way. No mlock: the IOMMU
        // mapping pins the pages (and is charged to RLIMIT_MEMLOCK by the kernel).
        let (map, step) = match Mapping::anonymous(len, Backing::Huge2M) {
            Ok(map) => (map, DMA_PAGE_SIZE),
            Err(_) => (
                Mapping::anonymous(len, Backing::Normal).map_err(|source| Error::Mmap {
                    what: format!("{len} bytes of DMA memory"),
                    source,
                })?,
                page_size(),
            ),
        };
        map.touch(step);
        let iova = vfio.iova_alloc(len as u64);
        if let Err(source) = vfio.map_dma(map.addr(), iova, len) {
            vfio.iova_release(iova, len as u64);
            return Err(Error::Vfio {
                what: format!("VFIO_IOMMU_MAP_DMA of {len} bytes (check ulimit -l)"),
                source,
            });
        }
        let bus = (0..len / DMA_PAGE_SIZE)
            .map(|i| iova + (i * DMA_PAGE_SIZE) as u64)
            .collect();
        Ok(Chunk {
            map,
            bus,
            iova: Some(iova),
            users: 0,
        })
    }

    /// Frees the region starting at `cookie`; unknown cookies are ignored.
    pub(crate) fn free(&mut self, cookie: usize, tr: &Translator<'_>) {
        let Some(alloc) = self.allocs.remove(&cookie) else {
            return;
        };
        let chunk = self
            .chunks
            .get_mut(&alloc.chunk)
            .expect("a live region's chunk is live");
        chunk.users -= 1;
        if chunk.users == 0 {
            if self.slab.as_ref().is_some_and(|s| s.chunk == alloc.chunk) {
                self.slab = None;
            }
            let chunk = self.chunks.remove(&alloc.chunk).expect("chunk is live");
            self.release_chunk(chunk, tr);
        }
    }

    fn release_chunk(&mut self, chunk: Chunk, tr: &Translator<'_>) {
        if let (Some(iova), Translator::Iommu(vfio)) = (chunk.iova, tr) {
            // If the IOMMU refuses the unmap we must not hand the memory back to the kernel
            // while the device may still reach it: leak it instead.
            if vfio.unmap_dma(iova, chunk.map.len()).is_err() {
                std::mem::forget(chunk.map);
                return;
            }
            vfio.iova_release(iova, chunk.map.len() as u64);
        }
        drop(chunk.map);
    }

    /// Frees everything (on drop of the platform).
    pub(crate) fn release_all(&mut self, tr: &Translator<'_>) {
        self.allocs.clear();
        self.slab = None;
        for (_, chunk) in std::mem::take(&mut self.chunks) {
            self.release_chunk(chunk, tr);
        }
    }

    /// Bus address of `virt`, if it lies inside a live region.
    pub(crate) fn translate(&self, virt: usize) -> Option<u64> {
        let (&start, alloc) = self.allocs.range(..=virt).next_back()?;
        if virt - start >= alloc.len {
            return None;
        }
        let chunk = self.chunks.get(&alloc.chunk)?;
        let off = virt - chunk.map.addr();
        Some(chunk.bus[off / DMA_PAGE_SIZE] + (off % DMA_PAGE_SIZE) as u64)
    }

    /// Length of the live region starting at `cookie`.
    pub(crate) fn region_len(&self, cookie: usize) -> Option<usize> {
        self.allocs.get(&cookie).map(|a| a.len)
    }

    /// Number of live chunks (mappings).
    pub(crate) fn chunk_count(&self) -> usize {
        self.chunks.len()
    }
}
