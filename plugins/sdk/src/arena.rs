//! The plugin's global allocator on wasm (feature `arena`, on by default): a bump allocator.
//!
//! hookgate runs every call in a fresh instance and throws the instance away afterwards, so
//! whatever a call allocates is given back when it ends, all at once. Keeping free lists, as
//! Rust's default allocator on wasm (wasi-libc's dlmalloc) does, is work no call profits from:
//! here an allocation is a pointer bump, and a free gives memory back only when it is the most
//! recent allocation, which covers a growing `String` or `Vec` at the top (it grows in place).
//!
//! The cost: memory freed below the top is not reused within the call. A plugin that allocates
//! and drops far more than it keeps during one call (say, hundreds of megabytes of temporaries
//! for a small event) reaches the route's memory limit sooner, and fails with that reason; such
//! a plugin turns the feature off (`default-features = false`) and gets Rust's usual allocator.
//!
//! It must never hand out memory twice: [`Bump`] is plain arithmetic on addresses, tested on the
//! host; only [`Arena`] touches the wasm memory.

use core::alloc::Layout;

/// The wasm page: what `memory.grow` counts in.
pub(crate) const PAGE: usize = 64 * 1024;

/// Where the wasm memory ends and how to grow it; the host's tests use a fake one.
pub(crate) trait Memory {
    /// The memory's size in bytes.
    fn size(&self) -> usize;
    /// Grows it by `pages`; `false` when refused (the route's memory limit).
    fn grow(&self, pages: usize) -> bool;
}

/// The bump state: the next free address and the end of the region this allocator owns.
#[derive(Debug, Default)]
pub(crate) struct Bump {
    next: usize,
    end: usize,
}

impl Bump {
    pub(crate) const fn new() -> Self {
        Bump { next: 0, end: 0 }
    }

    /// The address of a block for `layout`, or `None` when memory cannot grow.
    pub(crate) fn alloc(&mut self, layout: Layout, memory: &impl Memory) -> Option<usize> {
        let mut block = self.place(layout)?;
        if block.1 > self.end {
            // Someone else (wasi-libc's own malloc, used by the C parts of the runtime) may have
            // grown the memory since: only what lies past the current end is ours to carve.
            let top = memory.size();
            if top != self.end {
                self.next = top;
                self.end = top;
                block = self.place(layout)?;
            }
        }
        let (start, stop) = block;
        if !self.reach(stop, memory) {
            return None;
        }
        self.next = stop;
        Some(start)
    }

    /// Gives the block back when it is the last one handed out; otherwise it stays until the
    /// instance is dropped.
    pub(crate) fn dealloc(&mut self, at: usize, layout: Layout) {
        if at.checked_add(layout.size()) == Some(self.next) {
            self.next = at;
        }
    }

    /// Resizes the last block handed out where it stands, growing the memory if need be;
    /// `false` when the block is not the last one (the caller moves it instead).
    pub(crate) fn resize_in_place(
        &mut self,
        at: usize,
        layout: Layout,
        new_size: usize,
        memory: &impl Memory,
    ) -> bool {
        if at.checked_add(layout.size()) != Some(self.next) {
            return false;
        }
        let Some(stop) = at.checked_add(new_size) else {
            return false;
        };
        // Growing past the end is only in place if the memory still ends where we do.
        if stop > self.end && memory.size() != self.end {
            return false;
        }
        if !self.reach(stop, memory) {
            return false;
        }
        self.next = stop;
        true
    }

    /// Where a block for `layout` would start and end, at the next free address.
    fn place(&self, layout: Layout) -> Option<(usize, usize)> {
        let start = align_up(self.next, layout.align())?;
        Some((start, start.checked_add(layout.size())?))
    }

    /// Grows the memory until this allocator's region reaches `stop`; the caller has made sure
    /// the memory ends where the region does. `false` when the grow is refused.
    fn reach(&mut self, stop: usize, memory: &impl Memory) -> bool {
        if stop <= self.end {
            return true;
        }
        let pages = (stop - self.end).div_ceil(PAGE);
        let Some(end) = pages
            .checked_mul(PAGE)
            .and_then(|bytes| self.end.checked_add(bytes))
        else {
            return false;
        };
        if !memory.grow(pages) {
            return false;
        }
        self.end = end;
        true
    }
}

fn align_up(at: usize, align: usize) -> Option<usize> {
    // `Layout` guarantees a power of two.
    Some(at.checked_add(align - 1)? & !(align - 1))
}

#[cfg(target_family = "wasm")]
pub(crate) use wasm::Arena;

#[cfg(target_family = "wasm")]
#[allow(unsafe_code)]
mod wasm {
    use super::{Bump, Memory, PAGE};
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::RefCell;

    /// The linear memory the instance runs in.
    struct Linear;

    impl Memory for Linear {
        fn size(&self) -> usize {
            core::arch::wasm32::memory_size(0) * PAGE
        }
        fn grow(&self, pages: usize) -> bool {
            core::arch::wasm32::memory_grow(0, pages) != usize::MAX
        }
    }

    /// The global allocator the SDK installs (see the module docs).
    pub(crate) struct Arena(RefCell<Bump>);

    impl Arena {
        /// An allocator that has handed out nothing yet.
        pub(crate) const fn new() -> Self {
            Arena(RefCell::new(Bump::new()))
        }
    }

    impl Default for Arena {
        fn default() -> Self {
            Self::new()
        }
    }

    // SAFETY: components built for wasm32-wasip2 run on one thread; nothing shares the cell.
    unsafe impl Sync for Arena {}

    // SAFETY: `Bump` hands out disjoint, aligned blocks inside memory the instance owns, and
    // takes a block back only when it is the topmost one; `try_borrow_mut` cannot fail on one
    // thread, and if it did the allocation would fail (null) instead of aliasing.
    unsafe impl GlobalAlloc for Arena {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            match self.0.try_borrow_mut() {
                Ok(mut bump) => bump
                    .alloc(layout, &Linear)
                    .map_or(core::ptr::null_mut(), |at| at as *mut u8),
                Err(_) => core::ptr::null_mut(),
            }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            if let Ok(mut bump) = self.0.try_borrow_mut() {
                bump.dealloc(ptr as usize, layout);
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let in_place = match self.0.try_borrow_mut() {
                Ok(mut bump) => bump.resize_in_place(ptr as usize, layout, new_size, &Linear),
                Err(_) => false,
            };
            if in_place {
                return ptr;
            }
            let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
                return core::ptr::null_mut();
            };
            // SAFETY: as `GlobalAlloc::realloc`'s default: a new block, the old bytes copied.
            unsafe {
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A memory of `size` bytes that grows up to `limit`; `others_grow` stands for another
    /// allocator growing it behind our back.
    struct Fake {
        size: Cell<usize>,
        limit: usize,
    }

    impl Fake {
        fn new(pages: usize, limit_pages: usize) -> Self {
            Fake {
                size: Cell::new(pages * PAGE),
                limit: limit_pages * PAGE,
            }
        }
        fn others_grow(&self, pages: usize) {
            self.size.set(self.size.get() + pages * PAGE);
        }
    }

    impl Memory for Fake {
        fn size(&self) -> usize {
            self.size.get()
        }
        fn grow(&self, pages: usize) -> bool {
            let size = self.size.get() + pages * PAGE;
            if size > self.limit {
                return false;
            }
            self.size.set(size);
            true
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap_or(Layout::new::<u8>())
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_past_what_the_memory_held() {
        let memory = Fake::new(2, 100);
        let mut bump = Bump::new();
        let mut blocks = Vec::new();
        for (size, align) in [
            (1, 1),
            (8, 8),
            (3, 2),
            (PAGE, 16),
            (100, 64),
            (PAGE * 3, 4096),
        ] {
            let at = bump.alloc(layout(size, align), &memory);
            let at = at.unwrap_or_default();
            assert_eq!(at % align, 0, "{size} bytes aligned to {align}");
            assert!(at >= 2 * PAGE, "never below the memory's first end");
            assert!(at + size <= memory.size(), "inside the memory");
            blocks.push((at, at + size));
        }
        blocks.sort();
        assert!(blocks.windows(2).all(|w| w[0].1 <= w[1].0), "{blocks:?}");
    }

    #[test]
    fn the_top_block_is_freed_and_grows_in_place_others_stay() {
        let memory = Fake::new(1, 100);
        let mut bump = Bump::new();
        let a = bump.alloc(layout(10, 1), &memory).unwrap_or_default();
        let b = bump.alloc(layout(20, 1), &memory).unwrap_or_default();
        assert!(bump.resize_in_place(b, layout(20, 1), 2 * PAGE, &memory));
        assert!(b + 2 * PAGE <= memory.size());
        assert!(
            !bump.resize_in_place(a, layout(10, 1), 40, &memory),
            "not on top"
        );
        bump.dealloc(a, layout(10, 1));
        let c = bump.alloc(layout(1, 1), &memory).unwrap_or_default();
        assert_eq!(c, b + 2 * PAGE, "a freed block below the top is not reused");
        bump.dealloc(c, layout(1, 1));
        let d = bump.alloc(layout(1, 1), &memory).unwrap_or_default();
        assert_eq!(d, c, "the top block is");
    }

    #[test]
    fn memory_grown_by_someone_else_is_stepped_over() {
        let memory = Fake::new(1, 100);
        let mut bump = Bump::new();
        let a = bump.alloc(layout(PAGE - 8, 1), &memory).unwrap_or_default();
        memory.others_grow(1);
        let b = bump.alloc(layout(64, 8), &memory).unwrap_or_default();
        assert!(b >= a + PAGE - 8);
        assert!(b >= 3 * PAGE, "not inside the page another allocator took");
        memory.others_grow(1);
        assert!(
            !bump.resize_in_place(b, layout(64, 8), PAGE + 1, &memory),
            "cannot grow in place across someone else's page"
        );
    }

    #[test]
    fn a_refused_grow_is_a_failed_allocation() {
        let memory = Fake::new(1, 2);
        let mut bump = Bump::new();
        assert!(bump.alloc(layout(PAGE, 1), &memory).is_some());
        assert_eq!(bump.alloc(layout(PAGE + 1, 1), &memory), None);
        assert_eq!(bump.alloc(layout(usize::MAX - 4, 1), &memory), None);
        assert_eq!(memory.size(), 2 * PAGE);
    }
}
