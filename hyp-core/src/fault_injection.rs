//! Failing on purpose, so a board's crash report can be seen (and tested)
//! before it is needed: `/chosen/tessera,fault-injection`.

use log::warn;

use crate::mm::hyp_map::UNMAPPED_PROBE;

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
        "undefined-instruction" => {
            // SAFETY: UDF takes an undefined-instruction exception into the
            // crash report; it touches no memory.
            unsafe { core::arch::asm!("udf #0", options(nomem, nostack)) };
        }
        other => {
            warn!(
                "unknown fault \"{other}\" (panic, data-abort, stack-overflow, undefined-instruction): ignored"
            )
        }
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
