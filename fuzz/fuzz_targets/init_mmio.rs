//! Garbage on every register read during `Device::init`: init must end (Ok or an error), never
//! panic or hang, and give every buffer back, unless a queue whose device never confirmed it
//! stopped kept (leaked) its memory on purpose: then the harness takes it back at the end.
#![no_main]

use ixgbe_core::{Config, Device, Mempool};
use ixgbe_fuzz::{FuzzPlatform, Mmio};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let platform = FuzzPlatform::new(Mmio::Noise, data);
    let pools = [Mempool::new(&platform, 64, 2048).expect("pool")];
    let config = Config::default()
        .rx_ring_size(16)
        .tx_ring_size(16);
    match Device::init(platform.clone(), &config, &pools) {
        Ok(started) => drop(started),
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let free = pools[0].free_count();
    drop(pools);
    if platform.reclaim_dma() == 0 {
        assert_eq!(free, 64, "init lost buffers without a reason");
    }
});
