//! One timed operation: the cycle counter read just before and just after
//! it, in one `asm!` block so that nothing else runs in between.
//!
//! Each sample includes the counter read itself (an ISB and an MRS);
//! [`empty`] measures exactly that, and the bench subtracts its minimum.

use core::arch::asm;

/// Nothing between the two counter reads.
#[inline(always)]
pub fn empty() -> u64 {
    let (start, end): (u64, u64);
    // SAFETY: two reads of the cycle counter; no memory is touched.
    unsafe {
        asm!(
            "isb", "mrs {start}, pmccntr_el0",
            "isb", "mrs {end}, pmccntr_el0",
            start = out(reg) start, end = out(reg) end,
            options(nomem, nostack, preserves_flags),
        );
    }
    end.wrapping_sub(start)
}

/// `HVC #0` with `function` in x0 and zeroes in x1..x3. x0..x17 are taken
/// as clobbered: SMCCC 1.1 lets the callee return results in x0..x3, and
/// the floor handler returns x0 unchanged.
#[inline(always)]
pub fn hvc(function: u32) -> u64 {
    let (start, end): (u64, u64);
    // SAFETY: a hypercall that queries (version calls, an unknown function):
    // it changes only the registers declared here.
    unsafe {
        asm!(
            "isb", "mrs {start}, pmccntr_el0",
            "hvc #0",
            "isb", "mrs {end}, pmccntr_el0",
            start = out(reg) start, end = out(reg) end,
            inout("x0") u64::from(function) => _,
            inout("x1") 0u64 => _, inout("x2") 0u64 => _, inout("x3") 0u64 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _,
            out("x8") _, out("x9") _, out("x10") _, out("x11") _,
            out("x12") _, out("x13") _, out("x14") _, out("x15") _,
            out("x16") _, out("x17") _,
            options(nostack),
        );
    }
    end.wrapping_sub(start)
}

/// A 32-bit load from the device register at `address` (a single `ldr`,
/// whose data abort carries a syndrome the hypervisor can emulate).
#[inline(always)]
pub fn load(address: usize) -> u64 {
    let (start, end): (u64, u64);
    // SAFETY: `address` is a device register of this guest (the PL011) or
    // an address the floor's stage 2 leaves unmapped; reading it has no
    // effect on this program's memory.
    unsafe {
        asm!(
            "isb", "mrs {start}, pmccntr_el0",
            "ldr {value:w}, [{address}]",
            "isb", "mrs {end}, pmccntr_el0",
            start = out(reg) start, end = out(reg) end,
            value = out(reg) _, address = in(reg) address,
            options(nostack, preserves_flags),
        );
    }
    end.wrapping_sub(start)
}

/// A 64-bit load from the device register at `address` (a single `ldr`
/// of an X register).
#[inline(always)]
pub fn load64(address: usize) -> u64 {
    let (start, end): (u64, u64);
    // SAFETY: as in `load`: a device register of this guest (the GIC's) or
    // an address the floor's stage 2 leaves unmapped.
    unsafe {
        asm!(
            "isb", "mrs {start}, pmccntr_el0",
            "ldr {value}, [{address}]",
            "isb", "mrs {end}, pmccntr_el0",
            start = out(reg) start, end = out(reg) end,
            value = out(reg) _, address = in(reg) address,
            options(nostack, preserves_flags),
        );
    }
    end.wrapping_sub(start)
}

/// A 32-bit store of `value` to the device register at `address`.
#[inline(always)]
pub fn store(address: usize, value: u32) -> u64 {
    let (start, end): (u64, u64);
    // SAFETY: as in `load`; the register written (the PL011's interrupt
    // mask) has no effect on memory.
    unsafe {
        asm!(
            "isb", "mrs {start}, pmccntr_el0",
            "str {value:w}, [{address}]",
            "isb", "mrs {end}, pmccntr_el0",
            start = out(reg) start, end = out(reg) end,
            value = in(reg) value, address = in(reg) address,
            options(nostack, preserves_flags),
        );
    }
    end.wrapping_sub(start)
}

/// A CPU-bound loop: `iterations` rounds of a 64-bit linear congruential
/// step (3 instructions each), no memory access.
#[inline(never)]
pub fn cpu_loop(iterations: u64) -> u64 {
    let mut state: u64 = 1;
    // SAFETY: arithmetic on registers only.
    unsafe {
        asm!(
            "1: madd {state}, {state}, {multiplier}, {increment}",
            "subs {count}, {count}, #1",
            "b.ne 1b",
            state = inout(reg) state,
            count = inout(reg) iterations.max(1) => _,
            multiplier = in(reg) 6_364_136_223_846_793_005u64,
            increment = in(reg) 1_442_695_040_888_963_407u64,
            options(nomem, nostack),
        );
    }
    state
}

/// A memory-bound loop: `passes` read-modify-write sweeps over
/// `[base, base + size)`, one 64-byte cache line apart (6 instructions a
/// line).
#[inline(never)]
pub fn memory_loop(base: usize, size: usize, passes: u64) {
    for _ in 0..passes {
        // SAFETY: the caller gives a range of free RAM that only this loop
        // uses; each word is read and written back incremented.
        unsafe {
            asm!(
                "1: ldr {word}, [{cursor}]",
                "add {word}, {word}, #1",
                "str {word}, [{cursor}]",
                "add {cursor}, {cursor}, #64",
                "cmp {cursor}, {end}",
                "b.lo 1b",
                cursor = inout(reg) base => _,
                end = in(reg) base + size,
                word = out(reg) _,
                options(nostack),
            );
        }
    }
}
