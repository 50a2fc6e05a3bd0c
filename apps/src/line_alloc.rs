//! A global allocator that gives every heap block cache lines of its own.
//!
//! The simulator's lanes (`Sim::with_lanes`, one model instance per worker thread) are built by
//! one thread at set-up, so glibc packs their small blocks side by side: lane 0's queue state,
//! counters, scratch buffers and the peer's sources next to lane 1's. Two workers writing
//! their own lanes' blocks then write the same cache lines (false sharing), and every such
//! line moves between the cores. [`LineAlloc`] rounds every block up to whole
//! [`LINE`]-byte units at a [`LINE`]-byte boundary (two 64-byte lines: the adjacent-line
//! prefetcher fetches them in pairs), so no two blocks share a line. The forwarding loop does
//! not allocate, so the cost (slower small allocations, up to 127 bytes more each) is paid at
//! set-up only. With it, `ixgbe-fwd sim sim --queues 2` takes about 5 ns less CPU time per
//! packet (docs/benchmarks.md, "Multi-core scaling").

use std::alloc::{GlobalAlloc, Layout, System};

/// The unit and alignment of every block.
pub const LINE: usize = 128;

/// [`System`] with every block rounded up to whole, aligned [`LINE`]s (see the module).
#[derive(Debug, Default, Clone, Copy)]
pub struct LineAlloc;

/// `layout` widened to whole lines; `None` if that overflows.
fn widened(layout: Layout) -> Option<Layout> {
    let size = layout.size().checked_next_multiple_of(LINE)?;
    Layout::from_size_align(size, layout.align().max(LINE)).ok()
}

// SAFETY: every block comes from `System` with the widened layout of the caller's, which has
// at least the caller's size and alignment, and goes back to `System` with the same widened
// layout (`widened` is a pure function of the layout, which the caller repeats on dealloc).
// Widening fails only for sizes near `isize::MAX`; then allocation reports failure (null).
unsafe impl GlobalAlloc for LineAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match widened(layout) {
            // SAFETY: the widened layout has a non-zero size (the caller's is non-zero).
            Some(w) => unsafe { System.alloc(w) },
            None => std::ptr::null_mut(),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match widened(layout) {
            // SAFETY: as in `alloc`.
            Some(w) => unsafe { System.alloc_zeroed(w) },
            None => std::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(w) = widened(layout) {
            // SAFETY: `ptr` came from `alloc` or `alloc_zeroed` with this layout (the caller's
            // contract), so from `System` with this widened one.
            unsafe { System.dealloc(ptr, w) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_blocks_start_on_a_line_and_never_share_one() {
        let a = LineAlloc;
        let layouts = [
            Layout::new::<u8>(),
            Layout::new::<[u64; 3]>(),
            Layout::from_size_align(60, 1).unwrap(),
            Layout::from_size_align(129, 8).unwrap(),
            Layout::from_size_align(4096, 4096).unwrap(),
        ];
        let mut blocks = Vec::new();
        for _ in 0..4 {
            for &l in &layouts {
                // SAFETY: non-zero sizes; freed below with the same layout.
                let p = unsafe { a.alloc_zeroed(l) };
                assert!(!p.is_null());
                assert_eq!(p as usize % LINE.max(l.align()), 0, "{l:?}");
                // SAFETY: the block has `l.size()` zeroed bytes.
                let bytes = unsafe { std::slice::from_raw_parts_mut(p, l.size()) };
                assert!(bytes.iter().all(|&b| b == 0));
                bytes.fill(0xA5);
                blocks.push((p, l));
            }
        }
        // The lines each block occupies are its own.
        let mut lines: Vec<(usize, usize)> = blocks
            .iter()
            .map(|&(p, l)| (p as usize / LINE, (p as usize + l.size() - 1) / LINE))
            .collect();
        lines.sort_unstable();
        for w in lines.windows(2) {
            assert!(w[0].1 < w[1].0, "{w:?}");
        }
        for (p, l) in blocks {
            // SAFETY: allocated above with `l`, freed once.
            unsafe { a.dealloc(p, l) };
        }
        let huge = Layout::from_size_align(isize::MAX as usize - 8, 1).unwrap();
        // SAFETY: a non-zero size; the allocation fails (null), nothing to free.
        assert!(unsafe { a.alloc(huge) }.is_null());
    }
}
