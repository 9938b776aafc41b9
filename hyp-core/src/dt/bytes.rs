//! Big-endian cells as the FDT stores them (its spec, §5.1: every value is
//! big-endian, every token 4-byte aligned), read without panicking.

/// The big-endian 32-bit word at `offset`, if `bytes` holds all of it.
pub(super) fn be32(bytes: &[u8], offset: usize) -> Option<u32> {
    let word = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_be_bytes([
        *word.first()?,
        *word.get(1)?,
        *word.get(2)?,
        *word.get(3)?,
    ]))
}

/// The big-endian 64-bit value at `offset` (two cells, high first).
pub(super) fn be64(bytes: &[u8], offset: usize) -> Option<u64> {
    let high = be32(bytes, offset)?;
    let low = be32(bytes, offset.checked_add(4)?)?;
    Some((u64::from(high) << 32) | u64::from(low))
}

/// `offset` rounded up to the 4-byte alignment of every FDT token.
pub(super) fn align4(offset: usize) -> Option<usize> {
    Some(offset.checked_add(3)? & !3)
}
