//! Receive: the wire side, the packet buffer, queue selection and descriptor write-back.

use super::filter::vlan_tag;
use super::nic::{st, Held};
use super::offload;
use super::tx::size_bucket;
use super::*;
use crate::dma::DmaFault;

/// What the receive path decided for a frame before it reaches a queue (kept with a frame
/// waiting in the packet buffer).
#[derive(Clone, Copy)]
pub(crate) struct RxMeta {
    pub(crate) queue: u16,
    /// The write-back's RSS field (hash, or fragment checksum and IP identification).
    pub(crate) hash: u32,
    /// Packet type and RSS type (write-back bits 16:0).
    pub(crate) info: u32,
    /// Checksum status and error bits of the frame as it arrived (§7.1.11).
    pub(crate) csum: u32,
}

pub(crate) enum Deliver {
    Done,
    NoDesc,
    Disabled,
    Invalid,
}

// ---------------------------------------------------------------------------------------------
// RX

/// Standard Ethernet CRC-32 (reflected, polynomial 0xEDB88320).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let t = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in data {
        c = t[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

/// The write-back's RSS field when RXCSUM.PCSD = 0, for IPv4: bits 31:16 the fragment
/// checksum (the unadjusted 16-bit ones' complement sum of the IP payload, §7.1.11), bits 15:0
/// the IP identification. 0 for other frames. The checksum pass computes it for a whole IPv4
/// frame (`offload::rx_checksum_bits_parsed`); this is for the others.
#[cold]
#[inline(never)]
fn fragment_field(frame: &[u8], p: &rss::Parsed) -> u32 {
    let l3 = p.l3;
    if p.ip != 4 || frame.len() < l3 + 20 {
        return 0;
    }
    let ihl = usize::from(frame[l3] & 0xF) * 4;
    let total = usize::from(u16::from_be_bytes([frame[l3 + 2], frame[l3 + 3]]));
    let end = (l3 + total).min(frame.len());
    let sum = offload::sum16(frame.get(l3 + ihl..end).unwrap_or(&[]), 0);
    let id = u32::from(u16::from_be_bytes([frame[l3 + 4], frame[l3 + 5]]));
    sum << 16 | id
}

/// A frame (without FCS) arrives on NIC `n`'s wire.
#[inline(never)]
pub(crate) fn rx_frame(n: &mut Nic, i: usize, core: &mut Core, frame: &[u8]) {
    rx_frame_inline(n, i, core, frame);
}

/// Frames of `len` bytes each, back to back in `frames`, arrive on NIC `n`'s wire, in order:
/// [`rx_frame`] for each, with one call for the burst (a source's [`TrafficSource::poll_bursts`]).
/// `frames` no longer than `len` (or `len` 0): one frame. Runs of frames go through
/// [`rx_fast`] (the set-up checked once per run); a frame it declines goes through
/// [`rx_frame`], and the next run starts after it.
#[inline(never)]
pub(crate) fn rx_burst(n: &mut Nic, i: usize, core: &mut Core, frames: &[u8], len: usize) {
    if frames.is_empty() {
        rx_frame(n, i, core, frames);
        return;
    }
    let len = if len == 0 || frames.len() <= len {
        frames.len()
    } else {
        len
    };
    // What `chunks_exact` gave: whole frames only.
    let frames = &frames[..frames.len() / len * len];
    let mut at = 0;
    while at < frames.len() {
        at += rx_fast(n, i, core, &frames[at..], len) * len;
        if let Some(frame) = frames.get(at..at + len) {
            rx_frame(n, i, core, frame);
            at += len;
        }
    }
}

/// The receive path of [`rx_frame`] for the frames of `len` bytes at the start of `frames`
/// (back to back) while each one's path is the usual one into one queue; returns how many it
/// received.
///
/// Checked once for the run, as nothing a frame does on this path changes it: the link is
/// up, no receive time stamp can be taken (`timesync::rx_stamps_idle`), the length passes
/// the size checks (RUC, ROC), RXCTRL.RXEN, nothing in the packet buffer and DMA allowed, the
/// CRC stripped (HLREG0 and RDRXCTL agree), no injected write-back corruption; the run's
/// queue is the first frame's (queue 0 without RSS, the RETA entry of its hash with it), of
/// this lane, enabled, with advanced one-buffer descriptors (SRRCTL) whose buffer holds the
/// frame, RXDCTL.VME clear, and its ring in one chunk (translated once); the run ends at the
/// ring's free descriptors. Per frame: a frame the filters drop, or one RSS sends to another
/// queue, ends the run before any effect of its own (`rx_frame` then takes it). The run's
/// statistics and wire counters are added at its end (every frame has the same length, so
/// the sums are products; the accumulators are folded only when software reads a register,
/// never inside a run). Unit test `rx_burst_receives_what_rx_frame_receives` compares it
/// with [`rx_frame`] frame by frame.
#[inline(always)]
fn rx_fast(n: &mut Nic, i: usize, core: &mut Core, frames: &[u8], len: usize) -> usize {
    if !n.link_is_up() || !super::timesync::rx_stamps_idle(n) {
        return 0;
    }
    n.rx_setup();
    let s = n.rxs;
    let wlen = len as u32 + 4;
    if wlen < 64
        || wlen > s.max
        || !s.rxen
        || !n.held.is_empty()
        || n.dma_blocked()
        || !(s.hl_strip && s.rd_strip)
        || n.faults.rx_wb.is_some()
    {
        return 0;
    }
    // The run's queue: without RSS queue 0, with it the first frame's.
    let rss = s.mrqc & 0xF == 1;
    let q = if rss {
        let first = &frames[..len];
        let (pass, p) = super::rx_memo::filter_and_parse(n, first);
        if !pass {
            return 0;
        }
        let r = route(n, first, &p);
        if r.elsewhere {
            return 0;
        }
        usize::from(r.queue)
    } else if n.lane.0 != 0 {
        return 0;
    } else {
        0
    };
    if !n.rx[q].en {
        return 0;
    }
    n.rx_queue_setup(q);
    let qs = n.rxq;
    let bsize = ((qs.srrctl & 0x1F) as usize) * 1024;
    if (qs.srrctl >> 25) & 7 != 1 || len > bsize || qs.vme {
        return 0;
    }
    let ring_len = qs.len;
    let (head, tail) = (n.rx[q].head, n.rx[q].tail);
    if ring_len == 0 || head >= ring_len {
        return 0;
    }
    let free = (tail + ring_len - head) % ring_len;
    let count = (frames.len() / len).min(free as usize);
    if count == 0 {
        return 0;
    }
    let Some(ring) = core.dma.map_range(qs.ring, 16 * ring_len as usize) else {
        return 0;
    };
    let run = Run {
        frames: &frames[..count * len],
        len,
        q,
        ring,
        ring_len,
        head,
        pcsd: s.pcsd,
        mrqc: s.mrqc,
    };
    // Two loops: without RSS none of queue selection's work per frame.
    let (done, h) = if rss {
        rx_run::<true>(n, i, core, run)
    } else {
        rx_run::<false>(n, i, core, run)
    };
    if done == 0 {
        return 0;
    }
    #[cfg(test)]
    FAST_FRAMES.with(|c| c.set(c.get() + done as u64));
    // What `rx_frame` counts per frame, for `done` frames of `len` bytes (CRC stripped: the
    // bytes stored, posted and delivered are `len`, the wire's `wlen`).
    let k = done as u64;
    let bytes = k * len as u64;
    n.wire.rx_frames += k;
    n.wire.rx_bytes += bytes;
    n.acc_packets += 2 * k;
    n.acc[st::RX_GOOD] += k;
    n.acc[st::RX_GOOD_BYTES] += k * u64::from(wlen);
    n.acc[st::GORCL] += bytes;
    n.acc[st::PRC64 + size_bucket(wlen) as usize] += k;
    n.rx[q].head = h;
    let slot = qs.slot as usize;
    n.acc[st::QPRC + slot] += k;
    n.acc[st::QBRC + slot] += bytes;
    if s.qsel == 0x10 || s.qsel == qs.slot {
        n.acc[st::RXDGPC] += k;
        n.acc[st::RXDGBCL] += bytes;
    }
    n.wire.rx_delivered += k;
    n.irq.qcause |= qs.cause;
    done
}

/// A run of [`rx_fast`] once its set-up is checked: the frames (as many as the ring has free
/// descriptors), the queue and its ring (translated), the head.
struct Run<'f> {
    frames: &'f [u8],
    len: usize,
    q: usize,
    ring: *mut u8,
    ring_len: u32,
    head: u32,
    pcsd: bool,
    /// MRQC, as the run's first frame was routed with.
    mrqc: u32,
}

/// [`rx_fast`]'s frames into queue `run.q` while each one passes the filters and (`RSS`) RSS
/// sends it there: checksums, buffer and write-back; returns how many, and the new head.
/// Out of line, each loop a function of its own: inlined into `rx_burst` the two shared one
/// register allocation with the rest of it (9 more instructions per frame without RSS).
#[inline(never)]
fn rx_run<const RSS: bool>(n: &mut Nic, i: usize, core: &mut Core, run: Run) -> (usize, u32) {
    let Run {
        frames,
        len,
        q,
        ring,
        ring_len,
        head,
        pcsd,
        mrqc,
    } = run;
    let mut h = head;
    let mut done = 0usize;
    for frame in frames.chunks_exact(len) {
        let (pass, p) = super::rx_memo::filter_and_parse(n, frame);
        if !pass {
            break;
        }
        let (info, rss_hash) = if RSS {
            // `route` without its per-run checks: the run's first frame went through it.
            match n.rss.select_in_run(mrqc, frame, &p) {
                Some((h, t, e)) if e == q as u8 => (p.pkt_type | t, h),
                // Another queue, another lane's, or no hash (queue 0, which the first
                // frame's route would have given the run: `route` decides again).
                _ => {
                    let r = route_again(n, frame, &p);
                    if usize::from(r.queue) != q || r.elsewhere {
                        break;
                    }
                    (r.info, r.hash)
                }
            }
        } else {
            (p.pkt_type, 0)
        };
        if frame[0] & 1 != 0 {
            if frame[..6] == [0xFF; 6] {
                n.acc[st::BPRC] += 1;
            } else {
                n.acc[st::MPRC] += 1;
            }
        }
        let (csum, fragment) = offload::rx_checksum_bits_parsed(frame, &p);
        let hash = if pcsd {
            rss_hash
        } else {
            fragment.map_or_else(|| fragment_field(frame, &p), offload::Fragment::field)
        };
        let status = RX_DESC_DD | RX_DESC_EOP | csum;
        let hi = u64::from(status) | (len as u64) << 32;
        let lo = u64::from(info) | u64::from(hash) << 32;
        // SAFETY: `h < ring_len`: the descriptor's 16 bytes lie in the ring's
        // `16 * ring_len` bytes `map_range` translated (`rx_fast`); nothing here frees a
        // region or unmaps a window.
        let fault = unsafe {
            core.dma
                .receive_at(ring.add(16 * h as usize), frame, lo, hi)
        };
        if let Some(f) = fault {
            buffer_fault(core, i, q, f);
        }
        h = if h + 1 == ring_len { 0 } else { h + 1 };
        done += 1;
    }
    (done, h)
}

#[cfg(test)]
thread_local! {
    /// Frames [`rx_fast`] received (tests: that the fast runs are taken).
    static FAST_FRAMES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The violation of a receive buffer write outside DMA memory (queue `q`, [`rx_fast`]).
#[cold]
#[inline(never)]
fn buffer_fault(core: &mut Core, i: usize, q: usize, f: DmaFault) {
    core.dma_fault(i, &format!("RX queue {q} buffer write"), f);
}

/// [`rx_frame`]'s body.
#[inline(always)]
fn rx_frame_inline(n: &mut Nic, i: usize, core: &mut Core, frame: &[u8]) {
    n.wire.rx_frames += 1;
    n.wire.rx_bytes += frame.len() as u64;
    if !n.link_is_up() {
        n.wire.rx_link_down += 1;
        return;
    }
    super::timesync::rx_frame(n, core.now, frame);
    let wlen = frame.len() as u32 + 4;
    // The registers' say, derived once per register change (`rx_setup`).
    n.rx_setup();
    // Statistics into the accumulators (`nic::st`), folded before software reads them.
    n.acc_packets += 1;
    if wlen < 64 {
        rx_count_seen(n, wlen, false);
        n.inc(RUC, 1);
        n.wire.rx_errors += 1;
        return;
    }
    if too_long(n.rxs.max, wlen, frame) {
        rx_count_seen(n, wlen, false);
        n.inc(ROC, 1);
        n.wire.rx_errors += 1;
        return;
    }
    // The filters, and the parse for queue selection and checksums below (`rx_memo`: once
    // per stream of frames that begin alike).
    let (pass, p) = super::rx_memo::filter_and_parse(n, frame);
    if !pass {
        rx_count_seen(n, wlen, true);
        n.wire.rx_filtered += 1;
        return;
    }
    // TPR, TORL, RXNFGPC, RXNFGBCL and GPRC at once (`st::COMBINED`).
    n.acc[st::RX_GOOD] += 1;
    n.acc[st::RX_GOOD_BYTES] += u64::from(wlen);
    // GORC counts what reaches host memory: without the CRC when it is stripped (DS8 says DA
    // through CRC; DPDK's PMD corrects GORC/QBRC by 4 bytes per packet only when stripping is
    // off, "RX byte count not including CRC bytes when CRC strip is enabled").
    let stored = if n.rxs.hl_strip {
        frame.len() as u64
    } else {
        u64::from(wlen)
    };
    n.acc[st::GORCL] += stored;
    if frame[0] & 1 != 0 {
        if frame[..6] == [0xFF; 6] {
            n.acc[st::BPRC] += 1;
        } else {
            n.acc[st::MPRC] += 1;
        }
    }
    n.acc[st::PRC64 + size_bucket(wlen) as usize] += 1;
    if !n.rxs.rxen {
        n.wire.rx_disabled += 1;
        return;
    }
    let Route {
        queue,
        hash,
        info,
        elsewhere,
    } = route(n, frame, &p);
    // §7.1.11: checksums over the frame as it arrived; reported in the EOP descriptor.
    let (csum, fragment) = offload::rx_checksum_bits_parsed(frame, &p);
    // The write-back's RSS field holds the hash with RXCSUM.PCSD = 1, otherwise the fragment
    // checksum and IP identification (§7.1.6.2).
    let hash = if n.rxs.pcsd {
        hash
    } else {
        fragment.map_or_else(|| fragment_field(frame, &p), offload::Fragment::field)
    };
    let meta = RxMeta {
        queue,
        hash,
        info,
        csum,
    };
    // Another lane's queue (`crate::Sim::with_lanes`): that lane delivers it. The test inline
    // (a call per frame cost 1.2 % of a 2-lane run), the hand-over out of line.
    if elsewhere {
        foreign(n, meta, frame);
        return;
    }
    rx_to_queue(n, i, core, meta, frame);
}

/// Where queue selection sends a frame (§7.1.2): with RSS (MRQC.MRQE = 0001b) the RETA entry
/// of its hash, otherwise queue 0.
#[derive(Clone, Copy)]
struct Route {
    queue: u16,
    /// The RSS hash (0 without one).
    hash: u32,
    /// Packet type and RSS type (write-back bits 16:0).
    info: u32,
    /// Another lane owns the queue (`crate::Sim::with_lanes`; queue 0 is lane 0's).
    elsewhere: bool,
}

/// Queue selection for a frame that passed the filters (`p`: its parse).
#[inline(always)]
fn route(n: &mut Nic, frame: &[u8], p: &rss::Parsed) -> Route {
    let mut r = Route {
        queue: 0,
        hash: 0,
        info: p.pkt_type,
        elsewhere: n.lane.0 != 0,
    };
    let mrqc = n.rxs.mrqc;
    if mrqc & 0xF == 1 {
        if n.rss.dirty {
            let lane = n.lane;
            let regs = &n.regs;
            n.rss.refresh(|off| regs[(off / 4) as usize], lane);
        }
        if let Some((h, t, e)) = n.rss.select(mrqc, frame, p) {
            r.hash = h;
            r.info |= t;
            r.queue = u16::from(e & 0xF);
            r.elsewhere = e & rss::RETA_FOREIGN != 0;
        }
    }
    r
}

/// [`route`] out of line, for a frame of a receive run that the run's selection did not send
/// to the run's queue: one RSS sends elsewhere (it ends the run) or one without a hash (it
/// joins a run of queue 0). The run's loop keeps its registers for the frames RSS sends to
/// its queue.
#[cold]
#[inline(never)]
fn route_again(n: &mut Nic, frame: &[u8], p: &rss::Parsed) -> Route {
    route(n, frame, p)
}

/// A frame of `wlen` bytes with CRC (`frame`, at least 14 bytes, without) is longer than
/// `max` allows (ROC): a VLAN tagged one may be 4 bytes longer; the tag is looked at only for
/// a frame over `max`.
#[inline(always)]
fn too_long(max: u32, wlen: u32, frame: &[u8]) -> bool {
    wlen > max && !(wlen <= max + 4 && frame[12] == 0x81 && frame[13] == 0x00)
}

/// Counts a received frame that stopped before GPRC: TPR and TORL, and with `sized` (it
/// passed the size checks) RXNFGPC and RXNFGBCL.
#[cold]
fn rx_count_seen(n: &mut Nic, wlen: u32, sized: bool) {
    n.acc[st::TPR] += 1;
    n.acc[st::TORL] += u64::from(wlen);
    if sized {
        n.acc[st::RXNFGPC] += 1;
        n.acc[st::RXNFGBCL] += u64::from(wlen);
    }
}

/// With lanes: keeps a frame for the lane that owns its queue, another one. Out of line:
/// never called without lanes, nor for a lane's own traffic.
#[cold]
#[inline(never)]
fn foreign(n: &mut Nic, meta: RxMeta, frame: &[u8]) {
    n.wire.rx_handed_over += 1;
    let mut buf = n.pool.pop().unwrap_or_default();
    buf.clear();
    buf.extend_from_slice(frame);
    n.foreign.push(Held {
        meta,
        len: frame.len(),
        buf,
    });
}

/// The rest of [`rx_frame`] once the queue is chosen: into the packet buffer behind held
/// frames, or to the queue.
#[inline(always)]
pub(crate) fn rx_to_queue(n: &mut Nic, i: usize, core: &mut Core, meta: RxMeta, frame: &[u8]) {
    let queue = meta.queue;
    if !n.held.is_empty() || n.dma_blocked() {
        hold(n, meta, frame);
        return;
    }
    match deliver(n, i, core, &meta, frame) {
        Deliver::Done | Deliver::Invalid => {}
        Deliver::Disabled => drop_qprdc(n, queue as usize),
        Deliver::NoDesc => {
            if n.r(rx_base(u32::from(queue)) + Q_SRRCTL) & SRRCTL_DROP_EN != 0 {
                drop_qprdc(n, queue as usize);
            } else {
                hold(n, meta, frame);
            }
        }
    }
}

pub(crate) fn drop_qprdc(n: &mut Nic, q: usize) {
    let slot = n.stat_slot(RQSMR, q);
    n.inc(QPRDC + 0x40 * slot, 1);
    n.wire.rx_dropped += 1;
}

pub(crate) fn hold(n: &mut Nic, meta: RxMeta, frame: &[u8]) {
    let cap = (((n.r(RXPBSIZE) >> 10) & 0x3FF) as usize) * 1024;
    let need = frame.len() + 4;
    if n.held_bytes + need > cap {
        n.inc(RXMPC, 1);
        n.irq.other |= EICR_RX_MISS;
        n.wire.rx_missed += 1;
        return;
    }
    let mut buf = n.pool.pop().unwrap_or_default();
    buf.clear();
    buf.extend_from_slice(frame);
    n.held_bytes += need;
    n.held.push_back(Held {
        meta,
        len: frame.len(),
        buf,
    });
}

/// Moves frames from the packet buffer to their queues while descriptors are available.
#[inline(never)]
pub(crate) fn drain_held(n: &mut Nic, i: usize, core: &mut Core) {
    if n.dma_blocked() {
        return;
    }
    while let Some(h) = n.held.pop_front() {
        let q = usize::from(h.meta.queue);
        let r = deliver(n, i, core, &h.meta, &h.buf[..h.len]);
        let consumed = match r {
            Deliver::Done | Deliver::Invalid => true,
            Deliver::Disabled => {
                drop_qprdc(n, q);
                true
            }
            Deliver::NoDesc => {
                if n.r(rx_base(q as u32) + Q_SRRCTL) & SRRCTL_DROP_EN != 0 {
                    drop_qprdc(n, q);
                    true
                } else {
                    false
                }
            }
        };
        if consumed {
            n.held_bytes -= h.len + 4;
            n.pool.push(h.buf);
        } else {
            n.held.push_front(h);
            break;
        }
    }
}

/// DMAs a frame into RX queue `q` and writes back its descriptor(s).
#[inline(always)]
pub(crate) fn deliver(
    n: &mut Nic,
    i: usize,
    core: &mut Core,
    meta: &RxMeta,
    frame: &[u8],
) -> Deliver {
    let RxMeta {
        hash, info, csum, ..
    } = *meta;
    let q = usize::from(meta.queue);
    if q >= 128 || !n.rx[q].en {
        return Deliver::Disabled;
    }
    n.rx_queue_setup(q);
    let srrctl = n.rxq.srrctl;
    let desctype = (srrctl >> 25) & 7;
    if desctype != 1 {
        if n.once.insert((ViolationKind::RxDescriptorType, q as u32)) {
            core.violate(
                i,
                ViolationKind::RxDescriptorType,
                format!("RX queue {q}: SRRCTL.DESCTYPE = {desctype:#b}; only advanced one-buffer (001b) is supported"),
            );
        }
        n.wire.rx_dropped += 1;
        return Deliver::Invalid;
    }
    let bsize = ((srrctl & 0x1F) as usize) * 1024;
    if bsize == 0 {
        n.wire.rx_dropped += 1;
        return Deliver::Invalid;
    }
    let (hl, rd) = (n.rxs.hl_strip, n.rxs.rd_strip);
    if hl != rd && n.once.insert((ViolationKind::CrcStripMismatch, 0)) {
        core.violate(
            i,
            ViolationKind::CrcStripMismatch,
            format!("HLREG0.RXCRCSTRP = {hl} but RDRXCTL.CRCStrip = {rd}; they must be equal"),
        );
    }
    let mut csum = csum;
    // RXDCTL.VME: the tag leaves the frame for the write-back (bits 127:112) and VP says so.
    let mut tci = 0u16;
    let Core {
        dma,
        rx_scratch,
        rx_strip,
        ..
    } = core;
    let posted = frame.len();
    // The tag looked for only with VME set (what the match did with its guard last).
    let tag = if n.rxq.vme {
        vlan_tag(n.rxs.vet(), frame)
    } else {
        None
    };
    let frame: &[u8] = match tag {
        Some(tag) => {
            tci = tag;
            csum |= offload::RX_VP;
            rx_strip.clear();
            rx_strip.extend_from_slice(&frame[..12]);
            rx_strip.extend_from_slice(&frame[16..]);
            &rx_strip[..]
        }
        _ => frame,
    };
    let data: &[u8] = if hl && rd {
        frame
    } else {
        rx_scratch.clear();
        rx_scratch.extend_from_slice(frame);
        rx_scratch.extend_from_slice(&crc32(frame).to_le_bytes());
        &rx_scratch[..]
    };
    let len = n.rxq.len;
    let (head, tail) = (n.rx[q].head, n.rx[q].tail);
    if len == 0 || head >= len {
        return Deliver::NoDesc;
    }
    let free = (tail + len - head) % len;
    let need = data.len().div_ceil(bsize).max(1) as u32;
    if free < need {
        return Deliver::NoDesc;
    }
    let ring = n.rxq.ring;
    let mut h = head;
    let mut faults: [Option<DmaFault>; 2] = [None, None];
    if need == 1 && n.faults.rx_wb.is_none() {
        // The usual case, what the loop below does for one descriptor without injected
        // write-back corruption: buffer address in, frame out, the EOP write-back.
        let d = ring + 16 * u64::from(h);
        let status = RX_DESC_DD | RX_DESC_EOP | csum;
        let hi = u64::from(status) | (data.len() as u64) << 32 | u64::from(tci) << 48;
        let lo = u64::from(info) | u64::from(hash) << 32;
        match dma.receive_one(d, data, lo, hi) {
            Ok(buffer_fault) => {
                faults[1] = buffer_fault;
                h = (h + 1) % len;
            }
            Err(f) => faults[0] = Some(f),
        }
    } else {
        for k in 0..need as usize {
            let d = ring + 16 * u64::from(h);
            let chunk = &data[k * bsize..data.len().min((k + 1) * bsize)];
            let buf = match dma.read_u64(d) {
                Ok(b) => b,
                Err(f) => {
                    faults[0] = Some(f);
                    break;
                }
            };
            if let Err(f) = dma.write(buf, chunk) {
                faults[1] = Some(f);
            }
            let last = k + 1 == need as usize;
            let mut status = RX_DESC_DD | if last { RX_DESC_EOP | csum } else { 0 };
            let mut plen = chunk.len() as u32;
            if let Some((c, cnt)) = n.faults.rx_wb.as_mut() {
                match c {
                    RxCorruption::LengthTooLong => plen = (bsize as u32 + 512).min(0xFFFF),
                    RxCorruption::ErrorBit => status |= RX_DESC_RXE,
                    RxCorruption::NoEop => status &= !RX_DESC_EOP,
                    RxCorruption::ZeroLength => plen = 0,
                }
                *cnt -= 1;
                if *cnt == 0 {
                    n.faults.rx_wb = None;
                }
            }
            let lo = u64::from(info) | u64::from(hash) << 32;
            let vlan = if last { u64::from(tci) << 48 } else { 0 };
            let hi = u64::from(status) | u64::from(plen) << 32 | vlan;
            dma.write_desc(d, lo, hi);
            h = (h + 1) % len;
        }
    }
    // QBRC counts the bytes posted before VLAN stripping (§8.2.3.23.74).
    let dlen = data.len() + (posted - frame.len());
    if let Some(f) = faults[0] {
        core.dma_fault(i, &format!("RX queue {q} descriptor read"), f);
        n.wire.rx_dropped += 1;
        return Deliver::Invalid;
    }
    if let Some(f) = faults[1] {
        core.dma_fault(i, &format!("RX queue {q} buffer write"), f);
    }
    n.rx[q].head = h;
    let slot = n.rxq.slot;
    // Also here: another lane's frame (`deliver_foreign`) reaches this lane only here.
    n.acc_packets += 1;
    n.acc[st::QPRC + slot as usize] += 1;
    n.acc[st::QBRC + slot as usize] += dlen as u64;
    let qsel = n.rxs.qsel;
    if qsel == 0x10 || qsel == slot {
        n.acc[st::RXDGPC] += 1;
        n.acc[st::RXDGBCL] += dlen as u64;
    }
    n.wire.rx_delivered += 1;
    // `Nic::queue_cause`, the bit kept with the queue's set-up.
    n.irq.qcause |= n.rxq.cause;
    Deliver::Done
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `too_long` is the old check: the limit raised by 4 for a tagged frame, then compared.
    #[test]
    fn too_long_is_the_tag_adjusted_limit() {
        for tag in [[0x81, 0x00], [0x08, 0x00], [0x81, 0x01], [0x88, 0xA8]] {
            let mut f = vec![0u8; 14];
            f[12..14].copy_from_slice(&tag);
            for max in [1518, 1522, 9728] {
                for wlen in max - 8..max + 9 {
                    let vlan = f.len() >= 14 && f[12] == 0x81 && f[13] == 0x00;
                    let old = wlen > if vlan { max + 4 } else { max };
                    assert_eq!(too_long(max, wlen, &f), old, "{tag:?} {max} {wlen}");
                }
            }
        }
    }

    /// Descriptors in each ring of [`rx_world`]'s queues 0 and 1.
    const RX_RING: u32 = 64;

    /// The bus address of queue `q`'s ring in [`rx_world`] (`bus`: its DMA memory's).
    fn rx_ring(bus: u64, q: usize) -> u64 {
        bus + 0x400 * q as u64
    }

    /// A world with one NIC receiving on queues 0 and 1 (link up, RXEN, CRC stripped,
    /// advanced one-buffer descriptors of 2 KiB, every frame accepted; MRQC clear, so
    /// queue 0 only), 256 KiB of DMA memory at the returned bus address, the rings at its
    /// start ([`rx_ring`]).
    fn rx_world() -> (World, u64) {
        let mut w = World::new();
        w.add_nic(NicConfig::default());
        let (mem, _) = w.core.dma.alloc(1 << 18).expect("DMA memory");
        let bus = w.core.dma.virt_to_bus(mem.as_ptr()).expect("bus address");
        let n = &mut w.nics[0];
        n.link_up = true;
        n.set(RXCTRL, RXCTRL_RXEN);
        n.set(HLREG0, n.r(HLREG0) | HLREG0_RXCRCSTRP);
        n.set(RDRXCTL, n.r(RDRXCTL) | RDRXCTL_CRCSTRIP);
        n.set(FCTRL, FCTRL_UPE | FCTRL_MPE | FCTRL_BAM);
        for q in 0..2 {
            let b = rx_base(q as u32);
            let ring = rx_ring(bus, q);
            n.set(b + Q_BAL, ring as u32);
            n.set(b + Q_BAH, (ring >> 32) as u32);
            n.set(b + Q_LEN, 16 * RX_RING);
            n.set(b + Q_SRRCTL, 1 << 25 | 2);
            n.rx[q].en = true;
        }
        (w, bus)
    }

    /// Everything a received frame can change, of `w`'s NIC 0 (the DMA memory, the
    /// registers and the accumulators compared apart: [`same_bulk_state`]), by name.
    fn rx_state(w: &World) -> Vec<(&'static str, String)> {
        let n = &w.nics[0];
        vec![
            ("wire", format!("{:?}", n.wire)),
            (
                "queues",
                format!(
                    "{} {} {} {} {}",
                    n.rx[0].head, n.rx[0].tail, n.rx[1].head, n.rx[1].tail, n.held_bytes
                ),
            ),
            ("causes", format!("{} {}", n.irq.qcause, n.irq.other)),
            ("once", {
                let mut once: Vec<String> = n.once.iter().map(|o| format!("{o:?}")).collect();
                once.sort();
                once.join(" ")
            }),
        ]
    }

    /// The registers, accumulators, held and handed-over frames and violations of `a` and
    /// `b` (NIC 0) are the same; otherwise the first that differ. Compared as they are, and
    /// formatted only when they differ: formatting the register file or kilobytes of held
    /// frames every round is slow under Miri.
    fn same_bulk_state(a: &World, b: &World) -> Result<(), String> {
        let (x, y) = (&a.nics[0], &b.nics[0]);
        let held = |n: &Nic| -> Vec<_> {
            n.held
                .iter()
                .chain(&n.foreign)
                .map(|h| {
                    let m = h.meta;
                    (m.queue, m.hash, m.info, m.csum, h.buf[..h.len].to_vec())
                })
                .collect()
        };
        let (hx, hy) = (held(x), held(y));
        if hx != hy {
            return Err(format!("held frames\n{hx:?}\n{hy:?}"));
        }
        if a.core.violations != b.core.violations {
            return Err(format!(
                "violations\n{:?}\n{:?}",
                a.core.violations, b.core.violations
            ));
        }
        if x.regs[..] != y.regs[..] {
            let k = (0..x.regs.len())
                .find(|&k| x.regs[k] != y.regs[k])
                .unwrap_or(0);
            return Err(format!(
                "register {:#x}: {:#x} against {:#x}",
                4 * k,
                x.regs[k],
                y.regs[k]
            ));
        }
        if x.acc[..] != y.acc[..] || x.acc_packets != y.acc_packets {
            return Err(format!(
                "accumulators\n{:?} {}\n{:?} {}",
                x.acc, x.acc_packets, y.acc, y.acc_packets
            ));
        }
        Ok(())
    }

    /// `rx_burst` (its fast runs, and `rx_frame` for what they decline) receives what
    /// `rx_frame` receives frame by frame: the same registers, statistics (accumulators),
    /// wire counters, rings and buffer contents, held and handed-over frames, interrupt
    /// causes and violations, for bursts of random frames (unicast, multicast, broadcast,
    /// tagged, IPv4 with and without options, fragments, IPv6, other types; a few flows or
    /// random addresses; too short, too long, multi-buffer) under random set-ups: without
    /// RSS, with RSS (a random key, field enables and RETA over queues 0, 1 and a disabled
    /// one), with RSS and lanes (this one lane 0 or 1 of 2), and every condition `rx_fast`
    /// checks, set and clear (link, time stamping, RXEN, RSS, the lane, a held frame, bus
    /// mastering, queue enable, descriptor type, buffer size, CRC stripping, VLAN stripping,
    /// write-back corruption, a ring outside DMA memory), few free descriptors
    /// (SRRCTL.DROP_EN set or not), filters that drop frames, buffers outside DMA memory,
    /// PCSD, RQSMR, RXDSTATCTRL, IVAR and RETA written between bursts.
    #[test]
    fn rx_burst_receives_what_rx_frame_receives() {
        let seeds: u64 = if cfg!(miri) { 3 } else { 60 };
        let rounds = if cfg!(miri) { 6 } else { 40 };
        // By set-up (no RSS, RSS, RSS and lanes): frames through the fast runs, frames.
        let mut by_mode = [(0u64, 0u64); 3];
        let mut faults = 0usize;
        for seed in 0..seeds {
            let mode = (seed % 3) as usize;
            let mut x = 0x2545_F491_4F6C_DD1D ^ seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let mut rnd = move |m: u64| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % m
            };
            let mut worlds = [rx_world(), rx_world()];
            let bus = worlds[0].1;
            assert_eq!(bus, worlds[1].1);
            let mac = worlds[0].0.nics[0].cfg.mac;
            // The seed's set-up, restored after each round.
            let mut base: Vec<(u32, u32)> = vec![(MRQC, 0)];
            let mut base_lane = (0u16, 1u16);
            if mode > 0 {
                let mut mrqc = 1;
                for f in [
                    MRQC_TCP_IPV4,
                    MRQC_IPV4,
                    MRQC_IPV6,
                    MRQC_TCP_IPV6,
                    MRQC_UDP_IPV4,
                    MRQC_UDP_IPV6,
                ] {
                    if rnd(4) != 0 {
                        mrqc |= f;
                    }
                }
                base[0].1 = mrqc;
                for k in 0..10 {
                    base.push((RSSRK + 4 * k, rnd(1 << 32) as u32));
                }
                for k in 0..32 {
                    let mut v = 0;
                    for e in 0..4 {
                        let q = if rnd(16) == 0 { 2 } else { rnd(2) as u32 };
                        v |= q << (8 * e);
                    }
                    base.push((RETA + 4 * k, v));
                }
                if mode == 2 {
                    base_lane = (rnd(2) as u16, 2);
                }
            }
            let mut tail = [0u32; 2];
            for round in 0..rounds {
                // The set-up for this round: mostly the seed's, each condition sometimes.
                let mut writes: Vec<(u32, u32)> = Vec::new();
                let pq = rnd(2) as usize;
                let b = rx_base(pq as u32);
                let mut link = true;
                let mut en = true;
                let mut stamps = false;
                let mut lane = base_lane;
                let mut corrupt = None;
                let mut master_off = false;
                for _ in 0..rnd(3) {
                    match rnd(42) {
                        0 => link = false,
                        1 => writes.push((RXCTRL, 0)),
                        2 => writes.push((MRQC, if mode == 0 { 1 } else { 0 })),
                        3 => lane = if lane.1 == 1 { (1, 2) } else { (1 - lane.0, 2) },
                        4 => en = false,
                        5 => writes.push((b + Q_SRRCTL, 2 << 25 | 2)),
                        6 => writes.push((b + Q_SRRCTL, 1 << 25 | rnd(2) as u32)),
                        7 => writes.push((HLREG0, 0)),
                        8 => writes.push((RDRXCTL, 0)),
                        9 => writes.push((b + Q_DCTL, RXDCTL_VME)),
                        10 => corrupt = Some((RxCorruption::ErrorBit, 1 + rnd(3) as u32)),
                        11 => writes.push((b + Q_BAL, 0xDEAD_0000)),
                        12 => writes.push((b + Q_SRRCTL, 1 << 25 | 2 | SRRCTL_DROP_EN)),
                        13 => writes.push((FCTRL, FCTRL_BAM)),
                        14 => writes.push((RXCSUM, RXCSUM_PCSD)),
                        15 => writes.push((RQSMR, rnd(1 << 32) as u32)),
                        16 => writes.push((RXDSTATCTRL, rnd(0x20) as u32)),
                        17 => writes.push((IVAR, 0x80 | rnd(64) as u32)),
                        18 => stamps = true,
                        19 => master_off = true,
                        20 => writes.push((RETA + 4 * rnd(32) as u32, rnd(1 << 32) as u32)),
                        21 => writes.push((RSSRK + 4 * rnd(10) as u32, rnd(1 << 32) as u32)),
                        _ => {}
                    }
                }
                // The driver's refill of each queue: buffer addresses into the descriptors
                // up to a new tail (some outside DMA memory, some at its end), every free
                // descriptor refilled or a few only.
                let mut refills = Vec::new();
                for (q, tail) in tail.iter_mut().enumerate() {
                    let old_tail = *tail;
                    let head = worlds[0].0.nics[0].rx[q].head;
                    let free = (*tail + RX_RING - head) % RX_RING;
                    let step = match rnd(4) {
                        0 => rnd(4) as u32,
                        _ => RX_RING - 1 - free,
                    };
                    let mut addrs = Vec::new();
                    for k in 0..RX_RING {
                        let a = match rnd(16) {
                            0 => 0xDEAD_0000_0000,
                            1 => bus + (1 << 18) - 100,
                            _ => {
                                bus + 0x1000 + 0x800 * u64::from(k + RX_RING * q as u32) % 0x3_E000
                            }
                        };
                        addrs.push(a);
                    }
                    *tail = (*tail + step) % RX_RING;
                    refills.push((old_tail, *tail, addrs));
                }
                // A burst of frames of one length, most of them of a few flows (addresses
                // and ports: IPv4's 12 bytes, IPv6's 36).
                let len = match rnd(8) {
                    0 => 40 + rnd(30) as usize,
                    1 => 1400 + rnd(200) as usize,
                    2 => 1020 + rnd(8) as usize,
                    _ => 60 + rnd(8) as usize,
                };
                let count = 1 + rnd(if cfg!(miri) { 12 } else { 40 }) as usize;
                let mut frames = vec![0u8; len * count];
                let kind = rnd(8);
                let flows: Vec<Vec<u8>> = (0..1 + rnd(3))
                    .map(|_| (0..36).map(|_| rnd(256) as u8).collect())
                    .collect();
                for f in frames.chunks_exact_mut(len) {
                    for bytes in f.chunks_mut(8) {
                        let r = rnd(u64::MAX).to_le_bytes();
                        bytes.copy_from_slice(&r[..bytes.len()]);
                    }
                    let da: [u8; 6] = match rnd(8) {
                        0 => [0xFF; 6],
                        1 => [0x01, 0, 0x5E, 0, 0, 1],
                        2 => [2, 0, 0, 0, 0, 9],
                        _ => mac,
                    };
                    f[..6].copy_from_slice(&da);
                    let l3 = if kind == 0 {
                        f[12..14].copy_from_slice(&[0x81, 0x00]);
                        18
                    } else {
                        14
                    };
                    let et: u16 = match kind {
                        1 => 0x86DD,
                        2 => 0x0806,
                        _ => 0x0800,
                    };
                    f[l3 - 2..l3].copy_from_slice(&et.to_be_bytes());
                    let flow = (rnd(4) != 0).then(|| &flows[rnd(flows.len() as u64) as usize]);
                    if et == 0x86DD && f.len() >= l3 + 44 {
                        f[l3] = 0x60;
                        f[l3 + 6] = [17, 6, 59][rnd(3) as usize];
                        if let Some(flow) = flow {
                            f[l3 + 8..l3 + 44].copy_from_slice(flow);
                        }
                    }
                    if et == 0x0800 && f.len() >= l3 + 20 {
                        f[l3] = if kind == 3 { 0x46 } else { 0x45 };
                        let total = match rnd(4) {
                            0 => rnd(2000) as u16,
                            _ => (f.len() - l3) as u16,
                        };
                        f[l3 + 2..l3 + 4].copy_from_slice(&total.to_be_bytes());
                        f[l3 + 6] = [0, 0x40, 0x20][rnd(3) as usize];
                        f[l3 + 7] = 0;
                        f[l3 + 9] = [17, 6, 1][rnd(3) as usize];
                        if let Some(flow) = flow {
                            let n = (f.len() - l3 - 12).min(12);
                            f[l3 + 12..l3 + 12 + n].copy_from_slice(&flow[..n]);
                        }
                        // A valid header checksum most of the time.
                        if rnd(4) != 0 {
                            f[l3 + 10..l3 + 12].fill(0);
                            let ihl = usize::from(f[l3] & 0xF) * 4;
                            let sum = offload::sum16(&f[l3..l3 + ihl], 0);
                            f[l3 + 10..l3 + 12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
                        }
                    }
                    // Runs of identical beginnings (the filter memo's hits).
                    if rnd(2) == 0 {
                        f[14..24].copy_from_slice(&[0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17]);
                    }
                }
                for (reference, (w, _)) in worlds.iter_mut().enumerate() {
                    {
                        let n = &mut w.nics[0];
                        n.link_up = link;
                        n.rx[pq].en = en;
                        n.faults.rx_wb = corrupt;
                        for &(off, v) in &writes {
                            n.set(off, v);
                            // What the register path does (`mmio`).
                            if (RETA..RSSRK + 40).contains(&off) {
                                n.rss.dirty = true;
                            }
                        }
                        if lane != n.lane {
                            n.lane = lane;
                            n.rss.dirty = true;
                        }
                        if master_off {
                            n.set(CTRL, n.r(CTRL) | CTRL_MASTER_DISABLE);
                        }
                    }
                    if stamps {
                        let now = w.core.now;
                        w.nics[0]
                            .clock
                            .write(&mut w.core, 0, now, TSYNCRXCTL, 1 << 4 | 0b010 << 1);
                    }
                    for (q, (old_tail, tail, addrs)) in refills.iter().enumerate() {
                        let mut t = *old_tail;
                        while t != *tail {
                            let d = rx_ring(bus, q) + 16 * u64::from(t);
                            w.core.dma.write_u64(d, addrs[t as usize]).unwrap();
                            w.core.dma.write_u64(d + 8, 0).unwrap();
                            t = (t + 1) % RX_RING;
                        }
                        w.nics[0].rx[q].tail = *tail;
                    }
                    let (n, core) = (&mut w.nics[0], &mut w.core);
                    if reference == 0 {
                        for f in frames.chunks_exact(len) {
                            rx_frame(n, 0, core, f);
                        }
                    } else {
                        rx_burst(n, 0, core, &frames, len);
                    }
                    // Back to the seed's set-up for the next round, held frames moved on.
                    let n = &mut w.nics[0];
                    let mut back = vec![
                        (RXCTRL, RXCTRL_RXEN),
                        (HLREG0, n.r(HLREG0) | HLREG0_RXCRCSTRP),
                        (RDRXCTL, n.r(RDRXCTL) | RDRXCTL_CRCSTRIP),
                        (FCTRL, FCTRL_UPE | FCTRL_MPE | FCTRL_BAM),
                        (CTRL, n.r(CTRL) & !CTRL_MASTER_DISABLE),
                    ];
                    for q in 0..2 {
                        let b = rx_base(q);
                        let ring = rx_ring(bus, q as usize);
                        back.extend([
                            (b + Q_SRRCTL, 1 << 25 | 2),
                            (b + Q_DCTL, 0),
                            (b + Q_BAL, ring as u32),
                            (b + Q_BAH, (ring >> 32) as u32),
                        ]);
                    }
                    back.extend_from_slice(&base);
                    for (off, v) in back {
                        n.set(off, v);
                    }
                    n.rss.dirty = true;
                    n.link_up = true;
                    n.rx[0].en = true;
                    n.rx[1].en = true;
                    n.lane = base_lane;
                    n.faults.rx_wb = None;
                    if round % 2 == 1 {
                        drain_held(n, 0, core);
                    }
                    let now = core.now;
                    n.clock.write(core, 0, now, TSYNCRXCTL, 0);
                }
                let [(a, _), (b, _)] = &mut worlds;
                if let Err(e) = same_bulk_state(a, b) {
                    panic!("seed {seed} round {round}: {e}");
                }
                for ((name, x), (_, y)) in rx_state(a).into_iter().zip(rx_state(b)) {
                    assert!(x == y, "seed {seed} round {round}: {name}\n{x}\n{y}");
                }
                // The DMA memory (under Miri, slow to compare, after the last round only).
                if !cfg!(miri) || round + 1 == rounds {
                    let (mut ma, mut mb) = (Vec::new(), Vec::new());
                    a.core.dma.read_append(bus, 1 << 18, &mut ma).unwrap();
                    b.core.dma.read_append(bus, 1 << 18, &mut mb).unwrap();
                    assert!(ma == mb, "seed {seed} round {round}: DMA memory");
                }
                by_mode[mode].1 += count as u64;
            }
            by_mode[mode].0 += FAST_FRAMES.with(|c| c.take());
            faults += worlds[1].0.core.violations.len();
        }
        // Frames were delivered, many through the fast runs under each set-up, and rules
        // were broken.
        for (mode, (fast, frames)) in by_mode.iter().enumerate() {
            assert!(fast * 4 > *frames, "set-up {mode}: {fast} of {frames} fast");
        }
        assert!(faults > 0);
    }

    #[test]
    fn fragment_field_from_the_checksum_pass_equals_its_own_sum() {
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let payload: Vec<u8> = (0..45u8).map(|k| k.wrapping_mul(29) ^ 0xA5).collect();
        let mut ip = vec![
            0x45, 0, 0, 0, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        ip[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&payload);
        f.extend_from_slice(&[0xEE; 7]); // padding after the IP length: not summed
        let p = rss::parse(&f);
        let field = offload::rx_checksum_bits_parsed(&f, &p)
            .1
            .map(offload::Fragment::field);
        let own = fragment_field(&f, &p);
        assert_eq!(field, Some(own));
        assert_eq!(own, offload::sum16(&payload, 0) << 16 | 0x1234);
        // A fragment: no field from the checksum pass, the field still computed.
        let mut frag = f.clone();
        frag[20] = 0x20; // MF
        let pf = rss::parse(&frag);
        assert!(offload::rx_checksum_bits_parsed(&frag, &pf).1.is_none());
        assert_eq!(fragment_field(&frag, &pf), own);
        // Whenever the checksum pass gives the field, it is `fragment_field`'s: every length
        // and header length of a UDP/IPv4 frame, padded or cut short.
        for cut in 0..f.len() + 3 {
            for ihl in [5u8, 6, 15] {
                for total in [0usize, 19, 20, 28, 45, 65, 200] {
                    let mut g = f.clone();
                    g.resize(cut, 0xEE);
                    if g.len() > 17 {
                        g[14] = 0x40 | ihl;
                        g[16..18].copy_from_slice(&(total as u16).to_be_bytes());
                    }
                    let pg = rss::parse(&g);
                    if let (_, Some(field)) = offload::rx_checksum_bits_parsed(&g, &pg) {
                        assert_eq!(
                            field.field(),
                            fragment_field(&g, &pg),
                            "cut {cut} ihl {ihl} total {total}"
                        );
                    }
                }
            }
        }
    }
}
