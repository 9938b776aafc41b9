//! What a guest exit means, and what Tessera does about it. A guest can
//! make Tessera do nothing but answer it, inject an exception into it, or
//! stop its own partition.

use log::{debug, warn};

use super::{Partition, calls, rendezvous};
use crate::arch::virtualization;
use crate::config::guest_map::{GUEST_PL011_BASE, GUEST_PL011_SIZE};
use crate::exception::VectorKind;
use crate::guest::context::VcpuRegisters;
use crate::guest::inject::{self, GuestState, Injected};
use crate::guest::mmio::{self, AccessWidth, MmioAccess};
use crate::guest::pl011;
use crate::guest::sysreg;
use crate::vgic::Frame;
use crate::{gic, partition::output};

/// What the vCPU does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Back into the guest.
    Resume,
    /// The vCPU is off (CPU_OFF, or its partition stops).
    Off,
}

/// ESR_EL2.EC values (Arm ARM D17.2.37).
const EC_WFX: u64 = 0x01;
const EC_HVC64: u64 = 0x16;
const EC_SMC64: u64 = 0x17;
const EC_SYSREG: u64 = 0x18;
const EC_INSTRUCTION_ABORT_LOWER: u64 = 0x20;
const EC_DATA_ABORT_LOWER: u64 = 0x24;
const ESR_EC_SHIFT: u64 = 26;
/// ESR_EL2.IL: the trapped instruction was 32 bits long.
const ESR_IL: u64 = 1 << 25;
/// The immediate of a trapped HVC/SMC (ISS[15:0]).
const ESR_IMM16_MASK: u64 = 0xffff;

/// Takes the physical interrupt that made `vcpu`'s CPU leave its guest
/// (`running`), or woke it while the vCPU is off: the virtual GIC and the
/// UART's FIFO then hold what arrived until the vCPU runs, or the partition
/// restarts.
pub fn interrupt(partition: &Partition, vcpu: usize, running: bool) {
    match gic::take_interrupt() {
        gic::Taken::Guest(intid) => {
            let woken = match gic::ThisCpuInterface::get() {
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
            if let Some(other) = woken.filter(|&w| w != vcpu)
                && let Some(target) = partition.vcpus.get(other)
            {
                gic::kick(target.physical_mpidr);
            }
        }
        gic::Taken::ConsoleInput => partition.receive_console_input(vcpu),
        gic::Taken::HypTimer => {
            crate::fault_injection::timer_fired();
            output::timer_fired(partition);
        }
        gic::Taken::Handled => {}
    }
}

pub fn handle(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    vector: u64,
) -> Next {
    match VectorKind::from_index(vector) {
        Some(VectorKind::LowerEl64Sync | VectorKind::LowerEl32Sync) => {
            synchronous(partition, vcpu, registers)
        }
        Some(
            VectorKind::LowerEl64Irq
            | VectorKind::LowerEl64Fiq
            | VectorKind::LowerEl32Irq
            | VectorKind::LowerEl32Fiq,
        ) => {
            interrupt(partition, vcpu, true);
            Next::Resume
        }
        _ => {
            warn!(
                "partition {}: vCPU {vcpu}: SError (ESR {:#x}) at pc {:#x}: stopping the partition",
                partition.name(),
                registers.esr,
                registers.pc
            );
            partition.request_stop(false, "SError");
            Next::Off
        }
    }
}

/// Skips the trapped instruction (its length is in ESR_EL2.IL).
fn skip_instruction(registers: &mut VcpuRegisters) {
    // A guest controls its pc: wrap as the hardware would, never panic.
    let length = if registers.esr & ESR_IL != 0 { 4 } else { 2 };
    registers.pc = registers.pc.wrapping_add(length);
}

fn synchronous(partition: &Partition, vcpu: usize, registers: &mut VcpuRegisters) -> Next {
    let ec = registers.esr >> ESR_EC_SHIFT & 0x3f;
    match ec {
        EC_HVC64 => {
            // The preferred return address of an HVC is the next instruction.
            if registers.esr & ESR_IMM16_MASK != 0 {
                registers.x[0] = crate::guest::psci::PsciReturn::NotSupported.value();
                return Next::Resume;
            }
            calls::call(partition, vcpu, registers)
        }
        EC_SMC64 => {
            // A trapped SMC returns to the SMC itself (Arm ARM D1.11.2).
            skip_instruction(registers);
            calls::call(partition, vcpu, registers)
        }
        EC_SYSREG => {
            system_register(partition, vcpu, registers);
            Next::Resume
        }
        EC_DATA_ABORT_LOWER => {
            data_abort(partition, vcpu, registers);
            Next::Resume
        }
        EC_INSTRUCTION_ABORT_LOWER => {
            let ipa = mmio::fault_ipa(registers.hpfar, registers.far);
            if partition.should_warn() {
                warn!(
                    "partition {}: vCPU {vcpu}: instruction fetch from unassigned address {ipa:#x}: abort injected",
                    partition.name()
                );
            }
            inject_into(
                registers,
                Injected::InstructionAbort {
                    address: registers.far,
                },
            );
            Next::Resume
        }
        EC_WFX => {
            skip_instruction(registers);
            Next::Resume
        }
        _ => {
            if partition.should_warn() {
                warn!(
                    "partition {}: vCPU {vcpu}: unhandled exception class {ec:#x} (ESR {:#x}) at pc {:#x}: undefined instruction injected",
                    partition.name(),
                    registers.esr,
                    registers.pc
                );
            }
            inject_into(registers, Injected::Undefined);
            Next::Resume
        }
    }
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

fn system_register(partition: &Partition, vcpu: usize, registers: &mut VcpuRegisters) {
    let access = sysreg::decode(registers.esr);
    if access.is_sgi_generation() && !access.read {
        let effects = partition
            .vgic
            .send_sgi(vcpu, registers.get(access.register));
        partition.wake(vcpu, &effects);
        skip_instruction(registers);
    } else if let Some((crm, op2)) = access.id_register()
        && access.read
    {
        let value = sysreg::guest_id_value(crm, op2, virtualization::host_id_register(crm, op2));
        registers.set(access.register, value);
        skip_instruction(registers);
    } else if access.is_physical_timer() || access.is_actlr_el1() {
        // The EL1 physical timer is not the guest's (guests use the virtual
        // timer), nor are the implementation-defined controls behind
        // ACTLR_EL1: both read as 0 and ignore writes.
        if access.read {
            registers.set(access.register, 0);
        }
        skip_instruction(registers);
    } else {
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
}

fn data_abort(partition: &Partition, vcpu: usize, registers: &mut VcpuRegisters) {
    let ipa = mmio::fault_ipa(registers.hpfar, registers.far);
    let write = registers.esr & (1 << 6) != 0;
    let in_uart = (GUEST_PL011_BASE..GUEST_PL011_BASE + GUEST_PL011_SIZE).contains(&ipa);
    let gic_frame = partition.vgic.frame(ipa);
    let reason = match mmio::decode(registers.esr, ipa) {
        Ok(access) if let Some(frame) = gic_frame => {
            gic_access(partition, vcpu, registers, frame, access);
            skip_instruction(registers);
            return;
        }
        Err(mmio::NotMmio::NoSyndrome) if gic_frame.is_some() => {
            "an access to the GIC that cannot be emulated (load/store pair, atomic or writeback)"
        }
        Ok(access) if in_uart && access.width != AccessWidth::Double => {
            uart_access(partition, vcpu, registers, access);
            skip_instruction(registers);
            return;
        }
        Ok(_) if in_uart => "a 64-bit access to the PL011",
        Err(mmio::NotMmio::NoSyndrome) if in_uart => {
            "an access to the PL011 that cannot be emulated (load/store pair, atomic or writeback)"
        }
        _ => "an access to an unassigned address",
    };
    if partition.should_warn() {
        warn!(
            "partition {}: vCPU {vcpu}: {reason}: {} {ipa:#x} at pc {:#x}: data abort injected",
            partition.name(),
            if write { "write to" } else { "read of" },
            registers.pc
        );
    }
    inject_into(
        registers,
        Injected::DataAbort {
            address: registers.far,
            write,
        },
    );
}

/// A single load or store to the emulated distributor or redistributors.
/// One that reads or changes what other vCPUs' list registers may hold
/// (pending or active state, an SPI's routing) waits until they have
/// parked ([`rendezvous`]).
fn gic_access(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    frame: Frame,
    access: MmioAccess,
) {
    let Some(mut interface) = gic::ThisCpuInterface::get() else {
        return;
    };
    let vgic = &partition.vgic;
    let involved = || vgic.involved(vcpu, frame, access.width, access.write);
    let value = registers.get(access.register);
    let result = rendezvous::with_parked(partition, vcpu, involved, &mut interface, |interface| {
        if access.write {
            let effects = vgic.write(vcpu, frame, access.width, value, interface);
            partition.wake(vcpu, &effects);
            None
        } else {
            Some(vgic.read(vcpu, frame, access.width, interface))
        }
    });
    if let Some(value) = result {
        registers.set(access.register, access.load_result(value));
    }
}

fn uart_access(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    access: MmioAccess,
) {
    let offset = access.ipa - GUEST_PL011_BASE;
    let mut line_ready = false;
    let rose;
    let result = {
        let mut uart = partition.uart.lock();
        let uart = &mut *uart;
        let result = if access.write {
            let value =
                u32::try_from(registers.get(access.register) & u64::from(u32::MAX)).unwrap_or(0);
            let result = uart.registers.write(offset, value, &mut uart.output);
            if offset == pl011::UARTDR {
                partition.watch_unfinished_line(uart);
            }
            line_ready = partition.has_output(uart);
            result
        } else {
            uart.registers
                .read(offset, &uart.output, &mut uart.input)
                .map(|value| {
                    registers.set(access.register, access.load_result(u64::from(value)));
                })
        };
        rose = uart.line_rose();
        result
    };
    if rose {
        partition.uart_interrupt(Some(vcpu));
    }
    if let Err(unknown) = result {
        // RAZ/WI, as a real PL011 does for reserved offsets.
        if !access.write {
            registers.set(access.register, 0);
        }
        if partition.should_warn() {
            debug!(
                "partition {}: PL011 offset {:#x} is not emulated: reads as 0, writes ignored",
                partition.name(),
                unknown.0
            );
        }
    }
    if line_ready {
        output::drain(partition);
    }
}
