//! A hostile device: it writes whatever it likes into every byte of the memory it was given
//! (rings and packet buffers), between the driver's calls. The driver may lose frames to it but
//! must never hand a buffer out twice, lose one, read or write outside its memory, or panic.
//! (Issue: "the device is never trusted". Each test failed before the driver's bookkeeping
//! moved to private memory and `rx_batch` was capped by the ring.)

extern crate std;

use std::collections::BTreeSet;
use std::vec::Vec;

use crate::chain::PacketChain;
use crate::mempool::fake::FakePlatform;
use crate::mempool::{Mempool, Packet};
use crate::regs::Regs;
use crate::rx::RxQueue;
use crate::tx::TxQueue;

/// xorshift64*: deterministic, seeded, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// No two of `packets` share a buffer.
fn assert_distinct<'a>(packets: impl IntoIterator<Item = &'a Packet<'a>>) {
    let mut seen = BTreeSet::new();
    for p in packets {
        let addr = p.as_ptr() as usize;
        assert!(seen.insert(addr), "buffer {addr:#x} handed out twice");
    }
}

const POOL: u32 = 24;

/// Runs receive, transmit and clean against a device that, before every round, replaces
/// `density`/256 of the bytes of all its memory (rings and buffers) with random ones.
fn hostile_run(seed: u64, density: u64, rounds: usize) {
    let p = FakePlatform::default();
    let pool = Mempool::new(&p, POOL, 1024).unwrap();
    let regs = Regs::new(p.clone());
    let mut rx = RxQueue::setup(&regs, 0, 8, pool.core(), true).unwrap();
    rx.enable().unwrap();
    rx.set_max_frame(9728);
    // Every offload bit passed on: whatever the device writes, reading them must not panic.
    rx.set_offload_mask(crate::offload::rx_bits::CHECKSUMS | crate::offload::rx_bits::VP);
    let mut tx = TxQueue::setup(&regs, 0, 8).unwrap();
    tx.enable().unwrap();
    tx.set_max_frame(9728);
    let mut rng = Rng(seed | 1);
    // Packets the program keeps for a while: they must never be handed out again meanwhile.
    let mut held: Vec<Packet<'_>> = Vec::new();
    for round in 0..rounds {
        p.scribble(|_, old| {
            let r = rng.next();
            if r & 0xFF < density {
                (r >> 8) as u8
            } else {
                old
            }
        });
        let mut batch = heapless::Vec::<Packet<'_>, 32>::new();
        if round % 2 == 0 {
            rx.rx_batch(&mut batch, 32);
        } else {
            // Multi-descriptor receive, its segments then treated like packets.
            let mut chains = heapless::Vec::<PacketChain<'_>, 8>::new();
            rx.rx_chains(&mut chains, 8);
            for chain in chains.iter_mut() {
                assert!(chain.len() <= 9728, "a chain beyond the maximum frame");
                while let Some(segment) = chain.pop() {
                    if let Err(segment) = batch.push(segment) {
                        drop(segment);
                    }
                }
            }
        }
        assert!(batch.len() < rx.ring_size(), "more frames than descriptors");
        assert!(batch.iter().all(|p| p.len() <= p.capacity()));
        for packet in batch.iter() {
            let _ = packet.rx_offload();
        }
        assert_distinct(held.iter().chain(batch.iter()));
        while held.len() < 6 {
            let Some(packet) = batch.pop() else { break };
            held.push(packet);
        }
        if rng.next().is_multiple_of(8) {
            held.clear();
        }
        for packet in batch.iter_mut() {
            packet.set_len(60).unwrap();
        }
        if round % 3 == 0 {
            // Offload requests read from the (random) bytes, half of them made to look like
            // IPv4 or IPv6: checked against the packet, never trusted.
            for packet in batch.iter_mut() {
                match rng.next() % 3 {
                    0 => packet[12..15].copy_from_slice(&[0x08, 0x00, 0x45]),
                    1 => packet[12..15].copy_from_slice(&[0x86, 0xDD, 0x60]),
                    _ => {}
                }
            }
            tx.tx_batch_offload(&mut batch, |p| {
                crate::offload::TxOffload::for_frame(p).unwrap_or(crate::offload::TxOffload::NONE)
            });
        } else if round % 4 == 1 {
            // Two segments per packet, RS on the second only.
            let mut chains = heapless::Vec::<PacketChain<'_>, 16>::new();
            while let Some(first) = batch.pop() {
                let mut chain = PacketChain::single(first);
                if let Some(second) = batch.pop() {
                    let _ = chain.push(second);
                }
                let _ = chains.push(chain);
            }
            tx.tx_chains(&mut chains);
        } else {
            tx.tx_batch(&mut batch);
        }
        drop(batch); // what did not fit goes back to the pool
        if rng.next().is_multiple_of(4) {
            tx.clean();
        }
        // Every buffer is in exactly one place: free, held, in flight, or in the Rx ring
        // (one per descriptor but the unarmed ones).
        assert_eq!(
            pool.free_count() + held.len() + tx.buffers_in_flight() + rx.buffers_held(),
            POOL as usize,
            "a buffer was lost or duplicated"
        );
    }
    drop(held);
    drop(rx);
    drop(tx);
    assert_eq!(
        pool.free_count(),
        POOL as usize,
        "pool not whole at the end"
    );
}

#[test]
fn hostile_device_cannot_duplicate_or_lose_buffers() {
    // Under Miri (slow, but it checks every access for undefined behaviour) one short run.
    let (seeds, rounds) = if cfg!(miri) { (1, 3) } else { (3, 300) };
    for seed in 1..=seeds {
        hostile_run(seed, 8, rounds);
    }
}

#[test]
fn hostile_device_rewriting_everything() {
    let rounds = if cfg!(miri) { 2 } else { 100 };
    hostile_run(0xDEAD_BEEF, 256, rounds);
}

/// Finding 3: DD|EOP on every descriptor of a ring of 8, including the one the device does not
/// own, and a request for 16: one call may hand out at most 7 frames, each buffer once.
#[test]
fn rx_batch_never_walks_past_the_ring() {
    let p = FakePlatform::default();
    let pool = Mempool::new(&p, 32, 1024).unwrap();
    let regs = Regs::new(p.clone());
    let mut rx = RxQueue::setup(&regs, 0, 8, pool.core(), true).unwrap();
    rx.enable().unwrap();
    let mut out = heapless::Vec::<Packet<'_>, 16>::new();
    for _ in 0..3 {
        p.scribble(|off, old| {
            // Descriptors are the 128-byte region: DD|EOP and length 60 in every second word.
            match off % 16 {
                8 => 0b11,
                12 => 60,
                9..=11 | 13..=15 => 0,
                _ => old,
            }
        });
        let got = rx.rx_batch(&mut out, 16);
        assert!(got <= 7, "{got} frames from a ring of 8");
        assert_distinct(out.iter());
        out.clear();
    }
    drop(rx);
    assert_eq!(pool.free_count(), 32);
}

/// Finding 4: a platform handing out a region shorter than asked gets an error, not an
/// overflowing ring, and leaks nothing.
#[test]
fn short_regions_are_refused() {
    let p = FakePlatform::default();
    let pool = Mempool::new(&p, 32, 1024).unwrap();
    let regs = Regs::new(p.clone());
    p.shorten_next_dma(16);
    assert!(RxQueue::setup(&regs, 0, 8, pool.core(), true).is_err());
    assert_eq!(pool.free_count(), 32);
    p.shorten_next_dma(16);
    assert!(TxQueue::setup(&regs, 0, 8).is_err());
    p.shorten_next_dma(16);
    assert!(Mempool::new(&p, 8, 1024).is_err());
    assert_eq!(
        p.live_dma_regions(),
        1,
        "only the first pool's region is left"
    );
}
