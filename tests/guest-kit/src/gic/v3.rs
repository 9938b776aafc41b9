//! GICv3 as a guest sees it: the distributor, one redistributor frame per
//! vCPU and the `ICC_*` system registers (IHI 0069H).
//!
//! Set up as Linux's `irq-gic-v3.c` does: affinity routing, every
//! interrupt in Group 1 (non-secure), `ICC_IGRPEN1_EL1` = 1, priority
//! mask 0xf0, EOImode 0 (one `ICC_EOIR1_EL1` write drops the priority and
//! deactivates).

use super::{Acknowledged, SgiError, SgiTargets};

/// Bytes of the distributor's registers (IHI 0069 §12.8: 64 KiB).
pub const DISTRIBUTOR_SIZE: u64 = 0x1_0000;
/// One redistributor: `RD_base` then `SGI_base`, 64 KiB each (without
/// virtual LPIs, IHI 0069 §12.10).
pub const FRAME_SIZE: u64 = FRAME_BYTES as u64;
/// [`FRAME_SIZE`] as a length in the guest's address space.
pub const FRAME_BYTES: usize = 0x2_0000;
/// `SGI_base` from `RD_base`.
pub const SGI_BASE: usize = 0x1_0000;

// Distributor registers (IHI 0069 §12.9), offsets from GICD.
pub const GICD_CTLR: usize = 0x0000;
pub const GICD_TYPER: usize = 0x0004;
pub const GICD_IGROUPR: usize = 0x0080;
pub const GICD_ICENABLER: usize = 0x0180;
pub const GICD_ICACTIVER: usize = 0x0380;
pub const GICD_IPRIORITYR: usize = 0x0400;
/// `GICD_IROUTER<n>` is at `0x6000 + 8n` for SPI INTIDs n (§12.9.22).
pub const GICD_IROUTER: usize = 0x6000;

/// `GICD_CTLR` bits, as Linux writes them (`GICD_CTLR_ARE_NS |
/// GICD_CTLR_ENABLE_G1A | GICD_CTLR_ENABLE_G1`): in the non-secure view,
/// EnableGrp1 (bit 0), EnableGrp1A (bit 1), ARE_NS (bit 4); with a single
/// security state, EnableGrp0, EnableGrp1 and ARE. RWP (bit 31): a write
/// is still taking effect (§12.9.4).
pub const GICD_CTLR_ENABLE_GRP1: u32 = 1 << 0;
pub const GICD_CTLR_ENABLE_GRP1A: u32 = 1 << 1;
pub const GICD_CTLR_ARE_NS: u32 = 1 << 4;
pub const GICD_CTLR_RWP: u32 = 1 << 31;
/// `GICD_TYPER.ITLinesNumber` (bits [4:0]): SPIs up to INTID 32(N+1) - 1.
pub const GICD_TYPER_IT_LINES: u32 = 0x1f;

// Redistributor registers in RD_base (§12.11).
pub const GICR_CTLR: usize = 0x0000;
pub const GICR_TYPER: usize = 0x0008;
pub const GICR_WAKER: usize = 0x0014;
/// `GICR_CTLR.RWP` (bit 3).
pub const GICR_CTLR_RWP: u32 = 1 << 3;
/// `GICR_TYPER.Last` (bit 4): the last redistributor of the region.
pub const GICR_TYPER_LAST: u64 = 1 << 4;
/// `GICR_TYPER.Processor_Number` (bits [23:8]).
pub const GICR_TYPER_PROCESSOR_NUMBER_SHIFT: u64 = 8;
/// `GICR_TYPER.Affinity_Value` (bits [63:32]): Aff3.Aff2.Aff1.Aff0.
pub const GICR_TYPER_AFFINITY_SHIFT: u64 = 32;
/// `GICR_WAKER.ProcessorSleep` (bit 1) and `ChildrenAsleep` (bit 2).
pub const GICR_WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
pub const GICR_WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

// SGI and PPI registers in SGI_base (§12.12), offsets from SGI_base.
pub const GICR_IGROUPR0: usize = 0x0080;
pub const GICR_ICENABLER0: usize = 0x0180;
pub const GICR_ICACTIVER0: usize = 0x0380;
pub const GICR_IPRIORITYR: usize = 0x0400;

/// `ICC_SRE_EL1` bits: SRE (system register interface), DFB, DIB.
pub const ICC_SRE_SRE: u64 = 1 << 0;
pub const ICC_SRE_DFB: u64 = 1 << 1;
pub const ICC_SRE_DIB: u64 = 1 << 2;

/// `ICC_SGI1R_EL1` fields (§12.2.22).
const SGI1R_TARGET_LIST_MASK: u64 = 0xffff;
const SGI1R_INTID_SHIFT: u64 = 24;
const SGI1R_IRM: u64 = 1 << 40;
const SGI1R_AFF1_SHIFT: u64 = 16;
const SGI1R_AFF2_SHIFT: u64 = 32;
const SGI1R_RS_SHIFT: u64 = 44;
const SGI1R_AFF3_SHIFT: u64 = 48;

/// `ICC_IAR1_EL1.INTID` (bits [23:0]).
const IAR_INTID_MASK: u64 = 0xff_ffff;

/// The value of `ICC_SGI1R_EL1` that sends SGI `intid` to `targets`.
/// Tessera's vCPUs have Aff1-Aff3 = 0 and Aff0 < 16, so a list is one
/// `TargetList` with Aff1-Aff3 and RS = 0.
pub fn sgi1r(intid: u32, targets: SgiTargets) -> Result<u64, SgiError> {
    if !super::is_sgi(intid) {
        return Err(SgiError::NotAnSgi(intid));
    }
    let intid = u64::from(intid) << SGI1R_INTID_SHIFT;
    Ok(match targets {
        SgiTargets::Vcpus(list) => intid | (u64::from(list) & SGI1R_TARGET_LIST_MASK),
        SgiTargets::AllButSelf => intid | SGI1R_IRM,
    })
}

/// `ICC_SGI1R_EL1` for SGI `intid` to the cores whose Aff0 is in
/// `list` (bit n: Aff0 = 16 * `range` + n) under Aff3.Aff2.Aff1 =
/// `upper` (Aff3 in [23:16], Aff2 in [15:8], Aff1 in [7:0]): cores of
/// another cluster or range, which no Tessera vCPU has.
pub fn sgi1r_with_affinity(intid: u32, upper: u32, range: u8, list: u16) -> Result<u64, SgiError> {
    let base = sgi1r(intid, SgiTargets::Vcpus(list))?;
    let upper = u64::from(upper);
    Ok(base
        | (upper & 0xff) << SGI1R_AFF1_SHIFT
        | ((upper >> 8) & 0xff) << SGI1R_AFF2_SHIFT
        | ((upper >> 16) & 0xff) << SGI1R_AFF3_SHIFT
        | u64::from(range & 0xf) << SGI1R_RS_SHIFT)
}

/// `MPIDR_EL1`'s affinity as `GICR_TYPER.Affinity_Value` packs it:
/// Aff3 (MPIDR [39:32]) in [31:24], Aff2, Aff1, Aff0 below.
pub fn affinity_value(mpidr: u64) -> u32 {
    let low = mpidr & 0xff_ffff;
    let aff3 = (mpidr >> 32) & 0xff;
    u32::try_from(aff3 << 24 | low).unwrap_or(u32::MAX)
}

/// `GICD_IROUTER<n>` routing an SPI to the vCPU with MPIDR Aff0 = `vcpu`
/// (Interrupt_Routing_Mode 0, Aff1-Aff3 = 0).
pub fn irouter_for(vcpu: u8) -> u64 {
    u64::from(vcpu)
}

/// What a redistributor frame says about itself (`GICR_TYPER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameIdentity {
    pub affinity: u32,
    pub processor_number: u16,
    pub last: bool,
}

impl FrameIdentity {
    pub fn from_typer(typer: u64) -> FrameIdentity {
        FrameIdentity {
            affinity: u32::try_from(typer >> GICR_TYPER_AFFINITY_SHIFT).unwrap_or(u32::MAX),
            processor_number: u16::try_from((typer >> GICR_TYPER_PROCESSOR_NUMBER_SHIFT) & 0xffff)
                .unwrap_or(u16::MAX),
            last: typer & GICR_TYPER_LAST != 0,
        }
    }
}

/// Decodes `ICC_IAR1_EL1`.
pub fn decode_iar(value: u64) -> Acknowledged {
    Acknowledged {
        raw: value,
        intid: u32::try_from(value & IAR_INTID_MASK).unwrap_or(super::SPURIOUS),
        source: None,
    }
}

/// The offset of `GICD_IROUTER<intid>`.
pub const fn irouter_offset(intid: u32) -> usize {
    GICD_IROUTER + 8 * intid as usize
}

#[cfg(target_os = "none")]
pub use self::target::Gic;

#[cfg(target_os = "none")]
mod target {
    use core::arch::asm;

    use super::*;
    use crate::exception::catch;
    use crate::gic::{
        Acknowledged, DEFAULT_PRIORITY, DEFAULT_PRIORITY_MASK, FIRST_SPI, InitError, SgiError,
        SgiTargets, bit_slot, byte_slot,
    };
    use crate::mmio::Mmio;

    /// Reads of a busy bit before giving up: far more than any emulation
    /// needs, few enough to fail in well under a second.
    const MAX_POLLS: u32 = 100_000;

    /// A GICv3 from one vCPU: the distributor, the redistributors' region
    /// and this vCPU's frame.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Gic {
        distributor: Mmio,
        redistributors: Mmio,
        /// This vCPU's `RD_base` (its frame is `FRAME_SIZE` bytes).
        frame: Mmio,
    }

    macro_rules! sysreg_write {
        ($name:literal, $value:expr) => {
            // SAFETY: a write of a GIC CPU interface register of this vCPU
            // (virtualised by the hardware or emulated by Tessera); it
            // changes interrupt state, not memory.
            unsafe {
                asm!(concat!("msr ", $name, ", {}"), "isb", in(reg) $value,
                     options(nomem, nostack, preserves_flags))
            }
        };
    }

    macro_rules! sysreg_read {
        ($name:literal) => {{
            let value: u64;
            // SAFETY: a read of a GIC CPU interface register of this vCPU;
            // for ICC_IAR1_EL1 it acknowledges an interrupt, which the
            // caller then ends. No memory is touched.
            unsafe {
                asm!(concat!("mrs {}, ", $name), out(reg) value,
                     options(nomem, nostack, preserves_flags))
            };
            value
        }};
    }

    // System register encodings (IHI 0069 §12.2), as the assembler may not
    // know the names.
    // ICC_PMR_EL1     S3_0_C4_C6_0    ICC_IAR1_EL1   S3_0_C12_C12_0
    // ICC_EOIR1_EL1   S3_0_C12_C12_1  ICC_BPR1_EL1   S3_0_C12_C12_3
    // ICC_CTLR_EL1    S3_0_C12_C12_4  ICC_SRE_EL1    S3_0_C12_C12_5
    // ICC_IGRPEN1_EL1 S3_0_C12_C12_7  ICC_SGI1R_EL1  S3_0_C12_C11_5

    fn wait_clear(
        block: &Mmio,
        offset: usize,
        bit: u32,
        register: &'static str,
    ) -> Result<(), InitError> {
        for _ in 0..MAX_POLLS {
            if block.read32(offset) & bit == 0 {
                return Ok(());
            }
        }
        Err(InitError::Stuck {
            register,
            value: block.read32(offset),
        })
    }

    impl Gic {
        /// Sets up the distributor: affinity routing on, every SPI
        /// disabled, inactive, Group 1, priority [`DEFAULT_PRIORITY`] and
        /// routed to vCPU 0; then Group 1 enabled.
        pub(crate) fn init_distributor(distributor: &Mmio) -> Result<(), InitError> {
            distributor.write32(GICD_CTLR, 0);
            wait_clear(distributor, GICD_CTLR, GICD_CTLR_RWP, "GICD_CTLR.RWP")?;
            let lines = lines(distributor);
            for first in (FIRST_SPI..lines).step_by(32) {
                let (offset, _) = bit_slot(first);
                distributor.write32(GICD_ICENABLER + offset, u32::MAX);
                distributor.write32(GICD_ICACTIVER + offset, u32::MAX);
                distributor.write32(GICD_IGROUPR + offset, u32::MAX);
            }
            wait_clear(distributor, GICD_CTLR, GICD_CTLR_RWP, "GICD_CTLR.RWP")?;
            let priorities = u32::from_ne_bytes([DEFAULT_PRIORITY; 4]);
            for first in (FIRST_SPI..lines).step_by(4) {
                distributor.write32(GICD_IPRIORITYR + byte_slot(first).0, priorities);
            }
            for intid in FIRST_SPI..lines {
                distributor.write64(irouter_offset(intid), irouter_for(0));
            }
            let enable = GICD_CTLR_ARE_NS | GICD_CTLR_ENABLE_GRP1A | GICD_CTLR_ENABLE_GRP1;
            distributor.write32(GICD_CTLR, enable);
            wait_clear(distributor, GICD_CTLR, GICD_CTLR_RWP, "GICD_CTLR.RWP")?;
            let control = distributor.read32(GICD_CTLR);
            if control & GICD_CTLR_ARE_NS == 0 {
                return Err(InitError::AffinityRoutingOff { control });
            }
            Ok(())
        }

        /// Finds the frame of the vCPU with `affinity` in the
        /// redistributor region, as Linux does: `GICR_TYPER` of each frame
        /// until `Last`.
        pub(crate) fn find_frame(redistributors: &Mmio, affinity: u32) -> Result<Mmio, InitError> {
            let frames = redistributors.size() / FRAME_BYTES;
            for index in 0..frames {
                let offset = index * FRAME_BYTES;
                let identity =
                    FrameIdentity::from_typer(redistributors.read64(offset + GICR_TYPER));
                if identity.affinity == affinity {
                    // SAFETY: a frame inside the region, which `Gic::new`'s
                    // caller promised is the redistributors' registers.
                    return Ok(unsafe { Mmio::new(redistributors.base() + offset, FRAME_BYTES) });
                }
                if identity.last {
                    break;
                }
            }
            Err(InitError::NoRedistributor { affinity, frames })
        }

        pub(crate) fn new(distributor: Mmio, redistributors: Mmio, frame: Mmio) -> Gic {
            Gic {
                distributor,
                redistributors,
                frame,
            }
        }

        fn sgi_base(&self) -> Mmio {
            // SAFETY: the second half of this vCPU's frame.
            unsafe { Mmio::new(self.frame.base() + SGI_BASE, SGI_BASE) }
        }

        /// Wakes this vCPU's redistributor, sets up its SGIs and PPIs
        /// (disabled, inactive, Group 1, [`DEFAULT_PRIORITY`]; pending state
        /// is left alone) and the CPU interface.
        pub(crate) fn init_cpu(&self) -> Result<(), InitError> {
            let waker = self.frame.read32(GICR_WAKER);
            self.frame
                .write32(GICR_WAKER, waker & !GICR_WAKER_PROCESSOR_SLEEP);
            wait_clear(
                &self.frame,
                GICR_WAKER,
                GICR_WAKER_CHILDREN_ASLEEP,
                "GICR_WAKER.ChildrenAsleep",
            )?;
            let sgi = self.sgi_base();
            sgi.write32(GICR_ICACTIVER0, u32::MAX);
            sgi.write32(GICR_ICENABLER0, u32::MAX);
            wait_clear(&self.frame, GICR_CTLR, GICR_CTLR_RWP, "GICR_CTLR.RWP")?;
            sgi.write32(GICR_IGROUPR0, u32::MAX);
            let priorities = u32::from_ne_bytes([DEFAULT_PRIORITY; 4]);
            for word in 0..8 {
                sgi.write32(GICR_IPRIORITYR + 4 * word, priorities);
            }

            // The system register interface: SRE set (and RAO once EL2 has
            // set ICC_SRE_EL2.SRE). A trap here is Tessera's to explain.
            let ((), trap) = catch(|| {
                let sre = sysreg_read!("S3_0_C12_C12_5");
                sysreg_write!(
                    "S3_0_C12_C12_5",
                    sre | ICC_SRE_SRE | ICC_SRE_DFB | ICC_SRE_DIB
                );
            });
            if let Some(trap) = trap {
                return Err(InitError::SystemRegisterTrap(trap));
            }
            let sre = sysreg_read!("S3_0_C12_C12_5");
            if sre & ICC_SRE_SRE == 0 {
                return Err(InitError::NoSystemRegisterInterface { sre });
            }
            sysreg_write!("S3_0_C4_C6_0", u64::from(DEFAULT_PRIORITY_MASK));
            sysreg_write!("S3_0_C12_C12_3", 0u64);
            sysreg_write!("S3_0_C12_C12_4", 0u64);
            sysreg_write!("S3_0_C12_C12_7", 1u64);
            Ok(())
        }

        /// The block holding `intid`'s bits and bytes in the banks
        /// of [`crate::gic::ISENABLER`] and the others: this vCPU's `SGI_base` for SGIs
        /// and PPIs, the distributor for SPIs (same offsets, §12.12).
        pub(crate) fn banks(&self, intid: u32) -> Mmio {
            if intid < FIRST_SPI {
                self.sgi_base()
            } else {
                self.distributor
            }
        }

        /// Waits until a write to `intid`'s registers has taken effect
        /// (`GICR_CTLR.RWP` or `GICD_CTLR.RWP`, IHI 0069 §12.9.4). A stuck
        /// RWP shows in the caller's read-backs.
        pub(crate) fn wait_for_writes(&self, intid: u32) {
            let _ = if intid < FIRST_SPI {
                wait_clear(&self.frame, GICR_CTLR, GICR_CTLR_RWP, "GICR_CTLR.RWP")
            } else {
                wait_clear(&self.distributor, GICD_CTLR, GICD_CTLR_RWP, "GICD_CTLR.RWP")
            };
        }

        /// Routes SPI `intid` to vCPU `vcpu`; SGIs and PPIs have no routing.
        pub fn route(&self, intid: u32, vcpu: u8) {
            if intid >= FIRST_SPI {
                self.distributor
                    .write64(irouter_offset(intid), irouter_for(vcpu));
            }
        }

        /// `GICD_IROUTER<intid>` (0 for SGIs and PPIs).
        pub fn routing(&self, intid: u32) -> u64 {
            if intid >= FIRST_SPI {
                self.distributor.read64(irouter_offset(intid))
            } else {
                0
            }
        }

        pub fn send_sgi(&self, intid: u32, targets: SgiTargets) -> Result<(), SgiError> {
            self.write_sgi1r(sgi1r(intid, targets)?);
            Ok(())
        }

        /// Writes `value` to `ICC_SGI1R_EL1` as it is: any affinity, range
        /// or broadcast a test wants to aim at (see [`sgi1r_with_affinity`]).
        pub fn write_sgi1r(&self, value: u64) {
            // SAFETY: a write of ICC_SGI1R_EL1 (trapped and emulated by
            // Tessera); it raises interrupts, it touches no memory. The DSB
            // makes earlier stores visible to the targets' handlers first.
            unsafe {
                asm!("dsb ishst", "msr S3_0_C12_C11_5, {}", "isb", in(reg) value,
                     options(nostack, preserves_flags))
            };
        }

        pub fn acknowledge(&self) -> Acknowledged {
            decode_iar(sysreg_read!("S3_0_C12_C12_0"))
        }

        pub fn end_of_interrupt(&self, acknowledged: Acknowledged) {
            sysreg_write!("S3_0_C12_C12_1", acknowledged.raw);
        }

        pub fn set_priority_mask(&self, mask: u8) {
            sysreg_write!("S3_0_C4_C6_0", u64::from(mask));
        }

        pub fn priority_mask(&self) -> u8 {
            u8::try_from(sysreg_read!("S3_0_C4_C6_0") & 0xff).unwrap_or(0)
        }

        /// One past the largest INTID the distributor implements.
        pub fn lines(&self) -> u32 {
            lines(&self.distributor)
        }

        /// The identity of each frame in the redistributor region, until
        /// the one marked `Last` (at most `out`'s capacity).
        pub fn frames<const N: usize>(&self, out: &mut heapless::Vec<FrameIdentity, N>) {
            let frames = self.redistributors.size() / FRAME_BYTES;
            for index in 0..frames {
                let typer = self.redistributors.read64(index * FRAME_BYTES + GICR_TYPER);
                let identity = FrameIdentity::from_typer(typer);
                if out.push(identity).is_err() || identity.last {
                    break;
                }
            }
        }

        /// This vCPU's frame's offset in the redistributor region.
        pub fn frame_offset(&self) -> usize {
            self.frame.base() - self.redistributors.base()
        }
    }

    fn lines(distributor: &Mmio) -> u32 {
        let it_lines = distributor.read32(GICD_TYPER) & GICD_TYPER_IT_LINES;
        (32 * (it_lines + 1)).min(super::super::FIRST_SPECIAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgi1r_names_the_intid_and_the_target_list() {
        // SGI 5 to Aff0 0 and 1: INTID in [27:24], TargetList in [15:0].
        assert_eq!(sgi1r(5, SgiTargets::Vcpus(0b11)), Ok(0x0500_0003));
        // Affinities 2 and 3 (another partition's cores on the host).
        assert_eq!(sgi1r(8, SgiTargets::Vcpus(0b1100)), Ok(0x0800_000c));
        assert_eq!(sgi1r(15, SgiTargets::Vcpus(1)), Ok(0x0f00_0001));
    }

    #[test]
    fn sgi1r_broadcast_sets_irm_and_no_list() {
        assert_eq!(
            sgi1r(7, SgiTargets::AllButSelf),
            Ok((1 << 40) | 0x0700_0000)
        );
    }

    #[test]
    fn sgi1r_with_affinity_places_each_field() {
        // SGI 2 to Aff0 0 of cluster Aff1 = 1 (IHI 0069 §12.2.22).
        assert_eq!(sgi1r_with_affinity(2, 1, 0, 1), Ok(0x0201_0001));
        assert_eq!(
            sgi1r_with_affinity(2, 0x03_0201, 1, 0x8000),
            Ok(0x0003_1002_0201_8000),
            "Aff3 [55:48], RS [47:44], Aff2 [39:32], Aff1 [23:16]"
        );
        assert_eq!(
            sgi1r_with_affinity(16, 0, 0, 1),
            Err(SgiError::NotAnSgi(16))
        );
    }

    #[test]
    fn sgi1r_refuses_intids_that_are_not_sgis() {
        assert_eq!(sgi1r(16, SgiTargets::Vcpus(1)), Err(SgiError::NotAnSgi(16)));
    }

    #[test]
    fn affinity_value_packs_aff3_below_aff2() {
        assert_eq!(
            affinity_value(0x8000_0001),
            1,
            "bit 31 (RES1) is not affinity"
        );
        assert_eq!(affinity_value(0x0000_00ab_0001_0203), 0xab01_0203);
    }

    #[test]
    fn frame_identity_decodes_gicr_typer() {
        // Affinity 1, Processor_Number 1, Last.
        let identity = FrameIdentity::from_typer(0x0000_0001_0000_0110);
        assert_eq!(
            identity,
            FrameIdentity {
                affinity: 1,
                processor_number: 1,
                last: true
            }
        );
        assert!(!FrameIdentity::from_typer(0).last);
    }

    #[test]
    fn iar_keeps_24_bits_of_intid() {
        assert_eq!(decode_iar(27).intid, 27);
        assert_eq!(decode_iar(0x3ff).intid, super::super::SPURIOUS);
        assert_eq!(decode_iar(0xff00_0005).intid, 5);
    }

    #[test]
    fn register_offsets_match_the_specification() {
        assert_eq!(
            irouter_offset(32),
            0x6100,
            "GICD_IROUTER32 (IHI 0069 §12.9.22)"
        );
        assert_eq!(irouter_offset(97), 0x6308);
        assert_eq!(GICD_IPRIORITYR + 33, 0x421);
        assert_eq!(SGI_BASE as u64 * 2, FRAME_SIZE);
    }
}
