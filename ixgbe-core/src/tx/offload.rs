//! Transmit with checksum and VLAN offloads (datasheet §7.2.3.2.3 context descriptors,
//! §7.2.3.2.4 data descriptors with IXSM, TXSM, IDX and VLE); the requests are `TxOffload`s
//! (`crate::offload`).

use super::{pad, Slot, TxQueue, MIN_PAYLEN};
use crate::descriptors::{tx_context, tx_word1, tx_word1_offload};
use crate::mempool::Packet;
use crate::offload::{L4Checksum, TxOffload};
use crate::platform::Platform;

/// Why [`TxQueue::tx_batch_offload`] stopped at a packet it drops.
enum Rejected {
    Runt,
    Offload(&'static str),
}

impl<'a, P: Platform> TxQueue<'a, P> {
    /// [`TxQueue::tx_batch`] with offloads: `offload` says for each packet what the device
    /// should fill in or insert ([`TxOffload`]: IPv4 header, TCP and UDP checksums, an 802.1Q
    /// tag). A context descriptor (§7.2.3.2.3) goes before a packet only when its offloads
    /// differ from both contexts the queue holds, so a batch of same-shaped packets costs one
    /// context descriptor, not one per packet ([`TxCounters::contexts`]). The driver writes the
    /// pseudo-header sum into the L4 checksum field. A packet the request does not describe is
    /// dropped and counted ([`TxCounters::offload_invalid`]), like a runt.
    ///
    /// ```
    /// # use ixgbe_core::{Config, Device, Mempool, Packet, DEFAULT_BUF_SIZE};
    /// use ixgbe_core::offload::TxOffload;
    /// # let sim = platform_mock::Sim::new();
    /// # let nic = sim.add_nic(platform_mock::NicConfig::default());
    /// # let pools = [Mempool::new(&sim.platform(nic), 1024, DEFAULT_BUF_SIZE).unwrap()];
    /// # let mut started = Device::init(sim.platform(nic), &Config::default(), &pools).unwrap();
    /// # started.device.wait_for_link(core::time::Duration::from_secs(1)).unwrap();
    /// let mut batch = ixgbe_core::heapless::Vec::<Packet, 32>::new();
    /// pools[0].alloc_batch(&mut batch, 4, 60);
    /// for p in batch.iter_mut() {
    ///     p.fill(0);
    ///     p[12..16].copy_from_slice(&[0x08, 0x00, 0x45, 0x00]); // IPv4, 20-byte header
    ///     p[16..18].copy_from_slice(&46u16.to_be_bytes()); // total length
    ///     p[23] = 17; // UDP
    ///     p[38..40].copy_from_slice(&26u16.to_be_bytes()); // UDP length
    /// }
    /// let tx = &mut started.tx[0];
    /// assert_eq!(tx.tx_batch_offload(&mut batch, |p| TxOffload::for_frame(p).unwrap()), 4);
    /// assert_eq!(tx.counters().contexts, 1); // one context for four packets
    /// sim.advance(core::time::Duration::from_micros(10));
    /// assert_ne!(sim.take_transmitted(nic)[0][24..26], [0, 0]); // the header checksum
    /// ```
    pub fn tx_batch_offload<const N: usize>(
        &mut self,
        packets: &mut heapless::Vec<Packet<'a>, N>,
        mut offload: impl FnMut(&Packet<'a>) -> TxOffload,
    ) -> usize {
        let ring = self.ring;
        let in_flight = self.in_flight();
        if in_flight >= self.clean_every
            || 2 * packets.len() > ring.mask() - in_flight
            || packets.is_empty()
        {
            self.clean();
        }
        let mut free = ring.mask() - self.in_flight();
        let start = usize::from(self.tail);
        let mut t = start;
        let mut sent = 0;
        let mut bytes = 0u64;
        let mut rejected = None;
        for packet in packets.iter_mut() {
            let want = offload(packet);
            let (pool, index, mut len) = packet.raw_parts();
            if len < MIN_PAYLEN {
                match pad(packet) {
                    Some(padded) => len = padded,
                    None => {
                        rejected = Some(Rejected::Runt);
                        break;
                    }
                }
            }
            let mut word1 = tx_word1(len);
            if !want.is_none() {
                let key = match want.context(packet) {
                    Ok(key) => key,
                    Err(why) => {
                        rejected = Some(Rejected::Offload(why));
                        break;
                    }
                };
                let cached = self.contexts.iter().position(|c| *c == Some(key));
                if free < 1 + usize::from(cached.is_none()) {
                    break;
                }
                if let Err(why) = want.prepare(packet) {
                    rejected = Some(Rejected::Offload(why));
                    break;
                }
                let idx = match cached {
                    Some(idx) => idx,
                    None => {
                        let idx = usize::from(self.next_context);
                        let (w0, w1) = tx_context(key.vlan_macip_lens, key.tucmd, idx as u32);
                        ring.write(t, w0, w1);
                        self.set_slot(t, Slot::CONTEXT);
                        t = t.wrapping_add(1);
                        free -= 1;
                        self.contexts[idx] = Some(key);
                        self.next_context ^= 1;
                        self.counters.contexts += 1;
                        idx
                    }
                };
                let ixsm = want.ipv4_checksum;
                let txsm = want.l4 != L4Checksum::None;
                word1 = tx_word1_offload(len, want.vlan.is_some(), ixsm, txsm, idx as u32);
            } else if free == 0 {
                break;
            }
            ring.write(t, pool.phys(index), word1);
            self.set_slot(t, Slot::new(pool, index, true));
            t = t.wrapping_add(1);
            free -= 1;
            sent += 1;
            bytes += u64::from(len);
        }
        // SAFETY: the first `sent` packets gave their buffers to the ring.
        unsafe { Self::forget_sent(packets, sent) };
        if t != start {
            self.write_tail(t);
        }
        self.counters.packets += sent as u64;
        self.counters.bytes += bytes;
        match rejected {
            Some(Rejected::Runt) => self.drop_runt(packets),
            Some(Rejected::Offload(why)) => self.drop_invalid(packets, why),
            None => {}
        }
        sent
    }

    /// Drops the packet at the front of `packets`, whose offload request does not describe it.
    #[cold]
    fn drop_invalid<const N: usize>(
        &mut self,
        packets: &mut heapless::Vec<Packet<'a>, N>,
        why: &str,
    ) {
        if !packets.is_empty() {
            drop(packets.remove(0));
            crate::wait::count_anomaly(
                &mut self.counters.offload_invalid,
                format_args!(
                    "tx queue {}: dropped a packet whose offload request does not fit it: {why}",
                    self.id
                ),
            );
        }
    }
}
