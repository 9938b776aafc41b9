//! Booting through U-Boot as on a board: Debian's `u-boot-qemu` as QEMU's
//! firmware, its environment in the second flash bank, and a partitioned
//! disk with a FAT partition holding Tessera and a generated `boot.scr`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::overlay::Module;
use crate::workspace::command;
use crate::workspace::{output_dir, run_quiet};

/// Debian's U-Boot for QEMU's arm64 `virt` machine.
pub const FIRMWARE: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

/// Load addresses, spelled out because a flash environment replaces U-Boot's
/// default one (no `kernel_addr_r`). Tessera goes 2 MiB into RAM (booti
/// wants a 2 MiB boundary for an image with text_offset 0); the script well
/// above it, clear of Tessera's image, BSS and heap.
pub const TESSERA_LOAD: u64 = 0x4020_0000;
/// A DTB from the disk goes 128 MiB into RAM: clear of Tessera, its BSS and heap.
pub const DTB_LOAD: u64 = 0x4800_0000;
const SCRIPT_LOAD: u64 = 0x4fc0_0000;
/// U-Boot's environment: CONFIG_ENV_SIZE of qemu_arm64, at the start of flash bank 1.
const ENVIRONMENT_SIZE: u64 = 0x4_0000;
/// QEMU virt's flash banks are 64 MiB each.
const FLASH_BANK_SIZE: u64 = 64 << 20;
/// The FAT partition starts 1 MiB in (sector 2048), as partitioning tools do.
const PARTITION_START_SECTOR: u64 = 2048;
const SECTOR_SIZE: u64 = 512;
/// The FAT partition holds at least this much, and grows with its files
/// (the Linux demo's kernel alone is about 44 MB).
const FAT_MIN_SIZE_KIB: u64 = 32 * 1024;

/// KiB of FAT partition for files of `bytes` in total: room for the FAT
/// structures and cluster slack on top.
fn fat_size_kib(bytes: u64) -> u64 {
    let kib = bytes.div_ceil(1024);
    FAT_MIN_SIZE_KIB.max(kib + kib / 8 + 8 * 1024)
}

/// The generated boot media.
#[derive(Debug, Clone)]
pub struct Media {
    /// Flash image with U-Boot's environment.
    pub environment: PathBuf,
    /// Disk image: MBR, one FAT partition with `tessera.bin` and `boot.scr`.
    pub disk: PathBuf,
}

/// The name a module's file has on the FAT partition.
fn disk_name(module: &Module) -> String {
    module
        .file
        .file_name()
        .map_or_else(|| "module.bin".into(), |n| n.to_string_lossy().into_owned())
}

/// What U-Boot runs: load Tessera and boot it with the board's own DTB
/// (the one U-Boot received), or with `board.dtb` from the disk. Each
/// partition module is loaded at the address its node gives, and its size
/// written into the node's `reg`, as on a board. `fdt_high` keeps U-Boot
/// from moving the DTB over a module.
fn boot_script(dtb_on_disk: bool, modules: &[Module]) -> String {
    let mut script = format!(
        "echo Tessera: loading the hypervisor from virtio 0:1\n\
         load virtio 0:1 {TESSERA_LOAD:#x} tessera.bin\n"
    );
    if dtb_on_disk {
        script.push_str(&format!(
            "load virtio 0:1 {DTB_LOAD:#x} board.dtb\n\
             fdt addr {DTB_LOAD:#x}\n\
             setenv fdt_high 0xffffffffffffffff\n"
        ));
        for module in modules {
            script.push_str(&format!(
                "echo Tessera: loading {file} for {node}\n\
                 load virtio 0:1 {address:#x} {file}\n\
                 fdt set {node} reg <{high:#x} {low:#x} 0x0 0x${{filesize}}>\n",
                file = disk_name(module),
                node = module.node,
                address = module.address,
                high = module.address >> 32,
                low = module.address & 0xffff_ffff,
            ));
        }
        script.push_str(&format!("booti {TESSERA_LOAD:#x} - {DTB_LOAD:#x}\n"));
    } else {
        script.push_str(&format!("booti {TESSERA_LOAD:#x} - ${{fdtcontroladdr}}\n"));
    }
    script
}

/// U-Boot's environment: no autoboot countdown (under TCG at EL2 it runs
/// about 15 times slower than wall time), and a bootcmd that runs boot.scr.
fn environment() -> String {
    format!(
        "bootdelay=0\n\
         bootcmd=virtio scan; load virtio 0:1 {SCRIPT_LOAD:#x} boot.scr && source {SCRIPT_LOAD:#x}\n"
    )
}

/// Writes the environment flash image and the disk image for `image` (and
/// `dtb`, which U-Boot then passes instead of its own) into
/// `target/tessera/uboot/<name>`.
pub fn media(name: &str, image: &Path, dtb: Option<&Path>, modules: &[Module]) -> Result<Media> {
    let dir = output_dir(&format!("uboot/{name}"))?;
    let script_source = dir.join("boot.cmd");
    let script = dir.join("boot.scr");
    fs::write(&script_source, boot_script(dtb.is_some(), modules))?;
    run_quiet(
        command("mkimage")
            .args(["-A", "arm64", "-O", "linux", "-T", "script", "-C", "none"])
            .args([
                "-n".as_ref(),
                "Tessera".as_ref(),
                "-d".as_ref(),
                script_source.as_os_str(),
                script.as_os_str(),
            ]),
    )?;

    let environment_text = dir.join("env.txt");
    let environment_blob = dir.join("env.bin");
    fs::write(&environment_text, environment())?;
    run_quiet(
        command("mkenvimage")
            .args(["-s", &format!("{ENVIRONMENT_SIZE:#x}"), "-o"])
            .arg(&environment_blob)
            .arg(&environment_text),
    )?;
    let environment_flash = dir.join("env.img");
    let mut flash = fs::read(&environment_blob)?;
    flash.resize(usize::try_from(FLASH_BANK_SIZE)?, 0);
    fs::write(&environment_flash, flash)?;

    let mut files: Vec<(&Path, String)> = vec![
        (image, "tessera.bin".into()),
        (script.as_path(), "boot.scr".into()),
    ];
    if let Some(dtb) = dtb {
        files.push((dtb, "board.dtb".into()));
    }
    for module in modules {
        if !files.iter().any(|(_, name)| *name == disk_name(module)) {
            files.push((&module.file, disk_name(module)));
        }
    }
    let mut total = 0;
    for (file, _) in &files {
        total += fs::metadata(file)
            .with_context(|| format!("{}", file.display()))?
            .len();
    }
    let fat = dir.join("fat.img");
    let _ = fs::remove_file(&fat);
    run_quiet(
        command("mkfs.vfat")
            .args(["-n", "TESSERA", "-C"])
            .arg(&fat)
            .arg(fat_size_kib(total).to_string()),
    )?;
    for (file, name) in &files {
        run_quiet(
            command("mcopy")
                .arg("-i")
                .arg(&fat)
                .arg(file)
                .arg(format!("::{name}")),
        )?;
    }
    let disk = dir.join("disk.img");
    let mut bytes = vec![0u8; usize::try_from(PARTITION_START_SECTOR * SECTOR_SIZE)?];
    bytes.extend(fs::read(&fat)?);
    fs::write(&disk, bytes)?;
    let table = format!("label: dos\nstart={PARTITION_START_SECTOR}, type=c\n");
    let mut sfdisk = command("sfdisk");
    sfdisk
        .arg("--quiet")
        .arg(&disk)
        .stdin(std::process::Stdio::piped());
    let mut child = sfdisk
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("running sfdisk")?;
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(table.as_bytes())?;
    }
    let status = child.wait()?;
    anyhow::ensure!(
        status.success(),
        "sfdisk failed on {} ({status})",
        disk.display()
    );
    Ok(Media {
        environment: environment_flash,
        disk,
    })
}
