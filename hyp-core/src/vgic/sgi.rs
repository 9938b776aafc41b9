//! Which vCPUs a guest's SGI goes to: ICC_SGI1R_EL1 on GICv3 (IHI 0069H
//! §12.2.23), GICD_SGIR on GICv2 (IHI 0048B §4.3.15). A vCPU's virtual
//! MPIDR has its index in Aff0 and zero above, so a target outside the
//! partition's vCPUs (another partition's cores, on the host) matches none.

use super::state::VcpuSet;

/// ICC_SGI1R_EL1 fields.
const SGI1R_TARGET_LIST_MASK: u64 = 0xffff;
const SGI1R_AFF1_SHIFT: u64 = 16;
const SGI1R_INTID_SHIFT: u64 = 24;
const SGI1R_AFF2_SHIFT: u64 = 32;
/// IRM: to every PE but the sender.
const SGI1R_IRM: u64 = 1 << 40;
const SGI1R_RS_SHIFT: u64 = 44;
const SGI1R_AFF3_SHIFT: u64 = 48;
/// Each TargetList bit names one Aff0 value in a range of 16 (RS).
const TARGETS_PER_RANGE: u64 = 16;

/// GICD_SGIR fields.
const SGIR_FILTER_SHIFT: u32 = 24;
const SGIR_TARGET_LIST_SHIFT: u32 = 16;
const SGIR_INTID_MASK: u32 = 0xf;
const FILTER_LIST: u32 = 0;
const FILTER_OTHERS: u32 = 1;
const FILTER_SELF: u32 = 2;

/// An SGI to send: its INTID and its destination vCPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SgiRequest {
    pub intid: u32,
    pub targets: VcpuSet,
}

fn all_but(sender: usize, vcpus: usize) -> VcpuSet {
    let mut all = VcpuSet::first(vcpus);
    all.remove(sender);
    all
}

/// Decodes a write of `value` to ICC_SGI1R_EL1 by vCPU `sender`.
pub fn from_sgi1r(value: u64, sender: usize, vcpus: usize) -> SgiRequest {
    let intid = u32::try_from((value >> SGI1R_INTID_SHIFT) & 0xf).unwrap_or(0);
    if value & SGI1R_IRM != 0 {
        return SgiRequest {
            intid,
            targets: all_but(sender, vcpus),
        };
    }
    let upper_affinity = ((value >> SGI1R_AFF1_SHIFT) & 0xff)
        | ((value >> SGI1R_AFF2_SHIFT) & 0xff)
        | ((value >> SGI1R_AFF3_SHIFT) & 0xff);
    if upper_affinity != 0 {
        return SgiRequest {
            intid,
            targets: VcpuSet::EMPTY,
        };
    }
    // TargetList bit n names Aff0 RS * 16 + n, which is vCPU number Aff0:
    // shifted into place, the list is a vCPU mask (beyond 63 it names none).
    let first = u32::try_from(((value >> SGI1R_RS_SHIFT) & 0xf) * TARGETS_PER_RANGE).unwrap_or(0);
    let listed = (value & SGI1R_TARGET_LIST_MASK)
        .checked_shl(first)
        .unwrap_or(0);
    let own = u64::from(VcpuSet::first(vcpus).bits());
    SgiRequest {
        intid,
        targets: VcpuSet::from_bits(u16::try_from(listed & own).unwrap_or(0)),
    }
}

/// Decodes a write of `value` to GICD_SGIR by vCPU `sender`.
pub fn from_sgir(value: u32, sender: usize, vcpus: usize) -> SgiRequest {
    let intid = value & SGIR_INTID_MASK;
    let own = VcpuSet::first(vcpus);
    let targets = match (value >> SGIR_FILTER_SHIFT) & 0b11 {
        FILTER_LIST => {
            let listed = u16::try_from((value >> SGIR_TARGET_LIST_SHIFT) & 0xff).unwrap_or(0);
            VcpuSet::from_bits(listed).intersection(own)
        }
        FILTER_OTHERS => all_but(sender, vcpus),
        FILTER_SELF => VcpuSet::of(sender).intersection(own),
        _ => VcpuSet::EMPTY,
    };
    SgiRequest { intid, targets }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgi1r_targets_listed_vcpus_and_drops_foreign_affinities() {
        // SGI 5 to Aff0 0 and 1, then to Aff0 2 and 3 of a 2-vCPU partition.
        let to_own = (5 << SGI1R_INTID_SHIFT) | 0b11;
        assert_eq!(
            from_sgi1r(to_own, 0, 2),
            SgiRequest {
                intid: 5,
                targets: VcpuSet::from_bits(0b11)
            }
        );
        let to_foreign = (5 << SGI1R_INTID_SHIFT) | 0b1100;
        assert!(from_sgi1r(to_foreign, 0, 2).targets.is_empty());
        let other_cluster = (1 << SGI1R_AFF1_SHIFT) | 0b1;
        assert!(from_sgi1r(other_cluster, 0, 2).targets.is_empty());
        let other_range = (1 << SGI1R_RS_SHIFT) | 0b1;
        assert!(from_sgi1r(other_range, 0, 2).targets.is_empty());
    }

    #[test]
    fn sgi1r_irm_goes_to_every_other_vcpu() {
        assert_eq!(from_sgi1r(SGI1R_IRM, 1, 4).targets.bits(), 0b1101);
    }

    #[test]
    fn sgir_filters_list_others_and_self() {
        let list = (3 << SGIR_TARGET_LIST_SHIFT) | 0xfc << SGIR_TARGET_LIST_SHIFT | 7;
        assert_eq!(
            from_sgir(list, 0, 2),
            SgiRequest {
                intid: 7,
                targets: VcpuSet::from_bits(0b11)
            }
        );
        assert_eq!(
            from_sgir(FILTER_OTHERS << SGIR_FILTER_SHIFT, 0, 3)
                .targets
                .bits(),
            0b110
        );
        assert_eq!(
            from_sgir(FILTER_SELF << SGIR_FILTER_SHIFT, 1, 3)
                .targets
                .bits(),
            0b010
        );
        assert!(from_sgir(3 << SGIR_FILTER_SHIFT, 1, 3).targets.is_empty());
    }
}
