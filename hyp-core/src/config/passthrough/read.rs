//! Reads a partition's `devices` property: each path looked up in the
//! board's tree and the device's registers, interrupts, DMA capability and
//! dependencies read, with every problem of the device itself reported.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::problem::DeviceProblem;
use super::{DEVICE_PAGE_SIZE, DEVICES_PROPERTY, PassthroughDevice, dependencies, dma, interrupts};
use crate::config::binding::is_path_list;
use crate::config::error::Problem;
use crate::dt::Node;
use crate::dt::address::{self, AddressError};
use crate::hw::gic::Gic;
use crate::mm::address::PhysRange;

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
        let Some(node) = partition.fdt().find_node(path) else {
            report(DeviceProblem::NotFound);
            continue;
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
    pages.sort_unstable();
    let mut merged: Vec<PhysRange> = Vec::with_capacity(pages.len());
    for page in pages {
        let joined = merged.last_mut().and_then(|last| {
            let touches = last.end().is_some_and(|end| end >= page.start());
            let end = page.last().max(last.last());
            touches
                .then(|| PhysRange::new(last.start(), end.0 - last.start().0 + 1))
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
