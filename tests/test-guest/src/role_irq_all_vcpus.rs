//! Role `irq-all-vcpus`: every vCPU of a partition as large as its GIC
//! version allows (16 on GICv3) takes a timer interrupt and an SGI (issue
//! 14, "Limits that must hold"). The boot vCPU starts the others with
//! CPU_ON; each sets up its GIC interface, arms its own timer and waits for
//! it, then waits for the SGI the boot vCPU sends to all of them at once.

use core::sync::atomic::{AtomicBool, Ordering};

use tessera_guest_kit::cpu::{self, secondary_entry_point};
use tessera_guest_kit::gic::{self, Gic, Layout, SgiTargets};
use tessera_guest_kit::psci::{Psci, Raw, decode};
use tessera_guest_kit::report::{self, Failure, Outcome};
use tessera_guest_kit::{MAX_VCPUS, ensure, fail, println, time, timer};

use crate::context::Context;

pub const ROLE: &str = "irq-all-vcpus";

/// The SGI every vCPU must receive.
const SGI: u32 = 1;
/// How long to wait for a vCPU, a timer or an SGI (a debug hypervisor
/// under TCG with 16 vCPUs on few host cores is slow).
const WAIT_MS: u64 = 10_000;
/// How far ahead each vCPU arms its timer.
const TIMER_MS: u64 = 1;

/// Per vCPU: set up (`READY`), its timer came (`TIMER`), the SGI came
/// (`SGI_SEEN`).
static READY: [AtomicBool; MAX_VCPUS] = [const { AtomicBool::new(false) }; MAX_VCPUS];
static TIMER: [AtomicBool; MAX_VCPUS] = [const { AtomicBool::new(false) }; MAX_VCPUS];
static SGI_SEEN: [AtomicBool; MAX_VCPUS] = [const { AtomicBool::new(false) }; MAX_VCPUS];

/// Sets up this vCPU's interface, takes one timer interrupt and one SGI.
fn take_timer_and_sgi(gic: &Gic) {
    let vcpu = cpu::index() % MAX_VCPUS;
    gic.enable(SGI);
    timer::enable_interrupt(gic);
    cpu::unmask_irqs();
    READY[vcpu].store(true, Ordering::SeqCst);
    cpu::send_event();
    let before = timer::fired();
    timer::set_deadline_after(timer::ms_to_ticks(TIMER_MS, timer::frequency()));
    let fired = timer::sleep_until(WAIT_MS, || timer::fired() != before);
    timer::stop();
    TIMER[vcpu].store(fired, Ordering::SeqCst);
    cpu::send_event();
    let record = gic::record(vcpu);
    let got = time::wait_until(WAIT_MS, || record.count(SGI) > 0);
    SGI_SEEN[vcpu].store(got, Ordering::SeqCst);
    cpu::send_event();
}

pub fn secondary_main(_vcpu: usize, _context_id: u64) -> ! {
    match gic::init_cpu() {
        Ok(gic) => take_timer_and_sgi(&gic),
        Err(error) => println!("irq-all-vcpus: vCPU {}: {error}", cpu::index()),
    }
    Psci::HVC.cpu_off();
    cpu::park()
}

pub fn run(context: &Context) -> ! {
    report::begin(ROLE);
    let mut ready = None;
    report::case("gic_set_up", || {
        let layout =
            Layout::find(&context.fdt).map_err(|error| Failure::new(format_args!("{error}")))?;
        let gic = gic::init(&layout)
            .map_err(|error| Failure::new(format_args!("setting up the GIC: {error}")))?;
        let vcpus = context
            .fdt
            .cpu_count()
            .map_err(|error| Failure::new(format_args!("counting /cpus: {error}")))?;
        println!("irq-all-vcpus: {} with {vcpus} vCPUs", layout.version);
        ready = Some((gic, vcpus));
        Ok(())
    });
    if let Some((gic, vcpus)) = ready {
        report::case("all_vcpus_started", || start_all(vcpus));
        report::case("timer_on_every_vcpu", || {
            // The boot vCPU's own, then everyone's.
            let before = timer::fired();
            gic.enable(SGI);
            timer::enable_interrupt(&gic);
            cpu::unmask_irqs();
            timer::set_deadline_after(timer::ms_to_ticks(TIMER_MS, timer::frequency()));
            let fired = timer::sleep_until(WAIT_MS, || timer::fired() != before);
            timer::stop();
            TIMER[0].store(fired, Ordering::SeqCst);
            all_of(vcpus, &TIMER, "took no timer interrupt")
        });
        report::case("sgi_on_every_vcpu", || {
            gic.send_sgi(SGI, SgiTargets::Vcpus(all(vcpus)))
                .map_err(|error| Failure::new(format_args!("{error}")))?;
            let record = gic::record(0);
            SGI_SEEN[0].store(
                time::wait_until(WAIT_MS, || record.count(SGI) > 0),
                Ordering::SeqCst,
            );
            all_of(vcpus, &SGI_SEEN, "received no SGI")
        });
    }
    report::finish();
    Psci::HVC.system_off()
}

/// Bits 0 to `vcpus` - 1.
fn all(vcpus: usize) -> u16 {
    u16::try_from((1u32 << vcpus.min(16)) - 1).unwrap_or(u16::MAX)
}

fn start_all(vcpus: usize) -> Outcome {
    ensure!(
        vcpus <= MAX_VCPUS,
        "{vcpus} vCPUs, but the kit has stacks for {MAX_VCPUS}"
    );
    READY[0].store(true, Ordering::SeqCst);
    for vcpu in 1..vcpus {
        let raw = Psci::HVC.cpu_on(vcpu as u64, secondary_entry_point(), 0);
        ensure!(
            decode(raw) == Ok(0),
            "CPU_ON of vCPU {vcpu} returned {}",
            Raw(raw)
        );
    }
    time::wait_until(WAIT_MS, || {
        (0..vcpus).all(|vcpu| READY[vcpu].load(Ordering::SeqCst))
    });
    all_of(vcpus, &READY, "did not set up its GIC interface")
}

/// Waits for `flags` of every vCPU; fails naming those still clear.
fn all_of(vcpus: usize, flags: &[AtomicBool; MAX_VCPUS], what: &str) -> Outcome {
    time::wait_until(WAIT_MS, || {
        (0..vcpus).all(|vcpu| flags[vcpu].load(Ordering::SeqCst))
    });
    let missing: u32 = (0..vcpus)
        .filter(|&vcpu| !flags[vcpu].load(Ordering::SeqCst))
        .map(|vcpu| 1 << vcpu)
        .sum();
    if missing != 0 {
        fail!("vCPUs {missing:#x} {what} within {WAIT_MS} ms");
    }
    Ok(())
}
