//! Exceptions taken to EL2: the saved register frame, the vector they came
//! through and the crash report printed for an unexpected one (its syndrome
//! decoded by [`crate::esr`]).

use core::fmt;

use crate::esr::Syndrome;

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
