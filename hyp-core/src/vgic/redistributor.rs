//! The emulated GICv3 redistributors: one per vCPU, each an RD_base frame
//! (identification, wake state) and an SGI_base frame with the vCPU's SGI
//! and PPI registers (IHI 0069H §12.10-12.11). No LPIs.

use crate::guest::mmio::AccessWidth;

use super::banks::{self, BANKS_END, Effects, ICFGR, IGROUPR, IPRIORITYR, ITARGETSR, View};
use super::distributor::IIDR_ARM;
use super::register_table::{Row, Widths, lookup};
use super::state::VgicState;

/// RD_base and SGI_base, 64 KiB each.
pub const FRAME_SIZE: u64 = 0x1_0000;
pub const REDISTRIBUTOR_SIZE: u64 = 2 * FRAME_SIZE;

const GICR_CTLR: u32 = 0x0000;
const GICR_IIDR: u32 = 0x0004;
const GICR_TYPER: u32 = 0x0008;
const GICR_TYPER_BYTES: u32 = 8;
const GICR_STATUSR: u32 = 0x0010;
const GICR_WAKER: u32 = 0x0014;
const GICR_PIDR2: u32 = 0xffe8;
const PIDR2_V3: u32 = 0x3b;
/// GICR_TYPER: Last (bit 4), Processor_Number [23:8], Affinity [63:32].
const TYPER_LAST: u64 = 1 << 4;
const TYPER_PROCESSOR_SHIFT: u64 = 8;
const TYPER_AFFINITY_SHIFT: u64 = 32;
/// GICR_WAKER: ProcessorSleep (1) and ChildrenAsleep (2), which follows it.
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// What an RD_base offset holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Register {
    /// GICR_CTLR and GICR_STATUSR: no LPIs, nothing to report; RAZ/WI.
    Zero,
    Iidr,
    Typer,
    Waker,
    Pidr2,
}

/// The RD_base frame's registers, with the widths each takes.
const RD_REGISTERS: [Row<Register>; 6] = [
    Row::new(GICR_CTLR, 4, Widths::WORD, Register::Zero),
    Row::new(GICR_IIDR, 4, Widths::WORD, Register::Iidr),
    Row::new(
        GICR_TYPER,
        GICR_TYPER_BYTES,
        Widths::WORD_OR_DOUBLE,
        Register::Typer,
    ),
    Row::new(GICR_STATUSR, 4, Widths::WORD, Register::Zero),
    Row::new(GICR_WAKER, 4, Widths::WORD, Register::Waker),
    Row::new(GICR_PIDR2, 4, Widths::WORD, Register::Pidr2),
];

/// The SGI_base frame's: its SGI and PPI banks.
const SGI_REGISTERS: [Row<()>; 3] = [
    Row::new(IGROUPR, IPRIORITYR - IGROUPR, Widths::WORD, ()),
    Row::new(IPRIORITYR, ITARGETSR - IPRIORITYR, Widths::WORD_OR_BYTE, ()),
    Row::new(ICFGR, BANKS_END - ICFGR, Widths::WORD, ()),
];

/// An offset within one of the two frames.
fn in_frame(offset: u64) -> u32 {
    u32::try_from(offset % FRAME_SIZE).unwrap_or(0)
}

/// Whether an access of `width` at `offset` (within a redistributor) acts
/// on the pending or active state of that vCPU's SGIs and PPIs: it gets the
/// whole state (see [`super::distributor::needs_whole_state`]).
pub fn needs_whole_state(offset: u64, width: AccessWidth) -> bool {
    let in_frame = in_frame(offset);
    offset >= FRAME_SIZE
        && lookup(&SGI_REGISTERS, in_frame, width).is_some()
        && (banks::ISPENDR..banks::IPRIORITYR).contains(&banks::bank(in_frame))
}

fn sgi_view(vcpu: usize, timer_line: bool) -> View {
    View {
        vcpu,
        private: true,
        shared: false,
        timer_line,
    }
}

fn typer(vcpus: usize, vcpu: usize) -> u64 {
    let index = vcpu as u64;
    let last = if vcpu + 1 == vcpus { TYPER_LAST } else { 0 };
    (index << TYPER_AFFINITY_SHIFT) | (index << TYPER_PROCESSOR_SHIFT) | last
}

/// A read of `width` bytes at `offset` in `vcpu`'s redistributor;
/// `timer_line` is that vCPU's virtual timer output as last sampled.
pub fn read(
    state: &VgicState,
    vcpu: usize,
    offset: u64,
    width: AccessWidth,
    timer_line: bool,
) -> u64 {
    let Some(bank) = state.private(vcpu) else {
        return 0;
    };
    let in_frame = in_frame(offset);
    if offset >= FRAME_SIZE {
        return match lookup(&SGI_REGISTERS, in_frame, width) {
            Some(()) => u64::from(banks::read(
                state,
                sgi_view(vcpu, timer_line),
                in_frame,
                width,
            )),
            None => 0,
        };
    }
    if let Some(value) = read_identification(state.vcpus(), vcpu, offset, width) {
        return value;
    }
    match lookup(&RD_REGISTERS, in_frame, width) {
        Some(Register::Waker) if bank.asleep => {
            u64::from(WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP)
        }
        _ => 0,
    }
}

/// A read of an identification register of `vcpu`'s redistributor (of
/// `vcpus`): GICR_IIDR, GICR_TYPER, GICR_PIDR2, which need no state and so
/// no lock; `None` for any other register.
pub fn read_identification(
    vcpus: usize,
    vcpu: usize,
    offset: u64,
    width: AccessWidth,
) -> Option<u64> {
    if offset >= FRAME_SIZE || vcpu >= vcpus {
        return None;
    }
    let in_frame = in_frame(offset);
    match lookup(&RD_REGISTERS, in_frame, width)? {
        Register::Iidr => Some(u64::from(IIDR_ARM)),
        Register::Typer => Some(match width {
            AccessWidth::Double => typer(vcpus, vcpu),
            _ => (typer(vcpus, vcpu) >> (8 * (in_frame - GICR_TYPER))) & u64::from(u32::MAX),
        }),
        Register::Pidr2 => Some(u64::from(PIDR2_V3)),
        Register::Waker | Register::Zero => None,
    }
}

/// A write of `width` bytes of `value` at `offset` in `vcpu`'s redistributor.
pub fn write(
    state: &mut VgicState,
    vcpu: usize,
    offset: u64,
    width: AccessWidth,
    value: u64,
    effects: &mut Effects,
) {
    let in_frame = in_frame(offset);
    let word = u32::try_from(value & u64::from(u32::MAX)).unwrap_or(0);
    if offset >= FRAME_SIZE {
        if lookup(&SGI_REGISTERS, in_frame, width).is_some() {
            banks::write(state, sgi_view(vcpu, false), in_frame, width, word, effects);
        }
        return;
    }
    if lookup(&RD_REGISTERS, in_frame, width) == Some(Register::Waker)
        && let Some(bank) = state.private_mut(vcpu)
    {
        bank.asleep = word & WAKER_PROCESSOR_SLEEP != 0;
    }
}

#[cfg(test)]
mod tests {
    use super::super::register_table::is_well_formed;
    use super::*;

    #[test]
    fn register_tables_are_sorted_and_disjoint() {
        assert!(is_well_formed(&RD_REGISTERS));
        assert!(is_well_formed(&SGI_REGISTERS));
    }
}
