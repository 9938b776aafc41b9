//! Device-tree reading: a checked FDT parser and address translation.
//!
//! Every offset and number comes from a blob nobody vouches for: arithmetic
//! is checked.

#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod address;
mod bytes;
pub mod fdt;
pub mod node;
pub mod property;
#[cfg(test)]
pub(crate) mod test_builder;

pub use fdt::{Fdt, FdtError};
pub use node::{Ambiguity, Lookup, Node};
pub use property::Property;
