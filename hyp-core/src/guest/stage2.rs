//! A partition's stage-2 translation: its RAM and, on GICv2, the GIC's
//! virtual CPU interface. Emulated devices stay unmapped so every access
//! traps; later, passthrough devices are added here.

use crate::config::PartitionPlan;
use crate::config::guest_map::{GUEST_GICC_BASE, GUEST_GICC_SIZE};
use crate::mm::address::PhysAddr;
use crate::mm::page_table::{Attributes, MapError, PageTable};

/// Maps the partition's RAM at its guest address, in the largest blocks
/// the alignment allows (the builder picks 1 GiB and 2 MiB blocks), and
/// the GICv2 virtual CPU interface at `virtual_cpu_interface` (GICV) where
/// the guest expects its CPU interface.
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
    Ok(())
}
