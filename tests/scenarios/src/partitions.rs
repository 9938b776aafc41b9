//! Scenarios with partitions: the shipped example overlays running the test
//! guest (tests/test-guest), booted through `-kernel` and through U-Boot,
//! on GICv3 and GICv2; and a bad configuration's report.

use crate::scenario::{
    Boot, DtbEdit, End, Image, Machine, RPI4_DTB, Scenario, Step, forbidden_except,
};
use std::time::Duration;

const TWO_PARTITIONS: &str = "dtb/overlays/qemu-virt-two-partitions.dts";
const THREE_PARTITIONS: &str = "dtb/overlays/qemu-virt-three-partitions.dts";
const BAD_CONFIGURATION: &str = "tests/overlays/qemu-virt-bad.dts";
const RPI4_TWO_PARTITIONS: &str = "dtb/overlays/rpi4-two-partitions.dts";

/// Failure reports of the test guests, on top of Tessera's own.
const GUEST_FAILURES: [&str; 2] = [": FAILED", "unexpected "];

fn timeout(boot: Boot) -> Duration {
    Duration::from_secs(if boot == Boot::UBoot { 240 } else { 90 })
}

fn forbidden() -> Vec<String> {
    // Partition b's probes of unassigned addresses are warned about.
    let mut forbidden = forbidden_except(&[" WARN  "]);
    forbidden.extend(GUEST_FAILURES.iter().map(|s| (*s).to_owned()));
    forbidden
}

fn via(boot: Boot) -> &'static str {
    if boot == Boot::UBoot { "-uboot" } else { "" }
}

/// Partition a checks PSCI, SMCCC and its RAM, then stops with an SMC
/// SYSTEM_OFF; partition b probes every unassigned address, fills its RAM,
/// restarts itself and stops. Each must be undisturbed by the other.
fn two_partitions(gic: u8, boot: Boot) -> Scenario {
    two_partitions_on(Machine::with(gic, 4), boot)
}

fn two_partitions_on(machine: Machine, boot: Boot) -> Scenario {
    let gic = machine.gic;
    let mut steps = Vec::new();
    if boot == Boot::UBoot {
        steps.push(Step::one(
            "Tessera: loading test-guest.bin for /hypervisor/a/module@49000000",
        ));
    }
    steps.push(Step::all(&[
        "partition a: VMID 1, CPUs (MPIDR) 0x0 0x1, RAM 0x50000000..0x54000000 (64 MiB) at guest 0x40000000",
        "partition b: VMID 2, CPUs (MPIDR) 0x2 0x3, RAM 0xbe000000..0xc0000000 (32 MiB) at guest 0x40000000",
    ]));
    // The two partitions run side by side: their lines interleave in any
    // order, so everything they print is one step.
    steps.push(Step::all(&[
        "a | a: boot 1",
        "b | b: boot 1",
        "a | TEST psci_version: ok",
        "a | TEST smccc_version: ok",
        "a | TEST arch_features_workaround_2: ok",
        "a | TEST hypervisor_uid: ok",
        "a | TEST tessera_null_call: ok",
        "a | TEST unknown_hvc_function: ok",
        "a | TEST hvc_preserves_x4_x17: ok",
        "a | TEST smc_preserves_x4_x17: ok",
        "a | TEST cpu_on_secondary: ok",
        "a | TEST cpu_on_already_on: ok",
        "a | TEST cpu_off_affinity_info: ok",
        "a | TEST cpu_on_invalid_mpidr: ok",
        "a | TEST cpu_on_entry_outside_ram: ok",
        "a | TEST affinity_info_invalid_level: ok",
        "a | TEST sve_hidden: ok",
        "a | TEST implementation_defined_register_undefined: ok",
        "a | TEST physical_timer_inert: ok",
        "a | TEST ram_pattern: ok",
        "a | RESULT a: 25 passed, 0 failed",
        "partition a: SYSTEM_OFF: stopping",
        "partition a: stopped",
        "b | TEST probe_zero: ok",
        "b | TEST probe_gic: ok",
        "b | TEST probe_host_addresses: ok",
        "b | TEST probe_every_gib: ok",
        "b | TEST execute_outside_ram: ok",
        "b | TEST ram_round_4: ok",
        "b | RESULT b: 14 passed, 0 failed",
        "partition b: SYSTEM_RESET: restarting",
        "partition b: boot 2",
        "b | b: boot 2",
        "b | TEST ram_scrubbed: ok",
        "b | b: done",
        "partition b: stopped",
        // Whichever partition stopped first, the machine stayed up.
        "1 partitions still running",
    ]));
    steps.push(Step::one("all partitions have stopped: powering off"));
    Scenario {
        name: format!(
            "partitions-two-gicv{gic}{}{}",
            if machine.cpu_model == "max" {
                "-cpu-max"
            } else {
                ""
            },
            via(boot)
        ),
        about: "two partitions: PSCI/SMCCC answers, RAM isolation, injected aborts, SYSTEM_RESET and SYSTEM_OFF of one partition",
        machine,
        boot,
        image: Image::Release,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: Some(TWO_PARTITIONS),
        steps,
        forbidden: forbidden(),
        end: End::Exit(0),
        timeout: timeout(boot),
        intervals: Vec::new(),
    }
}

/// The two-partition test on QEMU's Raspberry Pi 4: GIC-400 kicks by CPU
/// target mask, no PSCI underneath (the guests' PSCI is all Tessera's), and
/// no way to power off at the end, so the CPUs park.
fn raspberry_pi_4() -> Scenario {
    let mut scenario = two_partitions_on(Machine::RASPI4B, Boot::Kernel);
    scenario.name = "partitions-two-rpi4".into();
    scenario.about = "two partitions on QEMU raspi4b with Debian's Raspberry Pi 4 DTB: the same checks, then the CPUs park";
    scenario.dtb_file = Some(RPI4_DTB);
    scenario.overlay = Some(RPI4_TWO_PARTITIONS);
    // Both partitions' RAM is placed from the top of the board's RAM.
    if let Some(first) = scenario.steps.first_mut() {
        *first = Step::all(&["partition a: VMID 1", "partition b: VMID 2"]);
    }
    scenario.steps.push(Step::one(
        "this board has no PSCI to power off with: parking every CPU in WFI",
    ));
    scenario.end = End::Halt;
    scenario
}

fn three_partitions() -> Scenario {
    Scenario {
        name: "partitions-three-gicv3".into(),
        about: "three partitions on four CPUs, each printing through its own PL011",
        machine: Machine::with(3, 4),
        boot: Boot::Kernel,
        image: Image::Release,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: Some(THREE_PARTITIONS),
        steps: vec![
            Step::all(&[
                "partition a: VMID 1",
                "partition b: VMID 2",
                "partition c: VMID 3, CPUs (MPIDR) 0x3, RAM 0x60000000..0x62000000 (32 MiB) at guest 0x60000000",
            ]),
            Step::all(&[
                "a | hello from a partition (boot 1)",
                "b | hello from a partition (boot 1)",
                "c | hello from a partition (boot 1)",
            ]),
            Step::one("all partitions have stopped: powering off"),
        ],
        forbidden: forbidden(),
        end: End::Exit(0),
        timeout: timeout(Boot::Kernel),
        intervals: Vec::new(),
    }
}

fn bad_configuration() -> Scenario {
    Scenario {
        name: "partitions-bad-config".into(),
        about: "a configuration with errors: every one reported with partition and property, no partition starts",
        machine: Machine::with(3, 4),
        boot: Boot::Kernel,
        image: Image::Release,
        dtb_file: None,
        dtb_edits: vec![DtbEdit::SetString {
            path: "/chosen",
            name: "tessera,config-error",
            value: "power-off",
        }],
        overlay: Some(BAD_CONFIGURATION),
        steps: vec![
            Step::one("the partition configuration has"),
            Step::all(&[
                "partition a: restart: \"sometimes\" is not one of",
                "partition b: cpus: \"/cpus/cpu@7\" is not a CPU of this board",
                "partition b: no kernel",
                "partition b: cpus: the CPU with MPIDR 0x1 is already given to partition a",
                "partition b: memory-base: 0x52000000..0x56000000 overlaps partition a's memory",
            ]),
            Step::one("powering off"),
        ],
        forbidden: {
            let mut forbidden = forbidden_except(&[" ERROR "]);
            forbidden.push("a | ".into());
            forbidden
        },
        end: End::Exit(0),
        timeout: timeout(Boot::Kernel),
        intervals: Vec::new(),
    }
}

/// Every partition scenario.
pub fn all() -> Vec<Scenario> {
    let mut list = Vec::new();
    for gic in [3, 2] {
        for boot in [Boot::Kernel, Boot::UBoot] {
            list.push(two_partitions(gic, boot));
        }
    }
    // `-cpu max`: SVE, SME, MTE and pointer authentication exist, and the
    // guests must see what docs/partitions.md says, not what the core has.
    list.push(two_partitions_on(
        Machine {
            cpu_model: "max",
            ..Machine::with(3, 4)
        },
        Boot::Kernel,
    ));
    list.push(raspberry_pi_4());
    list.push(three_partitions());
    list.push(bad_configuration());
    list
}
