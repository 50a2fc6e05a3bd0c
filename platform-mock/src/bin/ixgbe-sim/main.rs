//! `ixgbe-sim`: serves simulated 82599 functions to QEMU guests over vfio-user.
//!
//! One function per `--socket` (two sockets: the two ports of a dual-port X520), each served by
//! its own thread running the `vfio_user` crate's server loop; the model (`platform_mock::Sim`)
//! is shared. See `--help` for the wire options.
//!
//! Output: readiness lines on stdout (`port N: wire listening on ADDR`, `port N: serving PATH`,
//! then `ready`), protocol violations on stderr as they appear, a summary on stdout at exit.
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod clock;
mod irq;
mod memory;
mod server;
mod wire;

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use log::{error, info, warn};
use platform_mock::traffic::PeerCounters;
use platform_mock::{Board, NicConfig, NicId, Sim};
use vfio_user::Server;

use crate::clock::Clock;
use crate::irq::{IrqCounters, Irqs};
use crate::memory::Registry;
use crate::server::{Port, PortCounters};
use crate::wire::{UdpCounters, WireSpec};

/// Serve simulated Intel 82599 (X520) functions to QEMU over vfio-user.
///
/// QEMU side (guest RAM must be shareable):
///   -object memory-backend-memfd,id=mem,size=512M,share=on -machine q35,memory-backend=mem
///   -device '{"driver":"vfio-user-pci","socket":{"path":"PATH","type":"unix"}}'
///
/// Each port's cable goes to at most one of: the other port (--cable), a UDP wire (--wire),
/// the built-in traffic peer (--peer); otherwise transmitted frames are dropped.
///
/// One process serves one guest (the model has a single bus address space): to connect two
/// VMs, run one ixgbe-sim per VM and join them with --wire.
#[derive(Parser, Debug)]
#[command(name = "ixgbe-sim", version, verbatim_doc_comment)]
struct Args {
    /// vfio-user socket of port N (the N-th --socket); a stale socket file is replaced.
    #[arg(long = "socket", value_name = "PATH", required = true)]
    sockets: Vec<PathBuf>,

    /// MAC address of port N (default 02:00:00:00:00:0M with M = N + 1).
    #[arg(long = "mac", value_name = "N=aa:bb:cc:dd:ee:ff", value_parser = wire::parse_mac)]
    macs: Vec<(usize, [u8; 6])>,

    /// The board every port sits on: x520-da (X520-DA2 with a direct-attach cable), x520-sr
    /// (10GBASE-SR optics), x520-empty (no module: no link), backplane (KX4/KR, 8086:10F8).
    #[arg(long, value_name = "NAME", default_value = "x520-da", value_parser = parse_board)]
    board: Board,

    /// Cable port 0 to port 1 (needs two sockets).
    #[arg(long)]
    cable: bool,

    /// UDP wire of port N: every frame port N transmits is sent as one datagram (the frame
    /// without FCS) to HOST:PORT; with listen=PORT2, every datagram received on 127.0.0.1:PORT2
    /// arrives on port N's wire as a frame (listen=0 picks a free port; the bound address is
    /// printed as "port N: wire listening on ADDR").
    #[arg(long = "wire", value_name = "N=udp:HOST:PORT[,listen=PORT2]", value_parser = wire::parse_wire)]
    wires: Vec<WireSpec>,

    /// Attach the built-in peer to port N: a generator of checked UDP test frames addressed to
    /// the port's MAC, and a checker of every frame the port transmits.
    #[arg(long = "peer", value_name = "N")]
    peers: Vec<usize>,

    /// Frames per second (virtual time) of the built-in peer's generator.
    #[arg(long, value_name = "PPS", default_value_t = 1000)]
    peer_pps: u64,

    /// Frame size (bytes without FCS, 60..=1514) of the built-in peer's generator.
    #[arg(long, value_name = "BYTES", default_value_t = 60)]
    peer_size: usize,

    /// Keep serving after the clients disconnect (wait for reconnections). By default the
    /// process exits when every connected client is gone.
    #[arg(long)]
    persist: bool,
}

/// What the worker threads tell the main thread.
enum Event {
    Signal(i32),
    Connected(usize),
    Ended(usize, Option<String>),
}

/// Per-port things the summary reports.
struct PortReport {
    mac: [u8; 6],
    counters: Arc<PortCounters>,
    irqs: Arc<IrqCounters>,
    udp: Option<Arc<UdpCounters>>,
    peer: Option<(Arc<PeerCounters>, Arc<PeerCounters>)>,
}

fn parse_board(name: &str) -> Result<Board, String> {
    Board::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Board::ALL.iter().map(|b| b.name()).collect();
        format!("unknown board {name:?} (one of: {})", names.join(", "))
    })
}

fn fmt_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn validate(a: &Args) -> Result<(), String> {
    let n = a.sockets.len();
    if n > 2 {
        warn!("{n} functions: an 82599 has two; serving them anyway");
    }
    let mut used = BTreeSet::new();
    if a.cable {
        if n < 2 {
            return Err("--cable needs two --socket".into());
        }
        used.extend([0, 1]);
    }
    let check = |p: usize, what: &str, used: &mut BTreeSet<usize>| {
        if p >= n {
            return Err(format!("{what} {p}: no such port ({n} sockets)"));
        }
        if !used.insert(p) {
            return Err(format!(
                "{what} {p}: port {p} already has a cable/wire/peer"
            ));
        }
        Ok(())
    };
    for w in &a.wires {
        check(w.port, "--wire", &mut used)?;
    }
    for &p in &a.peers {
        check(p, "--peer", &mut used)?;
    }
    for (p, _) in &a.macs {
        if *p >= n {
            return Err(format!("--mac {p}: no such port ({n} sockets)"));
        }
    }
    Ok(())
}

/// Removes a socket file no server listens on any more (left by a killed ixgbe-sim).
fn clear_stale_socket(path: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        return Err(format!("{}: exists and is not a socket", path.display()));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(format!("{}: another server is listening", path.display())),
        Err(_) => {
            info!("{}: removing stale socket", path.display());
            std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))
        }
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    validate(&args)?;
    let started = Instant::now();
    let sim = Sim::new();
    let stop = Arc::new(AtomicBool::new(false));
    let n = args.sockets.len();
    let mut nics = Vec::new();
    let mut reports = Vec::new();
    for i in 0..n {
        let mac = args
            .macs
            .iter()
            .rev()
            .find(|(p, _)| *p == i)
            .map(|(_, m)| *m)
            .unwrap_or([0x02, 0, 0, 0, 0, (i + 1) as u8]);
        nics.push(sim.add_nic(NicConfig {
            mac,
            lan_id: (i & 1) as u8,
            ..NicConfig::for_board(args.board)
        }));
        reports.push(PortReport {
            mac,
            counters: Arc::default(),
            irqs: Arc::default(),
            udp: None,
            peer: None,
        });
    }
    if args.cable {
        sim.cable(nics[0], nics[1]);
    }
    let mut out = io::stdout().lock();
    for w in &args.wires {
        let udp = wire::attach_udp(&sim, nics[w.port], w, stop.clone())
            .map_err(|e| format!("--wire {}: {e}", w.port))?;
        if let Some(addr) = udp.listen {
            let _ = writeln!(out, "port {}: wire listening on {addr}", w.port);
        }
        reports[w.port].udp = Some(udp.counters);
    }
    for &p in &args.peers {
        reports[p].peer = Some(wire::attach_peer(
            &sim,
            nics[p],
            reports[p].mac,
            args.peer_pps,
            args.peer_size,
        ));
    }

    let clock = Clock::new(sim.clone());
    let dma = Arc::new(Registry::new(sim.clone()));
    let (tx, rx) = mpsc::channel::<Event>();

    // Bind every socket first, so a failure leaves nothing behind.
    let mut servers = Vec::new();
    for path in &args.sockets {
        clear_stale_socket(path)?;
        let s = Server::new(path, true, server::irq_infos(), server::regions())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        servers.push(s);
    }
    for (i, server) in servers.into_iter().enumerate() {
        let irqs = Irqs::default();
        reports[i].irqs = irqs.lock().counters();
        let mut port = Port::new(
            i,
            sim.clone(),
            nics[i],
            clock.clone(),
            irqs,
            dma.clone(),
            reports[i].counters.clone(),
        );
        let tx = tx.clone();
        thread::Builder::new()
            .name(format!("port-{i}"))
            .spawn(move || serve(&server, &mut port, &tx))
            .map_err(|e| format!("spawn: {e}"))?;
        let _ = writeln!(out, "port {i}: serving {}", args.sockets[i].display());
    }
    let _clock_thread = clock.spawn(Duration::from_micros(200), stop.clone());
    spawn_signals(tx.clone())?;
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    drop(out);

    let mut active = BTreeSet::new();
    let mut seen_violations = 0;
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(Event::Signal(s)) => {
                info!("signal {s}: shutting down");
                break;
            }
            Ok(Event::Connected(p)) => {
                info!("port {p}: client connected");
                active.insert(p);
            }
            Ok(Event::Ended(p, err)) => {
                match err {
                    Some(e) => warn!("port {p}: session ended: {e}"),
                    None => info!("port {p}: client disconnected"),
                }
                active.remove(&p);
                if active.is_empty() && !args.persist {
                    info!("every client is gone: exiting (--persist keeps serving)");
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        seen_violations = print_violations(&sim, seen_violations);
    }
    stop.store(true, Ordering::Relaxed);
    print_violations(&sim, seen_violations);
    for path in &args.sockets {
        let _ = std::fs::remove_file(path);
    }
    print_summary(&sim, &nics, &reports, &clock, started);
    // The server threads are blocked in accept/recv: leave without joining them.
    std::process::exit(0);
}

/// Serves one port: one client session after another.
fn serve(server: &Server, port: &mut Port, tx: &mpsc::Sender<Event>) {
    loop {
        let mut session = server::Session::new(port, |p| {
            let _ = tx.send(Event::Connected(p));
        });
        let r = server.run(&mut session);
        let connected = session.connected();
        port.disconnected();
        let err = r.err().map(|e| e.to_string());
        if !connected {
            // A probe (another ixgbe-sim checking for a live socket) or a client that never got
            // past the handshake: not a session. Back off so a failing accept cannot spin.
            if let Some(e) = err {
                warn!("port {}: connection without a session: {e}", port.index);
                thread::sleep(Duration::from_millis(100));
            }
            continue;
        }
        if tx.send(Event::Ended(port.index, err)).is_err() {
            return;
        }
    }
}

fn spawn_signals(tx: mpsc::Sender<Event>) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("signals: {e}"))?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(s) = signals.forever().next() {
                let _ = tx.send(Event::Signal(s));
            }
        })
        .map_err(|e| format!("spawn: {e}"))?;
    Ok(())
}

fn print_violations(sim: &Sim, seen: usize) -> usize {
    let v = sim.violations();
    for x in v.iter().skip(seen) {
        eprintln!("ixgbe-sim: port {}: violation: {x}", x.nic.0);
    }
    v.len().max(seen)
}

fn print_summary(
    sim: &Sim,
    nics: &[NicId],
    reports: &[PortReport],
    clock: &Clock,
    started: Instant,
) {
    let v = sim.violations();
    let mut out = io::stdout().lock();
    let _ = writeln!(
        out,
        "ixgbe-sim summary: wall {:.3} s, virtual {:.3} s (lag {} ms), {} violation(s) logged, {} suppressed",
        started.elapsed().as_secs_f64(),
        sim.now().as_secs_f64(),
        clock.lag().as_millis(),
        v.len(),
        sim.suppressed_violations(),
    );
    for (i, (nic, r)) in nics.iter().zip(reports).enumerate() {
        let w = sim.wire_counters(*nic);
        let c = &r.counters;
        let ld = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "  port {i} ({}): wire rx {} frames ({} delivered, {} dropped, {} missed, {} filtered, \
             {} rx-disabled, {} link-down, {} bad), tx {} frames ({} bad); violations {}",
            fmt_mac(&r.mac),
            w.rx_frames,
            w.rx_delivered,
            w.rx_dropped,
            w.rx_missed,
            w.rx_filtered,
            w.rx_disabled,
            w.rx_link_down,
            w.rx_errors,
            w.tx_frames,
            w.tx_bad,
            v.iter().filter(|x| x.nic == *nic).count(),
        );
        let _ = writeln!(
            out,
            "    sessions {}, BAR0 reads {} writes {} (served in {:.1} µs on average), rejected \
             accesses {}; irqs: intx {} msi {} msix {} undelivered {}",
            ld(&c.sessions),
            ld(&c.bar0_reads),
            ld(&c.bar0_writes),
            ld(&c.bar0_ns) as f64 / 1000.0 / (ld(&c.bar0_reads) + ld(&c.bar0_writes)).max(1) as f64,
            ld(&c.rejected),
            ld(&r.irqs.intx),
            ld(&r.irqs.msi),
            ld(&r.irqs.msix),
            ld(&r.irqs.undelivered),
        );
        if let Some(u) = &r.udp {
            let _ = writeln!(
                out,
                "    udp wire: {} datagrams sent ({} send errors), {} received",
                ld(&u.sent),
                ld(&u.send_errors),
                ld(&u.received)
            );
        }
        if let Some((gen, chk)) = &r.peer {
            let (_, received, corrupted, lost, reordered) = chk.snapshot();
            let _ = writeln!(
                out,
                "    peer: {} frames sent to the port; checker saw {} from it ({} corrupted, \
                 {} lost, {} reordered)",
                ld(&gen.sent),
                received,
                corrupted,
                lost,
                reordered
            );
        }
    }
    let _ = out.flush();
}
