//! Bringing the secondary CPUs online, and stopping them.

use core::alloc::Layout;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use log::{info, warn};

use crate::arch::{self, cpu};
use crate::hw::Hardware;
use crate::hw::cpus::{Cpu, EnableMethod, MAX_CPUS};
use crate::{console, physical_gic};

/// Stacks of each secondary CPU (the boot CPU's are in the image): the one
/// Tessera's code runs on, and the one exceptions run on.
const SECONDARY_STACK_SIZE: usize = 32 << 10;
const SECONDARY_EXCEPTION_STACK_SIZE: usize = 16 << 10;
/// How long the boot CPU waits for secondaries to report in.
const BRING_UP_TIMEOUT_MS: u64 = 1000;
/// How long a crash waits for the other CPUs to stop. They stop within
/// microseconds on hardware; the margin is for emulators on busy hosts.
const STOP_TIMEOUT_MS: u64 = 500;

/// CPUs that have reported in, the boot CPU included.
static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// Their MPIDR affinities, by Tessera's CPU number (unused slots: u64::MAX).
static ONLINE_MPIDRS: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(u64::MAX) }; MAX_CPUS];

fn record_online() {
    if let Some(slot) = ONLINE_MPIDRS.get(cpu::index()) {
        slot.store(cpu::mpidr(), Ordering::Release);
    }
}

/// Online CPUs (by their slot in `ONLINE_MPIDRS`) that run a vCPU: a crash
/// kicks them out of their guests. The others wait in EL2, where an event
/// wakes them, and never take a kick (EL2 runs with IRQs masked), which
/// would then stay pending and keep their parked WFI from sleeping.
static RUNS_GUESTS: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// The CPU with MPIDR affinity `mpidr` runs a vCPU (set as partitions are
/// built).
pub fn runs_guests(mpidr: u64) {
    for (slot, runs) in ONLINE_MPIDRS.iter().zip(&RUNS_GUESTS) {
        if slot.load(Ordering::Acquire) == mpidr {
            runs.store(true, Ordering::Release);
        }
    }
}

/// Whether the CPU with MPIDR affinity `mpidr` is online.
pub fn is_online(mpidr: u64) -> bool {
    ONLINE_MPIDRS
        .iter()
        .any(|slot| slot.load(Ordering::Acquire) == mpidr)
}
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);
static STOPPED: AtomicUsize = AtomicUsize::new(0);

/// Why a CPU was not started.
#[derive(Debug)]
enum StartError {
    NoPsci,
    Psci(platform::cpu::psci::PsciError),
    Unsupported(&'static str),
    UnknownMethod,
    NoStack,
    ReleaseNotMapped(u64),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::NoPsci => {
                f.write_str("its enable-method is \"psci\" but no usable /psci node exists")
            }
            StartError::Psci(error) => {
                write!(
                    f,
                    "PSCI CPU_ON failed: {}",
                    platform::cpu::psci::error_name(error)
                )
            }
            StartError::Unsupported(why) => f.write_str(why),
            StartError::UnknownMethod => {
                f.write_str("its enable-method is not one Tessera knows (psci, spin-table)")
            }
            StartError::NoStack => f.write_str("no memory for its stack"),
            StartError::ReleaseNotMapped(address) => {
                write!(
                    f,
                    "its cpu-release-addr {address:#x} is neither RAM nor mapped"
                )
            }
        }
    }
}

/// A deadline `ms` milliseconds from now, in counter ticks.
fn deadline(ms: u64) -> u64 {
    cpu::counter().saturating_add(cpu::counter_frequency().saturating_mul(ms) / 1000)
}

/// Starts every CPU of `hardware` other than the boot CPU, waits for them to
/// report in, and returns how many CPUs are online.
pub fn start_secondaries(hardware: &Hardware<'_>, mapped: impl Fn(u64) -> bool) -> usize {
    record_online();
    let mut expected = 1;
    let others = hardware
        .cpus
        .list
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != hardware.cpus.boot);
    for (logical, (_, cpu)) in (1..MAX_CPUS).zip(others) {
        match start(logical, cpu, hardware.psci.is_some(), &mapped) {
            Ok(()) => expected += 1,
            Err(error) => warn!(
                "CPU {logical} (MPIDR {:#x}, {}) stays offline: {error}",
                cpu.mpidr,
                cpu.node.path()
            ),
        }
    }
    let until = deadline(BRING_UP_TIMEOUT_MS);
    while ONLINE.load(Ordering::Acquire) < expected && cpu::counter() < until {
        cpu::wait_for_event();
    }
    let online = ONLINE.load(Ordering::Acquire);
    if online < expected {
        warn!(
            "{} CPUs were started but did not report in within {BRING_UP_TIMEOUT_MS} ms",
            expected - online
        );
    }
    online
}

/// A stack of `size` bytes from the heap, as its top address. Never freed:
/// the CPU runs until the machine stops.
fn allocate_stack(size: usize) -> Result<u64, StartError> {
    let layout = Layout::from_size_align(size, 16).map_err(|_| StartError::NoStack)?;
    // SAFETY: the layout has a non-zero size.
    let stack = unsafe { alloc::alloc::alloc(layout) };
    if stack.is_null() {
        return Err(StartError::NoStack);
    }
    Ok(stack as u64 + size as u64)
}

fn start(
    logical: usize,
    cpu: &Cpu<'_>,
    psci: bool,
    mapped: &impl Fn(u64) -> bool,
) -> Result<(), StartError> {
    // Everything that can be checked is checked before memory is committed.
    match cpu.enable_method {
        EnableMethod::Psci if !psci => return Err(StartError::NoPsci),
        EnableMethod::SpinTable { release_addr } if !mapped(release_addr.0) => {
            return Err(StartError::ReleaseNotMapped(release_addr.0));
        }
        EnableMethod::Other("spin-table") => {
            return Err(StartError::Unsupported(
                "its spin-table description is incomplete",
            ));
        }
        EnableMethod::Other(_) | EnableMethod::None => return Err(StartError::UnknownMethod),
        EnableMethod::Psci | EnableMethod::SpinTable { .. } => {}
    }
    let top = allocate_stack(SECONDARY_STACK_SIZE)?;
    let exception_top = allocate_stack(SECONDARY_EXCEPTION_STACK_SIZE)?;
    if !cpu::prepare_boot_slot(logical, cpu.mpidr, top, exception_top) {
        return Err(StartError::Unsupported("more CPUs than boot slots"));
    }
    let entry = arch::secondary_entry as *const () as u64;
    match cpu.enable_method {
        EnableMethod::SpinTable { release_addr } => {
            // SAFETY: the release address comes from the DT's spin-table
            // description, is 8-byte aligned (checked in discovery), mapped
            // (checked above) and firmware memory Tessera does not use.
            unsafe { platform::cpu::spin_table::release(release_addr.as_usize(), entry) };
            Ok(())
        }
        _ => {
            platform::cpu::psci::cpu_on(cpu.mpidr, entry, logical as u64).map_err(StartError::Psci)
        }
    }
}

/// Brings a secondary CPU into service, its MMU and caches on, and counts
/// it online: what it does next is the boot sequence's (`boot.rs`).
pub fn report_online(index: usize) {
    cpu::enable_event_stream();
    if let Err(error) = physical_gic::init_this_cpu() {
        warn!("GIC CPU interface: {error}");
    }
    info!("CPU {index} online (MPIDR {:#x})", cpu::mpidr());
    record_online();
    ONLINE.fetch_add(1, Ordering::Release);
    cpu::send_event();
}

/// Whether a crash asked every CPU to stop.
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::Acquire)
}

/// Counts this CPU as stopped.
pub fn acknowledge_stop() {
    STOPPED.fetch_add(1, Ordering::AcqRel);
    cpu::send_event();
}

/// Asks every other online CPU to stop and waits (briefly) until they have.
/// Returns (stopped, other CPUs online).
pub fn stop_other_cpus() -> (usize, usize) {
    let others = ONLINE.load(Ordering::Acquire).saturating_sub(1);
    STOP_REQUESTED.store(true, Ordering::Release);
    cpu::send_event();
    // CPUs running a guest see the request when the kick makes them exit;
    // the others, waiting in EL2, were woken by the event above.
    let this = cpu::mpidr();
    for (slot, runs) in ONLINE_MPIDRS.iter().zip(&RUNS_GUESTS) {
        let mpidr = slot.load(Ordering::Acquire);
        if runs.load(Ordering::Acquire) && mpidr != this {
            physical_gic::kick(mpidr);
        }
    }
    let until = deadline(STOP_TIMEOUT_MS);
    while STOPPED.load(Ordering::Acquire) < others && cpu::counter() < until {
        cpu::wait_for_event();
    }
    console::flush();
    (STOPPED.load(Ordering::Acquire).min(others), others)
}
