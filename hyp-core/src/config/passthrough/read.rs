//! Reads a partition's `devices` property: each path looked up in the
//! board's tree and the device's registers, interrupts, DMA capability and
//! dependencies read, with every problem of the device itself reported.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::dependencies::{DependencyProperty, is_fixed_clock, providers};
use super::problem::DeviceProblem;
use super::{DEVICE_PAGE_SIZE, DEVICES_PROPERTY, PassthroughDevice, dependencies, dma, interrupts};
use crate::config::binding::is_path_list;
use crate::config::error::Problem;
use crate::dt::address::{self, AddressError};
use crate::dt::{Lookup, Node};
use crate::hw::gic::Gic;
use crate::mm::address::{PhysRange, sort_small};

/// The devices `partition`'s `devices` property names, as far as they
/// could be read (a device with a problem of its own is left out, one
/// with bad interrupts is kept so that its pages are still checked).
pub fn read_devices<'a>(
    partition: &Node<'a>,
    gic: &Gic<'a>,
    error: &mut impl FnMut(&'static str, Problem<'a>),
) -> Vec<PassthroughDevice<'a>> {
    let mut devices: Vec<PassthroughDevice<'a>> = Vec::new();
    let Some(property) = partition.property(DEVICES_PROPERTY) else {
        return devices;
    };
    if !is_path_list(&property) {
        error(
            DEVICES_PROPERTY,
            Problem::Malformed {
                expected: "a list of device node paths",
            },
        );
        return devices;
    }
    for path in property.strings() {
        let mut report = |problem| {
            error(
                DEVICES_PROPERTY,
                Problem::Device {
                    path,
                    problem: Box::new(problem),
                },
            )
        };
        // Absolute paths only (`is_path_list`): each names one node or none.
        let node = match partition.fdt().find_unique_node(path) {
            Ok(node) => node,
            Err(Lookup::NotFound) => {
                report(DeviceProblem::NotFound);
                continue;
            }
            Err(lookup) => {
                report(DeviceProblem::Ambiguous(lookup));
                continue;
            }
        };
        if devices.iter().any(|d| d.node == node) {
            report(DeviceProblem::ListedTwice);
            continue;
        }
        if !node.is_enabled() {
            let status = node.property("status").and_then(|p| p.as_str());
            report(DeviceProblem::Disabled {
                status: status.unwrap_or("?"),
            });
            continue;
        }
        let registers = match registers(&node) {
            Ok(registers) => registers,
            Err(AddressError::MissingReg) => {
                report(DeviceProblem::NoRegisters);
                continue;
            }
            Err(problem) => {
                report(DeviceProblem::Address(problem));
                continue;
            }
        };
        if let Some((at, name)) = uncopyable_name(&node) {
            report(DeviceProblem::UncopyableName { node: at, name });
            continue;
        }
        let interrupts = interrupts::read(&node, gic, &mut report);
        devices.push(PassthroughDevice {
            path,
            node,
            pages: pages(&registers),
            registers,
            interrupts,
            dma: dma::dma_reason(&node),
            dependencies: dependencies::read(&node),
        });
    }
    dependencies::mark_shared_providers(&mut devices);
    devices
}

/// Longest node or property name (Devicetree Specification v0.4 §2.2.1,
/// §2.2.4): the guest's tree is written by rules that enforce it.
const MAX_NAME_LENGTH: usize = 31;

/// The first name in what the guest's copy of `device` takes from the
/// board's tree (its subtree, the names of the buses above it, the fixed
/// clocks it may carry) that a device tree may not have: the node it is
/// in, and the name. Checked here so that a valid configuration never
/// fails when its guest tree is written.
fn uncopyable_name<'a>(device: &Node<'a>) -> Option<(Node<'a>, &'a str)> {
    let mut ancestor = device.parent();
    while let Some(bus) = ancestor.filter(|n| n.depth() > 0) {
        if !is_node_name(bus.name()) {
            return Some((bus, bus.name()));
        }
        ancestor = bus.parent();
    }
    let mut found = None;
    each_node(device, &mut |node| {
        if found.is_some() {
            return;
        }
        if !is_node_name(node.name()) {
            found = Some((*node, node.name()));
        } else if let Some(property) = node.properties().find(|p| !is_property_name(p.name)) {
            found = Some((*node, property.name));
        }
        for property in node.properties() {
            let Some(kind) = DependencyProperty::of(property.name) else {
                continue;
            };
            for (_, provider) in providers(node, &property, kind).unwrap_or_default() {
                if found.is_none() && is_fixed_clock(&provider) {
                    found = (!is_node_name(provider.base_name()))
                        .then(|| (provider, provider.base_name()))
                        .or_else(|| {
                            provider
                                .properties()
                                .find(|p| !is_property_name(p.name))
                                .map(|p| (provider, p.name))
                        });
                }
            }
        }
    });
    found
}

fn each_node<'a>(node: &Node<'a>, f: &mut impl FnMut(&Node<'a>)) {
    f(node);
    for child in node.children() {
        each_node(&child, f);
    }
}

/// DTSpec §2.2.1: `name@unit`, the name 1-31 characters of `[0-9a-zA-Z,._+-]`
/// starting with a letter, the unit address of the same characters.
fn is_node_name(name: &str) -> bool {
    let node_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, ',' | '.' | '_' | '+' | '-');
    let (base, unit) = match name.split_once('@') {
        Some((base, unit)) => (base, unit),
        None => (name, ""),
    };
    (1..=MAX_NAME_LENGTH).contains(&base.len())
        && base.starts_with(|c: char| c.is_ascii_alphabetic())
        && base.chars().all(node_char)
        && unit.chars().all(node_char)
}

/// DTSpec §2.2.4: 1-31 characters of `[0-9a-zA-Z,._+?#-]`.
fn is_property_name(name: &str) -> bool {
    (1..=MAX_NAME_LENGTH).contains(&name.len())
        && name.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, ',' | '.' | '_' | '+' | '?' | '#' | '-')
        })
}

/// `node`'s `reg` entries, translated to host physical addresses.
fn registers(node: &Node<'_>) -> Result<Vec<PhysRange>, AddressError> {
    address::reg(node)?.collect()
}

/// `registers` rounded out to whole pages, sorted, with touching pages
/// merged.
pub(super) fn pages(registers: &[PhysRange]) -> Vec<PhysRange> {
    let mut pages: Vec<PhysRange> = registers
        .iter()
        .filter_map(|r| r.align_outward(DEVICE_PAGE_SIZE))
        .collect();
    sort_small(&mut pages);
    let mut merged: Vec<PhysRange> = Vec::with_capacity(pages.len());
    for page in pages {
        let joined = merged.last_mut().and_then(|last| {
            let touches = last.end().is_some_and(|end| end >= page.start());
            let end = page.last().max(last.last());
            touches
                .then(|| PhysRange::spanning(last.start(), end))
                .flatten()
                .map(|joined| *last = joined)
        });
        if joined.is_none() {
            merged.push(page);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mm::address::PhysAddr;

    fn range(start: u64, size: u64) -> PhysRange {
        PhysRange::new(PhysAddr(start), size).unwrap()
    }

    #[test]
    fn names_follow_the_devicetree_specification() {
        for good in ["serial@7e201000", "uart0-ctsrts-gpio30", "a", "cpu@0,1"] {
            assert!(is_node_name(good), "{good} is a node name");
        }
        for bad in [
            "",
            "0serial",
            "serial@1@2",
            "a b",
            "ab@c d",
            &"x".repeat(32),
        ] {
            assert!(!is_node_name(bad), "{bad:?} is not a node name");
        }
        for good in ["#clock-cells", "brcm,pins", "linux,phandle", "a?"] {
            assert!(is_property_name(good), "{good} is a property name");
        }
        for bad in ["", "a b", "a@b", &"x".repeat(32)] {
            assert!(!is_property_name(bad), "{bad:?} is not a property name");
        }
    }

    #[test]
    fn registers_round_out_to_pages_and_touching_pages_merge() {
        let registers = [
            range(0x7e20_1400, 0x200),
            range(0x7e20_1000, 0x200),
            range(0x7e20_2ff0, 0x20),
            range(0x9000_0000, 0x1000),
        ];
        assert_eq!(
            pages(&registers),
            [range(0x7e20_1000, 0x3000), range(0x9000_0000, 0x1000)],
            "two registers in one page give one page; the page after it joins; a far one stays apart"
        );
    }
}
