//! The register tables of the emulated GIC frames: which offsets hold
//! which registers, and the access widths each takes.
//!
//! Every register takes 32-bit accesses; GICD_IROUTER<n> and GICR_TYPER
//! also take 64-bit accesses and 32-bit accesses to either half; the
//! byte-per-INTID registers (GICD/GICR_IPRIORITYR<n>, GICD_ITARGETSR<n>)
//! and GICv2's GICD_CPENDSGIR/SPENDSGIR<n> also take 8-bit accesses (IHI
//! 0069H §12.1.3, IHI 0048B §4.1.4; the sets KVM's vgic-mmio tables and
//! QEMU accept). An access at any other width, or not naturally aligned,
//! or at an offset no row covers, reads as zero and ignores writes.

use crate::guest::mmio::AccessWidth;

/// The access widths a register takes, a bit per width in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Widths(u8);

impl Widths {
    pub const WORD: Widths = Widths(AccessWidth::Word as u8);
    pub const WORD_OR_BYTE: Widths = Widths(AccessWidth::Word as u8 | AccessWidth::Byte as u8);
    pub const WORD_OR_DOUBLE: Widths = Widths(AccessWidth::Word as u8 | AccessWidth::Double as u8);

    pub fn allows(self, width: AccessWidth) -> bool {
        self.0 & width as u8 != 0
    }
}

/// `size` bytes from `offset` hold registers of kind `register`, which
/// take `widths`.
#[derive(Debug, Clone, Copy)]
pub struct Row<R> {
    pub offset: u32,
    pub size: u32,
    pub widths: Widths,
    pub register: R,
}

impl<R> Row<R> {
    pub const fn new(offset: u32, size: u32, widths: Widths, register: R) -> Row<R> {
        Row {
            offset,
            size,
            widths,
            register,
        }
    }

    fn end(&self) -> u32 {
        self.offset.saturating_add(self.size)
    }
}

/// The register an access of `width` at `offset` lands in, if a row
/// covers the offset and takes the width, naturally aligned. `table` is
/// sorted by offset, rows apart (a test checks each table).
pub fn lookup<R: Copy>(table: &[Row<R>], offset: u32, width: AccessWidth) -> Option<R> {
    let index = table.partition_point(|row| row.end() <= offset);
    let row = table.get(index)?;
    (row.offset <= offset && row.widths.allows(width) && width.aligns(u64::from(offset)))
        .then_some(row.register)
}

/// Whether `table` is sorted by offset with no two rows overlapping.
#[cfg(test)]
pub fn is_well_formed<R>(table: &[Row<R>]) -> bool {
    table.windows(2).all(|pair| pair[0].end() <= pair[1].offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: [Row<char>; 3] = [
        Row::new(0x0, 4, Widths::WORD, 'a'),
        Row::new(0x400, 0x400, Widths::WORD_OR_BYTE, 'b'),
        Row::new(0x6000, 0x2000, Widths::WORD_OR_DOUBLE, 'c'),
    ];

    #[test]
    fn rows_take_their_widths_aligned_and_nothing_else() {
        assert!(is_well_formed(&TABLE));
        assert_eq!(lookup(&TABLE, 0x0, AccessWidth::Word), Some('a'));
        assert_eq!(lookup(&TABLE, 0x0, AccessWidth::Double), None);
        assert_eq!(lookup(&TABLE, 0x0, AccessWidth::Byte), None);
        assert_eq!(lookup(&TABLE, 0x4, AccessWidth::Word), None, "a gap");
        assert_eq!(lookup(&TABLE, 0x401, AccessWidth::Byte), Some('b'));
        assert_eq!(lookup(&TABLE, 0x401, AccessWidth::Word), None, "unaligned");
        assert_eq!(lookup(&TABLE, 0x402, AccessWidth::Half), None);
        assert_eq!(lookup(&TABLE, 0x6008, AccessWidth::Double), Some('c'));
        assert_eq!(lookup(&TABLE, 0x600c, AccessWidth::Word), Some('c'));
        assert_eq!(lookup(&TABLE, 0x600c, AccessWidth::Double), None);
        assert_eq!(lookup(&TABLE, 0x8000, AccessWidth::Word), None);
        assert_eq!(lookup(&TABLE, u32::MAX, AccessWidth::Double), None);
    }
}
