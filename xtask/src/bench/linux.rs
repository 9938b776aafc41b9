//! The Linux figure: Debian's kernel from its first instruction to the
//! first command of its `/init`, natively and alone in a partition of the
//! same size (one CPU, 256 MiB), in instructions under `-icount`.
//!
//! The bench's initramfs is the demo's with two files on top: `/init`, which
//! runs `init-clock` (`tests/init-clock`: it prints the virtual counter,
//! which starts at the kernel's first instruction in both places), then
//! powers off; and `init-clock` itself.
//!
//! Both kernels see the same devices: the native one boots on QEMU's tree
//! with the nodes a partition's tree lacks removed ([`native_dtb`]).
//!
//! One boot is exact under `-icount` with QEMU's `-seed` and the board
//! tree's `/chosen` seeds derived from the same number, but Linux uses its
//! random seeds (KASLR, the random pool) in ways that move its boot by a
//! few percent from seed to seed, and the seeds a partition gets from
//! Tessera cannot equal the ones a native kernel gets. So each side boots
//! with seeds 1 to [`SEEDS`] and the figure is the ratio of the means,
//! shown with each side's spread.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use tessera_scenarios::Step;

use super::{CPU_MODEL, ICOUNT, machine, run, tessera_run_with};
use crate::build::Profile;
use crate::guests;
use crate::linux::{self, cpio};
use crate::qemu::{self, Console, Loader};
use crate::workspace::{command, output_dir, run_quiet};

/// Boots per side.
pub const SEEDS: u64 = 8;
/// The machine of both sides: GIC version, CPUs, and the RAM natively
/// (the partition's `memory-size` in [`OVERLAY`]; Tessera's machine has
/// 1 GiB, its own and the partition's).
const GIC_VERSION: u8 = 3;
const CPUS: u8 = 1;
const NATIVE_MEMORY: &str = "256M";
/// The partition's overlay, and the initramfs it names.
const OVERLAY: &str = "tests/overlays/bench-linux.dts";
const INITRAMFS: &str = "initramfs-bench.cpio.gz";
const INIT_CLOCK: &str = "init-clock";
const INIT: &str = "#!/bin/sh\n\
# /init of the bench's Linux figure (xtask/src/bench/linux.rs): the time\n\
# first, then power off.\n\
/bin/init-clock\n\
echo BENCH done\n\
poweroff -f\n";
/// The line `init-clock` prints.
const LINE: &str = "BENCH linux_init counter=";

/// Instructions from the kernel's first instruction to `/init`, per seed.
#[derive(Debug, Clone, PartialEq)]
pub struct Boots {
    pub native: Vec<u64>,
    pub tessera: Vec<u64>,
}

/// Boots Linux [`SEEDS`] times natively and in a partition of `image`.
pub fn run_all(image: &Path, out: &Path) -> Result<Boots> {
    let artifacts = linux::ensure()?;
    let initramfs = initramfs(&artifacts.initramfs)?;
    let mut boots = Boots {
        native: Vec::new(),
        tessera: Vec::new(),
    };
    for seed in 1..=SEEDS {
        let seed_args = vec!["-seed".to_owned(), seed.to_string()];
        let machine = machine(GIC_VERSION, CPUS, NATIVE_MEMORY, false);
        let name = format!("linux-native-seed{seed}");
        let dtb = native_dtb(&machine, seed, &out.join(format!("{name}.dtb")))?;
        let mut command = qemu::command(
            &name,
            &machine,
            Loader::Kernel,
            &artifacts.image,
            Some(&dtb),
            &[],
            Console::Captured,
        )?;
        command
            .arg("-initrd")
            .arg(&initramfs)
            .args(["-append", tessera_scenarios::linux::BOOTARGS])
            .args(&seed_args);
        let log = run(&name, command, vec![Step::one("BENCH done")], out)?;
        boots
            .native
            .push(instructions(&log.text).with_context(|| name.clone())?);

        let name = format!("linux-tessera-seed{seed}");
        let log = tessera_run_with(
            &name,
            image,
            OVERLAY,
            GIC_VERSION,
            CPUS,
            tessera_scenarios::linux::BOOTARGS,
            &seed_args,
            Some(seed),
            out,
        )?;
        boots
            .tessera
            .push(instructions(&log.text).with_context(|| name.clone())?);
    }
    Ok(boots)
}

/// The nodes at the root of QEMU's tree that a partition's tree has too
/// (`hyp-core/src/guest/device_tree.rs`; a name ending in `@` stands for
/// any unit address): the native kernel gets QEMU's tree without the rest
/// (PCIe, 32 virtio-mmio transports, flash, fw-cfg, GPIO, RTC, PMU), so
/// that both boots probe the same devices.
const SHARED_NODES: [&str; 9] = [
    "cpus", "memory@", "psci", "intc@", "timer", "pl011@", "apb-pclk", "aliases", "chosen",
];

/// QEMU's tree for the native boot: the nodes a partition's tree lacks
/// removed (and the GIC's ITS, which a partition's GIC lacks), with seeds
/// that follow from `seed`, at `path`.
fn native_dtb(machine: &tessera_scenarios::Machine, seed: u64, path: &Path) -> Result<PathBuf> {
    let qemu_tree = qemu::dump_dtb(machine)?;
    std::fs::copy(&qemu_tree, path).with_context(|| format!("writing {}", path.display()))?;
    let children = |node: &str| -> Result<Vec<String>> {
        let listed = run_quiet(command("fdtget").arg("-l").arg(path).arg(node))?;
        Ok(listed.lines().map(str::to_owned).collect())
    };
    let shared = |name: &str| {
        SHARED_NODES
            .iter()
            .any(|kept| match kept.strip_suffix('@') {
                Some(prefix) => name
                    .strip_prefix(prefix)
                    .is_some_and(|unit| unit.starts_with('@')),
                None => name == *kept,
            })
    };
    for node in children("/")? {
        if !shared(&node) {
            run_quiet(
                command("fdtput")
                    .arg("-r")
                    .arg(path)
                    .arg(format!("/{node}")),
            )?;
        } else if node.starts_with("intc@") {
            for its in children(&format!("/{node}"))? {
                run_quiet(
                    command("fdtput")
                        .arg("-r")
                        .arg(path)
                        .arg(format!("/{node}/{its}")),
                )?;
            }
        }
    }
    qemu::set_firmware_seeds(path, seed)?;
    Ok(path.to_path_buf())
}

/// The demo's initramfs with the bench's `/init` and `init-clock` appended
/// (the kernel unpacks concatenated archives in turn; later files win).
fn initramfs(demo: &Path) -> Result<PathBuf> {
    let (_, clock) = guests::build_elf(INIT_CLOCK, Profile::Release)?;
    let mut archive = cpio::Archive::new();
    archive.directory("bin", 0o755);
    archive.file("bin/init-clock", 0o755, &clock);
    archive.file("init", 0o755, INIT.as_bytes());
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(&archive.finish())?;
    let mut bytes = std::fs::read(demo).with_context(|| format!("reading {}", demo.display()))?;
    bytes.extend(encoder.finish()?);
    let path = output_dir("guests")?.join(INITRAMFS);
    std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Instructions from `init-clock`'s line in `log`: under `-icount
/// shift=0` one instruction takes one nanosecond of virtual time.
fn instructions(log: &str) -> Result<u64> {
    let Some(rest) = log.lines().find_map(|l| l.split_once(LINE).map(|(_, r)| r)) else {
        bail!("no `{LINE}` line: /init did not run init-clock");
    };
    let number = |text: &str| text.trim().parse::<u128>().ok();
    let (counter, frequency) = rest
        .split_once(" frequency=")
        .and_then(|(c, f)| Some((number(c)?, number(f)?)))
        .filter(|&(_, f)| f > 0)
        .with_context(|| format!("unreadable `{LINE}{rest}`"))?;
    u64::try_from(counter * 1_000_000_000 / frequency)
        .context("a boot longer than u64 instructions")
}

impl Boots {
    /// Tessera's mean over native's.
    pub fn ratio(&self) -> f64 {
        mean(&self.tessera) / mean(&self.native)
    }

    /// The standard error of [`Boots::ratio`] from the two sides' spreads
    /// (their relative standard errors added in quadrature).
    pub fn ratio_error(&self) -> f64 {
        let relative = |values: &[u64]| {
            let n = values.len() as f64;
            if n < 2.0 {
                return 0.0;
            }
            let m = mean(values);
            let variance = values.iter().map(|&v| (v as f64 - m).powi(2)).sum::<f64>() / (n - 1.0);
            variance.sqrt() / m / n.sqrt()
        };
        self.ratio() * relative(&self.native).hypot(relative(&self.tessera))
    }
}

/// The mean of `values`.
pub fn mean(values: &[u64]) -> f64 {
    values.iter().map(|&v| v as f64).sum::<f64>() / values.len().max(1) as f64
}

/// What the machines run: for the report's note.
pub fn method() -> String {
    format!(
        "QEMU virt, {CPU_MODEL}, one CPU and 256 MiB (natively; Tessera's partition the same), -icount {ICOUNT}, -seed 1..{SEEDS}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counter_becomes_instructions() {
        let log = "[    1.000000] linux | BENCH linux_init counter=62500000 frequency=62500000\n";
        assert_eq!(instructions(log).unwrap(), 1_000_000_000);
        assert!(instructions("Run /init as init process\n").is_err());
        assert!(instructions("BENCH linux_init counter=5 frequency=0\n").is_err());
    }

    #[test]
    fn the_ratio_carries_both_sides_spread() {
        let exact = Boots {
            native: vec![100, 100],
            tessera: vec![101, 101],
        };
        assert!((exact.ratio() - 1.01).abs() < 1e-12);
        assert_eq!(exact.ratio_error(), 0.0);
        let spread = Boots {
            native: vec![90, 110],
            tessera: vec![100, 100],
        };
        // Native: standard deviation 14.14, mean 100, standard error 10%.
        assert!(
            (spread.ratio_error() - 0.1).abs() < 1e-3,
            "{}",
            spread.ratio_error()
        );
    }

    #[test]
    fn the_mean_of_nothing_is_zero() {
        assert_eq!(mean(&[]), 0.0);
        assert_eq!(mean(&[1, 2, 3, 6]), 3.0);
    }
}
