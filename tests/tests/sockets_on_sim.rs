//! The host kernel's own TCP/IP stack against `ixgbe-echo`'s server on a simulated 82599, in
//! one process and without QEMU: the server (smoltcp over `ixgbe_core::smoltcp_phy`, the real
//! driver on `SimPlatform`) on one port whose wire is a UDP socket on 127.0.0.1, and at the
//! wire's far end `sock_peer`, the host peer of the QEMU case `echo-sockets`: a TAP device in a
//! private network namespace bridged to the wire, and ordinary sockets there (ping, UDP echo,
//! 10 MB of TCP echoed byte-exact).
//!
//! Needs root (the namespace and the TAP device), so it is ignored by default:
//! `sudo cargo test -p tests --test sockets_on_sim -- --ignored --nocapture`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ixgbe_core::smoltcp_phy::SmoltcpDevice;
use ixgbe_core::{Config, Mempool, Started, DEFAULT_BUF_SIZE};
use ixgbe_tools::echo::Server;
use platform_mock::{NicConfig, Sim, TrafficSink};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};
use tests::on_sim::{assert_clean, start};

const BYTES: u64 = 10_000_000;

/// What the port transmits: one datagram each to the peer (never blocks: the model is locked).
struct UdpSink {
    sock: UdpSocket,
    dest: SocketAddrV4,
}

impl TrafficSink for UdpSink {
    fn receive(&mut self, _now: Duration, frame: &[u8]) {
        // A full socket buffer loses the frame, as a congested cable would; TCP resends.
        let _ = self.sock.send_to(frame, self.dest);
    }
}

/// Reads "<peer-port> <sim-port>" from the file `sock_peer` writes (renamed into place).
fn ports(path: &std::path::Path) -> (u16, u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().unwrap());
            return (it.next().unwrap(), it.next().unwrap());
        }
        assert!(Instant::now() < deadline, "sock_peer wrote no ports file");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
#[ignore = "needs root: sock_peer makes a network namespace and a TAP device"]
fn the_kernels_sockets_echo_through_a_simulated_port() {
    let dir = std::env::temp_dir().join(format!("sockets_on_sim.{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ports_file = dir.join("ports");
    let mut peer = Command::new(env!("CARGO_BIN_EXE_sock_peer"))
        .arg("--ports-file")
        .arg(&ports_file)
        .args(["--bytes", &BYTES.to_string(), "--timeout", "60"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sock_peer");
    let out = peer.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            all.push(line);
        }
        all
    });
    let (peer_port, sim_port) = ports(&ports_file);

    let sim = Sim::new();
    let nic = sim.add_nic(NicConfig {
        mac: [0x02, 0, 0, 0, 0, 0x01],
        ..NicConfig::default()
    });
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    tx.set_nonblocking(true).unwrap();
    sim.attach_sink(
        nic,
        Box::new(UdpSink {
            sock: tx,
            dest: SocketAddrV4::new([127, 0, 0, 1].into(), peer_port),
        }),
    );
    let rx = UdpSocket::bind(("127.0.0.1", sim_port)).unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let injector = {
        let (sim, stop) = (sim.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 16 * 1024];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = rx.recv(&mut buf) {
                    sim.inject(nic, &buf[..n]);
                }
            }
        })
    };

    let platform = sim.platform(nic);
    let pools = [Mempool::new(&platform, 2048, DEFAULT_BUF_SIZE).unwrap()];
    let Started { device, rx, tx } = start(&platform, &Config::default(), &pools);
    let mut phy: SmoltcpDevice<'_, _> = SmoltcpDevice::new(
        rx.into_iter().next().unwrap(),
        tx.into_iter().next().unwrap(),
        &pools[0],
    );
    let vnow = || smoltcp::time::Instant::from_micros(sim.now().as_micros() as i64);
    let mut server = Server::new(
        &mut phy,
        device.mac(),
        Ipv4Cidr::new(Ipv4Address::new(10, 0, 0, 2), 24),
        7,
        vnow(),
    );
    // Virtual time follows wall time (the peer's kernel keeps wall-clock timers), in steps of
    // at most 1 ms.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut last = Instant::now();
    let mut peer_status = None;
    while Instant::now() < deadline {
        server.poll(vnow(), &mut phy);
        phy.flush();
        let now = Instant::now();
        sim.advance((now - last).clamp(Duration::from_micros(1), Duration::from_millis(1)));
        last = now;
        if let Some(status) = peer.try_wait().unwrap() {
            peer_status = Some(status);
            break;
        }
    }
    let peer_status = match peer_status {
        Some(s) => s,
        None => {
            let _ = peer.kill();
            let _ = peer.wait();
            panic!("sock_peer did not finish within 90 s");
        }
    };
    // The peer's last frames (its ACK of our FIN) may still be on the way in.
    let settle = Instant::now() + Duration::from_millis(100);
    while Instant::now() < settle {
        server.poll(vnow(), &mut phy);
        phy.flush();
        sim.advance(Duration::from_micros(100));
    }
    stop.store(true, Ordering::Relaxed);
    injector.join().unwrap();
    let lines = lines.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    assert!(peer_status.success(), "sock_peer failed: {peer_status}");
    for check in ["netns-private", "echo-ping", "echo-udp", "echo-tcp"] {
        let pass = format!("PEER: PASS {check} ");
        assert!(
            lines.iter().any(|l| l.starts_with(&pass)),
            "no '{pass}' line"
        );
    }
    let t = server.totals();
    assert_eq!(
        (t.tcp_connections, t.tcp_closed, t.tcp_bytes),
        (1, 1, BYTES)
    );
    assert_eq!(t.udp_datagrams, 16);
    assert_eq!(t.udp_dropped, 0);
    drop(phy);
    drop(device);
    assert_eq!(
        pools[0].free_count(),
        pools[0].capacity(),
        "a buffer leaked"
    );
    assert_clean(&sim);
}
