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
/// GICC_DIR sits on the CPU interface's second 4 KiB page (IHI 0048B §4.3).
const GICC_DIR_OFFSET: usize = 0x1000;
/// GICH_HCR.En: the virtual CPU interface runs (IHI 0048B §5.3.1).
const GICH_HCR_EN: u32 = 1 << 0;
/// GICH_HCR.UIE: maintenance interrupt while at most one list register is valid.
const GICH_HCR_UIE: u32 = 1 << 1;

register_bitfields! {u32,
    /// GICC_CTLR (non-secure view).
    pub GICC_CTLR [
        ENABLE_GRP1 OFFSET(0) NUMBITS(1) [],
        /// Split priority drop (EOIR) from deactivation (DIR), so that a
        /// guest's deactivation of a hardware-linked interrupt reaches here.
        EOI_MODE_NS OFFSET(9) NUMBITS(1) [],
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
        (0x030 => pub elrsr: [ReadOnly<u32>; 2]),
        (0x038 => _reserved2),
        (0x0f0 => pub apr: ReadWrite<u32>),
        (0x0f4 => _reserved3),
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
        // SPIs join the group SGIs and PPIs are in, the one GICC_CTLR
        // enables: Group 0 on a GIC without Security Extensions (QEMU
        // virt), where Group 1 would never be signalled; with them (the
        // GIC-400 of the Raspberry Pis), a non-secure Tessera's IGROUPR
        // writes are ignored and firmware has made everything Group 1.
        gicd.banks.reset_spis(false);
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
        gicc.ctlr
            .write(GICC_CTLR::ENABLE_GRP1::SET + GICC_CTLR::EOI_MODE_NS::SET);
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
        // The stores the SGI announces reach the target before the SGI
        // (the distributor write is a Device access, not ordered after
        // normal-memory stores by itself).
        // SAFETY: a barrier; it changes no memory.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            core::arch::asm!("dmb ishst", options(nostack, preserves_flags));
        }
        self.distributor
            .sgir
            .set((u32::from(targets) << SGIR_TARGET_LIST_SHIFT) | (intid % 16));
    }

    /// GICC_IAR: the raw value (INTID and, for SGIs, the source CPU), to be
    /// handed back to [`GicV2::end_of_interrupt`].
    pub fn acknowledge(&self) -> u32 {
        self.cpu_interface.iar.get()
    }

    /// Priority drop only (EOImode 1): [`GicV2::deactivate`] finishes.
    pub fn end_of_interrupt(&self, iar: u32) {
        self.cpu_interface.eoir.set(iar);
    }

    /// GICC_DIR: deactivates an interrupt whose priority was dropped.
    pub fn deactivate(&self, iar: u32) {
        // SAFETY: GICC_DIR is a 32-bit write-only register on the CPU
        // interface's second page, which `new`'s contract maps with the first.
        unsafe {
            core::ptr::write_volatile(
                (self.cpu_interface.address() + GICC_DIR_OFFSET) as *mut u32,
                iar,
            );
        }
    }

    /// Enables (or disables) SGI/PPI `intid` on this CPU: GICD_I[SC]ENABLER0
    /// is banked per CPU.
    pub fn set_private_enabled(&self, intid: u32, enabled: bool) {
        let banks = &self.distributor.banks;
        let register = if enabled {
            banks.isenabler.first()
        } else {
            banks.icenabler.first()
        };
        if let Some(register) = register {
            register.set(1 << (intid % 32));
        }
    }

    /// The distributor's banks shared with the other GIC version.
    pub fn banks(&self) -> &DistributorBanks {
        &self.distributor.banks
    }

    /// Enables (or disables) SPI `intid` and sends it to the CPUs in `targets`.
    pub fn set_spi(&self, intid: u32, enabled: bool, targets: u8) {
        let banks = &self.distributor.banks;
        let index = (intid / 32) as usize;
        let bit = 1 << (intid % 32);
        if enabled {
            if let Some(register) = banks.itargetsr.get((intid / 4) as usize) {
                let shift = (intid % 4) * 8;
                let value = register.get() & !(0xff << shift);
                register.set(value | (u32::from(targets) << shift));
            }
            if let Some(register) = banks.isenabler.get(index) {
                register.set(bit);
            }
        } else if let Some(register) = banks.icenabler.get(index) {
            register.set(bit);
        }
    }

    /// List register `index` of this CPU's virtual interface.
    pub fn list_register(&self, index: usize) -> u32 {
        self.hyp_interface.lr.get(index).map_or(0, Readable::get)
    }

    pub fn set_list_register(&self, index: usize, value: u32) {
        if let Some(register) = self.hyp_interface.lr.get(index) {
            register.set(value);
        }
    }

    /// GICH_ELRSR0/1: a set bit is an empty list register.
    pub fn empty_list_registers(&self) -> u64 {
        let [low, high] = &self.hyp_interface.elrsr;
        u64::from(low.get()) | (u64::from(high.get()) << 32)
    }

    /// Turns the virtual CPU interface on, with the underflow maintenance
    /// interrupt when `underflow` is set.
    pub fn set_virtual_interface(&self, underflow: bool) {
        let uie = if underflow { GICH_HCR_UIE } else { 0 };
        self.hyp_interface.hcr.set(GICH_HCR_EN | uie);
    }

    /// Clears the virtual CPU interface's guest state (a fresh vCPU).
    pub fn reset_virtual_interface(&self) {
        self.hyp_interface.vmcr.set(0);
        self.hyp_interface.apr.set(0);
        let implemented = self.hyp_interface.vtr.read(GICH_VTR::LIST_REGS) as usize + 1;
        for register in self.hyp_interface.lr.iter().take(implemented) {
            register.set(0);
        }
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
