//! PSCI and SMCCC calls from a guest (HVC #0, or a trapped SMC): the
//! answers of docs/partitions.md. Only x0-x3 are written; every other
//! register is preserved, as SMCCC 1.1 requires.

use log::debug;

use super::{Partition, speculation};
use crate::guest::context::VcpuRegisters;
use crate::guest::smccc::{self, AffinityState, Call, PsciReturn, VENDOR_HYP_REVISION_VALUE};
use crate::hw::cpus::MPIDR_AFFINITY_MASK;

/// The vCPU a PSCI target MPIDR names: vCPU n has MPIDR n (Aff0 only).
fn target_vcpu(partition: &Partition, mpidr: u64) -> Option<usize> {
    let mpidr = mpidr & MPIDR_AFFINITY_MASK;
    usize::try_from(mpidr)
        .ok()
        .filter(|&index| index < partition.vcpus.len())
}

/// What the vCPU does after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Back into the guest.
    Resume,
    /// The vCPU is off (CPU_OFF, or its partition stops).
    Off,
}

pub fn call(partition: &Partition, vcpu: usize, registers: &mut VcpuRegisters) -> Next {
    let arguments = [
        registers.x[0],
        registers.x[1],
        registers.x[2],
        registers.x[3],
    ];
    let mut result = |x0: u64| registers.x[0] = x0;
    match Call::from_registers(&arguments) {
        Call::Constant { answer } => result(answer),
        Call::CpuOff => return Next::Off,
        Call::CpuOn {
            target,
            entry,
            context,
        } => {
            let answer = match target_vcpu(partition, target) {
                None => PsciReturn::InvalidParameters,
                Some(_) if partition.plan.host_address(entry).is_none() => {
                    PsciReturn::InvalidAddress
                }
                Some(index) => match partition.cpu_on(index, entry, context) {
                    Ok(()) => PsciReturn::Success,
                    Err(AffinityState::OnPending) => PsciReturn::OnPending,
                    Err(_) => PsciReturn::AlreadyOn,
                },
            };
            result(answer.value());
        }
        Call::AffinityInfo {
            target,
            lowest_level,
        } => {
            let answer = target_vcpu(partition, target)
                .filter(|_| lowest_level == 0)
                .and_then(|index| partition.affinity(index));
            result(answer.map_or(PsciReturn::InvalidParameters.value(), |s| s as u64));
        }
        Call::SystemOff => {
            partition.request_stop(false, "SYSTEM_OFF");
            return Next::Off;
        }
        Call::SystemReset => {
            partition.request_stop(true, "SYSTEM_RESET");
            return Next::Off;
        }
        Call::PsciFeatures { function } => result(if smccc::psci_implements(function) {
            PsciReturn::Success.value()
        } else {
            PsciReturn::NotSupported.value()
        }),
        Call::ArchFeatures { function } => result(speculation().arch_features(function)),
        Call::VendorUid => {
            let words = smccc::uuid_words();
            registers.x[..4].copy_from_slice(&words);
        }
        Call::VendorRevision => {
            registers.x[0] = VENDOR_HYP_REVISION_VALUE.0;
            registers.x[1] = VENDOR_HYP_REVISION_VALUE.1;
        }
        Call::Unknown { function } => {
            debug!(
                "partition {}: vCPU {vcpu}: unknown call {function:#x}: NOT_SUPPORTED",
                partition.name()
            );
            result(PsciReturn::NotSupported.value());
        }
    }
    Next::Resume
}
