//! The interrupt register banks a distributor and a GICv3 redistributor's
//! SGI frame share (IHI 0069H §12.9, IHI 0048B §4.3): one bit, two bits or
//! one byte per INTID. An interrupt the partition does not own reads as 0
//! and ignores writes.
//!
//! The pending and active banks act on the whole state in software: the
//! caller has taken the list registers back first.

use crate::guest::mmio::AccessWidth;
use crate::hw::gic::GicVersion;

use super::VIRTUAL_TIMER_INTID;
use super::hardware_linked::{self, PhysicalOps};
use super::state::{NO_TARGET, PRIORITY_MASK, PRIVATE_COUNT, SGI_COUNT, VcpuSet, VgicState};

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

/// What a register access asks the hypervisor to do beyond the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Effects {
    /// vCPUs with an interrupt newly deliverable.
    pub wake: VcpuSet,
    /// Hardware-linked SPIs whose physical enable or routing must follow:
    /// (INTID, enabled, target vCPU).
    pub hardware: heapless::Vec<(u32, bool, u8), 32>,
    /// Changes to hardware-linked interrupts' physical state.
    pub physical: PhysicalOps,
}

impl Effects {
    pub fn wake(&mut self, vcpu: Option<usize>) {
        if let Some(vcpu) = vcpu {
            self.wake.insert(vcpu);
        }
    }

    fn hardware(&mut self, state: &VgicState, vcpu: usize, intid: u32) {
        if intid < PRIVATE_COUNT {
            return;
        }
        if let Some(irq) = state.irq(vcpu, intid).filter(|irq| irq.hw) {
            // One per SPI of a 32-bit access: never full.
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
    /// That vCPU's virtual timer output, as last sampled.
    pub timer_line: bool,
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

/// Reads `width` bytes at bank offset `offset`.
pub fn read(state: &VgicState, view: View, offset: u32, width: AccessWidth) -> u32 {
    let single = state.vcpus() == 1;
    let mut value = 0u32;
    for (intid, shift, bits) in fields(offset, width) {
        if !view.reaches(intid) {
            continue;
        }
        let Some(irq) = state.irq(view.vcpu, intid) else {
            continue;
        };
        let field = match bank(offset) {
            IGROUPR => u32::from(irq.group1),
            ISENABLER | ICENABLER => u32::from(irq.enabled),
            ISPENDR | ICPENDR => u32::from(
                irq.pending
                    || irq.pending_in_hardware
                    || (intid == VIRTUAL_TIMER_INTID && irq.hw && view.timer_line),
            ),
            ISACTIVER | ICACTIVER => u32::from(irq.active),
            IPRIORITYR => u32::from(irq.priority),
            // A uniprocessor GICv2's target registers are RAZ/WI (IHI
            // 0048B §4.3.12).
            ITARGETSR if single => 0,
            ITARGETSR if intid < PRIVATE_COUNT => 1 << view.vcpu,
            ITARGETSR => u32::try_from(irq.routing & 0xff).unwrap_or(0),
            ICFGR if irq.edge => ICFGR_EDGE,
            _ => 0,
        };
        value |= (field & field_mask(bits)) << shift;
    }
    value
}

/// Writes `width` bytes of `value` at bank offset `offset`, as `writer`.
pub fn write(
    state: &mut VgicState,
    view: View,
    offset: u32,
    width: AccessWidth,
    value: u32,
    effects: &mut Effects,
) {
    let which = bank(offset);
    let v2 = state.version == GicVersion::V2;
    for (intid, shift, bits) in fields(offset, width) {
        if !view.reaches(intid) || !state.owns(intid) {
            continue;
        }
        let field = (value >> shift) & field_mask(bits);
        let set = field != 0;
        let hw = state.irq(view.vcpu, intid).is_some_and(|irq| irq.hw);
        // GICv2 SGIs are made pending and cleared through
        // GICD_SPENDSGIR/CPENDSGIR instead (IHI 0048B §4.3.7-8).
        let v2_sgi = v2 && intid < SGI_COUNT;
        match which {
            IGROUPR => {
                if let Some(irq) = state.irq_mut(view.vcpu, intid) {
                    irq.group1 = set;
                }
            }
            ISENABLER | ICENABLER if set => {
                enable(state, view.vcpu, intid, which == ISENABLER, effects)
            }
            ISPENDR if set && !v2_sgi => {
                let woken = if hw {
                    hardware_linked::set_pending(state, view.vcpu, intid, &mut effects.physical)
                } else {
                    state.set_pending(view.vcpu, intid, view.vcpu)
                };
                effects.wake(woken);
            }
            ICPENDR if set && !v2_sgi => {
                if hw {
                    hardware_linked::clear_pending(state, view.vcpu, intid, &mut effects.physical);
                } else {
                    state.clear_pending(view.vcpu, intid);
                }
            }
            ISACTIVER | ICACTIVER if set => {
                let active = which == ISACTIVER;
                if hw {
                    hardware_linked::set_active(
                        state,
                        view.vcpu,
                        intid,
                        active,
                        &mut effects.physical,
                    );
                } else {
                    // An SPI made active is held where it is delivered.
                    let holder = state.destination(view.vcpu, intid).unwrap_or(view.vcpu);
                    state.set_active(holder, intid, view.vcpu, active);
                }
                // Listed again by its vCPU's next flush.
                effects.wake(state.destination(view.vcpu, intid));
            }
            IPRIORITYR => {
                if let Some(irq) = state.irq_mut(view.vcpu, intid) {
                    irq.priority = u8::try_from(field).unwrap_or(0) & PRIORITY_MASK;
                }
            }
            ITARGETSR if intid >= PRIVATE_COUNT && state.vcpus() > 1 => {
                retarget_v2(state, view.vcpu, intid, field, effects);
            }
            // SGIs are always edge-triggered and PPIs' trigger is fixed.
            ICFGR if intid >= PRIVATE_COUNT => {
                if let Some(irq) = state.irq_mut(view.vcpu, intid) {
                    irq.edge = field & ICFGR_EDGE != 0;
                }
            }
            _ => {}
        }
    }
}

/// GICD_I[SC]ENABLER for `intid`.
fn enable(state: &mut VgicState, vcpu: usize, intid: u32, enable: bool, effects: &mut Effects) {
    let Some(irq) = state.irq_mut(vcpu, intid) else {
        return;
    };
    irq.enabled = enable;
    if irq.hw {
        hardware_linked::follow_enable(vcpu, intid, enable, &mut effects.physical);
    }
    effects.hardware(state, vcpu, intid);
    if enable {
        effects.wake(state.pending_destination(vcpu, intid));
    } else {
        // It may wait in that vCPU's list registers: its next flush takes
        // it back.
        effects.wake(state.destination(vcpu, intid));
    }
}

/// GICD_ITARGETSR of an SPI: the CPU bitmap, masked to the partition's
/// vCPUs, reads back as written; the SPI goes to the lowest vCPU listed.
fn retarget_v2(state: &mut VgicState, vcpu: usize, intid: u32, field: u32, effects: &mut Effects) {
    let listed = VcpuSet::from_bits(u16::try_from(field & 0xff).unwrap_or(0))
        .intersection(state.all_vcpus());
    let target = listed
        .lowest()
        .and_then(|v| u8::try_from(v).ok())
        .unwrap_or(NO_TARGET);
    if let Some(irq) = state.irq_mut(vcpu, intid) {
        irq.routing = u64::from(listed.bits());
        irq.target = target;
    }
    effects.hardware(state, vcpu, intid);
    effects.wake(state.pending_destination(vcpu, intid));
}

fn field_mask(bits: u32) -> u32 {
    1u32.checked_shl(bits).map_or(u32::MAX, |bit| bit - 1)
}

/// The bank an offset falls in.
pub fn bank(offset: u32) -> u32 {
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
/// access of `width` bytes (at most 4: the banks are 32-bit registers) at
/// `offset` covers.
pub fn fields(offset: u32, width: AccessWidth) -> impl Iterator<Item = (u32, u32, u32)> {
    let start = bank(offset);
    let byte = offset.saturating_sub(start);
    let (first, per_byte, bits) = match start {
        IGROUPR..IPRIORITYR => (byte * 8, 8, 1),
        IPRIORITYR | ITARGETSR => (byte, 1, 8),
        _ => (byte * 4, 4, 2),
    };
    let count = if (IGROUPR..BANKS_END).contains(&offset) {
        width.bytes().min(4) * per_byte
    } else {
        0
    };
    (0..count).map(move |i| (first + i, i * bits, bits))
}
