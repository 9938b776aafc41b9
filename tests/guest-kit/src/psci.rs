//! PSCI calls (Arm DEN 0022, Power State Coordination Interface 1.1).
//!
//! [`Psci`] makes the calls over a [`Conduit`]. Each returns the raw x0 (a
//! test compares it with what the specification says), and [`decode`] turns
//! a raw result into a value or a typed [`PsciError`].

use core::fmt;

use crate::smccc::{Conduit, signed};

/// Function IDs (DEN 0022 §5.1). 64-bit variants where the call takes an
/// address or an MPIDR.
pub const PSCI_VERSION: u32 = 0x8400_0000;
pub const CPU_SUSPEND_64: u32 = 0xc400_0001;
pub const CPU_OFF: u32 = 0x8400_0002;
pub const CPU_ON_64: u32 = 0xc400_0003;
pub const AFFINITY_INFO_64: u32 = 0xc400_0004;
pub const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
pub const SYSTEM_OFF: u32 = 0x8400_0008;
pub const SYSTEM_RESET: u32 = 0x8400_0009;
pub const PSCI_FEATURES: u32 = 0x8400_000a;

/// PSCI 1.1, as `PSCI_VERSION` encodes it (major << 16 | minor).
pub const VERSION_1_1: u32 = 0x1_0001;

/// `MIGRATE_INFO_TYPE`: "Trusted OS is either not present or does not
/// require migration" (DEN 0022 §5.8.2).
pub const MIGRATE_NOT_REQUIRED: i32 = 2;

/// `AFFINITY_INFO` results (DEN 0022 §5.7.2).
pub const AFFINITY_ON: i32 = 0;
pub const AFFINITY_OFF: i32 = 1;
pub const AFFINITY_ON_PENDING: i32 = 2;

/// PSCI error codes (DEN 0022 §5.2.2), mapped to and from the spec's values
/// in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PsciError {
    NotSupported,
    InvalidParameters,
    Denied,
    AlreadyOn,
    OnPending,
    InternalFailure,
    NotPresent,
    Disabled,
    InvalidAddress,
    /// A negative value the specification does not define.
    Unknown(i32),
}

impl PsciError {
    /// The error a negative return value means.
    pub const fn from_code(code: i32) -> PsciError {
        match code {
            -1 => PsciError::NotSupported,
            -2 => PsciError::InvalidParameters,
            -3 => PsciError::Denied,
            -4 => PsciError::AlreadyOn,
            -5 => PsciError::OnPending,
            -6 => PsciError::InternalFailure,
            -7 => PsciError::NotPresent,
            -8 => PsciError::Disabled,
            -9 => PsciError::InvalidAddress,
            other => PsciError::Unknown(other),
        }
    }

    /// The value the specification gives this error.
    pub const fn code(self) -> i32 {
        match self {
            PsciError::NotSupported => -1,
            PsciError::InvalidParameters => -2,
            PsciError::Denied => -3,
            PsciError::AlreadyOn => -4,
            PsciError::OnPending => -5,
            PsciError::InternalFailure => -6,
            PsciError::NotPresent => -7,
            PsciError::Disabled => -8,
            PsciError::InvalidAddress => -9,
            PsciError::Unknown(code) => code,
        }
    }

    /// The specification's name.
    pub const fn name(self) -> &'static str {
        match self {
            PsciError::NotSupported => "NOT_SUPPORTED",
            PsciError::InvalidParameters => "INVALID_PARAMETERS",
            PsciError::Denied => "DENIED",
            PsciError::AlreadyOn => "ALREADY_ON",
            PsciError::OnPending => "ON_PENDING",
            PsciError::InternalFailure => "INTERNAL_FAILURE",
            PsciError::NotPresent => "NOT_PRESENT",
            PsciError::Disabled => "DISABLED",
            PsciError::InvalidAddress => "INVALID_ADDRESS",
            PsciError::Unknown(_) => "an undefined error",
        }
    }
}

impl fmt::Display for PsciError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

/// A raw result: a non-negative value (`SUCCESS` is 0), or an error.
pub fn decode(raw: u64) -> Result<u32, PsciError> {
    let code = signed(raw);
    u32::try_from(code).map_err(|_| PsciError::from_code(code))
}

/// A raw result, for messages: `0x10001`, or `ALREADY_ON (-4)`.
pub struct Raw(pub u64);

impl fmt::Display for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match decode(self.0) {
            Ok(value) => write!(f, "{value:#x}"),
            Err(error) => write!(f, "{error}"),
        }
    }
}

/// PSCI over one conduit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Psci {
    pub conduit: Conduit,
}

impl Psci {
    /// PSCI as the guest DTB's `/psci` node says: `method = "hvc"`.
    pub const HVC: Psci = Psci {
        conduit: Conduit::Hvc,
    };
    pub const SMC: Psci = Psci {
        conduit: Conduit::Smc,
    };
}

#[cfg(target_os = "none")]
mod target {
    use super::{
        AFFINITY_INFO_64, CPU_OFF, CPU_ON_64, CPU_SUSPEND_64, MIGRATE_INFO_TYPE, PSCI_FEATURES,
        PSCI_VERSION, Psci, SYSTEM_OFF, SYSTEM_RESET,
    };
    use crate::smccc::call;

    impl Psci {
        fn call(self, function: u32, arguments: [u64; 3]) -> u64 {
            call(self.conduit, function, arguments)[0]
        }

        /// `PSCI_VERSION`.
        pub fn version(self) -> u64 {
            self.call(PSCI_VERSION, [0; 3])
        }

        /// `PSCI_FEATURES(function)`.
        pub fn features(self, function: u32) -> u64 {
            self.call(PSCI_FEATURES, [u64::from(function), 0, 0])
        }

        /// `CPU_ON`: starts the vCPU `target` (an MPIDR) at `entry` with
        /// `context_id` in x0.
        pub fn cpu_on(self, target: u64, entry: u64, context_id: u64) -> u64 {
            self.call(CPU_ON_64, [target, entry, context_id])
        }

        /// `CPU_OFF`: returns only if it fails.
        pub fn cpu_off(self) -> u64 {
            self.call(CPU_OFF, [0; 3])
        }

        /// `AFFINITY_INFO(target, lowest_affinity_level)`.
        pub fn affinity_info(self, target: u64, level: u64) -> u64 {
            self.call(AFFINITY_INFO_64, [target, level, 0])
        }

        /// `CPU_SUSPEND(power_state, entry, context_id)`.
        pub fn cpu_suspend(self, power_state: u32, entry: u64, context_id: u64) -> u64 {
            self.call(CPU_SUSPEND_64, [u64::from(power_state), entry, context_id])
        }

        /// `MIGRATE_INFO_TYPE`.
        pub fn migrate_info_type(self) -> u64 {
            self.call(MIGRATE_INFO_TYPE, [0; 3])
        }

        /// `SYSTEM_OFF`. If it returns, says so and parks this vCPU.
        pub fn system_off(self) -> ! {
            let raw = self.call(SYSTEM_OFF, [0; 3]);
            crate::println!(
                "SYSTEM_OFF over {} returned {}: parking",
                self.conduit.name(),
                super::Raw(raw)
            );
            crate::cpu::park()
        }

        /// `SYSTEM_RESET`. If it returns, says so and parks this vCPU.
        pub fn system_reset(self) -> ! {
            let raw = self.call(SYSTEM_RESET, [0; 3]);
            crate::println!(
                "SYSTEM_RESET over {} returned {}: parking",
                self.conduit.name(),
                super::Raw(raw)
            );
            crate::cpu::park()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_defined_error_code_maps_both_ways() {
        for code in -9..=-1 {
            let error = PsciError::from_code(code);
            assert!(!matches!(error, PsciError::Unknown(_)), "{code} is defined");
            assert_eq!(error.code(), code);
        }
        assert_eq!(PsciError::from_code(-42), PsciError::Unknown(-42));
        assert_eq!(PsciError::Unknown(-42).code(), -42);
    }

    #[test]
    fn raw_results_decode_from_w0() {
        assert_eq!(decode(0), Ok(0));
        assert_eq!(decode(0x1_0001), Ok(VERSION_1_1));
        assert_eq!(decode(0xffff_fffc), Err(PsciError::AlreadyOn));
        assert_eq!(
            decode(0xffff_ffff_ffff_fffe),
            Err(PsciError::InvalidParameters)
        );
    }

    #[test]
    fn raw_results_print_as_values_or_error_names() {
        assert_eq!(Raw(0x1_0001).to_string(), "0x10001");
        assert_eq!(Raw(0xffff_ffff).to_string(), "NOT_SUPPORTED (-1)");
    }
}
