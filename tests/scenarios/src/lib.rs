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

/// How many times `cargo xtask test --long` runs each repeated scenario
/// in a row: one that could fail by chance shows it here.
pub const REPEATS: usize = 20;

/// The scenarios `--long` repeats: the crash scenarios (a crash injected
/// "while guests run" once raced the guests' first lines) and the GICv2
/// interrupt scenarios (a vCPU's first timer interrupt once never came).
const REPEATED: [&str; 3] = ["crash-", "interrupts-gicv2", "interrupts-rpi4"];

/// `cargo xtask test --long`: what is too slow for every run. Today the
/// [`REPEATED`] scenarios, [`REPEATS`] times each (named `<name>-run-NN`).
pub fn long() -> Vec<Scenario> {
    let repeated: Vec<Scenario> = all()
        .into_iter()
        .filter(|s| REPEATED.iter().any(|prefix| s.name.starts_with(prefix)))
        .collect();
    (1..=REPEATS)
        .flat_map(|run| {
            repeated.iter().map(move |s| Scenario {
                name: format!("{}-run-{run:02}", s.name),
                ..s.clone()
            })
        })
        .collect()
}
