//! Registers that must read back what the architecture says (role `irq`,
//! issue 14): routing registers as written, and the active state set and
//! cleared through GICD/GICR_I[SC]ACTIVER, also for an interrupt another
//! vCPU holds.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tessera_guest_kit::gic::{self, FIRST_SPI, Gic, ICACTIVER, ISACTIVER, v3};
use tessera_guest_kit::report::{Failure, Outcome};
use tessera_guest_kit::{cpu, ensure, time};

/// GICD_ITARGETSR<n> (GICv2: one byte per INTID).
const GICD_ITARGETSR: usize = 0x800;
/// How long to wait for what must come, and to watch for what must not.
const WAIT_MS: u64 = 1000;
const SETTLE_MS: u64 = 10;

/// An SGI and a PPI without devices, set and cleared active.
const ACTIVE_SGI: u32 = 13;
const ACTIVE_PPI: u32 = 22;

/// ISACTIVER makes an interrupt read active, ICACTIVER inactive again.
pub fn active_set_and_cleared(gic: &Gic) -> Outcome {
    for intid in [ACTIVE_SGI, ACTIVE_PPI] {
        gic.set_bit(intid, ISACTIVER);
        let set = gic.bit(intid, ISACTIVER);
        gic.set_bit(intid, ICACTIVER);
        let cleared = !gic.bit(intid, ISACTIVER);
        ensure!(set, "INTID {intid} read inactive after ISACTIVER");
        ensure!(cleared, "INTID {intid} read active after ICACTIVER");
    }
    Ok(())
}

/// vCPU 1's side of [`active_held_elsewhere`]: what to hold (set by
/// vCPU 0), whether it holds it ([`NOT_YET`], [`HOLDING`] or [`FAILED`])
/// and when to let go (set by vCPU 0).
static HOLD_INTID: AtomicU64 = AtomicU64::new(0);
static HELD: AtomicU32 = AtomicU32::new(NOT_YET);
static RELEASE: AtomicBool = AtomicBool::new(false);
const NOT_YET: u32 = 0;
const HOLDING: u32 = 1;
const FAILED: u32 = 2;

/// On vCPU 1: with interrupts masked, makes [`HOLD_INTID`] pending,
/// acknowledges it and holds it active until vCPU 0 sets [`RELEASE`];
/// then ends it.
pub fn hold_active(gic: &Gic) {
    let intid = u32::try_from(HOLD_INTID.load(Ordering::SeqCst)).unwrap_or(0);
    cpu::mask_irqs();
    gic.set_pending(intid);
    let (held, _) = gic.acknowledge_until(intid, WAIT_MS);
    HELD.store(
        if held.is_some() { HOLDING } else { FAILED },
        Ordering::SeqCst,
    );
    cpu::send_event();
    time::wait_until(2 * WAIT_MS, || RELEASE.load(Ordering::SeqCst));
    if let Some(acknowledged) = held {
        gic.end_of_interrupt(acknowledged);
    }
    cpu::unmask_irqs();
}

/// An SPI vCPU 1 has acknowledged and holds reads active on vCPU 0, and
/// vCPU 0's ICACTIVER clears it (Tessera stops vCPU 1 to reach its list
/// registers). `hold` asks vCPU 1 to run [`hold_active`], without waiting
/// for it to finish; `finished` waits until it has, given what `hold`
/// returned.
pub fn active_held_elsewhere<T>(
    gic: &Gic,
    intid: u32,
    hold: impl FnOnce() -> Result<T, Failure>,
    finished: impl FnOnce(T) -> Outcome,
) -> Outcome {
    gic.route(intid, 1);
    gic.enable(intid);
    HOLD_INTID.store(u64::from(intid), Ordering::SeqCst);
    HELD.store(NOT_YET, Ordering::SeqCst);
    RELEASE.store(false, Ordering::SeqCst);
    let mut seen_active = false;
    let mut cleared = false;
    let posted = hold();
    time::wait_until(2 * WAIT_MS, || HELD.load(Ordering::SeqCst) != NOT_YET);
    let holding = HELD.load(Ordering::SeqCst) == HOLDING;
    if holding {
        seen_active = gic.bit(intid, ISACTIVER);
        gic.set_bit(intid, ICACTIVER);
        cleared = !gic.bit(intid, ISACTIVER);
    }
    RELEASE.store(true, Ordering::SeqCst);
    cpu::send_event();
    let posted = posted.and_then(finished);
    gic.disable(intid);
    gic.route(intid, 0);
    posted?;
    ensure!(
        holding,
        "vCPU 1 was not presented SPI {intid} (routed to it, pending) within {WAIT_MS} ms"
    );
    ensure!(
        seen_active,
        "SPI {intid}, acknowledged and held by vCPU 1, read inactive on vCPU 0"
    );
    ensure!(
        cleared,
        "SPI {intid}, held by vCPU 1, still read active after vCPU 0's ICACTIVER"
    );
    Ok(())
}

/// GICv2: an SPI's GICD_ITARGETSR byte reads back masked to the
/// partition's two vCPUs, and an SPI aimed at both reaches one of them.
pub fn targets_masked_to_the_vcpus(gic: &Gic, intid: u32) -> Outcome {
    let Gic::V2(_) = gic else { return Ok(()) };
    let distributor = gic.banks(FIRST_SPI);
    let offset = GICD_ITARGETSR + intid as usize;
    distributor.write8(offset, 0xff);
    let read = distributor.read8(offset);
    let (before_0, before_1) = (gic::record(0).count(intid), gic::record(1).count(intid));
    gic.enable(intid);
    gic.set_pending(intid);
    let arrived =
        || gic::record(0).count(intid) - before_0 + gic::record(1).count(intid) - before_1;
    time::wait_until(WAIT_MS, || arrived() > 0);
    time::wait_until(SETTLE_MS, || false);
    let count = arrived();
    gic.disable(intid);
    gic.route(intid, 0);
    ensure!(
        read == 0x03,
        "GICD_ITARGETSR of SPI {intid} reads {read:#04x} after writing 0xff, expected 0x03 (the partition's two vCPUs)"
    );
    ensure!(
        count == 1,
        "SPI {intid}, aimed at both vCPUs, arrived {count} time(s), expected once at one of them"
    );
    Ok(())
}

/// GICv3: GICD_IROUTER reads back Aff3-Aff0 as written, through one 64-bit
/// access or either 32-bit half; IRM and the RES0 bits read 0 (GICD_TYPER
/// says No1N). An affinity no vCPU has routes the SPI nowhere.
pub fn router_reads_back(gic: &Gic, intid: u32) -> Outcome {
    let Gic::V3(_) = gic else { return Ok(()) };
    const WRITTEN: u64 = 0xffff_ff12_ff34_5601;
    const AFFINITY: u64 = 0x12_0034_5601;
    let distributor = gic.banks(FIRST_SPI);
    let offset = v3::irouter_offset(intid);
    distributor.write64(offset, WRITTEN);
    let whole = distributor.read64(offset);
    let (low, high) = (distributor.read32(offset), distributor.read32(offset + 4));
    let before = (gic::record(0).count(intid), gic::record(1).count(intid));
    gic.enable(intid);
    gic.set_pending(intid);
    time::wait_until(SETTLE_MS, || false);
    let nowhere = (gic::record(0).count(intid), gic::record(1).count(intid)) == before;
    // Upper half first, then the lower one: vCPU 1.
    distributor.write32(offset + 4, 0);
    distributor.write32(offset, 1);
    let routed = distributor.read64(offset);
    time::wait_until(WAIT_MS, || gic::record(1).count(intid) != before.1);
    time::wait_until(SETTLE_MS, || false);
    let at_vcpu_1 = gic::record(1).count(intid) - before.1;
    gic.disable(intid);
    gic.route(intid, 0);
    ensure!(
        whole == AFFINITY,
        "GICD_IROUTER reads {whole:#x} after writing {WRITTEN:#x}, expected {AFFINITY:#x}"
    );
    ensure!(
        (u64::from(low), u64::from(high)) == (AFFINITY & 0xffff_ffff, AFFINITY >> 32),
        "GICD_IROUTER's halves read {low:#x} and {high:#x}"
    );
    ensure!(
        nowhere,
        "SPI {intid}, routed to an affinity no vCPU has, arrived somewhere"
    );
    ensure!(
        routed == 1 && at_vcpu_1 == 1,
        "after writing the halves (upper 0, lower 1) GICD_IROUTER reads {routed:#x} and the pending SPI arrived {at_vcpu_1} time(s) at vCPU 1, expected 0x1 and once"
    );
    Ok(())
}
