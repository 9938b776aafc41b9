//! `cargo xtask check-config`: the partition configuration checked on the
//! host with the code Tessera runs at boot, against the addresses the
//! generated boot.scr uses, so mistakes show before anything is flashed.

#![deny(clippy::arithmetic_side_effects)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use hyp_core::config::{self, ModuleContents, image::HEADER_SIZE};
use hyp_core::dt::Fdt;
use hyp_core::hw;
use hyp_core::mm::address::{ByteSize, PhysAddr, PhysRange};
use hyp_core::mm::hyp_memory;

use crate::build::{self, Board, Profile};
use crate::uboot::{DTB_LOAD, TESSERA_LOAD};
use crate::{overlay, overlay_scope};

/// Offset of `image_size` in the arm64 Image header (booting.rst).
const IMAGE_SIZE_OFFSET: usize = 16;

/// Where the bootloader puts Tessera and the DTB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadAddresses {
    pub tessera: u64,
    pub dtb: u64,
}

impl Default for LoadAddresses {
    /// The addresses of the boot.scr xtask generates.
    fn default() -> Self {
        LoadAddresses {
            tessera: TESSERA_LOAD,
            dtb: DTB_LOAD,
        }
    }
}

/// Module headers read from the files the overlay names.
struct Files(HashMap<u64, PathBuf>);

impl ModuleContents for Files {
    fn header(&self, module: &config::Module<'_>) -> Option<[u8; HEADER_SIZE]> {
        let bytes = std::fs::read(self.0.get(&module.range.start().0)?).ok()?;
        bytes.get(..HEADER_SIZE)?.try_into().ok()
    }
}

/// Tessera's memory footprint (load address to the end of BSS and stacks),
/// from the `image_size` of the Image header.
fn image_size(image: &Path) -> Result<u64> {
    let bytes = std::fs::read(image)?;
    let field = bytes
        .get(IMAGE_SIZE_OFFSET..IMAGE_SIZE_OFFSET + 8)
        .context("the Image is shorter than its header")?;
    Ok(u64::from_le_bytes(field.try_into()?))
}

/// Checks `overlay` applied to `board`; prints the partitions, or every error.
pub fn check(board: &Path, overlay_file: &Path, addresses: LoadAddresses) -> Result<ExitCode> {
    let merged = overlay::merge("check-config", board, overlay_file)?;
    overlay::write_module_sizes(&merged.dtb, &merged.modules)?;
    let artifacts = build::hypervisor(Board::QemuVirt, Profile::Release)?;
    let image = PhysRange::new(PhysAddr(addresses.tessera), image_size(&artifacts.image)?)
        .context("Tessera's image size is 0")?;

    let blob = std::fs::read(&merged.dtb)?;
    let fdt = Fdt::new(&blob).map_err(|e| anyhow!("{}: {e}", merged.dtb.display()))?;
    let boot_mpidr = u64::from(fdt.boot_cpuid());
    let dtb = PhysRange::new(PhysAddr(addresses.dtb), blob.len() as u64);
    let mut hardware = match hw::discover(&fdt, boot_mpidr, dtb) {
        Ok(hardware) => hardware,
        Err(issues) => {
            println!(
                "{}: Tessera cannot run on this device tree:",
                board.display()
            );
            for issue in issues.iter() {
                println!("  {issue}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let heap = hyp_memory::reserve(&mut hardware.memory, image).map_err(|e| anyhow!("{e}"))?;
    println!(
        "Tessera at {image} (heap {heap}), DTB at {}",
        dtb.map_or_else(String::new, |d| d.to_string())
    );
    let files = Files(
        merged
            .modules
            .iter()
            .map(|m| (m.address, m.file.clone()))
            .collect(),
    );
    // What the overlay changed besides the partitions (host-only).
    let board_blob = std::fs::read(board)?;
    let board_fdt = Fdt::new(&board_blob).map_err(|e| anyhow!("{}: {e}", board.display()))?;
    let overlay_blob = std::fs::read(&merged.overlay)?;
    let overlay_fdt =
        Fdt::new(&overlay_blob).map_err(|e| anyhow!("{}: {e}", merged.overlay.display()))?;
    // The nodes given to partitions, as the merged tree names them.
    let given: Vec<String> = fdt
        .find_node(config::binding::HYPERVISOR_PATH)
        .into_iter()
        .flat_map(|hypervisor| hypervisor.children())
        .filter_map(|partition| partition.property("devices"))
        .flat_map(|devices| devices.strings())
        .filter_map(|path| fdt.find_node(path))
        .map(|node| node.path().to_string())
        .collect();
    let mut scope = overlay_scope::problems(&board_fdt, &fdt, &overlay_fdt, &given);
    let result = config::read(&fdt, &hardware, &files);
    // Tessera compares the modules of enabled partitions; the bootloader
    // loads every module, so one of a disabled partition (or a disabled
    // module) can still land on another.
    if result.is_ok()
        && let Some((a, b)) = overlay::overlapping(&merged.modules)?
    {
        scope.push(format!(
            "{a} and {b}: the files overlap at their load addresses (the bootloader loads \
             every module, enabled or not); move one module"
        ));
    }
    let result = match result {
        Ok(_) if !scope.is_empty() => Err(Vec::new()),
        result => result,
    };
    match result {
        Ok(plans) if plans.is_empty() => {
            println!(
                "no partitions: the tree has no /hypervisor node with compatible \"tessera,hypervisor\""
            );
            Ok(ExitCode::FAILURE)
        }
        Ok(plans) => {
            for plan in &plans {
                let cpus: Vec<String> = plan
                    .config
                    .cpus
                    .iter()
                    .filter_map(|&i| hardware.cpus.list.get(i))
                    .map(|c| c.node.path().to_string())
                    .collect();
                println!(
                    "partition {}: VMID {}, CPUs {}, RAM {} ({}) seen at {:#x}, kernel ({}) at {:#x}, DTB at {:#x}",
                    plan.config.name,
                    plan.vmid,
                    cpus.join(" "),
                    plan.ram,
                    ByteSize(plan.ram.size()),
                    plan.layout.ram_base,
                    plan.kernel_kind,
                    plan.layout.kernel,
                    plan.layout.dtb,
                );
                for device in &plan.config.devices {
                    let pages: Vec<String> = device.pages.iter().map(ToString::to_string).collect();
                    let spis: Vec<String> = device.spis().map(|s| s.to_string()).collect();
                    println!(
                        "  device {}: pages {} at the same guest addresses, SPIs (INTID) {}",
                        device.path,
                        pages.join(" "),
                        if spis.is_empty() {
                            "none".to_string()
                        } else {
                            spis.join(" ")
                        },
                    );
                }
            }
            // What the configuration cannot enforce or the guest's copy of
            // a device leaves out: valid, but its author should know.
            for note in plans
                .iter()
                .flat_map(|p| config::passthrough::notes(&p.config))
            {
                println!("note: {note}");
            }
            println!(
                "configuration OK: {}",
                config::Count(plans.len(), "partition")
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            // Tessera's own verdict first; then what only the host sees.
            let verdict = if errors.is_empty() {
                "Tessera's own checks pass, the host's do not"
            } else {
                "Tessera would start no partition"
            };
            println!(
                "{}: {}; {verdict}:",
                overlay_file.display(),
                config::Count(errors.len().saturating_add(scope.len()), "error")
            );
            for error in &errors {
                println!("  {error}");
            }
            for problem in &scope {
                println!("  {problem} (checked on the host only)");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}
