//! What can be wrong with a passthrough device, each naming the other party.

use core::fmt;

use super::dma::DmaReason;
use crate::config::owner::Owner;
use crate::dt::address::AddressError;
use crate::dt::{Lookup, Node};
use crate::hw::gic::SPI_BASE;
use crate::hw::issue;
use crate::mm::address::PhysRange;

/// Why a device cannot be given to the partition. Shown after the device's
/// path: `partition a: devices: /pl031@9010000: <problem>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceProblem<'a> {
    /// The path names no node of the board's tree.
    NotFound,
    /// The path, without unit addresses, names several nodes.
    Ambiguous(Lookup<'a>),
    /// The same node appears twice in the list.
    ListedTwice,
    /// The node's `status` is not "okay".
    Disabled { status: &'a str },
    /// The node has no `reg`: nothing to map.
    NoRegisters,
    /// A node or property name the guest's copy would need that no device
    /// tree may have (on the node `node`).
    UncopyableName { node: Node<'a>, name: &'a str },
    /// `reg` cannot be read or translated to host physical addresses.
    Address(AddressError),
    /// The same node is given to another partition too.
    GivenTwice { by: &'a str },
    /// A page is shared with another partition's device.
    PageTaken {
        page: PhysRange,
        other: Node<'a>,
        by: &'a str,
    },
    /// A page is shared with a device that is not given to this partition.
    PageShared { page: PhysRange, other: Node<'a> },
    /// The device is one Tessera itself drives.
    IsHypervisorDevice { what: &'static str },
    /// The node is part of (below) `other`, a device Tessera drives.
    PartOfHypervisorDevice { other: Node<'a>, what: &'static str },
    /// A page is shared with a device Tessera itself drives.
    HypervisorDevice {
        page: PhysRange,
        other: Node<'a>,
        what: &'static str,
    },
    /// A page is host RAM.
    InRam {
        page: PhysRange,
        with: Owner<'a>,
        other: PhysRange,
    },
    /// A page, at its host address in the guest, lands on something of the
    /// guest's own layout.
    GuestAddressClash {
        page: PhysRange,
        what: &'static str,
        start: u64,
        end: u64,
    },
    /// A page lies beyond the guest physical address space.
    BeyondGuestAddressSpace { page: PhysRange, bits: u32 },
    /// An interrupt that is a PPI (each CPU's own).
    Ppi { intid: u32 },
    /// Interrupts that go to a controller other than the GIC (`None`: to
    /// no controller that exists).
    InterruptParent { parent: Option<Node<'a>> },
    /// `interrupts` or `interrupts-extended` is malformed.
    Interrupts(issue::Problem),
    /// An SPI that another partition's device has too.
    SpiTaken {
        intid: u32,
        other: Node<'a>,
        by: &'a str,
    },
    /// The SPI of Tessera's console UART.
    SpiOfConsole { intid: u32, console: Node<'a> },
    /// The SPI every guest's emulated PL011 uses.
    SpiOfGuestUart { intid: u32 },
    /// A DMA-capable device in a partition without `direct-map`.
    DmaNeedsDirectMap { reason: DmaReason },
}

/// "INTID 34 (SPI 2)": the number the GIC uses and the one the DT uses.
struct Intid(u32);

impl fmt::Display for Intid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.checked_sub(SPI_BASE) {
            Some(spi) => write!(f, "INTID {} (SPI {spi})", self.0),
            None => write!(f, "INTID {}", self.0),
        }
    }
}

impl fmt::Display for DeviceProblem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such node in the board's device tree"),
            Self::Ambiguous(lookup) => write!(f, "{lookup}"),
            Self::ListedTwice => f.write_str("listed twice"),
            Self::Disabled { status } => write!(
                f,
                "disabled in the board's device tree (status = \"{status}\"): \
                 set status = \"okay\" in the overlay to pass it through"
            ),
            Self::NoRegisters => {
                f.write_str("has no `reg`: only memory-mapped devices can be passed through")
            }
            Self::Address(error) => write!(f, "reg: {error}"),
            Self::UncopyableName { node, name } => write!(
                f,
                "{}: the name \"{name}\" cannot be copied into the guest's device tree \
                 (names are 1 to 31 characters of those the Devicetree Specification allows)",
                node.path()
            ),
            Self::GivenTwice { by } => write!(f, "is also given to partition {by}"),
            Self::PageTaken { page, other, by } => write!(
                f,
                "shares the 4 KiB page {page} with {}, given to partition {by}: \
                 stage 2 maps whole pages, so a page has one owner",
                other.path()
            ),
            Self::PageShared { page, other } => write!(
                f,
                "shares the 4 KiB page {page} with {}, which is not given to this \
                 partition: the guest could reach it (give both or neither)",
                other.path()
            ),
            Self::IsHypervisorDevice { what } => write!(f, "is Tessera's {what}"),
            Self::PartOfHypervisorDevice { other, what } => {
                write!(f, "is part of {}, Tessera's {what}", other.path())
            }
            Self::HypervisorDevice { page, other, what } => write!(
                f,
                "shares the 4 KiB page {page} with {}, Tessera's {what}",
                other.path()
            ),
            Self::InRam { page, with, other } => {
                write!(f, "page {page} overlaps {with} at {other}")
            }
            Self::GuestAddressClash {
                page,
                what,
                start,
                end,
            } => write!(
                f,
                "page {page} appears at the same guest address, where the guest has \
                 {what} at {start:#x}..{end:#x}"
            ),
            Self::BeyondGuestAddressSpace { page, bits } => write!(
                f,
                "page {page} lies beyond the {bits}-bit guest physical address space \
                 (the guest sees it at its host address)"
            ),
            Self::Ppi { intid } => write!(
                f,
                "interrupt {} is a PPI (each CPU's own): only SPIs can be passed through",
                Intid(*intid)
            ),
            Self::InterruptParent {
                parent: Some(parent),
            } => write!(
                f,
                "its interrupts go to {}, not to the GIC: only GIC SPIs can be routed to a partition",
                parent.path()
            ),
            Self::InterruptParent { parent: None } => {
                f.write_str("its interrupt parent names no node of the board's device tree")
            }
            Self::Interrupts(problem) => write!(f, "interrupts: {problem}"),
            Self::SpiTaken { intid, other, by } => write!(
                f,
                "{} is also the interrupt of {}, given to partition {by}: an SPI has one owner",
                Intid(*intid),
                other.path()
            ),
            Self::SpiOfConsole { intid, console } => write!(
                f,
                "{} is also the interrupt of {}, Tessera's console UART",
                Intid(*intid),
                console.path()
            ),
            Self::SpiOfGuestUart { intid } => write!(
                f,
                "{} is the interrupt of the guest's emulated PL011",
                Intid(*intid)
            ),
            Self::DmaNeedsDirectMap { reason } => write!(
                f,
                "can do DMA ({reason}), so it needs a direct-map partition: it is given \
                 host physical addresses and no IOMMU translates them for the guest"
            ),
        }
    }
}
