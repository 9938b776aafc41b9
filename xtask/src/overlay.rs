//! Partition overlays on the host: compiled with dtc, merged into a board
//! DTB with fdtoverlay (Debian's U-Boot for QEMU has no `fdt apply`), and
//! the modules they name found on disk.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hyp_core::config::binding::MODULE_COMPATIBLE;
use hyp_core::dt::Fdt;

use crate::setup::command;
use crate::workspace::{output_dir, root, run_quiet};

/// The configuration `cargo xtask run` boots when given none.
pub const DEFAULT_OVERLAY: &str = "dtb/overlays/qemu-virt-two-partitions.dts";

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
    pub modules: Vec<Module>,
}

/// Directories where `tessera,file` names are looked up: the overlay's own
/// directory, then the test guests xtask builds.
fn search_path(overlay: &Path) -> Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    if let Some(dir) = overlay.parent() {
        dirs.push(dir.to_path_buf());
    }
    dirs.push(output_dir("guests")?);
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
    Ok(Merged { dtb, modules })
}

/// Every `multiboot,module` node of the tree in `dtb`, with its file.
fn modules(dtb: &Path, search: &[PathBuf]) -> Result<Vec<Module>> {
    let blob = std::fs::read(dtb)?;
    let fdt = Fdt::new(&blob).map_err(|e| anyhow::anyhow!("{}: {e}", dtb.display()))?;
    let mut modules = Vec::new();
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
    fn reg_cells_split_64_bit_values() {
        assert_eq!(
            reg_cells(0x1_4900_0000, 0x1234),
            ["1", "49000000", "0", "1234"]
        );
    }
}
