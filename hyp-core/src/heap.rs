//! Tessera's heap: a buddy allocator on a region of free RAM (never the
//! image, the DTB, reserved memory or what the bootloader loaded).

use buddy_system_allocator::LockedHeap;

use crate::mm::address::{PhysRange, to_usize};

/// Orders of the buddy allocator: blocks up to 2^31 bytes.
const ORDERS: usize = 32;

#[global_allocator]
static HEAP: LockedHeap<ORDERS> = LockedHeap::empty();

/// Hands `range` to the allocator.
///
/// # Safety
///
/// `range` must be mapped read-write, unused by anything else, and this
/// must be called once.
pub unsafe fn init(range: PhysRange) {
    // SAFETY: forwarded from this function's contract.
    unsafe {
        HEAP.lock()
            .init(range.start().as_usize(), to_usize(range.size()))
    };
}
