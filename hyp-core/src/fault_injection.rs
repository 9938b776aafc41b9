//! Failing on purpose, so a board's crash report can be seen (and tested)
//! before it is needed: `/chosen/tessera,fault-injection`.

use core::sync::atomic::{AtomicU64, Ordering};

use log::warn;

use crate::arch::{cpu, hyp_timer};
use crate::console;
use crate::mm::hyp_map::UNMAPPED_PROBE;

/// How long after boot `"panic-while-running"` fires: partitions run by then.
const WHILE_RUNNING_DELAY_MS: u64 = 500;
/// Tessera's number for the boot CPU, which set the timer.
const BOOT_CPU: usize = 0;
/// Counter value at which the boot CPU panics (0: never).
static PANIC_AT: AtomicU64 = AtomicU64::new(0);

/// `/chosen/tessera,fault-injection`: makes Tessera fail on purpose, so a
/// board's crash report can be seen (and tested) before it is needed.
pub fn inject_fault(kind: &str) {
    warn!("fault injection requested: {kind}");
    match kind {
        #[allow(clippy::panic, reason = "a requested panic is the point")]
        "panic" => panic!("fault injection: /chosen/tessera,fault-injection = \"panic\""),
        "data-abort" => {
            // SAFETY: not safe by design: the address is unmapped at EL2
            // (hyp_map::UNMAPPED_PROBE), so this load takes a data abort,
            // which ends in the crash report before any value is used.
            let _ = unsafe { core::ptr::read_volatile(UNMAPPED_PROBE.0 as *const u64) };
        }
        "stack-overflow" => {
            core::hint::black_box(overflow_stack(0));
        }
        "panic-while-running" => {
            // Fired by Tessera's own timer on this (the boot) CPU, which by
            // then runs a guest or waits for one: a crash that must stop
            // the CPUs in their guests.
            let at = cpu::counter().saturating_add(console::ticks_in_ms(WHILE_RUNNING_DELAY_MS));
            PANIC_AT.store(at, Ordering::Relaxed);
            hyp_timer::fire_by(at);
        }
        "undefined-instruction" => {
            // SAFETY: UDF takes an undefined-instruction exception into the
            // crash report; it touches no memory.
            unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
        }
        other => {
            warn!(
                "unknown fault \"{other}\" (panic, panic-while-running, data-abort, stack-overflow, undefined-instruction): ignored"
            )
        }
    }
}

/// Tessera's timer fired on this CPU: a `"panic-while-running"` that is
/// due panics here; one still to come keeps the timer set for it.
pub fn timer_fired() {
    let at = PANIC_AT.load(Ordering::Relaxed);
    if at == 0 || cpu::index() != BOOT_CPU {
        return;
    }
    if cpu::counter() < at {
        hyp_timer::fire_by(at);
        return;
    }
    #[allow(clippy::panic, reason = "a requested panic is the point")]
    {
        panic!("fault injection: /chosen/tessera,fault-injection = \"panic-while-running\"");
    }
}

/// Recurses with 512-byte frames until the boot stack runs into its guard page.
#[inline(never)]
fn overflow_stack(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 64]);
    if depth == u64::MAX {
        return frame[0];
    }
    // Using the result after the call keeps it from becoming a loop.
    overflow_stack(depth + 1).wrapping_add(frame[63])
}
