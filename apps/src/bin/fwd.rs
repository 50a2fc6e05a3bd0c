//! `ixgbe-fwd <DEV1> <DEV2>`: forwards everything received on each device out of the other,
//! incrementing byte 1 of each frame (as ixy's forwarder does).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use ixgbe_core::heapless;
use ixgbe_core::{
    Config, Delivery, Device, InterruptPlatform, PacketChain, Platform, QueueInterrupt, RxQueue,
    TxQueue, DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE,
};
use ixgbe_tools::forward::{forward_batch, Batch};
use ixgbe_tools::irq::{cpu_line, cpu_time, InterruptArg, IrqTotals};
use ixgbe_tools::sim::wire_time_ps;
use ixgbe_tools::stats::out;
use ixgbe_tools::{
    make_pacer, make_pools, max_sim_step, open_devices_lanes, report, request_stop, run_main,
    start_devices_with, supervise_every, time_up_after_printing, AppError, CommonArgs, DevSpec,
    LanePacer, Limits, Opened, Pacer, PeerCounters, RatePrinter, SimClock, SimEnv,
    CLOCK_CHECK_INTERVAL, LANES_SUPERVISE_INTERVAL,
};

/// Every heap block on cache lines of its own: the simulator's lanes, built by one thread, would
/// otherwise share lines between the worker threads (`ixgbe_tools::line_alloc`).
#[global_allocator]
static ALLOC: ixgbe_tools::line_alloc::LineAlloc = ixgbe_tools::line_alloc::LineAlloc;

/// Forward frames between two 82599 ports (or two simulated ones: `sim sim`).
#[derive(Debug, Parser)]
#[command(name = "ixgbe-fwd", version)]
struct Args {
    /// First device: a PCI address (0000:03:00.0) or `sim`.
    dev1: DevSpec,
    /// Second device: a PCI address or `sim`.
    dev2: DevSpec,
    /// Sleep on MSI-X interrupts instead of polling: `hybrid` sleeps while traffic is low
    /// (VFIO or `sim` only).
    #[arg(long, value_enum, default_value_t = InterruptArg::Off)]
    interrupts: InterruptArg,
    /// Largest frame in bytes, DA through CRC, up to 9728 (an MTU of 9710). Above 1518 the
    /// ports take jumbo frames (HLREG0.JUMBOEN, MAXFRS) and frames of several buffers are
    /// forwarded as chains.
    #[arg(long, default_value_t = DEFAULT_MAX_FRAME_SIZE,
          value_parser = clap::value_parser!(u16).range(64..=i64::from(MAX_FRAME_SIZE)))]
    max_frame: u16,
    /// Size of the simulated peer's frames in bytes without FCS, 60..=9724 (`sim` only).
    #[arg(long, default_value_t = 60,
          value_parser = clap::value_parser!(u16).range(60..=9724))]
    frame_size: u16,
    /// The simulated peer's offered rate per port in Gbit/s (`sim` only; default 10, the
    /// 82599's line rate). More than 10 is more than a real wire carries: for measuring how
    /// the forwarder scales over cores without the wire's limit (scripts/bench-wall.sh).
    #[arg(long, default_value_t = 10,
          value_parser = clap::value_parser!(u16).range(1..=400))]
    sim_peer_gbps: u16,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    args.common.configure_output("ixgbe-fwd");
    run_main(|| run(&args))
}

fn run(args: &Args) -> Result<(), AppError> {
    if args.dev1 == args.dev2 && args.dev1 != DevSpec::Sim {
        return Err(AppError::new(
            "DEV1 and DEV2 are the same device: give two different PCI addresses",
        ));
    }
    // Sim with several queues polled by threads on a wall clock: one model instance (lane) per
    // queue, each driven by the thread that serves its queue (docs/benchmarks.md, "Multi-core
    // scaling").
    let lanes = if args.common.queues > 1
        && matches!(args.interrupts, InterruptArg::Off)
        && args.common.sim_clock == SimClock::Wall
    {
        usize::from(args.common.queues)
    } else {
        1
    };
    match open_devices_lanes(&[args.dev1, args.dev2], lanes)? {
        Opened::Sim {
            env,
            platforms,
            names,
        } => forward(platforms, names, Some(env), args),
        Opened::Linux { platforms, names } => forward(platforms, names, None, args),
    }
}

/// Largest batch of chains (jumbo mode): a chain holds up to 16 packets, so fewer fit a stack.
const MAX_CHAIN_BATCH: usize = 64;

/// How a worker forwards one batch: one-buffer frames ([`Plain`], the fast path) or chains
/// of buffers ([`Jumbo`]). The loops are generic over it, so the plain one pays nothing for
/// the other.
trait Forwarding<'a, P: Platform>: Send {
    fn new() -> Self;
    /// Forwards up to `max` frames from `rx` to `tx`; returns how many came and went.
    fn forward(
        &mut self,
        rx: &mut RxQueue<'a, P>,
        tx: &mut TxQueue<'a, P>,
        max: usize,
    ) -> (usize, usize);
}

struct Plain<'a>(Batch<'a>);

impl<'a, P: Platform> Forwarding<'a, P> for Plain<'a> {
    fn new() -> Self {
        Plain(Batch::new())
    }
    #[inline(always)]
    fn forward(
        &mut self,
        rx: &mut RxQueue<'a, P>,
        tx: &mut TxQueue<'a, P>,
        max: usize,
    ) -> (usize, usize) {
        forward_batch(rx, tx, &mut self.0, max)
    }
}

struct Jumbo<'a>(heapless::Vec<PacketChain<'a>, MAX_CHAIN_BATCH>);

impl<'a, P: Platform> Forwarding<'a, P> for Jumbo<'a> {
    fn new() -> Self {
        Jumbo(heapless::Vec::new())
    }
    fn forward(
        &mut self,
        rx: &mut RxQueue<'a, P>,
        tx: &mut TxQueue<'a, P>,
        max: usize,
    ) -> (usize, usize) {
        forward_chains(rx, tx, &mut self.0, max)
    }
}

/// The queues one thread served: Rx and Tx queue of every device.
type QueueGroup<'a, P> = (Vec<RxQueue<'a, P>>, Vec<TxQueue<'a, P>>);

/// [`forward_batch`] for frames in several buffers (jumbo frames): received with
/// `rx_chains`, byte 1 touched, sent with `tx_chains`.
#[inline(never)]
fn forward_chains<'a, P: Platform>(
    rx: &mut RxQueue<'a, P>,
    tx: &mut TxQueue<'a, P>,
    chains: &mut heapless::Vec<PacketChain<'a>, MAX_CHAIN_BATCH>,
    max: usize,
) -> (usize, usize) {
    let received = rx.rx_chains(chains, max);
    if received == 0 {
        tx.clean();
        return (0, 0);
    }
    for chain in chains.iter_mut() {
        if let Some(byte) = chain.segments_mut().first_mut().and_then(|p| p.get_mut(1)) {
            *byte = byte.wrapping_add(1);
        }
    }
    let sent = tx.tx_chains(chains);
    chains.clear();
    (received, sent)
}

fn forward<P: InterruptPlatform>(
    platforms: Vec<P>,
    names: Vec<String>,
    env: Option<SimEnv>,
    all: &Args,
) -> Result<(), AppError> {
    let args = &all.common;
    let queues = args.queues;
    let jumbo = all.max_frame > DEFAULT_MAX_FRAME_SIZE;
    let pools = make_pools(&platforms, &names, usize::from(queues))?;
    let config = Config::default()
        .rx_queues(queues)
        .tx_queues(queues)
        .interrupts(all.interrupts.config())
        .max_frame_size(all.max_frame);
    let started = start_devices_with(&platforms, &names, &pools, &config)?;
    let mut devices = Vec::new();
    let mut rx_rows: Vec<Vec<RxQueue<'_, P>>> = Vec::new();
    let mut tx_rows: Vec<Vec<TxQueue<'_, P>>> = Vec::new();
    for s in started {
        devices.push(s.device);
        rx_rows.push(s.rx.into_iter().collect());
        tx_rows.push(s.tx.into_iter().collect());
    }
    let mut irq_rows = Vec::new();
    if config.interrupts.is_some() {
        if let Some(e) = &env {
            // This thread pumps the simulator's clock; sleeping workers must not race it.
            e.sim.set_waits_advance_clock(false);
        }
        for (device, name) in devices.iter().zip(&names) {
            let irqs = device
                .enable_interrupts()
                .map_err(|e| AppError::from(e).context(name))?;
            match irqs.delivery {
                Delivery::MsiX { vectors } => out(&format!(
                    "[irq] {name}: MSI-X, {vectors} vectors (one per Rx queue, one for link)"
                )),
                Delivery::Single => log::warn!(
                    "{name}: no MSI-X, one interrupt (MSI or INTx) for every queue: queues \
                     share it, so a wake-up may come late"
                ),
            }
            irq_rows.push(irqs.queues.into_iter().collect::<Vec<_>>());
        }
    }
    // With interrupts every Rx queue has a thread of its own: a thread sleeps on one vector.
    let threaded = queues > 1 || !irq_rows.is_empty();
    let lanes = env.as_ref().map_or(1, |e| e.sim.lanes());
    // With lanes: each worker pumps its own lane, whose sources offer one batch per port per
    // pump, as the single thread does; the main thread only prints and watches the time.
    let peer_bps = u64::from(all.sim_peer_gbps) * 1_000_000_000;
    let lane_peer = (lanes > 1).then(|| {
        let e = env.as_ref().expect("lanes only in sim mode");
        e.attach_lane_peer(64, args.batch as u64, usize::from(all.frame_size), peer_bps)
    });
    let peer = env.as_ref().filter(|_| lanes == 1).map(|e| {
        // Single thread: at most one batch per port per pump, so a loop that keeps up loses
        // nothing. Threads: the main thread pumps every 100 µs of wall time (the simulator's
        // time slice) and may offer one batch per queue per slice; more would only keep the
        // simulator busy generating frames that get dropped, holding its lock.
        let flows = if queues > 1 { 64 } else { 1 };
        let burst = args.batch as u64 * u64::from(queues);
        e.attach_forwarding_peer_sized(flows, burst, usize::from(all.frame_size), peer_bps)
    });
    let mut pacer = if lanes > 1 {
        Pacer::real()
    } else {
        make_pacer(
            env.as_ref(),
            args,
            args.batch as u64 * wire_time_ps(usize::from(all.frame_size)),
            threaded,
        )
    };
    let lane_pacers: Vec<LanePacer> = match &env {
        Some(e) if lanes > 1 => (0..lanes)
            .map(|k| LanePacer::new(e.sim.clone(), k, max_sim_step(false)))
            .collect(),
        _ => Vec::new(),
    };
    // Chains come in batches of at most MAX_CHAIN_BATCH.
    let batch = if jumbo {
        args.batch.min(MAX_CHAIN_BATCH)
    } else {
        args.batch
    };
    let limits = Limits::from_args(args);
    let mut printer = RatePrinter::new(names.clone(), pacer.elapsed());
    let totals = Arc::new(IrqTotals::new(irq_rows.iter().map(Vec::len).sum()));
    if !irq_rows.is_empty() {
        printer = printer.with_interrupts(totals.clone());
    }
    let (wall, cpu) = (Instant::now(), cpu_time());
    // The queues come back from the loops and are dropped only after the summary: tearing
    // them down takes (virtual) time during which the peer keeps sending.
    let queues = if !irq_rows.is_empty() {
        let run = if jumbo {
            run_interrupts::<P, Jumbo<'_>>
        } else {
            run_interrupts::<P, Plain<'_>>
        };
        run(
            rx_rows,
            tx_rows,
            irq_rows,
            &devices,
            &mut pacer,
            &mut printer,
            limits,
            batch,
            &totals,
        )
    } else if threaded {
        let run = if jumbo {
            run_threaded::<P, Jumbo<'_>>
        } else {
            run_threaded::<P, Plain<'_>>
        };
        run(
            rx_rows,
            tx_rows,
            lane_pacers,
            &devices,
            &mut pacer,
            &mut printer,
            limits,
            batch,
        )
    } else {
        let mut rx: Vec<_> = rx_rows.into_iter().flatten().collect();
        let mut tx: Vec<_> = tx_rows.into_iter().flatten().collect();
        let run = if jumbo {
            run_single::<P, Jumbo<'_>>
        } else {
            run_single::<P, Plain<'_>>
        };
        run(
            &mut rx,
            &mut tx,
            &devices,
            &mut pacer,
            &mut printer,
            limits,
            batch,
        );
        vec![(rx, tx)]
    };
    out(&cpu_line(cpu_time().saturating_sub(cpu), wall.elapsed()));
    if totals.queues() > 0 {
        let (sum, _) = totals.sum();
        out(&format!(
            "[irq] total: {} interrupts, {} wake-ups, {} sleeps, {} timeouts, switches to \
             polling {} / to interrupts {}",
            sum.interrupts,
            sum.wake_ups,
            sum.sleeps,
            sum.timeouts,
            sum.to_polling,
            sum.to_interrupts
        ));
    }
    let peer = peer.or_else(|| lane_peer.as_deref().map(sum_counters));
    report(&pacer, &names, &devices, peer.as_deref(), args.json);
    // Tear down (queues first), then report what the simulator saw, violations included.
    drop(queues);
    for device in &devices {
        if config.interrupts.is_some() {
            device.disable_interrupts();
        }
    }
    drop(devices);
    if let Some(env) = &env {
        env.log_diagnostics(&names);
    }
    Ok(())
}

/// Everything in one thread: pump the simulator, forward one batch each way, now and then
/// look at the clock. Deterministic in sim mode with a virtual clock.
fn run_single<'a, P: Platform, F: Forwarding<'a, P>>(
    rx: &mut [RxQueue<'a, P>],
    tx: &mut [TxQueue<'a, P>],
    devices: &[Device<P>],
    pacer: &mut Pacer,
    printer: &mut RatePrinter,
    limits: Limits,
    batch_size: usize,
) {
    let mut fwd = F::new();
    let mut forwarded = 0u64;
    let mut iteration = 0u64;
    // Device d forwards to device d + 1: rotate the Tx queues once so that pairs line up and
    // the loop needs no division per batch (rotated back below).
    tx.rotate_left(1);
    // A round of full batches cannot pass the packet limit: no per-batch check needed.
    let full_round = (batch_size as u64).saturating_mul(rx.len() as u64);
    loop {
        pacer.tick();
        let full = limits.remaining(forwarded) >= full_round;
        for (rx, tx) in rx.iter_mut().zip(tx.iter_mut()) {
            let max = if full {
                batch_size
            } else {
                (batch_size as u64).min(limits.remaining(forwarded)) as usize
            };
            forwarded += fwd.forward(rx, tx, max).1 as u64;
        }
        iteration += 1;
        if limits.remaining(forwarded) == 0 {
            break;
        }
        if iteration.is_multiple_of(CLOCK_CHECK_INTERVAL)
            && time_up_after_printing(pacer, &limits, printer, devices)
        {
            break;
        }
    }
    tx.rotate_right(1);
}

/// The lanes' peer counters added up.
fn sum_counters(lanes: &[Arc<PeerCounters>]) -> Arc<PeerCounters> {
    let sum = PeerCounters::new();
    for c in lanes {
        let (sent, received, corrupted, lost, reordered) = c.snapshot();
        sum.sent.fetch_add(sent, Ordering::Relaxed);
        sum.received.fetch_add(received, Ordering::Relaxed);
        sum.corrupted.fetch_add(corrupted, Ordering::Relaxed);
        sum.lost.fetch_add(lost, Ordering::Relaxed);
        sum.reordered.fetch_add(reordered, Ordering::Relaxed);
    }
    sum
}

/// One worker thread per queue index (queue q of every device); this thread pumps the
/// simulator (unless `lane_pacers` has a pacer per worker: then worker q pumps lane q of a
/// simulator with lanes), prints and decides when to stop.
#[allow(clippy::too_many_arguments)]
fn run_threaded<'a, P: Platform, F: Forwarding<'a, P>>(
    rx_rows: Vec<Vec<RxQueue<'a, P>>>,
    tx_rows: Vec<Vec<TxQueue<'a, P>>>,
    lane_pacers: Vec<LanePacer>,
    devices: &[Device<P>],
    pacer: &mut Pacer,
    printer: &mut RatePrinter,
    limits: Limits,
    batch_size: usize,
) -> Vec<QueueGroup<'a, P>> {
    let done = AtomicBool::new(false);
    // Packets still allowed to be forwarded (only with --packets): workers reserve from it.
    let budget = AtomicU64::new(limits.packets.unwrap_or(u64::MAX));
    let forwarded = AtomicU64::new(0);
    // Transpose: per queue index, that queue of every device.
    let mut rx_iters: Vec<_> = rx_rows.into_iter().map(Vec::into_iter).collect();
    let mut tx_iters: Vec<_> = tx_rows.into_iter().map(Vec::into_iter).collect();
    let mut groups = Vec::new();
    loop {
        let rx: Vec<_> = rx_iters.iter_mut().filter_map(Iterator::next).collect();
        let tx: Vec<_> = tx_iters.iter_mut().filter_map(Iterator::next).collect();
        if rx.is_empty() {
            break;
        }
        groups.push((rx, tx));
    }
    let limited = limits.packets.is_some();
    let has_lanes = !lane_pacers.is_empty();
    let mut lane_pacers = lane_pacers.into_iter();
    std::thread::scope(|scope| {
        let mut workers = Vec::new();
        for (mut rx, mut tx) in groups {
            let (done, budget, forwarded) = (&done, &budget, &forwarded);
            let mut lane = lane_pacers.next();
            workers.push(scope.spawn(move || {
                let mut fwd = F::new();
                'run: while !done.load(Ordering::Relaxed) {
                    if let Some(p) = lane.as_mut() {
                        p.tick();
                    }
                    let ports = tx.len();
                    for (d, rx) in rx.iter_mut().enumerate() {
                        let tx = &mut tx[(d + 1) % ports];
                        if !limited {
                            fwd.forward(rx, tx, batch_size);
                            continue;
                        }
                        let Ok(before) =
                            budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                                (b > 0).then(|| b - b.min(batch_size as u64))
                            })
                        else {
                            // The budget is spent (or held by a worker that will send it or
                            // give it back): stop pumping this lane, whose frames would only
                            // be dropped until the main thread sees the end.
                            break 'run;
                        };
                        let reserved = before.min(batch_size as u64);
                        let sent = fwd.forward(rx, tx, reserved as usize).1 as u64;
                        budget.fetch_add(reserved - sent, Ordering::Relaxed);
                        forwarded.fetch_add(sent, Ordering::Relaxed);
                    }
                }
                (rx, tx)
            }));
        }
        // With lanes and no packet limit nothing needs this thread between two lines.
        let interval = if has_lanes && !limited {
            LANES_SUPERVISE_INTERVAL
        } else {
            Duration::from_millis(1)
        };
        supervise_every(pacer, &limits, printer, devices, &forwarded, interval);
        done.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().expect("a forwarding thread panicked"))
            .collect()
    })
}

/// With interrupts: one worker per Rx queue of every device. Worker (d, q) receives on device
/// d's queue q, sends on device d + 1's queue q (its only user) and sleeps on device d's vector
/// q as its interrupt handle decides; this thread pumps the simulator, prints and decides when
/// to stop.
#[allow(clippy::too_many_arguments)]
fn run_interrupts<'a, P: InterruptPlatform, F: Forwarding<'a, P>>(
    rx_rows: Vec<Vec<RxQueue<'a, P>>>,
    tx_rows: Vec<Vec<TxQueue<'a, P>>>,
    irq_rows: Vec<Vec<QueueInterrupt<P>>>,
    devices: &[Device<P>],
    pacer: &mut Pacer,
    printer: &mut RatePrinter,
    limits: Limits,
    batch_size: usize,
    totals: &IrqTotals,
) -> Vec<QueueGroup<'a, P>> {
    let ports = rx_rows.len();
    let mut tx_slots: Vec<Vec<Option<TxQueue<'a, P>>>> = tx_rows
        .into_iter()
        .map(|row| row.into_iter().map(Some).collect())
        .collect();
    let mut jobs = Vec::new();
    for (d, (rx_row, irq_row)) in rx_rows.into_iter().zip(irq_rows).enumerate() {
        for (q, (rx, irq)) in rx_row.into_iter().zip(irq_row).enumerate() {
            if let Some(tx) = tx_slots[(d + 1) % ports][q].take() {
                jobs.push((rx, tx, irq));
            }
        }
    }
    let done = AtomicBool::new(false);
    let budget = AtomicU64::new(limits.packets.unwrap_or(u64::MAX));
    let forwarded = AtomicU64::new(0);
    let limit = limits.packets.unwrap_or(u64::MAX);
    let supervisor = std::thread::current();
    std::thread::scope(|scope| {
        let mut workers = Vec::new();
        for (i, (mut rx, mut tx, mut irq)) in jobs.into_iter().enumerate() {
            let (done, budget, forwarded) = (&done, &budget, &forwarded);
            let supervisor = supervisor.clone();
            workers.push(scope.spawn(move || {
                let mut fwd = F::new();
                let mut iteration = 0u64;
                while !done.load(Ordering::Relaxed) {
                    let Ok(before) =
                        budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                            (b > 0).then(|| b - b.min(batch_size as u64))
                        })
                    else {
                        break;
                    };
                    let reserved = before.min(batch_size as u64);
                    let (got, sent) = fwd.forward(&mut rx, &mut tx, reserved as usize);
                    budget.fetch_add(reserved - sent as u64, Ordering::Relaxed);
                    let total = forwarded.fetch_add(sent as u64, Ordering::Relaxed) + sent as u64;
                    if sent > 0 && total >= limit {
                        supervisor.unpark(); // the --packets limit: stop now, not at its next look
                    }
                    iteration += 1;
                    match irq.after_rx(got, reserved as usize) {
                        Ok(slept) => {
                            if slept || iteration.is_multiple_of(CLOCK_CHECK_INTERVAL) {
                                totals.publish(i, &irq.counters(), irq.polling());
                            }
                        }
                        Err(e) => {
                            log::error!("queue {}: {e}", rx.id());
                            request_stop();
                            break;
                        }
                    }
                }
                totals.publish(i, &irq.counters(), irq.polling());
                (vec![rx], vec![tx])
            }));
        }
        // Ctrl-C is seen within 100 ms, as by the sleeping workers; the --packets limit at once
        // (the worker that reaches it unparks this thread).
        supervise_every(
            pacer,
            &limits,
            printer,
            devices,
            &forwarded,
            Duration::from_millis(100),
        );
        done.store(true, Ordering::Relaxed);
        for device in devices {
            device.wake_sleepers();
        }
        workers
            .into_iter()
            .map(|w| w.join().expect("a forwarding thread panicked"))
            .collect()
    })
}
