//! Device passthrough scenarios: QEMU virt's PL031 RTC given to one
//! partition (its node in the guest's tree, its registers at their host
//! address, its alarm interrupt before and after a restart from inside the
//! interrupt's handler) and refused to the partition beside it.

use crate::scenario::{Boot, End, Image, Machine, Scenario, Step, forbidden_except};
use std::time::Duration;

const PL031_OVERLAY: &str = "tests/overlays/qemu-virt-passthrough.dts";

fn pl031(gic: u8) -> Scenario {
    // Partition b's read of the PL031 is warned about.
    let mut forbidden = forbidden_except(&[" WARN  "]);
    forbidden.extend([": FAILED".to_owned(), "unexpected ".to_owned()]);
    Scenario {
        name: format!("passthrough-pl031-gicv{gic}"),
        about: "the PL031 passed through to one partition: its DT node, registers and alarm interrupt there (also after a restart that left it active), a data abort in the other",
        machine: Machine::with(gic, 2),
        boot: Boot::Kernel,
        image: Image::Release,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: Some(PL031_OVERLAY),
        steps: vec![
            Step::one(
                "partition a: device /pl031@9010000: 0x9010000..0x9011000 INTID 34 (at guest = host addresses)",
            ),
            Step::all(&[
                "a | TEST pl031_node: ok",
                "a | TEST pl031_periph_id: ok",
                "a | TEST pl031_pcell_id: ok",
                "a | TEST pl031_gic_set_up: ok",
                "a | TEST pl031_alarm: ok",
                "a | TEST pl031_alarm_cleared_then_fires_again: ok",
                "a | TEST pl031_alarm_pending_while_active: ok",
                "a | pl031: restarting with the alarm's interrupt active",
                "b | TEST pl031_not_in_tree: ok",
                "partition b: vCPU 0: an access to an unassigned address: read of 0x9010fe0",
                "b | TEST pl031_aborts: ok",
                "b | RESULT pl031-denied: 2 passed, 0 failed",
            ]),
            Step::one("partition a: SYSTEM_RESET: restarting"),
            Step::all(&[
                "a | TEST pl031_gic_set_up: ok",
                "a | TEST pl031_reset_after_restart: ok",
                "a | TEST pl031_alarm_after_restart: ok",
                "a | RESULT pl031: 6 passed, 0 failed",
            ]),
            Step::one("all partitions have stopped: powering off"),
        ],
        forbidden,
        end: End::Exit(0),
        timeout: Duration::from_secs(90),
        intervals: Vec::new(),
    }
}

/// Every passthrough scenario.
pub fn all() -> Vec<Scenario> {
    vec![pl031(3), pl031(2)]
}
