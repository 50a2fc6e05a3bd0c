//! The forwarder's step: what `ixgbe-fwd` does per queue pair per loop, and what
//! `ixgbe-pktgen --sim-dut fwd` runs as its device under test.

use ixgbe_core::{heapless, Packet, Platform, RxQueue, TxQueue};

use crate::MAX_BATCH;

/// A batch of packets in flight through the program.
pub type Batch<'a> = heapless::Vec<Packet<'a>, MAX_BATCH>;

/// Receives up to `max` frames on `rx`, touches byte 1 of each, sends them on `tx`; frames the
/// Tx ring has no room for are dropped. Returns how many were received and how many sent.
#[inline(never)]
pub fn forward_batch<'a, P: Platform>(
    rx: &mut RxQueue<'a, P>,
    tx: &mut TxQueue<'a, P>,
    batch: &mut Batch<'a>,
    max: usize,
) -> (usize, usize) {
    let received = rx.rx_batch(batch, max);
    if received == 0 {
        // Idle: let the Tx side return what the device finished, so no buffer waits in the
        // ring for traffic that may never come.
        tx.clean();
        return (0, 0);
    }
    // Four packets per step: the loop's own compare and branch once per four.
    let mut quads = batch.chunks_exact_mut(4);
    for quad in &mut quads {
        for packet in quad {
            touch(packet);
        }
    }
    for packet in quads.into_remainder() {
        touch(packet);
    }
    let sent = tx.tx_batch(batch);
    batch.clear();
    (received, sent)
}

/// What the forwarder does to each packet: adds 1 to byte 1 (when there is one), so that the
/// benchmark pays for bringing the frame's first line into the cache, as a real program would.
#[inline(always)]
fn touch(packet: &mut Packet<'_>) {
    if let Some(byte) = packet.get_mut(1) {
        *byte = byte.wrapping_add(1);
    }
}
