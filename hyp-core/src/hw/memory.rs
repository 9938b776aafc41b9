//! RAM banks and the memory that is not Tessera's to give away.

#![deny(clippy::indexing_slicing)]

use heapless::Vec;

use super::issue::{Issues, Place, Problem};
use crate::dt::address::{self, translate};
use crate::dt::{Fdt, Node};
use crate::mm::address::{PhysAddr, PhysRange, sort_small};

/// Most RAM banks kept (Raspberry Pi 5 firmware reports four).
pub const MAX_MEMORY_BANKS: usize = 8;
/// Most reserved regions kept. Reserved memory that is not recorded could be
/// handed out, so exceeding this is fatal, not a warning.
pub const MAX_RESERVED: usize = 32;

/// Why a region is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservedKind {
    /// A `/memreserve/` entry of the DTB header.
    MemReserve,
    /// A child of `/reserved-memory` with a `reg`; `no_map` when it also says
    /// `no-map` (firmware such as TF-A's BL31 that not even a speculative
    /// access may touch), so Tessera leaves it out of its own map.
    ReservedMemory { no_map: bool },
    /// The initrd named by `/chosen/linux,initrd-start` and `-end`.
    Initrd,
    /// A `multiboot,module` node: an image U-Boot loaded.
    Module,
    /// The device tree blob itself.
    DeviceTree,
    /// The hypervisor image, from its load address to the end of its BSS.
    Hypervisor,
    /// The hypervisor's heap.
    HypervisorHeap,
}

impl ReservedKind {
    pub fn describe(self) -> &'static str {
        match self {
            ReservedKind::MemReserve => "/memreserve/",
            ReservedKind::ReservedMemory { no_map: false } => "/reserved-memory",
            ReservedKind::ReservedMemory { no_map: true } => "/reserved-memory, no-map",
            ReservedKind::Initrd => "initrd",
            ReservedKind::Module => "module",
            ReservedKind::DeviceTree => "device tree",
            ReservedKind::Hypervisor => "Tessera image",
            ReservedKind::HypervisorHeap => "Tessera heap",
        }
    }
}

/// A region of memory that must not be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved {
    pub range: PhysRange,
    pub kind: ReservedKind,
}

/// RAM and what is reserved in it.
#[derive(Debug, Default, Clone)]
pub struct MemoryMap {
    /// RAM banks in ascending order, non-overlapping.
    pub banks: Vec<PhysRange, MAX_MEMORY_BANKS>,
    /// Reserved regions in discovery order.
    pub reserved: Vec<Reserved, MAX_RESERVED>,
}

impl MemoryMap {
    /// Total RAM in bytes.
    pub fn total(&self) -> u64 {
        self.banks.iter().map(PhysRange::size).sum()
    }

    /// Whether `range` lies entirely inside RAM: in one bank, or across
    /// banks that touch (the Raspberry Pi 5's firmware reports its RAM as
    /// adjacent banks: together they are one range).
    pub fn is_ram(&self, range: &PhysRange) -> bool {
        // The banks ascend: each one that holds the next byte needed moves
        // it to its own end.
        let mut needed = range.start();
        for bank in &self.banks {
            if !bank.contains(needed) {
                continue;
            }
            if bank.last() >= range.last() {
                return true;
            }
            match bank.end() {
                Some(next) => needed = next,
                None => return false,
            }
        }
        false
    }

    /// Records a reserved region; `false` if the table is full.
    pub fn reserve(&mut self, range: PhysRange, kind: ReservedKind) -> bool {
        self.reserved.push(Reserved { range, kind }).is_ok()
    }
}

/// Most `reg` entries read from one node.
const MAX_REGIONS_PER_NODE: usize = 8;

/// What a Tessera partition's node is, and the cells of its modules'
/// `reg` (`config::binding`, which hw/ does not depend on, says the same).
const PARTITION_COMPATIBLE: &str = "tessera,partition";
const BINDING_CELLS: u32 = 2;

/// Whether `node` is an enabled boot module (`multiboot,module`), which the
/// bootloader loaded and Tessera's configuration names.
pub fn is_module(node: &Node<'_>) -> bool {
    node.is_compatible(&["multiboot,module"]) && node.is_enabled()
}

/// Reads RAM banks and reserved regions. `dtb` is where the blob itself lies,
/// when known (at boot; not in host tests of a file).
pub fn discover<'a>(fdt: &Fdt<'a>, dtb: Option<PhysRange>, issues: &mut Issues<'a>) -> MemoryMap {
    discover_with_modules(fdt, dtb, &mut fdt.nodes().filter(is_module), issues)
}

/// [`discover`] with the tree's boot modules found already.
pub fn discover_with_modules<'a>(
    fdt: &Fdt<'a>,
    dtb: Option<PhysRange>,
    // `dyn`: one copy of this function whoever found the modules.
    modules: &mut dyn Iterator<Item = Node<'a>>,
    issues: &mut Issues<'a>,
) -> MemoryMap {
    let mut map = MemoryMap::default();
    discover_banks(fdt, &mut map, issues);
    let reserve = |map: &mut MemoryMap, issues: &mut Issues<'a>, place: Place<'a>, range, kind| {
        if !map.reserve(range, kind) {
            issues.fatal(
                place,
                "reg",
                Problem::TooMany {
                    limit: MAX_RESERVED,
                },
            );
        }
    };
    if let Some(range) = dtb {
        reserve(
            &mut map,
            issues,
            Place::Path("the device tree blob"),
            range,
            ReservedKind::DeviceTree,
        );
    }
    for (address, size) in fdt.reservations() {
        if let Some(range) = PhysRange::new(PhysAddr(address), size) {
            reserve(
                &mut map,
                issues,
                Place::Path("/memreserve/"),
                range,
                ReservedKind::MemReserve,
            );
        }
    }
    let reserved_nodes = fdt
        .find_node("/reserved-memory")
        .into_iter()
        .flat_map(|node| node.children())
        .filter(|c| c.is_enabled() && c.has_property("reg"));
    for node in reserved_nodes {
        for range in regions(&node, Addressing::Translated, issues) {
            reserve(
                &mut map,
                issues,
                Place::Node(node),
                range,
                ReservedKind::ReservedMemory {
                    no_map: node.has_property("no-map"),
                },
            );
        }
    }
    if let Some(chosen) = fdt.find_node("/chosen") {
        match initrd(&chosen) {
            Ok(Some(range)) => reserve(
                &mut map,
                issues,
                Place::Node(chosen),
                range,
                ReservedKind::Initrd,
            ),
            Ok(None) => {}
            Err(problem) => issues.fatal(Place::Node(chosen), "linux,initrd-start", problem),
        }
    }
    for module in modules {
        for range in regions(&module, Addressing::Physical, issues) {
            reserve(
                &mut map,
                issues,
                Place::Node(module),
                range,
                ReservedKind::Module,
            );
        }
    }
    map
}

/// How a node's `reg` becomes a physical address.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Addressing {
    /// Through the ancestors' `ranges`, as for any device or memory node.
    Translated,
    /// As is: boot-module nodes under `/chosen` (Xen dom0less's
    /// `multiboot,module` vocabulary) give physical addresses with the
    /// parent's cell counts, and `/chosen` has no `ranges`; a Tessera
    /// partition's modules with 2 + 2 cells, the binding's (the
    /// configuration reports a partition whose cell counts differ).
    Physical,
}

/// The non-empty `reg` regions of `node`. Malformed `reg` is fatal because
/// the memory it should describe is unknown.
fn regions<'a>(
    node: &Node<'a>,
    addressing: Addressing,
    issues: &mut Issues<'a>,
) -> Vec<PhysRange, MAX_REGIONS_PER_NODE> {
    let mut found = Vec::new();
    let in_partition = node
        .parent()
        .is_some_and(|parent| parent.is_compatible(&[PARTITION_COMPATIBLE]));
    // A partition's module in the binding's cells where its reg has them
    // (its own cell counts are the configuration's error to report), else
    // as its parent's cells say.
    let binding = (addressing == Addressing::Physical && in_partition)
        .then(|| address::raw_reg_cells(node, BINDING_CELLS, BINDING_CELLS).ok())
        .flatten();
    let read = match binding {
        Some(entries) => Ok(entries),
        None => {
            let (address_cells, size_cells) = address::reg_cells(node);
            address::raw_reg_cells(node, address_cells, size_cells)
        }
    };
    let entries = match read {
        Ok(entries) => entries,
        Err(error) => {
            issues.fatal(Place::Node(*node), "reg", Problem::Address(error));
            return found;
        }
    };
    for (address, size) in entries.filter(|&(_, size)| size != 0) {
        let physical = match addressing {
            Addressing::Translated => translate(node.parent(), address, size),
            Addressing::Physical => Ok(address),
        };
        match physical.map(|a| PhysRange::new(PhysAddr(a), size)) {
            Ok(Some(range)) => {
                if found.push(range).is_err() {
                    issues.fatal(
                        Place::Node(*node),
                        "reg",
                        Problem::TooMany {
                            limit: MAX_REGIONS_PER_NODE,
                        },
                    );
                    break;
                }
            }
            Ok(None) => issues.fatal(
                Place::Node(*node),
                "reg",
                Problem::InvalidValue {
                    value: address,
                    why: "region wraps past 2^64",
                },
            ),
            Err(error) => issues.fatal(Place::Node(*node), "reg", Problem::Address(error)),
        }
    }
    found
}

fn discover_banks<'a>(fdt: &Fdt<'a>, map: &mut MemoryMap, issues: &mut Issues<'a>) {
    let memory_nodes = fdt.root().children().filter(|n| {
        n.property("device_type").and_then(|p| p.as_str()) == Some("memory") && n.is_enabled()
    });
    let mut saw_node = false;
    for node in memory_nodes {
        saw_node = true;
        for bank in regions(&node, Addressing::Translated, issues) {
            if let Some(other) = map.banks.iter().find(|b| b.overlaps(&bank)) {
                issues.fatal(
                    Place::Node(node),
                    "reg",
                    Problem::Overlap {
                        this: bank,
                        other: *other,
                    },
                );
            } else if map.banks.push(bank).is_err() {
                issues.fatal(
                    Place::Node(node),
                    "reg",
                    Problem::TooMany {
                        limit: MAX_MEMORY_BANKS,
                    },
                );
            }
        }
    }
    sort_small(&mut map.banks);
    if !saw_node {
        issues.fatal(Place::Path("/memory"), "", Problem::MissingNode);
    } else if map.banks.is_empty() {
        issues.fatal(
            Place::Path("/memory"),
            "reg",
            Problem::Invalid(
                "no RAM: every memory node is empty (on a Raspberry Pi the firmware fills it in; \
                 boot through the firmware and U-Boot)",
            ),
        );
    }
}

/// The initrd range from `/chosen`, if one is given.
fn initrd(chosen: &Node<'_>) -> Result<Option<PhysRange>, Problem> {
    let start = chosen.property("linux,initrd-start");
    let end = chosen.property("linux,initrd-end");
    let (Some(start), Some(end)) = (start, end) else {
        return match (start, end) {
            (None, None) => Ok(None),
            _ => Err(Problem::Invalid(
                "linux,initrd-start and linux,initrd-end must come together",
            )),
        };
    };
    let (Some(start), Some(end)) = (start.as_u64(), end.as_u64()) else {
        return Err(Problem::CellCount {
            found: start.cell_count(),
            expected: "1 or 2",
        });
    };
    if start == end {
        return Ok(None);
    }
    PhysRange::from_bounds(PhysAddr(start), PhysAddr(end))
        .map(Some)
        .ok_or(Problem::InvalidValue {
            value: end,
            why: "initrd ends before it starts",
        })
}
