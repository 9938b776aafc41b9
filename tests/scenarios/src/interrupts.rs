//! Scenarios for guests' interrupts and timers: the test guest's `irq` role
//! checks its virtual GIC and timer in one partition while an
//! `irq-witness` partition listens on the cores the first aims foreign
//! SGIs at; on GICv3 and on GICv2.

use std::time::Duration;

use crate::scenario::{
    Boot, End, Image, Interval, Machine, RPI4_DTB, Scenario, Step, forbidden_except,
};

const OVERLAY: &str = "tests/overlays/qemu-virt-interrupts.dts";

/// The `irq` role's cases after the foreign SGIs, in the order it runs them.
const IRQ_CASES: [&str; 26] = [
    "counter_shared_by_vcpus",
    "counters_untrapped",
    "timer_node",
    "timer_deadline",
    "timer_deadline_vcpu1",
    "timer_held_while_disabled",
    "sgi_to_other_vcpu",
    "sgi_from_other_vcpu",
    "sgi_all_but_self",
    "sgi_to_self",
    "foreign_spis_ignored",
    "burst_beyond_list_registers",
    "burst_from_other_vcpu",
    "priority_order",
    "priority_mask",
    "pending_reads_pending",
    "active_reads_active",
    "disable_withdraws_pending",
    "timer_pending_while_active",
    "timer_level_sensitive",
    "timer_cleared_then_fires_again",
    "active_set_and_cleared",
    "active_held_by_other_vcpu",
    "spi_targets_masked",
    "spi_router_reads_back",
    "secondary_off",
];
/// The cases before them: the GIC found and set up, vCPU 1 started, and
/// the SGIs aimed at the witness's cores.
const IRQ_FIRST_CASES: [&str; 4] = [
    "gic_discovered",
    "gic_set_up",
    "secondary_started",
    "sgi_to_foreign_cores",
];

/// The `irq` role's last output: a line it leaves unfinished for
/// [`UNFINISHED_FOR`] (test-guest `role_irq::UNFINISHED_LINE`).
const UNFINISHED_LINE: &str = "irq | unfinished line> ";
const UNFINISHED_FOR: Duration = Duration::from_millis(1000);
/// How long Tessera lets an unfinished line wait before it shows it
/// (hyp-core `output::UNFINISHED_LINE_WAIT_MS`).
const UNFINISHED_LINE_WAIT: Duration = Duration::from_millis(100);

/// A guest's failed case or unexpected exception.
const GUEST_FAILURES: [&str; 2] = [": FAILED", "unexpected "];

fn ok(partition: &str, case: &str) -> String {
    format!("{partition} | TEST {case}: ok")
}

fn step(substrings: &[String]) -> Step {
    Step::all(&substrings.iter().map(String::as_str).collect::<Vec<_>>())
}

fn interrupts(gic: u8) -> Scenario {
    let mut first: Vec<String> = IRQ_FIRST_CASES.iter().map(|c| ok("irq", c)).collect();
    first.push(format!("irq | irq: GICv{gic} (/intc@8000000)"));
    first.push(ok("witness", "witness_listening"));
    first.push(format!("witness | irq-witness: GICv{gic}, 2 vCPU(s)"));
    first.push("witness | irq-witness: watching for".into());
    // The witness's verdict must come after the foreign SGIs (the step
    // before): a watch that ended too early fails here.
    let mut rest: Vec<String> = IRQ_CASES.iter().map(|c| ok("irq", c)).collect();
    rest.push(UNFINISHED_LINE.into());
    let result = format!(
        "irq | RESULT irq: {} passed, 0 failed",
        IRQ_FIRST_CASES.len() + IRQ_CASES.len()
    );
    rest.push(result.clone());
    // Tessera's timer shows the unfinished line (its time stamp) after its
    // wait, not when the line ends: without it the two lines come at once.
    let unfinished_line_shown = Interval {
        from: UNFINISHED_LINE.into(),
        to: result,
        expected: UNFINISHED_FOR - UNFINISHED_LINE_WAIT,
        tolerance_percent: 30,
    };
    rest.push(ok("witness", "no_foreign_interrupts_vcpu0"));
    rest.push(ok("witness", "no_foreign_interrupts_vcpu1"));
    rest.push("witness | RESULT irq-witness: 3 passed, 0 failed".into());
    rest.push("partition irq: stopped".into());
    rest.push("partition witness: stopped".into());
    let mut forbidden = forbidden_except(&[]);
    forbidden.extend(GUEST_FAILURES.iter().map(|s| (*s).to_owned()));
    Scenario {
        name: format!("interrupts-gicv{gic}"),
        about: "virtual GIC and timer: deadlines, SGIs in and out of the partition, foreign SPIs, more interrupts than list registers, priorities; Tessera's own timer shows an unfinished line",
        machine: Machine::with(gic, 4),
        boot: Boot::Kernel,
        image: Image::Release,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: Some(OVERLAY),
        steps: vec![
            Step::all(&["partition irq: VMID 1", "partition witness: VMID 2"]),
            step(&first),
            step(&rest),
            Step::one("all partitions have stopped: powering off"),
        ],
        forbidden,
        end: End::Exit(0),
        timeout: Duration::from_secs(60),
        intervals: vec![unfinished_line_shown],
    }
}

/// The same on QEMU's Raspberry Pi 4: the GIC-400 (GICv2 with the
/// Security Extensions, Tessera non-secure) under Debian's DTB. No PSCI
/// underneath: once both partitions have stopped the CPUs park.
fn raspberry_pi_4() -> Scenario {
    let mut scenario = interrupts(2);
    scenario.name = "interrupts-rpi4".into();
    scenario.about =
        "the interrupt scenario on QEMU raspi4b's GIC-400 with Debian's Raspberry Pi 4 DTB";
    scenario.machine = Machine::RASPI4B;
    scenario.dtb_file = Some(RPI4_DTB);
    scenario.overlay = Some(RPI4_OVERLAY);
    if let Some(last) = scenario.steps.last_mut() {
        *last = Step::one("this board has no PSCI to power off with: parking every CPU in WFI");
    }
    scenario.end = End::Halt;
    scenario
}

/// The largest partition GICv3 serves: 16 vCPUs, each taking a timer
/// interrupt and an SGI, on the debug image (where a vCPU beyond the
/// vGIC's state, or a wake-up mask too narrow, panics).
fn sixteen_vcpus() -> Scenario {
    let result = "big | RESULT irq-all-vcpus: 4 passed, 0 failed";
    Scenario {
        name: "interrupts-gicv3-16-vcpus".into(),
        about: "a GICv3 partition of 16 vCPUs (the most it serves) on the debug image: a timer interrupt and an SGI on every vCPU",
        machine: Machine::with(3, 16),
        boot: Boot::Kernel,
        image: Image::Debug,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: Some("tests/overlays/qemu-virt-sixteen-vcpus.dts"),
        steps: vec![
            Step::all(&[
                "big | TEST all_vcpus_started: ok",
                "big | TEST timer_on_every_vcpu: ok",
                "big | TEST sgi_on_every_vcpu: ok",
                result,
            ]),
            Step::one("all partitions have stopped: powering off"),
        ],
        forbidden: {
            let mut forbidden = forbidden_except(&[]);
            forbidden.extend(GUEST_FAILURES.iter().map(|s| (*s).to_owned()));
            forbidden
        },
        end: End::Exit(0),
        timeout: Duration::from_secs(120),
        intervals: Vec::new(),
    }
}

/// The overlay with modules where the Raspberry Pi 4's RAM is.
const RPI4_OVERLAY: &str = "tests/overlays/rpi4-interrupts.dts";

/// Every interrupt scenario.
pub fn all() -> Vec<Scenario> {
    vec![
        interrupts(3),
        interrupts(2),
        raspberry_pi_4(),
        sixteen_vcpus(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_gics_are_covered_and_listed() {
        let names: Vec<String> = crate::all().into_iter().map(|s| s.name).collect();
        for expected in ["interrupts-gicv3", "interrupts-gicv2"] {
            assert_eq!(
                names.iter().filter(|n| *n == expected).count(),
                1,
                "{expected} should be listed once by tessera_scenarios::all()"
            );
        }
    }

    #[test]
    fn the_witness_verdict_waits_for_the_foreign_sgis() {
        let scenario = interrupts(3);
        let step_of = |text: &str| {
            scenario
                .steps
                .iter()
                .position(|step| step.pending().iter().any(|s| s.contains(text)))
        };
        let foreign = step_of("TEST sgi_to_foreign_cores: ok").unwrap();
        let verdict = step_of("TEST no_foreign_interrupts_vcpu0: ok").unwrap();
        assert!(
            verdict > foreign,
            "the witness's verdict must be a later step than the foreign SGIs"
        );
    }
}
