//! Free memory: RAM banks minus everything reserved, and first-fit placement in it.

#![deny(clippy::indexing_slicing)]

use heapless::Vec;

use super::address::{PhysAddr, PhysRange, sort_small};
use crate::hw::memory::{MAX_MEMORY_BANKS, MAX_RESERVED, MemoryMap};

/// Most free ranges: each reservation can split one range in two.
pub const MAX_FREE_RANGES: usize = MAX_MEMORY_BANKS + MAX_RESERVED;

/// The free ranges of `map` in ascending order.
pub fn free_ranges(map: &MemoryMap) -> Vec<PhysRange, MAX_FREE_RANGES> {
    let mut free = Vec::new();
    for bank in &map.banks {
        let mut holes: Vec<PhysRange, MAX_RESERVED> = map
            .reserved
            .iter()
            .map(|r| r.range)
            .filter(|r| r.overlaps(bank))
            .collect();
        sort_small(&mut holes);
        // `cursor` is the first byte not yet known to be reserved or emitted;
        // u128 so that a bank reaching 2^64 needs no special case.
        let mut cursor = u128::from(bank.start().0);
        let bank_end = u128::from(bank.last().0) + 1;
        for hole in &holes {
            let hole_start = u128::from(hole.start().0);
            if hole_start > cursor {
                push_range(&mut free, cursor, hole_start.min(bank_end));
            }
            cursor = cursor.max(u128::from(hole.last().0) + 1);
        }
        if cursor < bank_end {
            push_range(&mut free, cursor, bank_end);
        }
    }
    free
}

fn push_range(free: &mut Vec<PhysRange, MAX_FREE_RANGES>, start: u128, end: u128) {
    let (Ok(start), Ok(size)) = (u64::try_from(start), u64::try_from(end - start)) else {
        return;
    };
    // Free RAM that continues where the last range ended (banks that
    // touch) is one range with it.
    if let Some(last) = free.last_mut()
        && last.end() == Some(PhysAddr(start))
        && let Some(joined) = last
            .size()
            .checked_add(size)
            .and_then(|size| PhysRange::new(last.start(), size))
    {
        *last = joined;
        return;
    }
    if let Some(range) = PhysRange::new(PhysAddr(start), size) {
        // Capacity is the worst case of banks + reservations, so this cannot be full.
        let _ = free.push(range);
    }
}

/// Finds `size` bytes aligned to `align` (a power of two) in `free`,
/// preferring the lowest address at or above `prefer_above`, else the lowest anywhere.
pub fn place(
    free: &[PhysRange],
    size: u64,
    align: u64,
    prefer_above: PhysAddr,
) -> Option<PhysRange> {
    let fit = |range: &PhysRange, floor: PhysAddr| -> Option<PhysRange> {
        let start = range.start().max(floor).align_up(align)?;
        let candidate = PhysRange::new(start, size)?;
        range.contains_range(&candidate).then_some(candidate)
    };
    free.iter()
        .find_map(|r| fit(r, prefer_above))
        .or_else(|| free.iter().find_map(|r| fit(r, r.start())))
}

/// Finds `size` bytes aligned to `align` (a power of two) in `free`, as
/// high as possible: partitions take RAM from the top, Tessera's heap from
/// just above its image, so the two do not compete for the same end.
pub fn place_highest(free: &[PhysRange], size: u64, align: u64) -> Option<PhysRange> {
    free.iter().rev().find_map(|range| {
        let top = range.last().0.saturating_add(1);
        let start = PhysAddr(top.checked_sub(size)?).align_down(align);
        let candidate = PhysRange::new(start, size)?;
        range.contains_range(&candidate).then_some(candidate)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::memory::ReservedKind;

    fn range(start: u64, size: u64) -> PhysRange {
        PhysRange::new(PhysAddr(start), size).unwrap()
    }

    fn map(banks: &[PhysRange], reserved: &[PhysRange]) -> MemoryMap {
        let mut map = MemoryMap::default();
        map.banks.extend_from_slice(banks).unwrap();
        for r in reserved {
            assert!(map.reserve(*r, ReservedKind::MemReserve));
        }
        map
    }

    #[test]
    fn place_highest_takes_the_top_of_the_highest_range_that_fits() {
        let free = [
            range(0x4000_0000, 0x100_0000),
            range(0x8000_0000, 0x30_0000),
        ];
        assert_eq!(
            place_highest(&free, 0x20_0000, 0x20_0000),
            Some(range(0x8000_0000, 0x20_0000)),
            "aligned down inside the highest range"
        );
        assert_eq!(
            place_highest(&free, 0x80_0000, 0x20_0000),
            Some(range(0x4080_0000, 0x80_0000)),
            "too big for the highest range: the next one down"
        );
        assert_eq!(place_highest(&free, 0x200_0000, 0x20_0000), None);
    }

    #[test]
    fn banks_that_touch_are_one_range() {
        // As the Raspberry Pi 5's firmware reports 8 GiB: 0..1 GiB, then on.
        let banks = [range(0, 0x4000_0000), range(0x4000_0000, 0x1_c000_0000)];
        let across = range(0x3000_0000, 0x2000_0000);
        let map = map(&banks, &[]);
        assert!(map.is_ram(&across));
        assert_eq!(free_ranges(&map).as_slice(), [range(0, 0x2_0000_0000)]);
        // A gap between banks is not RAM.
        let apart = [range(0, 0x4000_0000), range(0x4000_1000, 0x1000_0000)];
        let map_apart = self::map(&apart, &[]);
        assert!(!map_apart.is_ram(&across));
        assert_eq!(free_ranges(&map_apart).len(), 2);
        // A reservation at the boundary still splits the free RAM.
        let split = self::map(&banks, &[range(0x3fff_f000, 0x2000)]);
        assert_eq!(free_ranges(&split).len(), 2);
    }

    #[test]
    fn reservations_split_banks() {
        let m = map(
            &[range(0x4000_0000, 0x8000_0000)],
            &[range(0x4020_0000, 0x10_0000), range(0x4800_0000, 0x1000)],
        );
        let free = free_ranges(&m);
        assert_eq!(
            free.as_slice(),
            &[
                range(0x4000_0000, 0x20_0000),
                range(0x4030_0000, 0x4800_0000 - 0x4030_0000),
                range(0x4800_1000, 0xc000_0000 - 0x4800_1000),
            ]
        );
    }

    #[test]
    fn overlapping_and_out_of_bank_reservations_are_tolerated() {
        let m = map(
            &[range(0x1000, 0x10000)],
            &[
                range(0x0, 0x2000),
                range(0x1800, 0x1000),
                range(0x20000, 0x1000),
                range(0x10000, 0x2000),
            ],
        );
        assert_eq!(
            free_ranges(&m).as_slice(),
            &[range(0x2800, 0x10000 - 0x2800)]
        );
    }

    #[test]
    fn bank_reaching_top_of_address_space() {
        let top = range(u64::MAX - 0xffff, 0x10000);
        let m = map(&[top], &[range(u64::MAX - 0xfff, 0x1000)]);
        assert_eq!(
            free_ranges(&m).as_slice(),
            &[range(u64::MAX - 0xffff, 0xf000)]
        );
    }

    #[test]
    fn fully_reserved_bank_has_no_free_range() {
        let m = map(&[range(0x1000, 0x1000)], &[range(0x1000, 0x1000)]);
        assert!(free_ranges(&m).is_empty());
    }

    #[test]
    fn place_prefers_memory_above_the_hint_then_falls_back() {
        let free = [range(0x1000, 0x10_0000), range(0x4000_0000, 0x40_0000)];
        let above = place(&free, 0x20_0000, 0x20_0000, PhysAddr(0x4000_0000)).unwrap();
        assert_eq!(above, range(0x4000_0000, 0x20_0000));
        let fallback = place(&free, 0x1000, 0x1000, PhysAddr(0x8000_0000)).unwrap();
        assert_eq!(
            fallback,
            range(0x1000, 0x1000),
            "nothing above the hint: lowest fit anywhere"
        );
        assert!(
            place(&free, 0x100_0000, 0x1000, PhysAddr(0)).is_none(),
            "too large to fit"
        );
    }
}
