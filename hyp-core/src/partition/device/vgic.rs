//! The vGIC's distributor and redistributors on the bus: the glue between
//! a guest's access and `vgic/`.

use super::Refusal;
use crate::gic;
use crate::guest::context::VcpuRegisters;
use crate::guest::mmio::MmioAccess;
use crate::guest::mmio_bus::Device;
use crate::partition::{Partition, rendezvous};
use crate::vgic::Frame;

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
    let Some(frame) = Frame::at(device, offset) else {
        return Err("an access outside the GIC's frames");
    };
    let Some(mut interface) = gic::ThisCpuInterface::get() else {
        return Ok(());
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
    Ok(())
}
