//! `ixgbe-core`: a `no_std`, allocation-free driver for Intel 82599 (ixgbe) 10 GbE NICs.
//!
//! The driver runs over an abstract [`Platform`] (MMIO, DMA memory, address translation, delay),
//! so the same code drives a real NIC from Linux user space (`platform-linux`), a simulated NIC
//! in tests (`platform-mock`), or a NIC under another kernel.
//!
//! Bring a port up, receive a batch and send it back out; here on the simulated 82599 of
//! `platform-mock` (with `platform-linux` the platform is a real NIC, and nothing else changes):
//!
//! ```
//! use core::time::Duration;
//! use ixgbe_core::{Config, Device, Mempool, Packet, Started, DEFAULT_BUF_SIZE};
//! use platform_mock::{NicConfig, Sim};
//!
//! # fn main() -> Result<(), ixgbe_core::Error> {
//! let sim = Sim::new();
//! let nic = sim.add_nic(NicConfig::default());
//! let platform = sim.platform(nic);
//!
//! let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE)?];
//! let Started { device, mut rx, mut tx } = Device::init(platform, &Config::default(), &pools)?;
//! device.wait_for_link(Duration::from_secs(1))?;
//!
//! sim.inject(nic, &[0xFF; 60]); // a broadcast frame arrives on the wire
//! let mut batch = ixgbe_core::heapless::Vec::<Packet, 32>::new();
//! rx[0].rx_batch(&mut batch, 32);
//! assert_eq!(batch.len(), 1);
//! assert_eq!(tx[0].tx_batch(&mut batch), 1); // and leaves again
//! sim.advance(Duration::from_micros(10));
//! assert_eq!(sim.take_transmitted(nic).len(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! Modules follow the datasheet and build on each other in this order, without cycles:
//! [`platform`], [`regs`] (chapter 8), `wait` (bounded polls), [`ids`], `config`, `link`
//! (§4.6.4), `rxctrl` (RXEN, FCTRL), [`descriptors`] (§7.1.6, §7.2.3), [`mempool`], [`chain`]
//! (frames in several buffers), [`offload`] (§7.1.11, §7.2.3.2.3), [`rx`] (§4.6.7), [`tx`]
//! (§4.6.8), [`device`], `ratelimit` (§7.7.2.2), `timesync` (§7.9), `init` (§4.6.3:
//! [`Device::init`]), [`interrupts`]
//! (§7.3); with the `smoltcp` feature (off by default) `smoltcp_phy` runs smoltcp's
//! TCP/IP stack on a queue pair. See docs/porting.md for implementing [`Platform`] on another kernel.
//!
//! # Stability
//!
//! Before 1.0 every release may break the API; within a release, these are meant to stay:
//! [`Platform`] and its contract, [`Device::init`], [`RxQueue::rx_batch`],
//! [`TxQueue::tx_batch`], [`Mempool`] and [`Packet`]. Types that will grow are
//! `#[non_exhaustive]`: [`Config`] (build it with its setters, `Config::default().rx_queues(4)`),
//! [`Stats`], [`LinkStatus`], [`LinkSpeed`], [`Error`], [`RxCounters`], [`TxCounters`],
//! [`Media`], [`DeviceInfo`] and [`InterruptCounters`]: match them with a wildcard arm and read
//! their fields. The register and descriptor modules ([`regs`], [`descriptors`]) follow the
//! datasheet and change whenever a feature needs more of it.
#![no_std]
#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

pub mod chain;
mod config;
pub mod descriptors;
pub mod device;
mod error;
#[cfg(test)]
mod hostile_tests;
pub mod ids;
mod init;
pub mod interrupts;
mod link;
pub mod mempool;
pub mod offload;
pub mod platform;
mod ratelimit;
pub mod regs;
pub mod rx;
mod rxctrl;
#[cfg(feature = "smoltcp")]
pub mod smoltcp_phy;
mod timesync;
pub mod tx;
mod wait;

pub use chain::{PacketChain, MAX_SEGMENTS};
pub use device::{
    Config, Device, LinkSpeed, LinkStatus, Started, Stats, DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE,
    MAX_RX_QUEUES, MAX_TX_QUEUES,
};
pub use error::Error;
pub use heapless;
pub use ids::{supported_device, DeviceInfo, Media, SUPPORTED_DEVICES};
pub use interrupts::{
    Delivery, HybridConfig, InterruptConfig, InterruptCounters, InterruptMode, InterruptPlatform,
    Interrupts, LinkInterrupt, QueueInterrupt,
};
pub use mempool::{Mempool, Packet, TooLong, DEFAULT_BUF_SIZE};
pub use offload::{Checksum, L4Checksum, RxOffload, TxOffload};
pub use platform::{DmaError, DmaRegion, Platform, PrivateRegion, DMA_PAGE_SIZE};
pub use rx::{RxCounters, RxQueue};
pub use timesync::{Timesync, PTP_EVENT_PORT, PTP_SYNC};
pub use tx::{TxCounters, TxQueue};
