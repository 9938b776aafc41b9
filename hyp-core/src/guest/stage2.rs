//! A partition's stage-2 translation: its RAM, and nothing else. Emulated
//! devices stay unmapped so every access traps; later, passthrough devices
//! are added here.

use crate::config::PartitionPlan;
use crate::mm::page_table::{Attributes, MapError, PageTable};

/// Maps the partition's RAM at its guest address, in the largest blocks
/// the alignment allows (the builder picks 1 GiB and 2 MiB blocks).
pub fn map_partition(
    table: &mut PageTable<'_, '_>,
    plan: &PartitionPlan<'_>,
) -> Result<(), MapError> {
    table.map(
        plan.layout.ram_base,
        plan.ram.start(),
        plan.ram.size(),
        Attributes::GUEST_RAM,
    )
}
