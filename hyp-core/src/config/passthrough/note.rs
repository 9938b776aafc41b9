//! What a valid configuration with passthrough devices should still tell
//! its author: what the hardware cannot enforce and what the guest's copy
//! of a device leaves out. `check-config` prints these; Tessera logs them.

use alloc::vec::Vec;
use core::fmt;

use crate::config::binding::{PartitionConfig, RAMDISK_COMPATIBLE};
use crate::config::vocabulary;
use crate::dt::Node;

/// Something to know about a partition's devices; not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note<'a> {
    /// A DMA-capable device in a `direct-map` partition: nothing stops its
    /// DMA reaching memory outside the partition.
    DmaNotConfined { partition: &'a str, device: &'a str },
    /// A provider the guest's copy does not carry.
    StaysWithHost {
        partition: &'a str,
        consumer: Node<'a>,
        property: &'a str,
        provider: Node<'a>,
    },
    /// A subnode's interrupts, which the guest's copy leaves out.
    SubnodeInterrupts { partition: &'a str, node: Node<'a> },
    /// A ramdisk module that is disabled: the partition boots without one.
    RamdiskDisabled { partition: &'a str, module: &'a str },
}

impl fmt::Display for Note<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::DmaNotConfined { partition, device } => write!(
                f,
                "partition {partition}: {device} can do DMA, which is not confined to the \
                 partition: these boards have no IOMMU, so it can reach all memory"
            ),
            Note::StaysWithHost {
                partition,
                consumer,
                property,
                provider,
            } => write!(
                f,
                "partition {partition}: {}: {property}: {} stays with the host: \
                 firmware must leave it set up",
                consumer.path(),
                provider.path()
            ),
            Note::RamdiskDisabled { partition, module } => write!(
                f,
                "partition {partition}: {module}, a ramdisk, is disabled: the partition boots \
                 without a ramdisk"
            ),
            Note::SubnodeInterrupts { partition, node } => write!(
                f,
                "partition {partition}: {}: the interrupts of a subnode are left out of \
                 the guest's copy (only the device node's SPIs are routed)",
                node.path()
            ),
        }
    }
}

/// The notes for `partition`'s devices, in device order.
pub fn notes<'a>(partition: &PartitionConfig<'a>) -> Vec<Note<'a>> {
    let name = partition.name;
    let mut notes = Vec::new();
    for device in &partition.devices {
        if device.dma.is_some() {
            notes.push(Note::DmaNotConfined {
                partition: name,
                device: device.path,
            });
        }
        for dependency in device.dependencies.iter().filter(|d| !d.carried) {
            let note = Note::StaysWithHost {
                partition: name,
                consumer: dependency.consumer,
                property: dependency.property,
                provider: dependency.provider,
            };
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        for child in device.node.children() {
            subnode_interrupts(name, &child, &mut notes);
        }
    }
    // Said only when it leaves the partition without one.
    let disabled_ramdisks = partition.node.children().filter(|child| {
        partition.ramdisk.is_none()
            && vocabulary::is_module_node(child.name())
            && child.is_compatible(&[RAMDISK_COMPATIBLE])
            && !child.is_enabled()
    });
    for module in disabled_ramdisks {
        notes.push(Note::RamdiskDisabled {
            partition: name,
            module: module.name(),
        });
    }
    notes
}

fn subnode_interrupts<'a>(partition: &'a str, node: &Node<'a>, notes: &mut Vec<Note<'a>>) {
    if node.has_property("interrupts") || node.has_property("interrupts-extended") {
        notes.push(Note::SubnodeInterrupts {
            partition,
            node: *node,
        });
    }
    for child in node.children() {
        subnode_interrupts(partition, &child, notes);
    }
}
