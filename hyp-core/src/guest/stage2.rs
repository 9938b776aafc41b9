//! A partition's stage-2 translation: its RAM, on GICv2 the GIC's virtual
//! CPU interface, and its passthrough devices' pages at their host
//! addresses (IPA = PA). Emulated devices stay unmapped so every access
//! traps.

use crate::config::PartitionPlan;
use crate::config::guest_map::{GUEST_GICC_BASE, GUEST_GICC_SIZE};
use crate::mm::address::PhysAddr;
use crate::mm::page_table::{Attributes, MapError, PageTable};

/// Maps the partition's RAM at its guest address, in the largest blocks
/// the alignment allows (the builder picks 1 GiB and 2 MiB blocks), and
/// the GICv2 virtual CPU interface at `virtual_cpu_interface` (GICV) where
/// the guest expects its CPU interface, and every passthrough device page
/// at IPA = PA as Device-nGnRE, read-write, execute-never (validation has
/// kept these pages apart from the guest's RAM, its emulated devices,
/// other partitions' devices and Tessera's own).
pub fn map_partition(
    table: &mut PageTable<'_, '_>,
    plan: &PartitionPlan<'_>,
    virtual_cpu_interface: Option<PhysAddr>,
) -> Result<(), MapError> {
    table.map(
        plan.layout.ram_base,
        plan.ram.start(),
        plan.ram.size(),
        Attributes::GUEST_RAM,
    )?;
    if let Some(gicv) = virtual_cpu_interface {
        table.map(
            GUEST_GICC_BASE,
            gicv,
            GUEST_GICC_SIZE,
            Attributes::DEVICE_RW,
        )?;
    }
    for pages in plan.config.passthrough_pages() {
        table.map(
            pages.start().0,
            pages.start(),
            pages.size(),
            Attributes::DEVICE_RW,
        )?;
    }
    Ok(())
}

/// Upper bound on the translation tables the passthrough pages of `plan`
/// need beyond those of its RAM: per run of pages, a level-2 table per
/// GiB touched and a level-3 table per 2 MiB touched.
pub fn passthrough_tables(plan: &PartitionPlan<'_>) -> usize {
    const GIB: u64 = 1 << 30;
    const TWO_MIB: u64 = 2 << 20;
    plan.config
        .passthrough_pages()
        .iter()
        .map(|pages| {
            let tables = pages.size().div_ceil(GIB) + 1 + pages.size().div_ceil(TWO_MIB) + 1;
            usize::try_from(tables).unwrap_or(usize::MAX)
        })
        .fold(0usize, usize::saturating_add)
}
