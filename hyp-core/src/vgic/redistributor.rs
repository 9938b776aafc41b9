//! The emulated GICv3 redistributors: one per vCPU, each an RD_base frame
//! (identification, wake state) and an SGI_base frame with the vCPU's SGI
//! and PPI registers (IHI 0069H §12.10-12.11). No LPIs.

use super::banks::{self, BANKS_END, Effects, IGROUPR, View};
use super::distributor::IIDR_ARM;
use super::list_register::ListRegister;
use super::state::VgicState;

/// RD_base and SGI_base, 64 KiB each.
pub const FRAME_SIZE: u64 = 0x1_0000;
pub const REDISTRIBUTOR_SIZE: u64 = 2 * FRAME_SIZE;

const GICR_IIDR: u32 = 0x0004;
const GICR_TYPER: u32 = 0x0008;
const GICR_TYPER_HIGH: u32 = 0x000c;
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

/// The redistributor of `vcpu` at `offset` (within its two frames).
fn sgi_view(vcpu: usize) -> View {
    View {
        vcpu,
        private: true,
        shared: false,
    }
}

fn typer(state: &VgicState, vcpu: usize) -> u64 {
    let index = vcpu as u64;
    let last = if vcpu + 1 == state.vcpus() {
        TYPER_LAST
    } else {
        0
    };
    (index << TYPER_AFFINITY_SHIFT) | (index << TYPER_PROCESSOR_SHIFT) | last
}

/// A read of `width` bytes at `offset` in `vcpu`'s redistributor; `held`
/// as for [`banks::read`].
pub fn read(state: &VgicState, vcpu: usize, offset: u64, width: u32, held: &[ListRegister]) -> u64 {
    let Some(bank) = state.private(vcpu) else {
        return 0;
    };
    let in_frame = u32::try_from(offset % FRAME_SIZE).unwrap_or(0);
    if offset >= FRAME_SIZE {
        return match in_frame {
            IGROUPR..BANKS_END => {
                u64::from(banks::read(state, sgi_view(vcpu), in_frame, width, held))
            }
            _ => 0,
        };
    }
    match in_frame {
        GICR_IIDR => u64::from(IIDR_ARM),
        GICR_TYPER => {
            let value = typer(state, vcpu);
            if width == 8 {
                value
            } else {
                value & u64::from(u32::MAX)
            }
        }
        GICR_TYPER_HIGH => typer(state, vcpu) >> 32,
        GICR_WAKER if bank.asleep => u64::from(WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP),
        GICR_PIDR2 => u64::from(PIDR2_V3),
        // GICR_CTLR (no LPIs, RWP clear), GICR_STATUSR and the rest.
        _ => 0,
    }
}

/// A write of `width` bytes of `value` at `offset` in `vcpu`'s redistributor.
pub fn write(
    state: &mut VgicState,
    vcpu: usize,
    offset: u64,
    width: u32,
    value: u64,
    effects: &mut Effects,
) {
    let in_frame = u32::try_from(offset % FRAME_SIZE).unwrap_or(0);
    let word = u32::try_from(value & u64::from(u32::MAX)).unwrap_or(0);
    if offset >= FRAME_SIZE {
        if (IGROUPR..BANKS_END).contains(&in_frame) {
            banks::write(state, sgi_view(vcpu), in_frame, width, word, effects);
        }
        return;
    }
    if in_frame == GICR_WAKER
        && let Some(bank) = state.private_mut(vcpu)
    {
        bank.asleep = word & WAKER_PROCESSOR_SLEEP != 0;
    }
}
