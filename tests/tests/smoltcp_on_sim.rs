//! smoltcp over the driver: `ixgbe_core::smoltcp_phy::SmoltcpDevice` on two simulated 82599s
//! joined by a cable, each with its own `ixgbe-core` device and smoltcp interface; the echo
//! server of `ixgbe-echo` on one, its checking client on the other.

use std::cell::Cell;
use std::time::Duration;

use ixgbe_core::smoltcp_phy::SmoltcpDevice;
use ixgbe_core::{Config, Device, Mempool, Started, DEFAULT_BUF_SIZE};
use ixgbe_tools::echo::{Client, Plan, Server};
use platform_mock::{Fault, NicConfig, NicId, Sim, SimPlatform};
use smoltcp::phy::{self, Device as _, DeviceCapabilities, RxToken as _, TxToken as _};
use smoltcp::time::Instant;
use smoltcp::wire::{ArpOperation, ArpPacket, EthernetFrame, EthernetProtocol, Ipv4Address};
use smoltcp::wire::{ArpRepr, Ipv4Cidr};
use tests::on_sim::{assert_clean, start};

const SERVER_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
const SERVER_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const CLIENT_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const PORT: u16 = 7;

fn now(sim: &Sim) -> Instant {
    Instant::from_micros(sim.now().as_micros() as i64)
}

fn queue_pair<'a>(
    started: Started<'a, SimPlatform>,
    pool: &'a Mempool<SimPlatform>,
) -> (Device<SimPlatform>, SmoltcpDevice<'a, SimPlatform>) {
    let Started { device, rx, tx } = started;
    let rx = rx.into_iter().next().unwrap();
    let tx = tx.into_iter().next().unwrap();
    (device, SmoltcpDevice::new(rx, tx, pool))
}

/// ARP frames a device saw: requests sent, replies received.
#[derive(Default)]
struct ArpSeen {
    requests_sent: Cell<u32>,
    replies_received: Cell<u32>,
}

fn arp_op(frame: &[u8]) -> Option<ArpOperation> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != EthernetProtocol::Arp {
        return None;
    }
    let packet = ArpPacket::new_checked(eth.payload()).ok()?;
    match ArpRepr::parse(&packet).ok()? {
        ArpRepr::EthernetIpv4 { operation, .. } => Some(operation),
        _ => None,
    }
}

/// A device that passes everything through and records the ARP frames.
struct Tap<'s, D> {
    inner: D,
    seen: &'s ArpSeen,
}

struct TapRx<'s, T> {
    inner: T,
    seen: &'s ArpSeen,
}

struct TapTx<'s, T> {
    inner: T,
    seen: &'s ArpSeen,
}

impl<T: phy::RxToken> phy::RxToken for TapRx<'_, T> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        let seen = self.seen;
        self.inner.consume(|frame| {
            if arp_op(frame) == Some(ArpOperation::Reply) {
                seen.replies_received.set(seen.replies_received.get() + 1);
            }
            f(frame)
        })
    }
}

impl<T: phy::TxToken> phy::TxToken for TapTx<'_, T> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let seen = self.seen;
        self.inner.consume(len, |frame| {
            let r = f(frame);
            if arp_op(frame) == Some(ArpOperation::Request) {
                seen.requests_sent.set(seen.requests_sent.get() + 1);
            }
            r
        })
    }
}

impl<'s, D: phy::Device> phy::Device for Tap<'s, D> {
    type RxToken<'t>
        = TapRx<'s, D::RxToken<'t>>
    where
        Self: 't;
    type TxToken<'t>
        = TapTx<'s, D::TxToken<'t>>
    where
        Self: 't;

    fn receive(&mut self, t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let seen = self.seen;
        let (rx, tx) = self.inner.receive(t)?;
        Some((TapRx { inner: rx, seen }, TapTx { inner: tx, seen }))
    }

    fn transmit(&mut self, t: Instant) -> Option<Self::TxToken<'_>> {
        let seen = self.seen;
        Some(TapTx {
            inner: self.inner.transmit(t)?,
            seen,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.inner.capabilities()
    }
}

#[test]
fn tcp_udp_ping_and_arp_over_two_cabled_simulated_ports() {
    let sim = Sim::new();
    let a = sim.add_nic(NicConfig {
        mac: SERVER_MAC,
        ..NicConfig::default()
    });
    let b = sim.add_nic(NicConfig {
        mac: CLIENT_MAC,
        ..NicConfig::default()
    });
    sim.cable(a, b);
    let (pa, pb) = (sim.platform(a), sim.platform(b));
    let config = Config::default().promiscuous(false);
    let pools_a = [Mempool::new(&pa, 2048, DEFAULT_BUF_SIZE).unwrap()];
    let pools_b = [Mempool::new(&pb, 2048, DEFAULT_BUF_SIZE).unwrap()];
    let (dev_a, mut server_phy) = queue_pair(start(&pa, &config, &pools_a), &pools_a[0]);
    let (dev_b, client_phy) = queue_pair(start(&pb, &config, &pools_b), &pools_b[0]);
    let caps = server_phy.capabilities();
    assert_eq!(caps.max_transmission_unit, 1514);
    assert_eq!(caps.max_burst_size, Some(511));

    let seen = ArpSeen::default();
    let mut client_phy = Tap {
        inner: client_phy,
        seen: &seen,
    };
    let plan = Plan {
        pings: 3,
        ping_tries: 10,
        udp_datagrams: 20,
        udp_len: 1200,
        tcp_bytes: 10 * 1024 * 1024 + 12_345,
    };
    let mut server = Server::new(
        &mut server_phy,
        dev_a.mac(),
        Ipv4Cidr::new(SERVER_IP, 24),
        PORT,
        now(&sim),
    );
    let mut client = Client::new(
        &mut client_phy,
        dev_b.mac(),
        Ipv4Cidr::new(CLIENT_IP, 24),
        (SERVER_IP, PORT),
        plan,
        now(&sim),
    );
    let deadline = sim.now() + Duration::from_secs(60);
    while !client.done() {
        assert!(sim.now() < deadline, "no progress: {:?}", client.report());
        let t = now(&sim);
        server.poll(t, &mut server_phy);
        client.poll(t, &mut client_phy);
        server_phy.flush();
        client_phy.inner.flush();
        sim.advance(Duration::from_micros(20));
    }
    // The client's last ACK reaches the server: its side of the connection ends too.
    for _ in 0..50 {
        let t = now(&sim);
        server.poll(t, &mut server_phy);
        client.poll(t, &mut client_phy);
        server_phy.flush();
        client_phy.inner.flush();
        sim.advance(Duration::from_micros(20));
    }
    let report = client.report();
    assert_eq!(report.ping_replies, plan.pings, "{report:?}");
    assert_eq!(report.udp_echoed, plan.udp_datagrams, "{report:?}");
    assert_eq!(report.udp_bad, 0);
    assert_eq!(report.tcp_sent, plan.tcp_bytes);
    assert_eq!(report.tcp_received, plan.tcp_bytes);
    assert_eq!(report.tcp_first_mismatch, None);
    assert!(!report.tcp_failed);
    assert!(report.all_good(&plan));
    // The client had to ask who 10.0.0.1 is, once, and the server answered.
    assert_eq!(seen.requests_sent.get(), 1);
    assert_eq!(seen.replies_received.get(), 1);
    let totals = server.totals();
    assert_eq!(totals.tcp_bytes, plan.tcp_bytes);
    assert_eq!((totals.tcp_connections, totals.tcp_closed), (1, 1));
    assert_eq!(totals.udp_datagrams, u64::from(plan.udp_datagrams));
    // Nothing was dropped for want of a buffer or of ring space, nothing bad was received.
    for phy in [&server_phy, &client_phy.inner] {
        assert_eq!(phy.counters(), Default::default());
        let rx = phy.rx_queue().counters();
        assert_eq!((rx.no_eop, rx.errors, rx.bad_length), (0, 0, 0));
    }
    let stats = dev_a.stats();
    assert_eq!((stats.rx_missed, stats.rx_dropped), (0, 0));
    drop(server_phy);
    drop(client_phy);
    drop((dev_a, dev_b));
    for pool in pools_a.iter().chain(&pools_b) {
        assert_eq!(pool.free_count(), pool.capacity(), "a pool lost buffers");
    }
    assert_clean(&sim);
}

/// An ARP request for 10.0.0.1 from 10.0.0.2, padded to the Ethernet minimum.
fn arp_request() -> [u8; 60] {
    let mut frame = [0u8; 60];
    let mut eth = EthernetFrame::new_unchecked(&mut frame[..]);
    eth.set_dst_addr(smoltcp::wire::EthernetAddress::BROADCAST);
    eth.set_src_addr(smoltcp::wire::EthernetAddress(CLIENT_MAC));
    eth.set_ethertype(EthernetProtocol::Arp);
    ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: smoltcp::wire::EthernetAddress(CLIENT_MAC),
        source_protocol_addr: CLIENT_IP,
        target_hardware_addr: smoltcp::wire::EthernetAddress([0; 6]),
        target_protocol_addr: SERVER_IP,
    }
    .emit(&mut ArpPacket::new_unchecked(eth.payload_mut()));
    frame
}

fn lone_nic() -> (Sim, NicId, SimPlatform) {
    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig {
        mac: SERVER_MAC,
        ..NicConfig::default()
    });
    let platform = sim.platform(nic);
    (sim, nic, platform)
}

#[test]
fn a_full_ring_an_empty_pool_or_an_oversized_frame_means_no_token_or_a_drop() {
    let (sim, nic, platform) = lone_nic();
    let config = Config::default().rx_ring_size(8).tx_ring_size(8);
    // Rx: 8 buffers in the ring (one per descriptor) and 1 spare. Tx: a pool of its own.
    let rx_pools = [Mempool::new(&platform, 9, DEFAULT_BUF_SIZE).unwrap()];
    let tx_pool = Mempool::new(&platform, 16, DEFAULT_BUF_SIZE).unwrap();
    let Started { device, rx, tx } = start(&platform, &config, &rx_pools);
    let (rx, tx) = (
        rx.into_iter().next().unwrap(),
        tx.into_iter().next().unwrap(),
    );
    let mut phy: SmoltcpDevice<'_, _, 4> = SmoltcpDevice::new(rx, tx, &tx_pool);
    let t = Instant::ZERO;
    let frame = |buf: &mut [u8]| buf.fill(0xAB);

    // The device stops fetching Tx descriptors, so the ring fills: 7 descriptors (one stays
    // empty) plus a pending batch of 4, then no more tokens.
    sim.set_fault(nic, Fault::StallTx { queue: 0 });
    let mut tokens = 0;
    while let Some(token) = phy.transmit(t) {
        token.consume(60, frame);
        tokens += 1;
        assert!(tokens <= 100, "tokens without end");
    }
    assert_eq!(tokens, 7 + 4);
    assert_eq!(phy.pending(), 4);
    assert_eq!(phy.tx_queue().in_flight(), 7);

    // A frame arrives; its reply token finds the ring full: the reply is built and dropped.
    sim.inject(nic, &arp_request());
    let (rx_token, tx_token) = phy.receive(t).expect("the injected frame");
    rx_token.consume(|f| assert_eq!(f.len(), 60));
    tx_token.consume(42, frame);
    assert_eq!(phy.counters().tx_ring_full, 1);

    // A frame longer than a buffer's MTU: built in scratch space, dropped, counted.
    sim.clear_faults(nic);
    sim.advance(Duration::from_micros(50));
    let token = phy.transmit(t).expect("the ring drained");
    let got = token.consume(9000, |buf| buf.len());
    assert_eq!(got, 1514);
    assert_eq!(phy.counters().tx_too_long, 1);

    // Every Tx buffer held by the program: no token; the reply token drops.
    phy.flush();
    sim.advance(Duration::from_micros(50));
    phy.flush();
    assert_eq!(phy.pending(), 0);
    // Take every buffer the pool has, and each one that comes back from the ring, until the
    // adapter has used up the spare buffers it holds.
    let mut held = Vec::new();
    let mut sent = 0;
    loop {
        while let Some(p) = tx_pool.alloc() {
            held.push(p);
        }
        let Some(token) = phy.transmit(t) else {
            break;
        };
        token.consume(60, frame);
        phy.flush();
        sim.advance(Duration::from_micros(50));
        phy.flush();
        sent += 1;
        assert!(sent <= 4, "the adapter found buffers the test holds");
    }
    assert_eq!(held.len(), 16);
    assert!(phy.transmit(t).is_none());
    sim.inject(nic, &arp_request());
    let (rx_token, tx_token) = phy.receive(t).expect("the injected frame");
    rx_token.consume(|_| ());
    tx_token.consume(42, frame);
    assert_eq!(phy.counters().tx_no_buffer, 1);
    drop(held);
    assert!(phy.transmit(t).is_some(), "buffers came back");

    // The Rx pool empty: frames still come through (their descriptors wait unarmed until
    // buffers return to rearm them), nothing breaks.
    let spare = rx_pools[0].alloc().expect("the Rx pool's spare buffer");
    assert!(rx_pools[0].alloc().is_none());
    for _ in 0..3 {
        sim.inject(nic, &arp_request());
    }
    let mut received = 0;
    while let Some((rx_token, _tx)) = phy.receive(t) {
        rx_token.consume(|_| ());
        received += 1;
    }
    assert_eq!(received, 3, "every frame came through with the pool empty");
    drop(spare);
    let ring = phy.rx_queue().ring_size();
    assert!(
        phy.rx_queue().buffers_held() < ring,
        "three descriptors wait unarmed"
    );
    sim.inject(nic, &arp_request());
    assert!(phy.receive(t).is_some(), "the queue keeps receiving");

    // Dropping the adapter returns everything.
    let (rx, tx) = phy.into_parts();
    drop((rx, tx));
    drop(device);
    assert_eq!(tx_pool.free_count(), tx_pool.capacity());
    assert_eq!(rx_pools[0].free_count(), rx_pools[0].capacity());
    assert_clean(&sim);
}

/// The server with every checksum offload, the client without: the client's smoltcp verifies in
/// software what the server's device computed, the server's device verifies what the client's
/// smoltcp computed, and a frame with a wrong UDP checksum goes no further than the adapter.
#[test]
fn checksum_offloads_under_smoltcp() {
    use smoltcp::phy::Checksum;
    let sim = Sim::new();
    let a = sim.add_nic(NicConfig {
        mac: SERVER_MAC,
        ..NicConfig::default()
    });
    let b = sim.add_nic(NicConfig {
        mac: CLIENT_MAC,
        ..NicConfig::default()
    });
    sim.cable(a, b);
    let (pa, pb) = (sim.platform(a), sim.platform(b));
    let plain = Config::default().promiscuous(false).rx_ring_size(256);
    let offloads = plain.clone().rx_checksum(true);
    let pools_a = [Mempool::new(&pa, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let pools_b = [Mempool::new(&pb, 1024, DEFAULT_BUF_SIZE).unwrap()];
    let (dev_a, server_phy) = queue_pair(start(&pa, &offloads, &pools_a), &pools_a[0]);
    let mut server_phy = server_phy.with_tx_checksum_offload(true);
    let (dev_b, mut client_phy) = queue_pair(start(&pb, &plain, &pools_b), &pools_b[0]);
    let caps = server_phy.capabilities().checksum;
    assert!(matches!(caps.ipv4, Checksum::None) && matches!(caps.tcp, Checksum::None));
    assert!(matches!(caps.udp, Checksum::None) && matches!(caps.icmpv4, Checksum::Both));
    assert!(matches!(
        client_phy.capabilities().checksum.tcp,
        Checksum::Both
    ));
    let plan = Plan {
        pings: 2,
        ping_tries: 10,
        udp_datagrams: 10,
        udp_len: 300,
        tcp_bytes: 200_000,
    };
    let mut server = Server::new(
        &mut server_phy,
        dev_a.mac(),
        Ipv4Cidr::new(SERVER_IP, 24),
        PORT,
        now(&sim),
    );
    let mut client = Client::new(
        &mut client_phy,
        dev_b.mac(),
        Ipv4Cidr::new(CLIENT_IP, 24),
        (SERVER_IP, PORT),
        plan,
        now(&sim),
    );
    let deadline = sim.now() + Duration::from_secs(30);
    while !client.done() {
        assert!(sim.now() < deadline, "no progress: {:?}", client.report());
        let t = now(&sim);
        server.poll(t, &mut server_phy);
        client.poll(t, &mut client_phy);
        server_phy.flush();
        client_phy.flush();
        sim.advance(Duration::from_micros(20));
    }
    let report = client.report();
    assert!(report.all_good(&plan), "{report:?}");
    assert_eq!(report.udp_bad, 0);
    let tx = server_phy.tx_queue().counters();
    assert!(tx.contexts >= 1 && tx.contexts < tx.packets / 10, "{tx:?}");
    assert_eq!(tx.offload_invalid, 0);
    // A UDP datagram to the echo port with a wrong checksum: dropped by the adapter.
    let mut bad = tests::frames::build(tests::frames::Shape::udp4(40), 2);
    bad[..6].copy_from_slice(&SERVER_MAC);
    bad[30..34].copy_from_slice(&SERVER_IP.octets());
    bad[36..38].copy_from_slice(&PORT.to_be_bytes());
    tests::frames::break_l4_checksum(&mut bad);
    sim.inject(a, &bad);
    let before = server.totals().udp_datagrams;
    server.poll(now(&sim), &mut server_phy);
    assert_eq!(server_phy.counters().rx_bad_checksum, 1);
    assert_eq!(server.totals().udp_datagrams, before);
    drop((server_phy, client_phy, dev_a, dev_b));
    assert_clean(&sim);
}
