//! The cable between the TAP device and ixgbe-sim's port: every frame the host kernel sends on
//! the TAP device goes out as one datagram on the UDP wire, and every datagram ixgbe-sim sends
//! is written to the TAP device as a received frame. Two threads, one per direction.

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Smallest Ethernet frame without FCS: shorter frames are padded, as a NIC does
/// (HLREG0.TXPADEN on the 82599) before they reach the cable.
const MIN_FRAME: usize = 60;
/// Largest frame: jumbo frames up to 9.5 KB fit (the TAP device's MTU is 1500 anyway).
const MAX_FRAME: usize = 16 * 1024;

/// What crossed the bridge, as the wire's far end counts it.
#[derive(Debug, Default)]
pub struct Counters {
    /// Frames (and bytes) ixgbe-sim sent, written to the TAP device.
    pub rx_frames: AtomicU64,
    /// See `rx_frames`.
    pub rx_bytes: AtomicU64,
    /// Frames (and bytes) the kernel sent on the TAP device, sent to ixgbe-sim.
    pub tx_frames: AtomicU64,
    /// See `tx_frames`.
    pub tx_bytes: AtomicU64,
    /// Frames lost on the way (a failed send or write), counted and dropped like a bad cable.
    pub dropped: AtomicU64,
}

/// Starts both directions; they run until the process exits.
pub fn start(tap: File, wire: UdpSocket, sim: SocketAddrV4) -> Result<Arc<Counters>, String> {
    let counters = Arc::new(Counters::default());
    let tap = Arc::new(tap);
    let wire_rx = wire.try_clone().map_err(|e| format!("clone wire: {e}"))?;
    wire_rx
        .set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| e.to_string())?;
    let (c, t) = (counters.clone(), tap.clone());
    std::thread::Builder::new()
        .name("tap-to-wire".into())
        .spawn(move || tap_to_wire(&t, &wire, sim, &c))
        .map_err(|e| format!("spawn: {e}"))?;
    let (c, t) = (counters.clone(), tap);
    std::thread::Builder::new()
        .name("wire-to-tap".into())
        .spawn(move || wire_to_tap(&wire_rx, &t, &c))
        .map_err(|e| format!("spawn: {e}"))?;
    Ok(counters)
}

fn tap_to_wire(mut tap: &File, wire: &UdpSocket, sim: SocketAddrV4, c: &Counters) {
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let n = match tap.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                println!("PEER: tap read: {e} (the bridge stops)");
                return;
            }
        };
        let len = n.max(MIN_FRAME);
        buf[n..len].fill(0);
        match wire.send_to(&buf[..len], sim) {
            Ok(_) => {
                c.tx_frames.fetch_add(1, Ordering::Relaxed);
                c.tx_bytes.fetch_add(len as u64, Ordering::Relaxed);
            }
            // ConnectionRefused: nothing listened yet (ixgbe-sim starting), the frame is lost
            // as on a cable with nobody at the far end; anything else is counted the same way.
            Err(_) => {
                c.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn wire_to_tap(wire: &UdpSocket, mut tap: &File, c: &Counters) {
    let mut buf = vec![0u8; MAX_FRAME];
    loop {
        let n = match wire.recv_from(&mut buf) {
            Ok((n, _)) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock
                        | ErrorKind::TimedOut
                        | ErrorKind::Interrupted
                        | ErrorKind::ConnectionRefused
                ) =>
            {
                continue
            }
            Err(e) => {
                println!("PEER: wire recv: {e} (the bridge stops)");
                return;
            }
        };
        c.rx_frames.fetch_add(1, Ordering::Relaxed);
        c.rx_bytes.fetch_add(n as u64, Ordering::Relaxed);
        // The kernel takes any frame of at least an Ethernet header; what it rejects (a runt
        // from a broken sender) is counted here and dropped.
        if tap.write(&buf[..n]).is_err() {
            c.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
