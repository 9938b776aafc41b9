//! Role `irq-witness`: a partition that only listens, on the cores at which
//! a partition of role `irq` aims SGIs that must go nowhere.
//!
//! Every vCPU sets up its GIC interface, enables every SGI and PPI and
//! watches for [`WATCH_MS`], sleeping in `WFI` with its virtual timer as
//! the alarm clock. Then one `TEST` case per vCPU: nothing but its own
//! timer arrived (a foreign SGI pended before the interface was set up
//! arrives too: set-up leaves pending state alone), and the timer did,
//! so the vCPU was really listening. The scenario checks that the watch
//! began before the `irq` partition's foreign SGIs and ended after them.

use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use tessera_guest_kit::cpu::{self, secondary_entry_point};
use tessera_guest_kit::gic::{self, Gic, Layout};
use tessera_guest_kit::psci::{Psci, Raw, decode};
use tessera_guest_kit::report::{self, Failure, Outcome};
use tessera_guest_kit::timer::{self, VIRTUAL_TIMER_INTID};
use tessera_guest_kit::{MAX_VCPUS, ensure, fail, println};

use crate::context::Context;

/// The role's name in `role=` and in its `RESULT` line.
pub const ROLE: &str = "irq-witness";

/// How long each vCPU watches. Longer than the `irq` partition needs from
/// its start to the end of its foreign SGIs, by a wide margin.
const WATCH_MS: u64 = 1500;
/// How long to wait for a secondary vCPU to report.
const WAIT_MS: u64 = 1000;

/// Per vCPU: listening (1), failed to set up (2), done watching (3).
static STAGE: [AtomicU32; MAX_VCPUS] = [const { AtomicU32::new(0) }; MAX_VCPUS];
const LISTENING: u32 = 1;
const BROKEN: u32 = 2;
const DONE: u32 = 3;
/// Set by the boot vCPU once it has printed that the watch began.
static GO: AtomicBool = AtomicBool::new(false);

/// Sets up this vCPU's interface (`init`: the boot vCPU's, with the
/// distributor) and enables every SGI and PPI.
fn listen(gic: &Gic) {
    for intid in 0..gic::FIRST_SPI {
        gic.enable(intid);
    }
    timer::enable_interrupt(gic);
    cpu::unmask_irqs();
}

fn watch(vcpu: usize) {
    timer::wait_until(WATCH_MS, || false);
    cpu::mask_irqs();
    STAGE[vcpu].store(DONE, Ordering::SeqCst);
    cpu::send_event();
}

/// A secondary vCPU: listens, watches, turns itself off.
pub fn secondary_main(vcpu: usize, _context_id: u64) -> ! {
    let vcpu = vcpu % MAX_VCPUS;
    match gic::init_cpu() {
        Ok(gic) => {
            listen(&gic);
            STAGE[vcpu].store(LISTENING, Ordering::SeqCst);
            cpu::send_event();
        }
        Err(error) => {
            println!("{ROLE}: vCPU {vcpu} cannot set up its GIC interface: {error}");
            STAGE[vcpu].store(BROKEN, Ordering::SeqCst);
            cpu::send_event();
            cpu::park()
        }
    }
    timer::wait_until(WAIT_MS, || GO.load(Ordering::SeqCst));
    watch(vcpu);
    let raw = Psci::HVC.cpu_off();
    println!("{ROLE}: vCPU {vcpu}: CPU_OFF returned {}", Raw(raw));
    cpu::park()
}

pub fn run(context: &Context) -> ! {
    report::begin(ROLE);
    let mut vcpus = 1;
    report::case("witness_listening", || {
        vcpus = context
            .fdt
            .cpu_count()
            .map_err(|error| Failure::new(format_args!("cannot count /cpus: {error}")))?
            .min(MAX_VCPUS);
        let layout =
            Layout::find(&context.fdt).map_err(|error| Failure::new(format_args!("{error}")))?;
        let gic = gic::init(&layout).map_err(|error| {
            Failure::new(format_args!("setting up the {}: {error}", layout.version))
        })?;
        listen(&gic);
        println!("{ROLE}: {}, {vcpus} vCPU(s)", layout.version);
        for vcpu in 1..vcpus {
            let raw = Psci::HVC.cpu_on(vcpu as u64, secondary_entry_point(), 0);
            ensure!(
                decode(raw) == Ok(0),
                "CPU_ON of vCPU {vcpu} returned {}, expected SUCCESS",
                Raw(raw)
            );
        }
        let reported = timer::wait_until(WAIT_MS, || {
            (1..vcpus).all(|vcpu| STAGE[vcpu].load(Ordering::SeqCst) != 0)
        });
        ensure!(reported, "not every vCPU reported within {WAIT_MS} ms");
        if let Some(vcpu) = (1..vcpus).find(|&vcpu| STAGE[vcpu].load(Ordering::SeqCst) == BROKEN) {
            fail!("vCPU {vcpu} could not set up its GIC interface (its message is above)");
        }
        Ok(())
    });
    println!("{ROLE}: watching for {WATCH_MS} ms on {vcpus} vCPU(s)");
    GO.store(true, Ordering::SeqCst);
    cpu::send_event();
    watch(0);
    timer::wait_until(WATCH_MS + WAIT_MS, || {
        (1..vcpus).all(|vcpu| STAGE[vcpu].load(Ordering::SeqCst) == DONE)
    });
    for vcpu in 0..vcpus {
        let mut name: heapless::String<32> = heapless::String::new();
        let _ = write!(name, "no_foreign_interrupts_vcpu{vcpu}");
        report::case(&name, || nothing_foreign(vcpu));
    }
    report::finish();
    Psci::HVC.system_off()
}

/// vCPU `vcpu` watched to the end, received its timer and nothing else.
fn nothing_foreign(vcpu: usize) -> Outcome {
    ensure!(
        STAGE[vcpu].load(Ordering::SeqCst) == DONE,
        "vCPU {vcpu} did not finish its watch"
    );
    let record = gic::record(vcpu);
    let now = record.snapshot();
    let empty = gic::record::Snapshot {
        counts: [0; gic::record::TRACKED],
        untracked: 0,
        spurious: 0,
        arrivals: 0,
    };
    let (foreign, untracked) =
        now.unexpected_since::<8>(&empty, |intid| intid == VIRTUAL_TIMER_INTID);
    ensure!(
        foreign.is_empty() && untracked == 0,
        "vCPU {vcpu} received interrupts it never caused, as (INTID, count): {:?}, and {untracked} beyond INTID 63",
        foreign.as_slice()
    );
    ensure!(
        record.count(VIRTUAL_TIMER_INTID) > 0,
        "vCPU {vcpu} never received its own timer interrupt: it was not listening"
    );
    Ok(())
}
