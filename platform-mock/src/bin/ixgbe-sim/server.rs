//! The vfio-user back end of one simulated 82599 function: regions, interrupts, DMA, reset.

use std::fs::File;
use std::io;
use std::mem::size_of;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use log::{debug, info, warn};
use platform_mock::pci::{BAR0_SIZE, BAR4_SIZE, CONFIG_SIZE, MSIX_VECTORS};
use platform_mock::{NicId, Sim};
use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_IRQ_INFO_AUTOMASKED, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_MASKABLE,
    VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_BAR4_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX,
    VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_NUM_IRQS, VFIO_PCI_NUM_REGIONS,
    VFIO_REGION_INFO_FLAG_READ, VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{DmaMapFlags, DmaUnmapFlags, IrqInfo, ServerBackend, ServerRegion};

use crate::clock::Clock;
use crate::irq::{self, Irqs};
use crate::memory::Registry;

/// Size of each region index (0..=8), as GET_REGION_INFO reports it.
pub fn region_size(index: u32) -> u64 {
    match index {
        VFIO_PCI_BAR0_REGION_INDEX => BAR0_SIZE,
        VFIO_PCI_BAR4_REGION_INDEX => BAR4_SIZE,
        VFIO_PCI_CONFIG_REGION_INDEX => CONFIG_SIZE as u64,
        _ => 0,
    }
}

/// The regions of an 82599 function: BAR0 (CSRs), BAR4 (MSI-X), config space; no mmap (every
/// access is trapped so the model sees it).
pub fn regions() -> Vec<ServerRegion> {
    (0..VFIO_PCI_NUM_REGIONS)
        .map(|index| {
            let size = region_size(index);
            ServerRegion {
                region_info: vfio_region_info {
                    argsz: size_of::<vfio_region_info>() as u32,
                    index,
                    size,
                    flags: if size > 0 {
                        VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
                    } else {
                        0
                    },
                    ..Default::default()
                },
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect()
}

/// INTx (maskable, automasked as vfio-pci's), MSI (1 vector), MSI-X (64); no ERR/REQ.
pub fn irq_infos() -> Vec<IrqInfo> {
    (0..VFIO_PCI_NUM_IRQS)
        .map(|index| {
            let count = irq::vectors(index);
            let flags = match (count, index) {
                (0, _) => 0,
                (_, VFIO_PCI_INTX_IRQ_INDEX) => {
                    VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_MASKABLE | VFIO_IRQ_INFO_AUTOMASKED
                }
                _ => VFIO_IRQ_INFO_EVENTFD,
            };
            IrqInfo {
                index,
                flags,
                count,
            }
        })
        .collect()
}

/// Counters of the front end itself (accesses the model never saw).
#[derive(Debug, Default)]
pub struct PortCounters {
    /// Trapped BAR0 reads (32-bit units).
    pub bar0_reads: AtomicU64,
    /// Trapped BAR0 writes (32-bit units).
    pub bar0_writes: AtomicU64,
    /// Time spent serving BAR0 accesses in this process (clock sync + model), ns.
    pub bar0_ns: AtomicU64,
    /// Accesses refused (out of range, misaligned, sub-dword BAR0 writes).
    pub rejected: AtomicU64,
    /// Client sessions served.
    pub sessions: AtomicU64,
}

/// One function served over one socket.
pub struct Port {
    /// Port (function) index.
    pub index: usize,
    nic: NicId,
    sim: Sim,
    clock: Arc<Clock>,
    irqs: Irqs,
    dma: Arc<Registry>,
    counters: Arc<PortCounters>,
}

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

impl Port {
    /// The back end of `nic`; the model's interrupts go to `irqs`.
    pub fn new(
        index: usize,
        sim: Sim,
        nic: NicId,
        clock: Arc<Clock>,
        irqs: Irqs,
        dma: Arc<Registry>,
        counters: Arc<PortCounters>,
    ) -> Port {
        sim.attach_interrupts(nic, irqs.sink());
        Port {
            index,
            nic,
            sim,
            clock,
            irqs,
            dma,
            counters,
        }
    }

    fn reject(&self, what: std::fmt::Arguments<'_>) -> io::Error {
        self.counters.rejected.fetch_add(1, Ordering::Relaxed);
        warn!("port {}: {what}", self.index);
        einval()
    }

    /// Reads BAR4 (MSI-X table at 0, PBA at 0x2000), served by the model in 32-bit words (QEMU
    /// emulates the MSI-X table itself, so accesses are rare).
    fn bar4_read(&self, offset: usize, data: &mut [u8]) {
        for word in (offset & !3..offset + data.len()).step_by(4) {
            let bytes = self.sim.bar4_read(self.nic, word as u32).to_le_bytes();
            for (k, &b) in bytes.iter().enumerate() {
                if let Some(d) = (word + k).checked_sub(offset).and_then(|i| data.get_mut(i)) {
                    *d = b;
                }
            }
        }
    }

    /// Writes BAR4; a partial word is read, merged and written back.
    fn bar4_write(&self, offset: usize, data: &[u8]) {
        for word in (offset & !3..offset + data.len()).step_by(4) {
            let old = self.sim.bar4_read(self.nic, word as u32).to_le_bytes();
            let mut new = old;
            for (k, b) in new.iter_mut().enumerate() {
                if let Some(&d) = (word + k).checked_sub(offset).and_then(|i| data.get(i)) {
                    *b = d;
                }
            }
            if new != old {
                self.sim
                    .bar4_write(self.nic, word as u32, u32::from_le_bytes(new));
            }
        }
    }

    /// Function Level Reset (a vfio-user DEVICE_RESET): the model's function goes back to its
    /// power-on state, configuration space included.
    fn function_reset(&mut self) {
        info!("port {}: device reset", self.index);
        self.sim.function_reset(self.nic);
    }

    /// The client went away: drop its memory (the model keeps running).
    pub fn disconnected(&mut self) {
        let n = self.dma.unmap_port(self.index);
        info!(
            "port {}: client gone, {n} DMA window(s) unmapped",
            self.index
        );
        // The eventfds belong to the old client's interrupt set-up.
        self.irqs.lock().disable_all();
    }

    fn account(&self, since: Instant) {
        let ns = since.elapsed().as_nanos() as u64;
        self.counters.bar0_ns.fetch_add(ns, Ordering::Relaxed);
    }

    fn check_range(&self, region: u32, offset: u64, len: usize) -> io::Result<usize> {
        let size = region_size(region);
        match offset.checked_add(len as u64) {
            Some(end) if len > 0 && end <= size => Ok(offset as usize),
            _ => Err(self.reject(format_args!(
                "region {region}: access {offset:#x}+{len} outside its {size:#x} bytes"
            ))),
        }
    }

    fn bar0_read(&mut self, off: usize, data: &mut [u8]) -> io::Result<()> {
        let len = data.len();
        if !matches!(len, 1 | 2 | 4 | 8) || !off.is_multiple_of(len) {
            return Err(self.reject(format_args!("BAR0 read of {len} bytes at {off:#x}")));
        }
        self.clock.sync();
        if len >= 4 {
            for (k, chunk) in data.chunks_exact_mut(4).enumerate() {
                let v = self.sim.bar0_read(self.nic, (off + 4 * k) as u32);
                chunk.copy_from_slice(&v.to_le_bytes());
                self.counters.bar0_reads.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            // A byte-enabled read of part of a register: the register is read as a whole.
            let v = self
                .sim
                .bar0_read(self.nic, (off & !3) as u32)
                .to_le_bytes();
            self.counters.bar0_reads.fetch_add(1, Ordering::Relaxed);
            data.copy_from_slice(&v[off & 3..(off & 3) + len]);
        }
        Ok(())
    }

    fn bar0_write(&mut self, off: usize, data: &[u8]) -> io::Result<()> {
        let len = data.len();
        // Writes of part of a register would need read-modify-write, which has side effects on
        // clear-on-read and write-1-to-clear registers: refuse them.
        if !matches!(len, 4 | 8) || !off.is_multiple_of(4) {
            return Err(self.reject(format_args!("BAR0 write of {len} bytes at {off:#x}")));
        }
        self.clock.sync();
        for (k, chunk) in data.chunks_exact(4).enumerate() {
            let v = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
            // SAFETY: the model may DMA into the guest RAM windows installed by `Registry`,
            // which stay mapped until they are uninstalled; this process holds no Rust
            // references into guest memory.
            unsafe { self.sim.bar0_write(self.nic, (off + 4 * k) as u32, v) };
            self.counters.bar0_writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl ServerBackend for Port {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        let off = self.check_range(region, offset, data.len())?;
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                self.sim.config_read(self.nic, off as u16, data);
                Ok(())
            }
            VFIO_PCI_BAR0_REGION_INDEX => {
                let t = Instant::now();
                let r = self.bar0_read(off, data);
                self.account(t);
                r
            }
            VFIO_PCI_BAR4_REGION_INDEX => {
                self.bar4_read(off, data);
                Ok(())
            }
            _ => unreachable!("check_range admits only sized regions"),
        }
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        let off = self.check_range(region, offset, data.len())?;
        match region {
            VFIO_PCI_CONFIG_REGION_INDEX => {
                self.sim.config_write(self.nic, off as u16, data);
                Ok(())
            }
            VFIO_PCI_BAR0_REGION_INDEX => {
                let t = Instant::now();
                let r = self.bar0_write(off, data);
                self.account(t);
                r
            }
            VFIO_PCI_BAR4_REGION_INDEX => {
                self.bar4_write(off, data);
                Ok(())
            }
            _ => unreachable!("check_range admits only sized regions"),
        }
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        self.dma.map(self.index, flags, offset, address, size, fd)
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        self.dma.unmap(self.index, flags, address, size)
    }

    fn reset(&mut self) -> io::Result<()> {
        self.function_reset();
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        debug!(
            "port {}: SET_IRQS index {index} flags {flags:#x} {start}+{count} ({} fds)",
            self.index,
            fds.len()
        );
        let r = self.irqs.lock().set_irqs(index, flags, start, count, fds);
        if index == VFIO_PCI_MSIX_IRQ_INDEX && r.is_ok() {
            self.sync_msix_masks();
        }
        r
    }
}

impl Port {
    /// Mirrors the eventfds into the model's MSI-X table: a vector with an eventfd is unmasked,
    /// one without is masked. On a real board the host's vfio-pci does this when it enables a
    /// vector (it writes the table entry's address and data and clears its mask bit); QEMU
    /// emulates the guest's view of the table and never writes ours.
    fn sync_msix_masks(&mut self) {
        for v in 0..MSIX_VECTORS {
            // The irq lock is released before the model is called: the model calls the
            // interrupt sink, which takes it.
            let on = self.irqs.lock().msix_enabled(v);
            let ctl = 16 * u32::from(v) + 12;
            let masked = self.sim.bar4_read(self.nic, ctl) & 1 != 0;
            if on == masked {
                self.sim.bar4_write(self.nic, ctl, u32::from(!on));
            }
        }
    }
}

/// One client session of a [`Port`]: reports the first request (the client is really there;
/// the `vfio_user` crate accepts and negotiates the version by itself).
pub struct Session<'a, F: FnMut(usize)> {
    port: &'a mut Port,
    on_connect: F,
    connected: bool,
}

impl<'a, F: FnMut(usize)> Session<'a, F> {
    /// A session of `port`; `on_connect(port index)` runs at the first request.
    pub fn new(port: &'a mut Port, on_connect: F) -> Self {
        Session {
            port,
            on_connect,
            connected: false,
        }
    }

    /// Whether the client sent any request to the back end.
    pub fn connected(&self) -> bool {
        self.connected
    }

    fn touch(&mut self) -> &mut Port {
        if !self.connected {
            self.connected = true;
            self.port.counters.sessions.fetch_add(1, Ordering::Relaxed);
            (self.on_connect)(self.port.index);
        }
        self.port
    }
}

impl<F: FnMut(usize)> ServerBackend for Session<'_, F> {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        self.touch().region_read(region, offset, data)
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        self.touch().region_write(region, offset, data)
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        self.touch().dma_map(flags, offset, address, size, fd)
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        self.touch().dma_unmap(flags, address, size)
    }

    fn reset(&mut self) -> io::Result<()> {
        self.touch().reset()
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        self.touch().set_irqs(index, flags, start, count, fds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform_mock::NicConfig;

    fn port() -> Port {
        let sim = Sim::new();
        let nic = sim.add_nic(NicConfig::default());
        Port::new(
            0,
            sim.clone(),
            nic,
            Clock::new(sim.clone()),
            Irqs::default(),
            Arc::new(Registry::new(sim)),
            Arc::default(),
        )
    }

    #[test]
    fn config_space_and_bar0_go_to_the_model() {
        let mut p = port();
        let mut id = [0u8; 4];
        p.region_read(VFIO_PCI_CONFIG_REGION_INDEX, 0, &mut id)
            .unwrap();
        assert_eq!(id, [0x86, 0x80, 0xFB, 0x10]);
        // RAL0 alias (§8.2.3.7.8 note: 0x05400 for n < 16) holds the default MAC's first bytes.
        let mut ral = [0u8; 4];
        p.region_read(VFIO_PCI_BAR0_REGION_INDEX, 0x5400, &mut ral)
            .unwrap();
        assert_eq!(ral, [2, 0, 0, 0]);
        let mut q = [0u8; 8];
        p.region_read(VFIO_PCI_BAR0_REGION_INDEX, 0x5400, &mut q)
            .unwrap();
        assert_eq!(&q[..6], &[2, 0, 0, 0, 0, 1], "RAL0 then RAH0");
        // A 64-bit write lands in two registers.
        let mac = [0x02, 0x10, 0x20, 0x30, 0x40, 0x50, 0x00, 0x80];
        p.region_write(VFIO_PCI_BAR0_REGION_INDEX, 0x5400, &mac)
            .unwrap();
        p.region_read(VFIO_PCI_BAR0_REGION_INDEX, 0x5400, &mut q)
            .unwrap();
        assert_eq!(q, mac);
        assert_eq!(p.counters.bar0_writes.load(Ordering::Relaxed), 2);
        assert_eq!(p.counters.rejected.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn bad_accesses_are_refused_and_counted() {
        let mut p = port();
        let bar0 = VFIO_PCI_BAR0_REGION_INDEX;
        // Part of a register: would need a read-modify-write.
        assert!(p.region_write(bar0, 0x5400, &[0xAA, 0xBB]).is_err());
        // Misaligned, odd-sized, beyond the end, empty, unsized region.
        let mut b4 = [0u8; 4];
        assert!(p.region_read(bar0, 0x5402, &mut b4).is_err());
        assert!(p.region_read(bar0, 0x5400, &mut [0u8; 3]).is_err());
        assert!(p.region_read(bar0, BAR0_SIZE, &mut b4).is_err());
        assert!(p.region_read(bar0, u64::MAX - 1, &mut b4).is_err());
        assert!(p.region_read(bar0, 0, &mut []).is_err());
        assert!(p
            .region_read(VFIO_PCI_CONFIG_REGION_INDEX, 4094, &mut b4)
            .is_err());
        assert!(p.region_read(2, 0, &mut b4).is_err());
        assert_eq!(p.counters.rejected.load(Ordering::Relaxed), 8);
        // The refused write changed nothing.
        p.region_read(bar0, 0x5400, &mut b4).unwrap();
        assert_eq!(b4, [2, 0, 0, 0]);
    }

    #[test]
    fn bar4_keeps_the_table_and_a_read_only_pba() {
        let mut p = port();
        let bar4 = VFIO_PCI_BAR4_REGION_INDEX;
        let mut ctl = [0u8; 4];
        p.region_read(bar4, 16 * 3 + 12, &mut ctl).unwrap();
        assert_eq!(ctl, [1, 0, 0, 0], "vectors start masked");
        p.region_write(bar4, 16 * 3 + 12, &[0; 4]).unwrap();
        p.region_read(bar4, 16 * 3 + 12, &mut ctl).unwrap();
        assert_eq!(ctl, [0; 4]);
        p.region_write(bar4, 0x2000, &[0xFF; 8]).unwrap();
        let mut pba = [0u8; 8];
        p.region_read(bar4, 0x2000, &mut pba).unwrap();
        assert_eq!(pba, [0; 8]);
        p.reset().unwrap();
        p.region_read(bar4, 16 * 3 + 12, &mut ctl).unwrap();
        assert_eq!(ctl, [1, 0, 0, 0], "reset masks again");
    }

    #[test]
    fn advertised_regions_and_irqs() {
        let r = regions();
        assert_eq!(r.len(), 9);
        assert_eq!(r[0].region_info.size, BAR0_SIZE);
        assert_eq!(r[4].region_info.size, BAR4_SIZE);
        assert_eq!(r[7].region_info.size, CONFIG_SIZE as u64);
        assert_eq!(r[1].region_info.flags, 0);
        let i = irq_infos();
        assert_eq!(
            i.iter().map(|x| x.count).collect::<Vec<_>>(),
            vec![1, 1, 64, 0, 0]
        );
        assert!(i[..3].iter().all(|x| x.flags & VFIO_IRQ_INFO_EVENTFD != 0));
    }
}
