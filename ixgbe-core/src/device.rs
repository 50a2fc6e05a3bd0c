//! The running device: statistics, link, MAC address and filtering (bring-up is in `init`).

use core::time::Duration;

use crate::config::InterruptConfig;
pub use crate::config::{
    Config, DEFAULT_MAX_FRAME_SIZE, DEFAULT_RING_SIZE, MAX_FRAME_SIZE, MAX_RING_SIZE,
    MAX_RX_QUEUES, MAX_TX_QUEUES,
};
use crate::error::Error;
use crate::platform::Platform;
use crate::regs::{self, Regs};
use crate::rx::RxQueue;
use crate::rxctrl;
use crate::tx::TxQueue;
use crate::wait::poll;

/// Link speed as LINKS reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkSpeed {
    /// 100 Mb/s.
    Mbps100,
    /// 1 Gb/s.
    Gbps1,
    /// 10 Gb/s.
    Gbps10,
}

impl LinkSpeed {
    /// Speed in Mbit/s.
    pub fn mbit(self) -> u32 {
        match self {
            LinkSpeed::Mbps100 => 100,
            LinkSpeed::Gbps1 => 1_000,
            LinkSpeed::Gbps10 => 10_000,
        }
    }
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinkStatus {
    /// Link is up (LINKS bit 30).
    pub up: bool,
    /// Negotiated speed, when up and known.
    pub speed: Option<LinkSpeed>,
}

/// Device counters, accumulated in software from the clear-on-read registers (§8.2.3.23).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Frames received into host memory (Σ QPRC; GPRC also counts frames later missed).
    pub rx_packets: u64,
    /// Bytes received into host memory (Σ QBRC).
    pub rx_bytes: u64,
    /// Frames transmitted (GPTC).
    pub tx_packets: u64,
    /// Bytes transmitted, DA through CRC (GOTC).
    pub tx_bytes: u64,
    /// Frames lost because the Rx packet buffer overflowed (Σ RXMPC).
    pub rx_missed: u64,
    /// Frames dropped because their queue had no free descriptor or was disabled (Σ QPRDC).
    pub rx_dropped: u64,
    /// Frames with a CRC error (CRCERRS).
    pub rx_crc_errors: u64,
    /// Frames longer than the maximum frame size ([`Config::max_frame_size`]) with a good CRC,
    /// dropped by the MAC (ROC, §8.2.3.23.52).
    pub rx_oversize: u64,
}

/// A running device: the control side. Queues are separate values (see [`Started`]), so they
/// can move to other threads while this one reads statistics.
pub struct Device<P: Platform> {
    regs: Regs<P>,
    totals: spin::Mutex<Stats>,
    /// Serialises read-modify-writes of shared control registers (RXCTRL, FCTRL, RAR0) and
    /// indexed accesses (RTTDQSEL).
    control: spin::Mutex<()>,
    rx_queues: u16,
    tx_queues: u16,
    interrupts: Option<InterruptConfig>,
}

/// What [`Device::init`] returns: the device and its queues, ready for traffic.
pub struct Started<'a, P: Platform> {
    /// The control side.
    pub device: Device<P>,
    /// Receive queues 0..rx_queues.
    pub rx: heapless::Vec<RxQueue<'a, P>, MAX_RX_QUEUES>,
    /// Transmit queues 0..tx_queues.
    pub tx: heapless::Vec<TxQueue<'a, P>, MAX_TX_QUEUES>,
}

impl<P: Platform> Device<P> {
    pub(crate) fn new(regs: Regs<P>, config: &Config) -> Self {
        Device {
            regs,
            totals: spin::Mutex::new(Stats::default()),
            control: spin::Mutex::new(()),
            rx_queues: config.rx_queues,
            tx_queues: config.tx_queues,
            interrupts: config.interrupts,
        }
    }

    pub(crate) fn regs(&self) -> &Regs<P> {
        &self.regs
    }

    /// Held while changing shared control registers (or an indexed register pair).
    pub(crate) fn control_lock(&self) -> spin::MutexGuard<'_, ()> {
        self.control.lock()
    }

    pub(crate) fn queue_counts(&self) -> (u16, u16) {
        (self.rx_queues, self.tx_queues)
    }

    pub(crate) fn interrupt_config(&self) -> Option<InterruptConfig> {
        self.interrupts
    }

    /// Reads every counter once to clear it and zeroes the totals.
    pub(crate) fn reset_stats(&self) {
        let mut totals = self.totals.lock();
        let _ = self.read_counters();
        *totals = Stats::default();
    }

    fn read_counters(&self) -> Stats {
        let r = &self.regs;
        let mut s = Stats::default();
        let slots = u32::from(self.rx_queues).max(1);
        for k in 0..16 {
            // Reading every slot keeps the clear-on-read counters from saturating; only the
            // slots in use can be non-zero.
            let packets = u64::from(r.read(regs::qprc(k)));
            let bytes = read36(r, regs::qbrc_l(k), regs::qbrc_h(k));
            let dropped = u64::from(r.read(regs::qprdc(k)));
            if k < slots {
                s.rx_packets = s.rx_packets.saturating_add(packets);
                s.rx_bytes = s.rx_bytes.saturating_add(bytes);
                s.rx_dropped = s.rx_dropped.saturating_add(dropped);
            }
        }
        for n in 0..8 {
            s.rx_missed = s
                .rx_missed
                .saturating_add(u64::from(r.read(regs::rxmpc(n))));
        }
        s.tx_packets = u64::from(r.read(regs::GPTC));
        s.tx_bytes = read36(r, regs::GOTCL, regs::GOTCH);
        s.rx_crc_errors = u64::from(r.read(regs::CRCERRS));
        s.rx_oversize = u64::from(r.read(regs::ROC));
        // GPRC and GORC are read so that they do not saturate; the per-queue counters above are
        // the better measure of what reached the host.
        let _ = r.read(regs::GPRC);
        let _ = read36(r, regs::GORCL, regs::GORCH);
        s
    }

    /// Accumulated statistics since init. Reads (and thereby clears) the device counters.
    /// Totals saturate rather than wrap (whatever the device's registers read).
    ///
    /// Call it at least every 50 seconds while traffic flows: the device's counters stick at
    /// their maximum instead of wrapping (§8.2.3.23), and at 10 Gb/s line rate the 36-bit
    /// byte counters fill in about 55 s (2^36 bytes at 1.25 GB/s), the 32-bit packet counters
    /// in about 290 s (at 14.88 Mpps); whatever arrives after that is lost to the totals.
    /// Linux's ixgbe reads every 2 s; the apps read once per second.
    pub fn stats(&self) -> Stats {
        let mut totals = self.totals.lock();
        let d = self.read_counters();
        totals.rx_packets = totals.rx_packets.saturating_add(d.rx_packets);
        totals.rx_bytes = totals.rx_bytes.saturating_add(d.rx_bytes);
        totals.tx_packets = totals.tx_packets.saturating_add(d.tx_packets);
        totals.tx_bytes = totals.tx_bytes.saturating_add(d.tx_bytes);
        totals.rx_missed = totals.rx_missed.saturating_add(d.rx_missed);
        totals.rx_dropped = totals.rx_dropped.saturating_add(d.rx_dropped);
        totals.rx_crc_errors = totals.rx_crc_errors.saturating_add(d.rx_crc_errors);
        totals.rx_oversize = totals.rx_oversize.saturating_add(d.rx_oversize);
        *totals
    }

    /// Current link state (LINKS, §8.2.3.22.20).
    pub fn link(&self) -> LinkStatus {
        let links = self.regs.get(regs::LINKS);
        let up = links.is_set(regs::LINKS::LINK_UP);
        let speed = match links.read_as_enum(regs::LINKS::LINK_SPEED) {
            Some(regs::LINKS::LINK_SPEED::Value::Speed100M) => Some(LinkSpeed::Mbps100),
            Some(regs::LINKS::LINK_SPEED::Value::Speed1G) => Some(LinkSpeed::Gbps1),
            Some(regs::LINKS::LINK_SPEED::Value::Speed10G) => Some(LinkSpeed::Gbps10),
            None => None,
        };
        LinkStatus {
            up,
            speed: if up { speed } else { None },
        }
    }

    /// Waits up to `timeout` for the link to come up (Intel drivers wait up to 9 s, ixy 10 s).
    pub fn wait_for_link(&self, timeout: Duration) -> Result<LinkStatus, Error> {
        poll(
            self.regs.platform(),
            timeout,
            "LINKS.LINK_UP (link up)",
            || self.link().up,
        )?;
        Ok(self.link())
    }

    /// The MAC address in receive address register 0 (loaded from the EEPROM at reset).
    pub fn mac(&self) -> [u8; 6] {
        let low = self.regs.read(regs::ral(0)).to_le_bytes();
        let high = self.regs.read(regs::rah(0)).to_le_bytes();
        [low[0], low[1], low[2], low[3], high[0], high[1]]
    }

    /// Sets the MAC address the device accepts unicast frames for (RAR0, address valid).
    pub fn set_mac(&self, mac: [u8; 6]) {
        let _guard = self.control.lock();
        let low = u32::from_le_bytes([mac[0], mac[1], mac[2], mac[3]]);
        let high = u32::from(u16::from_le_bytes([mac[4], mac[5]]));
        self.regs.write(regs::ral(0), low);
        self.regs
            .write_fields(regs::rah(0), regs::RAH::RAH.val(high) + regs::RAH::AV::SET);
    }

    /// Switches unicast and multicast promiscuous mode. FCTRL may only change while
    /// RXCTRL.RXEN = 0 (§8.2.3.7.1), so receive is paused around the change.
    pub fn set_promiscuous(&self, on: bool) -> Result<(), Error> {
        let _guard = self.control.lock();
        let was_enabled = self.regs.is_set(regs::RXCTRL, regs::RXCTRL::RXEN);
        self.regs.modify(regs::RXCTRL, regs::RXCTRL::RXEN::CLEAR);
        self.regs.modify(regs::FCTRL, rxctrl::fctrl_value(on));
        if was_enabled {
            rxctrl::enable_rx(&self.regs);
        }
        Ok(())
    }

    /// Lets tagged frames of VLAN `vid` (0..=4095) in, or no longer: its bit in the VLAN
    /// filter table (VFTA, §8.2.3.7.11), which decides only with
    /// [`Config::vlan_filter`](crate::Config::vlan_filter) on.
    pub fn set_vlan_filter(&self, vid: u16, accept: bool) -> Result<(), Error> {
        if vid > 4095 {
            return Err(Error::InvalidConfig {
                what: "a VLAN ID is 12 bits (0..=4095)",
            });
        }
        let _guard = self.control.lock();
        let reg = regs::vfta(u32::from(vid >> 5));
        let bit = 1u32 << (vid & 31);
        let old = self.regs.read(reg);
        self.regs
            .write(reg, if accept { old | bit } else { old & !bit });
        Ok(())
    }

    /// True when unicast promiscuous mode is on.
    pub fn promiscuous(&self) -> bool {
        self.regs.is_set(regs::FCTRL, regs::FCTRL::UPE)
    }

    /// The platform this device runs on.
    pub fn platform(&self) -> &P {
        self.regs.platform()
    }
}

impl<P: Platform> Drop for Device<P> {
    fn drop(&mut self) {
        // Hand the port back to firmware (§8.2.3.1.3).
        self.regs
            .modify(regs::CTRL_EXT, regs::CTRL_EXT::DRV_LOAD::CLEAR);
    }
}

/// Reads a 36-bit counter: low register first (§8.2.3.23), then bits 3:0 of the high one.
fn read36<P: Platform>(r: &Regs<P>, low: regs::Reg, high: regs::Reg) -> u64 {
    let l = u64::from(r.read(low));
    let h = u64::from(r.read(high) & 0xF);
    (h << 32) | l
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::fake::FakePlatform;

    /// Totals saturate: a device whose counters read all ones on every poll (the fake platform
    /// returns the last value written, so they never clear) cannot make them overflow (a panic
    /// in debug builds, a silent wrap in release, before).
    #[test]
    fn statistics_saturate_instead_of_overflowing() {
        let p = FakePlatform::default();
        let regs = Regs::new(p.clone());
        for (low, high) in [
            (regs::qbrc_l(0), regs::qbrc_h(0)),
            (regs::GOTCL, regs::GOTCH),
        ] {
            regs.write(low, u32::MAX);
            regs.write(high, 0xF);
        }
        for reg in [regs::qprc(0), regs::GPTC, regs::CRCERRS, regs::rxmpc(0)] {
            regs.write(reg, u32::MAX);
        }
        let device = Device::new(regs, &Config::default());
        {
            let mut t = device.totals.lock();
            t.rx_packets = u64::MAX - 1;
            t.rx_bytes = u64::MAX - 1;
            t.tx_packets = u64::MAX - 1;
            t.tx_bytes = u64::MAX - 1;
            t.rx_missed = u64::MAX - 1;
            t.rx_crc_errors = u64::MAX - 1;
        }
        let s = device.stats();
        assert_eq!((s.rx_packets, s.rx_bytes), (u64::MAX, u64::MAX));
        assert_eq!((s.tx_packets, s.tx_bytes), (u64::MAX, u64::MAX));
        assert_eq!((s.rx_missed, s.rx_crc_errors), (u64::MAX, u64::MAX));
        assert_eq!(device.stats().rx_packets, u64::MAX);
    }
}
