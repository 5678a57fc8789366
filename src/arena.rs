//! The binary's global allocator: a bump arena for a process that lives a few milliseconds.
//!
//! A CNI call allocates a few hundred small blocks and exits. musl's allocator (the
//! shipped build links musl, docs/performance.md) hands memory back to the kernel as soon
//! as a group of blocks is free, so one ADD made about 90 `mmap`/`munmap` calls, each a
//! page-table change and on `munmap` a TLB flush: a fifth of the plugin's own CPU time.
//! Here blocks are carved from one static array that the kernel maps lazily (a page costs
//! only when first touched) and nothing is returned before exit. Freeing the newest block
//! and growing it in place are undone/done by moving the bump pointer, which covers the
//! common `Vec` push-and-grow pattern. Once the arena is used up (a CLI run over a large
//! store), every further allocation goes to the system allocator as usual.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::UnsafeCell,
    sync::atomic::{AtomicUsize, Ordering},
};

/// The arena the binary uses: big enough for an ADD (about 200 KiB, most of it two
/// 64 KiB netlink receive buffers) with room to spare; untouched pages cost nothing.
pub type Global = Arena<{ 1 << 20 }>;

/// A bump allocator over `SIZE` bytes; see the module comment.
pub struct Arena<const SIZE: usize> {
    memory: UnsafeCell<[u8; SIZE]>,
    /// Offset of the first free byte.
    next: AtomicUsize,
}

// SAFETY: `memory` is only ever reached through pointers handed out by `alloc`, and the
// ranges handed out never overlap: `next` is advanced by compare-and-swap before a range
// is given away. A range given back (`dealloc` of the newest block) is published with
// Release and taken with Acquire by the next `bump`, so a block freed on one thread and
// handed out on another sees every write the freeing thread made before it freed it.
unsafe impl<const SIZE: usize> Sync for Arena<SIZE> {}

impl<const SIZE: usize> Arena<SIZE> {
    pub const fn new() -> Self {
        Arena {
            memory: UnsafeCell::new([0; SIZE]),
            next: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.memory.get() as usize
    }

    fn owns(&self, ptr: *mut u8) -> bool {
        let p = ptr as usize;
        p >= self.base() && p < self.base() + SIZE
    }

    /// Reserve `layout` in the arena; `None` when it does not fit.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        let base = self.base();
        let mut next = self.next.load(Ordering::Acquire);
        loop {
            let start = (base + next).checked_next_multiple_of(layout.align())? - base;
            let end = start.checked_add(layout.size())?;
            if end > SIZE {
                return None;
            }
            match self
                .next
                .compare_exchange_weak(next, end, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some((base + start) as *mut u8),
                Err(now) => next = now,
            }
        }
    }
}

impl<const SIZE: usize> Default for Arena<SIZE> {
    fn default() -> Self {
        Arena::new()
    }
}

// SAFETY: every pointer returned is either a fresh, suitably aligned range of `memory`
// that no other live allocation overlaps (see `bump`), or comes from `System`; `dealloc`
// and `realloc` tell the two apart by address and send `System`'s blocks back to it.
unsafe impl<const SIZE: usize> GlobalAlloc for Arena<SIZE> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's layout contract is passed on unchanged.
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.owns(ptr) {
            // SAFETY: not ours, so `System` allocated it with this layout.
            return unsafe { System.dealloc(ptr, layout) };
        }
        // Only the newest block can be given back: move the pointer back over it.
        let end = ptr as usize - self.base() + layout.size();
        let start = ptr as usize - self.base();
        let _ = self
            .next
            .compare_exchange(end, start, Ordering::Release, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if self.owns(ptr) {
            let start = ptr as usize - self.base();
            let end = start + layout.size();
            let new_end = start.saturating_add(new_size);
            // The newest block grows or shrinks where it is.
            if new_end <= SIZE
                && self
                    .next
                    .compare_exchange(end, new_end, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                return ptr;
            }
            // Any other block can shrink where it is (its tail just stays unused).
            if new_size <= layout.size() {
                return ptr;
            }
        } else {
            // SAFETY: not ours, so `System` allocated it with this layout.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: the caller guarantees a valid layout for `new_size` (same alignment).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both ranges are valid for the smaller size and do not overlap (the
            // new one was just carved out past the old one, or comes from `System`).
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_aligned_and_disjoint_and_the_newest_is_given_back() {
        let arena = Arena::<4096>::new();
        let a = Layout::from_size_align(10, 1).unwrap();
        let b = Layout::from_size_align(64, 64).unwrap();
        // SAFETY: layouts are valid; pointers are used only within their sizes.
        unsafe {
            let pa = arena.alloc(a);
            let pb = arena.alloc(b);
            assert!(arena.owns(pa) && arena.owns(pb));
            assert_eq!(pb as usize % 64, 0);
            assert!(pb as usize >= pa as usize + 10);
            let used = arena.next.load(Ordering::Relaxed);
            arena.dealloc(pb, b);
            assert!(arena.next.load(Ordering::Relaxed) < used);
            let pc = arena.alloc(b);
            assert_eq!(pc, pb, "the freed newest block is reused");
        }
    }

    #[test]
    fn the_newest_block_grows_in_place_and_others_move_with_their_bytes() {
        let arena = Arena::<4096>::new();
        let l = Layout::from_size_align(4, 1).unwrap();
        // SAFETY: layouts are valid; pointers are used only within their sizes.
        unsafe {
            let p = arena.alloc(l);
            p.copy_from_nonoverlapping(b"abcd".as_ptr(), 4);
            let q = arena.realloc(p, l, 100);
            assert_eq!(q, p, "newest block grows in place");
            let other = arena.alloc(l);
            let l100 = Layout::from_size_align(100, 1).unwrap();
            let r = arena.realloc(q, l100, 200);
            assert_ne!(r, q, "a block with a newer one after it must move");
            assert_eq!(std::slice::from_raw_parts(r, 4), b"abcd");
            assert!(arena.owns(other));
        }
    }

    #[test]
    fn a_block_freed_on_one_thread_is_handed_out_whole_on_another() {
        static ARENA: Arena<4096> = Arena::new();
        let l = Layout::from_size_align(256, 8).unwrap();
        for round in 0..200u8 {
            // SAFETY: valid layout; the block is written within its size, then freed.
            let p = unsafe { ARENA.alloc(l) } as usize;
            let freer = std::thread::spawn(move || {
                // SAFETY: `p` is the newest live block of `l`, owned by this thread now.
                unsafe {
                    (p as *mut u8).write_bytes(round, 256);
                    ARENA.dealloc(p as *mut u8, l);
                }
            });
            freer.join().unwrap();
            let taker = std::thread::spawn(move || {
                // SAFETY: valid layout; read within its size.
                unsafe {
                    let q = ARENA.alloc(l);
                    let seen = std::slice::from_raw_parts(q, 256).to_vec();
                    ARENA.dealloc(q, l);
                    (q as usize, seen)
                }
            });
            let (q, seen) = taker.join().unwrap();
            assert_eq!(q, p, "the freed block is the one handed out again");
            assert!(seen.iter().all(|b| *b == round), "round {round}");
        }
    }

    #[test]
    fn a_full_arena_falls_back_to_the_system_allocator() {
        let arena = Arena::<4096>::new();
        let big = Layout::from_size_align(4096 - 8, 1).unwrap();
        let small = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: layouts are valid; the system block is freed with its own layout.
        unsafe {
            let p = arena.alloc(big);
            assert!(arena.owns(p));
            let q = arena.alloc(small);
            assert!(!q.is_null() && !arena.owns(q));
            q.write_bytes(7, 64);
            arena.dealloc(q, small);
        }
    }
}
