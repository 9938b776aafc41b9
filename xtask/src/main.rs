//! `cargo xtask`: building, running and testing Tessera.
//!
//! ```text
//! cargo xtask build [--board qemu-virt|rpi4|rpi5] [--release]
//! cargo xtask run [--gic 2|3] [--cpus N] [--mem SIZE] [--overlay FILE|none] [--uboot] [--release]
//! cargo xtask check-config --board BOARD.dtb OVERLAY.dts|.dtbo
//! cargo xtask test [--unit-only|--qemu-only] [--jobs N] [FILTER]
//! cargo xtask bench [--quick]
//! cargo xtask setup
//! cargo xtask lint
//! ```

mod bench;
mod build;
mod check_config;
mod cli;
mod elf;
mod guests;
mod image;
mod linux;
mod overlay;
mod overlay_scope;
mod qemu;
mod run;
mod schema;
mod setup;
mod test;
mod uboot;
mod workspace;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::parse().and_then(cli::Command::execute) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
