//! Partitions' console output on the physical console. Whoever completes a
//! line drains every partition's whole lines if no one else is draining;
//! otherwise it returns at once and the drainer picks the line up, so a
//! vCPU never waits on another partition's output.

use core::sync::atomic::{AtomicBool, Ordering};

use super::partitions;
use crate::console;
use crate::guest::pl011::MAX_LINE;

static DRAINING: AtomicBool = AtomicBool::new(false);

/// Writes every waiting line of every partition to the console.
pub fn drain() {
    loop {
        if DRAINING
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let mut line = [0u8; MAX_LINE];
        for partition in partitions() {
            loop {
                // Take one line under the lock, print it without.
                let taken = partition
                    .uart
                    .try_lock()
                    .and_then(|mut uart| uart.output.take_line(&mut line));
                let Some(length) = taken else { break };
                console::write_partition_line(partition.name(), line.get(..length).unwrap_or(&[]));
            }
        }
        DRAINING.store(false, Ordering::Release);
        // A line completed after its partition was scanned would otherwise
        // wait for the next one.
        let pending = partitions()
            .iter()
            .any(|p| p.uart.try_lock().is_some_and(|uart| uart.output.has_line()));
        if !pending {
            return;
        }
    }
}
