//! Device-tree reading: a checked FDT parser and address translation.

pub mod address;
pub mod fdt;

pub use fdt::{Fdt, FdtError, Node, Property};
