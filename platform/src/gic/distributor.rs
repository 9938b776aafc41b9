//! The distributor registers GICv2 and GICv3 share (GICD_*, offsets 0-0xcff).

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::registers::{ReadOnly, ReadWrite};

use super::{DEFAULT_PRIORITY, FIRST_SPI};

register_bitfields! {u32,
    /// GICD_TYPER.
    pub TYPER [
        IT_LINES_NUMBER OFFSET(0) NUMBITS(5) [],
    ],
}

/// The banks every distributor has, from GICD_CTLR to GICD_ICFGR.
#[repr(C)]
pub struct DistributorBanks {
    pub ctlr: ReadWrite<u32>,
    pub typer: ReadOnly<u32, TYPER::Register>,
    pub iidr: ReadOnly<u32>,
    _reserved0: [u32; 29],
    pub igroupr: [ReadWrite<u32>; 32],
    pub isenabler: [ReadWrite<u32>; 32],
    pub icenabler: [ReadWrite<u32>; 32],
    pub ispendr: [ReadWrite<u32>; 32],
    pub icpendr: [ReadWrite<u32>; 32],
    pub isactiver: [ReadWrite<u32>; 32],
    pub icactiver: [ReadWrite<u32>; 32],
    /// One byte per INTID, four to a register.
    pub ipriorityr: [ReadWrite<u32>; 255],
    _reserved1: u32,
    /// GICv2: one byte per INTID naming target CPUs. RES0 in GICv3 with ARE.
    pub itargetsr: [ReadWrite<u32>; 255],
    _reserved2: u32,
    pub icfgr: [ReadWrite<u32>; 64],
}

impl DistributorBanks {
    /// Interrupt lines implemented, SGIs and PPIs included.
    pub fn lines(&self) -> u32 {
        32 * (self.typer.read(TYPER::IT_LINES_NUMBER) + 1)
    }

    /// Disables, clears and deprioritises every SPI, and puts them in Group
    /// 1 (`group1`) or Group 0.
    pub fn reset_spis(&self, group1: bool) {
        let lines = self.lines().min(1020);
        let priority_word = u32::from_ne_bytes([DEFAULT_PRIORITY; 4]);
        for register in (FIRST_SPI / 32)..lines.div_ceil(32) {
            let index = register as usize;
            if let (Some(clear_enable), Some(clear_pending), Some(clear_active), Some(group)) = (
                self.icenabler.get(index),
                self.icpendr.get(index),
                self.icactiver.get(index),
                self.igroupr.get(index),
            ) {
                clear_enable.set(u32::MAX);
                clear_pending.set(u32::MAX);
                clear_active.set(u32::MAX);
                group.set(if group1 { u32::MAX } else { 0 });
            }
        }
        for register in (FIRST_SPI / 4)..(lines / 4) {
            if let Some(priority) = self.ipriorityr.get(register as usize) {
                priority.set(priority_word);
            }
        }
    }

    /// Sets SPI `intid` edge-triggered (`edge`) or level-sensitive. The
    /// SPI must be disabled (GIC architecture: changing the trigger of an
    /// enabled interrupt is UNPREDICTABLE).
    pub fn set_edge_triggered(&self, intid: u32, edge: bool) {
        if let Some(register) = self.icfgr.get((intid / 16) as usize) {
            let shift = (intid % 16) * 2;
            let edge_bit = ICFGR_EDGE << shift;
            let value = register.get() & !edge_bit;
            register.set(if edge { value | edge_bit } else { value });
        }
    }

    /// Disables SPI `intid` and clears its pending and active states (its
    /// owner stopped with it in flight).
    pub fn quiesce(&self, intid: u32) {
        let index = (intid / 32) as usize;
        let bit = 1 << (intid % 32);
        for bank in [&self.icenabler, &self.icpendr, &self.icactiver] {
            if let Some(register) = bank.get(index) {
                register.set(bit);
            }
        }
    }
}

/// A change to one interrupt's state through the set/clear-bit registers
/// (GICD/GICR_I[SC]ENABLER, I[SC]PENDR, I[SC]ACTIVER).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateChange {
    SetPending,
    ClearPending,
    Activate,
    Deactivate,
    Enable,
    Disable,
}

impl DistributorBanks {
    /// The bank `change` writes, indexed by INTID / 32.
    pub(super) fn bank_for(&self, change: StateChange) -> &[ReadWrite<u32>; 32] {
        match change {
            StateChange::SetPending => &self.ispendr,
            StateChange::ClearPending => &self.icpendr,
            StateChange::Activate => &self.isactiver,
            StateChange::Deactivate => &self.icactiver,
            StateChange::Enable => &self.isenabler,
            StateChange::Disable => &self.icenabler,
        }
    }

    /// Applies `change` to `intid` (on GICv2, INTIDs 0-31 are the calling
    /// CPU's own: the distributor banks them).
    pub fn change(&self, intid: u32, change: StateChange) {
        if let Some(register) = self.bank_for(change).get((intid / 32) as usize) {
            register.set(1 << (intid % 32));
        }
    }
}

/// GICD_ICFGR: the upper bit of an INTID's two-bit field is set for edge.
const ICFGR_EDGE: u32 = 0b10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bank_offsets_match_the_gic_specification() {
        assert_eq!(core::mem::offset_of!(DistributorBanks, igroupr), 0x080);
        assert_eq!(core::mem::offset_of!(DistributorBanks, isenabler), 0x100);
        assert_eq!(core::mem::offset_of!(DistributorBanks, icactiver), 0x380);
        assert_eq!(core::mem::offset_of!(DistributorBanks, ipriorityr), 0x400);
        assert_eq!(core::mem::offset_of!(DistributorBanks, itargetsr), 0x800);
        assert_eq!(core::mem::offset_of!(DistributorBanks, icfgr), 0xc00);
        assert_eq!(core::mem::size_of::<DistributorBanks>(), 0xd00);
    }
}
