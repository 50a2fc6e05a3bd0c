//! Garbage on every register read during `Device::init`: init must end (Ok or an error), never
//! panic or hang, and give every buffer back.
#![no_main]

use ixgbe_core::{Config, Device, Mempool};
use ixgbe_fuzz::{FuzzPlatform, Mmio};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let platform = FuzzPlatform::new(Mmio::Noise, data);
    let pools = [Mempool::new(&platform, 64, 2048).expect("pool")];
    let config = Config {
        rx_ring_size: 16,
        tx_ring_size: 16,
        ..Config::default()
    };
    match Device::init(platform.clone(), &config, &pools) {
        Ok(started) => drop(started),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    assert_eq!(pools[0].free_count(), 64, "init lost buffers");
});
