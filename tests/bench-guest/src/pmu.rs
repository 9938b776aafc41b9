//! The PMU as the bench's clock: the cycle counter (PMCCNTR_EL0) for
//! latencies and event counter 0 counting instructions executed at EL2.
//!
//! Under QEMU's `-icount shift=0` one instruction is one nanosecond of
//! virtual time and the cycle counter runs at 1 GHz, so it counts executed
//! instructions, at every exception level (PMCCFILTR_EL0.NSH counts EL2
//! too). Event counter 0 counts `INST_RETIRED` at EL2 only: the
//! hypervisor's share of a trap. Without EL2 (natively) it counts nothing.
//! Bits are those of the Arm ARM (DDI 0487) D24.5.

use core::arch::asm;

/// PMCR_EL0.E: counters enabled; .P, .C: reset the event and cycle
/// counters; .LC: the cycle counter overflows at 64 bits.
const PMCR_E: u64 = 1 << 0;
const PMCR_P: u64 = 1 << 1;
const PMCR_C: u64 = 1 << 2;
const PMCR_LC: u64 = 1 << 6;

/// PMEVTYPER<n>_EL0 / PMCCFILTR_EL0 filters: P (do not count at EL1),
/// U (not at EL0), NSH (count at non-secure EL2).
const FILTER_P: u64 = 1 << 31;
const FILTER_U: u64 = 1 << 30;
const FILTER_NSH: u64 = 1 << 27;

/// The common architectural event INST_RETIRED (Arm ARM D24.11).
const EVENT_INST_RETIRED: u64 = 0x08;

/// PMCNTENSET_EL0: the cycle counter (C, bit 31) and event counter 0.
const COUNTER_ENABLE_CYCLES: u64 = 1 << 31;
const COUNTER_ENABLE_EVENT0: u64 = 1 << 0;

/// Starts both counters from zero.
pub fn start() {
    let cycles_filter = FILTER_NSH;
    let el2_only = EVENT_INST_RETIRED | FILTER_P | FILTER_U | FILTER_NSH;
    let enable = COUNTER_ENABLE_CYCLES | COUNTER_ENABLE_EVENT0;
    let control = PMCR_E | PMCR_P | PMCR_C | PMCR_LC;
    // SAFETY: the PMU belongs to this guest (the hypervisor leaves it to
    // the partition); programming it changes no memory.
    unsafe {
        asm!(
            "msr pmccfiltr_el0, {cycles_filter}",
            "msr pmselr_el0, xzr",
            "isb",
            "msr pmxevtyper_el0, {el2_only}",
            "msr pmcntenset_el0, {enable}",
            "msr pmcr_el0, {control}",
            "isb",
            cycles_filter = in(reg) cycles_filter,
            el2_only = in(reg) el2_only,
            enable = in(reg) enable,
            control = in(reg) control,
            options(nomem, nostack, preserves_flags),
        );
    }
}

/// Instructions executed so far (the cycle counter under icount).
#[inline(always)]
pub fn instructions() -> u64 {
    let count: u64;
    // SAFETY: reading the cycle counter has no side effect; the ISB keeps
    // it in program order.
    unsafe {
        asm!("isb", "mrs {}, pmccntr_el0", out(reg) count, options(nomem, nostack, preserves_flags))
    };
    count
}

/// Instructions executed at EL2 so far (event counter 0).
#[inline(always)]
pub fn el2_instructions() -> u64 {
    let count: u64;
    // SAFETY: reading event counter 0 has no side effect.
    unsafe {
        asm!("isb", "mrs {}, pmevcntr0_el0", out(reg) count, options(nomem, nostack, preserves_flags))
    };
    count
}
