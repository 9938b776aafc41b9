//! `cargo xtask run`: boot Tessera in QEMU for a person to watch.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use tessera_scenarios::Machine;

use crate::build::{self, Board, Profile};
use crate::qemu::{self, Console, Loader};
use crate::{guests, overlay, setup};

#[derive(Debug, Clone)]
pub struct Options {
    pub machine: Machine,
    pub memory: String,
    pub loader: Loader,
    pub profile: Profile,
    /// The partition overlay; `None` boots Tessera without partitions.
    pub overlay: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            machine: Machine::DEFAULT,
            memory: "2G".into(),
            loader: Loader::Kernel,
            profile: Profile::Debug,
            overlay: Some(PathBuf::from(overlay::DEFAULT_OVERLAY)),
        }
    }
}

pub fn run(options: &Options) -> Result<ExitCode> {
    setup::ensure()?;
    let artifacts = build::hypervisor(Board::QemuVirt, options.profile)?;
    // `Machine` holds a static string; the option lives as long as the process.
    let memory: &'static str = Box::leak(options.memory.clone().into_boxed_str());
    let machine = Machine {
        memory,
        ..options.machine
    };
    let (dtb, modules) = match &options.overlay {
        Some(file) => {
            guests::build(Profile::Release)?;
            let board = qemu::dump_dtb(&machine)?;
            let merged = overlay::merge("run", &board, file)?;
            // Through U-Boot the generated boot.scr writes the sizes.
            if options.loader != Loader::UBoot {
                overlay::write_sizes(&merged.dtb, &merged.modules)?;
            }
            (Some(merged.dtb), merged.modules)
        }
        None => (None, Vec::new()),
    };
    let mut command = qemu::command(
        "run",
        &machine,
        options.loader,
        &artifacts.image,
        dtb.as_deref(),
        &modules,
        Console::Interactive,
    )?;
    eprintln!("QEMU: {command:?}\n(quit with Ctrl-A X)");
    let status = command.status().context("starting qemu-system-aarch64")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
