//! Who holds the memory a partition's RAM or device ran into: named by the
//! memory checks and by the passthrough checks alike.

use core::fmt;

use crate::hw::memory::ReservedKind;

/// What a partition's memory ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner<'a> {
    /// Another partition's RAM.
    Partition(&'a str),
    /// Something the board DTB or the bootloader reserved, or Tessera itself.
    Reserved(ReservedKind),
    /// The board's RAM, not given to anything yet.
    Ram,
    /// A partition's module (an image the bootloader placed).
    Module { partition: &'a str, module: &'a str },
}

impl fmt::Display for Owner<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Partition(name) => write!(f, "partition {name}'s memory"),
            Owner::Reserved(kind) => f.write_str(kind.describe()),
            Owner::Ram => f.write_str("the board's RAM"),
            Owner::Module { partition, module } => {
                write!(f, "partition {partition}'s {module}")
            }
        }
    }
}
