//! What a partition's virtual GIC knows about each of its interrupts:
//! enabled, waiting for a list register, priority, group, trigger, target.
//!
//! "Pending" here means pending in software: not yet in a list register.
//! Once the owning CPU moves an interrupt into a list register, the GIC's
//! virtual CPU interface holds its pending and active state, and the guest's
//! acknowledge and deactivation happen in hardware without a trap.

use alloc::vec;
use alloc::vec::Vec;

use crate::hw::gic::GicVersion;

/// SGIs are INTIDs 0-15, PPIs 16-31 (banked per vCPU); SPIs start at 32.
pub const SGI_COUNT: u32 = 16;
pub const PRIVATE_COUNT: u32 = 32;
/// Priority bits the virtual GIC keeps: the top five, which is what a
/// GICv2 list register holds (GICH_LR.Priority, bits [27:23]).
pub const PRIORITY_MASK: u8 = 0xf8;
/// Most vCPUs a partition's virtual GIC serves (GICv2's CPU target bits).
pub const MAX_VCPUS: usize = 8;
/// Target of an SPI routed to no vCPU (a GICv2 target byte of 0).
pub const NO_TARGET: u8 = u8::MAX;

/// One interrupt as the guest configured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Irq {
    pub enabled: bool,
    /// Waiting to be put in a list register.
    pub pending: bool,
    pub group1: bool,
    /// Edge-triggered (GICD_ICFGR), else level-sensitive.
    pub edge: bool,
    pub priority: u8,
    /// The vCPU an SPI goes to ([`NO_TARGET`]: none). Unused for SGIs/PPIs.
    pub target: u8,
    /// Hardware-linked: the physical interrupt with the same INTID stays
    /// active until the guest deactivates this one.
    pub hw: bool,
}

/// The interrupts banked per vCPU.
#[derive(Debug, Clone)]
pub struct Private {
    pub irqs: [Irq; PRIVATE_COUNT as usize],
    /// GICv2: for each SGI, the sending vCPUs still to be delivered
    /// (GICv2 tells the guest the source of an SGI). GICv3: bit 0 only.
    pub sgi_sources: [u8; SGI_COUNT as usize],
    /// GICR_WAKER.ProcessorSleep (GICv3 only).
    pub asleep: bool,
    /// A bit per INTID whose `pending` is set: what a flush looks at.
    pending: u32,
}

impl Private {
    fn new() -> Private {
        let mut irqs = [Irq::default(); PRIVATE_COUNT as usize];
        for (intid, irq) in irqs.iter_mut().enumerate() {
            // SGIs are always edge-triggered; PPIs here are level (timers).
            irq.edge = intid < SGI_COUNT as usize;
        }
        Private {
            irqs,
            sgi_sources: [0; SGI_COUNT as usize],
            asleep: true,
            pending: 0,
        }
    }
}

/// An interrupt ready for a list register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub intid: u32,
    pub priority: u8,
    pub group1: bool,
    pub hw: bool,
    /// Sending vCPU of an SGI on GICv2 (0 otherwise).
    pub source: u8,
}

/// A partition's virtual GIC state.
#[derive(Debug, Clone)]
pub struct VgicState {
    pub version: GicVersion,
    /// GICD_CTLR's group enables: bit 0 Group 0, bit 1 Group 1.
    pub group_enables: u8,
    private: Vec<Private>,
    /// INTIDs 32.. up to the virtual distributor's last line: `None` where
    /// the partition does not own the SPI.
    spis: Vec<Option<Irq>>,
    /// A bit per SPI whose `pending` is set (bit 0 of word 0: INTID 32), so
    /// that a flush visits pending interrupts only, not every line.
    spi_pending: Vec<u32>,
}

impl VgicState {
    /// A GIC in its reset state for `vcpus` vCPUs that owns the SPIs in
    /// `owned_spis`, each given as (INTID, hardware-linked).
    pub fn new(version: GicVersion, vcpus: usize, owned_spis: &[(u32, bool)]) -> VgicState {
        let highest = owned_spis
            .iter()
            .map(|&(intid, _)| intid)
            .max()
            .unwrap_or(0);
        // At least one register's worth of SPIs, in whole registers.
        let lines = (highest + 1)
            .max(2 * PRIVATE_COUNT)
            .next_multiple_of(PRIVATE_COUNT);
        let mut spis = vec![None; (lines - PRIVATE_COUNT) as usize];
        for &(intid, hw) in owned_spis {
            if let Some(slot) = intid
                .checked_sub(PRIVATE_COUNT)
                .and_then(|index| spis.get_mut(index as usize))
            {
                *slot = Some(Irq {
                    hw,
                    target: 0,
                    ..Irq::default()
                });
            }
        }
        VgicState {
            version,
            group_enables: 0,
            private: vec![Private::new(); vcpus.min(MAX_VCPUS)],
            spi_pending: vec![0; spis.len().div_ceil(32)],
            spis,
        }
    }

    pub fn vcpus(&self) -> usize {
        self.private.len()
    }

    /// Interrupt lines of the virtual distributor, SGIs and PPIs included.
    pub fn lines(&self) -> u32 {
        PRIVATE_COUNT + u32::try_from(self.spis.len()).unwrap_or(0)
    }

    pub fn private(&self, vcpu: usize) -> Option<&Private> {
        self.private.get(vcpu)
    }

    pub fn private_mut(&mut self, vcpu: usize) -> Option<&mut Private> {
        self.private.get_mut(vcpu)
    }

    /// Interrupt `intid` as seen by `vcpu`: `None` for an SPI the partition
    /// does not own or an INTID beyond its lines.
    pub fn irq(&self, vcpu: usize, intid: u32) -> Option<&Irq> {
        if intid < PRIVATE_COUNT {
            self.private.get(vcpu)?.irqs.get(intid as usize)
        } else {
            self.spis.get((intid - PRIVATE_COUNT) as usize)?.as_ref()
        }
    }

    pub fn irq_mut(&mut self, vcpu: usize, intid: u32) -> Option<&mut Irq> {
        if intid < PRIVATE_COUNT {
            self.private.get_mut(vcpu)?.irqs.get_mut(intid as usize)
        } else {
            self.spis
                .get_mut((intid - PRIVATE_COUNT) as usize)?
                .as_mut()
        }
    }

    /// Whether the partition owns `intid` (every SGI and PPI, its SPIs).
    pub fn owns(&self, intid: u32) -> bool {
        self.irq(0, intid).is_some()
    }

    /// The vCPU `intid` (as `vcpu` names it) is delivered to.
    pub fn destination(&self, vcpu: usize, intid: u32) -> Option<usize> {
        if intid < PRIVATE_COUNT {
            return (vcpu < self.vcpus()).then_some(vcpu);
        }
        let target = self.irq(vcpu, intid)?.target;
        (usize::from(target) < self.vcpus()).then_some(usize::from(target))
    }

    /// Makes `intid` pending (an SGI from `source`); returns the vCPU to
    /// wake if it can now be delivered.
    pub fn set_pending(&mut self, vcpu: usize, intid: u32, source: usize) -> Option<usize> {
        let destination = self.destination(vcpu, intid)?;
        let sgi = intid < SGI_COUNT;
        let per_source = self.version == GicVersion::V2;
        let irq = self.irq_mut(destination, intid)?;
        irq.pending = true;
        self.mark_pending(destination, intid, true);
        if sgi && let Some(bank) = self.private.get_mut(destination) {
            let bit = if per_source {
                1 << (source % MAX_VCPUS)
            } else {
                1
            };
            if let Some(sources) = bank.sgi_sources.get_mut(intid as usize) {
                *sources |= bit;
            }
        }
        self.deliverable(destination, intid).then_some(destination)
    }

    /// The vCPU to wake for `intid` of `vcpu`, if it is deliverable now.
    pub fn pending_destination(&self, vcpu: usize, intid: u32) -> Option<usize> {
        let destination = self.destination(vcpu, intid)?;
        self.deliverable(destination, intid).then_some(destination)
    }

    /// Clears software-pending `intid` of `vcpu` (all SGI sources).
    pub fn clear_pending(&mut self, vcpu: usize, intid: u32) {
        if let Some(irq) = self.irq_mut(vcpu, intid) {
            irq.pending = false;
        }
        self.mark_pending(vcpu, intid, false);
        if intid < SGI_COUNT
            && let Some(sources) = self
                .private
                .get_mut(vcpu)
                .and_then(|bank| bank.sgi_sources.get_mut(intid as usize))
        {
            *sources = 0;
        }
    }

    /// Marks `candidate` as moved into a list register.
    pub fn taken(&mut self, vcpu: usize, candidate: &Candidate) {
        if candidate.intid >= SGI_COUNT {
            self.clear_pending(vcpu, candidate.intid);
            return;
        }
        let Some(bank) = self.private.get_mut(vcpu) else {
            return;
        };
        let Some(sources) = bank.sgi_sources.get_mut(candidate.intid as usize) else {
            return;
        };
        let bit = if self.version == GicVersion::V2 {
            1 << candidate.source
        } else {
            1
        };
        *sources &= !bit;
        let left = *sources != 0;
        if let Some(irq) = bank.irqs.get_mut(candidate.intid as usize) {
            irq.pending = left;
        }
        self.mark_pending(vcpu, candidate.intid, left);
    }

    /// Keeps the pending bitmaps in step with `Irq::pending`.
    fn mark_pending(&mut self, vcpu: usize, intid: u32, pending: bool) {
        let word = if intid < PRIVATE_COUNT {
            self.private.get_mut(vcpu).map(|bank| &mut bank.pending)
        } else {
            self.spi_pending
                .get_mut(((intid - PRIVATE_COUNT) / 32) as usize)
        };
        if let Some(word) = word {
            let bit = 1 << (intid % 32);
            if pending {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    /// The INTIDs with `pending` set that `vcpu` sees, in ascending order.
    fn pending_intids(&self, vcpu: usize) -> PendingIntids<'_> {
        PendingIntids {
            word: self.private.get(vcpu).map_or(0, |bank| bank.pending),
            base: 0,
            spi_words: self.spi_pending.iter(),
        }
    }

    /// Whether `intid` of `vcpu` is pending, enabled and in an enabled group.
    fn deliverable(&self, vcpu: usize, intid: u32) -> bool {
        self.irq(vcpu, intid).is_some_and(|irq| {
            irq.pending && irq.enabled && self.group_enables & (1 << u8::from(irq.group1)) != 0
        })
    }

    /// Whether `vcpu` has anything to put in a list register.
    pub fn has_deliverable(&self, vcpu: usize) -> bool {
        self.pending_intids(vcpu)
            .any(|intid| self.delivers_to(vcpu, intid))
    }

    fn delivers_to(&self, vcpu: usize, intid: u32) -> bool {
        self.irq(vcpu, intid)
            .is_some_and(|irq| self.delivers(vcpu, intid, irq))
    }

    /// `intid` of `vcpu` as a list-register candidate, if it is hardware-
    /// linked, deliverable to `vcpu` itself once pending, and not pending in
    /// software already (then it waits its turn there).
    pub fn hardware_candidate(&self, vcpu: usize, intid: u32) -> Option<Candidate> {
        let irq = self.irq(vcpu, intid)?;
        let pending_now = Irq {
            pending: true,
            ..*irq
        };
        (irq.hw && !irq.pending && self.delivers(vcpu, intid, &pending_now)).then_some(Candidate {
            intid,
            priority: irq.priority,
            group1: irq.group1,
            hw: true,
            source: 0,
        })
    }

    /// Whether `irq` (`intid` of `vcpu`) is deliverable to `vcpu` itself.
    fn delivers(&self, vcpu: usize, intid: u32, irq: &Irq) -> bool {
        irq.pending
            && irq.enabled
            && self.group_enables & (1 << u8::from(irq.group1)) != 0
            && (intid < PRIVATE_COUNT || usize::from(irq.target) == vcpu)
    }

    /// Fills `best` (emptied first) with the `N` most urgent deliverable
    /// interrupts of `vcpu`, most urgent first (lowest priority value, then
    /// lowest INTID, as the GIC orders them); returns whether there were
    /// more. Filled in place: returned, the list is copied on every flush.
    pub fn most_urgent<const N: usize>(
        &self,
        vcpu: usize,
        best: &mut heapless::Vec<Candidate, N>,
    ) -> bool {
        best.clear();
        let mut more = false;
        for intid in self.pending_intids(vcpu) {
            let Some(irq) = self
                .irq(vcpu, intid)
                .filter(|irq| self.delivers(vcpu, intid, irq))
            else {
                continue;
            };
            let candidate = Candidate {
                intid,
                priority: irq.priority,
                group1: irq.group1,
                hw: irq.hw,
                source: self.sgi_source(vcpu, intid),
            };
            // INTIDs come in ascending order: ties keep the earlier one first.
            let position = best
                .iter()
                .position(|c| c.priority > candidate.priority)
                .unwrap_or(best.len());
            if position == N {
                more = true;
                continue;
            }
            if best.is_full() {
                best.pop();
                more = true;
            }
            let _ = best.insert(position, candidate);
        }
        more
    }

    /// The lowest-numbered vCPU still to deliver SGI `intid` on GICv2.
    fn sgi_source(&self, vcpu: usize, intid: u32) -> u8 {
        if intid >= SGI_COUNT || self.version != GicVersion::V2 {
            return 0;
        }
        self.private
            .get(vcpu)
            .and_then(|bank| bank.sgi_sources.get(intid as usize))
            .map_or(0, |&sources| {
                u8::try_from(sources.trailing_zeros()).unwrap_or(0) % 8
            })
    }
}
/// The set bits of the private pending word, then of each SPI word: a
/// plain loop that skips empty words, since it runs at every flush.
struct PendingIntids<'a> {
    /// What is left of the current word, and the INTID of its bit 0.
    word: u32,
    base: u32,
    spi_words: core::slice::Iter<'a, u32>,
}

impl Iterator for PendingIntids<'_> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        while self.word == 0 {
            self.word = *self.spi_words.next()?;
            self.base = if self.base == 0 {
                PRIVATE_COUNT
            } else {
                self.base + 32
            };
        }
        let bit = self.word.trailing_zeros();
        self.word &= self.word - 1;
        Some(self.base + bit)
    }
}
