//! Partition configuration: the `/hypervisor` binding (docs/partitions.md),
//! its validation, and the placement of every partition.
//!
//! The same code runs at boot and in `cargo xtask check-config`, so a user
//! sees on the host exactly the report Tessera would print on the board.
//!
//! Every number here comes from a user's overlay, a board's DTB or an image
//! header: arithmetic is checked (an overflow is an error naming the field),
//! never wrapped or saturated into a plausible value.

#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod binding;
pub mod chosen;
pub mod error;
pub mod guest_map;
pub mod image;
mod owner;
pub mod passthrough;
pub mod plan;
pub mod vocabulary;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;

pub use binding::{Module, PartitionConfig, RestartPolicy};
pub use error::{ConfigError, Count, Problem, Scope};
pub use owner::Owner;
pub use passthrough::{Note, PassthroughDevice};
pub use plan::{ModuleContents, PartitionPlan};

use crate::dt::Fdt;
use crate::hw::Hardware;

/// The partitions `fdt` configures, checked and placed; or every error.
/// `Ok` with no partitions when the tree has no `/hypervisor` node.
/// `hardware.memory` must already reserve Tessera's image and heap (see
/// [`crate::mm::hyp_memory`]); the DTB and modules are reserved by discovery.
pub fn read<'a>(
    fdt: &Fdt<'a>,
    hardware: &Hardware<'a>,
    contents: &impl ModuleContents,
) -> Result<Vec<PartitionPlan<'a>>, Vec<ConfigError<'a>>> {
    let mut errors = Vec::new();
    chosen::check(fdt, &mut errors);
    let Some(hypervisor) = binding::hypervisor_node(fdt) else {
        // A /hypervisor node that is not Tessera's (a misspelt compatible)
        // configures nothing: that is an error, not a machine powered off.
        if let Some(node) = fdt.find_node(binding::HYPERVISOR_PATH) {
            let problem = if node.has_property("compatible") {
                Problem::Malformed {
                    expected: "\"tessera,hypervisor\"",
                }
            } else {
                Problem::Missing
            };
            errors.push(ConfigError {
                scope: Scope::Hypervisor,
                property: "compatible",
                problem,
            });
        }
        return if errors.is_empty() {
            Ok(Vec::new())
        } else {
            Err(errors)
        };
    };
    let partitions = binding::read(hypervisor, hardware, &mut errors);
    if partitions.is_empty() && errors.is_empty() {
        errors.push(ConfigError {
            scope: Scope::Hypervisor,
            property: "",
            problem: Problem::NoPartitions,
        });
    }
    passthrough::check_ownership(&partitions, hardware, &mut errors);
    let plans = plan::plan(
        partitions,
        &hardware.cpus,
        &hardware.memory,
        contents,
        &mut errors,
    );
    passthrough::check_placement(&plans, &hardware.memory, &mut errors);
    if errors.is_empty() {
        Ok(plans)
    } else {
        Err(errors)
    }
}
