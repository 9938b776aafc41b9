//! The physical GIC instance, set up from the discovered regions.

use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use platform::gic::v2::GicV2;
use platform::gic::v3::GicV3;
use platform::gic::{Gic, GicError, GicInfo};

use spin::Once;

use crate::arch::cpu;
use crate::hw::cpus::MAX_CPUS;
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
    enable_kick(gic)?;
    Ok(gic.info())
}

/// Sets up a secondary CPU's interface.
pub fn init_this_cpu() -> Result<(), GicError> {
    match GIC.get() {
        Some(gic) => {
            gic.init_cpu(cpu::mpidr())?;
            enable_kick(gic)
        }
        None => Ok(()),
    }
}

/// The SGI one CPU sends another to make it leave its guest and look at
/// what changed (a partition stopping or restarting). Physical SGIs are
/// Tessera's alone: with HCR_EL2.IMO set they reach EL2, never a guest.
pub const KICK_SGI: u32 = 0;

/// GICv2 CPU-interface bits by CPU (GICD_SGIR names targets by these, not
/// by MPIDR): (MPIDR affinity, bit), filled in as each CPU starts.
static V2_TARGETS: [(AtomicU64, AtomicU8); MAX_CPUS] =
    [const { (AtomicU64::new(u64::MAX), AtomicU8::new(0)) }; MAX_CPUS];

fn enable_kick(gic: &Gic) -> Result<(), GicError> {
    gic.enable_sgi(cpu::mpidr(), KICK_SGI)?;
    if let Gic::V2(v2) = gic
        && let Some((mpidr, target)) = V2_TARGETS.get(cpu::index())
    {
        target.store(v2.this_cpu_target(), Ordering::Relaxed);
        mpidr.store(cpu::mpidr(), Ordering::Release);
    }
    Ok(())
}

/// Makes the CPU with MPIDR affinity `mpidr` take an interrupt to EL2.
pub fn kick(mpidr: u64) {
    let Some(gic) = GIC.get() else { return };
    let v2_target = V2_TARGETS
        .iter()
        .find(|(m, _)| m.load(Ordering::Acquire) == mpidr)
        .map_or(0, |(_, t)| t.load(Ordering::Relaxed));
    gic.send_sgi(KICK_SGI, mpidr, v2_target);
}

/// Takes the interrupt that made this CPU leave its guest. Tessera's only
/// physical interrupt is the kick, which needs nothing but acknowledging:
/// the kicked CPU re-reads its partition's state on its way back in.
pub fn take_interrupt() {
    let Some(gic) = GIC.get() else { return };
    let acknowledged = gic.acknowledge();
    let intid = gic.intid(acknowledged);
    if intid >= platform::gic::SPECIAL_INTIDS_START {
        return;
    }
    gic.end_of_interrupt(acknowledged);
    if intid != KICK_SGI {
        log::warn!("unexpected interrupt {intid} at EL2");
    }
}
