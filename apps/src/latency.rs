//! `ixgbe-pktgen --latency`: probe frames (PTP v2 Sync messages over UDP to port 319, which the
//! 82599 time-stamps, §7.9), their round-trip times, percentiles and a histogram as MoonGen
//! and ixy's latency study print them; and on the simulator a device under test with a known
//! delay ([`DelayLine`]).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ixgbe_core::{Mempool, Platform, Timesync, TxQueue};
use platform_mock::{TrafficSink, TrafficSource};

use crate::frame::{build_udp_frame, udp_checksum, Flow};

/// Size of a probe frame without FCS: headers (42 bytes) and a 44-byte PTP Sync message.
pub const PROBE_SIZE: usize = 86;
/// UDP port of PTP event messages.
pub const PTP_EVENT_PORT: u16 = 319;
const PTP: usize = 42;

/// Writes a probe into `buf` ([`PROBE_SIZE`] bytes): a UDP/IPv4 frame of `flow` to port 319
/// carrying a PTP v2 Sync message (IEEE 1588-2008 §13.3, §13.6) whose sequenceId is the low 16
/// bits of `id` and whose originTimestamp field holds all of `id`.
pub fn probe_frame(buf: &mut [u8], flow: &Flow, id: u64) {
    let flow = Flow {
        dst_port: PTP_EVENT_PORT,
        ..*flow
    };
    build_udp_frame(buf, &flow, 0);
    let ptp = &mut buf[PTP..];
    ptp.fill(0);
    ptp[0] = 0x00; // transportSpecific 0, messageType Sync
    ptp[1] = 0x02; // versionPTP 2
    ptp[2..4].copy_from_slice(&44u16.to_be_bytes()); // messageLength
    ptp[30..32].copy_from_slice(&(id as u16).to_be_bytes()); // sequenceId
    ptp[34..42].copy_from_slice(&id.to_be_bytes());
    buf[40..42].fill(0);
    let sum = udp_checksum(&buf[14..]);
    buf[40..42].copy_from_slice(&sum.to_be_bytes());
}

/// Parses a delay: a number and `ns`, `us`, `ms` or `s` (`10us`, `1.5ms`).
pub fn parse_delay(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(|| format!("{s:?}: expected a number and ns, us, ms or s"))?;
    let (number, unit) = t.split_at(split);
    let v: f64 = number
        .parse()
        .map_err(|_| format!("{s:?}: {number:?} is not a number"))?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (ns, us, ms, s)")),
    };
    if !(v.is_finite() && (0.0..=10.0).contains(&(v * scale))) {
        return Err(format!("{s:?}: a delay of 0 to 10 s"));
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// The id of a probe made by [`probe_frame`], None for any other frame.
pub fn parse_probe(frame: &[u8]) -> Option<u64> {
    if frame.len() < PROBE_SIZE
        || frame[12..14] != [0x08, 0x00]
        || frame[23] != 17
        || frame[36..38] != PTP_EVENT_PORT.to_be_bytes()
        || frame[PTP] & 0x0F != 0
        || frame[PTP + 1] & 0x0F != 2
    {
        return None;
    }
    Some(u64::from_be_bytes(
        frame[PTP + 34..PTP + 42].try_into().ok()?,
    ))
}

/// Round-trip times in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<u64>,
    /// Probes that did not come back in time.
    pub lost: u64,
}

impl Latencies {
    /// Adds one round trip.
    pub fn add(&mut self, ns: u64) {
        self.samples.push(ns);
    }

    /// Number of round trips measured.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True before the first round trip.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The `p`-th percentile (0..=100, nearest rank), None without samples.
    pub fn percentile(&self, p: f64) -> Option<u64> {
        let mut s = self.samples.clone();
        s.sort_unstable();
        let n = s.len();
        if n == 0 {
            return None;
        }
        // (less a hair, so that 99.9 % of 10 000 is rank 9990, not 9991 by rounding)
        let rank = ((p / 100.0) * n as f64 - 1e-9).ceil() as usize;
        Some(s[rank.clamp(1, n) - 1])
    }

    /// The summary lines: counts, min/p50/p99/p99.9/p99.99/max, and a histogram of `bins`
    /// equal bins from min to max.
    pub fn report(&self, source: &str, bins: usize) -> Vec<String> {
        let mut lines = vec![format!(
            "[latency] {} probes, {} lost, {source} time stamps",
            self.len(),
            self.lost
        )];
        let (Some(min), Some(max)) = (self.percentile(0.0), self.percentile(100.0)) else {
            return lines;
        };
        let us = |v: Option<u64>| format!("{:.3}", v.unwrap_or(0) as f64 / 1000.0);
        lines.push(format!(
            "[latency] min {} us, p50 {} us, p99 {} us, p99.9 {} us, p99.99 {} us, max {} us",
            us(Some(min)),
            us(self.percentile(50.0)),
            us(self.percentile(99.0)),
            us(self.percentile(99.9)),
            us(self.percentile(99.99)),
            us(Some(max)),
        ));
        let width = (max - min).div_ceil(bins.max(1) as u64).max(1);
        let mut counts = vec![0u64; bins.max(1)];
        for &s in &self.samples {
            let b = (((s - min) / width) as usize).min(counts.len() - 1);
            counts[b] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1);
        for (b, &c) in counts.iter().enumerate() {
            let lo = min + b as u64 * width;
            let bar = "#".repeat(((c * 40).div_ceil(top)) as usize);
            lines.push(format!(
                "[latency] {:>10.3} us .. {:>10.3} us {c:>8} {bar}",
                lo as f64 / 1000.0,
                (lo + width) as f64 / 1000.0
            ));
        }
        lines
    }
}

/// Frames on a [`DelayLine`] and when each comes out.
type InFlight = Arc<Mutex<VecDeque<(Duration, Vec<u8>)>>>;

/// A simulated device under test that sends every frame back where it came from after a
/// fixed delay: a cable of known length looped back. [`DelayLine::sink`] takes what the
/// port sends, [`DelayLine::source`] offers it to the same port once `delay` has passed.
#[derive(Clone)]
pub struct DelayLine {
    delay: Duration,
    queue: InFlight,
    /// Frames the line has carried.
    pub carried: Arc<std::sync::atomic::AtomicU64>,
}

impl DelayLine {
    /// A line with `delay` between a frame leaving the port and its coming back.
    pub fn new(delay: Duration) -> Self {
        DelayLine {
            delay,
            queue: Arc::default(),
            carried: Arc::default(),
        }
    }

    /// The end the port transmits into.
    pub fn sink(&self) -> Box<dyn TrafficSink> {
        Box::new(self.clone())
    }

    /// The end the port receives from.
    pub fn source(&self) -> Box<dyn TrafficSource> {
        Box::new(DelayOut(self.clone()))
    }
}

impl TrafficSink for DelayLine {
    fn receive(&mut self, now: Duration, frame: &[u8]) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        // A bounded line: what a stalled receiver would never take is dropped.
        if q.len() < 1 << 16 {
            q.push_back((now + self.delay, frame.to_vec()));
        }
    }
}

struct DelayOut(DelayLine);

impl TrafficSource for DelayOut {
    fn poll(&mut self, now: Duration, out: &mut dyn FnMut(&[u8])) {
        let mut q = self.0.queue.lock().unwrap_or_else(|e| e.into_inner());
        while q.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, f)) = q.pop_front() {
                out(&f);
                self.0
                    .carried
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::internet_checksum;

    #[test]
    fn probes_are_valid_udp_ptp_sync_messages_carrying_their_id() {
        let mut buf = [0u8; PROBE_SIZE];
        probe_frame(&mut buf, &Flow::default(), 0x1234_5678_9ABC);
        assert_eq!(parse_probe(&buf), Some(0x1234_5678_9ABC));
        assert_eq!(&buf[PTP + 30..PTP + 32], &[0x9A, 0xBC], "sequenceId");
        // Valid IPv4 and UDP checksums, port 319.
        assert_eq!(internet_checksum(&buf[14..34]), 0);
        assert_eq!(udp_checksum(&buf[14..]).to_be_bytes(), [buf[40], buf[41]]);
        assert_eq!(buf[36..38], PTP_EVENT_PORT.to_be_bytes());
        let mut load = [0u8; 86];
        build_udp_frame(&mut load, &Flow::default(), 7);
        assert_eq!(parse_probe(&load), None);
    }

    #[test]
    fn percentiles_by_nearest_rank_and_a_histogram() {
        let mut l = Latencies::default();
        for v in 1..=10_000u64 {
            l.add(v * 10);
        }
        assert_eq!(l.percentile(50.0), Some(50_000));
        assert_eq!(l.percentile(99.0), Some(99_000));
        assert_eq!(l.percentile(99.9), Some(99_900));
        assert_eq!(l.percentile(99.99), Some(99_990));
        assert_eq!(l.percentile(100.0), Some(100_000));
        let lines = l.report("hardware", 10);
        assert_eq!(lines.len(), 12, "{lines:#?}");
        assert!(lines[1].contains("p99.99 99.990 us"), "{}", lines[1]);
        assert!(
            lines[2..].iter().all(|b| b.contains(" 1000 ")),
            "{lines:#?}"
        );
    }

    #[test]
    fn the_delay_line_gives_frames_back_after_its_delay() {
        let line = DelayLine::new(Duration::from_micros(10));
        let (mut sink, mut source) = (line.sink(), line.source());
        sink.receive(Duration::from_micros(5), &[1; 60]);
        let mut got = Vec::new();
        source.poll(Duration::from_micros(14), &mut |f| got.push(f.to_vec()));
        assert!(got.is_empty());
        source.poll(Duration::from_micros(15), &mut |f| got.push(f.to_vec()));
        assert_eq!(got, vec![vec![1; 60]]);
    }
}

/// The probe in flight, or when the next one is due.
#[derive(Debug, Clone, Copy)]
enum State {
    Idle {
        at: Duration,
    },
    Out {
        id: u64,
        sent: Duration,
        tx_ns: Option<u64>,
        back: Option<Duration>,
    },
}

/// Sends one probe at a time among the load, matches it when it comes back and measures its
/// round trip: with the device's IEEE 1588 time stamps (`clock`) or, without, with the
/// program's clock at sending and receiving.
pub struct Prober<'d, P: Platform> {
    clock: Option<Timesync<'d, P>>,
    flow: Flow,
    interval: Duration,
    timeout: Duration,
    next_id: u64,
    state: State,
    /// The round trips so far.
    pub latencies: Latencies,
}

impl<'d, P: Platform> Prober<'d, P> {
    /// Probes of `flow` every `interval` (at most one in flight); a probe not back within
    /// `timeout` is lost.
    pub fn new(
        clock: Option<Timesync<'d, P>>,
        flow: Flow,
        interval: Duration,
        timeout: Duration,
    ) -> Self {
        Prober {
            clock,
            flow,
            interval,
            timeout,
            next_id: 0,
            state: State::Idle { at: Duration::ZERO },
            latencies: Latencies::default(),
        }
    }

    /// "hardware" or "software".
    pub fn source(&self) -> &'static str {
        if self.clock.is_some() {
            "hardware (IEEE 1588)"
        } else {
            "software"
        }
    }

    /// Sends a probe on `tx` if one is due at `now` (and the ring has room).
    pub fn send_due<'a>(&mut self, now: Duration, pool: &'a Mempool<P>, tx: &mut TxQueue<'a, P>) {
        let State::Idle { at } = self.state else {
            return;
        };
        if now < at {
            return;
        }
        let Some(mut packet) = pool.alloc() else {
            return;
        };
        if packet.set_len(PROBE_SIZE).is_err() {
            return;
        }
        let id = self.next_id;
        probe_frame(&mut packet, &self.flow, id);
        if let Some(c) = &self.clock {
            // A time stamp left over from a lost probe would block this one's.
            c.discard();
        }
        if tx.tx_timestamped(packet).is_ok() {
            self.next_id += 1;
            self.state = State::Out {
                id,
                sent: now,
                tx_ns: None,
                back: None,
            };
        }
    }

    /// A received frame: true when it is a probe (the one in flight or a late one).
    pub fn received(&mut self, frame: &[u8], now: Duration) -> bool {
        let Some(id) = parse_probe(frame) else {
            return false;
        };
        if let State::Out { id: want, back, .. } = &mut self.state {
            if id == *want && back.is_none() {
                *back = Some(now);
            }
        }
        true
    }

    /// Reads the time stamps of the probe in flight; records its round trip once complete,
    /// or counts it lost after the timeout.
    pub fn poll(&mut self, now: Duration) {
        let State::Out {
            sent, tx_ns, back, ..
        } = &mut self.state
        else {
            return;
        };
        let next = State::Idle {
            at: *sent + self.interval,
        };
        match &self.clock {
            Some(c) => {
                if tx_ns.is_none() {
                    *tx_ns = c.tx_timestamp();
                }
                if let (Some(t), Some(_)) = (*tx_ns, *back) {
                    if let Some(r) = c.rx_timestamp() {
                        self.latencies.add(r.saturating_sub(t));
                        self.state = next;
                        return;
                    }
                }
            }
            None => {
                if let Some(b) = *back {
                    self.latencies
                        .add(b.saturating_sub(*sent).as_nanos() as u64);
                    self.state = next;
                    return;
                }
            }
        }
        if now.saturating_sub(*sent) > self.timeout {
            self.latencies.lost += 1;
            self.state = State::Idle { at: now };
        }
    }
}
