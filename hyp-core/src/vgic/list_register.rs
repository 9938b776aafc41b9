//! List register values: GICv3's ICH_LR<n>_EL2 (IHI 0069H §12.4.6) and
//! GICv2's GICH_LR<n> (IHI 0048B §5.3.11), as one decoded form.

use super::state::Candidate;
use crate::hw::gic::GicVersion;

/// The state field both formats share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LrState {
    Invalid = 0,
    Pending = 1,
    Active = 2,
    PendingActive = 3,
}

impl LrState {
    fn from_bits(bits: u64) -> LrState {
        match bits & 0b11 {
            0 => LrState::Invalid,
            1 => LrState::Pending,
            2 => LrState::Active,
            _ => LrState::PendingActive,
        }
    }

    pub fn is_pending(self) -> bool {
        matches!(self, LrState::Pending | LrState::PendingActive)
    }

    pub fn is_active(self) -> bool {
        matches!(self, LrState::Active | LrState::PendingActive)
    }
}

/// A list register's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListRegister {
    pub intid: u32,
    pub state: LrState,
    pub priority: u8,
    pub group1: bool,
    /// Hardware-linked to the physical interrupt with the same INTID.
    pub hw: bool,
    /// GICv2 SGIs: the sending vCPU (GICH_LR.CPUID).
    pub source: u8,
}

/// ICH_LR<n>_EL2 fields.
mod v3 {
    pub const STATE_SHIFT: u64 = 62;
    pub const HW: u64 = 1 << 61;
    pub const GROUP: u64 = 1 << 60;
    pub const PRIORITY_SHIFT: u64 = 48;
    pub const PINTID_SHIFT: u64 = 32;
    pub const VINTID_MASK: u64 = 0xffff_ffff;
}

/// GICH_LR<n> fields.
mod v2 {
    pub const HW: u64 = 1 << 31;
    pub const GROUP1: u64 = 1 << 30;
    pub const STATE_SHIFT: u64 = 28;
    /// Priority holds the top five bits of the 8-bit priority, at [27:23].
    pub const PRIORITY_SHIFT: u64 = 23;
    pub const PRIORITY_DROPPED_BITS: u32 = 3;
    pub const PINTID_SHIFT: u64 = 10;
    pub const CPUID_SHIFT: u64 = 10;
    pub const CPUID_MASK: u64 = 0b111;
    pub const VINTID_MASK: u64 = 0x3ff;
}

impl ListRegister {
    /// An empty (invalid) list register: all zeros in both formats.
    pub const fn empty() -> ListRegister {
        ListRegister {
            intid: 0,
            state: LrState::Invalid,
            priority: 0,
            group1: false,
            hw: false,
            source: 0,
        }
    }

    /// A list register holding `candidate` in `state`.
    pub fn holding(candidate: &Candidate, state: LrState) -> ListRegister {
        ListRegister {
            state,
            ..ListRegister::pending(candidate)
        }
    }

    /// A pending list register for `candidate`.
    pub fn pending(candidate: &Candidate) -> ListRegister {
        ListRegister {
            intid: candidate.intid,
            state: LrState::Pending,
            priority: candidate.priority,
            group1: candidate.group1,
            hw: candidate.hw,
            source: candidate.source,
        }
    }

    pub fn encode(&self, version: GicVersion) -> u64 {
        let intid = u64::from(self.intid);
        let state = self.state as u64;
        match version {
            GicVersion::V3 => {
                let mut value = (state << v3::STATE_SHIFT)
                    | (u64::from(self.priority) << v3::PRIORITY_SHIFT)
                    | (intid & v3::VINTID_MASK);
                if self.group1 {
                    value |= v3::GROUP;
                }
                if self.hw {
                    value |= v3::HW | (intid << v3::PINTID_SHIFT);
                }
                value
            }
            GicVersion::V2 => {
                let priority = u64::from(self.priority >> v2::PRIORITY_DROPPED_BITS);
                let mut value = (state << v2::STATE_SHIFT)
                    | (priority << v2::PRIORITY_SHIFT)
                    | (intid & v2::VINTID_MASK);
                if self.group1 {
                    value |= v2::GROUP1;
                }
                if self.hw {
                    value |= v2::HW | ((intid & v2::VINTID_MASK) << v2::PINTID_SHIFT);
                } else {
                    value |= (u64::from(self.source) & v2::CPUID_MASK) << v2::CPUID_SHIFT;
                }
                value
            }
        }
    }

    #[allow(clippy::cast_possible_truncation, reason = "each field is masked")]
    pub fn decode(version: GicVersion, value: u64) -> ListRegister {
        match version {
            GicVersion::V3 => ListRegister {
                intid: (value & v3::VINTID_MASK) as u32,
                state: LrState::from_bits(value >> v3::STATE_SHIFT),
                priority: (value >> v3::PRIORITY_SHIFT) as u8,
                group1: value & v3::GROUP != 0,
                hw: value & v3::HW != 0,
                source: 0,
            },
            GicVersion::V2 => {
                let hw = value & v2::HW != 0;
                ListRegister {
                    intid: (value & v2::VINTID_MASK) as u32,
                    state: LrState::from_bits(value >> v2::STATE_SHIFT),
                    priority: (((value >> v2::PRIORITY_SHIFT) & 0x1f) as u8)
                        << v2::PRIORITY_DROPPED_BITS,
                    group1: value & v2::GROUP1 != 0,
                    hw,
                    source: if hw {
                        0
                    } else {
                        ((value >> v2::CPUID_SHIFT) & v2::CPUID_MASK) as u8
                    },
                }
            }
        }
    }

    /// Whether this register holds the same interrupt as `candidate` (for
    /// a GICv2 SGI: from the same source).
    pub fn holds(&self, candidate: &Candidate) -> bool {
        self.state != LrState::Invalid
            && self.intid == candidate.intid
            && self.source == candidate.source
    }
}
