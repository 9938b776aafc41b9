//! The physical GIC instance, set up from the discovered regions.

use platform::gic::v2::GicV2;
use platform::gic::v3::GicV3;
use platform::gic::{Gic, GicError, GicInfo};
use spin::Once;

use crate::arch::cpu;
use crate::hw::gic::GicRegions;
use crate::mm::address::to_usize;

/// The GIC, once the boot CPU has set it up.
pub static GIC: Once<Gic> = Once::new();

fn address(range: &crate::mm::address::PhysRange) -> usize {
    range.start().as_usize()
}

/// Creates the driver, resets the distributor and this CPU's interface.
/// The regions must already be mapped as device memory.
pub fn init(regions: &GicRegions) -> Result<GicInfo, GicError> {
    let gic = GIC.call_once(|| match regions {
        GicRegions::V2 {
            distributor,
            cpu_interface,
            hyp_interface,
            ..
        } => {
            // SAFETY: the regions come from the DT's GIC node and are mapped
            // as device memory by the EL2 map; this is their only driver.
            Gic::V2(unsafe {
                GicV2::new(
                    address(distributor),
                    address(cpu_interface),
                    address(hyp_interface),
                )
            })
        }
        GicRegions::V3 {
            distributor,
            redistributors,
            redistributor_stride,
        } => {
            let mut list = [(0usize, 0usize); platform::gic::v3::MAX_REDISTRIBUTOR_REGIONS];
            for (slot, region) in list.iter_mut().zip(redistributors.iter()) {
                *slot = (address(region), to_usize(region.size()));
            }
            let stride = redistributor_stride.map(to_usize);
            // SAFETY: as above, for the distributor and redistributor regions.
            Gic::V3(unsafe { GicV3::new(address(distributor), &list, stride) })
        }
    });
    gic.init_distributor(cpu::mpidr())?;
    gic.init_cpu(cpu::mpidr())?;
    Ok(gic.info())
}

/// Sets up a secondary CPU's interface.
pub fn init_this_cpu() -> Result<(), GicError> {
    match GIC.get() {
        Some(gic) => gic.init_cpu(cpu::mpidr()),
        None => Ok(()),
    }
}
