//! Address types: host physical addresses and ranges of them.
//!
//! Host physical (`PhysAddr`), guest physical (intermediate physical, added
//! with stage 2) and virtual addresses are distinct types so that one is never
//! passed where another is meant. At EL2 Tessera identity-maps what it uses,
//! so a `PhysAddr` is also the address EL2 code dereferences.
//!
//! Addresses and sizes come from DTBs and overlays: arithmetic is checked.

#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use core::fmt;

// Tessera runs only on 64-bit targets, where an address or size in u64
// always fits a usize; `to_usize` relies on it.
const _: () = assert!(core::mem::size_of::<usize>() == core::mem::size_of::<u64>());

/// A u64 address or size as a usize (lossless: see the assertion above).
#[allow(
    clippy::cast_possible_truncation,
    reason = "usize is 64 bits wide, asserted above"
)]
pub const fn to_usize(value: u64) -> usize {
    value as usize
}

/// A host physical address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysAddr(pub u64);

impl PhysAddr {
    /// The address `offset` bytes further, or `None` on overflow.
    pub fn checked_add(self, offset: u64) -> Option<PhysAddr> {
        self.0.checked_add(offset).map(PhysAddr)
    }

    /// Whether the address is a multiple of `align` (a power of two; 0
    /// counts as 1).
    pub fn is_aligned(self, align: u64) -> bool {
        self.0 & low_bits(align) == 0
    }

    /// The address as a pointer-sized integer (at EL2 identity-mapped, so usable as a pointer).
    pub const fn as_usize(self) -> usize {
        to_usize(self.0)
    }

    /// Rounds down to a multiple of `align` (a power of two).
    pub fn align_down(self, align: u64) -> PhysAddr {
        PhysAddr(self.0 & !low_bits(align))
    }

    /// Rounds up to a multiple of `align` (a power of two), or `None` on overflow.
    pub fn align_up(self, align: u64) -> Option<PhysAddr> {
        let mask = low_bits(align);
        Some(PhysAddr(self.0.checked_add(mask)? & !mask))
    }
}

/// The bits below a power-of-two `align` (none for 0 or 1).
fn low_bits(align: u64) -> u64 {
    align.saturating_sub(1)
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A non-empty range of host physical memory, `[start, start + size)`, whose
/// end does not overflow (checked at construction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysRange {
    start: PhysAddr,
    size: u64,
}

impl PhysRange {
    /// A range, or `None` if `size` is 0 or the end would overflow 64 bits.
    pub fn new(start: PhysAddr, size: u64) -> Option<PhysRange> {
        let last = size
            .checked_sub(1)
            .and_then(|extra| start.0.checked_add(extra));
        last.is_some().then_some(PhysRange { start, size })
    }

    /// The range `[start, end)`, or `None` if it is empty or reversed.
    pub fn from_bounds(start: PhysAddr, end: PhysAddr) -> Option<PhysRange> {
        PhysRange::new(start, end.0.checked_sub(start.0)?)
    }

    /// The range from `first` to `last`, both included, or `None` if it
    /// is reversed or is the whole 64-bit space (its size needs 65 bits).
    pub fn spanning(first: PhysAddr, last: PhysAddr) -> Option<PhysRange> {
        let size = last.0.checked_sub(first.0)?.checked_add(1)?;
        PhysRange::new(first, size)
    }

    pub fn start(&self) -> PhysAddr {
        self.start
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// The last byte's address (never overflows, unlike the exclusive end).
    pub fn last(&self) -> PhysAddr {
        // `new` made sure that this neither wraps nor underflows.
        PhysAddr(self.start.0.saturating_add(self.size.saturating_sub(1)))
    }

    /// The exclusive end, or `None` if the range reaches the top of the address space.
    pub fn end(&self) -> Option<PhysAddr> {
        self.start.checked_add(self.size)
    }

    pub fn contains(&self, addr: PhysAddr) -> bool {
        self.start <= addr && addr <= self.last()
    }

    /// Whether `other` lies entirely inside this range.
    pub fn contains_range(&self, other: &PhysRange) -> bool {
        self.start <= other.start && other.last() <= self.last()
    }

    pub fn overlaps(&self, other: &PhysRange) -> bool {
        self.start <= other.last() && other.start <= self.last()
    }

    /// The smallest range of whole `align`-sized units (a power of two) that covers this one.
    pub fn align_outward(&self, align: u64) -> Option<PhysRange> {
        let start = self.start.align_down(align);
        let end = PhysAddr(self.last().0)
            .align_down(align)
            .checked_add(align)?;
        Some(PhysRange {
            start,
            size: end.0.checked_sub(start.0)?,
        })
    }
}

impl fmt::Display for PhysRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.end() {
            Some(end) => write!(f, "{:#x}..{:#x}", self.start.0, end.0),
            None => write!(f, "{:#x}..=0xffffffffffffffff", self.start.0),
        }
    }
}

/// Sorts a short list in place. Insertion sort: the lists Tessera sorts
/// (RAM banks, reservations) have a handful of entries, and core's
/// quicksort would cost more code than all of them.
pub fn sort_small<T: Ord>(items: &mut [T]) {
    sort_small_by(items, T::cmp);
}

/// [`sort_small`] by `order`.
pub fn sort_small_by<T>(items: &mut [T], mut order: impl FnMut(&T, &T) -> core::cmp::Ordering) {
    for i in 1..items.len() {
        let mut j = i;
        while let Some(before) = j.checked_sub(1)
            && let (Some(a), Some(b)) = (items.get(before), items.get(j))
            && order(a, b) == core::cmp::Ordering::Greater
        {
            items.swap(before, j);
            j = before;
        }
    }
}

/// Formats a byte count the way people read sizes: `2 GiB`, `512 KiB`,
/// `4.0 KiB` (4100 bytes), `1023 B`.
#[derive(Clone, Copy, Debug)]
pub struct ByteSize(pub u64);

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u32); 6] = [
            ("EiB", 60),
            ("PiB", 50),
            ("TiB", 40),
            ("GiB", 30),
            ("MiB", 20),
            ("KiB", 10),
        ];
        // Exact where that stays short enough to read ("12290 MiB", not
        // "18014398509481980 KiB"); else one decimal of the largest unit.
        const MAX_EXACT: u64 = 1 << 20;
        for (unit, shift) in UNITS {
            let scale = 1u64 << shift;
            if self.0 >= scale && self.0.is_multiple_of(scale) && self.0 >> shift < MAX_EXACT {
                return write!(f, "{} {unit}", self.0 >> shift);
            }
        }
        for (unit, shift) in UNITS {
            if self.0 >= (1u64 << shift) {
                // One decimal is enough to read a size; integer arithmetic only.
                let whole = self.0 >> shift;
                // The remainder is below 2^shift (at most 2^60): times ten fits.
                let remainder = self.0 & low_bits(1u64 << shift);
                let tenths = remainder.saturating_mul(10) >> shift;
                return write!(f, "{whole}.{tenths} {unit}");
            }
        }
        write!(f, "{} B", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_sizes_read_in_the_largest_unit() {
        assert_eq!(ByteSize(0xffff_ffff_ffff_f000).to_string(), "15.9 EiB");
        assert_eq!(ByteSize(1 << 50).to_string(), "1 PiB");
        assert_eq!(ByteSize(48 << 10).to_string(), "48 KiB");
        assert_eq!(ByteSize(12_290 << 20).to_string(), "12290 MiB");
        assert_eq!(ByteSize((1 << 20) << 10).to_string(), "1 GiB");
    }

    #[test]
    fn range_rejects_empty_and_overflowing() {
        assert!(PhysRange::new(PhysAddr(0x1000), 0).is_none());
        assert!(PhysRange::new(PhysAddr(u64::MAX), 2).is_none());
        let top = PhysRange::new(PhysAddr(u64::MAX - 0xfff), 0x1000).unwrap();
        assert_eq!(
            top.end(),
            None,
            "a range touching the top has no exclusive end"
        );
        assert_eq!(top.last(), PhysAddr(u64::MAX));
    }

    #[test]
    fn overlap_is_inclusive_of_last_byte_only() {
        let a = PhysRange::new(PhysAddr(0x1000), 0x1000).unwrap();
        let b = PhysRange::new(PhysAddr(0x2000), 0x1000).unwrap();
        let c = PhysRange::new(PhysAddr(0x1fff), 1).unwrap();
        assert!(!a.overlaps(&b), "adjacent ranges do not overlap");
        assert!(a.overlaps(&c) && c.overlaps(&a));
        assert!(a.contains_range(&c));
    }

    #[test]
    fn align_outward_covers_partial_pages() {
        let r = PhysRange::new(PhysAddr(0x1010), 0x20).unwrap();
        assert_eq!(
            r.align_outward(0x1000).unwrap(),
            PhysRange::new(PhysAddr(0x1000), 0x1000).unwrap()
        );
        let r = PhysRange::new(PhysAddr(0xfff), 2).unwrap();
        assert_eq!(r.align_outward(0x1000).unwrap().size(), 0x2000);
    }

    #[test]
    fn a_range_to_the_top_of_the_address_space_displays() {
        let top = PhysRange::new(PhysAddr(u64::MAX - 0xfff), 0x1000).unwrap();
        assert_eq!(top.to_string(), "0xfffffffffffff000..=0xffffffffffffffff");
        assert_eq!(
            PhysRange::new(PhysAddr(0x1000), 0x10).unwrap().to_string(),
            "0x1000..0x1010"
        );
    }

    #[test]
    fn sort_small_sorts() {
        let mut items = [5, 1, 4, 1, 3];
        sort_small(&mut items);
        assert_eq!(items, [1, 1, 3, 4, 5]);
    }

    #[test]
    fn byte_size_reads_naturally() {
        assert_eq!(ByteSize(2 << 30).to_string(), "2 GiB");
        assert_eq!(ByteSize(948 << 20).to_string(), "948 MiB");
        assert_eq!(ByteSize(1536).to_string(), "1.5 KiB");
        assert_eq!(ByteSize(100).to_string(), "100 B");
    }
}
