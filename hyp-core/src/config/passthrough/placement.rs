//! Device pages against memory: host RAM (a partition's, Tessera's, or
//! reserved) must not be a device page, and a device page, which the guest
//! sees at its host address, must not land on the guest's own RAM or
//! emulated devices.

use alloc::boxed::Box;
use alloc::vec::Vec;

use super::DEVICES_PROPERTY;
use super::problem::DeviceProblem;
use crate::config::error::{ConfigError, Problem, Scope};
use crate::config::guest_map::{GUEST_DEVICES, IPA_BITS};
use crate::config::owner::Owner;
use crate::config::plan::PartitionPlan;
use crate::hw::memory::MemoryMap;
use crate::mm::address::{PhysAddr, PhysRange};

/// What the guest has at [`GUEST_DEVICES`], in messages.
const EMULATED_DEVICES: &str = "its emulated GIC and PL011";
const GUEST_RAM: &str = "its RAM";

/// Checks every placed partition's device pages against RAM, reserved
/// memory and the guest's layout.
pub fn check_placement<'a>(
    plans: &[PartitionPlan<'a>],
    memory: &MemoryMap,
    errors: &mut Vec<ConfigError<'a>>,
) {
    for plan in plans {
        for device in &plan.config.devices {
            let mut report = |problem| {
                errors.push(ConfigError {
                    scope: Scope::Partition(plan.config.name),
                    property: DEVICES_PROPERTY,
                    problem: Problem::Device {
                        path: device.path,
                        problem: Box::new(problem),
                    },
                });
            };
            for &page in &device.pages {
                check_host_memory(page, plans, memory, &mut report);
                check_guest_address(page, plan, &mut report);
            }
        }
    }
}

fn check_host_memory<'a>(
    page: PhysRange,
    plans: &[PartitionPlan<'a>],
    memory: &MemoryMap,
    report: &mut impl FnMut(DeviceProblem<'a>),
) {
    let mut clash = false;
    for other in plans.iter().filter(|p| p.ram.overlaps(&page)) {
        report(DeviceProblem::InRam {
            page,
            with: Owner::Partition(other.config.name),
            other: other.ram,
        });
        clash = true;
    }
    for reserved in memory.reserved.iter().filter(|r| r.range.overlaps(&page)) {
        report(DeviceProblem::InRam {
            page,
            with: Owner::Reserved(reserved.kind),
            other: reserved.range,
        });
        clash = true;
    }
    if clash {
        return;
    }
    if let Some(bank) = memory.banks.iter().find(|b| b.overlaps(&page)) {
        report(DeviceProblem::InRam {
            page,
            with: Owner::Ram,
            other: *bank,
        });
    }
}

fn check_guest_address<'a>(
    page: PhysRange,
    plan: &PartitionPlan<'a>,
    report: &mut impl FnMut(DeviceProblem<'a>),
) {
    let guest_ram_end = plan.layout.ram_base.saturating_add(plan.layout.ram_size);
    let guest_ram = PhysRange::from_bounds(PhysAddr(plan.layout.ram_base), PhysAddr(guest_ram_end));
    // With direct-map the guest's RAM is its host RAM, reported above.
    if !plan.config.direct_map
        && let Some(ram) = guest_ram.filter(|r| r.overlaps(&page))
    {
        report(DeviceProblem::GuestAddressClash {
            page,
            what: GUEST_RAM,
            start: ram.start().0,
            end: guest_ram_end,
        });
    }
    let (start, end) = GUEST_DEVICES;
    if PhysRange::from_bounds(PhysAddr(start), PhysAddr(end)).is_some_and(|d| d.overlaps(&page)) {
        report(DeviceProblem::GuestAddressClash {
            page,
            what: EMULATED_DEVICES,
            start,
            end,
        });
    }
    if page.last().0 >> IPA_BITS != 0 {
        report(DeviceProblem::BeyondGuestAddressSpace {
            page,
            bits: IPA_BITS,
        });
    }
}
