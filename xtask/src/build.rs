//! Building the hypervisor, and linting the workspace.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, Result, bail};

use crate::image;
use crate::workspace::{cargo, output_dir, root};

/// The bare-metal target: no FP/SIMD code at EL2, so traps need not save the guest's.
pub const TARGET: &str = "aarch64-unknown-none-softfloat";

/// The board an image is built for. One image runs on every board (the DTB
/// says which it is on); the board only chooses the fallback console used
/// when there is no DTB to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Board {
    QemuVirt,
    Rpi4,
    Rpi5,
}

impl Board {
    pub fn name(self) -> &'static str {
        match self {
            Board::QemuVirt => "qemu-virt",
            Board::Rpi4 => "rpi4",
            Board::Rpi5 => "rpi5",
        }
    }
}

impl FromStr for Board {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> Result<Board> {
        match name {
            "qemu-virt" => Ok(Board::QemuVirt),
            "rpi4" => Ok(Board::Rpi4),
            "rpi5" => Ok(Board::Rpi5),
            other => bail!("unknown board {other:?}: qemu-virt, rpi4 or rpi5"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

impl Profile {
    pub fn directory(self) -> &'static str {
        match self {
            Profile::Debug => "debug",
            Profile::Release => "release",
        }
    }
}

/// What a build produced (the ELF, with symbols for gdb, lies beside the Image).
#[derive(Debug, Clone)]
pub struct Artifacts {
    /// The arm64 Image: what QEMU's `-kernel` and U-Boot's `booti` load.
    pub image: PathBuf,
    /// The linked ELF, with symbols.
    pub elf: PathBuf,
    /// What the Image is made of.
    pub sizes: image::Sizes,
}

/// Builds the hypervisor for `board` and writes its Image.
pub fn hypervisor(board: Board, profile: Profile) -> Result<Artifacts> {
    let mut command = cargo();
    command.args([
        "build",
        "--package",
        "hyp-core",
        "--bin",
        "tessera",
        "--target",
        TARGET,
    ]);
    if profile == Profile::Release {
        command.arg("--release");
    }
    command.env("TESSERA_BOARD", board.name());
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("building the hypervisor failed ({status})");
    }
    let built = root()
        .join("target")
        .join(TARGET)
        .join(profile.directory())
        .join("tessera");
    let elf_bytes =
        std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    let image = image::from_elf(&elf_bytes)
        .with_context(|| format!("making an Image of {}", built.display()))?;
    let dir = output_dir(&format!("{}/{}", board.name(), profile.directory()))?;
    let (elf, image_path) = (dir.join("tessera.elf"), dir.join("Image"));
    std::fs::write(&elf, &elf_bytes)?;
    std::fs::write(&image_path, &image.bytes)?;
    println!(
        "{}: {}",
        image_path
            .strip_prefix(root())
            .unwrap_or(&image_path)
            .display(),
        image.sizes
    );
    Ok(Artifacts {
        image: image_path,
        elf,
        sizes: image.sizes,
    })
}

/// rustfmt and clippy, as CI runs them.
pub fn lint() -> Result<ExitCode> {
    let steps: [&[&str]; 3] = [
        &["fmt", "--all", "--check"],
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[
            "clippy",
            "--package",
            "hyp-core",
            "--package",
            "platform",
            "--package",
            "tessera-guest-kit",
            "--package",
            "test-guest",
            "--package",
            "bench-guest",
            "--target",
            TARGET,
            "--",
            "-D",
            "warnings",
        ],
    ];
    for step in steps {
        println!("cargo {}", step.join(" "));
        let status = cargo().args(step).status().context("running cargo")?;
        if !status.success() {
            eprintln!("cargo {} failed", step.join(" "));
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}
