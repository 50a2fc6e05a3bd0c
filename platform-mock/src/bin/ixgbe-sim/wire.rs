//! What is at the other end of each port's cable: nothing, the other port (`--cable`), a UDP
//! socket (`--wire`), or the simulator's own traffic generator and checker (`--peer`).

use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use log::{debug, warn};
use platform_mock::traffic::{CheckingSink, LineRateSource, PeerCounters};
use platform_mock::{NicId, Sim, TrafficSink};

/// `--wire N=udp:HOST:PORT[,listen=PORT2]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireSpec {
    /// Port index.
    pub port: usize,
    /// Where each transmitted frame goes as one datagram.
    pub dest: SocketAddr,
    /// Local UDP port whose datagrams arrive as frames (0: any free port).
    pub listen: Option<u16>,
}

/// Parses `N=udp:HOST:PORT[,listen=PORT2]`.
pub fn parse_wire(s: &str) -> Result<WireSpec, String> {
    let (n, rest) = s
        .split_once('=')
        .ok_or("expected N=udp:HOST:PORT[,listen=PORT]")?;
    let port = n.parse().map_err(|_| format!("bad port index {n:?}"))?;
    let rest = rest
        .strip_prefix("udp:")
        .ok_or("only udp: wires exist (N=udp:HOST:PORT[,listen=PORT])")?;
    let mut parts = rest.split(',');
    let dest = parts.next().unwrap_or_default();
    let dest: SocketAddr = dest
        .parse()
        .map_err(|_| format!("bad destination {dest:?} (want IPv4:PORT)"))?;
    let mut listen = None;
    for opt in parts {
        match opt.split_once('=') {
            Some(("listen", p)) => {
                listen = Some(p.parse().map_err(|_| format!("bad listen port {p:?}"))?)
            }
            _ => return Err(format!("unknown wire option {opt:?} (known: listen=PORT)")),
        }
    }
    Ok(WireSpec { port, dest, listen })
}

/// Parses `N=aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<(usize, [u8; 6]), String> {
    let (n, mac) = s.split_once('=').ok_or("expected N=aa:bb:cc:dd:ee:ff")?;
    let port = n.parse().map_err(|_| format!("bad port index {n:?}"))?;
    let bytes: Vec<u8> = mac
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad MAC {mac:?}"))?;
    let mac: [u8; 6] = bytes
        .try_into()
        .map_err(|_| format!("bad MAC {mac:?}: six bytes"))?;
    Ok((port, mac))
}

/// Datagram counters of one UDP wire.
#[derive(Debug, Default)]
pub struct UdpCounters {
    /// Frames sent as datagrams.
    pub sent: AtomicU64,
    /// Frames that could not be sent (socket buffer full, no listener).
    pub send_errors: AtomicU64,
    /// Datagrams received and injected.
    pub received: AtomicU64,
}

/// Transmitted frames go out as datagrams. Runs with the model locked: never blocks.
struct UdpSink {
    sock: UdpSocket,
    dest: SocketAddr,
    counters: Arc<UdpCounters>,
}

impl TrafficSink for UdpSink {
    fn receive(&mut self, _now: Duration, frame: &[u8]) {
        match self.sock.send_to(frame, self.dest) {
            Ok(_) => {
                self.counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if self.counters.send_errors.fetch_add(1, Ordering::Relaxed) == 0 {
                    warn!("wire to {}: {e} (frames are dropped)", self.dest);
                }
            }
        }
    }
}

/// A UDP wire attached to a port.
pub struct UdpWire {
    /// Counters.
    pub counters: Arc<UdpCounters>,
    /// The bound listen address, if any.
    pub listen: Option<SocketAddr>,
}

/// Attaches the UDP wire `spec` to `nic`; starts its receive thread (stops with `stop`).
pub fn attach_udp(
    sim: &Sim,
    nic: NicId,
    spec: &WireSpec,
    stop: Arc<AtomicBool>,
) -> io::Result<UdpWire> {
    let counters = Arc::new(UdpCounters::default());
    let local = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
    let tx = UdpSocket::bind(if spec.dest.is_ipv4() {
        local
    } else {
        "[::1]:0".parse().expect("address")
    })?;
    tx.set_nonblocking(true)?;
    sim.attach_sink(
        nic,
        Box::new(UdpSink {
            sock: tx,
            dest: spec.dest,
            counters: counters.clone(),
        }),
    );
    let mut listen = None;
    if let Some(p) = spec.listen {
        let rx = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, p))?;
        // Bounded waits, so the thread notices `stop`.
        rx.set_read_timeout(Some(Duration::from_millis(200)))?;
        listen = Some(rx.local_addr()?);
        let sim = sim.clone();
        let c = counters.clone();
        thread::Builder::new()
            .name(format!("wire-rx-{}", spec.port))
            .spawn(move || udp_rx(rx, sim, nic, c, stop))?;
    }
    Ok(UdpWire { counters, listen })
}

fn udp_rx(sock: UdpSocket, sim: Sim, nic: NicId, c: Arc<UdpCounters>, stop: Arc<AtomicBool>) {
    // Jumbo frames up to 9.5 KB fit; a datagram is one frame without FCS.
    let mut buf = vec![0u8; 16 * 1024];
    while !stop.load(Ordering::Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                debug!("wire rx {n} bytes from {from}");
                c.received.fetch_add(1, Ordering::Relaxed);
                sim.inject(nic, &buf[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                warn!("wire rx: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Attaches the simulator's own peer to `nic`: a generator sending `pps` frames per second of
/// `size` bytes to `dst_mac`, and a checker of what the port transmits.
pub fn attach_peer(
    sim: &Sim,
    nic: NicId,
    dst_mac: [u8; 6],
    pps: u64,
    size: usize,
) -> (Arc<PeerCounters>, Arc<PeerCounters>) {
    let src = LineRateSource::new(dst_mac)
        .with_frame_size(size)
        .with_rate_pps(pps);
    let sent = src.counters();
    let sink = CheckingSink::new();
    let received = sink.counters();
    sim.attach_source(nic, Box::new(src));
    sim.attach_sink(nic, Box::new(sink));
    (sent, received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_syntax() {
        assert_eq!(
            parse_wire("1=udp:127.0.0.1:9000,listen=9001"),
            Ok(WireSpec {
                port: 1,
                dest: "127.0.0.1:9000".parse().unwrap(),
                listen: Some(9001),
            })
        );
        assert_eq!(parse_wire("0=udp:127.0.0.1:9000").unwrap().listen, None);
        assert!(parse_wire("0=tcp:127.0.0.1:9000").is_err());
        assert!(parse_wire("0=udp:127.0.0.1").is_err());
        assert!(parse_wire("0=udp:127.0.0.1:9000,bogus=1").is_err());
        assert!(parse_wire("x=udp:127.0.0.1:9000").is_err());
    }

    #[test]
    fn mac_syntax() {
        assert_eq!(
            parse_mac("1=02:aa:bb:cc:dd:0E"),
            Ok((1, [2, 0xAA, 0xBB, 0xCC, 0xDD, 0x0E]))
        );
        assert!(parse_mac("1=02:aa:bb:cc:dd").is_err());
        assert!(parse_mac("1=02:aa:bb:cc:dd:ee:ff").is_err());
        assert!(parse_mac("02:aa:bb:cc:dd:ee").is_err());
    }
}
