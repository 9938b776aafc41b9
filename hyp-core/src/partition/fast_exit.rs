//! The fast half of the trap path: the exits that are frequent and cheap
//! to answer, handled on the CPU's exception stack right after `guest.S`
//! saved the guest's registers, and the guest resumed from there with no
//! return to the run loop (`vcpu.rs`). Calls with a constant answer are
//! faster still: `arch/fast_calls.S` answers them in the vector.
//!
//! Handled here:
//! - MMIO that needs nothing from other vCPUs: every vGIC access whose
//!   registers no other vCPU's list registers hold (identification
//!   registers without even the lock), every PL011 access (a byte that
//!   ends a line prints it, as on the slow path: a guest's console output
//!   is most of its exits while it boots, two a character);
//! - trapped system registers: SGIs (`ICC_SGI1R_EL1`), ID registers,
//!   `ACTLR_EL1`, the EL1 physical timer;
//! - every physical interrupt: a hardware-linked one goes straight into a
//!   list register where it can.
//!
//! Anything else, and anything that leaves work for the run loop (a list
//! register to fill, a stop or restart, another vCPU to wait for), goes
//! to the run loop, which decodes the exit whole (`guest::exit::Exit`).
//! Nothing here waits for another CPU but for the console's lock while a
//! finished line is printed (as the run loop would). It runs Rust on the exception stack
//! (16 KiB) with IRQs masked; what it may log is rare (a PL011 offset that
//! is not emulated, an unexpected physical interrupt).

use super::exit::{self as run_loop, skip_instruction};
use super::{Partition, State, device};
use crate::arch::{FastExit, virtualization};
use crate::esr::{Syndrome, ec, fault_ipa};
use crate::exception::VectorKind;
use crate::guest::context::VcpuRegisters;
use crate::guest::exit::{self, Exit};
use crate::guest::mmio::{AccessWidth, MmioAccess};
use crate::guest::mmio_bus::Device;
use crate::{physical_gic, smp};

/// A vCPU while it runs on this CPU: what `guest.S` saves and loads, and
/// what the fast half needs to act for it.
#[derive(Debug)]
#[repr(C)]
pub struct RunningVcpu {
    /// First: `guest.S` takes this struct's address as the registers'.
    pub registers: VcpuRegisters,
    pub partition: &'static Partition,
    pub index: usize,
    /// Whether this CPU's virtual interface asks for the maintenance
    /// interrupt once its list registers run low (interrupts wait for one).
    pub underflow: bool,
}

impl RunningVcpu {
    /// What `guest.S` takes (`arch::run_guest`): a pointer to the
    /// registers that covers the whole struct, whose first field they are,
    /// so that [`fast_exit`] receives it back as the `RunningVcpu`.
    pub fn as_guest_frame(&mut self) -> *mut VcpuRegisters {
        core::ptr::from_mut(self).cast::<VcpuRegisters>()
    }

    /// Fills this vCPU's list registers from the vGIC, on its own CPU, and
    /// kicks the vCPUs the flush found waiting.
    pub fn flush(&mut self, interface: &mut physical_gic::ThisCpuInterface) {
        let flushed = self.partition.vgic.flush(self.index, interface);
        if flushed.waiting != self.underflow {
            interface.set_underflow(flushed.waiting);
            self.underflow = flushed.waiting;
        }
        self.partition.kick(flushed.wake);
    }
}

/// The vector indices of a guest's synchronous exceptions and IRQs
/// (AArch64; an AArch32 EL0 goes the slow way).
const SYNCHRONOUS: u64 = VectorKind::LowerEl64Sync as u64;
const IRQ: u64 = VectorKind::LowerEl64Irq as u64;

/// Called by `guest.S` on the exception stack with the guest's registers
/// saved in `running` and the exit's vector index. It decodes only the
/// classes it may handle, with the decoder's own parts (`guest::exit`).
#[unsafe(no_mangle)]
extern "C" fn fast_exit(running: &mut RunningVcpu, vector: u64) -> FastExit {
    let (partition, vcpu) = (running.partition, running.index);
    // The timer interrupt is level-sensitive: what its line no longer
    // asserts is withdrawn before any exit is handled, fast or slow.
    let line = virtualization::virtual_timer_line();
    if partition.vgic.timer_sample_matters(vcpu, line)
        && let Some(mut interface) = physical_gic::ThisCpuInterface::get()
    {
        partition.vgic.sample_timer(vcpu, line, &mut interface);
    }
    let registers = &mut running.registers;
    let handled = match vector {
        SYNCHRONOUS => {
            let syndrome = Syndrome(registers.esr);
            match syndrome.class() {
                ec::DATA_ABORT_LOWER => {
                    let ipa = fault_ipa(registers.hpfar, registers.far);
                    match exit::data_abort(syndrome, ipa) {
                        Exit::Mmio(access) => mmio(partition, vcpu, registers, access),
                        _ => false,
                    }
                }
                ec::SYSREG => run_loop::system_register_fast(
                    partition,
                    vcpu,
                    registers,
                    exit::system_register(syndrome),
                ),
                _ => false,
            }
        }
        IRQ => {
            run_loop::interrupt(partition, vcpu, true);
            true
        }
        _ => false,
    };
    if !handled {
        return FastExit::Slow;
    }
    if partition.state() != State::Running
        || smp::stop_requested()
        || partition.vgic.rendezvous.is_requested(vcpu)
    {
        return FastExit::Handled;
    }
    // Something to list (an SGI to itself, an interrupt another vCPU sent):
    // filled here, as the run loop would before the next entry.
    if partition.vgic.needs_flush(vcpu) {
        let Some(mut interface) = physical_gic::ThisCpuInterface::get() else {
            return FastExit::Handled;
        };
        running.flush(&mut interface);
    }
    FastExit::Resume
}

/// An MMIO access the fast half can carry out: `false` leaves it to the
/// run loop untouched.
#[inline(always)]
fn mmio(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    access: MmioAccess,
) -> bool {
    let Some((found, offset)) = partition.bus.find(access.ipa) else {
        return false;
    };
    let done = match found {
        Device::Pl011 => {
            if access.width == AccessWidth::Double {
                return false;
            }
            device::pl011::access(partition, vcpu, registers, offset, access)
        }
        Device::GicDistributor | Device::GicRedistributors => {
            let Some(done) =
                device::vgic::access_alone(partition, vcpu, registers, found, offset, access)
            else {
                return false;
            };
            done
        }
    };
    match done {
        Ok(()) => {
            skip_instruction(registers);
            true
        }
        // The run loop injects the abort, with its warning.
        Err(_) => false,
    }
}
