//! Running partitions: their shared state, their lifecycle (start, stop,
//! restart) and the CPUs that run their vCPUs.
//!
//! Each vCPU is pinned to one physical CPU, which runs nothing else: it
//! waits in EL2 while the vCPU is off and runs the guest while it is on.
//! CPUs change each other's state only through atomics here, then wake the
//! other CPU with SEV (when it waits in EL2) or a kick SGI (when it runs a
//! guest); the woken CPU acts on what it finds. Which CPU finishes a stop
//! or a restart, and who may turn a vCPU on, is decided by the partition's
//! [`Lifecycle`] (host-tested, `lifecycle/`); this module acts on it.

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
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use log::{info, warn};
use spin::{Mutex, Once};

use crate::arch::cpu;
use crate::config::PartitionPlan;
use crate::config::guest_map::GUEST_PL011_SPI;
use crate::guest::mmio_bus::MmioBus;
use crate::guest::pl011::{InputFifo, OutputBuffer, Pl011};
use crate::guest::smccc::SpeculationState;
use crate::lifecycle::{Finish, Lifecycle, Machine, Power, State, Stopping};
use crate::vgic::{Effects, Vgic};
use crate::{console, physical_gic, power};

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
    /// Its state and its vCPUs' power states.
    pub lifecycle: Lifecycle,
    boots: AtomicU32,
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
        self.lifecycle.state()
    }

    fn vcpu_power(&self, index: usize) -> Option<Power> {
        self.lifecycle.power(index)
    }

    /// Whether a guest-caused warning should be logged (the first few, then
    /// every 256th), so that a misbehaving guest cannot flood the console.
    pub fn should_warn(&self) -> bool {
        let count = self.warnings.fetch_add(1, Ordering::Relaxed);
        count < WARNINGS_LOGGED || count.is_multiple_of(256)
    }

    /// Turns vCPU `index` off (from pending or on) and, if it was the last
    /// one not off, finishes the stop or restart the lifecycle decided.
    fn power_off_vcpu(&self, index: usize, from: Power) {
        match self.lifecycle.power_off(index, from, &El2) {
            Finish::Nothing => {}
            Finish::Restart { all_off } => {
                if all_off {
                    self.announce_stop("all vCPUs are off", Stopping::Restart);
                }
                self.start();
            }
            Finish::Stop { all_off } => {
                if all_off {
                    self.announce_stop("all vCPUs are off", Stopping::Stop);
                }
                self.stopped();
            }
        }
    }

    /// SYSTEM_OFF (`restart` false) or SYSTEM_RESET (true), as the
    /// partition's restart policy interprets them; every other vCPU is
    /// made to leave its guest. The caller's vCPU then stops too.
    pub fn request_stop(&self, restart: bool, why: &str) {
        self.lifecycle
            .request_stop(restart, &El2, |stopping| self.announce_stop(why, stopping));
    }

    fn announce_stop(&self, why: &str, stopping: Stopping) {
        let what = match stopping {
            Stopping::Restart => "restarting",
            Stopping::Stop => "stopping",
        };
        info!("partition {}: {why}: {what}", self.name());
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
                self.lifecycle.failed_to_load();
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
        self.lifecycle
            .loaded(self.plan.layout.kernel, self.plan.layout.dtb, &El2);
    }
}

/// The machine the lifecycle acts on: this CPU, kicks and events.
struct El2;

impl Machine for El2 {
    fn this_cpu(&self) -> u64 {
        cpu::mpidr()
    }

    fn kick(&self, mpidr: u64) {
        physical_gic::kick(mpidr);
    }

    fn send_event(&self) {
        cpu::send_event();
    }
}

impl Partition {
    /// Raises the emulated UART's SPI in the virtual GIC (its line rose).
    pub fn uart_interrupt(&self, current: Option<usize>) {
        let intid = crate::vgic::state::PRIVATE_COUNT + GUEST_PL011_SPI;
        if let Some(woken) = self.vgic.inject(current.unwrap_or(0), intid)
            && Some(woken) != current
        {
            self.kick_vcpu(woken);
        }
    }

    /// Kicks the CPU of vCPU `index`.
    pub fn kick_vcpu(&self, index: usize) {
        if let Some(mpidr) = self.lifecycle.physical_mpidr(index) {
            physical_gic::kick(mpidr);
        }
    }

    /// Kicks the CPUs of `vcpus`.
    pub fn kick(&self, vcpus: crate::vgic::state::VcpuSet) {
        for vcpu in vcpus.iter() {
            self.kick_vcpu(vcpu);
        }
    }

    /// Kicks the CPUs of the vCPUs a vGIC write woke, other than `current`'s
    /// (which fills its list registers on its way back into the guest).
    pub fn wake(&self, current: usize, effects: &Effects) {
        for index in effects.wake.iter().filter(|&index| index != current) {
            self.kick_vcpu(index);
        }
        // Its hardware-linked interrupts' physical state follows the
        // guest's writes (vgic/hardware_linked.rs): a PPI on the CPU of
        // the vCPU it belongs to.
        for op in &effects.physical {
            if let Some(mpidr) = self.lifecycle.physical_mpidr(op.vcpu) {
                physical_gic::apply_physical(op, mpidr);
            }
        }
        // Its passthrough SPIs: the physical GIC follows the guest's
        // enables and routing, to the CPU of the vCPU the guest chose.
        for &(intid, enabled, target) in &effects.hardware {
            let mpidr = self.lifecycle.physical_mpidr(usize::from(target));
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
