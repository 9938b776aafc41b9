//! Time from the generic timer's virtual counter, and bounded waiting.

use core::arch::asm;

use crate::cpu;

/// The counter frequency assumed when `CNTFRQ_EL0` reads 0 (firmware did not
/// set it): high, so that deadlines come late rather than early.
const FALLBACK_FREQUENCY: u64 = 1_000_000_000;

/// `CNTVCT_EL0`.
pub fn counter() -> u64 {
    let ticks: u64;
    // SAFETY: reading the virtual counter has no side effect. The ISB keeps
    // the read from being performed early.
    unsafe {
        asm!("isb", "mrs {}, cntvct_el0", out(reg) ticks, options(nomem, nostack, preserves_flags))
    };
    ticks
}

/// Counter ticks per second.
pub fn frequency() -> u64 {
    let frequency: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effect.
    unsafe {
        asm!("mrs {}, cntfrq_el0", out(reg) frequency, options(nomem, nostack, preserves_flags))
    };
    if frequency == 0 {
        FALLBACK_FREQUENCY
    } else {
        frequency
    }
}

/// Counter ticks in `milliseconds`.
pub fn ticks(milliseconds: u64) -> u64 {
    frequency().saturating_mul(milliseconds) / 1000
}

/// At most this many checks per millisecond of [`wait_until`]: a second
/// bound, for a counter that does not advance. Far more than the event
/// stream produces (under 10 per millisecond), and more than an emulator
/// that treats `WFE` as a no-op manages.
const MAX_CHECKS_PER_MS: u64 = 100_000;

/// Waits until `done()` holds or `milliseconds` have passed, sleeping in
/// `WFE` between checks (woken by [`cpu::send_event`] or the event stream).
/// Returns whether `done()` held. Bounded by the counter and by a number of
/// checks, never a hang.
pub fn wait_until(milliseconds: u64, mut done: impl FnMut() -> bool) -> bool {
    let start = counter();
    let limit = ticks(milliseconds);
    let max_checks = milliseconds.saturating_mul(MAX_CHECKS_PER_MS).max(1);
    for _ in 0..max_checks {
        if done() {
            return true;
        }
        if counter().wrapping_sub(start) > limit {
            break;
        }
        cpu::wait_for_event();
    }
    done()
}
