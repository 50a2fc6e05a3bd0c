//! IEEE 1588 time stamps (datasheet §7.9): the device's clock SYSTIM, which TIMINCA advances,
//! and the time stamps the MAC latches into TXSTMPL/H when a frame whose descriptor asks for
//! one leaves (TSYNCTXCTL) and into RXSTMPL/H when a PTP frame arrives (TSYNCRXCTL, RXMTRL).
//! Each holds one time stamp at a time: until software reads its high register, the next
//! frame is not stamped (§7.9.2.1, §7.9.2.2).

use core::time::Duration;

use crate::device::Device;
use crate::error::Error;
use crate::mempool::Packet;
use crate::platform::Platform;
use crate::regs;
use crate::tx::TxQueue;
use crate::wait::until;

/// UDP port of PTP event messages (IEEE 1588-2008 annex D), which RXMTRL.UDPT names.
pub const PTP_EVENT_PORT: u16 = 319;
/// PTP v2 message type of a Sync message, the one the Rx filter stamps.
pub const PTP_SYNC: u8 = 0;

/// TSYNCRXCTL.TYPE = 010b: PTP v2 over L2 and UDP whose message type is RXMTRL.MSGT.
const RX_TYPE_L2_L4_V2: u32 = 0b010 << 1;

/// The clock's increment per link speed, as Linux's ixgbe programs it on the 82599: SYSTIM
/// gains IV every oscillator period (6.4 ns at 10 Gb/s or without link, 64 ns at 1 Gb/s,
/// 640 ns at 100 Mb/s), IV being the period in ns times 2^shift, so that ns = SYSTIM >> shift.
fn increment(speed: Option<crate::LinkSpeed>) -> (u32, u32) {
    match speed {
        Some(crate::LinkSpeed::Mbps100) => (0x5000_0000 >> 7, 14),
        Some(crate::LinkSpeed::Gbps1) => (0x4000_0000 >> 7, 17),
        _ => (0x6666_6666 >> 7, 21),
    }
}

/// A device whose time stamping is on: reads its clock and the latched time stamps, in
/// nanoseconds of the device's clock.
pub struct Timesync<'d, P: Platform> {
    device: &'d Device<P>,
    shift: u32,
}

impl<P: Platform> Device<P> {
    /// Starts the clock at 0 and turns time stamping on: Tx frames sent with
    /// [`TxQueue::tx_timestamped`], and received PTP v2 Sync messages over UDP to port 319
    /// (TSYNCRXCTL.TYPE = 010b, RXMTRL; PTP over Ethernet would also need an ETQF filter with
    /// its 1588 bit, §7.9.1). Any time stamp still latched is discarded.
    pub fn enable_timestamps(&self) -> Result<Timesync<'_, P>, Error> {
        let (iv, shift) = increment(self.link().speed);
        let r = self.regs();
        {
            let _guard = self.control_lock();
            // TIMINCA: IP = 1 period per increment (bits 31:24), IV (bits 23:0).
            r.write(regs::TIMINCA, 1 << 24 | iv);
            r.write(regs::SYSTIML, 0);
            r.write(regs::SYSTIMH, 0);
            r.write(regs::TSYNCTXCTL, regs::TSYNC_EN);
            r.write(
                regs::RXMTRL,
                u32::from(PTP_EVENT_PORT) << 16 | u32::from(PTP_SYNC) << 8,
            );
            r.write(regs::TSYNCRXCTL, regs::TSYNC_EN | RX_TYPE_L2_L4_V2);
        }
        let t = Timesync {
            device: self,
            shift,
        };
        t.discard();
        Ok(t)
    }
}

impl<P: Platform> Timesync<'_, P> {
    fn ns(&self, raw: u64) -> u64 {
        raw >> self.shift
    }

    /// The device's clock now. SYSTIML is read first: that latches SYSTIMH (§8.2.3.26.x).
    pub fn now_ns(&self) -> u64 {
        let r = self.device.regs();
        let low = u64::from(r.read(regs::SYSTIML));
        let high = u64::from(r.read(regs::SYSTIMH));
        self.ns(high << 32 | low)
    }

    /// The transmit time stamp, if one is latched; reading it frees the register for the
    /// next frame.
    pub fn tx_timestamp(&self) -> Option<u64> {
        let r = self.device.regs();
        if r.read(regs::TSYNCTXCTL) & regs::TSYNC_VALID == 0 {
            return None;
        }
        let low = u64::from(r.read(regs::TXSTMPL));
        let high = u64::from(r.read(regs::TXSTMPH));
        Some(self.ns(high << 32 | low))
    }

    /// The receive time stamp, if one is latched; reading it frees the register for the
    /// next PTP frame.
    pub fn rx_timestamp(&self) -> Option<u64> {
        let r = self.device.regs();
        if r.read(regs::TSYNCRXCTL) & regs::TSYNC_VALID == 0 {
            return None;
        }
        let low = u64::from(r.read(regs::RXSTMPL));
        let high = u64::from(r.read(regs::RXSTMPH));
        Some(self.ns(high << 32 | low))
    }

    /// Waits up to `timeout` for the transmit time stamp (the frame must leave first).
    pub fn wait_tx_timestamp(&self, timeout: Duration) -> Result<u64, Error> {
        let mut got = None;
        until(
            self.device.platform(),
            timeout,
            "TSYNCTXCTL.VALID (Tx time stamp)",
            || {
                got = self.tx_timestamp();
                got.is_some()
            },
        )?;
        got.ok_or(Error::Timeout {
            what: "TSYNCTXCTL.VALID (Tx time stamp)",
        })
    }

    /// Waits up to `timeout` for a receive time stamp.
    pub fn wait_rx_timestamp(&self, timeout: Duration) -> Result<u64, Error> {
        let mut got = None;
        until(
            self.device.platform(),
            timeout,
            "TSYNCRXCTL.VALID (Rx time stamp)",
            || {
                got = self.rx_timestamp();
                got.is_some()
            },
        )?;
        got.ok_or(Error::Timeout {
            what: "TSYNCRXCTL.VALID (Rx time stamp)",
        })
    }

    /// Reads both high registers, freeing them: a time stamp latched for a frame that never
    /// reached the program (lost, or dropped for want of descriptors) does not block the next.
    pub fn discard(&self) {
        let r = self.device.regs();
        let _ = r.read(regs::TXSTMPH);
        let _ = r.read(regs::RXSTMPH);
    }
}

impl<'a, P: Platform> TxQueue<'a, P> {
    /// Sends one packet whose descriptor asks for a transmit time stamp (MAC.1588, §7.9.2.1);
    /// read it with [`Timesync::wait_tx_timestamp`]. Gives the packet back when the ring is
    /// full. Only one time stamp is latched at a time: send the next once this one was read.
    pub fn tx_timestamped(&mut self, packet: Packet<'a>) -> Result<(), Packet<'a>> {
        self.send_one(packet, crate::descriptors::TX_CMD_TSTAMP)
    }
}
