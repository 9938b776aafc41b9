//! This CPU: its number, its MPIDR, the counter, waiting and parking, and
//! the table secondary CPUs find their stacks in.

use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::{
    CNTFRQ_EL0, CNTPCT_EL0, ID_AA64ISAR0_EL1, MPIDR_EL1, Readable, SCTLR_EL2, TPIDR_EL2,
};

use crate::hw::cpus::{MAX_CPUS, MPIDR_AFFINITY_MASK};

/// Tessera's number for this CPU (0 is the boot CPU), kept in TPIDR_EL2.
pub fn index() -> usize {
    usize::try_from(TPIDR_EL2.get()).unwrap_or(0)
}

/// This CPU's MPIDR affinity fields.
pub fn mpidr() -> u64 {
    MPIDR_EL1.get() & MPIDR_AFFINITY_MASK
}

/// The physical counter. The ISB keeps the read from being hoisted above
/// earlier instructions (Arm ARM D12.1.2).
pub fn counter() -> u64 {
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
    CNTPCT_EL0.get()
}

/// Whether the CPU implements RNDR (FEAT_RNG).
pub fn has_random() -> bool {
    ID_AA64ISAR0_EL1.read(ID_AA64ISAR0_EL1::RNDR) != 0
}

/// A 64-bit random number from RNDR, where the CPU has FEAT_RNG and the
/// number generator gave one (it may fail, for a moment, to gather
/// entropy: then a few more tries).
pub fn random() -> Option<u64> {
    const TRIES: usize = 16;
    if !has_random() {
        return None;
    }
    (0..TRIES).find_map(|_| {
        let (value, failed): (u64, u64);
        // SAFETY: RNDR (S3_3_C2_C4_0) reads a random number and sets NZCV
        // (Z on failure); it touches no memory. FEAT_RNG was checked.
        unsafe {
            asm!(
                "mrs {value}, s3_3_c2_c4_0",
                "cset {failed}, eq",
                value = out(reg) value,
                failed = out(reg) failed,
                options(nomem, nostack),
            );
        }
        (failed == 0).then_some(value)
    })
}

/// Whether this CPU's EL2 MMU, and with it the data cache, is on. Before it
/// is, atomic read-modify-write must not be used (see `console.rs`).
pub fn mmu_enabled() -> bool {
    SCTLR_EL2.is_set(SCTLR_EL2::M)
}

/// The counter frequency as firmware programmed it.
pub fn counter_frequency() -> u64 {
    CNTFRQ_EL0.get()
}

/// Waits for an event (SEV from another CPU, or the event stream).
pub fn wait_for_event() {
    aarch64_cpu::asm::wfe();
}

/// Waits for an interrupt, even one masked at EL2 (a kick). Preferred to
/// WFE for long waits: QEMU's TCG spins through WFE, so CPUs waiting in it
/// take host time from those doing work.
pub fn wait_for_interrupt() {
    aarch64_cpu::asm::wfi();
}

/// Wakes CPUs waiting in WFE; the DSB makes earlier stores visible first.
pub fn send_event() {
    // SAFETY: barrier and event instructions have no memory-safety preconditions.
    unsafe { asm!("dsb ish", "sev", options(nostack, preserves_flags)) };
}

/// Stops this CPU for good, interrupts masked, in its lowest-power wait.
pub fn park() -> ! {
    // A timer left set would fire into the masked wait and, never taken,
    // keep waking it.
    super::hyp_timer::stop();
    // SAFETY: masking interrupts at EL2 has no memory-safety preconditions.
    unsafe {
        asm!(
            "msr daifset, #0xf",
            options(nomem, nostack, preserves_flags)
        )
    };
    loop {
        aarch64_cpu::asm::wfi();
    }
}

/// CNTHCTL_EL2 (non-VHE layout, Arm ARM D19.12): EVNTEN, bit 2, and EVNTI,
/// bits 7:4, the counter bit whose transitions generate an event.
const CNTHCTL_EVNTEN: u64 = 1 << 2;
const CNTHCTL_EVNTI_SHIFT: u64 = 4;
const CNTHCTL_EVNTI_MASK: u64 = 0xf << CNTHCTL_EVNTI_SHIFT;
/// Counter bit 15: an event every 2^16 ticks, about 1 ms at 62.5 MHz.
const EVENT_STREAM_BIT: u64 = 15;

/// Turns on the EL2 event stream so that a WFE-based wait can time out even
/// if the event it waits for never comes.
pub fn enable_event_stream() {
    let mut value: u64;
    // SAFETY: read-modify-write of this CPU's CNTHCTL_EL2 event-stream
    // fields, which only affect when WFE wakes up.
    unsafe {
        asm!("mrs {}, cnthctl_el2", out(reg) value, options(nomem, nostack, preserves_flags));
        value = (value & !CNTHCTL_EVNTI_MASK)
            | CNTHCTL_EVNTEN
            | (EVENT_STREAM_BIT << CNTHCTL_EVNTI_SHIFT);
        asm!("msr cnthctl_el2, {}", "isb", in(reg) value, options(nomem, nostack, preserves_flags));
    }
}

/// Where a secondary CPU finds its stack: entry.S scans this table for its
/// MPIDR with the MMU off, so the boot CPU cleans each slot to memory.
#[derive(Debug)]
#[repr(C)]
pub struct BootSlot {
    pub mpidr: AtomicU64,
    /// Top of the stack Tessera's code runs on (SP_EL0).
    pub stack_top: AtomicU64,
    /// Top of the stack exceptions run on (SP_EL2).
    pub exception_stack_top: AtomicU64,
}

/// An MPIDR no CPU has (bits outside the affinity fields), marking a free slot.
const NO_CPU: u64 = u64::MAX;

#[allow(
    clippy::declare_interior_mutable_const,
    reason = "used only to initialise the array below"
)]
const EMPTY_SLOT: BootSlot = BootSlot {
    mpidr: AtomicU64::new(NO_CPU),
    stack_top: AtomicU64::new(0),
    exception_stack_top: AtomicU64::new(0),
};

/// One slot per logical CPU; read by entry.S.
#[unsafe(no_mangle)]
pub static SECONDARY_BOOT: [BootSlot; MAX_CPUS] = [EMPTY_SLOT; MAX_CPUS];

/// Fills CPU `index`'s slot and writes it to memory for a CPU whose caches are off.
pub fn prepare_boot_slot(
    index: usize,
    mpidr: u64,
    stack_top: u64,
    exception_stack_top: u64,
) -> bool {
    let Some(slot) = SECONDARY_BOOT.get(index) else {
        return false;
    };
    slot.stack_top.store(stack_top, Ordering::Relaxed);
    slot.exception_stack_top
        .store(exception_stack_top, Ordering::Relaxed);
    slot.mpidr.store(mpidr, Ordering::Release);
    platform::cpu::cache::clean(
        core::ptr::from_ref(slot) as usize,
        core::mem::size_of::<BootSlot>(),
    );
    true
}
