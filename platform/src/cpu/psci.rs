//! Calls into the firmware's PSCI (Arm DEN 0022) over SMC: the only conduit
//! that reaches firmware from EL2.

use smccc::Smc;
use smccc::psci;

pub use smccc::psci::error::Error as PsciError;

/// Starts the CPU with affinity `mpidr` at physical address `entry`, with
/// `context` in its x0.
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), PsciError> {
    psci::cpu_on::<Smc>(mpidr, entry, context)
}

/// Powers the machine off. Returns only if the firmware refuses.
pub fn system_off() -> Result<(), PsciError> {
    psci::system_off::<Smc>()
}

/// Resets the machine. Returns only if the firmware refuses.
pub fn system_reset() -> Result<(), PsciError> {
    psci::system_reset::<Smc>()
}

/// The PSCI version as (major, minor).
pub fn version() -> Option<(u16, u16)> {
    psci::version::<Smc>().ok().map(|v| (v.major, v.minor))
}

/// The error's name as the PSCI specification spells it (DEN 0022, §5.2.2).
pub fn error_name(error: &PsciError) -> &'static str {
    match error {
        PsciError::NotSupported => "NOT_SUPPORTED",
        PsciError::InvalidParameters => "INVALID_PARAMETERS",
        PsciError::Denied => "DENIED",
        PsciError::AlreadyOn => "ALREADY_ON",
        PsciError::OnPending => "ON_PENDING",
        PsciError::InternalFailure => "INTERNAL_FAILURE",
        PsciError::NotPresent => "NOT_PRESENT",
        PsciError::Disabled => "DISABLED",
        PsciError::InvalidAddress => "INVALID_ADDRESS",
        PsciError::Unknown(_) => "an unknown error code",
    }
}
