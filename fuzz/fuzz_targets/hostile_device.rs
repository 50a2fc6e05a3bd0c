//! A hostile device on the data path: the input is a script of device writes (anywhere in the
//! rings and buffers it was given, or well-formed-looking write-backs) interleaved with the
//! driver's receive, transmit and clean calls. Whatever it writes, no buffer may be handed out
//! twice or lost, and nothing may panic.
#![no_main]

use std::collections::BTreeSet;

use ixgbe_core::{heapless, Config, Device, Mempool, Packet, PacketChain};
use ixgbe_fuzz::{FuzzPlatform, Mmio};
use libfuzzer_sys::fuzz_target;

const POOL: u32 = 48;

fuzz_target!(|data: &[u8]| {
    let platform = FuzzPlatform::new(Mmio::Cooperative, &[]);
    let pools = [Mempool::new(&platform, POOL, 1024).expect("pool")];
    let config = Config::default()
        .rx_ring_size(8)
        .tx_ring_size(8)
        .max_frame_size(9728);
    let Ok(started) = Device::init(platform.clone(), &config, &pools) else {
        panic!("cooperative init failed");
    };
    let (mut rx, mut tx) = (started.rx, started.tx);
    let mut held: Vec<Packet<'_>> = Vec::new();
    let mut ops = data.chunks_exact(6);
    for op in &mut ops {
        let arg = usize::from(u16::from_le_bytes([op[1], op[2]]));
        match op[0] % 6 {
            // Any bytes anywhere in the device's memory.
            0 => platform.device_write(usize::from(op[3]), arg, &op[4..6]),
            // A write-back that looks right: DD|EOP (and whatever else) with a length, into
            // descriptor `arg % 8` of some ring.
            1 => {
                let mut wb = [0u8; 8];
                wb[0] = op[4] | 1;
                wb[4..6].copy_from_slice(&[op[5], op[3]]);
                platform.device_write(usize::from(op[3]), (arg % 8) * 16 + 8, &wb);
            }
            2 => {
                let mut batch = heapless::Vec::<Packet<'_>, 32>::new();
                if op[3] & 1 == 0 {
                    rx[0].rx_batch(&mut batch, arg % 33);
                } else {
                    // Frames in several descriptors: their segments count like packets.
                    let mut chains = heapless::Vec::<PacketChain<'_>, 4>::new();
                    rx[0].rx_chains(&mut chains, arg % 5);
                    for chain in chains.iter_mut() {
                        assert!(chain.len() <= 9728, "a chain beyond the maximum");
                        while let Some(p) = chain.pop() {
                            let _ = batch.push(p);
                        }
                    }
                }
                assert!(batch.len() < rx[0].ring_size());
                let mut seen = BTreeSet::new();
                for p in held.iter().chain(batch.iter()) {
                    assert!(p.len() <= p.capacity());
                    assert!(
                        seen.insert(p.as_ptr() as usize),
                        "a buffer handed out twice"
                    );
                }
                while held.len() < 8 {
                    let Some(p) = batch.pop() else { break };
                    held.push(p);
                }
            }
            3 => {
                let mut batch = heapless::Vec::<Packet<'_>, 16>::new();
                for mut p in held.drain(..) {
                    let _ = p.set_len(arg % 1025);
                    let _ = batch.push(p);
                }
                if op[3] & 1 == 0 {
                    tx[0].tx_batch(&mut batch);
                } else {
                    // Up to three segments per packet.
                    let mut chains = heapless::Vec::<PacketChain<'_>, 16>::new();
                    while !batch.is_empty() {
                        let mut chain = PacketChain::new();
                        for _ in 0..3 {
                            if let Some(p) = batch.pop() {
                                let _ = chain.push(p);
                            }
                        }
                        let _ = chains.push(chain);
                    }
                    tx[0].tx_chains(&mut chains);
                }
            }
            4 => {
                tx[0].clean();
            }
            _ => held.clear(),
        }
        let total = pools[0].free_count() + held.len() + tx[0].in_flight() + rx[0].buffers_held();
        assert_eq!(total, POOL as usize, "a buffer was lost or duplicated");
    }
    drop(held);
    drop(rx);
    drop(tx);
    drop(started.device);
    assert_eq!(
        pools[0].free_count(),
        POOL as usize,
        "pool not whole at the end"
    );
});
