//! The Linux guest of the demo and of the Linux scenarios: Debian's stock
//! arm64 kernel and busybox, fetched with apt's multi-arch download
//! (nothing is installed on the host), and an initramfs written here.
//!
//! Everything lives in `target/linux/`, under the workspace's target
//! directory like every other build output (`cargo clean` refetches; a
//! fetch takes seconds on these machines):
//!
//! - `Image`: the kernel, an arm64 Image (overlays name it `tessera,file = "Image"`)
//! - `initramfs.cpio.gz`: busybox, `/init` and the modules (`"initramfs.cpio.gz"`)
//! - `manifest.txt`: the packages fetched (name, version, sha256), the
//!   kernel, which drivers are built in and which are modules
//! - `config`, `busybox`, `modules/`: what the initramfs is built from
//! - `debs/`, `apt/`: the downloaded packages and apt's private state
//!
//! [`ensure`] fetches only when the manifest is missing and rebuilds the
//! initramfs only when its content changes, so `run` and `test` call it
//! freely.

pub mod cpio;
mod fetch;
mod initramfs;
mod modules;

use std::path::PathBuf;

use anyhow::{Context, Result};

pub use fetch::KEYRING;

use crate::workspace::root;

/// File names in [`dir`], as overlays' `tessera,file` names them.
pub const KERNEL_FILE: &str = "Image";
pub const INITRAMFS_FILE: &str = "initramfs.cpio.gz";
const MANIFEST_FILE: &str = "manifest.txt";

/// `target/linux`.
pub fn dir() -> PathBuf {
    root().join("target/linux")
}

/// Whether a `tessera,file` name is one of the artifacts made here.
pub fn provides(file_name: &str) -> bool {
    file_name == KERNEL_FILE || file_name == INITRAMFS_FILE
}

/// Where the artifacts are.
#[derive(Debug, Clone)]
pub struct Artifacts {
    pub image: PathBuf,
    pub initramfs: PathBuf,
    pub manifest: PathBuf,
}

fn fetched() -> bool {
    let dir = dir();
    [MANIFEST_FILE, KERNEL_FILE, "busybox", "modules/load-order"]
        .iter()
        .all(|f| dir.join(f).is_file())
}

/// Fetches the packages if they are not there yet, and (re)builds the
/// initramfs if its content changed.
pub fn ensure() -> Result<Artifacts> {
    let dir = dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if !fetched() {
        fetch::fetch(&dir)?;
    }
    let initramfs = initramfs::ensure(&dir)?;
    Ok(Artifacts {
        image: dir.join(KERNEL_FILE),
        initramfs,
        manifest: dir.join(MANIFEST_FILE),
    })
}

/// `cargo xtask setup`'s part: [`ensure`], then the manifest.
pub fn setup() -> Result<()> {
    let artifacts = ensure()?;
    let manifest = std::fs::read_to_string(&artifacts.manifest)?;
    println!("linux: {}", artifacts.manifest.display());
    for line in manifest.lines().filter(|l| !l.starts_with('#')) {
        println!("  {line}");
    }
    Ok(())
}
