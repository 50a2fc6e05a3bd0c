//! What `ixgbe-pktgen` sends: rates (packets/s or bit/s) and their software pacing, frame
//! sizes (one, a sweep, IMIX) and flows (ranges of addresses and ports).

use std::time::Duration;

use crate::frame::{Flow, MAX_FRAME, MIN_FRAME};
use crate::sim::wire_time_ps;

/// Bytes on the wire per frame besides the frame without FCS: FCS 4, preamble + SFD 8, gap 12.
const WIRE_OVERHEAD: u64 = 24;

/// A transmit rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// Frames per second.
    Pps(f64),
    /// Bits per second on the wire, counting FCS, preamble and gap (20 + 4 bytes per frame),
    /// the basis on which 10 GbE is 10 Gbit/s.
    Bps(f64),
}

impl Rate {
    /// Picoseconds one frame of `len` bytes (without FCS) takes at this rate.
    pub fn cost_ps(&self, len: usize) -> f64 {
        match *self {
            Rate::Pps(pps) => 1e12 / pps,
            Rate::Bps(bps) => (len as u64 + WIRE_OVERHEAD) as f64 * 8.0 * 1e12 / bps,
        }
    }
}

/// Parses `14.88Mpps`, `1000pps`, `1000` (packets/s), `5Gbit`, `100Mbit/s`, `2.5Gbps`.
pub fn parse_rate(s: &str) -> Result<Rate, String> {
    let lower = s.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix("/s").unwrap_or(&lower);
    let (number, unit) = match lower.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => lower.split_at(i),
        None => (lower, "pps"),
    };
    let v: f64 = number
        .parse()
        .map_err(|_| format!("{s:?}: expected a number and a unit such as 1Mpps or 5Gbit"))?;
    let (scale, bits) = match unit {
        "pps" => (1.0, false),
        "kpps" => (1e3, false),
        "mpps" => (1e6, false),
        "bit" | "bps" => (1.0, true),
        "kbit" | "kbps" => (1e3, true),
        "mbit" | "mbps" => (1e6, true),
        "gbit" | "gbps" => (1e9, true),
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (pps, kpps, Mpps, bit, kbit, Mbit, Gbit)"
            ))
        }
    };
    let v = v * scale;
    if !(v.is_finite() && v >= 1.0) {
        return Err(format!("{s:?}: the rate must be at least 1"));
    }
    Ok(if bits { Rate::Bps(v) } else { Rate::Pps(v) })
}

/// Software pacing: frame by frame, each frame may go once the previous ones' time at the rate
/// has passed. Credit does not build up beyond [`MAX_LAG`] or one call's `max` frames,
/// whichever is longer (a stalled sender does not burst).
#[derive(Debug, Clone)]
pub struct Pacing {
    rate: Option<Rate>,
    line_rate: bool,
    /// Senders sharing the line rate (each gets 1/share of it).
    line_share: u32,
    next_ps: f64,
}

/// How long due frames wait for a whole batch to become due.
pub const HOLD: Duration = Duration::from_micros(50);

/// How far behind its schedule a sender may fall before the schedule moves on.
pub const MAX_LAG: Duration = Duration::from_micros(100);

impl Pacing {
    /// Frames at `rate` (None: as fast as possible), and never faster than 10 GbE line rate
    /// with `line_rate` (the simulator, whose wire does not limit the rate itself).
    pub fn new(rate: Option<Rate>, line_rate: bool) -> Self {
        Pacing {
            rate,
            line_rate,
            line_share: 1,
            next_ps: f64::NAN,
        }
    }

    /// Caps the rate at 1/`share` of 10 GbE line rate (one of `share` senders on one port).
    pub fn set_line_rate_share(&mut self, share: u32) {
        self.line_rate = true;
        self.line_share = share.max(1);
    }

    /// True when frames are paced at all.
    pub fn active(&self) -> bool {
        self.rate.is_some() || self.line_rate
    }

    /// Picoseconds one frame of `len` bytes costs.
    pub fn cost_ps(&self, len: usize) -> f64 {
        let line = if self.line_rate {
            wire_time_ps(len) as f64 * f64::from(self.line_share)
        } else {
            0.0
        };
        self.rate.map_or(line, |r| r.cost_ps(len).max(line))
    }

    /// How many of the next `max` frames (frame `k` of them `len_of(k)` bytes) may go at `now`.
    pub fn take(
        &mut self,
        now: Duration,
        max: usize,
        mut len_of: impl FnMut(usize) -> usize,
    ) -> usize {
        if !self.active() {
            return max;
        }
        let now_ps = now.as_nanos() as f64 * 1000.0;
        let lag = (MAX_LAG.as_nanos() as f64 * 1000.0).max(max as f64 * self.cost_ps(len_of(0)));
        if self.next_ps.is_nan() || self.next_ps < now_ps - lag {
            self.next_ps = if self.next_ps.is_nan() {
                now_ps
            } else {
                now_ps - lag
            };
        }
        // Send whole batches: fewer frames go only once the oldest has waited HOLD (a
        // doorbell per frame would cost more than the frames at high rates).
        let mut due = 0;
        let mut t = self.next_ps;
        while due < max && t <= now_ps {
            t += self.cost_ps(len_of(due));
            due += 1;
        }
        if due < max && now_ps - self.next_ps < HOLD.as_nanos() as f64 * 1000.0 {
            return 0;
        }
        self.next_ps = t;
        due
    }
}

/// The frame sizes (without FCS) a run cycles through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sizes(pub Vec<usize>);

/// The simple IMIX (7:4:1 of 40-, 576- and 1500-byte IP packets, as in RFC 6985 and Spirent's
/// and pktgen-dpdk's IMIX): frames of 60 (54 padded), 590 and 1514 bytes without FCS,
/// interleaved so that any 12 consecutive frames hold the mix.
pub const IMIX: [usize; 12] = [60, 590, 60, 60, 1514, 60, 590, 60, 60, 590, 60, 590];

/// Parses `60` (one size), `60-1514:64` (a sweep from 60 to 1514 in steps of 64, the
/// last step cut at 1514) or `imix`.
pub fn parse_sizes(s: &str) -> Result<Sizes, String> {
    if s.eq_ignore_ascii_case("imix") {
        return Ok(Sizes(IMIX.to_vec()));
    }
    let num = |t: &str| -> Result<usize, String> {
        let v: usize = t
            .parse()
            .map_err(|_| format!("{t:?} is not a whole number"))?;
        if (MIN_FRAME..=MAX_FRAME).contains(&v) {
            Ok(v)
        } else {
            Err(format!(
                "frame sizes are from {MIN_FRAME} to {MAX_FRAME} bytes (without FCS), not {v}"
            ))
        }
    };
    match s.split_once('-') {
        None => Ok(Sizes(vec![num(s)?])),
        Some((lo, rest)) => {
            let (hi, step) = rest.split_once(':').unwrap_or((rest, "1"));
            let (lo, hi) = (num(lo)?, num(hi)?);
            let step: usize = step
                .parse()
                .ok()
                .filter(|&v| v > 0)
                .ok_or_else(|| format!("{step:?} is not a positive step"))?;
            if lo > hi {
                return Err(format!("{lo}-{hi}: the first size is above the last"));
            }
            let mut v: Vec<usize> = (lo..=hi).step_by(step).collect();
            if v.last() != Some(&hi) {
                v.push(hi);
            }
            Ok(Sizes(v))
        }
    }
}

impl Sizes {
    /// Mean frame size (for the virtual clock's step).
    pub fn mean(&self) -> usize {
        self.0.iter().sum::<usize>() / self.0.len().max(1)
    }
}

/// An inclusive range of values, `A` or `A-B`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range<T> {
    /// First value.
    pub lo: T,
    /// Last value.
    pub hi: T,
}

/// Parses `10.0.0.1` or `10.0.0.1-10.0.0.254`.
pub fn parse_ip_range(s: &str) -> Result<Range<u32>, String> {
    let ip = |t: &str| -> Result<u32, String> {
        t.parse::<std::net::Ipv4Addr>()
            .map(u32::from)
            .map_err(|_| format!("{t:?} is not an IPv4 address"))
    };
    range(s, ip)
}

/// Parses `1000` or `1000-1999`.
pub fn parse_port_range(s: &str) -> Result<Range<u16>, String> {
    range(s, |t| {
        t.parse::<u16>().map_err(|_| format!("{t:?} is not a port"))
    })
}

fn range<T: PartialOrd + Copy>(
    s: &str,
    one: impl Fn(&str) -> Result<T, String>,
) -> Result<Range<T>, String> {
    let (lo, hi) = match s.split_once('-') {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let v = one(s)?;
            (v, v)
        }
    };
    if lo > hi {
        return Err(format!("{s:?}: the range runs backwards"));
    }
    Ok(Range { lo, hi })
}

/// The flows of a run: flow `k` takes the `k`-th value of each range (each range repeats when
/// it is shorter than the number of flows).
#[derive(Debug, Clone)]
pub struct Flows {
    /// Source addresses.
    pub src_ip: Range<u32>,
    /// Destination addresses.
    pub dst_ip: Range<u32>,
    /// UDP source ports.
    pub src_port: Range<u16>,
    /// UDP destination ports.
    pub dst_port: Range<u16>,
    /// MAC addresses.
    pub src_mac: [u8; 6],
    /// Destination MAC address.
    pub dst_mac: [u8; 6],
}

impl Flows {
    /// Flow `k`.
    pub fn flow(&self, k: u64) -> Flow {
        let pick32 = |r: Range<u32>| r.lo + (k % (u64::from(r.hi - r.lo) + 1)) as u32;
        let pick16 = |r: Range<u16>| r.lo + (k % (u64::from(r.hi - r.lo) + 1)) as u16;
        Flow {
            dst_mac: self.dst_mac,
            src_mac: self.src_mac,
            src_ip: pick32(self.src_ip).to_be_bytes(),
            dst_ip: pick32(self.dst_ip).to_be_bytes(),
            src_port: pick16(self.src_port),
            dst_port: pick16(self.dst_port),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units() {
        assert_eq!(parse_rate("1000"), Ok(Rate::Pps(1000.0)));
        assert_eq!(parse_rate("14.88Mpps"), Ok(Rate::Pps(14.88e6)));
        assert_eq!(parse_rate("5Gbit/s"), Ok(Rate::Bps(5e9)));
        assert_eq!(parse_rate("100mbit"), Ok(Rate::Bps(100e6)));
        assert!(parse_rate("5 furlongs").is_err());
        assert!(parse_rate("0").is_err());
        // 10 Gbit/s of 60-byte frames is line rate: 67.2 ns per frame.
        assert!((Rate::Bps(10e9).cost_ps(60) - 67_200.0).abs() < 1e-6);
    }

    #[test]
    fn sizes_sweep_and_imix() {
        assert_eq!(parse_sizes("60"), Ok(Sizes(vec![60])));
        assert_eq!(
            parse_sizes("60-260:64"),
            Ok(Sizes(vec![60, 124, 188, 252, 260]))
        );
        assert_eq!(parse_sizes("100-100"), Ok(Sizes(vec![100])));
        assert!(parse_sizes("59").is_err());
        assert!(parse_sizes("200-100").is_err());
        assert!(parse_sizes("60-100:0").is_err());
        let imix = parse_sizes("IMIX").unwrap().0;
        let count = |n| imix.iter().filter(|&&s| s == n).count();
        assert_eq!((count(60), count(590), count(1514)), (7, 4, 1));
    }

    #[test]
    fn pacing_holds_the_rate_and_the_line_rate() {
        let mut p = Pacing::new(Some(Rate::Pps(1e6)), true);
        let mut sent = 0;
        for us in 0..=10_000u64 {
            sent += p.take(Duration::from_micros(us), 32, |_| 60);
        }
        // 10 ms at 1 Mpps: 10 000 frames (+1: the first is due at time 0), less those due but
        // held for a whole batch (at most 31, held at most HOLD).
        assert!((10_001 - 31..=10_001).contains(&sent), "{sent}");
        // Steps longer than the lag cap still get their frames (one call's worth).
        let mut p = Pacing::new(Some(Rate::Pps(1e4)), true);
        let mut sent = 0;
        for ms in 0..=1000u64 {
            sent += p.take(Duration::from_millis(ms * 3), 32, |_| 60);
        }
        assert_eq!(sent, 30_001);
        // Asking for more than line rate gets line rate.
        let mut p = Pacing::new(Some(Rate::Pps(100e6)), true);
        let mut sent = 0;
        for us in 0..=1000u64 {
            sent += p.take(Duration::from_micros(us), 256, |_| 60);
        }
        let want = 1e-3 / 67.2e-9;
        assert!(
            sent as f64 <= want + 1.0 && sent as f64 >= want - 256.0,
            "{sent} vs {want}"
        );
        // No rate and no line rate: no pacing.
        assert_eq!(Pacing::new(None, false).take(Duration::ZERO, 7, |_| 60), 7);
    }

    #[test]
    fn flows_walk_their_ranges() {
        let f = Flows {
            src_ip: parse_ip_range("10.0.0.1-10.0.0.3").unwrap(),
            dst_ip: parse_ip_range("10.1.0.1").unwrap(),
            src_port: parse_port_range("1000-1001").unwrap(),
            dst_port: parse_port_range("2000").unwrap(),
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
        };
        let ips: Vec<_> = (0..4).map(|k| f.flow(k).src_ip[3]).collect();
        assert_eq!(ips, [1, 2, 3, 1]);
        let ports: Vec<_> = (0..3).map(|k| f.flow(k).src_port).collect();
        assert_eq!(ports, [1000, 1001, 1000]);
        assert!(parse_ip_range("10.0.0.9-10.0.0.1").is_err());
    }
}
