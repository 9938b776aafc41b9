//! GICv3 (QEMU virt with `gic-version=3`): distributor, redistributors, and
//! the CPU interface's system registers.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

use super::distributor::{DistributorBanks, StateChange};
use super::{DEFAULT_PRIORITY, FIRST_SPI, GIC_POLL_LIMIT, GicError, GicInfo, PPI_ENABLE_BITS};
use crate::mmio::Mmio;

register_bitfields! {u32,
    /// GICD_CTLR, non-secure view (or the single-security-state view, whose
    /// ARE and EnableGrp1 bits sit at the same positions).
    pub GICD_CTLR [
        ENABLE_GRP1_NS OFFSET(1) NUMBITS(1) [],
        ARE_NS OFFSET(4) NUMBITS(1) [],
        RWP OFFSET(31) NUMBITS(1) [],
    ],
    /// GICR_WAKER.
    pub GICR_WAKER [
        PROCESSOR_SLEEP OFFSET(1) NUMBITS(1) [],
        CHILDREN_ASLEEP OFFSET(2) NUMBITS(1) [],
    ],
}

register_bitfields! {u64,
    /// GICR_TYPER.
    pub GICR_TYPER [
        VLPIS OFFSET(1) NUMBITS(1) [],
        LAST OFFSET(4) NUMBITS(1) [],
        AFFINITY OFFSET(32) NUMBITS(32) [],
    ],
}

register_structs! {
    /// GICv3 distributor (64 KiB).
    pub GicdV3 {
        (0x0000 => pub banks: DistributorBanks),
        (0x0d00 => pub igrpmodr: [ReadWrite<u32>; 32]),
        (0x0d80 => _reserved0),
        (0x6100 => pub irouter: [ReadWrite<u64>; 988]),
        (0x7fe0 => _reserved1),
        (0xffe8 => pub pidr2: ReadOnly<u32>),
        (0xffec => _reserved2),
        (0x10000 => @END),
    },
    /// One redistributor: the RD_base frame and the SGI_base frame (2 × 64 KiB).
    pub Gicr {
        (0x00000 => pub ctlr: ReadWrite<u32>),
        (0x00004 => pub iidr: ReadOnly<u32>),
        (0x00008 => pub typer: ReadOnly<u64, GICR_TYPER::Register>),
        (0x00010 => pub statusr: ReadWrite<u32>),
        (0x00014 => pub waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x00018 => _reserved0),
        (0x10080 => pub igroupr0: ReadWrite<u32>),
        (0x10084 => _reserved1),
        (0x10100 => pub isenabler0: ReadWrite<u32>),
        (0x10104 => _reserved2),
        (0x10180 => pub icenabler0: ReadWrite<u32>),
        (0x10184 => _reserved3),
        (0x10200 => pub ispendr0: ReadWrite<u32>),
        (0x10204 => _reserved4),
        (0x10280 => pub icpendr0: ReadWrite<u32>),
        (0x10284 => _reserved5),
        (0x10300 => pub isactiver0: ReadWrite<u32>),
        (0x10304 => _reserved6),
        (0x10380 => pub icactiver0: ReadWrite<u32>),
        (0x10384 => _reserved7),
        (0x10400 => pub ipriorityr: [ReadWrite<u32>; 8]),
        (0x10420 => _reserved8),
        (0x20000 => @END),
    }
}

/// Distance between redistributors: RD_base + SGI_base frames, plus two
/// more frames (VLPI_base and reserved) when GICv4 virtual LPIs are present.
const GICR_FRAMES_STRIDE: usize = 0x2_0000;
const GICR_FRAMES_STRIDE_VLPI: usize = 0x4_0000;
/// Most redistributor regions (matches the discovery limit).
pub const MAX_REDISTRIBUTOR_REGIONS: usize = 4;

/// A GICv3.
#[derive(Debug)]
pub struct GicV3 {
    distributor: Mmio<GicdV3>,
    /// (base, size) of each redistributor region.
    redistributor_regions: [(usize, usize); MAX_REDISTRIBUTOR_REGIONS],
    stride: Option<usize>,
}

impl GicV3 {
    /// # Safety
    ///
    /// `distributor` must be the GICD frame and `regions` the redistributor
    /// regions of one GICv3, all mapped as device memory, and this value
    /// their only driver. Regions beyond the fourth are ignored.
    pub unsafe fn new(
        distributor: usize,
        regions: &[(usize, usize)],
        stride: Option<usize>,
    ) -> GicV3 {
        let mut redistributor_regions = [(0, 0); MAX_REDISTRIBUTOR_REGIONS];
        for (slot, region) in redistributor_regions.iter_mut().zip(regions) {
            *slot = *region;
        }
        // SAFETY: forwarded from this function's contract.
        let distributor = unsafe { Mmio::new(distributor) };
        GicV3 {
            distributor,
            redistributor_regions,
            stride,
        }
    }

    fn wait_for_distributor(&self) -> Result<(), GicError> {
        for _ in 0..GIC_POLL_LIMIT {
            if !self.distributor.banks_ctlr().is_set(GICD_CTLR::RWP) {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(GicError::RegisterWriteTimeout)
    }

    /// Resets the shared state and routes every SPI to `boot_affinity`; once,
    /// on the boot CPU.
    pub fn init_distributor(&self, boot_affinity: u64) -> Result<(), GicError> {
        let gicd = &self.distributor;
        gicd.banks_ctlr().set(0);
        self.wait_for_distributor()?;
        gicd.banks.reset_spis(true);
        // GICD_IROUTER<n> holds affinity routes only while affinity routing
        // is enabled: turn ARE on first (as Linux's gic_dist_init does).
        gicd.banks_ctlr().write(GICD_CTLR::ARE_NS::SET);
        self.wait_for_distributor()?;
        let lines = gicd.banks.lines().min(1020) as usize;
        for router in gicd.irouter.iter().take(lines.saturating_sub(32)) {
            router.set(boot_affinity);
        }
        gicd.banks_ctlr()
            .write(GICD_CTLR::ARE_NS::SET + GICD_CTLR::ENABLE_GRP1_NS::SET);
        self.wait_for_distributor()
    }

    /// The redistributor whose GICR_TYPER.Affinity matches `mpidr`.
    fn redistributor(&self, mpidr: u64) -> Result<Mmio<Gicr>, GicError> {
        // GICR_TYPER.Affinity is Aff3.Aff2.Aff1.Aff0, MPIDR has Aff3 at bit 32.
        let affinity = ((mpidr >> 8) & 0xff00_0000) | (mpidr & 0x00ff_ffff);
        for &(base, size) in self.redistributor_regions.iter().filter(|r| r.1 != 0) {
            let mut offset = 0;
            while offset + GICR_FRAMES_STRIDE <= size {
                // SAFETY: the frame lies inside a redistributor region that
                // `new`'s contract says is mapped and ours.
                let frame: Mmio<Gicr> = unsafe { Mmio::new(base + offset) };
                let typer = frame.typer.extract();
                if typer.read(GICR_TYPER::AFFINITY) == affinity {
                    return Ok(frame);
                }
                if typer.is_set(GICR_TYPER::LAST) {
                    break;
                }
                offset += self.stride.unwrap_or(if typer.is_set(GICR_TYPER::VLPIS) {
                    GICR_FRAMES_STRIDE_VLPI
                } else {
                    GICR_FRAMES_STRIDE
                });
            }
        }
        Err(GicError::NoRedistributor { mpidr })
    }

    /// Wakes this CPU's redistributor, resets its SGI/PPI state and enables
    /// its CPU interface; on every CPU. `mpidr` is this CPU's MPIDR_EL1.
    pub fn init_cpu(&self, mpidr: u64) -> Result<(), GicError> {
        let gicr = self.redistributor(mpidr)?;
        gicr.waker
            .modify_no_read(gicr.waker.extract(), GICR_WAKER::PROCESSOR_SLEEP::CLEAR);
        let mut awake = false;
        for _ in 0..GIC_POLL_LIMIT {
            if !gicr.waker.is_set(GICR_WAKER::CHILDREN_ASLEEP) {
                awake = true;
                break;
            }
            core::hint::spin_loop();
        }
        if !awake {
            return Err(GicError::WakeTimeout { mpidr });
        }
        gicr.igroupr0.set(u32::MAX);
        gicr.icenabler0.set(PPI_ENABLE_BITS);
        gicr.icpendr0.set(u32::MAX);
        gicr.icactiver0.set(u32::MAX);
        let priority_word = u32::from_ne_bytes([DEFAULT_PRIORITY; 4]);
        for register in gicr.ipriorityr.iter() {
            register.set(priority_word);
        }
        #[cfg(target_arch = "aarch64")]
        cpu_interface::enable();
        Ok(())
    }

    /// Enables SGI `intid` in this CPU's redistributor.
    pub fn enable_sgi(&self, mpidr: u64, intid: u32) -> Result<(), GicError> {
        self.redistributor(mpidr)?.isenabler0.set(1 << (intid % 16));
        Ok(())
    }

    /// Enables (or disables) SGI/PPI `intid` of the CPU `mpidr`.
    pub fn set_private_enabled(
        &self,
        mpidr: u64,
        intid: u32,
        enabled: bool,
    ) -> Result<(), GicError> {
        let gicr = self.redistributor(mpidr)?;
        let register = if enabled {
            &gicr.isenabler0
        } else {
            &gicr.icenabler0
        };
        register.set(1 << (intid % 32));
        Ok(())
    }

    /// The distributor's banks shared with the other GIC version.
    pub fn banks(&self) -> &DistributorBanks {
        &self.distributor.banks
    }

    /// Applies `change` to `intid`: an SGI or PPI of the CPU `mpidr` (in
    /// its redistributor, reachable from any CPU), or an SPI.
    pub fn change(&self, mpidr: u64, intid: u32, change: StateChange) -> Result<(), GicError> {
        if intid >= FIRST_SPI {
            self.distributor.banks.change(intid, change);
            return Ok(());
        }
        let gicr = self.redistributor(mpidr)?;
        let register = match change {
            StateChange::SetPending => &gicr.ispendr0,
            StateChange::ClearPending => &gicr.icpendr0,
            StateChange::Activate => &gicr.isactiver0,
            StateChange::Deactivate => &gicr.icactiver0,
            StateChange::Enable => &gicr.isenabler0,
            StateChange::Disable => &gicr.icenabler0,
        };
        register.set(1 << (intid % 32));
        Ok(())
    }

    /// Enables (or disables) SPI `intid` and routes it to the CPU `mpidr`.
    pub fn set_spi(&self, intid: u32, enabled: bool, mpidr: u64) {
        let banks = &self.distributor.banks;
        let index = (intid / 32) as usize;
        let bit = 1 << (intid % 32);
        if enabled {
            // GICD_IROUTER<n>: Aff3 at [39:32], Aff2.Aff1.Aff0 at [23:0], as MPIDR.
            let route = mpidr & 0xff_00ff_ffff;
            if let Some(router) = self
                .distributor
                .irouter
                .get(intid.saturating_sub(32) as usize)
            {
                router.set(route);
            }
            if let Some(register) = banks.isenabler.get(index) {
                register.set(bit);
            }
        } else if let Some(register) = banks.icenabler.get(index) {
            register.set(bit);
        }
    }

    pub fn info(&self) -> GicInfo {
        // PIDR2.ArchRev, bits [7:4]: 3 for GICv3, 4 for GICv4.
        let revision = (self.distributor.pidr2.get() >> 4) & 0xf;
        GicInfo {
            version: u8::try_from(revision).unwrap_or(3),
            lines: self.distributor.banks.lines(),
            #[cfg(target_arch = "aarch64")]
            list_registers: cpu_interface::list_registers(),
            #[cfg(not(target_arch = "aarch64"))]
            list_registers: 0,
        }
    }
}

impl GicdV3 {
    /// GICD_CTLR with the GICv3 field layout.
    fn banks_ctlr(&self) -> &ReadWrite<u32, GICD_CTLR::Register> {
        // SAFETY: `ReadWrite<u32, R>` is a `#[repr(transparent)]` wrapper of
        // an `UnsafeCell<u32>` whatever `R` is, so the two types have the
        // same layout; only the bitfield names differ.
        unsafe { &*core::ptr::from_ref(&self.banks.ctlr).cast() }
    }
}

/// The GICv3 CPU interface: system registers (IHI 0069H §12).
#[cfg(target_arch = "aarch64")]
pub(super) mod cpu_interface {
    use aarch64_cpu::registers::{ICC_SRE_EL2, ICH_VTR_EL2, ReadWriteable, Readable};

    use super::super::PRIORITY_MASK_ALL;

    /// ICC_IGRPEN1_EL1.Enable.
    const IGRPEN1_ENABLE: u64 = 1;
    /// ICC_CTLR_EL1.EOImode: EOIR only drops priority, DIR deactivates, so
    /// that a guest's deactivation of a hardware-linked interrupt counts.
    const CTLR_EOI_MODE: u64 = 1 << 1;

    /// Enables system-register access at EL2 and EL1 and unmasks Group 1.
    pub fn enable() {
        // Read-modify-write: keep the IRQ/FIQ bypass-disable bits as they are.
        ICC_SRE_EL2.modify(ICC_SRE_EL2::SRE::SET + ICC_SRE_EL2::ENABLE::SET);
        aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
        // SAFETY: writing the priority mask, binary point and group enable of
        // this CPU's own interface; no memory is involved.
        unsafe {
            core::arch::asm!(
                "msr ICC_CTLR_EL1, {ctlr}",
                "msr ICC_PMR_EL1, {pmr}",
                "msr ICC_BPR1_EL1, xzr",
                "msr ICC_IGRPEN1_EL1, {enable}",
                "isb",
                pmr = in(reg) u64::from(PRIORITY_MASK_ALL),
                enable = in(reg) IGRPEN1_ENABLE,
                ctlr = in(reg) CTLR_EOI_MODE,
                options(nostack, preserves_flags),
            );
        }
    }

    /// ICC_SGI1R_EL1 fields (IHI 0069H §12.2.23).
    const SGI1R_INTID_SHIFT: u64 = 24;
    const SGI1R_AFF1_SHIFT: u64 = 16;
    const SGI1R_AFF2_SHIFT: u64 = 32;
    const SGI1R_RS_SHIFT: u64 = 44;
    const SGI1R_AFF3_SHIFT: u64 = 48;
    /// Each TargetList bit covers one Aff0 value within a range of 16.
    const TARGETS_PER_RANGE: u64 = 16;

    /// Sends SGI `intid` to the one CPU whose MPIDR affinity is `mpidr`.
    pub fn send_sgi(intid: u32, mpidr: u64) {
        let aff0 = mpidr & 0xff;
        let value = (u64::from(intid % 16) << SGI1R_INTID_SHIFT)
            | (((mpidr >> 8) & 0xff) << SGI1R_AFF1_SHIFT)
            | (((mpidr >> 16) & 0xff) << SGI1R_AFF2_SHIFT)
            | (((mpidr >> 32) & 0xff) << SGI1R_AFF3_SHIFT)
            | ((aff0 / TARGETS_PER_RANGE) << SGI1R_RS_SHIFT)
            | (1 << (aff0 % TARGETS_PER_RANGE));
        // The DSB first: the stores the SGI announces (a request, a flag)
        // must be visible to the target before it can take the SGI, and a
        // system-register write is not ordered after them otherwise
        // (Linux's gic_ipi_send_mask does the same). The ISB makes it leave
        // before later instructions, as the GIC spec asks.
        // SAFETY: generating an SGI and the barriers touch no memory.
        unsafe {
            core::arch::asm!(
                "dsb ishst",
                "msr ICC_SGI1R_EL1, {value}",
                "isb",
                value = in(reg) value,
                options(nostack, preserves_flags)
            );
        }
    }

    /// ICC_IAR1_EL1: the INTID of the highest-priority pending interrupt,
    /// now active.
    pub fn acknowledge() -> u32 {
        let value: u64;
        // SAFETY: reading this CPU's interrupt acknowledge register.
        unsafe {
            // The DSB makes the acknowledge take effect before what follows,
            // as the GICv3 specification asks (Linux's gic_read_iar does it too).
            core::arch::asm!("mrs {}, ICC_IAR1_EL1", "dsb sy", out(reg) value, options(nostack, preserves_flags));
        }
        u32::try_from(value & 0xff_ffff).unwrap_or(u32::MAX)
    }

    /// ICC_DIR_EL1: deactivates an interrupt whose priority was dropped.
    pub fn deactivate(intid: u32) {
        // SAFETY: writing this CPU's deactivate-interrupt register.
        unsafe {
            core::arch::asm!(
                "msr ICC_DIR_EL1, {}",
                "isb",
                in(reg) u64::from(intid),
                options(nostack, preserves_flags)
            );
        }
    }

    /// ICC_EOIR1_EL1: priority drop (EOImode 1: [`deactivate`] finishes).
    pub fn end_of_interrupt(intid: u32) {
        // SAFETY: writing this CPU's end-of-interrupt register.
        unsafe {
            core::arch::asm!(
                "msr ICC_EOIR1_EL1, {}",
                in(reg) u64::from(intid),
                options(nostack, preserves_flags)
            );
        }
    }

    /// ICH_VTR_EL2.ListRegs + 1.
    pub fn list_registers() -> u32 {
        u32::try_from(ICH_VTR_EL2.read(ICH_VTR_EL2::ListRegs) + 1).unwrap_or(0)
    }
}

/// The GICv3 virtual CPU interface's control registers (ICH_*_EL2,
/// IHI 0069H §12.4): list registers, status, and the interface controls.
#[cfg(target_arch = "aarch64")]
pub(super) mod virtual_interface {
    use aarch64_cpu::registers::{
        ICH_AP0R0_EL2, ICH_AP1R0_EL2, ICH_HCR_EL2, ICH_LR0_EL2, ICH_LR1_EL2, ICH_LR2_EL2,
        ICH_LR3_EL2, ICH_LR4_EL2, ICH_LR5_EL2, ICH_LR6_EL2, ICH_LR7_EL2, ICH_LR8_EL2, ICH_LR9_EL2,
        ICH_LR10_EL2, ICH_LR11_EL2, ICH_LR12_EL2, ICH_LR13_EL2, ICH_LR14_EL2, ICH_LR15_EL2,
        ICH_VMCR_EL2, Readable, Writeable,
    };

    macro_rules! by_index {
        ($index:expr, |$register:ident| $body:expr, $default:expr) => {
            match $index {
                0 => {
                    let $register = ICH_LR0_EL2;
                    $body
                }
                1 => {
                    let $register = ICH_LR1_EL2;
                    $body
                }
                2 => {
                    let $register = ICH_LR2_EL2;
                    $body
                }
                3 => {
                    let $register = ICH_LR3_EL2;
                    $body
                }
                4 => {
                    let $register = ICH_LR4_EL2;
                    $body
                }
                5 => {
                    let $register = ICH_LR5_EL2;
                    $body
                }
                6 => {
                    let $register = ICH_LR6_EL2;
                    $body
                }
                7 => {
                    let $register = ICH_LR7_EL2;
                    $body
                }
                8 => {
                    let $register = ICH_LR8_EL2;
                    $body
                }
                9 => {
                    let $register = ICH_LR9_EL2;
                    $body
                }
                10 => {
                    let $register = ICH_LR10_EL2;
                    $body
                }
                11 => {
                    let $register = ICH_LR11_EL2;
                    $body
                }
                12 => {
                    let $register = ICH_LR12_EL2;
                    $body
                }
                13 => {
                    let $register = ICH_LR13_EL2;
                    $body
                }
                14 => {
                    let $register = ICH_LR14_EL2;
                    $body
                }
                15 => {
                    let $register = ICH_LR15_EL2;
                    $body
                }
                _ => $default,
            }
        };
    }

    /// ICH_LR<index>_EL2.
    pub fn list_register(index: usize) -> u64 {
        by_index!(index, |register| register.get(), 0)
    }

    pub fn set_list_register(index: usize, value: u64) {
        by_index!(index, |register| register.set(value), ())
    }

    /// ICH_ELRSR_EL2: a set bit is an empty list register.
    pub fn empty_list_registers() -> u64 {
        let value: u64;
        // SAFETY: reading the empty-list-register status of this CPU.
        unsafe {
            core::arch::asm!("mrs {}, S3_4_C12_C11_5", out(reg) value, options(nomem, nostack, preserves_flags));
        }
        value
    }

    /// Turns the virtual CPU interface on, with the underflow maintenance
    /// interrupt when `underflow` is set.
    pub fn set_virtual_interface(underflow: bool) {
        ICH_HCR_EL2.write(
            ICH_HCR_EL2::En::SET
                + if underflow {
                    ICH_HCR_EL2::UIE::SET
                } else {
                    ICH_HCR_EL2::UIE::CLEAR
                },
        );
    }

    /// Clears the guest's virtual CPU interface state (a fresh vCPU).
    pub fn reset(list_registers: usize) {
        ICH_VMCR_EL2.set(0);
        ICH_AP0R0_EL2.set(0);
        ICH_AP1R0_EL2.set(0);
        for index in 0..list_registers {
            set_list_register(index, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_architected_sizes() {
        assert_eq!(core::mem::size_of::<GicdV3>(), 0x1_0000);
        assert_eq!(core::mem::offset_of!(GicdV3, irouter), 0x6100);
        assert_eq!(core::mem::size_of::<Gicr>(), GICR_FRAMES_STRIDE);
        assert_eq!(core::mem::offset_of!(Gicr, waker), 0x14);
        assert_eq!(core::mem::offset_of!(Gicr, ipriorityr), 0x1_0400);
    }
}
