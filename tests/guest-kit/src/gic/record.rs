//! What one vCPU received: counts per INTID and the order of arrival.
//!
//! A [`Record`] is written by one vCPU only (its IRQ handler, with
//! interrupts masked) and read by any: every field is an atomic that is only
//! loaded and stored, never read-modify-written (see the crate
//! documentation), so a reader on another vCPU may see a count one behind,
//! never a torn one. Readers compare [`Snapshot`]s taken before and after
//! a test instead of resetting another vCPU's record.

use core::sync::atomic::{AtomicU8, AtomicU32, Ordering};

/// INTIDs counted one by one: the SGIs, the PPIs and the first SPIs. Any
/// other INTID is counted as "untracked", with the last one kept.
pub const TRACKED: usize = TRACKED_INTIDS as usize;
pub const TRACKED_INTIDS: u32 = 64;
/// Arrivals kept in order (a ring: the last `LOG_CAPACITY`).
pub const LOG_CAPACITY: usize = LOG_ENTRIES as usize;
const LOG_ENTRIES: u32 = 64;
/// What [`Record::source`] holds for an SGI that has not arrived or whose
/// source is unknown (GICv3 does not say).
pub const NO_SOURCE: u8 = 0xff;

/// One vCPU's arrivals.
pub struct Record {
    counts: [AtomicU32; TRACKED],
    untracked: AtomicU32,
    last_untracked: AtomicU32,
    spurious: AtomicU32,
    /// Every arrival, tracked or not, counted; `log[n % LOG_CAPACITY]` is
    /// the INTID of arrival n.
    arrivals: AtomicU32,
    log: [AtomicU32; LOG_CAPACITY],
    /// For each SGI, the source of its last arrival (GICv2), or NO_SOURCE.
    sources: [AtomicU8; 16],
}

impl Default for Record {
    fn default() -> Record {
        Record::new()
    }
}

fn bump(counter: &AtomicU32) {
    counter.store(
        counter.load(Ordering::SeqCst).wrapping_add(1),
        Ordering::SeqCst,
    );
}

impl Record {
    pub const fn new() -> Record {
        Record {
            counts: [const { AtomicU32::new(0) }; TRACKED],
            untracked: AtomicU32::new(0),
            last_untracked: AtomicU32::new(0),
            spurious: AtomicU32::new(0),
            arrivals: AtomicU32::new(0),
            log: [const { AtomicU32::new(0) }; LOG_CAPACITY],
            sources: [const { AtomicU8::new(NO_SOURCE) }; 16],
        }
    }

    /// Records the arrival of `intid` (from `source`, for a GICv2 SGI).
    /// Only the vCPU that owns the record may call this.
    pub fn note(&self, intid: u32, source: Option<u8>) {
        match self.counts.get(intid as usize) {
            Some(counter) => bump(counter),
            None => {
                self.last_untracked.store(intid, Ordering::SeqCst);
                bump(&self.untracked);
            }
        }
        if let Some(slot) = self.sources.get(intid as usize) {
            slot.store(source.unwrap_or(NO_SOURCE), Ordering::SeqCst);
        }
        let arrival = self.arrivals.load(Ordering::SeqCst);
        self.log[arrival as usize % LOG_CAPACITY].store(intid, Ordering::SeqCst);
        self.arrivals
            .store(arrival.wrapping_add(1), Ordering::SeqCst);
    }

    /// Records an acknowledge that found nothing pending (INTID 1023).
    pub fn note_spurious(&self) {
        bump(&self.spurious);
    }

    pub fn count(&self, intid: u32) -> u32 {
        self.counts
            .get(intid as usize)
            .map_or(0, |counter| counter.load(Ordering::SeqCst))
    }

    pub fn untracked(&self) -> u32 {
        self.untracked.load(Ordering::SeqCst)
    }

    pub fn last_untracked(&self) -> u32 {
        self.last_untracked.load(Ordering::SeqCst)
    }

    pub fn spurious(&self) -> u32 {
        self.spurious.load(Ordering::SeqCst)
    }

    /// How many interrupts have arrived in all.
    pub fn arrivals(&self) -> u32 {
        self.arrivals.load(Ordering::SeqCst)
    }

    /// The source of SGI `intid`'s last arrival, if known.
    pub fn source(&self, intid: u32) -> Option<u8> {
        let source = self.sources.get(intid as usize)?.load(Ordering::SeqCst);
        (source != NO_SOURCE).then_some(source)
    }

    /// The INTIDs of arrivals `from..` (an earlier [`Record::arrivals`])
    /// into `out`; returns how many. `Err(lost)` if more than
    /// [`LOG_CAPACITY`] have arrived since and `lost` were overwritten.
    pub fn arrivals_since(&self, from: u32, out: &mut [u32; LOG_CAPACITY]) -> Result<usize, u32> {
        let now = self.arrivals();
        let count = now.wrapping_sub(from);
        if count as usize > LOG_CAPACITY {
            return Err(count - LOG_ENTRIES);
        }
        for (index, slot) in (0..count).zip(out.iter_mut()) {
            let arrival = from.wrapping_add(index);
            *slot = self.log[arrival as usize % LOG_CAPACITY].load(Ordering::SeqCst);
        }
        Ok(count as usize)
    }

    pub fn snapshot(&self) -> Snapshot {
        let mut counts = [0; TRACKED];
        for (count, counter) in counts.iter_mut().zip(&self.counts) {
            *count = counter.load(Ordering::SeqCst);
        }
        Snapshot {
            counts,
            untracked: self.untracked(),
            spurious: self.spurious(),
            arrivals: self.arrivals(),
        }
    }
}

/// A record's counts at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub counts: [u32; TRACKED],
    pub untracked: u32,
    pub spurious: u32,
    pub arrivals: u32,
}

impl Snapshot {
    /// How many of `intid` arrived between `earlier` and this snapshot.
    pub fn since(&self, earlier: &Snapshot, intid: u32) -> u32 {
        let index = intid as usize;
        match (self.counts.get(index), earlier.counts.get(index)) {
            (Some(now), Some(before)) => now.wrapping_sub(*before),
            _ => 0,
        }
    }

    /// The INTIDs (tracked) that arrived between `earlier` and now, with
    /// their counts, except those `expected` allows; and how many untracked
    /// arrived. Empty and 0 when nothing else arrived.
    pub fn unexpected_since<const N: usize>(
        &self,
        earlier: &Snapshot,
        expected: impl Fn(u32) -> bool,
    ) -> (heapless::Vec<(u32, u32), N>, u32) {
        let mut unexpected = heapless::Vec::new();
        for intid in 0..TRACKED_INTIDS {
            let count = self.since(earlier, intid);
            if count > 0 && !expected(intid) {
                // Full: the first N are enough for a report.
                let _ = unexpected.push((intid, count));
            }
        }
        (unexpected, self.untracked.wrapping_sub(earlier.untracked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_are_counted_by_intid() {
        let record = Record::new();
        record.note(5, None);
        record.note(5, None);
        record.note(27, None);
        assert_eq!(record.count(5), 2);
        assert_eq!(record.count(27), 1);
        assert_eq!(record.count(6), 0);
        assert_eq!(record.arrivals(), 3);
    }

    #[test]
    fn intids_beyond_the_tracked_ones_are_counted_together() {
        let record = Record::new();
        record.note(97, None);
        record.note(200, None);
        assert_eq!(record.untracked(), 2);
        assert_eq!(record.last_untracked(), 200);
        assert_eq!(record.count(97), 0, "not tracked one by one");
    }

    #[test]
    fn sgi_sources_are_kept_per_sgi() {
        let record = Record::new();
        assert_eq!(record.source(3), None, "nothing arrived yet");
        record.note(3, Some(1));
        record.note(4, None);
        assert_eq!(record.source(3), Some(1));
        assert_eq!(record.source(4), None, "GICv3 gives no source");
        assert_eq!(record.source(27), None, "PPIs have no source");
    }

    #[test]
    fn the_log_gives_arrivals_in_order_since_a_point() {
        let record = Record::new();
        record.note(1, None);
        let from = record.arrivals();
        for intid in [9, 3, 14] {
            record.note(intid, None);
        }
        let mut out = [0; LOG_CAPACITY];
        assert_eq!(record.arrivals_since(from, &mut out), Ok(3));
        assert_eq!(&out[..3], &[9, 3, 14]);
    }

    #[test]
    fn the_log_says_how_many_arrivals_it_lost() {
        let record = Record::new();
        for _ in 0..LOG_CAPACITY + 5 {
            record.note(2, None);
        }
        let mut out = [0; LOG_CAPACITY];
        assert_eq!(record.arrivals_since(0, &mut out), Err(5));
        assert_eq!(record.arrivals_since(5, &mut out), Ok(LOG_CAPACITY));
    }

    #[test]
    fn snapshots_give_what_arrived_between_them() {
        let record = Record::new();
        record.note(27, None);
        let before = record.snapshot();
        record.note(27, None);
        record.note(8, None);
        record.note(8, None);
        record.note(100, None);
        let after = record.snapshot();
        assert_eq!(after.since(&before, 8), 2);
        assert_eq!(after.since(&before, 27), 1);
        let (unexpected, untracked) = after.unexpected_since::<4>(&before, |intid| intid == 27);
        assert_eq!(unexpected.as_slice(), &[(8, 2)]);
        assert_eq!(untracked, 1);
    }

    #[test]
    fn spurious_acknowledges_are_counted_apart() {
        let record = Record::new();
        record.note_spurious();
        assert_eq!(record.spurious(), 1);
        assert_eq!(record.arrivals(), 0, "a spurious INTID is no arrival");
    }
}
