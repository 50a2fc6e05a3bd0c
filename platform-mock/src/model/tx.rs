//! Transmit: descriptor fetch, frame assembly, write-back, statistics and the wire.

use super::nic::st;
use super::*;
use crate::SINK_BURST;

/// The smallest packet the transmit path takes (Linux's `ixgbe_xmit_frame_ring` pads to it).
const TX_MIN_PAYLEN: usize = 17;

/// With WTHRESH = 0 only descriptors with RS are written back, and software must set RS at
/// least once every 40 descriptors (TXDCTL, §8.2.3.9.10): so a packet whose descriptors
/// before the last carry no RS spans at most 40 (DPDK's `IXGBE_TX_MAX_SEG` is 40 too).
const TX_MAX_WITHOUT_RS: usize = 40;

/// RS (Report Status) in a descriptor's command word (bit 27 of bits 63:32).
const TX_CMD_RS: u32 = 1 << 27;

/// Checks a packet's descriptors against the RS rule ([`TX_MAX_WITHOUT_RS`]); `tx_one` calls
/// it only for a packet with that many descriptors in a row without RS.
fn check_rs_spacing(n: &mut Nic, i: usize, q: usize, core: &mut Core, descs: &[TxDesc]) {
    let dctl = n.r(tx_base(q as u32) + Q_DCTL);
    let head_wb = n.r(tx_base(q as u32) + Q_WBAL) & 1 != 0;
    if (dctl >> 16) & 0x7F != 0 || head_wb {
        return; // write-back by threshold or head: the RS rule does not apply
    }
    // Descriptors in a row without RS: 40 of them leave a window of 40 without one.
    let mut run = 0;
    for d in descs {
        if d.cmd & TX_CMD_RS != 0 {
            run = 0;
            continue;
        }
        run += 1;
        if run >= TX_MAX_WITHOUT_RS {
            core.violate(
                i,
                ViolationKind::TxDescriptorFormat,
                format!("TX queue {q}: {TX_MAX_WITHOUT_RS} descriptors in a row without RS (a packet of {} descriptors; RS is needed at least once every 40)", descs.len()),
            );
            return;
        }
    }
}

/// The largest packet the transmit packet buffer is set up for: TXPBSIZE[0] − TXPBTHRESH[0]
/// (software sets the threshold to the buffer's size minus the largest packet, §8.2.3.9.16;
/// with DCB off every queue uses packet buffer 0), in bytes with CRC.
fn tx_max_packet(n: &Nic) -> usize {
    let size_kb = (n.r(TXPBSIZE) >> 10) & 0x3FF;
    let thresh_kb = n.r(TXPBTHRESH) & 0x3FF;
    (size_kb.saturating_sub(thresh_kb) as usize) * 1024
}

/// TX descriptor as fetched.
#[derive(Clone, Copy)]
pub(crate) struct TxDesc {
    pub(crate) addr: u64,
    pub(crate) cmd: u32,
    /// Bits 127:96: STA, IDX, CC, POPTS, PAYLEN of a data descriptor; `mss_l4len_idx` of a
    /// context descriptor.
    pub(crate) sta: u32,
}

pub(crate) enum TxStep {
    Idle,
    Frame,
    Dropped,
}

/// Frames sent by [`tx_run`], back to back: for a sink, the frames of one tail write handed
/// over in bursts of up to [`SINK_BURST`] ([`TrafficSink::receive_burst`]). A sink cannot
/// reach the model (it is called with the simulator locked), so handing a frame over later in
/// the same tail write, at the same virtual time and in the same order, is what handing it
/// over at once would be. Frames for a port (loopback, a cable) go one at a time.
pub(crate) struct TxBurst {
    data: Vec<u8>,
    lens: [usize; SINK_BURST],
    frames: usize,
}

/// A burst is handed over once it holds this many bytes (or [`SINK_BURST`] frames); its
/// buffer has room for one more frame of the fast path's largest (16 KiB and padding).
const TX_BURST_BYTES: usize = 64 * 1024;

impl Default for TxBurst {
    fn default() -> Self {
        TxBurst {
            data: Vec::with_capacity(TX_BURST_BYTES + 16 * 1024 + 64),
            lens: [0; SINK_BURST],
            frames: 0,
        }
    }
}

impl TxBurst {
    /// Hands the frames kept to `sink`; the burst is empty after.
    fn flush(&mut self, sink: &mut dyn TrafficSink, now: Duration) {
        if self.frames > 0 {
            sink.receive_burst(now, &self.data, &self.lens[..self.frames]);
        }
        self.clear();
    }

    fn clear(&mut self) {
        self.data.clear();
        self.frames = 0;
    }
}

/// Why [`tx_run`] stopped.
enum RunEnd {
    /// The queue is empty (head = tail).
    Empty,
    /// The rate scheduler holds the queue back.
    Held,
    /// `max` frames sent (the queue may hold more).
    Full,
    /// The next packet is not the usual one: for `tx_one` (the rate scheduler let it go).
    Declined,
}

/// Statistics of the packets [`tx_run`] sent, added to the accumulators once per run: the
/// sums of what [`tx_finish`] adds per packet.
#[derive(Default)]
struct TxTally {
    packets: u64,
    /// Bytes with CRC.
    bytes: u64,
    /// Packets of fewer than 64 bytes with CRC, and their bytes.
    short: u64,
    short_bytes: u64,
    buckets: [u64; 6],
    broadcast: u64,
    multicast: u64,
}

impl TxTally {
    #[inline(always)]
    fn add_to(&self, n: &mut Nic, slot: usize) {
        let (good, good_bytes) = (self.packets - self.short, self.bytes - self.short_bytes);
        n.acc_packets += self.packets;
        n.acc[st::TX_GOOD] += good;
        n.acc[st::TX_GOOD_BYTES] += good_bytes;
        n.acc[st::TPT] += self.short;
        n.acc[st::TXDGPC] += self.short;
        n.acc[st::TXDGBCL] += self.short_bytes;
        for (k, &b) in self.buckets.iter().enumerate() {
            n.acc[st::PTC64 + k] += b;
        }
        n.acc[st::BPTC] += self.broadcast;
        n.acc[st::MPTC] += self.multicast;
        n.acc[st::QPTC + slot] += self.packets;
        n.acc[st::QBTC + slot] += self.bytes;
        n.wire.tx_frames += self.packets;
        n.wire.tx_bytes += self.bytes - 4 * self.packets;
    }
}

impl World {
    #[inline(never)]
    pub fn tx_process(&mut self, i: usize, q: usize) {
        let setup = TxSetup::new(&self.nics[i], q);
        #[cfg(test)]
        let setup = setup.filter(|_| !self.no_tx_fast);
        let World {
            nics,
            core,
            tx_scratch,
            tx_descs,
            tx_burst,
            cables,
            sinks,
            ..
        } = self;
        // Where frames go: nothing a sent frame does writes HLREG0 or moves a cable.
        let loopback = nics[i].r(HLREG0) & HLREG0_LPBK != 0;
        let cable = cables[i];
        // A sink gets the frames in bursts ([`TxBurst`]); a frame for a port (loopback or a
        // cable) is received as it is sent, before the next packet's fetch.
        let mut sink = match (loopback, cable) {
            (false, None) => sinks[i].as_deref_mut(),
            _ => None,
        };
        debug_assert!(tx_burst.frames == 0 && tx_burst.data.is_empty());
        loop {
            // This port, found once per packet (the frame may go to another one below).
            let n = &mut nics[i];
            // The usual packets through `tx_run`, anything else (or what it declines) through
            // `tx_one`.
            let mut may_send = false;
            if let Some(s) = &setup {
                let end = match sink.as_deref_mut() {
                    Some(sink) => tx_run(n, i, q, core, tx_burst, s, Some(sink), usize::MAX),
                    None => tx_run(n, i, q, core, tx_burst, s, None, 1),
                };
                if sink.is_none() && tx_burst.frames > 0 {
                    let frame = &tx_burst.data[..];
                    deliver(nics, i, cable, loopback, core, frame);
                    tx_burst.clear();
                }
                match end {
                    RunEnd::Empty | RunEnd::Held => break,
                    RunEnd::Full => continue,
                    RunEnd::Declined => may_send = true,
                }
            }
            let n = &mut nics[i];
            if !may_send && !n.rate.may_send(q, core.now) {
                break;
            }
            // The burst so far goes first.
            if let Some(s) = sink.as_deref_mut() {
                tx_burst.flush(s, core.now);
            }
            match tx_one(n, i, q, core, tx_scratch, tx_descs) {
                TxStep::Idle => break,
                TxStep::Dropped => continue,
                TxStep::Frame => {}
            }
            // The first data descriptor's command (its TSTAMP, §7.9.2).
            let data_cmd = tx_descs
                .iter()
                .find(|d| (d.cmd >> 20) & 0xF == 0b0011)
                .map(|d| d.cmd);
            let frame = &tx_scratch[..];
            n.rate.sent(q, frame.len());
            if let Some(cmd) = data_cmd {
                super::timesync::tx_frame(n, core.now, cmd);
            }
            match sink.as_deref_mut() {
                Some(s) => s.receive(core.now, frame),
                None => deliver(nics, i, cable, loopback, core, frame),
            }
        }
        if let Some(s) = sink {
            tx_burst.flush(s, core.now);
        }
        let n = &mut self.nics[i];
        if bit_get(&n.faults.spurious_tx, q) && n.tx[q].en {
            let len = n.ring_len(true, q);
            if len > 0 {
                let base = n.ring_base(true, q);
                let t = n.tx[q].tail;
                for k in 0..2.min(len) {
                    let idx = (t + k) % len;
                    if idx == n.tx[q].head && k > 0 {
                        break;
                    }
                    let _ = self.core.dma.write_u32(base + 16 * u64::from(idx) + 12, 1);
                }
            }
        }
    }
}

/// Fetches and sends one packet from TX queue `q`; the frame is left in `scratch`.
#[inline(never)]
pub(crate) fn tx_one(
    n: &mut Nic,
    i: usize,
    q: usize,
    core: &mut Core,
    scratch: &mut Vec<u8>,
    descs: &mut Vec<TxDesc>,
) -> TxStep {
    let qs = n.tx[q];
    if !qs.en
        || qs.head == qs.tail
        || n.r(DMATXCTL) & DMATXCTL_TE == 0
        || !n.link_is_up()
        || n.dma_blocked()
        || bit_get(&n.faults.stall_tx, q)
    {
        return TxStep::Idle;
    }
    let len = n.ring_len(true, q);
    if len == 0 || qs.head >= len {
        return TxStep::Idle;
    }
    let base = n.ring_base(true, q);
    descs.clear();
    let mut idx = qs.head;
    let mut eop = false;
    // Descriptors in a row without RS (the longest run, for the RS rule) and whether any has it.
    let (mut run, mut longest_run, mut any_rs) = (0, 0, false);
    while idx != qs.tail {
        let a = base + 16 * u64::from(idx);
        let (addr, hi) = match core.dma.read_desc(a) {
            Ok(d) => d,
            Err(f) => {
                core.dma_fault(i, &format!("TX queue {q} descriptor fetch"), f);
                return TxStep::Idle;
            }
        };
        let cmd = hi as u32;
        if cmd & TX_CMD_RS != 0 {
            any_rs = true;
            run = 0;
        } else {
            run += 1;
            longest_run = longest_run.max(run);
        }
        descs.push(TxDesc {
            addr,
            cmd,
            sta: (hi >> 32) as u32,
        });
        idx = (idx + 1) % len;
        if cmd & (1 << 24) != 0 {
            eop = true;
            break;
        }
    }
    if !eop {
        return TxStep::Idle;
    }
    if longest_run >= TX_MAX_WITHOUT_RS {
        check_rs_spacing(n, i, q, core, descs);
    }
    scratch.clear();
    let mut bad = false;
    // DCMD, POPTS and IDX of the packet's first data descriptor (§7.2.3.2.4).
    let mut offload: Option<(u32, u32)> = None;
    for d in descs.iter() {
        let dtyp = (d.cmd >> 20) & 0xF;
        let dext = d.cmd & (1 << 29) != 0;
        if dtyp == 0b0010 && dext {
            // A context descriptor: remembered for the data descriptors that name it.
            let (idx, ctx) =
                offload::TxContext::decode(d.addr, u64::from(d.cmd) | u64::from(d.sta) << 32);
            if idx < 2 {
                n.tx[q].ctx[idx] = ctx;
            } else {
                core.violate(
                    i,
                    ViolationKind::InvalidConfig,
                    format!(
                        "TX queue {q}: context descriptor IDX {idx} (a queue has contexts 0 and 1)"
                    ),
                );
            }
            continue;
        }
        if dtyp != 0b0011 || !dext {
            core.violate(
                i,
                ViolationKind::TxDescriptorFormat,
                format!("TX queue {q}: descriptor with DTYP {dtyp:#b}, DEXT {dext} (only advanced data and context descriptors are supported)"),
            );
            bad = true;
            continue;
        }
        offload.get_or_insert((d.cmd, d.sta));
        let dlen = (d.cmd & 0xFFFF) as usize;
        if dlen == 0 || dlen > 16 * 1024 {
            core.violate(
                i,
                ViolationKind::TxDataLength,
                format!("TX queue {q}: data length {dlen} (must be 1..=16384)"),
            );
            bad = true;
            continue;
        }
        if !bad {
            if let Err(f) = core.dma.read_append(d.addr, dlen, scratch) {
                core.dma_fault(i, &format!("TX queue {q} buffer read"), f);
                bad = true;
            }
        }
    }
    if !bad && scratch.len() < TX_MIN_PAYLEN {
        // Linux's ixgbe: "the minimum packet size for olinfo paylen is 17", it pads shorter
        // frames; what the MAC does with less is not specified, so the model drops it.
        core.violate(
            i,
            ViolationKind::TxDataLength,
            format!(
                "TX queue {q}: packet of {} bytes (the 82599 needs at least {TX_MIN_PAYLEN})",
                scratch.len()
            ),
        );
        bad = true;
    }
    // Write-back and head update.
    let dctl = n.r(tx_base(q as u32) + Q_DCTL);
    let wthresh = (dctl >> 16) & 0x7F;
    let wbal = n.r(tx_base(q as u32) + Q_WBAL);
    let head_wb = wbal & 1 != 0;
    for (k, d) in descs.iter().enumerate() {
        let rs = d.cmd & TX_CMD_RS != 0;
        if !head_wb && (rs || wthresh > 0) {
            let di = (qs.head + k as u32) % len;
            if let Err(f) = core.dma.write_u32(base + 16 * u64::from(di) + 12, 1) {
                core.dma_fault(i, &format!("TX queue {q} write-back"), f);
            }
        }
    }
    n.tx[q].head = idx;
    // A descriptor (RS) or head write-back is the queue's interrupt cause (§7.2.3.5, §7.3.4).
    if head_wb || wthresh > 0 || any_rs {
        n.queue_cause(true, q);
    }
    if head_wb {
        let wb = u64::from(n.r(tx_base(q as u32) + Q_WBAH)) << 32 | u64::from(wbal & !3);
        if let Err(f) = core.dma.write_u32(wb, idx) {
            core.dma_fault(i, &format!("TX queue {q} head write-back"), f);
        }
    }
    if bad {
        n.wire.tx_bad += 1;
        return TxStep::Dropped;
    }
    if let Some((cmd, sta)) = offload {
        let (ixsm, txsm) = (sta & (1 << 8) != 0, sta & (1 << 9) != 0);
        let vle = cmd & (1 << 30) != 0;
        let idx = ((sta >> 4) & 7) as usize;
        let ctx = if ixsm || txsm || vle {
            n.tx[q].ctx.get(idx).copied().unwrap_or_default()
        } else {
            Default::default()
        };
        if ixsm || txsm {
            if let Err(why) = offload::insert_checksums(scratch, &ctx, ixsm, txsm) {
                core.violate(
                    i,
                    ViolationKind::InvalidConfig,
                    format!("TX queue {q}: checksum offload: {why}"),
                );
            }
        }
        if vle {
            let vt = (n.r(DMATXCTL) >> 16) as u16;
            if let Err(why) = offload::insert_vlan(scratch, &ctx, vt) {
                core.violate(
                    i,
                    ViolationKind::InvalidConfig,
                    format!("TX queue {q}: VLAN insertion: {why}"),
                );
            }
        }
    }
    let (pad, slot) = tx_pad_and_slot(n, q);
    tx_finish(n, i, q, core, scratch, tx_max_packet(n), pad, slot);
    TxStep::Frame
}

/// HLREG0.TXPADEN and queue `q`'s statistics slot (TQSM).
fn tx_pad_and_slot(n: &Nic, q: usize) -> (bool, usize) {
    (
        n.r(HLREG0) & HLREG0_TXPADEN != 0,
        n.stat_slot(TQSM, q) as usize,
    )
}

/// The end of sending a packet: the packet-buffer size check, padding (`pad`: TXPADEN),
/// statistics (`slot`: the queue's, [`tx_pad_and_slot`]).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tx_finish(
    n: &mut Nic,
    i: usize,
    q: usize,
    core: &mut Core,
    scratch: &mut Vec<u8>,
    max: usize,
    pad: bool,
    slot: usize,
) {
    if scratch.len() + 4 > max {
        too_long(n, i, q, core, scratch.len(), max);
    }
    if pad && scratch.len() < 60 {
        scratch.resize(60, 0);
    }
    let flen = scratch.len();
    let wlen = flen as u32 + 4;
    // Statistics into the accumulators (`nic::st`), folded before software reads them.
    let w = u64::from(wlen);
    n.acc_packets += 1;
    if wlen >= 64 {
        // GPTC, TPT, TXDGPC; GOTCL, TXDGBCL at once (`st::COMBINED`).
        n.acc[st::TX_GOOD] += 1;
        n.acc[st::TX_GOOD_BYTES] += w;
    } else {
        n.acc[st::TPT] += 1;
        n.acc[st::TXDGPC] += 1;
        n.acc[st::TXDGBCL] += w;
    }
    n.acc[st::PTC64 + size_bucket(wlen) as usize] += 1;
    // A broadcast address is a multicast one too (bit 0 of its first byte).
    if flen >= 6 && scratch[0] & 1 != 0 {
        if scratch[..6] == [0xFF; 6] {
            n.acc[st::BPTC] += 1;
        } else {
            n.acc[st::MPTC] += 1;
        }
    }
    n.acc[st::QPTC + slot] += 1;
    n.acc[st::QBTC + slot] += w;
    n.wire.tx_frames += 1;
    n.wire.tx_bytes += flen as u64;
}

/// What sending from TX queue `q` depends on that sending cannot change (no packet writes a
/// register): read once per [`World::tx_process`]. `None` when the queue cannot send now.
pub(crate) struct TxSetup {
    len: u32,
    base: u64,
    wthresh: u32,
    /// Head write-back address (TDWBAL.Head_WB_En).
    head_wb: Option<u64>,
    max: usize,
    /// [`tx_pad_and_slot`].
    pad: bool,
    slot: usize,
}

impl TxSetup {
    fn new(n: &Nic, q: usize) -> Option<Self> {
        let qs = &n.tx[q];
        // `tx_one`'s conditions for sending at all, but the head and the tail.
        if !qs.en
            || n.r(DMATXCTL) & DMATXCTL_TE == 0
            || !n.link_is_up()
            || n.dma_blocked()
            || bit_get(&n.faults.stall_tx, q)
        {
            return None;
        }
        let len = n.ring_len(true, q);
        if len == 0 {
            return None;
        }
        let wbal = n.r(tx_base(q as u32) + Q_WBAL);
        let (pad, slot) = tx_pad_and_slot(n, q);
        Some(TxSetup {
            len,
            base: n.ring_base(true, q),
            wthresh: (n.r(tx_base(q as u32) + Q_DCTL) >> 16) & 0x7F,
            head_wb: (wbal & 1 != 0)
                .then(|| u64::from(n.r(tx_base(q as u32) + Q_WBAH)) << 32 | u64::from(wbal & !3)),
            max: tx_max_packet(n),
            pad,
            slot,
        })
    }
}

/// A packet of `flen` bytes (without CRC) that does not fit the packet buffer (`max` bytes
/// with CRC, [`tx_max_packet`]): reported once per queue.
#[cold]
fn too_long(n: &mut Nic, i: usize, q: usize, core: &mut Core, flen: usize, max: usize) {
    if n.once.insert((ViolationKind::TxDataLength, q as u32)) {
        core.violate(
            i,
            ViolationKind::TxDataLength,
            format!(
                "TX queue {q}: packet of {} bytes with CRC; the packet buffer leaves room for {max} (TXPBSIZE − TXPBTHRESH)",
                flen + 4
            ),
        );
    }
}

/// A sent frame to where it goes when not to a sink: received by this port (loopback), by
/// the port at the cable's other end, or kept in the port's `transmitted` list.
#[inline(always)]
fn deliver(
    nics: &mut [Nic],
    i: usize,
    cable: Option<usize>,
    loopback: bool,
    core: &mut Core,
    frame: &[u8],
) {
    if loopback {
        rx_frame(&mut nics[i], i, core, frame);
    } else if let Some(j) = cable {
        rx_frame(&mut nics[j], j, core, frame);
    } else {
        let n = &mut nics[i];
        let mut buf = if n.transmitted.len() >= MAX_TRANSMITTED {
            n.transmitted.pop_front().unwrap_or_default()
        } else {
            Vec::with_capacity(frame.len())
        };
        buf.clear();
        buf.extend_from_slice(frame);
        n.transmitted.push_back(buf);
    }
}

/// [`tx_one`] for the usual packets, up to `max` of them, appended to `burst` (and handed to
/// `sink` whenever the burst is full): each one advanced data descriptor with EOP, of
/// 17..=16384 bytes, without checksum or VLAN offload, its buffer readable. The same
/// write-back, head, interrupt cause, checks, statistics, rate scheduling and time stamps as
/// `tx_one` and [`World::tx_process`] give each, without collecting descriptors; the set-up
/// (`s`, the rate scheduler's and the time stamp's enables) read once, the statistics added
/// up once ([`TxTally`]). Stops before any effect of a packet it declines (`tx_one` takes it).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn tx_run(
    n: &mut Nic,
    i: usize,
    q: usize,
    core: &mut Core,
    burst: &mut TxBurst,
    s: &TxSetup,
    mut sink: Option<&mut dyn TrafficSink>,
    max: usize,
) -> RunEnd {
    let now = core.now;
    // Nothing a sent packet does writes RTTBCNRC or TSYNCTXCTL.
    let limited = n.rate.limited(q);
    let stamping = super::timesync::tx_stamping(n);
    let tail = n.tx[q].tail;
    let mut head = n.tx[q].head;
    // The ring translated once (where it lies in one chunk): each descriptor read is then two
    // loads. Nothing in the loop frees DMA memory.
    let ring = core
        .dma
        .map_range(s.base, 16 * s.len as usize)
        .filter(|p| p.cast::<u64>().is_aligned());
    let mut t = TxTally::default();
    let mut sent = 0;
    let end = loop {
        // `tx_process`'s order: the scheduler asked before each packet, an empty queue's too.
        if sent == max {
            break RunEnd::Full;
        }
        if limited && !n.rate.may_send(q, now) {
            break RunEnd::Held;
        }
        if head == tail {
            break RunEnd::Empty;
        }
        if head >= s.len {
            break RunEnd::Declined;
        }
        let a = s.base + 16 * u64::from(head);
        let (addr, hi) = match ring {
            // SAFETY: `head < s.len`, so the descriptor's 16 bytes lie in the ring `map_range`
            // found valid (and still is: no region is freed here), 8-byte aligned (the ring's
            // start is, and descriptors are 16 bytes); volatile, as `DmaSpace::read_desc`.
            Some(p) => unsafe {
                let d = p.add(16 * head as usize).cast::<u64>();
                (
                    u64::from_le(std::ptr::read_volatile(d)),
                    u64::from_le(std::ptr::read_volatile(d.add(1))),
                )
            },
            None => match core.dma.read_desc(a) {
                Ok(d) => d,
                Err(_) => break RunEnd::Declined,
            },
        };
        let (cmd, sta) = (hi as u32, (hi >> 32) as u32);
        // DTYP (23:20) 0011 and DEXT, EOP, no VLE; POPTS without IXSM and TXSM.
        const MASK: u32 = 0xF << 20 | 1 << 29 | 1 << 24 | 1 << 30;
        const DATA_EOP: u32 = 0b0011 << 20 | 1 << 29 | 1 << 24;
        let dlen = (cmd & 0xFFFF) as usize;
        if cmd & MASK != DATA_EOP
            || sta & (3 << 8) != 0
            || !(TX_MIN_PAYLEN..=16 * 1024).contains(&dlen)
        {
            break RunEnd::Declined;
        }
        if burst.frames == SINK_BURST || burst.data.len() >= TX_BURST_BYTES {
            if let Some(sink) = sink.as_deref_mut() {
                burst.flush(sink, now);
            }
        }
        let start = burst.data.len();
        if core.dma.read_append(addr, dlen, &mut burst.data).is_err() {
            break RunEnd::Declined; // `tx_one` reads it again and reports the fault
        }
        let rs = cmd & TX_CMD_RS != 0;
        if s.head_wb.is_none() && (rs || s.wthresh > 0) {
            if let Err(f) = core.dma.write_u32(a + 12, 1) {
                core.dma_fault(i, &format!("TX queue {q} write-back"), f);
            }
        }
        head += 1;
        if head == s.len {
            head = 0;
        }
        if s.head_wb.is_some() || s.wthresh > 0 || rs {
            n.queue_cause(true, q);
        }
        if let Some(wb) = s.head_wb {
            if let Err(f) = core.dma.write_u32(wb, head) {
                core.dma_fault(i, &format!("TX queue {q} head write-back"), f);
            }
        }
        // `tx_finish`, the statistics into `t`.
        if dlen + 4 > s.max {
            too_long(n, i, q, core, dlen, s.max);
        }
        if s.pad && dlen < 60 {
            burst.data.resize(start + 60, 0);
        }
        let flen = burst.data.len() - start;
        let w = flen as u64 + 4;
        t.bytes += w;
        if w < 64 {
            t.short += 1;
            t.short_bytes += w;
        }
        t.buckets[size_bucket(w as u32) as usize] += 1;
        // A broadcast address is a multicast one too (bit 0 of its first byte).
        let f = &burst.data[start..];
        if f[0] & 1 != 0 {
            if f[..6] == [0xFF; 6] {
                t.broadcast += 1;
            } else {
                t.multicast += 1;
            }
        }
        // What `tx_process` does with each sent frame.
        if limited {
            n.rate.sent(q, flen);
        }
        if stamping {
            super::timesync::tx_frame(n, now, cmd);
        }
        burst.lens[burst.frames] = flen;
        burst.frames += 1;
        sent += 1;
    };
    // TDH: nothing in the loop reads it (the interrupt cause, the scheduler, the time stamp,
    // the sink), so it is stored once.
    n.tx[q].head = head;
    t.packets = sent as u64;
    t.add_to(n, s.slot);
    end
}

pub(crate) fn size_bucket(wlen: u32) -> u32 {
    match wlen {
        0..=64 => 0,
        65..=127 => 1,
        128..=255 => 2,
        256..=511 => 3,
        512..=1023 => 4,
        _ => 5,
    }
}

#[cfg(test)]
mod tests {
    use super::super::timesync::{TIMINCA, TXSTMPH, TXSTMPL};
    use super::*;

    /// A world with one NIC whose TX queue 0 has a ring of `RING` descriptors and buffers.
    const RING: u32 = 64;

    /// The ring's bus address: at the start of DMA memory, or for some seeds with its second
    /// half past the end (those descriptors' fetches fault; the ring is not in one chunk).
    fn ring_base(seed: u64, bus: u64) -> u64 {
        if seed % 7 == 3 {
            bus + (1 << 18) - 8 * u64::from(RING)
        } else {
            bus
        }
    }

    fn world(seed: u64, reference: bool) -> (World, u64) {
        let mut w = World::new();
        w.no_tx_fast = reference;
        w.add_nic(NicConfig::default());
        let (mem, _) = w.core.dma.alloc(1 << 18).expect("DMA memory");
        let bus = w.core.dma.virt_to_bus(mem.as_ptr()).expect("bus address");
        let n = &mut w.nics[0];
        n.link_up = true;
        let tb = tx_base(0);
        n.set(DMATXCTL, n.r(DMATXCTL) | DMATXCTL_TE);
        let ring = ring_base(seed, bus);
        n.set(tb + Q_BAL, ring as u32);
        n.set(tb + Q_BAH, (ring >> 32) as u32);
        n.set(tb + Q_LEN, 16 * RING);
        n.tx[0].en = true;
        n.tx_enabled[0] |= 1;
        // TX queue 0's interrupt cause to vector 3 (IVAR bits 15:8, valid bit 7 of them).
        n.set(IVAR, 0x83 << 8);
        // Set-ups of the write-back: WTHRESH, head write-back, and a small packet buffer.
        match seed % 4 {
            1 => n.set(tb + Q_DCTL, 8 << 16),
            2 => n.set(tb + Q_WBAL, (bus as u32 + 0x800) | 1),
            3 => n.set(TXPBTHRESH, n.r(TXPBSIZE) >> 10 & 0x3FF),
            _ => {}
        }
        // TXPADEN is on after reset: off for half the seeds (frames under 64 bytes go out).
        if seed & 4 != 0 {
            n.set(HLREG0, n.r(HLREG0) | HLREG0_TXPADEN);
        } else {
            n.set(HLREG0, n.r(HLREG0) & !HLREG0_TXPADEN);
        }
        // Queue 0's statistics slot (TQSM bits 3:0).
        n.set(TQSM, (seed >> 3) as u32 & 0xF);
        // The rate scheduler at two thirds of link speed (RF 1.5), and transmit time stamps.
        if seed % 3 == 1 {
            w.mmio_write(0, RTTDQSEL, 0);
            w.mmio_write(0, RTTBCNRC, 1 << 31 | 0x6000);
        }
        if seed % 5 == 2 {
            w.mmio_write(0, TIMINCA, 1 << 24 | 7);
            w.mmio_write(0, TSYNCTXCTL, 1 << 4);
        }
        (w, bus)
    }

    /// What a sink got: each frame with its time, and the most frames of one call.
    #[derive(Default)]
    struct Received {
        frames: Vec<(Duration, Vec<u8>)>,
        largest_burst: usize,
    }

    /// A sink recording what it gets; `bursts`: through `receive_burst`, otherwise through
    /// the trait's default (each frame alone through `receive`).
    struct Recorder(std::sync::Arc<std::sync::Mutex<Received>>, bool);

    impl TrafficSink for Recorder {
        fn receive(&mut self, now: Duration, frame: &[u8]) {
            let mut r = self.0.lock().unwrap();
            r.frames.push((now, frame.to_vec()));
            r.largest_burst = r.largest_burst.max(1);
        }

        fn receive_burst(&mut self, now: Duration, frames: &[u8], lens: &[usize]) {
            if !self.1 {
                let mut at = 0;
                for &len in lens {
                    self.receive(now, &frames[at..at + len]);
                    at += len;
                }
                return;
            }
            assert_eq!(lens.iter().sum::<usize>(), frames.len());
            let mut r = self.0.lock().unwrap();
            r.largest_burst = r.largest_burst.max(lens.len());
            let mut at = 0;
            for &len in lens {
                r.frames.push((now, frames[at..at + len].to_vec()));
                at += len;
            }
        }
    }

    /// `tx_fast` and `tx_one` give the same frames, descriptor and head write-backs,
    /// violations, statistics, interrupt causes and wire counters, for random descriptors:
    /// the usual packet, and everything `tx_fast` must leave to `tx_one` (other types, no
    /// EOP, offloads, lengths out of range, buffers outside DMA memory, context descriptors).
    /// With a sink attached, the sink gets the same frames at the same times in bursts
    /// (`TxBurst`, fast and `tx_one` frames mixed) as a sink given each frame alone.
    #[test]
    fn tx_fast_sends_what_tx_one_sends() {
        let seeds: u64 = if cfg!(miri) { 4 } else { 64 };
        let (mut sent, mut violations, mut causes) = (0, 0, 0);
        let (mut largest_burst, mut stamps) = (0, 0);
        for seed in 0..2 * seeds {
            let sink = seed >= seeds;
            let seed = seed % seeds;
            let mut x = 0x2545_F491_4F6C_DD1D ^ seed.wrapping_mul(0x9E37_79B9);
            let mut rnd = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut worlds = [world(seed, true), world(seed, false)];
            let received: [std::sync::Arc<std::sync::Mutex<Received>>; 2] = Default::default();
            if sink {
                for (k, (w, _)) in worlds.iter_mut().enumerate() {
                    w.sinks[0] = Some(Box::new(Recorder(received[k].clone(), k == 1)));
                }
            }
            let bus = worlds[0].1;
            assert_eq!(bus, worlds[1].1);
            // Byte k is k * 7 + seed (mod 256): 256 bytes repeated (one copy, not a quarter
            // of a million steps under Miri).
            let period: Vec<u8> = (0..256u32).map(|k| (k * 7 + seed as u32) as u8).collect();
            let payload = period.repeat(0x3_F000 / 256);
            for (w, _) in worlds.iter_mut() {
                w.core.dma.write(bus + 0x1000, &payload).unwrap();
            }
            let mut tail = 0u32;
            for round in 0..8 {
                // One tail write of more than a sink burst.
                let count = if round == 5 {
                    SINK_BURST as u64 + 1 + rnd() % 20
                } else {
                    1 + rnd() % 20
                };
                let mut descs = Vec::new();
                for _ in 0..count {
                    let mut r = rnd();
                    if round == 5 {
                        // The usual packet (RS at random): a whole burst's worth in a row.
                        r = r & !7 | 2 | 0xF << 20 | 1 << 26 | 1 << 28;
                    }
                    let dlen: u64 = match r % 8 {
                        0 => r >> 8 & 0x3F,            // 0..63: below the minimum too
                        1 => 16 * 1024 + (r >> 8 & 1), // the maximum and one more
                        _ => 60 + (r >> 8) % 1500,
                    };
                    let mut cmd = (dlen as u32) | 0b0011 << 20 | 1 << 29 | 1 << 24;
                    match r >> 20 & 15 {
                        0 => cmd &= !(1 << 24),   // no EOP: a chain
                        1 => cmd ^= 0b0001 << 20, // context descriptor (0010)
                        2 => cmd &= !(1 << 29),   // legacy
                        3 => cmd |= 1 << 30,      // VLE
                        4 => cmd |= 1 << 19,      // TSTAMP
                        _ => {}
                    }
                    if r >> 24 & 1 != 0 {
                        cmd |= TX_CMD_RS;
                    }
                    let sta: u32 = match r >> 25 & 7 {
                        0 => 1 << 8, // IXSM
                        1 => 1 << 9, // TXSM
                        _ => (dlen as u32) << 14,
                    };
                    let addr = match r >> 28 & 15 {
                        0 => 0xDEAD_0000_0000, // outside every region
                        _ => bus + 0x1000 + (r >> 32) % 0x3_0000,
                    };
                    descs.push((addr, u64::from(cmd) | u64::from(sta) << 32));
                }
                for (w, _) in worlds.iter_mut() {
                    let mut t = tail;
                    for &(a, hi) in &descs {
                        // Outside DMA memory (the second half of a ring at its end): lost.
                        let d = ring_base(seed, bus) + 16 * u64::from(t);
                        let _ = w.core.dma.write_u64(d, a);
                        let _ = w.core.dma.write_u64(d + 8, hi);
                        t = (t + 1) % RING;
                    }
                    w.nics[0].tx[0].tail = t;
                    w.core.now += Duration::from_nanos(100);
                    w.tx_process(0, 0);
                }
                tail = (tail + count as u32) % RING;
                let [(a, _), (b, _)] = &mut worlds;
                let (na, nb) = (&a.nics[0], &b.nics[0]);
                assert_eq!(na.tx[0].head, nb.tx[0].head, "seed {seed}");
                assert!(na.transmitted == nb.transmitted, "seed {seed}: frames");
                let (ra, rb) = (received[0].lock().unwrap(), received[1].lock().unwrap());
                assert!(ra.frames == rb.frames, "seed {seed}: frames to the sink");
                assert!(!sink || na.transmitted.is_empty());
                assert!(rb.largest_burst <= SINK_BURST);
                largest_burst = largest_burst.max(rb.largest_burst);
                drop((ra, rb));
                assert_eq!(na.acc, nb.acc, "seed {seed}");
                assert_eq!(na.wire, nb.wire, "seed {seed}");
                assert_eq!(na.irq.qcause, nb.irq.qcause, "seed {seed}");
                // The time stamp latched (read high last: it frees the registers).
                for (off, what) in [(TXSTMPL, "TXSTMPL"), (TXSTMPH, "TXSTMPH")] {
                    let (va, vb) = (a.mmio_read(0, off), b.mmio_read(0, off));
                    assert_eq!(va, vb, "seed {seed}: {what}");
                    stamps += u32::from(va != 0);
                }
                assert_eq!(a.core.violations, b.core.violations, "seed {seed}");
                let (mut ra, mut rb) = (Vec::new(), Vec::new());
                let (ring, half) = (ring_base(seed, bus), 8 * RING as usize);
                a.core.dma.read_append(bus, 0x1000, &mut ra).unwrap();
                b.core.dma.read_append(bus, 0x1000, &mut rb).unwrap();
                a.core.dma.read_append(ring, half, &mut ra).unwrap();
                b.core.dma.read_append(ring, half, &mut rb).unwrap();
                assert!(ra == rb, "seed {seed}: ring and head write-back");
                // Causes anew each round.
                causes += u32::from(a.nics[0].irq.qcause != 0);
                a.nics[0].irq.qcause = 0;
                b.nics[0].irq.qcause = 0;
            }
            sent +=
                worlds[0].0.nics[0].transmitted.len() + received[0].lock().unwrap().frames.len();
            violations += worlds[0].0.core.violations.len();
        }
        // The sequences send frames and break rules.
        assert!(
            sent > 10 * seeds as usize && violations > seeds as usize,
            "{sent} {violations}"
        );
        assert!(causes > 0);
        // Some tail write filled a whole burst (the flush inside the loop ran).
        assert_eq!(largest_burst, SINK_BURST);
        assert!(stamps > 0);
    }
}
