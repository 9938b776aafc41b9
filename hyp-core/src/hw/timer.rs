//! The Arm generic timer's interrupts (`arm,armv8-timer`, Arm `arm,arch_timer.yaml`).

#![deny(clippy::indexing_slicing)]

use super::gic::{Gic, Interrupt, decode_interrupts, interrupt_parent_is};
use super::issue::{Issues, Place, Problem};
use crate::dt::{Fdt, Node};

/// The timer's PPIs as INTIDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    pub secure_physical: u32,
    pub physical: u32,
    pub virtual_timer: u32,
    /// EL2 physical timer (CNTHP): Tessera's own.
    pub hyp_physical: u32,
    /// EL2 virtual timer (CNTHV), present with FEAT_VHE.
    pub hyp_virtual: Option<u32>,
    /// The DT says the timer keeps counting in every power state.
    pub always_on: bool,
    /// `clock-frequency`: only for firmware that leaves CNTFRQ_EL0 unset.
    pub clock_frequency: Option<u32>,
}

/// Whether `node` is an enabled architected timer.
pub fn is_timer(node: &Node<'_>) -> bool {
    node.is_compatible(&["arm,armv8-timer", "arm,armv7-timer"]) && node.is_enabled()
}

/// Reads the timer node (the first [`is_timer`] node, `found`); its
/// interrupts must be PPIs of `gic`.
pub fn discover_at<'a>(
    fdt: &Fdt<'a>,
    found: Option<Node<'a>>,
    gic: &Gic<'a>,
    issues: &mut Issues<'a>,
) -> Option<Timer> {
    let Some(node) = found else {
        issues.fatal(
            Place::Path("/timer"),
            "compatible",
            Problem::Invalid("no arm,armv8-timer node"),
        );
        return None;
    };
    let place = Place::Node(node);
    if interrupt_parent_is(fdt, &node, &gic.node) == Some(false) {
        issues.fatal(
            place,
            "interrupt-parent",
            Problem::Invalid("the timer is not wired to the GIC"),
        );
        return None;
    }
    let Some(property) = node.property("interrupts") else {
        issues.fatal(place, "interrupts", Problem::MissingProperty);
        return None;
    };
    let mut intids = [None; 5];
    for (slot, decoded) in intids
        .iter_mut()
        .zip(decode_interrupts(property.value, gic.interrupt_cells))
    {
        match decoded {
            Ok(Interrupt::Ppi(intid)) => *slot = Some(intid),
            Ok(Interrupt::Spi(_)) => {
                issues.fatal(
                    place,
                    "interrupts",
                    Problem::Invalid("timer interrupts must be PPIs"),
                );
                return None;
            }
            Err(problem) => {
                issues.fatal(place, "interrupts", problem);
                return None;
            }
        }
    }
    let [
        Some(secure_physical),
        Some(physical),
        Some(virtual_timer),
        Some(hyp_physical),
        hyp_virtual,
    ] = intids
    else {
        issues.fatal(
            place,
            "interrupts",
            Problem::CellCount {
                found: property.cell_count(),
                expected: "4 or 5 interrupt specifiers",
            },
        );
        return None;
    };
    Some(Timer {
        secure_physical,
        physical,
        virtual_timer,
        hyp_physical,
        hyp_virtual,
        always_on: node.has_property("always-on"),
        clock_frequency: node.property("clock-frequency").and_then(|p| p.as_u32()),
    })
}
