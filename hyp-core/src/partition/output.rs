//! Partitions' console output on the physical console. Whoever completes a
//! line prints waiting lines if no one else is printing; otherwise it
//! returns at once and the printer picks the line up, so a vCPU never
//! blocks on another partition's output. Each call prints at most
//! [`LINES_PER_CALL`] lines, its own partition's first, so that a partition
//! that prints without pause cannot keep another's vCPU in EL2.
//!
//! The partition that takes console input is shown byte by byte, as a
//! terminal would (its shell's prompt and echo appear before any newline);
//! the others line by line, so that their lines never mix.

use core::sync::atomic::{AtomicBool, Ordering};

use super::{Partition, Uart, partitions};
use crate::console;
use crate::guest::pl011::MAX_LINE;

/// Most lines one call prints (about 1.3 KiB).
pub const LINES_PER_CALL: usize = 8;

static DRAINING: AtomicBool = AtomicBool::new(false);

impl Partition {
    /// Whether `uart` holds output to print now: a whole line, or for the
    /// partition that takes input (its output is shown as it comes), any.
    pub(super) fn has_output(&self, uart: &Uart) -> bool {
        uart.output.has_line() || (!uart.output.is_empty() && self.takes_console_input())
    }
}

/// Prints one waiting line of `partition`, if it has one.
fn print_one(partition: &Partition, line: &mut [u8; MAX_LINE]) -> bool {
    // Take the line under the lock, print it without.
    let interactive = partition.takes_console_input();
    let taken = partition.uart.try_lock().and_then(|mut uart| {
        let taken = uart.output.take(line, interactive)?;
        // Room again: a guest waiting for the transmit interrupt gets it.
        Some((taken, uart.line_rose()))
    });
    let Some(((length, ended), rose)) = taken else {
        return false;
    };
    if rose {
        partition.uart_interrupt(None);
    }
    let text = line.get(..length).unwrap_or(&[]);
    console::write_partition_output(partition.name(), text, ended);
    true
}

/// Prints waiting lines: `first`'s, then every partition's, up to
/// [`LINES_PER_CALL`]; with `None`, everything (a partition that stopped).
pub fn drain(first: Option<&Partition>) {
    let mut budget = if first.is_some() {
        LINES_PER_CALL
    } else {
        usize::MAX
    };
    let mut line = [0u8; MAX_LINE];
    while budget > 0 {
        if DRAINING
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let order = first.into_iter().chain(partitions().iter());
        for partition in order {
            while budget > 0 && print_one(partition, &mut line) {
                budget -= 1;
            }
        }
        DRAINING.store(false, Ordering::Release);
        // A line completed after its partition was looked at would
        // otherwise wait for the next one.
        let pending = partitions()
            .iter()
            .any(|p| p.uart.try_lock().is_some_and(|uart| p.has_output(&uart)));
        if !pending {
            return;
        }
    }
}
