//! The emulated devices a partition's guest reaches by MMIO, on one bus:
//! a table of guest-physical windows built once with the partition. A
//! data abort is looked up here, then handed to its device's one entry
//! point (`partition/device/`).

use alloc::vec::Vec;

use crate::config::guest_map::{
    GUEST_GICD_BASE, GUEST_GICR_BASE, GUEST_PL011_BASE, GUEST_PL011_SIZE,
};
use crate::hw::gic::GicVersion;
use crate::vgic::{distributor, redistributor};

/// An emulated device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    /// The vGIC's distributor.
    GicDistributor,
    /// The vGIC's redistributors (GICv3), one frame pair per vCPU.
    GicRedistributors,
    /// The guest's emulated PL011 UART.
    Pl011,
}

impl Device {
    /// The device's name in a message to the user.
    pub fn name(self) -> &'static str {
        match self {
            Device::GicDistributor => "the GIC distributor",
            Device::GicRedistributors => "the GIC redistributors",
            Device::Pl011 => "the PL011",
        }
    }
}

/// A device's window of guest-physical addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    base: u64,
    size: u64,
    device: Device,
}

/// The most windows a bus has.
const MAX_WINDOWS: usize = 3;

/// A partition's MMIO bus.
#[derive(Debug, Clone)]
pub struct MmioBus {
    /// Ascending, none overlapping; `count` of them are in use.
    windows: [Window; MAX_WINDOWS],
    count: usize,
}

impl MmioBus {
    /// The bus of a partition with `vcpus` vCPUs on a GIC of `version`.
    pub fn new(version: GicVersion, vcpus: usize) -> MmioBus {
        let mut windows = Vec::with_capacity(3);
        let distributor_size = match version {
            GicVersion::V3 => distributor::GICD_SIZE_V3,
            GicVersion::V2 => distributor::GICD_SIZE_V2,
        };
        windows.push(Window {
            base: GUEST_GICD_BASE,
            size: distributor_size,
            device: Device::GicDistributor,
        });
        if version == GicVersion::V3 {
            // At most 16 vCPUs (the configuration's limit): no overflow.
            let frames = u64::try_from(vcpus).unwrap_or(0);
            windows.push(Window {
                base: GUEST_GICR_BASE,
                size: frames.saturating_mul(redistributor::REDISTRIBUTOR_SIZE),
                device: Device::GicRedistributors,
            });
        }
        windows.push(Window {
            base: GUEST_PL011_BASE,
            size: GUEST_PL011_SIZE,
            device: Device::Pl011,
        });
        windows.sort_by_key(|w| w.base);
        let mut bus = MmioBus {
            windows: [Window {
                base: 0,
                size: 0,
                device: Device::Pl011,
            }; MAX_WINDOWS],
            count: windows.len().min(MAX_WINDOWS),
        };
        for (slot, window) in bus.windows.iter_mut().zip(windows) {
            *slot = window;
        }
        bus
    }

    fn in_use(&self) -> &[Window] {
        self.windows.get(..self.count).unwrap_or(&[])
    }

    /// The device at guest address `ipa`, and the offset into its window.
    #[inline]
    pub fn find(&self, ipa: u64) -> Option<(Device, u64)> {
        self.in_use().iter().find_map(|window| {
            let offset = ipa.checked_sub(window.base)?;
            (offset < window.size).then_some((window.device, offset))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_window_starts_and_ends_where_its_device_does() {
        let bus = MmioBus::new(GicVersion::V3, 2);
        assert_eq!(bus.find(GUEST_GICD_BASE), Some((Device::GicDistributor, 0)));
        assert_eq!(
            bus.find(GUEST_GICD_BASE + 0xffff),
            Some((Device::GicDistributor, 0xffff))
        );
        assert_eq!(bus.find(GUEST_GICD_BASE + 0x1_0000), None);
        let redistributors_end = GUEST_GICR_BASE + 2 * redistributor::REDISTRIBUTOR_SIZE;
        assert_eq!(
            bus.find(redistributors_end - 4),
            Some((
                Device::GicRedistributors,
                2 * redistributor::REDISTRIBUTOR_SIZE - 4
            ))
        );
        assert_eq!(bus.find(redistributors_end), None, "no third vCPU");
        assert_eq!(
            bus.find(GUEST_PL011_BASE + 0x18),
            Some((Device::Pl011, 0x18))
        );
        assert_eq!(bus.find(GUEST_PL011_BASE + GUEST_PL011_SIZE), None);
        assert_eq!(bus.find(0), None);
        assert_eq!(bus.find(u64::MAX), None);
    }

    #[test]
    fn a_gicv2_bus_has_a_4k_distributor_and_no_redistributors() {
        let bus = MmioBus::new(GicVersion::V2, 8);
        assert_eq!(
            bus.find(GUEST_GICD_BASE + 0xffc),
            Some((Device::GicDistributor, 0xffc))
        );
        assert_eq!(bus.find(GUEST_GICD_BASE + 0x1000), None);
        assert_eq!(bus.find(GUEST_GICR_BASE), None);
    }

    #[test]
    fn windows_do_not_overlap() {
        for version in [GicVersion::V2, GicVersion::V3] {
            let bus = MmioBus::new(version, 16);
            for pair in bus.in_use().windows(2) {
                let [a, b] = pair else { continue };
                assert!(a.base + a.size <= b.base, "{a:?} overlaps {b:?}");
            }
        }
    }
}
