//! Receive of frames spanning several descriptors (datasheet §7.1.6): a frame longer than one
//! buffer (SRRCTL.BSIZEPACKET) fills consecutive descriptors, each written back with DD and
//! the bytes in its buffer, EOP and the error bits only on the last. Such frames come with
//! jumbo frames (HLREG0.JUMBOEN, MAXFRS.MFS), [`crate::Config::max_frame_size`].

use super::{Recycle, RxQueue};
use crate::chain::{PacketChain, MAX_SEGMENTS};
use crate::descriptors::{rx_done, rx_eop, rx_error, DescRing};
use crate::mempool::Packet;
use crate::offload;
use crate::platform::Platform;

/// Why a chain is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drop {
    /// No EOP within the segment limit or the ring.
    TooLong,
    /// A segment of length zero or beyond its buffer.
    BadLength,
    /// Longer in total than the configured maximum.
    Oversize,
    /// The EOP descriptor flags a MAC error.
    Error,
}

/// What the descriptors from one position on hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Nothing to take yet: not written back, or a frame whose EOP the device has not written.
    Wait,
    /// A good frame in this many descriptors (their lengths in the scan's array).
    Frame(usize),
    /// Drop this many descriptors; `eop` when the last of them ended the frame.
    Drop { segs: usize, why: Drop, eop: bool },
}

/// Looks at the frame starting at descriptor `i`, reading each write-back once (a device may
/// rewrite it; what was checked is what is used) into `lens`. `budget` is how many descriptors
/// this call may still consume; `whole_ring` says the budget is the whole ring, so a frame
/// longer than it can never complete.
fn scan(
    ring: DescRing<u32>,
    i: usize,
    buf_size: u32,
    max_frame: u32,
    budget: usize,
    whole_ring: bool,
    lens: &mut [u32; MAX_SEGMENTS],
) -> Scan {
    let mut total = 0u32;
    for (k, slot) in lens.iter_mut().enumerate() {
        if k == budget {
            return if whole_ring {
                Scan::Drop {
                    segs: k,
                    why: Drop::TooLong,
                    eop: false,
                }
            } else {
                Scan::Wait
            };
        }
        let w = ring.read_word1(i.wrapping_add(k));
        if !rx_done(w) {
            return Scan::Wait;
        }
        let eop = rx_eop(w);
        let segs = k + 1;
        let len = u32::from((w >> 32) as u16);
        if len == 0 || len > buf_size {
            return Scan::Drop {
                segs,
                why: Drop::BadLength,
                eop,
            };
        }
        *slot = len;
        total += len;
        if total > max_frame {
            return Scan::Drop {
                segs,
                why: Drop::Oversize,
                eop,
            };
        }
        if eop {
            if rx_error(w) {
                return Scan::Drop {
                    segs,
                    why: Drop::Error,
                    eop,
                };
            }
            return Scan::Frame(segs);
        }
    }
    Scan::Drop {
        segs: MAX_SEGMENTS,
        why: Drop::TooLong,
        eop: false,
    }
}

impl<'a, P: Platform> RxQueue<'a, P> {
    /// Receives up to `max` frames, each as a [`PacketChain`] of one or more buffers, into
    /// `out` (stopping early when it is full); returns how many were added. Frames longer than
    /// one buffer span several descriptors with EOP on the last (§7.1.6); one-buffer frames
    /// come as chains of one.
    ///
    /// Never trusts the device: a frame with no EOP within [`MAX_SEGMENTS`] descriptors, a
    /// segment of length zero or beyond its buffer, a total beyond the configured maximum
    /// frame size, or a MAC error on its EOP descriptor is dropped whole (its descriptors get
    /// their buffers back) and counted ([`super::RxCounters`]); descriptors after a frame that
    /// was dropped before its EOP are dropped up to that EOP, never taken for frames. A frame
    /// whose last descriptors are not written back yet waits for the next call, as does one
    /// for which the pool has too few fresh buffers. Slower per frame than
    /// [`RxQueue::rx_batch`], which stays the fast path for frames of one buffer.
    ///
    /// ```
    /// # use ixgbe_core::{Config, Device, Mempool, PacketChain, DEFAULT_BUF_SIZE};
    /// # let sim = platform_mock::Sim::new();
    /// # let nic = sim.add_nic(platform_mock::NicConfig::default());
    /// # let pools = [Mempool::new(&sim.platform(nic), 1024, DEFAULT_BUF_SIZE).unwrap()];
    /// let config = Config::default().mtu(9000);
    /// let mut started = Device::init(sim.platform(nic), &config, &pools).unwrap();
    /// # started.device.wait_for_link(core::time::Duration::from_secs(1)).unwrap();
    /// sim.inject(nic, &[0xFF; 9000]); // 5 buffers of 2 KB
    /// sim.inject(nic, &[0xFF; 60]);
    /// let mut chains = ixgbe_core::heapless::Vec::<PacketChain, 8>::new();
    /// assert_eq!(started.rx[0].rx_chains(&mut chains, 8), 2);
    /// assert_eq!((chains[0].len(), chains[0].segments().len()), (9000, 5));
    /// assert_eq!((chains[1].len(), chains[1].segments().len()), (60, 1));
    /// ```
    pub fn rx_chains<const N: usize>(
        &mut self,
        out: &mut heapless::Vec<PacketChain<'a>, N>,
        max: usize,
    ) -> usize {
        let ring = self.ring;
        let pool = self.pool;
        let layout = pool.layout();
        let buf_size = layout.buf_size();
        // This path gives descriptors their buffers in place: first the ones `rx_batch` left
        // unarmed, so that none is left behind the ones armed here.
        if self.unarmed > 0 {
            self.rearm();
            if self.unarmed > 0 {
                return 0; // the pool ran short: the frames wait
            }
        }
        let want = max.min(N - out.len()).min(ring.mask());
        if want == 0 || !rx_done(ring.read_word1(usize::from(self.next))) {
            return 0;
        }
        if self.discarding && self.skip_rest_of_frame(Recycle::InPlace).is_none() {
            return 0;
        }
        let start = usize::from(self.next);
        let mut i = start;
        let mut received = 0;
        let mut bytes = 0u64;
        let mut lens = [0u32; MAX_SEGMENTS];
        let mut free = pool.lock_free();
        while received < want {
            let used = i.wrapping_sub(start);
            let budget = ring.mask().saturating_sub(used);
            match scan(
                ring,
                i,
                buf_size,
                self.max_frame,
                budget,
                used == 0,
                &mut lens,
            ) {
                Scan::Wait => break,
                Scan::Frame(segs) => {
                    if free.len() < segs {
                        self.counters.pool_empty += 1;
                        break;
                    }
                    // The offload results are in the EOP descriptor (§7.1.6.2); the first
                    // segment, which holds the headers, carries them.
                    let eop = ring.read_word1(i.wrapping_add(segs - 1));
                    let flags = offload::rx_flags(eop, self.offload_mask);
                    let mut chain = PacketChain::new();
                    for (k, &fresh) in free.take(segs).iter().enumerate() {
                        let d = i.wrapping_add(k);
                        let index = ring.side(d);
                        let (flags, vlan) = if k == 0 {
                            (flags, (eop >> 48) as u16)
                        } else {
                            (0, 0)
                        };
                        let data = layout.buf_ptr(index);
                        let packet =
                            Packet::from_rx(pool, data, index, lens[k] as u16, flags, vlan);
                        // `segs <= MAX_SEGMENTS`: there is room.
                        let _ = chain.push(packet);
                        ring.write(d, layout.phys(fresh), 0);
                        ring.set_side(d, fresh);
                    }
                    bytes += chain.len() as u64;
                    // `received < want <= N - out.len()`: there is room.
                    let _ = out.push(chain);
                    received += 1;
                    i = i.wrapping_add(segs);
                }
                Scan::Drop { segs, why, eop } => {
                    self.count_chain_drop(why);
                    for k in 0..segs {
                        let d = i.wrapping_add(k);
                        // Recycle: same buffer, read format again.
                        ring.write(d, layout.phys(ring.side(d)), 0);
                    }
                    i = i.wrapping_add(segs);
                    if !eop {
                        self.discarding = true;
                        let budget = ring.mask().saturating_sub(i.wrapping_sub(start));
                        i = self.discard_from(i, budget, Recycle::InPlace);
                        if self.discarding {
                            break;
                        }
                    }
                }
            }
        }
        drop(free);
        self.advance(start, i);
        self.counters.packets = self.counters.packets.wrapping_add(received as u64);
        self.counters.bytes = self.counters.bytes.wrapping_add(bytes);
        received
    }

    #[cold]
    fn count_chain_drop(&mut self, why: Drop) {
        let c = &mut self.counters;
        let (count, what) = match why {
            Drop::TooLong => (&mut c.chain_too_long, "a frame without EOP in time"),
            Drop::BadLength => (&mut c.bad_length, "a write-back with a bad length"),
            Drop::Oversize => (&mut c.oversize, "a frame beyond the maximum frame size"),
            Drop::Error => (&mut c.errors, "a write-back flagging a MAC error"),
        };
        crate::wait::count_anomaly(count, format_args!("rx queue {}: dropped {what}", self.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::fake::FakePlatform;
    use crate::mempool::Mempool;
    use crate::regs::Regs;

    const DD: u64 = 0b01;
    const EOP: u64 = 0b10;
    const RXE: u64 = 1 << 29;

    /// Plays the device: writes back descriptor `i` (free-running) with status and length, and
    /// fills its buffer's first `len` bytes (at most the buffer) with `mark`.
    fn write_back<P: Platform>(q: &RxQueue<'_, P>, i: usize, status: u64, len: u16, mark: u8) {
        let index = q.ring.side(i);
        let data = q.pool.layout().buf_ptr(index);
        let n = usize::from(len).min(q.pool.buf_size() as usize);
        // SAFETY: the buffer (buf_size bytes) belongs to descriptor i, which the test plays the
        // device for.
        unsafe { core::ptr::write_bytes(data.as_ptr(), mark, n) };
        q.ring.write(i, 0, status | u64::from(len) << 32);
    }

    /// A queue of 8 descriptors with 1 KB buffers, from a pool of `buffers`.
    fn queue<'a>(
        regs: &Regs<FakePlatform>,
        pool: &'a Mempool<FakePlatform>,
    ) -> RxQueue<'a, FakePlatform> {
        let mut q = RxQueue::setup(regs, 0, 8, pool.core(), true).unwrap();
        q.enable().unwrap();
        q.set_max_frame(9728);
        q
    }

    #[test]
    fn rx_batch_drops_a_multi_descriptor_frame_whole() {
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 16, 1024).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = queue(&regs, &pool);
        let mut out = heapless::Vec::<Packet<'_>, 8>::new();
        // The first descriptor of a two-descriptor frame: nothing, and its end is awaited.
        write_back(&q, 0, DD, 1024, 1);
        assert_eq!(q.rx_batch(&mut out, 8), 0);
        assert_eq!(q.counters().no_eop, 1);
        // Its end (EOP, 100 bytes) is not a frame of its own; the next one is.
        write_back(&q, 1, DD | EOP, 100, 2);
        write_back(&q, 2, DD | EOP, 60, 3);
        assert_eq!(q.rx_batch(&mut out, 8), 1);
        assert_eq!((out[0].len(), out[0][0]), (60, 3));
        // Both in one call.
        write_back(&q, 3, DD, 1024, 4);
        write_back(&q, 4, DD, 1024, 5);
        write_back(&q, 5, DD | EOP, 7, 6);
        write_back(&q, 6, DD | EOP, 61, 7);
        assert_eq!(q.rx_batch(&mut out, 8), 1);
        assert_eq!((out[1].len(), out[1][0]), (61, 7));
        let c = q.counters();
        assert_eq!((c.packets, c.no_eop, c.bad_length), (2, 2, 0));
        drop(out);
        drop(q);
        assert_eq!(pool.free_count(), 16);
    }

    #[test]
    fn rx_chains_receives_frames_of_every_length_across_the_wrap() {
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 24, 1024).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = queue(&regs, &pool);
        let mut i = 0usize;
        let lens: &[usize] = if cfg!(miri) {
            &[1, 1024, 1025, 5000]
        } else {
            &[1, 60, 1023, 1024, 1025, 2047, 2048, 2049, 3000, 5000, 7168]
        };
        for (n, &len) in lens.iter().enumerate() {
            let segs = len.div_ceil(1024);
            for k in 0..segs {
                let part = (len - 1024 * k).min(1024) as u16;
                let status = if k + 1 == segs { DD | EOP } else { DD };
                write_back(&q, i + k, status, part, (n * 16 + k) as u8);
            }
            // Nothing until the EOP descriptor is there: test a frame missing its last one.
            if segs > 1 {
                let last = q.ring.read_word1(i + segs - 1);
                q.ring.write(i + segs - 1, 0, 0);
                let mut none = heapless::Vec::<PacketChain<'_>, 2>::new();
                assert_eq!(q.rx_chains(&mut none, 2), 0);
                q.ring.write(i + segs - 1, 0, last);
            }
            let mut out = heapless::Vec::<PacketChain<'_>, 2>::new();
            assert_eq!(q.rx_chains(&mut out, 2), 1, "length {len}");
            let chain = &out[0];
            assert_eq!((chain.len(), chain.segments().len()), (len, segs));
            for (k, seg) in chain.segments().iter().enumerate() {
                assert!(seg.iter().all(|&b| b == (n * 16 + k) as u8));
            }
            i += segs;
        }
        assert!(i > 8, "the ring wrapped");
        assert_eq!(q.counters().packets, lens.len() as u64);
        drop(q);
        assert_eq!(pool.free_count(), 24);
    }

    #[test]
    fn rx_chains_drops_what_a_device_should_not_write() {
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 16, 1024).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = queue(&regs, &pool);
        let mut out = heapless::Vec::<PacketChain<'_>, 8>::new();
        // EOP never set: every descriptor the device owns (and the one it does not) has DD.
        for i in 0..8 {
            write_back(&q, i, DD, 1024, 9);
        }
        assert_eq!(q.rx_chains(&mut out, 8), 0);
        assert_eq!(q.counters().chain_too_long, 1);
        assert_eq!(pool.free_count(), 8);
        // The frame goes on (its end comes later) and is still dropped; then a good one.
        let base = usize::from(q.next);
        write_back(&q, base, DD | EOP, 5, 9);
        write_back(&q, base + 1, DD | EOP, 60, 1);
        assert_eq!(q.rx_chains(&mut out, 8), 1);
        assert_eq!((out[0].len(), out[0].segments()[0][0]), (60, 1));
        // A length of zero, and one beyond the buffer, in the middle of a frame.
        let b = base + 2;
        write_back(&q, b, DD, 1024, 2);
        write_back(&q, b + 1, DD, 0, 2);
        write_back(&q, b + 2, DD | EOP, 10, 2);
        write_back(&q, b + 3, DD, 1025, 3);
        write_back(&q, b + 4, DD | EOP, 10, 3);
        // A MAC error on the EOP descriptor.
        write_back(&q, b + 5, DD, 1024, 4);
        write_back(&q, b + 6, DD | EOP | RXE, 10, 4);
        assert_eq!(q.rx_chains(&mut out, 8), 0);
        let b = b + 7;
        write_back(&q, b, DD | EOP, 61, 5);
        assert_eq!(q.rx_chains(&mut out, 8), 1);
        assert_eq!(out[1].len(), 61);
        // Beyond the maximum frame size.
        q.set_max_frame(1500);
        write_back(&q, b + 1, DD, 1024, 6);
        write_back(&q, b + 2, DD | EOP, 477, 6);
        write_back(&q, b + 3, DD, 1024, 7);
        write_back(&q, b + 4, DD | EOP, 476, 7);
        assert_eq!(q.rx_chains(&mut out, 8), 1);
        assert_eq!(out[2].len(), 1500);
        let c = q.counters();
        assert_eq!(
            (
                c.packets,
                c.chain_too_long,
                c.bad_length,
                c.errors,
                c.oversize
            ),
            (3, 1, 2, 1, 1)
        );
        drop(out);
        drop(q);
        assert_eq!(pool.free_count(), 16);
    }

    #[test]
    fn rx_chains_waits_for_buffers_and_respects_max() {
        let p = FakePlatform::default();
        // A ring of 8 and 3 spare buffers.
        let pool = Mempool::new(&p, 11, 1024).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = queue(&regs, &pool);
        let mut out = heapless::Vec::<PacketChain<'_>, 4>::new();
        write_back(&q, 0, DD, 1024, 1);
        write_back(&q, 1, DD | EOP, 1, 1);
        write_back(&q, 2, DD, 1024, 2);
        write_back(&q, 3, DD | EOP, 2, 2);
        write_back(&q, 4, DD | EOP, 3, 3);
        assert_eq!(q.rx_chains(&mut out, 1), 1);
        // One fresh buffer left: the two-buffer frame waits.
        assert_eq!(q.rx_chains(&mut out, 4), 0);
        assert_eq!(q.counters().pool_empty, 1);
        out.clear();
        assert_eq!(q.rx_chains(&mut out, 4), 2);
        assert_eq!((out[0].len(), out[1].len()), (1026, 3));
        drop(out);
        drop(q);
        assert_eq!(pool.free_count(), 11);
    }
}
