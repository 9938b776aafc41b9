//! The EL2 controls that make this CPU run a guest: stage 2, traps, timer
//! access, identity registers; and the guest's EL1 state, reset at every
//! start. The policy they implement is in docs/partitions.md ("CPU features").

use core::arch::asm;

use aarch64_cpu::registers::{
    CNTV_CTL_EL0, CNTVOFF_EL2, ELR_EL1, ESR_EL1, FAR_EL1, HCR_EL2, ID_AA64ISAR1_EL1,
    ID_AA64MMFR0_EL1, ID_AA64MMFR1_EL1, ID_AA64PFR0_EL1, ID_AA64PFR1_EL1, MIDR_EL1, Readable,
    SCTLR_EL1, SPSR_EL1, VBAR_EL1, VTCR_EL2, VTTBR_EL2, Writeable,
};

use crate::config::guest_map::IPA_BITS;
use crate::guest::inject::{Injection, PstateFeatures};
use crate::guest::smccc::SpeculationState;

/// CPTR_EL2 (non-VHE, Arm ARM D19.2.30): RES1 bits [13:12], [9:0]
/// (TZ, bit 8, and TSM, bit 12, are among them: SVE and SME trap when
/// implemented); TFP (bit 10) clear: FP/SIMD is the guest's.
const CPTR_EL2_RES1_AND_TRAPS: u64 = 0x33ff;
/// CPTR_EL2.TTA: trace registers trap.
const CPTR_EL2_TTA: u64 = 1 << 20;
/// CPTR_EL2.TAM: activity monitors trap (only where FEAT_AMUv1 exists).
const CPTR_EL2_TAM: u64 = 1 << 30;
/// MDCR_EL2: HPMN [4:0] counters the guest owns; HPMD
/// (bit 17, FEAT_PMUv3p1) prohibits counting at EL2.
const MDCR_EL2_HPMD: u64 = 1 << 17;
const PMCR_EL0_N_SHIFT: u64 = 11;
const PMCR_EL0_N_MASK: u64 = 0x1f;
/// ID_AA64DFR0_EL1.PMUVer [11:8]: 4 is PMUv3p1.
const PMUVER_PMUV3P1: u64 = 4;
/// CNTHCTL_EL2 (non-VHE): EL1PCTEN (bit 0) lets EL1 read CNTPCT untrapped;
/// EL1PCEN (bit 1) clear traps the EL1 physical timer registers.
const CNTHCTL_EL1PCTEN: u64 = 1 << 0;
const CNTHCTL_EL1PCEN: u64 = 1 << 1;
/// VMPIDR_EL2 bit 31 is RES1.
const MPIDR_RES1: u64 = 1 << 31;
/// SCTLR_EL1 at a guest's start: its RES1 bits only (MMU and caches off).
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;
/// HCR_EL2.TIDCP (bit 20): implementation-defined system registers trap.
const HCR_EL2_TIDCP: u64 = 1 << 20;
/// HCR_EL2.TACR (bit 21): ACTLR_EL1 accesses trap.
const HCR_EL2_TACR: u64 = 1 << 21;
/// HCR_EL2.TERR (bit 36, FEAT_RAS): error-record registers trap.
const HCR_EL2_TERR: u64 = 1 << 36;
/// MPAM2_EL2.TRAPMPAM1EL1 (bit 48) and TRAPMPAM0EL1 (bit 49): a guest must
/// not choose another partition's cache and bandwidth partition.
const MPAM2_EL2_TRAPS: u64 = (1 << 48) | (1 << 49);
/// HCRX_EL2.MSCEn (bit 11, FEAT_MOPS): the memory copy and set
/// instructions (CPYF*, SET*) are allowed at EL1 and EL0. With it clear
/// they are UNDEFINED there, though the ID registers the guest reads
/// advertise them: Linux then sets HWCAP2_MOPS, glibc's memcpy uses them
/// and the first one kills init with SIGILL (seen with QEMU's `-cpu max`).
const HCRX_EL2_MSCEN: u64 = 1 << 11;
/// VTCR_EL2 bit 31 is RES1.
const VTCR_EL2_RES1: u64 = 1 << 31;
/// VTTBR_EL2.VMID, bits [55:48] (8-bit VMIDs).
const VTTBR_VMID_SHIFT: u64 = 48;

/// What the host core offers, read once.
pub fn speculation_state() -> SpeculationState {
    let csv2 = ID_AA64PFR0_EL1.get() >> 56 & 0xf;
    SpeculationState {
        csv2: u8::try_from(csv2).unwrap_or(0),
        ecbhb: ID_AA64MMFR1_EL1.get() >> 60 & 0xf != 0,
        in_order_core: crate::guest::smccc::is_in_order_core(MIDR_EL1.get()),
    }
}

fn pointer_authentication() -> bool {
    // APA [7:4], API [11:8], GPA [27:24], GPI [31:28].
    let isar1 = ID_AA64ISAR1_EL1.get();
    [4, 8, 24, 28].iter().any(|shift| isar1 >> shift & 0xf != 0)
}

/// VTCR_EL2 for a 39-bit IPA space with 4 KiB granules, walks starting at
/// level 1, and write-back inner-shareable tables.
fn vtcr() -> u64 {
    let parange = ID_AA64MMFR0_EL1.get() & 0xf;
    // PS cannot exceed 48 bits (0b101): Tessera's descriptors hold 48-bit addresses.
    let ps = parange.min(0b101);
    (VTCR_EL2::T0SZ.val(u64::from(64 - IPA_BITS))
        + VTCR_EL2::SL0.val(1)
        + VTCR_EL2::IRGN0::NormalWBRAWA
        + VTCR_EL2::ORGN0::NormalWBRAWA
        + VTCR_EL2::SH0::Inner
        + VTCR_EL2::TG0::Granule4KB
        + VTCR_EL2::PS.val(ps))
    .value
        | VTCR_EL2_RES1
}

/// Sets this CPU up to run vCPU `vcpu` of the partition whose stage-2 root
/// is `stage2_root` with `vmid` and whose virtual counter is the physical
/// one less `counter_offset`, and resets the guest's EL1 state.
pub fn prepare(
    stage2_root: u64,
    vmid: u16,
    vcpu: usize,
    pmu_el2_events: bool,
    counter_offset: u64,
) {
    VTCR_EL2.set(vtcr());
    VTTBR_EL2.set(stage2_root | (u64::from(vmid) << VTTBR_VMID_SHIFT));

    let mut hcr = HCR_EL2::RW::EL1IsAarch64
        + HCR_EL2::VM::Enable
        + HCR_EL2::SWIO::SET
        + HCR_EL2::FMO::EnableVirtualFIQ
        + HCR_EL2::IMO::EnableVirtualIRQ
        + HCR_EL2::AMO::SET
        + HCR_EL2::TSC::EnableTrapEl1SmcToEl2
        + HCR_EL2::TID3::SET;
    if pointer_authentication() {
        hcr += HCR_EL2::API::DisableTrapPointerAuthInstToEl2
            + HCR_EL2::APK::DisableTrapPointerAuthKeyRegsToEl2;
    }
    // Implementation-defined registers (on Cortex-A72: CPUECTLR, the L2
    // controls the cluster shares) and ACTLR_EL1 trap: a guest must not
    // reconfigure what other partitions' cores depend on. RAS error
    // records are shared too, where they exist.
    let mut hcr = hcr.value | HCR_EL2_TIDCP | HCR_EL2_TACR;
    if ID_AA64PFR0_EL1.get() >> 28 & 0xf != 0 {
        hcr |= HCR_EL2_TERR;
    }
    HCR_EL2.set(hcr);

    let amu = ID_AA64PFR0_EL1.get() >> 44 & 0xf != 0;
    let cptr = CPTR_EL2_RES1_AND_TRAPS | CPTR_EL2_TTA | if amu { CPTR_EL2_TAM } else { 0 };
    let pmcr: u64;
    let dfr0: u64;
    let mut cnthctl: u64;
    // SAFETY: reads of this CPU's PMU and debug ID registers and of CNTHCTL_EL2.
    unsafe {
        asm!("mrs {}, pmcr_el0", out(reg) pmcr, options(nomem, nostack, preserves_flags));
        asm!("mrs {}, id_aa64dfr0_el1", out(reg) dfr0, options(nomem, nostack, preserves_flags));
        asm!("mrs {}, cnthctl_el2", out(reg) cnthctl, options(nomem, nostack, preserves_flags));
    }
    let mut mdcr = (pmcr >> PMCR_EL0_N_SHIFT) & PMCR_EL0_N_MASK;
    let pmuver = dfr0 >> 8 & 0xf;
    if !pmu_el2_events && pmuver >= PMUVER_PMUV3P1 && pmuver != 0xf {
        mdcr |= MDCR_EL2_HPMD;
    }
    cnthctl = (cnthctl | CNTHCTL_EL1PCTEN) & !CNTHCTL_EL1PCEN;
    let vmpidr = MPIDR_RES1 | u64::try_from(vcpu).unwrap_or(0);
    // SAFETY: EL2 controls of this CPU, which runs nothing else; the ISB
    // makes them take effect before the guest runs.
    unsafe {
        asm!(
            "msr cptr_el2, {cptr}",
            "msr mdcr_el2, {mdcr}",
            "msr cnthctl_el2, {cnthctl}",
            "msr vpidr_el2, {midr}",
            "msr vmpidr_el2, {vmpidr}",
            "isb",
            cptr = in(reg) cptr,
            mdcr = in(reg) mdcr,
            cnthctl = in(reg) cnthctl,
            midr = in(reg) MIDR_EL1.get(),
            vmpidr = in(reg) vmpidr,
            options(nostack, preserves_flags)
        );
    }
    if ID_AA64PFR0_EL1.get() >> 40 & 0xf != 0 {
        // SAFETY: MPAM2_EL2 exists (ID_AA64PFR0_EL1.MPAM); trapping the
        // guest's MPAM registers affects only EL1/EL0 of this CPU.
        unsafe {
            asm!("msr S3_4_C10_C5_0, {}", in(reg) MPAM2_EL2_TRAPS, options(nostack, preserves_flags));
        }
    }
    // ID_AA64MMFR1_EL1.HCX [43:40]: HCRX_EL2 exists. Its reset value is
    // UNKNOWN, so it is always written: every extra control off, except
    // MOPS where the core has it (ID_AA64ISAR2_EL1.MOPS [19:16]).
    if ID_AA64MMFR1_EL1.get() >> 40 & 0xf != 0 {
        let isar2: u64;
        // SAFETY: reads an ID register (ID_AA64ISAR2_EL1, S3_0_C0_C6_2).
        unsafe {
            asm!("mrs {}, S3_0_C0_C6_2", out(reg) isar2, options(nomem, nostack, preserves_flags));
        }
        let hcrx = if isar2 >> 16 & 0xf != 0 {
            HCRX_EL2_MSCEN
        } else {
            0
        };
        // SAFETY: HCRX_EL2 (S3_4_C1_C2_2) exists (ID_AA64MMFR1_EL1.HCX); it
        // affects only EL1/EL0 of this CPU, which is not running yet.
        unsafe {
            asm!("msr S3_4_C1_C2_2, {}", in(reg) hcrx, options(nostack, preserves_flags));
        }
    }
    // SAFETY: ACTLR_EL2 = 0 leaves EL1 no access to the implementation-
    // defined controls it gates; Tessera does not use them at EL2.
    unsafe {
        asm!(
            "msr actlr_el2, xzr",
            "isb",
            options(nostack, preserves_flags)
        )
    };
    CNTVOFF_EL2.set(counter_offset);
    reset_el1();
}

/// The guest's EL1 (and EL0) system registers as at a CPU reset: MMU and
/// caches off, no vectors, timers and PMU counters off.
fn reset_el1() {
    // SAFETY: these registers only affect EL1/EL0 of this CPU, which is not
    // running; nothing of Tessera's depends on them.
    unsafe {
        asm!(
            "msr sctlr_el1, {sctlr}",
            "msr vbar_el1, xzr",
            "msr tcr_el1, xzr",
            "msr ttbr0_el1, xzr",
            "msr ttbr1_el1, xzr",
            "msr mair_el1, xzr",
            "msr amair_el1, xzr",
            "msr cpacr_el1, xzr",
            "msr contextidr_el1, xzr",
            "msr tpidr_el0, xzr",
            "msr tpidr_el1, xzr",
            "msr tpidrro_el0, xzr",
            "msr sp_el1, xzr",
            "msr elr_el1, xzr",
            "msr spsr_el1, xzr",
            "msr esr_el1, xzr",
            "msr far_el1, xzr",
            "msr afsr0_el1, xzr",
            "msr afsr1_el1, xzr",
            "msr par_el1, xzr",
            "msr mdscr_el1, xzr",
            "msr cntkctl_el1, xzr",
            "msr cntv_ctl_el0, xzr",
            "msr cntp_ctl_el0, xzr",
            "msr pmcr_el0, xzr",
            "msr pmcntenclr_el0, {all}",
            "msr pmintenclr_el1, {all}",
            "msr pmovsclr_el0, {all}",
            "msr pmuserenr_el0, xzr",
            "isb",
            sctlr = in(reg) SCTLR_EL1_RESET,
            all = in(reg) u64::from(u32::MAX),
            options(nostack, preserves_flags)
        );
    }
}

/// Invalidates every stage-1 and stage-2 TLB entry of the VMID in
/// VTTBR_EL2, on every CPU (a partition restart).
pub fn invalidate_guest_tlbs() {
    // SAFETY: TLB maintenance for the current VMID; it drops cached
    // translations only.
    unsafe {
        asm!(
            "dsb ishst",
            "tlbi vmalls12e1is",
            "dsb ish",
            "isb",
            options(nostack, preserves_flags)
        );
    }
}

/// Whether the guest's virtual timer asserts its interrupt: CNTV_CTL_EL0
/// ENABLE, ISTATUS and not IMASK (Arm ARM D12.8.10; at EL2 without VHE
/// the register is the guest's).
#[inline(always)]
pub fn virtual_timer_line() -> bool {
    let fields = CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::IMASK::SET + CNTV_CTL_EL0::ISTATUS::SET;
    let asserted = CNTV_CTL_EL0::ENABLE::SET + CNTV_CTL_EL0::ISTATUS::SET;
    CNTV_CTL_EL0.get() & fields.mask() == asserted.value
}

/// The guest's VBAR_EL1 (for injecting exceptions).
pub fn guest_vbar() -> u64 {
    VBAR_EL1.get()
}

/// The guest's SCTLR_EL1 (for injecting exceptions).
pub fn guest_sctlr() -> u64 {
    SCTLR_EL1.get()
}

/// Which PSTATE features exception entry must honour on this core.
pub fn pstate_features() -> PstateFeatures {
    PstateFeatures {
        pan: ID_AA64MMFR1_EL1.get() >> 20 & 0xf != 0,
        ssbs: ID_AA64PFR1_EL1.get() >> 4 & 0xf != 0,
        dit: ID_AA64PFR0_EL1.get() >> 48 & 0xf != 0,
    }
}

/// Writes the EL1 side of an injected exception.
pub fn apply_injection(injection: &Injection) {
    ELR_EL1.set(injection.elr_el1);
    SPSR_EL1.set(injection.spsr_el1);
    ESR_EL1.set(injection.esr_el1);
    if let Some(far) = injection.far_el1 {
        FAR_EL1.set(far);
    }
}

macro_rules! read_id_register {
    ($crm:literal, $op2:literal) => {{
        let value: u64;
        // SAFETY: reading a feature ID register has no side effects.
        unsafe {
            asm!(
                concat!("mrs {}, S3_0_C0_C", stringify!($crm), "_", stringify!($op2)),
                out(reg) value,
                options(nomem, nostack, preserves_flags)
            );
        }
        value
    }};
}

macro_rules! id_register_by_op2 {
    ($crm:literal, $op2:expr) => {
        match $op2 {
            0 => read_id_register!($crm, 0),
            1 => read_id_register!($crm, 1),
            2 => read_id_register!($crm, 2),
            3 => read_id_register!($crm, 3),
            4 => read_id_register!($crm, 4),
            5 => read_id_register!($crm, 5),
            6 => read_id_register!($crm, 6),
            _ => read_id_register!($crm, 7),
        }
    };
}

/// The host's value of the feature ID register (op0 3, op1 0, CRn 0, `crm`, `op2`).
pub fn host_id_register(crm: u8, op2: u8) -> u64 {
    match crm {
        1 => id_register_by_op2!(1, op2),
        2 => id_register_by_op2!(2, op2),
        3 => id_register_by_op2!(3, op2),
        4 => id_register_by_op2!(4, op2),
        5 => id_register_by_op2!(5, op2),
        6 => id_register_by_op2!(6, op2),
        _ => id_register_by_op2!(7, op2),
    }
}
