//! Raspberry Pi 5 (BCM2712): GIC-400, CPUs through PSCI in the firmware's TF-A.

use super::{Board, ResetWithoutPsci};
use crate::uart::UartKind;

pub const BOARD: Board = Board {
    name: "Raspberry Pi 5",
    compatible: &["raspberrypi,5-model-b", "brcm,bcm2712"],
    // The debug UART (PL011, bus 0x7d001000 under /soc@107c000000).
    fallback_console: (UartKind::Pl011, 0x10_7d00_1000),
    reset_without_psci: ResetWithoutPsci::None,
};
