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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomalies_are_logged_at_powers_of_two_only() {
        let logged: u64 = (0..=1_000_000u64).filter(|&n| worth_logging(n)).count() as u64;
        assert_eq!(logged, 20, "a million anomalies, twenty lines");
        let first: heapless::Vec<u64, 5> = (0..100).filter(|&n| worth_logging(n)).take(5).collect();
        assert_eq!(first, [1, 2, 4, 8, 16]);
    }
}
