//! The BCM2835/BCM2711 power-management watchdog, used to reset a Raspberry
//! Pi 4 that has no PSCI. Register use as in Linux's
//! `drivers/watchdog/bcm2835_wdt.c`: arm the watchdog with a short timeout
//! and request a full reset.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_structs;
use tock_registers::registers::ReadWrite;

use crate::mmio::Mmio;

/// Every write to the PM block must carry this password in bits [31:24].
const PM_PASSWORD: u32 = 0x5a00_0000;
/// PM_RSTC.WRCFG: the field selecting what the watchdog does when it fires.
const PM_RSTC_WRCFG_CLEAR: u32 = 0xffff_ffcf;
const PM_RSTC_WRCFG_FULL_RESET: u32 = 0x0000_0020;
/// PM_WDOG holds the timeout in ticks of about 16 µs.
const PM_WDOG_TIME_SET: u32 = 0x000f_ffff;
/// Ticks until reset: about 160 µs.
const RESET_TICKS: u32 = 10;

register_structs! {
    /// The start of the PM block, up to the watchdog registers.
    pub PmRegisters {
        (0x00 => _reserved0),
        (0x1c => pub rstc: ReadWrite<u32>),
        (0x20 => pub rsts: ReadWrite<u32>),
        (0x24 => pub wdog: ReadWrite<u32>),
        (0x28 => @END),
    }
}

/// The PM watchdog.
#[derive(Debug)]
pub struct Bcm2835Watchdog {
    registers: Mmio<PmRegisters>,
}

impl Bcm2835Watchdog {
    /// # Safety
    ///
    /// `address` must be the PM block (first `reg` entry of a
    /// `brcm,bcm2835-pm` node), mapped as device memory, used by nothing else.
    pub unsafe fn new(address: usize) -> Bcm2835Watchdog {
        // SAFETY: forwarded from this function\'s contract.
        let registers = unsafe { Mmio::new(address) };
        Bcm2835Watchdog { registers }
    }

    /// Starts a full-chip reset about 160 µs from now.
    pub fn reset(&self) {
        let pm = &self.registers;
        pm.wdog.set(PM_PASSWORD | (RESET_TICKS & PM_WDOG_TIME_SET));
        let rstc = pm.rstc.get();
        pm.rstc
            .set(PM_PASSWORD | (rstc & PM_RSTC_WRCFG_CLEAR) | PM_RSTC_WRCFG_FULL_RESET);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmio::fake::FakeRegisters;

    #[test]
    fn reset_arms_the_watchdog_with_the_password() {
        let mut fake = FakeRegisters::new(0x28);
        fake.write32(0x1c, 0x0000_0030);
        // SAFETY: the fake is 0x28 bytes of memory that lives past `watchdog`.
        let watchdog = unsafe { Bcm2835Watchdog::new(fake.address()) };
        watchdog.reset();
        assert_eq!(fake.read32(0x24), 0x5a00_000a);
        assert_eq!(
            fake.read32(0x1c),
            0x5a00_0020,
            "WRCFG replaced by full reset"
        );
    }
}
