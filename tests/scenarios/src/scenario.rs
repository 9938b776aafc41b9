//! The scenarios: every supported way to boot Tessera, and every bad input
//! it must answer with a clear message instead of a hang.

use std::time::Duration;

/// Which QEMU machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Board {
    /// `virt`: the CI target; GIC version, CPUs and memory are options.
    Virt,
    /// `raspi4b` (QEMU 9+): the BCM2711 of a Raspberry Pi 4, with its GIC-400,
    /// mini-UART and the firmware's spin table; fixed CPUs and memory.
    Raspi4b,
}

/// A QEMU machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Machine {
    pub board: Board,
    /// GIC version, 2 or 3.
    pub gic: u8,
    pub cpus: u8,
    /// `-m` argument.
    pub memory: &'static str,
    /// Pinned everywhere: QEMU 10's default virt CPU is a 32-bit cortex-a15,
    /// and `-cpu max` changes the counter frequency, PAC and SVE.
    pub cpu_model: &'static str,
    /// `virtualization=on`: start at EL2.
    pub virtualization: bool,
    /// A blank virtio-blk disk of [`VIRTIO_DISK_BYTES`] (QEMU virt puts the
    /// first virtio device on its last virtio-mmio transport, 0x0a003e00).
    /// Not with U-Boot, whose boot disk takes that transport.
    pub virtio_disk: bool,
}

/// The size of [`Machine::virtio_disk`].
pub const VIRTIO_DISK_BYTES: u64 = 16 << 20;

impl Machine {
    /// `cargo xtask run`'s default machine.
    pub const DEFAULT: Machine = Machine {
        board: Board::Virt,
        gic: 3,
        cpus: 4,
        memory: "2G",
        cpu_model: "cortex-a72",
        virtualization: true,
        virtio_disk: false,
    };
    /// A Raspberry Pi 4 (its CPUs, GIC and memory are fixed by QEMU).
    pub const RASPI4B: Machine = Machine {
        board: Board::Raspi4b,
        gic: 2,
        cpus: 4,
        ..Machine::DEFAULT
    };

    pub fn with(gic: u8, cpus: u8) -> Machine {
        Machine {
            gic,
            cpus,
            ..Machine::DEFAULT
        }
    }
}

/// How Tessera gets into memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// QEMU's `-kernel`, as in development.
    Kernel,
    /// U-Boot from a FAT partition with a generated boot.scr, as on a board.
    UBoot,
    /// The image placed by `-device loader` and entered with x0 = 0 (no DTB).
    LoaderWithoutDtb,
    /// No Tessera: QEMU boots the Linux demo's kernel and initramfs
    /// directly (`-kernel Image -initrd ... -append`), as a baseline for
    /// the same guest in a partition.
    LinuxDirect,
    /// No Tessera: QEMU boots the test guest directly with these bootargs
    /// (`-kernel test-guest.bin -append`), to compare with a partition.
    TestGuestDirect { bootargs: &'static str },
}

/// Which build of Tessera a scenario boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    /// What users flash (`cargo xtask build --release`): overflow wraps.
    Release,
    /// What `cargo xtask run` boots: overflow checks on, so arithmetic a
    /// guest can overflow panics here.
    Debug,
}

/// An edit applied with `fdtput` to QEMU's own DTB before booting with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtbEdit {
    DeleteNode(&'static str),
    SetString {
        path: &'static str,
        name: &'static str,
        value: &'static str,
    },
    SetCells {
        path: &'static str,
        name: &'static str,
        cells: &'static [u32],
    },
}

/// How a run ends once every step has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The machine stops by itself (power-off or reset with `-no-reboot`)
    /// with this QEMU exit status.
    Exit(i32),
    /// The machine halts and stays up; the runner stops it.
    Halt,
}

/// Substrings that must all appear, in any order, before the next step;
/// and, optionally, a line to type on the console once they have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    expect: Vec<String>,
    send: Option<String>,
}

impl Step {
    pub fn all(substrings: &[&str]) -> Step {
        Step::of(substrings.iter().map(|s| (*s).to_owned()).collect())
    }

    pub fn one(substring: impl Into<String>) -> Step {
        Step::of(vec![substring.into()])
    }

    pub fn of(substrings: Vec<String>) -> Step {
        Step {
            expect: substrings,
            send: None,
        }
    }

    /// Once every substring of this step has appeared, `line` (and a
    /// newline) is written to the console's input: QEMU's standard input,
    /// which `-serial stdio` connects to the first UART's receiver.
    pub fn then_send(mut self, line: impl Into<String>) -> Step {
        self.send = Some(line.into());
        self
    }

    /// The substrings still to be seen.
    pub fn pending(&self) -> Vec<&str> {
        self.expect.iter().map(String::as_str).collect()
    }

    /// The line to send once the step is complete.
    pub fn input(&self) -> Option<&str> {
        self.send.as_deref()
    }
}

/// A time between two expected lines, measured by the time stamps the
/// console prints at the start of a line (`[   12.345678] ...`, Tessera's
/// log format) and checked against `expected` within `tolerance_percent`.
/// Lines without a time stamp leave it unmeasured: the run passes with a
/// note saying so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// Expected substrings (of some step) that start and end it.
    pub from: String,
    pub to: String,
    pub expected: Duration,
    pub tolerance_percent: u32,
}

/// One QEMU run.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    /// What it shows, for the test listing.
    pub about: &'static str,
    pub machine: Machine,
    pub boot: Boot,
    pub image: Image,
    /// The DTB to start from, relative to the workspace root; `None` means
    /// QEMU's own (`dumpdtb`).
    pub dtb_file: Option<&'static str>,
    /// Edits to the DTB; none and no `dtb_file` means QEMU's own, untouched. With [`Boot::Kernel`]
    /// QEMU still rewrites /psci and /memory; with [`Boot::UBoot`] the tree
    /// reaches Tessera as edited (plus U-Boot's /chosen and /memory fix-ups).
    pub dtb_edits: Vec<DtbEdit>,
    /// A partition overlay (relative to the workspace root) merged into the
    /// DTB, whose modules are loaded as the boot method does it.
    pub overlay: Option<&'static str>,
    pub steps: Vec<Step>,
    pub forbidden: Vec<String>,
    pub end: End,
    pub timeout: Duration,
    /// Times between expected lines to check (see [`Interval`]).
    pub intervals: Vec<Interval>,
}

/// Output that fails any scenario not about it: crash and panic reports,
/// warnings and errors from Tessera, U-Boot's exception report.
const ALWAYS_FORBIDDEN: [&str; 5] = [
    "TESSERA CRASH",
    "TESSERA PANIC",
    " WARN  ",
    " ERROR ",
    "Synchronous Abort",
];

pub(crate) fn forbidden_except(allowed: &[&str]) -> Vec<String> {
    ALWAYS_FORBIDDEN
        .iter()
        .filter(|f| !allowed.contains(f))
        .map(|f| (*f).to_owned())
        .collect()
}

/// Time for a run through QEMU's `-kernel` (seconds under TCG).
const KERNEL_TIMEOUT: Duration = Duration::from_secs(60);
/// U-Boot under TCG at EL2 is slow; the flash environment skips its countdown.
const UBOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// A clean boot to power-off.
fn clean_boot(machine: Machine, boot: Boot) -> Scenario {
    let cpus = machine.cpus;
    let mut steps = Vec::new();
    if boot == Boot::UBoot {
        steps.push(Step::one("U-Boot"));
        steps.push(Step::one("Tessera: loading the hypervisor"));
    }
    steps.push(Step::all(&["Tessera 0.", "loaded at"]));
    let online: Vec<String> = (1..cpus).map(|i| format!("CPU {i} online")).collect();
    if !online.is_empty() {
        steps.push(Step::of(online));
    }
    steps.push(Step::one("board: linux,dummy-virt (QEMU virt)"));
    steps.push(Step::one(format!("GIC: v{}", machine.gic)));
    steps.push(Step::one(format!("{cpus} of {cpus} CPUs online")));
    steps.push(Step::one("no partitions configured"));
    steps.push(Step::one("powering off (PSCI SYSTEM_OFF)"));
    let via = if boot == Boot::UBoot { "-uboot" } else { "" };
    Scenario {
        name: format!("boot-gicv{}-{cpus}cpu{via}", machine.gic),
        about: "banner, every CPU online, clean power-off",
        machine,
        boot,
        image: Image::Release,
        dtb_file: None,
        dtb_edits: Vec::new(),
        overlay: None,
        steps,
        forbidden: forbidden_except(&[]),
        end: End::Exit(0),
        timeout: if boot == Boot::UBoot {
            UBOOT_TIMEOUT
        } else {
            KERNEL_TIMEOUT
        },
        intervals: Vec::new(),
    }
}

/// A boot that must stop with a message.
fn halts(
    name: &str,
    about: &'static str,
    machine: Machine,
    boot: Boot,
    dtb_edits: Vec<DtbEdit>,
    steps: Vec<Step>,
) -> Scenario {
    Scenario {
        name: name.to_owned(),
        about,
        machine,
        boot,
        image: Image::Release,
        dtb_file: None,
        dtb_edits,
        overlay: None,
        steps,
        forbidden: forbidden_except(&[" ERROR "]),
        end: End::Halt,
        timeout: KERNEL_TIMEOUT,
        intervals: Vec::new(),
    }
}

fn fault(kind: &'static str) -> DtbEdit {
    DtbEdit::SetString {
        path: "/chosen",
        name: "tessera,fault-injection",
        value: kind,
    }
}

/// Every scenario, in the order they are listed.
pub fn all() -> Vec<Scenario> {
    let mut list = Vec::new();
    for boot in [Boot::Kernel, Boot::UBoot] {
        for gic in [3, 2] {
            for cpus in [1, 4] {
                list.push(clean_boot(Machine::with(gic, cpus), boot));
            }
        }
    }
    let four = Machine::DEFAULT;
    list.push(halts(
        "wrong-el",
        "entered at EL1 (no virtualization): says so and halts",
        Machine {
            virtualization: false,
            ..four
        },
        Boot::Kernel,
        Vec::new(),
        vec![Step::one(
            "Tessera: entered at EL1, but a hypervisor must be entered at EL2",
        )],
    ));
    list.push(halts(
        "no-dtb",
        "entered with x0 = 0: message on the fallback UART, then halt",
        four,
        Boot::LoaderWithoutDtb,
        Vec::new(),
        vec![Step::one(
            "Tessera: cannot start: no device tree: x0 was 0 at entry",
        )],
    ));
    list.push(halts(
        "dtb-without-cpus",
        "a DTB without /cpus: every problem listed, then halt",
        four,
        Boot::Kernel,
        vec![DtbEdit::DeleteNode("/cpus")],
        vec![
            Step::one("the device tree does not describe a machine Tessera can run on"),
            Step::one("/cpus: node missing"),
            Step::one("Tessera cannot continue: halted"),
        ],
    ));
    list.push(halts(
        "dtb-malformed-gic",
        "a GIC node whose reg is cut short: the node, property and reason, then halt",
        Machine::with(2, 4),
        Boot::Kernel,
        vec![DtbEdit::SetCells {
            path: "/intc@8000000",
            name: "reg",
            cells: &[0, 0x0800_0000, 0, 0x1_0000, 0],
        }],
        vec![
            Step::one("/intc@8000000: reg: reg is 20 bytes, not a whole number of 4-cell entries"),
            Step::one("Tessera cannot continue: halted"),
        ],
    ));
    // Through U-Boot with the edited DTB on the disk: QEMU's -kernel path
    // rewrites /psci to match its own PSCI emulation.
    let mut psci_hvc = halts(
        "psci-hvc",
        "/psci says hvc: reported, secondaries stay off, the CPUs park",
        four,
        Boot::UBoot,
        vec![DtbEdit::SetString {
            path: "/psci",
            name: "method",
            value: "hvc",
        }],
        vec![
            Step::one("/psci: method: \"hvc\" cannot reach firmware from EL2"),
            Step::one("CPU 1 (MPIDR 0x1, /cpus/cpu@1) stays offline"),
            Step::one("1 of 4 CPUs online"),
            Step::one("this board has no PSCI to power off with: parking every CPU in WFI"),
        ],
    );
    psci_hvc.forbidden = forbidden_except(&[" WARN  "]);
    psci_hvc.timeout = UBOOT_TIMEOUT;
    list.push(psci_hvc);
    // A crash report on a 4-CPU machine, then the line that says what follows.
    let crash_steps = |report: Vec<Step>, ending: &str| {
        let mut steps = vec![Step::one("4 of 4 CPUs online")];
        steps.extend(report);
        steps.push(Step::one(format!("3 of 3 other CPUs stopped; {ending}")));
        steps
    };
    let crash = |name: &str, about, kind, report: Vec<Step>| {
        let mut scenario = halts(
            name,
            about,
            four,
            Boot::Kernel,
            vec![fault(kind)],
            crash_steps(report, "Tessera halted."),
        );
        scenario.forbidden =
            forbidden_except(&[" WARN  ", "TESSERA CRASH", "TESSERA PANIC", " ERROR "]);
        scenario
    };
    list.push(crash(
        "crash-data-abort",
        "a data abort at EL2: crash report with decoded ESR and registers, all CPUs stop",
        "data-abort",
        vec![
            Step::one("*** TESSERA CRASH on CPU 0: unexpected synchronous exception at EL2 ***"),
            Step::one("exception class: data abort without a change in exception level (EC 0x25): translation fault, level"),
            Step::one("FAR_EL2  0x0000fffffffff000"),
            Step::all(&["ELR_EL2", "SPSR_EL2"]),
            Step::all(&["x0 ", "x29", "x30"]),
        ],
    ));
    list.push(crash(
        "crash-panic",
        "a Rust panic: file, line and message, all CPUs stop",
        "panic",
        vec![Step::all(&[
            "*** TESSERA PANIC on CPU 0 at hyp-core/src/fault_injection.rs:",
            ": fault injection: /chosen/tessera,fault-injection = \"panic\" ***",
        ])],
    ));
    list.push(crash(
        "crash-stack-overflow",
        "the boot stack overflows into its guard page: reported, not silent corruption",
        "stack-overflow",
        vec![
            Step::one("*** TESSERA CRASH on CPU 0"),
            Step::one(
                "The fault address is the boot stack's guard page: the boot stack overflowed.",
            ),
        ],
    ));
    // A crash while guests run on other CPUs: they leave their guests and
    // stop too.
    let mut while_running = crash(
        "crash-while-guests-run",
        "a panic on CPU 0 while partitions run on CPUs 0 and 1: the report, every other CPU stops",
        "panic-while-running",
        vec![
            Step::all(&[
                "a | ticker: a tick every 1 s",
                "b | ticker: a tick every 1 s",
            ]),
            Step::all(&[
                "*** TESSERA PANIC on CPU 0 at hyp-core/src/fault_injection.rs:",
                ": fault injection: /chosen/tessera,fault-injection = \"panic-while-running\" ***",
            ]),
        ],
    );
    while_running.overlay = Some("tests/overlays/qemu-virt-tickers.dts");
    list.push(while_running);
    // The DTB names a CPU that does not exist (MPIDR 0x7 on a two-CPU
    // machine): PSCI cannot start it, and the partition given it is refused.
    let mut offline = halts(
        "partition-cpu-offline",
        "a partition's CPU does not come online: said so, and no partition starts",
        Machine::with(3, 2),
        Boot::Kernel,
        vec![DtbEdit::SetCells {
            path: "/cpus/cpu@1",
            name: "reg",
            cells: &[0x7],
        }],
        vec![
            Step::one("1 of 2 CPUs online"),
            Step::one(
                "partition b: its CPU with MPIDR 0x7 did not come online; no partition starts",
            ),
        ],
    );
    offline.overlay = Some("tests/overlays/qemu-virt-tickers.dts");
    offline.forbidden = forbidden_except(&[" WARN  ", " ERROR "]);
    offline.forbidden.push(" | ticker:".to_owned());
    list.push(offline);
    let mut reset = crash(
        "crash-action-reset",
        "tessera,crash-action = \"reset\": the report, then a machine reset",
        "panic",
        vec![],
    );
    reset.steps = crash_steps(
        vec![Step::one("*** TESSERA PANIC on CPU 0")],
        "resetting the board",
    );
    reset.dtb_edits.push(DtbEdit::SetString {
        path: "/chosen",
        name: "tessera,crash-action",
        value: "reset",
    });
    reset.end = End::Exit(0);
    reset.forbidden.push("powering off".to_owned());
    list.push(reset);
    list.extend(raspberry_pi_4());
    list.extend(crate::partitions::all());
    list.extend(crate::passthrough::all());
    list.extend(crate::console::all());
    list.extend(crate::linux::all());
    list
}

/// Debian's Raspberry Pi 4 DTB as shipped (QEMU fills in /memory).
pub const RPI4_DTB: &str = "dtb/boards/bcm2711-rpi-4-b.dtb";

/// The Raspberry Pi 4 paths on QEMU's `raspi4b`, with the same image.
fn raspberry_pi_4() -> Vec<Scenario> {
    let mut boot = halts(
        "rpi4-spin-table",
        "Raspberry Pi 4: CPUs from the spin table, mini-UART console, GIC-400, no PSCI: the CPUs park",
        Machine::RASPI4B,
        Boot::Kernel,
        Vec::new(),
        vec![
            Step::all(&["CPU 1 online", "CPU 2 online", "CPU 3 online"]),
            Step::one("board: Raspberry Pi 4 Model B (Raspberry Pi 4)"),
            Step::one("GIC: v2"),
            Step::one("PSCI: none"),
            Step::one("console: mini-UART at 0xfe215040 (/soc/serial@7e215040)"),
            Step::one("4 of 4 CPUs online"),
            Step::one("this board has no PSCI to power off with: parking every CPU in WFI"),
            Step::one("3 of 3 other CPUs parked; parking CPU 0"),
        ],
    );
    boot.dtb_file = Some(RPI4_DTB);
    let mut reset = halts(
        "rpi4-watchdog-reset",
        "Raspberry Pi 4 without PSCI: a crash with crash-action reset resets through the BCM2711 watchdog",
        Machine::RASPI4B,
        Boot::Kernel,
        vec![
            fault("panic"),
            DtbEdit::SetString {
                path: "/chosen",
                name: "tessera,crash-action",
                value: "reset",
            },
        ],
        vec![
            Step::one("4 of 4 CPUs online"),
            Step::one("*** TESSERA PANIC on CPU 0"),
            Step::one("3 of 3 other CPUs stopped; resetting the board"),
        ],
    );
    reset.dtb_file = Some(RPI4_DTB);
    reset.end = End::Exit(0);
    reset.forbidden = forbidden_except(&[" WARN  ", "TESSERA PANIC"]);
    vec![boot, reset]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let scenarios = all();
        let mut names: Vec<_> = scenarios.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "duplicate scenario names");
    }

    #[test]
    fn the_boot_matrix_covers_both_gics_cpu_counts_and_loaders() {
        let names: Vec<String> = all().into_iter().map(|s| s.name).collect();
        for expected in [
            "boot-gicv3-1cpu",
            "boot-gicv3-4cpu",
            "boot-gicv2-1cpu",
            "boot-gicv2-4cpu",
            "boot-gicv3-4cpu-uboot",
            "boot-gicv2-1cpu-uboot",
        ] {
            assert!(names.iter().any(|n| n == expected), "missing {expected}");
        }
    }

    #[test]
    fn every_scenario_expects_something() {
        for scenario in all() {
            assert!(
                !scenario.steps.is_empty(),
                "{} checks nothing",
                scenario.name
            );
            assert!(
                scenario.steps.iter().all(|s| !s.pending().is_empty()),
                "{} has an empty step",
                scenario.name
            );
        }
    }
}
