//! TEST FIXTURE, not a product driver.
//!
//! A minimal, polled, single-queue TX/RX ring for the Intel 82576 as QEMU emulates it
//! (`-device igb`, PCI 8086:10c9). It exists only so the QEMU end-to-end tests can prove that
//! `platform-linux` maps BAR0 correctly and hands out DMA addresses the device can really use:
//! if `virt_to_phys` were wrong, the device would read or write the wrong memory and the bytes
//! checked on both ends would not match. It is written over [`ixgbe_core::Platform`] exactly as
//! the 82599 driver is, and nothing else in the workspace uses it.
//!
//! Register facts (offsets and bits) are those of the 82576 datasheet as used by QEMU's igb model
//! and Linux's igb driver. Quirks of QEMU's model that shape this code:
//! - after a device reset the link stays down until auto-negotiation is restarted through the
//!   PHY (MDIC write of the PHY control register, PHY address 1);
//! - its receive path only implements advanced descriptors (SRRCTL.DESCTYPE = one buffer), so RX
//!   uses the 16-byte advanced format; TX uses advanced data descriptors as well.
#![allow(dead_code)]

use std::sync::atomic::{fence, Ordering};
use std::time::{Duration, Instant};

use ixgbe_core::{DmaRegion, Platform, DMA_PAGE_SIZE};

/// 82576 register offsets in BAR0 and the bits this fixture uses.
pub mod regs {
    /// Device control.
    pub const CTRL: u32 = 0x0000;
    /// CTRL: set link up.
    pub const CTRL_SLU: u32 = 1 << 6;
    /// CTRL: device reset (self-clearing).
    pub const CTRL_RST: u32 = 1 << 26;
    /// Device status.
    pub const STATUS: u32 = 0x0008;
    /// STATUS: link up.
    pub const STATUS_LU: u32 = 1 << 1;
    /// MDI control (PHY register access).
    pub const MDIC: u32 = 0x0020;
    /// MDIC: PHY register address shift.
    pub const MDIC_REG_SHIFT: u32 = 16;
    /// MDIC: PHY address shift.
    pub const MDIC_PHY_SHIFT: u32 = 21;
    /// MDIC: write opcode.
    pub const MDIC_OP_WRITE: u32 = 1 << 26;
    /// MDIC: read opcode.
    pub const MDIC_OP_READ: u32 = 2 << 26;
    /// MDIC: ready.
    pub const MDIC_READY: u32 = 1 << 28;
    /// MDIC: error.
    pub const MDIC_ERROR: u32 = 1 << 30;
    /// PHY address of the internal PHY.
    pub const PHY_ADDR: u32 = 1;
    /// PHY control register (MII BMCR).
    pub const PHY_CTRL: u32 = 0;
    /// PHY control: full duplex.
    pub const PHY_CTRL_DUPLEX: u16 = 1 << 8;
    /// PHY control: restart auto-negotiation (self-clearing).
    pub const PHY_CTRL_AN_RESTART: u16 = 1 << 9;
    /// PHY control: auto-negotiation enable.
    pub const PHY_CTRL_AN_ENABLE: u16 = 1 << 12;
    /// PHY control: speed select MSB (1000 Mb/s with LSB clear).
    pub const PHY_CTRL_SPEED_1000: u16 = 1 << 6;
    /// Interrupt mask clear.
    pub const IMC: u32 = 0x00D8;
    /// Extended interrupt mask clear.
    pub const EIMC: u32 = 0x1528;
    /// Receive control.
    pub const RCTL: u32 = 0x0100;
    /// RCTL: receiver enable.
    pub const RCTL_EN: u32 = 1 << 1;
    /// RCTL: loopback mode "MAC" (bits 7:6 = 01).
    pub const RCTL_LBM_MAC: u32 = 1 << 6;
    /// RCTL: broadcast accept.
    pub const RCTL_BAM: u32 = 1 << 15;
    /// RCTL: strip Ethernet CRC.
    pub const RCTL_SECRC: u32 = 1 << 26;
    /// Transmit control.
    pub const TCTL: u32 = 0x0400;
    /// TCTL: transmitter enable.
    pub const TCTL_EN: u32 = 1 << 1;
    /// TCTL: pad short packets.
    pub const TCTL_PSP: u32 = 1 << 3;
    /// TCTL: collision threshold field (value 15).
    pub const TCTL_CT_15: u32 = 0x0F << 4;
    /// TCTL: collision distance field (value 63, full duplex).
    pub const TCTL_COLD_63: u32 = 0x3F << 12;
    /// Good packets received count (clear on read).
    pub const GPRC: u32 = 0x4074;
    /// Good packets transmitted count (clear on read).
    pub const GPTC: u32 = 0x4080;
    /// Receive address low, entry 0.
    pub const RAL0: u32 = 0x5400;
    /// Receive address high, entry 0.
    pub const RAH0: u32 = 0x5404;
    /// RAH: address valid.
    pub const RAH_AV: u32 = 1 << 31;
    /// RX queue 0 descriptor base low.
    pub const RDBAL0: u32 = 0xC000;
    /// RX queue 0 descriptor base high.
    pub const RDBAH0: u32 = 0xC004;
    /// RX queue 0 ring length in bytes.
    pub const RDLEN0: u32 = 0xC008;
    /// RX queue 0 split and replication control.
    pub const SRRCTL0: u32 = 0xC00C;
    /// SRRCTL: packet buffer size field, in KiB.
    pub const SRRCTL_BSIZEPKT_2K: u32 = 2;
    /// SRRCTL: descriptor type "advanced, one buffer".
    pub const SRRCTL_DESCTYPE_ADV_ONEBUF: u32 = 1 << 25;
    /// RX queue 0 head.
    pub const RDH0: u32 = 0xC010;
    /// RX queue 0 tail.
    pub const RDT0: u32 = 0xC018;
    /// RX queue 0 descriptor control.
    pub const RXDCTL0: u32 = 0xC028;
    /// TX queue 0 descriptor base low.
    pub const TDBAL0: u32 = 0xE000;
    /// TX queue 0 descriptor base high.
    pub const TDBAH0: u32 = 0xE004;
    /// TX queue 0 ring length in bytes.
    pub const TDLEN0: u32 = 0xE008;
    /// TX queue 0 head.
    pub const TDH0: u32 = 0xE010;
    /// TX queue 0 tail.
    pub const TDT0: u32 = 0xE018;
    /// TX queue 0 descriptor control.
    pub const TXDCTL0: u32 = 0xE028;
    /// RXDCTL/TXDCTL: queue enable.
    pub const XDCTL_ENABLE: u32 = 1 << 25;
    /// Advanced TX descriptor: data descriptor type.
    pub const ADVTXD_DTYP_DATA: u32 = 0x3 << 20;
    /// Advanced TX descriptor: end of packet.
    pub const ADVTXD_DCMD_EOP: u32 = 1 << 24;
    /// Advanced TX descriptor: insert FCS.
    pub const ADVTXD_DCMD_IFCS: u32 = 1 << 25;
    /// Advanced TX descriptor: report status.
    pub const ADVTXD_DCMD_RS: u32 = 1 << 27;
    /// Advanced TX descriptor: descriptor extension (advanced format).
    pub const ADVTXD_DCMD_DEXT: u32 = 1 << 29;
    /// Advanced TX descriptor: payload length shift in olinfo_status.
    pub const ADVTXD_PAYLEN_SHIFT: u32 = 14;
    /// Descriptor done (TX status, RX status_error).
    pub const STAT_DD: u32 = 1 << 0;
    /// RX status_error: end of packet.
    pub const RXD_STAT_EOP: u32 = 1 << 1;
}

use regs::*;

/// Descriptors per ring (each 16 bytes).
pub const RING: usize = 256;
/// Bytes per packet buffer.
pub const BUF: usize = 2048;
const DESC: usize = 16;
/// Where in each 2 MiB buffer page the TX slots start (RX slots start at 0).
const TX_SLOTS_AT: usize = 1024 * 1024;

/// What the fixture found while bringing the device up.
#[derive(Debug, Clone)]
pub struct BringUp {
    /// MAC address from receive address register 0.
    pub mac: [u8; 6],
    /// Milliseconds from the auto-negotiation restart to STATUS.LU.
    pub link_ms: u128,
    /// Bus address of the RX descriptor ring.
    pub rx_ring_bus: u64,
    /// Bus address of the TX descriptor ring.
    pub tx_ring_bus: u64,
    /// Bus addresses of the two 2 MiB pages holding the packet buffers.
    pub buf_page_bus: [u64; 2],
}

/// Bring-up options.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// MAC loopback (RCTL.LBM = MAC): transmitted frames come back on the RX queue and nothing
    /// reaches the wire.
    pub loopback: bool,
    /// Added to the bus address of every RX packet buffer handed to the device. Non-zero only
    /// for negative controls: a translation that is off by a few bytes must be caught by the
    /// byte checks. Must stay below 768 KiB so the skewed buffers stay inside the fixture's own
    /// DMA region.
    pub rx_buffer_bus_skew: u64,
    /// The same for TX packet buffers.
    pub tx_buffer_bus_skew: u64,
}

/// The test fixture: one RX and one TX queue, polled, no interrupts.
pub struct Igb<P: Platform> {
    p: P,
    rings: Option<DmaRegion>,
    bufs: Option<DmaRegion>,
    rx_next: usize,
    tx_next: usize,
    info: BringUp,
    opts: Options,
}

fn timeout_err(what: &str, waited: Duration) -> String {
    format!("timed out after {waited:?} waiting for {what}")
}

impl<P: Platform> Igb<P> {
    /// Resets the device, brings the link up, and sets up both rings with `RING` descriptors.
    ///
    /// Buffers live in a 4 MiB DMA region (two hugepages), alternating between the two pages
    /// descriptor by descriptor, so translation is exercised across non-contiguous pages.
    pub fn init(p: P) -> Result<Self, String> {
        Self::init_with(p, Options::default())
    }

    /// [`Igb::init`] with [`Options`].
    pub fn init_with(p: P, opts: Options) -> Result<Self, String> {
        let limit = (TX_SLOTS_AT - (RING / 2) * BUF) as u64;
        if opts.rx_buffer_bus_skew >= limit || opts.tx_buffer_bus_skew >= limit {
            return Err("a buffer bus skew would leave the fixture's DMA region".into());
        }
        let rings = p
            .dma_alloc(2 * RING * DESC)
            .map_err(|e| format!("dma_alloc(rings): {e}"))?;
        let bufs = match p.dma_alloc(2 * DMA_PAGE_SIZE) {
            Ok(b) => b,
            Err(e) => {
                // SAFETY: `rings` came from this platform's dma_alloc and no device register
                // points at it yet.
                unsafe { p.dma_free(rings) };
                return Err(format!("dma_alloc(buffers, 4 MiB): {e}"));
            }
        };
        let mut igb = Igb {
            p,
            rings: Some(rings),
            bufs: Some(bufs),
            rx_next: 0,
            tx_next: 0,
            opts,
            info: BringUp {
                mac: [0; 6],
                link_ms: 0,
                rx_ring_bus: 0,
                tx_ring_bus: 0,
                buf_page_bus: [0; 2],
            },
        };
        igb.bring_up()?;
        Ok(igb)
    }

    /// What bring-up found.
    pub fn info(&self) -> &BringUp {
        &self.info
    }

    /// The device's MAC address (receive address register 0).
    pub fn mac(&self) -> [u8; 6] {
        self.info.mac
    }

    fn w(&self, reg: u32, val: u32) {
        // SAFETY: every register write of this fixture either touches no DMA state, or points
        // the device at memory inside `self.rings` / `self.bufs`, which this struct owns and
        // frees only after resetting the device (see Drop).
        unsafe { self.p.write32(reg, val) }
    }

    fn r(&self, reg: u32) -> u32 {
        self.p.read32(reg)
    }

    fn wait(
        &self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            if done(self) {
                return Ok(start.elapsed());
            }
            if start.elapsed() > limit {
                return Err(timeout_err(what, limit));
            }
            self.p.delay(Duration::from_micros(200));
        }
    }

    /// Writes a PHY register through MDIC.
    pub fn phy_write(&self, reg: u32, val: u16) -> Result<(), String> {
        self.w(
            MDIC,
            val as u32 | (reg << MDIC_REG_SHIFT) | (PHY_ADDR << MDIC_PHY_SHIFT) | MDIC_OP_WRITE,
        );
        self.wait("MDIC ready (write)", Duration::from_secs(1), |s| {
            s.r(MDIC) & MDIC_READY != 0
        })?;
        if self.r(MDIC) & MDIC_ERROR != 0 {
            return Err(format!("MDIC error writing PHY register {reg}"));
        }
        Ok(())
    }

    /// Reads a PHY register through MDIC.
    pub fn phy_read(&self, reg: u32) -> Result<u16, String> {
        self.w(
            MDIC,
            (reg << MDIC_REG_SHIFT) | (PHY_ADDR << MDIC_PHY_SHIFT) | MDIC_OP_READ,
        );
        self.wait("MDIC ready (read)", Duration::from_secs(1), |s| {
            s.r(MDIC) & MDIC_READY != 0
        })?;
        let v = self.r(MDIC);
        if v & MDIC_ERROR != 0 {
            return Err(format!("MDIC error reading PHY register {reg}"));
        }
        Ok(v as u16)
    }

    fn ring_ptr(&self, tx: bool, i: usize) -> *mut u8 {
        let base = self.rings.as_ref().expect("rings live").virt().as_ptr();
        let off = if tx { RING * DESC } else { 0 } + (i % RING) * DESC;
        // In bounds: the region holds 2 * RING * DESC bytes.
        base.wrapping_add(off)
    }

    /// Virtual address of packet buffer slot `i` (RX or TX): page `i % 2`, slot `i / 2` there.
    fn slot_ptr(&self, tx: bool, i: usize) -> *mut u8 {
        let base = self.bufs.as_ref().expect("bufs live").virt().as_ptr();
        let i = i % RING;
        let off = (i % 2) * DMA_PAGE_SIZE + if tx { TX_SLOTS_AT } else { 0 } + (i / 2) * BUF;
        // In bounds: (RING / 2) * BUF = 256 KiB per kind, below 2 MiB per page.
        base.wrapping_add(off)
    }

    fn bus(&self, virt: *const u8) -> Result<u64, String> {
        self.p
            .virt_to_phys(virt)
            .ok_or_else(|| format!("virt_to_phys({virt:p}) returned None for live DMA memory"))
    }

    fn bring_up(&mut self) -> Result<(), String> {
        // Quiesce, then reset.
        self.w(IMC, 0xFFFF_FFFF);
        self.w(EIMC, 0xFFFF_FFFF);
        self.w(RCTL, 0);
        self.w(TCTL, 0);
        self.w(CTRL, self.r(CTRL) | CTRL_RST);
        self.p.delay(Duration::from_millis(10));
        self.wait("CTRL.RST to clear", Duration::from_secs(2), |s| {
            s.r(CTRL) & CTRL_RST == 0
        })?;
        self.w(IMC, 0xFFFF_FFFF);
        self.w(EIMC, 0xFFFF_FFFF);

        // Link: set link up, restart auto-negotiation through the PHY, wait for STATUS.LU.
        self.w(CTRL, self.r(CTRL) | CTRL_SLU);
        self.phy_write(
            PHY_CTRL,
            PHY_CTRL_AN_ENABLE | PHY_CTRL_AN_RESTART | PHY_CTRL_DUPLEX | PHY_CTRL_SPEED_1000,
        )?;
        let link = self.wait("link up (STATUS.LU)", Duration::from_secs(10), |s| {
            s.r(STATUS) & STATUS_LU != 0
        })?;
        self.info.link_ms = link.as_millis();

        // MAC address, as loaded from the EEPROM on reset.
        let ral = self.r(RAL0);
        let rah = self.r(RAH0);
        if rah & RAH_AV == 0 {
            return Err(format!(
                "receive address 0 not valid after reset (RAL {ral:#010x}, RAH {rah:#010x})"
            ));
        }
        let l = ral.to_le_bytes();
        let h = rah.to_le_bytes();
        self.info.mac = [l[0], l[1], l[2], l[3], h[0], h[1]];

        // Bus addresses.
        let rx_ring = self.bus(self.ring_ptr(false, 0))?;
        let tx_ring = self.bus(self.ring_ptr(true, 0))?;
        let bufs = self.bufs.as_ref().expect("bufs live").virt().as_ptr();
        self.info.rx_ring_bus = rx_ring;
        self.info.tx_ring_bus = tx_ring;
        self.info.buf_page_bus = [self.bus(bufs)?, self.bus(bufs.wrapping_add(DMA_PAGE_SIZE))?];

        // RX ring: advanced one-buffer descriptors, 2 KiB buffers.
        for i in 0..RING {
            self.arm_rx(i)?;
        }
        self.w(RDBAL0, rx_ring as u32);
        self.w(RDBAH0, (rx_ring >> 32) as u32);
        self.w(RDLEN0, (RING * DESC) as u32);
        self.w(SRRCTL0, SRRCTL_BSIZEPKT_2K | SRRCTL_DESCTYPE_ADV_ONEBUF);
        self.w(RDH0, 0);
        self.w(RDT0, 0);
        self.w(RXDCTL0, XDCTL_ENABLE);
        self.wait("RXDCTL.ENABLE", Duration::from_secs(1), |s| {
            s.r(RXDCTL0) & XDCTL_ENABLE != 0
        })?;
        let lbm = if self.opts.loopback { RCTL_LBM_MAC } else { 0 };
        self.w(RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC | lbm);
        self.w(RDT0, (RING - 1) as u32);

        // TX ring.
        self.w(TDBAL0, tx_ring as u32);
        self.w(TDBAH0, (tx_ring >> 32) as u32);
        self.w(TDLEN0, (RING * DESC) as u32);
        self.w(TDH0, 0);
        self.w(TDT0, 0);
        self.w(TXDCTL0, XDCTL_ENABLE);
        self.wait("TXDCTL.ENABLE", Duration::from_secs(1), |s| {
            s.r(TXDCTL0) & XDCTL_ENABLE != 0
        })?;
        self.w(TCTL, TCTL_EN | TCTL_PSP | TCTL_CT_15 | TCTL_COLD_63);

        // Clear the statistics counters (clear on read).
        let _ = self.r(GPRC);
        let _ = self.r(GPTC);
        Ok(())
    }

    /// Gives RX descriptor `i` its buffer (read format: packet address, header address 0).
    fn arm_rx(&self, i: usize) -> Result<(), String> {
        let bus = self.bus(self.slot_ptr(false, i))? + self.opts.rx_buffer_bus_skew;
        let d = self.ring_ptr(false, i);
        // SAFETY: `d` is a 16-byte, 16-aligned descriptor inside the live ring region; the
        // device does not own it now (not yet handed over, or its DD was seen).
        unsafe {
            std::ptr::write_volatile(d as *mut u64, bus.to_le());
            std::ptr::write_volatile(d.add(8) as *mut u64, 0);
        }
        Ok(())
    }

    /// Sends one frame made of `parts`, one descriptor per part (several parts = a frame spread
    /// over several buffers, alternating hugepages), and waits until the device reports it done.
    pub fn send(&mut self, parts: &[&[u8]]) -> Result<(), String> {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if parts.is_empty()
            || parts.len() >= RING
            || parts.iter().any(|p| p.is_empty() || p.len() > BUF)
        {
            return Err(format!(
                "bad frame layout: {} parts, {total} bytes",
                parts.len()
            ));
        }
        let mut last = 0;
        for (n, part) in parts.iter().enumerate() {
            let i = self.tx_next;
            let slot = self.slot_ptr(true, i);
            // SAFETY: the slot is BUF bytes of live DMA memory that the device does not read
            // now (every earlier frame was waited for), and `part` is at most BUF bytes.
            unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), slot, part.len()) };
            let bus = self.bus(slot)? + self.opts.tx_buffer_bus_skew;
            let eop = n + 1 == parts.len();
            let cmd = part.len() as u32
                | ADVTXD_DTYP_DATA
                | ADVTXD_DCMD_DEXT
                | ADVTXD_DCMD_IFCS
                | if eop {
                    ADVTXD_DCMD_EOP | ADVTXD_DCMD_RS
                } else {
                    0
                };
            let olinfo = (total as u32) << ADVTXD_PAYLEN_SHIFT;
            let d = self.ring_ptr(true, i);
            // SAFETY: `d` is a descriptor inside the live TX ring that the device does not
            // own (the tail has not been moved past it yet).
            unsafe {
                std::ptr::write_volatile(d as *mut u64, bus.to_le());
                std::ptr::write_volatile(d.add(8) as *mut u32, cmd.to_le());
                std::ptr::write_volatile(d.add(12) as *mut u32, olinfo.to_le());
            }
            last = i;
            self.tx_next = (i + 1) % RING;
        }
        // write32 puts a release fence before the store: the descriptors and data are visible.
        self.w(TDT0, self.tx_next as u32);
        let status = self.ring_ptr(true, last).wrapping_add(12) as *const u32;
        self.wait("TX descriptor done", Duration::from_secs(5), |_| {
            // SAFETY: reads a status word inside the live TX ring; the device writes it.
            let s = u32::from_le(unsafe { std::ptr::read_volatile(status) });
            s & STAT_DD != 0
        })?;
        fence(Ordering::Acquire);
        Ok(())
    }

    /// Polls for one received frame for at most `limit`; `Ok(None)` when none arrived.
    pub fn recv(&mut self, limit: Duration) -> Result<Option<Vec<u8>>, String> {
        let i = self.rx_next;
        let d = self.ring_ptr(false, i);
        let status_ptr = d.wrapping_add(8) as *const u32;
        let read_status = || {
            // SAFETY: reads the status word of a descriptor inside the live RX ring.
            u32::from_le(unsafe { std::ptr::read_volatile(status_ptr) })
        };
        let start = Instant::now();
        while read_status() & STAT_DD == 0 {
            if start.elapsed() > limit {
                return Ok(None);
            }
            self.p.delay(Duration::from_micros(200));
        }
        fence(Ordering::Acquire);
        let status = read_status();
        // SAFETY: the length field of the same descriptor, written back before DD was set.
        let len = u16::from_le(unsafe { std::ptr::read_volatile(d.wrapping_add(12) as *const u16) })
            as usize;
        if status & RXD_STAT_EOP == 0 || len > BUF {
            return Err(format!(
                "RX descriptor {i}: status {status:#x}, length {len}: frame not in one buffer"
            ));
        }
        let mut frame = vec![0u8; len];
        // SAFETY: the slot holds `len` <= BUF bytes the device wrote before setting DD, and the
        // device does not touch this slot again until the descriptor is re-armed below.
        unsafe { std::ptr::copy_nonoverlapping(self.slot_ptr(false, i), frame.as_mut_ptr(), len) };
        self.arm_rx(i)?;
        // Hand the descriptor back (write32 fences the re-arm before the tail store).
        self.w(RDT0, i as u32);
        self.rx_next = (i + 1) % RING;
        Ok(Some(frame))
    }

    /// Reads and clears the device's good-packets counters: (received, transmitted).
    pub fn counters(&self) -> (u32, u32) {
        (self.r(GPRC), self.r(GPTC))
    }
}

impl<P: Platform> Drop for Igb<P> {
    fn drop(&mut self) {
        // Stop both queues and reset the device before the memory it points at is freed.
        self.w(RCTL, 0);
        self.w(TCTL, 0);
        self.w(RXDCTL0, 0);
        self.w(TXDCTL0, 0);
        self.w(CTRL, self.r(CTRL) | CTRL_RST);
        self.p.delay(Duration::from_millis(10));
        for region in [self.rings.take(), self.bufs.take()].into_iter().flatten() {
            // SAFETY: the regions came from this platform's dma_alloc; the device was reset
            // above and no longer references them, and the fixture is being dropped.
            unsafe { self.p.dma_free(region) };
        }
    }
}
