//! The GIC register sweep (test-guest role `gic-sweep`): every distributor
//! and redistributor register at every access width, natively on QEMU and
//! in a partition on Tessera's debug image (overflow checks on: a width
//! the emulation mishandles panics there), on GICv3 and GICv2. Each run
//! passes only if every difference from the rule is a deviation the guest
//! kit lists for that environment (`gic::sweep::DEVIATIONS`).

use std::time::Duration;

use crate::scenario::{Boot, End, Image, Machine, Scenario, Step, forbidden_except};

const OVERLAY: &str = "tests/overlays/qemu-virt-gic-sweep.dts";
const BOOTARGS: &str = "role=gic-sweep";

/// Registers the guest's table has per GIC version, plus its first case
/// (the GIC found) and its last (the SPIs it lacks read as zero).
fn cases(gic: u8) -> usize {
    2 + match gic {
        3 => 29,
        _ => 28,
    }
}

fn result(gic: u8) -> String {
    format!("RESULT gic-sweep: {} passed, 0 failed", cases(gic))
}

fn forbidden() -> Vec<String> {
    let mut forbidden = forbidden_except(&[]);
    forbidden.extend([": FAILED".to_owned(), "unexpected ".to_owned()]);
    forbidden
}

/// The sweep on QEMU's own GIC: what the partition is compared with.
fn native(gic: u8) -> Scenario {
    Scenario {
        name: format!("gic-sweep-native-gicv{gic}"),
        about: "the GIC register sweep on QEMU's own GIC, without Tessera",
        machine: Machine {
            // The guest at EL1, as in a partition.
            virtualization: false,
            ..Machine::with(gic, 2)
        },
        boot: Boot::TestGuestDirect { bootargs: BOOTARGS },
        image: Image::Release,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: None,
        steps: vec![Step::one(result(gic))],
        forbidden: forbidden(),
        end: End::Exit(0),
        timeout: Duration::from_secs(60),
        intervals: Vec::new(),
    }
}

/// The sweep in a partition, on the debug image.
fn in_partition(gic: u8) -> Scenario {
    Scenario {
        name: format!("gic-sweep-gicv{gic}"),
        about: "the GIC register sweep in a partition of Tessera's debug image: every register at every width, as the rule says or a documented deviation",
        machine: Machine::with(gic, 2),
        boot: Boot::Kernel,
        image: Image::Debug,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: Some(OVERLAY),
        steps: vec![
            Step::one(format!("sweep | {}", result(gic))),
            Step::one("all partitions have stopped: powering off"),
        ],
        forbidden: forbidden(),
        end: End::Exit(0),
        timeout: Duration::from_secs(60),
        intervals: Vec::new(),
    }
}

/// Every sweep scenario.
pub fn all() -> Vec<Scenario> {
    vec![native(3), in_partition(3), native(2), in_partition(2)]
}
