//! Tessera's own timer: this CPU's EL2 physical timer (CNTHP, Arm ARM
//! D12.8.3). Guests never reach it (their timers are the EL1 ones), so
//! Tessera sets it without saving anything of theirs. Its PPI reaches EL2
//! like every physical interrupt (HCR_EL2.IMO).

use core::arch::asm;

use aarch64_cpu::registers::{CNTHP_CTL_EL2, Readable, Writeable};

/// Makes the timer fire at counter value `deadline`, or keeps it if it
/// already fires no later.
pub fn fire_by(deadline: u64) {
    if CNTHP_CTL_EL2.is_set(CNTHP_CTL_EL2::ENABLE) && compare_value() <= deadline {
        return;
    }
    // SAFETY: CNTHP_CVAL_EL2 is this CPU's EL2 timer compare value; only
    // Tessera uses the EL2 timer, so no one else's deadline is lost.
    unsafe {
        asm!("msr cnthp_cval_el2, {}", in(reg) deadline, options(nomem, nostack, preserves_flags));
    }
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET + CNTHP_CTL_EL2::IMASK::CLEAR);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Turns the timer off: its (level) interrupt drops, so it can be
/// deactivated without firing again.
pub fn stop() {
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR + CNTHP_CTL_EL2::IMASK::SET);
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

fn compare_value() -> u64 {
    let value: u64;
    // SAFETY: reading this CPU's EL2 timer compare value has no side effects.
    unsafe {
        asm!("mrs {}, cnthp_cval_el2", out(reg) value, options(nomem, nostack, preserves_flags));
    }
    value
}
