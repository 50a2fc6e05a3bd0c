//! Transmit queues: an advanced-descriptor ring, the packets in flight, batched transmit and
//! cleaning (datasheet §4.6.8 for setup, §7.2 for the transmit path).

use core::time::Duration;

use crate::descriptors::{
    tx_done, tx_word1, tx_word1_without_rs, DescRing, DescRun, SideArray, DESC_SIZE, TX_RS,
};
use crate::error::Error;
use crate::mempool::{Packet, PoolCore};
use crate::offload::TxContextKey;
use crate::platform::{DmaRegion, Platform, PrivateMem};
use crate::regs::{self, Regs, TXDCTL};
use crate::wait::poll;

mod chains;
mod offload;

/// Most descriptors checked and freed per step of cleaning: one DD read and one pool lock per
/// step. A queue cleans once a step's worth is in flight ([`clean_step`]). 128 rather than 64
/// saves 2.9 / 1.9 instructions per forwarded packet at batch 8 / 32 for 0.05 more L1 misses;
/// 256 would save 1.4 / 1.0 more but cost 0.09 / 0.11 more L1 misses (more buffers in flight,
/// and their bus addresses looked up in more lines of the pool's table; docs/benchmarks.md).
const CLEAN_BATCH: usize = 128;

/// The step of cleaning of a ring of `ring_len` descriptors: half the ring, at most
/// [`CLEAN_BATCH`], so that at least half the ring is free for sending after a step.
fn clean_step(ring_len: usize) -> usize {
    (ring_len / 2).clamp(1, CLEAN_BATCH)
}

/// `tx_batch` sets RS on the last descriptor of every call and of every 32 descriptors within
/// a call: the device writes back one DD per 32 packets at most (DPDK's `tx_rs_thresh`), and
/// never fewer than the datasheet's one RS per 40 descriptors (§7.2.3.2.4; DD is written back
/// only for descriptors with RS when WTHRESH is 0, §8.2.3.9.10). The last descriptor of a call
/// always has RS, so a buffer never waits for traffic that may not come.
const RS_EVERY: usize = 32;

/// What the driver keeps for each descriptor in flight: whose buffer it is, or no buffer (a
/// null pool) for a context descriptor. Kept in two arrays in private memory (the device cannot
/// forge the pool pointer or the index): the ring's side array holds [`Slot::meta`], the
/// queue's `owners` array the pool.
#[derive(Clone, Copy)]
struct Slot {
    pool: *const PoolCore,
    /// The buffer index in bits 23:0 (pools have at most 2^24 buffers); [`RS`] set when the
    /// descriptor carries RS, so the device writes DD back into it (the last descriptor of a
    /// `tx_batch` call or of 32 descriptors in one, a chain's last segment, an offloaded
    /// packet). Cleaning checks DD only there.
    meta: u32,
}

/// [`Slot::meta`]'s bit for "this descriptor has RS".
const RS: u32 = 1 << 31;

impl Slot {
    #[inline(always)]
    fn new(pool: *const PoolCore, index: u32, rs: bool) -> Self {
        Slot {
            pool,
            meta: index | if rs { RS } else { 0 },
        }
    }

    /// A context descriptor's slot: no buffer, and no RS (its packet's data descriptor follows
    /// it).
    const CONTEXT: Slot = Slot {
        pool: core::ptr::null(),
        meta: 0,
    };
}

/// True when a slot's meta says the descriptor has RS (the device writes DD back into it).
#[inline(always)]
fn has_rs(meta: u32) -> bool {
    meta & RS != 0
}

/// What one transmit queue has done, counted by the driver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TxCounters {
    /// Frames handed to the device.
    pub packets: u64,
    /// Bytes handed to the device (without CRC).
    pub bytes: u64,
    /// Frames the device reported done and whose buffers went back to their pool.
    pub completed: u64,
    /// Packets shorter than an Ethernet header, which the device must not be given: dropped.
    /// (Packets of 14..17 bytes are padded to 17 and sent.)
    pub runts: u64,
    /// Chains longer than the configured maximum frame size ([`crate::Config::max_frame_size`],
    /// without CRC, plus 4 bytes for a VLAN tag): dropped.
    pub oversize: u64,
    /// Chains without segments, or with a segment of zero bytes (§7.2.3.2.4 forbids a data
    /// length of 0): dropped.
    pub malformed: u64,
    /// Context descriptors written ([`TxQueue::tx_batch_offload`]): one per change of the
    /// packets' offload shape, not one per packet.
    pub contexts: u64,
    /// Packets whose [`TxOffload`](crate::TxOffload) did not describe them (lengths beyond
    /// the packet, a header of another IP version): dropped.
    pub offload_invalid: u64,
}

/// Shortest packet `tx_batch` accepts: an Ethernet header (DPDK's `IXGBE_TX_MIN_PKT_LEN`);
/// shorter ones are dropped and counted as runts.
pub const MIN_TX_LEN: u32 = 14;

/// Shortest packet handed to the device: Linux's ixgbe pads to 17 bytes ("minimum packet size
/// for olinfo paylen is 17"), so packets of 14..17 bytes get zero bytes appended first; the
/// MAC pads everything to 60 bytes on the wire (HLREG0.TXPADEN).
pub const MIN_PAYLEN: u32 = 17;

/// Pads a packet of 14..17 bytes with zeros to [`MIN_PAYLEN`]; `None` for a runt (shorter
/// than an Ethernet header, or a buffer too small to pad).
#[cold]
fn pad(packet: &mut Packet<'_>) -> Option<u32> {
    let len = packet.len();
    if len < MIN_TX_LEN as usize || packet.set_len(MIN_PAYLEN as usize).is_err() {
        return None;
    }
    packet[len..].fill(0);
    Some(MIN_PAYLEN)
}

/// One transmit queue. Owns its ring and the packets in flight on it.
pub struct TxQueue<'a, P: Platform> {
    regs: Regs<P>,
    id: u16,
    /// The descriptors, and which buffer each one in flight holds ([`Slot::meta`]).
    ring: DescRing<u32>,
    /// The pool of each descriptor's buffer ([`Slot::pool`]).
    owners: SideArray<*const PoolCore>,
    /// Next descriptor to fill (the software copy of TDT).
    tail: u16,
    /// Oldest descriptor not yet cleaned.
    clean: u16,
    /// Descriptors per step of cleaning ([`clean_step`]).
    clean_every: usize,
    counters: TxCounters,
    /// What the device's two contexts of this queue hold (§7.2.3.2.3), as this queue last wrote
    /// them; `None` since the queue was enabled (which empties them).
    contexts: [Option<TxContextKey>; 2],
    /// The context to overwrite next when neither matches.
    next_context: u8,
    /// Longest chain [`TxQueue::tx_chains`] sends, in bytes without CRC.
    max_frame: u32,
    region: Option<DmaRegion>,
    /// The slots' two arrays, where the device cannot write.
    _side: PrivateMem<P>,
    _owners: PrivateMem<P>,
    _pools: core::marker::PhantomData<&'a PoolCore>,
}

// SAFETY: the queue exclusively owns its ring and the buffers in flight (their pools are Sync);
// the platform handle is Send + Sync by the Platform contract.
unsafe impl<P: Platform> Send for TxQueue<'_, P> {}

impl<'a, P: Platform> TxQueue<'a, P> {
    /// Allocates the ring and programs base, length and thresholds (§4.6.8 steps 5–6). The queue
    /// is not enabled yet.
    pub(crate) fn setup(regs: &Regs<P>, id: u16, len: u16) -> Result<Self, Error> {
        let n = usize::from(len);
        let platform = regs.platform();
        let side = PrivateMem::alloc(platform, DescRing::<u32>::side_bytes(n))?;
        let owners_mem = PrivateMem::alloc(platform, SideArray::<*const PoolCore>::bytes(n))?;
        let bytes = DescRing::<u32>::ring_bytes(n);
        let region = platform.dma_alloc(bytes)?;
        let phys = platform.virt_to_phys(region.virt().as_ptr());
        let (Some(phys), true) = (phys, region.len() >= bytes) else {
            // SAFETY: fresh from this platform, never programmed into the device.
            unsafe { platform.dma_free(region) };
            return Err(Error::Translation {
                what: "a Tx descriptor ring (no bus address, or a region shorter than asked)",
            });
        };
        // SAFETY: the region (4096-byte aligned, at least `bytes` long) holds n descriptors, the
        // private one n slots. A slot is read only for descriptors in flight, whose slots
        // tx_batch set.
        let ring = unsafe { DescRing::new(region.virt(), side.ptr(), len) };
        // SAFETY: a private region (4096-byte aligned) of n pointers, owned by this queue,
        // zeroed (null pools); as the side array, read only for descriptors in flight.
        let owners = unsafe { SideArray::new(owners_mem.ptr(), len) };
        let q = u32::from(id);
        regs.write(regs::tdbal(q), phys as u32);
        regs.write(regs::tdbah(q), (phys >> 32) as u32);
        regs.write(regs::tdlen(q), (n * DESC_SIZE) as u32);
        // Descriptor write-back must not be reordered against head updates (DPDK clears it too).
        regs.modify(
            regs::dca_txctrl(q),
            regs::DCA_TXCTRL::TX_DESC_WB_RO_EN::CLEAR,
        );
        // Step 6: prefetch 32 when fewer than that are cached, HTHRESH non-zero whenever PTHRESH
        // is used, WTHRESH 0: descriptors with RS are written back as soon as they are done.
        regs.write_fields(
            regs::txdctl(q),
            TXDCTL::PTHRESH.val(32) + TXDCTL::HTHRESH.val(1) + TXDCTL::WTHRESH.val(0),
        );
        Ok(TxQueue {
            regs: regs.clone(),
            id,
            ring,
            owners,
            tail: 0,
            clean: 0,
            clean_every: clean_step(n),
            counters: TxCounters::default(),
            contexts: [None; 2],
            next_context: 0,
            max_frame: u32::from(crate::config::DEFAULT_MAX_FRAME_SIZE),
            region: Some(region),
            _side: side,
            _owners: owners_mem,
            _pools: core::marker::PhantomData,
        })
    }

    /// Sets TXDCTL.ENABLE and waits for it to read back (§4.6.8 step 9); TDT stays untouched
    /// until then.
    pub(crate) fn enable(&mut self) -> Result<(), Error> {
        let q = u32::from(self.id);
        self.contexts = [None; 2];
        self.regs.modify(regs::txdctl(q), TXDCTL::ENABLE::SET);
        poll(
            self.regs.platform(),
            Duration::from_millis(10),
            "TXDCTL.ENABLE to read back 1",
            || self.regs.is_set(regs::txdctl(q), TXDCTL::ENABLE),
        )
    }

    /// Descriptors handed to the device and not yet cleaned.
    #[inline(always)]
    pub fn in_flight(&self) -> usize {
        usize::from(self.tail.wrapping_sub(self.clean)) & self.ring.mask()
    }

    /// Plays the device in unit tests: marks descriptors `from..from + n` (free-running) done,
    /// writing DD back only into those with RS (WTHRESH 0, §8.2.3.9.10).
    #[cfg(test)]
    pub(crate) fn play_done(&self, from: usize, n: usize) {
        const DD: u64 = 1 << 32;
        for i in from..from + n {
            let w = self.ring.read_word1(i);
            if w & TX_RS != 0 {
                self.ring.write(i, 0, w | DD);
            }
        }
    }

    /// Descriptors in flight that hold a buffer (not context descriptors).
    #[cfg(test)]
    pub(crate) fn buffers_in_flight(&self) -> usize {
        (0..self.in_flight())
            .filter(|&k| !self.owners.get(usize::from(self.clean) + k).is_null())
            .count()
    }

    /// Frees the buffers of every descriptor the device has finished; returns how many.
    ///
    /// Works in steps of up to half the ring (at most 128) descriptors, each ending at a
    /// descriptor with RS, whose DD means all before it are done: the step's last descriptor
    /// when it has RS, else the last one with RS before it (or, when there is none, the first
    /// after it). A shorter step is taken when fewer are in flight: the last descriptor in
    /// flight always has RS, so buffers never get stuck when traffic stops.
    #[inline(always)]
    pub fn clean(&mut self) -> usize {
        let mut cleaned = 0;
        loop {
            let in_flight = self.in_flight();
            if in_flight == 0 {
                break;
            }
            let mut n = in_flight.min(self.clean_every);
            let first = usize::from(self.clean);
            if !has_rs(self.ring.side(first + n - 1)) {
                n = self.step_end(first, n, in_flight);
            }
            if !tx_done(self.ring.read_word1(first + n - 1)) {
                break;
            }
            let contexts = self.free_slots(first, n);
            self.clean = ((first + n) & self.ring.mask()) as u16;
            cleaned += n - contexts;
        }
        self.counters.completed += cleaned as u64;
        cleaned
    }

    /// [`TxQueue::clean`] as a call: for the jumbo path, so that the fast path's inlined copy
    /// of `clean` stays as it was.
    #[inline(never)]
    pub(crate) fn clean_out_of_line(&mut self) -> usize {
        self.clean()
    }

    /// A step of cleaning from `first` that ends at a descriptor with RS: the last one within
    /// the first `n` descriptors, or when there is none (a chain longer than that), the first
    /// after them (within `in_flight`, whose last descriptor always has RS).
    #[inline(never)]
    fn step_end(&self, first: usize, n: usize, in_flight: usize) -> usize {
        let ends = |k: &usize| has_rs(self.ring.side(first + k));
        (0..n)
            .rev()
            .find(ends)
            .or_else(|| (n..in_flight).find(ends))
            .map_or(in_flight, |k| k + 1)
    }

    /// Returns the buffers of descriptors `start..start + n` (`n` at most the ring length) to
    /// their pools, locking each pool once per run of consecutive buffers from it; returns how
    /// many of the descriptors were context descriptors.
    #[inline]
    fn free_slots(&mut self, start: usize, n: usize) -> usize {
        let ring = self.ring;
        let first = start & ring.mask();
        let to_end = (ring.mask() + 1 - first).min(n);
        // SAFETY: `&mut self` keeps the writers of both arrays (the transmit paths) away while
        // the runs live; the slots of descriptors in flight (from `clean` on, which is where
        // callers start) were set before their descriptors went to the device.
        let (pools, metas) = unsafe {
            (
                self.owners.slice(first, to_end),
                ring.side_run(first, to_end),
            )
        };
        let mut contexts = Self::free_run(pools, metas);
        if to_end < n {
            // SAFETY: as above, for the part after the wrap-around.
            let (pools, metas) = unsafe {
                (
                    self.owners.slice(0, n - to_end),
                    ring.side_run(0, n - to_end),
                )
            };
            contexts += Self::free_run(pools, metas);
        }
        contexts
    }

    /// Returns the buffers of one run of slots (no wrap-around; `metas` as long as `pools`)
    /// to their pools; returns how many slots were context descriptors'.
    ///
    /// The usual run holds buffers of one pool only: that is checked without branching (an
    /// OR over the run, which the compiler vectorises) and the indices go to the pool's free
    /// stack in one copy. Anything else takes the slot-by-slot way.
    #[inline(always)]
    fn free_run(pools: &[*const PoolCore], metas: &[u32]) -> usize {
        let Some(&pool) = pools.first() else {
            return 0;
        };
        let others = pools
            .iter()
            .fold(0, |acc, p| acc | (p.addr() ^ pool.addr()));
        if others != 0 || pool.is_null() || metas.len() != pools.len() {
            return Self::free_mixed(pools, metas);
        }
        // SAFETY: `pool` came from a live `&'a PoolCore` (see tx_batch).
        unsafe { &*pool }.lock_free().push_indices(metas, !RS);
        0
    }

    /// [`TxQueue::free_run`] for a run with context descriptors or buffers of several pools:
    /// one lock per run of one pool.
    #[cold]
    #[inline(never)]
    fn free_mixed(pools: &[*const PoolCore], metas: &[u32]) -> usize {
        let mut contexts = 0;
        let mut k = 0;
        let n = pools.len().min(metas.len());
        while k < n {
            let pool = pools[k];
            if pool.is_null() {
                // A context descriptor: no buffer.
                contexts += 1;
                k += 1;
                continue;
            }
            let same = pools[k..n].iter().take_while(|&&p| p == pool).count();
            // SAFETY: `pool` came from a live `&'a PoolCore` (see tx_batch).
            unsafe { &*pool }
                .lock_free()
                .push_indices(&metas[k..k + same], !RS);
            k += same;
        }
        contexts
    }

    /// Records who owns descriptor `t`'s buffer (or that it is a context descriptor).
    #[inline(always)]
    fn set_slot(&self, t: usize, slot: Slot) {
        self.ring.set_side(t, slot.meta);
        self.owners.set(t, slot.pool);
    }

    /// Sends packets from the front of `packets` and removes those it sent; returns how many.
    ///
    /// Cleans first, in whole steps (half the ring, at most 128) while a step is in flight, and
    /// everything finished when the ring has no room for `packets` otherwise or when `packets`
    /// is empty: a caller that stops sending frees the last buffers with an empty call (or
    /// [`TxQueue::clean`]); small batches do not pay a pool lock each. Sends as many as there
    /// are free descriptors (one slot always stays empty, so a full ring and an empty one
    /// differ); whatever does not fit stays in `packets` for the caller to retry or drop. The
    /// tail register is written once, after a release fence.
    ///
    /// ```
    /// # use ixgbe_core::{Config, Device, Mempool, Packet, DEFAULT_BUF_SIZE};
    /// # let sim = platform_mock::Sim::new();
    /// # let nic = sim.add_nic(platform_mock::NicConfig::default());
    /// # let pools = [Mempool::new(&sim.platform(nic), 1024, DEFAULT_BUF_SIZE).unwrap()];
    /// # let mut started = Device::init(sim.platform(nic), &Config::default(), &pools).unwrap();
    /// # started.device.wait_for_link(core::time::Duration::from_secs(1)).unwrap();
    /// let mut batch = ixgbe_core::heapless::Vec::<Packet, 32>::new();
    /// pools[0].alloc_batch(&mut batch, 4, 60); // four 60-byte frames
    /// for p in batch.iter_mut() {
    ///     p[..6].copy_from_slice(&[0xFF; 6]);
    /// }
    /// assert_eq!(started.tx[0].tx_batch(&mut batch), 4);
    /// assert!(batch.is_empty());
    /// sim.advance(core::time::Duration::from_micros(10));
    /// assert_eq!(sim.take_transmitted(nic).len(), 4);
    /// started.tx[0].clean(); // the buffers the device finished go back to the pool
    /// assert_eq!(pools[0].free_count(), 1024 - started.rx[0].ring_size()); // the rest fill the Rx ring
    /// ```
    #[inline]
    pub fn tx_batch<const N: usize>(
        &mut self,
        packets: &mut heapless::Vec<Packet<'a>, N>,
    ) -> usize {
        let ring = self.ring;
        let in_flight = self.in_flight();
        if in_flight >= self.clean_every
            || packets.len() > ring.mask() - in_flight
            || packets.is_empty()
        {
            self.clean();
        }
        let free = ring.mask() - self.in_flight();
        let n = packets.len().min(free);
        if n == 0 {
            return 0;
        }
        let start = usize::from(self.tail);
        // Each run of descriptors is at most 32, up to the ring's end (then from descriptor 0),
        // cut short by a packet that needs padding, which is padded and goes in the next run.
        // Each run ends with RS: one per 32 descriptors, one per call, and rarely one more (at
        // the ring's end, before a padded packet). The common case is one run.
        let first = n.min(ring.mask() + 1 - start).min(RS_EVERY);
        let (mut sent, mut bytes) = self.send_run(start, &mut packets[..first]);
        let mut runt = false;
        if sent < n {
            (sent, bytes, runt) = self.send_rest(&mut packets[..n], start, first, sent, bytes);
        }
        // SAFETY: `sent <= packets.len()`, and packets 0..sent gave their buffers to the ring
        // (their slots hold pool and index). Nothing between the runs above and this can panic.
        unsafe { Self::forget_sent(packets, sent) };
        if sent > 0 {
            self.write_tail(start + sent);
        }
        self.counters.packets += sent as u64;
        self.counters.bytes += bytes;
        if runt {
            self.drop_runt(packets);
        }
        sent
    }

    /// [`TxQueue::tx_batch`] after its first run, which ended at `end` with `sent` packets
    /// (of `bytes`) written from `start` on: pads the packet that cut it short, if any, and
    /// writes the rest of `packets` in more runs. Returns the packets written, their bytes, and
    /// whether the packet at `sent` is a runt that cannot be padded.
    #[inline(never)]
    fn send_rest(
        &mut self,
        packets: &mut [Packet<'a>],
        start: usize,
        mut end: usize,
        mut sent: usize,
        mut bytes: u64,
    ) -> (usize, u64, bool) {
        let ring_len = self.ring.mask() + 1;
        loop {
            if sent < end && pad(&mut packets[sent]).is_none() {
                return (sent, bytes, true);
            }
            if sent >= packets.len() {
                return (sent, bytes, false);
            }
            let pos = (start + sent) & self.ring.mask();
            end = packets
                .len()
                .min(sent + ring_len - pos)
                .min(sent + RS_EVERY);
            let (k, b) = self.send_run(pos, &mut packets[sent..end]);
            sent += k;
            bytes += b;
        }
    }

    /// Writes one descriptor per packet of `packets` into the ring from position `pos` on (no
    /// wrap-around: `pos + packets.len()` is at most the ring's length), stopping before the
    /// first packet shorter than [`MIN_PAYLEN`], RS on the last; returns how many were written
    /// and their bytes. Out of line and without calls, so that its loop keeps everything in
    /// registers (inlined into the caller's loop, it reloaded its pointers from the stack).
    #[inline(never)]
    fn send_run(&mut self, pos: usize, packets: &mut [Packet<'a>]) -> (usize, u64) {
        let run: DescRun<'_, u32> = self.ring.run(pos, packets.len());
        // SAFETY: `&mut self`: nothing else reads or writes the owners array while the slice
        // lives (cleaning needs `&mut self` too).
        let owners = unsafe { self.owners.slice_mut(pos, run.len()) };
        let n = packets.len().min(run.len()).min(owners.len());
        let (packets, owners) = (&packets[..n], &mut owners[..n]);
        let mut bytes = 0u64;
        let mut k = 0;
        // Two at a time while both are long enough: one loop test per two packets. Indices,
        // not chunks: with `k + 1 < n` the compiler sees every access in bounds.
        while k + 1 < n {
            if packets[k].len() < MIN_PAYLEN as usize || packets[k + 1].len() < MIN_PAYLEN as usize
            {
                break;
            }
            for j in k..k + 2 {
                let (pool, index, len) = packets[j].raw_parts();
                run.write(j, pool.phys(index), tx_word1_without_rs(len));
                run.set_side(j, index);
                owners[j] = pool;
                bytes += u64::from(len);
            }
            k += 2;
        }
        while k < n {
            let (pool, index, len) = packets[k].raw_parts();
            if len < MIN_PAYLEN {
                break;
            }
            run.write(k, pool.phys(index), tx_word1_without_rs(len));
            run.set_side(k, index);
            owners[k] = pool;
            bytes += u64::from(len);
            k += 1;
        }
        if let Some(last) = k.checked_sub(1) {
            // The descriptor is ours until the tail write: RS into it, and into its slot.
            run.or_word1(last, TX_RS);
            run.set_side(last, run.side(last) | RS);
        }
        (k, bytes)
    }

    /// Hands the descriptors up to `t` (free-running) to the device: one tail write, after a
    /// release fence so the descriptors are visible first.
    #[inline(always)]
    fn write_tail(&mut self, t: usize) {
        let t = t & self.ring.mask();
        self.tail = t as u16;
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
        self.regs.write(regs::tdt(u32::from(self.id)), t as u32);
    }

    /// Removes the first `n` packets of `packets` without dropping them.
    ///
    /// # Safety
    /// `n <= packets.len()`, and the ring's slots own the first `n` packets' buffers.
    #[inline(always)]
    unsafe fn forget_sent<const N: usize>(packets: &mut heapless::Vec<Packet<'a>, N>, n: usize) {
        let rest = packets.len() - n;
        let p = packets.as_mut_ptr();
        // SAFETY: packets 0..n gave their buffers to the ring, so they are forgotten, not
        // dropped; packets n..len move down to 0..rest (`copy` allows overlap) and the length
        // becomes `rest`, so exactly the initialised, still-owned packets remain, each once.
        unsafe {
            if rest > 0 {
                core::ptr::copy(p.add(n), p, rest);
            }
            packets.set_len(rest);
        }
    }

    /// Drops the packet at the front of `packets`, too short to send, returning its buffer.
    #[cold]
    fn drop_runt<const N: usize>(&mut self, packets: &mut heapless::Vec<Packet<'a>, N>) {
        if !packets.is_empty() {
            drop(packets.remove(0));
            crate::wait::count_anomaly(
                &mut self.counters.runts,
                format_args!(
                    "tx queue {}: dropped a packet shorter than {MIN_TX_LEN} bytes",
                    self.id
                ),
            );
        }
    }

    /// Sends one packet with `extra` set in its descriptor's second word (a flag such as
    /// MAC.1588); gives it back when the ring is full or it is too short.
    #[cold]
    pub(crate) fn send_one(
        &mut self,
        mut packet: Packet<'a>,
        extra: u64,
    ) -> Result<(), Packet<'a>> {
        self.clean();
        let ring = self.ring;
        if self.in_flight() >= ring.mask() {
            return Err(packet);
        }
        let (_, _, mut len) = packet.raw_parts();
        if len < MIN_PAYLEN {
            match pad(&mut packet) {
                Some(padded) => len = padded,
                None => return Err(packet),
            }
        }
        let (pool, index, _) = packet.raw_parts();
        let t = usize::from(self.tail);
        ring.write(t, pool.phys(index), tx_word1(len) | extra);
        self.set_slot(t, Slot::new(pool, index, true));
        // The ring's slot owns the buffer now.
        core::mem::forget(packet);
        self.write_tail(t + 1);
        self.counters.packets += 1;
        self.counters.bytes += u64::from(len);
        Ok(())
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
    pub fn counters(&self) -> TxCounters {
        self.counters
    }

    /// Sets the longest chain [`TxQueue::tx_chains`] sends: the configured maximum frame size
    /// (which counts the CRC the MAC appends) plus 4 for a VLAN tag, as on receive.
    pub(crate) fn set_max_frame(&mut self, max_frame_size: u16) {
        self.max_frame = u32::from(max_frame_size);
    }
}

impl<P: Platform> Drop for TxQueue<'_, P> {
    fn drop(&mut self) {
        let Some(region) = self.region.take() else {
            return;
        };
        // Let what is in flight go out (bounded), then disable the queue: TXDCTL.ENABLE reads 0
        // only once the queue is idle (§8.2.3.9.10).
        let platform = self.regs.platform().clone();
        let _ = poll(
            &platform,
            Duration::from_millis(10),
            "Tx ring to drain",
            || {
                self.clean();
                self.in_flight() == 0
            },
        );
        let q = u32::from(self.id);
        self.regs.modify(regs::txdctl(q), TXDCTL::ENABLE::CLEAR);
        let stopped = poll(
            self.regs.platform(),
            Duration::from_millis(10),
            "TXDCTL.ENABLE to clear",
            || !self.regs.is_set(regs::txdctl(q), TXDCTL::ENABLE),
        )
        .is_ok();
        if !stopped {
            // The device may still read these buffers and the ring: leak them.
            for k in 0..self.in_flight() {
                let pool = self.owners.get(usize::from(self.clean) + k);
                if !pool.is_null() {
                    // SAFETY: the pool outlives this queue ('a).
                    unsafe { &*pool }.mark_leaked();
                }
            }
            let _leaked = region; // never passed to dma_free
            return;
        }
        let n = self.in_flight();
        let _contexts = self.free_slots(usize::from(self.clean), n);
        self.clean = self.tail;
        // SAFETY: the queue is disabled; nothing uses the ring any more.
        unsafe { self.regs.platform().dma_free(region) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::fake::FakePlatform;
    use crate::mempool::Mempool;

    #[test]
    fn tx_batch_sends_what_fits_and_keeps_the_rest_in_order() {
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 64, 2048).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = TxQueue::setup(&regs, 0, 8).unwrap();
        q.enable().unwrap();
        let mut batch = heapless::Vec::<Packet<'_>, 16>::new();
        assert_eq!(pool.alloc_batch(&mut batch, 10, 0), 10);
        for (k, packet) in batch.iter_mut().enumerate() {
            packet.set_len(60 + k).unwrap();
            packet[0] = k as u8;
        }
        // A ring of 8 takes 7 (one slot stays empty); the other 3 stay, in order, intact.
        assert_eq!(q.tx_batch(&mut batch), 7);
        assert_eq!(batch.len(), 3);
        for (k, packet) in batch.iter().enumerate() {
            assert_eq!(packet.len(), 67 + k);
            assert_eq!(packet[0], 7 + k as u8);
        }
        // RS only on the last descriptor of the call.
        for i in 0..7 {
            let w1 = q.ring.read_word1(i);
            let want = if i == 6 {
                tx_word1
            } else {
                tx_word1_without_rs
            };
            assert_eq!(w1, want(60 + i as u32), "{i}");
        }
        assert_eq!(p.writes().last(), Some(&(regs::tdt(0).offset(), 7)));
        assert_eq!(pool.free_count(), 64 - 10);
        // Nothing is done yet: a full ring sends nothing and keeps everything.
        assert_eq!(q.tx_batch(&mut batch), 0);
        assert_eq!(batch.len(), 3);
        q.play_done(0, 7);
        assert_eq!(q.clean(), 7);
        assert_eq!(pool.free_count(), 64 - 3);
        assert_eq!(q.counters().completed, 7);
        drop(batch);
        assert_eq!(pool.free_count(), 64);
        drop(q);
    }

    #[test]
    fn every_packet_lands_in_its_descriptor_whatever_lengths_a_batch_mixes() {
        // Random batches of random lengths (many needing padding, some runts) at random ring
        // positions: each packet sent, in order, has its buffer, length and pool in its
        // descriptor and slot; runts are dropped and counted; nothing is lost.
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 512, 2048).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = TxQueue::setup(&regs, 0, 64).unwrap();
        q.enable().unwrap();
        let mut state = 0xC0FFEE_u64;
        let mut rng = move || {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let cases = if cfg!(miri) { 150 } else { 3000 };
        let (mut sent_total, mut runts) = (0, 0);
        for case in 0..cases {
            let mut batch = heapless::Vec::<Packet<'_>, 40>::new();
            let n = (rng() % 41) as usize;
            assert_eq!(pool.alloc_batch(&mut batch, n, 60), n);
            let short_one_in = [2, 5, 40, 1000][case % 4];
            for packet in batch.iter_mut() {
                let r = rng();
                let len = if r % short_one_in == 0 {
                    (r >> 8) % 18
                } else {
                    17 + (r >> 8) % 1500
                };
                packet.set_len(len as usize).unwrap();
            }
            let lens: heapless::Vec<u32, 40> = batch.iter().map(|p| p.len() as u32).collect();
            let ids: heapless::Vec<u32, 40> = batch.iter().map(|p| p.raw_parts().1).collect();
            let start = usize::from(q.tail);
            let before = q.counters();
            let sent = q.tx_batch(&mut batch);
            let dropped = (q.counters().runts - before.runts) as usize;
            // What was sent is a prefix, a runt after it is dropped, the rest stays in order.
            assert!(
                dropped <= 1 && sent + dropped + batch.len() == n,
                "case {case}"
            );
            for k in 0..sent {
                let i = (start + k) & q.ring.mask();
                let w1 = q.ring.read_word1(i);
                assert!(lens[k] >= MIN_TX_LEN, "case {case}: a runt was sent");
                let want = lens[k].max(MIN_PAYLEN);
                assert_eq!(w1 & !TX_RS, tx_word1_without_rs(want), "case {case}, {k}");
                assert_eq!(q.ring.side(i) & !RS, ids[k], "case {case}, {k}");
                assert!(
                    core::ptr::eq(q.owners.get(i), pool.core()),
                    "case {case}, {k}"
                );
                // RS on the call's last descriptor, and wherever the slot says so.
                assert_eq!(w1 & TX_RS != 0, has_rs(q.ring.side(i)), "case {case}, {k}");
            }
            if sent > 0 {
                let last = (start + sent - 1) & q.ring.mask();
                assert!(has_rs(q.ring.side(last)), "case {case}");
            }
            if dropped == 1 {
                assert!(lens[sent] < MIN_TX_LEN, "case {case}");
            }
            for (k, packet) in batch.iter().enumerate() {
                assert_eq!(packet.raw_parts().1, ids[sent + dropped + k], "case {case}");
            }
            sent_total += sent;
            runts += dropped;
            drop(batch);
            q.play_done(0, 64);
            q.clean();
        }
        assert!(
            sent_total > cases * 7 && runts > cases / 30,
            "{sent_total} {runts}"
        );
        assert_eq!(pool.free_count() + q.in_flight(), 512);
    }

    #[test]
    fn a_queue_cleans_in_steps_of_half_its_ring_and_at_most_128() {
        assert_eq!(
            [8, 64, 128, 512, 1024, 4096].map(clean_step),
            [4, 32, 64, 128, 128, 128]
        );
    }

    #[test]
    fn rs_goes_on_every_32nd_descriptor_and_the_last_of_a_call() {
        let p = FakePlatform::default();
        let pool = Mempool::new(&p, 256, 2048).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = TxQueue::setup(&regs, 0, 128).unwrap();
        q.enable().unwrap();
        let rs_at = |q: &TxQueue<'_, FakePlatform>, range: core::ops::Range<usize>| {
            range
                .filter(|&i| q.ring.read_word1(i) & TX_RS != 0)
                .collect::<heapless::Vec<usize, 16>>()
        };
        let mut batch = heapless::Vec::<Packet<'_>, 100>::new();
        assert_eq!(pool.alloc_batch(&mut batch, 100, 60), 100);
        assert_eq!(q.tx_batch(&mut batch), 100);
        assert_eq!(&rs_at(&q, 0..100)[..], &[31, 63, 95, 99]);
        // Across the ring's end (100..128, 0..12): RS at the ring's end too, and on the last.
        q.play_done(0, 128);
        assert_eq!(pool.alloc_batch(&mut batch, 40, 60), 40);
        assert_eq!(q.tx_batch(&mut batch), 40);
        assert_eq!(&rs_at(&q, 100..128)[..], &[127]);
        assert_eq!(&rs_at(&q, 0..12)[..], &[11]);
        // Traffic stops: an empty call frees everything once the device is done, although
        // most descriptors had no RS.
        q.play_done(0, 128);
        assert_eq!(q.tx_batch(&mut batch), 0);
        assert_eq!((q.in_flight(), pool.free_count()), (0, 256));
    }

    #[test]
    fn cleaning_returns_each_buffer_to_its_own_pool() {
        let p = FakePlatform::default();
        let a = Mempool::new(&p, 128, 2048).unwrap();
        let b = Mempool::new(&p, 128, 2048).unwrap();
        let regs = Regs::new(p.clone());
        let mut q = TxQueue::setup(&regs, 0, 128).unwrap();
        q.enable().unwrap();
        let mut sent = 0;
        // Runs of one pool, alternating, across the ring's wrap-around (128 descriptors).
        for round in 0..24 {
            let mut batch = heapless::Vec::<Packet<'_>, 8>::new();
            for k in 0..7 {
                let pool = if (round + k) % 3 == 0 { &b } else { &a };
                let mut packet = pool.alloc().unwrap();
                packet.set_len(60).unwrap();
                batch.push(packet).unwrap();
            }
            assert_eq!(q.tx_batch(&mut batch), 7);
            sent += 7;
            // Whole steps are cleaned while sending: never more than a step + 7 in flight.
            assert!(q.in_flight() < q.clean_every + 7, "{}", q.in_flight());
            assert_eq!(a.free_count() + b.free_count() + q.in_flight(), 256);
            // Mark everything in flight done (all 128 descriptors: DD on free ones is ignored).
            q.play_done(0, 128);
        }
        // An empty call cleans everything finished.
        let in_flight = q.in_flight();
        assert!(in_flight > 0);
        assert_eq!(q.tx_batch(&mut heapless::Vec::<Packet<'_>, 1>::new()), 0);
        assert_eq!(q.in_flight(), 0);
        assert_eq!((a.free_count(), b.free_count()), (128, 128));
        assert_eq!(q.counters().packets, sent);
        assert_eq!(q.counters().completed, sent);
    }
}
