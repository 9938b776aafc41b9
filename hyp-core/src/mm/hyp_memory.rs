//! The RAM Tessera keeps for itself: its image and its heap. Boot and
//! `cargo xtask check-config` reserve it with this same code, so the host
//! check sees the memory map Tessera will see.

use super::address::{ByteSize, PhysRange};
use super::free;
use crate::hw::memory::{MemoryMap, ReservedKind};

/// Heap size. Tessera's own needs (per-CPU stacks of 32 KiB, partition
/// state, guest device trees and stage-2 tables) fit in a few MiB; the rest
/// of RAM is for partitions.
pub const HEAP_SIZE: u64 = 8 << 20;
/// Heap alignment: a 2 MiB boundary lets the EL2 map keep it in one block.
pub const HEAP_ALIGN: u64 = 2 << 20;

/// Why Tessera's own memory could not be reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HypMemoryError {
    TooManyReservations,
    NoRoomForHeap,
}

impl core::fmt::Display for HypMemoryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            HypMemoryError::TooManyReservations => {
                f.write_str("too many reserved regions to also reserve Tessera's image and heap")
            }
            HypMemoryError::NoRoomForHeap => {
                write!(
                    f,
                    "no free {} of RAM for Tessera's heap",
                    ByteSize(HEAP_SIZE)
                )
            }
        }
    }
}

/// Reserves `image` (load address to the end of BSS and stacks) and a heap
/// placed as close above it as possible; returns the heap's range.
pub fn reserve(memory: &mut MemoryMap, image: PhysRange) -> Result<PhysRange, HypMemoryError> {
    if !memory.reserve(image, ReservedKind::Hypervisor) {
        return Err(HypMemoryError::TooManyReservations);
    }
    let free = free::free_ranges(memory);
    let heap = free::place(
        &free,
        HEAP_SIZE,
        HEAP_ALIGN,
        image.end().unwrap_or(image.start()),
    )
    .ok_or(HypMemoryError::NoRoomForHeap)?;
    if !memory.reserve(heap, ReservedKind::HypervisorHeap) {
        return Err(HypMemoryError::TooManyReservations);
    }
    Ok(heap)
}
