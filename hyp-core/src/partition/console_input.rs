//! Physical console input. Until the paravirtual console switches focus,
//! every byte typed on the console goes to one partition: the one the
//! overlay marks `console-input`. Its vCPU 0's CPU takes the console UART's
//! interrupt and moves the bytes into the partition's virtual PL011 receive
//! FIFO, raising the guest's UART interrupt.

use core::sync::atomic::{AtomicUsize, Ordering};

use log::info;

use super::{Partition, partitions};
use crate::{console, physical_gic};

/// Index of the partition that takes console input (usize::MAX: none).
static INPUT_PARTITION: AtomicUsize = AtomicUsize::new(usize::MAX);
/// The console UART's SPI.
static CONSOLE_INTERRUPT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Chooses the partition that takes console input and turns input on,
/// if the console's interrupt is known (`interrupt`).
pub(super) fn init(interrupt: Option<u32>) {
    let Some(index) = partitions().iter().position(Partition::marked_for_input) else {
        info!("console input: no partition takes it (none is marked console-input)");
        return;
    };
    let Some(interrupt) = interrupt else {
        info!("console input: off (the console UART has no interrupt Tessera can take)");
        return;
    };
    INPUT_PARTITION.store(index, Ordering::Relaxed);
    CONSOLE_INTERRUPT.store(interrupt as usize, Ordering::Relaxed);
    console::enable_input_interrupt();
    if let Some(partition) = partitions().get(index) {
        info!("console input: to partition {}", partition.name());
    }
}

impl Partition {
    /// Whether the overlay gives this partition the console's input.
    fn marked_for_input(&self) -> bool {
        self.plan.config.console_input
    }

    pub(super) fn takes_console_input(&self) -> bool {
        partitions()
            .get(INPUT_PARTITION.load(Ordering::Relaxed))
            .is_some_and(|p| core::ptr::eq(p, self))
    }

    /// Routes the console's interrupt to this CPU if it runs the input
    /// partition's vCPU 0 (called as that vCPU starts).
    pub(super) fn claim_console_input(&self, vcpu: usize) {
        if vcpu == 0 && self.takes_console_input() {
            let intid = CONSOLE_INTERRUPT.load(Ordering::Relaxed);
            if let Ok(intid) = u32::try_from(intid) {
                physical_gic::route_console_input_here(intid);
            }
        }
    }

    /// Moves waiting console input into this partition's UART (the CPU took
    /// the console's interrupt while running `current`).
    pub(super) fn receive_console_input(&self, current: usize) {
        let rose = {
            let mut uart = self.uart.lock();
            console::read_input(|byte| {
                // A full FIFO loses the byte, as a real UART's overrun does.
                let _ = uart.input.push(byte);
            });
            uart.line_rose()
        };
        physical_gic::console_input_taken();
        if rose {
            self.uart_interrupt(Some(current));
        }
    }
}
