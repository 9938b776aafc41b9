//! Command-line parsing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use lexopt::prelude::*;

use crate::build::{Board, Profile};
use crate::qemu::Loader;
use crate::{bench, build, check_config, linux, run, setup, test};

const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build  [--board qemu-virt|rpi4|rpi5] [--release]
         Build the hypervisor ELF and its arm64 Image; print its size.
  run    [--gic 2|3] [--cpus N] [--mem SIZE] [--overlay FILE|none] [--uboot] [--release]
         Boot Tessera in QEMU virt (default: GICv3, 4 CPUs, 2G, -kernel) with
         the partitions of FILE (default: dtb/overlays/qemu-virt-linux-demo.dts,
         Linux beside a test guest; its kernel is fetched on first use).
         Quit QEMU with Ctrl-A X.
  check-config --board BOARD.dtb [--tessera-at ADDR] [--dtb-at ADDR] OVERLAY.dts|.dtbo
         Check a partition overlay against a board DTB with the code Tessera
         runs at boot: every error, with the partition and property. The
         addresses (hex) default to those of xtask's generated boot.scr.
  test   [--unit-only | --qemu-only] [--long] [--jobs N] [FILTER]
         Host unit tests, then every QEMU scenario (or those whose name
         contains FILTER). Ends with one line: N passed, N failed.
  bench  [--quick | --record | --profile [boot]]
         Deterministic figures under QEMU -icount: trap round trips against a
         floor handler, workloads and boot against native, stage-2 mappings,
         image size. Table on stdout, target/bench/bench.json and latency.svg.
         --quick: few samples, a smoke check (CI). --record: write the run
         to docs/bench-reference.{json,txt}; other full runs list what moved.
         --profile: instead, the instructions Tessera runs per function
         during the one-partition bench (or its boot), from QEMU's exec log.
  setup  Check (and, as root on Debian/Ubuntu, install) QEMU, U-Boot, dtc
         and the disk tools; `run` and `test` do this first. Then fetch the
         Linux demo's kernel and busybox (Debian arm64 packages) into
         target/linux and build its initramfs.
  lint   rustfmt check and clippy (-D warnings) for host and bare-metal targets.
";

pub enum Command {
    Build {
        board: Board,
        profile: Profile,
    },
    CheckConfig {
        board: PathBuf,
        overlay: PathBuf,
        addresses: check_config::LoadAddresses,
    },
    Run(run::Options),
    Test(test::Options),
    Bench(bench::Options),
    Setup,
    Lint,
    Help,
}

pub fn parse() -> Result<Command> {
    let mut parser = lexopt::Parser::from_env();
    let Some(command) = parser.next()? else {
        return Ok(Command::Help);
    };
    let command = match command {
        Value(name) => name.string()?,
        Long("help") | Short('h') => return Ok(Command::Help),
        other => return Err(other.unexpected().into()),
    };
    match command.as_str() {
        "build" => {
            let (mut board, mut profile) = (Board::QemuVirt, Profile::Debug);
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("board") => board = parser.value()?.string()?.parse()?,
                    Long("release") => profile = Profile::Release,
                    other => return Err(other.unexpected().into()),
                }
            }
            Ok(Command::Build { board, profile })
        }
        "run" => {
            let mut options = run::Options::default();
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("gic") => {
                        options.machine.gic = parser.value()?.parse()?;
                        if !matches!(options.machine.gic, 2 | 3) {
                            bail!("--gic takes 2 or 3");
                        }
                    }
                    Long("cpus") => {
                        options.machine.cpus = parser.value()?.parse()?;
                        if !(1..=8).contains(&options.machine.cpus) {
                            bail!("--cpus takes 1 to 8 (QEMU virt with GICv2 has at most 8)");
                        }
                    }
                    Long("mem") => options.memory = parser.value()?.string()?,
                    Long("uboot") => options.loader = Loader::UBoot,
                    Long("overlay") => {
                        let value = parser.value()?.string()?;
                        options.overlay = (value != "none").then(|| PathBuf::from(value));
                    }
                    Long("release") => options.profile = Profile::Release,
                    other => return Err(other.unexpected().into()),
                }
            }
            Ok(Command::Run(options))
        }
        "test" => {
            let mut options = test::Options::default();
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("unit-only") => options.qemu = false,
                    Long("qemu-only") => options.unit = false,
                    Long("long") => options.long = true,
                    Long("jobs") | Short('j') => {
                        options.jobs = parser.value()?.parse::<usize>().context("--jobs")?.max(1)
                    }
                    Value(filter) if options.filter.is_none() => {
                        options.filter = Some(filter.string()?)
                    }
                    other => return Err(other.unexpected().into()),
                }
            }
            Ok(Command::Test(options))
        }
        "check-config" => {
            let (mut board, mut overlay) = (None, None);
            let mut addresses = check_config::LoadAddresses::default();
            let address = |text: String| -> Result<u64> {
                let digits = text.trim_start_matches("0x");
                u64::from_str_radix(digits, 16)
                    .with_context(|| format!("{text:?} is not a hex address"))
            };
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("board") => board = Some(PathBuf::from(parser.value()?)),
                    Long("tessera-at") => addresses.tessera = address(parser.value()?.string()?)?,
                    Long("dtb-at") => addresses.dtb = address(parser.value()?.string()?)?,
                    Value(file) if overlay.is_none() => overlay = Some(PathBuf::from(file)),
                    other => return Err(other.unexpected().into()),
                }
            }
            match (board, overlay) {
                (Some(board), Some(overlay)) => Ok(Command::CheckConfig {
                    board,
                    overlay,
                    addresses,
                }),
                _ => bail!("usage: cargo xtask check-config --board BOARD.dtb OVERLAY.dts|.dtbo"),
            }
        }
        "bench" => {
            let mut options = bench::Options::default();
            while let Some(arg) = parser.next()? {
                match arg {
                    Long("quick") => options.quick = true,
                    Long("record") => options.record = true,
                    Long("profile") => options.profile = Some(bench::profile::Target::Bench),
                    Value(what) if options.profile.is_some() && what == "boot" => {
                        options.profile = Some(bench::profile::Target::Boot)
                    }
                    other => return Err(other.unexpected().into()),
                }
            }
            Ok(Command::Bench(options))
        }
        "setup" => Ok(Command::Setup),
        "lint" => Ok(Command::Lint),
        "help" => Ok(Command::Help),
        other => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

impl Command {
    pub fn execute(self) -> Result<ExitCode> {
        match self {
            Command::Build { board, profile } => {
                let built = build::hypervisor(board, profile)?;
                build::print_largest_functions(&built)?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Run(options) => run::run(&options),
            Command::CheckConfig {
                board,
                overlay,
                addresses,
            } => {
                setup::ensure()?;
                check_config::check(&board, &overlay, addresses)
            }
            Command::Test(options) => test::test(&options),
            Command::Bench(options) => bench::bench(&options),
            Command::Setup => {
                setup::ensure()?;
                linux::setup()?;
                Ok(ExitCode::SUCCESS)
            }
            Command::Lint => build::lint(),
            Command::Help => {
                print!("{USAGE}");
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}
