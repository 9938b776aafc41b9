//! Whether a device can do DMA, decided from its node.
//!
//! A device that masters the bus reads and writes whatever host physical
//! address its driver programs. None of the supported boards (QEMU virt,
//! Raspberry Pi 4 and 5) has an IOMMU that translates for guests, so such a
//! device goes only to a `direct-map` partition, whose guest addresses are
//! host addresses, and even there nothing stops it reaching other memory.
//! The device tree does not say "bus master" directly; these are the signs.

use core::fmt;

use crate::dt::Node;

/// Compatibles of devices known to master the bus themselves, beyond what
/// the properties in [`DMA_PROPERTIES`] reveal. Keep it short and cite the
/// reason; add an entry when a board's device is found to need it.
pub const DMA_CAPABLE_COMPATIBLES: &[&str] = &[
    // Virtqueues live in driver memory and the device reads and writes them
    // (virtio 1.2 §2.7, §4.2).
    "virtio,mmio",
    // DMA controllers: moving memory is their job.
    "arm,pl330",
    "brcm,bcm2835-dma",
    "brcm,bcm2711-dma",
    // Raspberry Pi 4 and 5 bus masters: SD/eMMC (SDMA/ADMA), Ethernet,
    // USB, PCIe root complexes (every device behind them).
    "brcm,bcm2711-emmc2",
    "brcm,bcm2712-sdhci",
    "brcm,bcm2711-genet-v5",
    "snps,dwc2",
    "brcm,bcm2711-pcie",
    "brcm,bcm2712-pcie",
    // Generic USB host controllers.
    "generic-xhci",
    "generic-ehci",
    "generic-ohci",
];

/// Properties that mean the device does DMA, or is set up for it: `dmas`
/// (it uses a DMA engine), `dma-coherent` (its DMA snoops caches),
/// `iommus` (its DMA goes through an IOMMU), `dma-ranges` (its DMA
/// addresses are translated).
pub const DMA_PROPERTIES: &[&str] = &["dmas", "dma-coherent", "iommus", "dma-ranges"];

/// What showed that a device can do DMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaReason {
    /// A compatible from [`DMA_CAPABLE_COMPATIBLES`].
    Compatible(&'static str),
    /// A property from [`DMA_PROPERTIES`].
    Property(&'static str),
}

impl fmt::Display for DmaReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DmaReason::Compatible(compatible) => write!(f, "compatible \"{compatible}\""),
            DmaReason::Property(property) => write!(f, "it has `{property}`"),
        }
    }
}

/// Why `node` can do DMA, or `None` when nothing says it can.
pub fn dma_reason(node: &Node<'_>) -> Option<DmaReason> {
    let compatible = DMA_CAPABLE_COMPATIBLES
        .iter()
        .find(|&&c| node.is_compatible(&[c]))
        .map(|&c| DmaReason::Compatible(c));
    compatible.or_else(|| {
        DMA_PROPERTIES
            .iter()
            .find(|&&p| node.has_property(p))
            .map(|&p| DmaReason::Property(p))
    })
}
