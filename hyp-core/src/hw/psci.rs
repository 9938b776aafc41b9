//! The firmware's PSCI interface (`/psci`, Arm `psci.yaml` binding).

#![deny(clippy::indexing_slicing)]

use super::issue::{Issues, Place, Problem};
use crate::dt::Fdt;

/// PSCI as the firmware offers it to Tessera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Psci<'a> {
    /// The most specific `compatible` ("arm,psci-1.0").
    pub compatible: &'a str,
}

/// Reads `/psci`. Only the SMC conduit reaches firmware from EL2: an HVC
/// issued at EL2 traps to EL2 itself, so a tree that says "hvc" (written for a
/// kernel running under a hypervisor) is reported and PSCI treated as absent.
pub fn discover<'a>(fdt: &Fdt<'a>, issues: &mut Issues<'a>) -> Option<Psci<'a>> {
    let node = fdt.root().children().find(|n| {
        n.is_compatible(&["arm,psci-1.0", "arm,psci-0.2", "arm,psci"]) && n.is_enabled()
    })?;
    match node.property("method").and_then(|p| p.as_str()) {
        Some("smc") => Some(Psci {
            compatible: node.compatible().next().unwrap_or("arm,psci"),
        }),
        Some("hvc") => {
            issues.warn(
                Place::Node(node),
                "method",
                Problem::Invalid(
                    "\"hvc\" cannot reach firmware from EL2 (an HVC at EL2 traps to EL2 itself); \
                     Tessera needs method = \"smc\". PSCI is unavailable: secondary CPUs stay \
                     off and power-off parks the CPUs",
                ),
            );
            None
        }
        Some(_) => {
            issues.warn(
                Place::Node(node),
                "method",
                Problem::Unsupported("conduit other than \"smc\""),
            );
            None
        }
        None => {
            issues.warn(Place::Node(node), "method", Problem::MissingProperty);
            None
        }
    }
}
