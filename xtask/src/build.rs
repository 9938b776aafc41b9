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
    if profile == Profile::Release {
        check_budget(image.sizes.file)?;
    }
    Ok(Artifacts {
        image: image_path,
        elf,
        sizes: image.sizes,
    })
}

/// The ceiling on the release image's size, kept in the repository: a
/// change that needs more raises it in its own commit, saying by how many
/// bytes and for what.
const BUDGET_FILE: &str = "xtask/image-budget.txt";

/// Fails the build of an image larger than [`BUDGET_FILE`] allows.
fn check_budget(bytes: u64) -> Result<()> {
    let path = root().join(BUDGET_FILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    within_budget(&text, bytes).map_err(anyhow::Error::msg)
}

/// Whether an image of `bytes` fits the ceiling in `budget` (the text of
/// [`BUDGET_FILE`]: `#` comments, then the ceiling in bytes).
fn within_budget(budget: &str, bytes: u64) -> Result<(), String> {
    let ceiling: u64 = budget
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .and_then(|line| line.parse().ok())
        .ok_or_else(|| format!("{BUDGET_FILE} holds no byte count"))?;
    if bytes > ceiling {
        return Err(format!(
            "the release image is {bytes} bytes, {} over the ceiling of {ceiling} in {BUDGET_FILE}: make it smaller, or raise the ceiling in a commit that says by how many bytes and why",
            bytes - ceiling
        ));
    }
    Ok(())
}

/// `cargo xtask build`'s report: the largest functions of the image.
pub fn print_largest_functions(artifacts: &Artifacts) -> Result<()> {
    const SHOWN: usize = 20;
    let elf = std::fs::read(&artifacts.elf)
        .with_context(|| format!("reading {}", artifacts.elf.display()))?;
    println!("the {SHOWN} largest functions (bytes, with what was inlined into them):");
    for (bytes, name) in crate::elf::largest_functions(&elf, SHOWN)? {
        println!("{bytes:>8}  {name}");
    }
    Ok(())
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
            "--package",
            "init-clock",
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

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn an_image_over_the_ceiling_fails_the_build() {
        let budget = "# comment\n1000\n";
        assert!(within_budget(budget, 1000).is_ok());
        let error = within_budget(budget, 1001).unwrap_err();
        assert!(error.contains("1 over the ceiling of 1000"), "{error}");
        assert!(within_budget("# nothing\n", 1).is_err());
    }

    #[test]
    fn the_repository_budget_is_readable() {
        let text = std::fs::read_to_string(root().join(BUDGET_FILE)).unwrap();
        assert!(within_budget(&text, 0).is_ok());
    }
}
