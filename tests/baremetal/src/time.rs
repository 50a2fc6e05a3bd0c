//! Time from the TSC, calibrated once against the 8254 PIT (channel 2, gated through port
//! 0x61, as Linux's `pit_calibrate_tsc` does). Under TCG QEMU's TSC follows the host's and its
//! PIT follows the host clock, so both measure real time.

use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;

use crate::port::{inb, outb};

/// The PIT's input clock, Hz.
const PIT_HZ: u64 = 1_193_182;
/// Calibration interval: 50 ms (the largest count, 65535, is 54.9 ms).
const CALIBRATE_MS: u64 = 50;

static TSC_PER_MS: AtomicU64 = AtomicU64::new(0);

/// Reads the time-stamp counter.
pub fn rdtsc() -> u64 {
    // SAFETY: `rdtsc` only reads the counter (CR4.TSD is 0: allowed at every privilege level).
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Measures TSC ticks per millisecond. Fails when the PIT never counts down.
pub fn calibrate() -> Result<u64, &'static str> {
    let count = PIT_HZ * CALIBRATE_MS / 1000;
    // SAFETY: ports 0x61 (gate of channel 2; the speaker stays off) and 0x42/0x43 (PIT
    // channel 2) belong to this program; they have no memory effect.
    unsafe {
        outb(0x61, (inb(0x61) & !0x02) | 0x01);
        outb(0x43, 0xB0); // channel 2, lobyte/hibyte, mode 0 (interrupt on terminal count)
        outb(0x42, count as u8);
    }
    // Read before the count starts (with its high byte), so the interval measured is never
    // shorter than the real one: delays come out long, never short.
    let start = rdtsc();
    // SAFETY: as above.
    unsafe { outb(0x42, (count >> 8) as u8) };
    // Bounded: OUT2 (bit 5 of port 0x61) rises when the count reaches zero.
    for _ in 0..50_000_000u32 {
        // SAFETY: as above; reading port 0x61 has no side effect.
        if unsafe { inb(0x61) } & 0x20 != 0 {
            let per_ms = (rdtsc() - start) / CALIBRATE_MS;
            if per_ms == 0 {
                return Err("TSC does not advance");
            }
            TSC_PER_MS.store(per_ms, Ordering::Relaxed);
            return Ok(per_ms);
        }
    }
    Err("PIT channel 2 never reached terminal count")
}

/// TSC ticks in `d` (at least one).
fn ticks(d: Duration) -> u64 {
    let per_ms = TSC_PER_MS.load(Ordering::Relaxed);
    let t = u128::from(per_ms) * d.as_nanos() / 1_000_000;
    (t.min(u128::from(u64::MAX)) as u64).max(1)
}

/// Busy-waits at least `d`.
pub fn delay(d: Duration) {
    let (start, n) = (rdtsc(), ticks(d));
    while rdtsc().wrapping_sub(start) < n {
        core::hint::spin_loop();
    }
}

/// A point in time `d` from now, to test with [`passed`].
pub fn deadline(d: Duration) -> u64 {
    rdtsc().saturating_add(ticks(d))
}

/// True once the deadline is past.
pub fn passed(deadline: u64) -> bool {
    rdtsc() >= deadline
}

/// Milliseconds since `start` (a `rdtsc` value).
pub fn ms_since(start: u64) -> u64 {
    rdtsc().wrapping_sub(start) / TSC_PER_MS.load(Ordering::Relaxed).max(1)
}
