//! A bare-metal x86-64 program (no operating system) that drives two simulated 82599 ports
//! with the unchanged `ixgbe-core`: booted by QEMU through PVH, it finds the ports on PCI,
//! gives the core a [`platform::BareMetal`] for each, and forwards frames from port 0 to port 1
//! (and back, as ixgbe-fwd does), incrementing byte 1 of each, for the host peer to check.
//!
//! Command line (`-append`): `frames=N` (forward N frames, default 1000), `seconds=S` (give up
//! after S seconds of forwarding, default 30). The verdict is a line `BAREMETAL: PASS` or
//! `BAREMETAL: FAIL why` on COM1 and QEMU's exit status (see `exit`).
#![no_std]
#![no_main]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

mod boot;
mod bootinfo;
mod exit;
mod paging;
mod pci;
mod platform;
mod port;
mod serial;
mod time;

use core::fmt;
use core::time::Duration;

use ixgbe_core::{heapless, Config, Device, Mempool, Packet, Started, DEFAULT_BUF_SIZE};
use platform::BareMetal;

/// Buffers per port's pool (as ixgbe-fwd: rings of 512 plus room for frames in flight).
const POOL_ENTRIES: u32 = 4096;
/// Private memory (the pools' tables, the rings' side arrays); the rest of RAM is DMA memory.
const PRIVATE_BYTES: usize = 16 << 20;
const LINK_TIMEOUT: Duration = Duration::from_secs(10);
const BATCH: usize = 32;

/// Why the run failed.
enum Failure {
    Setup(&'static str),
    Driver(&'static str, ixgbe_core::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Setup(why) => f.write_str(why),
            Failure::Driver(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl From<&'static str> for Failure {
    fn from(why: &'static str) -> Self {
        Failure::Setup(why)
    }
}

/// Called by the boot code in long mode with the physical address of `hvm_start_info`.
#[no_mangle]
extern "C" fn kmain(start_info: u32) -> ! {
    serial::init();
    println!("BAREMETAL: ixgbe-core on bare metal, no operating system");
    let code = match run(start_info) {
        Ok(()) => {
            println!("BAREMETAL: PASS");
            exit::SUCCESS
        }
        Err(e) => {
            println!("BAREMETAL: FAIL {e}");
            exit::FAILURE
        }
    };
    exit::qemu_exit(code)
}

fn run(start_info: u32) -> Result<(), Failure> {
    let info = bootinfo::read(start_info)?;
    let frames = bootinfo::arg(info.cmdline, "frames", 1000);
    let seconds = bootinfo::arg(info.cmdline, "seconds", 30);
    println!(
        "BAREMETAL: cmdline '{}': frames={frames} seconds={seconds}",
        info.cmdline
    );
    let tsc = time::calibrate()?;
    println!("BAREMETAL: TSC {tsc} ticks/ms (calibrated against the PIT)");

    extern "C" {
        static __image_end: u8;
    }
    let image_end = (&raw const __image_end) as u64;
    let start = info.ram.0.max(image_end).next_multiple_of(2 << 20);
    let end = info.ram.1.min(4 << 30) & !0xFFF;
    if end <= start + PRIVATE_BYTES as u64 {
        return Err("too little RAM for the frame arenas".into());
    }
    platform::init_memory(start as usize, PRIVATE_BYTES, end as usize);
    println!(
        "BAREMETAL: RAM {:#x}..{:#x}; private {start:#x}+{PRIVATE_BYTES:#x}, DMA up to {end:#x}",
        info.ram.0, info.ram.1
    );

    let functions = pci::find(0x8086, 0x10FB);
    if functions.len() != 2 {
        println!("BAREMETAL: found {} functions 8086:10fb", functions.len());
        return Err("expected two 82599 functions (8086:10fb) on PCI bus 0".into());
    }
    let mut ports: heapless::Vec<BareMetal, 2> = heapless::Vec::new();
    for &f in &functions {
        let bar = pci::bar0_64(f)?;
        paging::map_mmio(bar.base, bar.len)?;
        pci::enable(f);
        println!(
            "BAREMETAL: 00:{:02x}.{} 8086:10fb BAR0 {:#x} ({} KiB), memory space and bus master on",
            f.dev,
            f.func,
            bar.base,
            bar.len >> 10
        );
        // SAFETY: BAR0 of this function, identity-mapped uncached just above, decoding on, and
        // nothing else in this program uses it.
        let p = unsafe { BareMetal::new(bar.base as usize, bar.len as usize, f.ids().1) };
        let _ = ports.push(p);
    }

    let pools = [[pool(&ports[0])?], [pool(&ports[1])?]];
    let config = Config::default();
    let t0 = time::rdtsc();
    let mut started: heapless::Vec<Started<'_, BareMetal>, 2> = heapless::Vec::new();
    for (p, pools) in ports.iter().zip(&pools) {
        let s = Device::init(p.clone(), &config, pools)
            .map_err(|e| Failure::Driver("Device::init", e))?;
        let _ = started.push(s);
    }
    println!(
        "BAREMETAL: both ports initialised in {} ms",
        time::ms_since(t0)
    );
    for (i, s) in started.iter().enumerate() {
        let link = s
            .device
            .wait_for_link(LINK_TIMEOUT)
            .map_err(|e| Failure::Driver("wait_for_link", e))?;
        let mac = s.device.mac();
        println!(
            "BAREMETAL: port {i} link up at {} Mbit/s, MAC {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            link.speed.map_or(0, |s| s.mbit()),
            mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]
        );
    }
    println!("BAREMETAL: forwarding {frames} frames (up to {seconds} s)");
    let [a, b] = &mut started[..] else {
        return Err("two ports".into());
    };
    let t1 = time::rdtsc();
    let counts = forward(a, b, frames, Duration::from_secs(seconds));
    let ms = time::ms_since(t1).max(1);
    println!(
        "BAREMETAL: forwarded port 0 -> 1: {}, port 1 -> 0: {}, dropped (Tx ring full): {} in {ms} ms",
        counts.to1, counts.to0, counts.dropped
    );
    // Let both ports send what they still hold (bounded), so their counters are final.
    let drain = time::deadline(Duration::from_secs(1));
    while a.tx[0].in_flight() + b.tx[0].in_flight() > 0 {
        if time::passed(drain) {
            return Err("frames still in the Tx rings 1 s after forwarding ended".into());
        }
        a.tx[0].clean();
        b.tx[0].clean();
    }
    let stats = [a.device.stats(), b.device.stats()];
    for (i, s) in stats.iter().enumerate() {
        println!(
            "BAREMETAL: STATS port {i} rx_packets={} rx_bytes={} tx_packets={} tx_bytes={} rx_missed={} rx_dropped={} rx_crc_errors={}",
            s.rx_packets, s.rx_bytes, s.tx_packets, s.tx_bytes, s.rx_missed, s.rx_dropped, s.rx_crc_errors
        );
    }
    if counts.to1 + counts.to0 < frames {
        return Err("timed out before all frames were forwarded".into());
    }
    if stats[1].tx_packets != counts.to1 || stats[0].tx_packets != counts.to0 {
        return Err("the ports' Tx counters disagree with what was forwarded".into());
    }
    if stats[0].rx_packets < counts.to1 || stats[0].rx_crc_errors + stats[1].rx_crc_errors != 0 {
        return Err(
            "port 0 counted fewer frames received than were forwarded, or CRC errors".into(),
        );
    }
    // Tear down in order: the queues (each waits, bounded, for its ring to stop), then the
    // device (DRV_LOAD off); the pools go last, when `run` returns.
    for Started { device, rx, tx } in started {
        drop((rx, tx));
        drop(device);
    }
    println!("BAREMETAL: queues stopped, ports handed back");
    Ok(())
}

fn pool(p: &BareMetal) -> Result<Mempool<BareMetal>, Failure> {
    Mempool::new(p, POOL_ENTRIES, DEFAULT_BUF_SIZE).map_err(|e| Failure::Driver("Mempool::new", e))
}

struct Counts {
    to1: u64,
    to0: u64,
    dropped: u64,
}

/// Forwards between the ports until `frames` went through (both directions together, as
/// `ixgbe-fwd --packets`) or `limit` passed.
fn forward<'a>(
    a: &mut Started<'a, BareMetal>,
    b: &mut Started<'a, BareMetal>,
    frames: u64,
    limit: Duration,
) -> Counts {
    let deadline = time::deadline(limit);
    let mut batch: heapless::Vec<Packet<'a>, BATCH> = heapless::Vec::new();
    let mut c = Counts {
        to1: 0,
        to0: 0,
        dropped: 0,
    };
    let mut iteration = 0u64;
    while c.to1 + c.to0 < frames {
        for dir in 0..2 {
            let left = (frames - c.to1 - c.to0).min(BATCH as u64) as usize;
            let (rx, tx) = if dir == 0 {
                (&mut a.rx[0], &mut b.tx[0])
            } else {
                (&mut b.rx[0], &mut a.tx[0])
            };
            if left == 0 {
                break;
            }
            let got = rx.rx_batch(&mut batch, left);
            if got == 0 {
                tx.clean();
                continue;
            }
            for packet in batch.iter_mut() {
                if let Some(byte) = packet.get_mut(1) {
                    *byte = byte.wrapping_add(1);
                }
            }
            let sent = tx.tx_batch(&mut batch) as u64;
            c.dropped += got as u64 - sent;
            batch.clear();
            if dir == 0 {
                c.to1 += sent;
            } else {
                c.to0 += sent;
            }
        }
        iteration += 1;
        if iteration.is_multiple_of(1024) && time::passed(deadline) {
            break;
        }
    }
    c
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("BAREMETAL: FAIL panic: {info}");
    exit::qemu_exit(exit::FAILURE)
}
