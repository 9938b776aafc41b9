//! Role `irq`: interrupts and the virtual timer through Tessera's virtual
//! GIC, v2 or v3 as the guest DTB says.
//!
//! The boot vCPU finds and sets up the GIC, starts vCPU 1 (which sets up
//! its own CPU interface and then serves the boot vCPU's requests: send
//! these SGIs, time your own timer, turn off) and runs one `TEST` case per
//! promise of the virtual GIC and timer (issue 5, "Test-guest kit and
//! tests", and the GIC architecture where a guest relies on it):
//!
//! - SGIs aimed at cores outside the partition reach nobody (the scenario
//!   runs a partition with role `irq-witness` on those cores, which must
//!   see none of them); this case comes first, so that it overlaps the
//!   witness's watch;
//! - both vCPUs read one virtual counter;
//! - the virtual timer interrupts at its deadline, never before and within
//!   [`LATENCY_BOUND_MS`] after, on both vCPUs; while its PPI is disabled
//!   in the GIC it waits (and reads pending), and comes once enabled;
//! - SGIs between the partition's vCPUs arrive once each, at the vCPUs
//!   named and nowhere else (on GICv2 with the sender's CPU number);
//! - SPIs the partition does not own stay disabled, idle, unprioritised
//!   and unrouted whatever it writes, while the one it owns (its PL011's)
//!   takes every write;
//! - more interrupts pending at once than the CPU has list registers
//!   (QEMU has 4) are all delivered, from the vCPU itself and from the
//!   other one;
//! - pending interrupts arrive highest priority first, and the priority
//!   mask holds back those at or below it;
//! - an interrupt pending but not yet taken reads pending, and disabling
//!   it withdraws it until it is enabled again; one taken reads active
//!   (not pending) in its handler, and neither once ended.
//!
//! Last, it prints [`UNFINISHED_LINE`] with no newline and ends the line
//! [`UNFINISHED_LINE_MS`] later: Tessera's own timer (CNTHP) shows an
//! unfinished line after a wait, so the scenario sees the line's time stamp
//! well before the next line's, while this partition's timer ticks on.
//!
//! Only the boot vCPU prints (the console is not locked); vCPU 1 stores
//! what it measured for the boot vCPU to judge.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use tessera_guest_kit::cpu::{self, secondary_entry_point};
use tessera_guest_kit::fdt::Fdt;
use tessera_guest_kit::gic::record::{LOG_CAPACITY, Snapshot};
use tessera_guest_kit::gic::{
    self, DEFAULT_PRIORITY, DEFAULT_PRIORITY_MASK, FIRST_SPI, Gic, ISACTIVER, Layout,
    PRIORITY_IMPLEMENTED, SGI_COUNT, SgiTargets, Version, check_priority_order, v3,
};
use tessera_guest_kit::psci::{Psci, Raw, decode};
use tessera_guest_kit::report::{self, Failure, Outcome};
use tessera_guest_kit::timer::{self, CNTV_CTL_ISTATUS, VIRTUAL_TIMER_INTID};
use tessera_guest_kit::{ensure, fail, println, time};

use crate::context::Context;
use crate::{gic_registers, timer_contract, timer_hardware_linked};

/// The role's name in `role=` and in its `RESULT` line.
pub const ROLE: &str = "irq";

/// vCPU 1, as the guest DTB numbers it.
const SECONDARY: usize = 1;
/// How long to wait for the other vCPU or for an interrupt that must come.
const WAIT_MS: u64 = 1000;
/// How long to go on watching after the expected interrupts have arrived,
/// for any that should not.
const SETTLE_MS: u64 = 10;
/// The latest a timer interrupt may come after its deadline. Generous:
/// under QEMU TCG on a loaded two-core host a vCPU thread may wait for
/// the host's scheduler; a lost interrupt never comes at all.
const LATENCY_BOUND_MS: u64 = 50;
/// Timer deadlines programmed in turn, in microseconds from now (0: due
/// at once).
const TIMER_DELAYS_US: [u64; 4] = [0, 300, 2_000, 7_000];
/// How long the timer is left due while its PPI is disabled in the GIC.
const HOLD_MS: u64 = 5;
/// Printed with no newline before the result line.
pub const UNFINISHED_LINE: &str = "unfinished line> ";
/// How long that line stays unfinished.
pub const UNFINISHED_LINE_MS: u64 = 1000;
/// Rounds of SGIs aimed at foreign cores, 1 ms apart.
const FOREIGN_ROUNDS: u32 = 20;
/// PPIs with no device behind them in the guest (INTIDs 16-24; the
/// timers are 26-30): pended by software in the burst.
const SPARE_PPIS: core::ops::RangeInclusive<u32> = 16..=24;
/// Every SGI.
const ALL_SGIS: u32 = 0xffff;
/// Priorities for the order test: distinct in the implemented bits, all
/// below the priority mask, in no order of INTID.
const PRIORITIES: [(u32, u8); 16] = [
    (0, 0x70),
    (1, 0x18),
    (2, 0xc8),
    (3, 0x40),
    (4, 0x08),
    (5, 0xa0),
    (6, 0x58),
    (7, 0x28),
    (8, 0xe0),
    (9, 0x50),
    (10, 0x88),
    (11, 0x30),
    (16, 0x10),
    (17, 0xb8),
    (18, 0x60),
    (19, 0x98),
];
/// SGI and priorities of the priority-mask test.
const MASKED_SGI: u32 = 5;
const MASKED_PRIORITY: u8 = 0x80;
/// The SGI read pending, and the one disabled while pending.
const PENDING_SGI: u32 = 11;
const WITHDRAWN_SGI: u32 = 10;
/// The SGI whose handler reads its own state.
const ACTIVE_SGI: u32 = 12;
/// What that handler read: [`SEEN_ACTIVE`] and [`SEEN_PENDING`] bits.
static SEEN_IN_HANDLER: AtomicU32 = AtomicU32::new(0);
const SEEN_ACTIVE: u32 = 1 << 0;
const SEEN_PENDING: u32 = 1 << 1;
/// The partition's emulated PL011's SPI (INTID 33): owned, no device
/// behind it that raises it unasked (the kit never enables UART
/// interrupts), so tests may pend and route it.
const PL011_SPI: u32 = 33;
/// The timer's priority meanwhile: above the mask.
const TIMER_ABOVE_MASK: u8 = 0x40;
/// A priority written to every SPI, and what the implemented bits keep.
const PROBE_PRIORITY: u8 = 0x8c;

// ---------------------------------------------------------------------------
// Requests to vCPU 1 (shared memory in BSS; only loads and stores).

/// What the boot vCPU asks of vCPU 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    /// Send each SGI of `intids` (bit n: SGI n) to `targets`.
    SendSgis { intids: u16, targets: SgiTargets },
    /// Time its own virtual timer ([`measure_timer`]) into `SAMPLES`.
    TimerDeadlines,
    /// Read its virtual counter into `COUNTER`.
    ReadCounter,
    /// Acknowledge an interrupt and hold it active until released
    /// ([`gic_registers::hold_active`]).
    HoldActive,
    /// Call CPU_OFF.
    Off,
}

const KIND_SEND_SGIS: u32 = 1;
const KIND_TIMER: u32 = 2;
const KIND_OFF: u32 = 3;
const KIND_COUNTER: u32 = 4;
const KIND_HOLD_ACTIVE: u32 = 5;
/// In a SendSgis argument: AllButSelf instead of a target list.
const ALL_BUT_SELF: u64 = 1 << 32;

impl Request {
    fn encode(self) -> (u32, u64) {
        match self {
            Request::SendSgis { intids, targets } => {
                let targets = match targets {
                    SgiTargets::Vcpus(list) => u64::from(list) << 16,
                    SgiTargets::AllButSelf => ALL_BUT_SELF,
                };
                (KIND_SEND_SGIS, u64::from(intids) | targets)
            }
            Request::TimerDeadlines => (KIND_TIMER, 0),
            Request::ReadCounter => (KIND_COUNTER, 0),
            Request::HoldActive => (KIND_HOLD_ACTIVE, 0),
            Request::Off => (KIND_OFF, 0),
        }
    }

    fn decode(kind: u32, argument: u64) -> Option<Request> {
        match kind {
            KIND_SEND_SGIS => Some(Request::SendSgis {
                intids: u16::try_from(argument & 0xffff).unwrap_or(0),
                targets: if argument & ALL_BUT_SELF != 0 {
                    SgiTargets::AllButSelf
                } else {
                    SgiTargets::Vcpus(u16::try_from((argument >> 16) & 0xffff).unwrap_or(0))
                },
            }),
            KIND_TIMER => Some(Request::TimerDeadlines),
            KIND_COUNTER => Some(Request::ReadCounter),
            KIND_HOLD_ACTIVE => Some(Request::HoldActive),
            KIND_OFF => Some(Request::Off),
            _ => None,
        }
    }
}

static REQUEST_KIND: AtomicU32 = AtomicU32::new(0);
static REQUEST_ARGUMENT: AtomicU64 = AtomicU64::new(0);
/// Raised by the boot vCPU for each request; vCPU 1 copies it to `DONE`
/// once the request is carried out.
static REQUEST_SEQUENCE: AtomicU32 = AtomicU32::new(0);
static DONE_SEQUENCE: AtomicU32 = AtomicU32::new(0);
/// vCPU 1 has set up its GIC interface (`READY`) or failed to (`BROKEN`).
static READY: AtomicBool = AtomicBool::new(false);
static BROKEN: AtomicBool = AtomicBool::new(false);
/// vCPU 1's `CNTVCT_EL0`, read for a `ReadCounter` request.
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// One programmed deadline and what came of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sample {
    deadline: u64,
    /// `CNTVCT_EL0` in the handler.
    fired_at: u64,
    /// `CNTV_CTL_EL0` in the handler.
    control: u64,
    arrived: bool,
}

/// vCPU 1's samples, written before it acknowledges the request.
static SAMPLE_DEADLINE: [AtomicU64; TIMER_DELAYS_US.len()] =
    [const { AtomicU64::new(0) }; TIMER_DELAYS_US.len()];
static SAMPLE_FIRED_AT: [AtomicU64; TIMER_DELAYS_US.len()] =
    [const { AtomicU64::new(0) }; TIMER_DELAYS_US.len()];
static SAMPLE_CONTROL: [AtomicU64; TIMER_DELAYS_US.len()] =
    [const { AtomicU64::new(0) }; TIMER_DELAYS_US.len()];
static SAMPLE_ARRIVED: [AtomicBool; TIMER_DELAYS_US.len()] =
    [const { AtomicBool::new(false) }; TIMER_DELAYS_US.len()];

/// Hands `request` to vCPU 1 and waits until it is carried out. Works
/// with interrupts masked (waits in `WFE`).
fn ask(request: Request) -> Outcome {
    let sequence = post(request)?;
    wait_done(request, sequence)
}

/// Hands `request` to vCPU 1; returns its sequence number for [`wait_done`].
fn post(request: Request) -> Result<u32, Failure> {
    ensure!(
        READY.load(Ordering::SeqCst),
        "vCPU 1 is not running (see secondary_started): cannot ask it for {request:?}"
    );
    let (kind, argument) = request.encode();
    REQUEST_KIND.store(kind, Ordering::SeqCst);
    REQUEST_ARGUMENT.store(argument, Ordering::SeqCst);
    let sequence = REQUEST_SEQUENCE.load(Ordering::SeqCst).wrapping_add(1);
    REQUEST_SEQUENCE.store(sequence, Ordering::SeqCst);
    cpu::send_event();
    Ok(sequence)
}

/// Waits until vCPU 1 has carried out `request`, posted as `sequence`.
fn wait_done(request: Request, sequence: u32) -> Outcome {
    let carried_out = || DONE_SEQUENCE.load(Ordering::SeqCst) == sequence;
    // Interrupts masked (a burst in preparation): poll. Else sleep.
    let done = if cpu::irqs_masked() {
        time::wait_until(WAIT_MS, carried_out)
    } else {
        timer::wait_until(WAIT_MS, carried_out)
    };
    ensure!(
        done,
        "vCPU 1 did not carry out {request:?} within {WAIT_MS} ms"
    );
    Ok(())
}

/// vCPU 1: sets up its GIC interface, then serves requests, sleeping in
/// `WFI` (its timer wakes it every few milliseconds) between them.
pub fn secondary_main(_vcpu: usize, _context_id: u64) -> ! {
    let gic = match gic::init_cpu() {
        Ok(gic) => gic,
        Err(error) => {
            // The boot vCPU is waiting silently for READY or BROKEN.
            println!("irq: vCPU 1 cannot set up its GIC interface: {error}");
            BROKEN.store(true, Ordering::SeqCst);
            cpu::send_event();
            cpu::park()
        }
    };
    enable_sgis(&gic);
    timer::enable_interrupt(&gic);
    READY.store(true, Ordering::SeqCst);
    cpu::send_event();
    cpu::unmask_irqs();
    let mut served = 0;
    loop {
        timer::wait_until(WAIT_MS, || {
            REQUEST_SEQUENCE.load(Ordering::SeqCst) != served
        });
        let sequence = REQUEST_SEQUENCE.load(Ordering::SeqCst);
        if sequence == served {
            continue;
        }
        served = sequence;
        let request = Request::decode(
            REQUEST_KIND.load(Ordering::SeqCst),
            REQUEST_ARGUMENT.load(Ordering::SeqCst),
        );
        match request {
            Some(Request::SendSgis { intids, targets }) => send_sgis(&gic, intids, targets),
            Some(Request::TimerDeadlines) => {
                for (index, sample) in measure_timer().iter().enumerate() {
                    SAMPLE_DEADLINE[index].store(sample.deadline, Ordering::SeqCst);
                    SAMPLE_FIRED_AT[index].store(sample.fired_at, Ordering::SeqCst);
                    SAMPLE_CONTROL[index].store(sample.control, Ordering::SeqCst);
                    SAMPLE_ARRIVED[index].store(sample.arrived, Ordering::SeqCst);
                }
            }
            Some(Request::ReadCounter) => COUNTER.store(timer::now(), Ordering::SeqCst),
            Some(Request::HoldActive) => gic_registers::hold_active(&gic),
            Some(Request::Off) => {
                DONE_SEQUENCE.store(sequence, Ordering::SeqCst);
                cpu::send_event();
                let raw = Psci::HVC.cpu_off();
                println!("irq: vCPU 1: CPU_OFF returned {}", Raw(raw));
                cpu::park()
            }
            None => {}
        }
        DONE_SEQUENCE.store(sequence, Ordering::SeqCst);
        cpu::send_event();
    }
}

fn enable_sgis(gic: &Gic) {
    for intid in 0..SGI_COUNT {
        gic.enable(intid);
    }
}

fn send_sgis(gic: &Gic, intids: u16, targets: SgiTargets) {
    for intid in (0..SGI_COUNT).filter(|intid| intids & (1 << intid) != 0) {
        // Only INTIDs 0-15 get here: send_sgi cannot refuse them.
        let _ = gic.send_sgi(intid, targets);
    }
}

// ---------------------------------------------------------------------------
// The run.

pub fn run(context: &Context) -> ! {
    report::begin(ROLE);
    let mut found = None;
    report::case("gic_discovered", || {
        let layout = discover(&context.fdt)?;
        found = Some(layout);
        Ok(())
    });
    let mut ready = None;
    if let Some(layout) = &found {
        report::case("gic_set_up", || {
            ready = Some(set_up(context, layout)?);
            Ok(())
        });
    }
    let Some(gic) = ready else {
        report::finish();
        Psci::HVC.system_off()
    };
    report::case("secondary_started", start_secondary);
    // First, while the witness partition watches.
    report::case("sgi_to_foreign_cores", || sgi_to_foreign_cores(&gic));
    report::case("counter_shared_by_vcpus", counter_shared_by_vcpus);
    report::case("counters_untrapped", timer_contract::counters_untrapped);
    report::case("timer_node", || timer_contract::timer_node(&context.fdt));
    report::case("timer_deadline", || judge_timer(0, &measure_timer()));
    report::case("timer_deadline_vcpu1", || {
        ask(Request::TimerDeadlines)?;
        let samples: [Sample; TIMER_DELAYS_US.len()] = core::array::from_fn(|index| Sample {
            deadline: SAMPLE_DEADLINE[index].load(Ordering::SeqCst),
            fired_at: SAMPLE_FIRED_AT[index].load(Ordering::SeqCst),
            control: SAMPLE_CONTROL[index].load(Ordering::SeqCst),
            arrived: SAMPLE_ARRIVED[index].load(Ordering::SeqCst),
        });
        judge_timer(SECONDARY, &samples)
    });
    report::case("timer_held_while_disabled", || {
        timer_held_while_disabled(&gic)
    });
    report::case("sgi_to_other_vcpu", || sgi_to_other_vcpu(&gic));
    report::case("sgi_from_other_vcpu", || sgi_from_other_vcpu(&gic));
    report::case("sgi_all_but_self", || sgi_all_but_self(&gic));
    report::case("sgi_to_self", || sgi_to_self(&gic));
    report::case("foreign_spis_ignored", || {
        foreign_spis_ignored(&gic, &context.fdt)
    });
    report::case("burst_beyond_list_registers", || burst_from_self(&gic));
    report::case("burst_from_other_vcpu", || burst_from_other_vcpu(&gic));
    report::case("priority_order", || priority_order(&gic));
    report::case("priority_mask", || priority_mask(&gic));
    report::case("pending_reads_pending", || pending_reads_pending(&gic));
    report::case("active_reads_active", || active_reads_active(&gic));
    report::case("disable_withdraws_pending", || {
        disable_withdraws_pending(&gic)
    });
    report::case("timer_pending_while_active", || {
        timer_hardware_linked::pending_while_active(&gic)
    });
    report::case("timer_level_sensitive", || {
        timer_hardware_linked::level_sensitive(&gic)
    });
    report::case("timer_cleared_then_fires_again", || {
        timer_hardware_linked::cleared_then_fires_again(&gic)
    });
    report::case("active_set_and_cleared", || {
        gic_registers::active_set_and_cleared(&gic)
    });
    report::case("active_held_by_other_vcpu", || {
        gic_registers::active_held_elsewhere(
            &gic,
            PL011_SPI,
            || post(Request::HoldActive),
            |sequence| wait_done(Request::HoldActive, sequence),
        )
    });
    report::case("spi_targets_masked", || {
        gic_registers::targets_masked_to_the_vcpus(&gic, PL011_SPI)
    });
    report::case("spi_router_reads_back", || {
        gic_registers::router_reads_back(&gic, PL011_SPI)
    });
    report::case("secondary_off", || ask(Request::Off));
    tessera_guest_kit::print!("{UNFINISHED_LINE}");
    settle(UNFINISHED_LINE_MS);
    println!();
    report::finish();
    Psci::HVC.system_off()
}

fn discover(fdt: &Fdt<'_>) -> Result<Layout, Failure> {
    let layout = Layout::find(fdt).map_err(|error| Failure::new(format_args!("{error}")))?;
    let cpu_name = match layout.version {
        Version::V3 => "redistributors",
        Version::V2 => "CPU interface",
    };
    println!(
        "irq: {} ({}): distributor {:#x}, {cpu_name} {:#x} ({:#x} bytes)",
        layout.version, layout.node, layout.distributor.base, layout.cpu.base, layout.cpu.size
    );
    Ok(layout)
}

/// The distributor and this vCPU's interface; on GICv3 one redistributor
/// per vCPU, in order, the last marked Last; on GICv2 the distributor's
/// banked target register names this vCPU alone.
fn set_up(context: &Context, layout: &Layout) -> Result<Gic, Failure> {
    let vcpus = context
        .fdt
        .cpu_count()
        .map_err(|error| Failure::new(format_args!("cannot count /cpus: {error}")))?;
    let gic = gic::init(layout).map_err(|error| {
        Failure::new(format_args!("setting up the {}: {error}", layout.version))
    })?;
    match gic {
        Gic::V3(v3) => {
            let mut frames: heapless::Vec<v3::FrameIdentity, 8> = heapless::Vec::new();
            v3.frames(&mut frames);
            ensure!(
                frames.len() == vcpus,
                "{} redistributor frame(s) up to the one marked Last, expected one per vCPU ({vcpus})",
                frames.len()
            );
            for (index, frame) in frames.iter().enumerate() {
                ensure!(
                    frame.affinity as usize == index && frame.last == (index + 1 == vcpus),
                    "redistributor frame {index}: GICR_TYPER says affinity {:#x}, Last {}, expected affinity {index:#x}, Last {}",
                    frame.affinity,
                    frame.last,
                    index + 1 == vcpus
                );
            }
        }
        Gic::V2(v2) => {
            let word = v2.own_targets_word();
            ensure!(
                word == 0x0101_0101,
                "GICD_ITARGETSR0 reads {word:#010x} on vCPU 0, expected 0x01010101 (its own CPU interface)"
            );
        }
    }
    enable_sgis(&gic);
    timer::enable_interrupt(&gic);
    cpu::unmask_irqs();
    Ok(gic)
}

fn start_secondary() -> Outcome {
    let raw = Psci::HVC.cpu_on(SECONDARY as u64, secondary_entry_point(), 0);
    ensure!(
        decode(raw) == Ok(0),
        "CPU_ON of vCPU 1 returned {}, expected SUCCESS",
        Raw(raw)
    );
    let settled = timer::wait_until(WAIT_MS, || {
        READY.load(Ordering::SeqCst) || BROKEN.load(Ordering::SeqCst)
    });
    ensure!(settled, "vCPU 1 did not report within {WAIT_MS} ms");
    ensure!(
        !BROKEN.load(Ordering::SeqCst),
        "vCPU 1 could not set up its GIC interface (its message is above)"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// What arrived where.

/// Sleeps `milliseconds` in `WFI`, taking interrupts.
fn settle(milliseconds: u64) {
    timer::wait_until(milliseconds, || false);
}

/// Waits until vCPU `vcpu` has received each INTID of `expected` (bit n:
/// INTID n, SGIs and PPIs) since `before`, then [`SETTLE_MS`] more; then
/// each must have arrived exactly once and nothing else (the timer aside).
fn expect_once(vcpu: usize, before: &Snapshot, expected: u32) -> Outcome {
    let record = gic::record(vcpu);
    let all_in = || {
        (0..32)
            .filter(|intid| expected & (1 << intid) != 0)
            .all(|intid| record.count(intid) != before.counts[intid as usize])
    };
    timer::wait_until(WAIT_MS, all_in);
    settle(SETTLE_MS);
    let after = record.snapshot();
    let mut problems: heapless::String<200> = heapless::String::new();
    let mut bad = 0;
    for intid in 0..32u32 {
        let count = after.since(before, intid);
        let wanted = u32::from(expected & (1 << intid) != 0);
        if count == wanted || (intid == VIRTUAL_TIMER_INTID && wanted == 0) {
            continue;
        }
        bad += 1;
        let _ = write!(problems, " INTID {intid}: {count} (expected {wanted});");
    }
    let (_, untracked) = after.unexpected_since::<1>(before, |_| true);
    if untracked > 0 {
        bad += 1;
        let _ = write!(
            problems,
            " {untracked} beyond INTID 63 (last {});",
            record.last_untracked()
        );
    }
    ensure!(
        bad == 0,
        "vCPU {vcpu} received, since the test began:{problems}"
    );
    Ok(())
}

/// On GICv2, that SGIs `intids` last came to `vcpu` from CPU `source`.
fn expect_source(gic: &Gic, vcpu: usize, intids: u32, source: usize) -> Outcome {
    if gic.version() != Version::V2 {
        return Ok(());
    }
    let record = gic::record(vcpu);
    for intid in (0..SGI_COUNT).filter(|intid| intids & (1 << intid) != 0) {
        let seen = record.source(intid);
        ensure!(
            seen == u8::try_from(source).ok(),
            "SGI {intid} at vCPU {vcpu}: GICC_IAR.CPUID says it came from {seen:?}, expected vCPU {source}"
        );
    }
    Ok(())
}

fn snapshots() -> (Snapshot, Snapshot) {
    (gic::record(0).snapshot(), gic::record(SECONDARY).snapshot())
}

// ---------------------------------------------------------------------------
// SGIs.

/// Every SGI aimed at Aff0 2-15 (on GICv2 CPU interfaces 2-7), which on
/// the host are other partitions' cores or none, and on GICv3 at another
/// cluster and another range, from both vCPUs: nobody in this partition
/// receives them (the witness partition checks that it does not either).
fn sgi_to_foreign_cores(gic: &Gic) -> Outcome {
    let foreign = match gic.version() {
        Version::V3 => 0xfffc,
        Version::V2 => 0xfc,
    };
    let (before_0, before_1) = snapshots();
    for round in 0..FOREIGN_ROUNDS {
        send_sgis(gic, u16::MAX, SgiTargets::Vcpus(foreign));
        if let Gic::V3(v3) = gic {
            for intid in 0..SGI_COUNT {
                // Aff1 = 1 (another cluster) and RS = 1 (Aff0 16-31).
                if let Ok(value) = v3::sgi1r_with_affinity(intid, 1, 0, 0b11) {
                    v3.write_sgi1r(value);
                }
                if let Ok(value) = v3::sgi1r_with_affinity(intid, 0, 1, u16::MAX) {
                    v3.write_sgi1r(value);
                }
            }
        }
        if round % 4 == 0 {
            ask(Request::SendSgis {
                intids: u16::MAX,
                targets: SgiTargets::Vcpus(foreign),
            })?;
        }
        settle(1);
    }
    expect_once(0, &before_0, 0)?;
    expect_once(SECONDARY, &before_1, 0)
}

/// Each SGI from vCPU 0 to vCPU 1: it arrives there once, not here.
fn sgi_to_other_vcpu(gic: &Gic) -> Outcome {
    let (before_0, before_1) = snapshots();
    send_sgis(gic, u16::MAX, SgiTargets::Vcpus(1 << SECONDARY));
    expect_once(SECONDARY, &before_1, ALL_SGIS)?;
    expect_source(gic, SECONDARY, ALL_SGIS, 0)?;
    expect_once(0, &before_0, 0)
}

/// Each SGI from vCPU 1 to vCPU 0.
fn sgi_from_other_vcpu(gic: &Gic) -> Outcome {
    let (before_0, before_1) = snapshots();
    ask(Request::SendSgis {
        intids: u16::MAX,
        targets: SgiTargets::Vcpus(1 << 0),
    })?;
    expect_once(0, &before_0, ALL_SGIS)?;
    expect_source(gic, 0, ALL_SGIS, SECONDARY)?;
    expect_once(SECONDARY, &before_1, 0)
}

/// "Every vCPU but me" from each vCPU: the other one only.
fn sgi_all_but_self(gic: &Gic) -> Outcome {
    let (before_0, before_1) = snapshots();
    gic.send_sgi(7, SgiTargets::AllButSelf)
        .map_err(|error| Failure::new(format_args!("{error}")))?;
    expect_once(SECONDARY, &before_1, 1 << 7)?;
    expect_once(0, &before_0, 0)?;
    let (before_0, before_1) = snapshots();
    ask(Request::SendSgis {
        intids: 1 << 9,
        targets: SgiTargets::AllButSelf,
    })?;
    expect_once(0, &before_0, 1 << 9)?;
    expect_once(SECONDARY, &before_1, 0)
}

fn sgi_to_self(gic: &Gic) -> Outcome {
    let (before_0, before_1) = snapshots();
    send_sgis(gic, 1 << 3 | 1 << 12, SgiTargets::Vcpus(1 << 0));
    expect_once(0, &before_0, 1 << 3 | 1 << 12)?;
    expect_source(gic, 0, 1 << 3 | 1 << 12, 0)?;
    expect_once(SECONDARY, &before_1, 0)
}

// ---------------------------------------------------------------------------
// The virtual timer.

/// The partition's virtual counter is one counter: what vCPU 1 reads lies
/// between two reads on vCPU 0 around the request (CNTVOFF is the
/// partition's, not the vCPU's). A skew shorter than the round trip (a
/// few milliseconds: vCPU 1 polls for requests) goes unseen.
fn counter_shared_by_vcpus() -> Outcome {
    for _ in 0..3 {
        let before = timer::now();
        ask(Request::ReadCounter)?;
        let after = timer::now();
        let theirs = COUNTER.load(Ordering::SeqCst);
        ensure!(
            before <= theirs && theirs <= after,
            "vCPU 1 read CNTVCT_EL0 = {theirs:#x} while vCPU 0 read {before:#x} before and {after:#x} after"
        );
    }
    Ok(())
}

/// Lets a timer interrupt already on its way arrive, and stops the timer.
fn quiesce_timer() {
    cpu::mask_irqs();
    timer::stop();
    cpu::unmask_irqs();
}

/// Programs each of [`TIMER_DELAYS_US`] in turn on this vCPU's virtual
/// timer and waits for its interrupt, at most the delay plus [`WAIT_MS`],
/// with the timer as the only alarm.
fn measure_timer() -> [Sample; TIMER_DELAYS_US.len()] {
    let frequency = timer::frequency();
    let mut samples = [Sample::default(); TIMER_DELAYS_US.len()];
    for (sample, delay_us) in samples.iter_mut().zip(TIMER_DELAYS_US) {
        quiesce_timer();
        let before = timer::fired();
        let deadline = timer::now() + timer::ns_to_ticks(delay_us * 1000, frequency);
        timer::set_deadline(deadline);
        let arrived = timer::sleep_until(delay_us / 1000 + WAIT_MS, || timer::fired() != before);
        timer::stop();
        *sample = Sample {
            deadline,
            fired_at: timer::last_fired_at(),
            control: timer::last_fired_control(),
            arrived,
        };
    }
    samples
}

fn judge_timer(vcpu: usize, samples: &[Sample]) -> Outcome {
    let frequency = timer::frequency();
    let bound = timer::ms_to_ticks(LATENCY_BOUND_MS, frequency);
    let mut latencies: heapless::String<80> = heapless::String::new();
    for (sample, delay_us) in samples.iter().zip(TIMER_DELAYS_US) {
        ensure!(
            sample.arrived,
            "vCPU {vcpu}: a deadline {delay_us} us ahead passed and no timer interrupt came within {WAIT_MS} ms"
        );
        ensure!(
            sample.fired_at >= sample.deadline,
            "vCPU {vcpu}: the timer interrupt for a deadline {delay_us} us ahead came {} us early (CNTVCT {:#x}, CVAL {:#x})",
            timer::ticks_to_ns(sample.deadline - sample.fired_at, frequency) / 1000,
            sample.fired_at,
            sample.deadline
        );
        ensure!(
            sample.control & CNTV_CTL_ISTATUS != 0,
            "vCPU {vcpu}: in the timer's handler CNTV_CTL_EL0 reads {:#x}: ISTATUS clear, the timer had not fired",
            sample.control
        );
        let late = sample.fired_at - sample.deadline;
        let late_us = timer::ticks_to_ns(late, frequency) / 1000;
        ensure!(
            late <= bound,
            "vCPU {vcpu}: the timer interrupt for a deadline {delay_us} us ahead came {late_us} us late (bound {LATENCY_BOUND_MS} ms)"
        );
        let _ = write!(latencies, " {late_us}");
    }
    println!("irq: vCPU {vcpu}: timer interrupts after their deadlines, in us:{latencies}");
    Ok(())
}

/// With its PPI disabled in the GIC, a due timer's interrupt waits (and
/// reads pending); enabling the PPI delivers it.
fn timer_held_while_disabled(gic: &Gic) -> Outcome {
    quiesce_timer();
    let before = timer::fired();
    gic.disable(VIRTUAL_TIMER_INTID);
    timer::set_deadline(timer::now());
    let early = time::wait_until(HOLD_MS, || timer::fired() != before);
    let pending = gic.is_pending(VIRTUAL_TIMER_INTID);
    let enabled_at = timer::now();
    gic.enable(VIRTUAL_TIMER_INTID);
    let arrived = timer::sleep_until(WAIT_MS, || timer::fired() != before);
    timer::stop();
    ensure!(
        !early,
        "the timer interrupt arrived while PPI {VIRTUAL_TIMER_INTID} was disabled in the GIC"
    );
    ensure!(
        pending,
        "PPI {VIRTUAL_TIMER_INTID} did not read pending in GICR/GICD_ISPENDR0 while the timer was due and the PPI disabled"
    );
    ensure!(
        arrived,
        "the timer interrupt did not arrive within {WAIT_MS} ms of enabling PPI {VIRTUAL_TIMER_INTID}"
    );
    let late = timer::last_fired_at().saturating_sub(enabled_at);
    let bound = timer::ms_to_ticks(LATENCY_BOUND_MS, timer::frequency());
    ensure!(
        late <= bound,
        "the timer interrupt came {} us after enabling its PPI (bound {LATENCY_BOUND_MS} ms)",
        timer::ticks_to_ns(late, timer::frequency()) / 1000
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// SPIs the partition does not own.

/// The SPIs the guest DTB gives devices (`interrupts` of `/`'s children,
/// GIC_SPI specifiers): bit n of word n / 32 for INTID n.
fn owned_spis(fdt: &Fdt<'_>) -> Result<[u32; 32], Failure> {
    let mut owned = [0u32; 32];
    let mut error = None;
    fdt.for_each_child("/", |name| {
        let mut path: heapless::String<64> = heapless::String::new();
        if path.push('/').is_err() || path.push_str(name).is_err() {
            return;
        }
        match fdt.property(&path, "interrupts") {
            Ok(Some(cells)) => {
                // <type number flags> triples; type 0 is an SPI.
                for triple in cells.chunks_exact(12) {
                    let cell = |index: usize| {
                        u32::from_be_bytes([
                            triple[4 * index],
                            triple[4 * index + 1],
                            triple[4 * index + 2],
                            triple[4 * index + 3],
                        ])
                    };
                    let intid = FIRST_SPI + cell(1);
                    if cell(0) == 0 && intid < 1024 {
                        owned[intid as usize / 32] |= 1 << (intid % 32);
                    }
                }
            }
            Ok(None) => {}
            Err(e) => error = Some(e),
        }
    })
    .map_err(|e| Failure::new(format_args!("cannot read the DTB: {e}")))?;
    if let Some(e) = error {
        fail!("cannot read an interrupts property: {e}");
    }
    Ok(owned)
}

/// Writes to every SPI the partition does not own (enable, priority,
/// routing to vCPU 1, pending) leave it reading disabled, priority 0,
/// unrouted and idle, up to INTID 1019; its own SPI (the PL011's) reads
/// back each write, so the reads do show what a write changes.
fn foreign_spis_ignored(gic: &Gic, fdt: &Fdt<'_>) -> Outcome {
    let owned = owned_spis(fdt)?;
    let is_owned = |intid: u32| owned[intid as usize / 32] & (1 << (intid % 32)) != 0;
    let mut own_count = 0;
    let kept = PROBE_PRIORITY & PRIORITY_IMPLEMENTED;
    for intid in (FIRST_SPI..gic::FIRST_SPECIAL).filter(|&intid| is_owned(intid)) {
        own_count += 1;
        gic.set_pending(intid);
        let pending = gic.is_pending(intid);
        gic.clear_pending(intid);
        let cleared = !gic.is_pending(intid);
        gic.enable(intid);
        let enabled = gic.is_enabled(intid);
        gic.disable(intid);
        gic.set_priority_byte(intid, PROBE_PRIORITY);
        let priority = gic.priority_byte(intid);
        gic.set_priority_byte(intid, DEFAULT_PRIORITY);
        gic.route(intid, 1);
        let routing = gic.routing(intid);
        gic.route(intid, 0);
        ensure!(
            pending && cleared && enabled && priority == kept && routing == gic.routing_for(1),
            "own SPI {intid}: pending {pending}, then cleared {cleared}, enabled {enabled}, priority {priority:#04x} (expected {kept:#04x}), routing {routing:#x} (expected {:#x})",
            gic.routing_for(1)
        );
    }
    ensure!(
        own_count > 0,
        "the guest DTB gives no device an SPI: no own SPI to compare with"
    );
    let mut wrong = 0;
    let mut first: heapless::String<160> = heapless::String::new();
    for intid in (FIRST_SPI..gic::FIRST_SPECIAL).filter(|&intid| !is_owned(intid)) {
        gic.enable(intid);
        gic.set_priority_byte(intid, PROBE_PRIORITY);
        gic.route(intid, 1);
        gic.set_pending(intid);
        let (enabled, priority, routing, pending) = (
            gic.is_enabled(intid),
            gic.priority_byte(intid),
            gic.routing(intid),
            gic.is_pending(intid),
        );
        if enabled || priority != 0 || routing != 0 || pending {
            wrong += 1;
            if first.is_empty() {
                let _ = write!(
                    first,
                    "SPI {intid}: enabled {enabled}, priority {priority:#04x}, routing {routing:#x}, pending {pending}"
                );
            }
        }
        gic.disable(intid);
        gic.clear_pending(intid);
    }
    ensure!(
        wrong == 0,
        "{wrong} SPI(s) the partition does not own took a write; first: {first}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Many at once, and priorities.

/// Masks interrupts, runs `pend`, unmasks: everything `pend` made pending
/// is pending at once before the first is taken.
fn all_at_once(pend: impl FnOnce() -> Outcome) -> Outcome {
    quiesce_timer();
    cpu::mask_irqs();
    let result = pend();
    cpu::unmask_irqs();
    result
}

/// All 16 SGIs to itself and the spare PPIs pended, with interrupts
/// masked: 25 interrupts for 4 list registers, each delivered once.
fn burst_from_self(gic: &Gic) -> Outcome {
    for intid in SPARE_PPIS {
        gic.enable(intid);
    }
    let (before_0, _) = snapshots();
    let ppis: u32 = SPARE_PPIS.map(|intid| 1 << intid).sum();
    let result = all_at_once(|| {
        send_sgis(gic, u16::MAX, SgiTargets::Vcpus(1 << 0));
        for intid in SPARE_PPIS {
            gic.set_pending(intid);
        }
        Ok(())
    })
    .and_then(|()| expect_once(0, &before_0, ALL_SGIS | ppis));
    for intid in SPARE_PPIS {
        gic.disable(intid);
    }
    result
}

/// All 16 SGIs from vCPU 1 while this vCPU has interrupts masked.
fn burst_from_other_vcpu(gic: &Gic) -> Outcome {
    let (before_0, _) = snapshots();
    all_at_once(|| {
        ask(Request::SendSgis {
            intids: u16::MAX,
            targets: SgiTargets::Vcpus(1 << 0),
        })
    })?;
    expect_once(0, &before_0, ALL_SGIS)?;
    expect_source(gic, 0, ALL_SGIS, SECONDARY)
}

fn priority_of(intid: u32) -> u8 {
    PRIORITIES
        .iter()
        .find(|&&(candidate, _)| candidate == intid)
        .map_or(DEFAULT_PRIORITY, |&(_, priority)| priority)
}

/// Sixteen interrupts of distinct priorities, pending at once: they are
/// taken highest priority (lowest value) first, across list-register
/// refills.
fn priority_order(gic: &Gic) -> Outcome {
    for &(intid, priority) in &PRIORITIES {
        gic.set_priority_byte(intid, priority);
        gic.enable(intid);
    }
    let record = gic::record(0);
    let (before, _) = snapshots();
    let mask: u32 = PRIORITIES.iter().map(|&(intid, _)| 1 << intid).sum();
    let result = all_at_once(|| {
        for &(intid, _) in &PRIORITIES {
            if intid < SGI_COUNT {
                send_sgis(gic, 1 << intid, SgiTargets::Vcpus(1 << 0));
            } else {
                gic.set_pending(intid);
            }
        }
        Ok(())
    })
    .and_then(|()| expect_once(0, &before, mask))
    .and_then(|()| {
        let mut log = [0; LOG_CAPACITY];
        let count = record
            .arrivals_since(before.arrivals, &mut log)
            .map_err(|lost| Failure::new(format_args!("{lost} arrivals lost from the log")))?;
        // The timer may have come in between: it is not one of the sixteen.
        let mut order: heapless::Vec<u32, LOG_CAPACITY> = heapless::Vec::new();
        for &intid in log[..count]
            .iter()
            .filter(|&&intid| mask & (1 << intid) != 0)
        {
            let _ = order.push(intid);
        }
        check_priority_order(&order, priority_of).map_err(|violation| {
            Failure::new(format_args!("{violation} (order: {:?})", order.as_slice()))
        })
    });
    for &(intid, _) in &PRIORITIES {
        gic.set_priority_byte(intid, DEFAULT_PRIORITY);
        if intid >= SGI_COUNT {
            gic.disable(intid);
        }
    }
    result
}

/// An SGI whose priority is not above the priority mask stays pending
/// while the timer, above the mask, still comes; opening the mask one step
/// delivers the SGI.
fn priority_mask(gic: &Gic) -> Outcome {
    gic.set_priority_byte(MASKED_SGI, MASKED_PRIORITY);
    // The waits below sleep with the timer as their alarm: it must pass.
    gic.set_priority_byte(VIRTUAL_TIMER_INTID, TIMER_ABOVE_MASK);
    gic.set_priority_mask(MASKED_PRIORITY);
    let (before, _) = snapshots();
    let timer_before = timer::fired();
    send_sgis(gic, 1 << MASKED_SGI, SgiTargets::Vcpus(1 << 0));
    settle(SETTLE_MS);
    let held = gic::record(0).snapshot().since(&before, MASKED_SGI) == 0;
    let timer_passed = timer::fired() != timer_before;
    let mask = gic.priority_mask();
    gic.set_priority_mask(MASKED_PRIORITY + 8);
    let result = expect_once(0, &before, 1 << MASKED_SGI);
    gic.set_priority_mask(DEFAULT_PRIORITY_MASK);
    gic.set_priority_byte(MASKED_SGI, DEFAULT_PRIORITY);
    gic.set_priority_byte(VIRTUAL_TIMER_INTID, DEFAULT_PRIORITY);
    ensure!(
        mask == MASKED_PRIORITY,
        "the priority mask reads {mask:#04x} after writing {MASKED_PRIORITY:#04x}"
    );
    ensure!(
        held,
        "SGI {MASKED_SGI} of priority {MASKED_PRIORITY:#04x} arrived through a priority mask of {MASKED_PRIORITY:#04x}"
    );
    ensure!(
        timer_passed,
        "the timer (priority {TIMER_ABOVE_MASK:#04x}) did not come through a priority mask of {MASKED_PRIORITY:#04x}"
    );
    result
}

/// An SGI sent to this vCPU while it has interrupts masked reads pending
/// in GICD/GICR_ISPENDR0 until it is taken (IHI 0069H §12.9.29, IHI 0048B
/// §4.3.7: the register shows the pending state, wherever the GIC keeps it).
fn pending_reads_pending(gic: &Gic) -> Outcome {
    let (before, _) = snapshots();
    let mut pending = false;
    all_at_once(|| {
        send_sgis(gic, 1 << PENDING_SGI, SgiTargets::Vcpus(1 << 0));
        pending = gic.is_pending(PENDING_SGI);
        Ok(())
    })?;
    expect_once(0, &before, 1 << PENDING_SGI)?;
    ensure!(
        pending,
        "SGI {PENDING_SGI}, sent to this vCPU with interrupts masked, read not pending before it was taken"
    );
    Ok(())
}

/// [`ACTIVE_SGI`]'s handler: what the GIC says of it meanwhile.
fn note_state_in_handler(intid: u32) {
    let Some(gic) = gic::get() else { return };
    let mut seen = 0;
    if gic.bit(intid, ISACTIVER) {
        seen |= SEEN_ACTIVE;
    }
    if gic.is_pending(intid) {
        seen |= SEEN_PENDING;
    }
    SEEN_IN_HANDLER.store(seen, Ordering::SeqCst);
}

/// An interrupt the guest has acknowledged reads active and not pending
/// until it ends it, then neither (IHI 0069H §4.1.2, IHI 0048B §1.4.2):
/// Linux's `irq_get_irqchip_state` reads GICD/GICR_ISACTIVER so.
fn active_reads_active(gic: &Gic) -> Outcome {
    gic::set_handler(ACTIVE_SGI, note_state_in_handler);
    SEEN_IN_HANDLER.store(0, Ordering::SeqCst);
    let (before, _) = snapshots();
    send_sgis(gic, 1 << ACTIVE_SGI, SgiTargets::Vcpus(1 << 0));
    expect_once(0, &before, 1 << ACTIVE_SGI)?;
    let seen = SEEN_IN_HANDLER.load(Ordering::SeqCst);
    ensure!(
        seen & SEEN_ACTIVE != 0,
        "SGI {ACTIVE_SGI} read inactive in its own handler"
    );
    ensure!(
        seen & SEEN_PENDING == 0,
        "SGI {ACTIVE_SGI}, sent once, read pending in its handler"
    );
    ensure!(
        !gic.bit(ACTIVE_SGI, ISACTIVER) && !gic.is_pending(ACTIVE_SGI),
        "SGI {ACTIVE_SGI} read active or pending after its handler ended it"
    );
    Ok(())
}

/// An SGI pending (not yet taken: interrupts masked) when the guest
/// disables it is not delivered once interrupts are unmasked; enabling it
/// again delivers it. After GICD/GICR_ICENABLER (and on GICv3 the RWP
/// wait the kit does) the GIC forwards it no more (IHI 0069H §12.11.1
/// GICR_CTLR.RWP, IHI 0048B §4.3.6): Linux's `disable_irq` relies on it.
fn disable_withdraws_pending(gic: &Gic) -> Outcome {
    let (before, _) = snapshots();
    all_at_once(|| {
        send_sgis(gic, 1 << WITHDRAWN_SGI, SgiTargets::Vcpus(1 << 0));
        gic.disable(WITHDRAWN_SGI);
        Ok(())
    })?;
    settle(SETTLE_MS);
    let delivered = gic::record(0).snapshot().since(&before, WITHDRAWN_SGI);
    gic.enable(WITHDRAWN_SGI);
    if delivered == 0 {
        expect_once(0, &before, 1 << WITHDRAWN_SGI)?;
    }
    ensure!(
        delivered == 0,
        "SGI {WITHDRAWN_SGI}, pending while interrupts were masked, was delivered {delivered} time(s) after the guest disabled it"
    );
    Ok(())
}
