//! `cargo xtask`: building, running and testing Tessera.
//!
//! ```text
//! cargo xtask build [--board qemu-virt|rpi4|rpi5] [--release]
//! cargo xtask run [--gic 2|3] [--cpus N] [--mem SIZE] [--uboot] [--release]
//! cargo xtask test [--unit-only|--qemu-only] [--jobs N] [FILTER]
//! cargo xtask setup
//! cargo xtask lint
//! ```

mod build;
mod cli;
mod image;
mod qemu;
mod run;
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
