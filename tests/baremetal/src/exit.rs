//! Ending the run: QEMU's `isa-debug-exit` device (`-device isa-debug-exit,iobase=0xf4,
//! iosize=4`) makes QEMU exit with status `(value << 1) | 1` when `value` is written to its
//! port. A triple fault (QEMU started with `-no-reboot`) ends with status 0 instead: neither
//! code below can be mistaken for it.

use crate::port::outl;

const PORT: u16 = 0xF4;
/// Written on success: QEMU exits with 33.
pub const SUCCESS: u32 = 0x10;
/// Written on failure: QEMU exits with 35.
pub const FAILURE: u32 = 0x11;

/// Exits QEMU with `code`; halts forever when no isa-debug-exit device is there.
pub fn qemu_exit(code: u32) -> ! {
    // SAFETY: port 0xF4 is the debug-exit device the test configures; writing it ends the
    // virtual machine, which no memory safety argument depends on surviving.
    unsafe { outl(PORT, code) };
    loop {
        // SAFETY: `hlt` with interrupts disabled just stops this CPU.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}
