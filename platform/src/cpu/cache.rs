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

/// DCZID_EL0 (Arm ARM D23.2.37): BS, log2 of the DC ZVA block in words;
/// DZP, DC ZVA prohibited.
const DCZID_BS_MASK: u64 = 0xf;
const DCZID_DZP: u64 = 1 << 4;

/// Bytes that one `DC ZVA` zeroes, or `None` where it is prohibited.
fn zero_block_size() -> Option<usize> {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack, preserves_flags)) };
    (dczid & DCZID_DZP == 0).then(|| 4 << (dczid & DCZID_BS_MASK))
}

/// Zeroes `buffer` to the point of coherency: a cache block at a time with
/// `DC ZVA` (one instruction per 64 bytes on common cores, against one store
/// per 16 for a memset), each block cleaned and invalidated right after it
/// is zeroed, so memory is walked once. Scrubbing a partition's RAM is most
/// of its boot time. The buffer must be Normal memory, as all of RAM is in
/// the EL2 map. Where the zeroing block is not one cache line (or `DC ZVA`
/// is prohibited), it zeroes and then cleans.
pub fn zero_to_poc(buffer: &mut [u8]) {
    let line = line_size();
    let Some(block) = zero_block_size().filter(|&block| block == line) else {
        buffer.fill(0);
        clean_and_invalidate(buffer.as_ptr() as usize, buffer.len());
        return;
    };
    let start = buffer.as_ptr() as usize;
    let head = (start.next_multiple_of(block) - start).min(buffer.len());
    let (head, rest) = buffer.split_at_mut(head);
    let whole = rest.len() - rest.len() % block;
    let (blocks, tail) = rest.split_at_mut(whole);
    for part in [head, tail] {
        part.fill(0);
        clean_and_invalidate(part.as_ptr() as usize, part.len());
    }
    if blocks.is_empty() {
        return;
    }
    let address = blocks.as_mut_ptr() as usize;
    // Eight blocks a round while eight are left (three instructions a
    // block: a DC takes its address in a register, with no offset form),
    // then one a round.
    let unrolled = blocks.len() - blocks.len() % (UNROLL * block);
    // SAFETY: every address the loops visit is a block-aligned block of
    // `blocks`, which this function borrows exclusively: DC ZVA writes
    // zeroes there and nowhere else, and cleaning a line changes no data.
    // The DSBs order the maintenance with the accesses around it.
    unsafe {
        asm!(
            "dsb sy",
            "cmp {address}, {unrolled_end}",
            "b.hs 2f",
            "1:",
            ".rept {unroll}",
            "dc zva, {address}",
            "dc civac, {address}",
            "add {address}, {address}, {block}",
            ".endr",
            "cmp {address}, {unrolled_end}",
            "b.lo 1b",
            "2: cmp {address}, {end}",
            "b.hs 3f",
            "dc zva, {address}",
            "dc civac, {address}",
            "add {address}, {address}, {block}",
            "b 2b",
            "3: dsb sy",
            address = inout(reg) address => _,
            block = in(reg) block,
            unrolled_end = in(reg) address + unrolled,
            end = in(reg) address + blocks.len(),
            unroll = const UNROLL,
            options(nostack),
        );
    }
}

/// Blocks [`zero_to_poc`] zeroes and cleans per round of its main loop.
const UNROLL: usize = 8;

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
