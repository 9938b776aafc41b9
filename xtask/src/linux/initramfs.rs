//! The demo's initramfs: busybox, `/init`, busybox init's `/etc/inittab`,
//! and the kernel modules `fetch` kept, as a gzip-compressed newc cpio.
//!
//! `/init` mounts /proc, /sys and /dev, loads the modules, then becomes
//! busybox init, which runs a login shell on the console (`cttyhack` gives
//! it the console's real tty, so job control and Ctrl-C work), respawns it,
//! and turns `poweroff` and `reboot` into PSCI SYSTEM_OFF and SYSTEM_RESET
//! after a clean shutdown. The shell's profile prints a ready line just before
//! the first prompt (`tessera_scenarios::linux::READY`), so whoever waits for
//! that line can type at once.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::cpio::Archive;

const INIT: &str = r#"#!/bin/sh
# /init of Tessera's Linux demo, written by `cargo xtask` (xtask/src/linux/initramfs.rs).
# Mounts the kernel's file systems, loads the modules listed in
# /lib/modules/load-order, then hands over to busybox init (/etc/inittab).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "tessera-linux: init: Linux $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs"
for module in $(cat /lib/modules/load-order); do
	insmod /lib/modules/$module.ko || echo "tessera-linux: insmod $module failed"
done
exec /sbin/init
"#;

const INITTAB: &str = "\
# busybox init, started by /init: a login shell on the console, started
# again when it exits; poweroff and reboot shut down cleanly.
::respawn:/bin/cttyhack /bin/sh -l
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/echo tessera-linux: shutting down
";

const PROFILE: &str = r#"# Read by the console's login shell (see /etc/inittab).
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
export PS1='linux:\w# '
echo "tessera-linux: init ready (poweroff or reboot stops or restarts this partition)"
"#;

/// Applets linked in the archive: what /init, inittab and the scenarios
/// use before or besides `busybox --install -s`, which links the rest.
const APPLETS: [&str; 16] = [
    "bin/sh",
    "bin/cat",
    "bin/echo",
    "bin/grep",
    "bin/mount",
    "bin/umount",
    "bin/sleep",
    "bin/uname",
    "bin/dmesg",
    "bin/cttyhack",
    "sbin/init",
    "sbin/insmod",
    "sbin/poweroff",
    "sbin/reboot",
    "usr/bin/nproc",
    "usr/bin/setsid",
];

const DIRECTORIES: [&str; 13] = [
    "bin",
    "sbin",
    "usr",
    "usr/bin",
    "usr/sbin",
    "dev",
    "proc",
    "sys",
    "etc",
    "lib",
    "lib/modules",
    "root",
    "tmp",
];

/// The uncompressed archive from `dir`'s busybox and modules.
fn archive(dir: &Path) -> Result<Vec<u8>> {
    let read =
        |path: PathBuf| std::fs::read(&path).with_context(|| format!("reading {}", path.display()));
    let mut archive = Archive::new();
    for directory in DIRECTORIES {
        let permissions = if directory == "tmp" { 0o1777 } else { 0o755 };
        archive.directory(directory, permissions);
    }
    // The kernel opens /dev/console for init before /init mounts devtmpfs.
    archive.char_device("dev/console", 0o600, 5, 1);
    archive.file("bin/busybox", 0o755, &read(dir.join("busybox"))?);
    for applet in APPLETS {
        archive.symlink(applet, "/bin/busybox");
    }
    archive.file("init", 0o755, INIT.as_bytes());
    archive.file("etc/inittab", 0o644, INITTAB.as_bytes());
    archive.file("etc/profile", 0o644, PROFILE.as_bytes());
    let modules = dir.join("modules");
    let order = std::fs::read_to_string(modules.join("load-order"))?;
    for name in order.lines().filter(|l| !l.is_empty()) {
        archive.file(
            &format!("lib/modules/{name}.ko"),
            0o644,
            &read(modules.join(format!("{name}.ko")))?,
        );
    }
    archive.file("lib/modules/load-order", 0o644, order.as_bytes());
    Ok(archive.finish())
}

/// Writes `dir/initramfs.cpio.gz` unless it already holds exactly this
/// content (a stamp records the uncompressed archive's sha256).
pub fn ensure(dir: &Path) -> Result<PathBuf> {
    let started = Instant::now();
    let path = dir.join(super::INITRAMFS_FILE);
    let stamp = dir.join("initramfs.cpio.sha256");
    let cpio = archive(dir)?;
    let digest: String = Sha256::digest(&cpio)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if path.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == digest) {
        return Ok(path);
    }
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&cpio)?;
    let compressed = encoder.finish()?;
    std::fs::write(&path, &compressed)?;
    std::fs::write(&stamp, format!("{digest}\n"))?;
    println!(
        "linux: {} ({:.1} MiB, {:.1} MiB unpacked) built in {:.2} s",
        path.display(),
        compressed.len() as f64 / f64::from(1 << 20),
        cpio.len() as f64 / f64::from(1 << 20),
        started.elapsed().as_secs_f64()
    );
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_line_comes_from_the_console_shell() {
        assert!(
            PROFILE.contains(tessera_scenarios::linux::READY),
            "the profile prints the line the scenarios wait for"
        );
    }

    #[test]
    fn every_applet_the_scripts_start_by_path_is_linked() {
        for path in [
            "/bin/cttyhack",
            "/bin/sh",
            "/sbin/init",
            "/sbin/reboot",
            "/bin/echo",
        ] {
            assert!(
                APPLETS.contains(&&path[1..]),
                "{path} is used by /init or /etc/inittab but not linked"
            );
        }
        for applet in APPLETS {
            let parent = applet.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            assert!(
                DIRECTORIES.contains(&parent),
                "{applet}: its directory comes first"
            );
        }
    }
}
