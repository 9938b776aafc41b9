//! The CPUs' side of the virtual GIC's rendezvous (`vgic/rendezvous.rs`):
//! the vCPU whose access needs what other vCPUs' list registers hold kicks
//! them and waits until they park; every CPU of the partition serves such
//! requests wherever it waits.

use log::warn;

use super::{Partition, Power};
use crate::arch::cpu;
use crate::physical_gic::ThisCpuInterface;
use crate::smp;
use crate::vgic::state::VcpuSet;

/// How long a vCPU waits for the others to park before it goes on without
/// them (a CPU that never answers is a Tessera bug; the access then sees
/// what their list registers held at their last exit). Far longer than
/// any exit takes.
const PARK_TIMEOUT_MS: u64 = 100;

/// Runs `access` by `vcpu` once the other vCPUs that `involved` names
/// and that run have parked, their list registers moved back to software;
/// releases them after. `involved` is asked again once `vcpu` holds the
/// rendezvous: what it depends on (an SPI's routing) may have moved while
/// another held it.
pub fn with_parked<T>(
    partition: &Partition,
    vcpu: usize,
    involved: impl Fn() -> VcpuSet,
    registers: &mut ThisCpuInterface,
    access: impl FnOnce(&mut ThisCpuInterface) -> T,
) -> T {
    // Only a vCPU that runs (or is about to) has anything listed.
    let running = || {
        let mut running = VcpuSet::EMPTY;
        for other in involved().iter().filter(|&other| other != vcpu) {
            if matches!(
                partition.vcpu_power(other),
                Some(Power::On | Power::OnPending)
            ) {
                running.insert(other);
            }
        }
        running
    };
    if running().is_empty() {
        return access(registers);
    }
    let rendezvous = &partition.vgic.rendezvous;
    while !rendezvous.try_hold(vcpu) {
        stop_if_asked();
        serve(partition, vcpu, Some(&mut *registers));
        cpu::wait_for_event();
    }
    let running = running();
    partition.vgic.request_park(running);
    partition.kick(running);
    let deadline = cpu::counter()
        .saturating_add(PARK_TIMEOUT_MS.saturating_mul(cpu::counter_frequency()) / 1000);
    while !rendezvous.all_parked() {
        stop_if_asked();
        if cpu::counter() > deadline {
            warn!(
                "partition {}: vCPU {vcpu}: vCPUs {:#x} did not stop for an interrupt-state access within {PARK_TIMEOUT_MS} ms: going on without them",
                partition.name(),
                running.bits()
            );
            break;
        }
        // The parked vCPUs send an event; the event stream bounds the wait.
        cpu::wait_for_event();
    }
    let result = access(registers);
    rendezvous.release();
    cpu::send_event();
    result
}

/// Parks `vcpu` if another vCPU of its partition asks it to, until that
/// one releases it. `registers` are its CPU's while its vCPU runs (`None`
/// while it is off: nothing is listed then). A running vCPU looks when its
/// attention flag is up, which the request raises.
pub fn serve(partition: &Partition, vcpu: usize, mut registers: Option<&mut ThisCpuInterface>) {
    let rendezvous = &partition.vgic.rendezvous;
    while rendezvous.is_requested(vcpu) {
        let generation = rendezvous.generation();
        match registers.as_deref_mut() {
            Some(registers) => partition.vgic.park(vcpu, registers),
            None => rendezvous.park(vcpu),
        }
        cpu::send_event();
        // Released, or released and asked again before this CPU looked:
        // then it parks again for the new request.
        while rendezvous.is_requested(vcpu) && rendezvous.generation() == generation {
            stop_if_asked();
            cpu::wait_for_event();
        }
    }
}

/// Another CPU crashed: stop here, as every waiting CPU does.
fn stop_if_asked() {
    if smp::stop_requested() {
        smp::acknowledge_stop();
        cpu::park();
    }
}
