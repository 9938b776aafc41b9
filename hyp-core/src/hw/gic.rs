//! The interrupt controller: which GIC, where its parts are, and how
//! interrupt specifiers that name it translate to INTIDs.

#![deny(clippy::indexing_slicing)]

use heapless::Vec;

use super::issue::{Issues, Place, Problem};
use crate::dt::address::{self, AddressError};
use crate::dt::{Fdt, Node};
use crate::mm::address::PhysRange;

/// GICv3 compatibles (Arm `arm,gic-v3.yaml`).
pub const GICV3_COMPATIBLE: &[&str] = &["arm,gic-v3"];
/// GICv2 implementations with the virtualization extensions (Arm `arm,gic.yaml`):
/// the GIC-400 of Raspberry Pi 4 and 5 and what QEMU virt reports for `gic-version=2`.
pub const GICV2_COMPATIBLE: &[&str] = &["arm,gic-400", "arm,cortex-a15-gic", "arm,cortex-a7-gic"];

/// Most redistributor regions kept.
pub const MAX_REDISTRIBUTOR_REGIONS: usize = 4;

/// First INTID of the private peripheral interrupts (GIC architecture §2.2.1).
pub const PPI_BASE: u32 = 16;
/// First INTID of the shared peripheral interrupts.
pub const SPI_BASE: u32 = 32;
/// Highest SPI number an interrupt specifier may give (INTID 1019).
const MAX_SPI: u32 = 987;
/// Number of PPIs.
const PPI_COUNT: u32 = 16;

/// Interrupt specifier type cell values (`arm,gic.yaml`).
const SPECIFIER_SPI: u32 = 0;
const SPECIFIER_PPI: u32 = 1;

/// The GIC architecture version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicVersion {
    V2,
    V3,
}

/// The parts of the GIC and where they are.
#[derive(Debug, Clone)]
pub enum GicRegions {
    /// GICv2: distributor, CPU interface, and the virtualization extensions'
    /// hypervisor control interface (GICH) and virtual CPU interface (GICV).
    V2 {
        distributor: PhysRange,
        cpu_interface: PhysRange,
        hyp_interface: PhysRange,
        virtual_cpu: PhysRange,
    },
    /// GICv3: distributor and the redistributor regions (CPU interfaces are
    /// system registers).
    V3 {
        distributor: PhysRange,
        redistributors: Vec<PhysRange, MAX_REDISTRIBUTOR_REGIONS>,
        /// `redistributor-stride`, when the DT overrides the architectural one.
        redistributor_stride: Option<u64>,
    },
}

/// The interrupt controller.
#[derive(Debug, Clone)]
pub struct Gic<'a> {
    pub node: Node<'a>,
    pub regions: GicRegions,
    /// The virtual-interface maintenance interrupt (a PPI).
    pub maintenance_intid: u32,
    /// `#interrupt-cells` of the GIC node.
    pub interrupt_cells: u32,
}

impl Gic<'_> {
    pub fn version(&self) -> GicVersion {
        match self.regions {
            GicRegions::V2 { .. } => GicVersion::V2,
            GicRegions::V3 { .. } => GicVersion::V3,
        }
    }

    /// Every MMIO region of the GIC, for mapping.
    pub fn mmio_regions(&self) -> impl Iterator<Item = PhysRange> + '_ {
        let (fixed, redistributors): ([Option<PhysRange>; 4], &[PhysRange]) = match &self.regions {
            GicRegions::V2 {
                distributor,
                cpu_interface,
                hyp_interface,
                virtual_cpu,
            } => (
                [
                    Some(*distributor),
                    Some(*cpu_interface),
                    Some(*hyp_interface),
                    Some(*virtual_cpu),
                ],
                &[],
            ),
            GicRegions::V3 {
                distributor,
                redistributors,
                ..
            } => (
                [Some(*distributor), None, None, None],
                redistributors.as_slice(),
            ),
        };
        fixed
            .into_iter()
            .flatten()
            .chain(redistributors.iter().copied())
    }
}

/// Whether `node` is an enabled GICv2 or GICv3.
pub fn is_gic(node: &Node<'_>) -> bool {
    // Most nodes are not interrupt controllers: testing that first keeps the
    // other lookups off them.
    node.has_property("interrupt-controller")
        && (node.is_compatible(GICV3_COMPATIBLE) || node.is_compatible(GICV2_COMPATIBLE))
        && node.is_enabled()
}

/// Finds the GIC and reads its regions and maintenance interrupt.
pub fn discover<'a>(fdt: &Fdt<'a>, issues: &mut Issues<'a>) -> Option<Gic<'a>> {
    discover_at(fdt.nodes().find(is_gic), issues)
}

/// [`discover`] of the GIC `found` (the first [`is_gic`] node, if any).
pub fn discover_at<'a>(found: Option<Node<'a>>, issues: &mut Issues<'a>) -> Option<Gic<'a>> {
    let Some(node) = found else {
        issues.fatal(
            Place::Path("interrupt controller"),
            "compatible",
            Problem::Invalid(
                "no GICv2 (arm,gic-400, arm,cortex-a15-gic) or GICv3 (arm,gic-v3) node",
            ),
        );
        return None;
    };
    let place = Place::Node(node);
    let interrupt_cells = node
        .property("#interrupt-cells")
        .and_then(|p| p.as_u32())
        .unwrap_or(0);
    if interrupt_cells < 3 {
        issues.fatal(
            place,
            "#interrupt-cells",
            Problem::InvalidValue {
                value: interrupt_cells.into(),
                why: "a GIC needs at least 3",
            },
        );
        return None;
    }
    let mut entries: Vec<PhysRange, 8> = Vec::new();
    match address::reg(&node) {
        Ok(iter) => {
            for entry in iter {
                match entry {
                    Ok(range) => {
                        if entries.push(range).is_err() {
                            break;
                        }
                    }
                    Err(error) => {
                        issues.fatal(place, "reg", Problem::Address(error));
                        return None;
                    }
                }
            }
        }
        Err(error) => {
            issues.fatal(place, "reg", Problem::Address(error));
            return None;
        }
    }
    let regions = if node.is_compatible(GICV3_COMPATIBLE) {
        v3_regions(&node, &entries, issues)?
    } else {
        let (Some(&distributor), Some(&cpu_interface)) = (entries.first(), entries.get(1)) else {
            issues.fatal(
                place,
                "reg",
                Problem::Address(AddressError::TooFewEntries {
                    needed: 4,
                    found: entries.len(),
                }),
            );
            return None;
        };
        let (Some(&hyp_interface), Some(&virtual_cpu)) = (entries.get(2), entries.get(3)) else {
            issues.fatal(
                place,
                "reg",
                Problem::Invalid(
                    "no GICH/GICV entries: Tessera needs a GICv2 with the virtualization extensions",
                ),
            );
            return None;
        };
        GicRegions::V2 {
            distributor,
            cpu_interface,
            hyp_interface,
            virtual_cpu,
        }
    };
    let maintenance_intid = match node.property("interrupts") {
        None => {
            issues.fatal(
                place,
                "interrupts",
                Problem::Invalid(
                    "missing: the maintenance interrupt is needed to virtualize the GIC",
                ),
            );
            return None;
        }
        Some(property) => match decode_interrupts(property.value, interrupt_cells).next() {
            Some(Ok(Interrupt::Ppi(intid))) => intid,
            Some(Ok(Interrupt::Spi(_))) => {
                issues.fatal(
                    place,
                    "interrupts",
                    Problem::Invalid("the maintenance interrupt must be a PPI"),
                );
                return None;
            }
            Some(Err(problem)) => {
                issues.fatal(place, "interrupts", problem);
                return None;
            }
            None => {
                issues.fatal(
                    place,
                    "interrupts",
                    Problem::CellCount {
                        found: property.cell_count(),
                        expected: "#interrupt-cells",
                    },
                );
                return None;
            }
        },
    };
    Some(Gic {
        node,
        regions,
        maintenance_intid,
        interrupt_cells,
    })
}

fn v3_regions<'a>(
    node: &Node<'a>,
    entries: &[PhysRange],
    issues: &mut Issues<'a>,
) -> Option<GicRegions> {
    let place = Place::Node(*node);
    let count = node
        .property("#redistributor-regions")
        .and_then(|p| p.as_u32())
        .unwrap_or(1) as usize;
    if count == 0 || count > MAX_REDISTRIBUTOR_REGIONS {
        issues.fatal(
            place,
            "#redistributor-regions",
            Problem::InvalidValue {
                value: count as u64,
                why: "must be 1 to 4",
            },
        );
        return None;
    }
    let Some((&distributor, rest)) = entries.split_first() else {
        issues.fatal(
            place,
            "reg",
            Problem::Address(AddressError::TooFewEntries {
                needed: count.saturating_add(1),
                found: 0,
            }),
        );
        return None;
    };
    let Some(redistributor_ranges) = rest.get(..count) else {
        issues.fatal(
            place,
            "reg",
            Problem::Address(AddressError::TooFewEntries {
                needed: count.saturating_add(1),
                found: entries.len(),
            }),
        );
        return None;
    };
    let redistributors = Vec::from_slice(redistributor_ranges).ok()?;
    let redistributor_stride = node
        .property("redistributor-stride")
        .and_then(|p| p.as_u64());
    Some(GicRegions::V3 {
        distributor,
        redistributors,
        redistributor_stride,
    })
}

/// A decoded GIC interrupt specifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// A private peripheral interrupt, as an INTID (16..31).
    Ppi(u32),
    /// A shared peripheral interrupt, as an INTID (32..1019).
    Spi(u32),
}

/// Decodes an `interrupts` value made of `cells`-cell GIC specifiers.
pub fn decode_interrupts(
    value: &[u8],
    cells: u32,
) -> impl Iterator<Item = Result<Interrupt, Problem>> + '_ {
    let stride = (cells as usize).saturating_mul(4);
    let usable = if stride == 0 || !value.len().is_multiple_of(stride) {
        &[][..]
    } else {
        value
    };
    usable.chunks_exact(stride.max(1)).map(|specifier| {
        let cell = |i: usize| {
            specifier
                .chunks_exact(4)
                .nth(i)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .unwrap_or(u32::MAX)
        };
        match (cell(0), cell(1)) {
            // In range, so the sums cannot overflow.
            (SPECIFIER_PPI, n) if n < PPI_COUNT => Ok(Interrupt::Ppi(PPI_BASE.saturating_add(n))),
            (SPECIFIER_SPI, n) if n <= MAX_SPI => Ok(Interrupt::Spi(SPI_BASE.saturating_add(n))),
            (SPECIFIER_PPI | SPECIFIER_SPI, n) => Err(Problem::InvalidValue {
                value: n.into(),
                why: "interrupt number out of range",
            }),
            (kind, _) => Err(Problem::InvalidValue {
                value: kind.into(),
                why: "interrupt type other than SPI (0) or PPI (1)",
            }),
        }
    })
}

/// The interrupt parent of `node`: its own or its nearest ancestor's
/// `interrupt-parent` (Devicetree Specification §2.4.1).
pub fn interrupt_parent<'a>(fdt: &Fdt<'a>, node: &Node<'a>) -> Option<Node<'a>> {
    fdt.find_phandle(interrupt_parent_phandle(node)?)
}

/// Whether `node`'s interrupt parent is `gic` (`None`: it names none, or
/// a phandle no node has). Compared by phandle first: finding the parent's
/// node walks the tree, which only a parent other than the GIC needs.
pub fn interrupt_parent_is<'a>(fdt: &Fdt<'a>, node: &Node<'a>, gic: &Node<'a>) -> Option<bool> {
    let phandle = interrupt_parent_phandle(node)?;
    let own = ["phandle", "linux,phandle"]
        .into_iter()
        .find_map(|name| gic.property(name).and_then(|p| p.as_u32()));
    if own == Some(phandle) {
        return Some(true);
    }
    fdt.find_phandle(phandle).map(|parent| parent == *gic)
}

fn interrupt_parent_phandle(node: &Node<'_>) -> Option<u32> {
    let mut current = Some(*node);
    while let Some(n) = current {
        if let Some(phandle) = n.property("interrupt-parent").and_then(|p| p.as_u32()) {
            return Some(phandle);
        }
        current = n.parent();
    }
    None
}
