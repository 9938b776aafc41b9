//! The emulated devices' entry points: each takes one decoded MMIO access
//! at an offset into its window of the partition's bus
//! (`guest/mmio_bus.rs`) and either carries it out or refuses it, saying
//! why (the guest then gets a data abort).

pub mod pl011;
pub mod vgic;

use super::Partition;
use crate::guest::context::VcpuRegisters;
use crate::guest::mmio::MmioAccess;
use crate::guest::mmio_bus::Device;

/// Why a device refuses an access: for the warning that goes with the
/// injected abort.
pub type Refusal = &'static str;

/// Carries out `access` by `vcpu` at `offset` into `device`'s window.
#[inline]
pub fn access(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    device: Device,
    offset: u64,
    access: MmioAccess,
) -> Result<(), Refusal> {
    match device {
        Device::GicDistributor | Device::GicRedistributors => {
            vgic::access(partition, vcpu, registers, device, offset, access)
        }
        Device::Pl011 => pl011::access(partition, vcpu, registers, offset, access),
    }
}
