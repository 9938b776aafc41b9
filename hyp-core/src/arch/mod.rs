//! AArch64 at EL2: entry and vectors (assembly), per-CPU registers, the MMU
//! and exception handling. Built only for the bare-metal target.

pub mod cpu;
pub mod crash_entry;
pub mod hyp_timer;
pub mod layout;
pub mod mmu;
pub mod virtualization;

use core::arch::global_asm;
use core::mem::{offset_of, size_of};

use crate::esr;
use crate::exception::{TRAP_FRAME_SIZE, VectorKind};
use crate::guest::context::VcpuRegisters;
use crate::guest::smccc;
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

global_asm!(
    include_str!("fast_calls.S"),
    call_immediate_mask = const esr::ISS_CALL_IMMEDIATE_MASK,
    ec_shift = const esr::EC_SHIFT,
    ec_hvc64 = const esr::ec::HVC64,
    constant_calls = sym smccc::CONSTANT_CALLS,
    owner_shift = const smccc::OWNER_SHIFT,
    owner_vendor_hypervisor = const smccc::OWNER_VENDOR_HYPERVISOR,
    general_queries = const smccc::GENERAL_QUERIES,
    not_supported = const smccc::PsciReturn::NotSupported as i64,
    lower_el64_sync = const VectorKind::LowerEl64Sync as u64,
);

/// What the fast half (`fast_exit` in `partition/fast_exit.rs`) did with
/// an exit, for `guest.S`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum FastExit {
    /// Nothing: the run loop handles the exit.
    Slow = 0,
    /// Handled: back into the guest at once.
    Resume = 1,
    /// Handled, but the run loop must look before the guest runs again (a
    /// list register to fill, a stop, a request to park).
    Handled = 2,
}

global_asm!(
    include_str!("guest.S"),
    resume = const FastExit::Resume as u64,
    slow = const FastExit::Slow as u64,
    handled = const HANDLED,
    host = const offset_of!(VcpuRegisters, host),
    sp_el0 = const offset_of!(VcpuRegisters, sp_el0),
    pc = const offset_of!(VcpuRegisters, pc),
    esr = const offset_of!(VcpuRegisters, esr),
    hpfar = const offset_of!(VcpuRegisters, hpfar),
);

unsafe extern "C" {
    /// First instruction of a secondary CPU (entry.S).
    pub fn secondary_entry();
    /// Runs the guest whose registers begin `vcpu` until an exit the fast
    /// half leaves to the run loop; returns its vector index (guest.S).
    fn guest_enter(vcpu: *mut VcpuRegisters) -> u64;
}

/// What [`run_guest`] returns for an exit the fast half handled but the
/// run loop must look at (beyond every vector index).
pub const HANDLED: u64 = 16;

/// Runs the guest until an exit the fast half (`partition/fast_exit.rs`)
/// does not finish; returns the exit's vector index (8-15: the lower-EL
/// entries of [`crate::exception::VectorKind`]), or [`HANDLED`].
///
/// # Safety
///
/// `vcpu` points at the guest's registers at the start of the struct the
/// fast half takes back (`RunningVcpu`), valid for reads and writes for
/// the call and used by nothing else meanwhile. This CPU's EL2 state must
/// be set up for the guest (stage 2 with its own VMID, HCR_EL2 trapping
/// what Tessera must see): the guest then reaches nothing but its own
/// memory and traps everything else to EL2.
pub unsafe fn run_guest(vcpu: *mut VcpuRegisters) -> u64 {
    // SAFETY: the caller vouches for the pointer and the EL2
    // configuration. guest_enter preserves the callee-saved registers and
    // stack pointer as the ABI requires.
    unsafe { guest_enter(vcpu) }
}
