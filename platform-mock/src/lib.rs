//! `platform-mock`: a simulated Intel 82599 for host-side tests of the `ixgbe-core` driver.
//!
//! A [`Sim`] is a small simulated world with a virtual clock. It holds any number of NICs
//! ([`Sim::add_nic`]); each NIC is reached by the driver through a [`SimPlatform`], which
//! implements [`ixgbe_core::Platform`]. The model follows the 82599 datasheet (Intel 82599 10 GbE
//! Controller Datasheet; sections are cited in the code) and what Linux's ixgbe driver shows real
//! silicon does: register reset values, self-clearing reset, EEPROM auto-read and
//! DMA-init flags, link training, queue enable lag, advanced RX/TX descriptors, the packet buffer,
//! the L2 filter, RSS, statistics, and a log of protocol [`Violation`]s.
//!
//! The model works only inside MMIO calls of a [`SimPlatform`], inside [`Platform::delay`]
//! (which advances virtual time) and inside the [`Sim`] methods.
//!
//! DMA memory comes from the host heap. Each 2 MiB chunk of a region gets its own bus address,
//! with gaps and reversed order between chunks, so code that assumes bus contiguity across
//! [`DMA_PAGE_SIZE`](ixgbe_core::DMA_PAGE_SIZE) fails visibly (DMA violation).
//!
//! # Timing (virtual)
//!
//! | Event | When |
//! |---|---|
//! | CTRL.RST / LRST self-clear | 10 µs after the write |
//! | EEC.Auto_RD set | 1 ms after the reset completes |
//! | RDRXCTL.DMAIDONE set | 2 ms after the reset completes |
//! | Link up (LINKS bit 30, speed 11b) | [`NicConfig::link_up_delay`] (20 ms) after power-on, reset completion, AUTOC.Restart_AN or re-plugging |
//! | RXDCTL / TXDCTL.ENABLE read-back | after two further reads of the register, or 5 µs |
//! | EERD.DONE after START | on the next read of EERD, or 1 µs |
//! | A held MSI-X / legacy interrupt (EITR) | the vector's EITR interval after its previous message |
//! | FLR ([`Sim::function_reset`]): Auto_RD, DMAIDONE, link | 1 ms, 2 ms, [`NicConfig::link_up_delay`] |
//!
//! # What Linux's ixgbe finds
//!
//! [`pci`] describes the configuration space (X520-2: 8086:10FB, subsystem 8086:000C; PM,
//! MSI, MSI-X with 64 vectors in BAR4, PCIe 5 GT/s x8, AER, serial number). [`eeprom`] is the
//! NVM image read through EERD (valid checksum as `ixgbe_calc_eeprom_checksum_generic`
//! computes it, MAC, PBA, SFP+ init sequences, firmware version). [`sfp`] is the SFP+ cage:
//! a passive direct-attach cable answering on the I2C bus bit-banged through I2CCTL. The
//! interrupt logic (IVAR, EIAC, EIAM, EITR, the MSI-X table and PBA of [`Sim::bar4_read`])
//! delivers messages through [`Sim::attach_interrupts`]; [`SimPlatform`] implements
//! [`ixgbe_core::InterruptPlatform`] on top of it (MSI-X set up as vfio-pci would, or MSI with
//! [`SimPlatform::prefer_single_interrupt`]; a wait advances virtual time until its vector's
//! message). MDIO reads find no PHY. The IPsec /
//! LinkSec offload reads as fused off (SECTXSTAT / SECRXSTAT.OFF_DIS).
//!
//! Virtual time only moves in [`Sim::advance`] and [`Platform::delay`]. While a
//! [`TrafficSource`] is attached, time advances in 100 µs slices ([`Sim::set_time_slice`]) so
//! sources, RX and TX interleave.
//!
//! # Simplifications
//!
//! TX write-back with WTHRESH > 0 writes DD on every descriptor at once; IFCS is not required
//! for padding; only the first packet buffer (RXPBSIZE\[0\]) is modelled and
//! it is shared by every queue in arrival order (a stalled queue without Drop_En blocks the
//! others, as on hardware). Exact duplicate violations are recorded once.
//!
//! Dropping the last handle to a [`Sim`] (every `Sim` and `SimPlatform` clone) frees all DMA
//! memory that is still allocated: keep a handle alive while regions are in use.
#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

pub mod board;
mod dma;
pub mod eeprom;
mod model;
pub mod pci;
mod regs;
pub mod rss;
pub mod sfp;
pub mod traffic;
mod waiting;

use std::fmt;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ixgbe_core::{DmaError, DmaRegion, Platform, PrivateRegion};

pub use board::{Board, MpsarPowerOn, NvmLink};
pub use rss::toeplitz_hash;
pub use sfp::SfpModule;

/// Identifies a NIC inside a [`Sim`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NicId(pub usize);

/// Configuration of a simulated NIC. [`NicConfig::for_board`] fills it from a board profile;
/// the default is an X520-DA2 port with a direct-attach cable ([`Board::X520Da`]).
#[derive(Debug, Clone)]
pub struct NicConfig {
    /// MAC address loaded into RAR0 (with AV = 1) on every reset, as if from the EEPROM.
    pub mac: [u8; 6],
    /// PCI device ID. SFP+ IDs ([`board::media_is_sfp`]) link through the cage, the others
    /// as a backplane (see [`board`]).
    pub device_id: u16,
    /// PCI subsystem ID (vendor 0x8086). Default 0x000C, "Ethernet Server Adapter X520-2" in
    /// pci.ids (the X520-DA2); 0x7A11 is another X520-2 SKU.
    pub subsystem_id: u16,
    /// The function starts enabled (Memory Space and Bus Master Enable set, as `platform-linux`
    /// leaves a real board for the in-process driver). `false`: PCI power-on state, command = 0,
    /// as a front end that lets a guest enumerate the function needs.
    pub pci_enabled: bool,
    /// The module in the SFP+ cage (identified over I2C).
    pub module: SfpModule,
    /// What the NVM loads into AUTOC, AUTOC2 and ESDP.
    pub nvm: NvmLink,
    /// MPSAR's content at power-on.
    pub mpsar: MpsarPowerOn,
    /// Time from SECRXCTRL.RX_DIS to SECRXSTAT.SECRX_RDY.
    pub secrx_drain: Duration,
    /// Manageability firmware runs (FWSM.FW_mode = 001b): it shares AUTOC with the driver, so
    /// AUTOC may be written only while software holds the SW_FW_SYNC MAC_CSR semaphore
    /// (datasheet §10.5.4; Intel's `prot_autoc_write_82599`).
    pub manageability: bool,
    /// MMNGC.MNG_VETO: firmware forbids link resets and link-mode changes (Linux's
    /// `ixgbe_check_reset_blocked`).
    pub mng_veto: bool,
    /// Which port of the dual-port device this function is (STATUS.LAN_ID, 0 or 1): Linux
    /// names the SFP type `_core0` / `_core1` after it.
    pub lan_id: u8,
    /// Virtual time from a reset or AUTOC.Restart_AN to link up.
    pub link_up_delay: Duration,
}

impl NicConfig {
    /// A port of `board`, everything else at its default.
    pub fn for_board(board: Board) -> Self {
        NicConfig {
            mac: [0x02, 0x00, 0x00, 0x00, 0x00, 0x01],
            device_id: board.device_id(),
            subsystem_id: board.subsystem_id(),
            pci_enabled: true,
            module: board.module(),
            nvm: board.nvm(),
            mpsar: MpsarPowerOn::default(),
            secrx_drain: board::SECRX_DRAIN,
            manageability: false,
            mng_veto: false,
            lan_id: 0,
            link_up_delay: Duration::from_millis(20),
        }
    }
}

impl Default for NicConfig {
    fn default() -> Self {
        NicConfig::for_board(Board::default())
    }
}

/// Emits frames that arrive on a NIC's wire.
pub trait TrafficSource: Send {
    /// Emits (through `out`) every frame due by virtual time `now`. Frames exclude the FCS.
    ///
    /// Called with the simulator locked: must not call back into the [`Sim`].
    fn poll(&mut self, now: Duration, out: &mut dyn FnMut(&[u8]));
}

/// Receives what a NIC transmits.
pub trait TrafficSink: Send {
    /// One frame (without FCS, padded if TXPADEN) left the NIC at virtual time `now`.
    ///
    /// Called with the simulator locked: must not call back into the [`Sim`].
    fn receive(&mut self, now: Duration, frame: &[u8]);
}

/// Where a simulated function's interrupt messages go (the vfio-user front end's eventfds).
///
/// The model decides when an interrupt is due from its interrupt registers (datasheet §7.3);
/// the sink only delivers it.
pub trait InterruptSink: Send {
    /// MSI-X message for `vector` (GPIE.Multiple_MSIX = 1 and MSI-X enabled in config space).
    fn msix(&mut self, vector: u16);
    /// The single interrupt (MSI, or INTx) changes level: `true` when an enabled cause becomes
    /// pending, `false` when none is left. MSI is sent on each rising edge.
    fn legacy(&mut self, asserted: bool);
}

/// Categories of protocol violations (for tests that look for a specific one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// The device was made to access a bus address outside every live DMA region (or a range
    /// crossing a 2 MiB chunk boundary, which is not contiguous in bus space).
    DmaOutsideRegion,
    /// `dma_free` of a region that an enabled queue still uses.
    DmaFreeInUse,
    /// `dma_free` of something that is not a live region of this simulation.
    BadDmaFree,
    /// RDT/TDT written with a value ≥ the ring length.
    TailOutOfRange,
    /// RDBAL/H, RDLEN, SRRCTL, TDBAL/H or TDLEN written while the queue is enabled.
    RingReprogrammedWhileEnabled,
    /// FCTRL changed while RXCTRL.RXEN = 1.
    FctrlChangedWhileRxEnabled,
    /// Reserved bits written as 1 (or fields that must hold a fixed value written otherwise).
    ReservedBits,
    /// A tail register bumped before the queue's ENABLE reads 1.
    TailBeforeEnable,
    /// A write to an offset the model does not know.
    UnknownRegister,
    /// A write to a read-only register.
    ReadOnlyRegister,
    /// An MMIO access at an offset that is not a multiple of 4.
    UnalignedAccess,
    /// A ring base not 128-byte aligned.
    RingAlignment,
    /// RDLEN/TDLEN zero or not a multiple of 128.
    RingLength,
    /// RXCTRL.RXEN set without the SECRXCTRL.RX_DIS handshake.
    RxEnableWithoutHandshake,
    /// A TX descriptor that is not an advanced data descriptor (DTYP 0011b, DEXT 1).
    TxDescriptorFormat,
    /// A TX data length of 0 or more than 16 KiB.
    TxDataLength,
    /// An RX queue receiving with SRRCTL.DESCTYPE other than advanced one-buffer.
    RxDescriptorType,
    /// HLREG0.RXCRCSTRP and RDRXCTL.CRCStrip disagree when a frame is received.
    CrcStripMismatch,
    /// RDH/TDH written while the queue is enabled.
    HeadWrite,
    /// Another invalid configuration (e.g. SRRCTL.BSIZEPACKET = 0).
    InvalidConfig,
    /// AUTOC written while manageability firmware runs without the SW_FW_SYNC MAC_CSR
    /// semaphore held by software.
    SemaphoreNotHeld,
    /// A link reset or link-mode change while MMNGC.MNG_VETO forbids it.
    LinkResetVetoed,
}

/// A protocol violation recorded by the model (it never panics on driver mistakes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The NIC concerned.
    pub nic: NicId,
    /// Virtual time of the violation.
    pub time: Duration,
    /// Category.
    pub kind: ViolationKind,
    /// Human-readable description.
    pub what: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:?}] NIC {}: {:?}: {}",
            self.time, self.nic.0, self.kind, self.what
        )
    }
}

/// How an RX write-back is corrupted by [`Fault::RxWriteback`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxCorruption {
    /// PKT_LEN larger than the buffer.
    LengthTooLong,
    /// RXE error bit (status_error bit 29, descriptor bit 93) set.
    ErrorBit,
    /// EOP cleared.
    NoEop,
    /// PKT_LEN = 0.
    ZeroLength,
}

/// Injected device misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// CTRL.RST / LRST never self-clear.
    ResetNeverCompletes,
    /// EEC.Auto_RD never gets set after a reset.
    EepromAutoReadNeverDone,
    /// RDRXCTL.DMAIDONE never gets set after a reset.
    DmaInitNeverDone,
    /// RXDCTL/TXDCTL.ENABLE never read 1 after being set.
    QueueEnableStuck,
    /// The link never comes up.
    LinkNeverUp,
    /// SECRXSTAT.SECRX_RDY never gets set after SECRXCTRL.RX_DIS.
    SecRxNeverReady,
    /// No valid NVM: EEC.EE_PRES reads 0 (Auto_RD is still set, §8.2.3.2.1).
    NvmMissing,
    /// Firmware reports an error in FWSM.Ext_err_ind (bits 24:19; 0x01 = bad NVM checksum).
    FirmwareError {
        /// The error code, 1..=63.
        code: u8,
    },
    /// TX queue `queue` stops fetching descriptors (the tail moves, the head does not).
    StallTx {
        /// Queue index.
        queue: u16,
    },
    /// The next `count` RX descriptor write-backs are corrupted.
    RxWriteback {
        /// Kind of corruption.
        corruption: RxCorruption,
        /// Number of write-backs to corrupt.
        count: u32,
    },
    /// DD gets written on TX descriptors that were not processed (at and beyond TDT).
    TxSpuriousDone {
        /// Queue index.
        queue: u16,
    },
    /// A rogue device: about `writes_per_ms` times per millisecond of virtual time it writes
    /// a random byte anywhere in the memory mapped for it (any live DMA region or window), or
    /// random bits into the second word of a random descriptor of an enabled ring (half of
    /// them with DD|EOP set and a random length), from a seeded generator.
    RogueDma {
        /// Writes per millisecond of virtual time.
        writes_per_ms: u32,
        /// Seed of the generator (runs are repeatable).
        seed: u64,
    },
}

/// What happened on a NIC's wire (independent of the register statistics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WireCounters {
    /// Frames offered to RX (inject, cable, source).
    pub rx_frames: u64,
    /// Bytes offered to RX (without FCS).
    pub rx_bytes: u64,
    /// Frames written to host memory.
    pub rx_delivered: u64,
    /// Frames dropped for lack of a descriptor with Drop_En, for a disabled queue, or for an
    /// invalid queue configuration.
    pub rx_dropped: u64,
    /// Frames dropped because the RX packet buffer overflowed (RXMPC).
    pub rx_missed: u64,
    /// Frames rejected by the L2 filter.
    pub rx_filtered: u64,
    /// Frames dropped because RXCTRL.RXEN = 0.
    pub rx_disabled: u64,
    /// Frames dropped because the link was down.
    pub rx_link_down: u64,
    /// Frames dropped for a bad length (runt / oversize).
    pub rx_errors: u64,
    /// Frames put on the wire.
    pub tx_frames: u64,
    /// Bytes put on the wire (without FCS, after padding).
    pub tx_bytes: u64,
    /// TX packets dropped because of invalid descriptors or DMA faults.
    pub tx_bad: u64,
}

/// The simulated world: NICs, cables, DMA memory and a virtual clock.
///
/// Cheap to clone (a shared handle); `Send + Sync`.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<Mutex<model::World>>,
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.lock();
        f.debug_struct("Sim")
            .field("now", &w.core.now)
            .field("nics", &w.nics.len())
            .finish()
    }
}

impl Sim {
    /// An empty world at virtual time 0.
    pub fn new() -> Sim {
        Sim {
            inner: Arc::new(Mutex::new(model::World::new())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, model::World> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a NIC in its power-on state (EEPROM read done, link up after `link_up_delay`).
    pub fn add_nic(&self, cfg: NicConfig) -> NicId {
        NicId(self.lock().add_nic(cfg))
    }

    /// A platform handle for the driver of `nic`.
    pub fn platform(&self, nic: NicId) -> SimPlatform {
        assert!(nic.0 < self.lock().nics.len(), "no such NIC {nic:?}");
        SimPlatform {
            sim: self.clone(),
            nic: nic.0,
        }
    }

    /// Connects two NICs: what `a` sends, `b` receives, and vice versa.
    pub fn cable(&self, a: NicId, b: NicId) {
        let mut w = self.lock();
        w.cables[a.0] = Some(b.0);
        w.cables[b.0] = Some(a.0);
        w.link_conditions_changed(a.0);
    }

    /// A frame (without FCS) arrives on `nic`'s wire.
    pub fn inject(&self, nic: NicId, frame: &[u8]) {
        self.lock().inject(nic.0, frame);
    }

    /// Frames `nic` put on the wire that no cable or sink consumed (oldest first).
    pub fn take_transmitted(&self, nic: NicId) -> Vec<Vec<u8>> {
        self.lock().nics[nic.0].transmitted.drain(..).collect()
    }

    /// Advances virtual time, running timed events, sources, TX and held RX frames.
    pub fn advance(&self, d: Duration) {
        self.lock().advance(d);
    }

    /// Sets the time slice of [`Sim::advance`] while sources are attached (default 100 µs):
    /// frames a source emits arrive at the end of the slice they fall in. Shorter slices give
    /// finer timing at a higher cost per simulated second. Zero is taken as 1 µs.
    pub fn set_time_slice(&self, slice: Duration) {
        self.lock().slice = slice.max(Duration::from_micros(1));
    }

    /// Current virtual time.
    pub fn now(&self) -> Duration {
        self.lock().core.now
    }

    /// Every violation recorded so far (all NICs). Exact duplicates are recorded once.
    pub fn violations(&self) -> Vec<Violation> {
        self.lock().core.violations.clone()
    }

    /// Injects a fault into `nic`.
    pub fn set_fault(&self, nic: NicId, fault: Fault) {
        self.lock().set_fault(nic.0, fault);
    }

    /// Removes every fault of `nic`.
    pub fn clear_faults(&self, nic: NicId) {
        self.lock().clear_faults(nic.0);
    }

    /// Plugs (`up`) or unplugs the cable of `nic` (and of its cabled peer).
    pub fn set_link(&self, nic: NicId, up: bool) {
        self.lock().set_link(nic.0, up);
    }

    /// Attaches a source of frames arriving on `nic`'s wire (replaces any previous one).
    pub fn attach_source(&self, nic: NicId, src: Box<dyn TrafficSource>) {
        self.lock().sources[nic.0] = Some(src);
    }

    /// Attaches a sink for what `nic` transmits (used when `nic` has no cable).
    pub fn attach_sink(&self, nic: NicId, sink: Box<dyn TrafficSink>) {
        self.lock().sinks[nic.0] = Some(sink);
    }

    /// Wire-level counters of `nic`.
    pub fn wire_counters(&self, nic: NicId) -> WireCounters {
        self.lock().nics[nic.0].wire
    }

    /// Attaches the sink of `nic`'s interrupt messages (replaces any previous one).
    pub fn attach_interrupts(&self, nic: NicId, sink: Box<dyn InterruptSink>) {
        self.lock().irq_sinks[nic.0] = Some(sink);
    }

    /// Reads `nic`'s PCI configuration space at `offset`.
    pub fn config_read(&self, nic: NicId, offset: u16, data: &mut [u8]) {
        self.lock().nics[nic.0]
            .config
            .read(usize::from(offset), data);
    }

    /// Writes `nic`'s PCI configuration space at `offset` (read-only bits are kept).
    pub fn config_write(&self, nic: NicId, offset: u16, data: &[u8]) {
        self.lock().config_write(nic.0, usize::from(offset), data);
    }

    /// A PCIe reset of `nic`'s function, what a vfio `reset` asks for (Function Level Reset):
    /// registers, queues, interrupt state, the MSI-X table and configuration space return to
    /// power-on values (command = 0: no memory decoding, no bus mastering); the EEPROM
    /// auto-read and DMA init run again; the link retrains. Writing Initiate FLR in the PCIe
    /// Device Control register does the same.
    pub fn function_reset(&self, nic: NicId) {
        let mut w = self.lock();
        w.function_reset(nic.0);
        w.irq_update(nic.0);
    }

    /// A 32-bit read of `nic`'s BAR4 at `offset`: the MSI-X table (16 bytes per vector from 0)
    /// and the PBA (at 0x2000).
    pub fn bar4_read(&self, nic: NicId, offset: u32) -> u32 {
        self.lock().nics[nic.0].bar4_read(offset)
    }

    /// A 32-bit write to `nic`'s BAR4 at `offset` (MSI-X table; the PBA is read-only).
    /// Unmasking a vector whose PBA bit is set sends its message.
    pub fn bar4_write(&self, nic: NicId, offset: u32, value: u32) {
        let mut w = self.lock();
        w.nics[nic.0].bar4_write(offset, value);
        w.irq_update(nic.0);
    }

    /// A copy of `nic`'s EEPROM image (the words EERD reads).
    pub fn eeprom(&self, nic: NicId) -> Vec<u16> {
        self.lock().nics[nic.0].eeprom.clone()
    }

    /// A 32-bit read of `nic`'s BAR0 at `offset` (as [`Platform::read32`]).
    pub fn bar0_read(&self, nic: NicId, offset: u32) -> u32 {
        self.lock().mmio_read(nic.0, offset)
    }

    /// A 32-bit write to `nic`'s BAR0 at `offset` (as [`Platform::write32`]).
    ///
    /// # Safety
    ///
    /// The write may start DMA into memory the device may reach: its simulated DMA regions and
    /// the windows mapped by [`Sim::map_bus_window`]. The caller must hold no Rust reference to
    /// bytes the device may write meanwhile.
    pub unsafe fn bar0_write(&self, nic: NicId, offset: u32, value: u32) {
        self.lock().mmio_write(nic.0, offset, value);
    }

    /// Maps `len` bytes of foreign memory at `host` at bus addresses `[bus, bus + len)` (a VM's
    /// RAM under vfio-user, or its IOVAs). False if the range is empty or overlaps a window.
    ///
    /// # Safety
    ///
    /// `host` must stay valid for reads and writes of `len` bytes until the window is unmapped
    /// ([`Sim::unmap_bus_window`], [`Sim::unmap_all_bus_windows`]) or the last handle to the
    /// simulation is dropped, and no Rust reference to those bytes may exist meanwhile.
    pub unsafe fn map_bus_window(&self, bus: u64, len: usize, host: NonNull<u8>) -> bool {
        // SAFETY: forwarded contract.
        unsafe { self.lock().core.dma.map_window(bus, len, host.as_ptr()) }
    }

    /// Unmaps every window starting in `[bus, bus + len)`; returns how many.
    pub fn unmap_bus_window(&self, bus: u64, len: u64) -> usize {
        self.lock().core.dma.unmap_window(bus, len)
    }

    /// Unmaps every window.
    pub fn unmap_all_bus_windows(&self) {
        self.lock().core.dma.unmap_all_windows();
    }

    /// The configured PCI device ID of `nic`.
    pub fn device_id(&self, nic: NicId) -> u16 {
        self.lock().nics[nic.0].cfg.device_id
    }

    /// Number of violations not recorded because they duplicated an earlier one (or the log
    /// was full).
    pub fn suppressed_violations(&self) -> u64 {
        self.lock().core.suppressed
    }
}

/// The [`Platform`] of one simulated NIC. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct SimPlatform {
    sim: Sim,
    nic: usize,
}

impl fmt::Debug for SimPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimPlatform")
            .field("nic", &self.nic)
            .finish()
    }
}

impl SimPlatform {
    /// The simulation this platform belongs to.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// The NIC this platform drives.
    pub fn nic(&self) -> NicId {
        NicId(self.nic)
    }
}

// SAFETY: `read32`/`write32` only touch the model's register file (never host memory other than
// DMA regions the device is allowed to reach), every call takes the simulator lock, so accesses
// are in program order and synchronised with other threads (the mutex provides the release /
// acquire ordering the contract asks for). `dma_alloc` returns zeroed, 4096-aligned heap memory
// that stays allocated until `dma_free` (or until the whole simulation is dropped, documented on
// the crate), with per-2-MiB-chunk bus addresses that `virt_to_phys` reports and that the model
// translates back. All handles cloned from one platform share one simulation.
unsafe impl Platform for SimPlatform {
    #[inline(never)]
    fn read32(&self, offset: u32) -> u32 {
        self.sim.lock().mmio_read(self.nic, offset)
    }

    #[inline(never)]
    unsafe fn write32(&self, offset: u32, value: u32) {
        self.sim.lock().mmio_write(self.nic, offset, value);
    }

    fn dma_alloc(&self, size: usize) -> Result<DmaRegion, DmaError> {
        let mut w = self.sim.lock();
        let (ptr, id) = w.core.dma.alloc(size).ok_or(DmaError::Unsupported)?;
        // SAFETY: `ptr` is a fresh zeroed allocation of at least `size` bytes, 4096-aligned, kept
        // alive until `dma_free`; each 2 MiB chunk has one contiguous bus range starting at a
        // 2 MiB-aligned (so 4096-aligned) bus address.
        Ok(unsafe { DmaRegion::new(ptr, size, id) })
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        let mut w = self.sim.lock();
        let id = region.cookie();
        if let Some(user) = w.region_in_use(id) {
            w.core.violate(
                self.nic,
                ViolationKind::DmaFreeInUse,
                format!("dma_free of region {id} still used by {user}"),
            );
        }
        let virt: *const u8 = region.virt().as_ptr();
        if !w.core.dma.free(id, virt) {
            w.core.violate(
                self.nic,
                ViolationKind::BadDmaFree,
                format!("dma_free of region {id} at {virt:p}, which is not a live region"),
            );
        }
    }

    fn private_alloc(&self, size: usize) -> Result<PrivateRegion, DmaError> {
        let layout = private_layout(size).ok_or(DmaError::Unsupported)?;
        // SAFETY: the layout has a non-zero size.
        let ptr = NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
            .ok_or(DmaError::OutOfMemory)?;
        // SAFETY: fresh zeroed heap memory of `size` bytes, 4096-aligned, ours until
        // private_free; never registered in the simulated DMA space, so the model cannot reach
        // it (a device access there is a DmaOutsideRegion violation).
        Ok(unsafe { PrivateRegion::new(ptr, size, 0) })
    }

    unsafe fn private_free(&self, region: PrivateRegion) {
        if let Some(layout) = private_layout(region.len()) {
            // SAFETY: allocated by private_alloc with the layout of this very size (contract).
            unsafe { std::alloc::dealloc(region.virt().as_ptr(), layout) };
        }
    }

    fn virt_to_phys(&self, virt: *const u8) -> Option<u64> {
        self.sim.lock().core.dma.virt_to_bus(virt)
    }

    #[inline(never)]
    fn delay(&self, duration: Duration) {
        self.sim.advance(duration);
    }

    fn pci_device_id(&self) -> u16 {
        self.sim.device_id(NicId(self.nic))
    }
}

/// The heap layout of a private region of `size` bytes (`None` for 0 or an impossible size).
fn private_layout(size: usize) -> Option<std::alloc::Layout> {
    (size > 0)
        .then(|| std::alloc::Layout::from_size_align(size, 4096).ok())
        .flatten()
}

/// Returns a host pointer for a DMA region's byte at `offset` (test helper).
///
/// Useful for tests that build rings by hand. Panics if `offset >= region.len()`.
pub fn region_ptr(region: &DmaRegion, offset: usize) -> NonNull<u8> {
    assert!(offset < region.len(), "offset outside the region");
    // SAFETY: `offset < len`, so the result stays inside the region's allocation.
    unsafe { NonNull::new_unchecked(region.virt().as_ptr().add(offset)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync_clone<T: Send + Sync + Clone>() {}

    #[test]
    fn handles_are_send_sync_clone() {
        assert_send_sync_clone::<Sim>();
        assert_send_sync_clone::<SimPlatform>();
        assert_send_sync_clone::<NicId>();
    }

    #[test]
    fn platform_usable_from_another_thread() {
        let sim = Sim::new();
        let nic = sim.add_nic(NicConfig::default());
        let p = sim.platform(nic);
        let h = std::thread::spawn(move || {
            p.delay(Duration::from_millis(30));
            p.read32(0x042A4)
        });
        let links = h.join().expect("thread");
        assert_ne!(links & (1 << 30), 0);
        assert!(sim.now() >= Duration::from_millis(30));
    }
}
