//! Receive queues: an advanced-descriptor ring, the buffers it holds, and batched receive
//! (datasheet §4.6.7 for setup, §7.1 for the receive path).

use core::ptr::NonNull;
use core::time::Duration;

use crate::descriptors::{decode_rx, DescRing, RxWriteback, DESC_SIZE};
use crate::error::Error;
use crate::init::poll;
use crate::mempool::{Packet, PoolCore};
use crate::platform::{DmaRegion, Platform};
use crate::regs::{self, Regs, RXDCTL};

/// Most frames `rx_batch` refills per pool lock; larger batches take the lock again.
const REFILL_CHUNK: usize = 64;

/// What one receive queue has seen, counted by the driver (the device's own counters are in
/// [`crate::Stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RxCounters {
    /// Frames handed to the program.
    pub packets: u64,
    /// Bytes handed to the program (without CRC).
    pub bytes: u64,
    /// Write-backs with DD but without EOP (multi-descriptor frames are not supported): dropped.
    pub no_eop: u64,
    /// Write-backs flagging a MAC error: dropped.
    pub errors: u64,
    /// Write-backs with a length of zero or beyond the buffer: dropped.
    pub bad_length: u64,
    /// Times a frame had to wait because the pool had no buffer to refill its descriptor.
    pub pool_empty: u64,
}

/// One receive queue. Owns its ring; borrows the pool its buffers come from.
pub struct RxQueue<'a, P: Platform> {
    regs: Regs<P>,
    id: u16,
    ring: DescRing,
    /// Buffer index held by each descriptor (CPU-only memory after the descriptors).
    bufs: NonNull<u32>,
    pool: &'a PoolCore,
    /// Next descriptor the driver looks at.
    next: u16,
    counters: RxCounters,
    region: Option<DmaRegion>,
}

// SAFETY: the queue exclusively owns its ring memory and the buffers in it; the pool is Sync and
// the platform handle is Send + Sync by the Platform contract.
unsafe impl<P: Platform> Send for RxQueue<'_, P> {}

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
        let region = regs.platform().dma_alloc(n * DESC_SIZE + n * 4)?;
        let base = region.virt();
        let phys = regs
            .platform()
            .virt_to_phys(base.as_ptr())
            .ok_or(Error::Translation {
                what: "an Rx descriptor ring",
            })?;
        // SAFETY: the region holds n descriptors (4096-byte aligned) followed by n u32s; it is
        // owned by this queue until drop.
        let ring = unsafe { DescRing::new(base, len) };
        // SAFETY: offset n * 16 is inside the region and 4-byte aligned.
        let bufs = unsafe { base.add(n * DESC_SIZE).cast::<u32>() };
        let mut q = RxQueue {
            regs: regs.clone(),
            id,
            ring,
            bufs,
            pool,
            next: 0,
            counters: RxCounters::default(),
            region: Some(region),
        };
        // Every descriptor gets a buffer now (step 5), so the device never sees an empty one.
        let mut indices = [0u32; REFILL_CHUNK];
        let mut filled = 0;
        while filled < n {
            let want = (n - filled).min(REFILL_CHUNK);
            let got = pool.alloc_indices(&mut indices[..want]);
            for &index in &indices[..got] {
                q.arm(filled as u16, index);
                filled += 1;
            }
            if got < want {
                q.release_buffers(filled as u16);
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
        self.regs.write(regs::rdt(q), u32::from(self.ring.mask()));
        Ok(())
    }

    /// Puts buffer `index` into descriptor `i` in read format (buffer address, header address 0,
    /// which also clears DD).
    #[inline(always)]
    fn arm(&mut self, i: u16, index: u32) {
        self.ring.write(i, self.pool.phys(index), 0);
        self.set_buf(i, index);
    }

    #[inline(always)]
    fn buf(&self, i: u16) -> u32 {
        // SAFETY: `i & mask` < ring length, the length of the bufs array.
        unsafe {
            self.bufs
                .as_ptr()
                .add(usize::from(i & self.ring.mask()))
                .read()
        }
    }

    #[inline(always)]
    fn set_buf(&mut self, i: u16, index: u32) {
        // SAFETY: as in `buf`.
        unsafe {
            self.bufs
                .as_ptr()
                .add(usize::from(i & self.ring.mask()))
                .write(index)
        }
    }

    /// Receives up to `max` frames into `out` (stopping early when `out` is full); returns how
    /// many were added.
    ///
    /// Write-backs the driver cannot trust (no EOP, an error bit, a bad length) are counted and
    /// their buffer goes straight back to the device. The tail register is written once per
    /// call, after a release fence.
    #[inline]
    pub fn rx_batch<const N: usize>(
        &mut self,
        out: &mut heapless::Vec<Packet<'a>, N>,
        max: usize,
    ) -> usize {
        let want = max.min(N - out.len());
        let buf_size = self.pool.buf_size();
        let mut received = 0;
        let mut i = self.next;
        let mut fresh = [0u32; REFILL_CHUNK];
        while received < want {
            // Refill buffers are taken from the pool in chunks: one lock per chunk.
            let chunk = (want - received).min(REFILL_CHUNK);
            let mut got = 0;
            let mut used = 0;
            let mut taken = false;
            while used < chunk {
                let word1 = self.ring.read_word1(i);
                let frame_len = match decode_rx(word1, buf_size) {
                    RxWriteback::NotDone => break,
                    RxWriteback::Frame(len) => len,
                    bad => {
                        self.count_bad(bad);
                        // Recycle: same buffer, read format again.
                        let index = self.buf(i);
                        self.arm(i, index);
                        i = i.wrapping_add(1) & self.ring.mask();
                        continue;
                    }
                };
                if !taken {
                    got = self.pool.alloc_indices(&mut fresh[..chunk]);
                    taken = true;
                }
                if used == got {
                    self.counters.pool_empty += 1;
                    break;
                }
                let index = self.buf(i);
                let packet = Packet::from_raw(self.pool, index, u32::from(frame_len));
                // `used < chunk <= want <= N - out.len()` at entry, so there is room.
                let _ = out.push(packet);
                self.counters.bytes += u64::from(frame_len);
                self.arm(i, fresh[used]);
                used += 1;
                i = i.wrapping_add(1) & self.ring.mask();
            }
            if used < got {
                self.pool.free_indices(&fresh[used..got]);
            }
            received += used;
            if used < chunk {
                break;
            }
        }
        if i != self.next {
            self.next = i;
            // Tail = one past the last descriptor handed back = the descriptor just before
            // `next`: the device owns [RDH, RDT), so it stops one short of what we still read.
            core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
            let tail = i.wrapping_sub(1) & self.ring.mask();
            self.regs
                .write(regs::rdt(u32::from(self.id)), u32::from(tail));
        }
        self.counters.packets += received as u64;
        received
    }

    #[cold]
    fn count_bad(&mut self, what: RxWriteback) {
        match what {
            RxWriteback::NoEop => self.counters.no_eop += 1,
            RxWriteback::Error => self.counters.errors += 1,
            _ => self.counters.bad_length += 1,
        }
    }

    /// This queue's number.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// Ring size in descriptors.
    pub fn ring_size(&self) -> usize {
        usize::from(self.ring.mask()) + 1
    }

    /// What the driver counted on this queue.
    pub fn counters(&self) -> RxCounters {
        self.counters
    }

    /// Gives the first `n` descriptors' buffers back to the pool.
    fn release_buffers(&mut self, n: u16) {
        for i in 0..n {
            let index = self.buf(i);
            self.pool.free_indices(&[index]);
        }
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
