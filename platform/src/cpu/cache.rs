//! Data-cache maintenance by virtual address to the point of coherency
//! (Arm ARM D7.5.9).
//!
//! Needed wherever memory is shared with an observer that does not snoop
//! this CPU's caches: a CPU whose MMU (and so its caches) is still off, or a
//! guest that starts with caches off. QEMU models no caches, so these paths
//! are only proven on hardware.

use core::arch::asm;

/// Smallest data cache line of the system, from CTR_EL0.DminLine (log2 of words).
fn line_size() -> usize {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack, preserves_flags)) };
    4 << ((ctr >> 16) & 0xf)
}

macro_rules! by_line {
    ($name:ident, $op:literal, $doc:literal) => {
        #[doc = $doc]
        pub fn $name(start: usize, len: usize) {
            // Data cache instructions by address may be reordered with earlier
            // Device-memory accesses (all accesses, with the MMU off) unless a
            // barrier separates them (Arm ARM D7.5.9.5).
            // SAFETY: a barrier has no memory-safety preconditions.
            unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
            let line = line_size();
            let end = start.saturating_add(len);
            let mut address = start & !(line - 1);
            while address < end {
                // SAFETY: data-cache maintenance by address neither reads nor
                // writes memory as the program sees it; an address without a
                // translation is the caller's mistake and faults, as a load would.
                unsafe { asm!(concat!("dc ", $op, ", {}"), in(reg) address, options(nostack, preserves_flags)) };
                address += line;
            }
            // SAFETY: a barrier has no memory-safety preconditions.
            unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
        }
    };
}

by_line!(
    clean,
    "cvac",
    "Writes dirty lines of `[start, start + len)` back to memory."
);
by_line!(
    invalidate,
    "ivac",
    "Discards lines of `[start, start + len)`: for memory written while caches were off. \
     Dirty data in the range is lost, which is the point."
);
by_line!(
    clean_and_invalidate,
    "civac",
    "Writes back, then discards, lines of `[start, start + len)`."
);

/// Invalidates the instruction caches of every CPU in the inner-shareable
/// domain: after writing code another CPU will run.
pub fn invalidate_instruction_cache_all_cpus() {
    // SAFETY: instruction-cache invalidation and barriers have no memory-safety preconditions.
    unsafe {
        asm!(
            "dsb ish",
            "ic ialluis",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}

/// Invalidates the whole instruction cache to the point of unification.
pub fn invalidate_instruction_cache() {
    // SAFETY: instruction-cache invalidation and barriers have no memory-safety preconditions.
    unsafe {
        asm!(
            "ic iallu",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        )
    };
}
