//! The bare-metal guest that Tessera's partition scenarios boot.
//!
//! One image plays several roles, chosen by `role=<name>` in
//! `/chosen/bootargs`:
//!
//! - `a` ([`role_a`]): PSCI and SMCCC as the partition contract
//!   (`docs/partitions.md`) promises them, CPU_ON/CPU_OFF of a second vCPU,
//!   and all of its free RAM; then SYSTEM_OFF over SMC.
//! - `b` ([`role_b`]): on its first boot, that every address outside its RAM
//!   and devices aborts, and its RAM; then SYSTEM_RESET. On later boots
//!   (`/chosen/tessera,boot-count` > 1), its RAM again, `b: done` and
//!   SYSTEM_OFF.
//! - `ticker` ([`role_ticker`]): `tick N` every few seconds until stopped.
//! - `hello`: one line and SYSTEM_OFF.
//! - `pl031`, `pl031-denied` ([`role_passthrough`]): a passed-through PL031
//!   seen by its partition, and refused to another.
//!
//! Results are `TEST`/`RESULT` lines ([`tessera_guest_kit::report`]). Built
//! by `cargo xtask` into `target/tessera/guests/test-guest.bin`, a raw
//! binary linked at the guest RAM base.

#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]
#![allow(
    clippy::result_large_err,
    reason = "test cases return the kit's Failure, which carries its reason inline (no allocator)"
)]

#[cfg(target_os = "none")]
mod context;
#[cfg(target_os = "none")]
mod role_a;
#[cfg(target_os = "none")]
mod role_b;
#[cfg(target_os = "none")]
mod role_passthrough;
#[cfg(target_os = "none")]
mod role_ticker;

#[cfg(target_os = "none")]
mod guest {
    use tessera_guest_kit::psci::Psci;
    use tessera_guest_kit::{bootargs, entry, println, report};

    use crate::context::{BootCount, Context};
    use crate::{role_a, role_b, role_passthrough, role_ticker};

    entry!(main, role_a::secondary_main);

    fn main(dtb: usize) -> ! {
        let context = match Context::read(dtb) {
            Ok(context) => context,
            Err(error) => {
                println!("test-guest: error: no usable device tree at x0 = {dtb:#x}: {error}");
                Psci::HVC.system_off()
            }
        };
        match bootargs::value(context.bootargs, "role") {
            Some("a") => role_a::run(&context),
            Some("b") => role_b::run(&context),
            Some("ticker") => role_ticker::run(&context),
            Some("hello") => hello(&context),
            Some("pl031") => role_passthrough::run(&context),
            Some("pl031-denied") => role_passthrough::run_denied(&context),
            Some(other) => {
                println!(
                    "test-guest: error: unknown role {other:?} in bootargs {:?} (roles: a, b, ticker, hello, pl031, pl031-denied)",
                    context.bootargs
                );
                Psci::HVC.system_off()
            }
            None => {
                println!(
                    "test-guest: error: no role=<name> in /chosen/bootargs {:?} (roles: a, b, ticker, hello, pl031, pl031-denied)",
                    context.bootargs
                );
                Psci::HVC.system_off()
            }
        }
    }

    fn hello(context: &Context) -> ! {
        report::begin("hello");
        println!(
            "hello from a partition (boot {})",
            BootCount(context.boot_count)
        );
        report::finish();
        Psci::HVC.system_off()
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "test-guest runs at EL1 in a Tessera partition (or on QEMU virt): \
         `cargo xtask` builds it into target/tessera/guests/test-guest.bin."
    );
    std::process::exit(1);
}
