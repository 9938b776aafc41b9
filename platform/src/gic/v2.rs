//! GICv2 with the virtualization extensions (the GIC-400 of Raspberry Pi 4
//! and 5; QEMU virt with `gic-version=2`).

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use super::distributor::DistributorBanks;
use super::{DEFAULT_PRIORITY, FIRST_SPI, GicInfo, PPI_ENABLE_BITS, PRIORITY_MASK_ALL};
use crate::mmio::Mmio;

/// GICD_CTLR.Enable (non-secure view: enables Group 1 forwarding).
const GICD_CTLR_ENABLE: u32 = 1;
/// GICD_SGIR.CPUTargetList, bits [23:16] (TargetListFilter 0: use the list).
const SGIR_TARGET_LIST_SHIFT: u32 = 16;

register_bitfields! {u32,
    /// GICC_CTLR (non-secure view).
    pub GICC_CTLR [
        ENABLE_GRP1 OFFSET(0) NUMBITS(1) [],
    ],
    /// GICH_VTR.
    pub GICH_VTR [
        LIST_REGS OFFSET(0) NUMBITS(6) [],
    ],
}

register_structs! {
    /// GICv2 distributor (4 KiB).
    pub GicdV2 {
        (0x000 => pub banks: DistributorBanks),
        (0xd00 => _reserved0),
        (0xf00 => pub sgir: WriteOnly<u32>),
        (0xf04 => _reserved1),
        (0xf10 => pub cpendsgir: [ReadWrite<u32>; 4]),
        (0xf20 => pub spendsgir: [ReadWrite<u32>; 4]),
        (0xf30 => _reserved2),
        (0x1000 => @END),
    },
    /// GICv2 CPU interface (the first 4 KiB page; GICC_DIR is on the second).
    pub Gicc {
        (0x000 => pub ctlr: ReadWrite<u32, GICC_CTLR::Register>),
        (0x004 => pub pmr: ReadWrite<u32>),
        (0x008 => pub bpr: ReadWrite<u32>),
        (0x00c => pub iar: ReadOnly<u32>),
        (0x010 => pub eoir: WriteOnly<u32>),
        (0x014 => pub rpr: ReadOnly<u32>),
        (0x018 => pub hppir: ReadOnly<u32>),
        (0x01c => _reserved0),
        (0x0fc => pub iidr: ReadOnly<u32>),
        (0x100 => @END),
    },
    /// The virtual interface control registers (GICH), the part of the
    /// virtualization extensions Tessera reads now.
    pub Gich {
        (0x000 => pub hcr: ReadWrite<u32>),
        (0x004 => pub vtr: ReadOnly<u32, GICH_VTR::Register>),
        (0x008 => pub vmcr: ReadWrite<u32>),
        (0x00c => _reserved0),
        (0x010 => pub misr: ReadOnly<u32>),
        (0x014 => _reserved1),
        (0x100 => pub lr: [ReadWrite<u32>; 64]),
        (0x200 => @END),
    }
}

/// A GICv2.
#[derive(Debug)]
pub struct GicV2 {
    distributor: Mmio<GicdV2>,
    cpu_interface: Mmio<Gicc>,
    hyp_interface: Mmio<Gich>,
}

impl GicV2 {
    /// # Safety
    ///
    /// The three addresses must be the GICD, GICC and GICH frames of one
    /// GICv2, mapped as device memory, and this value its only driver.
    pub unsafe fn new(distributor: usize, cpu_interface: usize, hyp_interface: usize) -> GicV2 {
        // SAFETY: forwarded from this function's contract.
        let distributor = unsafe { Mmio::new(distributor) };
        // SAFETY: forwarded from this function's contract.
        let cpu_interface = unsafe { Mmio::new(cpu_interface) };
        // SAFETY: forwarded from this function's contract.
        let hyp_interface = unsafe { Mmio::new(hyp_interface) };
        GicV2 {
            distributor,
            cpu_interface,
            hyp_interface,
        }
    }

    /// Resets the shared state; once, on the boot CPU.
    pub fn init_distributor(&self) {
        let gicd = &self.distributor;
        gicd.banks.ctlr.set(0);
        gicd.banks.reset_spis();
        // Route every SPI to this CPU: GICD_ITARGETSR0-7 are read-only and
        // banked, each byte holding the reading CPU's own target bit
        // (IHI 0048B §4.3.12); copy that byte to every SPI's target field.
        let this_cpu = gicd.banks.itargetsr.first().map_or(0, |r| r.get() & 0xff);
        let lines = gicd.banks.lines().min(1020) as usize;
        for register in gicd
            .banks
            .itargetsr
            .iter()
            .take(lines / 4)
            .skip(FIRST_SPI as usize / 4)
        {
            register.set(this_cpu * 0x0101_0101);
        }
        gicd.banks.ctlr.set(GICD_CTLR_ENABLE);
    }

    /// Resets this CPU's banked SGI/PPI state and enables its CPU interface;
    /// on every CPU.
    pub fn init_cpu(&self) {
        let banks = &self.distributor.banks;
        if let Some(register) = banks.icenabler.first() {
            register.set(PPI_ENABLE_BITS);
        }
        let priority_word = u32::from_ne_bytes([DEFAULT_PRIORITY; 4]);
        for register in banks.ipriorityr.iter().take(8) {
            register.set(priority_word);
        }
        let gicc = &self.cpu_interface;
        gicc.pmr.set(PRIORITY_MASK_ALL);
        gicc.bpr.set(0);
        gicc.ctlr.write(GICC_CTLR::ENABLE_GRP1::SET);
    }

    /// This CPU's bit in GICD_ITARGETSR and GICD_SGIR.CPUTargetList: the
    /// banked GICD_ITARGETSR0 reads as the reading CPU's own target mask
    /// (IHI 0048B §4.3.12).
    pub fn this_cpu_target(&self) -> u8 {
        self.distributor
            .banks
            .itargetsr
            .first()
            .map_or(0, |r| r.get().to_le_bytes()[0])
    }

    /// Enables SGI `intid` on this CPU (a no-op where SGIs are always on).
    pub fn enable_sgi(&self, intid: u32) {
        if let Some(register) = self.distributor.banks.isenabler.first() {
            register.set(1 << (intid % 16));
        }
    }

    /// Sends SGI `intid` to the CPUs in `targets` (GICD_SGIR.CPUTargetList).
    pub fn send_sgi(&self, intid: u32, targets: u8) {
        self.distributor
            .sgir
            .set((u32::from(targets) << SGIR_TARGET_LIST_SHIFT) | (intid % 16));
    }

    /// GICC_IAR: the raw value (INTID and, for SGIs, the source CPU), to be
    /// handed back to [`GicV2::end_of_interrupt`].
    pub fn acknowledge(&self) -> u32 {
        self.cpu_interface.iar.get()
    }

    pub fn end_of_interrupt(&self, iar: u32) {
        self.cpu_interface.eoir.set(iar);
    }

    pub fn info(&self) -> GicInfo {
        GicInfo {
            version: 2,
            lines: self.distributor.banks.lines(),
            list_registers: self.hyp_interface.vtr.read(GICH_VTR::LIST_REGS) + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_the_architected_sizes() {
        assert_eq!(core::mem::size_of::<GicdV2>(), 0x1000);
        assert_eq!(core::mem::offset_of!(GicdV2, sgir), 0xf00);
        assert_eq!(core::mem::offset_of!(Gicc, iidr), 0xfc);
        assert_eq!(core::mem::offset_of!(Gich, lr), 0x100);
    }
}
