//! What happens when Tessera itself fails: an unexpected exception at EL2
//! or a Rust panic prints a crash report, then every CPU stops.

use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::arch::{cpu, layout};
use crate::exception::{TrapFrame, VectorKind, write_crash_report};
use crate::mm::address::PhysAddr;
use crate::{console, power, smp};

/// The CPU reporting a crash, plus one; 0 while none is.
static CRASHING_CPU: AtomicUsize = AtomicUsize::new(0);

/// Claims the crash report for this CPU. Another CPU that crashes at the same
/// time, or this one crashing again inside the report, parks at once.
fn claim() {
    let me = cpu::index() + 1;
    if !cpu::mmu_enabled() {
        // No atomic read-modify-write with the MMU off (see console.rs); only
        // the boot CPU runs then, so a plain check suffices.
        if CRASHING_CPU.load(Ordering::Acquire) != 0 {
            cpu::park();
        }
        CRASHING_CPU.store(me, Ordering::Release);
        return;
    }
    if CRASHING_CPU
        .compare_exchange(0, me, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        smp::acknowledge_stop();
        cpu::park();
    }
}

/// Stops the other CPUs, says how many stopped and what happens next, and
/// halts (or resets, if so configured).
fn halt() -> ! {
    let (stopped, others) = smp::stop_other_cpus();
    let next = if power::resets_on_crash() {
        "resetting the board (/chosen/tessera,crash-action = \"reset\")."
    } else {
        "Tessera halted."
    };
    console::with_console_for_crash(|uart| {
        let _ = writeln!(uart, "{stopped} of {others} other CPUs stopped; {next}");
        uart.flush();
    });
    power::after_crash()
}

/// The report for an exception EL2 did not expect.
pub fn unexpected_exception(kind: VectorKind, frame: &TrapFrame) -> ! {
    claim();
    let overflow =
        layout::image().is_some_and(|image| image.stack_guard.contains(PhysAddr(frame.far)));
    console::with_console_for_crash(|uart| {
        let _ = write_crash_report(uart, cpu::index(), kind, frame);
        if overflow && kind.has_syndrome() {
            let _ = writeln!(
                uart,
                "The fault address is the boot stack's guard page: the boot stack overflowed."
            );
        }
    });
    halt()
}

/// The report for a panic.
pub fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    claim();
    console::with_console_for_crash(|uart| {
        let _ = write!(uart, "*** TESSERA PANIC on CPU {}", cpu::index());
        if let Some(location) = info.location() {
            let _ = write!(uart, " at {}:{}", location.file(), location.line());
        }
        let _ = writeln!(uart, ": {} ***", info.message());
    });
    halt()
}
