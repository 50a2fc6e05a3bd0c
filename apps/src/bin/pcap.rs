//! `ixgbe-pcap <DEV> <FILE|->`: writes the frames a device receives to a pcap file (Ethernet
//! link type, microsecond or nanosecond timestamps) that tcpdump and Wireshark read, or streams
//! them to stdout (`-`) for `tshark -i -` or `tcpdump -r -`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use ixgbe_core::heapless;
use ixgbe_core::{Packet, Platform, RxQueue};
use ixgbe_tools::pcap::{Writer as PcapWriter, DEFAULT_SNAPLEN};
use ixgbe_tools::sim::wire_time_ps;
use ixgbe_tools::stats::{out, stdout_carries_data, stdout_closed};
use ixgbe_tools::{
    make_pacer, make_pools, open_devices, report, run_main, start_devices, time_up_after_printing,
    AppError, CommonArgs, DevSpec, Limits, Opened, RatePrinter, SimEnv, CLOCK_CHECK_INTERVAL,
    MAX_BATCH,
};

/// Capture the frames an 82599 port (or a simulated one: `sim`) receives into a pcap file, or
/// stream them to stdout with `-`. All queues are polled by one thread, the only writer.
#[derive(Debug, Parser)]
#[command(name = "ixgbe-pcap", version)]
struct Args {
    /// The device: a PCI address (0000:03:00.0) or `sim`.
    dev: DevSpec,
    /// The pcap file to write (replaced if it exists), or `-` for stdout (flushed after every
    /// batch; every other line then goes to stderr).
    file: PathBuf,
    /// Stop after this many frames (same as --packets).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Keep at most this many bytes of each frame (the record keeps the frame's real length).
    #[arg(long, default_value_t = DEFAULT_SNAPLEN, value_parser = clap::value_parser!(u32).range(14..=DEFAULT_SNAPLEN as i64))]
    snaplen: u32,
    /// Nanosecond timestamps (the pcap variant with magic 0xa1b23c4d) instead of microseconds.
    #[arg(long)]
    nanoseconds: bool,
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    args.common.configure_output("ixgbe-pcap");
    run_main(|| run(&args))
}

type Writer = PcapWriter<BufWriter<Box<dyn Write>>>;

/// Where the frames go, for messages: the file's name or "stdout".
fn target_name(args: &Args) -> String {
    if streaming(args) {
        "stdout".into()
    } else {
        args.file.display().to_string()
    }
}

fn streaming(args: &Args) -> bool {
    args.file.as_os_str() == "-"
}

fn create_writer(args: &Args) -> Result<Writer, AppError> {
    let inner: Box<dyn Write> = if streaming(args) {
        Box::new(io::stdout())
    } else {
        let path = &args.file;
        Box::new(
            File::create(path)
                .map_err(|e| AppError::new(format!("cannot create {}: {e}", path.display())))?,
        )
    };
    PcapWriter::new(
        BufWriter::with_capacity(1 << 20, inner),
        args.snaplen,
        args.nanoseconds,
    )
    .map_err(|e| AppError::new(format!("writing {}: {e}", target_name(args))))
}

fn run(args: &Args) -> Result<(), AppError> {
    if streaming(args) {
        if args.common.json {
            return Err(AppError::new(
                "--json needs stdout, which carries the capture with `-`: write to a file instead",
            ));
        }
        stdout_carries_data();
    }
    // Open the file first: a bad path fails before any device is touched.
    let writer = create_writer(args)?;
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
    let target = target_name(args);
    let stream = streaming(args);
    let captured_frames = ixgbe_tools::json::app_counter("captured_frames");
    let captured_bytes = ixgbe_tools::json::app_counter("captured_bytes");

    // All queues are polled round-robin by this one thread, so the file has a single writer.
    let mut batch = Batch::new();
    let mut captured = 0u64;
    let mut bytes = 0u64;
    let mut iteration = 0u64;
    let mut result: io::Result<()> = Ok(());
    'run: loop {
        pacer.tick();
        for queue in rx.iter_mut() {
            let max = (common.batch as u64).min(limits.remaining(captured)) as usize;
            if queue.rx_batch(&mut batch, max) == 0 {
                continue;
            }
            let timestamp = start_unix + pacer.elapsed();
            for packet in batch.iter() {
                match writer.write(timestamp, packet) {
                    Ok(kept) => bytes += kept as u64,
                    Err(e) => {
                        result = Err(e);
                        break 'run;
                    }
                }
                captured += 1;
            }
            batch.clear();
            // A stream is read live (`tshark -i -`): every batch goes out at once.
            if stream {
                if let Err(e) = writer.flush() {
                    result = Err(e);
                    break 'run;
                }
            }
            captured_frames.store(captured, Ordering::Relaxed);
            captured_bytes.store(bytes, Ordering::Relaxed);
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
    batch.clear();
    if result.is_ok() {
        result = writer.flush();
    }
    captured_frames.store(captured, Ordering::Relaxed);
    captured_bytes.store(bytes, Ordering::Relaxed);
    let failed = match result {
        // The reader went away (`| head -c`, tshark ended): the end of the run, not an error.
        Err(e) if stream && e.kind() == io::ErrorKind::BrokenPipe => {
            stdout_closed();
            None
        }
        Err(e) => Some(AppError::new(format!("writing {target}: {e}"))),
        Ok(()) => None,
    };
    out(&format!(
        "captured {captured} frames, {bytes} bytes{}",
        if stream {
            String::new()
        } else {
            format!(" to {target}")
        }
    ));
    report(&pacer, &names, &devices, peer.as_deref(), common.json);
    drop(rx);
    drop(devices);
    if let Some(env) = &env {
        env.log_diagnostics(&names);
    }
    failed.map_or(Ok(()), Err)
}
