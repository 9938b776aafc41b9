//! The virtual timer's interrupt as the architecture has it, whatever the
//! guest does to its pending and active state (role `irq`, issue 14,
//! "One model for hardware-linked interrupts"):
//!
//! - set pending while the guest handles it, it comes again once, after
//!   the guest ends the first and stops the timer;
//! - it is level-sensitive: pending while the timer's output is high, not
//!   pending once the guest turns the timer off, and no stale interrupt
//!   when the guest enables its PPI afterwards;
//! - cleared while pending, the timer still works: re-armed, it fires.
//!
//! Each case masks interrupts where it must see the GIC's state before the
//! guest takes anything, and restores the kit's timer handling after.

use tessera_guest_kit::gic::{Acknowledged, Gic};
use tessera_guest_kit::report::{Failure, Outcome};
use tessera_guest_kit::timer::{self, CNTV_CTL_ISTATUS, VIRTUAL_TIMER_INTID};
use tessera_guest_kit::{cpu, ensure, fail, time};

/// How long to wait for an interrupt that must come.
const WAIT_MS: u64 = 1000;
/// How long to go on watching for one that must not.
const SETTLE_MS: u64 = 10;
/// Time for a physical interrupt that has fired to reach the hypervisor
/// and its virtual GIC: far more than the few instructions it takes.
const FIRE_MS: u64 = 1;

/// Lets a timer interrupt already on its way arrive, and stops the timer.
fn quiesce_timer() {
    cpu::mask_irqs();
    timer::stop();
    cpu::unmask_irqs();
}

/// With interrupts masked: fires the timer now and acknowledges its
/// interrupt once the GIC presents it (the guest now holds it active).
fn fire_and_acknowledge(gic: &Gic) -> Result<Acknowledged, Failure> {
    cpu::mask_irqs();
    timer::set_deadline(timer::now());
    let (taken, other) = gic.acknowledge_until(VIRTUAL_TIMER_INTID, WAIT_MS);
    if let Some(intid) = other {
        fail!("INTID {intid} was presented while only the timer was due");
    }
    taken.ok_or_else(|| {
        Failure::new(format_args!(
            "the timer, due at once, was not presented for acknowledgement within {WAIT_MS} ms"
        ))
    })
}

/// Counts the timer's arrivals from `before` on, `SETTLE_MS` after the
/// first (or after `WAIT_MS` if none comes), with interrupts unmasked.
fn arrivals_since(before: u32) -> u32 {
    cpu::unmask_irqs();
    timer::sleep_until(WAIT_MS, || timer::fired() != before);
    time::wait_until(SETTLE_MS, || false);
    timer::fired().wrapping_sub(before)
}

/// Acknowledged, set pending again through ISPENDR, then ended with the
/// timer stopped: the second interrupt arrives exactly once.
pub fn pending_while_active(gic: &Gic) -> Outcome {
    quiesce_timer();
    let before = timer::fired();
    let acknowledged = fire_and_acknowledge(gic)?;
    gic.set_pending(VIRTUAL_TIMER_INTID);
    gic.end_of_interrupt(acknowledged);
    timer::stop();
    let arrived = arrivals_since(before);
    ensure!(
        arrived == 1,
        "the timer interrupt, set pending while active and then ended, arrived {arrived} time(s) after its end, expected once"
    );
    Ok(())
}

/// With its PPI disabled: pending while the timer's output is high, not
/// pending once CNTV_CTL_EL0 = 0, and no interrupt once enabled.
pub fn level_sensitive(gic: &Gic) -> Outcome {
    quiesce_timer();
    let before = timer::fired();
    gic.disable(VIRTUAL_TIMER_INTID);
    timer::set_deadline(timer::now());
    let due = time::wait_until(WAIT_MS, || timer::control() & CNTV_CTL_ISTATUS != 0);
    time::wait_until(FIRE_MS, || false);
    let pending_high = gic.is_pending(VIRTUAL_TIMER_INTID);
    timer::stop();
    let pending_low = gic.is_pending(VIRTUAL_TIMER_INTID);
    gic.enable(VIRTUAL_TIMER_INTID);
    time::wait_until(SETTLE_MS, || false);
    let arrived = timer::fired().wrapping_sub(before);
    ensure!(due, "CNTV_CTL_EL0.ISTATUS did not rise within {WAIT_MS} ms");
    ensure!(
        pending_high,
        "PPI {VIRTUAL_TIMER_INTID} read not pending while the timer's output was high"
    );
    ensure!(
        !pending_low,
        "PPI {VIRTUAL_TIMER_INTID} read pending after the guest wrote CNTV_CTL_EL0 = 0"
    );
    ensure!(
        arrived == 0,
        "enabling PPI {VIRTUAL_TIMER_INTID} after the timer was turned off delivered {arrived} stale interrupt(s)"
    );
    Ok(())
}

/// Fired while interrupts were masked, then the timer stopped and its
/// pending state cleared through ICPENDR: re-armed, it fires again.
pub fn cleared_then_fires_again(gic: &Gic) -> Outcome {
    quiesce_timer();
    let before = timer::fired();
    cpu::mask_irqs();
    timer::set_deadline(timer::now());
    let presented = time::wait_until(WAIT_MS, || gic.is_pending(VIRTUAL_TIMER_INTID));
    time::wait_until(FIRE_MS, || false);
    timer::stop();
    gic.clear_pending(VIRTUAL_TIMER_INTID);
    let cleared = !gic.is_pending(VIRTUAL_TIMER_INTID);
    timer::set_deadline_after(timer::ms_to_ticks(1, timer::frequency()));
    let arrived = arrivals_since(before);
    timer::stop();
    ensure!(
        presented,
        "the timer, due at once, did not read pending within {WAIT_MS} ms"
    );
    ensure!(
        cleared,
        "PPI {VIRTUAL_TIMER_INTID} still read pending after ICPENDR with the timer stopped"
    );
    ensure!(
        arrived == 1,
        "after its pending state was cleared, the re-armed timer interrupted {arrived} time(s), expected once"
    );
    Ok(())
}
