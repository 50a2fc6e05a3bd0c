//! What QEMU's PVH boot hands over: `struct hvm_start_info` (Xen public header
//! `arch-x86/hvm/start_info.h`, version 1), with the command line (`-append`) and the E820
//! memory map.

/// `hvm_start_info.magic`.
const MAGIC: u32 = 0x336E_C578;
/// E820 type of usable RAM.
const E820_RAM: u32 = 1;

/// The parts of `hvm_start_info` this program uses.
pub struct BootInfo {
    /// The kernel command line (empty when none was given).
    pub cmdline: &'static str,
    /// The largest usable RAM range at or above 1 MiB: (start, end).
    pub ram: (u64, u64),
}

/// Reads the start info at physical address `addr` (identity-mapped).
pub fn read(addr: u32) -> Result<BootInfo, &'static str> {
    let p = addr as usize as *const u8;
    let u32_at = |off: usize| {
        // SAFETY: the PVH ABI puts a 56-byte hvm_start_info at `addr` (checked by its magic
        // before anything else is read); QEMU's option ROM keeps it in RAM below 1 MiB, which
        // nothing of this program overwrites. Unaligned reads: no alignment is assumed.
        unsafe { p.add(off).cast::<u32>().read_unaligned() }
    };
    let u64_at = |off: usize| u64::from(u32_at(off)) | u64::from(u32_at(off + 4)) << 32;
    if addr == 0 || u32_at(0) != MAGIC {
        return Err("no hvm_start_info (not booted through PVH?)");
    }
    if u32_at(4) < 1 {
        return Err("hvm_start_info version 0 has no memory map");
    }
    let (map, entries) = (u64_at(40) as usize, u32_at(48) as usize);
    let mut ram = (0, 0);
    for i in 0..entries.min(128) {
        let e = map + i * 24;
        // SAFETY: the memory map QEMU's option ROM wrote, `entries` records of 24 bytes
        // (addr u64, size u64, type u32, reserved u32), in low RAM like the start info.
        let (start, size, kind) = unsafe {
            let q = e as *const u8;
            (
                q.cast::<u64>().read_unaligned(),
                q.add(8).cast::<u64>().read_unaligned(),
                q.add(16).cast::<u32>().read_unaligned(),
            )
        };
        if kind == E820_RAM && start >= 1 << 20 && size > ram.1 - ram.0 {
            ram = (start, start.saturating_add(size));
        }
    }
    if ram.1 == 0 {
        return Err("no usable RAM above 1 MiB in the memory map");
    }
    Ok(BootInfo {
        cmdline: cmdline(u64_at(24) as usize),
        ram,
    })
}

/// The NUL-terminated command line at `addr` (at most 4 KiB), or "" when absent or not UTF-8.
fn cmdline(addr: usize) -> &'static str {
    if addr == 0 {
        return "";
    }
    let p = addr as *const u8;
    // SAFETY: QEMU's option ROM stores the `-append` string, NUL-terminated, in RAM it leaves
    // alone; reading stops at the NUL or after 4 KiB. Nothing writes that memory later, so a
    // 'static borrow of it is sound.
    let bytes = unsafe {
        let len = (0..4096).find(|&i| p.add(i).read() == 0).unwrap_or(4096);
        core::slice::from_raw_parts(p, len)
    };
    core::str::from_utf8(bytes).unwrap_or("")
}

/// The value of `key=` on the command line, parsed, or `default`.
pub fn arg(cmdline: &str, key: &str, default: u64) -> u64 {
    cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        .find_map(|v| v.parse().ok())
        .unwrap_or(default)
}
