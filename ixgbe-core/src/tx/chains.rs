//! Transmit of packets in several buffers (datasheet §7.2.3.2.4): one advanced data descriptor
//! per segment, the packet's length (PAYLEN) in the first, EOP and RS on the last; the device
//! gathers the buffers until EOP into one frame.

use super::{pad, Slot, TxQueue, MIN_PAYLEN, MIN_TX_LEN};
use crate::chain::PacketChain;
use crate::descriptors::tx_segment_word1;
use crate::platform::Platform;

/// Why a chain is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reject {
    Runt,
    Oversize,
    Malformed,
}

impl<'a, P: Platform> TxQueue<'a, P> {
    /// Sends chains from the front of `chains`, each as one packet of one descriptor per
    /// segment, and removes those it sent; returns how many.
    ///
    /// A chain goes whole or not at all: one that needs more descriptors than are free stays
    /// (with all after it) for the caller to retry. Chains shorter than an Ethernet header,
    /// longer than the configured maximum frame size, or with an empty segment are dropped
    /// and counted ([`super::TxCounters`]); a one-segment chain of 14..17 bytes is padded, as
    /// in [`TxQueue::tx_batch`]. Cleans like `tx_batch` (whole steps, and everything
    /// finished when the ring is short or `chains` is empty); the tail is written once.
    ///
    /// ```
    /// # use ixgbe_core::{Config, Device, Mempool, PacketChain, DEFAULT_BUF_SIZE};
    /// # let sim = platform_mock::Sim::new();
    /// # let nic = sim.add_nic(platform_mock::NicConfig::default());
    /// # let pools = [Mempool::new(&sim.platform(nic), 1024, DEFAULT_BUF_SIZE).unwrap()];
    /// let config = Config::default().mtu(9000);
    /// let mut started = Device::init(sim.platform(nic), &config, &pools).unwrap();
    /// # started.device.wait_for_link(core::time::Duration::from_secs(1)).unwrap();
    /// let frame = [0xFF; 9000];
    /// let mut chain = PacketChain::new();
    /// assert_eq!(chain.extend_from_slice(&frame, || pools[0].alloc()), 9000);
    /// let mut chains = ixgbe_core::heapless::Vec::<PacketChain, 4>::new();
    /// chains.push(chain).unwrap();
    /// assert_eq!(started.tx[0].tx_chains(&mut chains), 1);
    /// sim.advance(core::time::Duration::from_micros(10));
    /// assert_eq!(sim.take_transmitted(nic), [frame.to_vec()]);
    /// ```
    pub fn tx_chains<const N: usize>(
        &mut self,
        chains: &mut heapless::Vec<PacketChain<'a>, N>,
    ) -> usize {
        let ring = self.ring;
        if self.in_flight() >= self.clean_every || chains.is_empty() {
            self.clean_out_of_line();
        }
        let mut free = ring.mask() - self.in_flight();
        let start = usize::from(self.tail);
        let mut t = start;
        let mut sent = 0u64;
        let mut bytes = 0u64;
        // Chains before `done` were sent or dropped: their segments are gone, they are empty.
        let mut done = 0;
        while let Some(chain) = chains.get_mut(done) {
            let segs = chain.segments().len();
            let mut total = chain.len();
            if let Err(why) = self.check(chain, &mut total) {
                self.count_reject(why);
                drop(core::mem::take(chain));
                done += 1;
                continue;
            }
            if segs > free {
                // Perhaps the device finished some: clean everything it did, once (the
                // descriptors written in this call are not in flight yet: `tail` is still
                // `start`).
                self.clean_out_of_line();
                free = ring.mask() - self.in_flight() - t.wrapping_sub(start);
                if segs > free {
                    break;
                }
            }
            for (k, segment) in chain.segments().iter().enumerate() {
                let (pool, index, len) = segment.raw_parts();
                let last = k + 1 == segs;
                let word1 = tx_segment_word1(len, total as u32, k == 0, last);
                ring.write(t + k, pool.phys(index), word1);
                self.set_slot(t + k, Slot::new(pool, index, last));
            }
            // The ring's slots own the buffers now: forget the packets, do not free them.
            while let Some(segment) = chain.pop() {
                core::mem::forget(segment);
            }
            t = t.wrapping_add(segs);
            free -= segs;
            sent += 1;
            bytes += total as u64;
            done += 1;
        }
        let rest = chains.len() - done;
        chains.rotate_left(done);
        chains.truncate(rest);
        if t != start {
            self.write_tail(t);
        }
        self.counters.packets += sent;
        self.counters.bytes += bytes;
        sent as usize
    }

    /// Whether `chain` may be sent; pads a one-segment chain of 14..17 bytes (updating
    /// `total`).
    fn check(&self, chain: &mut PacketChain<'a>, total: &mut usize) -> Result<(), Reject> {
        let segments = chain.segments_mut();
        if segments.is_empty() || segments.iter().any(|s| s.is_empty()) {
            return Err(Reject::Malformed);
        }
        if *total > self.max_frame as usize {
            return Err(Reject::Oversize);
        }
        if *total < MIN_PAYLEN as usize {
            match segments {
                [only] if *total >= MIN_TX_LEN as usize => {
                    *total = pad(only).ok_or(Reject::Runt)? as usize;
                }
                _ => return Err(Reject::Runt),
            }
        }
        Ok(())
    }

    #[cold]
    fn count_reject(&mut self, why: Reject) {
        let c = &mut self.counters;
        let (count, what) = match why {
            Reject::Runt => (&mut c.runts, "a chain shorter than an Ethernet header"),
            Reject::Oversize => (&mut c.oversize, "a chain beyond the maximum frame size"),
            Reject::Malformed => (&mut c.malformed, "a chain with an empty segment"),
        };
        crate::wait::count_anomaly(count, format_args!("tx queue {}: dropped {what}", self.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptors::tx_word1;
    use crate::mempool::fake::FakePlatform;
    use crate::mempool::{Mempool, Packet};
    use crate::regs::{self, Regs};

    fn chain<'a>(pool: &'a Mempool<FakePlatform>, lens: &[usize]) -> PacketChain<'a> {
        let mut c = PacketChain::new();
        for &len in lens {
            let mut p = pool.alloc().unwrap();
            p.set_len(len).unwrap();
            c.push(p).unwrap();
        }
        c
    }

    #[test]
    fn a_chain_takes_one_descriptor_per_segment_and_goes_whole_or_not_at_all() {
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 64, 1024).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = TxQueue::setup(&regs, 0, 8).unwrap();
        q.enable().unwrap();
        q.set_max_frame(9728);
        let mut chains = heapless::Vec::<PacketChain<'_>, 4>::new();
        chains.push(chain(&pool, &[1024, 1024, 100])).unwrap();
        chains.push(chain(&pool, &[60])).unwrap();
        chains.push(chain(&pool, &[1024, 1024, 1024, 1])).unwrap();
        // 7 free descriptors: the first two chains (4), not the third (4 more).
        assert_eq!(q.tx_chains(&mut chains), 2);
        assert_eq!(chains.len(), 1);
        assert_eq!(chains[0].len(), 3073);
        let words: heapless::Vec<u64, 4> = (0..4).map(|i| q.ring.read_word1(i)).collect();
        assert_eq!(words[0], tx_segment_word1(1024, 2148, true, false));
        assert_eq!(words[1], tx_segment_word1(1024, 2148, false, false));
        assert_eq!(words[2], tx_segment_word1(100, 2148, false, true));
        assert_eq!(words[3], tx_word1(60));
        assert_eq!(p.writes().last(), Some(&(regs::tdt(0).offset(), 4)));
        // Nothing done: still no room; then both packets are done (DD on each last).
        assert_eq!(q.tx_chains(&mut chains), 0);
        q.play_done(0, 4);
        assert_eq!(q.tx_chains(&mut chains), 1);
        assert!(chains.is_empty());
        assert_eq!(q.in_flight(), 4);
        assert_eq!(pool.free_count(), 64 - 4);
        q.play_done(4, 4);
        assert_eq!(q.clean(), 4);
        assert_eq!(pool.free_count(), 64);
        assert_eq!(q.counters().packets, 3);
    }

    #[test]
    fn cleaning_steps_end_with_packets() {
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 256, 1024).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = TxQueue::setup(&regs, 0, 128).unwrap();
        q.enable().unwrap();
        q.set_max_frame(9728);
        // 10 chains of 5 segments: the 32nd descriptor is in the middle of the seventh.
        let mut sent = 0;
        for _ in 0..10 {
            let mut chains = heapless::Vec::<PacketChain<'_>, 1>::new();
            chains
                .push(chain(&pool, &[1024, 1024, 1024, 1024, 9]))
                .unwrap();
            sent += q.tx_chains(&mut chains);
        }
        assert_eq!((sent, q.in_flight()), (10, 50));
        // Only the first six packets are done: the step ends at the last descriptor in
        // flight, which is not done, so nothing is cleaned yet.
        q.play_done(0, 30);
        assert_eq!(q.clean(), 0);
        q.play_done(30, 20);
        assert_eq!(q.clean(), 50);
        // A step whose 64th descriptor has no RS (inside a chain) ends at the last RS before
        // it: 50 packets (50..100, RS on the 32nd and the last), a chain of 16 (100..116),
        // 10 packets (116..126).
        let mut singles = heapless::Vec::<Packet<'_>, 50>::new();
        assert_eq!(pool.alloc_batch(&mut singles, 50, 60), 50);
        assert_eq!(q.tx_batch(&mut singles), 50);
        let mut big = PacketChain::new();
        for _ in 0..16 {
            let mut p = pool.alloc().unwrap();
            p.set_len(600).unwrap();
            big.push(p).unwrap();
        }
        let mut chains = heapless::Vec::<PacketChain<'_>, 1>::new();
        chains.push(big).unwrap();
        assert_eq!(q.tx_chains(&mut chains), 1);
        assert_eq!(pool.alloc_batch(&mut singles, 10, 60), 10);
        assert_eq!(q.tx_batch(&mut singles), 10);
        // Done up to the chain's middle: the 50 packets before it are cleaned, not the chain.
        q.play_done(50, 60);
        assert_eq!(q.clean(), 50);
        q.play_done(110, 16);
        assert_eq!(q.clean(), 26);
        assert_eq!(pool.free_count(), 256);
    }

    #[test]
    fn chains_that_must_not_go_are_counted_and_dropped() {
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 64, 2048).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = TxQueue::setup(&regs, 0, 64).unwrap();
        q.enable().unwrap();
        q.set_max_frame(1518);
        let mut chains = heapless::Vec::<PacketChain<'_>, 8>::new();
        chains.push(chain(&pool, &[1000, 519])).unwrap(); // 1519: too long
        chains.push(chain(&pool, &[1000, 518])).unwrap(); // 1518: fine
        chains.push(PacketChain::new()).unwrap();
        chains.push(chain(&pool, &[100, 0, 100])).unwrap();
        chains.push(chain(&pool, &[8, 8])).unwrap(); // 16 in two: a runt
        chains.push(chain(&pool, &[13])).unwrap(); // shorter than a header
        chains.push(chain(&pool, &[15])).unwrap(); // padded to 17
        assert_eq!(q.tx_chains(&mut chains), 2);
        assert!(chains.is_empty());
        let c = q.counters();
        assert_eq!((c.oversize, c.malformed, c.runts), (1, 2, 2));
        assert_eq!(q.ring.read_word1(2), tx_word1(17));
        assert_eq!(pool.free_count(), 64 - 3);
        q.play_done(0, 3);
        q.clean();
        assert_eq!(pool.free_count(), 64);
    }
}
