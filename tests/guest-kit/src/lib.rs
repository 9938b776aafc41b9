//! A kit for bare-metal AArch64 test guests that run at EL1 in a partition.
//!
//! A test guest is a `no_std`, `no_main` binary linked at [`LINK_ADDRESS`]
//! with this crate's `link.ld`. The kit gives it:
//!
//! - a boot stub ([`boot`]): entry at the image's first byte with the DTB in
//!   x0, a stack for each of up to [`MAX_VCPUS`] vCPUs, BSS cleared once, the
//!   exception vectors installed, then the guest's `main(dtb)`. Secondary
//!   vCPUs enter at [`cpu::secondary_entry_point`] (the PSCI `CPU_ON` entry);
//! - exception vectors ([`exception`]) that either record an exception the
//!   test expects ([`exception::catch`]) or report an unexpected one and fail;
//! - a console on the PL011 at [`console::PL011_BASE`] and [`println!`];
//! - PSCI and SMCCC calls over HVC or SMC ([`psci`], [`smccc`]), including a
//!   call that checks that x4-x17 survive;
//! - a small FDT reader ([`fdt`]) for `/memory`, `/chosen/bootargs` and
//!   `/chosen/tessera,boot-count`;
//! - machine-readable test results ([`report`]): one `TEST <name>: ok` or
//!   `TEST <name>: FAILED: <reason>` line per case and a final
//!   `RESULT <role>: <passed> passed, <failed> failed`;
//! - single accesses that report a data abort instead of dying ([`probe`]),
//!   and RAM pattern tests ([`memory`]);
//! - the partition's GIC, v2 or v3 as its DTB says ([`gic`]): set-up,
//!   per-INTID control, SGIs, and an IRQ vector that records every arrival
//!   per vCPU and calls registered handlers; and the virtual timer
//!   ([`timer`]), with a wait that sleeps in `WFI`.
//!
//! Everything that touches the hardware is built only for the bare-metal
//! target (`target_os = "none"`); the pure parts (the FDT reader, result
//! lines, memory ranges, error codes) build and are unit-tested on the host.
//!
//! ```ignore
//! #![no_std]
//! #![no_main]
//! use tessera_guest_kit::{entry, println, psci::Psci, report};
//!
//! entry!(main);
//!
//! fn main(_dtb: usize) -> ! {
//!     report::begin("hello");
//!     println!("hello");
//!     report::finish();
//!     Psci::HVC.system_off()
//! }
//! ```
//!
//! Rules a guest must keep: the MMU stays off, so every data access is to
//! Device memory (the target is built with strict alignment, and exclusive
//! load/store need not work there, so the kit never uses atomic
//! read-modify-write operations); and the console is not locked, so only one
//! vCPU should print at a time.

#![cfg_attr(not(test), no_std)]
#![allow(
    clippy::result_large_err,
    reason = "without an allocator a test failure carries its reason inline (report::FAILURE_CAPACITY bytes); \
              it is returned a few frames up at most, on a 16 KiB stack"
)]

pub mod bootargs;
pub mod exception;
pub mod fdt;
pub mod gic;
pub mod memory;
pub mod psci;
pub mod report;
pub mod smccc;
pub mod timer;

#[cfg(target_os = "none")]
pub mod boot;
#[cfg(target_os = "none")]
pub mod console;
#[cfg(target_os = "none")]
pub mod cpu;
#[cfg(target_os = "none")]
pub mod mmio;
#[cfg(target_os = "none")]
pub mod probe;
#[cfg(target_os = "none")]
pub mod time;

/// Where guests are linked, and where Tessera places a raw binary: the guest
/// RAM base (QEMU virt's). Must match `link.ld`.
pub const LINK_ADDRESS: u64 = 0x4000_0000;

/// How many vCPUs the boot stub has stacks for. A vCPU whose MPIDR Aff0 is
/// not below this (or whose higher affinity fields are not 0) parks at entry.
pub const MAX_VCPUS: usize = 16;

/// Bytes of stack per vCPU. Exception handlers run on the same stack (EL1h).
pub const STACK_SIZE: usize = 16 * 1024;

/// Defines the guest's entry points: `main(dtb: usize) -> !` for the boot
/// vCPU and, optionally, `secondary(vcpu: usize, context_id: u64) -> !` for
/// vCPUs started with PSCI `CPU_ON` at [`cpu::secondary_entry_point`]
/// (`context_id` is what the caller passed, received in x0). Without a
/// secondary entry, a started vCPU says so and turns itself off.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        $crate::entry!($main, $crate::boot::default_secondary_main);
    };
    ($main:path, $secondary:path) => {
        #[unsafe(no_mangle)]
        fn __tessera_guest_main(dtb: usize) -> ! {
            let main: fn(usize) -> ! = $main;
            main(dtb)
        }

        #[unsafe(no_mangle)]
        fn __tessera_guest_secondary_main(vcpu: usize, context_id: u64) -> ! {
            let secondary: fn(usize, u64) -> ! = $secondary;
            secondary(vcpu, context_id)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_script_uses_the_link_address() {
        let script = include_str!("../link.ld");
        let wanted = format!(". = {LINK_ADDRESS:#x};");
        assert!(
            script.contains(&wanted),
            "link.ld should set the location counter with {wanted:?}"
        );
    }
}
