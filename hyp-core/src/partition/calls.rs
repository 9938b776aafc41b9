//! PSCI and SMCCC calls from a guest (HVC #0, or a trapped SMC): the
//! answers of docs/partitions.md. Only x0-x3 are written; every other
//! register is preserved, as SMCCC 1.1 requires.

use log::debug;

use super::{Partition, speculation};
use crate::guest::context::VcpuRegisters;
use crate::guest::smccc::{self, Call, PsciReturn, VENDOR_HYP_REVISION_VALUE};

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
            let in_ram = partition.plan.host_address(entry).is_some();
            let answer =
                partition
                    .lifecycle
                    .psci_cpu_on(target, entry, context, in_ram, &super::El2);
            result(answer.value());
        }
        Call::AffinityInfo {
            target,
            lowest_level,
        } => {
            result(partition.lifecycle.psci_affinity_info(target, lowest_level));
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
