//! EL1 exceptions: the ones a test expects, and the ones that fail it.
//!
//! A test that expects an exception (a data abort from a probe, an `SMC` the
//! platform does not implement) runs the instruction inside [`catch`]. The
//! vectors record `ESR_EL1` and `FAR_EL1`, step over the faulting
//! instruction (`ELR_EL1 += 4`) and return, and [`catch`] hands the record
//! to the test. An IRQ goes to [`crate::gic::handle_irq`] once this vCPU's
//! GIC interface is set up. Any other exception is reported on the console (its class,
//! ESR, FAR and ELR), fails the test run ([`crate::report`]) and powers the
//! partition off.

use core::fmt;

/// The exception class, `ESR_EL1.EC` (Arm ARM D23.2.41, bits [31:26]).
pub fn exception_class(esr: u64) -> u8 {
    u8::try_from((esr >> 26) & 0x3f).unwrap_or(0)
}

/// Exception classes the kit names.
pub const EC_UNKNOWN: u8 = 0x00;
pub const EC_WFX: u8 = 0x01;
pub const EC_FP_ACCESS: u8 = 0x07;
pub const EC_ILLEGAL_STATE: u8 = 0x0e;
pub const EC_SVC64: u8 = 0x15;
pub const EC_HVC64: u8 = 0x16;
pub const EC_SMC64: u8 = 0x17;
pub const EC_SYSREG: u8 = 0x18;
pub const EC_INSTRUCTION_ABORT_LOWER: u8 = 0x20;
pub const EC_INSTRUCTION_ABORT: u8 = 0x21;
pub const EC_PC_ALIGNMENT: u8 = 0x22;
pub const EC_DATA_ABORT_LOWER: u8 = 0x24;
pub const EC_DATA_ABORT: u8 = 0x25;
pub const EC_SP_ALIGNMENT: u8 = 0x26;
pub const EC_SERROR: u8 = 0x2f;
pub const EC_BRK64: u8 = 0x3c;

/// What an exception class means, for reports.
pub fn class_name(ec: u8) -> &'static str {
    match ec {
        EC_UNKNOWN => "unknown reason (undefined instruction)",
        EC_WFX => "trapped WFI/WFE",
        EC_FP_ACCESS => "FP/SIMD access",
        EC_ILLEGAL_STATE => "illegal execution state",
        EC_SVC64 => "SVC",
        EC_HVC64 => "HVC",
        EC_SMC64 => "SMC",
        EC_SYSREG => "trapped system register access",
        EC_INSTRUCTION_ABORT_LOWER => "instruction abort from a lower EL",
        EC_INSTRUCTION_ABORT => "instruction abort",
        EC_PC_ALIGNMENT => "PC alignment fault",
        EC_DATA_ABORT_LOWER => "data abort from a lower EL",
        EC_DATA_ABORT => "data abort",
        EC_SP_ALIGNMENT => "SP alignment fault",
        EC_SERROR => "SError",
        EC_BRK64 => "BRK",
        _ => "other",
    }
}

/// `ESR_EL1.ISS.FnV` for data aborts (bit 10): FAR is not valid.
const ESR_DABT_FNV: u64 = 1 << 10;
/// `ESR_EL1.ISS.EA` for data aborts (bit 9): an external abort.
const ESR_DABT_EA: u64 = 1 << 9;
/// `ESR_EL1.ISS.DFSC` (bits [5:0]).
const ESR_DABT_DFSC_MASK: u64 = 0x3f;

/// A synchronous exception that a [`catch`] window recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trap {
    pub esr: u64,
    pub far: u64,
}

impl Trap {
    pub fn class(&self) -> u8 {
        exception_class(self.esr)
    }

    /// A data abort taken at EL1 (what a guest sees for an access Tessera
    /// refuses: an injected synchronous external abort).
    pub fn is_data_abort(&self) -> bool {
        self.class() == EC_DATA_ABORT
    }

    /// An instruction abort taken at EL1 (a fetch Tessera refuses).
    pub fn is_instruction_abort(&self) -> bool {
        self.class() == EC_INSTRUCTION_ABORT
    }

    /// For a data abort: whether FAR holds the faulting address.
    pub fn far_valid(&self) -> bool {
        self.is_data_abort() && self.esr & ESR_DABT_FNV == 0
    }

    /// For a data abort: whether it is an external abort (`ISS.EA`).
    pub fn external(&self) -> bool {
        self.is_data_abort() && self.esr & ESR_DABT_EA != 0
    }

    /// For a data abort: the fault status code (`ISS.DFSC`).
    pub fn fault_status(&self) -> u8 {
        u8::try_from(self.esr & ESR_DABT_DFSC_MASK).unwrap_or(0)
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (EC {:#04x}), ESR {:#x}, FAR {:#x}",
            class_name(self.class()),
            self.class(),
            self.esr,
            self.far
        )
    }
}

/// The registers the vectors save, in the order `vectors` stores them.
#[repr(C)]
#[derive(Debug)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    _padding: u64,
}

/// Bytes of [`Frame`] on the stack (a multiple of 16, as SP must stay).
pub const FRAME_SIZE: usize = 34 * 8;

/// Which of the 16 vector entries was taken: `kind / 4` is the source
/// (current EL with SP_EL0, current EL with SP_ELx, lower EL AArch64, lower
/// EL AArch32), `kind % 4` the type (synchronous, IRQ, FIQ, SError).
pub fn vector_name(kind: u64) -> &'static str {
    match kind % 4 {
        0 => "synchronous exception",
        1 => "IRQ",
        2 => "FIQ",
        _ => "SError",
    }
}

#[cfg(target_os = "none")]
pub use self::target::*;

#[cfg(target_os = "none")]
mod target {
    use core::arch::{asm, global_asm};
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering, compiler_fence};

    use super::{FRAME_SIZE, Frame, Trap, class_name, exception_class, vector_name};
    use crate::{MAX_VCPUS, cpu, println, report};

    // The vector table (Arm ARM D1.3.1): 16 entries of 0x80 bytes. Each saves
    // x0 and x1, puts its index in x1 and joins the common path, which saves
    // the rest of the frame, calls `kit_exception(frame, kind)` and restores
    // the (possibly changed) frame. The guest runs at EL1h, so exceptions use
    // the current stack.
    global_asm!(
        r#"
.macro kit_vector kind
    .balign 0x80
    sub sp, sp, #{frame_size}
    stp x0, x1, [sp, #0]
    mov x1, #\kind
    b __kit_exception_common
.endm

.section .text.vectors, "ax"
.balign 2048
.global __kit_vectors
__kit_vectors:
    kit_vector 0
    kit_vector 1
    kit_vector 2
    kit_vector 3
    kit_vector 4
    kit_vector 5
    kit_vector 6
    kit_vector 7
    kit_vector 8
    kit_vector 9
    kit_vector 10
    kit_vector 11
    kit_vector 12
    kit_vector 13
    kit_vector 14
    kit_vector 15

__kit_exception_common:
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    stp x6, x7, [sp, #48]
    stp x8, x9, [sp, #64]
    stp x10, x11, [sp, #80]
    stp x12, x13, [sp, #96]
    stp x14, x15, [sp, #112]
    stp x16, x17, [sp, #128]
    stp x18, x19, [sp, #144]
    stp x20, x21, [sp, #160]
    stp x22, x23, [sp, #176]
    stp x24, x25, [sp, #192]
    stp x26, x27, [sp, #208]
    stp x28, x29, [sp, #224]
    mrs x2, elr_el1
    mrs x3, spsr_el1
    stp x30, x2, [sp, #240]
    str x3, [sp, #256]
    mov x0, sp
    bl kit_exception
    ldr x3, [sp, #256]
    ldp x30, x2, [sp, #240]
    msr elr_el1, x2
    msr spsr_el1, x3
    ldp x28, x29, [sp, #224]
    ldp x26, x27, [sp, #208]
    ldp x24, x25, [sp, #192]
    ldp x22, x23, [sp, #176]
    ldp x20, x21, [sp, #160]
    ldp x18, x19, [sp, #144]
    ldp x16, x17, [sp, #128]
    ldp x14, x15, [sp, #112]
    ldp x12, x13, [sp, #96]
    ldp x10, x11, [sp, #80]
    ldp x8, x9, [sp, #64]
    ldp x6, x7, [sp, #48]
    ldp x4, x5, [sp, #32]
    ldp x2, x3, [sp, #16]
    ldp x0, x1, [sp, #0]
    add sp, sp, #{frame_size}
    eret
"#,
        frame_size = const FRAME_SIZE,
    );

    /// x30, where `blr` leaves its return address.
    const LINK_REGISTER: usize = 30;
    /// SPSR_EL1.BTYPE (bits 11:10, FEAT_BTI): the branch type of the
    /// exception's source.
    const SPSR_BTYPE: u64 = 0b11 << 10;

    /// The vector entry of an IRQ taken at EL1 on SP_EL1 (the guest runs
    /// at EL1h): handed to [`crate::gic::handle_irq`] once the GIC is set up.
    const VECTOR_CURRENT_SPX_IRQ: u64 = 5;

    /// The state of one vCPU's [`catch`] window.
    struct Expectation {
        armed: AtomicBool,
        /// Resume at x30 (after a `blr`) rather than after the instruction.
        resume_at_link: AtomicBool,
        taken: AtomicBool,
        esr: AtomicU64,
        far: AtomicU64,
    }

    impl Expectation {
        const fn new() -> Expectation {
            Expectation {
                armed: AtomicBool::new(false),
                resume_at_link: AtomicBool::new(false),
                taken: AtomicBool::new(false),
                esr: AtomicU64::new(0),
                far: AtomicU64::new(0),
            }
        }
    }

    /// One per vCPU, indexed by [`cpu::index`]. Only loads and stores: no
    /// read-modify-write (see the crate documentation).
    static EXPECTATIONS: [Expectation; MAX_VCPUS] = [const { Expectation::new() }; MAX_VCPUS];

    fn expectation() -> &'static Expectation {
        &EXPECTATIONS[cpu::index() % MAX_VCPUS]
    }

    fn esr_el1() -> u64 {
        let esr: u64;
        // SAFETY: reading ESR_EL1 has no side effect.
        unsafe { asm!("mrs {}, esr_el1", out(reg) esr, options(nomem, nostack, preserves_flags)) };
        esr
    }

    fn far_el1() -> u64 {
        let far: u64;
        // SAFETY: reading FAR_EL1 has no side effect.
        unsafe { asm!("mrs {}, far_el1", out(reg) far, options(nomem, nostack, preserves_flags)) };
        far
    }

    /// Runs `f` with this vCPU's expected-exception window open: a
    /// synchronous exception inside `f` is recorded, its instruction
    /// skipped, and `f` goes on. Returns `f`'s result and the last exception
    /// taken, if any.
    ///
    /// The faulting instruction must be a 4-byte A64 instruction whose
    /// skipping leaves `f` consistent (an `ldr` into a register that holds a
    /// default, an `str`, an `hvc` or `smc`): use it around one inline
    /// `asm!` instruction, as [`crate::probe`] and [`crate::smccc::try_call`] do.
    pub fn catch<R>(f: impl FnOnce() -> R) -> (R, Option<Trap>) {
        catch_with(f, false)
    }

    /// As [`catch`], around one `blr` to an address whose fetch should
    /// fault: whatever the exception, execution resumes after the `blr`
    /// (at the link register).
    pub fn catch_branch<R>(f: impl FnOnce() -> R) -> (R, Option<Trap>) {
        catch_with(f, true)
    }

    fn catch_with<R>(f: impl FnOnce() -> R, resume_at_link: bool) -> (R, Option<Trap>) {
        let expectation = expectation();
        expectation
            .resume_at_link
            .store(resume_at_link, Ordering::SeqCst);
        expectation.taken.store(false, Ordering::SeqCst);
        expectation.armed.store(true, Ordering::SeqCst);
        compiler_fence(Ordering::SeqCst);
        let result = f();
        compiler_fence(Ordering::SeqCst);
        expectation.armed.store(false, Ordering::SeqCst);
        let trap = expectation.taken.load(Ordering::SeqCst).then(|| Trap {
            esr: expectation.esr.load(Ordering::SeqCst),
            far: expectation.far.load(Ordering::SeqCst),
        });
        (result, trap)
    }

    /// Called by the vectors with the saved frame.
    #[unsafe(no_mangle)]
    extern "C" fn kit_exception(frame: &mut Frame, kind: u64) {
        let esr = esr_el1();
        let far = far_el1();
        let synchronous = kind.is_multiple_of(4);
        let expectation = expectation();
        if synchronous && expectation.armed.load(Ordering::SeqCst) {
            expectation.esr.store(esr, Ordering::SeqCst);
            expectation.far.store(far, Ordering::SeqCst);
            expectation.taken.store(true, Ordering::SeqCst);
            if expectation.resume_at_link.load(Ordering::SeqCst) {
                frame.elr = frame.x[LINK_REGISTER];
                // The `blr` set BTYPE; the return to after it is no branch.
                frame.spsr &= !SPSR_BTYPE;
            } else {
                frame.elr = frame.elr.wrapping_add(4);
            }
            return;
        }
        if kind == VECTOR_CURRENT_SPX_IRQ && crate::gic::handle_irq() {
            return;
        }
        let ec = exception_class(esr);
        println!(
            "unexpected {} on vCPU {}: {} (EC {:#04x}), ESR {:#x}, FAR {:#x}, ELR {:#x}, SPSR {:#x}",
            vector_name(kind),
            cpu::index(),
            if synchronous {
                class_name(ec)
            } else {
                "asynchronous"
            },
            ec,
            esr,
            far,
            frame.elr,
            frame.spsr
        );
        report::abort(format_args!(
            "unexpected {} ({}, ESR {:#x}, ELR {:#x})",
            vector_name(kind),
            class_name(ec),
            esr,
            frame.elr
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_layout_matches_the_vectors() {
        assert_eq!(core::mem::size_of::<Frame>(), FRAME_SIZE);
        assert_eq!(FRAME_SIZE % 16, 0, "SP must stay 16-byte aligned");
        assert_eq!(core::mem::offset_of!(Frame, elr), 248);
        assert_eq!(core::mem::offset_of!(Frame, spsr), 256);
    }

    #[test]
    fn data_abort_fields_are_decoded() {
        // A synchronous external abort on a read at EL1, FAR valid:
        // EC 0x25, IL, DFSC 0b010000, EA set.
        let trap = Trap {
            esr: 0x9600_0210,
            far: 0x0800_0000,
        };
        assert!(trap.is_data_abort());
        assert!(trap.far_valid());
        assert!(trap.external());
        assert_eq!(trap.fault_status(), 0x10);
        let not_valid = Trap {
            esr: 0x9600_0410,
            far: 0,
        };
        assert!(!not_valid.far_valid(), "FnV set means FAR is not valid");
    }

    #[test]
    fn classes_are_named() {
        assert_eq!(
            class_name(exception_class(0x0200_0000)),
            "unknown reason (undefined instruction)"
        );
        assert_eq!(class_name(EC_DATA_ABORT), "data abort");
        assert_eq!(class_name(0x3f), "other");
        let text = Trap {
            esr: 0x9600_0010,
            far: 0x1000,
        }
        .to_string();
        assert_eq!(text, "data abort (EC 0x25), ESR 0x96000010, FAR 0x1000");
    }

    #[test]
    fn vector_kinds_are_named_by_type() {
        assert_eq!(vector_name(4), "synchronous exception");
        assert_eq!(vector_name(5), "IRQ");
        assert_eq!(vector_name(15), "SError");
    }
}
