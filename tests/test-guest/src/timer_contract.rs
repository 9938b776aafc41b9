//! The timer as a partition sees it (role `irq`): its DT node says what
//! Tessera promises, and both counters read without a trap.

use core::arch::asm;

use tessera_guest_kit::exception::catch;
use tessera_guest_kit::fdt::Fdt;
use tessera_guest_kit::report::Outcome;
use tessera_guest_kit::{ensure, fail};

use crate::context::cells;

const TIMER_PATH: &str = "/timer";
/// `interrupts` of the timer binding: secure physical, non-secure physical,
/// virtual and hypervisor PPIs, three cells each (type 1 = PPI, number,
/// flags). The virtual timer is PPI 11 (INTID 27).
const CELLS_PER_INTERRUPT: usize = 3;
const GIC_PPI: u32 = 1;
const VIRTUAL_TIMER_PPI: u32 = 11;
const VIRTUAL_TIMER_INDEX: usize = 2;

/// `/timer`: an `arm,armv8-timer` with its four PPIs, the virtual one
/// where the binding puts it, and `always-on` (the counter keeps running
/// while a vCPU waits: its core is never given away).
pub fn timer_node(fdt: &Fdt<'_>) -> Outcome {
    let property = |name| match fdt.property(TIMER_PATH, name) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => fail!("{TIMER_PATH} has no {name}"),
        Err(error) => fail!("{TIMER_PATH}: {name}: {error}"),
    };
    ensure!(
        property("compatible")?.starts_with(b"arm,armv8-timer\0"),
        "{TIMER_PATH}: compatible is not \"arm,armv8-timer\""
    );
    property("always-on")?;
    let interrupts = cells::<12>(property("interrupts")?);
    ensure!(
        interrupts.len() == 4 * CELLS_PER_INTERRUPT,
        "{TIMER_PATH}: interrupts has {} cells, expected 4 PPIs of {CELLS_PER_INTERRUPT}",
        interrupts.len()
    );
    let virtual_timer = interrupts
        .chunks(CELLS_PER_INTERRUPT)
        .nth(VIRTUAL_TIMER_INDEX)
        .unwrap_or(&[]);
    ensure!(
        virtual_timer.get(..2) == Some(&[GIC_PPI, VIRTUAL_TIMER_PPI][..]),
        "{TIMER_PATH}: the third interrupt is {virtual_timer:?}, expected PPI {VIRTUAL_TIMER_PPI}"
    );
    Ok(())
}

/// CNTPCT_EL0 and CNTVCT_EL0 read at EL1 without an exception, and the
/// physical count is ahead of the virtual one by the partition's offset
/// (CNTVOFF_EL2, the physical count at its start). A trapped read that
/// Tessera answered as the inert physical timer's would read 0.
pub fn counters_untrapped() -> Outcome {
    let ((physical, virtual_count), trap) = catch(|| {
        let (physical, virtual_count): (u64, u64);
        // SAFETY: counter reads have no side effects.
        unsafe {
            asm!("isb", "mrs {p}, cntpct_el0", "mrs {v}, cntvct_el0",
                 p = out(reg) physical, v = out(reg) virtual_count,
                 options(nomem, nostack, preserves_flags));
        }
        (physical, virtual_count)
    });
    if let Some(trap) = trap {
        fail!("reading the counters raised {trap}");
    }
    ensure!(
        physical > virtual_count && virtual_count > 0,
        "CNTPCT_EL0 {physical:#x}, CNTVCT_EL0 {virtual_count:#x}: expected both running, physical ahead by the partition's start"
    );
    Ok(())
}
