//! DMA memory from real 2 MiB hugepages, translated through the real `/proc/self/pagemap`.
//!
//! The device is a fake sysfs tree (nothing real is touched); only `proc_root` is the real
//! `/proc`. Needs root and a few free hugepages:
//! `echo 8 > /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages`.

mod common;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use common::{Fake, Spec};
use ixgbe_core::{DmaError, Platform, DMA_PAGE_SIZE};
use platform_linux::{Error, LinuxPlatform, OpenOptions};

/// The tests count the machine's free hugepages: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn platform() -> (Fake, LinuxPlatform) {
    let fake = Fake::new(Spec::default());
    let opts = OpenOptions {
        proc_root: "/proc".into(),
        ..fake.opts.clone()
    };
    let p = LinuxPlatform::open(&fake.addr, &opts).expect("open over the fake sysfs tree");
    (fake, p)
}

fn hugepages_free() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap()
}

/// Physical address of `virt` read straight from pagemap, independently of the crate.
fn pagemap(virt: usize) -> u64 {
    let f = File::open("/proc/self/pagemap").unwrap();
    let mut entry = [0u8; 8];
    f.read_exact_at(&mut entry, (virt / 4096) as u64 * 8)
        .unwrap();
    let entry = u64::from_ne_bytes(entry);
    assert_eq!(entry >> 63, 1, "page present");
    (entry & ((1 << 55) - 1)) * 4096 + (virt % 4096) as u64
}

#[test]
#[ignore = "needs root and hugepages (run by CI after scripts/setup-hugepages.sh)"]
fn allocates_zeroed_hugepages_and_translates_each_page() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_fake, p) = platform();
    let size = 2 * DMA_PAGE_SIZE;
    let region = p.dma_alloc(size).expect("two hugepages");
    assert_eq!(region.len(), size);
    let base = region.virt().as_ptr() as usize;
    assert_eq!(
        base % DMA_PAGE_SIZE,
        0,
        "a large region starts on a hugepage"
    );

    // SAFETY: the region is `size` bytes of memory we own.
    let bytes = unsafe { std::slice::from_raw_parts_mut(region.virt().as_ptr(), size) };
    assert!(bytes.iter().all(|&b| b == 0), "zeroed");
    bytes[0x1234] = 0xab;
    bytes[DMA_PAGE_SIZE + 5] = 0xcd;

    let page0 = p.virt_to_phys(base as *const u8).unwrap();
    let page1 = p.virt_to_phys((base + DMA_PAGE_SIZE) as *const u8).unwrap();
    assert_ne!(page0, 0);
    assert_ne!(page1, 0);
    assert_eq!(
        page0 % DMA_PAGE_SIZE as u64,
        0,
        "page start is 2 MiB aligned"
    );
    assert_eq!(page1 % DMA_PAGE_SIZE as u64, 0);
    assert_eq!(
        p.virt_to_phys((base + 0x1234) as *const u8),
        Some(page0 + 0x1234)
    );
    assert_eq!(
        p.virt_to_phys((base + DMA_PAGE_SIZE + 5) as *const u8),
        Some(page1 + 5),
        "offset preserved inside the second page"
    );
    // Each page translated on its own: compare with pagemap directly (no contiguity assumed).
    assert_eq!(page0, pagemap(base));
    assert_eq!(page1, pagemap(base + DMA_PAGE_SIZE));
    assert_eq!(
        p.virt_to_phys((base + size - 1) as *const u8),
        Some(page1 + DMA_PAGE_SIZE as u64 - 1)
    );
    assert_eq!(
        p.virt_to_phys((base + size) as *const u8),
        None,
        "past the end"
    );
    // SAFETY: nothing uses the region any more.
    unsafe { p.dma_free(region) };
    assert_eq!(p.virt_to_phys(base as *const u8), None, "freed");
}

#[test]
#[ignore = "needs root and hugepages (run by CI after scripts/setup-hugepages.sh)"]
fn small_requests_share_a_hugepage() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_fake, p) = platform();
    let a = p.dma_alloc(100).unwrap();
    let b = p.dma_alloc(8192).unwrap();
    let c = p.dma_alloc(4096).unwrap();
    assert_eq!(p.dma_mapping_count(), 1);
    let (va, vb, vc) = (
        a.virt().as_ptr() as usize,
        b.virt().as_ptr() as usize,
        c.virt().as_ptr() as usize,
    );
    for v in [va, vb, vc] {
        assert_eq!(v % 4096, 0, "4 KiB aligned");
        assert_eq!(p.virt_to_phys(v as *const u8).unwrap() % 4096, 0);
    }
    assert_eq!(vb, va + 4096, "100 bytes round up to one 4 KiB slot");
    assert_eq!(vc, vb + 8192);
    let pa = p.virt_to_phys(va as *const u8).unwrap();
    assert_eq!(
        p.virt_to_phys(vc as *const u8),
        Some(pa + (vc - va) as u64),
        "same hugepage"
    );
    assert_eq!(
        p.virt_to_phys((va + 100) as *const u8),
        None,
        "between regions"
    );
    assert_eq!(pa, pagemap(va));

    let before = hugepages_free();
    // SAFETY: nothing uses the regions any more.
    unsafe {
        p.dma_free(a);
        p.dma_free(b);
    }
    assert_eq!(p.dma_mapping_count(), 1, "c still lives in the shared page");
    assert_eq!(p.virt_to_phys(vc as *const u8), Some(pa + (vc - va) as u64));
    // SAFETY: as above.
    unsafe { p.dma_free(c) };
    assert_eq!(p.dma_mapping_count(), 0);
    assert_eq!(hugepages_free(), before + 1, "the shared page went back");
}

#[test]
#[ignore = "needs root and hugepages (run by CI after scripts/setup-hugepages.sh)"]
fn memory_is_released_on_free_and_on_drop() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let start = hugepages_free();
    assert!(
        start >= 4,
        "reserve at least 4 free hugepages (found {start})"
    );
    let (_fake, p) = platform();
    let big = p.dma_alloc(DMA_PAGE_SIZE + 1).unwrap(); // rounds up to two hugepages
    let _small = p.dma_alloc(4096).unwrap(); // freed by the drop of the last handle
    assert_eq!(hugepages_free(), start - 3);
    // SAFETY: nothing uses `big` any more.
    unsafe { p.dma_free(big) };
    assert_eq!(hugepages_free(), start - 1, "dma_free unmaps");

    let clone = p.clone();
    let _kept = clone.dma_alloc(3 * DMA_PAGE_SIZE).unwrap();
    assert_eq!(hugepages_free(), start - 4);
    drop(p);
    assert_eq!(hugepages_free(), start - 4, "a clone keeps the memory");
    drop(clone);
    assert_eq!(
        hugepages_free(),
        start,
        "the last handle releases everything"
    );
}

#[test]
#[ignore = "needs root and hugepages (run by CI after scripts/setup-hugepages.sh)"]
fn exhausted_hugepages_give_a_clear_error() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_fake, p) = platform();
    let too_many = (hugepages_free() as usize + 1) * DMA_PAGE_SIZE;
    match p.try_dma_alloc(too_many) {
        Err(e @ Error::NoHugepages { .. }) => {
            assert!(e.to_string().contains("scripts/setup-hugepages.sh"), "{e}")
        }
        other => panic!("expected NoHugepages, got {other:?}"),
    }
    assert_eq!(p.dma_alloc(too_many).unwrap_err(), DmaError::OutOfMemory);
    assert_eq!(p.dma_alloc(0).unwrap_err(), DmaError::Unsupported);
    assert_eq!(p.dma_mapping_count(), 0);
}
