//! `cargo xtask bench`: Tessera's figures beside the same workload without
//! it, deterministic under QEMU's `-icount shift=0,sleep=off`.
//!
//! One bench guest (tests/bench-guest) runs in four QEMU machines:
//!
//! - **native**: at EL1 with no hypervisor, the baseline of the interrupt,
//!   CPU-bound, memory-bound and boot figures;
//! - **floor**: at EL1 above an EL2 handler that only returns, the baseline
//!   of every trap figure (natively QEMU answers HVC inside the emulator);
//!   it skips the interrupt figures, which it routes to no EL2;
//! - **Tessera, one partition**: every figure, run twice to check that the
//!   figures repeat exactly;
//! - **Tessera, three partitions**: the boot figure only.
//!
//! The report goes to stdout (a table), `target/bench/bench.json` and
//! `target/bench/latency.svg`. The figures are for people to read: no
//! threshold is asserted, only that they are sane ([`report::sanity`]).

mod lines;
mod linux;
pub mod profile;
mod reference;
mod report;
mod svg;

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tessera_scenarios::engine::{self, Outcome, TAIL_LINES, Watch};
use tessera_scenarios::{Board, End, Machine, Step};

use crate::build::{self, Board as BuildBoard, Profile};
use crate::guests::{self, BENCH_GUEST};
use crate::overlay;
use crate::qemu::{self, Console, Loader};
use crate::setup;
use crate::workspace::command as tool;
use crate::workspace::{root, run_quiet};

pub use report::Report;

/// `-icount`: one instruction per nanosecond of virtual time, and virtual
/// time that does not run on while every CPU sleeps (platform notes).
const ICOUNT: &str = "shift=0,sleep=off";
/// The overlays the Tessera runs use (bench guests as partitions).
const ONE_PARTITION: &str = "tests/overlays/bench-one-partition.dts";
const THREE_PARTITIONS: &str = "tests/overlays/bench-three-partitions.dts";
/// Samples per latency figure: full and `--quick`.
const ITERATIONS: u64 = 10_000;
const QUICK_ITERATIONS: u64 = 200;
/// How long one run may take (wall clock; the runs take seconds).
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// The CPU every machine has: the Raspberry Pi 4's core, and under icount
/// the one whose counter runs at 62.5 MHz (16 instructions a tick).
const CPU_MODEL: &str = "cortex-a72";

#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Instead of the figures: where Tessera's instructions go ([`profile`]).
    pub profile: Option<profile::Target>,
    /// Few samples: a smoke check that the suite works (CI).
    pub quick: bool,
    /// Write this run as the reference run in docs/.
    pub record: bool,
}

/// A QEMU run's console and how long it took on this host.
struct RunLog {
    text: String,
    wall: Duration,
}

fn machine(gic: u8, cpus: u8, memory: &'static str, virtualization: bool) -> Machine {
    Machine {
        board: Board::Virt,
        gic,
        cpus,
        memory,
        cpu_model: CPU_MODEL,
        virtualization,
        virtio_disk: false,
    }
}

/// Runs `command` until every step is seen and QEMU exits 0 (the guests
/// power off), and returns its console. The log stays in target/bench.
fn run(name: &str, mut command: Command, steps: Vec<Step>, out: &Path) -> Result<RunLog> {
    command.args(["-icount", ICOUNT]);
    let watch = Watch {
        steps,
        forbidden: [
            "TESSERA CRASH",
            "TESSERA PANIC",
            " ERROR ",
            "panic",
            "unexpected ",
        ]
        .map(str::to_owned)
        .to_vec(),
        end: End::Exit(0),
        timeout: RUN_TIMEOUT,
        intervals: Vec::new(),
    };
    let log = out.join(format!("{name}.log"));
    println!("== {name}");
    match engine::run(command, &watch, &log) {
        Outcome::Passed { elapsed, .. } => Ok(RunLog {
            text: std::fs::read_to_string(&log)
                .with_context(|| format!("reading {}", log.display()))?,
            wall: elapsed,
        }),
        Outcome::Failed { reason, tail, .. } => {
            let shown = tail.len().min(TAIL_LINES);
            bail!(
                "bench run {name} failed: {reason}\nlast {shown} lines of {}:\n{}",
                log.display(),
                tail.join("\n")
            )
        }
    }
}

/// The bench guest booted by QEMU alone (`-kernel`), at EL1 (`native`) or
/// at EL2 (`floor`). Natively with two CPUs, as the partition has (the
/// second answers the SGI round trip); the floor takes no interrupt figure
/// and has one.
fn bare_run(
    name: &str,
    guest: &Path,
    gic: u8,
    virtualization: bool,
    iterations: u64,
    out: &Path,
) -> Result<RunLog> {
    let cpus = if virtualization { 1 } else { 2 };
    let machine = machine(gic, cpus, "256M", virtualization);
    let mut command = qemu::command(
        name,
        &machine,
        Loader::Kernel,
        guest,
        None,
        &[],
        Console::Captured,
    )?;
    command.args(["-append", &format!("iterations={iterations}")]);
    run(name, command, vec![Step::one("BENCH done")], out)
}

/// Tessera with the partitions of `overlay`, each running the bench guest
/// with `bootargs`.
fn tessera_run(
    name: &str,
    image: &Path,
    overlay_file: &str,
    cpus: u8,
    bootargs: &str,
    out: &Path,
) -> Result<RunLog> {
    tessera_run_with(name, image, overlay_file, 3, cpus, bootargs, &[], None, out)
}

/// [`tessera_run`] on a GIC of version `gic`, with more arguments for QEMU,
/// and with `/chosen` seeds that follow from `seed` (else fresh ones).
#[allow(clippy::too_many_arguments, reason = "one call per kind of run")]
fn tessera_run_with(
    name: &str,
    image: &Path,
    overlay_file: &str,
    gic: u8,
    cpus: u8,
    bootargs: &str,
    qemu_args: &[String],
    seed: Option<u64>,
    out: &Path,
) -> Result<RunLog> {
    let machine = machine(gic, cpus, "1G", true);
    let mut board = qemu::dump_dtb(&machine)?;
    if let Some(seed) = seed {
        // On a copy: the dump is shared by every run of this machine.
        let seeded = out.join(format!("{name}-board.dtb"));
        std::fs::copy(&board, &seeded).with_context(|| format!("writing {}", seeded.display()))?;
        qemu::set_firmware_seeds(&seeded, seed)?;
        board = seeded;
    }
    let merged = overlay::merge(name, &board, &root().join(overlay_file))?;
    overlay::write_sizes(&merged.dtb, &merged.modules)?;
    let partitions = partition_names(&merged.modules);
    for partition in &partitions {
        run_quiet(tool("fdtput").args(["-t", "s"]).arg(&merged.dtb).args([
            &format!("/hypervisor/{partition}"),
            "bootargs",
            bootargs,
        ]))?;
    }
    let mut command = qemu::command(
        name,
        &machine,
        Loader::Kernel,
        image,
        Some(&merged.dtb),
        &merged.modules,
        Console::Captured,
    )?;
    command.args(qemu_args);
    let done: Vec<String> = partitions
        .iter()
        .map(|p| format!("{p} | BENCH done"))
        .collect();
    let done: Vec<&str> = done.iter().map(String::as_str).collect();
    run(name, command, vec![Step::all(&done)], out)
}

/// The partitions of an overlay, from its modules' node paths
/// (`/hypervisor/<partition>/module@...`).
fn partition_names(modules: &[overlay::Module]) -> Vec<String> {
    let mut names: Vec<String> = modules
        .iter()
        .filter_map(|m| m.node.strip_prefix("/hypervisor/")?.split('/').next())
        .map(str::to_owned)
        .collect();
    names.dedup();
    names
}

/// The BENCH lines of a run, for comparing two runs.
fn bench_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("BENCH ")).collect()
}

pub fn bench(options: &Options) -> Result<ExitCode> {
    setup::ensure()?;
    let hypervisor = build::hypervisor(BuildBoard::QemuVirt, Profile::Release)?;
    let guest = guests::build_named(BENCH_GUEST, Profile::Release)?;
    let out = root().join("target").join("bench");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    if let Some(target) = options.profile {
        let bootargs = match target {
            profile::Target::Bench => format!("iterations={}", profile::ITERATIONS),
            profile::Target::Boot => "run=boot".to_owned(),
        };
        let log = out.join("profile-exec.log");
        let run = tessera_run_with(
            "tessera-profile",
            &hypervisor.image,
            ONE_PARTITION,
            3,
            2,
            &bootargs,
            &profile::qemu_args(&log),
            None,
            &out,
        )?;
        let elf = std::fs::read(&hypervisor.elf)
            .with_context(|| format!("reading {}", hypervisor.elf.display()))?;
        profile::report(&elf, &run.text, &log)?;
        return Ok(ExitCode::SUCCESS);
    }
    let iterations = if options.quick {
        QUICK_ITERATIONS
    } else {
        ITERATIONS
    };
    let full = format!("iterations={iterations}");

    let native = bare_run("native", &guest, 3, false, iterations, &out)?;
    let native_gicv2 = bare_run("native-gicv2", &guest, 2, false, iterations, &out)?;
    let floor = bare_run("floor", &guest, 3, true, iterations, &out)?;
    let one = tessera_run(
        "tessera-one-partition",
        &hypervisor.image,
        ONE_PARTITION,
        2,
        &full,
        &out,
    )?;
    let again = tessera_run(
        "tessera-one-partition-again",
        &hypervisor.image,
        ONE_PARTITION,
        2,
        &full,
        &out,
    )?;
    let gicv2 = tessera_run_with(
        "tessera-one-partition-gicv2",
        &hypervisor.image,
        ONE_PARTITION,
        2,
        2,
        &full,
        &[],
        None,
        &out,
    )?;
    let three = tessera_run(
        "tessera-three-partitions",
        &hypervisor.image,
        THREE_PARTITIONS,
        4,
        "run=boot",
        &out,
    )?;

    // Linux's boot: many boots of seconds each, not part of --quick.
    let linux = if options.quick {
        None
    } else {
        Some(linux::run_all(&hypervisor.image, &out)?)
    };

    let repeated = bench_lines(&one.text) == bench_lines(&again.text);
    let report = Report::assemble(report::Inputs {
        native: &native.text,
        native_gicv2: &native_gicv2.text,
        floor: &floor.text,
        one_partition: &one.text,
        one_partition_gicv2: &gicv2.text,
        three_partitions: &three.text,
        linux,
        sizes: hypervisor.sizes,
        quick: options.quick,
        iterations,
        repeated,
        wall: vec![
            ("native", native.wall),
            ("native-gicv2", native_gicv2.wall),
            ("floor", floor.wall),
            ("tessera-one-partition", one.wall),
            ("tessera-one-partition-again", again.wall),
            ("tessera-one-partition-gicv2", gicv2.wall),
            ("tessera-three-partitions", three.wall),
        ],
        qemu: qemu_version(),
    })?;
    let table = report.table();
    print!("{table}");
    print!("{}", report.wall_clock());
    let json = out.join("bench.json");
    std::fs::write(&json, report.json())?;
    compare_with_reference(options, &report)?;
    let chart = out.join("latency.svg");
    std::fs::write(&chart, report.svg())?;
    println!("wrote {} and {}", shown(&json), shown(&chart));
    let problems = report.sanity();
    if problems.is_empty() {
        println!("bench: figures sane");
        Ok(ExitCode::SUCCESS)
    } else {
        for problem in &problems {
            println!("bench: NOT SANE: {problem}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// Lists the figures that moved since the reference run, or records this
/// run as the reference.
fn compare_with_reference(options: &Options, report: &Report) -> Result<()> {
    if options.record {
        if options.quick {
            bail!("--record takes a full run, not --quick");
        }
        reference::record(&report.json(), &report.table())?;
        println!(
            "recorded this run as the reference: {} and {}",
            shown(&reference::json_path()),
            shown(&reference::table_path())
        );
        return Ok(());
    }
    if options.quick {
        return Ok(());
    }
    let Some(recorded) = reference::read()? else {
        println!("no reference run in docs/ yet: record one with `cargo xtask bench --record`");
        return Ok(());
    };
    let current: serde_json::Value = serde_json::from_str(&report.json())?;
    let moved = reference::moved(&recorded, &current);
    if moved.is_empty() {
        println!(
            "every figure is as in the reference run ({})",
            shown(&reference::json_path())
        );
    } else {
        println!(
            "{} figures moved since the reference run ({}); if the change is meant, record it with `cargo xtask bench --record`:",
            moved.len(),
            shown(&reference::json_path())
        );
        for line in moved {
            println!("  {line}");
        }
    }
    Ok(())
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `qemu-system-aarch64 --version`'s first line.
fn qemu_version() -> String {
    run_quiet(Command::new("qemu-system-aarch64").arg("--version"))
        .ok()
        .and_then(|text| text.lines().next().map(str::to_owned))
        .unwrap_or_else(|| "QEMU (version unknown)".to_owned())
}
