//! Board support for Tessera: UART drivers, the physical GIC, CPU bring-up
//! and board quirks.
//!
//! Drivers reach hardware only through [`mmio::Mmio`] (a typed register block
//! at an address that came from the device tree) and, for system registers and
//! instructions, through modules compiled only for AArch64. Nothing here knows
//! a board's addresses except [`board`]'s fallback console, used only when
//! there is no device tree to read.

#![no_std]

pub mod board;
pub mod gic;
pub mod mmio;
pub mod uart;
pub mod watchdog;

#[cfg(target_arch = "aarch64")]
pub mod cpu;
