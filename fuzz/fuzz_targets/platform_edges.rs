//! A platform that breaks its DMA contract in the ways the input says: regions shorter than
//! asked, translations that fail, that are not contiguous, or that overflow near `u64::MAX`.
//! Pools, rings and init must end with Ok or an error, never panic, and leak nothing.
#![no_main]

use ixgbe_core::{Config, Device, Mempool};
use ixgbe_fuzz::{Contract, FuzzPlatform, Mmio};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 14 {
        return;
    }
    let platform = FuzzPlatform::new(Mmio::Cooperative, &[]);
    let contract = Contract {
        shorten: usize::from(data[0] % 4) * usize::from(data[1]),
        bus_offset: u64::from_le_bytes(data[2..10].try_into().expect("8 bytes")),
        fail_every: u32::from(data[10] % 16),
        skew_every: u32::from(data[11] % 16),
    };
    platform.set_contract(contract);
    let entries = 1 + u32::from(data[12] % 64);
    let buf = 1024 << (data[13] % 5);
    let Ok(pool) = Mempool::new(&platform, entries, buf) else {
        assert_eq!(
            platform.dma_regions(),
            0,
            "a refused pool leaked its region"
        );
        return;
    };
    let pools = [pool];
    let config = Config::default()
        .rx_ring_size(8)
        .tx_ring_size(8);
    if let Ok(started) = Device::init(platform.clone(), &config, &pools) {
        drop(started);
    }
    assert_eq!(pools[0].free_count(), entries as usize, "buffers lost");
    drop(pools);
    assert_eq!(platform.dma_regions(), 0, "DMA regions leaked");
});
