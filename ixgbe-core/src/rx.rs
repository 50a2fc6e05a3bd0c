//! Receive queues: an advanced-descriptor ring, the buffers it holds, and batched receive
//! (datasheet §4.6.7 for setup, §7.1 for the receive path).

use core::time::Duration;

use core::mem::MaybeUninit;

use crate::descriptors::{
    decode_rx, good_frame_len, rx_done, DescRing, DescRun, RxWriteback, DESC_SIZE,
};
use crate::error::Error;
use crate::mempool::{BufLayout, Packet, PoolCore};
use crate::offload;
use crate::platform::{DmaRegion, Platform, PrivateMem};
use crate::regs::{self, Regs, RXDCTL};
use crate::wait::poll;

mod chains;
// SSE2 only where the target enables it: kernel targets (x86_64-unknown-none) leave the
// vector registers to user space and get the scalar loop.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
mod sse2;

/// Buffers taken from the pool per lock when a ring is first filled.
const REFILL_CHUNK: usize = 64;

/// What one receive queue has seen, counted by the driver (the device's own counters are in
/// [`crate::Stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RxCounters {
    /// Frames handed to the program.
    pub packets: u64,
    /// Bytes handed to the program (without CRC).
    pub bytes: u64,
    /// Frames spanning several descriptors that [`RxQueue::rx_batch`] dropped whole (it hands
    /// out one-buffer frames; [`RxQueue::rx_chains`] receives them), one per frame.
    pub no_eop: u64,
    /// Write-backs flagging a MAC error: dropped.
    pub errors: u64,
    /// Write-backs with a length of zero or beyond the buffer: dropped.
    pub bad_length: u64,
    /// Times the pool had fewer fresh buffers than descriptors to rearm (the rest stay unarmed,
    /// and the device owns fewer, until a later call), or than a frame of
    /// [`RxQueue::rx_chains`] needed (it waits).
    pub pool_empty: u64,
    /// Frames [`RxQueue::rx_chains`] dropped because no EOP came within
    /// [`crate::MAX_SEGMENTS`] descriptors (or within the ring): the rest of the frame, up to
    /// its EOP, is dropped with it.
    pub chain_too_long: u64,
    /// Frames [`RxQueue::rx_chains`] dropped for being longer than the configured maximum
    /// ([`crate::Config::max_frame_size`]), which the device should have dropped itself.
    pub oversize: u64,
}

/// Asks the CPU to bring the first cache line of a received frame (its headers) into the L1
/// cache while the rest of the batch is received, so that whoever looks at the headers next does
/// not wait for memory: on real hardware the NIC's DMA write left the line in the last-level
/// cache at best (DDIO), in DRAM at worst. One instruction per frame; the simulator cannot show
/// the gain (its frames are written by the same core, and instruction counts do not see cache
/// misses). A no-op on other architectures and under Miri.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use core::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE is part of the x86_64 baseline, so the intrinsic's target feature is
        // always present; a prefetch is a hint that never faults and has no architectural
        // effect, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast()) };
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}

/// Gives the first descriptors of `run` the buffers `fresh` (one each) in read format: buffer
/// address, header address 0 (which clears DD). Inlined into [`RxQueue::rearm`], which is out
/// of line: inside `rx_batch` the loop would share registers with everything else live there
/// and reload from the stack.
#[inline(always)]
fn refill(run: &DescRun<'_, u32>, fresh: &[u32], layout: BufLayout) {
    let n = fresh.len().min(run.len());
    // An index, not an iterator: with `k < n` the compiler drops both bounds checks (with
    // `enumerate` it keeps the run's). Four per step: one loop test per four descriptors.
    let mut k = 0;
    while k + 4 <= n {
        #[allow(clippy::needless_range_loop)]
        for j in k..k + 4 {
            let index = fresh[j];
            run.write(j, layout.phys(index), 0);
            run.set_side(j, index);
        }
        k += 4;
    }
    #[allow(clippy::needless_range_loop)]
    for k in k..n {
        let index = fresh[k];
        run.write(k, layout.phys(index), 0);
        run.set_side(k, index);
    }
}

/// Where a dropped write-back's buffer goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Recycle {
    /// Back into its descriptor, in read format (the frame-chain path, with nothing unarmed).
    InPlace,
    /// To the pool, the descriptor joining the unarmed ones (`rx_batch`).
    ToPool,
}

/// One receive queue. Owns its ring; borrows the pool its buffers come from.
pub struct RxQueue<'a, P: Platform> {
    regs: Regs<P>,
    id: u16,
    /// The descriptors, and the buffer index each one holds.
    ring: DescRing<u32>,
    pool: &'a PoolCore,
    /// Next descriptor the driver looks at.
    next: u16,
    /// Descriptors given buffers (fresh or recycled) since the tail register was last written:
    /// the `held` just before the unarmed ones.
    held: usize,
    /// Descriptors just before `next` that were received into (their buffer handed out, or
    /// given back to the pool when the write-back was dropped) and hold no buffer yet:
    /// `next - unarmed .. next`. [`RxQueue::rx_batch`] gives them fresh buffers in one go once
    /// there are `tail_every` of them (DPDK's rearm), one pool lock per `tail_every` frames
    /// rather than one per call. Their side slots still name the old buffers: the read never
    /// goes that far (at most `ring.mask() - unarmed` descriptors from `next`).
    unarmed: usize,
    /// Rearm and write the tail once this many are unarmed or held (DPDK's `rx_free_thresh`):
    /// a trapped MMIO write costs tens of µs under a hypervisor, and a sleeping queue receives
    /// one frame per call.
    tail_every: usize,
    counters: RxCounters,
    /// Longest frame handed out, in bytes without CRC (see [`RxQueue::set_max_frame`]).
    max_frame: u32,
    /// A frame was dropped before its EOP descriptor arrived: every descriptor up to and
    /// including the next one with EOP belongs to it and is dropped too, never mistaken for
    /// frames of their own.
    discarding: bool,
    /// Write-back status bits passed on to packets ([`crate::offload`]); 0 with the offloads
    /// off, and then the receive loop does not look at them.
    offload_mask: u32,
    region: Option<DmaRegion>,
    /// The side array (which buffer each descriptor holds), where the device cannot write.
    _side: PrivateMem<P>,
}

// SAFETY: the queue exclusively owns its ring memory and the buffers in it; the pool is Sync and
// the platform handle is Send + Sync by the Platform contract.
unsafe impl<P: Platform> Send for RxQueue<'_, P> {}

/// How many descriptors [`RxQueue::rx_batch`] leaves unarmed (or holds back) before rearming
/// them and writing the tail: a quarter of the ring, at most 64, so that the device always
/// owns at least three quarters of it less one batch (a 512-descriptor ring: one lock and
/// one tail write per 64 frames, the device never below 415 descriptors with batches of 32).
fn tail_every(ring_len: usize) -> usize {
    (ring_len / 4).clamp(1, 64)
}

impl<'a, P: Platform> RxQueue<'a, P> {
    /// Allocates the ring, fills it with buffers and programs it into the device (§4.6.7 steps
    /// 5–7). The queue is not enabled yet.
    pub(crate) fn setup(
        regs: &Regs<P>,
        id: u16,
        len: u16,
        pool: &'a PoolCore,
        drop_when_full: bool,
    ) -> Result<Self, Error> {
        let n = usize::from(len);
        let platform = regs.platform();
        let side = PrivateMem::alloc(platform, DescRing::<u32>::side_bytes(n))?;
        let bytes = DescRing::<u32>::ring_bytes(n);
        let region = platform.dma_alloc(bytes)?;
        let phys = platform.virt_to_phys(region.virt().as_ptr());
        let (Some(phys), true) = (phys, region.len() >= bytes) else {
            // SAFETY: fresh from this platform, never programmed into the device.
            unsafe { platform.dma_free(region) };
            return Err(Error::Translation {
                what: "an Rx descriptor ring (no bus address, or a region shorter than asked)",
            });
        };
        // SAFETY: the region (4096-byte aligned, at least `bytes` long) holds n descriptors, the
        // private one n u32s; both are owned by this queue until drop. Every side value is set
        // (arm) before it is read.
        let ring = unsafe { DescRing::new(region.virt(), side.ptr(), len) };
        let mut q = RxQueue {
            regs: regs.clone(),
            id,
            ring,
            pool,
            next: 0,
            held: 0,
            unarmed: 0,
            tail_every: tail_every(n),
            counters: RxCounters::default(),
            max_frame: u32::from(crate::config::DEFAULT_MAX_FRAME_SIZE),
            discarding: false,
            offload_mask: 0,
            region: Some(region),
            _side: side,
        };
        // Every descriptor gets a buffer now (step 5), so the device never sees an empty one.
        let mut indices = [0u32; REFILL_CHUNK];
        let mut filled = 0;
        while filled < n {
            let want = (n - filled).min(REFILL_CHUNK);
            let got = pool.alloc_indices(&mut indices[..want]);
            for &index in &indices[..got] {
                q.arm(filled, index);
                filled += 1;
            }
            if got < want {
                q.release_buffers(filled);
                if let Some(region) = q.region.take() {
                    // SAFETY: the ring was never programmed into the device.
                    unsafe { regs.platform().dma_free(region) };
                }
                return Err(Error::InvalidConfig {
                    what: "pool has fewer buffers than the Rx ring",
                });
            }
        }
        let q_id = u32::from(id);
        // Step 6: ring base and length.
        regs.write(regs::rdbal(q_id), phys as u32);
        regs.write(regs::rdbah(q_id), (phys >> 32) as u32);
        regs.write(regs::rdlen(q_id), (n * DESC_SIZE) as u32);
        // Step 7: advanced one-buffer descriptors, buffer size in KB, drop when full.
        let bsize = pool.buf_size() / 1024;
        let srrctl = regs::SRRCTL::DESCTYPE::AdvancedOneBuffer
            + regs::SRRCTL::BSIZEPACKET.val(bsize)
            + regs::SRRCTL::BSIZEHEADER.val(4)
            + if drop_when_full {
                regs::SRRCTL::DROP_EN::SET
            } else {
                regs::SRRCTL::DROP_EN::CLEAR
            };
        regs.write_fields(regs::srrctl(q_id), srrctl);
        // Step 12: clear reserved bit 12 of DCA_RXCTRL ("must be set to 0").
        regs.modify(regs::dca_rxctrl(q_id), regs::DCA_RXCTRL::RESERVED_12::CLEAR);
        Ok(q)
    }

    /// Enables the queue, waits for it, and hands all but one descriptor to the device (§4.6.7
    /// steps 8–10).
    pub(crate) fn enable(&mut self) -> Result<(), Error> {
        let q = u32::from(self.id);
        self.regs.modify(regs::rxdctl(q), RXDCTL::ENABLE::SET);
        poll(
            self.regs.platform(),
            Duration::from_millis(10),
            "RXDCTL.ENABLE to read back 1",
            || self.regs.is_set(regs::rxdctl(q), RXDCTL::ENABLE),
        )?;
        self.regs.write(regs::rdt(q), self.ring.mask() as u32);
        Ok(())
    }

    /// Puts buffer `index` into descriptor `i` in read format (buffer address, header address 0,
    /// which also clears DD).
    #[inline(always)]
    fn arm(&mut self, i: usize, index: u32) {
        self.ring.write(i, self.pool.phys(index), 0);
        self.ring.set_side(i, index);
    }

    /// Receives up to `max` frames into `out` (stopping early when `out` is full); returns how
    /// many were added.
    ///
    /// Write-backs the driver cannot trust (no EOP, an error bit, a bad length) are counted and
    /// their buffer goes back to the pool. The descriptors received into wait unarmed until a
    /// quarter of the ring (at most 64) has: then one pool lock gives them all fresh buffers
    /// (as many as the pool has) and one tail write, after a release fence, hands them to the
    /// device (DPDK's rearm). The read never reaches an unarmed descriptor, so a device that
    /// writes DD anywhere cannot make a buffer come out twice.
    ///
    /// ```
    /// # use ixgbe_core::{Config, Device, Mempool, Packet, DEFAULT_BUF_SIZE};
    /// # let sim = platform_mock::Sim::new();
    /// # let nic = sim.add_nic(platform_mock::NicConfig::default());
    /// # let pools = [Mempool::new(&sim.platform(nic), 1024, DEFAULT_BUF_SIZE).unwrap()];
    /// # let mut started = Device::init(sim.platform(nic), &Config::default(), &pools).unwrap();
    /// # started.device.wait_for_link(core::time::Duration::from_secs(1)).unwrap();
    /// let rx = &mut started.rx[0];
    /// for _ in 0..3 {
    ///     sim.inject(nic, &[0xFF; 64]); // three frames arrive
    /// }
    /// let mut batch = ixgbe_core::heapless::Vec::<Packet, 32>::new();
    /// assert_eq!(rx.rx_batch(&mut batch, 2), 2); // at most 2
    /// assert_eq!(rx.rx_batch(&mut batch, 32), 1); // appends the third
    /// assert!(batch.iter().all(|p| p.len() == 64 && p[..6] == [0xFF; 6]));
    /// drop(batch); // each buffer goes back to its pool
    /// assert_eq!(rx.counters().packets, 3);
    /// ```
    #[inline]
    pub fn rx_batch<const N: usize>(
        &mut self,
        out: &mut heapless::Vec<Packet<'a>, N>,
        max: usize,
    ) -> usize {
        // One loop without the offload flags and one with: the plain one stays as it was,
        // inlined; the other is out of line.
        if self.offload_mask == 0 {
            self.receive::<N, false>(out, max)
        } else {
            self.receive_with_offloads(out, max)
        }
    }

    /// [`RxQueue::rx_batch`] for a queue that passes offload results on.
    #[inline(never)]
    fn receive_with_offloads<const N: usize>(
        &mut self,
        out: &mut heapless::Vec<Packet<'a>, N>,
        max: usize,
    ) -> usize {
        self.receive::<N, true>(out, max)
    }

    /// [`RxQueue::rx_batch`]; with `OFFLOADS`, each packet also gets the write-back's flags
    /// (under `offload_mask`) and VLAN tag.
    #[inline(always)]
    fn receive<const N: usize, const OFFLOADS: bool>(
        &mut self,
        out: &mut heapless::Vec<Packet<'a>, N>,
        max: usize,
    ) -> usize {
        let offload_mask = self.offload_mask;
        // Everything the loop needs, in locals: the stores it makes (descriptors, packets)
        // would otherwise make the compiler reload these fields every time.
        let ring = self.ring;
        let pool = self.pool;
        let old_len = out.len();
        let spare = out.spare_capacity_mut();
        // At most the ring's length - 1 frames per call, less the unarmed descriptors: those
        // are all the descriptors the device can own ([RDH, RDT) never covers `next - 1`, nor
        // an unarmed one), so a device that sets DD on every descriptor cannot make one call
        // walk past the ring or into the unarmed ones and hand a buffer out twice.
        let want = max.min(spare.len()).min(ring.mask() - self.unarmed);
        if want == 0 || !rx_done(ring.read_word1(usize::from(self.next))) {
            if want == 0 && self.unarmed > 0 {
                // Every descriptor the device could own is unarmed (the pool ran short):
                // nothing can arrive until some get buffers.
                self.rearm();
            }
            return 0; // nothing received: no lock, no tail write
        }
        if self.discarding && !self.finish_discarding() {
            return 0;
        }
        let start = usize::from(self.next);
        // The common case in one run: up to `want` frames or the ring's end. Only when the
        // run stopped at a written-back descriptor (the ring's end with more to come, or a
        // write-back that is not a good frame) does the general loop go on.
        let first = want.min(ring.mask() + 1 - start);
        let run = ring.run(start, first);
        let (mut received, mut bytes) =
            Self::receive_run::<OFFLOADS>(&run, &mut spare[..first], pool, offload_mask);
        let mut i = start + received;
        if received < want && rx_done(ring.read_word1(i)) {
            (received, i, bytes) =
                self.receive_rest::<OFFLOADS>(spare, want, start, received, i, bytes);
        }
        // SAFETY: `received <= want <= spare.len()`, and the runs wrote each of the first
        // `received` elements of the spare capacity (`receive_run` writes one element per
        // descriptor it consumes, in order, from the element at `received` on, here and in
        // `receive_rest`, and `received` adds up what it consumed), so elements
        // `old_len..old_len + received` are initialised Packets nobody else owns.
        unsafe { out.set_len(old_len + received) };
        self.consumed(start, i);
        self.counters.packets = self.counters.packets.wrapping_add(received as u64);
        self.counters.bytes = self.counters.bytes.wrapping_add(bytes);
        received
    }

    /// [`RxQueue::receive`] after its first run, which stopped at the written-back descriptor
    /// `i` (free-running) with `received` of `want` frames (of `bytes`) taken since `start`:
    /// goes on from descriptor 0 at the ring's end and drops the write-backs that are not good
    /// frames. Returns the frames received, where the next call starts, and the bytes.
    #[inline(never)]
    fn receive_rest<const OFFLOADS: bool>(
        &mut self,
        spare: &mut [MaybeUninit<Packet<'a>>],
        want: usize,
        start: usize,
        mut received: usize,
        mut i: usize,
        mut bytes: u64,
    ) -> (usize, usize, u64) {
        let (ring, pool, offload_mask) = (self.ring, self.pool, self.offload_mask);
        let buf_size = pool.layout().buf_size();
        let ring_len = ring.mask() + 1;
        // Each round hands out good frames up to the ring's end at most (so the loop walks a
        // run without masking); the descriptors stay unarmed, for `rearm`. A round ends at the
        // first descriptor that is not a good frame; only a bad write-back or the ring's end
        // starts another. `want` bounds the descriptors read as well as the frames: after a
        // drop it shrinks to what is left of the readable ones, so the read never goes past
        // them however many descriptors the device spoils.
        let mut want = want;
        loop {
            let pos = i & ring.mask();
            let room = want - received;
            let run = ring.run(pos, room.min(ring_len - pos));
            let dst = &mut spare[received..received + run.len()];
            let (got, b) = Self::receive_run::<OFFLOADS>(&run, dst, pool, offload_mask);
            received += got;
            bytes += b;
            i = i.wrapping_add(got);
            if got == run.len() && run.len() < room {
                continue; // the ring's end: go on from descriptor 0
            }
            if received == want {
                break;
            }
            match decode_rx(ring.read_word1(i), buf_size) {
                // (A good frame cannot stop the run: `receive_run` takes every one.)
                RxWriteback::NotDone | RxWriteback::Frame(_) => break,
                bad => {
                    let (next, stop) = self.drop_bad(bad, i, start);
                    i = next;
                    // (`drop_bad` reads no further than the readable ones.)
                    want = want.min(received + self.readable() - i.wrapping_sub(start));
                    if stop || received == want {
                        break;
                    }
                }
            }
        }
        (received, i, bytes)
    }

    /// Hands out the good frames at the start of `run` (at most `dst.len()`), one packet each
    /// into `dst`; returns how many and their bytes. Stops at the first
    /// descriptor that is not a good frame. Out of line and without calls, so that its loop
    /// keeps everything in registers.
    #[inline(never)]
    fn receive_run<const OFFLOADS: bool>(
        run: &DescRun<'_, u32>,
        dst: &mut [MaybeUninit<Packet<'a>>],
        pool: &'a PoolCore,
        offload_mask: u32,
    ) -> (usize, u64) {
        let layout = pool.layout();
        let buf_size = layout.buf_size();
        let n = dst.len().min(run.len());
        let mut sum = 0u64;
        // Four at a time while all four are good frames (without offloads: the flags need each
        // word); the scalar loop below takes the rest and decides the first that is not.
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
        let k = if OFFLOADS {
            0
        } else {
            Self::receive_x4(run, &mut dst[..n], pool, &mut sum)
        };
        #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2", not(miri))))]
        let k = 0;
        // An index, not an iterator: see `refill`.
        #[allow(clippy::needless_range_loop)]
        for k in k..n {
            let word1 = run.read_word1(k);
            let Some(len) = good_frame_len(word1, buf_size) else {
                return (k, sum);
            };
            let index = run.side(k);
            let data = layout.buf_ptr(index);
            prefetch(data.as_ptr());
            let (flags, vlan) = if OFFLOADS {
                (offload::rx_flags(word1, offload_mask), (word1 >> 48) as u16)
            } else {
                (0, 0)
            };
            dst[k].write(Packet::from_rx(pool, data, index, len, flags, vlan));
            sum += u64::from(len);
        }
        (n, sum)
    }

    /// [`RxQueue::receive_run`]'s vector part: hands out the frames at the start of `run` four
    /// at a time while all four are good (at most `dst.len()`, no more than the run holds),
    /// adding their lengths to `sum`; returns how many.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
    #[inline(always)]
    fn receive_x4(
        run: &DescRun<'_, u32>,
        dst: &mut [MaybeUninit<Packet<'a>>],
        pool: &'a PoolCore,
        sum: &mut u64,
    ) -> usize {
        let layout = pool.layout();
        let check = sse2::Good4::new(layout.buf_size());
        let n = dst.len().min(run.len());
        let mut k = 0;
        let mut lens = sse2::LenSum::new();
        // Chunks of the destination, so that its bounds need no check per step.
        for out in dst[..n].chunks_exact_mut(4) {
            let indices = run.side_x4(k);
            let Some((metas, len4)) = check.metas(run.read_word1_x4(k), indices) else {
                break;
            };
            lens.add(len4);
            for ((slot, index), meta) in out.iter_mut().zip(run.side_x4_apart(k)).zip(metas) {
                let data = layout.buf_ptr(index);
                prefetch(data.as_ptr());
                slot.write(Packet::from_meta(pool, data, meta));
            }
            k += 4;
        }
        *sum += lens.total();
        k
    }

    /// When the previous call left the rest of a dropped frame in the ring: drops it; true when
    /// its end was found and the next descriptor is written back (a frame to receive).
    #[cold]
    #[inline(never)]
    fn finish_discarding(&mut self) -> bool {
        self.skip_rest_of_frame(Recycle::ToPool)
            .is_some_and(|next| rx_done(self.ring.read_word1(next)))
    }

    /// Drops the write-back at `i` that is not a good frame (counted), `rx_batch` having
    /// started at `start`; returns where to go on and whether to stop. Its buffer goes back to
    /// the pool and the descriptor joins the unarmed ones (the rearm gives it a fresh one), so
    /// that those stay one stretch. The first descriptor of a frame spanning several is
    /// dropped with the rest of that frame, up to its EOP descriptor (or, when that is not
    /// written yet, in a later call: then stop).
    #[cold]
    #[inline(never)]
    fn drop_bad(&mut self, bad: RxWriteback, i: usize, start: usize) -> (usize, bool) {
        self.count_bad(bad);
        if bad == RxWriteback::NoEop {
            self.discarding = true;
            let budget = self.readable().saturating_sub(i.wrapping_sub(start));
            let next = self.discard_from(i, budget, Recycle::ToPool);
            return (next, self.discarding);
        }
        self.pool.free_indices(&[self.ring.side(i)]);
        (i.wrapping_add(1), false)
    }

    /// How many descriptors from `next` on the driver may read: all but the one before `next`
    /// (which the device never owns) and the unarmed ones.
    #[inline(always)]
    fn readable(&self) -> usize {
        self.ring.mask() - self.unarmed
    }

    /// Moves `next` from `start` to `i` (free-running), the descriptors in between received
    /// into and left unarmed; rearms once `tail_every` are.
    #[inline(always)]
    fn consumed(&mut self, start: usize, i: usize) {
        let n = i.wrapping_sub(start);
        self.next = (i & self.ring.mask()) as u16;
        self.unarmed += n;
        if self.unarmed >= self.tail_every {
            self.rearm();
        }
    }

    /// Gives every unarmed descriptor a fresh buffer (as many as the pool has; a shortfall is
    /// counted in `pool_empty` and waits for a later call), one lock for all, and hands them to
    /// the device with one tail write.
    #[inline(never)]
    fn rearm(&mut self) {
        let ring = self.ring;
        let layout = self.pool.layout();
        let ring_len = ring.mask() + 1;
        let first = usize::from(self.next).wrapping_sub(self.unarmed) & ring.mask();
        let mut free = self.pool.lock_free();
        let n = self.unarmed.min(free.len());
        if n < self.unarmed {
            self.counters.pool_empty += 1;
        }
        let fresh = free.take(n);
        // Up to the ring's end, then from descriptor 0.
        let (a, b) = fresh.split_at(n.min(ring_len - first));
        refill(&ring.run(first, a.len()), a, layout);
        if !b.is_empty() {
            refill(&ring.run(0, b.len()), b, layout);
        }
        drop(free);
        self.unarmed -= n;
        self.held += n;
        if n > 0 {
            self.write_tail();
        }
    }

    /// Hands the held descriptors to the device: the tail goes one past the last armed
    /// descriptor but one (the device owns [RDH, RDT), so it stops one short of what is
    /// armed), after a release fence so the descriptors are visible first.
    #[inline(always)]
    fn write_tail(&mut self) {
        self.held = 0;
        let ring = self.ring;
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        let tail = usize::from(self.next).wrapping_sub(self.unarmed + 1) & ring.mask();
        self.regs.write(regs::rdt(u32::from(self.id)), tail as u32);
    }

    /// Moves `next` from `start` to `i` (free-running), the descriptors in between given back
    /// with fresh (or recycled) buffers in place, and writes the tail once enough are held.
    /// Only with nothing unarmed (the armed ones would follow unarmed ones).
    #[inline(always)]
    fn advance(&mut self, start: usize, i: usize) {
        debug_assert_eq!(self.unarmed, 0);
        if i != start {
            self.next = (i & self.ring.mask()) as u16;
            self.held = self.held.saturating_add(i.wrapping_sub(start));
            if self.held >= self.tail_every {
                self.write_tail();
            }
        }
    }

    /// Drops the descriptors from `i` on (at most `budget`) that the device wrote back, up to
    /// and including the first with EOP, which ends [`RxQueue::discarding`]; returns the
    /// position after the last one dropped. Stops early at a descriptor the device still owns.
    /// Each one's buffer goes back into it (`InPlace`) or to the pool (`ToPool`).
    #[cold]
    #[inline(never)]
    fn discard_from(&mut self, mut i: usize, budget: usize, how: Recycle) -> usize {
        let ring = self.ring;
        let pool = self.pool;
        // (In place: the caller may hold the pool's lock.)
        let mut free = (how == Recycle::ToPool).then(|| pool.lock_free());
        for _ in 0..budget {
            let w = ring.read_word1(i);
            if !rx_done(w) {
                break;
            }
            match free.as_mut() {
                None => ring.write(i, pool.phys(ring.side(i)), 0),
                Some(free) => free.push(ring.side(i)),
            }
            i = i.wrapping_add(1);
            if crate::descriptors::rx_eop(w) {
                self.discarding = false;
                break;
            }
        }
        i
    }

    /// Drops what is left of a frame dropped before its EOP came (see
    /// [`RxQueue::discarding`]); `Some(next position)` once its end was found.
    #[cold]
    #[inline(never)]
    fn skip_rest_of_frame(&mut self, how: Recycle) -> Option<usize> {
        let start = usize::from(self.next);
        let i = self.discard_from(start, self.readable(), how);
        match how {
            Recycle::InPlace => self.advance(start, i),
            Recycle::ToPool => self.consumed(start, i),
        }
        (!self.discarding).then_some(i)
    }

    /// Sets the longest frame this queue hands out, in bytes without CRC: the configured
    /// maximum frame size (which counts the CRC, stripped here) plus 4 for one VLAN tag, which
    /// the MAC allows on top (MAXFRS, §8.2.3.22.13).
    pub(crate) fn set_max_frame(&mut self, max_frame_size: u16) {
        self.max_frame = u32::from(max_frame_size);
    }

    #[cold]
    fn count_bad(&mut self, what: RxWriteback) {
        let (count, why) = match what {
            RxWriteback::NoEop => (&mut self.counters.no_eop, "a write-back without EOP"),
            RxWriteback::Error => (
                &mut self.counters.errors,
                "a write-back flagging a MAC error",
            ),
            _ => (
                &mut self.counters.bad_length,
                "a write-back with a bad length",
            ),
        };
        crate::wait::count_anomaly(count, format_args!("rx queue {}: dropped {why}", self.id));
    }

    /// Which write-back status bits packets get ([`crate::offload`]): the checksum results
    /// and the VP flag, as the configuration asked.
    pub(crate) fn set_offload_mask(&mut self, mask: u32) {
        self.offload_mask = mask;
    }

    /// True when this queue's packets carry the device's checksum results
    /// ([`Config::rx_checksum`](crate::Config::rx_checksum)).
    pub fn rx_checksum(&self) -> bool {
        self.offload_mask & offload::rx_bits::CHECKSUMS != 0
    }

    /// This queue's number.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Ring size in descriptors.
    pub fn ring_size(&self) -> usize {
        self.ring.mask() + 1
    }

    /// What the driver counted on this queue.
    pub fn counters(&self) -> RxCounters {
        self.counters
    }

    /// Gives the first `n` descriptors' buffers back to the pool, but none of an unarmed one
    /// (its buffer was handed out or already given back).
    fn release_buffers(&mut self, n: usize) {
        let unarmed_from = usize::from(self.next).wrapping_sub(self.unarmed) & self.ring.mask();
        for i in 0..n {
            let k = i.wrapping_sub(unarmed_from) & self.ring.mask();
            if k >= self.unarmed {
                self.pool.free_indices(&[self.ring.side(i)]);
            }
        }
    }

    /// How many buffers the ring holds: one per descriptor but those received into and not
    /// given fresh buffers yet (fewer than a quarter of the ring, at most 32, after a call
    /// that received; more only while the pool runs short).
    pub fn buffers_held(&self) -> usize {
        self.ring_size() - self.unarmed
    }
}

impl<P: Platform> Drop for RxQueue<'_, P> {
    fn drop(&mut self) {
        let Some(region) = self.region.take() else {
            return;
        };
        let q = u32::from(self.id);
        // Dynamic queue disable (§4.6.7.1.2): clear ENABLE, poll it to 0, then wait 100 µs
        // before the memory may be reused.
        self.regs.modify(regs::rxdctl(q), RXDCTL::ENABLE::CLEAR);
        let stopped = poll(
            self.regs.platform(),
            Duration::from_millis(10),
            "RXDCTL.ENABLE to clear",
            || !self.regs.is_set(regs::rxdctl(q), RXDCTL::ENABLE),
        )
        .is_ok();
        if !stopped {
            // The device may still write to the ring and its buffers: never reuse them.
            self.pool.mark_leaked();
            let _leaked = region; // never passed to dma_free
            return;
        }
        self.regs.platform().delay(Duration::from_micros(100));
        self.release_buffers(self.ring.mask() + 1);
        // SAFETY: the queue is disabled, so the device no longer reads the ring, and the CPU
        // side (this queue) is going away.
        unsafe { self.regs.platform().dma_free(region) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::fake::FakePlatform;
    use crate::mempool::Mempool;

    /// Plays the device: writes back descriptor `i` with status bits and a length, and puts a
    /// marker byte into the buffer it holds.
    fn write_back<P: Platform>(q: &RxQueue<'_, P>, i: usize, status: u64, len: u16) {
        let index = q.ring.side(i);
        let data = q.pool.layout().buf_ptr(index);
        // SAFETY: the buffer belongs to descriptor i, which the test plays the device for.
        unsafe { data.as_ptr().write(0xA0 + i as u8) };
        q.ring.write(i, 0, status | u64::from(len) << 32);
    }

    const GOOD: u64 = 0b11; // DD | EOP

    /// The vector path (no offloads) and the scalar one (the offload loop with mask 0) hand out
    /// the same packets from the same write-backs: mostly good frames, now and then anything.
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
    #[test]
    fn vector_and_scalar_receive_agree() {
        use super::sse2::gen::Rng;
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 128, 2048).unwrap();
        let regs = Regs::new(p.clone());
        let q = RxQueue::setup(&regs, 0, 64, pool.core(), true).unwrap();
        let mut rng = Rng(0x5EED);
        let mut handed_out = 0;
        for case in 0..20_000 {
            let bad_one_in = [3, 12, 50, 1000][case % 4];
            for i in 0..64 {
                let w = if rng.next().is_multiple_of(bad_one_in) {
                    rng.write_back(2048)
                } else {
                    GOOD | (60 + rng.next() % 1455) << 32 | (rng.next() & 0xFFFF) << 48
                };
                q.ring.write(i, 0, w);
            }
            let first = case % 64;
            let len = (rng.next() % (64 - first as u64 + 1)) as usize;
            let run = q.ring.run(first, len);
            let mut a = [const { MaybeUninit::uninit() }; 64];
            let mut b = [const { MaybeUninit::uninit() }; 64];
            let (na, bytes_a) =
                RxQueue::<FakePlatform>::receive_run::<false>(&run, &mut a[..len], q.pool, 0);
            let (nb, bytes_b) =
                RxQueue::<FakePlatform>::receive_run::<true>(&run, &mut b[..len], q.pool, 0);
            // Both stop where the reference decode first says anything but a good frame.
            let expect = (0..len)
                .find(|&k| !matches!(decode_rx(run.read_word1(k), 2048), RxWriteback::Frame(_)))
                .unwrap_or(len);
            assert_eq!((na, nb), (expect, expect), "case {case}");
            let lengths: u64 = (0..na).map(|k| (run.read_word1(k) >> 32) & 0xFFFF).sum();
            assert_eq!((bytes_a, bytes_b), (lengths, lengths), "case {case}");
            for k in 0..na {
                // SAFETY: receive_run wrote the first `na` (= `nb`) elements of both.
                let (x, y) = unsafe { (a[k].assume_init_ref(), b[k].assume_init_ref()) };
                let (xp, xi, xl) = x.raw_parts();
                let (yp, yi, yl) = y.raw_parts();
                assert!(
                    core::ptr::eq(xp, yp) && (xi, xl) == (yi, yl),
                    "case {case}, {k}"
                );
                assert_eq!(
                    (xi, xl),
                    (run.side(k), (run.read_word1(k) >> 32) as u32 & 0xFFFF)
                );
                assert_eq!(x.as_ptr(), y.as_ptr());
                // Without offloads no flags and no VLAN tag, whatever the write-back says.
                assert_eq!(x.rx_parts(), (0, 0), "case {case}, {k}");
            }
            handed_out += na;
            // Never dropped (MaybeUninit): the buffers still belong to the ring.
        }
        assert!(handed_out > 100_000, "{handed_out}");
    }

    #[test]
    fn packets_get_only_the_offload_bits_the_queue_asked_for() {
        use crate::offload::{rx_bits, Checksum};
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 16, 2048).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = RxQueue::setup(&regs, 0, 8, pool.core(), true).unwrap();
        q.enable().unwrap();
        // Everything set, a VLAN tag in bits 127:112: with checksums only, the tag stays out.
        let all = u64::from(rx_bits::CHECKSUMS | rx_bits::VP) | 0x0ABC << 48;
        let mut out = heapless::Vec::<Packet<'_>, 4>::new();
        for mask in [rx_bits::CHECKSUMS, rx_bits::VP, 0] {
            q.set_offload_mask(mask);
            let i = usize::from(q.next);
            write_back(&q, i, GOOD | all, 60);
            assert_eq!(q.rx_batch(&mut out, 4), 1);
            let o = out.pop().unwrap().rx_offload();
            let checksums = if mask == rx_bits::CHECKSUMS {
                Checksum::Bad
            } else {
                Checksum::NotChecked
            };
            assert_eq!((o.ipv4_header, o.l4), (checksums, checksums), "{mask:#x}");
            assert_eq!(o.vlan, (mask == rx_bits::VP).then_some(0x0ABC), "{mask:#x}");
        }
        drop(q);
        assert_eq!(pool.free_count(), 16);
    }

    #[test]
    fn rx_batch_appends_skips_bad_write_backs_and_rearms_what_the_pool_has() {
        let p = FakePlatform::default();
        // A ring of 8 (rearm every 2) and 2 spare buffers.
        let pool = Mempool::new(&p, 10, 2048).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = RxQueue::setup(&regs, 0, 8, pool.core(), true).unwrap();
        q.enable().unwrap();
        assert_eq!(q.rx_batch(&mut heapless::Vec::<Packet<'_>, 4>::new(), 4), 0);
        write_back(&q, 0, GOOD, 60);
        write_back(&q, 1, GOOD, 0);
        write_back(&q, 2, GOOD, 62);
        write_back(&q, 3, GOOD, 63);
        write_back(&q, 4, GOOD, 64);
        let mut out = heapless::Vec::<Packet<'_>, 3>::new();
        // The last spare buffer goes into `out`, which then has room for 2: descriptor 0 is
        // received, 1 dropped (its buffer back to the pool), 2 received. The rearm finds 2
        // buffers for the 3 descriptors: 0 and 1 get them, 2 waits, and the tail goes to 1
        // (one short of the last armed descriptor).
        out.push(pool.alloc().unwrap()).unwrap();
        assert_eq!(q.rx_batch(&mut out, 32), 2);
        let got: heapless::Vec<(usize, u8), 3> = out[1..].iter().map(|p| (p.len(), p[0])).collect();
        assert_eq!(&got[..], &[(60, 0xA0), (62, 0xA2)]);
        let c = q.counters();
        assert_eq!(
            (c.packets, c.bytes, c.bad_length, c.pool_empty),
            (2, 122, 1, 1)
        );
        assert_eq!(p.writes().last(), Some(&(regs::rdt(0).offset(), 1)));
        assert_eq!((pool.free_count(), q.buffers_held()), (0, 7));
        drop(out);
        let mut out = heapless::Vec::<Packet<'_>, 3>::new();
        assert_eq!(q.rx_batch(&mut out, 32), 2);
        let got: heapless::Vec<(usize, u8), 3> = out.iter().map(|p| (p.len(), p[0])).collect();
        assert_eq!(&got[..], &[(63, 0xA3), (64, 0xA4)]);
        // Three unarmed (2, 3, 4), three buffers free: all armed, the tail at 4.
        assert_eq!(q.counters().pool_empty, 1);
        assert_eq!(p.writes().last(), Some(&(regs::rdt(0).offset(), 4)));
        assert_eq!((pool.free_count(), q.buffers_held()), (0, 8));
        drop(out);
        // `max` limits too, and the dropped descriptor 1 came back armed (not done).
        write_back(&q, 5, GOOD, 65);
        write_back(&q, 6, GOOD, 66);
        let mut out = heapless::Vec::<Packet<'_>, 3>::new();
        assert_eq!(q.rx_batch(&mut out, 1), 1);
        assert_eq!((out[0].len(), out[0][0]), (65, 0xA5));
        assert_eq!(q.rx_batch(&mut out, 3), 1);
        assert_eq!(q.rx_batch(&mut out, 3), 0);
        assert!(!rx_done(q.ring.read_word1(1)));
        drop(out);
        drop(q);
        assert_eq!(pool.free_count(), 10);
    }

    /// Descriptors received into wait unarmed until `tail_every` of them can be rearmed under
    /// one lock and one tail write; the read never reaches them, whatever DD bits the device
    /// writes, so no buffer is handed out twice.
    #[test]
    fn rx_batch_rearms_in_batches_and_never_reads_unarmed_descriptors() {
        let p = FakePlatform::default();
        // A ring of 64 (rearm every 16) and 8 spare buffers.
        let pool = Mempool::new(&p, 72, 2048).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = RxQueue::setup(&regs, 0, 64, pool.core(), true).unwrap();
        q.enable().unwrap();
        let tail_writes = || {
            p.writes()
                .iter()
                .filter(|w| w.0 == regs::rdt(0).offset())
                .count()
        };
        assert_eq!(tail_writes(), 1);
        for i in 0..10 {
            write_back(&q, i, GOOD, 60 + i as u16);
        }
        let mut out = heapless::Vec::<Packet<'_>, 64>::new();
        assert_eq!(q.rx_batch(&mut out, 64), 10);
        // Ten unarmed: no lock taken for them yet, no tail write.
        assert_eq!(
            (pool.free_count(), q.buffers_held(), tail_writes()),
            (8, 54, 1)
        );
        // A device that writes DD into every descriptor: the read stops before the unarmed
        // ones (63 - 10 = 53 more, descriptors 10..=62), every buffer handed out once.
        for i in 0..64 {
            q.ring.write(i, 0, GOOD | 100 << 32);
        }
        assert_eq!(q.rx_batch(&mut out, 64), 53);
        let mut indices: heapless::Vec<u32, 64> = out.iter().map(|p| p.raw_parts().1).collect();
        indices.sort_unstable();
        assert!(
            indices.windows(2).all(|w| w[0] != w[1]),
            "a buffer handed out twice"
        );
        // 63 unarmed, 8 fresh buffers: descriptors 0..8 armed, the tail at 7.
        assert_eq!(q.counters().pool_empty, 1);
        assert_eq!(p.writes().last(), Some(&(regs::rdt(0).offset(), 7)));
        assert_eq!((pool.free_count(), q.buffers_held()), (0, 9));
        drop(out);
        // 63 buffers back. Descriptor 63 (never read: the one before `next`) still holds its
        // buffer and DD: it is received; descriptor 0 was rearmed (not done) and ends the
        // read. The 56 unarmed get buffers now, and the tail goes to 63.
        let mut out = heapless::Vec::<Packet<'_>, 64>::new();
        assert_eq!(q.rx_batch(&mut out, 64), 1);
        assert_eq!(out[0].len(), 100);
        assert_eq!(p.writes().last(), Some(&(regs::rdt(0).offset(), 63)));
        assert_eq!((pool.free_count(), q.buffers_held()), (7, 64));
        drop(out);
        drop(q);
        assert_eq!(pool.free_count(), 72);
    }

    /// Descriptors dropped in the middle of a call count against what it may read, not only
    /// the frames handed out: with DD on every descriptor and a frame in two descriptors
    /// dropped, the read still stops at the one before `next` and never wraps around into
    /// descriptors already read (the fuzzer's hostile device found this).
    #[test]
    fn dropped_descriptors_count_against_the_read_bound() {
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 16, 2048).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = RxQueue::setup(&regs, 0, 8, pool.core(), true).unwrap();
        q.enable().unwrap();
        for i in 0..8 {
            write_back(&q, i, GOOD, 60 + i as u16);
        }
        // Descriptors 2 and 3: one frame without EOP in its first descriptor, dropped whole.
        write_back(&q, 2, 0b01, 60);
        let mut out = heapless::Vec::<Packet<'_>, 32>::new();
        // Descriptors 0..=6 are all the device could own: 0, 1, 4, 5 and 6 are frames.
        assert_eq!(q.rx_batch(&mut out, 32), 5);
        let lens: heapless::Vec<usize, 32> = out.iter().map(|p| p.len()).collect();
        assert_eq!(&lens[..], &[60, 61, 64, 65, 66]);
        assert_eq!(q.counters().no_eop, 1);
        drop(out);
        drop(q);
        assert_eq!(pool.free_count(), 16);
    }

    /// With the pool empty, every descriptor can end up unarmed; the queue then rearms on the
    /// next call even though nothing can have arrived, so it never stalls.
    #[test]
    fn a_queue_whose_every_descriptor_is_unarmed_rearms_when_buffers_come_back() {
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 8, 2048).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = RxQueue::setup(&regs, 0, 8, pool.core(), true).unwrap();
        q.enable().unwrap();
        for i in 0..7 {
            write_back(&q, i, GOOD, 60);
        }
        let mut out = heapless::Vec::<Packet<'_>, 8>::new();
        assert_eq!(q.rx_batch(&mut out, 8), 7);
        assert_eq!((q.buffers_held(), q.counters().pool_empty), (1, 1));
        assert_eq!(q.rx_batch(&mut out, 8), 0);
        assert_eq!(q.counters().pool_empty, 2);
        out.clear();
        assert_eq!(q.rx_batch(&mut out, 8), 0);
        assert_eq!(q.buffers_held(), 8);
        assert_eq!(p.writes().last(), Some(&(regs::rdt(0).offset(), 6)));
        write_back(&q, 7, GOOD, 61);
        assert_eq!(q.rx_batch(&mut out, 8), 1);
        assert_eq!(out[0].len(), 61);
        drop(out);
        drop(q);
        assert_eq!(pool.free_count(), 8);
    }
}
