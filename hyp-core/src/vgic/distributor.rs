//! The emulated distributor (GICD) a partition sees: GICv3's with affinity
//! routing always on and a single security state (IHI 0069H §12.9), or
//! GICv2's with banked SGI/PPI registers (IHI 0048B §4.3).

use crate::guest::mmio::AccessWidth;
use crate::hw::gic::GicVersion;

use super::banks::{self, Effects, ICFGR, IGROUPR, IPRIORITYR, ITARGETSR, View};
use super::register_table::{Row, Widths, lookup};
use super::sgi;
use super::state::{NO_TARGET, PRIVATE_COUNT, SGI_COUNT, VgicState};

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
/// Bytes of GICD_CPENDSGIR<n> (and of SPENDSGIR<n>): one per SGI.
const SGI_PENDING_SIZE: u32 = 0x10;
/// GICv3: GICD_IROUTER<n>, 8 bytes per INTID (SPIs only: from INTID 32).
const GICD_IROUTER: u32 = 0x6000;
const GICD_IROUTER_SIZE: u32 = 0x2000;
const IROUTER_BYTES: u32 = 8;
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
/// GICD_TYPER: ITLinesNumber [4:0], CPUNumber [7:5], IDbits [23:19],
/// No1N (25: no 1-of-N SPI routing, as QEMU's GICv3 says too).
const TYPER_CPU_NUMBER_SHIFT: u32 = 5;
const TYPER_ID_BITS_SHIFT: u32 = 19;
const TYPER_NO1N: u32 = 1 << 25;
/// INTIDs of 10 bits (IDbits holds the count minus one).
const TYPER_ID_BITS: u32 = 9;
/// GICD_IROUTER: Aff3 [39:32] and Aff2.Aff1.Aff0 [23:0] read back; IRM
/// (bit 31) is RES0 since GICD_TYPER.No1N is set, as are the rest.
const IROUTER_AFFINITY: u64 = 0xff_00ff_ffff;
const IROUTER_AFF0: u64 = 0xff;

/// What a distributor offset holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Register {
    Ctlr,
    Typer,
    Iidr,
    /// GICD_IGROUPR to GICD_ICFGR ([`banks`]).
    Bank,
    Sgir,
    SgiPending,
    Irouter,
    Pidr2,
}

/// The registers both versions have, by offset, with the widths each
/// takes.
const REGISTERS: [Row<Register>; 6] = [
    Row::new(GICD_CTLR, 4, Widths::WORD, Register::Ctlr),
    Row::new(GICD_TYPER, 4, Widths::WORD, Register::Typer),
    Row::new(GICD_IIDR, 4, Widths::WORD, Register::Iidr),
    Row::new(IGROUPR, IPRIORITYR - IGROUPR, Widths::WORD, Register::Bank),
    Row::new(
        IPRIORITYR,
        ITARGETSR - IPRIORITYR,
        Widths::WORD_OR_BYTE,
        Register::Bank,
    ),
    Row::new(
        ICFGR,
        banks::BANKS_END - ICFGR,
        Widths::WORD,
        Register::Bank,
    ),
];

/// GICv3's own (GICD_ITARGETSR is RES0 with affinity routing: no row).
const REGISTERS_V3: [Row<Register>; 2] = [
    Row::new(
        GICD_IROUTER,
        GICD_IROUTER_SIZE,
        Widths::WORD_OR_DOUBLE,
        Register::Irouter,
    ),
    Row::new(GICD_PIDR2_V3, 4, Widths::WORD, Register::Pidr2),
];

/// GICv2's own.
const REGISTERS_V2: [Row<Register>; 4] = [
    Row::new(
        ITARGETSR,
        ICFGR - ITARGETSR,
        Widths::WORD_OR_BYTE,
        Register::Bank,
    ),
    Row::new(GICD_SGIR, 4, Widths::WORD, Register::Sgir),
    Row::new(
        GICD_CPENDSGIR,
        2 * SGI_PENDING_SIZE,
        Widths::WORD_OR_BYTE,
        Register::SgiPending,
    ),
    Row::new(GICD_PIDR2_V2, 4, Widths::WORD, Register::Pidr2),
];

fn register(version: GicVersion, offset: u32, width: AccessWidth) -> Option<Register> {
    lookup(&REGISTERS, offset, width).or_else(|| match version {
        GicVersion::V3 => lookup(&REGISTERS_V3, offset, width),
        GicVersion::V2 => lookup(&REGISTERS_V2, offset, width),
    })
}

/// Whether an access of `width` at `offset` acts on pending or active
/// state, or on routing: the caller gives the access the whole state
/// (list registers taken back, other vCPUs' too where they hold it).
/// Enables, priorities, groups and triggers need no list register back: a
/// flush withdraws what was disabled since it was listed.
pub fn needs_whole_state(version: GicVersion, offset: u32, width: AccessWidth) -> bool {
    match register(version, offset, width) {
        Some(Register::Bank) => matches!(
            banks::bank(offset),
            banks::ISPENDR | banks::ICPENDR | banks::ISACTIVER | banks::ICACTIVER | ITARGETSR
        ),
        Some(Register::SgiPending | Register::Irouter) => true,
        _ => false,
    }
}

/// The INTIDs an access covers whose state it reads or changes through
/// other vCPUs' list registers: those of the pending and active banks, and
/// the SPIs whose routing a write changes.
pub fn covered(version: GicVersion, offset: u32, width: AccessWidth, write: bool) -> Coverage {
    match register(version, offset, width) {
        Some(Register::Bank) => match banks::bank(offset) {
            banks::ISPENDR | banks::ICPENDR | banks::ISACTIVER | banks::ICACTIVER => Coverage::Bank,
            ITARGETSR if write => Coverage::Bank,
            _ => Coverage::None,
        },
        Some(Register::Irouter) if write => Coverage::Router(router_intid(offset)),
        _ => Coverage::None,
    }
}

/// See [`covered`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    None,
    /// Every INTID the bank fields of the access name.
    Bank,
    /// One SPI, by INTID.
    Router(u32),
}

fn view(state: &VgicState, vcpu: usize, timer_line: bool) -> View {
    View {
        vcpu,
        // GICv3 with ARE: SGIs and PPIs live in the redistributors.
        private: state.version == GicVersion::V2,
        shared: true,
        timer_line,
    }
}

/// A read of `width` bytes at `offset` in the distributor by `vcpu`.
pub fn read(
    state: &VgicState,
    vcpu: usize,
    offset: u32,
    width: AccessWidth,
    timer_line: bool,
) -> u64 {
    let Some(register) = register(state.version, offset, width) else {
        return 0;
    };
    let v3 = state.version == GicVersion::V3;
    let value = match register {
        Register::Ctlr if v3 => u32::from(state.group_enables) | CTLR_ARE | CTLR_DS,
        Register::Ctlr => u32::from(state.group_enables),
        Register::Typer | Register::Iidr | Register::Pidr2 => {
            return identification(&Identity::of(state), register);
        }
        Register::Bank => banks::read(state, view(state, vcpu, timer_line), offset, width),
        Register::SgiPending => sgi_pending(state, vcpu, offset, width),
        Register::Irouter => return router(state, offset, width),
        Register::Sgir => 0,
    };
    u64::from(value)
}

/// What a partition's GIC is, as its identification registers say it:
/// fixed from the partition's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub version: GicVersion,
    pub vcpus: usize,
    /// Interrupt lines: 32 private ones and the SPIs.
    pub lines: u32,
}

impl Identity {
    pub fn of(state: &VgicState) -> Identity {
        Identity {
            version: state.version,
            vcpus: state.vcpus(),
            lines: state.lines(),
        }
    }
}

/// A read of an identification register (GICD_TYPER, GICD_IIDR,
/// GICD_PIDR2), which needs no state and so no lock; `None` for any other
/// register.
pub fn read_identification(identity: &Identity, offset: u32, width: AccessWidth) -> Option<u64> {
    let register = register(identity.version, offset, width)?;
    matches!(register, Register::Typer | Register::Iidr | Register::Pidr2)
        .then(|| identification(identity, register))
}

fn identification(identity: &Identity, register: Register) -> u64 {
    let v3 = identity.version == GicVersion::V3;
    let value = match register {
        Register::Typer => {
            let lines = identity.lines / 32 - 1;
            let cpus = u32::try_from(identity.vcpus.saturating_sub(1)).unwrap_or(0);
            let v3_bits = if v3 {
                (TYPER_ID_BITS << TYPER_ID_BITS_SHIFT) | TYPER_NO1N
            } else {
                0
            };
            // CPUNumber is 3 bits: 8 and more vCPUs read as 7 (GICv3 with
            // affinity routing only; GICv2 has at most 8).
            lines | (cpus.min(7) << TYPER_CPU_NUMBER_SHIFT) | v3_bits
        }
        Register::Iidr => IIDR_ARM,
        Register::Pidr2 if v3 => PIDR2_V3,
        Register::Pidr2 => PIDR2_V2,
        _ => 0,
    };
    u64::from(value)
}

/// A write of `width` bytes of `value` at `offset` by `vcpu`.
pub fn write(
    state: &mut VgicState,
    vcpu: usize,
    offset: u32,
    width: AccessWidth,
    value: u64,
    effects: &mut Effects,
) {
    let Some(register) = register(state.version, offset, width) else {
        return;
    };
    let word = u32::try_from(value & u64::from(u32::MAX)).unwrap_or(0);
    match register {
        Register::Ctlr => {
            state.group_enables = u8::try_from(word & CTLR_GROUP_ENABLES).unwrap_or(0);
            for target in 0..state.vcpus() {
                if state.has_deliverable(target) {
                    effects.wake.insert(target);
                }
            }
        }
        Register::Bank => {
            // The timer line only matters to reads.
            banks::write(
                state,
                view(state, vcpu, false),
                offset,
                width,
                word,
                effects,
            );
        }
        Register::Sgir => {
            let request = sgi::from_sgir(word, vcpu, state.vcpus());
            send_sgi(state, vcpu, request, effects);
        }
        Register::SgiPending => set_sgi_pending(state, vcpu, offset, width, word, effects),
        Register::Irouter => set_router(state, offset, width, value, effects),
        Register::Typer | Register::Iidr | Register::Pidr2 => {}
    }
}

/// Makes an SGI pending at each of its targets.
pub fn send_sgi(
    state: &mut VgicState,
    sender: usize,
    request: sgi::SgiRequest,
    effects: &mut Effects,
) {
    for target in request.targets.iter() {
        let woken = state.set_pending(target, request.intid, sender);
        effects.wake(woken);
    }
}

/// The first SGI a GICD_[CS]PENDSGIR access covers.
fn first_sgi(offset: u32) -> u32 {
    offset.saturating_sub(GICD_CPENDSGIR) % SGI_PENDING_SIZE
}

/// GICD_[CS]PENDSGIR: one byte per SGI, one bit per source vCPU.
fn sgi_pending(state: &VgicState, vcpu: usize, offset: u32, width: AccessWidth) -> u32 {
    let first = first_sgi(offset);
    let Some(bank) = state.private(vcpu) else {
        return 0;
    };
    (0..width.bytes().min(4))
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
    width: AccessWidth,
    value: u32,
    effects: &mut Effects,
) {
    let set = offset >= GICD_SPENDSGIR;
    let first = first_sgi(offset);
    for i in 0..width.bytes().min(4) {
        let intid = first + i;
        let sources = (value >> (8 * i)) & 0xff;
        if intid >= SGI_COUNT || sources == 0 {
            continue;
        }
        if set {
            for source in (0..state.vcpus()).filter(|s| sources & (1 << s) != 0) {
                effects.wake(state.set_pending(vcpu, intid, source));
            }
        } else if let Some(bank) = state.private_mut(vcpu)
            && let Some(pending) = bank.sgi_sources.get_mut(intid as usize)
        {
            *pending &= !u8::try_from(sources).unwrap_or(u8::MAX);
            if *pending == 0 {
                state.clear_pending(vcpu, intid);
            }
        }
    }
}

/// The INTID a GICD_IROUTER offset names.
fn router_intid(offset: u32) -> u32 {
    offset.saturating_sub(GICD_IROUTER) / IROUTER_BYTES
}

/// Which 32 bits of the 64-bit GICD_IROUTER an access moves: all of them
/// (a 64-bit access), or its lower or upper half.
fn router_half(offset: u32, width: AccessWidth) -> (u32, u64) {
    match width {
        AccessWidth::Double => (0, u64::MAX),
        _ => {
            let shift = 8 * (offset % IROUTER_BYTES);
            (shift, u64::from(u32::MAX) << shift)
        }
    }
}

fn router(state: &VgicState, offset: u32, width: AccessWidth) -> u64 {
    let intid = router_intid(offset);
    if intid < PRIVATE_COUNT {
        return 0;
    }
    let (shift, mask) = router_half(offset, width);
    state
        .irq(0, intid)
        .map_or(0, |irq| (irq.routing & mask) >> shift)
}

fn set_router(
    state: &mut VgicState,
    offset: u32,
    width: AccessWidth,
    value: u64,
    effects: &mut Effects,
) {
    let intid = router_intid(offset);
    if intid < PRIVATE_COUNT {
        return;
    }
    let vcpus = state.vcpus();
    let Some(irq) = state.irq_mut(0, intid) else {
        return;
    };
    let (shift, mask) = router_half(offset, width);
    let routing = ((irq.routing & !mask) | ((value << shift) & mask)) & IROUTER_AFFINITY;
    // A vCPU's affinity is its index in Aff0: any other names a core
    // outside the partition, and routes the SPI nowhere.
    let aff0 = routing & IROUTER_AFF0;
    irq.target = if routing == aff0 && aff0 < vcpus as u64 {
        u8::try_from(aff0).unwrap_or(NO_TARGET)
    } else {
        NO_TARGET
    };
    irq.routing = routing;
    if irq.hw {
        // One per access: never full.
        let _ = effects.hardware.push((intid, irq.enabled, irq.target));
    }
    effects.wake(state.pending_destination(0, intid));
}

#[cfg(test)]
mod tests {
    use super::super::register_table::is_well_formed;
    use super::*;

    #[test]
    fn register_tables_are_sorted_and_disjoint() {
        for version_rows in [&REGISTERS_V3[..], &REGISTERS_V2[..]] {
            let mut rows: Vec<_> = REGISTERS.iter().chain(version_rows).copied().collect();
            rows.sort_by_key(|row| row.offset);
            assert!(is_well_formed(&rows));
        }
    }
}
