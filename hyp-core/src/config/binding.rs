//! Reads the `/hypervisor` node (docs/partitions.md) into partition
//! descriptions, recording every malformed property instead of stopping at
//! the first.

use alloc::vec::Vec;

use super::error::{ConfigError, Problem, Scope};
use super::passthrough::{self, PassthroughDevice};
use super::vocabulary;
use crate::dt::{Fdt, Lookup, Node, Property};
use crate::hw::Hardware;
use crate::hw::cpus::MPIDR_AFFINITY_MASK;
use crate::mm::address::{PhysAddr, PhysRange, sort_small_by};
use crate::mm::page_table::PAGE_SIZE;

/// The node and compatible strings of the binding.
pub const HYPERVISOR_PATH: &str = "/hypervisor";
pub const HYPERVISOR_COMPATIBLE: &str = "tessera,hypervisor";
pub const PARTITION_COMPATIBLE: &str = "tessera,partition";
pub const MODULE_COMPATIBLE: &str = "multiboot,module";
pub const KERNEL_COMPATIBLE: &str = "multiboot,kernel";
pub const RAMDISK_COMPATIBLE: &str = "multiboot,ramdisk";
/// The `status` values a partition may have (the DT spec's "okay", its
/// older "ok", and "disabled" to leave it out).
const STATUS_VALUES: [&str; 3] = ["okay", "ok", "disabled"];

/// The flag of the one partition that takes the console's input.
pub const CONSOLE_INPUT: &str = "console-input";

/// What happens when the guest asks to stop or restart (`restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// SYSTEM_RESET restarts, SYSTEM_OFF stops.
    #[default]
    OnRequest,
    /// Both restart.
    Always,
    /// Both stop.
    Never,
}

impl RestartPolicy {
    const ALLOWED: &'static [&'static str] = &["on-request", "always", "never"];

    /// Whether a partition restarts when its guest asks to stop
    /// (`requested_restart` false: SYSTEM_OFF, or every vCPU off) or to
    /// restart (true: SYSTEM_RESET).
    pub fn restarts(self, requested_restart: bool) -> bool {
        match self {
            RestartPolicy::OnRequest => requested_restart,
            RestartPolicy::Always => true,
            RestartPolicy::Never => false,
        }
    }

    fn parse(value: &str) -> Option<RestartPolicy> {
        match value {
            "on-request" => Some(RestartPolicy::OnRequest),
            "always" => Some(RestartPolicy::Always),
            "never" => Some(RestartPolicy::Never),
            _ => None,
        }
    }
}

/// An image the bootloader placed in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module<'a> {
    pub node: Node<'a>,
    pub range: PhysRange,
    /// `tessera,file`: the file host tools load there.
    pub file: Option<&'a str>,
}

/// A partition as the overlay describes it, before placement.
#[derive(Debug, Clone)]
pub struct PartitionConfig<'a> {
    pub name: &'a str,
    pub node: Node<'a>,
    /// Indices into the board's CPU list, in the order given (vCPU 0 first).
    pub cpus: Vec<usize>,
    pub memory_size: u64,
    pub memory_base: Option<PhysAddr>,
    /// `guest-memory-base`; `None` means the default (or the host base with `direct-map`).
    pub guest_memory_base: Option<u64>,
    pub direct_map: bool,
    pub bootargs: Option<&'a str>,
    pub restart: RestartPolicy,
    pub pmu_el2_events: bool,
    pub kernel: Option<Module<'a>>,
    pub ramdisk: Option<Module<'a>>,
    /// `devices`: host devices given to the partition, in the order listed.
    pub devices: Vec<PassthroughDevice<'a>>,
    /// `console-input`: the physical console's input goes to this
    /// partition's PL011 (at most one partition has it).
    pub console_input: bool,
}

/// The `/hypervisor` node, if the tree configures partitions.
pub fn hypervisor_node<'a>(fdt: &Fdt<'a>) -> Option<Node<'a>> {
    fdt.find_node(HYPERVISOR_PATH)
        .filter(|n| n.is_compatible(&[HYPERVISOR_COMPATIBLE]))
}

/// Every partition node under `/hypervisor`, parsed. Errors go to `errors`;
/// a partition with errors is still returned (as far as it could be read) so
/// that later checks can report more.
pub fn read<'a>(
    hypervisor: Node<'a>,
    hardware: &Hardware<'a>,
    errors: &mut Vec<ConfigError<'a>>,
) -> Vec<PartitionConfig<'a>> {
    let mut partitions = Vec::new();
    vocabulary::unknown_properties(&hypervisor, &vocabulary::HYPERVISOR, None, &mut |problem| {
        errors.push(ConfigError {
            scope: Scope::Hypervisor,
            property: "",
            problem,
        });
    });
    for node in hypervisor.children() {
        let name = node.name();
        if !node.is_compatible(&[PARTITION_COMPATIBLE]) {
            errors.push(ConfigError {
                scope: Scope::Partition(name),
                property: "compatible",
                problem: Problem::NotAPartition,
            });
            continue;
        }
        // "disabled" leaves a partition out; a misspelt status must not.
        let status_problem = node.property("status").and_then(|p| match p.as_str() {
            Some(status) if STATUS_VALUES.contains(&status) => None,
            Some(status) => Some(Problem::UnknownValue {
                value: status,
                allowed: &STATUS_VALUES,
            }),
            None => Some(Problem::Malformed {
                expected: "a string",
            }),
        });
        if let Some(problem) = status_problem {
            errors.push(ConfigError {
                scope: Scope::Partition(name),
                property: "status",
                problem,
            });
            continue;
        }
        if !node.is_enabled() {
            continue;
        }
        partitions.push(read_partition(node, hardware, errors));
    }
    // Overlay tools do not keep the source order of nodes (fdtoverlay
    // reverses it), so partitions are ordered by name: VMIDs and the boot
    // log are the same however the overlay was applied.
    sort_small_by(&mut partitions, |a, b| a.name.cmp(b.name));
    let mut console_input = partitions.iter().filter(|p| p.console_input);
    if let Some(first) = console_input.next() {
        for other in console_input {
            errors.push(ConfigError {
                scope: Scope::Partition(other.name),
                property: CONSOLE_INPUT,
                problem: Problem::OnlyOnePartition { by: first.name },
            });
        }
    }
    partitions
}

/// Whether `property` is a list of absolute node paths (`cpus`, `devices`).
pub(crate) fn is_path_list(property: &Property<'_>) -> bool {
    property.value.last() == Some(&0)
        && property
            .value
            .split(|&b| b == 0)
            .rev()
            .skip(1)
            .all(|s| s.first() == Some(&b'/') && core::str::from_utf8(s).is_ok())
}

fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn read_partition<'a>(
    node: Node<'a>,
    hardware: &Hardware<'a>,
    errors: &mut Vec<ConfigError<'a>>,
) -> PartitionConfig<'a> {
    let cpus = &hardware.cpus;
    let name = node.name();
    let mut error = |property: &'static str, problem: Problem<'a>| {
        errors.push(ConfigError {
            scope: Scope::Partition(name),
            property,
            problem,
        });
    };
    if !is_valid_name(name) {
        error("", Problem::BadName);
    }
    vocabulary::unknown_properties(&node, &vocabulary::PARTITION, None, &mut |problem| {
        error("", problem);
    });
    // Modules' `reg` and the partition's sizes are read as two cells each.
    for cells in ["#address-cells", "#size-cells"] {
        match node.property(cells).map(|p| p.as_u32()) {
            Some(Some(2)) => {}
            None => error(cells, Problem::Missing),
            Some(_) => error(
                cells,
                Problem::Malformed {
                    expected: "<2>: a partition's addresses and sizes are two cells each",
                },
            ),
        }
    }

    let mut cpu_list = Vec::new();
    if let Some(paths) = node.property("cpus") {
        let well_formed = is_path_list(&paths);
        if !well_formed {
            error(
                "cpus",
                Problem::Malformed {
                    expected: "a list of CPU node paths",
                },
            );
        }
        for path in paths.strings().filter(|_| well_formed) {
            let found = node
                .fdt()
                .find_unique_node(path)
                .map(|cpu_node| cpus.list.iter().position(|c| c.node == cpu_node));
            match found {
                Ok(Some(index)) => cpu_list.push(index),
                Ok(None) | Err(Lookup::NotFound) => error("cpus", Problem::NoSuchCpu { path }),
                Err(lookup) => error("cpus", Problem::AmbiguousPath { path, lookup }),
            }
        }
    }
    if let Some(mpidrs) = node.property("cpu-mpidrs") {
        match mpidrs
            .cells()
            .filter(|_| mpidrs.value.len().is_multiple_of(4))
        {
            Some(cells) => {
                for mpidr in cells.map(u64::from) {
                    match cpus
                        .list
                        .iter()
                        .position(|c| c.mpidr & MPIDR_AFFINITY_MASK == mpidr)
                    {
                        Some(index) => cpu_list.push(index),
                        None => error("cpu-mpidrs", Problem::NoSuchMpidr { mpidr }),
                    }
                }
            }
            None => error(
                "cpu-mpidrs",
                Problem::Malformed {
                    expected: "a list of u32 MPIDR values",
                },
            ),
        }
    }
    let gic = hardware.gic.version();
    let limit = crate::vgic::state::max_vcpus(gic);
    if cpu_list.len() > limit {
        let property = if node.has_property("cpus") {
            "cpus"
        } else {
            "cpu-mpidrs"
        };
        error(
            property,
            Problem::TooManyVcpus {
                count: cpu_list.len(),
                limit,
                gic,
            },
        );
    }
    // A list that names nothing, with nothing else said of it: the
    // partition would be set up and never run.
    let named = if node.has_property("cpus") {
        Some(("cpus", node.property("cpus").map_or(0, |p| p.value.len())))
    } else {
        node.property("cpu-mpidrs")
            .map(|p| ("cpu-mpidrs", p.value.len()))
    };
    if let Some((property, 0)) = named
        && cpu_list.is_empty()
    {
        error(property, Problem::NoCpuNamed);
    }
    match (node.has_property("cpus"), node.has_property("cpu-mpidrs")) {
        (false, false) => error("cpus", Problem::NoCpus),
        (true, true) => error(
            "cpu-mpidrs",
            Problem::Malformed {
                expected: "either cpus or cpu-mpidrs, not both",
            },
        ),
        _ => {}
    }

    let memory_size = match two_cells(&node, "memory-size") {
        Ok(Some(0)) => {
            error("memory-size", Problem::Zero);
            0
        }
        Ok(Some(size)) if !size.is_multiple_of(PAGE_SIZE) => {
            error("memory-size", Problem::NotPageAligned { value: size });
            0
        }
        Ok(Some(size)) => size,
        Ok(None) => {
            error("memory-size", Problem::Missing);
            0
        }
        Err(problem) => {
            error("memory-size", problem);
            0
        }
    };
    let memory_base = match two_cells(&node, "memory-base") {
        Ok(Some(base)) if !base.is_multiple_of(PAGE_SIZE) => {
            error("memory-base", Problem::NotPageAligned { value: base });
            None
        }
        Ok(base) => base.map(PhysAddr),
        Err(problem) => {
            error("memory-base", problem);
            None
        }
    };
    let guest_memory_base = match two_cells(&node, "guest-memory-base") {
        Ok(Some(base)) if !base.is_multiple_of(PAGE_SIZE) => {
            error("guest-memory-base", Problem::NotPageAligned { value: base });
            None
        }
        Ok(base) => base,
        Err(problem) => {
            error("guest-memory-base", problem);
            None
        }
    };
    let direct_map = flag(&node, "direct-map", &mut error);
    let pmu_el2_events = flag(&node, "pmu-el2-events", &mut error);
    let console_input = flag(&node, CONSOLE_INPUT, &mut error);
    let devices = passthrough::read_devices(&node, &hardware.gic, &mut error);
    let bootargs = match node.property("bootargs") {
        Some(p) => {
            let value = p.as_str();
            if value.is_none() {
                error(
                    "bootargs",
                    Problem::Malformed {
                        expected: "a string",
                    },
                );
            }
            value
        }
        None => None,
    };
    let restart = match node.property("restart") {
        None => RestartPolicy::default(),
        Some(p) => match p.as_str() {
            Some(value) => RestartPolicy::parse(value).unwrap_or_else(|| {
                error(
                    "restart",
                    Problem::UnknownValue {
                        value,
                        allowed: RestartPolicy::ALLOWED,
                    },
                );
                RestartPolicy::default()
            }),
            None => {
                error(
                    "restart",
                    Problem::Malformed {
                        expected: "a string",
                    },
                );
                RestartPolicy::default()
            }
        },
    };

    let mut kernel = None;
    let mut ramdisk = None;
    for child in node.children() {
        if !vocabulary::is_module_node(child.name()) {
            error("", vocabulary::unknown_partition_child(child.name()));
            continue;
        }
        let module = Some(child.name());
        vocabulary::unknown_properties(&child, &vocabulary::MODULE, module, &mut |problem| {
            error("", problem);
        });
        for grandchild in child.children() {
            error(
                "",
                Problem::UnknownNode {
                    name: grandchild.name(),
                    on: module,
                    suggestion: None,
                },
            );
        }
    }
    for child in node.children().filter(|c| c.is_enabled()) {
        if !vocabulary::is_module_node(child.name()) {
            continue;
        }
        let is_kernel = child.is_compatible(&[KERNEL_COMPATIBLE]);
        let is_ramdisk = child.is_compatible(&[RAMDISK_COMPATIBLE]);
        if !child.is_compatible(&[MODULE_COMPATIBLE]) || is_kernel == is_ramdisk {
            error(
                "compatible",
                Problem::Malformed {
                    expected: "modules with \"multiboot,kernel\" or \"multiboot,ramdisk\", and \"multiboot,module\"",
                },
            );
            continue;
        }
        let Some(module) = read_module(child, &mut error) else {
            continue;
        };
        let (slot, what) = if is_kernel {
            (&mut kernel, "kernel")
        } else {
            (&mut ramdisk, "ramdisk")
        };
        if slot.is_some() {
            error("compatible", Problem::Duplicate { what });
        } else {
            *slot = Some(module);
        }
    }
    if kernel.is_none() {
        let kernels = || {
            node.children()
                .filter(|c| c.is_compatible(&[KERNEL_COMPATIBLE]))
        };
        match kernels().find(|c| !c.is_enabled()) {
            Some(disabled) if !kernels().any(|c| c.is_enabled()) => error(
                "",
                Problem::KernelDisabled {
                    module: disabled.name(),
                },
            ),
            _ if kernels().next().is_none() => error("", Problem::NoKernel),
            // An enabled kernel module that could not be read: said already.
            _ => {}
        }
    }

    PartitionConfig {
        name,
        node,
        cpus: cpu_list,
        memory_size,
        memory_base,
        guest_memory_base,
        direct_map,
        bootargs,
        restart,
        pmu_el2_events,
        kernel,
        ramdisk,
        devices,
        console_input,
    }
}

/// A 2-cell number property: `Ok(None)` when absent.
fn two_cells<'a>(node: &Node<'a>, name: &str) -> Result<Option<u64>, Problem<'a>> {
    match node.property(name) {
        None => Ok(None),
        Some(p) if p.value.len() == 8 => Ok(p.as_u64()),
        Some(_) => Err(Problem::Malformed {
            expected: "two cells: <high low>",
        }),
    }
}

/// An empty (boolean) property.
fn flag<'a>(
    node: &Node<'a>,
    name: &'static str,
    error: &mut impl FnMut(&'static str, Problem<'a>),
) -> bool {
    match node.property(name) {
        None => false,
        Some(p) if p.value.is_empty() => true,
        Some(_) => {
            error(
                name,
                Problem::Malformed {
                    expected: "an empty property",
                },
            );
            true
        }
    }
}

/// A module's `reg = <address size>` (2 + 2 cells, host physical).
fn read_module<'a>(
    node: Node<'a>,
    error: &mut impl FnMut(&'static str, Problem<'a>),
) -> Option<Module<'a>> {
    let Some(reg) = node.property("reg") else {
        error("reg", Problem::Missing);
        return None;
    };
    let mut cells = reg.cells().filter(|_| reg.value.len() == 16);
    let (Some(address), Some(size)) = (
        cells.as_mut().and_then(|c| c.read(2)),
        cells.as_mut().and_then(|c| c.read(2)),
    ) else {
        error(
            "reg",
            Problem::Malformed {
                expected: "<address size> in 2 + 2 cells",
            },
        );
        return None;
    };
    if size == 0 {
        error("reg", Problem::NotLoaded);
        return None;
    }
    let Some(range) = PhysRange::new(PhysAddr(address), size) else {
        error(
            "reg",
            Problem::Malformed {
                expected: "a range that does not wrap",
            },
        );
        return None;
    };
    let file = node.property("tessera,file").and_then(|p| p.as_str());
    Some(Module { node, range, file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_decide_what_system_off_and_system_reset_do() {
        // (policy, SYSTEM_OFF restarts, SYSTEM_RESET restarts)
        for (policy, off, reset) in [
            (RestartPolicy::OnRequest, false, true),
            (RestartPolicy::Always, true, true),
            (RestartPolicy::Never, false, false),
        ] {
            assert_eq!(policy.restarts(false), off, "{policy:?} on SYSTEM_OFF");
            assert_eq!(policy.restarts(true), reset, "{policy:?} on SYSTEM_RESET");
        }
        assert_eq!(RestartPolicy::parse("always"), Some(RestartPolicy::Always));
        assert_eq!(RestartPolicy::parse("sometimes"), None);
    }
}
