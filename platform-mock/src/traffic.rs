//! Traffic generators and checkers for simulated wires.
//!
//! [`LineRateSource`] offers UDP/IPv4 frames at a configurable rate (10 GbE line rate by default),
//! each with a per-flow 64-bit sequence number and a checksum of its payload. [`CheckingSink`]
//! verifies them. Both report into shared [`PeerCounters`].
//!
//! Payload layout (after Ethernet 14 + IPv4 20 + UDP 8 = offset 42):
//! `42..46` hash (`payload_hash`) of bytes `46..len`, `46..48` flow id, `48..56` sequence number,
//! `56..len` filler derived from the sequence number. All little-endian.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::{TrafficSink, TrafficSource};

const PAYLOAD: usize = 42;
/// Smallest frame a [`LineRateSource`] can generate (without FCS).
pub const MIN_FRAME: usize = 60;
/// 10 GbE, in bit/s: the rate a [`LineRateSource`] offers unless told otherwise.
pub const LINE_RATE_BPS: u64 = 10_000_000_000;
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

/// The payload hash's multiplier: odd, so that multiplying by it is a bijection mod 2^32.
const MIX: u32 = 0x9E37_79B1;

/// One step of [`payload_hash`]: word `w` into state `h`. For a fixed `w` it is a bijection of
/// `h` (XOR, an odd multiplier, an xorshift), and for a fixed `h` a bijection of `w`.
#[inline(always)]
fn mix(h: u32, w: u32) -> u32 {
    let x = (h ^ w).wrapping_mul(MIX);
    x ^ (x >> 15)
}

/// The harness's integrity hash of a payload (not datasheet behaviour: the peer's own check).
/// Little-endian 4-byte words, the last one zero-padded, each mixed in by [`mix`], starting
/// from a state that holds the length. Every step is a bijection of the state, so any change
/// confined to one word (every flipped bit, every changed byte) always changes the hash, where
/// FNV-1a, byte-wise, guaranteed it for one changed byte; other changes (swapped words, a
/// shorter payload) pass with probability about 2^-32, as with FNV-1a. Eight bytes per load:
/// a third of FNV-1a's instructions. The minimum frame's payload (14 of its 60 bytes) in
/// straight-line code, the same words mixed in the same order.
#[inline(always)]
fn payload_hash(data: &[u8]) -> u32 {
    if let Ok(d) = <&[u8; 14]>::try_from(data) {
        let (w, rest) = d.split_first_chunk::<8>().expect("8 of 14 bytes");
        let (v, last) = rest.split_first_chunk::<4>().expect("4 of 6 bytes");
        let w = u64::from_le_bytes(*w);
        let h = mix(mix(0x811C_9DC5 ^ 14, w as u32), (w >> 32) as u32);
        let last = u32::from(u16::from_le_bytes([last[0], last[1]]));
        return mix(mix(h, u32::from_le_bytes(*v)), last);
    }
    payload_hash_any(data)
}

/// [`payload_hash`] of a payload of any length.
#[inline(never)]
fn payload_hash_any(data: &[u8]) -> u32 {
    let mut h = 0x811C_9DC5 ^ data.len() as u32;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = mix(mix(h, w as u32), (w >> 32) as u32);
    }
    let mut rest = chunks.remainder();
    if let Some((c, r)) = rest.split_first_chunk::<4>() {
        h = mix(h, u32::from_le_bytes(*c));
        rest = r;
    }
    let last = match *rest {
        [] => return h,
        [a] => u32::from(a),
        [a, b] => u32::from(u16::from_le_bytes([a, b])),
        [a, b, c, ..] => u32::from_le_bytes([a, b, c, 0]),
    };
    mix(h, last)
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
    /// Frames back to back for [`TrafficSource::poll_bursts`], each a copy of `frame` as
    /// `build` (or `with_src_mac`) left it, then the last frame sent from that place: its
    /// IPv4 header checksum valid for its flow. Empty until the first burst. With at most
    /// [`WINDOW_FLOWS`] flows a window ([`LineRateSource::window_slots`]): slot `j` always
    /// holds flow `j % flows`, so that a burst from flow `s` on is slots `s..`, and only
    /// each frame's sequence number, payload and hash are written; otherwise [`BURST`]
    /// slots, each frame written whole.
    slots: Vec<u8>,
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
            slots: Vec::new(),
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
        s.set_rate_bps(LINE_RATE_BPS);
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
        self.slots.clear();
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
        self.slots.clear();
        self
    }

    /// Number of flows (1..=65535): flow `k` uses source IP 10.0.(k>>8).(k&255) and source
    /// port 1000 + k, so RSS spreads them over queues.
    pub fn with_flows(mut self, flows: u16) -> Self {
        self.flows = flows.max(1);
        self.seqs = vec![0; usize::from(self.flows)];
        self.slots.clear();
        self
    }

    /// Sends only flows `ids` (numbered as by [`LineRateSource::with_flows`]), in turn: e.g.
    /// the flows RSS sends to one queue. Empty: flow 0.
    pub fn with_flow_ids(mut self, ids: &[u16]) -> Self {
        self.flows = (ids.len().clamp(1, 65535)) as u16;
        self.seqs = vec![0; usize::from(self.flows)];
        self.ids = ids.to_vec();
        self.slots.clear();
        self
    }

    /// The frame flow `flow` sends with sequence number 0 (what RSS looks at).
    pub fn first_frame_of_flow(&self, flow: u16) -> Vec<u8> {
        let mut probe = LineRateSource {
            frame: self.frame.clone(),
            slots: Vec::new(),
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
        let (flow, seq) = self.next();
        write_frame(&mut self.frame, flow, seq);
    }

    /// The next frame's flow number and sequence number; advances to the one after.
    #[inline(always)]
    fn next(&mut self) -> (u16, u64) {
        next_of(&mut self.next_flow, self.flows, &mut self.seqs, &self.ids)
    }

    /// How many frames are due at `now_ps` (at most a burst and what is left to send);
    /// counts them as sent from `remaining`.
    #[inline(always)]
    fn due(&mut self, now_ps: u128) -> u64 {
        // The frames due at `next_ps`, `next_ps + interval`, ... up to `now_ps`, at most a
        // burst and what is left to send: counted once per poll, not compared per frame.
        let due = match self.interval_ps {
            0 => u128::MAX,
            t => (now_ps - self.next_ps) / t + 1,
        };
        let mut count = due.min(u128::from(self.max_burst)) as u64;
        if let Some(r) = self.remaining.as_mut() {
            count = count.min(*r);
            *r -= count;
        }
        count
    }

    /// After `count` frames sent at `now_ps`: the counter and the next due time.
    #[inline(always)]
    fn sent(&mut self, count: u64, now_ps: u128) {
        self.counters.sent.fetch_add(count, Ordering::Relaxed);
        self.next_ps += u128::from(count) * self.interval_ps;
        if self.next_ps <= now_ps && count < self.max_burst {
            return; // frames due, none left to send (`with_count`)
        }
        if self.next_ps <= now_ps {
            // Catch-up limit reached: skip the backlog instead of flooding.
            self.next_ps = now_ps + self.interval_ps;
        }
    }
}

/// [`LineRateSource`]'s next flow number and sequence number, from its flow state; advances
/// the state to the frame after.
#[inline(always)]
fn next_of(next_flow: &mut u16, flows: u16, seqs: &mut [u64], ids: &[u16]) -> (u16, u64) {
    let k = *next_flow;
    let seq = next_seq(next_flow, flows, seqs);
    (flow_id(ids, k), seq)
}

/// The flow number of flow state `k` ([`LineRateSource::with_flow_ids`]'s list, or `k`).
#[inline(always)]
fn flow_id(ids: &[u16], k: u16) -> u16 {
    ids.get(usize::from(k)).copied().unwrap_or(k)
}

/// Frames per call of `out` in [`LineRateSource`]'s [`TrafficSource::poll_bursts`].
const BURST: usize = 32;

/// Most flows for which [`LineRateSource`]'s burst slots are a window, one slot per flow
/// and position (at most `2 * 64` frames: 1.2 MiB of 9724-byte frames).
const WINDOW_FLOWS: usize = 64;

/// The next frame's sequence number of flow state `next_flow` (of `flows`); advances to the
/// frame after ([`next_of`] without the flow number).
#[inline(always)]
fn next_seq(next_flow: &mut u16, flows: u16, seqs: &mut [u64]) -> u64 {
    let k = *next_flow;
    *next_flow = if k + 1 == flows { 0 } else { k + 1 };
    let seq = seqs[usize::from(k)];
    seqs[usize::from(k)] += 1;
    seq
}

/// Writes frame `seq` of flow `flow` over `f`, the last frame sent from this buffer (or the
/// template), whose IPv4 header checksum is valid.
#[inline(always)]
fn write_frame(f: &mut [u8], flow: u16, seq: u64) {
    // Source IP 10.0.x.y: bytes 26..30 of the frame; `build` wrote 10.0. Only the word at
    // 28..30 changes, so the header checksum is updated for it (RFC 1624, eqn. 3:
    // HC' = ~(~HC + ~m + m')), which gives exactly what summing the header would: the
    // complement of a nonzero ones' complement sum. The same flow as the last frame (one
    // flow): the update would give the checksum back (HC is never 0xFFFF, the complement
    // of a nonzero sum), so the header stays as it is.
    let old = u16::from_be_bytes([f[28], f[29]]);
    if old != flow {
        let hc = u16::from_be_bytes([f[24], f[25]]);
        let mut sum = u32::from(!hc) + u32::from(!old) + u32::from(flow);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        f[24..26].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        f[28..30].copy_from_slice(&flow.to_be_bytes());
    }
    f[34..36].copy_from_slice(&(1000u16.wrapping_add(flow)).to_be_bytes());
    f[46..48].copy_from_slice(&flow.to_le_bytes());
    write_seq(f, seq);
}

/// Writes sequence number `seq` over `f`, a frame [`write_frame`] wrote for its flow: the
/// number, the payload that follows from it and the hash.
#[inline(always)]
fn write_seq(f: &mut [u8], seq: u64) {
    f[48..56].copy_from_slice(&seq.to_le_bytes());
    let mut x = seq as u8;
    for b in &mut f[56..] {
        *b = x;
        x = x.wrapping_add(7);
    }
    let sum = payload_hash(&f[46..]);
    f[PAYLOAD..PAYLOAD + 4].copy_from_slice(&sum.to_le_bytes());
}

impl TrafficSource for LineRateSource {
    fn poll(&mut self, now: Duration, out: &mut dyn FnMut(&[u8])) {
        let now_ps = now.as_nanos() * 1000;
        if self.next_ps > now_ps {
            return;
        }
        let count = self.due(now_ps);
        for _ in 0..count {
            self.fill();
            out(&self.frame);
        }
        self.sent(count, now_ps);
    }

    /// Up to [`BURST`] frames a call, written in place in `slots` (each slot keeps the last
    /// frame written there, as `frame` does for `poll`): the same bytes as `poll`'s frames.
    fn poll_bursts(&mut self, now: Duration, out: &mut dyn FnMut(&[u8], usize)) {
        let now_ps = now.as_nanos() * 1000;
        if self.next_ps > now_ps {
            return;
        }
        let count = self.due(now_ps);
        let len = self.frame.len();
        let window = usize::from(self.flows) <= WINDOW_FLOWS;
        if self.slots.is_empty() {
            self.slots = if window {
                self.window_slots()
            } else {
                self.frame.repeat(BURST)
            };
        }
        let mut left = count as usize;
        while left > 0 {
            let k = left.min(BURST);
            // The slots borrowed apart from the flow state (not through `self.next()`): the
            // compiler then keeps the state in registers across the frames' writes.
            let Self {
                slots,
                next_flow,
                flows,
                seqs,
                ids,
                ..
            } = self;
            let burst = if window {
                // From the next flow's slot on: each slot already holds its flow's frame.
                let at = usize::from(*next_flow) * len;
                let burst = &mut slots[at..at + k * len];
                for f in burst.chunks_exact_mut(len) {
                    write_seq(f, next_seq(next_flow, *flows, seqs));
                }
                &*burst
            } else {
                for f in slots[..k * len].chunks_exact_mut(len) {
                    let (flow, seq) = next_of(next_flow, *flows, seqs, ids);
                    write_frame(f, flow, seq);
                }
                &slots[..k * len]
            };
            out(burst, len);
            left -= k;
        }
        self.sent(count, now_ps);
    }
}

impl LineRateSource {
    /// The window of burst slots ([`LineRateSource::slots`]) for at most [`WINDOW_FLOWS`]
    /// flows: `flows * (BURST / flows rounded up, + 1)` frames, slot `j` written for flow
    /// `j % flows` (so a burst of up to [`BURST`] frames from any flow on fits).
    fn window_slots(&self) -> Vec<u8> {
        let flows = usize::from(self.flows);
        let n = flows * (BURST.div_ceil(flows) + 1);
        let mut slots = self.frame.repeat(n);
        for (j, f) in slots.chunks_exact_mut(self.frame.len()).enumerate() {
            write_frame(f, flow_id(&self.ids, (j % flows) as u16), 0);
        }
        slots
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
        let mut t = Tally::default();
        let ok = check_frame(&mut self.expected, frame, &mut t);
        t.add_to(&self.counters, 1);
        ok
    }
}

/// What [`check_frame`] found in some frames, added to the shared counters once per call
/// of the sink (the counters are shared: every port's source and sink of
/// `attach_forwarding_peer` count into one set, so each addition stays an atomic one).
#[derive(Default)]
struct Tally {
    corrupted: u64,
    lost: u64,
    reordered: u64,
}

impl Tally {
    /// Adds `received` frames and what was found in them to `c`.
    #[inline(always)]
    fn add_to(&self, c: &PeerCounters, received: u64) {
        c.received.fetch_add(received, Ordering::Relaxed);
        if self.corrupted != 0 {
            c.corrupted.fetch_add(self.corrupted, Ordering::Relaxed);
        }
        if self.lost != 0 {
            c.lost.fetch_add(self.lost, Ordering::Relaxed);
        }
        if self.reordered != 0 {
            c.reordered.fetch_add(self.reordered, Ordering::Relaxed);
        }
    }
}

/// [`CheckingSink::check`] of one frame against the flows' next sequence numbers
/// `expected`, counting what it finds into `t`.
#[inline(always)]
fn check_frame(expected: &mut Vec<u64>, frame: &[u8], t: &mut Tally) -> bool {
    let ok = frame.len() >= 56 && frame[12..14] == [0x08, 0x00] && frame[23] == 17 && {
        let ip_len = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
        let end = 14 + ip_len;
        end >= 56
            && end <= frame.len()
            && u32::from_le_bytes(frame[42..46].try_into().expect("4 bytes"))
                == payload_hash(&frame[46..end])
    };
    if !ok {
        t.corrupted += 1;
        return false;
    }
    let flow = usize::from(u16::from_le_bytes([frame[46], frame[47]]));
    let seq = u64::from_le_bytes(frame[48..56].try_into().expect("8 bytes"));
    let exp = match expected.get_mut(flow) {
        Some(e) => e,
        None => {
            expected.resize(flow + 1, 0);
            &mut expected[flow]
        }
    };
    if seq > *exp {
        t.lost += seq - *exp;
        *exp = seq + 1;
    } else if seq < *exp {
        t.reordered += 1;
    } else {
        *exp = seq + 1;
    }
    true
}

impl TrafficSink for CheckingSink {
    fn receive(&mut self, _now: Duration, frame: &[u8]) {
        self.check(frame);
    }

    /// Every frame checked as [`CheckingSink::check`] does, the counters added to once.
    fn receive_burst(&mut self, _now: Duration, frames: &[u8], lens: &[usize]) {
        let mut t = Tally::default();
        let mut rest = frames;
        for &len in lens {
            let (frame, after) = rest.split_at(len);
            check_frame(&mut self.expected, frame, &mut t);
            rest = after;
        }
        t.add_to(&self.counters, lens.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`payload_hash`] as its definition reads: word by word, the last one zero-padded.
    fn payload_hash_words(data: &[u8]) -> u32 {
        data.chunks(4)
            .fold(0x811C_9DC5 ^ data.len() as u32, |h, c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                mix(h, u32::from_le_bytes(w))
            })
    }

    /// A payload of `len` bytes that is not periodic.
    fn payload(len: usize) -> Vec<u8> {
        let mut x = 0x2545_F491_4F6C_DD1Du64 ^ len as u64;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    /// Both forms (the 14-byte one and any length) against the definition, on many random
    /// payloads of every length up to 100 bytes.
    #[test]
    fn payload_hash_is_its_word_by_word_definition() {
        let runs = if cfg!(miri) { 3 } else { 300 };
        for run in 0..runs {
            let mut data = payload(100 + run);
            data.truncate(100);
            for len in 0..data.len() {
                assert_eq!(
                    payload_hash(&data[..len]),
                    payload_hash_words(&data[..len]),
                    "{len} bytes"
                );
            }
            assert_eq!(payload_hash_any(&data[..14]), payload_hash(&data[..14]));
        }
    }

    /// The sink's check catches what FNV-1a caught: a flipped bit anywhere (always: each step
    /// is a bijection), a swapped pair of words, a payload cut short or zero-extended.
    #[test]
    fn payload_hash_catches_flipped_bits_swapped_words_and_truncation() {
        let lens: &[usize] = if cfg!(miri) {
            &[14, 19]
        } else {
            &[1, 3, 4, 14, 15, 17, 63, 200, 1472]
        };
        for &len in lens {
            let data = payload(len);
            let h = payload_hash(&data);
            for bit in 0..8 * len {
                let mut d = data.clone();
                d[bit / 8] ^= 1 << (bit % 8);
                assert_ne!(payload_hash(&d), h, "{len} bytes, bit {bit}");
            }
            for w in [2, 4, 8] {
                let words = len / w;
                for i in 0..words {
                    for j in i + 1..words.min(i + 64) {
                        let (a, b) = (&data[i * w..(i + 1) * w], &data[j * w..(j + 1) * w]);
                        if a == b {
                            continue;
                        }
                        let mut d = data.clone();
                        let (a, b) = (a.to_vec(), b.to_vec());
                        d[i * w..(i + 1) * w].copy_from_slice(&b);
                        d[j * w..(j + 1) * w].copy_from_slice(&a);
                        assert_ne!(payload_hash(&d), h, "{len} bytes, {w}-byte words {i} {j}");
                    }
                }
            }
            for k in 0..len {
                assert_ne!(payload_hash(&data[..k]), h, "{len} bytes cut to {k}");
            }
            for extra in 1..8 {
                let mut d = data.clone();
                d.resize(len + extra, 0);
                assert_ne!(payload_hash(&d), h, "{len} bytes and {extra} zeros");
            }
        }
    }

    /// Through the sink: every flipped bit of a frame's checked bytes, and a frame whose
    /// payload is cut short with its IP length to match, are corrupted.
    #[test]
    fn the_sink_catches_every_flipped_bit_and_a_cut_payload() {
        let sizes: &[usize] = if cfg!(miri) {
            &[60]
        } else {
            &[60, 61, 67, 300]
        };
        for &size in sizes {
            let mut src = LineRateSource::new([2, 0, 0, 0, 0, 1]).with_frame_size(size);
            src.fill();
            src.fill();
            let f = src.frame.clone();
            let mut sink = CheckingSink::new();
            assert!(sink.check(&f));
            for bit in 8 * PAYLOAD..8 * size {
                let mut g = f.clone();
                g[bit / 8] ^= 1 << (bit % 8);
                assert!(!sink.check(&g), "size {size}, bit {bit}");
            }
            for cut in 56..size {
                let mut g = f[..cut].to_vec();
                g[16..18].copy_from_slice(&((cut - 14) as u16).to_be_bytes());
                assert!(!sink.check(&g), "size {size} cut to {cut}");
            }
        }
    }

    impl LineRateSource {
        /// A source configured as this one, in its starting state (no frame sent, no slots
        /// written), with counters of its own: the other side of a comparison.
        fn twin(&self) -> LineRateSource {
            LineRateSource {
                frame: self.frame.clone(),
                slots: Vec::new(),
                flows: self.flows,
                next_flow: 0,
                seqs: self.seqs.clone(),
                ids: self.ids.clone(),
                interval_ps: self.interval_ps,
                next_ps: 0,
                max_burst: self.max_burst,
                remaining: self.remaining,
                counters: PeerCounters::new(),
            }
        }

        /// `poll` as it was, one comparison per frame: the reference for the counted burst.
        fn poll_per_frame(&mut self, now: Duration, out: &mut dyn FnMut(&[u8])) {
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
                self.next_ps = now_ps + self.interval_ps;
            }
        }
    }

    /// `poll_bursts` hands over the frames `poll` sends, byte for byte and in order, in bursts
    /// of at most [`BURST`] frames of the frame size, with the same state after each poll:
    /// random flows (numbered and by `with_flow_ids`, so the header checksum's update runs
    /// in every slot), frame sizes, rates, burst limits, counts and poll times.
    #[test]
    fn bursts_are_the_frames_poll_sends() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let mut rnd = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let runs = if cfg!(miri) { 4 } else { 200 };
        let mut bursts = 0;
        for run in 0..runs {
            let mut a = LineRateSource::new([2, 0, 0, 0, 0, 1]);
            a = match rnd(3) {
                0 => a.with_flows(1 + rnd(70) as u16),
                1 => a.with_flow_ids(&[7, 300, 7, 65000, 1]),
                _ => a,
            };
            if rnd(3) == 0 {
                a = a.with_frame_size(MIN_FRAME + rnd(200) as usize);
            }
            if rnd(2) == 0 {
                a = a.with_src_mac([2, 0, 0, 0, 9, rnd(256) as u8]);
            }
            if rnd(2) == 0 {
                a = a.with_rate_pps(1 + rnd(40_000_000));
            }
            a = a.with_max_burst(1 + rnd(if cfg!(miri) { 40 } else { 100 }));
            if rnd(2) == 0 {
                a = a.with_count(rnd(300));
            }
            let mut b = a.twin();
            let mut now = Duration::ZERO;
            for step in 0..if cfg!(miri) { 4 } else { 12 } {
                now += Duration::from_nanos(rnd(5_000));
                let (mut fa, mut fb) = (Vec::new(), Vec::new());
                a.poll(now, &mut |f| fa.push(f.to_vec()));
                let flen = a.frame.len();
                b.poll_bursts(now, &mut |f, len| {
                    assert_eq!(len, flen);
                    assert!(f.len() <= BURST * len && f.len() % len == 0);
                    bursts += 1;
                    fb.extend(f.chunks_exact(len).map(<[u8]>::to_vec));
                });
                assert_eq!(fa, fb, "run {run} step {step}");
                assert_eq!(
                    (a.next_ps, a.remaining, a.next_flow, &a.seqs),
                    (b.next_ps, b.remaining, b.next_flow, &b.seqs),
                    "run {run} step {step}"
                );
                assert_eq!(a.counters.snapshot(), b.counters.snapshot());
            }
        }
        assert!(bursts > runs, "{bursts} bursts");
        // Every frame is one the sink accepts.
        let mut src = LineRateSource::new([2, 0, 0, 0, 0, 1]).with_flows(5);
        let mut sink = CheckingSink::new();
        src.poll_bursts(Duration::from_micros(10), &mut |f, len| {
            for g in f.chunks_exact(len) {
                assert!(sink.check(g));
            }
        });
        assert_eq!(sink.counters().snapshot().2, 0);
    }

    /// `poll` sends what the per-frame loop sent, with the same state after each poll, for
    /// random poll times, bursts, counts and rates (a zero interval included).
    #[test]
    fn counted_poll_equals_the_per_frame_loop() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let runs = if cfg!(miri) { 6 } else { 300 };
        for run in 0..runs {
            let mut a = LineRateSource::new([2, 0, 0, 0, 0, 1]).with_flows(3);
            a = match rnd(4) {
                0 => a.with_rate_pps(u64::MAX),
                1 => a.with_rate_pps(1 + rnd(20_000_000)),
                _ => a,
            };
            // A zero interval (the fastest rate) needs a burst limit: all frames are due.
            if rnd(2) == 0 || a.interval_ps == 0 {
                a = a.with_max_burst(1 + rnd(40));
            }
            if rnd(2) == 0 {
                a = a.with_count(rnd(100));
            }
            let mut b = a.twin();
            let mut now = Duration::ZERO;
            for step in 0..20 {
                now += Duration::from_nanos(rnd(3_000));
                let (mut fa, mut fb) = (Vec::new(), Vec::new());
                a.poll(now, &mut |f| fa.push(f.to_vec()));
                b.poll_per_frame(now, &mut |f| fb.push(f.to_vec()));
                assert_eq!(fa, fb, "run {run} step {step}");
                assert_eq!(
                    (a.next_ps, a.remaining, a.next_flow, &a.seqs),
                    (b.next_ps, b.remaining, b.next_flow, &b.seqs),
                    "run {run} step {step}"
                );
                assert_eq!(a.counters.snapshot(), b.counters.snapshot());
            }
        }
    }

    #[test]
    fn every_frame_has_a_valid_ip_header_and_passes_the_sink() {
        // 300 flows; one flow, whose header stays; one flow whose address is `build`'s.
        let cases = [MIN_FRAME, 61, 1514]
            .into_iter()
            .flat_map(|size| [(size, &[][..]), (size, &[0][..]), (size, &[257][..])]);
        for (size, ids) in cases {
            let src = LineRateSource::new([2, 0, 0, 0, 0, 1]).with_frame_size(size);
            let mut src = if ids.is_empty() {
                src.with_flows(300)
            } else {
                src.with_flow_ids(ids)
            };
            let flows = if ids.is_empty() { 300 } else { 1 };
            let mut sink = CheckingSink::new();
            let frames: u32 = if cfg!(miri) { 20 } else { 700 };
            for k in 0..frames {
                src.fill();
                let f = src.frame.clone();
                let flow = ids.first().copied().unwrap_or((k % 300) as u16);
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
                let seq = u64::from(k / flows);
                assert_eq!(f[48..56], seq.to_le_bytes());
                assert_eq!(f[42..46], payload_hash_words(&f[46..]).to_le_bytes());
                assert!(sink.check(&f), "frame {k}");
            }
            assert_eq!(sink.counters().snapshot(), (0, u64::from(frames), 0, 0, 0));
        }
    }

    /// `receive_burst` checks each frame as `check` does: random bursts of intact,
    /// corrupted (flipped bits, cut, not UDP, too short), lost, repeated and reordered
    /// frames of several flows and sizes give the same counters and flow state.
    #[test]
    fn a_burst_is_checked_as_its_frames_one_by_one() {
        let mut x = 0x6A09_E667_F3BC_C908u64;
        let mut rnd = move |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        let mut pool: Vec<Vec<u8>> = Vec::new();
        for size in [60, 61, 64, 200] {
            let mut src = LineRateSource::new([2, 0, 0, 0, 0, 1])
                .with_frame_size(size)
                .with_flows(3);
            for _ in 0..if cfg!(miri) { 6 } else { 40 } {
                src.fill();
                pool.push(src.frame.clone());
            }
        }
        let (mut a, mut b) = (CheckingSink::new(), CheckingSink::new());
        let runs = if cfg!(miri) { 10 } else { 500 };
        for _ in 0..runs {
            let (mut frames, mut lens) = (Vec::new(), Vec::new());
            for _ in 0..rnd(40) {
                let mut f = pool[rnd(pool.len() as u64) as usize].clone();
                match rnd(8) {
                    0 => {
                        let at = rnd(f.len() as u64) as usize;
                        f[at] ^= 1 << rnd(8);
                    }
                    1 => f.truncate(rnd(f.len() as u64) as usize),
                    2 => f[23] = 6,
                    _ => {}
                }
                lens.push(f.len());
                frames.extend_from_slice(&f);
            }
            let mut at = 0;
            for &len in &lens {
                a.check(&frames[at..at + len]);
                at += len;
            }
            b.receive_burst(Duration::ZERO, &frames, &lens);
            assert_eq!(a.counters.snapshot(), b.counters.snapshot());
            assert_eq!(a.expected, b.expected);
        }
        let (_, received, corrupted, lost, reordered) = b.counters.snapshot();
        assert!(received > 0 && corrupted > 0 && lost > 0 && reordered > 0);
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
