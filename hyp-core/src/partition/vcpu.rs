//! The loop each CPU given to a partition runs: wait while its vCPU is
//! off, set the CPU up for the partition, run the guest, handle its exits.

use core::sync::atomic::Ordering;

use super::fast_exit::RunningVcpu;
use super::{Partition, exit, partitions, rendezvous};
use crate::arch::{cpu, virtualization};
use crate::guest::context::VcpuRegisters;
use crate::lifecycle::{Power, State};
use crate::{physical_gic, smp};

/// The partition and vCPU this CPU runs, if any.
fn assignment() -> Option<(&'static Partition, usize)> {
    let mpidr = cpu::mpidr();
    partitions()
        .iter()
        .find_map(|p| p.lifecycle.vcpu_on_cpu(mpidr).map(|index| (p, index)))
}

/// Runs this CPU's vCPU for as long as Tessera runs; a CPU without one
/// returns at once.
pub fn run_this_cpu() {
    let Some((partition, index)) = assignment() else {
        return;
    };
    loop {
        // Off: wait until CPU_ON (or a restart) turns this vCPU on.
        let (entry, context) = loop {
            if smp::stop_requested() {
                smp::acknowledge_stop();
                cpu::park();
            }
            if partition.vcpu_power(index) == Some(Power::OnPending) {
                if let Some(start) = partition.lifecycle.entry_if_running(index) {
                    break start;
                }
                // Turned on while its partition stops: it never runs.
                partition.power_off_vcpu(index, Power::OnPending);
            }
            // Off for as long as its partition wants (a stopped partition
            // never comes back): wait in WFI; CPU_ON, a restart, a sibling
            // that needs it parked and a crash elsewhere all kick this CPU.
            rendezvous::serve(partition, index, None);
            cpu::wait_for_interrupt();
            exit::interrupt(partition, index, false);
            rendezvous::serve(partition, index, None);
        };
        virtualization::prepare(
            partition.stage2_root,
            partition.plan.vmid,
            index,
            partition.plan.config.pmu_el2_events,
            partition.counter_offset.load(Ordering::Acquire),
        );
        physical_gic::vcpu_starting(partition.vgic.timer_at_start(index));
        partition.claim_console_input(index);
        let mut interface = physical_gic::ThisCpuInterface::get();
        if index == 0 {
            // A fresh start: nothing cached from the previous boot may survive.
            virtualization::invalidate_guest_tlbs();
        }
        let mut running = RunningVcpu {
            registers: VcpuRegisters::at_entry(entry, context),
            partition,
            index,
            underflow: false,
        };
        partition.lifecycle.mark_on(index);
        while partition.state() == State::Running {
            if smp::stop_requested() {
                // Another CPU crashed: stop here, as idle CPUs do.
                smp::acknowledge_stop();
                cpu::park();
            }
            let Some(interface) = interface.as_mut() else {
                break;
            };
            if partition.vgic.needs_flush(index) {
                rendezvous::serve(partition, index, Some(&mut *interface));
                running.flush(interface);
            }
            // Exits come back with the timer's line sampled, the fast ones
            // handled already (partition/fast_exit.rs).
            let frame = running.as_guest_frame();
            // SAFETY: `prepare` set this CPU up for the partition (its own
            // stage-2 tables and VMID, the traps of docs/partitions.md);
            // `frame` is this loop's `running`, which nothing else touches.
            let vector = unsafe { crate::arch::run_guest(frame) };
            if vector != crate::arch::HANDLED
                && exit::handle(partition, index, &mut running.registers, vector) == exit::Next::Off
            {
                break;
            }
        }
        if let Some(interface) = interface.as_mut() {
            let wake = partition.vgic.vcpu_stopping(index, interface);
            partition.kick(wake);
        }
        physical_gic::vcpu_stopped();
        partition.power_off_vcpu(index, Power::On);
    }
}
