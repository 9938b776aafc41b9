//! GICv2 as a guest sees it: the distributor and the CPU interface, which
//! Tessera backs with the hardware's virtual CPU interface (IHI 0048B).
//!
//! Set up as Linux's `irq-gic.c` does: every interrupt left in Group 0,
//! `GICC_CTLR.EnableGrp0` = 1, priority mask 0xf0, EOImode 0. A virtual
//! Group 0 interrupt is an IRQ unless `GICV_CTLR.FIQEn` is set, which the
//! kit never does.

use super::{Acknowledged, SgiError, SgiTargets};

/// Bytes of the distributor's registers (IHI 0048B §4.1.2: 4 KiB).
pub const DISTRIBUTOR_SIZE: u64 = 0x1000;
/// Bytes of the CPU interface's registers (§4.1.3: `GICC_DIR` at 0x1000).
pub const CPU_INTERFACE_SIZE: u64 = 0x2000;

// Distributor registers (§4.3), offsets from GICD.
pub const GICD_CTLR: usize = 0x000;
pub const GICD_TYPER: usize = 0x004;
pub const GICD_ICENABLER: usize = 0x180;
pub const GICD_ICACTIVER: usize = 0x380;
pub const GICD_IPRIORITYR: usize = 0x400;
pub const GICD_ITARGETSR: usize = 0x800;
pub const GICD_SGIR: usize = 0xf00;

/// `GICD_CTLR.Enable` (bit 0; EnableGrp0 where security is implemented).
pub const GICD_CTLR_ENABLE: u32 = 1 << 0;
/// `GICD_TYPER.ITLinesNumber` (bits [4:0]): INTIDs up to 32(N+1) - 1.
pub const GICD_TYPER_IT_LINES: u32 = 0x1f;

// CPU interface registers (§4.4), offsets from GICC.
pub const GICC_CTLR: usize = 0x00;
pub const GICC_PMR: usize = 0x04;
pub const GICC_IAR: usize = 0x0c;
pub const GICC_EOIR: usize = 0x10;

/// `GICC_CTLR.EnableGrp0` (bit 0) and `EOImode` (bit 9 in the non-secure
/// copy and in `GICV_CTLR`).
pub const GICC_CTLR_ENABLE_GRP0: u32 = 1 << 0;
pub const GICC_CTLR_EOI_MODE: u32 = 1 << 9;

/// `GICD_SGIR` fields (§4.3.15).
const SGIR_TARGET_LIST_SHIFT: u32 = 16;
const SGIR_FILTER_ALL_BUT_SELF: u32 = 0b01 << 24;

/// `GICC_IAR` fields (§4.4.4): the interrupt ID in [9:0], and for an SGI
/// the CPU interface that sent it in [12:10].
const IAR_INTID_MASK: u32 = 0x3ff;
const IAR_CPUID_SHIFT: u32 = 10;
const IAR_CPUID_MASK: u32 = 0x7;

/// The value of `GICD_SGIR` that sends SGI `intid` to `targets`
/// (`CPUTargetList` bit n = CPU interface n = vCPU n).
pub fn sgir(intid: u32, targets: SgiTargets) -> Result<u32, SgiError> {
    if !super::is_sgi(intid) {
        return Err(SgiError::NotAnSgi(intid));
    }
    Ok(match targets {
        SgiTargets::Vcpus(list) => {
            if list > 0xff {
                return Err(SgiError::TargetsOutOfRange { targets: list });
            }
            u32::from(list) << SGIR_TARGET_LIST_SHIFT | intid
        }
        SgiTargets::AllButSelf => SGIR_FILTER_ALL_BUT_SELF | intid,
    })
}

/// Decodes `GICC_IAR`.
pub fn decode_iar(value: u32) -> Acknowledged {
    let intid = value & IAR_INTID_MASK;
    Acknowledged {
        raw: u64::from(value),
        intid,
        source: super::is_sgi(intid)
            .then(|| u8::try_from((value >> IAR_CPUID_SHIFT) & IAR_CPUID_MASK).unwrap_or(0)),
    }
}

/// The `GICD_ITARGETSR` byte that targets vCPU `vcpu` alone.
pub fn target_byte(vcpu: u8) -> u8 {
    1u8.checked_shl(u32::from(vcpu)).unwrap_or(0)
}

#[cfg(target_os = "none")]
pub use self::target::Gic;

#[cfg(target_os = "none")]
mod target {
    use super::*;
    use crate::gic::{
        Acknowledged, DEFAULT_PRIORITY, DEFAULT_PRIORITY_MASK, FIRST_SPECIAL, FIRST_SPI, InitError,
        SgiError, SgiTargets, bit_slot, byte_slot,
    };
    use crate::mmio::Mmio;

    /// A GICv2 from one vCPU: the distributor and the CPU interface (banked
    /// per vCPU at the same address).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Gic {
        distributor: Mmio,
        cpu: Mmio,
    }

    impl Gic {
        pub(crate) fn new(distributor: Mmio, cpu: Mmio) -> Gic {
            Gic { distributor, cpu }
        }

        /// Sets up the distributor: every SPI disabled, inactive, priority
        /// [`DEFAULT_PRIORITY`] and targeted at the calling vCPU (whose bit
        /// `GICD_ITARGETSR0` reads, as Linux's `gic_get_cpumask`); then
        /// enabled.
        pub(crate) fn init_distributor(distributor: &Mmio) -> Result<(), InitError> {
            distributor.write32(GICD_CTLR, 0);
            let lines = lines(distributor);
            for first in (FIRST_SPI..lines).step_by(32) {
                let (offset, _) = bit_slot(first);
                distributor.write32(GICD_ICENABLER + offset, u32::MAX);
                distributor.write32(GICD_ICACTIVER + offset, u32::MAX);
            }
            let own = distributor.read32(GICD_ITARGETSR) & 0xff;
            let targets = own * 0x0101_0101;
            let priorities = u32::from_ne_bytes([DEFAULT_PRIORITY; 4]);
            for first in (FIRST_SPI..lines).step_by(4) {
                let (offset, _) = byte_slot(first);
                distributor.write32(GICD_IPRIORITYR + offset, priorities);
                distributor.write32(GICD_ITARGETSR + offset, targets);
            }
            distributor.write32(GICD_CTLR, GICD_CTLR_ENABLE);
            Ok(())
        }

        /// Sets up this vCPU's SGIs and PPIs (disabled, inactive,
        /// [`DEFAULT_PRIORITY`]; pending state is left alone) and its CPU
        /// interface.
        pub(crate) fn init_cpu(&self) -> Result<(), InitError> {
            self.distributor.write32(GICD_ICACTIVER, u32::MAX);
            self.distributor.write32(GICD_ICENABLER, u32::MAX);
            let priorities = u32::from_ne_bytes([DEFAULT_PRIORITY; 4]);
            for word in 0..8 {
                self.distributor
                    .write32(GICD_IPRIORITYR + 4 * word, priorities);
            }
            self.cpu.write32(GICC_PMR, u32::from(DEFAULT_PRIORITY_MASK));
            let control = self.cpu.read32(GICC_CTLR);
            self.cpu.write32(
                GICC_CTLR,
                (control & !GICC_CTLR_EOI_MODE) | GICC_CTLR_ENABLE_GRP0,
            );
            Ok(())
        }

        /// The block holding `intid`'s bits and bytes in the banks
        /// of [`crate::gic::ISENABLER`] and the others: the distributor, banked per vCPU
        /// for SGIs and PPIs.
        pub(crate) fn banks(&self, _intid: u32) -> Mmio {
            self.distributor
        }

        /// Targets SPI `intid` at vCPU `vcpu` alone (32-bit
        /// read-modify-write of its `GICD_ITARGETSR` word). SGI and PPI
        /// targets are read-only.
        pub fn route(&self, intid: u32, vcpu: u8) {
            if intid < FIRST_SPI {
                return;
            }
            let (offset, shift) = byte_slot(intid);
            let word = self.distributor.read32(GICD_ITARGETSR + offset);
            let word = (word & !(0xff << shift)) | u32::from(target_byte(vcpu)) << shift;
            self.distributor.write32(GICD_ITARGETSR + offset, word);
        }

        /// `intid`'s `GICD_ITARGETSR` byte.
        pub fn routing(&self, intid: u32) -> u64 {
            let (offset, shift) = byte_slot(intid);
            u64::from((self.distributor.read32(GICD_ITARGETSR + offset) >> shift) & 0xff)
        }

        /// `GICD_ITARGETSR0`: SGIs 0-3's targets, each the reading vCPU's
        /// own bit (IHI 0048B §4.3.12).
        pub fn own_targets_word(&self) -> u32 {
            self.distributor.read32(GICD_ITARGETSR)
        }

        pub fn send_sgi(&self, intid: u32, targets: SgiTargets) -> Result<(), SgiError> {
            let value = sgir(intid, targets)?;
            // Earlier stores reach memory before the targets' handlers run.
            // SAFETY: a barrier; it changes no memory.
            unsafe { core::arch::asm!("dsb ishst", options(nostack, preserves_flags)) };
            self.distributor.write32(GICD_SGIR, value);
            Ok(())
        }

        pub fn acknowledge(&self) -> Acknowledged {
            decode_iar(self.cpu.read32(GICC_IAR))
        }

        pub fn end_of_interrupt(&self, acknowledged: Acknowledged) {
            self.cpu.write32(
                GICC_EOIR,
                u32::try_from(acknowledged.raw).unwrap_or(u32::MAX),
            );
        }

        pub fn set_priority_mask(&self, mask: u8) {
            self.cpu.write32(GICC_PMR, u32::from(mask));
        }

        pub fn priority_mask(&self) -> u8 {
            u8::try_from(self.cpu.read32(GICC_PMR) & 0xff).unwrap_or(0)
        }

        /// One past the largest INTID the distributor implements.
        pub fn lines(&self) -> u32 {
            lines(&self.distributor)
        }
    }

    fn lines(distributor: &Mmio) -> u32 {
        let it_lines = distributor.read32(GICD_TYPER) & GICD_TYPER_IT_LINES;
        (32 * (it_lines + 1)).min(FIRST_SPECIAL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgir_puts_the_target_list_in_bits_23_16() {
        assert_eq!(sgir(3, SgiTargets::Vcpus(0b10)), Ok(0x0002_0003));
        assert_eq!(sgir(8, SgiTargets::Vcpus(0b1100)), Ok(0x000c_0008));
    }

    #[test]
    fn sgir_all_but_self_uses_the_filter() {
        assert_eq!(sgir(7, SgiTargets::AllButSelf), Ok(0x0100_0007));
    }

    #[test]
    fn sgir_refuses_what_gicv2_cannot_address() {
        assert_eq!(sgir(16, SgiTargets::Vcpus(1)), Err(SgiError::NotAnSgi(16)));
        assert_eq!(
            sgir(1, SgiTargets::Vcpus(0x100)),
            Err(SgiError::TargetsOutOfRange { targets: 0x100 })
        );
    }

    #[test]
    fn iar_gives_the_source_of_sgis_only() {
        let sgi = decode_iar(0x0000_0c05); // SGI 5 from CPU interface 3
        assert_eq!((sgi.intid, sgi.source, sgi.raw), (5, Some(3), 0xc05));
        let ppi = decode_iar(27);
        assert_eq!((ppi.intid, ppi.source), (27, None));
        assert_eq!(decode_iar(0x3ff).intid, super::super::SPURIOUS);
    }

    #[test]
    fn target_bytes_name_one_vcpu() {
        assert_eq!(target_byte(0), 1);
        assert_eq!(target_byte(3), 8);
        assert_eq!(target_byte(8), 0, "GICv2 has CPU interfaces 0-7 only");
    }

    #[test]
    fn register_offsets_match_the_specification() {
        assert_eq!(GICD_ITARGETSR + 33, 0x821);
        assert_eq!(GICD_SGIR, 0xf00, "IHI 0048B Table 4-1");
        assert_eq!(GICC_EOIR, 0x10, "IHI 0048B Table 4-2");
    }
}
