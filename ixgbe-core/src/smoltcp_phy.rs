//! A [`smoltcp::phy::Device`] over one receive queue and one transmit queue (feature `smoltcp`),
//! so a smoltcp `Interface` runs TCP/IP straight on the driver.
//!
//! Zero-copy both ways: a receive token owns the received [`Packet`] and hands smoltcp its bytes
//! where the device wrote them; a transmit token lets smoltcp build its frame in a pool buffer,
//! which then goes to the Tx ring as it is. Frames are received in batches (one `rx_batch` per
//! up to `B` frames, handed to smoltcp one at a time) and sent in batches (one `tx_batch` per up
//! to `B` frames, or per [`SmoltcpDevice::flush`]). A received buffer goes back to its pool when
//! smoltcp has consumed its token (one pool lock per frame: smoltcp hands tokens back one at a
//! time); transmit buffers are taken from the pool a batch at a time.
//!
//! Nothing the peer sends can make this panic: an empty pool or a full Tx ring means no token
//! (or, for the reply token smoltcp gets with each received frame, a frame built in scratch
//! space and counted as dropped), never a panic, never a wait.
//!
//! ```
//! use core::time::Duration;
//! use ixgbe_core::smoltcp_phy::SmoltcpDevice;
//! use ixgbe_core::{Config, Device, Mempool, Started, DEFAULT_BUF_SIZE};
//! use platform_mock::{NicConfig, Sim};
//! use smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet, SocketStorage};
//! use smoltcp::time::Instant;
//! use smoltcp::wire::{
//!     ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol, IpCidr,
//!     Ipv4Address,
//! };
//!
//! # fn main() -> Result<(), ixgbe_core::Error> {
//! let sim = Sim::new();
//! let nic = sim.add_nic(NicConfig::default());
//! let platform = sim.platform(nic);
//! let pools = [Mempool::new(&platform, 1024, DEFAULT_BUF_SIZE)?];
//! let Started { device, mut rx, mut tx } = Device::init(platform, &Config::default(), &pools)?;
//! device.wait_for_link(Duration::from_secs(1))?;
//!
//! let (rx, tx) = (rx.pop().unwrap(), tx.pop().unwrap());
//! let mut phy: SmoltcpDevice<'_, _> = SmoltcpDevice::new(rx, tx, &pools[0]);
//! let config = IfaceConfig::new(EthernetAddress(device.mac()).into());
//! let mut iface = Interface::new(config, &mut phy, Instant::ZERO);
//! iface.update_ip_addrs(|a| a.push(IpCidr::new(Ipv4Address::new(10, 0, 0, 1).into(), 24)).unwrap());
//! let mut storage: [SocketStorage; 1] = Default::default();
//! let mut sockets = SocketSet::new(&mut storage[..]);
//!
//! // Someone asks who has 10.0.0.1; smoltcp answers through the queue pair.
//! let peer = EthernetAddress([0x02, 0, 0, 0, 0, 0x99]);
//! let request = ArpRepr::EthernetIpv4 {
//!     operation: ArpOperation::Request,
//!     source_hardware_addr: peer,
//!     source_protocol_addr: Ipv4Address::new(10, 0, 0, 2),
//!     target_hardware_addr: EthernetAddress([0; 6]),
//!     target_protocol_addr: Ipv4Address::new(10, 0, 0, 1),
//! };
//! let mut frame = [0u8; 60]; // 42 bytes of ARP, padded to the Ethernet minimum
//! let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
//! eth.set_dst_addr(EthernetAddress::BROADCAST);
//! eth.set_src_addr(peer);
//! eth.set_ethertype(EthernetProtocol::Arp);
//! request.emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
//! sim.inject(nic, &frame);
//!
//! // The program's loop: poll smoltcp, then send what it queued.
//! iface.poll(Instant::ZERO, &mut phy, &mut sockets);
//! phy.flush();
//! sim.advance(Duration::from_micros(10));
//! let sent = sim.take_transmitted(nic);
//! let reply = EthernetFrame::new_checked(&sent[0][..]).unwrap();
//! assert_eq!(reply.dst_addr(), peer);
//! assert_eq!(reply.ethertype(), EthernetProtocol::Arp);
//! # Ok(())
//! # }
//! ```

use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use crate::mempool::{Mempool, Packet};
use crate::offload::{ipv4_checksums_hold, TxOffload};
use crate::platform::Platform;
use crate::rx::RxQueue;
use crate::tx::TxQueue;

/// Largest Ethernet frame without FCS the driver sends or receives: 1514 bytes (IP MTU 1500).
/// The driver does not enable jumbo frames (HLREG0.JUMBOEN stays 0, §8.2.3.22.8), so the MAC
/// takes frames of up to 1518 bytes with CRC (MAXFRS, §8.2.3.22.13), which it strips.
pub const ETHERNET_MTU: usize = 1514;

/// Default number of frames per receive and transmit batch.
pub const DEFAULT_BATCH: usize = 32;

/// What the adapter dropped on the transmit side (the queues count the rest, see
/// [`RxQueue::counters`] and [`TxQueue::counters`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SmoltcpCounters {
    /// Frames smoltcp built while the Tx pool had no free buffer: built in scratch space and
    /// dropped.
    pub tx_no_buffer: u64,
    /// Frames smoltcp built while the Tx ring and the pending batch were full: dropped.
    pub tx_ring_full: u64,
    /// Frames longer than a pool buffer that smoltcp asked for (it never should: the MTU it
    /// is given fits a buffer): dropped.
    pub tx_too_long: u64,
    /// Received frames with a wrong IPv4 header or TCP/UDP checksum, dropped before smoltcp
    /// sees them: with the device's checksum results in use, smoltcp does not verify them.
    pub rx_bad_checksum: u64,
}

/// A queue pair as a smoltcp device: receives on `rx`, sends on `tx` with buffers from `pool`.
///
/// `B` is the batch size: frames received per `rx_batch` and sent per `tx_batch`. After each
/// `Interface::poll`, call [`SmoltcpDevice::flush`]: frames smoltcp queued go out when a batch
/// fills, when receiving runs dry, or on `flush`, so without it the last frames of a poll would
/// wait for the next one.
///
/// Capabilities say what the driver really does: Ethernet, an MTU of 1514 bytes (less if the
/// pool's buffers are smaller), bursts up to the Rx ring's length (what the device buffers
/// between two polls), and checksums: by default smoltcp computes and verifies them all in
/// software. With [`Config::rx_checksum`](crate::Config::rx_checksum) on the Rx queue, the
/// device's results stand in for smoltcp's IPv4, TCP and UDP verification: frames it found
/// wrong are dropped here ([`SmoltcpCounters::rx_bad_checksum`]), and what it did not check is
/// checked in software here. With [`SmoltcpDevice::with_tx_checksum_offload`], the device fills
/// in the IPv4 header, TCP and UDP checksums ([`TxQueue::tx_batch_offload`]) and smoltcp
/// leaves them out. ICMP checksums stay smoltcp's.
///
/// The Rx queue's pool should have buffers of at least [`ETHERNET_MTU`] bytes (the default
/// 2 KiB): a longer frame spans descriptors, which the driver counts and drops.
pub struct SmoltcpDevice<'a, P: Platform, const B: usize = DEFAULT_BATCH> {
    rx: RxQueue<'a, P>,
    /// Received frames not yet handed to smoltcp, last first (taken with `pop`).
    received: heapless::Vec<Packet<'a>, B>,
    /// The Rx queue passes on the device's checksum results: smoltcp need not verify.
    rx_checksum: bool,
    tx: TxSide<'a, P, B>,
}

/// The transmit half, which a transmit token borrows.
struct TxSide<'a, P: Platform, const B: usize> {
    queue: TxQueue<'a, P>,
    pool: &'a Mempool<P>,
    /// Free buffers taken from the pool in one lock, for the next frames smoltcp builds.
    spare: heapless::Vec<Packet<'a>, B>,
    /// Frames smoltcp built, waiting for the next `tx_batch`.
    pending: heapless::Vec<Packet<'a>, B>,
    /// Largest frame a buffer holds (at most [`ETHERNET_MTU`]).
    mtu: usize,
    /// Where a frame is built when it cannot be sent (smoltcp's token must always get a buffer).
    scratch: [u8; ETHERNET_MTU],
    /// The device fills in IPv4, TCP and UDP checksums.
    tx_checksum: bool,
    counters: SmoltcpCounters,
}

impl<'a, P: Platform, const B: usize> TxSide<'a, P, B> {
    /// Sends the pending frames the ring has room for; returns how many.
    fn flush(&mut self) -> usize {
        if self.tx_checksum {
            self.queue.tx_batch_offload(&mut self.pending, |p| {
                TxOffload::for_frame(p).unwrap_or(TxOffload::NONE)
            })
        } else {
            self.queue.tx_batch(&mut self.pending)
        }
    }

    /// Makes sure a frame can be built: room in the pending batch and a spare buffer.
    fn ready(&mut self) -> Result<(), Dropped> {
        if self.pending.is_full() {
            self.flush();
            if self.pending.is_full() {
                return Err(Dropped::RingFull);
            }
        }
        if self.spare.is_empty() {
            let want = B - self.spare.len();
            if self.pool.alloc_batch(&mut self.spare, want, 0) == 0 {
                // Buffers the device finished sending may be waiting in the Tx ring.
                self.queue.clean();
                if self.pool.alloc_batch(&mut self.spare, want, 0) == 0 {
                    return Err(Dropped::NoBuffer);
                }
            }
        }
        Ok(())
    }

    /// A buffer of `len` bytes for the next frame, or why there is none.
    fn buffer(&mut self, len: usize) -> Result<Packet<'a>, Dropped> {
        if len > self.mtu {
            return Err(Dropped::TooLong);
        }
        self.ready()?;
        let mut packet = self.spare.pop().ok_or(Dropped::NoBuffer)?;
        packet.set_len(len).map_err(|_| Dropped::TooLong)?;
        Ok(packet)
    }

    fn count(&mut self, why: Dropped) {
        let c = &mut self.counters;
        match why {
            Dropped::NoBuffer => c.tx_no_buffer += 1,
            Dropped::RingFull => c.tx_ring_full += 1,
            Dropped::TooLong => c.tx_too_long += 1,
        }
    }
}

/// Why a frame could not be given a pool buffer.
#[derive(Clone, Copy)]
enum Dropped {
    NoBuffer,
    RingFull,
    TooLong,
}

impl<'a, P: Platform, const B: usize> SmoltcpDevice<'a, P, B> {
    /// A smoltcp device over `rx` and `tx`; frames to send are built in buffers from `pool`
    /// (which may be the Rx queue's pool).
    pub fn new(rx: RxQueue<'a, P>, tx: TxQueue<'a, P>, pool: &'a Mempool<P>) -> Self {
        const { assert!(B > 0, "a batch holds at least one frame") };
        let mtu = ETHERNET_MTU.min(pool.buf_size() as usize);
        SmoltcpDevice {
            rx_checksum: rx.rx_checksum(),
            rx,
            received: heapless::Vec::new(),
            tx: TxSide {
                queue: tx,
                pool,
                spare: heapless::Vec::new(),
                pending: heapless::Vec::new(),
                mtu,
                scratch: [0; ETHERNET_MTU],
                tx_checksum: false,
                counters: SmoltcpCounters::default(),
            },
        }
    }

    /// Has the device fill in the IPv4 header, TCP and UDP checksums of what smoltcp sends
    /// (context descriptors, §7.2.3.2.3), so smoltcp does not compute them.
    pub fn with_tx_checksum_offload(mut self, on: bool) -> Self {
        self.tx.tx_checksum = on;
        self
    }

    /// Sends the frames smoltcp queued (as many as the Tx ring has room for) and returns the
    /// buffers of frames the device finished; returns how many frames went to the ring. Call
    /// it after every `Interface::poll`.
    pub fn flush(&mut self) -> usize {
        self.tx.flush()
    }

    /// Frames built but not yet handed to the Tx ring.
    pub fn pending(&self) -> usize {
        self.tx.pending.len()
    }

    /// What the adapter dropped.
    pub fn counters(&self) -> SmoltcpCounters {
        self.tx.counters
    }

    /// The receive queue (for its counters).
    pub fn rx_queue(&self) -> &RxQueue<'a, P> {
        &self.rx
    }

    /// The transmit queue (for its counters).
    pub fn tx_queue(&self) -> &TxQueue<'a, P> {
        &self.tx.queue
    }

    /// Flushes, then gives the queues back. Frames still pending (the ring was full) and
    /// frames received but not yet handed to smoltcp are dropped: their buffers go back to
    /// their pools.
    pub fn into_parts(mut self) -> (RxQueue<'a, P>, TxQueue<'a, P>) {
        self.flush();
        (self.rx, self.tx.queue)
    }
}

/// Owns one received frame; gives smoltcp its bytes in place, then returns the buffer.
pub struct RxToken<'a> {
    packet: Packet<'a>,
}

impl phy::RxToken for RxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(&self.packet)
    }
}

/// Lets smoltcp build one frame in a pool buffer, which then joins the pending Tx batch.
pub struct TxToken<'t, 'a, P: Platform, const B: usize> {
    side: &'t mut TxSide<'a, P, B>,
}

impl<P: Platform, const B: usize> phy::TxToken for TxToken<'_, '_, P, B> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let side = self.side;
        match side.buffer(len) {
            Ok(mut packet) => {
                let r = f(&mut packet);
                // `buffer` made room in the pending batch, so this push cannot fail; if it
                // did, the frame would only be dropped (its buffer goes back to the pool).
                let _ = side.pending.push(packet);
                if side.pending.is_full() {
                    side.flush();
                }
                r
            }
            Err(why) => {
                side.count(why);
                let n = len.min(side.scratch.len());
                f(&mut side.scratch[..n])
            }
        }
    }
}

impl<'a, P: Platform, const B: usize> phy::Device for SmoltcpDevice<'a, P, B> {
    type RxToken<'t>
        = RxToken<'a>
    where
        Self: 't;
    type TxToken<'t>
        = TxToken<'t, 'a, P, B>
    where
        Self: 't;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        loop {
            if self.received.is_empty() {
                self.rx.rx_batch(&mut self.received, B);
                if self.received.is_empty() {
                    // Receiving ran dry: send the replies smoltcp built meanwhile.
                    self.tx.flush();
                    return None;
                }
                self.received.reverse();
            }
            let packet = self.received.pop()?;
            if self.rx_checksum && !ipv4_checksums_hold(&packet, &packet.rx_offload()) {
                // smoltcp trusts the device's results: a frame they fail goes no further.
                self.tx.counters.rx_bad_checksum += 1;
                continue;
            }
            return Some((RxToken { packet }, TxToken { side: &mut self.tx }));
        }
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        match self.tx.ready() {
            Ok(()) => Some(TxToken { side: &mut self.tx }),
            Err(_) => None,
        }
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.tx.mtu;
        // The device buffers up to a ring's worth of frames between two polls (one descriptor
        // always stays with the driver); smoltcp caps its TCP window at this many segments.
        caps.max_burst_size = Some(self.rx.ring_size() - 1);
        // What smoltcp still does itself (see the type's docs): `Tx` computes only, `Rx`
        // verifies only.
        let ours = match (self.rx_checksum, self.tx.tx_checksum) {
            (false, false) => Checksum::Both,
            (true, false) => Checksum::Tx,
            (false, true) => Checksum::Rx,
            (true, true) => Checksum::None,
        };
        let mut checksum = ChecksumCapabilities::default();
        checksum.ipv4 = ours;
        checksum.tcp = ours;
        checksum.udp = ours;
        caps.checksum = checksum;
        caps
    }
}
