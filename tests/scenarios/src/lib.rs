//! Tessera's QEMU scenarios: what to boot, and what the serial console must
//! show, in what order, within what time.
//!
//! [`scenario`] describes them as data; [`engine`] runs one QEMU process and
//! checks its output. `cargo xtask test` turns a scenario's [`Machine`] and
//! [`Boot`] into a QEMU command line (it owns the tools and build artifacts)
//! and hands the process to the engine.

mod console;
pub mod engine;
mod gic_sweep;
mod interrupts;
pub mod linux;
mod partitions;
mod passthrough;
pub mod scenario;

pub use engine::{Outcome, Watch, run};
pub use scenario::{
    Board, Boot, DtbEdit, End, Image, Interval, Machine, Scenario, Step, VIRTIO_DISK_BYTES,
};

/// Every scenario: [`scenario::all`], then the interrupt scenarios and
/// the GIC register sweeps.
pub fn all() -> Vec<Scenario> {
    let mut list = scenario::all();
    list.extend(interrupts::all());
    list.extend(gic_sweep::all());
    list
}
