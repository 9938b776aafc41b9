//! RAM tests: which of the guest's RAM is free to overwrite, and a
//! per-address pattern written and read back.
//!
//! The pattern depends on the address and the round, so a write that lands
//! at the wrong address (an aliased stage-2 mapping), a page that another
//! partition also writes, or a value left over from an earlier round shows
//! up as a mismatch.

use crate::fdt::Region;

/// The page size the exclusions are rounded to.
pub const PAGE_SIZE: u64 = 4096;

/// The most free ranges [`free_ranges`] returns.
pub const MAX_FREE_RANGES: usize = 8;

/// `ram` without the `used` ranges, each widened to whole pages. Ranges of
/// `used` may overlap, lie partly outside `ram` or be empty.
pub fn free_ranges(ram: Region, used: &[Region]) -> heapless::Vec<Region, MAX_FREE_RANGES> {
    let mut free = heapless::Vec::<Region, MAX_FREE_RANGES>::new();
    let _ = free.push(ram);
    for range in used.iter().filter(|range| range.size > 0) {
        let start = range.base & !(PAGE_SIZE - 1);
        let end = range.end().saturating_add(PAGE_SIZE - 1) & !(PAGE_SIZE - 1);
        let mut remaining = heapless::Vec::<Region, MAX_FREE_RANGES>::new();
        for piece in &free {
            if end <= piece.base || start >= piece.end() {
                let _ = remaining.push(*piece);
                continue;
            }
            if start > piece.base {
                let _ = remaining.push(Region {
                    base: piece.base,
                    size: start - piece.base,
                });
            }
            if end < piece.end() {
                let _ = remaining.push(Region {
                    base: end,
                    size: piece.end() - end,
                });
            }
        }
        free = remaining;
    }
    free
}

/// The value the pattern puts at `address` in `round`.
pub const fn pattern(address: u64, round: u32) -> u64 {
    // A multiplicative hash of the address (odd constant: a bijection),
    // mixed with the round so that consecutive rounds differ everywhere.
    (address.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (address >> 29))
        .rotate_left(round.wrapping_mul(7))
        ^ (round as u64).wrapping_mul(0xd1b5_4a32_d192_ed03)
}

/// A word that did not read back as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mismatch {
    pub address: u64,
    pub expected: u64,
    pub found: u64,
}

/// The 8-byte words of `range`, inward to 8-byte boundaries.
fn words(range: Region) -> impl Iterator<Item = u64> {
    let start = range.base.saturating_add(7) & !7;
    let end = range.end() & !7;
    (start..end.max(start)).step_by(8)
}

/// The word at `address`, as a pointer.
#[allow(
    clippy::cast_possible_truncation,
    reason = "the kit runs on AArch64 and is tested on 64-bit hosts: addresses fit a usize"
)]
fn word(address: u64) -> *mut u64 {
    core::ptr::with_exposed_provenance_mut(address as usize)
}

/// Writes the pattern of `round` to every word of `range`.
///
/// # Safety
///
/// `range` must be writable memory that nothing else uses: not this image,
/// its stacks or anything a reference points to.
pub unsafe fn fill(range: Region, round: u32) {
    for address in words(range) {
        // SAFETY: the caller gives us `range`; the address is 8-byte aligned.
        unsafe { core::ptr::write_volatile(word(address), pattern(address, round)) };
    }
}

/// Reads `range` back and returns the first word that does not hold the
/// pattern of `round`, and how many do not.
///
/// # Safety
///
/// As for [`fill`].
pub unsafe fn verify(range: Region, round: u32) -> Result<(), (Mismatch, u64)> {
    // SAFETY: the caller's promise, passed on.
    unsafe { verify_with(range, |address| pattern(address, round)) }
}

/// Reads `range` and returns the first word that is not zero, and how many
/// are not: memory a hypervisor promised to scrub.
///
/// # Safety
///
/// `range` must be readable memory.
pub unsafe fn verify_zero(range: Region) -> Result<(), (Mismatch, u64)> {
    // SAFETY: the caller's promise, passed on.
    unsafe { verify_with(range, |_| 0) }
}

/// Compares every word of `range` with `expected(address)`.
///
/// # Safety
///
/// `range` must be readable memory.
unsafe fn verify_with(range: Region, expected: impl Fn(u64) -> u64) -> Result<(), (Mismatch, u64)> {
    let mut first = None;
    let mut count = 0u64;
    for address in words(range) {
        // SAFETY: the caller's promise; the address is 8-byte aligned.
        let found = unsafe { core::ptr::read_volatile(word(address)) };
        let expected = expected(address);
        if found != expected {
            count += 1;
            first.get_or_insert(Mismatch {
                address,
                expected,
                found,
            });
        }
    }
    match first {
        None => Ok(()),
        Some(mismatch) => Err((mismatch, count)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: Region = Region {
        base: 0x4000_0000,
        size: 0x0400_0000,
    };

    fn region(base: u64, size: u64) -> Region {
        Region { base, size }
    }

    #[test]
    fn image_and_dtb_are_cut_out_in_whole_pages() {
        let image = region(0x4000_0000, 0x1_2345);
        let dtb = region(0x43e0_0000, 0x1100);
        let free = free_ranges(RAM, &[image, dtb]);
        assert_eq!(
            free.as_slice(),
            &[
                region(0x4001_3000, 0x43e0_0000 - 0x4001_3000),
                region(0x43e0_2000, 0x4400_0000 - 0x43e0_2000),
            ]
        );
    }

    #[test]
    fn overlapping_outside_and_empty_exclusions_are_handled() {
        let free = free_ranges(
            RAM,
            &[
                region(0x3fff_f000, 0x2000), // straddles the base
                region(0x4000_0800, 0x100),  // inside the first cut
                region(0x4200_0000, 0),      // empty
                region(0x5000_0000, 0x1000), // outside
                region(0x43ff_f000, 0x1000), // the last page
            ],
        );
        assert_eq!(
            free.as_slice(),
            &[region(0x4000_1000, 0x43ff_f000 - 0x4000_1000)]
        );
        assert!(free_ranges(RAM, &[RAM]).is_empty());
    }

    #[test]
    fn the_pattern_differs_between_addresses_and_rounds() {
        let values: Vec<u64> = (0..4096u64)
            .map(|i| pattern(0x4000_0000 + 8 * i, 0))
            .collect();
        let mut unique = values.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), values.len(), "neighbouring words differ");
        for round in 0..4 {
            assert_ne!(
                pattern(0x4000_0000, round),
                pattern(0x4000_0000, round + 1),
                "round {round} and the next differ"
            );
        }
    }

    #[test]
    fn fill_then_verify_passes_and_finds_a_changed_word() {
        let mut buffer = vec![0u64; 512];
        let base = buffer.as_mut_ptr() as u64;
        let range = region(base, 512 * 8);
        // SAFETY: `range` is exactly `buffer`, which nothing else uses.
        unsafe {
            fill(range, 1);
            assert_eq!(verify(range, 1), Ok(()));
            assert!(verify(range, 2).is_err(), "another round's pattern differs");
        }
        buffer[100] ^= 1;
        // SAFETY: as above.
        let (mismatch, count) = unsafe { verify(range, 1) }.unwrap_err();
        assert_eq!(count, 1);
        assert_eq!(mismatch.address, base + 800);
        assert_eq!(mismatch.found, mismatch.expected ^ 1);
    }

    #[test]
    fn verify_zero_finds_every_word_left_over() {
        let mut buffer = vec![0u64; 64];
        let range = region(buffer.as_mut_ptr() as u64, 64 * 8);
        // SAFETY: `range` is exactly `buffer`, only read.
        assert_eq!(unsafe { verify_zero(range) }, Ok(()));
        buffer[3] = 7;
        buffer[60] = 1;
        // SAFETY: as above.
        let (mismatch, count) = unsafe { verify_zero(range) }.unwrap_err();
        assert_eq!((count, mismatch.found, mismatch.expected), (2, 7, 0));
    }

    #[test]
    fn unaligned_edges_are_left_alone() {
        let mut buffer = vec![0u64; 4];
        let base = buffer.as_mut_ptr() as u64;
        // SAFETY: the words touched lie inside `buffer`.
        unsafe { fill(region(base + 4, 24), 0) };
        assert_eq!(buffer[0], 0);
        assert_eq!(buffer[1], pattern(base + 8, 0));
        assert_eq!(buffer[2], pattern(base + 16, 0));
        assert_eq!(buffer[3], 0, "the last word is only partly inside");
    }
}
