//! `ixgbe-pktgen <DEV>`: sends UDP/IPv4 frames (valid IPv4 header checksum, a 64-bit sequence
//! number in the payload) as fast as the device takes them.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use apps::frame::{build_udp_frame, set_seq, Flow, MAX_FRAME, MIN_FRAME};
use apps::sim::wire_time_ps;
use apps::{
    make_pacer, make_pools, open_devices, report, run_main, start_devices, supervise,
    time_up_after_printing, AppError, CommonArgs, DevSpec, Limits, Opened, Pacer, RatePrinter,
    SimEnv, CLOCK_CHECK_INTERVAL, MAX_BATCH, POOL_ENTRIES,
};
use clap::Parser;
use ixgbe_core::heapless;
use ixgbe_core::{Device, Mempool, Packet, Platform, TxQueue, DEFAULT_BUF_SIZE};

/// Generate UDP/IPv4 traffic on an 82599 port (or a simulated one: `sim`).
#[derive(Debug, Parser)]
#[command(name = "ixgbe-pktgen", version)]
struct Args {
    /// The device: a PCI address (0000:03:00.0) or `sim`.
    dev: DevSpec,
    /// Frame size in bytes without FCS (60..=1514).
    #[arg(long, default_value_t = 60, value_parser = parse_size)]
    size: usize,
    /// Destination MAC address of the frames.
    #[arg(long, default_value = "02:00:00:00:00:02", value_parser = parse_mac)]
    dst_mac: [u8; 6],
    #[command(flatten)]
    common: CommonArgs,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let v: usize = s
        .parse()
        .map_err(|_| format!("{s:?} is not a whole number"))?;
    if (MIN_FRAME..=MAX_FRAME).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "the frame size must be from {MIN_FRAME} to {MAX_FRAME} bytes"
        ))
    }
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

fn run(args: &Args) -> Result<(), AppError> {
    match open_devices(&[args.dev])? {
        Opened::Sim {
            env,
            platforms,
            names,
        } => generate(platforms, names, Some(env), args),
        Opened::Linux { platforms, names } => generate(platforms, names, None, args),
    }
}

type Batch<'a> = heapless::Vec<Packet<'a>, MAX_BATCH>;

/// The flow of queue `q`: UDP source port 1000 + q (so a receiver can tell queues apart).
fn flow_for(queue: u16, src_mac: [u8; 6], dst_mac: [u8; 6]) -> Flow {
    Flow {
        dst_mac,
        src_mac,
        src_ip: [10, 0, 0, 1],
        dst_ip: [10, 0, 1, 1],
        src_port: 1000 + queue,
        dst_port: 2000,
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

/// One queue's sender: its pool, its sequence counter.
struct Sender<'a, P: Platform> {
    tx: TxQueue<'a, P>,
    pool: &'a Mempool<P>,
    batch: Batch<'a>,
    seq: u64,
    size: usize,
    /// Frames handed to the device (all queues), `"app"` of `--json`.
    generated: &'static AtomicU64,
}

impl<'a, P: Platform> Sender<'a, P> {
    /// Tops the batch up to `want` packets (new ones get the next sequence numbers), sends what
    /// the ring takes; the rest stays in the batch for next time, so no number is skipped.
    #[inline(never)]
    fn send(&mut self, want: usize) -> usize {
        let have = self.batch.len();
        if want > have {
            self.pool
                .alloc_batch(&mut self.batch, want - have, self.size);
            for packet in self.batch[have..].iter_mut() {
                set_seq(packet, self.seq);
                self.seq += 1;
            }
        }
        let sent = self.tx.tx_batch(&mut self.batch);
        self.generated.fetch_add(sent as u64, Ordering::Relaxed);
        sent
    }

    /// Packets allocated (numbered) but not sent yet.
    fn pending(&self) -> u64 {
        self.batch.len() as u64
    }
}

fn generate<P: Platform>(
    platforms: Vec<P>,
    names: Vec<String>,
    env: Option<SimEnv>,
    args: &Args,
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
    let started = start_devices(&platforms, &names, &rx_pools, queues)?;
    let mut devices = Vec::new();
    let mut txs = Vec::new();
    for s in started {
        devices.push(s.device);
        txs.extend(s.tx);
        // The Rx queues stay enabled; with Drop_En frames nobody reads are simply dropped.
        drop(s.rx);
    }
    let src_mac = devices[0].mac();
    let mut senders: Vec<Sender<'_, P>> = txs
        .into_iter()
        .zip(&tx_pools)
        .enumerate()
        .map(|(q, (tx, pool))| {
            prefill(pool, args.size, &flow_for(q as u16, src_mac, args.dst_mac));
            Sender {
                tx,
                pool,
                batch: Batch::new(),
                seq: 0,
                size: args.size,
                generated: apps::json::app_counter("generated"),
            }
        })
        .collect();
    let threaded = senders.len() > 1;
    let peer = env.as_ref().map(SimEnv::attach_generator_peer);
    let mut pacer = make_pacer(
        env.as_ref(),
        common,
        common.batch as u64 * wire_time_ps(args.size),
        threaded,
    );
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
        );
        Vec::new()
    };
    // Give the device a moment to put the last frames on the wire.
    for _ in 0..4 {
        pacer.tick();
    }
    report(&pacer, &names, &devices, peer.as_deref(), common.json);
    drop(senders);
    drop(devices);
    if let Some(env) = &env {
        env.log_diagnostics(&names);
    }
    Ok(())
}

fn run_single<P: Platform>(
    sender: &mut Sender<'_, P>,
    devices: &[Device<P>],
    pacer: &mut Pacer,
    printer: &mut RatePrinter,
    limits: Limits,
    batch_size: usize,
) {
    let mut sent = 0u64;
    let mut iteration = 0u64;
    loop {
        pacer.tick();
        // Number only as many packets as the limit still allows.
        let allowed = limits.remaining(sent).saturating_sub(sender.pending());
        let want = sender.pending() + allowed.min(batch_size as u64 - sender.pending());
        sent += sender.send(want as usize) as u64;
        iteration += 1;
        if limits.remaining(sent) == 0 {
            break;
        }
        if iteration.is_multiple_of(CLOCK_CHECK_INTERVAL)
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
) {
    let done = AtomicBool::new(false);
    // Sequence numbers still to hand out (only with --packets): each sender reserves from it.
    let budget = AtomicU64::new(limits.packets.unwrap_or(u64::MAX));
    let sent_total = AtomicU64::new(0);
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
                    let sent = sender.send(want as usize);
                    sent_total.fetch_add(sent as u64, Ordering::Relaxed);
                }
            });
        }
        supervise(pacer, &limits, printer, devices, &sent_total);
        done.store(true, Ordering::Relaxed);
    });
}
