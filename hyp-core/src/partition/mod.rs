//! Running partitions: their shared state, their lifecycle (start, stop,
//! restart) and the CPUs that run their vCPUs.
//!
//! Each vCPU is pinned to one physical CPU, which runs nothing else: it
//! waits in EL2 while the vCPU is off and runs the guest while it is on.
//! CPUs change each other's state only through atomics here, then wake the
//! other CPU with SEV (when it waits in EL2) or a kick SGI (when it runs a
//! guest); the woken CPU acts on what it finds. Each partition counts its
//! vCPUs that are not off; the CPU whose vCPU brings that count to zero
//! finishes the stop or restart (a compare-exchange on the state decides),
//! so no CPU ever waits for another and exactly one finishes.

mod calls;
mod exit;
mod loader;
pub mod output;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use log::{info, warn};
use spin::{Mutex, Once};

use crate::arch::{cpu, virtualization};
use crate::config::guest_map::{GUEST_PL011_BASE, IPA_BITS};
use crate::config::{PartitionPlan, RestartPolicy};
use crate::guest::context::VcpuRegisters;
use crate::guest::pl011::{OutputBuffer, Pl011};
use crate::guest::psci::{AffinityState, SpeculationState};
use crate::guest::stage2;
use crate::hw::Hardware;
use crate::mm::address::ByteSize;
use crate::mm::page_table::{MapError, PageTable, Stage, Table, TablePool};
use crate::{gic, power, smp};

/// A partition's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum State {
    Running = 0,
    /// Its vCPUs are leaving; the last one stops the partition.
    Stopping = 1,
    /// Its vCPUs are leaving; the last one restarts the partition.
    Restarting = 2,
    /// The last vCPU is reloading it.
    Loading = 3,
    Stopped = 4,
}

/// A vCPU's PSCI power state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Power {
    Off = 0,
    /// CPU_ON was called; its CPU has not started it yet.
    OnPending = 1,
    On = 2,
    /// CPU_ON is writing the entry point (reads as ON_PENDING).
    Claimed = 3,
}

/// One vCPU: where it runs and what PSCI says about it.
#[derive(Debug)]
pub struct Vcpu {
    /// MPIDR affinity of the physical CPU it is pinned to.
    pub physical_mpidr: u64,
    power: AtomicU8,
    entry: AtomicU64,
    context: AtomicU64,
}

/// The emulated UART and the output it holds.
#[derive(Debug, Default)]
pub struct Uart {
    pub registers: Pl011,
    pub output: OutputBuffer,
}

/// A partition, built.
#[derive(Debug)]
pub struct Partition {
    pub plan: PartitionPlan<'static>,
    stage2_root: u64,
    state: AtomicU8,
    boots: AtomicU32,
    pub vcpus: Vec<Vcpu>,
    pub uart: Mutex<Uart>,
    /// Guest-caused warnings so far (they are rate-limited).
    warnings: AtomicU32,
    /// vCPUs that are not off (claimed, pending or on).
    active: AtomicUsize,
}

static PARTITIONS: Once<Vec<Partition>> = Once::new();
static SPECULATION: Once<SpeculationState> = Once::new();
/// Set once every partition has stopped and the machine is going down.
static POWERING_OFF: AtomicBool = AtomicBool::new(false);
/// Partitions not stopped: the CPU that brings this to zero powers off.
static RUNNING_PARTITIONS: AtomicUsize = AtomicUsize::new(0);

/// Most guest warnings logged per partition before only every 256th is.
const WARNINGS_LOGGED: u32 = 16;

fn partitions() -> &'static [Partition] {
    PARTITIONS.get().map_or(&[], Vec::as_slice)
}

impl Partition {
    pub fn name(&self) -> &'static str {
        self.plan.config.name
    }

    fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Running,
            1 => State::Stopping,
            2 => State::Restarting,
            3 => State::Loading,
            _ => State::Stopped,
        }
    }

    fn vcpu_power(&self, index: usize) -> Option<Power> {
        self.vcpus
            .get(index)
            .map(|v| match v.power.load(Ordering::Acquire) {
                0 => Power::Off,
                1 => Power::OnPending,
                2 => Power::On,
                _ => Power::Claimed,
            })
    }

    /// Whether a guest-caused warning should be logged (the first few, then
    /// every 256th), so that a misbehaving guest cannot flood the console.
    pub fn should_warn(&self) -> bool {
        let count = self.warnings.fetch_add(1, Ordering::Relaxed);
        count < WARNINGS_LOGGED || count.is_multiple_of(256)
    }

    /// PSCI AFFINITY_INFO for vCPU `index`.
    pub fn affinity(&self, index: usize) -> Option<AffinityState> {
        self.vcpu_power(index).map(|power| match power {
            Power::Off => AffinityState::Off,
            Power::OnPending | Power::Claimed => AffinityState::OnPending,
            Power::On => AffinityState::On,
        })
    }

    /// PSCI CPU_ON: `Err(state)` when the vCPU is not off.
    pub fn cpu_on(&self, index: usize, entry: u64, context: u64) -> Result<(), AffinityState> {
        let vcpu = self.vcpus.get(index).ok_or(AffinityState::Off)?;
        // Claim the vCPU first, so that a concurrent CPU_ON that fails
        // cannot change the entry point of the one that succeeded.
        match vcpu.power.compare_exchange(
            Power::Off as u8,
            Power::Claimed as u8,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                self.active.fetch_add(1, Ordering::SeqCst);
                vcpu.entry.store(entry, Ordering::Relaxed);
                vcpu.context.store(context, Ordering::Relaxed);
                vcpu.power.store(Power::OnPending as u8, Ordering::Release);
                cpu::send_event();
                Ok(())
            }
            Err(state) if state == Power::On as u8 => Err(AffinityState::On),
            Err(_) => Err(AffinityState::OnPending),
        }
    }

    /// Turns vCPU `index` off (from pending or on); the CPU whose vCPU was
    /// the last one not off finishes a stop or restart.
    fn power_off_vcpu(&self, index: usize, from: Power) {
        let Some(vcpu) = self.vcpus.get(index) else {
            return;
        };
        if vcpu
            .power
            .compare_exchange(
                from as u8,
                Power::Off as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            return;
        }
        if self.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.last_vcpu_left();
        }
    }

    /// SYSTEM_OFF (`restart` false) or SYSTEM_RESET (true), as the
    /// partition's restart policy interprets them; every other vCPU is
    /// made to leave its guest. The caller's vCPU then stops too.
    pub fn request_stop(&self, restart: bool, why: &str) {
        let restart = match self.plan.config.restart {
            RestartPolicy::OnRequest => restart,
            RestartPolicy::Always => true,
            RestartPolicy::Never => false,
        };
        let next = if restart {
            State::Restarting
        } else {
            State::Stopping
        };
        if self
            .state
            .compare_exchange(
                State::Running as u8,
                next as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            info!(
                "partition {}: {why}: {}",
                self.name(),
                if restart { "restarting" } else { "stopping" }
            );
            // The state change must be visible before any kick arrives
            // (a system-register SGI write is not ordered by a release store).
            cpu::send_event();
            for vcpu in &self.vcpus {
                if vcpu.physical_mpidr != cpu::mpidr() {
                    gic::kick(vcpu.physical_mpidr);
                }
            }
        }
    }

    /// Called once the partition has no vCPU left that is not off.
    fn last_vcpu_left(&self) {
        if self.state() == State::Running {
            // Every vCPU called CPU_OFF: nothing can turn one on again.
            self.request_stop(false, "all vCPUs are off");
        }
        let finish = |from: State, to: State| {
            self.state
                .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        };
        if finish(State::Restarting, State::Loading) {
            self.start();
        } else if finish(State::Stopping, State::Stopped) {
            self.stopped();
        }
    }

    /// After the partition became Stopped: the last one powers off.
    fn stopped(&self) {
        output::drain(None);
        info!("partition {}: stopped", self.name());
        let running = RUNNING_PARTITIONS.fetch_sub(1, Ordering::SeqCst) - 1;
        if running == 0 && !POWERING_OFF.swap(true, Ordering::AcqRel) {
            info!("all partitions have stopped: powering off");
            power::power_off();
        } else if running > 0 {
            info!("{running} partitions still running");
        }
    }

    /// Loads a fresh copy of the images and starts vCPU 0.
    fn start(&self) {
        let boots = self.boots.fetch_add(1, Ordering::AcqRel) + 1;
        self.uart.lock().output.clear();
        if let Err(error) = loader::load(&self.plan, boots) {
            warn!("partition {}: cannot start: {error}", self.name());
            self.state.store(State::Stopped as u8, Ordering::Release);
            self.stopped();
            return;
        }
        if boots > 1 {
            info!("partition {}: boot {boots}", self.name());
        }
        self.state.store(State::Running as u8, Ordering::Release);
        let _ = self.cpu_on(0, self.plan.layout.kernel, self.plan.layout.dtb);
        if let Some(vcpu) = self.vcpus.first() {
            gic::kick(vcpu.physical_mpidr);
        }
        cpu::send_event();
    }
}

/// Why partitions could not be built.
#[derive(Debug)]
pub enum BuildError {
    Stage2 {
        partition: &'static str,
        error: MapError,
    },
    /// A CPU the partition is given did not come online.
    CpuOffline { partition: &'static str, mpidr: u64 },
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::Stage2 { partition, error } => {
                write!(f, "partition {partition}: stage-2 tables: {error}")
            }
            BuildError::CpuOffline { partition, mpidr } => write!(
                f,
                "partition {partition}: its CPU with MPIDR {mpidr:#x} did not come online; no partition starts"
            ),
        }
    }
}

/// Stage-2 tables for `plan`, never freed (partitions live as long as
/// Tessera). Returns the root's physical address.
fn build_stage2(plan: &PartitionPlan<'_>) -> Result<u64, MapError> {
    const GIB: u64 = 1 << 30;
    const TWO_MIB: u64 = 2 << 20;
    let size = plan.ram.size();
    let blocks_only = (plan.ram.start().0 | plan.layout.ram_base | size).is_multiple_of(TWO_MIB);
    // The root, a level-2 table per GiB touched (+1 for misalignment), and
    // level-3 tables only when 2 MiB blocks cannot be used.
    let level3 = if blocks_only {
        0
    } else {
        size.div_ceil(TWO_MIB) + 2
    };
    let count = usize::try_from(2 + size.div_ceil(GIB) + level3).unwrap_or(usize::MAX);
    let tables: &'static mut [Table] =
        Box::leak(alloc::vec![Table::EMPTY; count].into_boxed_slice());
    let base = crate::mm::address::PhysAddr(tables.as_ptr() as u64);
    let pool: &'static mut TablePool<'static> = Box::leak(Box::new(TablePool::new(tables, base)));
    let mut table = PageTable::new(pool, Stage::Stage2, IPA_BITS)?;
    stage2::map_partition(&mut table, plan)?;
    let counts = table.leaf_counts();
    log::debug!(
        "partition {}: stage 2: {} 1 GiB, {} 2 MiB, {} 4 KiB entries",
        plan.config.name,
        counts[1],
        counts[2],
        counts[3]
    );
    let root = table.root_address().0;
    // The tables are written with caches on; the walker may read memory.
    platform::cpu::cache::clean(base.as_usize(), count * core::mem::size_of::<Table>());
    Ok(root)
}

/// Builds every partition, loads its images and starts its first vCPU.
/// Called once, on the boot CPU, after the secondary CPUs are online.
pub fn start_all(
    plans: Vec<PartitionPlan<'static>>,
    hardware: &Hardware<'static>,
) -> Result<(), BuildError> {
    SPECULATION.call_once(virtualization::speculation_state);
    let mut built = Vec::with_capacity(plans.len());
    for plan in plans {
        let stage2_root = build_stage2(&plan).map_err(|error| BuildError::Stage2 {
            partition: plan.config.name,
            error,
        })?;
        if let Some(offline) = plan
            .config
            .cpus
            .iter()
            .filter_map(|&i| hardware.cpus.list.get(i))
            .find(|cpu| !smp::is_online(cpu.mpidr))
        {
            return Err(BuildError::CpuOffline {
                partition: plan.config.name,
                mpidr: offline.mpidr,
            });
        }
        let vcpus = plan
            .config
            .cpus
            .iter()
            .filter_map(|&i| hardware.cpus.list.get(i))
            .map(|cpu| Vcpu {
                physical_mpidr: cpu.mpidr,
                power: AtomicU8::new(Power::Off as u8),
                entry: AtomicU64::new(0),
                context: AtomicU64::new(0),
            })
            .collect();
        built.push(Partition {
            plan,
            stage2_root,
            state: AtomicU8::new(State::Loading as u8),
            boots: AtomicU32::new(0),
            vcpus,
            uart: Mutex::new(Uart::default()),
            warnings: AtomicU32::new(0),
            active: AtomicUsize::new(0),
        });
    }
    for partition in &built {
        describe(partition);
    }
    RUNNING_PARTITIONS.store(built.len(), Ordering::SeqCst);
    let partitions = PARTITIONS.call_once(|| built);
    for partition in partitions {
        partition.start();
    }
    Ok(())
}

fn describe(partition: &Partition) {
    let plan = &partition.plan;
    let mut cpus = heapless::String::<96>::new();
    for vcpu in &partition.vcpus {
        let _ = core::fmt::Write::write_fmt(&mut cpus, format_args!(" {:#x}", vcpu.physical_mpidr));
    }
    info!(
        "partition {}: VMID {}, CPUs (MPIDR){cpus}, RAM {} ({}) at guest {:#x}, kernel ({}) at guest {:#x}, PL011 at guest {GUEST_PL011_BASE:#x}",
        plan.config.name,
        plan.vmid,
        plan.ram,
        ByteSize(plan.ram.size()),
        plan.layout.ram_base,
        plan.kernel_kind,
        plan.layout.kernel,
    );
}

/// The partition and vCPU this CPU runs, if any.
fn assignment() -> Option<(&'static Partition, usize)> {
    let mpidr = cpu::mpidr();
    partitions().iter().find_map(|p| {
        p.vcpus
            .iter()
            .position(|v| v.physical_mpidr == mpidr)
            .map(|index| (p, index))
    })
}

/// Whether partitions have been started (secondary CPUs wait for this).
pub fn started() -> bool {
    PARTITIONS.get().is_some()
}

/// Runs this CPU's vCPU for as long as Tessera runs; a CPU without one
/// returns at once.
pub fn run_this_cpu() {
    let Some((partition, index)) = assignment() else {
        return;
    };
    let Some(vcpu) = partition.vcpus.get(index) else {
        return;
    };
    loop {
        // Off: wait until CPU_ON (or a restart) turns this vCPU on.
        loop {
            if smp::stop_requested() {
                smp::acknowledge_stop();
                cpu::park();
            }
            if partition.vcpu_power(index) == Some(Power::OnPending) {
                if partition.state() == State::Running {
                    break;
                }
                // Turned on while its partition stops: it never runs.
                partition.power_off_vcpu(index, Power::OnPending);
            }
            cpu::wait_for_event();
        }
        virtualization::prepare(
            partition.stage2_root,
            partition.plan.vmid,
            index,
            partition.plan.config.pmu_el2_events,
        );
        if index == 0 {
            // A fresh start: nothing cached from the previous boot may survive.
            virtualization::invalidate_guest_tlbs();
        }
        let mut registers = VcpuRegisters::at_entry(
            vcpu.entry.load(Ordering::Relaxed),
            vcpu.context.load(Ordering::Relaxed),
        );
        vcpu.power.store(Power::On as u8, Ordering::Release);
        while partition.state() == State::Running {
            if smp::stop_requested() {
                // Another CPU crashed: stop here, as idle CPUs do.
                smp::acknowledge_stop();
                cpu::park();
            }
            // SAFETY: `prepare` set this CPU up for the partition: its own
            // stage-2 tables and VMID, and the traps of docs/partitions.md.
            let vector = unsafe { crate::arch::run_guest(&mut registers) };
            if exit::handle(partition, index, &mut registers, vector) == exit::Next::Off {
                break;
            }
        }
        partition.power_off_vcpu(index, Power::On);
    }
}

/// Makes every CPU that runs a vCPU leave its guest (after a crash).
pub fn kick_all() {
    for vcpu in partitions().iter().flat_map(|p| &p.vcpus) {
        if vcpu.physical_mpidr != cpu::mpidr() {
            gic::kick(vcpu.physical_mpidr);
        }
    }
}

/// The host core's speculation state, for SMCCC_ARCH_FEATURES.
pub fn speculation() -> SpeculationState {
    SPECULATION.get().copied().unwrap_or_default()
}
