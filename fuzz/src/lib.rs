//! A platform for fuzzing `ixgbe-core`: registers in a map, DMA memory from the heap with bus
//! address = virtual address, and a device the fuzzer plays. In `Mmio::Cooperative` mode
//! register reads behave just enough like an 82599 for `Device::init` to succeed (self-clearing
//! resets, EEPROM and DMA init done, link up, ENABLE bits read back); in `Mmio::Noise` mode every
//! read returns the next four bytes of the fuzzer's input.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::collections::BTreeMap;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ixgbe_core::{DmaError, DmaRegion, Platform, PrivateRegion};

/// How register reads answer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mmio {
    /// Like a healthy 82599, as far as init needs.
    Cooperative,
    /// Every read returns fuzzer bytes.
    Noise,
}

#[derive(Clone, Copy)]
struct Raw(*mut u8);
// SAFETY: only dereferenced under the state's mutex while its region is live.
unsafe impl Send for Raw {}

/// How the platform keeps (or breaks) its DMA contract, for `platform_edges`.
#[derive(Clone, Copy, Default, Debug)]
pub struct Contract {
    /// Bytes every `dma_alloc` reports less than asked.
    pub shorten: usize,
    /// Added (wrapping) to every bus address: near `u64::MAX` translations overflow.
    pub bus_offset: u64,
    /// Every n-th translation (1-based) fails; 0: none.
    pub fail_every: u32,
    /// Every n-th translation is off by 4 KiB (a region that is not contiguous); 0: none.
    pub skew_every: u32,
}

struct State {
    mode: Mmio,
    contract: Contract,
    translations: u32,
    regs: BTreeMap<u32, u32>,
    noise: Vec<u8>,
    noise_at: usize,
    /// Live DMA regions by start address: pointer, length.
    dma: BTreeMap<usize, (Raw, usize)>,
}

/// The fuzzing platform (cheap to clone: one shared state).
#[derive(Clone)]
pub struct FuzzPlatform(Arc<Mutex<State>>);

impl FuzzPlatform {
    /// A platform answering reads per `mode`; `noise` feeds `Mmio::Noise` reads.
    pub fn new(mode: Mmio, noise: &[u8]) -> Self {
        FuzzPlatform(Arc::new(Mutex::new(State {
            mode,
            contract: Contract::default(),
            translations: 0,
            regs: BTreeMap::new(),
            noise: noise.to_vec(),
            noise_at: 0,
            dma: BTreeMap::new(),
        })))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Switches how reads answer (init cooperatively, then noise on the data path).
    pub fn set_mode(&self, mode: Mmio) {
        self.state().mode = mode;
    }

    /// Makes the platform break its DMA contract as `c` says.
    pub fn set_contract(&self, c: Contract) {
        self.state().contract = c;
    }

    /// Frees every DMA region still live and returns how many there were: at the end of a run
    /// the harness powers the device off, and may then take back memory the driver leaked on
    /// purpose (a queue whose device never confirmed it stopped must never free its memory).
    pub fn reclaim_dma(&self) -> usize {
        let regions = std::mem::take(&mut self.state().dma);
        for (Raw(p), len) in regions.values().copied() {
            // SAFETY: allocated by dma_alloc with the layout of `len`, and no longer tracked
            // (taken out above), so freed once; the driver gave up these regions (leaked them)
            // and the device is gone.
            unsafe { dealloc(p, layout(len)) };
        }
        regions.len()
    }

    /// Number of live DMA regions.
    pub fn dma_regions(&self) -> usize {
        self.state().dma.len()
    }

    /// The device writes `bytes` at byte `offset` (wrapped) of live DMA region `region`
    /// (wrapped); nothing if there is none.
    pub fn device_write(&self, region: usize, offset: usize, bytes: &[u8]) {
        let st = self.state();
        let n = st.dma.len();
        if n == 0 {
            return;
        }
        let Some(&(Raw(start), len)) = st.dma.values().nth(region % n) else {
            return;
        };
        for (k, &b) in bytes.iter().enumerate() {
            let off = (offset + k) % len;
            // SAFETY: off < len: inside a live region (tracked from dma_alloc to dma_free).
            // The driver holds no reference into DMA memory across its calls, and the harness
            // calls this only between them, as a device would write.
            unsafe { start.add(off).write_volatile(b) };
        }
    }
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size.max(1), 4096).expect("layout")
}

fn alloc(size: usize) -> Result<NonNull<u8>, DmaError> {
    // SAFETY: the layout has a non-zero size.
    NonNull::new(unsafe { alloc_zeroed(layout(size)) }).ok_or(DmaError::OutOfMemory)
}

const CTRL: u32 = 0x00000;
const STATUS: u32 = 0x00008;
const EEC: u32 = 0x10010;
const RDRXCTL: u32 = 0x02F00;
const LINKS: u32 = 0x042A4;
const SECRXSTAT: u32 = 0x08D04;

// SAFETY: MMIO touches only the map. DMA regions are fresh zeroed heap blocks, 4096-aligned,
// live until dma_free, with bus address = virtual address (contiguous everywhere); private
// regions are heap blocks the fuzzed device never writes (they are not in `dma`). The state is
// behind a mutex, so clones on several threads are fine.
unsafe impl Platform for FuzzPlatform {
    fn read32(&self, offset: u32) -> u32 {
        let mut st = self.state();
        if st.mode == Mmio::Noise {
            let mut w = [0u8; 4];
            for b in &mut w {
                *b = st.noise.get(st.noise_at).copied().unwrap_or(0);
                st.noise_at += 1;
            }
            return u32::from_le_bytes(w);
        }
        let v = st.regs.get(&offset).copied().unwrap_or(0);
        match offset {
            CTRL => v & !((1 << 26) | (1 << 3)), // RST and LRST self-clear
            STATUS => 0,                         // no master request pending
            EEC => v | 1 << 9 | 1 << 8,          // auto-read done, EEPROM present
            RDRXCTL => v | 1 << 3,               // DMA init done
            LINKS => 1 << 30 | 0b11 << 28,       // link up at 10 Gb/s
            SECRXSTAT => 1,                      // security Rx path idle
            _ => v,
        }
    }

    unsafe fn write32(&self, offset: u32, value: u32) {
        self.state().regs.insert(offset, value);
    }

    fn dma_alloc(&self, size: usize) -> Result<DmaRegion, DmaError> {
        let p = alloc(size)?;
        self.state()
            .dma
            .insert(p.as_ptr() as usize, (Raw(p.as_ptr()), size));
        let short = self.state().contract.shorten;
        // SAFETY: fresh zeroed block of at least the reported bytes, 4096-aligned, ours until
        // dma_free; the cookie keeps the real size.
        Ok(unsafe { DmaRegion::new(p, size.saturating_sub(short), size) })
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        self.state().dma.remove(&(region.virt().as_ptr() as usize));
        // SAFETY: allocated in dma_alloc with the layout of the size kept in the cookie.
        unsafe { dealloc(region.virt().as_ptr(), layout(region.cookie())) };
    }

    fn private_alloc(&self, size: usize) -> Result<PrivateRegion, DmaError> {
        let p = alloc(size)?;
        // SAFETY: fresh zeroed block of `size` bytes, 4096-aligned, never listed in `dma`.
        Ok(unsafe { PrivateRegion::new(p, size, size) })
    }

    unsafe fn private_free(&self, region: PrivateRegion) {
        // SAFETY: allocated in private_alloc with the layout of the size kept in the cookie.
        unsafe { dealloc(region.virt().as_ptr(), layout(region.cookie())) };
    }

    fn virt_to_phys(&self, virt: *const u8) -> Option<u64> {
        let mut st = self.state();
        st.translations = st.translations.wrapping_add(1);
        let (n, c) = (st.translations, st.contract);
        if c.fail_every != 0 && n % c.fail_every == 0 {
            return None;
        }
        let addr = virt as usize;
        let (&start, &(_, len)) = st.dma.range(..=addr).next_back()?;
        let skew = if c.skew_every != 0 && n % c.skew_every == 0 {
            4096
        } else {
            0
        };
        (addr - start < len).then_some((addr as u64).wrapping_add(c.bus_offset).wrapping_add(skew))
    }

    fn delay(&self, _duration: Duration) {}

    fn pci_device_id(&self) -> u16 {
        0x10FB
    }
}
