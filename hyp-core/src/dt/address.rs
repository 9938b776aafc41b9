//! `reg` and `ranges`: turning a node's bus addresses into CPU-physical ones
//! (Devicetree Specification v0.4 §2.3.5, §2.3.6, §2.3.8).
//!
//! Raspberry Pi devices sit under `/soc` at VideoCore bus addresses
//! (0x7e201000 for UART0) that `/soc`'s `ranges` maps to 0xfe201000; a
//! hypervisor that used the `reg` value as-is would poke the wrong address.

#![deny(clippy::indexing_slicing)]

use core::fmt;

use super::node::Node;
use super::property::{Cells, Property};
use crate::mm::address::{PhysAddr, PhysRange};

/// Default `#address-cells` when a bus does not say (§2.3.5).
const DEFAULT_ADDRESS_CELLS: u32 = 2;
/// Default `#size-cells` when a bus does not say (§2.3.5).
const DEFAULT_SIZE_CELLS: u32 = 1;

/// Why a node's addresses could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressError {
    /// The node has no `reg`.
    MissingReg,
    /// `reg` (or `ranges`) is not a whole number of entries.
    BadLength {
        property: &'static str,
        bytes: usize,
        entry_cells: u32,
    },
    /// `#address-cells`/`#size-cells` outside what a 64-bit address can hold.
    UnsupportedCells { address_cells: u32, size_cells: u32 },
    /// A `reg` entry with size 0 or whose end overflows 64 bits.
    BadEntry { index: usize },
    /// An ancestor bus has no `ranges`, so its children are not CPU-addressable.
    NotTranslatable,
    /// The address lies in no window of an ancestor's `ranges`.
    OutsideRanges { address: u64 },
    /// Fewer `reg` entries than needed.
    TooFewEntries { needed: usize, found: usize },
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::MissingReg => f.write_str("property missing"),
            Self::BadLength {
                property,
                bytes,
                entry_cells,
            } => write!(
                f,
                "{property} is {bytes} bytes, not a whole number of {entry_cells}-cell entries \
                 (the cells of an entry come from the parent's #address-cells and \
                 #size-cells: 2 and 1 where it has none)"
            ),
            Self::UnsupportedCells {
                address_cells,
                size_cells,
            } => write!(
                f,
                "#address-cells = {address_cells}, #size-cells = {size_cells}: at most 2 each are supported"
            ),
            Self::BadEntry { index } => write!(f, "entry {index} has size 0 or wraps past 2^64"),
            Self::NotTranslatable => {
                f.write_str("a parent bus has no `ranges`, so the address is not CPU-physical")
            }
            Self::OutsideRanges { address } => {
                write!(
                    f,
                    "address {address:#x} lies outside the parent bus's `ranges`"
                )
            }
            Self::TooFewEntries { needed, found } => {
                write!(f, "{found} entries, at least {needed} needed")
            }
        }
    }
}

fn cells_property(node: &Node<'_>, name: &str, default: u32) -> u32 {
    node.property(name)
        .and_then(|p| p.as_u32())
        .unwrap_or(default)
}

/// `#address-cells` of `bus` (the number of cells its children's addresses use).
pub fn address_cells(bus: &Node<'_>) -> u32 {
    cells_property(bus, "#address-cells", DEFAULT_ADDRESS_CELLS)
}

/// `#size-cells` of `bus`.
pub fn size_cells(bus: &Node<'_>) -> u32 {
    cells_property(bus, "#size-cells", DEFAULT_SIZE_CELLS)
}

/// Splits a property into entries of `parts` numbers, each given as a cell count.
fn entries<'a, const N: usize>(
    property: Property<'a>,
    name: &'static str,
    parts: [u32; N],
) -> Result<impl Iterator<Item = [u64; N]> + 'a, AddressError> {
    let entry_cells: u32 = parts.iter().sum();
    if parts.iter().any(|&c| c > 2) || entry_cells == 0 {
        return Err(AddressError::UnsupportedCells {
            address_cells: parts.first().copied().unwrap_or(0),
            size_cells: parts.last().copied().unwrap_or(0),
        });
    }
    let mut cells: Cells<'a> = property.cells().ok_or(AddressError::BadLength {
        property: name,
        bytes: property.value.len(),
        entry_cells,
    })?;
    // At most 2 + 2 + 2 cells (checked above).
    let entry_bytes = (entry_cells as usize).saturating_mul(4);
    if !property.value.len().is_multiple_of(entry_bytes) {
        return Err(AddressError::BadLength {
            property: name,
            bytes: property.value.len(),
            entry_cells,
        });
    }
    Ok(core::iter::from_fn(move || {
        let mut entry = [0u64; N];
        for (slot, &count) in entry.iter_mut().zip(parts.iter()) {
            *slot = cells.read(count)?;
        }
        Some(entry)
    }))
}

/// The raw (bus-address) `reg` entries of `node` as (address, size).
pub fn raw_reg<'a>(node: &Node<'a>) -> Result<impl Iterator<Item = (u64, u64)> + 'a, AddressError> {
    let (address, size) = reg_cells(node);
    raw_reg_cells(node, address, size)
}

/// The cells of an address and of a size in `node`'s `reg`: its parent's
/// `#address-cells` and `#size-cells`.
pub fn reg_cells(node: &Node<'_>) -> (u32, u32) {
    match node.parent() {
        Some(parent) => (address_cells(&parent), size_cells(&parent)),
        None => (DEFAULT_ADDRESS_CELLS, DEFAULT_SIZE_CELLS),
    }
}

/// [`raw_reg`] with the cell counts a binding fixes, whatever the parent
/// says (a Tessera partition's modules: 2 + 2, checked apart).
pub fn raw_reg_cells<'a>(
    node: &Node<'a>,
    address: u32,
    size: u32,
) -> Result<impl Iterator<Item = (u64, u64)> + 'a, AddressError> {
    let reg = node.property("reg").ok_or(AddressError::MissingReg)?;
    if address == 0 || address > 2 || size > 2 {
        return Err(AddressError::UnsupportedCells {
            address_cells: address,
            size_cells: size,
        });
    }
    Ok(entries(reg, "reg", [address, size])?.map(|[a, s]| (a, s)))
}

/// Translates a bus address of a child of `bus` to a CPU-physical address by
/// walking `ranges` up to the root.
pub fn translate(bus: Option<Node<'_>>, mut address: u64, size: u64) -> Result<u64, AddressError> {
    let mut current = bus;
    while let Some(node) = current {
        let Some(parent) = node.parent() else { break };
        let ranges = node
            .property("ranges")
            .ok_or(AddressError::NotTranslatable)?;
        if !ranges.value.is_empty() {
            let parts = [
                address_cells(&node),
                address_cells(&parent),
                size_cells(&node),
            ];
            let window = entries(ranges, "ranges", parts)?.find(|&[child, _, len]| {
                address >= child
                    && address
                        .checked_sub(child)
                        .zip(size.checked_sub(1))
                        .is_some_and(|(offset, extra)| {
                            offset.checked_add(extra).is_some_and(|last| last < len)
                        })
            });
            let [child, parent_base, _] = window.ok_or(AddressError::OutsideRanges { address })?;
            address = address
                .checked_sub(child)
                .and_then(|offset| parent_base.checked_add(offset))
                .ok_or(AddressError::OutsideRanges { address })?;
        }
        current = Some(parent);
    }
    Ok(address)
}

/// `reg` entries of `node` as CPU-physical ranges.
pub fn reg<'a>(
    node: &Node<'a>,
) -> Result<impl Iterator<Item = Result<PhysRange, AddressError>> + 'a, AddressError> {
    let parent = node.parent();
    Ok(raw_reg(node)?
        .enumerate()
        .map(move |(index, (address, size))| {
            let translated = translate(parent, address, size.max(1))?;
            PhysRange::new(PhysAddr(translated), size).ok_or(AddressError::BadEntry { index })
        }))
}

/// The `index`-th `reg` entry of `node` as a CPU-physical range.
pub fn reg_entry(node: &Node<'_>, index: usize) -> Result<PhysRange, AddressError> {
    let mut found = 0;
    for (i, entry) in reg(node)?.enumerate() {
        if i == index {
            return entry;
        }
        found = i.saturating_add(1);
    }
    Err(AddressError::TooFewEntries {
        needed: index.saturating_add(1),
        found,
    })
}
