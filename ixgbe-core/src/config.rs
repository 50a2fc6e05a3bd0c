//! How to bring a device up: queue counts, ring sizes, filtering, and interrupts (opt-in).

use core::time::Duration;

use crate::error::Error;

/// Most receive queues: RSS spreads over 16 (MRQC.MRQE = 0001b, §8.2.3.7.12).
pub const MAX_RX_QUEUES: usize = 16;
/// Most transmit queues: 64 with MTQC = 0 (§8.2.3.9.15).
pub const MAX_TX_QUEUES: usize = 64;
/// Default ring size in descriptors.
pub const DEFAULT_RING_SIZE: u16 = 512;
/// Largest ring the datasheet validated: 8K descriptors, 128 KB (§8.2.3.8.3).
pub const MAX_RING_SIZE: u16 = 8192;
/// The MAC's frame size limit without jumbo frames: 1518 bytes, DA through CRC (§8.2.3.22.13).
pub const DEFAULT_MAX_FRAME_SIZE: u16 = 1518;
/// Largest [`Config::max_frame_size`]: 9728 bytes DA through CRC, an MTU of 9710 (Linux's
/// `IXGBE_MAX_JUMBO_FRAME_SIZE`; the 82599's packet buffers hold it with room to spare).
pub const MAX_FRAME_SIZE: u16 = 9728;

/// How to bring a device up.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Receive queues, 1..=16. With more than one, RSS spreads flows over them.
    pub rx_queues: u16,
    /// Transmit queues, 1..=64.
    pub tx_queues: u16,
    /// Descriptors per receive ring: a power of two from 8 to 8192.
    pub rx_ring_size: u16,
    /// Descriptors per transmit ring: a power of two from 8 to 8192.
    pub tx_ring_size: u16,
    /// Accept every unicast and multicast frame, not only ours and broadcast.
    pub promiscuous: bool,
    /// Drop frames for a queue whose ring is full instead of holding them in the shared packet
    /// buffer, where one stalled queue would block all others (SRRCTL.Drop_En).
    pub rx_drop_when_full: bool,
    /// Pass on what the device found checking each received frame's IPv4 header and TCP or
    /// UDP checksums ([`crate::Packet::rx_offload`], §7.1.11). The device always checks; off
    /// (the default), the receive loop ignores the result and costs nothing more.
    pub rx_checksum: bool,
    /// Strip the 802.1Q tag of received frames into the descriptor (RXDCTL.VME on every Rx
    /// queue): the packet comes without it and [`crate::Packet::rx_offload`] gives the tag.
    pub vlan_strip: bool,
    /// Accept tagged frames only for the VLAN IDs in the filter table (VLNCTRL.VFE,
    /// §8.2.3.7.2), which starts empty: add IDs with [`crate::Device::set_vlan_filter`].
    /// Untagged frames are not affected.
    pub vlan_filter: bool,
    /// Interrupts instead of pure polling (opt-in; `None`, the default, polls). Set up after
    /// init with [`crate::Device::enable_interrupts`] on a platform that has them.
    pub interrupts: Option<InterruptConfig>,
    /// Largest frame received, DA through CRC, from 64 to [`MAX_FRAME_SIZE`] (9728: an MTU of
    /// 9710 = 9728 − 14 header − 4 CRC). Anything else than the default 1518 sets
    /// HLREG0.JUMBOEN and MAXFRS.MFS (§8.2.3.22.8, §8.2.3.22.13); the MAC counts longer frames
    /// in ROC ([`crate::Stats::rx_oversize`]) and drops them. Frames longer than one pool
    /// buffer span several descriptors: receive them with [`crate::RxQueue::rx_chains`].
    pub max_frame_size: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rx_queues: 1,
            tx_queues: 1,
            rx_ring_size: DEFAULT_RING_SIZE,
            tx_ring_size: DEFAULT_RING_SIZE,
            promiscuous: true,
            rx_drop_when_full: true,
            rx_checksum: false,
            vlan_strip: false,
            vlan_filter: false,
            interrupts: None,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
        }
    }
}

impl Config {
    pub(crate) fn validate(&self, pools: usize) -> Result<(), Error> {
        let ring_ok = |n: u16| n.is_power_of_two() && (8..=MAX_RING_SIZE).contains(&n);
        if self.rx_queues == 0 || usize::from(self.rx_queues) > MAX_RX_QUEUES {
            return Err(Error::InvalidConfig {
                what: "rx_queues must be from 1 to 16",
            });
        }
        if self.tx_queues == 0 || usize::from(self.tx_queues) > MAX_TX_QUEUES {
            return Err(Error::InvalidConfig {
                what: "tx_queues must be from 1 to 64",
            });
        }
        if !ring_ok(self.rx_ring_size) || !ring_ok(self.tx_ring_size) {
            return Err(Error::InvalidConfig {
                what: "ring sizes must be powers of two from 8 to 8192",
            });
        }
        if pools != 1 && pools != usize::from(self.rx_queues) {
            return Err(Error::InvalidConfig {
                what: "give one pool shared by all Rx queues, or one pool per Rx queue",
            });
        }
        if !(64..=MAX_FRAME_SIZE).contains(&self.max_frame_size) {
            return Err(Error::InvalidConfig {
                what: "max_frame_size must be from 64 to 9728 bytes",
            });
        }
        if let Some(irq) = &self.interrupts {
            irq.validate()?;
        }
        Ok(())
    }
}

/// Builder-style setters, so that code outside the crate can configure a [`Config`] (it is
/// `#[non_exhaustive]`: fields will be added) in one expression:
/// `Config::default().rx_queues(4).promiscuous(false)`.
impl Config {
    /// Sets [`Config::rx_queues`].
    pub fn rx_queues(mut self, n: u16) -> Self {
        self.rx_queues = n;
        self
    }
    /// Sets [`Config::tx_queues`].
    pub fn tx_queues(mut self, n: u16) -> Self {
        self.tx_queues = n;
        self
    }
    /// Sets [`Config::rx_ring_size`].
    pub fn rx_ring_size(mut self, n: u16) -> Self {
        self.rx_ring_size = n;
        self
    }
    /// Sets [`Config::tx_ring_size`].
    pub fn tx_ring_size(mut self, n: u16) -> Self {
        self.tx_ring_size = n;
        self
    }
    /// Sets [`Config::promiscuous`].
    pub fn promiscuous(mut self, on: bool) -> Self {
        self.promiscuous = on;
        self
    }
    /// Sets [`Config::rx_drop_when_full`].
    pub fn rx_drop_when_full(mut self, on: bool) -> Self {
        self.rx_drop_when_full = on;
        self
    }
    /// Sets [`Config::max_frame_size`] (DA through CRC).
    pub fn max_frame_size(mut self, bytes: u16) -> Self {
        self.max_frame_size = bytes;
        self
    }
    /// Sets [`Config::max_frame_size`] from an MTU (the IP packet: frame − 14 − 4), e.g. 9000.
    /// An MTU above 9710 gives a size [`crate::Device::init`] refuses.
    pub fn mtu(self, mtu: u16) -> Self {
        self.max_frame_size(mtu.saturating_add(18))
    }
    /// Sets [`Config::rx_checksum`].
    pub fn rx_checksum(mut self, on: bool) -> Self {
        self.rx_checksum = on;
        self
    }
    /// Sets [`Config::vlan_strip`].
    pub fn vlan_strip(mut self, on: bool) -> Self {
        self.vlan_strip = on;
        self
    }
    /// Sets [`Config::vlan_filter`].
    pub fn vlan_filter(mut self, on: bool) -> Self {
        self.vlan_filter = on;
        self
    }
    /// Sets [`Config::interrupts`].
    pub fn interrupts(mut self, irq: Option<InterruptConfig>) -> Self {
        self.interrupts = irq;
        self
    }
}

/// When a receive queue sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InterruptMode {
    /// Sleep whenever a receive call finds nothing.
    Always,
    /// Sleep when a call finds nothing and the traffic is low (see [`HybridConfig`]).
    Hybrid,
}

/// Thresholds of the hybrid policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HybridConfig {
    /// Poll when the average rate exceeds this many packets per millisecond (ixy.rs: 1200).
    pub poll_above: u32,
    /// Sleep again when the average falls below this many packets per millisecond. Lower than
    /// `poll_above` gives hysteresis.
    pub sleep_below: u32,
    /// Length of one rate sample.
    pub interval: Duration,
    /// While polling, the clock is read once per this many receive calls (ixy.rs: 0x1000).
    pub check_every: u32,
}

impl Default for HybridConfig {
    fn default() -> Self {
        HybridConfig {
            poll_above: 1200,
            sleep_below: 1200,
            interval: Duration::from_millis(1),
            check_every: 0x1000,
        }
    }
}

/// Interrupt configuration (opt-in: [`Config::interrupts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InterruptConfig {
    /// When queues sleep.
    pub mode: InterruptMode,
    /// Minimum time between two messages of one vector (EITR, §8.2.3.5.12: 2 µs units up to
    /// 1022 µs; zero disables throttling). Default 50 µs, the 20 000 interrupts/s of Linux's
    /// ixgbe (`IXGBE_20K_ITR`).
    pub throttle: Duration,
    /// Longest single sleep: a wait returns after it even without an interrupt, so the program
    /// can look at its clock and flags.
    pub wait_timeout: Duration,
    /// Also map each transmit queue to its receive queue's vector (queue q to vector
    /// q mod rx_queues), so completions wake the sleeper. Off: only receive wakes it.
    pub tx_completions: bool,
    /// Thresholds of [`InterruptMode::Hybrid`].
    pub hybrid: HybridConfig,
}

impl Default for InterruptConfig {
    fn default() -> Self {
        InterruptConfig {
            mode: InterruptMode::Hybrid,
            throttle: Duration::from_micros(50),
            wait_timeout: Duration::from_millis(10),
            tx_completions: false,
            hybrid: HybridConfig::default(),
        }
    }
}

/// Largest EITR interval: 9 bits of 2 µs.
const MAX_THROTTLE: Duration = Duration::from_micros(511 * 2);

impl InterruptConfig {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let bad = |what| Err(Error::InvalidConfig { what });
        if self.throttle > MAX_THROTTLE {
            return bad("interrupt throttle must be at most 1022 µs");
        }
        if self.wait_timeout.is_zero() {
            return bad("interrupt wait timeout must not be zero");
        }
        let h = &self.hybrid;
        if h.interval.is_zero() || h.check_every == 0 {
            return bad("hybrid interval and check_every must not be zero");
        }
        if h.sleep_below > h.poll_above {
            return bad("hybrid sleep_below must not exceed poll_above");
        }
        Ok(())
    }

    /// The EITR interval field: the throttle in 2 µs units.
    pub(crate) fn itr_interval(&self) -> u32 {
        (self.throttle.as_micros() / 2) as u32
    }
}
