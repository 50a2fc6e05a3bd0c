//! `ixgbe-echo <DEV>`: a TCP/IP host on one 82599 port, through smoltcp: answers ARP and ping,
//! echoes TCP and UDP on one port.
//!
//! `ixgbe-echo sim` runs the server on a simulated port cabled to a second simulated port, where
//! a smoltcp client pings it, sends UDP datagrams and streams `--bytes` of TCP through it,
//! checks that everything came back byte-exact, and prints the echo rate.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Instant as WallInstant;

use clap::Parser;
use ixgbe_core::smoltcp_phy::SmoltcpDevice;
use ixgbe_core::{Mempool, Platform, Started};
use ixgbe_tools::echo::{Client, ClientReport, Plan, Server};
use ixgbe_tools::sim::wire_time_ps;
use ixgbe_tools::{
    make_pools, open_devices, request_stop, run_main, start_devices, stop_requested, AppError,
    DevSpec, Opened, SimEnv,
};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{Ipv4Address, Ipv4Cidr};

/// A TCP/UDP echo server (and ping/ARP responder) over smoltcp on an 82599 port (or `sim`).
#[derive(Debug, Parser)]
#[command(name = "ixgbe-echo", version)]
struct Args {
    /// The device: a PCI address (0000:03:00.0) or `sim`.
    dev: DevSpec,
    /// The server's IPv4 address and prefix length.
    #[arg(long, default_value = "10.0.0.1/24", value_parser = parse_cidr)]
    ip: Ipv4Cidr,
    /// TCP and UDP port to echo on.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..))]
    port: u16,
    /// Stop after this many seconds (sim: virtual seconds; the client gives up then).
    #[arg(long)]
    seconds: Option<f64>,
    /// Stop once this many TCP connections have ended.
    #[arg(long)]
    connections: Option<u64>,
    /// Sim only: the client's IPv4 address (default: the server's plus one).
    #[arg(long, value_parser = parse_cidr)]
    client_ip: Option<Ipv4Cidr>,
    /// Sim only: TCP payload bytes the client streams through the echo.
    #[arg(long, default_value_t = 10_000_000)]
    bytes: u64,
    /// Sim only: pings the client sends.
    #[arg(long, default_value_t = 4)]
    pings: u16,
    /// Sim only: UDP datagrams the client sends.
    #[arg(long, default_value_t = 16)]
    udp: u16,
}

fn parse_cidr(s: &str) -> Result<Ipv4Cidr, String> {
    let (addr, len) = s.split_once('/').unwrap_or((s, "24"));
    let addr: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IPv4 address"))?;
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| (1..=30).contains(l))
        .ok_or_else(|| format!("{len:?} is not a prefix length from 1 to 30"))?;
    Ok(Ipv4Cidr::new(addr, len))
}

fn main() -> ExitCode {
    let args = Args::parse();
    run_main(|| run(&args))
}

fn run(args: &Args) -> Result<(), AppError> {
    if args.dev == DevSpec::Sim {
        let Opened::Sim {
            env,
            platforms,
            names,
        } = open_devices(&[DevSpec::Sim, DevSpec::Sim])?
        else {
            unreachable!("two `sim` devices open as a simulated world");
        };
        env.sim.cable(env.nics[0], env.nics[1]);
        return run_sim(args, &env, &platforms, &names);
    }
    match open_devices(&[args.dev])? {
        Opened::Linux { platforms, names } => serve(args, &platforms, &names),
        Opened::Sim { .. } => unreachable!("a PCI address opens a real device"),
    }
}

/// Splits a started device into its control side and a smoltcp device over queue pair 0.
fn smoltcp_device<'a, P: Platform>(
    started: Started<'a, P>,
    pool: &'a Mempool<P>,
) -> (ixgbe_core::Device<P>, SmoltcpDevice<'a, P>) {
    let Started { device, rx, tx } = started;
    let (Some(rx), Some(tx)) = (rx.into_iter().next(), tx.into_iter().next()) else {
        unreachable!("start_devices starts one queue pair");
    };
    (device, SmoltcpDevice::new(rx, tx, pool))
}

/// Real device: serve until Ctrl-C or `--seconds`.
fn serve<P: Platform>(args: &Args, platforms: &[P], names: &[String]) -> Result<(), AppError> {
    let pools = make_pools(platforms, names, 1)?;
    let started = start_devices(platforms, names, &pools, 1)?;
    let started = started.into_iter().next().expect("one device");
    let (device, mut phy) = smoltcp_device(started, &pools[0][0]);
    let start = WallInstant::now();
    let now = || Instant::from_micros(start.elapsed().as_micros() as i64);
    let mut server = Server::new(&mut phy, device.mac(), args.ip, args.port, now());
    println!(
        "{}: {} echoing TCP and UDP on port {}, answering ping and ARP",
        names[0], args.ip, args.port
    );
    loop {
        server.poll(now(), &mut phy);
        phy.flush();
        for line in server.take_log() {
            println!("{line}");
        }
        let served = args
            .connections
            .is_some_and(|n| server.totals().tcp_closed >= n);
        let time_up = args
            .seconds
            .is_some_and(|s| start.elapsed().as_secs_f64() >= s);
        if served || time_up || stop_requested() {
            break;
        }
    }
    let t = server.totals();
    let c = phy.counters();
    let rx = phy.rx_queue().counters();
    println!(
        "adapter: {} Tx frames dropped (no buffer {}, ring full {}, too long {}); Rx: {} frames, {} dropped as bad",
        c.tx_no_buffer + c.tx_ring_full + c.tx_too_long,
        c.tx_no_buffer,
        c.tx_ring_full,
        c.tx_too_long,
        rx.packets,
        rx.no_eop + rx.errors + rx.bad_length
    );
    println!(
        "echoed: {} TCP connections, {} TCP bytes, {} UDP datagrams ({} bytes, {} dropped)",
        t.tcp_connections, t.tcp_bytes, t.udp_datagrams, t.udp_bytes, t.udp_dropped
    );
    drop(phy);
    drop(device);
    Ok(())
}

/// Bytes and frames a smoltcp device has handed to its Tx ring so far.
fn tx_totals<P: Platform>(phy: &SmoltcpDevice<'_, P>) -> (u64, u64) {
    let c = phy.tx_queue().counters();
    (c.bytes, c.packets)
}

/// Sim: the server on sim0, the client on sim1, one thread. Virtual time advances by the wire
/// time (10 Gb/s) of what the busier port sent in an iteration, or to smoltcp's next timer when
/// nothing moved, so the virtual rate is what the stack would reach if only the wire limited it.
fn run_sim(
    args: &Args,
    env: &SimEnv,
    platforms: &[platform_mock::SimPlatform],
    names: &[String],
) -> Result<(), AppError> {
    let sim = &env.sim;
    let client_ip = args.client_ip.unwrap_or_else(|| {
        let a = u32::from(args.ip.address()).wrapping_add(1);
        Ipv4Cidr::new(Ipv4Address::from(a), args.ip.prefix_len())
    });
    let pools = make_pools(platforms, names, 1)?;
    let mut started = start_devices(platforms, names, &pools, 1)?.into_iter();
    let (server_dev, mut server_phy) = smoltcp_device(started.next().unwrap(), &pools[0][0]);
    let (client_dev, mut client_phy) = smoltcp_device(started.next().unwrap(), &pools[1][0]);
    let vnow = || Instant::from_micros(sim.now().as_micros() as i64);
    let plan = Plan {
        pings: args.pings,
        ping_tries: 10,
        udp_datagrams: args.udp,
        udp_len: 1000,
        tcp_bytes: args.bytes,
    };
    let mut server = Server::new(
        &mut server_phy,
        server_dev.mac(),
        args.ip,
        args.port,
        vnow(),
    );
    let mut client = Client::new(
        &mut client_phy,
        client_dev.mac(),
        client_ip,
        (args.ip.address(), args.port),
        plan,
        vnow(),
    );
    println!(
        "{}: {} echoing TCP and UDP on port {}; client {} on {}",
        names[0], args.ip, args.port, client_ip, names[1]
    );
    let limit = args
        .seconds
        .map(|s| Duration::from_micros((s * 1e6) as u64));
    let start = vnow();
    // Wall time of the TCP stream alone: from the connect to the last byte back.
    let (mut wall_start, mut wall_end) = (None, None);
    loop {
        let now = vnow();
        let r = client.report();
        if r.tcp_started.is_some() && wall_start.is_none() {
            wall_start = Some(WallInstant::now());
        }
        if r.tcp_finished.is_some() && wall_end.is_none() {
            wall_end = Some(WallInstant::now());
        }
        let before = (tx_totals(&server_phy), tx_totals(&client_phy));
        let busy = server.poll(now, &mut server_phy) | client.poll(now, &mut client_phy);
        server_phy.flush();
        client_phy.flush();
        for line in server.take_log() {
            println!("{line}");
        }
        if client.done() {
            break;
        }
        if stop_requested() || limit.is_some_and(|l| now - start >= l) {
            request_stop();
            break;
        }
        let after = (tx_totals(&server_phy), tx_totals(&client_phy));
        // 10 Gb/s: 800 ps per byte, plus each frame's FCS, preamble and gap.
        let wire = |(b0, p0): (u64, u64), (b1, p1): (u64, u64)| {
            (b1 - b0) * 800 + (p1 - p0) * wire_time_ps(0)
        };
        let ps = wire(before.0, after.0).max(wire(before.1, after.1));
        let step = if ps > 0 || busy {
            std::time::Duration::from_nanos((ps / 1000).max(1))
        } else {
            let next = [server.poll_delay(now), Some(Duration::from_millis(1))]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(Duration::from_millis(1));
            std::time::Duration::from_micros(next.total_micros().clamp(1, 1000))
        };
        sim.advance(step);
    }
    let wall = match (wall_start, wall_end) {
        (Some(s), Some(e)) => (e - s).as_secs_f64(),
        _ => 0.0,
    };
    // Let the last frames (the FIN exchange) go out before tearing down.
    for _ in 0..100 {
        let now = vnow();
        server.poll(now, &mut server_phy);
        client.poll(now, &mut client_phy);
        server_phy.flush();
        client_phy.flush();
        sim.advance(std::time::Duration::from_micros(10));
    }
    for line in server.take_log() {
        println!("{line}");
    }
    let report = client.report();
    print_report(&report, &plan, wall);
    let t = server.totals();
    println!(
        "server echoed: {} TCP connections, {} TCP bytes, {} UDP datagrams ({} bytes, {} dropped)",
        t.tcp_connections, t.tcp_bytes, t.udp_datagrams, t.udp_bytes, t.udp_dropped
    );
    drop((server_phy, client_phy, server_dev, client_dev));
    let whole = pools
        .iter()
        .flatten()
        .all(|p| p.free_count() == p.capacity());
    let violations = sim.violations();
    println!(
        "pools whole: {}; simulator violations: {}",
        if whole { "yes" } else { "no" },
        violations.len()
    );
    env.log_diagnostics(names);
    if !report.all_good(&plan) || !whole || !violations.is_empty() {
        return Err(AppError::new("the echo check failed (see above)"));
    }
    Ok(())
}

fn print_report(r: &ClientReport, plan: &Plan, wall: f64) {
    println!("ping: {}/{} answered", r.ping_replies, plan.pings);
    println!(
        "udp: {}/{} datagrams echoed intact ({} bad or lost)",
        r.udp_echoed, plan.udp_datagrams, r.udp_bad
    );
    let exact = r.tcp_received == plan.tcp_bytes && r.tcp_first_mismatch.is_none();
    match (r.tcp_started, r.tcp_finished) {
        (Some(s), Some(f)) if exact => {
            let virt = (f - s).total_micros() as f64 / 1e6;
            let mb = plan.tcp_bytes as f64 / 1e6;
            println!(
                "tcp: {} bytes echoed byte-exact: {:.3} s wall ({:.1} MB/s), {:.3} ms virtual ({:.0} MB/s)",
                plan.tcp_bytes,
                wall,
                mb / wall,
                virt * 1e3,
                mb / virt
            );
        }
        _ => println!(
            "tcp: sent {}, got back {} of {} bytes{}{}",
            r.tcp_sent,
            r.tcp_received,
            plan.tcp_bytes,
            r.tcp_first_mismatch.map_or(String::new(), |at| format!(
                ", first difference at byte {at}"
            )),
            if r.tcp_failed {
                ", connection failed"
            } else {
                ""
            }
        ),
    }
}
