//! The running vCPU: its index, its MPIDR, events and waiting.

use core::arch::asm;

unsafe extern "C" {
    /// The `CPU_ON` entry point (see [`crate::boot`]).
    fn _secondary_entry();
}

/// The address to give PSCI `CPU_ON` for a vCPU that should run the guest's
/// secondary entry (`entry!(main, secondary)`).
pub fn secondary_entry_point() -> u64 {
    _secondary_entry as *const () as usize as u64
}

/// This vCPU's index, which the boot stub keeps in `TPIDR_EL1`: 0 on the
/// boot vCPU, MPIDR Aff0 on the others.
pub fn index() -> usize {
    let index: u64;
    // SAFETY: reading TPIDR_EL1 has no side effect.
    unsafe { asm!("mrs {}, tpidr_el1", out(reg) index, options(nomem, nostack, preserves_flags)) };
    usize::try_from(index).unwrap_or(usize::MAX)
}

/// `MPIDR_EL1`.
pub fn mpidr() -> u64 {
    let mpidr: u64;
    // SAFETY: reading MPIDR_EL1 has no side effect.
    unsafe { asm!("mrs {}, mpidr_el1", out(reg) mpidr, options(nomem, nostack, preserves_flags)) };
    mpidr
}

/// Waits for an event (`WFE`). The boot stub's event stream wakes it at
/// least every few hundred microseconds, so a loop around it that checks a
/// deadline ([`crate::time::wait_until`]) is bounded.
pub fn wait_for_event() {
    // SAFETY: WFE only waits; it touches no memory.
    unsafe { asm!("wfe", options(nomem, nostack, preserves_flags)) };
}

/// Makes earlier stores visible to every vCPU, then signals an event
/// (`DSB SY; SEV`) to wake the ones waiting in [`wait_for_event`].
pub fn send_event() {
    // SAFETY: a barrier and an event; no memory is changed.
    unsafe { asm!("dsb sy", "sev", options(nostack, preserves_flags)) };
}

/// `DAIF.I` (bit 7): IRQs masked.
const DAIF_I: u64 = 1 << 7;

/// Masks IRQs (`PSTATE.I` = 1). A pending interrupt then waits, and still
/// ends a `WFI`.
pub fn mask_irqs() {
    // SAFETY: only the interrupt mask changes. Not `nomem`: the compiler
    // must not move memory accesses across it (handlers write memory).
    unsafe { asm!("msr daifset, #2", options(nostack, preserves_flags)) };
}

/// Unmasks IRQs (`PSTATE.I` = 0): a pending interrupt is taken at once,
/// and its handler may change memory (hence no `nomem`).
pub fn unmask_irqs() {
    // SAFETY: the kit's IRQ vector saves and restores every register.
    unsafe { asm!("msr daifclr, #2", "isb", options(nostack, preserves_flags)) };
}

/// Whether IRQs are masked (`PSTATE.I`).
pub fn irqs_masked() -> bool {
    let daif: u64;
    // SAFETY: reading DAIF has no side effect.
    unsafe { asm!("mrs {}, daif", out(reg) daif, options(nomem, nostack, preserves_flags)) };
    daif & DAIF_I != 0
}

/// Waits for an interrupt (`WFI`): returns when one is pending, masked or
/// not. Without an armed timer or another source, this may be forever.
pub fn wait_for_interrupt() {
    // SAFETY: WFI only waits. Not `nomem`: with IRQs unmasked, a handler
    // may run before it returns.
    unsafe { asm!("wfi", options(nostack, preserves_flags)) };
}

/// Bit of the virtual counter whose transitions generate the event stream:
/// an event every 2^13 ticks (131 us at QEMU's 62.5 MHz, 152 us at 54 MHz).
const EVENT_STREAM_BIT: u64 = 12;
/// `CNTKCTL_EL1.EVNTEN` (bit 2) and `EVNTI` (bits [7:4]), Arm ARM D23.8.
const CNTKCTL_EVNTEN: u64 = 1 << 2;
const CNTKCTL_EVNTI_SHIFT: u64 = 4;
const CNTKCTL_EVNTI_MASK: u64 = 0xf << CNTKCTL_EVNTI_SHIFT;

/// Turns on the generic timer's event stream, so that `WFE` never waits
/// for an event nobody sends.
pub fn enable_event_stream() {
    let mut control: u64;
    // SAFETY: reading CNTKCTL_EL1 has no side effect.
    unsafe {
        asm!("mrs {}, cntkctl_el1", out(reg) control, options(nomem, nostack, preserves_flags))
    };
    control &= !CNTKCTL_EVNTI_MASK;
    control |= CNTKCTL_EVNTEN | EVENT_STREAM_BIT << CNTKCTL_EVNTI_SHIFT;
    // SAFETY: the event stream only wakes WFE; EL0 access bits are kept.
    unsafe {
        asm!("msr cntkctl_el1, {}", "isb", in(reg) control, options(nomem, nostack, preserves_flags));
    }
}

/// Stops this vCPU for good (interrupts stay masked): where a vCPU goes
/// when PSCI could not turn it or the partition off.
pub fn park() -> ! {
    loop {
        wait_for_event();
    }
}
