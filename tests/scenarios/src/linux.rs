//! Linux scenarios: Debian's stock arm64 kernel with a busybox initramfs
//! (fetched and built by `cargo xtask`, xtask/src/linux), in a partition of
//! the demo overlay beside the test guest, driven through its console: the
//! scenario types shell commands once the shell is ready and checks what
//! they print. The same session runs on QEMU without Tessera as a baseline.
//!
//! The shell echoes what is typed, so no expected string may occur in the
//! command that produces it (quotes split it, `$(...)` computes it): the
//! echo alone can never satisfy a check. A unit test holds every scenario
//! to that.

use std::time::Duration;

use crate::scenario::{Boot, End, Interval, Machine, Scenario, Step, forbidden_except};

/// The demo configuration: partition `linux` (Linux on CPUs 0 and 1) and
/// partition `guest` (the test guest's hello role on CPUs 2 and 3).
pub const OVERLAY: &str = "dtb/overlays/qemu-virt-linux-demo.dts";
/// The line the console shell prints once it reads commands.
pub const READY: &str = "tessera-linux: init ready";
/// The kernel command line, in the overlay's `bootargs` and for the
/// baseline run without Tessera: the console and an early console on the
/// PL011 at QEMU virt's address (Tessera emulates it there), and the
/// initramfs's `/init`.
/// `print-fatal-signals=1` makes a user process killed by a signal (a
/// SIGILL from an instruction the partition does not allow) print its
/// registers, so a failing run says where.
pub const BOOTARGS: &str =
    "console=ttyAMA0 earlycon=pl011,mmio32,0x09000000 rdinit=/init print-fatal-signals=1";

/// Why the scenarios in a partition are not in the default run yet.
const AWAITING: Option<&str> = Some(
    "Linux in a partition needs the vGIC, the virtual timer and console input (hyp-core work not merged yet)",
);

/// The guest's vCPUs and RAM: the overlay's partition, and the baseline's QEMU.
const CPUS: u8 = 2;
const BASELINE_MEMORY: &str = "256M";

/// Time for a Debian kernel to boot and run the session under TCG.
const PARTITION_TIMEOUT: Duration = Duration::from_secs(300);
const BASELINE_TIMEOUT: Duration = Duration::from_secs(180);

/// The `sleep 2` whose length is checked.
const SLEEP_START: &str = "sleep-start";
const SLEEP_END: &str = "sleep-end";
const SLEEP: Duration = Duration::from_secs(2);
/// `sleep 2` measured from outside the guest must be within this.
const SLEEP_TOLERANCE_PERCENT: u32 = 10;

/// Kernel and busybox failures, on top of Tessera's own.
const LINUX_FAILURES: [&str; 9] = [
    "Kernel panic",
    "Internal error",
    "Unable to handle kernel",
    "BUG: ",
    "WARNING: CPU: ",
    "detected stall",
    "tessera-linux: insmod",
    ": FAILED",
    "potentially unexpected fatal signal",
];

fn forbidden() -> Vec<String> {
    let mut forbidden = forbidden_except(&[]);
    forbidden.extend(LINUX_FAILURES.iter().map(|s| (*s).to_owned()));
    forbidden
}

/// The name Linux gives the interrupt controller in /proc/interrupts.
fn irqchip_name(gic: u8) -> &'static str {
    if gic == 3 { "GICv3" } else { "GIC-0" }
}

/// The shell session, from the step that sees the shell ready: CPU count,
/// interrupts of the timer and the UART, a timed `sleep 2`, then
/// `poweroff` once the last check passed. `console` prefixes what the
/// guest prints ("linux | " in a partition, nothing on bare QEMU).
fn session(ready: Step, console: &str, gic: u8) -> Vec<Step> {
    let on_console = |text: &str| format!("{console}{text}");
    vec![
        ready.then_send("echo \"cpus: $(cat /proc/cpuinfo | grep -c processor)\""),
        Step::one(on_console(&format!("cpus: {CPUS}"))).then_send("cat /proc/interrupts"),
        Step::all(&["arch_timer", "uart-pl011", irqchip_name(gic)])
            .then_send("echo sleep-''start; sleep 2; echo sleep-''end"),
        Step::one(on_console(SLEEP_START)),
        Step::one(on_console(SLEEP_END)).then_send("poweroff"),
    ]
}

fn sleep_interval(console: &str) -> Interval {
    Interval {
        from: format!("{console}{SLEEP_START}"),
        to: format!("{console}{SLEEP_END}"),
        expected: SLEEP,
        tolerance_percent: SLEEP_TOLERANCE_PERCENT,
    }
}

/// The partitions start (ordered by name: `guest` gets VMID 1); the test
/// guest says hello and stops while Linux boots on; the shell is ready.
fn partitions_up() -> Vec<Step> {
    vec![
        Step::all(&["partition guest: VMID 1", "partition linux: VMID 2"]),
        Step::all(&[
            "guest | hello from a partition (boot 1)",
            "partition guest: stopped",
            "1 partitions still running",
            &format!("linux | {READY}"),
        ]),
    ]
}

/// Linux in a partition: the session, then `poweroff` stops the partition
/// and, the test guest having stopped already, the machine.
fn in_partition(name: &str, machine: Machine) -> Scenario {
    let mut steps = partitions_up();
    let ready = steps.pop().unwrap_or_else(|| Step::one(READY));
    steps.extend(session(ready, "linux | ", machine.gic));
    steps.push(Step::all(&[
        "partition linux: SYSTEM_OFF: stopping",
        "partition linux: stopped",
    ]));
    steps.push(Step::one("all partitions have stopped: powering off"));
    Scenario {
        name: name.to_owned(),
        about: "Debian's arm64 kernel in a partition beside the test guest: shell over the console, 2 CPUs, timer and UART interrupts, sleep 2, poweroff stops the partition",
        machine,
        boot: Boot::Kernel,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: Some(OVERLAY),
        steps,
        forbidden: forbidden(),
        end: End::Exit(0),
        timeout: PARTITION_TIMEOUT,
        intervals: vec![sleep_interval("linux | ")],
        opt_in: AWAITING,
    }
}

/// `reboot` restarts the partition: a second boot to the shell, then `poweroff`.
fn reboot() -> Scenario {
    let mut steps = partitions_up();
    if let Some(ready) = steps.pop() {
        steps.push(ready.then_send("reboot"));
    }
    steps.extend([
        Step::one("partition linux: SYSTEM_RESET: restarting"),
        Step::one("partition linux: boot 2"),
        Step::one(format!("linux | {READY}")).then_send("poweroff"),
        Step::all(&[
            "partition linux: SYSTEM_OFF: stopping",
            "partition linux: stopped",
        ]),
        Step::one("all partitions have stopped: powering off"),
    ]);
    Scenario {
        name: "linux-reboot-gicv3".into(),
        about: "reboot in the Linux partition: SYSTEM_RESET restarts it, it boots again to the shell",
        machine: Machine::with(3, 4),
        boot: Boot::Kernel,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: Some(OVERLAY),
        steps,
        forbidden: forbidden(),
        end: End::Exit(0),
        timeout: PARTITION_TIMEOUT * 2,
        intervals: Vec::new(),
        opt_in: AWAITING,
    }
}

/// The same kernel, initramfs and session on QEMU without Tessera, with
/// the partition's CPUs and RAM: what the partition scenarios are compared
/// with, and a check of the Linux side (fetch, initramfs, console input)
/// that does not wait for the hypervisor's.
fn baseline(gic: u8) -> Scenario {
    let mut steps = vec![Step::one("Booting Linux on physical CPU 0x0")];
    steps.extend(session(Step::one(READY), "", gic));
    steps.push(Step::one("reboot: Power down"));
    Scenario {
        name: format!("linux-baseline-gicv{gic}"),
        about: "the Linux demo's kernel and initramfs on QEMU without Tessera: the same shell session",
        machine: Machine {
            cpus: CPUS,
            memory: BASELINE_MEMORY,
            // Linux at EL1, as in a partition.
            virtualization: false,
            ..Machine::with(gic, CPUS)
        },
        boot: Boot::LinuxDirect,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: None,
        steps,
        forbidden: forbidden(),
        end: End::Exit(0),
        timeout: BASELINE_TIMEOUT,
        intervals: Vec::new(),
        opt_in: None,
    }
}

/// Every Linux scenario.
pub fn all() -> Vec<Scenario> {
    vec![
        baseline(3),
        in_partition("linux-gicv3", Machine::with(3, 4)),
        in_partition("linux-gicv2", Machine::with(2, 4)),
        in_partition(
            "linux-gicv3-cpu-max",
            Machine {
                cpu_model: "max",
                ..Machine::with(3, 4)
            },
        ),
        reboot(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_typed_command_contains_what_its_check_expects() {
        for scenario in all() {
            for pair in scenario.steps.windows(2) {
                let (Some(typed), next) = (pair[0].input(), &pair[1]) else {
                    continue;
                };
                for expected in next.pending() {
                    let bare = expected.trim_start_matches("linux | ");
                    assert!(
                        !typed.contains(bare),
                        "{}: the echo of {typed:?} would satisfy {expected:?}",
                        scenario.name
                    );
                }
            }
        }
    }

    #[test]
    fn intervals_start_and_end_at_expected_lines() {
        for scenario in all() {
            let expected: Vec<&str> = scenario.steps.iter().flat_map(Step::pending).collect();
            for interval in &scenario.intervals {
                for end in [&interval.from, &interval.to] {
                    assert!(
                        expected.contains(&end.as_str()),
                        "{}: interval end {end:?} is no expected line",
                        scenario.name
                    );
                }
            }
        }
    }

    #[test]
    fn the_overlay_boots_linux_with_the_baseline_command_line() {
        let overlay = include_str!("../../../dtb/overlays/qemu-virt-linux-demo.dts");
        assert!(
            overlay.contains(&format!("bootargs = \"{BOOTARGS}\";")),
            "the overlay's bootargs should be linux::BOOTARGS, so both runs boot alike"
        );
        assert!(overlay.contains("console-input;"));
    }

    #[test]
    fn partition_scenarios_wait_for_the_hypervisor_and_the_baseline_does_not() {
        for scenario in all() {
            let in_partition = scenario.overlay.is_some();
            assert_eq!(
                scenario.opt_in.is_some(),
                in_partition,
                "{}: opt-in should be {in_partition}",
                scenario.name
            );
            assert!(scenario.selected_by(Some("linux-")), "{}", scenario.name);
        }
        let gicv3 = all().into_iter().find(|s| s.name == "linux-gicv3").unwrap();
        assert!(
            !gicv3.selected_by(None) && !gicv3.selected_by(Some("gicv3")),
            "a known failure stays out of the default run and of broad filters"
        );
    }
}
