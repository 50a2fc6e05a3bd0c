//! `ixgbe-pcap <DEV> <FILE>`: writes the frames a device receives to a pcap file (microsecond
//! timestamps, Ethernet link type) that tcpdump and Wireshark read.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use apps::sim::wire_time_ps;
use apps::{
    make_pacer, make_pools, open_devices, report, run_main, start_devices, time_up_after_printing,
    AppError, CommonArgs, DevSpec, Limits, Opened, RatePrinter, SimEnv, CLOCK_CHECK_INTERVAL,
    MAX_BATCH,
};
use clap::Parser;
use ixgbe_core::heapless;
use ixgbe_core::{Packet, Platform, RxQueue};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::Endianness;

/// Capture the frames an 82599 port (or a simulated one: `sim`) receives into a pcap file.
#[derive(Debug, Parser)]
#[command(name = "ixgbe-pcap", version)]
struct Args {
    /// The device: a PCI address (0000:03:00.0) or `sim`.
    dev: DevSpec,
    /// The pcap file to write (replaced if it exists).
    file: PathBuf,
    /// Stop after this many frames (same as --packets).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    run_main(|| run(&args))
}

type Writer = PcapWriter<BufWriter<File>>;

fn create_writer(path: &Path) -> Result<Writer, AppError> {
    let file = File::create(path)
        .map_err(|e| AppError::new(format!("cannot create {}: {e}", path.display())))?;
    let header = PcapHeader {
        endianness: Endianness::Little,
        ..PcapHeader::default()
    };
    PcapWriter::with_header(BufWriter::with_capacity(1 << 20, file), header)
        .map_err(|e| AppError::new(format!("cannot write to {}: {e}", path.display())))
}

fn run(args: &Args) -> Result<(), AppError> {
    // Open the file first: a bad path fails before any device is touched.
    let writer = create_writer(&args.file)?;
    match open_devices(&[args.dev])? {
        Opened::Sim {
            env,
            platforms,
            names,
        } => capture(platforms, names, Some(env), writer, args),
        Opened::Linux { platforms, names } => capture(platforms, names, None, writer, args),
    }
}

type Batch<'a> = heapless::Vec<Packet<'a>, MAX_BATCH>;

fn capture<P: Platform>(
    platforms: Vec<P>,
    names: Vec<String>,
    env: Option<SimEnv>,
    mut writer: Writer,
    args: &Args,
) -> Result<(), AppError> {
    let common = &args.common;
    let pools = make_pools(&platforms, &names, usize::from(common.queues))?;
    let started = start_devices(&platforms, &names, &pools, common.queues)?;
    let mut devices = Vec::new();
    let mut rx: Vec<RxQueue<'_, P>> = Vec::new();
    for s in started {
        devices.push(s.device);
        rx.extend(s.rx);
        // Nothing is sent: the Tx queues go away.
        drop(s.tx);
    }
    let peer = env.as_ref().map(SimEnv::attach_capture_peer);
    let mut pacer = make_pacer(
        env.as_ref(),
        common,
        common.batch as u64 * wire_time_ps(60),
        false,
    );
    let mut limits = Limits::from_args(common);
    limits.packets = match (limits.packets, args.count) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let start_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let mut printer = RatePrinter::new(names.clone(), pacer.elapsed());
    let write_error =
        |e: pcap_file::PcapError| AppError::new(format!("writing {}: {e}", args.file.display()));

    // All queues are polled round-robin by this one thread, so the file has a single writer.
    let mut batch = Batch::new();
    let mut captured = 0u64;
    let mut iteration = 0u64;
    'run: loop {
        pacer.tick();
        for queue in rx.iter_mut() {
            let max = (common.batch as u64).min(limits.remaining(captured)) as usize;
            if queue.rx_batch(&mut batch, max) == 0 {
                continue;
            }
            let timestamp = start_unix + pacer.elapsed();
            for packet in batch.iter() {
                writer
                    .write_packet(&PcapPacket::new(timestamp, packet.len() as u32, packet))
                    .map_err(write_error)?;
            }
            captured += batch.len() as u64;
            batch.clear();
            if limits.remaining(captured) == 0 {
                break 'run;
            }
        }
        iteration += 1;
        if iteration.is_multiple_of(CLOCK_CHECK_INTERVAL)
            && time_up_after_printing(&pacer, &limits, &mut printer, &devices)
        {
            break;
        }
    }
    writer
        .into_writer()
        .flush()
        .map_err(|e| AppError::new(format!("writing {}: {e}", args.file.display())))?;
    report(&pacer, &names, &devices, peer.as_deref(), common.json);
    drop(rx);
    drop(devices);
    if let Some(env) = &env {
        env.log_diagnostics(&names);
    }
    Ok(())
}
