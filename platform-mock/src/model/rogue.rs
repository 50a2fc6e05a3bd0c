//! A rogue device (`Fault::RogueDma`): random writes into the memory mapped for it and into
//! descriptor write-back words, at a rate in virtual time. What the IOMMU allows a broken or
//! hostile device to do; the driver must count and drop, never trust.

use std::time::Duration;

use super::nic::Nic;
use super::Core;

/// State of the rogue fault of one NIC.
pub(crate) struct Rogue {
    per_ms: u32,
    rng: u64,
    last: Duration,
    /// Fractional writes carried to the next tick (in 1/1000 of a write).
    carry: u64,
}

impl Rogue {
    pub(crate) fn new(per_ms: u32, seed: u64, now: Duration) -> Self {
        Rogue {
            per_ms,
            rng: seed | 1,
            last: now,
            carry: 0,
        }
    }

    /// xorshift64*.
    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Does the rogue writes due by `now` for NIC `n`.
pub(crate) fn strike(n: &mut Nic, core: &mut Core, now: Duration) {
    let Some(mut r) = n.faults.rogue.take() else {
        return;
    };
    let us = now.saturating_sub(r.last).as_micros() as u64;
    r.last = now;
    let due = r.carry + us * u64::from(r.per_ms);
    r.carry = due % 1000;
    for _ in 0..due / 1000 {
        let x = r.next();
        if x & 1 == 0 {
            // Any byte of any memory the device may reach.
            if let Some(bus) = core.dma.random_target(x >> 8) {
                let _ = core.dma.write(bus, &[(x >> 40) as u8]);
            }
            continue;
        }
        // A descriptor's second word of an enabled ring.
        let tx = x & 2 != 0;
        let q = ((x >> 2) % 128) as usize;
        let enabled = if tx { n.tx[q].en } else { n.rx[q].en };
        let len = n.ring_len(tx, q);
        if !enabled || len == 0 {
            continue;
        }
        let d = n.ring_base(tx, q) + 16 * ((x >> 9) % u64::from(len)) + 8;
        let y = r.next();
        let word = if y & 1 == 0 {
            // Looks done: DD | EOP and a random length.
            0b11 | (y & 0xFFFF_0000_0000) | (y & 0xFFFC)
        } else {
            y
        };
        let _ = core.dma.write_u64(d, word);
    }
    n.faults.rogue = Some(r);
}
