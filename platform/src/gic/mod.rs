//! The physical GIC: distributor and CPU-interface setup so that the
//! hypervisor owns a known interrupt state before it hands any to guests.
//!
//! Register layouts follow the GIC Architecture Specification (IHI 0069H for
//! GICv3, IHI 0048B for GICv2). Interrupts start disabled, in the non-secure
//! Group 1, at a middle priority; later work enables what it uses.

pub mod distributor;
pub mod v2;
pub mod v3;

/// Priority given to every interrupt at reset: the middle of the range, so
/// that later work can place hypervisor interrupts above and guest ones below.
pub const DEFAULT_PRIORITY: u8 = 0xa0;
/// Priority mask that lets every priority through (GICC_PMR / ICC_PMR_EL1).
pub const PRIORITY_MASK_ALL: u32 = 0xff;
/// INTIDs 0-15 are SGIs, 16-31 PPIs; SPIs start here.
pub const FIRST_SPI: u32 = 32;
/// Bits of ICENABLER0 that cover the PPIs (INTIDs 16-31).
pub const PPI_ENABLE_BITS: u32 = 0xffff_0000;
/// How often to poll a GIC "register write pending" or "children asleep" bit.
pub const GIC_POLL_LIMIT: u32 = 1 << 20;

/// What the hypervisor reports about the GIC it found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GicInfo {
    /// Architecture version read from the hardware (2 or 3).
    pub version: u8,
    /// Interrupt lines the distributor implements (32 × (ITLinesNumber + 1)).
    pub lines: u32,
    /// List registers of the virtual CPU interface.
    pub list_registers: u32,
}

/// Why the GIC could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicError {
    /// No redistributor frame reports this CPU's affinity.
    NoRedistributor { mpidr: u64 },
    /// The distributor never finished a register write (GICD_CTLR.RWP stuck).
    RegisterWriteTimeout,
    /// The redistributor never woke (GICR_WAKER.ChildrenAsleep stuck).
    WakeTimeout { mpidr: u64 },
}

impl core::fmt::Display for GicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GicError::NoRedistributor { mpidr } => {
                write!(f, "no GICv3 redistributor frame for MPIDR {mpidr:#x}")
            }
            GicError::RegisterWriteTimeout => f.write_str("GICD_CTLR.RWP did not clear"),
            GicError::WakeTimeout { mpidr } => {
                write!(
                    f,
                    "redistributor of MPIDR {mpidr:#x} did not wake (GICR_WAKER.ChildrenAsleep)"
                )
            }
        }
    }
}

/// The board's GIC, whichever version it is.
#[derive(Debug)]
pub enum Gic {
    V2(v2::GicV2),
    V3(v3::GicV3),
}

impl Gic {
    /// Resets the distributor; once, on the boot CPU, whose MPIDR affinity
    /// receives every SPI until partitions route them.
    pub fn init_distributor(&self, boot_mpidr: u64) -> Result<(), GicError> {
        match self {
            Gic::V2(gic) => {
                gic.init_distributor();
                Ok(())
            }
            Gic::V3(gic) => gic.init_distributor(boot_mpidr),
        }
    }

    /// Sets up this CPU's interface; on every CPU.
    pub fn init_cpu(&self, mpidr: u64) -> Result<(), GicError> {
        match self {
            Gic::V2(gic) => {
                gic.init_cpu();
                Ok(())
            }
            Gic::V3(gic) => gic.init_cpu(mpidr),
        }
    }

    pub fn info(&self) -> GicInfo {
        match self {
            Gic::V2(gic) => gic.info(),
            Gic::V3(gic) => gic.info(),
        }
    }
}
