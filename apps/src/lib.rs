//! Shared code of the ixgbe example programs (`ixgbe-fwd`, `ixgbe-pktgen`, `ixgbe-pcap`,
//! `ixgbe-echo`): command-line options, opening devices (a PCI address or `sim`), bring-up, the
//! per-second rate printer, JSON Lines output, the pcap format, a UDP/IPv4 frame builder and
//! validator, and the smoltcp echo server and client ([`echo`]).
//!
//! A device is either a real 82599 at a PCI address (through `platform-linux`) or `sim`: a
//! simulated 82599 (`platform-mock`) cabled to a simulated peer that offers and checks traffic.
//! The programs are generic over [`ixgbe_core::Platform`], so both run the same driver code.
#![deny(missing_docs)]

pub mod cli;
pub mod echo;
pub mod forward;
pub mod frame;
pub mod gen;
pub mod irq;
pub mod json;
pub mod latency;
pub mod line_alloc;
pub mod pcap;
pub mod sim;
pub mod stats;

use std::fmt;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ixgbe_core::{Config, Device, Mempool, Platform, Started, Stats, DEFAULT_BUF_SIZE};
use platform_linux::{LinuxPlatform, OpenOptions};
use platform_mock::traffic::{CheckingSink, LineRateSource};
use platform_mock::{NicConfig, NicId, Sim, SimPlatform};

pub use cli::{CommonArgs, DevSpec, SimClock, MAX_BATCH};
pub use platform_mock::traffic::PeerCounters;
pub use sim::{peer_totals, LanePacer, Pacer};
pub use stats::{PeerTotals, RatePrinter};

/// Buffers per memory pool (as ixy): enough for a full Rx ring, a full Tx ring and a batch.
pub const POOL_ENTRIES: u32 = 4096;

/// How long to wait for link (ixy waits 10 s).
pub const LINK_TIMEOUT: Duration = Duration::from_secs(10);

/// An error for the person running the program: one sentence.
#[derive(Debug)]
pub struct AppError(pub String);

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AppError {}

impl AppError {
    /// An error with a message.
    pub fn new(msg: impl Into<String>) -> Self {
        AppError(msg.into())
    }

    /// Prefixes the message with `context: `.
    pub fn context(self, context: &str) -> Self {
        AppError(format!("{context}: {}", self.0))
    }
}

impl From<ixgbe_core::Error> for AppError {
    fn from(e: ixgbe_core::Error) -> Self {
        AppError(e.to_string())
    }
}

impl From<platform_linux::Error> for AppError {
    fn from(e: platform_linux::Error) -> Self {
        AppError(e.to_string())
    }
}

static STOP: AtomicBool = AtomicBool::new(false);

/// True once SIGINT, SIGTERM or SIGHUP arrived, stdout closed, a thread panicked, or
/// [`request_stop`] was called.
#[inline(always)]
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Asks every loop to end.
pub fn request_stop() {
    STOP.store(true, Ordering::Relaxed);
}

/// Makes a panic in any thread ask every loop to end (then report as usual), so the threads
/// that did not panic leave their loops and the devices are stopped by their `Drop`.
fn stop_on_panic() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        request_stop();
        default_hook(info);
    }));
}

/// Runs a program's body: sets up logging and the stop handlers, prints an error as one line
/// on stderr, and turns the outcome into the exit code (0 on success, 1 on error).
///
/// Every way out ends the loops the same way, so the devices are stopped (queues disabled, Bus
/// Master cleared) by their `Drop` before DMA memory goes back, and the summary is printed:
/// SIGINT, SIGTERM and SIGHUP (`ctrlc` with its `termination` feature), a closed stdout
/// ([`stats::out`]), and a panic in any thread (the hook below asks every other loop to end;
/// the panicking thread unwinds through its own drops).
pub fn run_main(body: impl FnOnce() -> Result<(), AppError>) -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn"))
        .format_timestamp(None)
        .init();
    if let Err(e) = ctrlc::set_handler(request_stop) {
        log::warn!("cannot install the SIGINT/SIGTERM/SIGHUP handler: {e}");
    }
    stop_on_panic();
    match body() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The simulated world of sim mode: one simulated 82599 per `sim` device.
pub struct SimEnv {
    /// The simulator.
    pub sim: Sim,
    /// The simulated NICs, in command-line order.
    pub nics: Vec<NicId>,
    /// Their MAC addresses.
    pub macs: Vec<[u8; 6]>,
}

/// 10 GbE: the wire rate of the simulated peers unless told otherwise, in bit/s.
pub use platform_mock::traffic::LINE_RATE_BPS;

impl SimEnv {
    /// Logs (at info level) what each simulated wire saw and any protocol violations (warn).
    pub fn log_diagnostics(&self, names: &[String]) {
        for (&nic, name) in self.nics.iter().zip(names) {
            log::info!("{name}: wire {:?}", self.sim.wire_counters(nic));
        }
        for v in self.sim.violations() {
            log::warn!("simulator: {v}");
        }
    }

    /// The forwarder's peer: on every port a [`LineRateSource`] offering 64-byte frames (60 +
    /// FCS) at 10 GbE line rate in `flows` flows, and a [`CheckingSink`] checking what the port
    /// sends. At most `max_burst` frames are offered per pump: a backlog beyond that (the
    /// program was slower than line rate) is skipped, not offered late.
    pub fn attach_forwarding_peer(&self, flows: u16, max_burst: u64) -> Arc<PeerCounters> {
        self.attach_forwarding_peer_sized(
            flows,
            max_burst,
            platform_mock::traffic::MIN_FRAME,
            LINE_RATE_BPS,
        )
    }

    /// [`SimEnv::attach_forwarding_peer`] with frames of `frame_size` bytes without FCS
    /// (60..=9724; beyond 1514 only for ports with jumbo frames on, the others drop them),
    /// offered at `rate_bps` per port on the wire ([`LINE_RATE_BPS`]: 10 GbE; more only to
    /// measure without the wire's limit).
    pub fn attach_forwarding_peer_sized(
        &self,
        flows: u16,
        max_burst: u64,
        frame_size: usize,
        rate_bps: u64,
    ) -> Arc<PeerCounters> {
        let counters = PeerCounters::new();
        for (&nic, &mac) in self.nics.iter().zip(&self.macs) {
            let source = LineRateSource::new(mac)
                .with_frame_size(frame_size)
                .with_flows(flows)
                .with_rate_bps(rate_bps)
                .with_max_burst(max_burst)
                .with_counters(counters.clone());
            self.sim.attach_source(nic, Box::new(source));
            self.sim
                .attach_sink(nic, Box::new(CheckingSink::with_counters(counters.clone())));
        }
        counters
    }

    /// [`SimEnv::attach_forwarding_peer_sized`] for a simulator with lanes: on every port and
    /// in every lane, a source offering the flows (of `flows`) that the port's RSS set-up
    /// sends to that lane's queues, at that share of `rate_bps`, and a checking sink, so each
    /// lane's thread produces and checks its own queues' traffic. Call it once the devices
    /// are started (RSS programmed). One set of counters per lane (sum them for totals: a
    /// shared one would be written by every lane's thread for every frame).
    pub fn attach_lane_peer(
        &self,
        flows: u16,
        max_burst: u64,
        frame_size: usize,
        rate_bps: u64,
    ) -> Vec<Arc<PeerCounters>> {
        let lanes = self.sim.lanes();
        let counters: Vec<_> = (0..lanes).map(|_| PeerCounters::new()).collect();
        for (&nic, &mac) in self.nics.iter().zip(&self.macs) {
            let probe = LineRateSource::new(mac)
                .with_frame_size(frame_size)
                .with_flows(flows);
            let mut ids = vec![Vec::new(); lanes];
            for f in 0..flows.max(1) {
                let q = self.sim.rss_queue(nic, &probe.first_frame_of_flow(f));
                ids[self.sim.lane_of_queue(q)].push(f);
            }
            for (k, ids) in ids.iter().enumerate() {
                if ids.is_empty() {
                    continue;
                }
                let share = rate_bps * ids.len() as u64 / u64::from(flows.max(1));
                let source = LineRateSource::new(mac)
                    .with_frame_size(frame_size)
                    .with_flow_ids(ids)
                    .with_rate_bps(share)
                    .with_max_burst(max_burst)
                    .with_counters(counters[k].clone());
                self.sim.attach_lane_source(k, nic, Box::new(source));
                self.sim.attach_lane_sink(
                    k,
                    nic,
                    Box::new(CheckingSink::with_counters(counters[k].clone())),
                );
            }
        }
        counters
    }

    /// The generator's peer: a [`sim::FrameCheckSink`] on every port.
    pub fn attach_generator_peer(&self) -> Arc<PeerCounters> {
        let counters = PeerCounters::new();
        for &nic in &self.nics {
            self.sim
                .attach_sink(nic, Box::new(sim::FrameCheckSink::new(counters.clone())));
        }
        counters
    }

    /// The generator's peer with options: counts frames per size into `sizes`, checks them
    /// only with `check`, and with `record` writes every frame it receives to that pcap file
    /// instead.
    pub fn attach_generator_peer_with(
        &self,
        sizes: Arc<std::sync::Mutex<std::collections::BTreeMap<usize, u64>>>,
        check: bool,
        record: Option<&std::path::Path>,
    ) -> Result<Arc<PeerCounters>, AppError> {
        let counters = PeerCounters::new();
        for &nic in &self.nics {
            let sink: Box<dyn platform_mock::TrafficSink> = match record {
                Some(path) => Box::new(
                    sim::RecordingSink::create(path, counters.clone()).map_err(|e| {
                        AppError::new(format!("cannot create {}: {e}", path.display()))
                    })?,
                ),
                None => {
                    let sink = sim::FrameCheckSink::new(counters.clone()).with_sizes(sizes.clone());
                    Box::new(if check { sink } else { sink.counting_only() })
                }
            };
            self.sim.attach_sink(nic, sink);
        }
        Ok(counters)
    }

    /// The capture's peer: a [`sim::MixSource`] on every port.
    pub fn attach_capture_peer(&self) -> Arc<PeerCounters> {
        let counters = PeerCounters::new();
        for (&nic, &mac) in self.nics.iter().zip(&self.macs) {
            self.sim
                .attach_source(nic, Box::new(sim::MixSource::new(mac, counters.clone())));
        }
        counters
    }
}

/// Devices opened from the command line, by kind.
pub enum Opened {
    /// Every device was `sim`.
    Sim {
        /// The simulated world (the program attaches the peer's traffic after bring-up).
        env: SimEnv,
        /// One platform per device.
        platforms: Vec<SimPlatform>,
        /// Device names for output: `sim0`, `sim1`, ...
        names: Vec<String>,
    },
    /// Every device was a PCI address.
    Linux {
        /// One platform per device.
        platforms: Vec<LinuxPlatform>,
        /// Device names for output: the PCI addresses.
        names: Vec<String>,
    },
}

/// The MAC address given to simulated NIC `i`.
pub fn sim_mac(i: usize) -> [u8; 6] {
    [0x02, 0x82, 0x59, 0x90, 0x00, i as u8]
}

/// Opens the devices: all `sim` (one simulated world holding them all), or all PCI addresses.
pub fn open_devices(devs: &[DevSpec]) -> Result<Opened, AppError> {
    open_devices_with(devs, &OpenOptions::default())
}

/// [`open_devices`] with explicit sysfs/dev/proc roots for PCI devices.
pub fn open_devices_with(devs: &[DevSpec], options: &OpenOptions) -> Result<Opened, AppError> {
    open_inner(devs, options, 1)
}

/// [`open_devices`]; `sim` devices in a simulator of `lanes` model instances
/// ([`Sim::with_lanes`]: one per queue, so that each worker thread drives its own).
pub fn open_devices_lanes(devs: &[DevSpec], lanes: usize) -> Result<Opened, AppError> {
    open_inner(devs, &OpenOptions::default(), lanes)
}

fn open_inner(devs: &[DevSpec], options: &OpenOptions, lanes: usize) -> Result<Opened, AppError> {
    let sims = devs.iter().filter(|d| **d == DevSpec::Sim).count();
    if sims == devs.len() {
        let sim = Sim::with_lanes(lanes);
        let mut nics = Vec::new();
        let mut macs = Vec::new();
        let mut platforms = Vec::new();
        for i in 0..devs.len() {
            let mac = sim_mac(i);
            let nic = sim.add_nic(NicConfig {
                mac,
                ..NicConfig::default()
            });
            platforms.push(sim.platform(nic));
            nics.push(nic);
            macs.push(mac);
        }
        let names = (0..devs.len()).map(|i| format!("sim{i}")).collect();
        return Ok(Opened::Sim {
            env: SimEnv { sim, nics, macs },
            platforms,
            names,
        });
    }
    if sims > 0 {
        return Err(AppError::new(
            "cannot mix `sim` with PCI devices: give only PCI addresses or only `sim`",
        ));
    }
    let mut platforms = Vec::new();
    let mut names = Vec::new();
    for dev in devs {
        let DevSpec::Pci(addr) = dev else {
            unreachable!("checked above");
        };
        let platform = LinuxPlatform::open(addr, options)?;
        log::info!(
            "{addr}: {} via {}",
            platform.identity(),
            platform.access_path()
        );
        platforms.push(platform);
        names.push(addr.to_string());
    }
    Ok(Opened::Linux { platforms, names })
}

/// Allocates `per_device` memory pools for each platform (one per Rx queue).
pub fn make_pools<P: Platform>(
    platforms: &[P],
    names: &[String],
    per_device: usize,
) -> Result<Vec<Vec<Mempool<P>>>, AppError> {
    platforms
        .iter()
        .zip(names)
        .map(|(p, name)| {
            (0..per_device)
                .map(|_| {
                    Mempool::new(p, POOL_ENTRIES, DEFAULT_BUF_SIZE)
                        .map_err(|e| AppError::from(e).context(name))
                })
                .collect()
        })
        .collect()
}

/// Brings every device up with `queues` Rx and Tx queues (promiscuous, drop when a ring is
/// full) and waits for each link.
pub fn start_devices<'a, P: Platform>(
    platforms: &[P],
    names: &[String],
    pools: &'a [Vec<Mempool<P>>],
    queues: u16,
) -> Result<Vec<Started<'a, P>>, AppError> {
    let config = Config::default().rx_queues(queues).tx_queues(queues);
    start_devices_with(platforms, names, pools, &config)
}

/// As [`start_devices`], with a configuration of the caller's.
pub fn start_devices_with<'a, P: Platform>(
    platforms: &[P],
    names: &[String],
    pools: &'a [Vec<Mempool<P>>],
    config: &Config,
) -> Result<Vec<Started<'a, P>>, AppError> {
    let config = config.clone();
    let mut started = Vec::new();
    for ((platform, name), pools) in platforms.iter().zip(names).zip(pools) {
        let s = Device::init(platform.clone(), &config, pools)
            .map_err(|e| AppError::from(e).context(name))?;
        started.push(s);
    }
    for (s, name) in started.iter().zip(names) {
        let link = s.device.wait_for_link(LINK_TIMEOUT).map_err(|_| {
            AppError::new(format!(
                "{name}: no link after {} s: check the cable",
                LINK_TIMEOUT.as_secs()
            ))
        })?;
        let speed = link.speed.map_or(0, |s| s.mbit());
        log::info!("{name}: link up at {speed} Mbit/s");
    }
    Ok(started)
}

/// Reads every device's accumulated statistics.
pub fn all_stats<P: Platform>(devices: &[Device<P>]) -> Vec<Stats> {
    devices.iter().map(Device::stats).collect()
}

/// When a run ends: after a time, after a number of packets, or on Ctrl-C.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Elapsed time (virtual with a virtual sim clock) after which to stop.
    pub seconds: Option<Duration>,
    /// Packets (forwarded, sent or captured) after which to stop.
    pub packets: Option<u64>,
}

impl Limits {
    /// From the common options.
    pub fn from_args(args: &CommonArgs) -> Self {
        Limits {
            seconds: args.seconds.map(Duration::from_secs_f64),
            packets: args.packets,
        }
    }

    /// True when time is up or Ctrl-C was pressed.
    #[inline]
    pub fn time_up(&self, elapsed: Duration) -> bool {
        stop_requested() || self.seconds.is_some_and(|s| elapsed >= s)
    }

    /// Time left until `--seconds` is up at `elapsed` (`Duration::MAX` without a limit).
    pub fn time_left(&self, elapsed: Duration) -> Duration {
        self.seconds
            .map_or(Duration::MAX, |s| s.saturating_sub(elapsed))
    }

    /// How many more packets may be handled after `done` (u64::MAX without a limit).
    #[inline(always)]
    pub fn remaining(&self, done: u64) -> u64 {
        self.packets.map_or(u64::MAX, |n| n.saturating_sub(done))
    }
}

/// How often (in loop iterations) the single-threaded loops look at the clock.
pub const CLOCK_CHECK_INTERVAL: u64 = 64;

/// How often the main thread looks at the clock while the workers pump the simulator's lanes
/// themselves (without `--packets`): it only prints and ends the run, and each wake-up
/// preempts a worker (1000 a second cost about 1 % of a 2-queue run).
pub const LANES_SUPERVISE_INTERVAL: Duration = Duration::from_millis(20);

/// How often the main thread pumps the simulator while worker threads run the queues.
pub const SIM_PUMP_INTERVAL: Duration = Duration::from_micros(100);

/// Largest step of virtual time per pump with a wall sim clock: 100 µs (the simulator's time
/// slice, one peer burst) when one thread does everything, 1 ms when worker threads run the
/// queues and the main thread pumps every [`SIM_PUMP_INTERVAL`].
pub fn max_sim_step(threaded: bool) -> Duration {
    if threaded {
        Duration::from_millis(1)
    } else {
        Duration::from_micros(100)
    }
}

/// The pacer of a run: drives the simulator in sim mode (`step_ps`: the wire time of one batch,
/// for `--sim-clock virtual`), plain wall time for real devices.
pub fn make_pacer(env: Option<&SimEnv>, args: &CommonArgs, step_ps: u64, threaded: bool) -> Pacer {
    match env {
        Some(e) => Pacer::sim(
            e.sim.clone(),
            args.sim_clock,
            step_ps,
            max_sim_step(threaded),
        ),
        None => {
            if args.sim_clock == SimClock::Virtual {
                log::warn!("--sim-clock applies only to `sim` devices; ignored");
            }
            Pacer::real()
        }
    }
}

/// The main thread of a threaded run: pumps the simulator (on real devices it only waits) and
/// prints the per-second lines until `done` reaches the packet limit, time is up or Ctrl-C.
pub fn supervise<P: Platform>(
    pacer: &mut Pacer,
    limits: &Limits,
    printer: &mut RatePrinter,
    devices: &[Device<P>],
    done: &AtomicU64,
) {
    supervise_every(
        pacer,
        limits,
        printer,
        devices,
        done,
        Duration::from_millis(1),
    );
}

/// As [`supervise`], looking every `interval` on real devices, and when a worker unparks the
/// calling thread (interrupt runs look less often: each look wakes this thread, and the point
/// of sleeping workers is a quiet CPU).
pub fn supervise_every<P: Platform>(
    pacer: &mut Pacer,
    limits: &Limits,
    printer: &mut RatePrinter,
    devices: &[Device<P>],
    done: &AtomicU64,
    interval: Duration,
) {
    loop {
        pacer.tick();
        let enough = limits.remaining(done.load(Ordering::Relaxed)) == 0;
        if enough || time_up_after_printing(pacer, limits, printer, devices) {
            break;
        }
        // Pump the simulator about as often as it slices time (100 µs), leaving its lock
        // and the CPU to the workers in between. On real devices wake for the next line or
        // `interval`, whichever comes first, or when a worker unparks this thread.
        std::thread::park_timeout(if pacer.is_sim() {
            SIM_PUMP_INTERVAL
        } else {
            interval
                .min(printer.until_due(pacer.elapsed()))
                .min(limits.time_left(pacer.elapsed()))
                .max(Duration::from_millis(1))
        });
    }
}

/// Prints a run's final summary: every device's totals and, in sim mode, the peer's checks.
pub fn report<P: Platform>(
    pacer: &Pacer,
    names: &[String],
    devices: &[Device<P>],
    peer: Option<&PeerCounters>,
    json: bool,
) {
    stats::print_summary(
        pacer.elapsed().as_secs_f64(),
        names,
        &all_stats(devices),
        peer.map(peer_totals),
        json,
    );
}

/// The periodic check of a single-threaded loop: prints the per-second lines when they are
/// due, and says whether the run's time is up (or Ctrl-C was pressed).
pub fn time_up_after_printing<P: Platform>(
    pacer: &Pacer,
    limits: &Limits,
    printer: &mut RatePrinter,
    devices: &[Device<P>],
) -> bool {
    let now = pacer.elapsed();
    if limits.time_up(now) {
        // The last interval too: `--seconds N` shows N of them.
        printer.finish(now, &all_stats(devices));
        return true;
    }
    if printer.due(now) {
        printer.print(now, &all_stats(devices));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The forwarding peer offers what its rate says: over 1 ms of virtual time, 14 881 frames
    /// of 64 bytes (with FCS) per port at 10 Gbit/s, four times as many at 40 (the source
    /// counts what it offers, taken or not).
    #[test]
    fn the_forwarding_peer_offers_its_rate() {
        let offered = |bps: u64| {
            let Opened::Sim { env, .. } =
                open_devices_lanes(&[DevSpec::Sim, DevSpec::Sim], 1).expect("two sim ports")
            else {
                panic!("sim devices opened as Linux ones");
            };
            let c = env.attach_forwarding_peer_sized(1, u64::MAX, 60, bps);
            env.sim.advance(std::time::Duration::from_millis(1));
            c.snapshot().0
        };
        let (line, fast) = (offered(LINE_RATE_BPS), offered(4 * LINE_RATE_BPS));
        // 10 Gbit/s over 84 bytes a frame (preamble, gap, FCS) is 14.88 Mpps; the first frame
        // is due at time 0.
        assert!((2 * 14_880..=2 * 14_882).contains(&line), "{line}");
        assert!(
            (4 * line - 8..=4 * line + 8).contains(&fast),
            "{fast} against {line}"
        );
    }

    #[test]
    fn a_panic_in_any_thread_stops_every_loop() {
        stop_on_panic();
        assert!(!stop_requested());
        let worker = std::thread::spawn(|| panic!("a forwarding thread fails"));
        assert!(worker.join().is_err());
        assert!(stop_requested(), "the other loops were not asked to stop");
    }
}
