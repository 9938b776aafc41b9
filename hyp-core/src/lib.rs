//! Tessera's hypervisor core: boot at EL2, hardware discovery, memory
//! management, and (in later work) partitions, the virtual GIC and the
//! paravirtual interfaces.
//!
//! Everything that does not touch registers (device-tree parsing, hardware
//! discovery, page-table building, crash-report decoding, log formatting)
//! builds and is unit-tested on the host; the code that runs only at EL2 lives
//! in [`arch`] and [`boot`] and builds only for `target_os = "none"`.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod config;
pub mod console_turns;
pub mod dt;
pub mod entropy;
pub mod esr;
pub mod exception;
pub mod guest;
pub mod hw;
pub mod lifecycle;
pub mod logging;
pub mod mm;
pub mod open_line;
pub mod time;
pub mod vgic;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
mod banner;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod crash;
#[cfg(target_os = "none")]
mod fault_injection;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod partition;
#[cfg(target_os = "none")]
mod physical_gic;
#[cfg(target_os = "none")]
mod power;
#[cfg(target_os = "none")]
mod smp;
