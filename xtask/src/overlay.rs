//! Partition overlays on the host: compiled with dtc, merged into a board
//! DTB with fdtoverlay (Debian's U-Boot for QEMU has no `fdt apply`), and
//! the modules they name found on disk.

#![deny(clippy::arithmetic_side_effects)]

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hyp_core::config::binding::MODULE_COMPATIBLE;
use hyp_core::dt::Fdt;

use crate::linux;
use crate::workspace::command;
use crate::workspace::{output_dir, root, run_quiet};

/// The configuration `cargo xtask run` boots when given none: Linux
/// beside the test guest.
pub const DEFAULT_OVERLAY: &str = tessera_scenarios::linux::OVERLAY;

/// A module the overlay names: where it goes and which file it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The node's path in the merged tree (`/hypervisor/a/module@49000000`).
    pub node: String,
    pub address: u64,
    pub file: PathBuf,
}

impl Module {
    pub fn size(&self) -> Result<u64> {
        Ok(std::fs::metadata(&self.file)
            .with_context(|| format!("{}: {}", self.node, self.file.display()))?
            .len())
    }
}

/// A board DTB with an overlay applied.
#[derive(Debug, Clone)]
pub struct Merged {
    /// The merged tree, module sizes still as the overlay gives them.
    pub dtb: PathBuf,
    /// The overlay, compiled.
    pub overlay: PathBuf,
    pub modules: Vec<Module>,
}

/// Directories where `tessera,file` names are looked up: the overlay's own
/// directory, then the test guests xtask builds, then the Linux demo's
/// kernel and initramfs (`target/linux`).
fn search_path(overlay: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    if let Some(dir) = overlay.parent() {
        dirs.push(dir.to_path_buf());
    }
    dirs.push(output_dir("guests")?);
    dirs.push(linux::dir());
    Ok(dirs)
}

/// Compiles `overlay` (a `.dts` source, or a `.dtbo` as is).
pub fn compile(name: &str, overlay: &Path) -> Result<PathBuf> {
    if overlay.extension().is_some_and(|e| e == "dtbo") {
        return Ok(overlay.to_path_buf());
    }
    let out = output_dir("overlays")?.join(format!("{name}.dtbo"));
    run_quiet(
        command("dtc")
            .args(["-q", "-@", "-I", "dts", "-O", "dtb", "-o"])
            .arg(&out)
            .arg(overlay),
    )
    .with_context(|| format!("compiling {}", overlay.display()))?;
    Ok(out)
}

/// Merges `overlay` into `board` as `target/tessera/overlays/<name>.dtb`.
pub fn merge(name: &str, board: &Path, overlay: &Path) -> Result<Merged> {
    let overlay = if overlay.is_relative() && !overlay.exists() {
        root().join(overlay)
    } else {
        overlay.to_path_buf()
    };
    let compiled = compile(name, &overlay)?;
    let dtb = output_dir("overlays")?.join(format!("{name}.dtb"));
    run_quiet(
        command("fdtoverlay")
            .arg("-i")
            .arg(board)
            .arg("-o")
            .arg(&dtb)
            .arg(&compiled),
    )
    .with_context(|| format!("applying {} to {}", overlay.display(), board.display()))?;
    let modules = modules(&dtb, &search_path(&overlay)?)?;
    Ok(Merged {
        dtb,
        overlay: compiled,
        modules,
    })
}

/// Two modules whose bytes would overlap once loaded (the bootloader would
/// silently load one over the other), as `(node, node)`.
pub fn overlapping(modules: &[Module]) -> Result<Option<(String, String)>> {
    let mut ranges = Vec::new();
    for module in modules {
        let size = module.size()?;
        let Some(end) = module.address.checked_add(size) else {
            bail!(
                "{}: {} ({size} bytes) at {:#x} would end past the 64-bit address space",
                module.node,
                module.file.display(),
                module.address
            );
        };
        ranges.push((module.address, end, &module.node));
    }
    ranges.sort();
    Ok(ranges
        .windows(2)
        .find(|pair| pair[1].0 < pair[0].1)
        .map(|pair| (pair[0].2.clone(), pair[1].2.clone())))
}

/// Every `multiboot,module` node of the tree in `dtb`, with its file.
fn modules(dtb: &Path, search: &[PathBuf]) -> Result<Vec<Module>> {
    let blob = std::fs::read(dtb)?;
    let fdt = Fdt::new(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", dtb.display()))?;
    let mut modules = Vec::new();
    let mut linux_ready = false;
    for node in fdt
        .nodes()
        .filter(|n| n.is_compatible(&[MODULE_COMPATIBLE]))
    {
        let path = node.path().to_string();
        let address = node
            .property("reg")
            .filter(|p| p.value.len() == 16)
            .and_then(|p| p.cells())
            .and_then(|mut c| c.read(2))
            .with_context(|| format!("{path}: reg is not <address size> in 2 + 2 cells"))?;
        let Some(name) = node.property("tessera,file").and_then(|p| p.as_str()) else {
            bail!("{path}: no tessera,file: the host tools do not know which file to load");
        };
        if linux::provides(name) && !linux_ready {
            // Fetched and built on first use, refreshed if stale.
            linux::ensure().with_context(|| format!("{path}: making {name}"))?;
            linux_ready = true;
        }
        let file = search
            .iter()
            .map(|dir| dir.join(name))
            .find(|f| f.exists())
            .with_context(|| {
                format!(
                    "{path}: tessera,file \"{name}\" is in none of {}",
                    search
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        modules.push(Module {
            node: path,
            address,
            file,
        });
    }
    Ok(modules)
}

/// `reg = <0 address 0 size>` as fdtput's hex cells.
fn reg_cells(address: u64, size: u64) -> [String; 4] {
    [
        address >> 32,
        address & 0xffff_ffff,
        size >> 32,
        size & 0xffff_ffff,
    ]
    .map(|c| format!("{c:x}"))
}

/// Writes each module's file size into its `reg`, as the generated boot.scr
/// does on a board with `${filesize}`.
pub fn write_sizes(dtb: &Path, modules: &[Module]) -> Result<()> {
    if let Some((a, b)) = overlapping(modules)? {
        bail!("{a} and {b}: the files overlap at their load addresses; move one module");
    }
    write_module_sizes(dtb, modules)
}

/// [`write_sizes`] even for modules that overlap: for `check-config`, whose
/// report (Tessera's own) names both modules and both partitions.
pub fn write_module_sizes(dtb: &Path, modules: &[Module]) -> Result<()> {
    for module in modules {
        run_quiet(
            command("fdtput")
                .args(["-t", "x"])
                .arg(dtb)
                .args([module.node.as_str(), "reg"])
                .args(reg_cells(module.address, module.size()?)),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_that_would_load_over_each_other_are_found() {
        let dir = std::env::temp_dir().join(format!("tessera-overlap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("eight-bytes");
        std::fs::write(&file, [0u8; 8]).unwrap();
        let module = |node: &str, address| Module {
            node: node.into(),
            address,
            file: file.clone(),
        };
        let apart = [module("/a", 0x1000), module("/b", 0x1008)];
        let touching = overlapping(&apart).unwrap();
        let over = [module("/a", 0x1000), module("/b", 0x1007)];
        let found = overlapping(&over).unwrap();
        let wrapping = [module("/top", u64::MAX - 3)];
        let past_the_end = overlapping(&wrapping).unwrap_err().to_string();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(touching, None, "adjacent modules do not overlap");
        assert_eq!(found, Some(("/a".into(), "/b".into())));
        assert!(
            past_the_end.contains("/top: ")
                && past_the_end.contains("(8 bytes) at 0xfffffffffffffffc would end past"),
            "{past_the_end}"
        );
    }

    #[test]
    fn reg_cells_split_64_bit_values() {
        assert_eq!(
            reg_cells(0x1_4900_0000, 0x1234),
            ["1", "49000000", "0", "1234"]
        );
    }
}
