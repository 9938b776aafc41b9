//! Exceptions taken to EL2: the saved register frame, the ESR_EL2 decoding
//! (Arm ARM D17.2.37) and the crash report printed for an unexpected one.

use core::fmt;

/// Registers saved by the EL2 vectors, in the order `vectors.S` stores them.
#[derive(Debug, Clone, Default)]
#[repr(C)]
pub struct TrapFrame {
    /// x0 to x30.
    pub x: [u64; 31],
    /// The stack pointer before the exception.
    pub sp: u64,
    pub elr: u64,
    pub spsr: u64,
    pub esr: u64,
    pub far: u64,
}

/// Size of [`TrapFrame`] in bytes, as the assembly lays it out.
pub const TRAP_FRAME_SIZE: usize = core::mem::size_of::<TrapFrame>();

/// Which vector an exception came through (VBAR_EL2 offset / 0x200 and / 0x80).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u64)]
pub enum VectorKind {
    CurrentElSp0Sync = 0,
    CurrentElSp0Irq = 1,
    CurrentElSp0Fiq = 2,
    CurrentElSp0SError = 3,
    CurrentElSync = 4,
    CurrentElIrq = 5,
    CurrentElFiq = 6,
    CurrentElSError = 7,
    LowerEl64Sync = 8,
    LowerEl64Irq = 9,
    LowerEl64Fiq = 10,
    LowerEl64SError = 11,
    LowerEl32Sync = 12,
    LowerEl32Irq = 13,
    LowerEl32Fiq = 14,
    LowerEl32SError = 15,
}

impl VectorKind {
    pub fn from_index(index: u64) -> Option<VectorKind> {
        use VectorKind::*;
        const ALL: [VectorKind; 16] = [
            CurrentElSp0Sync,
            CurrentElSp0Irq,
            CurrentElSp0Fiq,
            CurrentElSp0SError,
            CurrentElSync,
            CurrentElIrq,
            CurrentElFiq,
            CurrentElSError,
            LowerEl64Sync,
            LowerEl64Irq,
            LowerEl64Fiq,
            LowerEl64SError,
            LowerEl32Sync,
            LowerEl32Irq,
            LowerEl32Fiq,
            LowerEl32SError,
        ];
        ALL.get(usize::try_from(index).ok()?).copied()
    }

    /// What the exception was. Tessera's code runs on SP_EL0, so its own
    /// exceptions come through the SP_EL0 entries; the SP_ELx entries are
    /// taken only inside an exception handler (which runs on SP_EL2).
    pub fn describe(self) -> &'static str {
        use VectorKind::*;
        match self {
            CurrentElSp0Sync => "synchronous exception at EL2",
            CurrentElSp0Irq => "IRQ at EL2",
            CurrentElSp0Fiq => "FIQ at EL2",
            CurrentElSp0SError => "SError at EL2",
            CurrentElSync => "synchronous exception at EL2 inside an exception handler",
            CurrentElIrq => "IRQ at EL2 inside an exception handler",
            CurrentElFiq => "FIQ at EL2 inside an exception handler",
            CurrentElSError => "SError at EL2 inside an exception handler",
            LowerEl64Sync => "synchronous exception from AArch64 EL1/EL0",
            LowerEl64Irq => "IRQ from AArch64 EL1/EL0",
            LowerEl64Fiq => "FIQ from AArch64 EL1/EL0",
            LowerEl64SError => "SError from AArch64 EL1/EL0",
            LowerEl32Sync => "synchronous exception from AArch32",
            LowerEl32Irq => "IRQ from AArch32",
            LowerEl32Fiq => "FIQ from AArch32",
            LowerEl32SError => "SError from AArch32",
        }
    }

    /// Whether ESR_EL2 and FAR_EL2 describe this exception (synchronous and SError only).
    pub fn has_syndrome(self) -> bool {
        use VectorKind::*;
        matches!(
            self,
            CurrentElSp0Sync
                | CurrentElSync
                | LowerEl64Sync
                | LowerEl32Sync
                | CurrentElSp0SError
                | CurrentElSError
                | LowerEl64SError
                | LowerEl32SError
        )
    }
}

/// ESR_EL2.EC field position.
const ESR_EC_SHIFT: u32 = 26;
const ESR_EC_MASK: u64 = 0x3f;
const ESR_ISS_MASK: u64 = 0x1ff_ffff;
/// Data and instruction abort ISS: fault status code bits [5:0].
const ISS_FSC_MASK: u64 = 0x3f;
/// Data abort ISS: WnR, the access was a write.
const ISS_WNR: u64 = 1 << 6;
/// Data and instruction abort ISS: FAR is not valid.
const ISS_FNV: u64 = 1 << 10;

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

/// A decoded ESR_EL2 value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Syndrome(pub u64);

impl Syndrome {
    pub fn class(self) -> u8 {
        // Masked to 6 bits, so the cast keeps every bit.
        ((self.0 >> ESR_EC_SHIFT) & ESR_EC_MASK) as u8
    }

    pub fn iss(self) -> u64 {
        self.0 & ESR_ISS_MASK
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
            let status = self.iss() & ISS_FSC_MASK;
            write!(f, ": {}", fault_status_name(status))?;
            // Codes whose low two bits give the table level.
            if matches!(status, 0b00_0000..=0b00_1111) {
                write!(f, ", level {}", status & 0b11)?;
            }
            if matches!(self.class(), ec::DATA_ABORT_LOWER | ec::DATA_ABORT_SAME) {
                f.write_str(if self.iss() & ISS_WNR != 0 {
                    ", write"
                } else {
                    ", read"
                })?;
            }
            if self.iss() & ISS_FNV != 0 {
                f.write_str(", FAR not valid")?;
            }
        }
        Ok(())
    }
}

/// Writes the crash report for an unexpected exception.
pub fn write_crash_report(
    out: &mut impl fmt::Write,
    cpu: usize,
    kind: VectorKind,
    frame: &TrapFrame,
) -> fmt::Result {
    writeln!(
        out,
        "*** TESSERA CRASH on CPU {cpu}: unexpected {} ***",
        kind.describe()
    )?;
    if kind.has_syndrome() {
        writeln!(out, "exception class: {}", Syndrome(frame.esr))?;
        writeln!(
            out,
            "ESR_EL2  {:#018x}  FAR_EL2  {:#018x}",
            frame.esr, frame.far
        )?;
    }
    writeln!(
        out,
        "ELR_EL2  {:#018x}  SPSR_EL2 {:#018x}  SP {:#018x}",
        frame.elr, frame.spsr, frame.sp
    )?;
    for (pair, chunk) in frame.x.chunks(2).enumerate() {
        let n = pair * 2;
        match chunk {
            [a, b] => writeln!(out, "x{n:<2} {a:#018x}  x{:<2} {b:#018x}", n + 1)?,
            [a] => writeln!(out, "x{n:<2} {a:#018x}")?,
            _ => {}
        }
    }
    Ok(())
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
    fn every_vector_index_decodes_and_others_do_not() {
        for index in 0..16 {
            assert_eq!(VectorKind::from_index(index).map(|k| k as u64), Some(index));
        }
        assert_eq!(VectorKind::from_index(16), None);
    }

    #[test]
    fn crash_report_names_cpu_class_and_registers() {
        let mut frame = TrapFrame {
            esr: 0x9600_0004,
            far: 0xdead_0000,
            elr: 0x4020_1234,
            ..Default::default()
        };
        frame.x[30] = 0x30;
        let mut out = String::new();
        write_crash_report(&mut out, 2, VectorKind::CurrentElSp0Sync, &frame).unwrap();
        assert!(out.starts_with(
            "*** TESSERA CRASH on CPU 2: unexpected synchronous exception at EL2 ***"
        ));
        assert!(out.contains("exception class: data abort without a change in exception level"));
        assert!(out.contains("FAR_EL2  0x00000000dead0000"));
        assert!(out.contains("ELR_EL2  0x0000000040201234"));
        assert!(
            out.contains("x30 0x0000000000000030"),
            "the odd last register gets its own line:\n{out}"
        );
    }

    #[test]
    fn frame_layout_matches_the_assembly() {
        assert_eq!(TRAP_FRAME_SIZE, 36 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, sp), 31 * 8);
        assert_eq!(core::mem::offset_of!(TrapFrame, far), 35 * 8);
    }
}
