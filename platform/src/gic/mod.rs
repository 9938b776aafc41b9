//! The physical GIC: distributor and CPU-interface setup so that the
//! hypervisor owns a known interrupt state before it hands any to guests.
//!
//! Register layouts follow the GIC Architecture Specification (IHI 0069H for
//! GICv3, IHI 0048B for GICv2). Interrupts start disabled, in the non-secure
//! Group 1, at a middle priority; later work enables what it uses.

pub mod distributor;
pub mod v2;
pub mod v3;

pub use distributor::StateChange;

/// Priority given to every interrupt at reset: the middle of the range, so
/// that later work can place hypervisor interrupts above and guest ones below.
pub const DEFAULT_PRIORITY: u8 = 0xa0;
/// Priority mask that lets every priority through (GICC_PMR / ICC_PMR_EL1).
pub const PRIORITY_MASK_ALL: u32 = 0xff;
/// INTIDs 0-15 are SGIs, 16-31 PPIs; SPIs start here.
pub const FIRST_SPI: u32 = 32;
/// Bits of ICENABLER0 that cover the PPIs (INTIDs 16-31).
pub const PPI_ENABLE_BITS: u32 = 0xffff_0000;
/// INTIDs 1020-1023 are special; 1023 means "no pending interrupt".
pub const SPECIAL_INTIDS_START: u32 = 1020;
pub const SPURIOUS_INTID: u32 = 1023;
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

    /// Lets SGI `intid` reach this CPU (`mpidr`): Tessera's inter-CPU kick.
    pub fn enable_sgi(&self, mpidr: u64, intid: u32) -> Result<(), GicError> {
        match self {
            Gic::V2(gic) => {
                gic.enable_sgi(intid);
                Ok(())
            }
            Gic::V3(gic) => gic.enable_sgi(mpidr, intid),
        }
    }

    /// Sends SGI `intid` to one CPU: by MPIDR affinity on GICv3, by its
    /// GICv2 CPU-interface bit (`v2_target`) on GICv2.
    pub fn send_sgi(&self, intid: u32, mpidr: u64, v2_target: u8) {
        match self {
            Gic::V2(gic) => gic.send_sgi(intid, v2_target),
            #[cfg(target_arch = "aarch64")]
            Gic::V3(_) => v3::cpu_interface::send_sgi(intid, mpidr),
            #[cfg(not(target_arch = "aarch64"))]
            Gic::V3(_) => {
                let _ = mpidr;
            }
        }
    }

    /// Acknowledges the highest-priority pending interrupt: the raw
    /// acknowledge value (INTID in bits [9:0] on GICv2, [23:0] on GICv3).
    pub fn acknowledge(&self) -> u32 {
        match self {
            Gic::V2(gic) => gic.acknowledge(),
            #[cfg(target_arch = "aarch64")]
            Gic::V3(_) => v3::cpu_interface::acknowledge(),
            #[cfg(not(target_arch = "aarch64"))]
            Gic::V3(_) => SPURIOUS_INTID,
        }
    }

    /// Ends the interrupt `acknowledge` returned.
    pub fn end_of_interrupt(&self, acknowledged: u32) {
        match self {
            Gic::V2(gic) => gic.end_of_interrupt(acknowledged),
            #[cfg(target_arch = "aarch64")]
            Gic::V3(_) => v3::cpu_interface::end_of_interrupt(acknowledged),
            #[cfg(not(target_arch = "aarch64"))]
            Gic::V3(_) => {}
        }
    }

    /// Deactivates the interrupt `acknowledge` returned, after its
    /// [`Gic::end_of_interrupt`] (EOImode 1: the two steps are separate).
    pub fn deactivate(&self, acknowledged: u32) {
        match self {
            Gic::V2(gic) => gic.deactivate(acknowledged),
            #[cfg(target_arch = "aarch64")]
            Gic::V3(_) => v3::cpu_interface::deactivate(acknowledged),
            #[cfg(not(target_arch = "aarch64"))]
            Gic::V3(_) => {}
        }
    }

    /// Enables (or disables) SGI/PPI `intid` of this CPU (`mpidr`).
    pub fn set_private_enabled(
        &self,
        mpidr: u64,
        intid: u32,
        enabled: bool,
    ) -> Result<(), GicError> {
        match self {
            Gic::V2(gic) => {
                gic.set_private_enabled(intid, enabled);
                Ok(())
            }
            Gic::V3(gic) => gic.set_private_enabled(mpidr, intid, enabled),
        }
    }

    /// Enables (or disables) SPI `intid`, routed to one CPU: by MPIDR
    /// affinity on GICv3, by CPU-interface bit (`v2_target`) on GICv2.
    pub fn set_spi(&self, intid: u32, enabled: bool, mpidr: u64, v2_target: u8) {
        match self {
            Gic::V2(gic) => gic.set_spi(intid, enabled, v2_target),
            Gic::V3(gic) => gic.set_spi(intid, enabled, mpidr),
        }
    }

    /// Applies `change` to `intid`: an SGI or PPI of the CPU `mpidr` (on
    /// GICv2 only the calling CPU's own: the distributor banks them), or
    /// an SPI.
    pub fn change(&self, mpidr: u64, intid: u32, change: StateChange) -> Result<(), GicError> {
        match self {
            Gic::V2(gic) => {
                gic.banks().change(intid, change);
                Ok(())
            }
            Gic::V3(gic) => gic.change(mpidr, intid, change),
        }
    }

    fn banks(&self) -> &distributor::DistributorBanks {
        match self {
            Gic::V2(gic) => gic.banks(),
            Gic::V3(gic) => gic.banks(),
        }
    }

    /// Sets a (disabled) SPI's trigger: edge (`edge`) or level.
    pub fn set_spi_edge_triggered(&self, intid: u32, edge: bool) {
        self.banks().set_edge_triggered(intid, edge);
    }

    /// Disables an SPI and clears its pending and active states.
    pub fn quiesce_spi(&self, intid: u32) {
        self.banks().quiesce(intid);
    }

    /// List register `index` of this CPU's virtual interface, in the GIC
    /// version's own format (GICH_LR is 32 bits, ICH_LR_EL2 64).
    pub fn list_register(&self, index: usize) -> u64 {
        match self {
            Gic::V2(gic) => u64::from(gic.list_register(index)),
            #[cfg(target_arch = "aarch64")]
            Gic::V3(_) => v3::virtual_interface::list_register(index),
            #[cfg(not(target_arch = "aarch64"))]
            Gic::V3(_) => 0,
        }
    }

    pub fn set_list_register(&self, index: usize, value: u64) {
        match self {
            Gic::V2(gic) => gic.set_list_register(index, u32::try_from(value).unwrap_or(0)),
            #[cfg(target_arch = "aarch64")]
            Gic::V3(_) => v3::virtual_interface::set_list_register(index, value),
            #[cfg(not(target_arch = "aarch64"))]
            Gic::V3(_) => {}
        }
    }

    /// A set bit for each empty list register of this CPU.
    pub fn empty_list_registers(&self) -> u64 {
        match self {
            Gic::V2(gic) => gic.empty_list_registers(),
            #[cfg(target_arch = "aarch64")]
            Gic::V3(_) => v3::virtual_interface::empty_list_registers(),
            #[cfg(not(target_arch = "aarch64"))]
            Gic::V3(_) => 0,
        }
    }

    /// Turns this CPU's virtual interface on; `underflow` asks for the
    /// maintenance interrupt once at most one list register is in use.
    pub fn set_virtual_interface(&self, underflow: bool) {
        match self {
            Gic::V2(gic) => gic.set_virtual_interface(underflow),
            #[cfg(target_arch = "aarch64")]
            Gic::V3(_) => v3::virtual_interface::set_virtual_interface(underflow),
            #[cfg(not(target_arch = "aarch64"))]
            Gic::V3(_) => {
                let _ = underflow;
            }
        }
    }

    /// Clears the guest state of this CPU's virtual interface.
    pub fn reset_virtual_interface(&self) {
        match self {
            Gic::V2(gic) => gic.reset_virtual_interface(),
            #[cfg(target_arch = "aarch64")]
            Gic::V3(_) => {
                v3::virtual_interface::reset(v3::cpu_interface::list_registers() as usize);
            }
            #[cfg(not(target_arch = "aarch64"))]
            Gic::V3(_) => {}
        }
    }

    /// The INTID in an acknowledge value.
    pub fn intid(&self, acknowledged: u32) -> u32 {
        match self {
            Gic::V2(_) => acknowledged & 0x3ff,
            Gic::V3(_) => acknowledged,
        }
    }

    pub fn info(&self) -> GicInfo {
        match self {
            Gic::V2(gic) => gic.info(),
            Gic::V3(gic) => gic.info(),
        }
    }
}
