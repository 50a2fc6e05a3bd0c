//! Helpers for raw register pokes against the simulated 82599 (no driver involved).
#![allow(dead_code)]

use std::time::Duration;

use ixgbe_core::{DmaRegion, Platform};
use platform_mock::{NicConfig, NicId, Sim, SimPlatform, ViolationKind};

pub const CTRL: u32 = 0x00000;
pub const STATUS: u32 = 0x00008;
pub const EEC: u32 = 0x10010;
pub const EICR: u32 = 0x00800;
pub const EICS: u32 = 0x00808;
pub const EIMS: u32 = 0x00880;
pub const EIMC: u32 = 0x00888;
pub const RXCTRL: u32 = 0x03000;
pub const RDRXCTL: u32 = 0x02F00;
pub const RXPBSIZE0: u32 = 0x03C00;
pub const FCTRL: u32 = 0x05080;
pub const HLREG0: u32 = 0x04240;
pub const AUTOC: u32 = 0x042A0;
pub const LINKS: u32 = 0x042A4;
pub const SECRXCTRL: u32 = 0x08D00;
pub const SECRXSTAT: u32 = 0x08D04;
pub const DMATXCTL: u32 = 0x04A80;
pub const DTXMXSZRQ: u32 = 0x08100;
pub const RTTDCS: u32 = 0x04900;
pub const TXPBSIZE0: u32 = 0x0CC00;
pub const MRQC: u32 = 0x0EC80;
pub const RSSRK: u32 = 0x0EB80;
pub const RETA: u32 = 0x0EB00;
pub const RXCSUM: u32 = 0x05000;
pub const RAL0: u32 = 0x0A200;
pub const RAL0_ALIAS: u32 = 0x05400;
pub const GPRC: u32 = 0x04074;
pub const GPTC: u32 = 0x04080;
pub const GORCL: u32 = 0x04088;
pub const GORCH: u32 = 0x0408C;
pub const GOTCL: u32 = 0x04090;
pub const BPRC: u32 = 0x04078;
pub const TPR: u32 = 0x040D0;
pub const RXMPC0: u32 = 0x03FA0;
pub const QPRC0: u32 = 0x01030;
pub const QPRDC0: u32 = 0x01430;
pub const QPTC0: u32 = 0x08680;
pub const QPTC0_ALIAS: u32 = 0x06030;

pub const FCTRL_MPE: u32 = 1 << 8;
pub const FCTRL_UPE: u32 = 1 << 9;
pub const FCTRL_BAM: u32 = 1 << 10;
pub const ENABLE: u32 = 1 << 25;
pub const SRRCTL_ADV_2K: u32 = (1 << 25) | 2;
pub const DROP_EN: u32 = 1 << 28;
/// RDRXCTL as a driver should program it: CRCStrip, RSCFRSTSIZE = 0, RSCACKC, FCOE_WRFIX.
pub const RDRXCTL_GOOD: u32 = (0x0010_8800 & !(0x1F << 17)) | (1 << 1) | (1 << 25) | (1 << 26);

pub const MAC: [u8; 6] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
pub const MAC_B: [u8; 6] = [0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE];

pub fn rx_base(q: u32) -> u32 {
    if q < 64 {
        0x01000 + 0x40 * q
    } else {
        0x0D000 + 0x40 * (q - 64)
    }
}

pub fn tx_base(q: u32) -> u32 {
    0x06000 + 0x40 * q
}

pub fn wr(p: &SimPlatform, off: u32, v: u32) {
    // SAFETY: the simulated device only touches DMA regions allocated from this simulation,
    // which the tests keep alive until they are done.
    unsafe { p.write32(off, v) }
}

pub fn rd(p: &SimPlatform, off: u32) -> u32 {
    p.read32(off)
}

/// One NIC with the default config but MAC `MAC`, link up.
pub fn one_nic() -> (Sim, NicId, SimPlatform) {
    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig {
        mac: MAC,
        ..NicConfig::default()
    });
    let p = sim.platform(nic);
    sim.advance(Duration::from_millis(25));
    assert_ne!(rd(&p, LINKS) & (1 << 30), 0, "link up after power-on delay");
    (sim, nic, p)
}

pub fn kinds(sim: &Sim) -> Vec<ViolationKind> {
    sim.violations().iter().map(|v| v.kind).collect()
}

pub fn assert_no_violations(sim: &Sim) {
    let v = sim.violations();
    assert!(v.is_empty(), "unexpected violations: {v:#?}");
}

/// Writes a u64 into DMA memory at `off` bytes into `r`.
pub fn put_u64(r: &DmaRegion, off: usize, v: u64) {
    assert!(off + 8 <= r.len());
    // SAFETY: in bounds of the live region (checked above); unaligned-safe byte write.
    unsafe { std::ptr::write_volatile(r.virt().as_ptr().add(off) as *mut [u8; 8], v.to_le_bytes()) }
}

pub fn get_u64(r: &DmaRegion, off: usize) -> u64 {
    assert!(off + 8 <= r.len());
    // SAFETY: in bounds of the live region (checked above).
    u64::from_le_bytes(unsafe {
        std::ptr::read_volatile(r.virt().as_ptr().add(off) as *const [u8; 8])
    })
}

pub fn put_bytes(r: &DmaRegion, off: usize, data: &[u8]) {
    assert!(off + data.len() <= r.len());
    // SAFETY: in bounds of the live region (checked above); `data` is not DMA memory.
    unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), r.virt().as_ptr().add(off), data.len()) }
}

pub fn get_bytes(r: &DmaRegion, off: usize, len: usize) -> Vec<u8> {
    assert!(off + len <= r.len());
    let mut v = vec![0u8; len];
    // SAFETY: in bounds of the live region (checked above).
    unsafe { std::ptr::copy_nonoverlapping(r.virt().as_ptr().add(off), v.as_mut_ptr(), len) }
    v
}

pub fn bus(p: &SimPlatform, r: &DmaRegion, off: usize) -> u64 {
    // SAFETY: `off` is inside the region (callers pass small offsets of live regions).
    let ptr = unsafe { r.virt().as_ptr().add(off) };
    p.virt_to_phys(ptr).expect("address inside a live region")
}

/// A hand-built RX ring: descriptors in `ring`, 2 KiB buffers in `bufs`.
pub struct RxRing {
    pub ring: DmaRegion,
    pub bufs: DmaRegion,
    pub n: usize,
    pub bsize: usize,
}

impl RxRing {
    pub fn desc_status(&self, i: usize) -> u32 {
        get_u64(&self.ring, 16 * i + 8) as u32
    }
    pub fn desc_len(&self, i: usize) -> u32 {
        (get_u64(&self.ring, 16 * i + 8) >> 32) as u32 & 0xFFFF
    }
    pub fn desc_lo(&self, i: usize) -> u64 {
        get_u64(&self.ring, 16 * i)
    }
    pub fn buf(&self, i: usize, len: usize) -> Vec<u8> {
        get_bytes(&self.bufs, i * self.bsize, len)
    }
    /// Re-arms descriptor `i` in read format.
    pub fn arm(&self, p: &SimPlatform, i: usize) {
        put_u64(&self.ring, 16 * i, bus(p, &self.bufs, i * self.bsize));
        put_u64(&self.ring, 16 * i + 8, 0);
    }
}

/// Programs RX queue `q` with `n` descriptors and enables it (ENABLE polled), RDT = n - 1 unless
/// `tail` is given. Global RX registers are programmed and RXEN set with the handshake.
pub fn setup_rx(p: &SimPlatform, q: u32, n: usize, srrctl: u32, tail: Option<u32>) -> RxRing {
    let bsize = ((srrctl & 0x1F) as usize) * 1024;
    let ring = p.dma_alloc(16 * n).expect("ring");
    let bufs = p.dma_alloc(bsize * n).expect("bufs");
    let r = RxRing {
        ring,
        bufs,
        n,
        bsize,
    };
    for i in 0..n {
        r.arm(p, i);
    }
    let b = bus(p, &r.ring, 0);
    let rxen = rd(p, RXCTRL) & 1 != 0;
    if !rxen {
        wr(p, RDRXCTL, RDRXCTL_GOOD);
        wr(p, FCTRL, FCTRL_BAM);
    }
    let base = rx_base(q);
    wr(p, base, b as u32);
    wr(p, base + 4, (b >> 32) as u32);
    wr(p, base + 8, (16 * n) as u32);
    wr(p, base + 0x14, srrctl);
    wr(p, base + 0x28, ENABLE);
    let mut polls = 0;
    while rd(p, base + 0x28) & ENABLE == 0 {
        polls += 1;
        assert!(polls < 100, "RXDCTL.ENABLE never read 1");
    }
    wr(p, base + 0x18, tail.unwrap_or(n as u32 - 1));
    if !rxen {
        wr(p, SECRXCTRL, 1 << 1);
        // SECRX_RDY comes once the security block drained (tens of µs in the model).
        let mut polls = 0;
        while rd(p, SECRXSTAT) & 1 == 0 {
            polls += 1;
            assert!(polls < 100, "SECRXSTAT.SECRX_RDY never set");
            p.delay(std::time::Duration::from_micros(10));
        }
        wr(p, RXCTRL, 1);
        wr(p, SECRXCTRL, 0);
    }
    r
}

/// A hand-built TX ring.
pub struct TxRing {
    pub ring: DmaRegion,
    pub bufs: DmaRegion,
    pub n: usize,
}

pub const TX_EOP: u32 = 1 << 24;
pub const TX_IFCS: u32 = 1 << 25;
pub const TX_RS: u32 = 1 << 27;
pub const TX_DEXT: u32 = 1 << 29;
pub const TX_DTYP_DATA: u32 = 0b0011 << 20;

impl TxRing {
    /// Writes descriptor `i` for `data` copied to buffer slot `i` (2 KiB slots).
    pub fn put(&self, p: &SimPlatform, i: usize, data: &[u8], cmd: u32) {
        put_bytes(&self.bufs, i * 2048, data);
        put_u64(&self.ring, 16 * i, bus(p, &self.bufs, i * 2048));
        let lo = cmd | data.len() as u32;
        let hi = (data.len() as u32) << 14;
        put_u64(&self.ring, 16 * i + 8, u64::from(lo) | u64::from(hi) << 32);
    }
    pub fn dd(&self, i: usize) -> bool {
        get_u64(&self.ring, 16 * i + 8) >> 32 & 1 != 0
    }
}

pub fn data_cmd() -> u32 {
    TX_EOP | TX_IFCS | TX_RS | TX_DEXT | TX_DTYP_DATA
}

/// Programs TX queue `q` (n descriptors), sets DMATXCTL.TE and enables the queue.
pub fn setup_tx(p: &SimPlatform, q: u32, n: usize) -> TxRing {
    let ring = p.dma_alloc(16 * n).expect("ring");
    let bufs = p.dma_alloc(2048 * n).expect("bufs");
    let b = bus(p, &ring, 0);
    let base = tx_base(q);
    wr(p, base, b as u32);
    wr(p, base + 4, (b >> 32) as u32);
    wr(p, base + 8, (16 * n) as u32);
    wr(p, base + 0x10, 0);
    wr(p, DMATXCTL, rd(p, DMATXCTL) | 1);
    wr(p, base + 0x28, ENABLE);
    let mut polls = 0;
    while rd(p, base + 0x28) & ENABLE == 0 {
        polls += 1;
        assert!(polls < 100, "TXDCTL.ENABLE never read 1");
    }
    TxRing { ring, bufs, n }
}

/// An UDP/IPv4 frame (without FCS) of `len` bytes.
pub fn udp_frame(
    dst: [u8; 6],
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
    sport: u16,
    dport: u16,
    len: usize,
) -> Vec<u8> {
    let mut f = vec![0u8; len.max(42)];
    f[0..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
    f[12] = 0x08;
    f[14] = 0x45;
    let ip_len = (f.len() - 14) as u16;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&src_ip);
    f[30..34].copy_from_slice(&dst_ip);
    f[34..36].copy_from_slice(&sport.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    for (i, b) in f[42..].iter_mut().enumerate() {
        *b = i as u8;
    }
    f
}

pub fn frame_to(dst: [u8; 6], len: usize) -> Vec<u8> {
    udp_frame(dst, [10, 0, 0, 1], [10, 0, 0, 2], 1, 2, len)
}
