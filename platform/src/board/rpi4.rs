//! Raspberry Pi 4 Model B (BCM2711): GIC-400, secondary CPUs in the
//! firmware's spin table unless TF-A is installed, no PSCI without TF-A.

use super::{Board, ResetWithoutPsci};
use crate::uart::UartKind;

pub const BOARD: Board = Board {
    name: "Raspberry Pi 4",
    compatible: &["raspberrypi,4-model-b", "brcm,bcm2711"],
    // The mini-UART (AUX_MU_IO_REG, bus 0x7e215040), the console the
    // firmware sets up with enable_uart=1, at its CPU address in low-peripheral mode.
    fallback_console: (UartKind::MiniUart, 0xfe21_5040),
    reset_without_psci: ResetWithoutPsci::Bcm2835Watchdog,
};
