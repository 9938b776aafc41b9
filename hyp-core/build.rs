//! Build script: the linker script for the EL2 image, and the version string.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let script = manifest.join("link.ld");
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rerun-if-changed={}", script.display());
    }
    // "v0.1.0 (3f2c1ab)" in the boot banner; without git, just the version.
    let describe = Command::new("git")
        .args(["describe", "--always", "--dirty", "--exclude", "*"])
        .current_dir(&manifest)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    println!("cargo:rustc-env=TESSERA_GIT={describe}");
    let git = manifest.join("../.git");
    for watched in ["HEAD", "index"] {
        println!("cargo:rerun-if-changed={}", git.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=TESSERA_BOARD");
}
