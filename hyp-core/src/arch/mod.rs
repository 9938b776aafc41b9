//! AArch64 at EL2: entry and vectors (assembly), per-CPU registers, the MMU
//! and exception handling. Built only for the bare-metal target.

pub mod cpu;
pub mod exceptions;
pub mod layout;
pub mod mmu;

use core::arch::global_asm;
use core::mem::{offset_of, size_of};

use crate::exception::TRAP_FRAME_SIZE;
use crate::hw::cpus::MAX_CPUS;

/// arm64 Image header flags (booting.rst): bit 0 little-endian (0), bits
/// 1-2 page size (1 = 4 KiB), bit 3 "may be placed anywhere in RAM" (1).
const IMAGE_FLAGS: u64 = (1 << 1) | (1 << 3);
/// ELF relocation type R_AARCH64_RELATIVE (ELF for the Arm 64-bit Architecture §5.7.11).
const R_AARCH64_RELATIVE: u64 = 1027;
/// HCR_EL2 at entry: only RW (bit 31), "EL1 is AArch64". E2H clear so that
/// the EL2 registers have their non-VHE layout whatever firmware left.
const HCR_EL2_AT_ENTRY: u64 = 1 << 31;

global_asm!(
    include_str!("entry.S"),
    image_flags = const IMAGE_FLAGS,
    r_aarch64_relative = const R_AARCH64_RELATIVE,
    hcr_el2 = const HCR_EL2_AT_ENTRY,
    max_cpus = const MAX_CPUS,
    slot_mpidr = const offset_of!(cpu::BootSlot, mpidr),
    slot_stack_top = const offset_of!(cpu::BootSlot, stack_top),
    slot_exception_stack_top = const offset_of!(cpu::BootSlot, exception_stack_top),
    slot_size = const size_of::<cpu::BootSlot>(),
);

global_asm!(include_str!("vectors.S"), frame_size = const TRAP_FRAME_SIZE);

unsafe extern "C" {
    /// First instruction of a secondary CPU (entry.S).
    pub fn secondary_entry();
}
