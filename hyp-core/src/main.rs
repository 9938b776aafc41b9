//! Tessera's EL2 image. Everything happens in [`hyp_core::boot`]; on the host
//! this binary only says how to build the real thing.

#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
use hyp_core as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("Tessera runs at EL2 on an AArch64 board: build it with `cargo xtask build`.");
    std::process::exit(1);
}
