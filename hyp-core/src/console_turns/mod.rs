//! Whose turn it is on the physical console: the decision behind
//! partitions' output (`partition/output.rs`), made with two atomics so that
//! no vCPU ever waits for another partition's output.
//!
//! One partition prints at a time. A partition whose vCPU finds the
//! console taken by another partition is marked waiting; once the console
//! is free, partitions marked waiting go first, so a partition that prints
//! without pause cannot keep the others' lines waiting. A sibling vCPU
//! printing the same partition's lines takes no turn from anyone: it is
//! not marked.

#[cfg(test)]
mod tests;

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The console's turns among partitions, by their index (0 to 63; a
/// partition beyond takes turns but is never marked waiting).
#[derive(Debug, Default)]
pub struct ConsoleTurns {
    /// The partition printing, as its index + 1 ([`NOBODY`]: nobody).
    printing: AtomicUsize,
    /// Partitions (a bit each) that found another printing and have not
    /// had their turn since.
    waiting: AtomicU64,
}

const NOBODY: usize = 0;

impl ConsoleTurns {
    pub const fn new() -> ConsoleTurns {
        ConsoleTurns {
            printing: AtomicUsize::new(NOBODY),
            waiting: AtomicU64::new(0),
        }
    }

    /// Takes the console for partition `index` if it is free and no other
    /// partition waits for its turn; otherwise marks it waiting (unless the
    /// partition printing is its own). `None` stands for a partition not
    /// in the list: it may print, never waits.
    pub fn begin(&self, index: Option<usize>) -> bool {
        // Never NOBODY, even for a partition not in the list.
        let me = index.map_or(usize::MAX, |index| index.saturating_add(1));
        let bit = index
            .and_then(|index| u32::try_from(index).ok())
            .and_then(|index| 1u64.checked_shl(index))
            .unwrap_or(0);
        let waiting = self.waiting.load(Ordering::Acquire);
        let others_first = waiting != 0 && waiting & bit == 0;
        if !others_first {
            match self
                .printing
                .compare_exchange(NOBODY, me, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => {
                    if waiting & bit != 0 {
                        self.waiting.fetch_and(!bit, Ordering::AcqRel);
                    }
                    return true;
                }
                Err(owner) if owner == me => return false,
                Err(_) => {}
            }
        }
        self.waiting.fetch_or(bit, Ordering::AcqRel);
        false
    }

    /// The partition that began printing is done.
    pub fn end(&self) {
        self.printing.store(NOBODY, Ordering::Release);
    }
}
