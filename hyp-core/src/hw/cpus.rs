//! CPUs: their MPIDR and how each is started.

#![deny(clippy::indexing_slicing)]

use heapless::Vec;

use super::issue::{Issues, Place, Problem};
use crate::dt::address::address_cells;
use crate::dt::{Fdt, Node};
use crate::mm::address::PhysAddr;

/// Most CPUs Tessera runs on. Raspberry Pi 4 and 5 have 4; QEMU virt runs
/// with up to 8 in tests. CPUs beyond this stay offline, with a warning.
pub const MAX_CPUS: usize = 16;

/// The MPIDR_EL1 affinity fields (Aff3 in bits 39:32, Aff2..Aff0 in 23:0);
/// the DT `reg` of a CPU holds exactly these (Arm `cpus.yaml` binding).
pub const MPIDR_AFFINITY_MASK: u64 = 0xff_00ff_ffff;

/// How a secondary CPU is started (the `enable-method` property).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnableMethod<'a> {
    /// PSCI CPU_ON through the firmware.
    Psci,
    /// The CPU spins in firmware until its entry point is written to
    /// `cpu-release-addr` and an event is sent (Raspberry Pi 4 without TF-A).
    SpinTable { release_addr: PhysAddr },
    /// A method Tessera does not implement.
    Other(&'a str),
    /// No `enable-method` (fine for the boot CPU only).
    None,
}

/// One CPU.
#[derive(Debug, Clone, Copy)]
pub struct Cpu<'a> {
    pub node: Node<'a>,
    /// Affinity fields of MPIDR_EL1 (see [`MPIDR_AFFINITY_MASK`]).
    pub mpidr: u64,
    pub enable_method: EnableMethod<'a>,
}

/// All CPUs and which of them is running this code.
#[derive(Debug, Clone)]
pub struct Cpus<'a> {
    pub list: Vec<Cpu<'a>, MAX_CPUS>,
    /// Index in `list` of the CPU that booted Tessera.
    pub boot: usize,
    /// The `compatible` of the CPUs (e.g. "arm,cortex-a72"), for the banner.
    pub model: &'a str,
}

/// Reads `/cpus`. `boot_mpidr` is the affinity of the CPU running this code.
pub fn discover<'a>(fdt: &Fdt<'a>, boot_mpidr: u64, issues: &mut Issues<'a>) -> Option<Cpus<'a>> {
    let Some(cpus_node) = fdt.find_node("/cpus") else {
        issues.fatal(Place::Path("/cpus"), "", Problem::MissingNode);
        return None;
    };
    let cells = address_cells(&cpus_node);
    if cells == 0 || cells > 2 {
        issues.fatal(
            Place::Node(cpus_node),
            "#address-cells",
            Problem::InvalidValue {
                value: cells.into(),
                why: "CPU addresses take 1 or 2 cells",
            },
        );
        return None;
    }
    let mut list: Vec<Cpu<'a>, MAX_CPUS> = Vec::new();
    let mut model = "";
    let cpu_nodes = cpus_node
        .children()
        .filter(|n| n.property("device_type").and_then(|p| p.as_str()) == Some("cpu"));
    for node in cpu_nodes {
        let Some(mpidr) = read_mpidr(&node, cells, issues) else {
            continue;
        };
        if list.iter().any(|c| c.mpidr == mpidr) {
            issues.fatal(
                Place::Node(node),
                "reg",
                Problem::InvalidValue {
                    value: mpidr,
                    why: "another CPU has the same MPIDR",
                },
            );
            continue;
        }
        let enable_method = read_enable_method(&node, issues);
        if model.is_empty() {
            model = node.compatible().next().unwrap_or("");
        }
        if list
            .push(Cpu {
                node,
                mpidr,
                enable_method,
            })
            .is_err()
        {
            issues.warn(Place::Node(node), "", Problem::TooMany { limit: MAX_CPUS });
        }
    }
    if list.is_empty() {
        issues.fatal(
            Place::Node(cpus_node),
            "",
            Problem::Invalid("no CPU nodes (device_type = \"cpu\")"),
        );
        return None;
    }
    let Some(boot) = list
        .iter()
        .position(|c| c.mpidr == boot_mpidr & MPIDR_AFFINITY_MASK)
    else {
        issues.fatal(
            Place::Node(cpus_node),
            "",
            Problem::InvalidValue {
                value: boot_mpidr,
                why: "the boot CPU's MPIDR is not listed",
            },
        );
        return None;
    };
    Some(Cpus { list, boot, model })
}

fn read_mpidr<'a>(node: &Node<'a>, cells: u32, issues: &mut Issues<'a>) -> Option<u64> {
    let Some(reg) = node.property("reg") else {
        issues.fatal(Place::Node(*node), "reg", Problem::MissingProperty);
        return None;
    };
    // as_u64 accepts exactly one or two whole cells; the count must match /cpus.
    let value = reg.as_u64().filter(|_| reg.cell_count() == cells as usize);
    let Some(mpidr) = value else {
        issues.fatal(
            Place::Node(*node),
            "reg",
            Problem::CellCount {
                found: reg.cell_count(),
                expected: "#address-cells of /cpus",
            },
        );
        return None;
    };
    if mpidr & !MPIDR_AFFINITY_MASK != 0 {
        issues.fatal(
            Place::Node(*node),
            "reg",
            Problem::InvalidValue {
                value: mpidr,
                why: "bits outside the MPIDR affinity fields",
            },
        );
        return None;
    }
    Some(mpidr)
}

fn read_enable_method<'a>(node: &Node<'a>, issues: &mut Issues<'a>) -> EnableMethod<'a> {
    let Some(method) = node.property("enable-method") else {
        return EnableMethod::None;
    };
    match method.as_str() {
        Some("psci") => EnableMethod::Psci,
        Some("spin-table") => {
            // Always a 64-bit value (two cells), whatever #address-cells says:
            // Linux reads it with of_property_read_u64, and the Raspberry Pi 4
            // DTB has two cells under a one-cell /cpus.
            match node
                .property("cpu-release-addr")
                .map(|p| (p.as_u64(), p.cell_count()))
            {
                Some((Some(address), _)) if address % 8 == 0 && address != 0 => {
                    EnableMethod::SpinTable {
                        release_addr: PhysAddr(address),
                    }
                }
                Some((Some(address), _)) => {
                    issues.warn(
                        Place::Node(*node),
                        "cpu-release-addr",
                        Problem::InvalidValue {
                            value: address,
                            why: "must be a non-zero 8-byte-aligned address",
                        },
                    );
                    EnableMethod::Other("spin-table")
                }
                Some((None, found)) => {
                    issues.warn(
                        Place::Node(*node),
                        "cpu-release-addr",
                        Problem::CellCount {
                            found,
                            expected: "2",
                        },
                    );
                    EnableMethod::Other("spin-table")
                }
                None => {
                    issues.warn(
                        Place::Node(*node),
                        "cpu-release-addr",
                        Problem::MissingProperty,
                    );
                    EnableMethod::Other("spin-table")
                }
            }
        }
        Some(other) => EnableMethod::Other(other),
        None => {
            issues.warn(
                Place::Node(*node),
                "enable-method",
                Problem::Invalid("not a string"),
            );
            EnableMethod::Other("?")
        }
    }
}
