//! Sim mode: pumping the simulator's clock, and the peer's traffic for the generator (a checking
//! sink) and for pcap (a source offering a mix of frames).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use platform_mock::traffic::PeerCounters;
use platform_mock::{Sim, TrafficSink, TrafficSource};

use crate::cli::SimClock;
use crate::frame::{build_udp_frame, parse_udp_frame, Flow, MAX_FRAME};
use crate::stats::PeerTotals;

/// 10 GbE: picoseconds per byte on the wire.
const PS_PER_BYTE_10G: u64 = 800;
/// Bytes on the wire per frame besides the frame itself: FCS 4, preamble + SFD 8, gap 12.
const WIRE_OVERHEAD: u64 = 24;

/// Wire time of one frame of `len` bytes (without FCS) at 10 Gbit/s, in picoseconds.
pub fn wire_time_ps(len: usize) -> u64 {
    (len as u64 + WIRE_OVERHEAD) * PS_PER_BYTE_10G
}

/// Moves the simulator's clock (if any) and tells the run's elapsed time.
///
/// Real devices: elapsed wall time. Sim with `--sim-clock wall`: each [`Pacer::tick`] advances
/// virtual time by the wall time since the previous tick (capped, see [`Pacer::sim`]). Sim with `--sim-clock virtual`: each
/// tick advances virtual time by a fixed step, and elapsed time is virtual.
pub struct Pacer {
    kind: Kind,
}

enum Kind {
    Real {
        start: Instant,
    },
    SimWall {
        sim: Sim,
        start: Instant,
        last: Instant,
        max_step: Duration,
    },
    SimVirtual {
        sim: Sim,
        /// Virtual time since the pacer was made, in ns (plain integers: a tick is on the
        /// forwarder's path, and `Duration` arithmetic normalises on every add).
        elapsed_ns: u64,
        /// A tick's step split into whole nanoseconds and the picoseconds left over (under
        /// 1000), so that a tick adds and compares instead of dividing.
        step_ns: u64,
        step_rem_ps: u64,
        carry_ps: u64,
    },
}

impl Pacer {
    /// A pacer for real devices: ticks do nothing.
    pub fn real() -> Self {
        Pacer {
            kind: Kind::Real {
                start: Instant::now(),
            },
        }
    }

    /// A pacer that drives `sim`. With [`SimClock::Virtual`] every tick advances virtual time by
    /// `step_ps` picoseconds (the wire time of one batch). With [`SimClock::Wall`] a tick
    /// advances it by the wall time since the last tick, but at most `max_step`: after a longer
    /// stall (the thread was descheduled, or printed) virtual time falls behind instead of
    /// making the peer offer the whole stall's traffic at once.
    pub fn sim(sim: Sim, clock: SimClock, step_ps: u64, max_step: Duration) -> Self {
        let kind = match clock {
            SimClock::Wall => {
                let now = Instant::now();
                Kind::SimWall {
                    sim,
                    start: now,
                    last: now,
                    max_step,
                }
            }
            SimClock::Virtual => Kind::SimVirtual {
                sim,
                elapsed_ns: 0,
                step_ns: step_ps / 1000,
                step_rem_ps: step_ps % 1000,
                carry_ps: 0,
            },
        };
        Pacer { kind }
    }

    /// True when this pacer drives a simulator (the loop must call [`Pacer::tick`] often).
    pub fn is_sim(&self) -> bool {
        !matches!(self.kind, Kind::Real { .. })
    }

    /// Pumps the simulator once (nothing for real devices).
    #[inline]
    pub fn tick(&mut self) {
        match &mut self.kind {
            Kind::Real { .. } => {}
            Kind::SimWall {
                sim,
                last,
                max_step,
                ..
            } => {
                let now = Instant::now();
                let dt = (now - *last).min(*max_step);
                *last = now;
                sim.advance(dt);
            }
            Kind::SimVirtual {
                sim,
                elapsed_ns,
                step_ns,
                step_rem_ps,
                carry_ps,
            } => {
                // The same nanoseconds as (carry + step) / 1000, the remainder carried.
                let mut ns = *step_ns;
                let mut carry = *carry_ps + *step_rem_ps;
                if carry >= 1000 {
                    carry -= 1000;
                    ns += 1;
                }
                *carry_ps = carry;
                *elapsed_ns += ns;
                // A step is one batch's wire time (under 1 s): no normalisation needed.
                let dt = match u32::try_from(ns) {
                    Ok(ns) if ns < 1_000_000_000 => Duration::new(0, ns),
                    _ => Duration::from_nanos(ns),
                };
                sim.advance(dt);
            }
        }
    }

    /// Time since the run started: wall time, or virtual time with a virtual clock.
    #[inline]
    pub fn elapsed(&self) -> Duration {
        match &self.kind {
            Kind::Real { start } | Kind::SimWall { start, .. } => start.elapsed(),
            Kind::SimVirtual { elapsed_ns, .. } => Duration::from_nanos(*elapsed_ns),
        }
    }
}

/// Pumps one lane of a simulator with lanes ([`Sim::with_lanes`]) from the thread that serves
/// that lane's queues: each tick advances the lane's clock by the wall time since the last
/// tick, at most `max_step` (as [`Pacer`] with a wall clock does for the whole simulator).
pub struct LanePacer {
    sim: Sim,
    lane: usize,
    last: Instant,
    max_step: Duration,
}

impl LanePacer {
    /// A pacer for lane `lane` of `sim`.
    pub fn new(sim: Sim, lane: usize, max_step: Duration) -> Self {
        LanePacer {
            sim,
            lane,
            last: Instant::now(),
            max_step,
        }
    }

    /// Pumps the lane once.
    #[inline]
    pub fn tick(&mut self) {
        let now = Instant::now();
        let dt = (now - self.last).min(self.max_step);
        self.last = now;
        self.sim.advance_lane(self.lane, dt);
    }
}

/// The peer's totals from the simulator's shared counters (`reordered` counts as corrupted).
pub fn peer_totals(c: &PeerCounters) -> PeerTotals {
    let (sent, received, corrupted, lost, reordered) = c.snapshot();
    PeerTotals {
        sent,
        received,
        corrupted: corrupted + reordered,
        lost,
    }
}

/// Receives the generator's frames: validates each one with [`parse_udp_frame`] and checks that
/// sequence numbers increase per flow (addresses and ports); a jump counts the skipped
/// numbers as lost, a step backwards as reordered.
pub struct FrameCheckSink {
    counters: Arc<PeerCounters>,
    /// Next expected sequence number per flow.
    next: HashMap<FlowKey, u64>,
    /// Frames seen per size (without FCS), for the tests of `--size` and `--imix`; key 0
    /// counts the distinct flows.
    sizes: Arc<Mutex<BTreeMap<usize, u64>>>,
    /// False: count only, check nothing.
    check: bool,
}

/// Source and destination address and port.
type FlowKey = ([u8; 4], [u8; 4], u16, u16);

impl FrameCheckSink {
    /// A sink counting into `counters`.
    pub fn new(counters: Arc<PeerCounters>) -> Self {
        FrameCheckSink {
            counters,
            next: HashMap::new(),
            sizes: Arc::default(),
            check: true,
        }
    }

    /// A sink that only counts frames (and their sizes): for frames that are not the
    /// generator's own, such as a replayed pcap file.
    pub fn counting_only(mut self) -> Self {
        self.check = false;
        self
    }

    /// The sink also counts frames per size into `sizes`.
    pub fn with_sizes(mut self, sizes: Arc<Mutex<BTreeMap<usize, u64>>>) -> Self {
        self.sizes = sizes;
        self
    }
}

impl TrafficSink for FrameCheckSink {
    fn receive(&mut self, _now: Duration, frame: &[u8]) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        if !self.check {
            if let Ok(mut sizes) = self.sizes.lock() {
                *sizes.entry(frame.len()).or_default() += 1;
            }
            return;
        }
        let Ok(parsed) = parse_udp_frame(frame) else {
            self.counters.corrupted.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if let Ok(mut sizes) = self.sizes.lock() {
            *sizes.entry(frame.len()).or_default() += 1;
        }
        let f = parsed.flow;
        let slot = self
            .next
            .get(&(f.src_ip, f.dst_ip, f.src_port, f.dst_port))
            .copied();
        match slot {
            Some(expected) if parsed.seq < expected => {
                self.counters.reordered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Some(expected) => {
                self.counters
                    .lost
                    .fetch_add(parsed.seq - expected, Ordering::Relaxed);
            }
            None => {
                self.counters.lost.fetch_add(parsed.seq, Ordering::Relaxed);
                if let Ok(mut sizes) = self.sizes.lock() {
                    // Key 0 (no frame has 0 bytes) counts the flows seen.
                    *sizes.entry(0).or_default() += 1;
                }
            }
        }
        self.next
            .insert((f.src_ip, f.dst_ip, f.src_port, f.dst_port), parsed.seq + 1);
    }
}

/// Writes every frame the peer receives to a pcap file (`--sim-peer-pcap`): what the device
/// put on the wire, for byte-exact comparisons.
pub struct RecordingSink {
    writer: crate::pcap::Writer<BufWriter<File>>,
    counters: Arc<PeerCounters>,
}

impl RecordingSink {
    /// A sink writing to a new file at `path`.
    pub fn create(path: &std::path::Path, counters: Arc<PeerCounters>) -> std::io::Result<Self> {
        let file = BufWriter::new(File::create(path)?);
        Ok(RecordingSink {
            writer: crate::pcap::Writer::new(file, crate::pcap::DEFAULT_SNAPLEN, true)?,
            counters,
        })
    }
}

impl TrafficSink for RecordingSink {
    fn receive(&mut self, now: Duration, frame: &[u8]) {
        self.counters.received.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.writer.write(now, frame) {
            log::error!("--sim-peer-pcap: {e}");
        }
    }
}

impl Drop for RecordingSink {
    fn drop(&mut self) {
        if let Err(e) = self.writer.flush() {
            log::error!("--sim-peer-pcap: {e}");
        }
    }
}

/// Frame `i` of the mix [`MixSource`] offers to a NIC with MAC `nic_mac`: sizes from 60 to 1514,
/// every fifth frame broadcast, four flows (different source IPs and UDP ports), sequence number
/// `i`. Tests rebuild the sequence with this function.
pub fn mix_frame(i: u64, nic_mac: [u8; 6]) -> Vec<u8> {
    const SIZES: [usize; 8] = [60, 64, 128, 60, 594, 1514, 100, 1024];
    let size = SIZES[(i % SIZES.len() as u64) as usize];
    let flow_id = (i % 4) as u8;
    let flow = Flow {
        dst_mac: if i % 5 == 4 { [0xFF; 6] } else { nic_mac },
        src_mac: [0x02, 0xAA, 0, 0, 0, flow_id],
        src_ip: [10, 1, 0, 1 + flow_id],
        dst_ip: [10, 2, 0, 1],
        src_port: 1000 + u16::from(flow_id),
        dst_port: 2000,
    };
    let mut frame = vec![0u8; size];
    build_udp_frame(&mut frame, &flow, i);
    frame
}

/// Offers [`mix_frame`]s back to back at 10 GbE line rate (each frame's own wire time),
/// starting at its first poll; at most 1 ms of traffic per poll, so a paused program is not
/// flooded afterwards (the skipped time is simply not offered).
pub struct MixSource {
    nic_mac: [u8; 6],
    counters: Arc<PeerCounters>,
    next: u64,
    /// Virtual time (ps) at which frame `next` is due; None before the first poll.
    due_ps: Option<u128>,
    buf: Vec<u8>,
}

impl MixSource {
    /// A source sending to `nic_mac`, counting into `counters`.
    pub fn new(nic_mac: [u8; 6], counters: Arc<PeerCounters>) -> Self {
        MixSource {
            nic_mac,
            counters,
            next: 0,
            due_ps: None,
            buf: Vec::with_capacity(MAX_FRAME),
        }
    }
}

impl TrafficSource for MixSource {
    fn poll(&mut self, now: Duration, out: &mut dyn FnMut(&[u8])) {
        let now_ps = now.as_nanos() * 1000;
        let burst_ps: u128 = 1_000_000_000; // 1 ms
        let due = self.due_ps.get_or_insert(now_ps);
        if now_ps.saturating_sub(*due) > burst_ps {
            *due = now_ps - burst_ps;
        }
        while *due <= now_ps {
            self.buf = mix_frame(self.next, self.nic_mac);
            out(&self.buf);
            *due += u128::from(wire_time_ps(self.buf.len()));
            self.next += 1;
            self.counters.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::set_seq;

    #[test]
    fn wire_time_of_minimum_frame_is_67_2_ns() {
        assert_eq!(wire_time_ps(60), 67_200);
        assert_eq!(wire_time_ps(1514), 1_230_400);
    }

    #[test]
    fn check_sink_counts_gaps_and_corruption() {
        let counters = PeerCounters::new();
        let mut sink = FrameCheckSink::new(counters.clone());
        let mut f = vec![0u8; 60];
        build_udp_frame(&mut f, &Flow::default(), 0);
        for seq in [0, 1, 2, 5, 6] {
            set_seq(&mut f, seq);
            sink.receive(Duration::ZERO, &f);
        }
        set_seq(&mut f, 3); // backwards
        sink.receive(Duration::ZERO, &f);
        f[20] ^= 1; // breaks the IPv4 checksum
        sink.receive(Duration::ZERO, &f);
        let t = peer_totals(&counters);
        assert_eq!((t.received, t.lost, t.corrupted), (7, 2, 2));
    }

    #[test]
    fn mix_source_paces_at_line_rate_and_is_valid() {
        let counters = PeerCounters::new();
        let mac = [2, 0, 0, 0, 0, 9];
        let mut src = MixSource::new(mac, counters.clone());
        let mut frames = Vec::new();
        src.poll(Duration::from_millis(5), &mut |f| frames.push(f.to_vec()));
        assert_eq!(frames.len(), 1, "only the first frame is due at the start");
        src.poll(
            Duration::from_millis(5) + Duration::from_micros(10),
            &mut |f| frames.push(f.to_vec()),
        );
        // The first 8 frames take 60+64+128+60+594+1514+100+1024 + 8*24 bytes = 4.4 µs.
        assert!(frames.len() > 8 && frames.len() < 40, "{}", frames.len());
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f, &mix_frame(i as u64, mac));
            assert_eq!(parse_udp_frame(f).unwrap().seq, i as u64);
        }
        assert_eq!(frames[4][0..6], [0xFF; 6]);
        assert_eq!(peer_totals(&counters).sent, frames.len() as u64);
    }

    #[test]
    fn virtual_pacer_moves_the_simulator_by_whole_steps_and_keeps_the_remainder() {
        let sim = Sim::new();
        sim.advance(Duration::from_micros(3)); // the pacer counts from where the sim is
        let mut pacer = Pacer::sim(
            sim.clone(),
            SimClock::Virtual,
            67_200 * 8 + 1,
            Duration::MAX,
        );
        for _ in 0..1000 {
            pacer.tick();
        }
        // 1000 steps of 537.601 ns: 537 601 ns, the sub-nanosecond parts carried, not lost.
        assert_eq!(pacer.elapsed(), Duration::from_nanos(537_601));
        assert_eq!(sim.now(), Duration::from_nanos(3_000 + 537_601));
    }
}
