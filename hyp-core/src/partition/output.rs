//! Partitions' console output on the physical console. A partition's lines
//! are printed by its own vCPUs, on their own time: on a board's serial
//! line a 160-byte line takes 14 ms at 115200 baud, and that must not be
//! taken from another partition. The vCPU that completes a line prints its
//! partition's waiting lines, at most [`LINES_PER_CALL`] at a time; if
//! another vCPU is printing, it returns at once and tries again
//! [`RETRY_MS`] later on its own CPU's timer, so no vCPU waits for another
//! partition's output. Partitions that found the console taken go first
//! once it is free, so a partition that prints without pause cannot keep
//! the others' lines waiting (`console_turns/`, host-tested).
//!
//! The partition that takes console input is shown byte by byte, as a
//! terminal would (its shell's prompt and echo appear before any newline);
//! the others line by line, so that their lines never mix. An unfinished
//! line of theirs (a prompt, a progress indicator) is shown as it is once
//! it has waited [`UNFINISHED_LINE_WAIT_MS`] for its end: Tessera's own
//! timer fires then.

use core::sync::atomic::Ordering;

use super::{Partition, Uart, partitions};
use crate::arch::{cpu, hyp_timer};
use crate::console;
use crate::console_turns::ConsoleTurns;
use crate::guest::pl011::MAX_LINE;

/// Most lines one call prints (about 1.3 KiB).
pub const LINES_PER_CALL: usize = 8;
/// How long an unfinished line waits for its end before it is shown.
pub const UNFINISHED_LINE_WAIT_MS: u64 = 100;
/// A vCPU that finds another printing tries again this much later.
pub const RETRY_MS: u64 = 1;

/// Whose turn it is on the console.
static TURNS: ConsoleTurns = ConsoleTurns::new();

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

/// How [`print_one`] takes a partition's buffer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Lock {
    /// Not if its guest holds it: a vCPU never waits for its guest's buffer.
    Try,
    /// Waiting for it (a partition that stops or restarts: nothing else to do).
    Wait,
}

/// Prints one waiting line of `partition` (or at `now`, a due unfinished
/// one), if it has one.
fn print_one(partition: &Partition, line: &mut [u8; MAX_LINE], now: u64, lock: Lock) -> bool {
    let uart = match lock {
        Lock::Try => partition.uart.try_lock(),
        Lock::Wait => Some(partition.uart.lock()),
    };
    // Take the line under the lock, print it without.
    let taken = uart.and_then(|mut uart| {
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
    partition.has_printed.store(true, Ordering::Release);
    true
}

/// Prints `partition`'s waiting lines, up to [`LINES_PER_CALL`], unless
/// another vCPU is printing; what is left waits for this CPU's timer.
pub fn drain(partition: &Partition) {
    if !begin_printing(partition) {
        retry_soon();
        return;
    }
    let now = cpu::counter();
    let mut line = [0u8; MAX_LINE];
    let mut budget = LINES_PER_CALL;
    while budget > 0 && print_one(partition, &mut line, now, Lock::Try) {
        budget -= 1;
    }
    TURNS.end();
    // Lines beyond the budget, or a buffer its guest held locked: later.
    let more = partition
        .uart
        .try_lock()
        .is_none_or(|uart| partition.has_output_at(&uart, now));
    if more {
        retry_soon();
    }
}

/// Prints everything a partition that stops or restarts left, its
/// unfinished line too, waiting for the console if another vCPU is
/// printing (its CPUs have no guest to run meanwhile).
pub fn drain_all(partition: &Partition) {
    while !begin_printing(partition) {
        // The printer may be a CPU that crashed: then stop here.
        if crate::smp::stop_requested() {
            crate::smp::acknowledge_stop();
            cpu::park();
        }
        // The event stream ends the wait within about a millisecond.
        cpu::wait_for_event();
    }
    let mut line = [0u8; MAX_LINE];
    while print_one(partition, &mut line, u64::MAX, Lock::Wait) {}
    TURNS.end();
    cpu::send_event();
}

/// Takes the console for `partition`'s lines ([`ConsoleTurns::begin`]).
fn begin_printing(partition: &Partition) -> bool {
    let index = partitions()
        .iter()
        .position(|p| core::ptr::eq(p, partition));
    TURNS.begin(index)
}

/// Makes this CPU's timer fire [`RETRY_MS`] from now (or sooner, if set).
fn retry_soon() {
    hyp_timer::fire_by(cpu::counter().saturating_add(console::ticks_in_ms(RETRY_MS)));
}

/// Tessera's timer fired on this CPU, which runs a vCPU of `partition`:
/// prints its waiting lines and its unfinished line if that is due, and
/// sets the timer again for an unfinished line still to come.
pub fn timer_fired(partition: &Partition) {
    drain(partition);
    if let Some(due) = partition.uart.lock().unfinished_due {
        // Not sooner than a retry: one already due is printed then.
        let soonest = cpu::counter().saturating_add(console::ticks_in_ms(RETRY_MS));
        hyp_timer::fire_by(due.max(soonest));
    }
}
