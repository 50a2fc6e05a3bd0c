//! x86 port I/O (`in`/`out`).

/// Reads a byte from an I/O port.
///
/// # Safety
/// The port must belong to a device this program owns, and reading it must have no effect
/// that breaks memory safety.
pub unsafe fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: the caller's promise; `in` touches no memory.
    unsafe { core::arch::asm!("in al, dx", out("al") v, in("dx") port, options(nomem, nostack)) };
    v
}

/// Writes a byte to an I/O port.
///
/// # Safety
/// As [`inb`]: writing the port must have no effect that breaks memory safety.
pub unsafe fn outb(port: u16, v: u8) {
    // SAFETY: the caller's promise; `out` touches no memory.
    unsafe { core::arch::asm!("out dx, al", in("dx") port, in("al") v, options(nostack)) };
}

/// Reads 32 bits from an I/O port.
///
/// # Safety
/// As [`inb`].
pub unsafe fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: the caller's promise; `in` touches no memory.
    unsafe { core::arch::asm!("in eax, dx", out("eax") v, in("dx") port, options(nomem, nostack)) };
    v
}

/// Writes 32 bits to an I/O port.
///
/// # Safety
/// As [`outb`].
pub unsafe fn outl(port: u16, v: u32) {
    // SAFETY: the caller's promise; `out` touches no memory.
    unsafe { core::arch::asm!("out dx, eax", in("dx") port, in("eax") v, options(nostack)) };
}
