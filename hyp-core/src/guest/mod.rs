//! What a guest sees of Tessera, as host-testable models: the decoding of
//! its traps (MMIO, system registers, calls), the exceptions injected into
//! it, its PL011, its device tree and its stage-2 map.

pub mod context;
pub mod device_tree;
pub mod exit;
pub mod inject;
pub mod mmio;
pub mod mmio_bus;
pub mod passthrough;
pub mod pl011;
pub mod smccc;
pub mod stage2;
pub mod sysreg;

#[cfg(test)]
mod tests;
