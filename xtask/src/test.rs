//! `cargo xtask test`: host unit tests, then every QEMU scenario, then one
//! line: `N passed, N failed`.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Mutex;
use std::thread;

use anyhow::{Context, Result};
use tessera_scenarios::{DtbEdit, Image, Outcome, Scenario, Watch};

use crate::build::{self, Board, Profile};
use crate::qemu::{self, Console, Loader};
use crate::setup;
use crate::workspace::{cargo, output_dir, root, run_quiet};
use crate::{guests, overlay, schema};

#[derive(Debug, Clone)]
pub struct Options {
    pub unit: bool,
    pub qemu: bool,
    pub jobs: usize,
    pub filter: Option<String>,
    /// Also the slow runs: [`tessera_scenarios::long`].
    pub long: bool,
}

impl Default for Options {
    fn default() -> Self {
        let jobs = thread::available_parallelism().map_or(1, |n| n.get());
        Options {
            unit: true,
            qemu: true,
            jobs,
            filter: None,
            long: false,
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

pub fn test(options: &Options) -> Result<ExitCode> {
    setup::ensure()?;
    let mut tally = Tally::default();
    if options.unit {
        unit_tests(&mut tally)?;
        named_checks(
            "device-tree schema",
            schema::validate_examples()?,
            &mut tally,
        );
        named_checks("check-config", check_config_runs()?, &mut tally);
    }
    if options.qemu {
        scenarios(options, &mut tally)?;
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Counts from a libtest summary line: `test result: ok. 12 passed; 0 failed; ...`.
fn parse_summary(line: &str) -> Option<(usize, usize)> {
    let rest = line.trim().strip_prefix("test result: ")?;
    let count = |label: &str| -> Option<usize> {
        rest.split(';')
            .find_map(|part| {
                part.trim()
                    .rsplit_once(' ')
                    .filter(|(_, l)| *l == label)
                    .map(|(n, _)| n)
            })?
            .rsplit(' ')
            .next()?
            .parse()
            .ok()
    };
    Some((count("passed")?, count("failed")?))
}

/// `cargo test` for the whole workspace on the host, counted test by test.
fn unit_tests(tally: &mut Tally) -> Result<()> {
    println!("== host unit tests");
    let mut child = cargo()
        .args(["test", "--workspace"])
        .stdout(Stdio::piped())
        .spawn()
        .context("running cargo test")?;
    let mut counted = false;
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line?;
            println!("{line}");
            if let Some((passed, failed)) = parse_summary(&line) {
                tally.passed += passed;
                tally.failed += failed;
                counted = true;
            }
        }
    }
    let status = child.wait()?;
    if !status.success() && (!counted || tally.failed == 0) {
        // It did not build, or a test binary crashed: count that as a failure.
        println!("FAIL host unit tests: cargo test ended with {status}");
        tally.failed += 1;
    }
    Ok(())
}

/// Counts and prints checks that have a name and a pass/fail result.
fn named_checks(group: &str, results: Vec<(String, Result<(), String>)>, tally: &mut Tally) {
    println!("== {group}");
    for (name, result) in results {
        match result {
            Ok(()) => {
                println!("PASS {name}");
                tally.passed += 1;
            }
            Err(why) => {
                println!("FAIL {name}: {why}");
                tally.failed += 1;
            }
        }
    }
}

/// `cargo xtask check-config` on the shipped examples (accepted) and on
/// the bad configuration (every error reported), through the command itself.
fn check_config_runs() -> Result<Vec<(String, Result<(), String>)>> {
    guests::build(Profile::Release)?;
    let board = root().join("dtb/boards/qemu-virt-gicv3.dtb");
    let run = |overlay: &str| -> Result<(bool, String)> {
        let output = cargo()
            .args(["xtask", "check-config", "--board"])
            .arg(&board)
            .arg(root().join(overlay))
            .output()?;
        Ok((
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ))
    };
    let mut results = Vec::new();
    for example in [
        "dtb/overlays/qemu-virt-two-partitions.dts",
        "dtb/overlays/qemu-virt-three-partitions.dts",
        "dtb/overlays/qemu-virt-linux-demo.dts",
    ] {
        let (ok, out) = run(example)?;
        results.push((
            format!("check-config accepts {example}"),
            printed(ok, &out, true, &["configuration OK"]),
        ));
    }
    let (ok, out) = run("tests/overlays/qemu-virt-bad.dts")?;
    let expected = [
        "5 errors; Tessera would start no partition",
        "partition a: restart: \"sometimes\" is not one of",
        "partition b: cpus: \"/cpus/cpu@7\" is not a CPU of this board",
        "partition b: no kernel",
        "partition b: cpus: the CPU with MPIDR 0x1 is already given to partition a",
        "partition b: memory-base: 0x52000000..0x56000000 overlaps partition a's memory",
    ];
    results.push((
        "check-config reports every error of a bad overlay".into(),
        printed(ok, &out, false, &expected),
    ));
    let (ok, out) = run("tests/overlays/qemu-virt-passthrough.dts")?;
    let expected = [
        "device /pl031@9010000: pages 0x9010000..0x9011000 at the same guest addresses, SPIs (INTID) 34",
        "configuration OK",
    ];
    results.push((
        "check-config lists a passthrough device".into(),
        printed(ok, &out, true, &expected),
    ));
    let (ok, out) = run("tests/overlays/qemu-virt-bad-passthrough.dts")?;
    let expected = [
        // The overlay adds four made-up devices to the board to give them:
        // each is an error of its own (an overlay may not change the board).
        "16 errors; Tessera would start no partition",
        "fragment@0: adds node /ppi@b000000 (checked on the host only)",
        "partition a: devices: /nope@0: no such node in the board's device tree",
        "partition a: devices: /dma@b001000: can do DMA (it has `dma-coherent`), so it needs a direct-map partition",
        "partition a: devices: /dma@b001000: page 0xb001000..0xb002000 appears at the same guest address, where the guest has its RAM",
        "partition b: console-input: partition a has it already",
        "partition b: devices: /pl031@9010000: is also given to partition a",
        "partition b: devices: /pl011@9000000: is Tessera's console UART",
        "partition b: devices: /pl011@9000000: INTID 33 (SPI 1) is the interrupt of the guest's emulated PL011",
        "partition b: devices: /pl011@9000000: page 0x9000000..0x9001000 appears at the same guest address, where the guest has its emulated GIC and PL011",
        "partition b: devices: /neighbour@9010800: shares the 4 KiB page 0x9010000..0x9011000 with /pl031@9010000, given to partition a",
        "partition b: devices: /ppi@b000000: interrupt INTID 23 is a PPI",
        "partition b: devices: /spi@b002000: INTID 34 (SPI 2) is also the interrupt of /pl031@9010000, given to partition a",
    ];
    results.push((
        "check-config reports every passthrough error of a bad overlay".into(),
        printed(ok, &out, false, &expected),
    ));
    let (ok, out) = run("tests/overlays/qemu-virt-overlapping-modules.dts")?;
    let expected = [
        "1 error; Tessera would start no partition",
        "partition a: reg: 0x49000000..",
        "overlaps partition b's module@49001000 at 0x49001000..",
    ];
    results.push((
        "check-config names both partitions of overlapping modules".into(),
        printed(ok, &out, false, &expected),
    ));
    let (ok, out) = run("tests/overlays/qemu-virt-overlapping-disabled-module.dts")?;
    let expected = [
        "1 error; Tessera's own checks pass, the host's do not",
        "/hypervisor/a/module@49000000 and /hypervisor/b/module@49001000: the files overlap",
    ];
    results.push((
        "check-config finds a disabled partition's module over a live one".into(),
        printed(ok, &out, false, &expected),
    ));
    Ok(results)
}

/// Whether a `check-config` run succeeded exactly when `success` says and
/// printed every line of `expected`.
fn printed(ok: bool, out: &str, success: bool, expected: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|e| !out.contains(e))
        .collect();
    if ok == success && missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "exit success {ok} (expected {success}), missing {missing:?} in:\n{out}"
        ))
    }
}

/// The scenario's base DTB: a board file, or QEMU's own for its machine.
fn base_dtb(scenario: &Scenario, cache: &mut HashMap<String, PathBuf>) -> Result<PathBuf> {
    if let Some(file) = scenario.dtb_file {
        return Ok(root().join(file));
    }
    let key = format!("{:?}", scenario.machine);
    if let Some(path) = cache.get(&key) {
        return Ok(path.clone());
    }
    let path = qemu::dump_dtb(&scenario.machine)?;
    cache.insert(key, path.clone());
    Ok(path)
}

/// Applies `edits` to the DTB at `path`, in place.
fn apply_edits(path: &Path, edits: &[DtbEdit]) -> Result<()> {
    for edit in edits {
        let mut command = crate::workspace::command("fdtput");
        match edit {
            DtbEdit::DeleteNode(node) => command.args(["-r"]).arg(path).arg(node),
            DtbEdit::SetString {
                path: node,
                name,
                value,
            } => command
                .args(["-t", "s"])
                .arg(path)
                .args([node, name, value]),
            DtbEdit::SetCells {
                path: node,
                name,
                cells,
            } => command
                .args(["-t", "x"])
                .arg(path)
                .args([node, name])
                .args(cells.iter().map(|c| format!("{c:x}"))),
        };
        run_quiet(&mut command)?;
    }
    Ok(())
}

/// The DTB a scenario boots with and the modules it loads: the base DTB,
/// merged with the scenario's overlay if it has one, then edited (after the
/// merge, so that edits may reach the overlay's partitions too). `None`:
/// QEMU's own, untouched.
fn scenario_dtb(
    scenario: &Scenario,
    cache: &mut HashMap<String, PathBuf>,
) -> Result<(Option<PathBuf>, Vec<overlay::Module>)> {
    if scenario.dtb_edits.is_empty() && scenario.dtb_file.is_none() && scenario.overlay.is_none() {
        return Ok((None, Vec::new()));
    }
    let base = base_dtb(scenario, cache)?;
    let (path, modules) = match scenario.overlay {
        Some(overlay) => {
            let merged = overlay::merge(&scenario.name, &base, Path::new(overlay))?;
            (merged.dtb, merged.modules)
        }
        None => {
            let path = output_dir("dtb")?.join(format!("{}.dtb", scenario.name));
            std::fs::copy(&base, &path)?;
            (path, Vec::new())
        }
    };
    apply_edits(&path, &scenario.dtb_edits)?;
    if scenario.dtb_file.is_some() {
        // A board file: its firmware would add them (QEMU's own have them).
        qemu::add_firmware_seeds(&path)?;
    }
    // Through U-Boot the boot script writes the sizes, as on a board.
    if scenario.overlay.is_some() && scenario.boot != Loader::UBoot {
        overlay::write_sizes(&path, &modules)?;
    }
    Ok((Some(path), modules))
}

fn scenarios(options: &Options, tally: &mut Tally) -> Result<()> {
    let mut every = tessera_scenarios::all();
    if options.long {
        every.extend(tessera_scenarios::long());
    }
    let selected: Vec<Scenario> = every
        .into_iter()
        .filter(|s| options.filter.as_deref().is_none_or(|f| s.name.contains(f)))
        .collect();
    if selected.is_empty() {
        println!(
            "== no QEMU scenario matches {:?}",
            options.filter.as_deref().unwrap_or("")
        );
        return Ok(());
    }
    // Each image the selected scenarios boot, built once.
    let boots_tessera = |s: &Scenario| !matches!(s.boot, Loader::TestGuestDirect { .. });
    let release = if selected
        .iter()
        .any(|s| boots_tessera(s) && s.image == Image::Release)
    {
        Some(build::hypervisor(Board::QemuVirt, Profile::Release)?)
    } else {
        None
    };
    let debug = if selected.iter().any(|s| s.image == Image::Debug) {
        Some(build::hypervisor(Board::QemuVirt, Profile::Debug)?)
    } else {
        None
    };
    let test_guest = if selected
        .iter()
        .any(|s| s.overlay.is_some() || matches!(s.boot, Loader::TestGuestDirect { .. }))
    {
        Some(guests::build(Profile::Release)?)
    } else {
        None
    };
    let logs = output_dir("test-logs")?;
    // Prepare every command first (DTB fixtures, U-Boot media), then run.
    let mut dtb_cache = HashMap::new();
    let mut jobs = VecDeque::new();
    for scenario in selected {
        let (dtb, modules) = scenario_dtb(&scenario, &mut dtb_cache)?;
        // Booted directly, the test guest takes Tessera's place.
        let image = match (scenario.boot, scenario.image) {
            (Loader::TestGuestDirect { .. }, _) => test_guest.as_ref(),
            (_, Image::Release) => release.as_ref().map(|a| &a.image),
            (_, Image::Debug) => debug.as_ref().map(|a| &a.image),
        }
        .context("the scenario's image was not built")?;
        let command = qemu::command(
            &scenario.name,
            &scenario.machine,
            scenario.boot,
            image,
            dtb.as_deref(),
            &modules,
            Console::Captured,
        )?;
        jobs.push_back((scenario, command));
    }
    println!(
        "== {} QEMU scenarios, {} at a time (logs in {})",
        jobs.len(),
        options.jobs,
        logs.display()
    );
    let queue = Mutex::new(jobs);
    let results = Mutex::new(Vec::new());
    thread::scope(|scope| {
        for _ in 0..options.jobs {
            scope.spawn(|| {
                while let Some((scenario, command)) =
                    queue.lock().ok().and_then(|mut q| q.pop_front())
                {
                    let outcome = run_one(&scenario, command, &logs);
                    report(&scenario, &outcome, &logs);
                    if let Ok(mut results) = results.lock() {
                        results.push(outcome.passed());
                    }
                }
            });
        }
    });
    for passed in results.into_inner().unwrap_or_default() {
        if passed {
            tally.passed += 1;
        } else {
            tally.failed += 1;
        }
    }
    Ok(())
}

fn run_one(scenario: &Scenario, command: std::process::Command, logs: &Path) -> Outcome {
    let watch = Watch {
        steps: scenario.steps.clone(),
        forbidden: scenario.forbidden.clone(),
        end: scenario.end,
        timeout: scenario.timeout,
        intervals: scenario.intervals.clone(),
    };
    tessera_scenarios::run(
        command,
        &watch,
        &logs.join(format!("{}.log", scenario.name)),
    )
}

fn report(scenario: &Scenario, outcome: &Outcome, logs: &Path) {
    // One print per scenario, so parallel runs do not interleave.
    let text = match outcome {
        Outcome::Passed { elapsed, notes } => {
            let mut text = format!(
                "PASS {} ({:.1} s): {}",
                scenario.name,
                elapsed.as_secs_f64(),
                scenario.about
            );
            for note in notes {
                text.push_str(&format!("\n  note: {note}"));
            }
            text
        }
        Outcome::Failed {
            reason,
            tail,
            elapsed,
        } => {
            let mut text = format!(
                "FAIL {} ({:.1} s): {reason}\n  log: {}\n  last {} lines of the console:\n",
                scenario.name,
                elapsed.as_secs_f64(),
                logs.join(format!("{}.log", scenario.name)).display(),
                tail.len()
            );
            for line in tail {
                text.push_str(&format!("  | {line}\n"));
            }
            text
        }
    };
    println!("{}", text.trim_end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtest_summaries_are_counted() {
        assert_eq!(
            parse_summary(
                "test result: ok. 42 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.91s"
            ),
            Some((42, 0))
        );
        assert_eq!(
            parse_summary("test result: FAILED. 7 passed; 2 failed; 0 ignored; 0 measured"),
            Some((7, 2))
        );
        assert_eq!(parse_summary("running 3 tests"), None);
    }
}
