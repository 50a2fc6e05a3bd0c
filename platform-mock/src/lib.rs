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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ixgbe_core::{DmaError, DmaRegion, Platform, PrivateRegion, DMA_PAGE_SIZE as DMA_PAGE};

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

    /// As [`TrafficSource::poll`], the frames handed over in bursts: each call of `out` gets
    /// `(frames, len)`, frames of `len` bytes each back to back, in order; `frames` no longer
    /// than `len` (or `len` 0) is one frame. The same frames as `poll` would emit. The
    /// default hands each frame of `poll` over alone.
    fn poll_bursts(&mut self, now: Duration, out: &mut dyn FnMut(&[u8], usize)) {
        self.poll(now, &mut |f| out(f, f.len()));
    }
}

/// Receives what a NIC transmits.
pub trait TrafficSink: Send {
    /// One frame (without FCS, padded if TXPADEN) left the NIC at virtual time `now`.
    ///
    /// Called with the simulator locked: must not call back into the [`Sim`].
    fn receive(&mut self, now: Duration, frame: &[u8]);

    /// Frames that left the NIC one after another at virtual time `now`, as
    /// [`TrafficSink::receive`] would get them in that order: `frames` holds them back to
    /// back, `lens` their lengths. The model hands a sink every frame of a tail write this
    /// way (up to [`SINK_BURST`] a call); the default passes each one to `receive`.
    ///
    /// Called with the simulator locked: must not call back into the [`Sim`].
    fn receive_burst(&mut self, now: Duration, frames: &[u8], lens: &[usize]) {
        let mut at = 0;
        for &len in lens {
            self.receive(now, &frames[at..at + len]);
            at += len;
        }
    }
}

/// Most frames in one [`TrafficSink::receive_burst`] call.
pub const SINK_BURST: usize = 32;

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
    /// With lanes ([`Sim::with_lanes`]): frames a lane received for a queue another lane owns
    /// and handed to it (counted in `rx_frames` once, by the receiving lane). 0 when each
    /// lane's sources offer only flows RSS sends to its own queues.
    pub rx_handed_over: u64,
}

impl WireCounters {
    /// Adds `o` to `self`, counter by counter (the lanes' counts of one wire).
    fn add(&mut self, o: &WireCounters) {
        self.rx_frames += o.rx_frames;
        self.rx_bytes += o.rx_bytes;
        self.rx_delivered += o.rx_delivered;
        self.rx_dropped += o.rx_dropped;
        self.rx_missed += o.rx_missed;
        self.rx_filtered += o.rx_filtered;
        self.rx_disabled += o.rx_disabled;
        self.rx_link_down += o.rx_link_down;
        self.rx_errors += o.rx_errors;
        self.tx_frames += o.tx_frames;
        self.tx_bytes += o.tx_bytes;
        self.tx_bad += o.tx_bad;
        self.rx_handed_over += o.rx_handed_over;
    }
}

/// The simulated world: NICs, cables, DMA memory and a virtual clock.
///
/// Cheap to clone (a shared handle); `Send + Sync`.
///
/// # Lanes (multi-core runs)
///
/// [`Sim::new`] is one model behind one lock. [`Sim::with_lanes`]`(k)` runs `k` instances of
/// the whole model ("lanes"), each behind its own lock, so that `k` threads can drive `k`
/// queues at once: lane `q % k` owns queue `q` of every NIC. Every register write, reset,
/// fault and DMA mapping goes to every lane in the same order, so all lanes hold the same
/// configuration and make the same checks; only a tail write (RDT, TDT) goes to its queue's
/// lane alone, which then runs that queue's DMA under that lane's lock only. A frame that
/// arrives in a lane for a queue the lane does not own (RSS chose it) is handed to the owning
/// lane, which delivers it on its next call. Reads go to every lane (their side effects stay
/// in step) and combine: queue registers from the owner, statistics summed, EICR or-ed, the
/// rest from lane 0. Each lane has its own clock ([`Sim::advance_lane`]; [`Sim::advance`]
/// moves all of them), sources and sinks ([`Sim::attach_lane_source`]); interrupts are not
/// supported with more than one lane.
#[derive(Clone)]
pub struct Sim {
    inner: Arc<Lanes>,
}

/// Frames handed to a lane: (NIC, frame).
type Inbox = Vec<(usize, model::Held)>;

/// The model instances of a [`Sim`] (one unless [`Sim::with_lanes`]).
struct Lanes {
    lanes: Box<[Lane]>,
}

/// One model instance and the frames other lanes handed it; a cache line (or two) of its own,
/// so that two threads working on two lanes share no line.
#[repr(align(128))]
struct Lane {
    world: Mutex<model::World>,
    /// Frames another lane received for one of this lane's queues.
    inbox: Mutex<Inbox>,
    /// The inbox is not empty (looked at without its lock).
    inbox_full: AtomicBool,
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
            .field("lanes", &self.lanes())
            .finish()
    }
}

impl Sim {
    /// An empty world at virtual time 0.
    pub fn new() -> Sim {
        Sim::with_lanes(1)
    }

    /// An empty world of `lanes` model instances (1..=128, clamped), see [Lanes](Sim#lanes-multi-core-runs).
    pub fn with_lanes(lanes: usize) -> Sim {
        let k = lanes.clamp(1, 128);
        Sim {
            inner: Arc::new(Lanes {
                lanes: (0..k)
                    .map(|l| Lane {
                        world: Mutex::new(model::World::new_lane(l as u16, k as u16)),
                        inbox: Mutex::new(Vec::new()),
                        inbox_full: AtomicBool::new(false),
                    })
                    .collect(),
            }),
        }
    }

    /// Number of lanes (model instances).
    pub fn lanes(&self) -> usize {
        self.inner.lanes.len()
    }

    /// The lane that owns queue `queue` of every NIC.
    pub fn lane_of_queue(&self, queue: u16) -> usize {
        lane_of(queue, self.lanes())
    }

    /// Lane 0's model (the only one without lanes).
    fn lock(&self) -> MutexGuard<'_, model::World> {
        lock_mutex(&self.inner.lanes[0].world)
    }

    /// Every lane's model, locked in lane order (the only order any thread locks several).
    fn lock_all(&self) -> Vec<MutexGuard<'_, model::World>> {
        self.inner
            .lanes
            .iter()
            .map(|l| lock_mutex(&l.world))
            .collect()
    }

    /// Runs `f` on every lane's model, lane 0 first, all of them locked; then hands frames
    /// that arrived in the wrong lane to their owners. Returns lane 0's result.
    fn each<R>(&self, mut f: impl FnMut(&mut model::World) -> R) -> R {
        if self.lanes() == 1 {
            return f(&mut self.lock());
        }
        let mut all = self.lock_all();
        let mut first = None;
        for w in all.iter_mut() {
            let r = f(w);
            first.get_or_insert(r);
        }
        settle(&mut all);
        first.expect("at least one lane")
    }

    /// Lane `k`'s model, locked, with the frames other lanes handed it delivered.
    fn lock_lane(&self, k: usize) -> MutexGuard<'_, model::World> {
        let lane = &self.inner.lanes[k];
        let mut w = lock_mutex(&lane.world);
        // A plain load first: the flag's line stays shared until another lane sets it.
        if lane.inbox_full.load(Ordering::Relaxed) && lane.inbox_full.swap(false, Ordering::Acquire)
        {
            let frames = std::mem::take(&mut *lock_mutex(&lane.inbox));
            for (nic, h) in frames {
                w.deliver_foreign(nic, h);
            }
        }
        w
    }

    /// Hands the frames lane `w` received for other lanes' queues to those lanes.
    #[inline]
    fn route(&self, w: &mut model::World) {
        if w.has_foreign() {
            self.route_foreign(w);
        }
    }

    /// [`Sim::route`] once there is something to hand over.
    #[cold]
    #[inline(never)]
    fn route_foreign(&self, w: &mut model::World) {
        for (nic, h) in w.take_foreign() {
            let k = self.lane_of_queue(h.meta.queue);
            let lane = &self.inner.lanes[k];
            lock_mutex(&lane.inbox).push((nic, h));
            lane.inbox_full.store(true, Ordering::Release);
        }
    }

    /// Adds a NIC in its power-on state (EEPROM read done, link up after `link_up_delay`).
    pub fn add_nic(&self, cfg: NicConfig) -> NicId {
        NicId(self.each(|w| w.add_nic(cfg.clone())))
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
        self.each(|w| {
            w.cables[a.0] = Some(b.0);
            w.cables[b.0] = Some(a.0);
            w.link_conditions_changed(a.0);
        });
    }

    /// A frame (without FCS) arrives on `nic`'s wire.
    pub fn inject(&self, nic: NicId, frame: &[u8]) {
        if self.lanes() == 1 {
            self.lock().inject(nic.0, frame);
            return;
        }
        // Lane 0 takes the frame (and counts it); the owner of the queue RSS picks delivers it.
        let mut all = self.lock_all();
        all[0].inject(nic.0, frame);
        settle(&mut all);
    }

    /// Frames `nic` put on the wire that no cable or sink consumed (oldest first within each
    /// lane, lane 0 first).
    pub fn take_transmitted(&self, nic: NicId) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for k in 0..self.lanes() {
            out.extend(self.lock_lane(k).nics[nic.0].transmitted.drain(..));
        }
        out
    }

    /// Advances virtual time, running timed events, sources, TX and held RX frames. With
    /// lanes: every lane's clock by `d`, one lane after the other.
    pub fn advance(&self, d: Duration) {
        if self.lanes() == 1 {
            self.lock().advance(d);
            return;
        }
        for k in 0..self.lanes() {
            self.advance_lane(k, d);
        }
    }

    /// Advances lane `k`'s clock only (its sources, its queues), under that lane's lock: what
    /// the thread serving lane `k`'s queues calls. Without lanes (`k` = 0) the same as
    /// [`Sim::advance`].
    pub fn advance_lane(&self, k: usize, d: Duration) {
        let mut w = self.lock_lane(k);
        w.advance(d);
        self.route(&mut w);
    }

    /// Sets the time slice of [`Sim::advance`] while sources are attached (default 100 µs):
    /// frames a source emits arrive at the end of the slice they fall in. Shorter slices give
    /// finer timing at a higher cost per simulated second. Zero is taken as 1 µs.
    pub fn set_time_slice(&self, slice: Duration) {
        self.each(|w| w.slice = slice.max(Duration::from_micros(1)));
    }

    /// Current virtual time (lane 0's).
    pub fn now(&self) -> Duration {
        self.lock().core.now
    }

    /// Current virtual time of lane `k`.
    pub fn lane_now(&self, k: usize) -> Duration {
        lock_mutex(&self.inner.lanes[k].world).core.now
    }

    /// Every violation recorded so far (all NICs). Exact duplicates are recorded once (with
    /// lanes: once over all lanes, lane 0's first).
    pub fn violations(&self) -> Vec<Violation> {
        let mut out = self.lock().core.violations.clone();
        for k in 1..self.lanes() {
            for v in &lock_mutex(&self.inner.lanes[k].world).core.violations {
                if !out
                    .iter()
                    .any(|o| o.nic == v.nic && o.kind == v.kind && o.what == v.what)
                {
                    out.push(v.clone());
                }
            }
        }
        out
    }

    /// Injects a fault into `nic` (every lane).
    pub fn set_fault(&self, nic: NicId, fault: Fault) {
        self.each(|w| w.set_fault(nic.0, fault));
    }

    /// Removes every fault of `nic`.
    pub fn clear_faults(&self, nic: NicId) {
        self.each(|w| w.clear_faults(nic.0));
    }

    /// Plugs (`up`) or unplugs the cable of `nic` (and of its cabled peer).
    pub fn set_link(&self, nic: NicId, up: bool) {
        self.each(|w| w.set_link(nic.0, up));
    }

    /// Attaches a source of frames arriving on `nic`'s wire (replaces any previous one). With
    /// lanes: lane 0's source (frames for other lanes' queues are handed to them).
    pub fn attach_source(&self, nic: NicId, src: Box<dyn TrafficSource>) {
        self.lock().sources[nic.0] = Some(src);
    }

    /// Attaches a sink for what `nic` transmits (used when `nic` has no cable). With lanes:
    /// what lane 0's queues transmit.
    pub fn attach_sink(&self, nic: NicId, sink: Box<dyn TrafficSink>) {
        self.lock().sinks[nic.0] = Some(sink);
    }

    /// Attaches the source of `nic` in lane `k`, polled on that lane's clock: with sources
    /// whose frames RSS sends to lane `k`'s queues (see [`Sim::rss_queue`]), lanes never hand
    /// frames to each other.
    pub fn attach_lane_source(&self, k: usize, nic: NicId, src: Box<dyn TrafficSource>) {
        self.lock_lane(k).sources[nic.0] = Some(src);
    }

    /// Attaches the sink of what lane `k`'s queues of `nic` transmit.
    pub fn attach_lane_sink(&self, k: usize, nic: NicId, sink: Box<dyn TrafficSink>) {
        self.lock_lane(k).sinks[nic.0] = Some(sink);
    }

    /// The receive queue `nic`'s current filters and RSS set-up (MRQC, RSSRK, RETA) select for
    /// `frame`, as the model's receive path computes it (0 without RSS).
    pub fn rss_queue(&self, nic: NicId, frame: &[u8]) -> u16 {
        self.lock().rss_queue(nic.0, frame)
    }

    /// Wire-level counters of `nic` (summed over lanes).
    pub fn wire_counters(&self, nic: NicId) -> WireCounters {
        let mut c = self.lock().nics[nic.0].wire;
        for k in 1..self.lanes() {
            c.add(&lock_mutex(&self.inner.lanes[k].world).nics[nic.0].wire);
        }
        c
    }

    /// Attaches the sink of `nic`'s interrupt messages (replaces any previous one; lane 0's:
    /// interrupts need a simulator without lanes).
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
        self.each(|w| w.config_write(nic.0, usize::from(offset), data));
    }

    /// A PCIe reset of `nic`'s function, what a vfio `reset` asks for (Function Level Reset):
    /// registers, queues, interrupt state, the MSI-X table and configuration space return to
    /// power-on values (command = 0: no memory decoding, no bus mastering); the EEPROM
    /// auto-read and DMA init run again; the link retrains. Writing Initiate FLR in the PCIe
    /// Device Control register does the same.
    pub fn function_reset(&self, nic: NicId) {
        self.each(|w| {
            w.function_reset(nic.0);
            w.irq_update(nic.0);
        });
    }

    /// A 32-bit read of `nic`'s BAR4 at `offset`: the MSI-X table (16 bytes per vector from 0)
    /// and the PBA (at 0x2000).
    pub fn bar4_read(&self, nic: NicId, offset: u32) -> u32 {
        self.lock().nics[nic.0].bar4_read(offset)
    }

    /// A 32-bit write to `nic`'s BAR4 at `offset` (MSI-X table; the PBA is read-only).
    /// Unmasking a vector whose PBA bit is set sends its message.
    pub fn bar4_write(&self, nic: NicId, offset: u32, value: u32) {
        self.each(|w| {
            w.nics[nic.0].bar4_write(offset, value);
            w.irq_update(nic.0);
        });
    }

    /// A copy of `nic`'s EEPROM image (the words EERD reads).
    pub fn eeprom(&self, nic: NicId) -> Vec<u16> {
        self.lock().nics[nic.0].eeprom.clone()
    }

    /// A 32-bit read of `nic`'s BAR0 at `offset` (as [`Platform::read32`]).
    pub fn bar0_read(&self, nic: NicId, offset: u32) -> u32 {
        if self.lanes() == 1 {
            return self.lock().mmio_read(nic.0, offset);
        }
        self.read_lanes(nic.0, offset)
    }

    /// A 32-bit write to `nic`'s BAR0 at `offset` (as [`Platform::write32`]).
    ///
    /// # Safety
    ///
    /// The write may start DMA into memory the device may reach: its simulated DMA regions and
    /// the windows mapped by [`Sim::map_bus_window`]. The caller must hold no Rust reference to
    /// bytes the device may write meanwhile.
    pub unsafe fn bar0_write(&self, nic: NicId, offset: u32, value: u32) {
        if self.lanes() == 1 {
            self.lock().mmio_write(nic.0, offset, value);
            return;
        }
        self.write_lanes(nic.0, offset, value);
    }

    /// A read with lanes: every lane reads (side effects stay in step), answers combine.
    #[inline(never)]
    fn read_lanes(&self, nic: usize, off: u32) -> u32 {
        let merge = match model::read_class(off) {
            model::ReadClass::Queue(q) => Merge::Lane(self.lane_of_queue(q)),
            model::ReadClass::Stat { high } => Merge::Sum { high },
            model::ReadClass::Eicr => Merge::Or,
            model::ReadClass::Other => Merge::First,
        };
        let mut all = self.lock_all();
        let values: Vec<u32> = all.iter_mut().map(|w| w.mmio_read(nic, off)).collect();
        let v = match merge {
            Merge::Lane(k) => values[k],
            Merge::Sum { high } => {
                let sum: u64 = values.iter().map(|&v| u64::from(v)).sum();
                if let (Some(h), true) = (high, sum >> 32 != 0) {
                    all[0].add_to_register(nic, h, (sum >> 32) as u32);
                }
                if high.is_some() {
                    sum as u32
                } else {
                    sum.min(u64::from(u32::MAX)) as u32
                }
            }
            Merge::Or => values.iter().fold(0, |a, &v| a | v),
            Merge::First => values[0],
        };
        settle(&mut all);
        v
    }

    /// A write with lanes: a tail write to its queue's lane only, anything else to every lane.
    #[inline(never)]
    fn write_lanes(&self, nic: usize, off: u32, v: u32) {
        if let Some(q) = model::tail_queue(off) {
            let mut w = self.lock_lane(self.lane_of_queue(q));
            w.mmio_write(nic, off, v);
            self.route(&mut w);
        } else {
            self.each(|w| w.mmio_write(nic, off, v));
        }
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
        // SAFETY: forwarded contract (every lane maps the same memory).
        self.each(|w| unsafe { w.core.dma.map_window(bus, len, host.as_ptr()) })
    }

    /// Unmaps every window starting in `[bus, bus + len)`; returns how many.
    pub fn unmap_bus_window(&self, bus: u64, len: u64) -> usize {
        self.each(|w| w.core.dma.unmap_window(bus, len))
    }

    /// Unmaps every window.
    pub fn unmap_all_bus_windows(&self) {
        self.each(|w| w.core.dma.unmap_all_windows());
    }

    /// The configured PCI device ID of `nic`.
    pub fn device_id(&self, nic: NicId) -> u16 {
        self.lock().nics[nic.0].cfg.device_id
    }

    /// Number of violations not recorded because they duplicated an earlier one (or the log
    /// was full); with lanes, lane 0's (the others repeat its checks).
    pub fn suppressed_violations(&self) -> u64 {
        self.lock().core.suppressed
    }
}

/// Locks a lane's world or inbox; a panic in another thread while it held the lock does not
/// make the simulator unusable (the state is plain data).
fn lock_mutex<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The lane of `k` that owns queue `queue` of every NIC.
fn lane_of(queue: u16, k: usize) -> usize {
    usize::from(queue) % k
}

/// With every lane locked: moves each frame that arrived in a lane that does not own its
/// queue to the owning lane and delivers it there.
fn settle(all: &mut [MutexGuard<'_, model::World>]) {
    let k = all.len();
    for from in 0..k {
        for (nic, h) in all[from].take_foreign() {
            all[lane_of(h.meta.queue, k)].deliver_foreign(nic, h);
        }
    }
}

/// How a BAR0 read combines the lanes' answers.
enum Merge {
    /// A queue register: the owning lane's.
    Lane(usize),
    /// A statistics counter (each lane counts its own traffic, clear on read): the sum; for
    /// the low half of a 36-bit counter, the carry goes to lane 0's high half.
    Sum { high: Option<u32> },
    /// EICR: every lane's causes.
    Or,
    /// Anything else (the same in every lane).
    First,
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
        if self.sim.lanes() == 1 {
            return self.sim.lock().mmio_read(self.nic, offset);
        }
        self.sim.read_lanes(self.nic, offset)
    }

    #[inline(never)]
    unsafe fn write32(&self, offset: u32, value: u32) {
        if self.sim.lanes() == 1 {
            self.sim.lock().mmio_write(self.nic, offset, value);
            return;
        }
        self.sim.write_lanes(self.nic, offset, value);
    }

    fn dma_alloc(&self, size: usize) -> Result<DmaRegion, DmaError> {
        let mut all = self.sim.lock_all();
        let (first, others) = all.split_first_mut().expect("at least one lane");
        let (ptr, id) = first.core.dma.alloc(size).ok_or(DmaError::Unsupported)?;
        // The other lanes reach the region at the same bus addresses, one window per chunk.
        if !others.is_empty() {
            let len = size.next_multiple_of(4096);
            for c in (0..len).step_by(DMA_PAGE) {
                let host = ptr.as_ptr().wrapping_add(c);
                let bus = first
                    .core
                    .dma
                    .virt_to_bus(host)
                    .ok_or(DmaError::Unsupported)?;
                for w in others.iter_mut() {
                    // SAFETY: the chunk stays allocated until dma_free, which unmaps it from
                    // every lane, or until the simulation (every lane) is dropped; the device
                    // side reaches it through raw pointers only.
                    unsafe { w.core.dma.map_window(bus, (len - c).min(DMA_PAGE), host) };
                }
            }
        }
        // SAFETY: `ptr` is a fresh zeroed allocation of at least `size` bytes, 4096-aligned, kept
        // alive until `dma_free`; each 2 MiB chunk has one contiguous bus range starting at a
        // 2 MiB-aligned (so 4096-aligned) bus address.
        Ok(unsafe { DmaRegion::new(ptr, size, id) })
    }

    unsafe fn dma_free(&self, region: DmaRegion) {
        let mut all = self.sim.lock_all();
        let (w, others) = all.split_first_mut().expect("at least one lane");
        // The region's chunks as the other lanes map them (while it is still live).
        let base = region.virt().as_ptr();
        let chunks: Vec<u64> = if others.is_empty() {
            Vec::new()
        } else {
            (0..region.len())
                .step_by(DMA_PAGE)
                .filter_map(|c| w.core.dma.virt_to_bus(base.wrapping_add(c)))
                .collect()
        };
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
            return;
        }
        for o in others.iter_mut() {
            for &bus in &chunks {
                o.core.dma.unmap_window(bus, 1);
            }
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
