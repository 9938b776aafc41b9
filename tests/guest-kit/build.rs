//! Build script: hands the guests' build scripts the path of the linker script.
//!
//! A library cannot pass link arguments to the binaries that use it, so each
//! guest's `build.rs` reads `DEP_TESSERA_GUEST_KIT_LINK_SCRIPT` and passes
//! `-T` itself, for the bare-metal target only.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let script = manifest.join("link.ld");
    println!("cargo:link_script={}", script.display());
    println!("cargo:rerun-if-changed={}", script.display());
}
