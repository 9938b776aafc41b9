//! The vGIC's distributor and redistributors on the bus: the glue between
//! a guest's access and `vgic/`.

use super::Refusal;
use crate::guest::context::VcpuRegisters;
use crate::guest::mmio::MmioAccess;
use crate::guest::mmio_bus::Device;
use crate::partition::{Partition, rendezvous};
use crate::physical_gic;
use crate::vgic::{Effects, Frame};

/// A single load or store to the emulated distributor or redistributors.
/// One that reads or changes what other vCPUs' list registers may hold
/// (pending or active state, an SPI's routing) waits until they have
/// parked ([`rendezvous`]).
pub fn access(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    device: Device,
    offset: u64,
    access: MmioAccess,
) -> Result<(), Refusal> {
    let Some(frame) = frame(device, offset) else {
        return Err(OUTSIDE);
    };
    let Some(mut interface) = physical_gic::ThisCpuInterface::get() else {
        return Ok(());
    };
    let vgic = &partition.vgic;
    let involved = || vgic.involved(vcpu, frame, access.width, access.write);
    rendezvous::with_parked(partition, vcpu, involved, &mut interface, |interface| {
        carry_out(partition, vcpu, registers, frame, access, interface);
    });
    Ok(())
}

const OUTSIDE: Refusal = "an access outside the GIC's frames";

/// The vGIC frame at `offset` into `device`'s window of the bus.
#[inline(always)]
fn frame(device: Device, offset: u64) -> Option<Frame> {
    match device {
        Device::GicDistributor => Frame::distributor(offset),
        Device::GicRedistributors => Frame::redistributor(offset),
        Device::Pl011 => None,
    }
}

/// [`access`] for the fast half: only an access no other vCPU is involved
/// in, which needs no rendezvous; `None` leaves any other to the run loop
/// untouched.
#[inline(always)]
pub fn access_alone(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    device: Device,
    offset: u64,
    access: MmioAccess,
) -> Option<Result<(), Refusal>> {
    let Some(frame) = frame(device, offset) else {
        return Some(Err(OUTSIDE));
    };
    let vgic = &partition.vgic;
    if !access.write
        && let Some(value) = vgic.read_identification(frame, access.width)
    {
        registers.set(access.register, access.load_result(value));
        return Some(Ok(()));
    }
    if !vgic
        .involved(vcpu, frame, access.width, access.write)
        .is_empty()
    {
        return None;
    }
    let mut interface = physical_gic::ThisCpuInterface::get()?;
    carry_out(partition, vcpu, registers, frame, access, &mut interface);
    Some(Ok(()))
}

/// The access itself, once whoever else is involved has parked.
fn carry_out(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    frame: Frame,
    access: MmioAccess,
    interface: &mut physical_gic::ThisCpuInterface,
) {
    let vgic = &partition.vgic;
    if access.write {
        let mut effects = Effects::default();
        let value = registers.get(access.register);
        vgic.write(vcpu, frame, access.width, value, interface, &mut effects);
        partition.wake(vcpu, &effects);
    } else {
        let value = vgic.read(vcpu, frame, access.width, interface);
        registers.set(access.register, access.load_result(value));
    }
}
