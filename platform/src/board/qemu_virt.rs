//! QEMU's `virt` machine with `virtualization=on`: the CI target.

use super::{Board, ResetWithoutPsci};
use crate::uart::UartKind;

pub const BOARD: Board = Board {
    name: "QEMU virt",
    compatible: &["linux,dummy-virt"],
    // hw/arm/virt.c: VIRT_UART at 0x09000000.
    fallback_console: (UartKind::Pl011, 0x0900_0000),
    // QEMU always provides PSCI (SMC conduit with virtualization=on).
    reset_without_psci: ResetWithoutPsci::None,
};
