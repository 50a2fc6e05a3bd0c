//! The console: COM1 (I/O port 0x3F8, a 16550 UART), 115200 8N1, polled; and a `log` logger
//! on it, so the driver's own messages show up too.

use core::fmt::{self, Write};

use crate::port::{inb, outb};

const COM1: u16 = 0x3F8;
/// Line status register bit 5: transmit holding register empty.
const LSR_THRE: u8 = 1 << 5;

/// Programs the UART: no interrupts, divisor 1 (115200 baud), 8 data bits, no parity, 1 stop
/// bit, FIFOs on.
pub fn init() {
    for (offset, value) in [
        (1, 0x00),
        (3, 0x80),
        (0, 0x01),
        (1, 0x00),
        (3, 0x03),
        (2, 0xC7),
    ] {
        // SAFETY: COM1's registers belong to this program; writing them has no memory effect.
        unsafe { outb(COM1 + offset, value) };
    }
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

fn put(byte: u8) {
    // Bounded: a UART that never drains drops output instead of hanging the test.
    for _ in 0..100_000 {
        // SAFETY: as in `init`; reading LSR has no side effect.
        if unsafe { inb(COM1 + 5) } & LSR_THRE != 0 {
            break;
        }
        core::hint::spin_loop();
    }
    // SAFETY: as in `init`.
    unsafe { outb(COM1, byte) };
}

/// `core::fmt` output to COM1 (`\n` becomes `\r\n`).
pub struct Serial;

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                put(b'\r');
            }
            put(b);
        }
        Ok(())
    }
}

/// `println!` for the serial console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::serial::Serial, $($arg)*);
    }};
}

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let _ = writeln!(Serial, "[{}] {}", record.level(), record.args());
    }

    fn flush(&self) {}
}
