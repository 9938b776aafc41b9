//! Boards as data: how to recognise each, and the few facts a device tree
//! cannot give.
//!
//! One image serves every board; the board is found from the root
//! `compatible` of the device tree. Only when there is no usable device tree
//! does Tessera fall back to the board it was built for (`cargo xtask build
//! --board`), to print why it stops.

mod qemu_virt;
mod rpi4;
mod rpi5;

use crate::uart::UartKind;

/// How to reset the machine when the firmware offers no PSCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetWithoutPsci {
    /// No known mechanism: the CPUs are parked.
    None,
    /// The BCM2835/BCM2711 power-management watchdog (Raspberry Pi 4 without TF-A).
    Bcm2835Watchdog,
}

/// A supported board.
#[derive(Debug)]
pub struct Board {
    /// Name for messages.
    pub name: &'static str,
    /// Root `compatible` strings that identify the board.
    pub compatible: &'static [&'static str],
    /// The console used when there is no usable device tree, and only then.
    pub fallback_console: (UartKind, usize),
    pub reset_without_psci: ResetWithoutPsci,
}

/// Every supported board.
pub const BOARDS: [&Board; 3] = [&qemu_virt::BOARD, &rpi4::BOARD, &rpi5::BOARD];

/// The board whose compatible matches one of the root `compatible` strings
/// (checked in the tree's order: most specific first).
pub fn identify<'a>(mut root_compatible: impl Iterator<Item = &'a str>) -> Option<&'static Board> {
    root_compatible.find_map(|c| {
        BOARDS
            .iter()
            .copied()
            .find(|board| board.compatible.contains(&c))
    })
}

/// The board named at build time (`TESSERA_BOARD`, set by `cargo xtask build
/// --board`), QEMU virt by default.
pub fn build_target() -> &'static Board {
    match option_env!("TESSERA_BOARD") {
        Some("rpi4") => &rpi4::BOARD,
        Some("rpi5") => &rpi5::BOARD,
        _ => &qemu_virt::BOARD,
    }
}

/// Compatibles of the BCM2835/BCM2711 power-management block that holds the watchdog.
pub const BCM2835_PM_COMPATIBLE: &[&str] =
    &["brcm,bcm2711-pm", "brcm,bcm2835-pm", "brcm,bcm2835-pm-wdt"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boards_are_identified_by_their_most_specific_compatible() {
        assert_eq!(
            identify(["linux,dummy-virt"].into_iter()).unwrap().name,
            "QEMU virt"
        );
        assert_eq!(
            identify(["raspberrypi,4-model-b", "brcm,bcm2711"].into_iter())
                .unwrap()
                .name,
            "Raspberry Pi 4"
        );
        assert_eq!(
            identify(["raspberrypi,5-model-b", "brcm,bcm2712"].into_iter())
                .unwrap()
                .name,
            "Raspberry Pi 5"
        );
        assert_eq!(
            identify(["brcm,bcm2711"].into_iter()).unwrap().name,
            "Raspberry Pi 4",
            "SoC compatible suffices"
        );
        assert!(identify(["acme,unknown"].into_iter()).is_none());
    }
}
