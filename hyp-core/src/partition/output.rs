//! Partitions' console output on the physical console. Whoever completes a
//! line prints waiting lines if no one else is printing; otherwise it
//! returns at once and the printer picks the line up, so a vCPU never
//! blocks on another partition's output. Each call prints at most
//! [`LINES_PER_CALL`] lines, its own partition's first, so that a partition
//! that prints without pause cannot keep another's vCPU in EL2.
//!
//! The partition that takes console input is shown byte by byte, as a
//! terminal would (its shell's prompt and echo appear before any newline);
//! the others line by line, so that their lines never mix. An unfinished
//! line of theirs (a prompt, a progress indicator) is shown as it is once
//! it has waited [`UNFINISHED_LINE_WAIT_MS`] for its end: Tessera's own
//! timer fires then.

use core::sync::atomic::{AtomicBool, Ordering};

use super::{Partition, Uart, partitions};
use crate::arch::{cpu, hyp_timer};
use crate::console;
use crate::guest::pl011::MAX_LINE;

/// Most lines one call prints (about 1.3 KiB).
pub const LINES_PER_CALL: usize = 8;
/// How long an unfinished line waits for its end before it is shown.
pub const UNFINISHED_LINE_WAIT_MS: u64 = 100;
/// When the timer finds another CPU printing, it looks again this much later.
const RETRY_MS: u64 = 1;

static DRAINING: AtomicBool = AtomicBool::new(false);

impl Partition {
    /// Whether `uart` holds output to print now: a whole line, or for the
    /// partition that takes input (its output is shown as it comes), any.
    /// Asked at every byte the guest writes, so it does not read the clock.
    pub(super) fn has_output(&self, uart: &Uart) -> bool {
        uart.output.has_line() || (!uart.output.is_empty() && self.takes_console_input())
    }

    /// As [`Self::has_output`], counting an unfinished line due at `now`.
    fn has_output_at(&self, uart: &Uart, now: u64) -> bool {
        self.has_output(uart) || uart.unfinished_due.is_some_and(|due| due <= now)
    }

    /// After output was added to `uart` or taken from it: an unfinished
    /// line left there gets a time to be shown at, which this CPU's timer
    /// fires by; with none left, none is kept.
    pub(super) fn watch_unfinished_line(&self, uart: &mut Uart) {
        if !uart.output.has_unfinished_line() || self.takes_console_input() {
            uart.unfinished_due = None;
        } else if uart.unfinished_due.is_none() {
            let due = cpu::counter().saturating_add(console::ticks_in_ms(UNFINISHED_LINE_WAIT_MS));
            uart.unfinished_due = Some(due);
            hyp_timer::fire_by(due);
        }
    }
}

/// Prints one waiting line of `partition` (or at `now`, a due unfinished
/// one), if it has one.
fn print_one(partition: &Partition, line: &mut [u8; MAX_LINE], now: u64) -> bool {
    // Take the line under the lock, print it without.
    let taken = partition.uart.try_lock().and_then(|mut uart| {
        let partial =
            partition.takes_console_input() || uart.unfinished_due.is_some_and(|due| due <= now);
        let taken = uart.output.take(line, partial)?;
        partition.watch_unfinished_line(&mut uart);
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
        let now = cpu::counter();
        let order = first.into_iter().chain(partitions().iter());
        for partition in order {
            while budget > 0 && print_one(partition, &mut line, now) {
                budget -= 1;
            }
        }
        DRAINING.store(false, Ordering::Release);
        // A line completed after its partition was looked at would
        // otherwise wait for the next one.
        let pending = partitions().iter().any(|p| {
            p.uart
                .try_lock()
                .is_some_and(|uart| p.has_output_at(&uart, now))
        });
        if !pending {
            return;
        }
    }
}

/// Tessera's timer fired on this CPU, which runs a vCPU of `partition`:
/// prints the unfinished lines that are due, and sets the timer again for
/// those still to come (or still waiting, if another CPU was printing).
pub fn timer_fired(partition: &Partition) {
    drain(Some(partition));
    let next = partitions()
        .iter()
        .filter_map(|p| p.uart.lock().unfinished_due)
        .min();
    if let Some(next) = next {
        let soonest = cpu::counter().saturating_add(console::ticks_in_ms(RETRY_MS));
        hyp_timer::fire_by(next.max(soonest));
    }
}
