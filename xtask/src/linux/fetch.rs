//! Fetching Debian's arm64 kernel and busybox with apt's multi-arch
//! download: apt runs with a private state directory, sources list and
//! empty dpkg status, so nothing is installed on (or changed in) the host's
//! package set. The `.deb`s are unpacked with `dpkg -x`, and only what the
//! demo needs is kept.
//!
//! The kernel is resolved through the `linux-image-arm64` metapackage, so
//! nothing here names a version that ages out of the archive.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use object::Object;
use sha2::{Digest, Sha256};

use super::modules;
use crate::workspace::run_quiet;

const MIRROR: &str = "http://deb.debian.org/debian";
/// The archive key apt checks the mirror's Release files with.
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";
/// bookworm has busybox-static; bookworm-backports has the kernel.
const SUITES: [&str; 2] = ["bookworm", "bookworm-backports"];
/// Where the kernel comes from. bookworm-backports carries trixie's 6.12
/// LTS kernel; bookworm itself has 6.1. Both ship an uncompressed arm64
/// `Image` as `/boot/vmlinuz-*` (checked: "ARMd" at 0x38), so either
/// loads as is. 6.12 is chosen because it is the kernel that also knows
/// the Raspberry Pi 5 (BCM2712, whose DTB only 6.12 ships), one of
/// Tessera's boards, so one guest kernel serves QEMU and the boards; and
/// it is the LTS line Debian maintains longest. Its modules are
/// xz-compressed, which [`modules::read`] undoes.
const KERNEL_SUITE: &str = "bookworm-backports";
const KERNEL_METAPACKAGE: &str = "linux-image-arm64";
const BUSYBOX_PACKAGE: &str = "busybox-static";

/// One kernel configuration symbol the demo relies on.
#[derive(Debug, Clone, Copy)]
pub struct Driver {
    pub config: &'static str,
    /// The module that provides it when it is `=m` (empty: it cannot be a module).
    pub module: &'static str,
    pub why: &'static str,
}

/// What the guest needs built in: the console, the interrupt controllers,
/// the timer and the initramfs itself cannot come from a module in it.
pub const BUILT_IN: [Driver; 8] = [
    Driver {
        config: "CONFIG_SERIAL_AMBA_PL011",
        module: "",
        why: "the console: Tessera's emulated PL011",
    },
    Driver {
        config: "CONFIG_SERIAL_AMBA_PL011_CONSOLE",
        module: "",
        why: "console=ttyAMA0",
    },
    Driver {
        config: "CONFIG_ARM_GIC_V3",
        module: "",
        why: "the GICv3 the vGIC presents",
    },
    Driver {
        config: "CONFIG_ARM_GIC",
        module: "",
        why: "the GICv2 the vGIC presents",
    },
    Driver {
        config: "CONFIG_ARM_ARCH_TIMER",
        module: "",
        why: "the architected (virtual) timer",
    },
    Driver {
        config: "CONFIG_BLK_DEV_INITRD",
        module: "",
        why: "the initramfs",
    },
    Driver {
        config: "CONFIG_RD_GZIP",
        module: "",
        why: "the gzip-compressed initramfs",
    },
    Driver {
        config: "CONFIG_DEVTMPFS",
        module: "",
        why: "/dev, mounted by /init",
    },
];

/// Drivers a partition may get devices for (passthrough, virtio): put in
/// the initramfs as modules and loaded by /init where the kernel has them
/// as `=m`. The NLS and CRC32C modules are what mounting vfat and ext4
/// asks for at run time (FAT_DEFAULT_CODEPAGE 437 with FAT_DEFAULT_UTF8,
/// and ext4's `softdep=pre: crypto-crc32c`), which `.modinfo` does not
/// list as dependencies.
pub const OPTIONAL: [Driver; 9] = [
    Driver {
        config: "CONFIG_RTC_DRV_PL031",
        module: "rtc-pl031",
        why: "the PL031 RTC",
    },
    Driver {
        config: "CONFIG_VIRTIO_MMIO",
        module: "virtio_mmio",
        why: "virtio-mmio transports",
    },
    Driver {
        config: "CONFIG_VIRTIO_BLK",
        module: "virtio_blk",
        why: "virtio block devices",
    },
    Driver {
        config: "CONFIG_EXT4_FS",
        module: "ext4",
        why: "ext4 file systems",
    },
    Driver {
        config: "CONFIG_VFAT_FS",
        module: "vfat",
        why: "FAT file systems",
    },
    Driver {
        config: "CONFIG_NLS_CODEPAGE_437",
        module: "nls_cp437",
        why: "vfat's default code page",
    },
    Driver {
        config: "CONFIG_NLS_UTF8",
        module: "nls_utf8",
        why: "vfat's default character set",
    },
    Driver {
        config: "CONFIG_NLS_ASCII",
        module: "nls_ascii",
        why: "FAT_DEFAULT_IOCHARSET",
    },
    Driver {
        config: "CONFIG_CRYPTO_CRC32C",
        module: "crc32c_generic",
        why: "ext4's metadata checksums",
    },
];

/// apt with a private state under `target/linux/apt`.
struct Apt {
    dir: PathBuf,
}

impl Apt {
    fn prepare(dir: &Path) -> Result<Apt> {
        let apt = Apt {
            dir: dir.to_path_buf(),
        };
        for sub in ["lists/partial", "cache/archives/partial", "sources.list.d"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let mut sources = String::new();
        for suite in SUITES {
            writeln!(
                sources,
                "deb [arch=arm64 signed-by={KEYRING}] {MIRROR} {suite} main"
            )?;
        }
        std::fs::write(dir.join("sources.list"), sources)?;
        // An empty dpkg status: apt resolves as for a machine with nothing
        // installed, whatever the host has.
        std::fs::write(dir.join("status"), "")?;
        Ok(apt)
    }

    fn options(&self) -> Vec<String> {
        let dir = |sub: &str| self.dir.join(sub).display().to_string();
        vec![
            "-oAPT::Architecture=arm64".into(),
            "-oAPT::Architectures=arm64".into(),
            format!("-oAPT::Default-Release={KERNEL_SUITE}"),
            format!("-oDir::State::Lists={}", dir("lists")),
            format!("-oDir::State::status={}", dir("status")),
            format!("-oDir::Etc::SourceList={}", dir("sources.list")),
            format!("-oDir::Etc::SourceParts={}", dir("sources.list.d")),
            format!("-oDir::Cache={}", dir("cache")),
            "-oAcquire::Languages=none".into(),
            // As root, apt would hand downloads to the `_apt` user, which
            // cannot write into a build directory.
            "-oAPT::Sandbox::User=root".into(),
            "-q".into(),
        ]
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.args(self.options());
        command
    }
}

/// A downloaded package.
#[derive(Debug, Clone)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub file: PathBuf,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The concrete kernel package the metapackage's candidate depends on:
/// `(name, version)` from `Depends: linux-image-X-arm64 (= V)`.
fn parse_kernel_dependency(show: &str) -> Option<(String, String)> {
    let depends = show.lines().find_map(|l| l.strip_prefix("Depends: "))?;
    depends.split(',').map(str::trim).find_map(|dependency| {
        let (name, rest) = dependency.split_once(' ')?;
        let version = rest.trim().strip_prefix("(= ")?.strip_suffix(')')?;
        (name.starts_with("linux-image-") && name != KERNEL_METAPACKAGE)
            .then(|| (name.to_owned(), version.to_owned()))
    })
}

fn download(apt: &Apt, debs: &Path, name: &str, version: &str) -> Result<Package> {
    let spec = format!("{name}={version}");
    run_quiet(
        apt.command("apt-get")
            .arg("download")
            .arg(&spec)
            .current_dir(debs),
    )
    .with_context(|| format!("apt-get download {spec}"))?;
    // apt names the file name_version_arch.deb with ':' escaped as %3a.
    let file = debs.join(format!("{name}_{}_arm64.deb", version.replace(':', "%3a")));
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    Ok(Package {
        name: name.to_owned(),
        version: version.to_owned(),
        sha256: hex(&Sha256::digest(&bytes)),
        file,
    })
}

fn candidate_version(apt: &Apt, name: &str) -> Result<String> {
    let show = run_quiet(
        apt.command("apt-cache")
            .args(["show", "--no-all-versions", name]),
    )?;
    show.lines()
        .find_map(|l| l.strip_prefix("Version: "))
        .map(str::to_owned)
        .with_context(|| format!("apt-cache show {name}: no Version"))
}

/// The one file in `dir` whose name starts with `prefix`.
fn one_file(dir: &Path, prefix: &str) -> Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    ensure!(
        found.len() == 1,
        "expected one {prefix}* in {}, found {}",
        dir.display(),
        found.len()
    );
    Ok(found.remove(0))
}

/// An arm64 `Image` from the package's vmlinuz: as is, or gunzipped if a
/// future package compresses it.
pub fn image_from_vmlinuz(bytes: Vec<u8>) -> Result<Vec<u8>> {
    let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(bytes.as_slice()),
            &mut plain,
        )
        .context("gunzip of vmlinuz")?;
        plain
    } else {
        bytes
    };
    ensure!(
        bytes.get(4..8) != Some(b"zimg"),
        "vmlinuz is an EFI zboot image, which Tessera's loader cannot start: it needs an arm64 Image"
    );
    ensure!(
        bytes.get(0x38..0x3c) == Some(b"ARMd"),
        "vmlinuz is not an arm64 Image (no \"ARMd\" at 0x38)"
    );
    Ok(bytes)
}

/// `CONFIG_X=value` lines of a kernel config.
fn config_value<'a>(config: &'a str, symbol: &str) -> Option<&'a str> {
    config
        .lines()
        .find_map(|l| l.strip_prefix(symbol)?.strip_prefix('='))
}

/// How each driver is provided, for the manifest.
#[derive(Debug, Default)]
pub struct DriverReport {
    pub built_in: Vec<&'static str>,
    pub modules: Vec<&'static str>,
    pub missing: Vec<&'static str>,
    /// Module names in load order (dependencies first).
    pub load_order: Vec<String>,
}

fn drivers(config: &str) -> Result<DriverReport> {
    let mut report = DriverReport::default();
    for driver in BUILT_IN {
        match config_value(config, driver.config) {
            Some("y") => report.built_in.push(driver.config),
            other => bail!(
                "the kernel has {}={} but the demo needs it built in ({})",
                driver.config,
                other.unwrap_or("(not set)"),
                driver.why
            ),
        }
    }
    for driver in OPTIONAL {
        match config_value(config, driver.config) {
            Some("y") => report.built_in.push(driver.config),
            Some("m") => report.modules.push(driver.config),
            _ => report.missing.push(driver.config),
        }
    }
    Ok(report)
}

/// Downloads and unpacks everything into `dir` (`target/linux`); the
/// manifest is written last, so its presence means the fetch completed.
pub fn fetch(dir: &Path) -> Result<()> {
    let started = Instant::now();
    ensure!(
        Path::new(KEYRING).is_file(),
        "{KEYRING} is missing: install debian-archive-keyring (cargo xtask setup does, as root)"
    );
    let apt = Apt::prepare(&dir.join("apt"))?;
    println!(
        "linux: apt-get update (arm64 indexes of {} from {MIRROR}, private to target/linux/apt)",
        SUITES.join(", ")
    );
    run_quiet(apt.command("apt-get").arg("update")).context("apt-get update (arm64)")?;

    let show = run_quiet(apt.command("apt-cache").args([
        "show",
        "--no-all-versions",
        KERNEL_METAPACKAGE,
    ]))?;
    let (kernel_name, kernel_version) = parse_kernel_dependency(&show).with_context(|| {
        format!("{KERNEL_METAPACKAGE} in {KERNEL_SUITE} depends on no linux-image package:\n{show}")
    })?;
    let busybox_version = candidate_version(&apt, BUSYBOX_PACKAGE)?;

    let debs = dir.join("debs");
    let _ = std::fs::remove_dir_all(&debs);
    std::fs::create_dir_all(&debs)?;
    println!(
        "linux: apt-get download {kernel_name}={kernel_version} {BUSYBOX_PACKAGE}={busybox_version}"
    );
    let kernel = download(&apt, &debs, &kernel_name, &kernel_version)?;
    let busybox = download(&apt, &debs, BUSYBOX_PACKAGE, &busybox_version)?;
    let downloaded = started.elapsed();

    let unpacked = dir.join("unpacked");
    let _ = std::fs::remove_dir_all(&unpacked);
    for package in [&kernel, &busybox] {
        run_quiet(
            Command::new("dpkg")
                .arg("-x")
                .arg(&package.file)
                .arg(&unpacked),
        )
        .with_context(|| format!("dpkg -x {}", package.file.display()))?;
    }

    let boot = unpacked.join("boot");
    let vmlinuz = one_file(&boot, "vmlinuz-")?;
    let release = vmlinuz
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_prefix("vmlinuz-"))
        .unwrap_or_default()
        .to_owned();
    let image = image_from_vmlinuz(std::fs::read(&vmlinuz)?)
        .with_context(|| format!("{}", vmlinuz.display()))?;
    let config = std::fs::read_to_string(one_file(&boot, "config-")?)?;
    let mut report = drivers(&config)?;

    let busybox_binary = std::fs::read(unpacked.join("bin/busybox"))?;
    let elf = object::File::parse(busybox_binary.as_slice()).context("bin/busybox")?;
    ensure!(
        elf.architecture() == object::Architecture::Aarch64,
        "bin/busybox of {BUSYBOX_PACKAGE} is not an arm64 binary"
    );
    ensure!(
        elf.section_by_name(".interp").is_none(),
        "bin/busybox of {BUSYBOX_PACKAGE} is dynamically linked"
    );

    // Modules: the wanted ones and their dependencies, decompressed.
    let module_dir = unpacked.join("lib/modules").join(&release);
    let index = modules::index(&module_dir)?;
    let wanted: Vec<String> = OPTIONAL
        .iter()
        .filter(|d| report.modules.contains(&d.config))
        .map(|d| d.module.to_owned())
        .collect();
    let mut elves = std::collections::HashMap::new();
    report.load_order = modules::load_order(&wanted, |name| {
        let path = index
            .get(name)
            .with_context(|| format!("no {name}.ko* under {}", module_dir.display()))?;
        let elf = modules::read(path)?;
        let depends = modules::depends(&elf).with_context(|| format!("{}", path.display()))?;
        elves.insert(name.to_owned(), elf);
        Ok(depends)
    })?;
    let out_modules = dir.join("modules");
    let _ = std::fs::remove_dir_all(&out_modules);
    std::fs::create_dir_all(&out_modules)?;
    for name in &report.load_order {
        if let Some(elf) = elves.get(name) {
            std::fs::write(out_modules.join(format!("{name}.ko")), elf)?;
        }
    }
    std::fs::write(
        out_modules.join("load-order"),
        report.load_order.join("\n") + "\n",
    )?;

    std::fs::write(dir.join(super::KERNEL_FILE), &image)?;
    std::fs::write(dir.join("config"), &config)?;
    std::fs::write(dir.join("busybox"), &busybox_binary)?;
    std::fs::remove_dir_all(&unpacked)?;

    let manifest = manifest(&[&kernel, &busybox], &release, &image, &report);
    std::fs::write(dir.join(super::MANIFEST_FILE), &manifest)?;
    println!(
        "linux: fetched in {:.1} s (download {:.1} s)",
        started.elapsed().as_secs_f64(),
        downloaded.as_secs_f64()
    );
    Ok(())
}

fn manifest(packages: &[&Package], release: &str, image: &[u8], report: &DriverReport) -> String {
    let image_size = image
        .get(16..24)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# What `cargo xtask setup` fetched (xtask/src/linux). Delete target/linux to fetch again."
    );
    let _ = writeln!(text, "source: {MIRROR} {} (arm64)", SUITES.join(" "));
    for package in packages {
        let _ = writeln!(
            text,
            "package: {} {} sha256:{}",
            package.name, package.version, package.sha256
        );
    }
    let _ = writeln!(
        text,
        "kernel: {release}: Image {} bytes, image_size {:#x} (with BSS)",
        image.len(),
        image_size
    );
    let _ = writeln!(text, "built-in: {}", report.built_in.join(" "));
    let _ = writeln!(text, "modules: {}", report.modules.join(" "));
    if !report.missing.is_empty() {
        let _ = writeln!(text, "not in this kernel: {}", report.missing.join(" "));
    }
    let _ = writeln!(text, "insmod order: {}", report.load_order.join(" "));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metapackage_names_the_concrete_kernel() {
        let show = "Package: linux-image-arm64\nVersion: 6.12.95-1~bpo12+1\n\
                    Depends: linux-image-6.12.95+deb12-arm64 (= 6.12.95-1~bpo12+1)\n";
        assert_eq!(
            parse_kernel_dependency(show),
            Some((
                "linux-image-6.12.95+deb12-arm64".to_owned(),
                "6.12.95-1~bpo12+1".to_owned()
            ))
        );
        assert_eq!(parse_kernel_dependency("Depends: libc6 (>= 2.34)\n"), None);
    }

    #[test]
    fn config_values_match_whole_symbols() {
        let config =
            "CONFIG_ARM_GIC_V3=y\nCONFIG_ARM_GIC=y\n# CONFIG_FOO is not set\nCONFIG_EXT4_FS=m\n";
        assert_eq!(config_value(config, "CONFIG_ARM_GIC"), Some("y"));
        assert_eq!(config_value(config, "CONFIG_EXT4_FS"), Some("m"));
        assert_eq!(config_value(config, "CONFIG_FOO"), None);
    }

    #[test]
    fn a_kernel_without_a_required_driver_is_refused_by_name() {
        let error = drivers("CONFIG_SERIAL_AMBA_PL011=m\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("CONFIG_SERIAL_AMBA_PL011=m") && error.contains("built in"),
            "{error}"
        );
    }

    #[test]
    fn vmlinuz_must_be_an_arm64_image() {
        let mut image = vec![0u8; 0x40];
        image[0x38..0x3c].copy_from_slice(b"ARMd");
        assert_eq!(image_from_vmlinuz(image.clone()).unwrap(), image);
        let mut gzipped = Vec::new();
        {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(&mut gzipped, flate2::Compression::fast());
            encoder.write_all(&image).unwrap();
            encoder.finish().unwrap();
        }
        assert_eq!(
            image_from_vmlinuz(gzipped).unwrap(),
            image,
            "a gzipped Image is unpacked"
        );
        assert!(image_from_vmlinuz(vec![0u8; 0x40]).is_err());
    }
}
