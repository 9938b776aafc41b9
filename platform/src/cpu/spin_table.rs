//! Releasing a CPU from a spin table (Linux's `Documentation/arch/arm64/booting.rst`:
//! the CPU polls `cpu-release-addr` in a WFE loop, with its caches off).

use core::arch::asm;

use super::cache;

/// Writes `entry` to the release address and wakes the waiting CPUs.
///
/// # Safety
///
/// `release_addr` must be the spin table slot of a CPU that is waiting in it,
/// 8-byte aligned, mapped, and not used as ordinary memory by Tessera.
pub unsafe fn release(release_addr: usize, entry: u64) {
    // SAFETY: the caller guarantees the slot is mapped, aligned and the
    // firmware's, not Tessera's.
    unsafe { core::ptr::write_volatile(release_addr as *mut u64, entry) };
    // The waiting CPU reads with its caches off: push the value to memory.
    cache::clean(release_addr, 8);
    // SAFETY: barrier and event instructions have no memory-safety preconditions.
    unsafe { asm!("dsb sy", "sev", options(nostack, preserves_flags)) };
}
