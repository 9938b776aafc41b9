//! Hardware discovery: what the board's device tree says about RAM, CPUs,
//! the GIC, the timer, PSCI and the console.
//!
//! Pure functions of the DTB (plus the boot CPU's MPIDR and the blob's own
//! location), so they run in host unit tests against real board DTBs.
//!
//! Every number here comes from a board's DTB: arithmetic is checked.

#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

pub mod console;
pub mod cpus;
pub mod gic;
pub mod issue;
pub mod memory;
pub mod psci;
pub mod timer;

use crate::dt::{Fdt, Node};
use crate::mm::address::PhysRange;
pub use issue::{Issue, Issues, Severity};

#[cfg(test)]
mod tests;

/// Everything Tessera needs to know about the machine.
#[derive(Debug)]
pub struct Hardware<'a> {
    /// Root `model`, or its first `compatible` when there is no model.
    pub model: &'a str,
    pub memory: memory::MemoryMap,
    pub cpus: cpus::Cpus<'a>,
    pub gic: gic::Gic<'a>,
    pub timer: timer::Timer,
    pub psci: Option<psci::Psci<'a>>,
    pub console: Option<console::Console<'a>>,
    /// Problems Tessera can run with.
    pub warnings: Issues<'a>,
}

/// Reads the whole description. On any fatal problem, returns every problem
/// found (not just the first), so one boot shows all that needs fixing.
#[allow(
    clippy::result_large_err,
    reason = "runs once, before the heap exists, so there is nothing to box into"
)]
pub fn discover<'a>(
    fdt: &Fdt<'a>,
    boot_mpidr: u64,
    dtb: Option<PhysRange>,
) -> Result<Hardware<'a>, Issues<'a>> {
    let mut issues = Issues::default();
    let console = console::discover(fdt, &mut issues);
    discover_with_console(fdt, boot_mpidr, dtb, console, issues)
}

/// [`discover`] with the console found already (the boot needs it before
/// anything else), and what finding it raised in `issues`.
#[allow(
    clippy::result_large_err,
    reason = "runs once, before the heap exists, so there is nothing to box into"
)]
pub fn discover_with_console<'a>(
    fdt: &Fdt<'a>,
    boot_mpidr: u64,
    dtb: Option<PhysRange>,
    mut console: Option<console::Console<'a>>,
    mut issues: Issues<'a>,
) -> Result<Hardware<'a>, Issues<'a>> {
    let root = fdt.root();
    let model = root
        .property("model")
        .and_then(|p| p.as_str())
        .or_else(|| root.compatible().next())
        .unwrap_or("unknown board");
    let landmarks = Landmarks::find(fdt);
    let memory = match &landmarks.modules {
        Some(modules) => {
            memory::discover_with_modules(fdt, dtb, &mut modules.iter().copied(), &mut issues)
        }
        None => memory::discover(fdt, dtb, &mut issues),
    };
    let cpus = cpus::discover(fdt, boot_mpidr, &mut issues);
    let gic = gic::discover_at(landmarks.gic, &mut issues);
    let timer = gic
        .as_ref()
        .and_then(|gic| timer::discover_at(fdt, landmarks.timer, gic, &mut issues));
    let psci = psci::discover(fdt, &mut issues);
    if let (Some(console), Some(gic)) = (console.as_mut(), gic.as_ref()) {
        console.interrupt = console_interrupt(fdt, &console.node, gic);
    }
    match (cpus, gic, timer) {
        (Some(cpus), Some(gic), Some(timer)) if !issues.has_fatal() => Ok(Hardware {
            model,
            memory,
            cpus,
            gic,
            timer,
            psci,
            console,
            warnings: issues,
        }),
        _ => Err(issues),
    }
}

/// Boot modules [`Landmarks`] keeps (a node is about 128 bytes of the boot
/// stack); a tree with more is walked again.
const MAX_MODULES: usize = 8;

/// The nodes discovery looks for anywhere in the tree, found in one walk:
/// walking the whole tree was most of the boot's discovery.
struct Landmarks<'a> {
    gic: Option<Node<'a>>,
    timer: Option<Node<'a>>,
    /// `None` if there were more than [`MAX_MODULES`].
    modules: Option<heapless::Vec<Node<'a>, MAX_MODULES>>,
}

impl<'a> Landmarks<'a> {
    fn find(fdt: &Fdt<'a>) -> Landmarks<'a> {
        let mut found = Landmarks {
            gic: None,
            timer: None,
            modules: Some(heapless::Vec::new()),
        };
        for node in fdt.nodes() {
            if found.gic.is_none() && gic::is_gic(&node) {
                found.gic = Some(node);
            } else if found.timer.is_none() && timer::is_timer(&node) {
                found.timer = Some(node);
            }
            if memory::is_module(&node)
                && let Some(modules) = found.modules.as_mut()
                && modules.push(node).is_err()
            {
                found.modules = None;
            }
        }
        found
    }
}

/// The console UART's SPI, if its interrupt goes to the GIC.
fn console_interrupt<'a>(fdt: &Fdt<'a>, node: &Node<'a>, gic: &gic::Gic<'a>) -> Option<u32> {
    if !gic::interrupt_parent_is(fdt, node, &gic.node)? {
        return None;
    }
    let value = node.property("interrupts")?.value;
    match gic::decode_interrupts(value, gic.interrupt_cells).next()? {
        Ok(gic::Interrupt::Spi(intid)) => Some(intid),
        _ => None,
    }
}
