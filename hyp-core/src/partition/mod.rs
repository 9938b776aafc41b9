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

mod build;
mod calls;
mod console_input;
mod device;
mod exit;
pub mod fast_exit;
mod loader;
pub mod output;
mod rendezvous;
mod vcpu;

pub use build::start_all;
pub use vcpu::run_this_cpu;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use log::{info, warn};
use spin::{Mutex, Once};

use crate::arch::cpu;
use crate::config::PartitionPlan;
use crate::config::guest_map::GUEST_PL011_SPI;
use crate::guest::mmio_bus::MmioBus;
use crate::guest::pl011::{InputFifo, OutputBuffer, Pl011};
use crate::guest::smccc::{AffinityState, SpeculationState};
use crate::vgic::{Effects, Vgic};
use crate::{console, physical_gic, power};

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

/// The emulated UART, the output and input it holds, and its line.
#[derive(Debug, Default)]
pub struct Uart {
    pub registers: Pl011,
    pub output: OutputBuffer,
    pub input: InputFifo,
    /// The interrupt line as last seen: the SPI is injected when it rises.
    line: bool,
    /// Counter value at which the unfinished line `output` ends with is
    /// shown as it is (see `output.rs`).
    unfinished_due: Option<u64>,
}

impl Uart {
    /// Re-reads the interrupt line; true if it rose.
    pub fn line_rose(&mut self) -> bool {
        let line = self.registers.line(&self.output, &self.input);
        let rose = line && !self.line;
        self.line = line;
        rose
    }
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
    pub vgic: Vgic,
    /// The emulated devices' windows in the guest's address space.
    pub bus: MmioBus,
    /// CNTVOFF_EL2 for every vCPU: the physical count at the partition's
    /// start, so its virtual counter starts near zero at each boot and
    /// reads the same on all its vCPUs.
    counter_offset: AtomicU64,
    /// Guest-caused warnings so far (they are rate-limited).
    warnings: AtomicU32,
    /// vCPUs that are not off (claimed, pending or on).
    active: AtomicUsize,
    /// Whether a line of this partition has reached the console.
    has_printed: AtomicBool,
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
                if vcpu.physical_mpidr != cpu::mpidr() {
                    // Its CPU waits in WFI (see `vcpu::run_this_cpu`).
                    physical_gic::kick(vcpu.physical_mpidr);
                }
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
        let restart = self.plan.config.restart.restarts(restart);
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
                    physical_gic::kick(vcpu.physical_mpidr);
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
        self.quiesce_passthrough_interrupts();
        output::drain_all(self);
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
        // What the last boot printed last (its "restarting" line) may still
        // wait for the console: it goes out before the buffer is reset.
        output::drain_all(self);
        *self.uart.lock() = Uart::default();
        self.vgic.reset();
        self.quiesce_passthrough_interrupts();
        let loaded = match loader::load(&self.plan, boots, self.vgic.version()) {
            Ok(loaded) => loaded,
            Err(error) => {
                warn!("partition {}: cannot start: {error}", self.name());
                self.state.store(State::Stopped as u8, Ordering::Release);
                self.stopped();
                return;
            }
        };
        info!(
            "partition {}: RAM scrubbed in {}, images and device tree copied in {}",
            self.name(),
            console::Microseconds(console::ticks_to_ns(loaded.scrub_ticks)),
            console::Microseconds(console::ticks_to_ns(loaded.copy_ticks))
        );
        if boots > 1 {
            info!("partition {}: boot {boots}", self.name());
        }
        // The guest's virtual counter starts from (about) zero at its first
        // instruction, not before its RAM was scrubbed and its images copied.
        self.counter_offset.store(cpu::counter(), Ordering::Release);
        self.state.store(State::Running as u8, Ordering::Release);
        let _ = self.cpu_on(0, self.plan.layout.kernel, self.plan.layout.dtb);
        if let Some(vcpu) = self.vcpus.first() {
            physical_gic::kick(vcpu.physical_mpidr);
        }
        cpu::send_event();
    }
}

impl Partition {
    /// Raises the emulated UART's SPI in the virtual GIC (its line rose).
    pub fn uart_interrupt(&self, current: Option<usize>) {
        let intid = crate::vgic::state::PRIVATE_COUNT + GUEST_PL011_SPI;
        if let Some(woken) = self.vgic.inject(current.unwrap_or(0), intid)
            && let Some(vcpu) = self.vcpus.get(woken)
            && Some(woken) != current
        {
            physical_gic::kick(vcpu.physical_mpidr);
        }
    }

    /// Kicks the CPUs of `vcpus`.
    pub fn kick(&self, vcpus: crate::vgic::state::VcpuSet) {
        for vcpu in vcpus.iter() {
            if let Some(vcpu) = self.vcpus.get(vcpu) {
                physical_gic::kick(vcpu.physical_mpidr);
            }
        }
    }

    /// Kicks the CPUs of the vCPUs a vGIC write woke, other than `current`'s
    /// (which fills its list registers on its way back into the guest).
    pub fn wake(&self, current: usize, effects: &Effects) {
        for (index, vcpu) in self.vcpus.iter().enumerate() {
            if index != current && effects.wake.contains(index) {
                physical_gic::kick(vcpu.physical_mpidr);
            }
        }
        // Its hardware-linked interrupts' physical state follows the
        // guest's writes (vgic/hardware_linked.rs): a PPI on the CPU of
        // the vCPU it belongs to.
        for op in &effects.physical {
            if let Some(vcpu) = self.vcpus.get(op.vcpu) {
                physical_gic::apply_physical(op, vcpu.physical_mpidr);
            }
        }
        // Its passthrough SPIs: the physical GIC follows the guest's
        // enables and routing, to the CPU of the vCPU the guest chose.
        for &(intid, enabled, target) in &effects.hardware {
            let mpidr = self
                .vcpus
                .get(usize::from(target))
                .map(|v| v.physical_mpidr);
            physical_gic::route_guest_spi(intid, enabled, mpidr);
        }
    }

    /// Puts its passthrough SPIs back to reset (off, nothing pending or
    /// active) while no vCPU runs: before each start, and when it stops.
    fn quiesce_passthrough_interrupts(&self) {
        for spi in self.plan.config.passthrough_spis() {
            physical_gic::quiesce_guest_spi(spi.intid);
        }
    }
}

/// Whether every partition has had a line printed on the console (what a
/// crash injected "while guests run" waits for).
pub fn every_partition_has_printed() -> bool {
    partitions()
        .iter()
        .all(|p| p.has_printed.load(Ordering::Acquire))
}

/// Whether partitions have been started (secondary CPUs wait for this).
pub fn started() -> bool {
    PARTITIONS.get().is_some()
}

/// The host core's speculation state, for SMCCC_ARCH_FEATURES.
pub fn speculation() -> SpeculationState {
    SPECULATION.get().copied().unwrap_or_default()
}
