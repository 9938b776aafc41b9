//! Failing on purpose, so a board's crash report can be seen (and tested)
//! before it is needed: `/chosen/tessera,fault-injection`.

use core::sync::atomic::{AtomicBool, Ordering};

use log::warn;

use crate::arch::{cpu, hyp_timer};
use crate::console;
use crate::mm::hyp_map::UNMAPPED_PROBE;

/// How often a `"panic-while-running"` looks whether every partition has
/// printed a line yet (it fires once they have, so a loaded machine cannot
/// make it beat them).
const WHILE_RUNNING_POLL_MS: u64 = 10;
/// Tessera's number for the boot CPU, which set the timer.
const BOOT_CPU: usize = 0;
/// Whether the boot CPU panics once every partition has printed a line.
static ARMED: AtomicBool = AtomicBool::new(false);

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
            // then runs a guest or waits for one, once every partition has
            // printed a line: a crash that must stop the CPUs in their
            // guests.
            ARMED.store(true, Ordering::Relaxed);
            poll_soon();
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

fn poll_soon() {
    hyp_timer::fire_by(cpu::counter().saturating_add(console::ticks_in_ms(WHILE_RUNNING_POLL_MS)));
}

/// Tessera's timer fired on this CPU: a `"panic-while-running"` that is
/// due panics here; one still waiting for a partition's first line keeps
/// the timer set.
pub fn timer_fired() {
    if !ARMED.load(Ordering::Relaxed) || cpu::index() != BOOT_CPU {
        return;
    }
    if !crate::partition::every_partition_has_printed() {
        poll_soon();
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
