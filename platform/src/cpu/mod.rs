//! Per-CPU operations that need AArch64 instructions: cache maintenance,
//! firmware calls and the spin-table release.

pub mod cache;
pub mod psci;
pub mod spin_table;
