//! The emulated distributor (GICD) a partition sees: GICv3's with affinity
//! routing always on and a single security state (IHI 0069H §12.9), or
//! GICv2's with banked SGI/PPI registers (IHI 0048B §4.3).

use super::banks::{self, BANKS_END, Effects, IGROUPR, View};
use super::list_register::ListRegister;
use super::sgi;
use super::state::{NO_TARGET, PRIVATE_COUNT, SGI_COUNT, VgicState};
use crate::hw::gic::GicVersion;

/// Size of the distributor frame the guest sees.
pub const GICD_SIZE_V3: u64 = 0x1_0000;
pub const GICD_SIZE_V2: u64 = 0x1000;

const GICD_CTLR: u32 = 0x000;
const GICD_TYPER: u32 = 0x004;
const GICD_IIDR: u32 = 0x008;
/// GICv2: software-generated interrupts and their per-source pending bytes.
const GICD_SGIR: u32 = 0xf00;
const GICD_CPENDSGIR: u32 = 0xf10;
const GICD_SPENDSGIR: u32 = 0xf20;
const SGI_PENDING_END: u32 = 0xf30;
/// GICv3: GICD_IROUTER<n>, 8 bytes per SPI from INTID 32.
const GICD_IROUTER: u32 = 0x6000;
const GICD_IROUTER_END: u32 = 0x8000;
/// Peripheral ID 2: ArchRev in bits [7:4] (GICv3 at 0xffe8, GICv2 0xfe8).
const GICD_PIDR2_V3: u32 = 0xffe8;
const GICD_PIDR2_V2: u32 = 0xfe8;
const PIDR2_V3: u32 = 0x3b;
const PIDR2_V2: u32 = 0x2b;
/// GICD_IIDR: implementer Arm (JEP106 0x43b), product and revision 0.
pub const IIDR_ARM: u32 = 0x43b;

/// GICD_CTLR bits: group enables [1:0]; GICv3 ARE (4) and DS (6) read as one.
const CTLR_GROUP_ENABLES: u32 = 0b11;
const CTLR_ARE: u32 = 1 << 4;
const CTLR_DS: u32 = 1 << 6;
/// GICD_TYPER: ITLinesNumber [4:0], CPUNumber [7:5], IDbits [23:19].
const TYPER_CPU_NUMBER_SHIFT: u32 = 5;
const TYPER_ID_BITS_SHIFT: u32 = 19;
/// INTIDs of 10 bits (IDbits holds the count minus one).
const TYPER_ID_BITS: u32 = 9;
/// GICD_IROUTER: Aff0 [7:0]; Interrupt_Routing_Mode (bit 31).
const IROUTER_AFF0_MASK: u64 = 0xff;
const IROUTER_UPPER_AFFINITY: u64 = 0xff_00ff_ff00;
const IROUTER_IRM: u64 = 1 << 31;

fn view(state: &VgicState, vcpu: usize) -> View {
    View {
        vcpu,
        // GICv3 with ARE: SGIs and PPIs live in the redistributors.
        private: state.version == GicVersion::V2,
        shared: true,
    }
}

/// A read of `width` bytes at `offset` in the distributor by `vcpu`, whose
/// list registers hold `held`.
pub fn read(state: &VgicState, vcpu: usize, offset: u32, width: u32, held: &[ListRegister]) -> u64 {
    let v3 = state.version == GicVersion::V3;
    let value = match offset {
        GICD_CTLR if v3 => u32::from(state.group_enables) | CTLR_ARE | CTLR_DS,
        GICD_CTLR => u32::from(state.group_enables),
        GICD_TYPER => {
            let lines = state.lines() / 32 - 1;
            let cpus = u32::try_from(state.vcpus().saturating_sub(1)).unwrap_or(0);
            let id_bits = if v3 {
                TYPER_ID_BITS << TYPER_ID_BITS_SHIFT
            } else {
                0
            };
            lines | (cpus << TYPER_CPU_NUMBER_SHIFT) | id_bits
        }
        GICD_IIDR => IIDR_ARM,
        IGROUPR..BANKS_END => banks::read(state, view(state, vcpu), offset, width, held),
        GICD_CPENDSGIR..SGI_PENDING_END if !v3 => sgi_pending(state, vcpu, offset, width),
        GICD_IROUTER..GICD_IROUTER_END if v3 => return router(state, offset),
        GICD_PIDR2_V3 if v3 => PIDR2_V3,
        GICD_PIDR2_V2 if !v3 => PIDR2_V2,
        _ => 0,
    };
    u64::from(value)
}

/// A write of `width` bytes of `value` at `offset` by `vcpu`.
pub fn write(
    state: &mut VgicState,
    vcpu: usize,
    offset: u32,
    width: u32,
    value: u64,
    effects: &mut Effects,
) {
    let v3 = state.version == GicVersion::V3;
    let word = u32::try_from(value & u64::from(u32::MAX)).unwrap_or(0);
    match offset {
        GICD_CTLR => {
            state.group_enables = u8::try_from(word & CTLR_GROUP_ENABLES).unwrap_or(0);
            for target in 0..state.vcpus() {
                if state.has_deliverable(target) {
                    effects.wake |= 1 << target;
                }
            }
        }
        IGROUPR..BANKS_END => {
            banks::write(state, view(state, vcpu), offset, width, word, effects);
        }
        GICD_SGIR if !v3 => {
            let request = sgi::from_sgir(word, vcpu, state.vcpus());
            send_sgi(state, vcpu, request, effects);
        }
        GICD_CPENDSGIR..SGI_PENDING_END if !v3 => {
            set_sgi_pending(state, vcpu, offset, width, word, effects);
        }
        GICD_IROUTER..GICD_IROUTER_END if v3 => set_router(state, offset, value, effects),
        _ => {}
    }
}

/// Makes an SGI pending at each of its targets.
pub fn send_sgi(
    state: &mut VgicState,
    sender: usize,
    request: sgi::SgiRequest,
    effects: &mut Effects,
) {
    for target in 0..state.vcpus() {
        if request.targets & (1 << target) != 0 {
            let woken = state.set_pending(target, request.intid, sender);
            if let Some(woken) = woken {
                effects.wake |= 1 << woken;
            }
        }
    }
}

/// GICD_[CS]PENDSGIR: one byte per SGI, one bit per source vCPU.
fn sgi_pending(state: &VgicState, vcpu: usize, offset: u32, width: u32) -> u32 {
    let first = (offset - GICD_CPENDSGIR) % 0x10;
    let Some(bank) = state.private(vcpu) else {
        return 0;
    };
    (0..width)
        .filter_map(|i| {
            let sources = bank.sgi_sources.get((first + i) as usize)?;
            Some(u32::from(*sources) << (8 * i))
        })
        .fold(0, |value, byte| value | byte)
}

fn set_sgi_pending(
    state: &mut VgicState,
    vcpu: usize,
    offset: u32,
    width: u32,
    value: u32,
    effects: &mut Effects,
) {
    let set = offset >= GICD_SPENDSGIR;
    let first = (offset - GICD_CPENDSGIR) % 0x10;
    for i in 0..width {
        let intid = first + i;
        let sources = (value >> (8 * i)) & 0xff;
        if intid >= SGI_COUNT || sources == 0 {
            continue;
        }
        if set {
            for source in (0..8).filter(|s| sources & (1 << s) != 0) {
                if let Some(woken) = state.set_pending(vcpu, intid, source) {
                    effects.wake |= 1 << woken;
                }
            }
        } else {
            state.clear_pending(vcpu, intid);
        }
    }
}

/// The INTID a GICD_IROUTER offset names, if it is an owned SPI.
fn router_intid(offset: u32) -> u32 {
    (offset - GICD_IROUTER) / 8
}

fn router(state: &VgicState, offset: u32) -> u64 {
    let intid = router_intid(offset);
    if intid < PRIVATE_COUNT || !offset.is_multiple_of(8) {
        return 0;
    }
    state
        .irq(0, intid)
        .filter(|irq| irq.target != NO_TARGET)
        .map_or(0, |irq| u64::from(irq.target))
}

fn set_router(state: &mut VgicState, offset: u32, value: u64, effects: &mut Effects) {
    let intid = router_intid(offset);
    if intid < PRIVATE_COUNT || !offset.is_multiple_of(8) {
        return;
    }
    let vcpus = state.vcpus();
    // Only Aff0 names a vCPU; any other affinity is a core outside the
    // partition, and 1-of-N routing is delivered to vCPU 0.
    let aff0 = value & IROUTER_AFF0_MASK;
    let target = if value & IROUTER_UPPER_AFFINITY == 0 && aff0 < vcpus as u64 {
        u8::try_from(aff0).unwrap_or(NO_TARGET)
    } else {
        NO_TARGET
    };
    let Some(irq) = state.irq_mut(0, intid) else {
        return;
    };
    irq.target = if value & IROUTER_IRM != 0 { 0 } else { target };
    if irq.hw {
        let _ = effects.hardware.push((intid, irq.enabled, irq.target));
    }
    if let Some(woken) = state.pending_destination(0, intid) {
        effects.wake |= 1 << woken;
    }
}
