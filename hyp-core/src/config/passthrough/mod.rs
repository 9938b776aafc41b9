//! Device passthrough: host devices a partition owns outright.
//!
//! A partition's `devices` property names nodes of the board's device tree
//! by path (docs/partitions.md). Each device's registers are mapped into the
//! partition's stage 2 at their host address (IPA = PA), its SPIs are
//! routed to the partition's cores, and its node is copied into the guest's
//! device tree (`crate::guest::passthrough`).
//!
//! Stage 2 maps whole 4 KiB pages, so a page is the unit of ownership: every
//! check here works on the device's registers rounded out to pages. A page
//! with two owners (two partitions, a partition and a device nobody was
//! given, or a partition and Tessera itself) is an error, as is an SPI with
//! two owners. The checks run in three steps: [`read_devices`] when the
//! partition node is read, [`check_ownership`] across partitions, and
//! [`check_placement`] once RAM and guest layouts are known.

#![deny(clippy::indexing_slicing)]

mod dependencies;
mod dma;
mod interrupts;
mod note;
mod ownership;
mod placement;
mod problem;
mod read;

#[cfg(test)]
mod tests;

use alloc::vec::Vec;

pub use dependencies::{
    DEPENDENCY_PROPERTIES, Dependency, DependencyProperty, is_fixed_clock, providers,
};
pub use dma::{DMA_CAPABLE_COMPATIBLES, DMA_PROPERTIES, DmaReason};
pub use note::{Note, notes};
pub use ownership::check_ownership;
pub use placement::check_placement;
pub use problem::DeviceProblem;
pub use read::read_devices;

use crate::config::binding::PartitionConfig;
use crate::dt::Node;
use crate::mm::address::PhysRange;
use crate::mm::page_table::PAGE_SIZE;

/// The unit of ownership: the stage-2 granule. A device owns every page its
/// registers touch, and nothing smaller can be given.
pub const DEVICE_PAGE_SIZE: u64 = PAGE_SIZE;

/// The partition property that names the devices.
pub const DEVICES_PROPERTY: &str = "devices";

/// A shared peripheral interrupt of a passthrough device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spi {
    /// The INTID (32..1019): the number the distributor and the vGIC use.
    pub intid: u32,
    /// The specifier's flags cell (trigger type), copied to the guest's DT.
    pub flags: u32,
}

/// Edge-trigger bits of a GIC specifier's flags cell (`arm,gic.yaml`,
/// `IRQ_TYPE_EDGE_RISING` 1 and `IRQ_TYPE_EDGE_FALLING` 2; level types
/// are 4 and 8).
const IRQ_TYPE_EDGE_BOTH: u32 = 0b11;

impl Spi {
    /// Whether the DT says the interrupt is edge-triggered (GICD_ICFGR's
    /// Int_config 0b10); level-sensitive otherwise.
    pub fn is_edge_triggered(&self) -> bool {
        self.flags & IRQ_TYPE_EDGE_BOTH != 0
    }
}

/// A host device given to a partition, checked against the board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassthroughDevice<'a> {
    /// The path as the overlay writes it (what messages show).
    pub path: &'a str,
    /// The device's node in the board's tree.
    pub node: Node<'a>,
    /// Its `reg` entries translated to host physical addresses, as the
    /// device tree gives them (the guest's copy of `reg` uses these).
    pub registers: Vec<PhysRange>,
    /// The same, rounded out to whole [`DEVICE_PAGE_SIZE`] pages and merged
    /// where they touch: what stage 2 maps, device memory, at IPA = PA.
    pub pages: Vec<PhysRange>,
    /// Its SPIs, in the order of its `interrupts` (or `interrupts-extended`).
    pub interrupts: Vec<Spi>,
    /// Why it can do DMA, if it can.
    pub dma: Option<DmaReason>,
    /// The providers its node and subnodes refer to (clocks, pinctrl, ...).
    pub dependencies: Vec<Dependency<'a>>,
}

impl PassthroughDevice<'_> {
    /// The INTIDs of its SPIs.
    pub fn spis(&self) -> impl Iterator<Item = u32> + '_ {
        self.interrupts.iter().map(|spi| spi.intid)
    }

    /// Whether `node` is this device's node or one of its subnodes.
    pub fn contains(&self, node: &Node<'_>) -> bool {
        is_within(node, &self.node)
    }
}

impl PartitionConfig<'_> {
    /// Every SPI of the partition's passthrough devices, in device order:
    /// the hardware interrupts its vGIC owns, routes to the partition's
    /// cores and injects hardware-linked. Validation guarantees that no
    /// other partition, and not Tessera's console, has any of them, and
    /// that none is a PPI or the emulated PL011's SPI.
    pub fn passthrough_spis(&self) -> impl Iterator<Item = Spi> + '_ {
        self.devices
            .iter()
            .flat_map(|d| d.interrupts.iter().copied())
    }

    /// The host pages of every passthrough device, sorted and merged: what
    /// stage 2 maps at IPA = PA as device memory (two devices of the
    /// partition may share a page).
    pub fn passthrough_pages(&self) -> Vec<PhysRange> {
        let all: Vec<PhysRange> = self
            .devices
            .iter()
            .flat_map(|d| d.pages.iter().copied())
            .collect();
        read::pages(&all)
    }
}

/// Whether `node` is `ancestor` or lies below it.
pub(crate) fn is_within(node: &Node<'_>, ancestor: &Node<'_>) -> bool {
    let mut current = Some(*node);
    while let Some(n) = current {
        if n.depth() < ancestor.depth() {
            return false;
        }
        if n == *ancestor {
            return true;
        }
        current = n.parent();
    }
    false
}
