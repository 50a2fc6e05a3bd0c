//! Per-second rate lines (like ixy's) and the end-of-run summary (JSON Lines: [`crate::json`]).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ixgbe_core::{InterruptCounters, Stats};

use crate::irq::{cpu_line, cpu_time, irq_line, IrqTotals};

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
/// Set when stdout carries data (a pcap stream): human lines go to stderr.
static STDOUT_IS_DATA: AtomicBool = AtomicBool::new(false);

/// Says that stdout carries data (`ixgbe-pcap DEV -`): from now on every human line goes to
/// stderr.
pub fn stdout_carries_data() {
    STDOUT_IS_DATA.store(true, Ordering::Relaxed);
}

/// Records that stdout is closed (a reader such as `head` went away) and ends the run like
/// Ctrl-C.
pub fn stdout_closed() {
    STDOUT_CLOSED.store(true, Ordering::Relaxed);
    crate::request_stop();
}

/// Writes a human line: to stdout, or to stderr when stdout carries data or JSON Lines
/// ([`crate::json::enabled`]).
pub fn out(line: &str) {
    if STDOUT_IS_DATA.load(Ordering::Relaxed) || crate::json::enabled() {
        eprintln!("{line}");
    } else {
        out_data(line);
    }
}

/// Writes a line to stdout. A closed stdout (e.g. piped into `head`) ends the run like Ctrl-C
/// ([`crate::request_stop`]: the device is stopped and the summary printed), and every later
/// line goes to stderr instead.
pub fn out_data(line: &str) {
    if !STDOUT_CLOSED.load(Ordering::Relaxed) {
        let mut stdout = std::io::stdout().lock();
        match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
            Ok(()) => return,
            Err(_) => stdout_closed(),
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

/// Received bytes with the 4-byte CRC of every frame, the basis of the transmit count (GOTC
/// counts DA through CRC, §8.2.3.23.27) and of quoted line rates. The driver always strips
/// the CRC (HLREG0.RXCRCSTRP), so the per-queue byte counters it sums (QBRC, §8.2.3.23.72)
/// count the bytes posted to host memory, without it.
pub fn rx_bytes_with_crc(s: &Stats) -> u64 {
    s.rx_bytes.saturating_add(s.rx_packets.saturating_mul(4))
}

/// One line of rates for a device between two snapshots (bytes with CRC on both sides).
pub fn rate_line(name: &str, old: &Stats, new: &Stats, secs: f64) -> String {
    let rxp = new.rx_packets - old.rx_packets;
    let txp = new.tx_packets - old.tx_packets;
    let mut line = format!(
        "[{name}] RX: {:.2} Mpps, {:.0} Mbit/s | TX: {:.2} Mpps, {:.0} Mbit/s",
        mpps(rxp, secs),
        mbit_per_s(rx_bytes_with_crc(new) - rx_bytes_with_crc(old), rxp, secs),
        mpps(txp, secs),
        mbit_per_s(new.tx_bytes - old.tx_bytes, txp, secs),
    );
    let dropped = (new.rx_dropped + new.rx_missed) - (old.rx_dropped + old.rx_missed);
    if dropped > 0 {
        line.push_str(&format!(" | RX dropped: {dropped}"));
    }
    line
}

/// Prints one rate line per device (with `--json` one interval object) every second, and the
/// last, possibly shorter, interval when the run ends on time or on a signal.
pub struct RatePrinter {
    names: Vec<String>,
    last: Vec<Stats>,
    last_time: Duration,
    start: Duration,
    /// When the next line is due: whole seconds after `start`, so lines do not drift.
    next_due: Duration,
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
            start: now,
            next_due: now + Duration::from_secs(1),
            peak_tx_mpps: 0.0,
            irq: None,
        }
    }

    /// Also prints the interrupt counters and the CPU time each interval.
    pub fn with_interrupts(mut self, totals: Arc<IrqTotals>) -> Self {
        self.irq = Some((totals, InterruptCounters::default(), cpu_time()));
        self
    }

    /// True when the next per-second line is due.
    #[inline]
    pub fn due(&self, now: Duration) -> bool {
        now >= self.next_due
    }

    /// How long until the next line is due (zero when it is).
    pub fn until_due(&self, now: Duration) -> Duration {
        self.next_due.saturating_sub(now)
    }

    /// Prints the last interval (ending at `now`) unless it is empty: called when the run ends
    /// on time or on a signal, so `--seconds N` shows N intervals.
    pub fn finish(&mut self, now: Duration, stats: &[Stats]) {
        if now > self.last_time {
            self.print(now, stats);
        }
    }

    /// Prints the lines for the interval ending at `now`, given each device's current stats.
    pub fn print(&mut self, now: Duration, stats: &[Stats]) {
        let secs = now.saturating_sub(self.last_time).as_secs_f64();
        let mut tx_total = 0;
        if crate::json::enabled() {
            let t = now.saturating_sub(self.start).as_secs_f64();
            let v = crate::json::interval_object(t, secs, &self.names, &self.last, stats);
            out_data(&v.to_string());
        }
        for ((name, old), new) in self.names.iter().zip(&self.last).zip(stats) {
            out(&rate_line(name, old, new, secs));
            tx_total += new.tx_packets - old.tx_packets;
        }
        while self.next_due <= now {
            self.next_due += Duration::from_secs(1);
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

/// Prints the end-of-run summary: a human line per device (RX bytes with CRC, as TX), and with
/// `json` the summary object ([`crate::json::summary_object`]) as the very last line of stdout.
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
            s.rx_packets,
            rx_bytes_with_crc(s),
            s.tx_packets,
            s.tx_bytes,
            s.rx_dropped,
            s.rx_missed
        ));
    }
    if let Some(p) = peer {
        out(&format!(
            "[peer] sent {}, received {}, corrupted {}, lost {}",
            p.sent, p.received, p.corrupted, p.lost
        ));
    }
    if json {
        out_data(&crate::json::summary_object(seconds, names, stats, peer).to_string());
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
    fn rx_and_tx_bytes_on_the_same_basis() {
        // 10^6 frames of 60 bytes + CRC: QBRC says 60 MB, GOTC 64 MB for the same frames.
        let s = {
            let mut v = Stats::default(); // #[non_exhaustive]
            v.rx_packets = 1_000_000;
            v.rx_bytes = 60_000_000;
            v.tx_packets = 1_000_000;
            v.tx_bytes = 64_000_000;
            v
        };
        assert_eq!(rx_bytes_with_crc(&s), 64_000_000);
        let line = rate_line("d", &Stats::default(), &s, 1.0);
        assert_eq!(
            line, "[d] RX: 1.00 Mpps, 672 Mbit/s | TX: 1.00 Mpps, 672 Mbit/s",
            "{line}"
        );
    }

    #[test]
    fn printer_lines_are_due_on_whole_seconds() {
        let mut p = RatePrinter::new(vec!["d".into()], Duration::ZERO);
        assert!(!p.due(Duration::from_millis(999)));
        assert!(p.due(Duration::from_millis(1003)));
        p.print(Duration::from_millis(1003), &[Stats::default()]);
        // The next line is due at 2 s, not 2.003 s: no drift.
        assert!(p.due(Duration::from_secs(2)));
    }
}
