//! The interrupt register banks a distributor and a GICv3 redistributor's
//! SGI frame share (IHI 0069H §12.9, IHI 0048B §4.3): one bit, two bits or
//! one byte per INTID. An interrupt the partition does not own reads as 0
//! and ignores writes.

use crate::hw::gic::GicVersion;

use super::list_register::{ListRegister, LrState};
use super::state::{NO_TARGET, PRIORITY_MASK, PRIVATE_COUNT, SGI_COUNT, VgicState};

/// Offsets of the banks (same in GICD and in GICR's SGI_base frame).
pub const IGROUPR: u32 = 0x080;
pub const ISENABLER: u32 = 0x100;
pub const ICENABLER: u32 = 0x180;
pub const ISPENDR: u32 = 0x200;
pub const ICPENDR: u32 = 0x280;
pub const ISACTIVER: u32 = 0x300;
pub const ICACTIVER: u32 = 0x380;
pub const IPRIORITYR: u32 = 0x400;
pub const ITARGETSR: u32 = 0x800;
pub const ICFGR: u32 = 0xc00;
pub const BANKS_END: u32 = 0xd00;
/// Bytes each one-bit-per-INTID bank spans (1024 INTIDs).
const BIT_BANK_SIZE: u32 = 0x80;
/// GICD_ICFGR: bit 1 of each two-bit field is "edge-triggered".
const ICFGR_EDGE: u32 = 0b10;

/// What a register write asks the hypervisor to do beyond the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// vCPUs with an interrupt newly deliverable (bit per vCPU).
    pub wake: u8,
    /// Hardware-linked SPIs whose physical enable or routing must follow:
    /// (INTID, enabled, target vCPU).
    pub hardware: heapless::Vec<(u32, bool, u8), 32>,
}

impl Effects {
    fn wake(&mut self, vcpu: Option<usize>) {
        if let Some(vcpu) = vcpu {
            self.wake |= 1u8
                .checked_shl(u32::try_from(vcpu).unwrap_or(8))
                .unwrap_or(0);
        }
    }

    fn hardware(&mut self, state: &VgicState, vcpu: usize, intid: u32) {
        if intid < PRIVATE_COUNT {
            return;
        }
        if let Some(irq) = state.irq(vcpu, intid).filter(|irq| irq.hw) {
            let _ = self.hardware.push((intid, irq.enabled, irq.target));
        }
    }
}

/// Who the banks are read or written for.
#[derive(Debug, Clone, Copy)]
pub struct View {
    /// The vCPU whose SGIs and PPIs INTIDs 0-31 name.
    pub vcpu: usize,
    /// INTIDs 0-31 are reachable here (GICv2's banked distributor, GICv3's
    /// SGI frame); false in a GICv3 distributor with affinity routing.
    pub private: bool,
    /// SPIs are reachable here (false in a redistributor).
    pub shared: bool,
}

impl View {
    fn reaches(&self, intid: u32) -> bool {
        if intid < PRIVATE_COUNT {
            self.private
        } else {
            self.shared
        }
    }
}

/// Reads `width` bytes at bank offset `offset`. `held` is what the
/// reading vCPU's list registers hold when the read is for it (its
/// interrupts' active state lives there, and pending while active); for
/// another vCPU it is empty.
pub fn read(state: &VgicState, view: View, offset: u32, width: u32, held: &[ListRegister]) -> u32 {
    let mut value = 0u32;
    for (intid, shift, bits) in fields(offset, width) {
        if !view.reaches(intid) {
            continue;
        }
        let Some(irq) = state.irq(view.vcpu, intid) else {
            continue;
        };
        let listed =
            |is: fn(LrState) -> bool| held.iter().any(|lr| lr.intid == intid && is(lr.state));
        let field = match bank(offset) {
            IGROUPR => u32::from(irq.group1),
            ISENABLER | ICENABLER => u32::from(irq.enabled),
            ISPENDR | ICPENDR => u32::from(irq.pending || listed(LrState::is_pending)),
            ISACTIVER | ICACTIVER => u32::from(listed(LrState::is_active)),
            IPRIORITYR => u32::from(irq.priority),
            ITARGETSR if intid < PRIVATE_COUNT => 1 << view.vcpu,
            ITARGETSR if irq.target == NO_TARGET => 0,
            ITARGETSR => 1 << irq.target,
            ICFGR if irq.edge => ICFGR_EDGE,
            _ => 0,
        };
        value |= (field & ((1 << bits) - 1)) << shift;
    }
    value
}

/// Writes `width` bytes of `value` at bank offset `offset`.
pub fn write(
    state: &mut VgicState,
    view: View,
    offset: u32,
    width: u32,
    value: u32,
    effects: &mut Effects,
) {
    let vcpus = state.vcpus();
    for (intid, shift, bits) in fields(offset, width) {
        if !view.reaches(intid) || !state.owns(intid) {
            continue;
        }
        let field = (value >> shift) & ((1 << bits) - 1);
        let which = bank(offset);
        let set = field != 0;
        match which {
            IGROUPR => {
                if let Some(irq) = state.irq_mut(view.vcpu, intid) {
                    irq.group1 = set;
                }
            }
            ISENABLER | ICENABLER if set => {
                let enable = which == ISENABLER;
                if let Some(irq) = state.irq_mut(view.vcpu, intid) {
                    irq.enabled = enable;
                }
                effects.hardware(state, view.vcpu, intid);
                if enable && state.irq(view.vcpu, intid).is_some_and(|irq| irq.pending) {
                    effects.wake(state.pending_destination(view.vcpu, intid));
                }
                if !enable {
                    // It may wait in that vCPU's list registers: its next
                    // flush takes it back.
                    effects.wake(state.destination(view.vcpu, intid));
                }
            }
            // GICv2 SGIs are made pending through GICD_SPENDSGIR instead.
            ISPENDR if set && (intid >= SGI_COUNT || state.version == GicVersion::V3) => {
                let woken = state.set_pending(view.vcpu, intid, view.vcpu);
                effects.wake(woken);
            }
            ICPENDR if set => state.clear_pending(view.vcpu, intid),
            IPRIORITYR => {
                if let Some(irq) = state.irq_mut(view.vcpu, intid) {
                    irq.priority = u8::try_from(field).unwrap_or(0) & PRIORITY_MASK;
                }
            }
            ITARGETSR if intid >= PRIVATE_COUNT => {
                // The first listed vCPU that exists receives it.
                let target = (0..vcpus.min(8))
                    .find(|&v| field & (1 << v) != 0)
                    .map_or(NO_TARGET, |v| u8::try_from(v).unwrap_or(NO_TARGET));
                if let Some(irq) = state.irq_mut(view.vcpu, intid) {
                    irq.target = target;
                }
                effects.hardware(state, view.vcpu, intid);
                effects.wake(state.pending_destination(view.vcpu, intid));
            }
            // SGIs are always edge-triggered and PPIs' trigger is fixed.
            ICFGR if intid >= PRIVATE_COUNT => {
                if let Some(irq) = state.irq_mut(view.vcpu, intid) {
                    irq.edge = field & ICFGR_EDGE != 0;
                }
            }
            // Active state is the list registers' (the guest ends it with
            // its EOI or DIR): GICD_I[SC]ACTIVER writes are ignored.
            _ => {}
        }
    }
}

/// The bank an offset falls in.
fn bank(offset: u32) -> u32 {
    if offset < IPRIORITYR {
        offset & !(BIT_BANK_SIZE - 1)
    } else if offset < ITARGETSR {
        IPRIORITYR
    } else if offset < ICFGR {
        ITARGETSR
    } else {
        ICFGR
    }
}

/// (INTID, bit shift in the value, field width in bits) for each INTID an
/// access of `width` bytes at `offset` covers.
fn fields(offset: u32, width: u32) -> impl Iterator<Item = (u32, u32, u32)> {
    let start = bank(offset);
    let byte = offset - start;
    let (first, per_byte, bits) = match start {
        IGROUPR..IPRIORITYR => (byte * 8, 8, 1),
        IPRIORITYR | ITARGETSR => (byte, 1, 8),
        _ => (byte * 4, 4, 2),
    };
    let count = if (IGROUPR..BANKS_END).contains(&offset) {
        width * per_byte
    } else {
        0
    };
    (0..count).map(move |i| (first + i, i * bits, bits))
}
