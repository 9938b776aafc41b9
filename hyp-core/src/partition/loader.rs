//! Putting a fresh copy of a partition's images into its RAM: scrubbed
//! RAM, the kernel, the ramdisk and the guest DTB, cleaned to the point of
//! coherency because the guest starts with its MMU and caches off.

use core::fmt;

use crate::arch::cpu;
use crate::config::PartitionPlan;
use crate::config::guest_map::GUEST_DTB_MAX_SIZE;
use crate::entropy;
use crate::guest::device_tree::{self, BootInfo};
use crate::hw::gic::GicVersion;
use crate::mm::address::{PhysRange, to_usize};

#[derive(Debug)]
pub enum LoadError {
    DeviceTree(vm_fdt::Error),
    DeviceTreeTooLarge(usize),
    OutsideRam(&'static str),
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::DeviceTree(error) => write!(f, "cannot write its device tree: {error:?}"),
            LoadError::DeviceTreeTooLarge(size) => {
                write!(
                    f,
                    "its device tree ({size} bytes) exceeds {GUEST_DTB_MAX_SIZE} bytes"
                )
            }
            LoadError::OutsideRam(what) => write!(f, "its {what} does not fit its RAM"),
        }
    }
}

/// Copies `source` (a module the bootloader loaded) to guest address `ipa`
/// and cleans it to the point of coherency.
fn copy_module(
    ram: &mut [u8],
    plan: &PartitionPlan<'_>,
    ipa: u64,
    source: PhysRange,
    what: &'static str,
) -> Result<(), LoadError> {
    let offset = to_usize(ipa - plan.layout.ram_base);
    let length = to_usize(source.size());
    let target = ram
        .get_mut(offset..offset + length)
        .ok_or(LoadError::OutsideRam(what))?;
    // SAFETY: the module lies in RAM (checked by the configuration), is
    // reserved, so nothing else writes it, and is mapped by the EL2 map.
    let source =
        unsafe { core::slice::from_raw_parts(source.start().as_usize() as *const u8, length) };
    target.copy_from_slice(source);
    platform::cpu::cache::clean_and_invalidate(target.as_ptr() as usize, target.len());
    Ok(())
}

/// How long a load took, in counter ticks: the scrub of the partition's
/// RAM and the rest (its device tree written, its images copied).
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub scrub_ticks: u64,
    pub copy_ticks: u64,
}

/// The seeds of `plan`'s partition for boot `boot_count`, if Tessera has a key.
fn seeds(plan: &PartitionPlan<'_>, boot_count: u32) -> Option<entropy::Seeds> {
    let (_, key) = entropy::key()?;
    let partition = u32::from(plan.vmid);
    let fresh = cpu::random().unwrap_or(0);
    Some(entropy::seeds(
        key,
        partition,
        boot_count,
        cpu::counter(),
        fresh,
    ))
}

/// Loads `plan`'s images for its `boot_count`-th boot.
pub fn load(
    plan: &PartitionPlan<'_>,
    boot_count: u32,
    gic: GicVersion,
) -> Result<Loaded, LoadError> {
    let started = cpu::counter();
    let layout = &plan.layout;
    let dtb = device_tree::write(
        plan,
        BootInfo {
            boot_count,
            gic,
            seeds: seeds(plan, boot_count),
        },
    )
    .map_err(LoadError::DeviceTree)?;
    if dtb.len() > GUEST_DTB_MAX_SIZE {
        return Err(LoadError::DeviceTreeTooLarge(dtb.len()));
    }
    // SAFETY: the partition's RAM is mapped read-write at EL2, belongs to
    // this partition alone (the configuration checks it against everything
    // else), and none of its vCPUs runs while it is loaded.
    let ram = unsafe {
        core::slice::from_raw_parts_mut(
            plan.ram.start().as_usize() as *mut u8,
            to_usize(plan.ram.size()),
        )
    };
    let scrub_started = cpu::counter();
    platform::cpu::cache::zero_to_poc(ram);
    let scrubbed = cpu::counter();
    if let Some(kernel) = plan.config.kernel {
        copy_module(ram, plan, layout.kernel, kernel.range, "kernel")?;
    }
    if let (Some(ramdisk), Some((ipa, _))) = (plan.config.ramdisk, layout.ramdisk) {
        copy_module(ram, plan, ipa, ramdisk.range, "ramdisk")?;
    }
    let offset = to_usize(layout.dtb - layout.ram_base);
    let dtb_target = ram
        .get_mut(offset..offset + dtb.len())
        .ok_or(LoadError::OutsideRam("device tree"))?;
    dtb_target.copy_from_slice(&dtb);
    // The guest starts with caches off and reads memory: everything written
    // here must be there (the zeroing and each copy were cleaned), and no
    // stale instruction may be cached. Clean and invalidate, not just
    // clean: no line of Tessera's may be hit once the guest, having written
    // memory with its caches off, turns them on.
    platform::cpu::cache::clean_and_invalidate(dtb_target.as_ptr() as usize, dtb_target.len());
    platform::cpu::cache::invalidate_instruction_cache_all_cpus();
    let scrub_ticks = scrubbed.saturating_sub(scrub_started);
    Ok(Loaded {
        scrub_ticks,
        copy_ticks: cpu::counter()
            .saturating_sub(started)
            .saturating_sub(scrub_ticks),
    })
}
