//! A partition's lifecycle and its vCPUs' PSCI power states: the decisions
//! (who may turn a vCPU on, which CPU finishes a stop or a restart), made
//! with atomics only, so that CPUs racing each other agree without locks
//! and without waiting for one another. The partition (`partition/`, EL2)
//! acts on what they decide: it loads, logs and drains; the machine is
//! reached through [`Machine`], which the tests fake.
//!
//! The partition counts its vCPUs that are not off; the CPU whose vCPU
//! brings that count to zero learns that it finishes ([`Finish`]), and a
//! compare-exchange on the state makes it the only one.

#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use crate::config::RestartPolicy;
use crate::guest::smccc::{AffinityState, PsciReturn};
use crate::hw::cpus::MPIDR_AFFINITY_MASK;

/// What the lifecycle needs from the machine.
pub trait Machine {
    /// The MPIDR affinity of the CPU this code runs on.
    fn this_cpu(&self) -> u64;
    /// Makes CPU `mpidr` look at its vCPU's state: it leaves its guest, or
    /// wakes from WFI.
    fn kick(&self, mpidr: u64);
    /// Wakes every CPU waiting in WFE, once a state change is visible.
    fn send_event(&self);
}

/// A partition's lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Running = 0,
    /// Its vCPUs are leaving; the last one stops the partition.
    Stopping = 1,
    /// Its vCPUs are leaving; the last one restarts the partition.
    Restarting = 2,
    /// The last vCPU is reloading it (also before its first start).
    Loading = 3,
    Stopped = 4,
}

/// A vCPU's PSCI power state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Power {
    Off = 0,
    /// CPU_ON was called; its CPU has not started it yet.
    OnPending = 1,
    On = 2,
    /// CPU_ON is writing the entry point (reads as ON_PENDING).
    Claimed = 3,
}

/// What the caller that turned a vCPU off must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// Nothing: other vCPUs are still on, or another CPU finishes.
    Nothing,
    /// Reload the partition and start it ([`Lifecycle::loaded`]): its
    /// state is `Loading`.
    Restart {
        /// Because every vCPU called CPU_OFF (and the policy restarts).
        all_off: bool,
    },
    /// The partition has stopped (its state is `Stopped`).
    Stop {
        /// Because every vCPU called CPU_OFF, not by a request.
        all_off: bool,
    },
}

/// What a stop request became under the partition's restart policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopping {
    Stop,
    Restart,
}

/// One vCPU: the CPU it is pinned to and what PSCI says about it.
#[derive(Debug)]
struct VcpuPower {
    physical_mpidr: u64,
    power: AtomicU8,
    entry: AtomicU64,
    context: AtomicU64,
}

/// A partition's state and its vCPUs' power states.
#[derive(Debug)]
pub struct Lifecycle {
    state: AtomicU8,
    vcpus: Vec<VcpuPower>,
    /// vCPUs that are not off (claimed, pending or on).
    active: AtomicUsize,
    policy: RestartPolicy,
}

impl Lifecycle {
    /// A partition not started yet (`Loading`) whose vCPU n runs on the
    /// CPU with MPIDR `physical_mpidrs[n]`, every vCPU off, and whose
    /// requests to stop `policy` reads.
    pub fn new(physical_mpidrs: impl IntoIterator<Item = u64>, policy: RestartPolicy) -> Lifecycle {
        let vcpus = physical_mpidrs
            .into_iter()
            .map(|physical_mpidr| VcpuPower {
                physical_mpidr,
                power: AtomicU8::new(Power::Off as u8),
                entry: AtomicU64::new(0),
                context: AtomicU64::new(0),
            })
            .collect();
        Lifecycle {
            state: AtomicU8::new(State::Loading as u8),
            vcpus,
            active: AtomicUsize::new(0),
            policy,
        }
    }

    pub fn vcpu_count(&self) -> usize {
        self.vcpus.len()
    }

    /// The MPIDR of the CPU vCPU `index` is pinned to.
    pub fn physical_mpidr(&self, index: usize) -> Option<u64> {
        self.vcpus.get(index).map(|v| v.physical_mpidr)
    }

    /// The vCPU pinned to the CPU with MPIDR `mpidr`, if any.
    pub fn vcpu_on_cpu(&self, mpidr: u64) -> Option<usize> {
        self.vcpus.iter().position(|v| v.physical_mpidr == mpidr)
    }

    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Running,
            1 => State::Stopping,
            2 => State::Restarting,
            3 => State::Loading,
            _ => State::Stopped,
        }
    }

    pub fn power(&self, index: usize) -> Option<Power> {
        self.vcpus
            .get(index)
            .map(|v| match v.power.load(Ordering::Acquire) {
                0 => Power::Off,
                1 => Power::OnPending,
                2 => Power::On,
                _ => Power::Claimed,
            })
    }

    /// PSCI AFFINITY_INFO for vCPU `index`.
    pub fn affinity(&self, index: usize) -> Option<AffinityState> {
        self.power(index).map(|power| match power {
            Power::Off => AffinityState::Off,
            Power::OnPending | Power::Claimed => AffinityState::OnPending,
            Power::On => AffinityState::On,
        })
    }

    /// The vCPU a PSCI target MPIDR names: vCPU n has MPIDR n (Aff0 only).
    fn target(&self, mpidr: u64) -> Option<usize> {
        let mpidr = mpidr & MPIDR_AFFINITY_MASK;
        usize::try_from(mpidr)
            .ok()
            .filter(|&index| index < self.vcpus.len())
    }

    /// Turns vCPU `index` on at `entry` with `context` in x0: `Err(state)`
    /// when it is not off. Its CPU is kicked (unless it is this one).
    pub fn cpu_on(
        &self,
        index: usize,
        entry: u64,
        context: u64,
        machine: &impl Machine,
    ) -> Result<(), AffinityState> {
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
                machine.send_event();
                if vcpu.physical_mpidr != machine.this_cpu() {
                    // Its CPU waits in WFI (see `partition/vcpu.rs`).
                    machine.kick(vcpu.physical_mpidr);
                }
                Ok(())
            }
            Err(state) if state == Power::On as u8 => Err(AffinityState::On),
            Err(_) => Err(AffinityState::OnPending),
        }
    }

    /// PSCI CPU_ON as a guest calls it: `target` an MPIDR, `entry_in_ram`
    /// whether the entry point is in the partition's RAM.
    pub fn psci_cpu_on(
        &self,
        target: u64,
        entry: u64,
        context: u64,
        entry_in_ram: bool,
        machine: &impl Machine,
    ) -> PsciReturn {
        let Some(index) = self.target(target) else {
            return PsciReturn::InvalidParameters;
        };
        if !entry_in_ram {
            return PsciReturn::InvalidAddress;
        }
        match self.cpu_on(index, entry, context, machine) {
            Ok(()) => PsciReturn::Success,
            Err(AffinityState::OnPending) => PsciReturn::OnPending,
            Err(_) => PsciReturn::AlreadyOn,
        }
    }

    /// PSCI AFFINITY_INFO as a guest calls it: x0's value.
    pub fn psci_affinity_info(&self, target: u64, lowest_level: u64) -> u64 {
        self.target(target)
            .filter(|_| lowest_level == 0)
            .and_then(|index| self.affinity(index))
            .map_or(PsciReturn::InvalidParameters.value(), |state| state as u64)
    }

    /// Where vCPU `index` starts, once its CPU found it pending: (entry,
    /// context), `None` while its partition does not run (then the CPU
    /// must turn it off again, [`Lifecycle::power_off`] from
    /// `OnPending`).
    pub fn entry_if_running(&self, index: usize) -> Option<(u64, u64)> {
        let vcpu = self.vcpus.get(index)?;
        if self.power(index) != Some(Power::OnPending) || self.state() != State::Running {
            return None;
        }
        Some((
            vcpu.entry.load(Ordering::Relaxed),
            vcpu.context.load(Ordering::Relaxed),
        ))
    }

    /// vCPU `index` is about to enter its guest (its CPU found it pending).
    pub fn mark_on(&self, index: usize) {
        if let Some(vcpu) = self.vcpus.get(index) {
            vcpu.power.store(Power::On as u8, Ordering::Release);
        }
    }

    /// Turns vCPU `index` off from `from` (pending or on). The caller
    /// whose vCPU was the last not off learns what it finishes; a call from
    /// any other state changes nothing.
    pub fn power_off(&self, index: usize, from: Power, machine: &impl Machine) -> Finish {
        let Some(vcpu) = self.vcpus.get(index) else {
            return Finish::Nothing;
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
            return Finish::Nothing;
        }
        if self.active.fetch_sub(1, Ordering::SeqCst) != 1 {
            return Finish::Nothing;
        }
        // Every vCPU called CPU_OFF while it ran: nothing can turn one on
        // again, so the partition stops (as its policy reads SYSTEM_OFF).
        let all_off = self.request_stop(false, machine, |_| {}).is_some();
        if self.advance(State::Restarting, State::Loading) {
            Finish::Restart { all_off }
        } else if self.advance(State::Stopping, State::Stopped) {
            Finish::Stop { all_off }
        } else {
            Finish::Nothing
        }
    }

    /// SYSTEM_OFF (`restart` false) or SYSTEM_RESET (true), as the restart
    /// policy reads them: a running partition starts stopping or
    /// restarting, `announce` is told which (before any other vCPU can
    /// leave, so that its line comes first), and every other vCPU's CPU is
    /// kicked so that it leaves its guest. What it became if this call
    /// changed the state; the caller's vCPU then turns off too.
    pub fn request_stop(
        &self,
        restart: bool,
        machine: &impl Machine,
        announce: impl FnOnce(Stopping),
    ) -> Option<Stopping> {
        let (stopping, next) = if self.policy.restarts(restart) {
            (Stopping::Restart, State::Restarting)
        } else {
            (Stopping::Stop, State::Stopping)
        };
        if !self.advance(State::Running, next) {
            return None;
        }
        announce(stopping);
        // The state change must be visible before any kick arrives (a
        // system-register SGI write is not ordered by a release store).
        machine.send_event();
        let this = machine.this_cpu();
        for vcpu in self.vcpus.iter().filter(|v| v.physical_mpidr != this) {
            machine.kick(vcpu.physical_mpidr);
        }
        Some(stopping)
    }

    /// The partition is loaded: it runs, from vCPU 0 at `entry` with
    /// `context` in x0 (its CPU is kicked or sent an event, as by CPU_ON).
    pub fn loaded(&self, entry: u64, context: u64, machine: &impl Machine) {
        self.state.store(State::Running as u8, Ordering::Release);
        let _ = self.cpu_on(0, entry, context, machine);
    }

    /// The partition could not be loaded: it stays stopped.
    pub fn failed_to_load(&self) {
        self.state.store(State::Stopped as u8, Ordering::Release);
    }

    /// Moves the state from `from` to `to`; false if it was not `from`.
    fn advance(&self, from: State, to: State) -> bool {
        self.state
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}
