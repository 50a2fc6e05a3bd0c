//! `ixgbe-pktgen <DEV>`: sends UDP/IPv4 frames (valid IPv4 and UDP checksums, a 64-bit sequence
//! number per flow in the payload) as fast as the device takes them or at a given rate, in one
//! or many flows and sizes; or replays a pcap file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use ixgbe_core::heapless;
use ixgbe_core::{
    Device, Mempool, Packet, Platform, RxQueue, TxOffload, TxQueue, DEFAULT_BUF_SIZE,
};
use ixgbe_tools::forward::forward_batch;
use ixgbe_tools::frame::{build_udp_frame, set_seq, Flow, MAX_FRAME};
use ixgbe_tools::gen::{
    parse_ip_range, parse_port_range, parse_rate, parse_sizes, Flows, Pacing, Range, Rate, Sizes,
    IMIX,
};
use ixgbe_tools::latency::{parse_delay, DelayLine, Prober};
use ixgbe_tools::sim::wire_time_ps;
use ixgbe_tools::{
    make_pacer, make_pools, open_devices, report, run_main, start_devices, supervise,
    time_up_after_printing, AppError, CommonArgs, DevSpec, Limits, Opened, Pacer, RatePrinter,
    SimEnv, CLOCK_CHECK_INTERVAL, MAX_BATCH, POOL_ENTRIES,
};
use platform_mock::{NicConfig, SimPlatform};

/// Generate UDP/IPv4 traffic on an 82599 port (or a simulated one: `sim`).
///
/// Flow k of --flows N takes the k-th value of each of --src-ip, --dst-ip, --src-port and
/// --dst-port (a range repeats when shorter than N); each flow numbers its frames 0, 1, 2...
/// With several --queues, queue q sends flows q, q+Q, ... from its own thread.
/// On `sim` nothing goes faster than 10 GbE line rate (14.88 Mpps of 64-byte frames).
#[derive(Debug, Parser)]
#[command(name = "ixgbe-pktgen", version)]
struct Args {
    /// The device: a PCI address (0000:03:00.0) or `sim`.
    dev: DevSpec,
    /// Frame size in bytes without FCS (60..=1514), or a sweep `FIRST-LAST:STEP` (frames cycle
    /// through the sizes), or `imix` (7:4:1 of 60, 590 and 1514 bytes).
    #[arg(long, default_value = "60", value_parser = parse_sizes)]
    size: Sizes,
    /// Same as --size imix.
    #[arg(long, conflicts_with = "size")]
    imix: bool,
    /// Send rate: packets/s (`1000`, `500kpps`, `1.5Mpps`) or bit/s on the wire counting FCS,
    /// preamble and gap (`100Mbit`, `5Gbit`). Paced in software (against virtual time with
    /// --sim-clock virtual).
    #[arg(long, value_parser = parse_rate)]
    rate: Option<Rate>,
    /// How --rate is kept: `sw` paces in software; `hw` programs each queue's share into the
    /// 82599's per-queue transmit rate limiter (RTTBCNRC, datasheet §7.7.2.2; a packet rate
    /// becomes bit/s at the mean frame size) and fills the ring as fast as it takes frames.
    #[arg(long, value_enum, default_value = "sw", requires = "rate")]
    rate_limiter: Limiter,
    /// Measure round-trip latency: one time-stamped probe at a time (a PTP Sync message over
    /// UDP to port 319) goes out among the load to a device under test that sends everything
    /// back to this port; prints p50/p99/p99.9/p99.99/max and a histogram. One queue only.
    #[arg(long, conflicts_with = "pcap")]
    latency: bool,
    /// With --latency: `hw` measures with the 82599's IEEE 1588 time stamps (TXSTMP, RXSTMP,
    /// §7.9), `sw` with the program's clock when it sends and receives a probe.
    #[arg(long, value_enum, default_value = "hw", requires = "latency")]
    timestamps: Stamps,
    /// With --latency: probes per second (at most one in flight; one not back in 10 ms is lost).
    #[arg(long, default_value_t = 1000, requires = "latency", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    probe_rate: u32,
    /// Sim only, with --latency: the device under test. `wire`: a looped-back cable that
    /// returns each frame after --sim-dut-delay; `fwd`: ixgbe-fwd's forwarding loop on two more
    /// simulated ports in this process (the first cabled to `sim`, the second looped back), so
    /// a probe crosses the forwarder twice.
    #[arg(long, value_enum, default_value = "wire", requires = "latency")]
    sim_dut: Dut,
    /// Sim only: the delay of --sim-dut wire (`10us`, `1.5ms`, `800ns`).
    #[arg(long, default_value = "10us", value_parser = parse_delay, requires = "latency")]
    sim_dut_delay: Duration,
    /// Number of flows (at least the number of queues).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    flows: u64,
    /// Source IPv4 address or range A-B.
    #[arg(long, default_value = "10.0.0.1", value_parser = parse_ip_range)]
    src_ip: Range<u32>,
    /// Destination IPv4 address or range A-B.
    #[arg(long, default_value = "10.0.1.1", value_parser = parse_ip_range)]
    dst_ip: Range<u32>,
    /// UDP source port or range A-B (default: 1000 + flow).
    #[arg(long, value_parser = parse_port_range)]
    src_port: Option<Range<u16>>,
    /// UDP destination port or range A-B.
    #[arg(long, default_value = "2000", value_parser = parse_port_range)]
    dst_port: Range<u16>,
    /// Destination MAC address of the frames.
    #[arg(long, default_value = "02:00:00:00:00:02", value_parser = parse_mac)]
    dst_mac: [u8; 6],
    /// Replay the frames of this pcap file (in order, as they are; 60..=1514 bytes each)
    /// instead of generating UDP frames.
    #[arg(long, conflicts_with_all = ["size", "imix", "flows", "src_ip", "dst_ip", "src_port", "dst_port"])]
    pcap: Option<PathBuf>,
    /// With --pcap: play the file this many times (0: until stopped).
    #[arg(long = "loop", default_value_t = 1, requires = "pcap")]
    loops: u64,
    /// Have the device fill in the IPv4 header and UDP checksums (context descriptors,
    /// datasheet §7.2.3.2.3): the driver puts 0 and the pseudo-header sum in their fields.
    #[arg(long)]
    offload_checksums: bool,
    /// Sim only: the peer writes every frame it receives to this pcap file (nanosecond
    /// timestamps of virtual time) instead of checking it.
    #[arg(long)]
    sim_peer_pcap: Option<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Limiter {
    Sw,
    Hw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Stamps {
    Hw,
    Sw,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Dut {
    Wire,
    Fwd,
}

fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = s.split(':').collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return Err("a MAC address is six hex bytes separated by ':'".into());
    }
    for (byte, part) in mac.iter_mut().zip(parts) {
        *byte = u8::from_str_radix(part, 16)
            .map_err(|_| format!("{part:?} is not a hex byte in MAC address {s:?}"))?;
    }
    Ok(mac)
}

fn main() -> ExitCode {
    let args = Args::parse();
    args.common.configure_output("ixgbe-pktgen");
    run_main(|| run(&args))
}

/// The virtual-time step with --latency on the simulator (picoseconds): the resolution of the
/// simulated device under test's timing.
const LATENCY_STEP_PS: u64 = 100_000;

/// Loop steps after the run in which --latency still receives what comes back (100 µs of
/// virtual time on the simulator).
const LATENCY_DRAIN: usize = 1000;

/// Frames of a pcap file to replay.
type Replay = Arc<Vec<Vec<u8>>>;

fn load_replay(path: &std::path::Path) -> Result<Replay, AppError> {
    let err = |e: std::io::Error| AppError::new(format!("reading {}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(err)?;
    let mut reader = ixgbe_tools::pcap::Reader::new(std::io::BufReader::new(file)).map_err(err)?;
    if reader.linktype != ixgbe_tools::pcap::LINKTYPE_ETHERNET {
        return Err(AppError::new(format!(
            "{}: link type {} is not Ethernet",
            path.display(),
            reader.linktype
        )));
    }
    let mut frames = Vec::new();
    while let Some(r) = reader.next_record().map_err(err)? {
        if r.data.len() < 14 || r.data.len() > MAX_FRAME {
            return Err(AppError::new(format!(
                "{}: frame {} has {} bytes; 14..={MAX_FRAME} can be sent",
                path.display(),
                frames.len(),
                r.data.len()
            )));
        }
        frames.push(r.data);
    }
    if frames.is_empty() {
        return Err(AppError::new(format!("{}: no frames", path.display())));
    }
    Ok(Arc::new(frames))
}

fn run(args: &Args) -> Result<(), AppError> {
    let replay = args.pcap.as_deref().map(load_replay).transpose()?;
    if replay.is_some() && args.common.queues > 1 {
        return Err(AppError::new(
            "--pcap replays on one queue: leave out --queues",
        ));
    }
    if args.flows < u64::from(args.common.queues) && args.flows > 1 {
        return Err(AppError::new("--flows must be at least --queues"));
    }
    if args.sim_peer_pcap.is_some() && args.dev != DevSpec::Sim {
        return Err(AppError::new("--sim-peer-pcap needs the `sim` device"));
    }
    if args.latency && args.common.queues > 1 {
        return Err(AppError::new(
            "--latency runs on one queue: leave out --queues",
        ));
    }
    match open_devices(&[args.dev])? {
        Opened::Sim {
            env,
            platforms,
            names,
        } if args.latency && args.sim_dut == Dut::Fwd => {
            through_forwarder(env, platforms, names, args)
        }
        Opened::Sim {
            env,
            platforms,
            names,
        } => generate(platforms, names, Some(env), replay, args, None),
        Opened::Linux { platforms, names } => generate(platforms, names, None, replay, args, None),
    }
}

/// `--sim-dut fwd`: two more simulated ports running the forwarder's loop (each frame from
/// one goes out of the other), the first cabled to the generator's port, the second looped
/// back; the loop runs once per generator loop, in this thread, so virtual time stays
/// deterministic.
fn through_forwarder(
    env: SimEnv,
    platforms: Vec<SimPlatform>,
    names: Vec<String>,
    args: &Args,
) -> Result<(), AppError> {
    let nic = |i| {
        env.sim.add_nic(NicConfig {
            mac: ixgbe_tools::sim_mac(i),
            ..NicConfig::default()
        })
    };
    let (a, b) = (nic(1), nic(2));
    env.sim.cable(env.nics[0], a);
    let loopback = DelayLine::new(Duration::ZERO);
    env.sim.attach_sink(b, loopback.sink());
    env.sim.attach_source(b, loopback.source());
    let dut_platforms = vec![env.sim.platform(a), env.sim.platform(b)];
    let dut_names = vec!["dut0".to_string(), "dut1".to_string()];
    let pools = make_pools(&dut_platforms, &dut_names, 1)?;
    let started = start_devices(&dut_platforms, &dut_names, &pools, 1)?;
    let mut dut_devices = Vec::new();
    let (mut rx, mut tx) = (Vec::new(), Vec::new());
    for s in started {
        dut_devices.push(s.device);
        rx.extend(s.rx);
        tx.extend(s.tx);
    }
    let mut batch = Batch::new();
    let mut step = || {
        for (r, t) in [(0, 1), (1, 0)] {
            forward_batch(&mut rx[r], &mut tx[t], &mut batch, MAX_BATCH);
        }
    };
    generate(platforms, names, Some(env), None, args, Some(&mut step))?;
    drop(rx);
    drop(tx);
    drop(dut_devices);
    Ok(())
}

type Batch<'a> = heapless::Vec<Packet<'a>, MAX_BATCH>;

/// What one queue sends.
enum Source {
    /// One flow, one size: every buffer holds the frame already, only the number changes.
    Fixed { size: usize, seq: u64 },
    /// Flows and sizes in turn; `seqs[k]` is flow k's next number.
    Mixed {
        flows: Vec<Flow>,
        seqs: Vec<u64>,
        sizes: Vec<usize>,
        next: u64,
    },
    /// The frames of a pcap file, `loops` times (0: forever).
    Replay {
        frames: Replay,
        next: u64,
        loops: u64,
    },
}

impl Source {
    /// Size of the frame `k` frames ahead; None once a replay is over.
    fn size_ahead(&self, k: usize) -> Option<usize> {
        match self {
            Source::Fixed { size, .. } => Some(*size),
            Source::Mixed { sizes, next, .. } => {
                Some(sizes[((*next + k as u64) % sizes.len() as u64) as usize])
            }
            Source::Replay {
                frames,
                next,
                loops,
            } => {
                let i = *next + k as u64;
                let n = frames.len() as u64;
                if *loops != 0 && i >= n * loops {
                    return None;
                }
                Some(frames[(i % n) as usize].len())
            }
        }
    }

    /// Writes the next frame into `packet` (already `size_ahead(0)` bytes long).
    fn fill(&mut self, packet: &mut [u8]) {
        match self {
            Source::Fixed { seq, .. } => {
                set_seq(packet, *seq);
                *seq += 1;
            }
            Source::Mixed {
                flows, seqs, next, ..
            } => {
                let f = (*next % flows.len() as u64) as usize;
                build_udp_frame(packet, &flows[f], seqs[f]);
                seqs[f] += 1;
                *next += 1;
            }
            Source::Replay { frames, next, .. } => {
                let n = frames.len() as u64;
                packet.copy_from_slice(&frames[(*next % n) as usize]);
                *next += 1;
            }
        }
    }
}

/// Writes the template frame into every buffer of `pool` once, as ixy does: afterwards only the
/// sequence number changes per packet.
fn prefill<P: Platform>(pool: &Mempool<P>, size: usize, flow: &Flow) {
    let mut template = vec![0u8; size];
    build_udp_frame(&mut template, flow, 0);
    let mut held = Vec::with_capacity(pool.capacity());
    let mut batch = Batch::new();
    while pool.alloc_batch(&mut batch, MAX_BATCH, size) > 0 {
        for mut packet in batch.drain(..) {
            packet.copy_from_slice(&template);
            held.push(packet);
        }
    }
}

/// One queue's sender: its pool, its frames, its pacing.
struct Sender<'a, P: Platform> {
    tx: TxQueue<'a, P>,
    pool: &'a Mempool<P>,
    batch: Batch<'a>,
    source: Source,
    pacing: Pacing,
    /// The device's rate limiter paces this queue (--rate-limiter hw).
    hw_paced: bool,
    /// Frames handed to the device (all queues), `"app"` of `--json`.
    generated: &'static AtomicU64,
    /// `--offload-checksums`.
    offload: bool,
}

impl<'a, P: Platform> Sender<'a, P> {
    /// Tops the batch up to `want` packets (as many as pacing allows at `now`), sends what the
    /// ring takes; the rest stays in the batch for next time, so no number is skipped.
    #[inline(never)]
    fn send(&mut self, want: usize, now: Duration) -> usize {
        let have = self.batch.len();
        if want > have {
            let source = &self.source;
            let mut new = self
                .pacing
                .take(now, want - have, |k| source.size_ahead(k).unwrap_or(60));
            while new > 0 {
                let Some(size) = self.source.size_ahead(0) else {
                    break;
                };
                if self.pool.alloc_batch(&mut self.batch, 1, size) == 0 {
                    break;
                }
                let Some(packet) = self.batch.last_mut() else {
                    break;
                };
                self.source.fill(packet);
                new -= 1;
            }
        }
        let sent = if self.offload {
            self.tx.tx_batch_offload(&mut self.batch, |p| {
                TxOffload::for_frame(p).unwrap_or(TxOffload::NONE)
            })
        } else {
            self.tx.tx_batch(&mut self.batch)
        };
        self.generated.fetch_add(sent as u64, Ordering::Relaxed);
        sent
    }

    /// Packets allocated (numbered) but not sent yet.
    fn pending(&self) -> u64 {
        self.batch.len() as u64
    }

    /// True when a replay has sent everything.
    fn finished(&self) -> bool {
        self.batch.is_empty() && self.source.size_ahead(0).is_none()
    }
}

/// `--latency`: the Rx queue the probes come back on, the prober, and the simulated device
/// under test's step.
struct Latency<'a, 'd, 'f, P: Platform> {
    rx: RxQueue<'a, P>,
    pool: &'a Mempool<P>,
    prober: Prober<'d, P>,
    dut: Option<&'f mut dyn FnMut()>,
    batch: Batch<'a>,
}

impl<'a, P: Platform> Latency<'a, '_, '_, P> {
    /// Runs the device under test once, sends a probe when due, drains the Rx queue (the
    /// load comes back too) and reads the time stamps.
    fn step(&mut self, tx: &mut TxQueue<'a, P>, now: Duration) {
        if let Some(dut) = self.dut.as_mut() {
            dut();
        }
        self.prober.send_due(now, self.pool, tx);
        self.drain(now);
    }

    /// Runs the device under test, drains the Rx queue and reads the time stamps.
    fn receive(&mut self, now: Duration) {
        if let Some(dut) = self.dut.as_mut() {
            dut();
        }
        self.drain(now);
    }

    fn drain(&mut self, now: Duration) {
        for _ in 0..4 {
            let n = self.rx.rx_batch(&mut self.batch, MAX_BATCH);
            for p in self.batch.iter() {
                self.prober.received(p, now);
            }
            self.batch.clear();
            if n < MAX_BATCH {
                break;
            }
        }
        self.prober.poll(now);
    }
}

/// Removes the hardware rate limits of queues 0..`queues`, so that what the rings still hold
/// goes out at line rate when the queues stop (a ring of large frames at a low rate takes
/// longer than the queue's bounded drain).
fn lift_rate_limits<P: Platform>(device: &Device<P>, queues: u16) {
    for q in 0..queues {
        if let Err(e) = device.clear_tx_rate_limit(q) {
            log::warn!("Tx queue {q}: {e}");
        }
    }
}

/// Bit/s on the wire of `rate` for frames of `mean` bytes (without FCS).
fn bits_per_s(rate: Rate, mean: usize) -> u64 {
    match rate {
        Rate::Bps(v) => v as u64,
        Rate::Pps(v) => (v * (mean as f64 + 24.0) * 8.0) as u64,
    }
}

fn generate<P: Platform>(
    platforms: Vec<P>,
    names: Vec<String>,
    env: Option<SimEnv>,
    replay: Option<Replay>,
    args: &Args,
    dut: Option<&mut dyn FnMut()>,
) -> Result<(), AppError> {
    let common = &args.common;
    let queues = common.queues;
    let rx_pools = make_pools(&platforms, &names, 1)?;
    let tx_pools: Vec<Mempool<P>> = (0..queues)
        .map(|_| {
            Mempool::new(&platforms[0], POOL_ENTRIES, DEFAULT_BUF_SIZE)
                .map_err(|e| AppError::from(e).context(&names[0]))
        })
        .collect::<Result<_, _>>()?;
    let probe_pool = Mempool::new(&platforms[0], 64, DEFAULT_BUF_SIZE)
        .map_err(|e| AppError::from(e).context(&names[0]))?;
    let started = start_devices(&platforms, &names, &rx_pools, queues)?;
    let mut devices = Vec::new();
    let mut txs = Vec::new();
    let mut probe_rx = None;
    for s in started {
        devices.push(s.device);
        txs.extend(s.tx);
        // The Rx queues stay enabled; with Drop_En frames nobody reads are simply dropped.
        // With --latency the probes come back on the first.
        if args.latency && probe_rx.is_none() {
            probe_rx = s.rx.into_iter().next();
        }
    }
    let sizes = if args.imix {
        IMIX.to_vec()
    } else {
        args.size.0.clone()
    };
    let flows = Flows {
        src_ip: args.src_ip,
        dst_ip: args.dst_ip,
        src_port: args.src_port.unwrap_or(Range {
            lo: 1000,
            hi: 1000u16.saturating_add((args.flows.max(u64::from(queues)) - 1) as u16),
        }),
        dst_port: args.dst_port,
        src_mac: devices[0].mac(),
        dst_mac: args.dst_mac,
    };
    let n_flows = args.flows.max(u64::from(queues));
    let threaded = txs.len() > 1;
    // The simulated wire does not limit the rate: pace to 10 GbE line rate there. With
    // several queues each paces its share.
    let share = |r: Rate| match r {
        Rate::Pps(v) => Rate::Pps(v / f64::from(queues)),
        Rate::Bps(v) => Rate::Bps(v / f64::from(queues)),
    };
    let mut senders: Vec<Sender<'_, P>> = Vec::new();
    for (q, (tx, pool)) in txs.into_iter().zip(&tx_pools).enumerate() {
        let mine: Vec<Flow> = (q as u64..n_flows)
            .step_by(usize::from(queues))
            .map(|k| flows.flow(k))
            .collect();
        let source = if let Some(frames) = &replay {
            Source::Replay {
                frames: frames.clone(),
                next: 0,
                loops: args.loops,
            }
        } else if mine.len() == 1 && sizes.len() == 1 {
            prefill(pool, sizes[0], &mine[0]);
            Source::Fixed {
                size: sizes[0],
                seq: 0,
            }
        } else {
            Source::Mixed {
                seqs: vec![0; mine.len()],
                flows: mine,
                sizes: sizes.clone(),
                next: 0,
            }
        };
        // With a virtual clock the step per loop (below) keeps to line rate already.
        let line = env.is_some() && common.sim_clock == ixgbe_tools::SimClock::Wall;
        let soft = args.rate.filter(|_| args.rate_limiter == Limiter::Sw);
        let mut pacing = Pacing::new(soft.map(share), line);
        if line && threaded {
            pacing = Pacing::new(soft.map(share), false);
            pacing.set_line_rate_share(u32::from(queues));
        }
        senders.push(Sender {
            tx,
            pool,
            batch: Batch::new(),
            source,
            pacing,
            hw_paced: false,
            generated: ixgbe_tools::json::app_counter("generated"),
            offload: args.offload_checksums,
        });
    }
    let size_counts = Arc::default();
    let mut line = None;
    let peer = match &env {
        Some(e) if args.latency => {
            if args.sim_dut == Dut::Wire {
                let l = DelayLine::new(args.sim_dut_delay);
                e.sim.attach_sink(e.nics[0], l.sink());
                e.sim.attach_source(e.nics[0], l.source());
                line = Some(l);
            }
            None
        }
        Some(e) => Some(e.attach_generator_peer_with(
            Arc::clone(&size_counts),
            replay.is_none(),
            args.sim_peer_pcap.as_deref(),
        )?),
        None => None,
    };
    // The virtual clock moves by one batch's wire time per loop; with --rate by half a batch's
    // time at that rate (if slower), so that pacing, not the step, decides when frames go.
    let mean = match &replay {
        Some(f) => f.iter().map(Vec::len).sum::<usize>() / f.len(),
        None => sizes.iter().sum::<usize>() / sizes.len(),
    };
    let hw_limited = args.rate_limiter == Limiter::Hw && args.rate.is_some();
    if let (Limiter::Hw, Some(rate)) = (args.rate_limiter, args.rate) {
        for s in &mut senders {
            s.hw_paced = true;
            let q = s.tx.id();
            let want = bits_per_s(share(rate), mean);
            let got = devices[0]
                .set_tx_rate_limit(q, want)
                .map_err(|e| AppError::from(e).context(&names[0]))?;
            ixgbe_tools::stats::out(&format!(
                "[{}] Tx queue {q}: hardware rate limit {got} bit/s (RTTBCNRC)",
                names[0]
            ));
        }
    }
    let mut latency = match probe_rx {
        Some(rx) => {
            let clock = match args.timestamps {
                Stamps::Hw => Some(
                    devices[0]
                        .enable_timestamps()
                        .map_err(|e| AppError::from(e).context(&names[0]))?,
                ),
                Stamps::Sw => None,
            };
            let interval = Duration::from_secs(1) / args.probe_rate;
            Some(Latency {
                rx,
                pool: &probe_pool,
                prober: Prober::new(clock, flows.flow(0), interval, Duration::from_millis(10)),
                dut,
                batch: Batch::new(),
            })
        }
        None => None,
    };
    let wire = wire_time_ps(mean) as f64;
    let per_frame = args
        .rate
        .map_or(wire, |r| (r.cost_ps(mean) / 2.0).max(wire));
    // With --latency the step is the resolution of what the simulated device under test
    // does: at most LATENCY_STEP_PS (pacing, not the step, keeps the rate).
    let mut step_ps = (common.batch as f64 * per_frame) as u64;
    if args.latency {
        step_ps = step_ps.min(LATENCY_STEP_PS);
    }
    let mut pacer = make_pacer(env.as_ref(), common, step_ps, threaded);
    let limits = Limits::from_args(common);
    let mut printer = RatePrinter::new(names.clone(), pacer.elapsed());
    // Worker threads drop their senders when they end; a single sender stays until teardown.
    let senders = if !threaded {
        run_single(
            &mut senders[0],
            &devices,
            &mut pacer,
            &mut printer,
            limits,
            common.batch,
            latency.as_mut(),
        );
        senders
    } else {
        run_threaded(
            senders,
            &devices,
            &mut pacer,
            &mut printer,
            limits,
            common.batch,
            hw_limited,
        );
        Vec::new()
    };
    if hw_limited {
        lift_rate_limits(&devices[0], queues);
    }
    // Give the device a moment to put the last frames on the wire; with --latency, receive
    // what the device under test still holds (up to LATENCY_DRAIN steps).
    if let Some(l) = latency.as_mut() {
        for _ in 0..LATENCY_DRAIN {
            pacer.tick();
            l.receive(pacer.elapsed());
        }
    }
    for _ in 0..4 {
        pacer.tick();
    }
    let latency_lines = latency.as_ref().map(|l| {
        let lat = &l.prober.latencies;
        let app = ixgbe_tools::json::app_counter;
        app("latency_probes").store(lat.len() as u64, Ordering::Relaxed);
        app("latency_lost").store(lat.lost, Ordering::Relaxed);
        for (name, p) in [
            ("latency_min_ns", 0.0),
            ("latency_p50_ns", 50.0),
            ("latency_p99_ns", 99.0),
            ("latency_p99_9_ns", 99.9),
            ("latency_p99_99_ns", 99.99),
            ("latency_max_ns", 100.0),
        ] {
            app(name).store(lat.percentile(p).unwrap_or(0), Ordering::Relaxed);
        }
        lat.report(l.prober.source(), 10)
    });
    drop(latency);
    report(&pacer, &names, &devices, peer.as_deref(), common.json);
    for l in latency_lines.iter().flatten() {
        ixgbe_tools::stats::out(l);
    }
    if let Some(l) = &line {
        ixgbe_tools::stats::out(&format!(
            "[dut] wire: {} frames back after {:?}",
            l.carried.load(Ordering::Relaxed),
            args.sim_dut_delay
        ));
    }
    if let Ok(counts) = size_counts.lock() {
        let flows = counts.get(&0).copied().unwrap_or(0);
        let list: Vec<String> = counts
            .iter()
            .filter(|(&s, _)| s > 0)
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        if !list.is_empty() {
            let flows = if flows > 0 {
                format!("{flows} flows; ")
            } else {
                String::new()
            };
            ixgbe_tools::stats::out(&format!(
                "[peer] {flows}frames by size: {}",
                list.join(", ")
            ));
        }
    }
    drop(senders);
    drop(devices);
    if let Some(env) = &env {
        env.log_diagnostics(&names);
    }
    Ok(())
}

fn run_single<'a, P: Platform>(
    sender: &mut Sender<'a, P>,
    devices: &[Device<P>],
    pacer: &mut Pacer,
    printer: &mut RatePrinter,
    limits: Limits,
    batch_size: usize,
    mut latency: Option<&mut Latency<'a, '_, '_, P>>,
) {
    let mut sent = 0u64;
    let mut iteration = 0u64;
    loop {
        pacer.tick();
        // Number only as many packets as the limit still allows.
        let allowed = limits.remaining(sent).saturating_sub(sender.pending());
        let want = sender.pending() + allowed.min(batch_size as u64 - sender.pending());
        sent += sender.send(want as usize, pacer.elapsed()) as u64;
        if let Some(l) = latency.as_deref_mut() {
            l.step(&mut sender.tx, pacer.elapsed());
        }
        iteration += 1;
        if limits.remaining(sent) == 0 || sender.finished() {
            break;
        }
        // A paced sender idles most iterations: look at the clock every time, so a run ends
        // on time (to the step) rather than up to 64 steps late.
        if (sender.pacing.active()
            || sender.hw_paced
            || latency.is_some()
            || iteration.is_multiple_of(CLOCK_CHECK_INTERVAL))
            && time_up_after_printing(pacer, &limits, printer, devices)
        {
            break;
        }
    }
}

fn run_threaded<P: Platform>(
    senders: Vec<Sender<'_, P>>,
    devices: &[Device<P>],
    pacer: &mut Pacer,
    printer: &mut RatePrinter,
    limits: Limits,
    batch_size: usize,
    hw_limited: bool,
) {
    let senders_count = senders.len() as u16;
    let done = AtomicBool::new(false);
    // Sequence numbers still to hand out (only with --packets): each sender reserves from it.
    let budget = AtomicU64::new(limits.packets.unwrap_or(u64::MAX));
    let sent_total = AtomicU64::new(0);
    // Workers pace against wall time (the virtual clock is the main thread's).
    let start = Instant::now();
    std::thread::scope(|scope| {
        for mut sender in senders {
            let (done, budget, sent_total) = (&done, &budget, &sent_total);
            scope.spawn(move || {
                while !done.load(Ordering::Relaxed) {
                    let room = batch_size as u64 - sender.pending();
                    let got = budget
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                            Some(b - b.min(room))
                        })
                        .map_or(0, |b| b.min(room));
                    let want = sender.pending() + got;
                    if want == 0 {
                        std::thread::yield_now();
                        continue;
                    }
                    let sent = sender.send(want as usize, start.elapsed());
                    // What pacing held back goes back to the budget.
                    budget.fetch_add(want - sender.pending() - sent as u64, Ordering::Relaxed);
                    sent_total.fetch_add(sent as u64, Ordering::Relaxed);
                }
            });
        }
        supervise(pacer, &limits, printer, devices, &sent_total);
        if hw_limited {
            // The workers' queues drain when they end: at line rate, not at the limit.
            lift_rate_limits(&devices[0], senders_count);
        }
        done.store(true, Ordering::Relaxed);
    });
}
