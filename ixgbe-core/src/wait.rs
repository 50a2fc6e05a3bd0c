//! Bounded waits on the device (every wait returns an error when its time is up) and the rate
//! limit of the warnings the data path logs.

use core::time::Duration;

use crate::error::Error;
use crate::platform::Platform;

/// Polls `done` every 10 µs (or timeout/100, whichever is larger) until it holds or `timeout`
/// of delays have passed; the typed error names what was awaited. Silent: the caller decides
/// whether a timeout is an error.
pub(crate) fn until<P: Platform>(
    platform: &P,
    timeout: Duration,
    what: &'static str,
    mut done: impl FnMut() -> bool,
) -> Result<(), Error> {
    let step = (timeout / 100).max(Duration::from_micros(10));
    let mut waited = Duration::ZERO;
    loop {
        if done() {
            return Ok(());
        }
        if waited >= timeout {
            return Err(Error::Timeout { what });
        }
        platform.delay(step);
        waited += step;
    }
}

/// [`until`], logging a timeout as an error.
pub(crate) fn poll<P: Platform>(
    platform: &P,
    timeout: Duration,
    what: &'static str,
    done: impl FnMut() -> bool,
) -> Result<(), Error> {
    until(platform, timeout, what, done).inspect_err(|e| log::error!("{e} (after {timeout:?})"))
}

/// Whether the `n`-th occurrence of a counted anomaly is logged: the 1st, 2nd, 4th, 8th... so
/// a device that misbehaves all the time costs a few lines, not one per packet.
#[inline]
pub(crate) fn worth_logging(n: u64) -> bool {
    n.is_power_of_two()
}

/// Counts one more occurrence of an anomaly in `count` and logs it when [`worth_logging`]:
/// `what` says what happened ("rx queue 3: dropped a write-back with a bad length").
#[cold]
pub(crate) fn count_anomaly(count: &mut u64, what: core::fmt::Arguments<'_>) {
    *count += 1;
    if worth_logging(*count) {
        log::warn!("{what} ({} so far)", *count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomalies_are_logged_at_powers_of_two_only() {
        let logged = (0..=65_536u64).filter(|&n| worth_logging(n)).count();
        assert_eq!(logged, 17, "65 536 anomalies, seventeen lines");
        let first: heapless::Vec<u64, 5> = (0..100).filter(|&n| worth_logging(n)).take(5).collect();
        assert_eq!(first, [1, 2, 4, 8, 16]);
    }

    #[test]
    fn each_anomaly_is_counted_whether_logged_or_not() {
        let mut count = 0;
        for q in 0..5 {
            count_anomaly(
                &mut count,
                format_args!("rx queue {q}: dropped a test frame"),
            );
        }
        assert_eq!(count, 5);
    }
}
