//! Property values: strings, string lists and 32-bit cells.

#![deny(clippy::indexing_slicing)]

use super::bytes::{be32, be64};

/// A property: its name and raw big-endian value.
#[derive(Debug, Clone, Copy)]
pub struct Property<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

impl<'a> Property<'a> {
    /// The value as one 32-bit cell.
    pub fn as_u32(&self) -> Option<u32> {
        (self.value.len() == 4)
            .then(|| be32(self.value, 0))
            .flatten()
    }

    /// The value as one or two cells (`<u32>` or `<u64>`).
    pub fn as_u64(&self) -> Option<u64> {
        match self.value.len() {
            4 => be32(self.value, 0).map(u64::from),
            8 => be64(self.value, 0),
            _ => None,
        }
    }

    /// The value as a single NUL-terminated string.
    pub fn as_str(&self) -> Option<&'a str> {
        let (last, text) = self.value.split_last()?;
        if *last != 0 || text.contains(&0) {
            return None;
        }
        core::str::from_utf8(text).ok()
    }

    /// The value as a list of NUL-terminated strings (`compatible`).
    pub fn strings(&self) -> StringList<'a> {
        StringList { rest: self.value }
    }

    /// The value as 32-bit cells; `None` if its length is not a multiple of 4.
    pub fn cells(&self) -> Option<Cells<'a>> {
        self.value
            .len()
            .is_multiple_of(4)
            .then_some(Cells { rest: self.value })
    }

    /// Number of 32-bit cells in the value (rounded down).
    pub fn cell_count(&self) -> usize {
        self.value.len() / 4
    }
}

/// Iterator over a string-list property.
#[derive(Debug, Clone)]
pub struct StringList<'a> {
    rest: &'a [u8],
}

impl StringList<'_> {
    /// A list with no strings.
    pub const EMPTY: StringList<'static> = StringList { rest: &[] };
}

impl<'a> Iterator for StringList<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let end = self.rest.iter().position(|&b| b == 0)?;
        let text = self.rest.get(..end)?;
        self.rest = self.rest.get(end.checked_add(1)?..)?;
        core::str::from_utf8(text).ok()
    }
}

/// Iterator over 32-bit cells.
#[derive(Debug, Clone)]
pub struct Cells<'a> {
    rest: &'a [u8],
}

impl Cells<'_> {
    /// Reads a number made of `count` cells (0, 1 or 2; more does not fit a u64).
    pub fn read(&mut self, count: u32) -> Option<u64> {
        if count > 2 {
            return None;
        }
        let mut value = 0u64;
        for _ in 0..count {
            value = (value << 32) | u64::from(self.next()?);
        }
        Some(value)
    }

    /// Whether all cells have been read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

impl Iterator for Cells<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let cell = be32(self.rest, 0)?;
        self.rest = self.rest.get(4..)?;
        Some(cell)
    }
}
