//! Building the bare-metal test guests that the partition scenarios boot.
//!
//! A guest is built like the hypervisor (same target, same profiles, the
//! workspace's target directory) and turned into a raw binary: Tessera
//! copies a module without an arm64 Image header to the partition's RAM base
//! and enters it at its first byte.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::build::{Profile, TARGET};
use crate::image;
use crate::workspace::{cargo, output_dir, root};

/// The guest RAM base, where guests are linked (`tests/guest-kit/link.ld`,
/// `tessera_guest_kit::LINK_ADDRESS`) and where Tessera puts a raw binary.
const GUEST_LINK_ADDRESS: u64 = 0x4000_0000;

/// The test guest's package and binary.
const TEST_GUEST: &str = "test-guest";
/// The benchmark guest's package and binary.
pub const BENCH_GUEST: &str = "bench-guest";

/// Builds the test guest and writes `target/tessera/guests/test-guest.bin`
/// (the ELF, with symbols for gdb, goes beside it as `test-guest.elf`).
/// Returns the binary's path.
pub fn build(profile: Profile) -> Result<PathBuf> {
    build_named(TEST_GUEST, profile)
}

/// Builds crate `name`'s binary of the same name for the bare-metal
/// target: where its ELF is, and the ELF.
pub fn build_elf(name: &str, profile: Profile) -> Result<(PathBuf, Vec<u8>)> {
    let mut command = cargo();
    command.args([
        "build",
        "--package",
        name,
        "--bin",
        name,
        "--target",
        TARGET,
    ]);
    if profile == Profile::Release {
        command.arg("--release");
    }
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("building {name} failed ({status})");
    }
    let built = root()
        .join("target")
        .join(TARGET)
        .join(profile.directory())
        .join(name);
    let elf = std::fs::read(&built).with_context(|| format!("reading {}", built.display()))?;
    Ok((built, elf))
}

/// Builds the guest whose package and binary are `name` into
/// `target/tessera/guests/<name>.bin`.
pub fn build_named(name: &str, profile: Profile) -> Result<PathBuf> {
    let (built, elf) = build_elf(name, profile)?;
    let binary = image::flat_binary(&elf, GUEST_LINK_ADDRESS)
        .with_context(|| format!("making a raw binary of {}", built.display()))?;
    let dir = output_dir("guests")?;
    let path = dir.join(format!("{name}.bin"));
    std::fs::write(dir.join(format!("{name}.elf")), &elf)?;
    std::fs::write(&path, &binary).with_context(|| format!("writing {}", path.display()))?;
    println!(
        "{}: {:.1} KiB, linked at {GUEST_LINK_ADDRESS:#x}",
        path.strip_prefix(root()).unwrap_or(&path).display(),
        binary.len() as f64 / 1024.0
    );
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_address_is_the_guest_kit_linker_scripts() {
        let script = include_str!("../../tests/guest-kit/link.ld");
        let wanted = format!(". = {GUEST_LINK_ADDRESS:#x};");
        assert!(
            script.contains(&wanted),
            "tests/guest-kit/link.ld should contain {wanted:?}"
        );
    }

    /// Builds the real guest (slow: runs cargo), as a check of the whole
    /// path: `cargo test -p xtask -- --ignored builds_the_test_guest`.
    #[test]
    #[ignore = "runs cargo build for the bare-metal target"]
    fn builds_the_test_guest() {
        let path = build(Profile::Debug).unwrap();
        let binary = std::fs::read(&path).unwrap();
        // The first instruction of the boot stub: `mov x19, x0`.
        assert_eq!(binary[..4], [0xf3, 0x03, 0x00, 0xaa], "{}", path.display());
    }
}
