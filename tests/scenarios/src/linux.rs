//! Linux scenarios: Debian's stock arm64 kernel with a busybox initramfs
//! (fetched and built by `cargo xtask`, xtask/src/linux), in a partition of
//! the demo overlay beside the test guest, driven through the console as a
//! person would: the scenario types shell commands once the shell is ready
//! and checks what they print. The same session runs on QEMU without
//! Tessera as a baseline, which tells a Linux-side failure (fetch,
//! initramfs) from a hypervisor one.
//!
//! One boot serves several checks: CPUs, interrupts, `sleep 2` timed by
//! Tessera's time stamps, then `poweroff` (or `reboot`), while the test
//! guest in the other partition ticks on, which shows that only the Linux
//! partition stopped or restarted.
//!
//! The shell echoes what is typed, so no expected string may occur in the
//! command that produces it (quotes split it, `$(...)` computes it): the
//! echo alone can never satisfy a check. A unit test holds every scenario
//! to that.

use std::time::Duration;

use crate::scenario::{
    Boot, DtbEdit, End, Image, Interval, Machine, Scenario, Step, forbidden_except,
};

/// The demo configuration: partition `linux` (Linux on CPUs 0 and 1, with
/// the console's input) and partition `guest` (the test guest's ticker role
/// on CPUs 2 and 3).
pub const OVERLAY: &str = "dtb/overlays/qemu-virt-linux-demo.dts";
/// The line the console shell prints once it reads commands.
pub const READY: &str = "tessera-linux: init ready";
/// The kernel command line, in the overlay's `bootargs` and for the
/// baseline run without Tessera: the console and an early console on the
/// PL011 at QEMU virt's address (Tessera emulates it there), and the
/// initramfs's `/init`. `print-fatal-signals=1` makes a user process killed
/// by a signal (a SIGILL from an instruction the partition does not allow)
/// print its registers, so a failing run says where.
pub const BOOTARGS: &str =
    "console=ttyAMA0 earlycon=pl011,mmio32,0x09000000 rdinit=/init print-fatal-signals=1";

/// The guest partition's bootargs in the scenarios: a tick every 2 s (the
/// demo's 10 s would make each check after a stop wait longer).
const TICKER_BOOTARGS: &str = "role=ticker tick=2";

/// The guest's vCPUs and RAM: the overlay's partition, and the baseline's QEMU.
const CPUS: u8 = 2;
const BASELINE_MEMORY: &str = "256M";

/// Time for a Debian kernel to boot and run the session under TCG: about
/// 25 s alone here, longer with other scenarios beside it.
const PARTITION_TIMEOUT: Duration = Duration::from_secs(240);
const BASELINE_TIMEOUT: Duration = Duration::from_secs(180);

/// The `sleep 2` whose length is checked.
const SLEEP_START: &str = "sleep-start";
const SLEEP_END: &str = "sleep-end";
const SLEEP: Duration = Duration::from_secs(2);
/// `sleep 2` measured from outside the guest must be within this. The
/// interval also holds the shell's fork and exec of `sleep` and `echo`,
/// which under TCG on a loaded host took 232 ms once (a failed run at
/// 10 %); a clock off by a factor (the failure this catches) is still far
/// outside 25 %.
const SLEEP_TOLERANCE_PERCENT: u32 = 25;

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

/// What Linux in a partition says when Tessera gave it its seeds.
const KASLR_ON: &str = "linux | [    0.000000] KASLR enabled";
const RNG_SEEDED: &str = "linux | [    0.000000] random: crng init done";

/// Printed when the last partition stops: the test guest must outlive Linux.
const ALL_STOPPED: &str = "all partitions have stopped";

fn forbidden(in_partition: bool) -> Vec<String> {
    let mut forbidden = forbidden_except(&[]);
    forbidden.extend(LINUX_FAILURES.iter().map(|s| (*s).to_owned()));
    if in_partition {
        forbidden.push(ALL_STOPPED.to_owned());
        forbidden.push("KASLR disabled".to_owned());
    }
    forbidden
}

/// The name Linux gives the interrupt controller in /proc/interrupts.
fn irqchip_name(gic: u8) -> &'static str {
    if gic == 3 { "GICv3" } else { "GIC-0" }
}

/// Prints the number of CPUs as `cpus: N`.
const COUNT_CPUS: &str = "echo \"cpus: $(grep -c ^processor /proc/cpuinfo)\"";

/// The shell session, from the step that sees the shell ready: CPU count,
/// interrupts of the timer and the UART, a timed `sleep 2`. `console`
/// prefixes what the guest prints ("linux | " in a partition, nothing on
/// bare QEMU). The last step is the end of the sleep, for the caller to
/// type what comes next.
fn session(ready: Step, console: &str, gic: u8) -> Vec<Step> {
    let on_console = |text: &str| format!("{console}{text}");
    vec![
        ready.then_send(COUNT_CPUS),
        Step::one(on_console(&format!("cpus: {CPUS}"))).then_send("cat /proc/interrupts"),
        Step::all(&["arch_timer", "uart-pl011", irqchip_name(gic)])
            .then_send("echo sleep-''start; sleep 2; echo sleep-''end"),
        Step::one(on_console(SLEEP_START)),
        Step::one(on_console(SLEEP_END)),
    ]
}

/// The sleep, timed by the time stamps Tessera puts on partition lines.
fn sleep_interval() -> Interval {
    Interval {
        from: format!("linux | {SLEEP_START}"),
        to: format!("linux | {SLEEP_END}"),
        expected: SLEEP,
        tolerance_percent: SLEEP_TOLERANCE_PERCENT,
    }
}

/// Up to the Linux shell: both partitions start (ordered by name: `guest`
/// gets VMID 1), the console's input goes to Linux, the test guest ticks,
/// and the shell is ready. `boot` and `ready` are more substrings for the
/// first and the last step.
fn partitions_up(boot: &[&str], ready: &[&str]) -> Vec<Step> {
    let mut first = vec![
        "partition guest: VMID 1",
        "partition linux: VMID 2",
        "console input: to partition linux",
        "guest | ticker: a tick every 2 s",
    ];
    first.extend(boot);
    let linux_ready = format!("linux | {READY}");
    // Tessera's /chosen/kaslr-seed and rng-seed: KASLR on, and the
    // kernel's RNG seeded before anything else runs. Linux says so after
    // the ticker's first tick may have come: in this step, not the first.
    let mut last = vec!["guest | tick 1 (", KASLR_ON, RNG_SEEDED, &linux_ready];
    last.extend(ready);
    vec![Step::all(&first), Step::all(&last)]
}

/// `poweroff` has stopped the Linux partition, and only it: Tessera says
/// so, and the test guest ticks on.
fn stopped_alone() -> Vec<Step> {
    vec![
        Step::all(&[
            "partition linux: SYSTEM_OFF: stopping",
            "partition linux: stopped",
            "1 partitions still running",
        ]),
        Step::one("guest | tick "),
    ]
}

/// A scenario of the demo overlay with the scenarios' ticker.
fn demo(name: &str, about: &'static str, machine: Machine, steps: Vec<Step>) -> Scenario {
    Scenario {
        name: name.to_owned(),
        about,
        machine,
        boot: Boot::Kernel,
        image: Image::Release,
        dtb_file: None,
        dtb_edits: vec![DtbEdit::SetString {
            path: "/hypervisor/guest",
            name: "bootargs",
            value: TICKER_BOOTARGS,
        }],
        overlay: Some(OVERLAY),
        steps,
        forbidden: forbidden(true),
        // The test guest runs on: the engine stops QEMU once all is seen.
        end: End::Halt,
        timeout: PARTITION_TIMEOUT,
        intervals: Vec::new(),
    }
}

/// Linux in a partition: the session, then `poweroff` stops that partition
/// while the test guest goes on. `boot` and `ready`: more to see on the way.
fn in_partition(name: &str, machine: Machine, boot: &[&str], ready: &[&str]) -> Scenario {
    let mut steps = partitions_up(boot, ready);
    let ready = steps.pop().unwrap_or_else(|| Step::one(READY));
    steps.extend(session(ready, "linux | ", machine.gic));
    if let Some(last) = steps.pop() {
        steps.push(last.then_send("poweroff"));
    }
    steps.extend(stopped_alone());
    let mut scenario = demo(
        name,
        "Debian's arm64 kernel in a partition beside the test guest: shell over the console, 2 CPUs, timer and UART interrupts, sleep 2 timed from outside, poweroff stops only that partition",
        machine,
        steps,
    );
    scenario.intervals = vec![sleep_interval()];
    scenario
}

/// `reboot` restarts the Linux partition alone: it boots again to the
/// shell with both CPUs while the test guest ticks on; then `poweroff`.
fn reboot() -> Scenario {
    let mut steps = partitions_up(&[], &[]);
    if let Some(ready) = steps.pop() {
        steps.push(ready.then_send("reboot"));
    }
    steps.extend([
        Step::one("partition linux: SYSTEM_RESET: restarting"),
        Step::one("partition linux: boot 2"),
        Step::all(&["linux | [    0.000000] Booting Linux", "guest | tick "]),
        Step::one(format!("linux | {READY}")).then_send(COUNT_CPUS),
        Step::one(format!("linux | cpus: {CPUS}")).then_send("poweroff"),
    ]);
    steps.extend(stopped_alone());
    let mut scenario = demo(
        "linux-reboot-gicv3",
        "reboot in the Linux partition: SYSTEM_RESET restarts only it, it boots again to the shell with 2 CPUs",
        Machine::with(3, 4),
        steps,
    );
    scenario.timeout = PARTITION_TIMEOUT * 2;
    scenario
}

/// The same kernel, initramfs and session on QEMU without Tessera, with
/// the partition's CPUs and RAM: what the partition scenarios are compared
/// with, and a check of the Linux side (fetch, initramfs, console input)
/// that does not involve the hypervisor.
fn baseline(gic: u8) -> Scenario {
    let mut steps = vec![Step::one("Booting Linux on physical CPU 0x0")];
    steps.extend(session(Step::one(READY), "", gic));
    if let Some(last) = steps.pop() {
        steps.push(last.then_send("poweroff"));
    }
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
        image: Image::Release,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: None,
        steps,
        forbidden: forbidden(false),
        end: End::Exit(0),
        timeout: BASELINE_TIMEOUT,
        // No time stamps without Tessera: the sleep is timed in partitions.
        intervals: Vec::new(),
    }
}

/// The demo with QEMU virt's PL031 and the virtio-mmio transports of
/// page 0x0a003000 passed through to a direct-map Linux partition.
pub const PASSTHROUGH_OVERLAY: &str = "tests/overlays/qemu-virt-linux-passthrough.dts";

/// Sets the PL031's alarm two seconds ahead and prints how many of its
/// interrupts Linux has taken, once one has come or after 5 s; if none came,
/// clears the alarm and tries once more. One fresh CI run printed 0 after a
/// single `sleep 2`: QEMU's PL031 takes a match value already in the past
/// as one 2^32 seconds ahead, so a guest stalled past the second it armed
/// never gets that alarm. A lost interrupt prints 0 after both tries
/// (forbidden: the scenario fails at once); one lost on the first try only
/// would pass, and the line says which try it was. Under 256 bytes: the
/// partition's input FIFO holds that much.
const RTC_ALARM: &str = "cd /sys/class/rtc/rtc0; for t in 1 2; do echo +2 >wakealarm; \
     for i in 1 2 3 4 5; do sleep 1; n=$(awk '/pl031/{print $2+$3}' /proc/interrupts); \
     [ \"$n\" -gt 0 ] && break 2; done; echo 0 >wakealarm; done; cd /; \
     echo \"rtc interrupts $n after $i s (try $t)\"";
/// What a lost alarm interrupt prints.
const RTC_LOST: &str = "linux | rtc interrupts 0 ";

/// Passed-through devices in Linux: the PL031 read by `hwclock` and its
/// alarm interrupt delivered (hardware-linked SPI 2), and a virtio-blk
/// disk (DMA, so the partition is direct-map) formatted, mounted, written,
/// mounted again and read; then `reboot`, the alarm and the disk again,
/// and `poweroff`.
fn passthrough() -> Scenario {
    let mut steps = partitions_up(
        &[
            "partition linux: device /pl031@9010000: 0x9010000..0x9011000 INTID 34",
            "partition linux: /virtio_mmio@a003e00 can do DMA",
        ],
        &[],
    );
    let ready = steps.pop().unwrap_or_else(|| Step::one(READY));
    steps.extend([
        ready.then_send("hwclock -r; echo \"hwclock status $?\""),
        Step::one("linux | hwclock status 0").then_send(RTC_ALARM),
        Step::one("linux | rtc interrupts 1 after").then_send(
            "mkdir -p /mnt && mke2fs -q /dev/vda && mount /dev/vda /mnt && \
             echo disk-$((6 * 7)) > /mnt/f && umount /mnt && mount /dev/vda /mnt && cat /mnt/f",
        ),
        Step::one("linux | disk-42").then_send("reboot"),
        // After a restart the devices' interrupts work again (Tessera put
        // them back to reset) and the disk keeps what was written.
        Step::one("partition linux: boot 2"),
        Step::one(format!("linux | {READY}")).then_send(RTC_ALARM),
        Step::one("linux | rtc interrupts 1 after")
            .then_send("mkdir -p /mnt && mount /dev/vda /mnt && cat /mnt/f"),
        Step::one("linux | disk-42").then_send("poweroff"),
    ]);
    steps.extend(stopped_alone());
    let mut scenario = demo(
        "linux-passthrough-gicv3",
        "devices passed through to Linux: the PL031 (hwclock, its alarm interrupt) and a virtio-blk disk in a direct-map partition (mke2fs, mount, write, read back), both again after a reboot of the partition",
        Machine {
            virtio_disk: true,
            ..Machine::with(3, 4)
        },
        steps,
    );
    scenario.overlay = Some(PASSTHROUGH_OVERLAY);
    scenario.forbidden.push(RTC_LOST.to_owned());
    scenario.timeout = PARTITION_TIMEOUT * 2;
    scenario
}

/// Every Linux scenario.
pub fn all() -> Vec<Scenario> {
    vec![
        passthrough(),
        baseline(3),
        in_partition("linux-gicv3", Machine::with(3, 4), &[], &[]),
        in_partition("linux-gicv2", Machine::with(2, 4), &[], &[]),
        // QEMU's `max` CPU: a 1 GHz counter, pointer authentication (which
        // the guest uses) and SVE (which Tessera hides from it).
        in_partition(
            "linux-gicv3-cpu-max",
            Machine {
                cpu_model: "max",
                ..Machine::with(3, 4)
            },
            &["timer: 1000000 kHz"],
            &["CPU features: detected: Address authentication"],
        ),
        through_uboot(),
        reboot(),
    ]
}

/// As on a board: U-Boot loads Tessera, the DTB, the kernel and the
/// initramfs from a FAT partition and writes the modules' sizes.
fn through_uboot() -> Scenario {
    let mut scenario = in_partition(
        "linux-gicv3-uboot",
        Machine::with(3, 4),
        &["Tessera: loading Image for /hypervisor/linux/module@50000000"],
        &[],
    );
    scenario.boot = Boot::UBoot;
    scenario
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alarm_command_fits_the_guest_s_input_fifo() {
        // The emulated PL011's receive FIFO and the console's input queue
        // hold 256 bytes; the line ends with a newline.
        assert!(RTC_ALARM.len() < 256, "{} bytes", RTC_ALARM.len());
    }

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
        assert!(
            overlay.contains("bootargs = \"role=ticker\";"),
            "the scenarios replace the guest's bootargs by TICKER_BOOTARGS"
        );
    }

    #[test]
    fn partition_scenarios_fail_if_the_test_guest_stops_too() {
        for scenario in all().into_iter().filter(|s| s.overlay.is_some()) {
            assert!(
                scenario.forbidden.iter().any(|f| f == ALL_STOPPED),
                "{}: the test guest must outlive Linux",
                scenario.name
            );
            assert_eq!(scenario.end, End::Halt, "{}", scenario.name);
        }
    }
}
