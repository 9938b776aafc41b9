//! Tessera's heap: a buddy allocator on a region of free RAM (never the
//! image, the DTB, reserved memory or what the bootloader loaded).

use buddy_system_allocator::LockedHeap;

use crate::mm::address::{PhysRange, to_usize};

/// Heap size. Tessera's own needs (per-CPU stacks of 32 KiB, later
/// partition state, guest device trees and stage-2 tables) fit in a few
/// MiB; the rest of RAM is for partitions.
pub const HEAP_SIZE: u64 = 8 << 20;
/// Heap alignment: a 2 MiB boundary lets the EL2 map keep it in one block.
pub const HEAP_ALIGN: u64 = 2 << 20;

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
