//! Identity-mapped page tables (virtual address = physical address). The boot code maps
//! 0..4 GiB with 2 MiB pages (write-back); `map_mmio` remaps a BAR's pages uncached (PCD | PWT
//! selects PAT entry 3, UC at reset: Intel SDM Vol. 3A §13.12.2). SeaBIOS puts the BARs of
//! this test below 4 GiB; a BAR above would need page directories this fixture does not add.

/// One page-table page: 512 entries.
#[repr(C, align(4096))]
pub struct Table([u64; 512]);

const EMPTY: Table = Table([0; 512]);
const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const WRITE_THROUGH: u64 = 1 << 3;
const CACHE_DISABLE: u64 = 1 << 4;
const HUGE: u64 = 1 << 7;
const PAGE_2M: u64 = 2 << 20;

/// Filled by the boot code: PML4[0] → PDPT, PDPT[0..4] → BOOT_PD (0..4 GiB).
#[no_mangle]
pub static mut BOOT_PML4: Table = EMPTY;
/// The one page-directory-pointer table: 1 GiB per entry, 512 GiB in all.
#[no_mangle]
pub static mut BOOT_PDPT: Table = EMPTY;
/// The page directories of 0..4 GiB.
#[no_mangle]
pub static mut BOOT_PD: [Table; 4] = [EMPTY, EMPTY, EMPTY, EMPTY];

/// Maps `len` bytes of MMIO at physical `base` at the same virtual address, uncached.
///
/// Only called from the single boot thread, before anything accesses the range.
pub fn map_mmio(base: u64, len: u64) -> Result<(), &'static str> {
    let end = base.checked_add(len).ok_or("BAR wraps around")?;
    if end > 4 << 30 {
        return Err("BAR0 above 4 GiB: this fixture maps only the first 4 GiB");
    }
    let mut page = base & !(PAGE_2M - 1);
    while page < end {
        let slot = (page >> 21) as usize;
        // SAFETY: the page directories are statics only this function (and the boot code,
        // before Rust ran) touch, from the one thread there is; slot < 2048 (page < 4 GiB) is
        // inside them. The entry maps `page` to itself, a BAR range no Rust object lives in,
        // and `invlpg` drops any stale translation.
        unsafe {
            let entry = page | PRESENT | WRITABLE | HUGE | CACHE_DISABLE | WRITE_THROUGH;
            (&raw mut BOOT_PD).cast::<u64>().add(slot).write(entry);
            core::arch::asm!("invlpg [{}]", in(reg) page, options(nostack));
        }
        page += PAGE_2M;
    }
    Ok(())
}
