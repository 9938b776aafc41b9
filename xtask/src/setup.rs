//! What Tessera's build and tests need from the machine, checked and, as
//! root on Debian or Ubuntu, installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::build::TARGET;
use crate::workspace::tool;
use crate::{linux, uboot, workspace};

/// Oldest QEMU accepted: 9 brought the `raspi4b` machine the Raspberry Pi
/// scenarios use.
const QEMU_MIN_MAJOR: u32 = 9;
const QEMU_PACKAGE: &str = "qemu-system-arm";
/// Debian bookworm ships QEMU 7.2; its backports suite has QEMU 10.
const BACKPORTS_SOURCES: &str = "/etc/apt/sources.list.d/tessera-bookworm-backports.sources";
const BACKPORTS_ENTRY: &str = "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n";

/// Commands and the Debian package that provides each.
const TOOLS: [(&str, &str); 11] = [
    ("dtc", "device-tree-compiler"),
    ("fdtput", "device-tree-compiler"),
    ("fdtget", "device-tree-compiler"),
    ("fdtoverlay", "device-tree-compiler"),
    ("mkimage", "u-boot-tools"),
    ("mkenvimage", "u-boot-tools"),
    ("mcopy", "mtools"),
    ("mkfs.vfat", "dosfstools"),
    ("sfdisk", "fdisk"),
    ("python3", "python3"),
    ("gcc", "gcc"),
];

/// dtschema (`dt-validate`), which checks overlays against
/// `dtb/bindings/`: PyPI's `dtschema` and everything it pulls in, pinned,
/// in a virtualenv. `pylibfdt` has no wheel: pip builds its sdist, which
/// needs a C compiler and Python's headers; its build requirements (`swig`
/// comes as a wheel from PyPI) are pinned too, through `PIP_CONSTRAINT`,
/// which pip's isolated build environments also read.
const DTSCHEMA: &str = "dtschema==2026.9";
const DTSCHEMA_PINS: [&str; 15] = [
    DTSCHEMA,
    "pylibfdt==1.7.2.post2",
    "jsonschema==4.26.0",
    "jsonschema-specifications==2025.9.1",
    "referencing==0.37.0",
    "rpds-py==2026.9.1",
    "attrs==26.1.0",
    "typing-extensions==4.16.0",
    "ruamel.yaml==0.19.1",
    "rfc3987==1.3.8",
    // pylibfdt's build requirements
    "setuptools==84.2.1",
    "setuptools-scm==10.3.4",
    "vcs-versioning==2.6.0",
    "packaging==26.3",
    "swig==4.4.1",
];
const DTSCHEMA_VENV: &str = "target/tessera/venv";
/// Written into the virtualenv once the pinned set is installed.
const DTSCHEMA_STAMP: &str = "tessera-dtschema.txt";

/// The installed QEMU's major version, if any.
fn qemu_major() -> Option<u32> {
    let output = Command::new("qemu-system-aarch64")
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let version = text.split("version ").nth(1)?;
    version.split(['.', ' ']).next()?.parse().ok()
}

fn target_installed() -> Option<bool> {
    let output = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()?;
    Some(
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .any(|line| line.trim() == TARGET),
    )
}

/// The virtualenv that holds dtschema.
pub fn dtschema_venv() -> PathBuf {
    workspace::root().join(DTSCHEMA_VENV)
}

/// A dtschema command (`dt-validate`, `dt-doc-validate`, `dt-extract-example`, ...).
pub fn dtschema_command(name: &str) -> Command {
    Command::new(dtschema_venv().join("bin").join(name))
}

/// `dt-validate`, from the dtschema virtualenv.
pub fn dt_validate() -> Command {
    dtschema_command("dt-validate")
}

fn dtschema_pins() -> String {
    DTSCHEMA_PINS.iter().map(|pin| format!("{pin}\n")).collect()
}

/// The pinned dtschema set is installed (and its Python still exists).
fn dtschema_installed() -> bool {
    let venv = dtschema_venv();
    venv.join("bin/python").exists()
        && venv.join("bin/dt-validate").is_file()
        && std::fs::read_to_string(venv.join(DTSCHEMA_STAMP)).is_ok_and(|s| s == dtschema_pins())
}

/// Whether `python3 -c CODE` succeeds.
fn python_ok(code: &str) -> bool {
    Command::new("python3")
        .args(["-c", code])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Debian packages that building the dtschema virtualenv needs and lacks:
/// `venv` with `ensurepip` (python3-venv) and `Python.h` (python3-dev).
fn python_build_packages() -> Vec<&'static str> {
    let mut packages = Vec::new();
    if !python_ok("import ensurepip, venv") {
        packages.push("python3-venv");
    }
    if !python_ok(
        "import os, sys, sysconfig; \
         sys.exit(not os.path.isfile(os.path.join(sysconfig.get_path('include'), 'Python.h')))",
    ) {
        packages.push("python3-dev");
    }
    packages
}

/// Creates the virtualenv afresh and installs the pinned dtschema set.
fn install_dtschema() -> Result<()> {
    let venv = dtschema_venv();
    println!("setup: python3 -m venv {DTSCHEMA_VENV}; pip install {DTSCHEMA} (pinned)");
    let constraints = workspace::output_dir("")?.join("dtschema-constraints.txt");
    std::fs::write(&constraints, dtschema_pins())?;
    workspace::run_quiet(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    workspace::run_quiet(
        Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
            ])
            .arg("--constraint")
            .arg(&constraints)
            .arg(DTSCHEMA)
            .env("PIP_CONSTRAINT", &constraints),
    )?;
    std::fs::write(venv.join(DTSCHEMA_STAMP), dtschema_pins())?;
    Ok(())
}

/// What is missing.
#[derive(Debug, Default)]
struct Missing {
    packages: Vec<&'static str>,
    qemu: Option<String>,
    rust_target: bool,
    /// The dtschema virtualenv (installed without root once `packages` are there).
    dtschema: bool,
}

impl Missing {
    fn is_empty(&self) -> bool {
        self.packages.is_empty() && self.qemu.is_none() && !self.rust_target && !self.dtschema
    }
}

fn check() -> Missing {
    let mut missing = Missing::default();
    for (name, package) in TOOLS {
        if tool(name).is_none() && !missing.packages.contains(&package) {
            missing.packages.push(package);
        }
    }
    if !Path::new(uboot::FIRMWARE).is_file() {
        missing.packages.push("u-boot-qemu");
    }
    // The key apt checks the arm64 indexes with when fetching the Linux
    // demo's kernel and busybox (xtask/src/linux/fetch.rs).
    if !Path::new(linux::KEYRING).is_file() {
        missing.packages.push("debian-archive-keyring");
    }
    missing.qemu = match qemu_major() {
        Some(major) if major >= QEMU_MIN_MAJOR => None,
        Some(major) => Some(format!(
            "QEMU {major} is installed; Tessera needs QEMU {QEMU_MIN_MAJOR} or later"
        )),
        None => Some("qemu-system-aarch64 is not installed".into()),
    };
    missing.rust_target = target_installed() == Some(false);
    missing.dtschema = !dtschema_installed();
    if missing.dtschema {
        for package in python_build_packages() {
            if !missing.packages.contains(&package) {
                missing.packages.push(package);
            }
        }
    }
    missing
}

fn os_release(key: &str) -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release").ok()?;
    text.lines().find_map(|line| {
        line.strip_prefix(&format!("{key}="))
            .map(|v| v.trim_matches('"').to_owned())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// How to run a command as root: directly, through password-less sudo, or not at all.
fn privilege() -> Option<Vec<&'static str>> {
    if is_root() {
        return Some(Vec::new());
    }
    let sudo_works = Command::new("sudo")
        .args(["-n", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    sudo_works.then(|| vec!["sudo", "-n", "--preserve-env=DEBIAN_FRONTEND"])
}

fn as_root(prefix: &[&str], program: &str) -> Command {
    match prefix.split_first() {
        Some((sudo, rest)) => {
            let mut command = Command::new(sudo);
            command.args(rest).arg(program);
            command
        }
        None => Command::new(program),
    }
}

fn apt(prefix: &[&str], args: &[&str]) -> Result<()> {
    let shown: String = prefix.iter().map(|p| format!("{p} ")).collect();
    println!("setup: {shown}apt-get {}", args.join(" "));
    let status = as_root(prefix, "apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !status.success() {
        bail!("apt-get {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// The commands that would install what is missing.
fn instructions(missing: &Missing, bookworm: bool) -> Vec<String> {
    let mut steps = Vec::new();
    if missing.rust_target {
        steps.push(format!("rustup target add {TARGET}"));
    }
    if missing.qemu.is_some() && bookworm {
        steps.push(format!(
            "printf '{}' > {BACKPORTS_SOURCES}",
            BACKPORTS_ENTRY.replace('\n', "\\n")
        ));
    }
    if !missing.packages.is_empty() || missing.qemu.is_some() {
        steps.push("apt-get update".into());
    }
    if !missing.packages.is_empty() {
        steps.push(format!("apt-get install -y {}", missing.packages.join(" ")));
    }
    if missing.qemu.is_some() {
        let suite = if bookworm {
            "-t bookworm-backports "
        } else {
            ""
        };
        steps.push(format!("apt-get install -y {suite}{QEMU_PACKAGE}"));
    }
    steps
}

/// Makes sure everything is there, installing it where possible.
pub fn ensure() -> Result<()> {
    let missing = check();
    if missing.is_empty() {
        return Ok(());
    }
    let bookworm = os_release("VERSION_CODENAME").as_deref() == Some("bookworm");
    let debian_like = Path::new("/usr/bin/apt-get").exists();
    if missing.rust_target {
        println!("setup: rustup target add {TARGET}");
        let status = Command::new("rustup")
            .args(["target", "add", TARGET])
            .status()?;
        if !status.success() {
            bail!("rustup target add {TARGET} failed");
        }
    }
    let needs_apt = !missing.packages.is_empty() || missing.qemu.is_some();
    let root = privilege();
    if needs_apt && !(debian_like && root.is_some()) {
        let reason = missing
            .qemu
            .clone()
            .unwrap_or_else(|| format!("missing packages: {}", missing.packages.join(", ")));
        let how = if debian_like {
            "as root, run"
        } else {
            "on Debian or Ubuntu, run as root (elsewhere, install the equivalents)"
        };
        bail!(
            "{reason}.\nTo install what Tessera needs, {how}:\n  {}",
            instructions(&missing, bookworm).join("\n  ")
        );
    }
    if let (true, Some(prefix)) = (needs_apt, root) {
        if missing.qemu.is_some() && bookworm && !Path::new(BACKPORTS_SOURCES).exists() {
            println!(
                "setup: adding bookworm-backports for QEMU {QEMU_MIN_MAJOR}+ ({BACKPORTS_SOURCES})"
            );
            let mut child = as_root(&prefix, "tee")
                .arg(BACKPORTS_SOURCES)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                std::io::Write::write_all(&mut stdin, BACKPORTS_ENTRY.as_bytes())?;
            }
            if !child.wait()?.success() {
                bail!("cannot write {BACKPORTS_SOURCES}");
            }
        }
        apt(&prefix, &["update", "-q"])?;
        if !missing.packages.is_empty() {
            let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
            args.extend(&missing.packages);
            apt(&prefix, &args)?;
        }
        if missing.qemu.is_some() {
            let mut args = vec!["install", "-y", "-q"];
            if bookworm {
                args.extend(["-t", "bookworm-backports"]);
            }
            args.push(QEMU_PACKAGE);
            apt(&prefix, &args)?;
        }
    }
    if missing.dtschema {
        install_dtschema()?;
    }
    let still = check();
    if !still.is_empty() {
        bail!(
            "still missing after installing: {}{}{}",
            still.packages.join(", "),
            still.qemu.map(|q| format!(" ({q})")).unwrap_or_default(),
            if still.dtschema { " (dtschema)" } else { "" }
        );
    }
    println!("setup: all tools present");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_name_backports_for_qemu_on_bookworm() {
        let missing = Missing {
            packages: vec!["mtools"],
            qemu: Some("old".into()),
            rust_target: true,
            ..Missing::default()
        };
        let steps = instructions(&missing, true);
        assert_eq!(steps[0], format!("rustup target add {TARGET}"));
        assert!(steps.iter().any(|s| s.contains(BACKPORTS_SOURCES)));
        assert!(steps.contains(&"apt-get install -y mtools".to_owned()));
        assert_eq!(
            steps.last().unwrap(),
            "apt-get install -y -t bookworm-backports qemu-system-arm"
        );
    }

    #[test]
    fn instructions_elsewhere_use_the_distribution_qemu() {
        let missing = Missing {
            packages: vec![],
            qemu: Some("old".into()),
            rust_target: false,
            ..Missing::default()
        };
        assert_eq!(
            instructions(&missing, false),
            ["apt-get update", "apt-get install -y qemu-system-arm"]
        );
    }
}
