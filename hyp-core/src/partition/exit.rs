//! What a guest exit means, and what Tessera does about it: the run
//! loop's half of the trap path (the fast half is `fast_exit.rs`). Each
//! exit is decoded once (`guest::exit`); a call goes to `calls.rs`, an MMIO
//! access to the device its address falls in on the partition's bus. A
//! guest can make Tessera do nothing but answer it, inject an exception
//! into it, or stop its own partition.

use log::warn;

pub use super::calls::Next;
use super::{Partition, calls, device};
use crate::arch::virtualization;
use crate::esr::Syndrome;
use crate::exception::VectorKind;
use crate::guest::context::VcpuRegisters;
use crate::guest::exit::{Conduit, Exit, NotMmio};
use crate::guest::inject::{self, GuestState, Injected};
use crate::guest::mmio::MmioAccess;
use crate::guest::smccc::PsciReturn;
use crate::guest::sysreg::{self, SysRegAccess};
use crate::partition::output;
use crate::physical_gic;
use crate::vgic::Effects;

/// Takes the physical interrupt that made `vcpu`'s CPU leave its guest
/// (`running`), or woke it while the vCPU is off: the virtual GIC and the
/// UART's FIFO then hold what arrived until the vCPU runs, or the partition
/// restarts.
pub fn interrupt(partition: &Partition, vcpu: usize, running: bool) {
    match physical_gic::take_interrupt() {
        physical_gic::Taken::Guest(intid) => {
            let woken = match physical_gic::ThisCpuInterface::get() {
                // The list registers are the vCPU's only while it runs here.
                Some(mut registers) if running => partition.vgic.inject_running(
                    vcpu,
                    intid,
                    virtualization::virtual_timer_line(),
                    &mut registers,
                ),
                _ => partition.vgic.inject(vcpu, intid),
            };
            // An SPI the guest has just moved to another vCPU may still
            // arrive here once: that vCPU's CPU must look.
            if let Some(other) = woken.filter(|&w| w != vcpu) {
                partition.kick_vcpu(other);
            }
        }
        physical_gic::Taken::ConsoleInput => partition.receive_console_input(vcpu),
        physical_gic::Taken::HypTimer => {
            crate::fault_injection::timer_fired();
            output::timer_fired(partition);
        }
        physical_gic::Taken::Handled => {}
    }
}

/// Handles the exit that came through lower-EL vector `vector`, which the
/// fast half left to the run loop.
pub fn handle(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    vector: u64,
) -> Next {
    let kind = VectorKind::from_index(vector).unwrap_or(VectorKind::LowerEl64SError);
    match Exit::decode(kind, registers.esr, registers.far, registers.hpfar) {
        Exit::Call { conduit, immediate } => {
            if conduit == Conduit::Smc {
                skip_instruction(registers);
            }
            if immediate != 0 {
                // SMCCC calls use immediate 0; anything else is not one.
                registers.x[0] = PsciReturn::NotSupported.value();
                return Next::Resume;
            }
            return calls::call(partition, vcpu, registers);
        }
        Exit::Mmio(access) => mmio(partition, vcpu, registers, access),
        Exit::DataAbort { ipa, write, reason } => {
            let reason = match (reason, partition.bus.find(ipa)) {
                (NotMmio::NoSyndrome, Some((device, _))) => Refused::Emulating(device.name()),
                _ => Refused::Unassigned,
            };
            refuse_data_abort(partition, vcpu, registers, ipa, write, reason);
        }
        Exit::InstructionAbort { ipa, address } => {
            if partition.should_warn() {
                warn!(
                    "partition {}: vCPU {vcpu}: instruction fetch from unassigned address {ipa:#x}: abort injected",
                    partition.name()
                );
            }
            inject_into(registers, Injected::InstructionAbort { address });
        }
        Exit::SystemRegister(access) => system_register(partition, vcpu, registers, access),
        Exit::Wait => skip_instruction(registers),
        Exit::Interrupt => interrupt(partition, vcpu, true),
        Exit::SError => {
            warn!(
                "partition {}: vCPU {vcpu}: SError (ESR {:#x}) at pc {:#x}: stopping the partition",
                partition.name(),
                registers.esr,
                registers.pc
            );
            partition.request_stop(false, "SError");
            return Next::Off;
        }
        Exit::Unknown { class } => {
            if partition.should_warn() {
                warn!(
                    "partition {}: vCPU {vcpu}: unhandled exception class {class:#x} (ESR {:#x}) at pc {:#x}: undefined instruction injected",
                    partition.name(),
                    registers.esr,
                    registers.pc
                );
            }
            inject_into(registers, Injected::Undefined);
        }
    }
    Next::Resume
}

/// Skips the trapped instruction.
pub(super) fn skip_instruction(registers: &mut VcpuRegisters) {
    // A guest controls its pc: wrap as the hardware would, never panic.
    let length = Syndrome(registers.esr).instruction_length();
    registers.pc = registers.pc.wrapping_add(length);
}

/// Why a data abort is refused (the guest gets an abort).
enum Refused {
    Unassigned,
    /// A form with no syndrome, to the named device.
    Emulating(&'static str),
    /// The device's own reason.
    Device(device::Refusal),
}

/// A single load or store to an address with no stage-2 mapping: carried
/// out by the device whose window it falls in, if any.
fn mmio(partition: &Partition, vcpu: usize, registers: &mut VcpuRegisters, access: MmioAccess) {
    let refused = match partition.bus.find(access.ipa) {
        Some((found, offset)) => {
            match device::access(partition, vcpu, registers, found, offset, access) {
                Ok(()) => {
                    skip_instruction(registers);
                    return;
                }
                Err(why) => Refused::Device(why),
            }
        }
        None => Refused::Unassigned,
    };
    refuse_data_abort(
        partition,
        vcpu,
        registers,
        access.ipa,
        access.write,
        refused,
    );
}

fn refuse_data_abort(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    ipa: u64,
    write: bool,
    reason: Refused,
) {
    if partition.should_warn() {
        let direction = if write { "write to" } else { "read of" };
        let pc = registers.pc;
        let name = partition.name();
        match reason {
            Refused::Unassigned => warn!(
                "partition {name}: vCPU {vcpu}: an access to an unassigned address: {direction} {ipa:#x} at pc {pc:#x}: data abort injected"
            ),
            Refused::Emulating(device) => warn!(
                "partition {name}: vCPU {vcpu}: an access to {device} that cannot be emulated (load/store pair, atomic or writeback): {direction} {ipa:#x} at pc {pc:#x}: data abort injected"
            ),
            Refused::Device(why) => warn!(
                "partition {name}: vCPU {vcpu}: {why}: {direction} {ipa:#x} at pc {pc:#x}: data abort injected"
            ),
        }
    }
    inject_into(
        registers,
        Injected::DataAbort {
            address: registers.far,
            write,
        },
    );
}

fn inject_into(registers: &mut VcpuRegisters, what: Injected) {
    let injection = inject::inject(
        GuestState {
            pc: registers.pc,
            pstate: registers.pstate,
            vbar_el1: virtualization::guest_vbar(),
            sctlr_el1: virtualization::guest_sctlr(),
            features: virtualization::pstate_features(),
        },
        what,
    );
    virtualization::apply_injection(&injection);
    registers.pc = injection.pc;
    registers.pstate = injection.pstate;
}

/// A trapped MSR or MRS the fast half can answer: SGIs, ID registers, and
/// the registers that read as 0 and ignore writes. `false`: none of those.
pub(super) fn system_register_fast(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    access: SysRegAccess,
) -> bool {
    if access.is_sgi_generation() && !access.read {
        let mut effects = Effects::default();
        partition
            .vgic
            .send_sgi(vcpu, registers.get(access.register), &mut effects);
        partition.wake(vcpu, &effects);
    } else if let Some((crm, op2)) = access.id_register()
        && access.read
    {
        let value = sysreg::guest_id_value(crm, op2, virtualization::host_id_register(crm, op2));
        registers.set(access.register, value);
    } else if access.is_physical_timer() || access.is_actlr_el1() {
        // The EL1 physical timer is not the guest's (guests use the virtual
        // timer), nor are the implementation-defined controls behind
        // ACTLR_EL1: both read as 0 and ignore writes.
        if access.read {
            registers.set(access.register, 0);
        }
    } else {
        return false;
    }
    skip_instruction(registers);
    true
}

/// Any other trapped MSR or MRS: an undefined instruction for the guest.
fn system_register(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    access: SysRegAccess,
) {
    if system_register_fast(partition, vcpu, registers, access) {
        return;
    }
    if partition.should_warn() {
        warn!(
            "partition {}: vCPU {vcpu}: system register op0={} op1={} CRn={} CRm={} op2={} ({}) at pc {:#x}: undefined instruction injected",
            partition.name(),
            access.op0,
            access.op1,
            access.crn,
            access.crm,
            access.op2,
            if access.read { "read" } else { "write" },
            registers.pc
        );
    }
    inject_into(registers, Injected::Undefined);
}
