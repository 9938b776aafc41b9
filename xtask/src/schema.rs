//! Checks partition overlays against the dt-schema binding
//! (`dtb/bindings/tessera,hypervisor.yaml`) with dtschema's `dt-validate`.
//!
//! Each overlay is compiled (`dtc -@`), applied to a QEMU `virt` board DTB
//! (`fdtoverlay`) and the merged tree validated against our binding only
//! (`-l tessera`): the board's own, QEMU-generated nodes are not schema-clean
//! against dtschema's core schemas, and checking them is not our business.
//!
//! `dt-validate` exits 0 even when it reports errors, so a result is read
//! from what it writes: its `--json-output` file (a JSON list with one
//! object per diagnostic, `[]` when clean, which also lists the property
//! decoding errors that it prints without a file name) and its standard
//! error, where each problem is a line such as (continuation lines start
//! with a tab)
//!
//! ```text
//! merged.dtb: hypervisor (tessera,hypervisor): a: 'memory-size' is a required property
//!     from schema $id: http://devicetree.org/schemas/tessera,hypervisor.yaml
//! memory-size: size (4) error for type uint64
//! ```
//!
//! A tree passes only with an empty list and nothing printed. Negative
//! controls (overlays broken on purpose) show that the check can fail: each
//! passes only when `dt-validate` reports the error it is built to provoke.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::setup;
use crate::workspace::{command, output_dir, root, run_quiet};

/// The board DTBs every example overlay is applied to.
const BOARDS: [&str; 2] = ["qemu-virt-gicv3", "qemu-virt-gicv2"];

/// `dt-validate -l`: only schemas whose `$id` contains this.
const LIMIT: &str = "tessera";

/// One test's outcome: its name, and why it failed.
pub type Outcome = (String, Result<(), String>);

/// The minimal valid overlay the negative controls break, one way each.
const CONTROL_OVERLAY: &str = r#"/dts-v1/;
/plugin/;

/ {
	fragment@0 {
		target-path = "/";
		__overlay__ {
			hypervisor {
				compatible = "tessera,hypervisor";

				a {
					compatible = "tessera,partition";
					#address-cells = <2>;
					#size-cells = <2>;
					cpus = "/cpus/cpu@0";
					memory-size = <0x0 0x04000000>;

					module@49000000 {
						compatible = "multiboot,kernel", "multiboot,module";
						reg = <0x0 0x49000000 0x0 0x0>;
					};
				};
			};
		};
	};
};
"#;

/// A negative control: what it breaks, the text replaced in
/// [`CONTROL_OVERLAY`] and its replacement, and a fragment of the error
/// `dt-validate` must report.
struct Broken {
    what: &'static str,
    from: &'static str,
    to: &'static str,
    expect: &'static str,
}

const BROKEN: [Broken; 15] = [
    Broken {
        what: "missing memory-size",
        from: "memory-size = <0x0 0x04000000>;",
        to: "",
        expect: "'memory-size' is a required property",
    },
    Broken {
        what: "restart = \"sometimes\"",
        from: "memory-size = <0x0 0x04000000>;",
        to: "memory-size = <0x0 0x04000000>; restart = \"sometimes\";",
        expect: "'sometimes' is not one of ['on-request', 'always', 'never']",
    },
    Broken {
        what: "a module with compatible \"multiboot,kernal\"",
        from: "\"multiboot,kernel\", \"multiboot,module\"",
        to: "\"multiboot,kernal\", \"multiboot,module\"",
        expect: "'multiboot,kernal' is not one of ['multiboot,kernel', 'multiboot,ramdisk']",
    },
    Broken {
        what: "a module without \"multiboot,module\"",
        from: "\"multiboot,kernel\", \"multiboot,module\"",
        to: "\"multiboot,kernel\"",
        expect: "['multiboot,kernel'] is too short",
    },
    Broken {
        what: "memory-size in one cell",
        from: "memory-size = <0x0 0x04000000>;",
        to: "memory-size = <0x04000000>;",
        expect: "memory-size: size is 32, expected 64",
    },
    Broken {
        what: "memory-size not a multiple of 4 KiB",
        from: "memory-size = <0x0 0x04000000>;",
        to: "memory-size = <0x0 0x1001>;",
        expect: "memory-size: 4097 is not a multiple of 4096",
    },
    Broken {
        what: "no cpus or cpu-mpidrs",
        from: "cpus = \"/cpus/cpu@0\";",
        to: "",
        expect: "'cpus' is a required property",
    },
    Broken {
        what: "both cpus and cpu-mpidrs",
        from: "cpus = \"/cpus/cpu@0\";",
        to: "cpus = \"/cpus/cpu@0\"; cpu-mpidrs = <0x1>;",
        expect: "is valid under each of",
    },
    Broken {
        what: "a partition named Part_1",
        from: "a {",
        to: "Part_1 {",
        expect: "'Part_1' does not match any of the regexes",
    },
    Broken {
        what: "a misspelt property",
        from: "memory-size = <0x0 0x04000000>;",
        to: "memory-size = <0x0 0x04000000>; memory-bsae = <0x0 0x50000000>;",
        expect: "'memory-bsae' does not match any of the regexes",
    },
    Broken {
        what: "a child that is not a partition",
        from: "\"tessera,partition\"",
        to: "\"tessera,partitoin\"",
        expect: "'tessera,partition' was expected",
    },
    Broken {
        what: "a misspelt /hypervisor compatible",
        from: "\"tessera,hypervisor\"",
        to: "\"tessera,hypervsior\"",
        expect: "'tessera,hypervisor' was expected",
    },
    Broken {
        what: "a direct-map with a value",
        from: "memory-size = <0x0 0x04000000>;",
        to: "memory-size = <0x0 0x04000000>; direct-map = <1>;",
        expect: "direct-map: size (4) error for type flag",
    },
    Broken {
        what: "a device named without its path",
        from: "memory-size = <0x0 0x04000000>;",
        to: "memory-size = <0x0 0x04000000>; devices = \"pl031@9010000\";",
        expect: "'pl031@9010000' does not match '^/'",
    },
    Broken {
        what: "a console-input with a value",
        from: "memory-size = <0x0 0x04000000>;",
        to: "memory-size = <0x0 0x04000000>; console-input = <1>;",
        expect: "console-input: size (4) error for type flag",
    },
];

/// What `dt-validate` said about one tree.
struct Report {
    /// Diagnostics in its JSON output.
    diagnostics: usize,
    /// Its standard output and error.
    output: String,
}

impl Report {
    fn is_clean(&self) -> bool {
        self.diagnostics == 0 && self.output.trim().is_empty()
    }

    fn describe(&self) -> String {
        format!(
            "dt-validate reported {} diagnostic(s):\n{}",
            self.diagnostics,
            self.output.trim_end()
        )
    }
}

fn bindings_dir() -> PathBuf {
    root().join("dtb/bindings")
}

/// Runs a dtschema command, failing on a non-zero exit; returns its stdout
/// and stderr together.
fn run_dtschema(command: &mut std::process::Command) -> Result<String> {
    let output = command
        .output()
        .with_context(|| format!("cannot run {:?}", command.get_program()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if !output.status.success() {
        bail!("{command:?} failed ({}):\n{text}", output.status);
    }
    Ok(text)
}

/// `dt-mk-schema`: dtschema's core schemas and ours, processed once for
/// all the `dt-validate` runs. Returns the processed schema and what
/// `dt-mk-schema` said (it warns, and exits 0, about a property without a
/// type, for instance).
fn process_schema(dir: &Path) -> Result<(PathBuf, String)> {
    let processed = dir.join("processed-schema.json");
    let _ = std::fs::remove_file(&processed);
    let output = run_dtschema(
        setup::dtschema_command("dt-mk-schema")
            .arg("-j")
            .arg("-o")
            .arg(&processed)
            .arg(bindings_dir()),
    )?;
    if !processed.is_file() {
        bail!("dt-mk-schema wrote no {}:\n{output}", processed.display());
    }
    Ok((processed, output))
}

/// Validates `dtb` against our binding.
fn validate(schema: &Path, dtb: &Path) -> Result<Report> {
    let dir = dtb.parent().unwrap_or(Path::new("."));
    let json = dtb.with_extension("diagnostics.json");
    let _ = std::fs::remove_file(&json);
    let output = run_dtschema(
        setup::dt_validate()
            .current_dir(dir)
            .arg("-s")
            .arg(schema)
            .args(["-l", LIMIT])
            .arg("--json-output")
            .arg(&json)
            .arg(dtb.file_name().unwrap_or(dtb.as_os_str())),
    )?;
    let diagnostics = std::fs::read_to_string(&json)
        .with_context(|| format!("dt-validate wrote no {}:\n{output}", json.display()))?;
    let count = diagnostics.matches("\"level\":").count();
    // A list that is not empty but names no level is a format we do not
    // know: count it as a problem rather than miss one.
    let count = match (count, diagnostics.trim()) {
        (0, "[]") => 0,
        (0, _) => 1,
        (n, _) => n,
    };
    Ok(Report {
        diagnostics: count,
        output,
    })
}

/// Compiles an overlay source to `<dir>/<stem>.dtbo`.
fn compile_overlay(source: &Path, dir: &Path, stem: &str) -> Result<PathBuf> {
    let dtbo = dir.join(format!("{stem}.dtbo"));
    run_quiet(
        command("dtc")
            .args(["-@", "-q", "-I", "dts", "-O", "dtb", "-o"])
            .arg(&dtbo)
            .arg(source),
    )?;
    Ok(dtbo)
}

/// Applies an overlay to a board DTB.
fn merge(board: &str, dtbo: &Path, merged: &Path) -> Result<()> {
    let board_dtb = root().join("dtb/boards").join(format!("{board}.dtb"));
    run_quiet(
        command("fdtoverlay")
            .arg("-i")
            .arg(&board_dtb)
            .arg("-o")
            .arg(merged)
            .arg(dtbo),
    )?;
    Ok(())
}

fn as_outcome(name: String, result: Result<Result<(), String>>) -> Outcome {
    let result = result.unwrap_or_else(|error| Err(format!("{error:#}")));
    (name, result)
}

/// The binding itself: valid against dtschema's meta-schema, and its
/// examples valid against it.
fn check_binding(dir: &Path, schema: &Path) -> Vec<Outcome> {
    let binding = bindings_dir().join("tessera,hypervisor.yaml");
    let doc = (|| -> Result<Result<(), String>> {
        let output = run_dtschema(setup::dtschema_command("dt-doc-validate").arg(&binding))?;
        Ok(if output.trim().is_empty() {
            Ok(())
        } else {
            Err(format!("dt-doc-validate:\n{output}"))
        })
    })();
    let examples = (|| -> Result<Result<(), String>> {
        let source = dir.join("binding-examples.dts");
        let dts = run_quiet(setup::dtschema_command("dt-extract-example").arg(&binding))?;
        std::fs::write(&source, dts)?;
        let dtb = dir.join("binding-examples.dtb");
        run_quiet(
            command("dtc")
                .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
                .arg(&dtb)
                .arg(&source),
        )?;
        let report = validate(schema, &dtb)?;
        Ok(if report.is_clean() {
            Ok(())
        } else {
            Err(report.describe())
        })
    })();
    vec![
        as_outcome("schema: binding passes dt-doc-validate".into(), doc),
        as_outcome("schema: binding examples".into(), examples),
    ]
}

/// An overlay must pass on every board.
fn check_overlay(dir: &Path, schema: &Path, source: &Path, stem: &str) -> Vec<Outcome> {
    let dtbo = compile_overlay(source, dir, stem);
    BOARDS
        .iter()
        .map(|board| {
            let result = dtbo
                .as_ref()
                .map_err(|e| anyhow::anyhow!("{e:#}"))
                .and_then(|dtbo| {
                    let merged = dir.join(format!("{stem}-on-{board}.dtb"));
                    merge(board, dtbo, &merged)?;
                    let report = validate(schema, &merged)?;
                    Ok(if report.is_clean() {
                        Ok(())
                    } else {
                        Err(report.describe())
                    })
                });
            as_outcome(format!("schema: {stem} on {board}"), result)
        })
        .collect()
}

/// A negative control must be reported, with the expected error.
fn check_broken(dir: &Path, schema: &Path, index: usize, broken: &Broken) -> Outcome {
    let result = (|| -> Result<Result<(), String>> {
        if !CONTROL_OVERLAY.contains(broken.from) {
            bail!("the control overlay has no {:?} to replace", broken.from);
        }
        let stem = format!("broken-{index:02}");
        let source = dir.join(format!("{stem}.dts"));
        std::fs::write(&source, CONTROL_OVERLAY.replacen(broken.from, broken.to, 1))?;
        let dtbo = compile_overlay(&source, dir, &stem)?;
        let merged = dir.join(format!("{stem}-on-{}.dtb", BOARDS[0]));
        merge(BOARDS[0], &dtbo, &merged)?;
        let report = validate(schema, &merged)?;
        Ok(if report.diagnostics == 0 {
            Err(format!(
                "dt-validate accepted it ({}); expected \"{}\"",
                source.display(),
                broken.expect
            ))
        } else if !report.output.contains(broken.expect) {
            Err(format!(
                "expected \"{}\" in the report ({}); {}",
                broken.expect,
                source.display(),
                report.describe()
            ))
        } else {
            Ok(())
        })
    })();
    as_outcome(format!("schema rejects: {}", broken.what), result)
}

/// Validates every example overlay (`dtb/overlays/*.dts`) on each QEMU
/// `virt` board, the binding and its examples, and the negative controls.
/// Each entry is one test: its name, and `Err` with the reason (and
/// `dt-validate`'s output) when it failed.
// Until the test runner calls it.
pub fn validate_examples() -> Result<Vec<(String, Result<(), String>)>> {
    if !setup::dtschema_venv().join("bin/dt-validate").is_file() {
        bail!("dtschema is not installed: run `cargo xtask setup`");
    }
    let dir = output_dir("schema")?;
    let broken_dir = output_dir("schema/rejects")?;
    let (schema, warnings) = process_schema(&dir)?;

    let mut outcomes = vec![(
        "schema: binding passes dt-mk-schema".to_owned(),
        if warnings.trim().is_empty() {
            Ok(())
        } else {
            Err(format!("dt-mk-schema:\n{warnings}"))
        },
    )];
    outcomes.extend(check_binding(&dir, &schema));

    let mut overlays: Vec<PathBuf> = std::fs::read_dir(root().join("dtb/overlays"))
        .context("reading dtb/overlays")?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "dts"))
        .collect();
    overlays.sort();
    if overlays.is_empty() {
        bail!("no overlays in dtb/overlays");
    }
    for source in &overlays {
        let stem = source
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        outcomes.extend(check_overlay(&dir, &schema, source, &stem));
    }

    let control = broken_dir.join("control.dts");
    std::fs::write(&control, CONTROL_OVERLAY)?;
    outcomes.extend(check_overlay(&broken_dir, &schema, &control, "control"));
    for (index, broken) in BROKEN.iter().enumerate() {
        outcomes.push(check_broken(&broken_dir, &schema, index, broken));
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_negative_control_applies_to_the_control_overlay() {
        for broken in &BROKEN {
            assert_eq!(
                CONTROL_OVERLAY.matches(broken.from).count(),
                1,
                "{}",
                broken.what
            );
        }
    }

    /// The whole check, as the test runner runs it (needs `cargo xtask setup`):
    /// `cargo test -p xtask -- --ignored schema`.
    #[test]
    #[ignore = "runs dt-validate; the test runner runs validate_examples itself"]
    fn examples_pass_and_broken_overlays_are_rejected() {
        if !setup::dtschema_venv().join("bin/dt-validate").is_file() {
            eprintln!("skipped: dtschema is not installed");
            return;
        }
        let outcomes = validate_examples().expect("validate_examples");
        let failed: Vec<_> = outcomes
            .iter()
            .filter_map(|(name, result)| result.as_ref().err().map(|e| format!("{name}: {e}")))
            .collect();
        for (name, result) in &outcomes {
            println!("{} {name}", if result.is_ok() { "ok  " } else { "FAIL" });
        }
        assert!(failed.is_empty(), "{}", failed.join("\n\n"));
        assert!(
            outcomes
                .iter()
                .any(|(n, _)| n.starts_with("schema rejects: "))
        );
    }
}
