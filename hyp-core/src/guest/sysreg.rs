//! Trapped system-register accesses (ESR_EL2 EC 0x18, decoded in
//! `guest::exit`): which register one names, and the ID register values
//! guests see.

/// A trapped MSR/MRS, as `guest::exit` decodes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysRegAccess {
    pub op0: u8,
    pub op1: u8,
    pub crn: u8,
    pub crm: u8,
    pub op2: u8,
    /// The general-purpose register (31: XZR).
    pub register: u8,
    pub read: bool,
}

impl SysRegAccess {
    /// An ID register of the feature-ID group HCR_EL2.TID3 traps:
    /// op0 3, op1 0, CRn 0, CRm 1-7. Returns (CRm, op2).
    pub fn id_register(&self) -> Option<(u8, u8)> {
        (self.op0 == 3 && self.op1 == 0 && self.crn == 0 && (1..=7).contains(&self.crm))
            .then_some((self.crm, self.op2))
    }

    /// ICC_SGI1R_EL1, ICC_ASGI1R_EL1 or ICC_SGI0R_EL1 (op0 3, op1 0, CRn 12,
    /// CRm 11, op2 5-7): SGI generation, trapped by HCR_EL2.IMO/FMO.
    pub fn is_sgi_generation(&self) -> bool {
        (self.op0, self.op1, self.crn, self.crm) == (3, 0, 12, 11) && (5..=7).contains(&self.op2)
    }

    /// ACTLR_EL1 (op0 3, op1 0, CRn 1, CRm 0, op2 1), trapped by HCR_EL2.TACR.
    pub fn is_actlr_el1(&self) -> bool {
        (self.op0, self.op1, self.crn, self.crm, self.op2) == (3, 0, 1, 0, 1)
    }

    /// The EL1 physical timer registers (CNTP_CTL_EL0, CNTP_CVAL_EL0,
    /// CNTP_TVAL_EL0: op0 3, op1 3, CRn 14, CRm 2), trapped by CNTHCTL_EL2.
    pub fn is_physical_timer(&self) -> bool {
        self.op0 == 3 && self.op1 == 3 && self.crn == 14 && self.crm == 2
    }
}

/// Feature fields cleared from what guests see, as (CRm, op2, field shift):
/// things Tessera does not manage, so the guest must not try to use them.
const HIDDEN_FIELDS: [(u8, u8, u32); 5] = [
    // ID_AA64PFR0_EL1 (CRm 4, op2 0): SVE [35:32], MPAM [43:40], AMU [47:44].
    (4, 0, 32),
    (4, 0, 40),
    (4, 0, 44),
    // ID_AA64PFR1_EL1 (CRm 4, op2 1): MTE [11:8], SME [27:24].
    (4, 1, 8),
    (4, 1, 24),
];
/// ID_AA64ZFR0_EL1 (SVE) and ID_AA64SMFR0_EL1 (SME) read as zero.
const ZEROED: [(u8, u8); 2] = [(4, 4), (4, 5)];

/// What the guest reads for the ID register (CRm, op2) whose host value is `host`.
pub fn guest_id_value(crm: u8, op2: u8, host: u64) -> u64 {
    if ZEROED.contains(&(crm, op2)) {
        return 0;
    }
    HIDDEN_FIELDS
        .iter()
        .filter(|&&(c, o, _)| (c, o) == (crm, op2))
        .fold(host, |value, &(_, _, shift)| value & !(0xf << shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(op0: u8, op1: u8, crn: u8, crm: u8, op2: u8) -> SysRegAccess {
        SysRegAccess {
            op0,
            op1,
            crn,
            crm,
            op2,
            register: 2,
            read: true,
        }
    }

    #[test]
    fn id_aa64pfr0_is_an_id_register() {
        assert_eq!(access(3, 0, 0, 4, 0).id_register(), Some((4, 0)));
        assert_eq!(access(3, 0, 0, 0, 5).id_register(), None, "MPIDR_EL1");
    }

    #[test]
    fn sve_sme_mte_amu_and_mpam_are_hidden_and_the_rest_is_kept() {
        let host_pfr0 = 0x1111_1111_1111_1111;
        let guest = guest_id_value(4, 0, host_pfr0);
        assert_eq!((guest >> 32) & 0xf, 0, "SVE hidden");
        assert_eq!((guest >> 44) & 0xf, 0, "AMU hidden");
        assert_eq!(
            guest & 0xffff_ffff,
            0x1111_1111,
            "EL0-EL3, FP, AdvSIMD, GIC kept"
        );
        assert_eq!(guest_id_value(4, 4, u64::MAX), 0, "ID_AA64ZFR0 reads 0");
        assert_eq!(guest_id_value(6, 0, 42), 42, "ISAR0 unchanged");
    }

    #[test]
    fn physical_timer_accesses_are_recognised() {
        // CNTP_CTL_EL0: op0 3, op1 3, CRn 14, CRm 2, op2 1.
        assert!(access(3, 3, 14, 2, 1).is_physical_timer());
        assert!(!access(3, 3, 14, 3, 1).is_physical_timer(), "CNTV_CTL_EL0");
    }
}
