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
//! - `irq` ([`role_irq`]): the virtual GIC and timer: timer deadlines,
//!   SGIs between its vCPUs and to foreign cores, SPIs it does not own,
//!   more interrupts at once than list registers, priorities; then
//!   SYSTEM_OFF.
//! - `irq-all-vcpus` ([`role_irq_all_vcpus`]): a timer interrupt and an SGI
//!   on every vCPU of a partition as large as its GIC allows.
//! - `irq-witness` ([`role_irq_witness`]): listens on every vCPU for
//!   interrupts it never caused (the `irq` partition's foreign SGIs).
//! - `gic-sweep` ([`role_gic_sweep`]): every GIC register at every access
//!   width against the rule and the known deviations, natively on QEMU or
//!   in a partition.
//! - `ticker` ([`role_ticker`]): `tick N` every few seconds until stopped.
//! - `chatter` ([`role_chatter`]): a thousand numbered lines as fast as it
//!   can, then SYSTEM_OFF.
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
mod gic_registers;
#[cfg(target_os = "none")]
mod pl031_alarm;
#[cfg(target_os = "none")]
mod role_a;
#[cfg(target_os = "none")]
mod role_b;
#[cfg(target_os = "none")]
mod role_chatter;
#[cfg(target_os = "none")]
mod role_gic_sweep;
#[cfg(target_os = "none")]
mod role_irq;
#[cfg(target_os = "none")]
mod role_irq_all_vcpus;
#[cfg(target_os = "none")]
mod role_irq_witness;
#[cfg(target_os = "none")]
mod role_passthrough;
#[cfg(target_os = "none")]
mod role_ticker;
#[cfg(target_os = "none")]
mod timer_contract;
#[cfg(target_os = "none")]
mod timer_hardware_linked;

#[cfg(target_os = "none")]
mod guest {
    use core::sync::atomic::{AtomicU8, Ordering};

    use tessera_guest_kit::psci::Psci;
    use tessera_guest_kit::{bootargs, entry, println, report};

    use crate::context::{BootCount, Context};
    use crate::{
        role_a, role_b, role_chatter, role_gic_sweep, role_irq, role_irq_all_vcpus,
        role_irq_witness, role_passthrough, role_ticker,
    };

    entry!(main, secondary_main);

    /// The roles that start secondary vCPUs, for [`secondary_main`].
    const SECONDARY_A: u8 = 0;
    const SECONDARY_IRQ: u8 = 1;
    const SECONDARY_WITNESS: u8 = 2;
    const SECONDARY_ALL_VCPUS: u8 = 3;

    /// Whose secondary entry a vCPU started with CPU_ON runs: set by the
    /// boot vCPU before it picks its role (so before any CPU_ON).
    static SECONDARY: AtomicU8 = AtomicU8::new(SECONDARY_A);

    fn secondary_main(vcpu: usize, context_id: u64) -> ! {
        match SECONDARY.load(Ordering::SeqCst) {
            SECONDARY_IRQ => role_irq::secondary_main(vcpu, context_id),
            SECONDARY_WITNESS => role_irq_witness::secondary_main(vcpu, context_id),
            SECONDARY_ALL_VCPUS => role_irq_all_vcpus::secondary_main(vcpu, context_id),
            _ => role_a::secondary_main(vcpu, context_id),
        }
    }

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
            Some("chatter") => role_chatter::run(),
            Some(role_irq::ROLE) => {
                SECONDARY.store(SECONDARY_IRQ, Ordering::SeqCst);
                role_irq::run(&context)
            }
            Some(role_irq_witness::ROLE) => {
                SECONDARY.store(SECONDARY_WITNESS, Ordering::SeqCst);
                role_irq_witness::run(&context)
            }
            Some(role_gic_sweep::ROLE) => role_gic_sweep::run(&context),
            Some(role_irq_all_vcpus::ROLE) => {
                SECONDARY.store(SECONDARY_ALL_VCPUS, Ordering::SeqCst);
                role_irq_all_vcpus::run(&context)
            }
            Some("hello") => hello(&context),
            Some("pl031") => role_passthrough::run(&context),
            Some("pl031-denied") => role_passthrough::run_denied(&context),
            Some(other) => {
                println!(
                    "test-guest: error: unknown role {other:?} in bootargs {:?} (roles: a, b, chatter, gic-sweep, irq, irq-all-vcpus, irq-witness, ticker, hello, pl031, pl031-denied)",
                    context.bootargs
                );
                Psci::HVC.system_off()
            }
            None => {
                println!(
                    "test-guest: error: no role=<name> in /chosen/bootargs {:?} (roles: a, b, chatter, gic-sweep, irq, irq-all-vcpus, irq-witness, ticker, hello, pl031, pl031-denied)",
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
