//! Guest memory: the DMA_MAP windows QEMU sends (a file descriptor of the guest's shared RAM,
//! an offset and the I/O virtual address), mmapped here and handed to the model as bus windows.
//!
//! The model has a single bus address space, so one `ixgbe-sim` process serves one guest: the
//! ports of a dual-port card in the same VM map the same RAM at the same addresses. Each port
//! keeps its own mmap references. The model gets, for each bus address, the oldest live mapping
//! that covers it (windows two ports map identically are installed once and stay while either
//! port keeps them; overlapping ones fill each other's gaps). Two VMs on two ports would collide:
//! run two processes joined by `--wire` instead.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::Mutex;

use log::{debug, info, warn};
use platform_mock::Sim;
use vfio_user::{DmaMapFlags, DmaUnmapFlags};

/// One mmap of guest memory (unmapped on drop).
struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory with no thread affinity; it is only read and
// written by the model (under the simulator's lock) and unmapped by its owner.
unsafe impl Send for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `fd` at `offset`, read/write and shared with the guest. A read-only
    /// mapping request whose fd refuses shared writes gets a private copy (device writes there
    /// are dropped, as a read-only IOMMU mapping would refuse them).
    fn new(fd: &File, offset: u64, len: usize, flags: DmaMapFlags) -> io::Result<Mmap> {
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let try_map = |share: libc::c_int| {
            // SAFETY: a fresh mapping chosen by the kernel (addr NULL) cannot alias existing
            // Rust objects; the fd is valid for the call.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    len,
                    libc::PROT_READ | libc::PROT_WRITE,
                    share,
                    fd.as_raw_fd(),
                    off,
                )
            };
            if p == libc::MAP_FAILED {
                Err(io::Error::last_os_error())
            } else {
                Ok(p)
            }
        };
        let p = match try_map(libc::MAP_SHARED) {
            Err(e)
                if e.raw_os_error() == Some(libc::EACCES)
                    && !flags.contains(DmaMapFlags::WRITE) =>
            {
                try_map(libc::MAP_PRIVATE)?
            }
            r => r?,
        };
        let ptr = NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave NULL"))?;
        Ok(Mmap { ptr, len })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and the owner removed the model's
        // window over it before dropping (see `Registry`).
        if unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) } != 0 {
            warn!("munmap: {}", io::Error::last_os_error());
        }
    }
}

struct Entry {
    bus: u64,
    len: usize,
    /// One mapping per port that mapped this range; the first one backs the model's windows.
    maps: Vec<(usize, Mmap)>,
    /// Sub-ranges `(bus, len)` installed in the model from `maps[0]`: the parts of the range no
    /// older entry covers (the firmware remaps RAM piecemeal, and the two ports' clients do it
    /// at different moments).
    pieces: Vec<(u64, u64)>,
}

impl Entry {
    fn end(&self) -> u64 {
        self.bus + self.len as u64
    }
}

/// Every DMA window of every port of one process.
pub struct Registry {
    sim: Sim,
    entries: Mutex<Vec<Entry>>,
}

impl Registry {
    /// An empty registry for the model `sim`.
    pub fn new(sim: Sim) -> Registry {
        Registry {
            sim,
            entries: Mutex::new(Vec::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// DMA_MAP from `port`'s client.
    pub fn map(
        &self,
        port: usize,
        flags: DmaMapFlags,
        offset: u64,
        bus: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        let Some(fd) = fd else {
            // ROM/BIOS ranges come without memory to share: the device cannot reach them.
            info!("port {port}: DMA_MAP {bus:#x}+{size:#x} without fd (not device-reachable)");
            return Ok(());
        };
        let len = usize::try_from(size)
            .ok()
            .filter(|&l| l > 0 && bus.checked_add(size).is_some())
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let map = Mmap::new(&fd, offset, len, flags).inspect_err(|e| {
            warn!("port {port}: DMA_MAP {bus:#x}+{size:#x} @{offset:#x}: mmap: {e}");
        })?;
        debug!(
            "port {port}: DMA_MAP {bus:#x}+{size:#x} @{offset:#x} -> {:p}",
            map.ptr
        );
        let mut entries = self.lock();
        if let Some(e) = entries.iter_mut().find(|e| e.bus == bus && e.len == len) {
            // The other port of the same guest maps the same RAM: keep the installed mapping.
            if let Some(i) = e.maps.iter().position(|(p, _)| *p == port) {
                if i == 0 {
                    self.uninstall(e);
                }
                e.maps.remove(i);
            }
            e.maps.push((port, map));
        } else {
            entries.push(Entry {
                bus,
                len,
                maps: vec![(port, map)],
                pieces: Vec::new(),
            });
        }
        self.fill_gaps(&mut entries);
        Ok(())
    }

    /// Installs, for every entry in age order, the parts of its range that no window covers.
    fn fill_gaps(&self, entries: &mut [Entry]) {
        let mut taken: Vec<(u64, u64)> = entries
            .iter()
            .flat_map(|e| e.pieces.iter().map(|&(b, l)| (b, b + l)))
            .collect();
        for e in entries.iter_mut() {
            let Some(ptr) = e.maps.first().map(|(_, m)| m.ptr) else {
                continue;
            };
            for (start, end) in gaps(e.bus, e.end(), &taken) {
                let host_off = (start - e.bus) as usize;
                // SAFETY: `host_off < len`, inside the mapping.
                let host = unsafe { ptr.add(host_off) };
                let len = (end - start) as usize;
                // SAFETY: the mmap behind `host` stays alive while the entry holds it; the entry's
                // pieces are removed from the model (`uninstall`) before `maps[0]` is dropped or
                // replaced, and the registry uninstalls everything on drop. No Rust references
                // to guest memory are ever created.
                if unsafe { self.sim.map_bus_window(start, len, host) } {
                    e.pieces.push((start, end - start));
                    taken.push((start, end));
                } else {
                    warn!("DMA window {start:#x}..{end:#x} refused by the model");
                }
            }
        }
    }

    fn uninstall(&self, e: &mut Entry) {
        for (b, l) in e.pieces.drain(..) {
            // Windows never overlap, so only this piece starts inside its own range.
            self.sim.unmap_bus_window(b, l);
        }
    }

    /// Drops `port`'s mappings selected by `hit`; returns how many.
    fn release(&self, port: usize, hit: impl Fn(&Entry) -> bool) -> usize {
        let mut entries = self.lock();
        let mut released = 0;
        for e in entries.iter_mut().filter(|e| hit(e)) {
            let Some(i) = e.maps.iter().position(|(p, _)| *p == port) else {
                continue;
            };
            released += 1;
            if i == 0 {
                // The installed mapping goes: the model must stop using it first.
                self.uninstall(e);
            }
            e.maps.remove(i);
        }
        entries.retain(|e| !e.maps.is_empty());
        // Replaced or freed ranges: the next mapping (or a younger overlapping one) takes over.
        self.fill_gaps(&mut entries);
        released
    }

    /// DMA_UNMAP from `port`'s client: every window of the port starting in the range.
    pub fn unmap(&self, port: usize, flags: DmaUnmapFlags, bus: u64, size: u64) -> io::Result<()> {
        let n = if flags.contains(DmaUnmapFlags::UNMAP_ALL) {
            self.release(port, |_| true)
        } else {
            let end = bus.saturating_add(size);
            self.release(port, |e| e.bus >= bus && e.bus < end)
        };
        debug!("port {port}: DMA_UNMAP {bus:#x}+{size:#x}: {n} window(s)");
        Ok(())
    }

    /// The client of `port` went away.
    pub fn unmap_port(&self, port: usize) -> usize {
        self.release(port, |_| true)
    }
}

/// The parts of `[start, end)` not covered by any of the half-open ranges in `taken`.
fn gaps(start: u64, end: u64, taken: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut cover: Vec<(u64, u64)> = taken
        .iter()
        .filter(|&&(b, e)| b < end && e > start)
        .copied()
        .collect();
    cover.sort_unstable();
    let mut out = Vec::new();
    let mut at = start;
    for (b, e) in cover {
        if b > at {
            out.push((at, b.min(end)));
        }
        at = at.max(e);
        if at >= end {
            break;
        }
    }
    if at < end {
        out.push((at, end));
    }
    out
}

impl Drop for Registry {
    fn drop(&mut self) {
        let mut entries = std::mem::take(&mut *self.lock());
        for e in &mut entries {
            self.uninstall(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    fn memfd(len: usize) -> File {
        // SAFETY: plain syscalls; the fd is fresh and owned by the returned File.
        unsafe {
            let fd = libc::memfd_create(c"ram".as_ptr(), 0);
            assert!(fd >= 0);
            assert_eq!(libc::ftruncate(fd, len as libc::off_t), 0);
            File::from_raw_fd(fd)
        }
    }

    /// Whether the model has a window over `[bus, bus + len)` (a probe mapping must fail).
    fn installed(sim: &Sim, bus: u64, len: usize) -> bool {
        let mut probe = [0u8; 1];
        let p = NonNull::new(probe.as_mut_ptr()).expect("non-null");
        // SAFETY: `probe` outlives the window, which is removed right away if it was installed.
        let free = unsafe { sim.map_bus_window(bus, len.min(1), p) };
        if free {
            sim.unmap_bus_window(bus, 1);
        }
        !free
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap of a memfd")]
    fn a_window_shared_by_two_ports_lives_until_both_release_it() {
        let sim = Sim::new();
        let reg = Registry::new(sim.clone());
        let ram = memfd(1 << 20);
        let rw = DmaMapFlags::READ_WRITE;
        let bus = 0x8000_0000;
        for port in [0, 1] {
            reg.map(port, rw, 0, bus, 1 << 20, Some(ram.try_clone().unwrap()))
                .unwrap();
        }
        assert!(installed(&sim, bus, 1 << 20));
        assert_eq!(reg.unmap_port(0), 1);
        assert!(installed(&sim, bus, 1 << 20), "port 1's mapping took over");
        reg.unmap(1, DmaUnmapFlags::empty(), bus, 1 << 20).unwrap();
        assert!(!installed(&sim, bus, 1 << 20));
        // Without fd: nothing recorded; overlapping windows wait for the blocker to go.
        reg.map(0, rw, 0, 0xC0000, 0x20000, None).unwrap();
        assert!(!installed(&sim, 0xC0000, 0x20000));
        reg.map(0, rw, 0, bus, 1 << 20, Some(ram.try_clone().unwrap()))
            .unwrap();
        reg.map(
            1,
            rw,
            0,
            bus + 0x1000,
            0x1000,
            Some(ram.try_clone().unwrap()),
        )
        .unwrap();
        reg.unmap(0, DmaUnmapFlags::UNMAP_ALL, 0, 0).unwrap();
        assert!(!installed(&sim, bus, 0x1000));
        assert!(
            installed(&sim, bus + 0x1000, 0x1000),
            "installed once the blocker went"
        );
        drop(reg);
        assert!(
            !installed(&sim, bus + 0x1000, 0x1000),
            "dropping the registry unmaps"
        );
    }

    #[test]
    fn gaps_of_a_range() {
        assert_eq!(gaps(0, 100, &[]), vec![(0, 100)]);
        assert_eq!(
            gaps(0, 100, &[(10, 20), (50, 200)]),
            vec![(0, 10), (20, 50)]
        );
        assert_eq!(gaps(10, 20, &[(0, 15), (15, 30)]), vec![]);
        assert_eq!(gaps(10, 20, &[(0, 5), (25, 30)]), vec![(10, 20)]);
        assert_eq!(gaps(0, 30, &[(5, 10), (8, 12)]), vec![(0, 5), (12, 30)]);
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap of a memfd")]
    fn piecemeal_remaps_of_two_ports_leave_no_hole() {
        let sim = Sim::new();
        let reg = Registry::new(sim.clone());
        let ram = memfd(1 << 20);
        let rw = DmaMapFlags::READ_WRITE;
        let fd = || Some(ram.try_clone().unwrap());
        // Port 1 maps RAM in two pieces, port 0 in one: the part port 1 lacks comes from 0.
        reg.map(1, rw, 0, 0, 0x4_0000, fd()).unwrap();
        reg.map(0, rw, 0, 0, 1 << 20, fd()).unwrap();
        reg.map(1, rw, 0x8_0000, 0x8_0000, 0x8_0000, fd()).unwrap();
        for probe in [0, 0x4_0000, 0x7_F000, 0x8_0000, 0xF_F000] {
            assert!(installed(&sim, probe, 1), "{probe:#x} reachable");
        }
        // Port 0 goes: the hole 0x40000..0x80000 has no mapping left, the rest stays.
        reg.unmap_port(0);
        assert!(installed(&sim, 0x3_F000, 1));
        assert!(!installed(&sim, 0x4_0000, 1));
        assert!(installed(&sim, 0x8_0000, 1));
    }

    #[test]
    #[cfg_attr(miri, ignore = "mmap of a memfd")]
    fn bad_maps_are_refused() {
        let reg = Registry::new(Sim::new());
        let ram = memfd(4096);
        let rw = DmaMapFlags::READ_WRITE;
        assert!(reg
            .map(0, rw, 0, 0x1000, 0, Some(ram.try_clone().unwrap()))
            .is_err());
        assert!(reg
            .map(
                0,
                rw,
                0,
                u64::MAX - 10,
                4096,
                Some(ram.try_clone().unwrap())
            )
            .is_err());
        assert!(
            reg.map(0, rw, 3, 0x1000, 4096, Some(ram)).is_err(),
            "offset not page aligned"
        );
    }
}
