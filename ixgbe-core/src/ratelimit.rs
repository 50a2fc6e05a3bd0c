//! The 82599's per-queue transmit rate limiter (datasheet §7.7.2.2, registers §8.2.3.10):
//! RTTBCNRC of the queue RTTDQSEL selects holds a rate factor RF = link speed / queue rate in
//! 10.14 fixed point and RS_ENA; the scheduler then spaces that queue's frames by RF times
//! their time on the wire at link speed.

use crate::device::Device;
use crate::error::Error;
use crate::platform::Platform;
use crate::regs;

/// Largest rate factor RF_INT.RF_DEC holds (10 integer bits): the slowest rate is link speed
/// divided by just under 1024 (9.77 Mbit/s at 10 Gb/s).
const RF_MAX: u64 = regs::RTTBCNRC_RF_MASK as u64;
/// RF = 1.0: the queue may use the whole link.
const RF_ONE: u64 = 1 << regs::RTTBCNRC_RF_INT_SHIFT;
/// RTTBCNRM.MMW_SIZE without jumbo frames (Linux's ixgbe writes 0x4 on the 82599).
const MMW_SIZE: u32 = 0x4;

/// The rate factor for `bits_per_s` on a link of `link_bits_per_s`, or None when the rate is
/// faster than the link or slower than the factor can express.
pub(crate) fn rate_factor(link_bits_per_s: u64, bits_per_s: u64) -> Option<u32> {
    if bits_per_s == 0 || bits_per_s > link_bits_per_s {
        return None;
    }
    // Rounded to nearest: the error is at most half of 2^-14 of the factor.
    let rf = ((u128::from(link_bits_per_s) << 15) / u128::from(bits_per_s)).div_ceil(2);
    let rf = u64::try_from(rf).ok()?;
    (RF_ONE..=RF_MAX).contains(&rf).then_some(rf as u32)
}

/// The rate a factor gives on a link of `link_bits_per_s`, in bit/s.
pub(crate) fn rate_of(link_bits_per_s: u64, rf: u32) -> u64 {
    ((u128::from(link_bits_per_s) << regs::RTTBCNRC_RF_INT_SHIFT) / u128::from(rf.max(1))) as u64
}

impl<P: Platform> Device<P> {
    /// Limits transmit queue `queue` to `bits_per_s` on the wire (frames with their CRC,
    /// preamble and inter-frame gap, the basis on which 10 GbE is 10 Gbit/s) with the 82599's
    /// rate scheduler (§7.7.2.2). Returns the rate the programmed factor gives (within 0.01 %
    /// of the one asked). Rates can change while traffic flows (§4.6.11).
    ///
    /// Errors: the queue does not exist, the link is down (the factor is relative to the link
    /// speed), or the rate is above the link speed or below link speed / 1024.
    pub fn set_tx_rate_limit(&self, queue: u16, bits_per_s: u64) -> Result<u64, Error> {
        let link = self.tx_rate_link(queue)?;
        let rf = rate_factor(link, bits_per_s).ok_or(Error::InvalidConfig {
            what: "Tx rate limit: rate above the link speed or below 1/1024 of it",
        })?;
        self.write_rate_scheduler(queue, regs::RTTBCNRC_RS_ENA | rf);
        Ok(rate_of(link, rf))
    }

    /// Removes the rate limit of transmit queue `queue` (RS_ENA = 0).
    pub fn clear_tx_rate_limit(&self, queue: u16) -> Result<(), Error> {
        self.queue_exists(queue)?;
        self.write_rate_scheduler(queue, 0);
        Ok(())
    }

    fn queue_exists(&self, queue: u16) -> Result<(), Error> {
        if queue >= self.queue_counts().1 {
            return Err(Error::InvalidConfig {
                what: "Tx rate limit: no such transmit queue",
            });
        }
        Ok(())
    }

    /// Link speed in bit/s, once the queue is known to exist.
    fn tx_rate_link(&self, queue: u16) -> Result<u64, Error> {
        self.queue_exists(queue)?;
        let speed = self.link().speed.ok_or(Error::InvalidConfig {
            what: "Tx rate limit: the link is down (the rate factor is relative to its speed)",
        })?;
        Ok(u64::from(speed.mbit()) * 1_000_000)
    }

    /// RTTDQSEL then RTTBCNRC, as one step under the control lock (the pair is an indexed
    /// access: another thread's selection in between would program the wrong queue).
    fn write_rate_scheduler(&self, queue: u16, value: u32) {
        let _guard = self.control_lock();
        let r = self.regs();
        r.write(regs::RTTBCNRM, MMW_SIZE);
        r.write(regs::RTTDQSEL, u32::from(queue));
        r.write(regs::RTTBCNRC, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEN_G: u64 = 10_000_000_000;

    #[test]
    fn factors_follow_link_over_rate_in_fixed_point() {
        assert_eq!(rate_factor(TEN_G, TEN_G), Some(1 << 14));
        assert_eq!(rate_factor(TEN_G, 5_000_000_000), Some(2 << 14));
        // 10 / 3 = 3.3333: 3 and 5461.33/16384, rounded to 5461.
        assert_eq!(rate_factor(TEN_G, 3_000_000_000), Some(3 << 14 | 5461));
        for rate in [9_800_000, 123_456_789, 2_000_000_000, 9_999_999_999] {
            let rf = rate_factor(TEN_G, rate).unwrap();
            let back = rate_of(TEN_G, rf) as f64;
            assert!(
                (back - rate as f64).abs() / (rate as f64) < 1e-4,
                "{rate}: {back}"
            );
        }
    }

    #[test]
    fn rates_outside_what_the_factor_holds_are_refused() {
        assert_eq!(rate_factor(TEN_G, TEN_G + 1), None, "faster than the link");
        assert_eq!(rate_factor(TEN_G, 0), None);
        assert_eq!(
            rate_factor(TEN_G, TEN_G / 1024),
            None,
            "RF = 1024 needs 11 bits"
        );
        assert!(rate_factor(TEN_G, TEN_G / 1023).is_some());
        assert!(rate_factor(1_000_000_000, 1_000_000).is_some(), "RF 1000");
        assert_eq!(rate_factor(1_000_000_000, 900_000), None, "RF 1111");
    }
}
