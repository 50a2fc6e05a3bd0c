//! TCP/IP over the driver with smoltcp: the echo server of `ixgbe-echo` (TCP and UDP echo; ARP
//! and ping are answered by smoltcp's interface itself), and the client that checks it in sim
//! mode and in the tests (ping, UDP echo, then a TCP stream echoed back byte-exact).
//!
//! Both are generic over [`smoltcp::phy::Device`], so they run on
//! [`ixgbe_core::smoltcp_phy::SmoltcpDevice`] over any platform.

use std::sync::OnceLock;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::phy::{ChecksumCapabilities, Device};
use smoltcp::socket::{icmp, tcp, udp};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{
    EthernetAddress, HardwareAddress, Icmpv4Packet, Icmpv4Repr, IpAddress, IpCidr, IpEndpoint,
    Ipv4Address, Ipv4Cidr,
};

/// TCP connections the server accepts at once (one listening socket each).
pub const TCP_SOCKETS: usize = 4;
/// Bytes of each TCP socket's receive and of its send buffer (with window scaling).
pub const TCP_BUFFER: usize = 256 * 1024;
/// Datagrams each UDP socket buffers each way.
const UDP_PACKETS: usize = 64;
/// Largest UDP payload echoed (an Ethernet frame's worth).
const UDP_MAX: usize = 1472;
/// ICMP identifier of the client's pings.
const PING_IDENT: u16 = 0x1c9b;
/// How long the client waits for a ping reply or a UDP echo before sending again.
const RETRY: Duration = Duration::from_millis(100);
/// Tries per UDP round before the client gives up on the datagrams not yet echoed.
const TRIES: u32 = 10;
/// The client's TCP port.
const CLIENT_PORT: u16 = 49_152;

/// Period of the client's byte pattern: a prime, so it lines up with no segment or buffer size.
const PERIOD: usize = 65_521;

/// Two periods of the pattern, so that any window of up to one period is one slice.
fn pattern_table() -> &'static [u8] {
    static TABLE: OnceLock<Vec<u8>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (0..2 * PERIOD as u64)
            .map(|i| {
                let k = i % PERIOD as u64;
                (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ (k as u8)
            })
            .collect()
    })
}

/// Byte `i` of the stream the client sends (period 65521 bytes).
#[inline]
pub fn pattern(i: u64) -> u8 {
    pattern_table()[(i % PERIOD as u64) as usize]
}

/// Fills `buf` with the stream's bytes from offset `at` (copies from a table, so generating
/// the stream costs little next to the stack under test).
pub fn pattern_fill(at: u64, buf: &mut [u8]) {
    let table = pattern_table();
    let mut off = (at % PERIOD as u64) as usize;
    for chunk in buf.chunks_mut(PERIOD) {
        chunk.copy_from_slice(&table[off..off + chunk.len()]);
        off = (off + chunk.len()) % PERIOD;
    }
}

/// Index of the first byte of `buf` that differs from the stream's bytes from offset `at`.
pub fn pattern_mismatch(at: u64, buf: &[u8]) -> Option<usize> {
    let table = pattern_table();
    let mut off = (at % PERIOD as u64) as usize;
    let mut done = 0;
    for chunk in buf.chunks(PERIOD) {
        let want = &table[off..off + chunk.len()];
        if chunk != want {
            let i = chunk.iter().zip(want).position(|(a, b)| a != b);
            return i.map(|i| done + i);
        }
        done += chunk.len();
        off = (off + chunk.len()) % PERIOD;
    }
    None
}

fn interface<D: Device>(dev: &mut D, mac: [u8; 6], addr: Ipv4Cidr, now: Instant) -> Interface {
    let config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    let mut iface = Interface::new(config, dev, now);
    iface.update_ip_addrs(|addrs| {
        // A fresh interface has no address, so there is room for one.
        let _ = addrs.push(IpCidr::Ipv4(addr));
    });
    iface
}

fn tcp_socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
        tcp::SocketBuffer::new(vec![0; TCP_BUFFER]),
    )
}

fn udp_socket() -> udp::Socket<'static> {
    let buffer = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; UDP_PACKETS],
            vec![0; UDP_PACKETS * UDP_MAX],
        )
    };
    udp::Socket::new(buffer(), buffer())
}

/// What the server echoed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerTotals {
    /// TCP connections accepted.
    pub tcp_connections: u64,
    /// TCP connections that have ended.
    pub tcp_closed: u64,
    /// TCP payload bytes echoed.
    pub tcp_bytes: u64,
    /// UDP datagrams echoed.
    pub udp_datagrams: u64,
    /// UDP payload bytes echoed.
    pub udp_bytes: u64,
    /// UDP datagrams not echoed (the send buffer was full).
    pub udp_dropped: u64,
}

/// One of the server's TCP sockets and the connection it serves.
struct Connection {
    handle: SocketHandle,
    /// The peer, while connected.
    peer: Option<IpEndpoint>,
    /// Bytes echoed on the current connection.
    bytes: u64,
}

/// A TCP and UDP echo server on one interface; ARP and ping are answered by the interface.
pub struct Server {
    iface: Interface,
    sockets: SocketSet<'static>,
    tcp: Vec<Connection>,
    udp: SocketHandle,
    port: u16,
    scratch: Vec<u8>,
    totals: ServerTotals,
    /// Lines to print: what each finished connection echoed.
    log: Vec<String>,
}

impl Server {
    /// A server at `addr` with MAC `mac`, echoing TCP and UDP on `port`.
    pub fn new<D: Device>(
        dev: &mut D,
        mac: [u8; 6],
        addr: Ipv4Cidr,
        port: u16,
        now: Instant,
    ) -> Self {
        let iface = interface(dev, mac, addr, now);
        let mut sockets = SocketSet::new(Vec::new());
        let tcp = (0..TCP_SOCKETS)
            .map(|_| Connection {
                handle: sockets.add(tcp_socket()),
                peer: None,
                bytes: 0,
            })
            .collect();
        let mut udp = udp_socket();
        // A fresh socket on a non-zero port: binding cannot fail.
        let _ = udp.bind(port);
        let udp = sockets.add(udp);
        Server {
            iface,
            sockets,
            tcp,
            udp,
            port,
            scratch: vec![0; 64 * 1024],
            totals: ServerTotals::default(),
            log: Vec::new(),
        }
    }

    /// Runs the interface once and echoes what arrived; true if anything happened.
    pub fn poll<D: Device>(&mut self, now: Instant, dev: &mut D) -> bool {
        let mut busy =
            self.iface.poll(now, dev, &mut self.sockets) != smoltcp::iface::PollResult::None;
        for conn in &mut self.tcp {
            let sock = self.sockets.get_mut::<tcp::Socket>(conn.handle);
            if sock.is_active() && conn.peer.is_none() {
                conn.peer = sock.remote_endpoint();
                conn.bytes = 0;
                self.totals.tcp_connections += 1;
            }
            if !sock.is_active() {
                if let Some(peer) = conn.peer.take() {
                    self.totals.tcp_closed += 1;
                    self.log.push(format!(
                        "tcp: connection from {peer} closed after echoing {} bytes",
                        conn.bytes
                    ));
                }
            }
            if !sock.is_open() {
                // Port 0 is refused by the argument parser, so listening cannot fail.
                let _ = sock.listen(self.port);
                continue;
            }
            while sock.can_recv() && sock.can_send() {
                let room = sock.send_capacity() - sock.send_queue();
                let n = room.min(sock.recv_queue()).min(self.scratch.len());
                let Ok(got) = sock.recv_slice(&mut self.scratch[..n]) else {
                    break;
                };
                if got == 0 {
                    break;
                }
                // `room` bytes fit the send buffer, so all of them are queued.
                let sent = sock.send_slice(&self.scratch[..got]).unwrap_or(0) as u64;
                conn.bytes += sent;
                self.totals.tcp_bytes += sent;
                busy = true;
            }
            // The peer closed its side and everything it sent has been echoed: close ours.
            if !sock.may_recv() && sock.may_send() && sock.recv_queue() == 0 {
                sock.close();
            }
        }
        let udp = self.sockets.get_mut::<udp::Socket>(self.udp);
        while let Ok((n, meta)) = udp.recv_slice(&mut self.scratch) {
            busy = true;
            match udp.send_slice(&self.scratch[..n], meta.endpoint) {
                Ok(()) => {
                    self.totals.udp_datagrams += 1;
                    self.totals.udp_bytes += n as u64;
                }
                Err(_) => self.totals.udp_dropped += 1,
            }
        }
        busy
    }

    /// What the server echoed so far.
    pub fn totals(&self) -> ServerTotals {
        self.totals
    }

    /// Lines about finished connections since the last call.
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    /// When smoltcp next needs polling (a timer), if it says.
    pub fn poll_delay(&mut self, now: Instant) -> Option<Duration> {
        self.iface.poll_delay(now, &self.sockets)
    }
}

/// What the client does, in this order: pings, UDP datagrams, then one TCP stream.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Echo requests to send (one at a time).
    pub pings: u16,
    /// Tries per echo request, 100 ms apart, before the client gives up on it (a server that
    /// is still starting: give it many).
    pub ping_tries: u32,
    /// UDP datagrams to send (all at once).
    pub udp_datagrams: u16,
    /// Payload bytes of each datagram (4..=1472).
    pub udp_len: usize,
    /// TCP payload bytes to stream and get back.
    pub tcp_bytes: u64,
}

/// What the client saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientReport {
    /// Echo replies that matched a request (ident, sequence number, payload).
    pub ping_replies: u16,
    /// Datagrams that came back intact.
    pub udp_echoed: u16,
    /// Datagrams that came back altered, or that were never sent.
    pub udp_bad: u16,
    /// TCP payload bytes sent.
    pub tcp_sent: u64,
    /// TCP payload bytes received back.
    pub tcp_received: u64,
    /// Offset of the first received byte that differed from what was sent.
    pub tcp_first_mismatch: Option<u64>,
    /// When the TCP connection was opened and when the last byte came back.
    pub tcp_started: Option<Instant>,
    /// See `tcp_started`.
    pub tcp_finished: Option<Instant>,
    /// The connection was reset or closed before everything came back.
    pub tcp_failed: bool,
}

impl ClientReport {
    /// Every ping answered, every datagram and every byte echoed intact.
    pub fn all_good(&self, plan: &Plan) -> bool {
        self.ping_replies == plan.pings
            && self.udp_echoed == plan.udp_datagrams
            && self.udp_bad == 0
            && self.tcp_received == plan.tcp_bytes
            && self.tcp_first_mismatch.is_none()
            && !self.tcp_failed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ping {
        seq: u16,
        sent_at: Option<Instant>,
        tries: u32,
    },
    Udp {
        sent_at: Option<Instant>,
        tries: u32,
    },
    Tcp,
    Closing {
        since: Instant,
    },
    Done,
}

/// The client: checks the server with pings, UDP datagrams and a TCP stream.
pub struct Client {
    iface: Interface,
    sockets: SocketSet<'static>,
    icmp: SocketHandle,
    udp: SocketHandle,
    tcp: SocketHandle,
    server: IpEndpoint,
    plan: Plan,
    phase: Phase,
    udp_seen: Vec<bool>,
    report: ClientReport,
}

impl Client {
    /// A client at `addr` with MAC `mac`, for the server at `server`.
    pub fn new<D: Device>(
        dev: &mut D,
        mac: [u8; 6],
        addr: Ipv4Cidr,
        server: (Ipv4Address, u16),
        plan: Plan,
        now: Instant,
    ) -> Self {
        let iface = interface(dev, mac, addr, now);
        let mut sockets = SocketSet::new(Vec::new());
        let icmp_buffer =
            || icmp::PacketBuffer::new(vec![icmp::PacketMetadata::EMPTY; 8], vec![0; 8 * 256]);
        let mut icmp = icmp::Socket::new(icmp_buffer(), icmp_buffer());
        let _ = icmp.bind(icmp::Endpoint::Ident(PING_IDENT));
        let icmp = sockets.add(icmp);
        let mut udp = udp_socket();
        let _ = udp.bind(CLIENT_PORT);
        let udp = sockets.add(udp);
        let tcp = sockets.add(tcp_socket());
        let plan = Plan {
            udp_len: plan.udp_len.clamp(4, UDP_MAX),
            ..plan
        };
        Client {
            iface,
            sockets,
            icmp,
            udp,
            tcp,
            server: IpEndpoint::new(IpAddress::Ipv4(server.0), server.1),
            plan,
            phase: Phase::Ping {
                seq: 0,
                sent_at: None,
                tries: 0,
            },
            udp_seen: vec![false; usize::from(plan.udp_datagrams)],
            report: ClientReport::default(),
        }
    }

    /// True once every step finished (or gave up).
    pub fn done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// What the client saw so far.
    pub fn report(&self) -> ClientReport {
        self.report
    }

    /// Runs the interface once and moves the plan on; true if anything happened.
    pub fn poll<D: Device>(&mut self, now: Instant, dev: &mut D) -> bool {
        let busy = self.iface.poll(now, dev, &mut self.sockets) != smoltcp::iface::PollResult::None;
        self.phase = match self.phase {
            Phase::Ping {
                seq,
                sent_at,
                tries,
            } => self.ping(now, seq, sent_at, tries),
            Phase::Udp { sent_at, tries } => self.udp(now, sent_at, tries),
            Phase::Tcp => self.stream(now),
            Phase::Closing { since } => {
                let sock = self.sockets.get_mut::<tcp::Socket>(self.tcp);
                if !sock.is_open() || now - since > Duration::from_secs(2) {
                    Phase::Done
                } else {
                    Phase::Closing { since }
                }
            }
            Phase::Done => Phase::Done,
        };
        busy
    }

    fn ping(&mut self, now: Instant, seq: u16, sent_at: Option<Instant>, tries: u32) -> Phase {
        if seq >= self.plan.pings {
            return self.start_udp();
        }
        let caps = ChecksumCapabilities::default();
        let data = seq.to_be_bytes().repeat(28);
        let sock = self.sockets.get_mut::<icmp::Socket>(self.icmp);
        while let Ok((payload, _from)) = sock.recv() {
            let Ok(packet) = Icmpv4Packet::new_checked(payload) else {
                continue;
            };
            if let Ok(Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data: got,
            }) = Icmpv4Repr::parse(&packet, &caps)
            {
                if ident == PING_IDENT && seq_no == seq && got == &data[..] {
                    self.report.ping_replies += 1;
                    return Phase::Ping {
                        seq: seq + 1,
                        sent_at: None,
                        tries: 0,
                    };
                }
            }
        }
        let due = sent_at.is_none_or(|t| now - t >= RETRY);
        if !due {
            return Phase::Ping {
                seq,
                sent_at,
                tries,
            };
        }
        if tries >= self.plan.ping_tries {
            // Give up on this one.
            return Phase::Ping {
                seq: seq + 1,
                sent_at: None,
                tries: 0,
            };
        }
        let request = Icmpv4Repr::EchoRequest {
            ident: PING_IDENT,
            seq_no: seq,
            data: &data,
        };
        if let Ok(buf) = sock.send(request.buffer_len(), self.server.addr) {
            request.emit(&mut Icmpv4Packet::new_unchecked(buf), &caps);
        }
        Phase::Ping {
            seq,
            sent_at: Some(now),
            tries: tries + 1,
        }
    }

    fn start_udp(&mut self) -> Phase {
        if self.plan.udp_datagrams == 0 {
            return self.start_tcp();
        }
        Phase::Udp {
            sent_at: None,
            tries: 0,
        }
    }

    /// Datagram `k`: its number, then the stream pattern from `k`.
    fn datagram(&self, k: u16) -> Vec<u8> {
        let mut d: Vec<u8> = (0..self.plan.udp_len as u64)
            .map(|i| pattern(u64::from(k) * 7919 + i))
            .collect();
        d[..2].copy_from_slice(&k.to_be_bytes());
        d
    }

    fn udp(&mut self, now: Instant, sent_at: Option<Instant>, tries: u32) -> Phase {
        let mut buf = vec![0; UDP_MAX];
        loop {
            let sock = self.sockets.get_mut::<udp::Socket>(self.udp);
            let Ok((n, _meta)) = sock.recv_slice(&mut buf) else {
                break;
            };
            let k = u16::from_be_bytes([buf[0], buf.get(1).copied().unwrap_or(0)]);
            let seen = self.udp_seen.get(usize::from(k)).copied();
            if n >= 2 && seen == Some(false) && buf[..n] == self.datagram(k)[..] {
                self.udp_seen[usize::from(k)] = true;
                self.report.udp_echoed += 1;
            } else if seen != Some(true) {
                self.report.udp_bad += 1;
            }
        }
        if self.report.udp_echoed == self.plan.udp_datagrams {
            return self.start_tcp();
        }
        if sent_at.is_some_and(|t| now - t < RETRY) {
            return Phase::Udp { sent_at, tries };
        }
        if tries >= TRIES {
            self.report.udp_bad += self.plan.udp_datagrams - self.report.udp_echoed;
            return self.start_tcp();
        }
        // (Re)send every datagram not yet echoed.
        for k in 0..self.plan.udp_datagrams {
            if !self.udp_seen[usize::from(k)] {
                let d = self.datagram(k);
                let sock = self.sockets.get_mut::<udp::Socket>(self.udp);
                let _ = sock.send_slice(&d, self.server);
            }
        }
        Phase::Udp {
            sent_at: Some(now),
            tries: tries + 1,
        }
    }

    fn start_tcp(&mut self) -> Phase {
        if self.plan.tcp_bytes == 0 {
            return Phase::Done;
        }
        let sock = self.sockets.get_mut::<tcp::Socket>(self.tcp);
        if sock
            .connect(self.iface.context(), self.server, CLIENT_PORT)
            .is_err()
        {
            self.report.tcp_failed = true;
            return Phase::Done;
        }
        Phase::Tcp
    }

    fn stream(&mut self, now: Instant) -> Phase {
        let total = self.plan.tcp_bytes;
        let r = &mut self.report;
        let sock = self.sockets.get_mut::<tcp::Socket>(self.tcp);
        if r.tcp_started.is_none() {
            r.tcp_started = Some(now);
        }
        if sock.can_send() && r.tcp_sent < total {
            let sent = r.tcp_sent;
            let n = sock
                .send(|buf| {
                    let n = buf.len().min((total - sent) as usize);
                    pattern_fill(sent, &mut buf[..n]);
                    (n, n)
                })
                .unwrap_or(0);
            r.tcp_sent += n as u64;
        }
        while sock.can_recv() {
            let received = r.tcp_received;
            let (n, mismatch) = sock
                .recv(|buf| (buf.len(), (buf.len(), pattern_mismatch(received, buf))))
                .unwrap_or((0, None));
            if let (Some(at), None) = (mismatch, r.tcp_first_mismatch) {
                r.tcp_first_mismatch = Some(received + at as u64);
            }
            r.tcp_received += n as u64;
            if n == 0 {
                break;
            }
        }
        if r.tcp_received >= total {
            r.tcp_finished = Some(now);
            sock.close();
            return Phase::Closing { since: now };
        }
        if !sock.is_active() {
            r.tcp_failed = true;
            return Phase::Done;
        }
        Phase::Tcp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_the_same_however_it_is_cut() {
        let whole: Vec<u8> = (0..200_000).map(pattern).collect();
        assert_ne!(whole[..PERIOD - 1], whole[1..PERIOD]);
        for (at, len) in [
            (0, 200_000),
            (1, 5),
            (65_520, 3),
            (70_000, 130_000),
            (199_999, 1),
        ] {
            let mut buf = vec![0; len];
            pattern_fill(at as u64, &mut buf);
            assert_eq!(buf, whole[at..at + len]);
            assert_eq!(pattern_mismatch(at as u64, &buf), None);
            buf[len - 1] ^= 1;
            assert_eq!(pattern_mismatch(at as u64, &buf), Some(len - 1));
        }
        // A stream shifted by one byte (a lost byte) does not match.
        assert_eq!(pattern_mismatch(1, &whole[..100]), Some(0));
    }
}
