//! Traffic generators and checkers for simulated wires.
//!
//! [`LineRateSource`] offers UDP/IPv4 frames at a configurable rate (10 GbE line rate by default),
//! each with a per-flow 64-bit sequence number and a checksum of its payload. [`CheckingSink`]
//! verifies them. Both report into shared [`PeerCounters`].
//!
//! Payload layout (after Ethernet 14 + IPv4 20 + UDP 8 = offset 42):
//! `42..46` FNV-1a checksum of bytes `46..len`, `46..48` flow id, `48..56` sequence number,
//! `56..len` filler derived from the sequence number. All little-endian.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{TrafficSink, TrafficSource};

const PAYLOAD: usize = 42;
/// Smallest frame a [`LineRateSource`] can generate (without FCS).
pub const MIN_FRAME: usize = 60;
/// Largest frame a [`LineRateSource`] can generate (without FCS): the largest a jumbo-enabled
/// 82599 takes, MAXFRS.MFS 9728 with CRC (an MTU of 9710). Beyond 1514 the receiving NIC must
/// have HLREG0.JUMBOEN set, or it drops the frames (ROC).
pub const MAX_FRAME: usize = 9724;

/// Counters shared between a source, a sink and whoever wants to print them.
#[derive(Debug, Default)]
pub struct PeerCounters {
    /// Frames emitted by a source.
    pub sent: AtomicU64,
    /// Frames seen by a checker.
    pub received: AtomicU64,
    /// Frames whose payload checksum or format was wrong.
    pub corrupted: AtomicU64,
    /// Frames missing in a flow's sequence (gaps).
    pub lost: AtomicU64,
    /// Frames that arrived with a sequence number lower than expected (reordered/duplicated).
    pub reordered: AtomicU64,
}

impl PeerCounters {
    /// New zeroed counters behind an `Arc`.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A plain snapshot: (sent, received, corrupted, lost, reordered).
    pub fn snapshot(&self) -> (u64, u64, u64, u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
            self.corrupted.load(Ordering::Relaxed),
            self.lost.load(Ordering::Relaxed),
            self.reordered.load(Ordering::Relaxed),
        )
    }
}

/// FNV-1a (32 bit) of `data`, unrolled eight and four bytes at a time (the same hash).
fn fnv1a(data: &[u8]) -> u32 {
    #[inline(always)]
    fn step(h: u32, b: u8) -> u32 {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    }
    let mut h: u32 = 0x811C_9DC5;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let c: &[u8; 8] = c.try_into().expect("8 bytes");
        for &b in c {
            h = step(h, b);
        }
    }
    let mut rest = chunks.remainder();
    if let Some((c, r)) = rest.split_first_chunk::<4>() {
        for &b in c {
            h = step(h, b);
        }
        rest = r;
    }
    for &b in rest {
        h = step(h, b);
    }
    h
}

fn ip_checksum(hdr: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for c in hdr.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// Offers test frames at a fixed rate, by virtual time.
pub struct LineRateSource {
    /// The last frame sent (or the template `build` made), its IPv4 header checksum valid.
    frame: Vec<u8>,
    flows: u16,
    next_flow: u16,
    seqs: Vec<u64>,
    /// The flow numbers sent, in turn ([`LineRateSource::with_flow_ids`]); empty: 0..flows.
    ids: Vec<u16>,
    /// Picoseconds between two frames.
    interval_ps: u128,
    /// Due time of the next frame, in picoseconds.
    next_ps: u128,
    max_burst: u64,
    remaining: Option<u64>,
    counters: Arc<PeerCounters>,
}

impl LineRateSource {
    /// 60-byte frames (64 with FCS) at 10 GbE line rate (14.88 Mpps) to `dst_mac`, one flow.
    pub fn new(dst_mac: [u8; 6]) -> Self {
        let mut s = LineRateSource {
            frame: Vec::new(),
            flows: 1,
            next_flow: 0,
            seqs: vec![0],
            ids: Vec::new(),
            interval_ps: 0,
            next_ps: 0,
            max_burst: 0,
            remaining: None,
            counters: PeerCounters::new(),
        };
        s.build(dst_mac, [0x02, 0, 0, 0, 0, 0xFE], MIN_FRAME);
        s.set_rate_bps(10_000_000_000);
        s
    }

    fn build(&mut self, dst: [u8; 6], src: [u8; 6], size: usize) {
        let size = size.clamp(MIN_FRAME, MAX_FRAME);
        let mut f = vec![0u8; size];
        f[0..6].copy_from_slice(&dst);
        f[6..12].copy_from_slice(&src);
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip_len = (size - 14) as u16;
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&ip_len.to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[10, 0, 1, 1]);
        let udp_len = ip_len - 20;
        f[34..36].copy_from_slice(&1000u16.to_be_bytes());
        f[36..38].copy_from_slice(&2000u16.to_be_bytes());
        f[38..40].copy_from_slice(&udp_len.to_be_bytes());
        // A valid header checksum, which `fill` updates for each frame's flow.
        let c = ip_checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        self.frame = f;
    }

    /// Frame size without FCS (clamped to 60..=9724). Keeps the rate in bits per second.
    pub fn with_frame_size(mut self, size: usize) -> Self {
        let dst: [u8; 6] = self.frame[0..6].try_into().expect("6 bytes");
        let src: [u8; 6] = self.frame[6..12].try_into().expect("6 bytes");
        let bps = self.rate_bps();
        self.build(dst, src, size);
        self.set_rate_bps(bps);
        self
    }

    /// Source MAC address.
    pub fn with_src_mac(mut self, mac: [u8; 6]) -> Self {
        self.frame[6..12].copy_from_slice(&mac);
        self
    }

    /// Number of flows (1..=65535): flow `k` uses source IP 10.0.(k>>8).(k&255) and source
    /// port 1000 + k, so RSS spreads them over queues.
    pub fn with_flows(mut self, flows: u16) -> Self {
        self.flows = flows.max(1);
        self.seqs = vec![0; usize::from(self.flows)];
        self
    }

    /// Sends only flows `ids` (numbered as by [`LineRateSource::with_flows`]), in turn: e.g.
    /// the flows RSS sends to one queue. Empty: flow 0.
    pub fn with_flow_ids(mut self, ids: &[u16]) -> Self {
        self.flows = (ids.len().clamp(1, 65535)) as u16;
        self.seqs = vec![0; usize::from(self.flows)];
        self.ids = ids.to_vec();
        self
    }

    /// The frame flow `flow` sends with sequence number 0 (what RSS looks at).
    pub fn first_frame_of_flow(&self, flow: u16) -> Vec<u8> {
        let mut probe = LineRateSource {
            frame: self.frame.clone(),
            flows: 1,
            next_flow: 0,
            seqs: vec![0],
            ids: vec![flow],
            interval_ps: 0,
            next_ps: 0,
            max_burst: 1,
            remaining: None,
            counters: PeerCounters::new(),
        };
        probe.fill();
        probe.frame
    }

    /// Rate in bits per second on the wire (frame + FCS + 20 bytes preamble/IFG).
    pub fn with_rate_bps(mut self, bps: u64) -> Self {
        self.set_rate_bps(bps);
        self
    }

    /// Rate in frames per second.
    pub fn with_rate_pps(mut self, pps: u64) -> Self {
        self.interval_ps = 1_000_000_000_000u128 / u128::from(pps.max(1));
        self.update_burst();
        self
    }

    /// Stops after `n` frames.
    pub fn with_count(mut self, n: u64) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Maximum number of frames emitted per poll (default: 1 ms of traffic, at least 1).
    pub fn with_max_burst(mut self, n: u64) -> Self {
        self.max_burst = n.max(1);
        self
    }

    /// Reports into these counters instead of its own.
    pub fn with_counters(mut self, c: Arc<PeerCounters>) -> Self {
        self.counters = c;
        self
    }

    /// The shared counters (`sent` is updated by this source).
    pub fn counters(&self) -> Arc<PeerCounters> {
        self.counters.clone()
    }

    fn rate_bps(&self) -> u64 {
        let bits = (self.frame.len() as u128 + 24) * 8;
        (bits * 1_000_000_000_000 / self.interval_ps.max(1)) as u64
    }

    fn set_rate_bps(&mut self, bps: u64) {
        let bits = (self.frame.len() as u128 + 24) * 8;
        self.interval_ps = bits * 1_000_000_000_000 / u128::from(bps.max(1));
        self.update_burst();
    }

    fn update_burst(&mut self) {
        self.max_burst = (1_000_000_000u128 / self.interval_ps.max(1)).max(1) as u64;
    }

    /// Writes the next frame into the internal buffer (inlined: the per-frame path of `poll`).
    #[inline(always)]
    fn fill(&mut self) {
        let k = self.next_flow;
        self.next_flow = (self.next_flow + 1) % self.flows;
        let seq = self.seqs[usize::from(k)];
        self.seqs[usize::from(k)] += 1;
        let flow = self.ids.get(usize::from(k)).copied().unwrap_or(k);
        let f = &mut self.frame;
        // Source IP 10.0.x.y: bytes 26..30 of the frame; `build` wrote 10.0. Only the word at
        // 28..30 changes, so the header checksum is updated for it (RFC 1624, eqn. 3:
        // HC' = ~(~HC + ~m + m')), which gives exactly what summing the header would: the
        // complement of a nonzero ones' complement sum.
        let old = u16::from_be_bytes([f[28], f[29]]);
        let hc = u16::from_be_bytes([f[24], f[25]]);
        let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(flow);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        f[28..30].copy_from_slice(&flow.to_be_bytes());
        f[34..36].copy_from_slice(&(1000u16.wrapping_add(flow)).to_be_bytes());
        f[46..48].copy_from_slice(&flow.to_le_bytes());
        f[48..56].copy_from_slice(&seq.to_le_bytes());
        let mut x = seq as u8;
        for b in &mut f[56..] {
            *b = x;
            x = x.wrapping_add(7);
        }
        let sum = fnv1a(&f[46..]);
        f[PAYLOAD..PAYLOAD + 4].copy_from_slice(&sum.to_le_bytes());
    }
}

impl TrafficSource for LineRateSource {
    fn poll(&mut self, now: Duration, out: &mut dyn FnMut(&[u8])) {
        let now_ps = now.as_nanos() * 1000;
        let mut n = 0;
        while self.next_ps <= now_ps && n < self.max_burst {
            if self.remaining == Some(0) {
                return;
            }
            if let Some(r) = self.remaining.as_mut() {
                *r -= 1;
            }
            self.fill();
            out(&self.frame);
            self.counters.sent.fetch_add(1, Ordering::Relaxed);
            self.next_ps += self.interval_ps;
            n += 1;
        }
        if self.next_ps <= now_ps {
            // Catch-up limit reached: skip the backlog instead of flooding.
            self.next_ps = now_ps + self.interval_ps;
        }
    }
}

/// Verifies frames produced by [`LineRateSource`].
pub struct CheckingSink {
    expected: Vec<u64>,
    counters: Arc<PeerCounters>,
}

impl Default for CheckingSink {
    fn default() -> Self {
        Self::new()
    }
}

impl CheckingSink {
    /// A checker with its own counters.
    pub fn new() -> Self {
        Self::with_counters(PeerCounters::new())
    }

    /// A checker that reports into `counters` (e.g. the source's, for end-to-end totals).
    pub fn with_counters(counters: Arc<PeerCounters>) -> Self {
        CheckingSink {
            expected: Vec::new(),
            counters,
        }
    }

    /// The shared counters.
    pub fn counters(&self) -> Arc<PeerCounters> {
        self.counters.clone()
    }

    /// Checks one frame (without FCS; trailing padding or FCS bytes are tolerated only if the
    /// IP length says so). Returns true if it is intact.
    pub fn check(&mut self, frame: &[u8]) -> bool {
        let c = &self.counters;
        c.received.fetch_add(1, Ordering::Relaxed);
        let ok = frame.len() >= 56 && frame[12..14] == [0x08, 0x00] && frame[23] == 17 && {
            let ip_len = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
            let end = 14 + ip_len;
            end >= 56
                && end <= frame.len()
                && u32::from_le_bytes(frame[42..46].try_into().expect("4 bytes"))
                    == fnv1a(&frame[46..end])
        };
        if !ok {
            c.corrupted.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let flow = usize::from(u16::from_le_bytes([frame[46], frame[47]]));
        let seq = u64::from_le_bytes(frame[48..56].try_into().expect("8 bytes"));
        if flow >= self.expected.len() {
            self.expected.resize(flow + 1, 0);
        }
        let exp = &mut self.expected[flow];
        if seq > *exp {
            c.lost.fetch_add(seq - *exp, Ordering::Relaxed);
            *exp = seq + 1;
        } else if seq < *exp {
            c.reordered.fetch_add(1, Ordering::Relaxed);
        } else {
            *exp = seq + 1;
        }
        true
    }
}

impl TrafficSink for CheckingSink {
    fn receive(&mut self, _now: Duration, frame: &[u8]) {
        self.check(frame);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fnv1a_bytes(data: &[u8]) -> u32 {
        let mut h: u32 = 0x811C_9DC5;
        for &b in data {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        h
    }

    #[test]
    fn unrolled_fnv1a_is_fnv1a() {
        let data: Vec<u8> = (0..100u32).map(|k| (k * 37 + 11) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(
                fnv1a(&data[..len]),
                fnv1a_bytes(&data[..len]),
                "{len} bytes"
            );
        }
        assert_eq!(fnv1a(b""), 0x811C_9DC5);
        assert_eq!(
            fnv1a(b"a"),
            0xE40C_292C,
            "the published FNV-1a 32 test vector"
        );
    }

    #[test]
    fn every_frame_has_a_valid_ip_header_and_passes_the_sink() {
        for size in [MIN_FRAME, 61, 1514] {
            let mut src = LineRateSource::new([2, 0, 0, 0, 0, 1])
                .with_frame_size(size)
                .with_flows(300);
            let mut sink = CheckingSink::new();
            for k in 0..700u32 {
                src.fill();
                let f = src.frame.clone();
                let flow = (k % 300) as u16;
                assert_eq!(f.len(), size);
                assert_eq!(f[26..30], [10, 0, (flow >> 8) as u8, flow as u8]);
                assert_eq!(u16::from_be_bytes([f[34], f[35]]), 1000 + flow);
                assert_eq!(
                    ip_checksum(&f[14..34]),
                    0,
                    "frame {k}: header sums to 0xFFFF"
                );
                let mut hdr = f[14..34].to_vec();
                hdr[10..12].fill(0);
                assert_eq!(f[24..26], ip_checksum(&hdr).to_be_bytes(), "frame {k}");
                let seq = u64::from(k / 300);
                assert_eq!(f[48..56], seq.to_le_bytes());
                assert_eq!(f[42..46], fnv1a_bytes(&f[46..]).to_le_bytes());
                assert!(sink.check(&f), "frame {k}");
            }
            assert_eq!(sink.counters().snapshot(), (0, 700, 0, 0, 0));
        }
    }

    #[test]
    fn the_sink_counts_corrupted_lost_and_reordered_frames() {
        let mut src = LineRateSource::new([2, 0, 0, 0, 0, 1]).with_frame_size(100);
        let mut sink = CheckingSink::new();
        let frames: Vec<Vec<u8>> = (0..6)
            .map(|_| {
                src.fill();
                src.frame.clone()
            })
            .collect();
        assert!(sink.check(&frames[0]));
        // One flipped bit anywhere in the checked payload, or a cut frame: corrupted.
        for at in [42, 47, 55, 56, 99] {
            let mut bad = frames[1].clone();
            bad[at] ^= 0x04;
            assert!(!sink.check(&bad), "bit flip at {at}");
        }
        assert!(!sink.check(&frames[1][..99]), "shorter than its IP length");
        let mut not_udp = frames[1].clone();
        not_udp[23] = 6;
        assert!(!sink.check(&not_udp));
        // Frame 1 intact, 2 missing, 3, then 2 late.
        assert!(sink.check(&frames[1]));
        assert!(sink.check(&frames[3]));
        assert!(sink.check(&frames[2]));
        assert_eq!(sink.counters().snapshot(), (0, 11, 7, 1, 1));
    }
}
