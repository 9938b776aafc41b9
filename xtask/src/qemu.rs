//! QEMU command lines for Tessera's machines, and QEMU's own DTBs.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
pub use tessera_scenarios::Boot as Loader;
use tessera_scenarios::{Board, Machine};

use crate::overlay::Module;
use crate::workspace::{self, output_dir, run_quiet};
use crate::{linux, uboot};

/// Where the image goes when `-device loader` places it (no DTB): the
/// address QEMU's `-kernel` uses for an Image with text_offset 0 (RAM base
/// plus 2 MiB, past QEMU's boot stub).
pub const LOADER_ADDRESS: u64 = 0x4020_0000;

/// How the console is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// A person at a terminal: serial and QEMU monitor on stdio (Ctrl-A X quits).
    Interactive,
    /// A test reading stdout: serial only, no monitor, no input.
    Captured,
}

/// `-M ...` and the other options every run shares.
fn machine_args(machine: &Machine) -> Vec<String> {
    if machine.board == Board::Raspi4b {
        // CPUs (4 x cortex-a72), memory and the GIC-400 are the SoC's own.
        return vec!["-M".into(), "raspi4b".into(), "-no-reboot".into()];
    }
    let virtualization = if machine.virtualization { "on" } else { "off" };
    vec![
        "-M".into(),
        format!(
            "virt,virtualization={virtualization},gic-version={}",
            machine.gic
        ),
        "-cpu".into(),
        machine.cpu_model.into(),
        "-m".into(),
        machine.memory.into(),
        "-smp".into(),
        machine.cpus.to_string(),
        // No network: U-Boot would otherwise try DHCP/TFTP on QEMU's user network.
        "-nic".into(),
        "none".into(),
        // A machine reset ends QEMU instead of looping.
        "-no-reboot".into(),
    ]
}

/// The QEMU command that boots `image` on `machine`. With `-kernel`, a `dtb`
/// replaces QEMU's own (QEMU still rewrites its /psci and /memory); through
/// U-Boot it goes on the disk and U-Boot passes it as a board's U-Boot would.
/// `name` keeps each run's U-Boot media apart.
pub fn command(
    name: &str,
    machine: &Machine,
    loader: Loader,
    image: &Path,
    dtb: Option<&Path>,
    modules: &[Module],
    console: Console,
) -> Result<Command> {
    let mut command = Command::new("qemu-system-aarch64");
    command.args(machine_args(machine));
    // raspi4b's first serial port is the PL011; the Raspberry Pi 4 DTB's
    // console (serial1) is the mini-UART, QEMU's second serial port.
    let serials: &[&str] = match machine.board {
        Board::Virt => &["-serial", "stdio"],
        Board::Raspi4b => &["-serial", "null", "-serial", "stdio"],
    };
    match console {
        Console::Interactive => command.arg("-nographic"),
        Console::Captured => command
            .args(["-display", "none", "-monitor", "none"])
            .args(serials),
    };
    match loader {
        Loader::Kernel => {
            command.arg("-kernel").arg(image);
            // Partition images where the overlay says the bootloader put them.
            for module in modules {
                command.arg("-device").arg(format!(
                    "loader,file={},addr={:#x},force-raw=on",
                    module.file.display(),
                    module.address
                ));
            }
        }
        Loader::UBoot => {
            let media = uboot::media(name, image, dtb, modules)?;
            command.args(["-bios", uboot::FIRMWARE]);
            command.arg("-drive").arg(format!(
                "if=pflash,unit=1,format=raw,readonly=on,file={}",
                media.environment.display()
            ));
            command.arg("-drive").arg(format!(
                "if=none,id=disk,format=raw,readonly=on,file={}",
                media.disk.display()
            ));
            command.args(["-device", "virtio-blk-device,drive=disk"]);
        }
        Loader::LinuxDirect => {
            // No Tessera: the Linux demo's kernel boots on QEMU's own DTB.
            let linux = linux::ensure()?;
            command
                .arg("-kernel")
                .arg(&linux.image)
                .arg("-initrd")
                .arg(&linux.initramfs)
                .args(["-append", tessera_scenarios::linux::BOOTARGS]);
        }
        Loader::TestGuestDirect { bootargs } => {
            // No Tessera: `image` is the test guest, on QEMU's own DTB.
            command
                .arg("-kernel")
                .arg(image)
                .args(["-append", bootargs]);
        }
        Loader::LoaderWithoutDtb => {
            command.arg("-device").arg(format!(
                "loader,file={},addr={LOADER_ADDRESS:#x},force-raw=on",
                image.display()
            ));
            command
                .arg("-device")
                .arg(format!("loader,addr={LOADER_ADDRESS:#x},cpu-num=0"));
        }
    }
    if machine.virtio_disk {
        if loader == Loader::UBoot {
            bail!("{name}: a virtio disk and U-Boot's boot disk would share a transport");
        }
        let disk = output_dir("disks")?.join(format!("{name}.img"));
        // Blank at every run: the guest makes its file system.
        let file =
            std::fs::File::create(&disk).with_context(|| format!("creating {}", disk.display()))?;
        file.set_len(tessera_scenarios::VIRTIO_DISK_BYTES)?;
        command.arg("-drive").arg(format!(
            "if=none,id=virtio-disk,format=raw,file={}",
            disk.display()
        ));
        command.args(["-device", "virtio-blk-device,drive=virtio-disk"]);
    }
    if let Some(dtb) = dtb.filter(|_| {
        !matches!(
            loader,
            Loader::UBoot | Loader::LinuxDirect | Loader::TestGuestDirect { .. }
        )
    }) {
        command.arg("-dtb").arg(dtb);
    }
    Ok(command)
}

/// QEMU's own DTB for `machine` (`dumpdtb`), cached under target/tessera/dtb.
pub fn dump_dtb(machine: &Machine) -> Result<PathBuf> {
    let name = format!(
        "virt-gicv{}-{}cpu-{}{}.dtb",
        machine.gic,
        machine.cpus,
        machine.memory,
        if machine.virtualization {
            ""
        } else {
            "-novirt"
        }
    );
    let path = output_dir("dtb")?.join(name);
    let mut args = machine_args(machine);
    // Without dtb-randomness=off each dump has a new random /chosen/rng-seed.
    args[1] = format!("{},dtb-randomness=off,dumpdtb={}", args[1], path.display());
    run_quiet(
        Command::new("qemu-system-aarch64")
            .args(&args)
            .args(["-display", "none"]),
    )?;
    add_firmware_seeds(&path)?;
    Ok(path)
}

/// Puts a fresh `/chosen/rng-seed` (32 bytes) and `kaslr-seed` into the
/// DTB at `path`, as a board's firmware or bootloader does (the Raspberry
/// Pi firmware, U-Boot with an RNG, QEMU for its own tree): where Tessera
/// finds its entropy on a CPU without RNDR.
pub fn add_firmware_seeds(path: &Path) -> Result<()> {
    let mut random = [0u8; SEED_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut urandom| std::io::Read::read_exact(&mut urandom, &mut random))
        .context("reading /dev/urandom")?;
    write_seeds(path, &random)
}

/// [`add_firmware_seeds`] with seeds that follow from `seed` alone (a
/// SplitMix64 stream), for runs that must repeat exactly.
pub fn set_firmware_seeds(path: &Path, seed: u64) -> Result<()> {
    let mut state = seed;
    let mut bytes = [0u8; SEED_BYTES];
    for chunk in bytes.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
    write_seeds(path, &bytes)
}

/// `rng-seed` (32 bytes) and `kaslr-seed` (8).
const SEED_BYTES: usize = 40;

fn write_seeds(path: &Path, bytes: &[u8; SEED_BYTES]) -> Result<()> {
    let (rng_seed, kaslr_seed) = bytes.split_at(32);
    // -p: create /chosen if the tree has none.
    for (name, bytes) in [("rng-seed", rng_seed), ("kaslr-seed", kaslr_seed)] {
        run_quiet(
            workspace::command("fdtput")
                .args(["-p", "-t", "bx"])
                .arg(path)
                .args(["/chosen", name])
                .args(bytes.iter().map(|b| format!("{b:02x}"))),
        )?;
    }
    Ok(())
}
