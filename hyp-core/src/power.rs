//! Turning the machine off, or resetting it, whichever way the board allows.

use log::{error, info, warn};
use platform::watchdog::Bcm2835Watchdog;
use spin::Once;

use crate::arch::cpu;
use crate::dt::Fdt;
use crate::dt::address::reg_entry;
use crate::hw::Hardware;
use crate::mm::address::PhysRange;
use crate::{console, smp};

/// How the machine can be reset when there is no PSCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetDevice {
    None,
    /// Address of a BCM2835 power-management block (mapped).
    Bcm2835Watchdog(usize),
}

/// What the board offers, decided once at boot.
#[derive(Debug, Clone, Copy)]
pub struct PowerControl {
    /// The firmware has PSCI (over SMC).
    pub psci: bool,
    pub reset_device: ResetDevice,
    /// `/chosen/tessera,crash-action = "reset"`: reset after a crash report
    /// instead of halting, for unattended boards.
    pub reset_on_crash: bool,
}

static CONTROL: Once<PowerControl> = Once::new();

/// Records how this board powers off and resets.
pub fn configure(control: PowerControl) {
    CONTROL.call_once(|| control);
}

fn control() -> PowerControl {
    CONTROL.get().copied().unwrap_or(PowerControl {
        psci: false,
        reset_device: ResetDevice::None,
        reset_on_crash: false,
    })
}

/// Powers off: PSCI SYSTEM_OFF where the firmware has PSCI, else every CPU
/// parks in WFI after saying so.
pub fn power_off() -> ! {
    if control().psci {
        info!("powering off (PSCI SYSTEM_OFF)");
        smp::stop_other_cpus();
        console::flush();
        if let Err(error) = platform::cpu::psci::system_off() {
            error!(
                "PSCI SYSTEM_OFF failed: {}; parking all CPUs instead",
                platform::cpu::psci::error_name(&error)
            );
        }
    } else {
        info!(
            "this board has no PSCI to power off with: parking every CPU in WFI; power can be removed"
        );
    }
    park_all()
}

/// Resets the machine: PSCI SYSTEM_RESET, else the board's own mechanism,
/// else parks. Other CPUs must already be stopped.
pub fn reset() -> ! {
    let control = control();
    console::flush();
    if control.psci {
        if let Err(error) = platform::cpu::psci::system_reset() {
            error!(
                "PSCI SYSTEM_RESET failed: {}",
                platform::cpu::psci::error_name(&error)
            );
        }
    } else if let ResetDevice::Bcm2835Watchdog(address) = control.reset_device {
        // SAFETY: the address is the PM block found in the DT, mapped as a
        // device by the EL2 map, and nothing else drives it.
        unsafe { Bcm2835Watchdog::new(address) }.reset();
        // The reset takes effect within microseconds.
        cpu::park();
    }
    error!("no way to reset this board: parking");
    console::flush();
    cpu::park()
}

/// Whether a crash ends in a reset rather than a halt.
pub fn resets_on_crash() -> bool {
    control().reset_on_crash
}

/// After a crash report, with the other CPUs stopped: reset if configured, else park.
pub fn after_crash() -> ! {
    if control().reset_on_crash {
        reset()
    }
    cpu::park()
}

/// Stops every CPU, this one last.
pub fn park_all() -> ! {
    let (stopped, others) = smp::stop_other_cpus();
    info!(
        "{stopped} of {others} other CPUs parked; parking CPU {}",
        cpu::index()
    );
    console::flush();
    cpu::park()
}

/// The board's reset mechanism when it has no PSCI, and its registers.
pub fn reset_device(
    fdt: &Fdt<'_>,
    hardware: &Hardware<'_>,
    board: Option<&platform::board::Board>,
) -> (ResetDevice, Option<PhysRange>) {
    let needs_own = hardware.psci.is_none()
        && board.is_some_and(|b| {
            b.reset_without_psci == platform::board::ResetWithoutPsci::Bcm2835Watchdog
        });
    if !needs_own {
        return (ResetDevice::None, None);
    }
    let node = fdt
        .nodes()
        .find(|n| n.is_compatible(platform::board::BCM2835_PM_COMPATIBLE) && n.is_enabled());
    match node.map(|n| (n, reg_entry(&n, 0))) {
        Some((_, Ok(range))) => (
            ResetDevice::Bcm2835Watchdog(range.start().as_usize()),
            Some(range),
        ),
        Some((node, Err(error))) => {
            warn!("{}: reg: {error}; this board cannot be reset", node.path());
            (ResetDevice::None, None)
        }
        None => {
            warn!("no BCM2835 power-management node: this board cannot be reset");
            (ResetDevice::None, None)
        }
    }
}
