//! Per-second rate lines (like ixy's) and the JSON summary.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ixgbe_core::{InterruptCounters, Stats};

use crate::irq::{cpu_line, cpu_time, irq_line, IrqTotals};
use serde_json::{json, Value};

/// What the simulated peer counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerTotals {
    /// Frames the peer offered to the device(s).
    pub sent: u64,
    /// Frames the peer received from the device(s).
    pub received: u64,
    /// Received frames that failed validation.
    pub corrupted: u64,
    /// Frames missing from the peer's received sequences (gaps).
    pub lost: u64,
}

/// Set once stdout turned out to be closed.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes a line to stdout. A closed stdout (e.g. piped into `head`) ends the run like Ctrl-C
/// ([`crate::request_stop`]: the device is stopped and the summary printed), and every later
/// line goes to stderr instead.
pub fn out(line: &str) {
    if !STDOUT_CLOSED.load(Ordering::Relaxed) {
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
            Ok(()) => return,
            Err(_) => {
                STDOUT_CLOSED.store(true, Ordering::Relaxed);
                crate::request_stop();
            }
        }
    }
    eprintln!("{line}");
}

/// Mbit/s on the wire for `packets` frames of `bytes` bytes in `secs` seconds, counting the
/// 20 bytes of preamble, start delimiter and inter-frame gap per frame (as ixy does).
pub fn mbit_per_s(bytes: u64, packets: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return 0.0;
    }
    (bytes as f64 + packets as f64 * 20.0) * 8.0 / 1e6 / secs
}

/// Million packets per second.
pub fn mpps(packets: u64, secs: f64) -> f64 {
    if secs <= 0.0 {
        return 0.0;
    }
    packets as f64 / 1e6 / secs
}

/// One line of rates for a device between two snapshots.
pub fn rate_line(name: &str, old: &Stats, new: &Stats, secs: f64) -> String {
    let rxp = new.rx_packets - old.rx_packets;
    let txp = new.tx_packets - old.tx_packets;
    let mut line = format!(
        "[{name}] RX: {:.2} Mpps, {:.0} Mbit/s | TX: {:.2} Mpps, {:.0} Mbit/s",
        mpps(rxp, secs),
        mbit_per_s(new.rx_bytes - old.rx_bytes, rxp, secs),
        mpps(txp, secs),
        mbit_per_s(new.tx_bytes - old.tx_bytes, txp, secs),
    );
    let dropped = (new.rx_dropped + new.rx_missed) - (old.rx_dropped + old.rx_missed);
    if dropped > 0 {
        line.push_str(&format!(" | RX dropped: {dropped}"));
    }
    line
}

/// Prints one rate line per device each time at least a second has passed.
pub struct RatePrinter {
    names: Vec<String>,
    last: Vec<Stats>,
    last_time: Duration,
    /// Highest TX rate seen in any interval, Mpps summed over devices.
    pub peak_tx_mpps: f64,
    /// With `--interrupts`: the queues' counters, their values and the CPU time at the last
    /// print.
    irq: Option<(Arc<IrqTotals>, InterruptCounters, Duration)>,
}

impl RatePrinter {
    /// Starts counting from time `now` with every device at zero.
    pub fn new(names: Vec<String>, now: Duration) -> Self {
        let last = vec![Stats::default(); names.len()];
        RatePrinter {
            names,
            last,
            last_time: now,
            peak_tx_mpps: 0.0,
            irq: None,
        }
    }

    /// Also prints the interrupt counters and the CPU time each interval.
    pub fn with_interrupts(mut self, totals: Arc<IrqTotals>) -> Self {
        self.irq = Some((totals, InterruptCounters::default(), cpu_time()));
        self
    }

    /// True when a second has passed since the last print.
    #[inline]
    pub fn due(&self, now: Duration) -> bool {
        now.saturating_sub(self.last_time) >= Duration::from_secs(1)
    }

    /// Prints the lines for the interval ending at `now`, given each device's current stats.
    pub fn print(&mut self, now: Duration, stats: &[Stats]) {
        let secs = now.saturating_sub(self.last_time).as_secs_f64();
        let mut tx_total = 0;
        for ((name, old), new) in self.names.iter().zip(&self.last).zip(stats) {
            out(&rate_line(name, old, new, secs));
            tx_total += new.tx_packets - old.tx_packets;
        }
        self.peak_tx_mpps = self.peak_tx_mpps.max(mpps(tx_total, secs));
        if let Some((totals, last, last_cpu)) = &mut self.irq {
            let (sum, polling) = totals.sum();
            out(&irq_line(last, &sum, polling, totals.queues(), secs));
            let cpu = cpu_time();
            out(&cpu_line(
                cpu.saturating_sub(*last_cpu),
                Duration::from_secs_f64(secs),
            ));
            *last = sum;
            *last_cpu = cpu;
        }
        self.last.copy_from_slice(stats);
        self.last_time = now;
    }
}

/// The JSON summary object: `{"seconds", "devices": [...], "peer"?: {...}}`.
pub fn summary_json(
    seconds: f64,
    names: &[String],
    stats: &[Stats],
    peer: Option<PeerTotals>,
) -> Value {
    let devices: Vec<Value> = names
        .iter()
        .zip(stats)
        .map(|(name, s)| {
            json!({
                "name": name,
                "rx_packets": s.rx_packets,
                "tx_packets": s.tx_packets,
                "rx_bytes": s.rx_bytes,
                "tx_bytes": s.tx_bytes,
                "rx_dropped": s.rx_dropped,
                "rx_missed": s.rx_missed,
            })
        })
        .collect();
    let mut v = json!({ "seconds": seconds, "devices": devices });
    if let Some(p) = peer {
        v["peer"] = json!({
            "sent": p.sent,
            "received": p.received,
            "corrupted": p.corrupted,
            "lost": p.lost,
        });
    }
    v
}

/// Prints the end-of-run summary: a human line per device, and with `json` the JSON object as
/// the very last line of stdout.
pub fn print_summary(
    seconds: f64,
    names: &[String],
    stats: &[Stats],
    peer: Option<PeerTotals>,
    json: bool,
) {
    for (name, s) in names.iter().zip(stats) {
        out(&format!(
            "[{name}] total: RX {} packets ({} bytes), TX {} packets ({} bytes), \
             RX dropped {}, missed {} in {seconds:.3} s",
            s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes, s.rx_dropped, s.rx_missed
        ));
    }
    if let Some(p) = peer {
        out(&format!(
            "[peer] sent {}, received {}, corrupted {}, lost {}",
            p.sent, p.received, p.corrupted, p.lost
        ));
    }
    if json {
        out(&summary_json(seconds, names, stats, peer).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_rate_64_byte_frames_is_10_gbit() {
        // 14.88 Mpps of 64-byte frames (incl. CRC) is 10 Gbit/s with preamble and gap.
        let packets = 14_880_952;
        let mbit = mbit_per_s(packets * 64, packets, 1.0);
        assert!((mbit - 10_000.0).abs() < 1.0, "{mbit}");
        assert!((mpps(packets, 1.0) - 14.88).abs() < 0.01);
    }

    #[test]
    fn summary_has_the_documented_shape() {
        let s = {
            let mut v = Stats::default(); // #[non_exhaustive]
            v.rx_packets = 3;
            v.tx_packets = 2;
            v.rx_bytes = 180;
            v.tx_bytes = 128;
            v.rx_dropped = 1;
            v
        };
        let v = summary_json(
            1.5,
            &["sim0".into()],
            &[s],
            Some(PeerTotals {
                sent: 3,
                received: 2,
                corrupted: 0,
                lost: 0,
            }),
        );
        let parsed: Value = serde_json::from_str(&v.to_string()).unwrap();
        assert_eq!(parsed["seconds"], 1.5);
        assert_eq!(parsed["devices"][0]["name"], "sim0");
        assert_eq!(parsed["devices"][0]["rx_packets"], 3);
        assert_eq!(parsed["devices"][0]["tx_bytes"], 128);
        assert_eq!(parsed["devices"][0]["rx_dropped"], 1);
        assert_eq!(parsed["peer"]["received"], 2);
        let no_peer = summary_json(1.0, &["a".into()], &[s], None);
        assert!(no_peer.get("peer").is_none());
    }
}
