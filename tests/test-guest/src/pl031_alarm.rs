//! The passed-through PL031's alarm interrupt, hardware-linked, across a
//! restart of its partition (role `pl031`, see [`crate::role_passthrough`]).
//!
//! First boot: the alarm's SPI arrives when the RTC reaches its match
//! value, once, and reads active in its handler. Like the virtual timer
//! (issue 14), the guest's pending-state writes reach the physical SPI:
//! cleared through ICPENDR after it was raised, the next alarm still
//! arrives; set pending through ISPENDR while active, it arrives once
//! more after the guest ends it. Then the alarm fires again
//! and its handler restarts the partition (PSCI SYSTEM_RESET) without
//! ending the interrupt or clearing the device, as a guest that crashes in
//! an interrupt handler would. Second boot: the SPI reads disabled and
//! inactive (a fresh GIC), and the next alarm arrives: nothing
//! the previous boot left active, virtually or physically, survives it.

use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tessera_guest_kit::cpu;
use tessera_guest_kit::gic::{self, Gic, ISACTIVER, Layout};
use tessera_guest_kit::mmio::Mmio;
use tessera_guest_kit::psci::Psci;
use tessera_guest_kit::report::{Failure, Outcome};
use tessera_guest_kit::{ensure, fail, println, time, timer};

use crate::context::Context;

/// PL031 TRM (ARM DDI 0224) §3.3: data (the seconds count), match, the
/// interrupt mask and the interrupt clear registers; bit 0 of the last two
/// is the RTC's one interrupt.
const RTCDR: usize = 0x000;
const RTCMR: usize = 0x004;
const RTCIMSC: usize = 0x010;
const RTCICR: usize = 0x01c;
const RTC_INTERRUPT: u32 = 1 << 0;
/// The PL031's registers: one page at its host address.
const PL031_BASE: usize = 0x0901_0000;
const PL031_SIZE: usize = 0x1000;
/// SPI 2 of the guest's GIC (the copied node's `interrupts = <0 2 4>`).
pub const ALARM_INTID: u32 = 34;
/// The RTC counts whole seconds: an alarm set one second ahead comes
/// within two.
const ALARM_WAIT_MS: u64 = 3000;

static ARRIVED: AtomicU32 = AtomicU32::new(0);
static ACTIVE_IN_HANDLER: AtomicBool = AtomicBool::new(false);

fn rtc() -> Mmio {
    // SAFETY: the PL031's page, which Tessera maps into this partition at
    // its host address (the `pl031_periph_id` case reads it first).
    unsafe { Mmio::new(PL031_BASE, PL031_SIZE) }
}

/// The GIC set up with the alarm's SPI routed to this vCPU (still
/// disabled), the virtual timer on for waits, and interrupts unmasked.
pub fn set_up(context: &Context) -> Result<Gic, Failure> {
    let layout = Layout::find(&context.fdt)
        .map_err(|error| Failure::new(format_args!("finding the GIC: {error}")))?;
    let gic = gic::init(&layout).map_err(|error| {
        Failure::new(format_args!("setting up the {}: {error}", layout.version))
    })?;
    gic.route(ALARM_INTID, 0);
    timer::enable_interrupt(&gic);
    cpu::unmask_irqs();
    Ok(gic)
}

/// An alarm handler that ends it as a driver does: the device cleared,
/// then (the kit) the interrupt's end.
fn on_alarm(intid: u32) {
    if let Some(gic) = gic::get() {
        ACTIVE_IN_HANDLER.store(gic.bit(intid, ISACTIVER), Ordering::SeqCst);
    }
    rtc().write32(RTCICR, RTC_INTERRUPT);
    ARRIVED.fetch_add(1, Ordering::SeqCst);
}

/// An alarm handler that restarts the partition instead of returning.
fn on_alarm_restart(_intid: u32) {
    println!("pl031: restarting with the alarm's interrupt active");
    Psci::HVC.system_reset();
}

/// Sets the alarm one second ahead, its interrupt unmasked in the device.
fn set_alarm() {
    let rtc = rtc();
    rtc.write32(RTCICR, RTC_INTERRUPT);
    rtc.write32(RTCIMSC, RTC_INTERRUPT);
    let now = rtc.read32(RTCDR);
    rtc.write32(RTCMR, now.wrapping_add(1));
}

/// The alarm arrives once and reads active in its handler.
pub fn alarm_arrives(gic: &Gic) -> Outcome {
    gic::set_handler(ALARM_INTID, on_alarm);
    ARRIVED.store(0, Ordering::SeqCst);
    set_alarm();
    gic.enable(ALARM_INTID);
    timer::wait_until(ALARM_WAIT_MS, || ARRIVED.load(Ordering::SeqCst) > 0);
    let arrived = ARRIVED.load(Ordering::SeqCst);
    ensure!(
        arrived == 1,
        "the alarm's SPI {ALARM_INTID} arrived {arrived} time(s) within {ALARM_WAIT_MS} ms of being set 1 s ahead, expected once"
    );
    ensure!(
        ACTIVE_IN_HANDLER.load(Ordering::SeqCst),
        "SPI {ALARM_INTID} read inactive in its own handler"
    );
    Ok(())
}

/// PL031 TRM §3.3.6: RTCRIS, the raw interrupt status (the alarm matched).
const RTCRIS: usize = 0x014;
/// How long a physical interrupt that has fired takes to reach the
/// hypervisor and the virtual GIC: far more than the few instructions.
const FIRE_MS: u64 = 1;
/// How long to go on watching for an interrupt that must not come.
const SETTLE_MS: u64 = 10;

/// With interrupts masked: sets the alarm and waits until the device
/// raises its interrupt and the GIC has had time to take it.
fn alarm_raised_masked() -> Outcome {
    cpu::mask_irqs();
    set_alarm();
    let raised = time::wait_until(ALARM_WAIT_MS, || rtc().read32(RTCRIS) & RTC_INTERRUPT != 0);
    time::wait_until(FIRE_MS, || false);
    ensure!(
        raised,
        "the alarm, set 1 s ahead, did not raise RTCRIS within {ALARM_WAIT_MS} ms"
    );
    Ok(())
}

/// Counts arrivals of the alarm from 0, waiting for one and then watching
/// a while, with interrupts unmasked.
fn arrivals(wait_ms: u64) -> u32 {
    cpu::unmask_irqs();
    timer::wait_until(wait_ms, || ARRIVED.load(Ordering::SeqCst) > 0);
    timer::wait_until(SETTLE_MS, || false);
    ARRIVED.load(Ordering::SeqCst)
}

/// The alarm's SPI raised while interrupts were masked, the device
/// cleared and the SPI's pending state cleared through ICPENDR: the next
/// alarm arrives, once (the physical SPI was not left active).
pub fn cleared_then_fires_again(gic: &Gic) -> Outcome {
    gic::set_handler(ALARM_INTID, on_alarm);
    gic.enable(ALARM_INTID);
    ARRIVED.store(0, Ordering::SeqCst);
    let raised = alarm_raised_masked();
    rtc().write32(RTCICR, RTC_INTERRUPT);
    gic.clear_pending(ALARM_INTID);
    let cleared = !gic.is_pending(ALARM_INTID);
    set_alarm();
    let arrived = arrivals(ALARM_WAIT_MS);
    raised?;
    ensure!(
        cleared,
        "SPI {ALARM_INTID} still read pending after the device was cleared and ICPENDR written"
    );
    ensure!(
        arrived == 1,
        "after its pending state was cleared, the next alarm's SPI {ALARM_INTID} arrived {arrived} time(s), expected once"
    );
    Ok(())
}

/// The alarm's SPI acknowledged with interrupts masked, the device
/// cleared, the SPI set pending again through ISPENDR while active, then
/// ended: it arrives exactly once more.
pub fn pending_while_active(gic: &Gic) -> Outcome {
    gic::set_handler(ALARM_INTID, on_alarm);
    gic.enable(ALARM_INTID);
    ARRIVED.store(0, Ordering::SeqCst);
    alarm_raised_masked()?;
    let (taken, _) = gic.acknowledge_until(ALARM_INTID, ALARM_WAIT_MS);
    rtc().write32(RTCICR, RTC_INTERRUPT);
    if let Some(acknowledged) = taken {
        gic.set_pending(ALARM_INTID);
        gic.end_of_interrupt(acknowledged);
    }
    let arrived = arrivals(WAIT_AGAIN_MS);
    ensure!(
        taken.is_some(),
        "the raised alarm's SPI {ALARM_INTID} was not presented for acknowledgement"
    );
    ensure!(
        arrived == 1,
        "SPI {ALARM_INTID}, set pending while active and then ended, arrived {arrived} time(s), expected once"
    );
    Ok(())
}

/// How long an interrupt that is already pending may take to arrive.
const WAIT_AGAIN_MS: u64 = 1000;

/// Restarts the partition from inside the alarm's handler; returns only
/// if the alarm does not come.
pub fn restart_while_active() -> Outcome {
    gic::set_handler(ALARM_INTID, on_alarm_restart);
    set_alarm();
    timer::wait_until(ALARM_WAIT_MS, || false);
    fail!("the alarm did not come again within {ALARM_WAIT_MS} ms: no restart")
}

/// After the restart: a GIC in its reset state for the alarm's SPI.
pub fn reset_after_restart(gic: &Gic) -> Outcome {
    ensure!(
        !gic.is_enabled(ALARM_INTID),
        "SPI {ALARM_INTID} reads enabled after the restart"
    );
    ensure!(
        !gic.bit(ALARM_INTID, ISACTIVER),
        "SPI {ALARM_INTID}, left active by the previous boot, reads active"
    );
    Ok(())
}
