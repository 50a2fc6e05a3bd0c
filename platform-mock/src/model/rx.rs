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
/// `frames` no longer than `len` (or `len` 0): one frame.
#[inline(never)]
pub(crate) fn rx_burst(n: &mut Nic, i: usize, core: &mut Core, frames: &[u8], len: usize) {
    if len == 0 || frames.len() <= len {
        rx_frame_inline(n, i, core, frames);
        return;
    }
    for frame in frames.chunks_exact(len) {
        rx_frame_inline(n, i, core, frame);
    }
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
    // Queue selection.
    let mut info = p.pkt_type;
    let mut hash = 0;
    let mut queue = 0u16;
    // Another lane's queue (`crate::Sim::with_lanes`): queue 0 is lane 0's.
    let mut elsewhere = n.lane.0 != 0;
    let mrqc = n.rxs.mrqc;
    if mrqc & 0xF == 1 {
        if n.rss.dirty {
            let lane = n.lane;
            let regs = &n.regs;
            n.rss.refresh(|off| regs[(off / 4) as usize], lane);
        }
        if let Some((h, t, e)) = n.rss.select(mrqc, frame, &p) {
            hash = h;
            info |= t;
            queue = u16::from(e & 0xF);
            elsewhere = e & rss::RETA_FOREIGN != 0;
        }
    }
    // §7.1.11: checksums over the frame as it arrived; reported in the EOP descriptor.
    let (csum, fragment) = offload::rx_checksum_bits_parsed(frame, &p);
    // The write-back's RSS field holds the hash with RXCSUM.PCSD = 1, otherwise the fragment
    // checksum and IP identification (§7.1.6.2).
    if !n.rxs.pcsd {
        hash = fragment.map_or_else(|| fragment_field(frame, &p), offload::Fragment::field);
    }
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
