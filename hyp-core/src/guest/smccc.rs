//! The SMCCC calls a guest makes (ARM DEN 0028: PSCI 1.1 of DEN 0022D, the
//! architecture calls, Tessera's vendor-hypervisor calls): function IDs
//! decoded into calls, and the answers that do not need the partition's
//! state. The runtime (`partition/calls.rs`) carries out the calls that do;
//! the constant ones are answered on the fast path from
//! [`CONSTANT_CALLS`].

pub use smccc::arch::{
    SMCCC_ARCH_FEATURES, SMCCC_ARCH_WORKAROUND_1, SMCCC_ARCH_WORKAROUND_2, SMCCC_ARCH_WORKAROUND_3,
    SMCCC_VERSION,
};
pub use smccc::psci::{
    PSCI_AFFINITY_INFO_32, PSCI_AFFINITY_INFO_64, PSCI_CPU_OFF, PSCI_CPU_ON_32, PSCI_CPU_ON_64,
    PSCI_CPU_SUSPEND_32, PSCI_CPU_SUSPEND_64, PSCI_FEATURES, PSCI_MIGRATE_INFO_TYPE,
    PSCI_SYSTEM_OFF, PSCI_SYSTEM_RESET, PSCI_VERSION,
};

/// Vendor-specific hypervisor service calls (DEN 0028 §6.2, owner 6): the
/// general queries at the top of the range.
pub const VENDOR_HYP_CALL_COUNT: u32 = 0x8600_ff00;
pub const VENDOR_HYP_CALL_UID: u32 = 0x8600_ff01;
pub const VENDOR_HYP_REVISION: u32 = 0x8600_ff03;
/// Tessera's null call (vendor-hypervisor function 1, 64-bit): does
/// nothing, returns SUCCESS. The cheapest round trip a guest can make.
/// Function 0 (`0x86000000`) is kept for the FEATURES bitmap.
pub const TESSERA_NULL: u32 = 0xc600_0001;
/// Functions in Tessera's vendor-hypervisor range (count, UID, revision,
/// null).
pub const VENDOR_CALLS: u64 = 4;

/// PSCI 1.1 and SMCCC 1.1, as `major << 16 | minor`.
pub const PSCI_VERSION_1_1: u64 = 0x1_0001;
pub const SMCCC_VERSION_1_1: u64 = 0x1_0001;
/// MIGRATE_INFO_TYPE: "Trusted OS is not present or does not require migration".
pub const MIGRATE_NOT_REQUIRED: u64 = 2;
/// Tessera's vendor-hypervisor UUID 6b1cb0b5-8b21-4e8f-9a5f-2f3ad5c0e1a7,
/// returned in w0-w3 with each word holding four bytes of the UUID in
/// little-endian order (as KVM's UID in `arm_smccc.h`).
pub const TESSERA_UUID: [u8; 16] = [
    0x6b, 0x1c, 0xb0, 0xb5, 0x8b, 0x21, 0x4e, 0x8f, 0x9a, 0x5f, 0x2f, 0x3a, 0xd5, 0xc0, 0xe1, 0xa7,
];
/// Tessera's vendor call revision (major, minor).
pub const VENDOR_HYP_REVISION_VALUE: (u64, u64) = (0, 1);

/// PSCI return codes (DEN 0022D §5.2.2), also the SMCCC ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum PsciReturn {
    Success = smccc::psci::error::SUCCESS,
    NotSupported = smccc::psci::error::NOT_SUPPORTED,
    InvalidParameters = smccc::psci::error::INVALID_PARAMETERS,
    Denied = smccc::psci::error::DENIED,
    AlreadyOn = smccc::psci::error::ALREADY_ON,
    OnPending = smccc::psci::error::ON_PENDING,
    InvalidAddress = smccc::psci::error::INVALID_ADDRESS,
}

/// SMCCC_ARCH_FEATURES answers for the workarounds (DEN 0028 §7.4-7.6; the
/// values KVM gives in arch/arm64/kvm/hypercalls.c).
pub const SMCCC_RET_NOT_REQUIRED: i64 = smccc::arch::error::NOT_REQUIRED as i64;
pub const SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED: i64 = 1;

impl PsciReturn {
    /// The value for x0: sign-extended to 64 bits.
    pub fn value(self) -> u64 {
        i64::from(self as i32) as u64
    }
}

/// AFFINITY_INFO answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum AffinityState {
    On = 0,
    Off = 1,
    OnPending = 2,
}

/// A call whose answer is one value in x0, the same for every partition
/// at any time: the assembly fast path (`arch/fast_calls.S`) answers these
/// from [`CONSTANT_CALLS`] without leaving the exception vector, and the
/// slow path decodes them to [`Call::Constant`] from the same table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct ConstantCall {
    /// The function ID (W0); 0 ends the table.
    pub function: u64,
    pub answer: u64,
}

/// The constant calls, the most frequent first, ended by function 0 (a
/// yielding call of the architecture range: never a fast call).
#[unsafe(no_mangle)]
pub static CONSTANT_CALLS: [ConstantCall; 8] = [
    constant(TESSERA_NULL, PsciReturn::Success as i64),
    constant(PSCI_VERSION, PSCI_VERSION_1_1 as i64),
    constant(SMCCC_VERSION, SMCCC_VERSION_1_1 as i64),
    // A standby or power-down request may return at once, as if woken
    // straight away (DEN 0022D §5.4): the core is the vCPU's anyway.
    constant(PSCI_CPU_SUSPEND_64, PsciReturn::Success as i64),
    constant(PSCI_CPU_SUSPEND_32, PsciReturn::Success as i64),
    constant(PSCI_MIGRATE_INFO_TYPE, MIGRATE_NOT_REQUIRED as i64),
    constant(VENDOR_HYP_CALL_COUNT, VENDOR_CALLS as i64),
    ConstantCall {
        function: 0,
        answer: 0,
    },
];

const fn constant(function: u32, answer: i64) -> ConstantCall {
    ConstantCall {
        function: function as u64,
        answer: answer as u64,
    }
}

/// The answer to `function` if it is a constant call.
pub fn constant_answer(function: u32) -> Option<u64> {
    CONSTANT_CALLS
        .iter()
        .find(|c| c.function == u64::from(function) && c.function != 0)
        .map(|c| c.answer)
}

/// SMCCC owning entity 6, the vendor-specific hypervisor service (DEN 0028
/// §6.2): function ID bits [29:24].
pub const OWNER_SHIFT: u32 = 24;
const OWNER_MASK: u32 = 0x3f;
pub const OWNER_VENDOR_HYPERVISOR: u32 = 6;
/// Function numbers 0xff00-0xffff of a range are its general queries
/// (count, UID, revision).
pub const GENERAL_QUERIES: u32 = 0xff00;
const FUNCTION_NUMBER_MASK: u32 = 0xffff;

/// A call in Tessera's own range that it does not implement: answered
/// NOT_SUPPORTED on the fast path, as on the slow one.
pub fn is_unknown_vendor_call(function: u32) -> bool {
    function >> OWNER_SHIFT & OWNER_MASK == OWNER_VENDOR_HYPERVISOR
        && function & FUNCTION_NUMBER_MASK < GENERAL_QUERIES
        && constant_answer(function).is_none()
}

/// A decoded guest call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// One of [`CONSTANT_CALLS`].
    Constant {
        answer: u64,
    },
    CpuOff,
    CpuOn {
        target: u64,
        entry: u64,
        context: u64,
    },
    AffinityInfo {
        target: u64,
        lowest_level: u64,
    },
    SystemOff,
    SystemReset,
    PsciFeatures {
        function: u32,
    },
    ArchFeatures {
        function: u32,
    },
    VendorUid,
    VendorRevision,
    Unknown {
        function: u32,
    },
}

impl Call {
    /// The call in x0-x3.
    pub fn from_registers(x: &[u64; 4]) -> Call {
        #[allow(clippy::cast_possible_truncation, reason = "SMCCC function IDs are W0")]
        let function = x[0] as u32;
        // A 32-bit call's arguments are the W registers.
        let argument = |i: usize| {
            if function & 0x4000_0000 == 0 {
                x[i] & u64::from(u32::MAX)
            } else {
                x[i]
            }
        };
        #[allow(clippy::cast_possible_truncation, reason = "function IDs are 32-bit")]
        let function_argument = argument(1) as u32;
        if let Some(answer) = constant_answer(function) {
            return Call::Constant { answer };
        }
        match function {
            PSCI_CPU_OFF => Call::CpuOff,
            PSCI_CPU_ON_32 | PSCI_CPU_ON_64 => Call::CpuOn {
                target: argument(1),
                entry: argument(2),
                context: argument(3),
            },
            PSCI_AFFINITY_INFO_32 | PSCI_AFFINITY_INFO_64 => Call::AffinityInfo {
                target: argument(1),
                lowest_level: argument(2),
            },
            PSCI_SYSTEM_OFF => Call::SystemOff,
            PSCI_SYSTEM_RESET => Call::SystemReset,
            PSCI_FEATURES => Call::PsciFeatures {
                function: function_argument,
            },
            SMCCC_ARCH_FEATURES => Call::ArchFeatures {
                function: function_argument,
            },
            VENDOR_HYP_CALL_UID => Call::VendorUid,
            VENDOR_HYP_REVISION => Call::VendorRevision,
            _ => Call::Unknown { function },
        }
    }
}

/// Whether PSCI_FEATURES reports `function` as implemented.
pub fn psci_implements(function: u32) -> bool {
    matches!(
        function,
        PSCI_VERSION
            | PSCI_CPU_SUSPEND_32
            | PSCI_CPU_SUSPEND_64
            | PSCI_CPU_OFF
            | PSCI_CPU_ON_32
            | PSCI_CPU_ON_64
            | PSCI_AFFINITY_INFO_32
            | PSCI_AFFINITY_INFO_64
            | PSCI_MIGRATE_INFO_TYPE
            | PSCI_SYSTEM_OFF
            | PSCI_SYSTEM_RESET
            | PSCI_FEATURES
            | SMCCC_VERSION
    )
}

/// What the host core says about the speculation issues the SMCCC
/// workarounds address (from its ID registers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpeculationState {
    /// ID_AA64PFR0_EL1.CSV2: branch targets cannot be trained across contexts.
    pub csv2: u8,
    /// ID_AA64MMFR1_EL1.ECBHB: branch history cannot be trained across contexts.
    pub ecbhb: bool,
    /// An in-order Arm core (Cortex-A35, A53, A55) that none of the three
    /// issues affects (Linux's safe lists in arch/arm64/kernel/proton-pack.c).
    pub in_order_core: bool,
}

/// MIDR_EL1 implementer and part numbers of the in-order Arm cores.
const MIDR_IMPLEMENTER_ARM: u64 = 0x41;
const IN_ORDER_ARM_PARTS: [u64; 3] = [0xd04, 0xd03, 0xd05];

/// Whether MIDR_EL1 `midr` names an in-order Arm core.
pub fn is_in_order_core(midr: u64) -> bool {
    let implementer = midr >> 24 & 0xff;
    let part = midr >> 4 & 0xfff;
    implementer == MIDR_IMPLEMENTER_ARM && IN_ORDER_ARM_PARTS.contains(&part)
}

/// ID_AA64PFR0_EL1.CSV2 value 3 (FEAT_CSV2_3): also immune to branch history injection.
const CSV2_3: u8 = 3;

impl SpeculationState {
    /// The SMCCC_ARCH_FEATURES answer for `function`, for SMCCC calls.
    /// Tessera mitigates none of the three itself, so an affected core gets
    /// NOT_SUPPORTED; "unaffected" only where the ID registers or the core
    /// type prove it. WORKAROUND_2 is never "supported" (that would make
    /// Linux call it on every kernel entry and exit); a core with SSBS still
    /// gets NOT_SUPPORTED, which tells the guest to use SSBS itself.
    pub fn arch_features(self, function: u32) -> u64 {
        let answer = match function {
            SMCCC_VERSION | SMCCC_ARCH_FEATURES => 0,
            SMCCC_ARCH_WORKAROUND_1 if self.csv2 >= 1 || self.in_order_core => {
                SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED
            }
            SMCCC_ARCH_WORKAROUND_2 if self.in_order_core => SMCCC_RET_NOT_REQUIRED,
            SMCCC_ARCH_WORKAROUND_3 if self.ecbhb || self.csv2 >= CSV2_3 || self.in_order_core => {
                SMCCC_ARCH_WORKAROUND_RET_UNAFFECTED
            }
            _ => i64::from(PsciReturn::NotSupported as i32),
        };
        answer as u64
    }
}

/// The UUID as the four words w0-w3.
pub fn uuid_words() -> [u64; 4] {
    let word = |i: usize| {
        let mut bytes = [0u8; 4];
        if let Some(chunk) = TESSERA_UUID.get(i * 4..i * 4 + 4) {
            bytes.copy_from_slice(chunk);
        }
        u64::from(u32::from_le_bytes(bytes))
    };
    [word(0), word(1), word(2), word(3)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_on_arguments_are_decoded_in_both_widths() {
        assert_eq!(
            Call::from_registers(&[
                u64::from(PSCI_CPU_ON_64),
                1,
                0x4000_1000,
                0xffff_0000_0000_0007
            ]),
            Call::CpuOn {
                target: 1,
                entry: 0x4000_1000,
                context: 0xffff_0000_0000_0007
            }
        );
        assert_eq!(
            Call::from_registers(&[
                u64::from(PSCI_CPU_ON_32),
                1,
                0xdead_0000_4000_1000,
                0xffff_0000_0000_0007
            ]),
            Call::CpuOn {
                target: 1,
                entry: 0x4000_1000,
                context: 7
            },
            "a 32-bit call uses only the W registers"
        );
    }

    #[test]
    fn unknown_functions_are_reported_as_such() {
        assert_eq!(
            Call::from_registers(&[0xc200_0042, 0, 0, 0]),
            Call::Unknown {
                function: 0xc200_0042
            }
        );
        assert_eq!(PsciReturn::NotSupported.value(), u64::MAX);
    }

    #[test]
    fn the_null_call_is_only_its_own_function_id() {
        assert_eq!(
            Call::from_registers(&[u64::from(TESSERA_NULL), 0, 0, 0]),
            Call::Constant { answer: 0 }
        );
        for other in [0x8600_0000, 0xc600_0000, 0x8600_0001, 0xc600_0002] {
            assert_eq!(
                Call::from_registers(&[other, 0, 0, 0]),
                Call::Unknown {
                    function: u32::try_from(other).unwrap()
                },
                "{other:#x}"
            );
        }
    }

    #[test]
    fn constant_calls_answer_what_the_specifications_say() {
        let answer = |function: u32| Call::from_registers(&[u64::from(function), 0, 0, 0]);
        assert_eq!(answer(PSCI_VERSION), Call::Constant { answer: 0x1_0001 });
        assert_eq!(answer(SMCCC_VERSION), Call::Constant { answer: 0x1_0001 });
        assert_eq!(answer(PSCI_CPU_SUSPEND_64), Call::Constant { answer: 0 });
        assert_eq!(answer(PSCI_MIGRATE_INFO_TYPE), Call::Constant { answer: 2 });
        assert_eq!(answer(VENDOR_HYP_CALL_COUNT), Call::Constant { answer: 4 });
        assert_eq!(
            CONSTANT_CALLS.last().map(|c| c.function),
            Some(0),
            "ended by 0"
        );
        assert_eq!(
            CONSTANT_CALLS.iter().filter(|c| c.function == 0).count(),
            1,
            "0 only at the end"
        );
    }

    #[test]
    fn unknown_vendor_calls_are_the_range_less_its_queries_and_known_calls() {
        assert!(is_unknown_vendor_call(0x8600_0000), "FEATURES: not yet");
        assert!(is_unknown_vendor_call(0xc600_0002));
        assert!(is_unknown_vendor_call(0x8600_fe00));
        assert!(!is_unknown_vendor_call(TESSERA_NULL));
        assert!(!is_unknown_vendor_call(VENDOR_HYP_CALL_UID));
        assert!(!is_unknown_vendor_call(VENDOR_HYP_REVISION));
        assert!(!is_unknown_vendor_call(0x8500_0000), "owner 5 is not ours");
        assert!(!is_unknown_vendor_call(PSCI_VERSION));
    }

    #[test]
    fn workaround_answers_follow_the_core() {
        let cortex_a72 = SpeculationState::default();
        let not_supported = PsciReturn::NotSupported.value();
        assert_eq!(
            cortex_a72.arch_features(SMCCC_ARCH_WORKAROUND_1),
            not_supported
        );
        assert_eq!(
            cortex_a72.arch_features(SMCCC_ARCH_WORKAROUND_2),
            not_supported
        );
        assert_eq!(
            cortex_a72.arch_features(SMCCC_ARCH_WORKAROUND_3),
            not_supported
        );
        let modern = SpeculationState {
            csv2: 3,
            ecbhb: true,
            in_order_core: false,
        };
        assert_eq!(modern.arch_features(SMCCC_ARCH_WORKAROUND_1), 1);
        assert_eq!(
            modern.arch_features(SMCCC_ARCH_WORKAROUND_2),
            not_supported,
            "nothing in the ID registers proves a core immune to speculative store bypass"
        );
        assert_eq!(modern.arch_features(SMCCC_ARCH_WORKAROUND_3), 1);
        let cortex_a53 = SpeculationState {
            in_order_core: is_in_order_core(0x410f_d034),
            ..SpeculationState::default()
        };
        assert!(cortex_a53.in_order_core);
        assert!(!is_in_order_core(0x410f_d083), "Cortex-A72 is out of order");
        assert_eq!(
            cortex_a53.arch_features(SMCCC_ARCH_WORKAROUND_2),
            (-2i64) as u64
        );
        for state in [cortex_a72, modern, cortex_a53] {
            assert_ne!(
                state.arch_features(SMCCC_ARCH_WORKAROUND_2),
                0,
                "WORKAROUND_2 is never reported as supported"
            );
        }
    }

    #[test]
    fn the_uid_words_match_the_uuid_byte_order() {
        assert_eq!(
            uuid_words(),
            [0xb5b0_1c6b, 0x8f4e_218b, 0x3a2f_5f9a, 0xa7e1_c0d5]
        );
    }
}
