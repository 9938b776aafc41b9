//! One owner per page and per SPI: the checks across partitions, against
//! the rest of the board's devices and against what Tessera itself drives.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::problem::DeviceProblem;
use super::{DEVICE_PAGE_SIZE, DEVICES_PROPERTY, PassthroughDevice, interrupts};
use crate::config::binding::{HYPERVISOR_PATH, PartitionConfig};
use crate::config::error::{ConfigError, Problem, Scope};
use crate::config::guest_map::GUEST_PL011_SPI;
use crate::dt::Node;
use crate::dt::address;
use crate::hw::Hardware;
use crate::hw::gic::SPI_BASE;
use crate::mm::address::PhysRange;

/// What Tessera calls the devices it drives, in messages.
const CONSOLE: &str = "console UART";
const INTERRUPT_CONTROLLER: &str = "interrupt controller (GIC)";

/// Checks every partition's devices against each other, the board's other
/// devices and Tessera's own, and DMA against `direct-map`.
pub fn check_ownership<'a>(
    partitions: &[PartitionConfig<'a>],
    hardware: &Hardware<'a>,
    errors: &mut Vec<ConfigError<'a>>,
) {
    let hypervisor_devices = hypervisor_devices(hardware);
    let console_spis: Vec<u32> = hardware.console.as_ref().map_or_else(Vec::new, |console| {
        interrupts::read(&console.node, &hardware.gic, &mut |_| {})
            .iter()
            .map(|spi| spi.intid)
            .collect()
    });
    let given: Vec<(&'a str, &PassthroughDevice<'a>)> = partitions
        .iter()
        .flat_map(|p| p.devices.iter().map(move |d| (p.name, d)))
        .collect();
    for (index, &(name, device)) in given.iter().enumerate() {
        let mut report = |problem| {
            errors.push(ConfigError {
                scope: Scope::Partition(name),
                property: DEVICES_PROPERTY,
                problem: Problem::Device {
                    path: device.path,
                    problem: Box::new(problem),
                },
            });
        };
        if let Some(reason) = device.dma
            && !partitions.iter().any(|p| p.name == name && p.direct_map)
        {
            report(DeviceProblem::DmaNeedsDirectMap { reason });
        }
        let earlier = given.get(..index).unwrap_or_default();
        for &(by, other) in earlier.iter().filter(|(by, _)| *by != name) {
            if other.node == device.node {
                report(DeviceProblem::GivenTwice { by });
            } else if let Some(page) = shared_page(&device.pages, &other.pages) {
                report(DeviceProblem::PageTaken {
                    page,
                    other: other.node,
                    by,
                });
            }
            if other.node != device.node
                && let Some(intid) = device.spis().find(|s| other.spis().any(|o| o == *s))
            {
                report(DeviceProblem::SpiTaken {
                    intid,
                    other: other.node,
                    by,
                });
            }
        }
        for &(other, what, ref ranges) in &hypervisor_devices {
            if other == device.node {
                report(DeviceProblem::IsHypervisorDevice { what });
            } else if super::is_within(&device.node, &other) {
                // A frame of the GIC (a GICv3 ITS, a GICv2m MSI frame):
                // Tessera's because the GIC is, whatever its address.
                report(DeviceProblem::PartOfHypervisorDevice { other, what });
            } else if let Some(page) = shared_page(&device.pages, ranges) {
                report(DeviceProblem::HypervisorDevice { page, other, what });
            }
        }
        let owned: Vec<Node<'a>> = given.iter().map(|(_, d)| d.node).collect();
        let skip = |node: &Node<'a>| {
            owned.iter().any(|o| super::is_within(node, o))
                || hypervisor_devices.iter().any(|(n, _, _)| n == node)
        };
        for (other, page) in other_devices_sharing(device, &skip) {
            report(DeviceProblem::PageShared { page, other });
        }
        for intid in device.spis() {
            if let Some(console) = hardware
                .console
                .as_ref()
                .filter(|_| console_spis.contains(&intid))
            {
                report(DeviceProblem::SpiOfConsole {
                    intid,
                    console: console.node,
                });
            }
            if intid == SPI_BASE + GUEST_PL011_SPI {
                report(DeviceProblem::SpiOfGuestUart { intid });
            }
        }
    }
}

/// The devices Tessera maps for itself, with their pages.
fn hypervisor_devices<'a>(
    hardware: &Hardware<'a>,
) -> Vec<(Node<'a>, &'static str, Vec<PhysRange>)> {
    let whole_pages = |r: PhysRange| r.align_outward(DEVICE_PAGE_SIZE);
    let mut devices = Vec::new();
    if let Some(console) = &hardware.console {
        devices.push((
            console.node,
            CONSOLE,
            whole_pages(console.registers).into_iter().collect(),
        ));
    }
    devices.push((
        hardware.gic.node,
        INTERRUPT_CONTROLLER,
        hardware
            .gic
            .mmio_regions()
            .filter_map(whole_pages)
            .collect(),
    ));
    devices
}

/// The first page two page lists share.
fn shared_page(ours: &[PhysRange], theirs: &[PhysRange]) -> Option<PhysRange> {
    ours.iter()
        .find_map(|a| theirs.iter().find_map(|b| intersection(a, b)))
}

fn intersection(a: &PhysRange, b: &PhysRange) -> Option<PhysRange> {
    let start = a.start().max(b.start());
    let last = a.last().min(b.last());
    (start <= last)
        .then(|| PhysRange::spanning(start, last))
        .flatten()
}

/// Subtrees whose nodes are never another owner of a page: the
/// configuration, and reserved memory (its overlaps are checked against
/// the memory map in `placement`, as RAM's are).
const NOT_DEVICES: &[&str] = &[HYPERVISOR_PATH, "/reserved-memory"];

/// Every node with a host physical `reg` whose pages meet `device`'s,
/// except those `skip` accepts, with the first shared page.
fn other_devices_sharing<'a>(
    device: &PassthroughDevice<'a>,
    skip: &impl Fn(&Node<'a>) -> bool,
) -> Vec<(Node<'a>, PhysRange)> {
    let fdt = device.node.fdt();
    let excluded: Vec<Node<'a>> = NOT_DEVICES
        .iter()
        .filter_map(|p| fdt.find_node(p))
        .collect();
    let mut found = Vec::new();
    for node in fdt
        .nodes()
        .filter(|n| n.depth() > 0 && n.has_property("reg"))
    {
        let is_memory = node.property("device_type").and_then(|p| p.as_str()) == Some("memory");
        if is_memory || excluded.iter().any(|e| super::is_within(&node, e)) || skip(&node) {
            continue;
        }
        // A bus that does not map its children's addresses (I2C, SPI, CPUs)
        // or a malformed `reg` has no host physical pages to share.
        let Ok(entries) = address::reg(&node) else {
            continue;
        };
        let pages: Vec<PhysRange> = entries
            .filter_map(Result::ok)
            .filter_map(|r| r.align_outward(DEVICE_PAGE_SIZE))
            .collect();
        if let Some(page) = shared_page(&device.pages, &pages) {
            found.push((node, page));
        }
    }
    found
}
