//! Injecting a synchronous exception into a guest's EL1, as the hardware
//! would have taken it (Arm ARM D1.10: exception entry).

/// ESR_ELx.EC values (Arm ARM D17.2.37).
pub const EC_UNKNOWN: u64 = 0x00;
pub const EC_DATA_ABORT_LOWER: u64 = 0x24;
pub const EC_DATA_ABORT_SAME: u64 = 0x25;
pub const EC_INSTRUCTION_ABORT_LOWER: u64 = 0x20;
pub const EC_INSTRUCTION_ABORT_SAME: u64 = 0x21;
const EC_SHIFT: u64 = 26;
/// ESR_ELx.IL: a 32-bit instruction.
const ESR_IL: u64 = 1 << 25;
/// DFSC 0b010000: synchronous external abort, not on a table walk.
const DFSC_SYNC_EXTERNAL_ABORT: u64 = 0b01_0000;
const ISS_WNR: u64 = 1 << 6;

/// PSTATE.M[3:0] values (AArch64).
const MODE_MASK: u64 = 0b1111;
#[cfg(test)]
const MODE_EL0T: u64 = 0b0000;
const MODE_EL1T: u64 = 0b0100;
const MODE_EL1H: u64 = 0b0101;
/// PSTATE.M[4]: the exception came from AArch32.
const MODE_AARCH32: u64 = 1 << 4;
/// PSTATE.DAIF: all masked on exception entry.
const DAIF_MASKED: u64 = 0b1111 << 6;

/// Vector offsets from VBAR_EL1 (Arm ARM D1.10.2).
const VECTOR_CURRENT_SP0: u64 = 0x000;
const VECTOR_CURRENT_SPX: u64 = 0x200;
const VECTOR_LOWER_AARCH64: u64 = 0x400;
const VECTOR_LOWER_AARCH32: u64 = 0x600;

/// What to inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injected {
    /// An undefined instruction.
    Undefined,
    /// A synchronous external abort on a data access to `address`.
    DataAbort { address: u64, write: bool },
    /// A synchronous external abort on an instruction fetch from `address`.
    InstructionAbort { address: u64 },
}

/// The guest's state where it took the exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestState {
    pub pc: u64,
    pub pstate: u64,
    pub vbar_el1: u64,
    pub sctlr_el1: u64,
    pub features: PstateFeatures,
}

/// PSTATE fields the core implements, which exception entry sets or keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PstateFeatures {
    /// FEAT_PAN (ID_AA64MMFR1_EL1.PAN).
    pub pan: bool,
    /// FEAT_SSBS (ID_AA64PFR1_EL1.SSBS).
    pub ssbs: bool,
    /// FEAT_DIT (ID_AA64PFR0_EL1.DIT).
    pub dit: bool,
}

/// PSTATE bits (in SPSR layout) and the SCTLR_EL1 bits that decide them on
/// exception entry (Arm ARM, AArch64.TakeException).
const PSTATE_PAN: u64 = 1 << 22;
const PSTATE_DIT: u64 = 1 << 24;
const PSTATE_SSBS: u64 = 1 << 12;
/// SCTLR_EL1.SPAN: 0 sets PAN on exception entry to EL1.
const SCTLR_SPAN: u64 = 1 << 23;
/// SCTLR_EL1.DSSBS: the SSBS value on exception entry.
const SCTLR_DSSBS: u64 = 1 << 44;

/// PSTATE on entry to the guest's EL1 handler.
fn entry_pstate(state: &GuestState) -> u64 {
    let mut pstate = MODE_EL1H | DAIF_MASKED;
    if state.features.pan {
        if state.sctlr_el1 & SCTLR_SPAN == 0 {
            pstate |= PSTATE_PAN;
        } else {
            pstate |= state.pstate & PSTATE_PAN;
        }
    }
    if state.features.ssbs && state.sctlr_el1 & SCTLR_DSSBS != 0 {
        pstate |= PSTATE_SSBS;
    }
    if state.features.dit {
        pstate |= state.pstate & PSTATE_DIT;
    }
    pstate
}

/// The EL1 registers to write and where the guest goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Injection {
    pub elr_el1: u64,
    pub spsr_el1: u64,
    pub esr_el1: u64,
    pub far_el1: Option<u64>,
    pub pc: u64,
    pub pstate: u64,
}

/// How `what` enters the guest in `state`.
pub fn inject(state: GuestState, what: Injected) -> Injection {
    let from_el1 = state.pstate & MODE_AARCH32 == 0
        && matches!(state.pstate & MODE_MASK, MODE_EL1T | MODE_EL1H);
    let offset = if state.pstate & MODE_AARCH32 != 0 {
        VECTOR_LOWER_AARCH32
    } else {
        match state.pstate & MODE_MASK {
            MODE_EL1T => VECTOR_CURRENT_SP0,
            MODE_EL1H => VECTOR_CURRENT_SPX,
            // EL0t: an exception from a lower EL.
            _ => VECTOR_LOWER_AARCH64,
        }
    };
    let (esr, far) = match what {
        Injected::Undefined => ((EC_UNKNOWN << EC_SHIFT) | ESR_IL, None),
        Injected::DataAbort { address, write } => {
            let ec = if from_el1 {
                EC_DATA_ABORT_SAME
            } else {
                EC_DATA_ABORT_LOWER
            };
            let wnr = if write { ISS_WNR } else { 0 };
            (
                (ec << EC_SHIFT) | ESR_IL | wnr | DFSC_SYNC_EXTERNAL_ABORT,
                Some(address),
            )
        }
        Injected::InstructionAbort { address } => {
            let ec = if from_el1 {
                EC_INSTRUCTION_ABORT_SAME
            } else {
                EC_INSTRUCTION_ABORT_LOWER
            };
            (
                (ec << EC_SHIFT) | ESR_IL | DFSC_SYNC_EXTERNAL_ABORT,
                Some(address),
            )
        }
    };
    Injection {
        elr_el1: state.pc,
        spsr_el1: state.pstate,
        esr_el1: esr,
        far_el1: far,
        pc: state.vbar_el1.wrapping_add(offset),
        pstate: entry_pstate(&state),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_abort_at_el1h_goes_to_the_current_spx_vector() {
        let state = GuestState {
            pc: 0x4000_1000,
            pstate: MODE_EL1H,
            vbar_el1: 0x4000_0800,
            sctlr_el1: 0,
            features: PstateFeatures::default(),
        };
        let injection = inject(
            state,
            Injected::DataAbort {
                address: 0x5000_0000,
                write: true,
            },
        );
        assert_eq!(injection.pc, 0x4000_0a00);
        assert_eq!(injection.elr_el1, 0x4000_1000);
        assert_eq!(injection.spsr_el1, MODE_EL1H);
        assert_eq!(injection.esr_el1 >> EC_SHIFT, EC_DATA_ABORT_SAME);
        assert_eq!(injection.esr_el1 & 0x3f, DFSC_SYNC_EXTERNAL_ABORT);
        assert_ne!(injection.esr_el1 & ISS_WNR, 0, "a write stays a write");
        assert_eq!(injection.far_el1, Some(0x5000_0000));
        assert_eq!(injection.pstate, MODE_EL1H | DAIF_MASKED);
    }

    #[test]
    fn from_el0_an_abort_is_a_lower_el_abort_at_the_lower_vector() {
        let state = GuestState {
            pc: 0x1000,
            pstate: MODE_EL0T,
            vbar_el1: 0x8000,
            sctlr_el1: 0,
            features: PstateFeatures::default(),
        };
        let injection = inject(
            state,
            Injected::DataAbort {
                address: 0,
                write: false,
            },
        );
        assert_eq!(injection.pc, 0x8400);
        assert_eq!(injection.esr_el1 >> EC_SHIFT, EC_DATA_ABORT_LOWER);
    }

    #[test]
    fn pan_is_set_unless_span_and_ssbs_follows_dssbs() {
        let features = PstateFeatures {
            pan: true,
            ssbs: true,
            dit: true,
        };
        let state = GuestState {
            pc: 0,
            pstate: MODE_EL1H | PSTATE_DIT,
            vbar_el1: 0,
            sctlr_el1: SCTLR_DSSBS,
            features,
        };
        let pstate = inject(state, Injected::Undefined).pstate;
        assert_ne!(pstate & PSTATE_PAN, 0, "SPAN clear: PAN set on entry");
        assert_ne!(pstate & PSTATE_SSBS, 0, "SSBS from SCTLR_EL1.DSSBS");
        assert_ne!(pstate & PSTATE_DIT, 0, "DIT kept");
        let with_span = GuestState {
            sctlr_el1: SCTLR_SPAN,
            ..state
        };
        assert_eq!(
            inject(with_span, Injected::Undefined).pstate & PSTATE_PAN,
            0,
            "PAN kept (clear)"
        );
        let without_features = GuestState {
            features: PstateFeatures::default(),
            ..state
        };
        assert_eq!(
            inject(without_features, Injected::Undefined).pstate,
            MODE_EL1H | DAIF_MASKED,
            "no bits a core without the features would treat as RES0"
        );
    }

    #[test]
    fn an_undefined_instruction_has_ec_0_and_no_far() {
        let state = GuestState {
            pc: 0x1000,
            pstate: MODE_EL1T,
            vbar_el1: 0x8000,
            sctlr_el1: 0,
            features: PstateFeatures::default(),
        };
        let injection = inject(state, Injected::Undefined);
        assert_eq!(injection.pc, 0x8000);
        assert_eq!(injection.esr_el1, ESR_IL);
        assert_eq!(injection.far_el1, None);
    }
}
