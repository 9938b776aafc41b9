//! ESR_EL2, the syndrome of an exception taken to EL2 (Arm ARM D17.2.37):
//! the one place its exception classes and ISS fields are named. The exit
//! decoder (`guest::exit`), the crash report and the assembly fast path
//! (through the constants below) all read it through this module.

use core::fmt;

/// ESR_EL2.EC, the exception class: bits [31:26].
pub const EC_SHIFT: u32 = 26;
const EC_MASK: u64 = 0x3f;
/// ESR_EL2.IL: the trapped instruction was 32 bits long (else 16).
const IL: u64 = 1 << 25;
/// ESR_EL2.ISS: bits [24:0].
const ISS_MASK: u64 = 0x1ff_ffff;

/// ISS of an HVC or SMC: the instruction's 16-bit immediate.
pub const ISS_CALL_IMMEDIATE_MASK: u64 = 0xffff;

/// Data and instruction abort ISS: the fault status code, bits [5:0].
const ISS_FSC_MASK: u64 = 0x3f;
/// Fault status code 0b0001LL: translation fault at level LL.
const FSC_TRANSLATION_FAULT: u64 = 0b00_0100;
/// Data abort ISS: WnR, the access was a write.
const ISS_WNR: u64 = 1 << 6;
/// Data abort ISS: S1PTW, the fault came from the stage-1 table walk.
const ISS_S1PTW: u64 = 1 << 7;
/// Data and instruction abort ISS: FnV, FAR is not valid.
const ISS_FNV: u64 = 1 << 10;
/// Data abort ISS: SF, the load is into a 64-bit register.
const ISS_SF: u64 = 1 << 15;
/// Data abort ISS: SRT, the transfer register, bits [20:16].
const ISS_SRT_SHIFT: u32 = 16;
/// Data abort ISS: SSE, the load sign-extends.
const ISS_SSE: u64 = 1 << 21;
/// Data abort ISS: SAS, log2 of the access size, bits [23:22].
const ISS_SAS_SHIFT: u32 = 22;
/// Data abort ISS: ISV, bits [23:14] describe the access (a single
/// load or store of a general-purpose register).
const ISS_ISV: u64 = 1 << 24;

/// HPFAR_EL2.FIPA holds IPA[51:12] in bits [43:4].
const HPFAR_FIPA_SHIFT: u32 = 4;
const HPFAR_FIPA_MASK: u64 = (1 << 40) - 1;
/// The page offset FAR_EL2 adds to HPFAR_EL2's page.
const PAGE_OFFSET_MASK: u64 = 0xfff;

/// Exception classes (ESR_ELx.EC) Tessera names.
pub mod ec {
    pub const UNKNOWN: u8 = 0x00;
    pub const WFX: u8 = 0x01;
    pub const MCR_MRC_CP15: u8 = 0x03;
    pub const SIMD_FP: u8 = 0x07;
    pub const ILLEGAL_EXECUTION_STATE: u8 = 0x0e;
    pub const SVC64: u8 = 0x15;
    pub const HVC64: u8 = 0x16;
    pub const SMC64: u8 = 0x17;
    pub const SYSREG: u8 = 0x18;
    pub const SVE: u8 = 0x19;
    pub const PAC_FAIL: u8 = 0x1c;
    pub const INSTRUCTION_ABORT_LOWER: u8 = 0x20;
    pub const INSTRUCTION_ABORT_SAME: u8 = 0x21;
    pub const PC_ALIGNMENT: u8 = 0x22;
    pub const DATA_ABORT_LOWER: u8 = 0x24;
    pub const DATA_ABORT_SAME: u8 = 0x25;
    pub const SP_ALIGNMENT: u8 = 0x26;
    pub const FP_EXCEPTION64: u8 = 0x2c;
    pub const SERROR: u8 = 0x2f;
    pub const BREAKPOINT_LOWER: u8 = 0x30;
    pub const BREAKPOINT_SAME: u8 = 0x31;
    pub const SOFTWARE_STEP_LOWER: u8 = 0x32;
    pub const SOFTWARE_STEP_SAME: u8 = 0x33;
    pub const WATCHPOINT_LOWER: u8 = 0x34;
    pub const WATCHPOINT_SAME: u8 = 0x35;
    pub const BRK64: u8 = 0x3c;
}

/// The exception class's name as the Arm ARM gives it.
pub fn exception_class_name(class: u8) -> &'static str {
    match class {
        ec::UNKNOWN => "unknown reason",
        ec::WFX => "trapped WFI or WFE",
        ec::MCR_MRC_CP15 => "trapped AArch32 MCR or MRC (coproc 0b1111)",
        ec::SIMD_FP => "access to SVE, Advanced SIMD or floating point",
        ec::ILLEGAL_EXECUTION_STATE => "illegal execution state",
        ec::SVC64 => "SVC from AArch64",
        ec::HVC64 => "HVC from AArch64",
        ec::SMC64 => "SMC from AArch64",
        ec::SYSREG => "trapped MSR, MRS or system instruction",
        ec::SVE => "access to SVE",
        ec::PAC_FAIL => "pointer authentication failure",
        ec::INSTRUCTION_ABORT_LOWER => "instruction abort from a lower exception level",
        ec::INSTRUCTION_ABORT_SAME => "instruction abort without a change in exception level",
        ec::PC_ALIGNMENT => "PC alignment fault",
        ec::DATA_ABORT_LOWER => "data abort from a lower exception level",
        ec::DATA_ABORT_SAME => "data abort without a change in exception level",
        ec::SP_ALIGNMENT => "SP alignment fault",
        ec::FP_EXCEPTION64 => "trapped floating-point exception from AArch64",
        ec::SERROR => "SError interrupt",
        ec::BREAKPOINT_LOWER => "breakpoint from a lower exception level",
        ec::BREAKPOINT_SAME => "breakpoint without a change in exception level",
        ec::SOFTWARE_STEP_LOWER => "software step from a lower exception level",
        ec::SOFTWARE_STEP_SAME => "software step without a change in exception level",
        ec::WATCHPOINT_LOWER => "watchpoint from a lower exception level",
        ec::WATCHPOINT_SAME => "watchpoint without a change in exception level",
        ec::BRK64 => "BRK instruction from AArch64",
        _ => "reserved or unrecognised exception class",
    }
}

/// Fault status codes (DFSC/IFSC) of data and instruction aborts.
pub fn fault_status_name(code: u64) -> &'static str {
    match code {
        0b00_0000..=0b00_0011 => "address size fault",
        0b00_0100..=0b00_0111 => "translation fault",
        0b00_1001..=0b00_1011 => "access flag fault",
        0b00_1101..=0b00_1111 => "permission fault",
        0b01_0000 => "synchronous external abort",
        0b01_0001 => "synchronous tag check fault",
        0b01_0100..=0b01_0111 => "synchronous external abort on translation table walk",
        0b10_0001 => "alignment fault",
        0b11_0000 => "TLB conflict abort",
        _ => "other fault",
    }
}

/// An ESR_EL2 value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syndrome(pub u64);

#[allow(
    clippy::cast_possible_truncation,
    reason = "each field is masked to its width first"
)]
impl Syndrome {
    /// The exception class ([`ec`]).
    pub fn class(self) -> u8 {
        // Masked to 6 bits, so the cast keeps every bit.
        ((self.0 >> EC_SHIFT) & EC_MASK) as u8
    }

    pub fn iss(self) -> u64 {
        self.0 & ISS_MASK
    }

    /// The length in bytes of the instruction that trapped.
    pub fn instruction_length(self) -> u64 {
        if self.0 & IL != 0 { 4 } else { 2 }
    }

    /// An HVC's or SMC's immediate.
    pub fn call_immediate(self) -> u16 {
        // Masked to 16 bits.
        (self.0 & ISS_CALL_IMMEDIATE_MASK) as u16
    }

    /// An abort's fault status code.
    pub fn fault_status(self) -> u64 {
        self.0 & ISS_FSC_MASK
    }

    /// An abort for want of a translation (not a permission, alignment
    /// or external fault), in the faulting access itself rather than the
    /// guest's own stage-1 table walk: what an emulated device causes.
    pub fn is_translation_fault(self) -> bool {
        self.fault_status() & !0b11 == FSC_TRANSLATION_FAULT && self.0 & ISS_S1PTW == 0
    }

    /// A data abort's WnR: the access was a write.
    pub fn is_write(self) -> bool {
        self.0 & ISS_WNR != 0
    }

    /// A data abort's ISV: the syndrome describes the access.
    pub fn describes_access(self) -> bool {
        self.0 & ISS_ISV != 0
    }

    /// A data abort's SAS: log2 of the access size in bytes.
    pub fn access_size_log2(self) -> u8 {
        ((self.0 >> ISS_SAS_SHIFT) & 0b11) as u8
    }

    /// A data abort's SRT: the transfer register (31 is XZR).
    pub fn transfer_register(self) -> u8 {
        ((self.0 >> ISS_SRT_SHIFT) & 0x1f) as u8
    }

    /// A data abort's SSE: the load sign-extends.
    pub fn sign_extends(self) -> bool {
        self.0 & ISS_SSE != 0
    }

    /// A data abort's SF: the load fills a 64-bit register.
    pub fn sixty_four_bit_register(self) -> bool {
        self.0 & ISS_SF != 0
    }

    /// An abort's FnV: FAR_EL2 does not hold the faulting address.
    pub fn far_not_valid(self) -> bool {
        self.0 & ISS_FNV != 0
    }

    /// A trapped MSR/MRS's ISS field of `bits` bits at `shift`.
    pub fn system_register_field(self, shift: u32, bits: u32) -> u8 {
        ((self.0 >> shift) & ((1 << bits) - 1)) as u8
    }

    fn is_abort(self) -> bool {
        matches!(
            self.class(),
            ec::DATA_ABORT_LOWER
                | ec::DATA_ABORT_SAME
                | ec::INSTRUCTION_ABORT_LOWER
                | ec::INSTRUCTION_ABORT_SAME
        )
    }
}

/// The guest physical address of a stage-2 abort: HPFAR_EL2's page, FAR_EL2's
/// offset in it.
pub fn fault_ipa(hpfar: u64, far: u64) -> u64 {
    (((hpfar >> HPFAR_FIPA_SHIFT) & HPFAR_FIPA_MASK) << 12) | (far & PAGE_OFFSET_MASK)
}

impl fmt::Display for Syndrome {
    /// "data abort without a change in exception level (EC 0x25): translation fault, level 0, read"
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (EC {:#04x})",
            exception_class_name(self.class()),
            self.class()
        )?;
        if self.is_abort() {
            let status = self.fault_status();
            write!(f, ": {}", fault_status_name(status))?;
            // Codes whose low two bits give the table level.
            if matches!(status, 0b00_0000..=0b00_1111) {
                write!(f, ", level {}", status & 0b11)?;
            }
            if matches!(self.class(), ec::DATA_ABORT_LOWER | ec::DATA_ABORT_SAME) {
                f.write_str(if self.is_write() { ", write" } else { ", read" })?;
            }
            if self.far_not_valid() {
                f.write_str(", FAR not valid")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_abort_syndrome_is_decoded_by_name() {
        // EC 0x25, IL, DFSC 0b000100 (translation fault level 0), read.
        let esr = (0x25 << 26) | (1 << 25) | 0b000100;
        assert_eq!(
            Syndrome(esr).to_string(),
            "data abort without a change in exception level (EC 0x25): translation fault, level 0, read"
        );
        let write_perm = (0x24 << 26) | (1 << 6) | 0b001111;
        assert_eq!(
            Syndrome(write_perm).to_string(),
            "data abort from a lower exception level (EC 0x24): permission fault, level 3, write"
        );
    }

    #[test]
    fn the_ipa_combines_hpfar_and_the_page_offset_of_far() {
        assert_eq!(
            fault_ipa(0x0900_0000 >> 8, 0xffff_0000_1234_5018),
            0x0900_0018
        );
    }
}
