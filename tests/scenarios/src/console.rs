//! The console under load: two partitions print a thousand lines each at
//! once (test-guest role `chatter`), so their vCPUs keep finding the console
//! taken by the other and must come back for their lines later. Every line
//! of both must arrive.

use std::time::Duration;

use crate::scenario::{Boot, End, Image, Machine, Scenario, Step, forbidden_except};

const OVERLAY: &str = "tests/overlays/qemu-virt-console.dts";
/// Lines each `chatter` partition prints (test-guest `role_chatter::LINES`).
const LINES: u32 = 1000;
const PARTITIONS: [&str; 2] = ["a", "b"];

fn two_chatters(gic: u8) -> Scenario {
    let mut lines: Vec<String> = PARTITIONS
        .iter()
        .flat_map(|p| (0..LINES).map(move |n| format!("{p} | chatter: line {n} of {LINES}")))
        .collect();
    lines.extend(PARTITIONS.iter().map(|p| format!("{p} | chatter: done")));
    Scenario {
        name: format!("console-two-chatters-gicv{gic}"),
        about: "two partitions print a thousand lines each at once: none is lost",
        machine: Machine::with(gic, 2),
        boot: Boot::Kernel,
        image: Image::Release,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: Some(OVERLAY),
        steps: vec![
            Step::of(lines),
            Step::one("all partitions have stopped: powering off"),
        ],
        forbidden: forbidden_except(&[]),
        end: End::Exit(0),
        timeout: Duration::from_secs(60),
        intervals: Vec::new(),
    }
}

/// Every console scenario.
pub fn all() -> Vec<Scenario> {
    vec![two_chatters(3), two_chatters(2)]
}
