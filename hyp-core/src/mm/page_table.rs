//! Building VMSAv8-64 translation tables with the 4 KiB granule (Arm ARM D8).
//!
//! One builder serves the EL2 stage-1 tables of the hypervisor and, later,
//! the stage-2 tables of partitions: both use the same descriptor format and
//! differ only in the attribute bits ([`Stage`]). Mappings use the largest
//! block that alignment allows (1 GiB at level 1, 2 MiB at level 2, else
//! 4 KiB pages), because every table level a walk avoids is a TLB miss saved.
//!
//! Tables come from a fixed [`TablePool`] whose physical address is known, so
//! the builder runs on the host in tests exactly as at EL2.
//!
//! Tables are built before they go live (the EL2 map before the MMU is on).
//! Changing a live table, splitting a block in particular, needs
//! break-before-make with TLB maintenance (Arm ARM D8.14), which this module
//! does not do yet: stage-2 changes of running partitions must add it.

#![deny(clippy::indexing_slicing)]

use core::fmt;

use super::address::PhysAddr;

/// Translation granule and page size.
pub const PAGE_SIZE: u64 = 4096;
/// Descriptors per table.
pub const ENTRIES_PER_TABLE: usize = 512;
/// Bits of input address each level resolves.
const BITS_PER_LEVEL: u32 = 9;
/// The level that maps pages.
const PAGE_LEVEL: usize = 3;

// Descriptor fields (Arm ARM D8.3).
const DESC_VALID: u64 = 1 << 0;
/// Bit 1: table (levels 0-2) or page (level 3); clear for a block.
const DESC_TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_INDEX_SHIFT: u32 = 2;
/// Stage-1 AP[2]: read-only at every EL of the regime.
const S1_AP_READ_ONLY: u64 = 1 << 7;
/// Stage-1 AP[1]: RES1 in a regime with one exception level, such as
/// non-VHE EL2 (Arm ARM D8.4.1.2.1; KVM's nVHE tables set it too).
const S1_AP_RES1_SINGLE_EL: u64 = 1 << 6;
/// Stage-2 S2AP[7:6]: read (bit 6) and write (bit 7) permission.
const S2_AP_READ: u64 = 1 << 6;
const S2_AP_WRITE: u64 = 1 << 7;
/// SH[9:8] = 0b11: inner shareable.
const SH_INNER_SHAREABLE: u64 = 0b11 << 8;
/// Access flag: set so that no access-flag fault is ever taken.
const DESC_AF: u64 = 1 << 10;
/// Execute-never (stage-1 EL2 XN; stage-2 XN[1]).
const DESC_XN: u64 = 1 << 54;
/// Output address bits [47:12].
const OUTPUT_ADDRESS_MASK: u64 = 0x0000_ffff_ffff_f000;
/// An invalid (faulting) descriptor.
const INVALID: u64 = 0;
/// Attribute bits carried over when a block is split into smaller entries.
const LEAF_ATTRIBUTES_MASK: u64 = !OUTPUT_ADDRESS_MASK & !DESC_TABLE_OR_PAGE;

/// MAIR_EL2 attribute index of Device-nGnRE memory.
pub const MAIR_INDEX_DEVICE: u64 = 0;
/// MAIR_EL2 attribute index of Normal, inner and outer write-back cacheable memory.
pub const MAIR_INDEX_NORMAL: u64 = 1;
/// MAIR encodings (Arm ARM D19.2 MAIR_EL2): Device-nGnRE is 0x04; Normal
/// write-back, read- and write-allocate, non-transient is 0xff.
const MAIR_DEVICE_NGNRE: u64 = 0x04;
const MAIR_NORMAL_WRITE_BACK: u64 = 0xff;
/// The MAIR_EL2 value the stage-1 attributes assume.
pub const MAIR_EL2_VALUE: u64 = (MAIR_DEVICE_NGNRE << (8 * MAIR_INDEX_DEVICE))
    | (MAIR_NORMAL_WRITE_BACK << (8 * MAIR_INDEX_NORMAL));
/// Stage-2 MemAttr[3:0] (Arm ARM D8.6.5): Normal inner and outer write-back, and Device-nGnRE.
const S2_MEMATTR_NORMAL_WRITE_BACK: u64 = 0b1111;
const S2_MEMATTR_DEVICE_NGNRE: u64 = 0b0001;

/// Which translation stage the tables are for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The EL2 (non-VHE) stage-1 regime: Tessera's own mappings.
    Stage1El2,
    /// Stage 2 of the EL1&0 regime: a partition's guest-physical map.
    Stage2,
}

/// Memory type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryKind {
    Normal,
    Device,
}

/// Access permissions. Tessera's own mappings are W^X; only stage 2 (a
/// guest's RAM, whose own stage 1 decides) may be writable and executable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadWrite,
    ReadOnly,
    ReadExecute,
    /// Stage 2 only.
    ReadWriteExecute,
}

/// What a mapping is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attributes {
    pub kind: MemoryKind,
    pub access: Access,
}

impl Attributes {
    pub const NORMAL_RW: Attributes = Attributes {
        kind: MemoryKind::Normal,
        access: Access::ReadWrite,
    };
    pub const NORMAL_RO: Attributes = Attributes {
        kind: MemoryKind::Normal,
        access: Access::ReadOnly,
    };
    pub const NORMAL_RX: Attributes = Attributes {
        kind: MemoryKind::Normal,
        access: Access::ReadExecute,
    };
    pub const DEVICE_RW: Attributes = Attributes {
        kind: MemoryKind::Device,
        access: Access::ReadWrite,
    };
    /// A guest's RAM at stage 2: the guest's own tables set the permissions.
    pub const GUEST_RAM: Attributes = Attributes {
        kind: MemoryKind::Normal,
        access: Access::ReadWriteExecute,
    };

    /// The descriptor bits for a leaf with these attributes.
    fn leaf_bits(self, stage: Stage) -> u64 {
        let (memory, permissions) = match stage {
            Stage::Stage1El2 => {
                let index = match self.kind {
                    MemoryKind::Normal => MAIR_INDEX_NORMAL,
                    MemoryKind::Device => MAIR_INDEX_DEVICE,
                };
                let ap = match self.access {
                    Access::ReadWrite | Access::ReadWriteExecute => 0,
                    Access::ReadOnly | Access::ReadExecute => S1_AP_READ_ONLY,
                };
                (index << ATTR_INDEX_SHIFT, ap | S1_AP_RES1_SINGLE_EL)
            }
            Stage::Stage2 => {
                let memattr = match self.kind {
                    MemoryKind::Normal => S2_MEMATTR_NORMAL_WRITE_BACK,
                    MemoryKind::Device => S2_MEMATTR_DEVICE_NGNRE,
                };
                let s2ap = match self.access {
                    Access::ReadWrite | Access::ReadWriteExecute => S2_AP_READ | S2_AP_WRITE,
                    Access::ReadOnly | Access::ReadExecute => S2_AP_READ,
                };
                (memattr << ATTR_INDEX_SHIFT, s2ap)
            }
        };
        let shareability = match self.kind {
            MemoryKind::Normal => SH_INNER_SHAREABLE,
            // Device memory is always outer shareable; SH is ignored.
            MemoryKind::Device => 0,
        };
        let execute_never = match self.access {
            Access::ReadExecute | Access::ReadWriteExecute => 0,
            Access::ReadWrite | Access::ReadOnly => DESC_XN,
        };
        DESC_VALID | memory | permissions | shareability | DESC_AF | execute_never
    }

    /// Decodes the attributes of a leaf descriptor built by this module.
    fn from_leaf(descriptor: u64, stage: Stage) -> Attributes {
        let attribute = (descriptor >> ATTR_INDEX_SHIFT) & 0b1111;
        let kind = match stage {
            Stage::Stage1El2 if attribute & 0b111 == MAIR_INDEX_NORMAL => MemoryKind::Normal,
            Stage::Stage2 if attribute == S2_MEMATTR_NORMAL_WRITE_BACK => MemoryKind::Normal,
            _ => MemoryKind::Device,
        };
        let writable = match stage {
            Stage::Stage1El2 => descriptor & S1_AP_READ_ONLY == 0,
            Stage::Stage2 => descriptor & S2_AP_WRITE != 0,
        };
        let access = match (writable, descriptor & DESC_XN == 0) {
            (true, true) => Access::ReadWriteExecute,
            (true, false) => Access::ReadWrite,
            (false, true) => Access::ReadExecute,
            (false, false) => Access::ReadOnly,
        };
        Attributes { kind, access }
    }
}

/// One 4 KiB translation table.
#[derive(Clone)]
#[repr(C, align(4096))]
pub struct Table(pub [u64; ENTRIES_PER_TABLE]);

impl Table {
    pub const EMPTY: Table = Table([0; ENTRIES_PER_TABLE]);
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Table({} valid entries)",
            self.0.iter().filter(|&&d| d & DESC_VALID != 0).count()
        )
    }
}

/// A fixed set of tables at a known physical address.
#[derive(Debug)]
pub struct TablePool<'t> {
    tables: &'t mut [Table],
    used: usize,
    /// Physical address of `tables[0]`.
    base: PhysAddr,
}

impl<'t> TablePool<'t> {
    /// A pool of `tables`, the first of which is at physical address `base`.
    /// At EL2 (identity-mapped) `base` is the tables' own address; in host
    /// tests any page-aligned value.
    pub fn new(tables: &'t mut [Table], base: PhysAddr) -> Self {
        TablePool {
            tables,
            used: 0,
            base,
        }
    }

    fn allocate(&mut self) -> Option<usize> {
        let index = self.used;
        let table = self.tables.get_mut(index)?;
        *table = Table::EMPTY;
        self.used += 1;
        Some(index)
    }

    fn address(&self, index: usize) -> PhysAddr {
        PhysAddr(self.base.0 + index as u64 * PAGE_SIZE)
    }

    fn index_of(&self, address: PhysAddr) -> Option<usize> {
        let offset = address.0.checked_sub(self.base.0)?;
        let index = usize::try_from(offset / PAGE_SIZE).ok()?;
        (offset % PAGE_SIZE == 0 && index < self.used).then_some(index)
    }

    /// Tables handed out so far.
    pub fn used(&self) -> usize {
        self.used
    }

    /// The physical range the pool's used tables occupy.
    pub fn used_bytes(&self) -> u64 {
        self.used as u64 * PAGE_SIZE
    }
}

/// Why a mapping could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// Addresses or size not multiples of [`PAGE_SIZE`].
    Misaligned { input: u64, output: u64, size: u64 },
    /// The input range does not fit the table's input address size.
    OutOfRange {
        input: u64,
        size: u64,
        input_bits: u32,
    },
    /// The output address needs more than 48 bits.
    OutputTooLarge { output: u64 },
    /// The pool has no table left.
    OutOfTables { capacity: usize },
    /// Writable and executable memory asked of Tessera's own (W^X) tables.
    WritableAndExecutable,
}

impl fmt::Display for MapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MapError::Misaligned {
                input,
                output,
                size,
            } => write!(
                f,
                "mapping {input:#x} -> {output:#x} size {size:#x} is not {PAGE_SIZE:#x}-aligned"
            ),
            MapError::OutOfRange {
                input,
                size,
                input_bits,
            } => write!(
                f,
                "mapping {input:#x} size {size:#x} exceeds the {input_bits}-bit input address space"
            ),
            MapError::OutputTooLarge { output } => {
                write!(f, "output address {output:#x} needs more than 48 bits")
            }
            MapError::OutOfTables { capacity } => {
                write!(f, "all {capacity} translation tables are in use")
            }
            MapError::WritableAndExecutable => {
                f.write_str("Tessera's own mappings are never writable and executable")
            }
        }
    }
}

/// Number of leaf entries per level: index 1 counts 1 GiB blocks, 2 counts
/// 2 MiB blocks, 3 counts 4 KiB pages.
pub type LeafCounts = [u64; 4];

/// A translation table tree being built.
#[derive(Debug)]
pub struct PageTable<'p, 't> {
    pool: &'p mut TablePool<'t>,
    root: usize,
    stage: Stage,
    input_bits: u32,
    start_level: usize,
}

/// Bytes mapped by one entry at `level`.
#[allow(clippy::cast_possible_truncation, reason = "levels are 0 to 3")]
const fn entry_size(level: usize) -> u64 {
    PAGE_SIZE << (BITS_PER_LEVEL * (PAGE_LEVEL - level) as u32)
}

#[allow(
    clippy::cast_possible_truncation,
    reason = "levels are 0 to 3; the index is masked to 9 bits"
)]
fn entry_index(input: u64, level: usize) -> usize {
    let shift = PAGE_SIZE.trailing_zeros() + BITS_PER_LEVEL * (PAGE_LEVEL - level) as u32;
    ((input >> shift) & (ENTRIES_PER_TABLE as u64 - 1)) as usize
}

impl<'p, 't> PageTable<'p, 't> {
    /// An empty tree translating `input_bits`-bit addresses (25 to 48).
    pub fn new(
        pool: &'p mut TablePool<'t>,
        stage: Stage,
        input_bits: u32,
    ) -> Result<Self, MapError> {
        let capacity = pool.tables.len();
        let root = pool.allocate().ok_or(MapError::OutOfTables { capacity })?;
        let input_bits = input_bits.clamp(25, 48);
        // The start level resolves the top bits: level 0 above 39 bits,
        // level 1 above 30 (no concatenated tables).
        let start_level = match input_bits {
            40..=48 => 0,
            31..=39 => 1,
            _ => 2,
        };
        Ok(PageTable {
            pool,
            root,
            stage,
            input_bits,
            start_level,
        })
    }

    /// Physical address of the root table (for TTBR0_EL2 or VTTBR_EL2).
    pub fn root_address(&self) -> PhysAddr {
        self.pool.address(self.root)
    }

    /// The level of the root table.
    pub fn start_level(&self) -> usize {
        self.start_level
    }

    /// Input address size in bits (64 - T0SZ).
    pub fn input_bits(&self) -> u32 {
        self.input_bits
    }

    /// Maps `[input, input + size)` to `[output, output + size)`. A later
    /// mapping replaces what an earlier one put in the same range, splitting
    /// blocks where needed.
    pub fn map(
        &mut self,
        input: u64,
        output: PhysAddr,
        size: u64,
        attributes: Attributes,
    ) -> Result<(), MapError> {
        let output = output.0;
        if !(input | output | size).is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Misaligned {
                input,
                output,
                size,
            });
        }
        let limit = 1u64 << self.input_bits;
        if input.checked_add(size).is_none_or(|end| end > limit) {
            return Err(MapError::OutOfRange {
                input,
                size,
                input_bits: self.input_bits,
            });
        }
        if output.checked_add(size).is_none_or(|end| end > 1 << 48) {
            return Err(MapError::OutputTooLarge { output });
        }
        if self.stage == Stage::Stage1El2 && attributes.access == Access::ReadWriteExecute {
            return Err(MapError::WritableAndExecutable);
        }
        self.write_range(input, output, size, attributes.leaf_bits(self.stage))
    }

    /// Removes whatever maps `[input, input + size)`, splitting blocks
    /// around it (for guard pages).
    pub fn unmap(&mut self, input: u64, size: u64) -> Result<(), MapError> {
        if !(input | size).is_multiple_of(PAGE_SIZE) {
            return Err(MapError::Misaligned {
                input,
                output: 0,
                size,
            });
        }
        if input
            .checked_add(size)
            .is_none_or(|end| end > 1u64 << self.input_bits)
        {
            return Err(MapError::OutOfRange {
                input,
                size,
                input_bits: self.input_bits,
            });
        }
        self.write_range(input, 0, size, INVALID)
    }

    /// Writes leaves for a range: `bits` are the leaf attributes, or [`INVALID`].
    fn write_range(
        &mut self,
        input: u64,
        output: u64,
        size: u64,
        bits: u64,
    ) -> Result<(), MapError> {
        let mut done = 0;
        while done < size {
            let (at, to, remaining) = (input + done, output + done, size - done);
            // The largest block both addresses are aligned to and that fits.
            let level = (1..=PAGE_LEVEL)
                .find(|&level| {
                    let block = entry_size(level);
                    level >= self.start_level.max(1) && (at | to) % block == 0 && remaining >= block
                })
                .unwrap_or(PAGE_LEVEL);
            done += self.set_leaves(self.root, self.start_level, at, to, level, remaining, bits)?;
        }
        Ok(())
    }

    fn capacity_error(&self) -> MapError {
        MapError::OutOfTables {
            capacity: self.pool.tables.len(),
        }
    }

    fn read(&self, table: usize, index: usize) -> u64 {
        self.pool
            .tables
            .get(table)
            .and_then(|t| t.0.get(index))
            .copied()
            .unwrap_or(0)
    }

    fn write(&mut self, table: usize, index: usize, descriptor: u64) {
        if let Some(slot) = self
            .pool
            .tables
            .get_mut(table)
            .and_then(|t| t.0.get_mut(index))
        {
            *slot = descriptor;
        }
    }

    /// Writes leaves at `level` from `input` on, descending from `table` at
    /// `current`, up to the end of `size` or of the table that holds them,
    /// whichever comes first, and returns the bytes covered. One descent
    /// serves the whole run, instead of one descent from the root per leaf:
    /// the runs of 4 KiB pages (the GIC redistributors, the DTB) made that
    /// most of the cost of building the EL2 map.
    #[allow(
        clippy::too_many_arguments,
        reason = "a recursive step: the position in the walk and the request"
    )]
    fn set_leaves(
        &mut self,
        table: usize,
        current: usize,
        input: u64,
        output: u64,
        level: usize,
        size: u64,
        bits: u64,
    ) -> Result<u64, MapError> {
        let index = entry_index(input, current);
        if current == level {
            let step = entry_size(level);
            let wanted = usize::try_from(size / step).unwrap_or(usize::MAX);
            let count = wanted.clamp(1, ENTRIES_PER_TABLE - index);
            for i in 0..count {
                let offset = i as u64 * step;
                self.set_entry(
                    table,
                    index + i,
                    level,
                    input + offset,
                    output + offset,
                    bits,
                )?;
            }
            return Ok(count as u64 * step);
        }
        let existing = self.read(table, index);
        if bits == INVALID && existing & DESC_VALID == 0 {
            // Nothing mapped here: nothing to remove.
            return Ok(entry_size(level));
        }
        let next = if existing & DESC_VALID != 0 && existing & DESC_TABLE_OR_PAGE != 0 {
            self.pool
                .index_of(PhysAddr(existing & OUTPUT_ADDRESS_MASK))
                .ok_or(self.capacity_error())?
        } else {
            let next = self.pool.allocate().ok_or(self.capacity_error())?;
            if existing & DESC_VALID != 0 {
                // Split the block: the new table repeats it at the next level.
                let base = existing & OUTPUT_ADDRESS_MASK;
                let kind = if current + 1 == PAGE_LEVEL {
                    DESC_TABLE_OR_PAGE
                } else {
                    0
                };
                let step = entry_size(current + 1);
                for i in 0..ENTRIES_PER_TABLE {
                    let descriptor =
                        (base + i as u64 * step) | (existing & LEAF_ATTRIBUTES_MASK) | kind;
                    self.write(next, i, descriptor);
                }
            }
            let address = self.pool.address(next).0;
            self.write(table, index, address | DESC_VALID | DESC_TABLE_OR_PAGE);
            next
        };
        self.set_leaves(next, current + 1, input, output, level, size, bits)
    }

    /// Writes entry `index` of `table` (at `level`) as a leaf for `input`;
    /// where a table hangs there instead, keeps the table and overwrites
    /// every entry below it.
    fn set_entry(
        &mut self,
        table: usize,
        index: usize,
        level: usize,
        input: u64,
        output: u64,
        bits: u64,
    ) -> Result<(), MapError> {
        let existing = self.read(table, index);
        let is_table =
            existing & DESC_VALID != 0 && existing & DESC_TABLE_OR_PAGE != 0 && level < PAGE_LEVEL;
        if is_table {
            let next = self
                .pool
                .index_of(PhysAddr(existing & OUTPUT_ADDRESS_MASK))
                .ok_or(self.capacity_error())?;
            let below = level + 1;
            self.set_leaves(next, below, input, output, below, entry_size(level), bits)?;
        } else if bits == INVALID {
            self.write(table, index, INVALID);
        } else {
            let kind = if level == PAGE_LEVEL {
                DESC_TABLE_OR_PAGE
            } else {
                0
            };
            self.write(table, index, (output & OUTPUT_ADDRESS_MASK) | bits | kind);
        }
        Ok(())
    }

    /// What `input` translates to: output address, the level of the leaf, and
    /// its attributes. For tests and diagnostics.
    pub fn translate(&self, input: u64) -> Option<(PhysAddr, usize, Attributes)> {
        let mut table = self.root;
        for level in self.start_level..=PAGE_LEVEL {
            let descriptor = self.read(table, entry_index(input, level));
            if descriptor & DESC_VALID == 0 {
                return None;
            }
            let is_leaf = level == PAGE_LEVEL || descriptor & DESC_TABLE_OR_PAGE == 0;
            if is_leaf {
                let offset = input & (entry_size(level) - 1);
                let output = PhysAddr(
                    (descriptor & OUTPUT_ADDRESS_MASK & !(entry_size(level) - 1)) + offset,
                );
                return Some((output, level, Attributes::from_leaf(descriptor, self.stage)));
            }
            table = self
                .pool
                .index_of(PhysAddr(descriptor & OUTPUT_ADDRESS_MASK))?;
        }
        None
    }

    /// Calls `visit(input, output, size, attributes)` for every leaf, in
    /// ascending input order: for checks that walk the tables as the MMU would.
    pub fn for_each_leaf(&self, mut visit: impl FnMut(u64, PhysAddr, u64, Attributes)) {
        self.walk(self.root, self.start_level, 0, &mut visit);
    }

    fn walk(
        &self,
        table: usize,
        level: usize,
        base: u64,
        visit: &mut impl FnMut(u64, PhysAddr, u64, Attributes),
    ) {
        for index in 0..ENTRIES_PER_TABLE {
            let descriptor = self.read(table, index);
            if descriptor & DESC_VALID == 0 {
                continue;
            }
            let input = base + index as u64 * entry_size(level);
            if level < PAGE_LEVEL && descriptor & DESC_TABLE_OR_PAGE != 0 {
                if let Some(next) = self
                    .pool
                    .index_of(PhysAddr(descriptor & OUTPUT_ADDRESS_MASK))
                {
                    self.walk(next, level + 1, input, visit);
                }
            } else {
                visit(
                    input,
                    PhysAddr(descriptor & OUTPUT_ADDRESS_MASK & !(entry_size(level) - 1)),
                    entry_size(level),
                    Attributes::from_leaf(descriptor, self.stage),
                );
            }
        }
    }

    /// Leaf entries per level (see [`LeafCounts`]).
    pub fn leaf_counts(&self) -> LeafCounts {
        let mut counts = [0; 4];
        self.count(self.root, self.start_level, &mut counts);
        counts
    }

    fn count(&self, table: usize, level: usize, counts: &mut LeafCounts) {
        let Some(entries) = self.pool.tables.get(table) else {
            return;
        };
        for &descriptor in &entries.0 {
            if descriptor & DESC_VALID == 0 {
                continue;
            }
            if level < PAGE_LEVEL && descriptor & DESC_TABLE_OR_PAGE != 0 {
                if let Some(next) = self
                    .pool
                    .index_of(PhysAddr(descriptor & OUTPUT_ADDRESS_MASK))
                {
                    self.count(next, level + 1, counts);
                }
            } else if let Some(count) = counts.get_mut(level) {
                *count += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    fn pool_tables(n: usize) -> Vec<Table> {
        vec![Table::EMPTY; n]
    }

    /// Runs `test` on an empty 48-bit EL2 table tree with eight tables.
    fn with_el2_table(test: impl FnOnce(&mut PageTable<'_, '_>)) {
        let mut tables = pool_tables(8);
        let mut pool = TablePool::new(&mut tables, PhysAddr(0x8000_0000));
        let mut table = PageTable::new(&mut pool, Stage::Stage1El2, 48).unwrap();
        test(&mut table);
    }

    /// Identity-maps `[start, start + size)`.
    fn identity(table: &mut PageTable<'_, '_>, start: u64, size: u64, attributes: Attributes) {
        table.map(start, PhysAddr(start), size, attributes).unwrap();
    }

    #[test]
    fn aligned_ram_uses_gigabyte_blocks() {
        with_el2_table(|pt| {
            identity(pt, 0x4000_0000, 2 * GIB, Attributes::NORMAL_RW);
            assert_eq!(
                pt.leaf_counts(),
                [0, 2, 0, 0],
                "2 GiB at a 1 GiB boundary is two level-1 blocks"
            );
            let (pa, level, attrs) = pt.translate(0x7fff_1234).unwrap();
            assert_eq!(
                (pa, level, attrs),
                (PhysAddr(0x7fff_1234), 1, Attributes::NORMAL_RW)
            );
            assert!(
                pt.translate(0xc000_0000).is_none(),
                "nothing past the end is mapped"
            );
            assert!(
                pt.translate(0x3fff_ffff).is_none(),
                "nothing before the start is mapped"
            );
        });
    }

    #[test]
    fn unaligned_edges_use_the_largest_blocks_that_fit() {
        with_el2_table(|pt| {
            // 4 KiB below a 2 MiB boundary, then 2 MiB blocks up to 1 GiB, then one 1 GiB block.
            let start = 0x4000_0000 - 0x20_0000 - 0x1000;
            pt.map(
                start,
                PhysAddr(start),
                0x1000 + 0x20_0000 + GIB,
                Attributes::NORMAL_RW,
            )
            .unwrap();
            assert_eq!(pt.leaf_counts(), [0, 1, 1, 1]);
        });
    }

    #[test]
    fn remapping_inside_a_block_splits_it_and_keeps_the_rest() {
        with_el2_table(|pt| {
            identity(pt, 0x4000_0000, GIB, Attributes::NORMAL_RW);
            // W^X for an image inside RAM: text read-execute.
            identity(pt, 0x4020_0000, 0x3000, Attributes::NORMAL_RX);
            assert_eq!(pt.translate(0x4020_1000).unwrap().2, Attributes::NORMAL_RX);
            assert_eq!(
                pt.translate(0x4020_3000).unwrap().2,
                Attributes::NORMAL_RW,
                "split keeps the block's attributes"
            );
            assert_eq!(
                pt.translate(0x4040_0000).unwrap(),
                (PhysAddr(0x4040_0000), 2, Attributes::NORMAL_RW)
            );
            assert_eq!(pt.translate(0x4000_0000).unwrap().0, PhysAddr(0x4000_0000));
            let counts = pt.leaf_counts();
            assert_eq!(counts, [0, 0, 511, 512], "one 2 MiB block became 512 pages");
        });
    }

    #[test]
    fn mapping_over_a_table_replaces_every_entry_below_it() {
        with_el2_table(|pt| {
            identity(pt, 0x20_0000, 0x1000, Attributes::DEVICE_RW);
            pt.map(0, PhysAddr(0x4000_0000), GIB, Attributes::NORMAL_RO)
                .unwrap();
            let (pa, _, attrs) = pt.translate(0x20_0000).unwrap();
            assert_eq!(
                (pa, attrs),
                (PhysAddr(0x4020_0000), Attributes::NORMAL_RO),
                "the later mapping wins"
            );
        });
    }

    #[test]
    fn unmapping_a_guard_page_splits_down_to_it() {
        with_el2_table(|pt| {
            identity(pt, 0x4000_0000, GIB, Attributes::NORMAL_RW);
            pt.unmap(0x4023_8000, 0x1000).unwrap();
            assert!(pt.translate(0x4023_8000).is_none(), "the guard page faults");
            assert!(pt.translate(0x4023_8fff).is_none());
            assert_eq!(
                pt.translate(0x4023_7fff).unwrap().0,
                PhysAddr(0x4023_7fff),
                "the page below stays"
            );
            assert_eq!(
                pt.translate(0x4023_9000).unwrap().0,
                PhysAddr(0x4023_9000),
                "the page above stays"
            );
            assert_eq!(pt.leaf_counts(), [0, 0, 511, 511]);
        });
    }

    #[test]
    fn device_and_stage2_attributes_round_trip() {
        let mut tables = pool_tables(8);
        let mut pool = TablePool::new(&mut tables, PhysAddr(0));
        let mut pt = PageTable::new(&mut pool, Stage::Stage2, 40).unwrap();
        pt.map(
            0x900_0000,
            PhysAddr(0xfe20_1000),
            0x1000,
            Attributes::DEVICE_RW,
        )
        .unwrap();
        pt.map(
            0x4000_0000,
            PhysAddr(0x8000_0000),
            2 * MIB,
            Attributes::NORMAL_RW,
        )
        .unwrap();
        assert_eq!(
            pt.translate(0x900_0010).unwrap(),
            (PhysAddr(0xfe20_1010), 3, Attributes::DEVICE_RW)
        );
        assert_eq!(
            pt.translate(0x4000_0000).unwrap(),
            (PhysAddr(0x8000_0000), 2, Attributes::NORMAL_RW)
        );
    }

    #[test]
    fn stage1_descriptor_bits_match_the_architecture() {
        // Normal RW at EL2: AttrIndx 1, AP 0b01 (AP[1] is RES1 at EL2), inner shareable, AF, XN.
        let bits = Attributes::NORMAL_RW.leaf_bits(Stage::Stage1El2);
        assert_eq!(
            bits,
            1 | (1 << 2) | (1 << 6) | (0b11 << 8) | (1 << 10) | (1 << 54)
        );
        // Text: AP 0b11 (read-only), executable.
        let bits = Attributes::NORMAL_RX.leaf_bits(Stage::Stage1El2);
        assert_eq!(bits, 1 | (1 << 2) | (0b11 << 6) | (0b11 << 8) | (1 << 10));
        assert_eq!(MAIR_EL2_VALUE, 0xff04);
    }

    #[test]
    fn bad_requests_are_errors_not_panics() {
        let mut tables = pool_tables(2);
        let mut pool = TablePool::new(&mut tables, PhysAddr(0));
        let mut pt = PageTable::new(&mut pool, Stage::Stage1El2, 39).unwrap();
        assert!(matches!(
            pt.map(0x1001, PhysAddr(0), 0x1000, Attributes::NORMAL_RW),
            Err(MapError::Misaligned { .. })
        ));
        assert!(matches!(
            pt.map(1 << 39, PhysAddr(0), 0x1000, Attributes::NORMAL_RW),
            Err(MapError::OutOfRange { .. })
        ));
        assert!(matches!(
            pt.map(0, PhysAddr(!0xfff), 0x1000, Attributes::NORMAL_RW),
            Err(MapError::OutputTooLarge { .. })
        ));
        pt.map(0, PhysAddr(0), 0x1000, Attributes::NORMAL_RW)
            .unwrap_err();
        assert_eq!(
            pt.map(0, PhysAddr(0), 0x1000, Attributes::NORMAL_RW),
            Err(MapError::OutOfTables { capacity: 2 }),
            "a 4 KiB page at level 3 needs two more tables than the pool has"
        );
    }
}
