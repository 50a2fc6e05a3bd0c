//! `ixgbe-core`: a `no_std`, allocation-free driver for Intel 82599 (ixgbe) 10 GbE NICs.
//!
//! The driver runs over an abstract [`Platform`] (MMIO, DMA memory, address translation, delay),
//! so the same code drives a real NIC from Linux user space (`platform-linux`), a simulated NIC
//! in tests (`platform-mock`), or a NIC under another kernel.
//!
//! ```text
//! let pools = [Mempool::new(&platform, 4096, DEFAULT_BUF_SIZE)?];
//! let Started { device, mut rx, mut tx } = Device::init(platform, &Config::default(), &pools)?;
//! device.wait_for_link(Duration::from_secs(10))?;
//! let mut batch = heapless::Vec::<Packet, 32>::new();
//! rx[0].rx_batch(&mut batch, 32);
//! tx[0].tx_batch(&mut batch);
//! ```
//!
//! Modules follow the datasheet: [`regs`] (chapter 8), [`descriptors`] (§7.1.6, §7.2.3),
//! [`mempool`], [`rx`] (§4.6.7), [`tx`] (§4.6.8), `init` (§4.6.3), [`device`],
//! [`interrupts`] (§7.3).
#![no_std]
#![deny(
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks
)]

pub mod descriptors;
pub mod device;
mod error;
#[cfg(test)]
mod hostile_tests;
pub mod ids;
mod init;
pub mod interrupts;
pub mod mempool;
pub mod platform;
pub mod regs;
pub mod rx;
pub mod tx;

pub use device::{
    Config, Device, LinkSpeed, LinkStatus, Started, Stats, MAX_RX_QUEUES, MAX_TX_QUEUES,
};
pub use error::Error;
pub use heapless;
pub use ids::{supported_device, DeviceInfo, SUPPORTED_DEVICES};
pub use interrupts::{
    Delivery, HybridConfig, InterruptConfig, InterruptCounters, InterruptMode, InterruptPlatform,
    Interrupts, LinkInterrupt, QueueInterrupt,
};
pub use mempool::{Mempool, Packet, TooLong, DEFAULT_BUF_SIZE};
pub use platform::{DmaError, DmaRegion, Platform, PrivateRegion, DMA_PAGE_SIZE};
pub use rx::{RxCounters, RxQueue};
pub use tx::{TxCounters, TxQueue};
