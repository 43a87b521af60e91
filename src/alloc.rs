//! The allocator: the system's, except for blocks of 4 MiB and more, which
//! are mapped directly and marked for transparent huge pages. The one such
//! block kagi makes is argon2id's 19 MiB, once per hash: on 4 KiB pages the
//! kernel faults in and zeroes it page by page (some 4,900 faults, about a
//! third of the time of the hash itself); on 2 MiB pages, ten. The block
//! goes back to the system when it is freed, so the resident size between
//! hashes does not change.

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, with huge-page mappings for big blocks.
pub struct Allocator;

const BIG: usize = 4 << 20;
const HUGE_PAGE: usize = 2 << 20;

#[cfg(target_os = "linux")]
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() < BIG || layout.align() > HUGE_PAGE {
            return System.alloc(layout);
        }
        map(layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() < BIG || layout.align() > HUGE_PAGE {
            return System.alloc_zeroed(layout);
        }
        // A fresh anonymous mapping is zero already.
        map(layout.size())
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() < BIG || layout.align() > HUGE_PAGE {
            return System.dealloc(ptr, layout);
        }
        libc::munmap(ptr.cast(), round_up(layout.size()));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let small = |size: usize| size < BIG || layout.align() > HUGE_PAGE;
        if small(layout.size()) && small(new_size) {
            return System.realloc(ptr, layout, new_size);
        }
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new = self.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

#[cfg(not(target_os = "linux"))]
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

fn round_up(size: usize) -> usize {
    size.div_ceil(HUGE_PAGE) * HUGE_PAGE
}

/// Maps `size` bytes (rounded up to whole huge pages) at a huge-page
/// boundary, so that the kernel can back it with huge pages.
///
/// # Safety
/// The caller frees the block with `munmap` of `round_up(size)` bytes.
#[cfg(target_os = "linux")]
unsafe fn map(size: usize) -> *mut u8 {
    let len = round_up(size);
    // One huge page more than needed, then the unaligned ends are given back.
    let raw = libc::mmap(
        std::ptr::null_mut(),
        len + HUGE_PAGE,
        libc::PROT_READ | libc::PROT_WRITE,
        libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
        -1,
        0,
    );
    if raw == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    let start = raw as usize;
    let aligned = start.div_ceil(HUGE_PAGE) * HUGE_PAGE;
    if aligned > start {
        libc::munmap(raw, aligned - start);
    }
    let tail = start + len + HUGE_PAGE - (aligned + len);
    if tail > 0 {
        libc::munmap((aligned + len) as *mut libc::c_void, tail);
    }
    // Advice only: without transparent huge pages it is 4 KiB pages as before.
    libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    aligned as *mut u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_blocks_are_aligned_zeroed_writable_and_freed() {
        unsafe {
            let layout = Layout::from_size_align(19 << 20, 64).unwrap();
            let p = Allocator.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % HUGE_PAGE, 0);
            let block = std::slice::from_raw_parts_mut(p, layout.size());
            assert!(block.iter().step_by(4096).all(|b| *b == 0));
            block[layout.size() - 1] = 7;
            let q = Allocator.realloc(p, layout, 24 << 20);
            assert_eq!(*q.add(layout.size() - 1), 7);
            Allocator.dealloc(q, Layout::from_size_align(24 << 20, 64).unwrap());
            let small = Layout::from_size_align(100, 8).unwrap();
            let s = Allocator.alloc(small);
            assert!(!s.is_null());
            Allocator.dealloc(s, small);
        }
    }
}
