//! Where Tessera's own exceptions and panics enter the crash report: the
//! Rust side of the current-EL vectors, and the panic handler.

use crate::crash;
use crate::exception::{TrapFrame, VectorKind};

/// Called by vectors.S with the vector index and the saved registers. With
/// no partitions running yet, every exception that reaches EL2 is a bug in
/// Tessera (or hardware trouble): report it and stop.
#[unsafe(no_mangle)]
extern "C" fn el2_exception(index: u64, frame: &mut TrapFrame) {
    let kind = VectorKind::from_index(index).unwrap_or(VectorKind::CurrentElSync);
    crash::unexpected_exception(kind, frame);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crash::panic(info)
}
