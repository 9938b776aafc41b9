//! Single accesses that report an abort instead of failing the run.
//!
//! Each probe is one 32-bit `ldr` or `str`, or a `blr`, inside
//! [`crate::exception::catch`]: if the access aborts, the vectors record ESR
//! and FAR and step over it (for the `blr`, return to after it).
//! A guest uses them to check that Tessera refuses what lies outside its
//! RAM and devices.

use core::arch::asm;

use crate::exception::{Trap, catch, catch_branch};

/// What a skipped load leaves in its register: a value a real read of a
/// refused address is unlikely to return.
const NOT_READ: u32 = 0xdead_0bad;

/// Reads the 32-bit word at `address` (4-byte aligned). `Err` holds the
/// exception the access raised.
pub fn probe_read(address: u64) -> Result<u32, Trap> {
    let (value, trap) = catch(|| {
        let mut value = NOT_READ;
        // SAFETY: a single load from an address outside everything Rust
        // owns (the caller probes addresses that are not this guest's
        // memory); if it aborts, the vectors skip it and `value` keeps
        // NOT_READ.
        unsafe {
            asm!("ldr {value:w}, [{address}]", value = inout(reg) value,
                 address = in(reg) address, options(nostack, preserves_flags));
        }
        value
    });
    match trap {
        None => Ok(value),
        Some(trap) => Err(trap),
    }
}

/// Writes `value` to the 32-bit word at `address` (4-byte aligned). `Err`
/// holds the exception the access raised.
///
/// # Safety
///
/// `address` must not be memory the guest uses (its image, stacks, DTB or
/// anything a reference points to), and a write there must not harm the
/// guest if it does not abort: probes are meant for addresses that should.
pub unsafe fn probe_write(address: u64, value: u32) -> Result<(), Trap> {
    let ((), trap) = catch(|| {
        // SAFETY: a single store to an address the caller promises is not
        // this guest's memory; if it aborts, the vectors skip it.
        unsafe {
            asm!("str {value:w}, [{address}]", value = in(reg) value,
                 address = in(reg) address, options(nostack, preserves_flags));
        }
    });
    match trap {
        None => Ok(()),
        Some(trap) => Err(trap),
    }
}

/// Branches to `address` to fetch an instruction there. `Err` holds the
/// exception the fetch raised.
///
/// # Safety
///
/// The fetch must abort: `address` must not hold anything the guest can
/// execute (a probe for addresses outside its RAM), or whatever is there
/// runs with the caller's registers.
pub unsafe fn probe_execute(address: u64) -> Result<(), Trap> {
    let ((), trap) = catch_branch(|| {
        // SAFETY: the caller promises the fetch aborts; the vectors then
        // resume after the `blr` (at x30). Every register the C ABI lets a
        // callee change is declared clobbered, in case it does not.
        unsafe {
            asm!("blr {address}", address = in(reg) address, clobber_abi("C"),
                 options(nostack));
        }
    });
    match trap {
        None => Ok(()),
        Some(trap) => Err(trap),
    }
}
