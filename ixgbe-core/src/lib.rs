//! `ixgbe-core`: a `no_std`, allocation-free driver for Intel 82599 (ixgbe) 10 GbE NICs.
//!
//! The driver runs over an abstract [`Platform`] (MMIO, DMA memory, address translation, delay),
//! so the same code drives a real NIC from Linux user space (`platform-linux`), a simulated NIC
//! in tests (`platform-mock`), or a NIC under another kernel.
#![no_std]
#![deny(missing_docs, unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod ids;
pub mod platform;

pub use ids::{supported_device, DeviceInfo, SUPPORTED_DEVICES};
pub use platform::{DmaError, DmaRegion, Platform, DMA_PAGE_SIZE};
