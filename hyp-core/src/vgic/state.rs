//! What a partition's virtual GIC knows about each of its interrupts:
//! enabled, pending and active in software, priority, group, trigger,
//! routing.
//!
//! "Pending" and "active" here mean held in software: not in a list
//! register. Once the owning CPU moves an interrupt into a list register,
//! the GIC's virtual CPU interface holds its pending and active state, and
//! the guest's acknowledge and deactivation happen in hardware without a
//! trap; an access to the emulated pending and active registers first
//! takes the list registers back ([`super::flush::take_back_all`]), so that
//! software holds the whole state while the access acts on it.

use alloc::vec;
use alloc::vec::Vec;

use crate::hw::gic::GicVersion;

/// SGIs are INTIDs 0-15, PPIs 16-31 (banked per vCPU); SPIs start at 32.
pub const SGI_COUNT: u32 = 16;
pub const PRIVATE_COUNT: u32 = 32;
/// Priority bits the virtual GIC keeps: the top five, which is what a
/// GICv2 list register holds (GICH_LR.Priority, bits [27:23]).
pub const PRIORITY_MASK: u8 = 0xf8;
/// Target of an SPI routed to no vCPU (a GICv3 affinity no vCPU has).
pub const NO_TARGET: u8 = u8::MAX;

/// Most vCPUs a GICv2 partition may have: the architecture's limit (eight
/// CPU interfaces: GICD_ITARGETSR bytes, the SGI source field).
pub const MAX_VCPUS_V2: usize = 8;
/// Most vCPUs a GICv3 partition may have: as many as Tessera runs CPUs
/// (`hw::cpus::MAX_CPUS`), all named by Aff0 in one ICC_SGI1R_EL1 target
/// list.
pub const MAX_VCPUS_V3: usize = VcpuSet::CAPACITY;

const _: () = assert!(crate::hw::cpus::MAX_CPUS <= MAX_VCPUS_V3);

/// Most vCPUs the virtual GIC of `version` serves in one partition.
pub const fn max_vcpus(version: GicVersion) -> usize {
    match version {
        GicVersion::V2 => MAX_VCPUS_V2,
        GicVersion::V3 => MAX_VCPUS_V3,
    }
}

/// A set of a partition's vCPUs, by index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VcpuSet(u16);

impl VcpuSet {
    pub const CAPACITY: usize = 16;
    pub const EMPTY: VcpuSet = VcpuSet(0);

    /// `vcpu` alone (nobody if out of range).
    pub fn of(vcpu: usize) -> VcpuSet {
        let mut set = VcpuSet::EMPTY;
        set.insert(vcpu);
        set
    }

    /// vCPUs 0 to `count` - 1.
    pub fn first(count: usize) -> VcpuSet {
        let bits = 1u32
            .checked_shl(u32::try_from(count.min(Self::CAPACITY)).unwrap_or(0))
            .map_or(u32::MAX, |bit| bit - 1);
        VcpuSet(u16::try_from(bits & 0xffff).unwrap_or(u16::MAX))
    }

    /// The vCPUs whose bits are set in `bits` (bit n: vCPU n).
    pub fn from_bits(bits: u16) -> VcpuSet {
        VcpuSet(bits)
    }

    pub fn bits(self) -> u16 {
        self.0
    }

    pub fn insert(&mut self, vcpu: usize) {
        if vcpu < Self::CAPACITY {
            self.0 |= 1 << vcpu;
        }
    }

    pub fn remove(&mut self, vcpu: usize) {
        if vcpu < Self::CAPACITY {
            self.0 &= !(1 << vcpu);
        }
    }

    pub fn contains(self, vcpu: usize) -> bool {
        vcpu < Self::CAPACITY && self.0 & (1 << vcpu) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn union(self, other: VcpuSet) -> VcpuSet {
        VcpuSet(self.0 | other.0)
    }

    pub fn intersection(self, other: VcpuSet) -> VcpuSet {
        VcpuSet(self.0 & other.0)
    }

    /// The lowest-numbered vCPU in the set.
    pub fn lowest(self) -> Option<usize> {
        (self.0 != 0).then(|| self.0.trailing_zeros() as usize)
    }

    /// The vCPUs in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        let mut left = self.0;
        core::iter::from_fn(move || {
            let vcpu = (left != 0).then(|| left.trailing_zeros() as usize)?;
            left &= left - 1;
            Some(vcpu)
        })
    }
}

/// One interrupt as the guest configured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Irq {
    pub enabled: bool,
    /// Waiting to be put in a list register.
    pub pending: bool,
    /// Active, and in no list register (taken back, or set by the guest
    /// through ISACTIVER): listed before anything pending.
    pub active: bool,
    /// Hardware-linked only: the guest made it pending (ISPENDR) and has
    /// not acknowledged or cleared it since, so a sample of its source
    /// that finds the line low does not withdraw it.
    pub latched: bool,
    /// Hardware-linked only: pending while active, a state the physical
    /// GIC holds (Tessera set the physical interrupt pending) until it
    /// fires again once the guest has ended it.
    pub pending_in_hardware: bool,
    /// An SPI active in software: the vCPU whose list registers held it,
    /// which alone lists it again (the guest ends it there) and receives
    /// it until then, wherever the guest routes it meanwhile (as KVM's
    /// `vgic_target_oracle`).
    pub active_on: u8,
    /// An SPI in a list register: the vCPU whose registers hold it (the
    /// guest may end it there without a trap, so this holds until that
    /// vCPU's next flush or take-back finds it gone; [`NO_TARGET`]: none).
    /// Until then it is that vCPU's: pending again, it merges there; the
    /// other vCPUs park for it.
    pub listed_on: u8,
    pub group1: bool,
    /// Edge-triggered (GICD_ICFGR), else level-sensitive.
    pub edge: bool,
    pub priority: u8,
    /// The vCPU an SPI goes to ([`NO_TARGET`]: none). Unused for SGIs/PPIs.
    pub target: u8,
    /// An SPI's routing register as the guest reads it back: the GICv2
    /// GICD_ITARGETSR byte or the GICv3 GICD_IROUTER value.
    pub routing: u64,
    /// Hardware-linked: the physical interrupt with the same INTID stays
    /// active until the guest deactivates this one.
    pub hw: bool,
}

/// The interrupts banked per vCPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Private {
    pub irqs: [Irq; PRIVATE_COUNT as usize],
    /// GICv2: for each SGI, the sending vCPUs still to be delivered
    /// (GICv2 tells the guest the source of an SGI). GICv3: bit 0 only.
    pub sgi_sources: [u8; SGI_COUNT as usize],
    /// The same for the SGIs active in software, by source.
    pub sgi_active: [u8; SGI_COUNT as usize],
    /// GICR_WAKER.ProcessorSleep (GICv3 only).
    pub asleep: bool,
    /// A bit per INTID whose `pending` is set: what a flush looks at.
    pending: u32,
    /// A bit per INTID whose `active` is set.
    active: u32,
    /// The SPIs this vCPU has put in its list registers and not yet seen
    /// gone (see [`Irq::listed_on`]).
    listed_spis: heapless::Vec<u32, LISTED_SPIS>,
}

/// Most SPIs a vCPU's list registers hold at once.
const LISTED_SPIS: usize = super::flush::MAX_LIST_REGISTERS;

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
            sgi_active: [0; SGI_COUNT as usize],
            asleep: true,
            pending: 0,
            active: 0,
            listed_spis: heapless::Vec::new(),
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
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// A bit per SPI whose `active` is set.
    spi_active: Vec<u32>,
}

/// Which per-INTID bitmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bitmap {
    Pending,
    Active,
}

impl VgicState {
    /// A GIC in its reset state for `vcpus` vCPUs (at most what the
    /// version serves: configuration checking refuses more) that owns the
    /// SPIs in `owned_spis`, each given as (INTID, hardware-linked).
    pub fn new(version: GicVersion, vcpus: usize, owned_spis: &[(u32, bool)]) -> VgicState {
        let vcpus = vcpus.clamp(1, max_vcpus(version));
        let highest = owned_spis
            .iter()
            .map(|&(intid, _)| intid)
            .max()
            .unwrap_or(0);
        // At least one register's worth of SPIs, in whole registers.
        let lines = highest
            .saturating_add(1)
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
                    routing: reset_routing(version, vcpus),
                    listed_on: NO_TARGET,
                    ..Irq::default()
                });
            }
        }
        let words = spis.len().div_ceil(32);
        VgicState {
            version,
            group_enables: 0,
            private: vec![Private::new(); vcpus],
            spi_pending: vec![0; words],
            spi_active: vec![0; words],
            spis,
        }
    }

    pub fn vcpus(&self) -> usize {
        self.private.len()
    }

    /// Every vCPU of the partition.
    pub fn all_vcpus(&self) -> VcpuSet {
        VcpuSet::first(self.vcpus())
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

    /// The vCPU `intid` (as `vcpu` names it) is delivered to, and whose
    /// list registers alone may hold it: an active SPI's stays where it is
    /// active until the guest ends it there.
    pub fn destination(&self, vcpu: usize, intid: u32) -> Option<usize> {
        if intid < PRIVATE_COUNT {
            return (vcpu < self.vcpus()).then_some(vcpu);
        }
        let irq = self.irq(vcpu, intid)?;
        let holder = if irq.listed_on != NO_TARGET {
            irq.listed_on
        } else if irq.active {
            irq.active_on
        } else {
            irq.target
        };
        (usize::from(holder) < self.vcpus()).then_some(usize::from(holder))
    }

    /// The bit for `source` in an SGI's per-source bitmap.
    fn source_bit(&self, source: usize) -> u8 {
        if self.version == GicVersion::V2 {
            1u8.checked_shl(u32::try_from(source).unwrap_or(u32::MAX))
                .unwrap_or(0)
        } else {
            1
        }
    }

    /// Makes `intid` pending (an SGI from `source`); returns the vCPU to
    /// wake if it can now be delivered.
    /// An SPI routed to no vCPU is pending all the same, and delivered
    /// once the guest routes it.
    pub fn set_pending(&mut self, vcpu: usize, intid: u32, source: usize) -> Option<usize> {
        let destination = self.destination(vcpu, intid);
        // SPIs are not banked: any bank index names them.
        let bank = destination.unwrap_or(vcpu);
        let bit = self.source_bit(source);
        let irq = self.irq_mut(bank, intid)?;
        irq.pending = true;
        self.mark(Bitmap::Pending, bank, intid, true);
        if let Some(sources) = self.sgi_sources_mut(bank, intid) {
            *sources |= bit;
        }
        let destination = destination?;
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
        self.mark(Bitmap::Pending, vcpu, intid, false);
        if let Some(sources) = self.sgi_sources_mut(vcpu, intid) {
            *sources = 0;
        }
    }

    /// Makes `intid` of `vcpu` active in software (an SGI from `source`),
    /// or inactive (`active` false: every source). An SPI made active is
    /// held by `vcpu`.
    pub fn set_active(&mut self, vcpu: usize, intid: u32, source: usize, active: bool) {
        let bit = self.source_bit(source);
        let Some(irq) = self.irq_mut(vcpu, intid) else {
            return;
        };
        irq.active = active;
        if active {
            irq.active_on = u8::try_from(vcpu).unwrap_or(NO_TARGET);
        }
        self.mark(Bitmap::Active, vcpu, intid, active);
        if intid < SGI_COUNT
            && let Some(sources) = self
                .private
                .get_mut(vcpu)
                .and_then(|bank| bank.sgi_active.get_mut(intid as usize))
        {
            *sources = if active { *sources | bit } else { 0 };
        }
    }

    fn sgi_sources_mut(&mut self, vcpu: usize, intid: u32) -> Option<&mut u8> {
        if intid >= SGI_COUNT {
            return None;
        }
        self.private
            .get_mut(vcpu)?
            .sgi_sources
            .get_mut(intid as usize)
    }

    /// Marks the pending part of `candidate` as moved into a list register.
    pub fn taken(&mut self, vcpu: usize, candidate: &Candidate) {
        if candidate.intid >= SGI_COUNT {
            self.clear_pending(vcpu, candidate.intid);
            return;
        }
        let bit = self.source_bit(usize::from(candidate.source));
        let Some(sources) = self.sgi_sources_mut(vcpu, candidate.intid) else {
            return;
        };
        *sources &= !bit;
        let left = *sources != 0;
        if let Some(irq) = self.irq_mut(vcpu, candidate.intid) {
            irq.pending = left;
        }
        self.mark(Bitmap::Pending, vcpu, candidate.intid, left);
    }

    /// Marks the active part of `candidate` as moved into a list register.
    pub fn taken_active(&mut self, vcpu: usize, candidate: &Candidate) {
        if candidate.intid >= SGI_COUNT {
            self.set_active(vcpu, candidate.intid, 0, false);
            return;
        }
        let bit = self.source_bit(usize::from(candidate.source));
        let Some(sources) = self
            .private
            .get_mut(vcpu)
            .and_then(|bank| bank.sgi_active.get_mut(candidate.intid as usize))
        else {
            return;
        };
        *sources &= !bit;
        let left = *sources != 0;
        if let Some(irq) = self.irq_mut(vcpu, candidate.intid) {
            irq.active = left;
        }
        self.mark(Bitmap::Active, vcpu, candidate.intid, left);
    }

    /// `intid` went into `vcpu`'s list registers (SPIs are remembered
    /// there until found gone).
    pub fn listed(&mut self, vcpu: usize, intid: u32) {
        if intid < PRIVATE_COUNT {
            return;
        }
        let holder = u8::try_from(vcpu).unwrap_or(NO_TARGET);
        if let Some(irq) = self.irq_mut(vcpu, intid) {
            irq.listed_on = holder;
        }
        if let Some(bank) = self.private.get_mut(vcpu)
            && !bank.listed_spis.contains(&intid)
        {
            // At most one per list register: never full.
            let _ = bank.listed_spis.push(intid);
        }
    }

    /// `intid` left `vcpu`'s list registers (taken back, displaced, or
    /// ended by the guest).
    pub fn unlisted(&mut self, vcpu: usize, intid: u32) {
        if intid < PRIVATE_COUNT {
            return;
        }
        if let Some(irq) = self.irq_mut(vcpu, intid)
            && usize::from(irq.listed_on) == vcpu
        {
            irq.listed_on = NO_TARGET;
        }
        if let Some(bank) = self.private.get_mut(vcpu) {
            bank.listed_spis.retain(|&listed| listed != intid);
        }
    }

    /// The SPIs active in software that `vcpu` holds.
    pub fn spis_active_on(&self, vcpu: usize) -> heapless::Vec<u32, LISTED_SPIS> {
        let mut found = heapless::Vec::new();
        for intid in self
            .active_intids(vcpu)
            .filter(|&intid| intid >= PRIVATE_COUNT)
        {
            if self
                .irq(vcpu, intid)
                .is_some_and(|irq| usize::from(irq.active_on) == vcpu)
                && found.push(intid).is_err()
            {
                break;
            }
        }
        found
    }

    /// Whether `vcpu` remembers listing any SPI.
    pub fn has_listed_spis(&self, vcpu: usize) -> bool {
        self.private
            .get(vcpu)
            .is_some_and(|bank| !bank.listed_spis.is_empty())
    }

    /// The SPIs `vcpu` remembers listing that `holds` says its list
    /// registers no longer hold are forgotten; returns the vCPUs that may
    /// now deliver one of them (pending again meanwhile).
    pub fn forget_ended(&mut self, vcpu: usize, holds: impl Fn(u32) -> bool) -> VcpuSet {
        let mut wake = VcpuSet::EMPTY;
        let Some(listed) = self.private.get(vcpu).map(|bank| bank.listed_spis.clone()) else {
            return wake;
        };
        for intid in listed.into_iter().filter(|&intid| !holds(intid)) {
            self.unlisted(vcpu, intid);
            if let Some(destination) = self.pending_destination(vcpu, intid) {
                wake.insert(destination);
            }
        }
        wake
    }

    /// Keeps the pending and active bitmaps in step with `Irq`.
    fn mark(&mut self, bitmap: Bitmap, vcpu: usize, intid: u32, set: bool) {
        let word = if intid < PRIVATE_COUNT {
            self.private.get_mut(vcpu).map(|bank| match bitmap {
                Bitmap::Pending => &mut bank.pending,
                Bitmap::Active => &mut bank.active,
            })
        } else {
            let index = ((intid - PRIVATE_COUNT) / 32) as usize;
            match bitmap {
                Bitmap::Pending => self.spi_pending.get_mut(index),
                Bitmap::Active => self.spi_active.get_mut(index),
            }
        };
        if let Some(word) = word {
            let bit = 1 << (intid % 32);
            if set {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    /// The INTIDs with `pending` set that `vcpu` sees, in ascending order.
    fn pending_intids(&self, vcpu: usize) -> SetBits<'_> {
        SetBits {
            word: self.private.get(vcpu).map_or(0, |bank| bank.pending),
            base: 0,
            spi_words: self.spi_pending.iter(),
        }
    }

    /// The INTIDs with `active` set that `vcpu` sees, in ascending order.
    fn active_intids(&self, vcpu: usize) -> SetBits<'_> {
        SetBits {
            word: self.private.get(vcpu).map_or(0, |bank| bank.active),
            base: 0,
            spi_words: self.spi_active.iter(),
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
    /// linked, deliverable to `vcpu` itself once pending, and neither
    /// pending nor active in software already (then it waits its turn
    /// there).
    pub fn hardware_candidate(&self, vcpu: usize, intid: u32) -> Option<Candidate> {
        let irq = self.irq(vcpu, intid)?;
        (irq.hw && !irq.pending && !irq.active && self.would_deliver(vcpu, intid, irq)).then_some(
            Candidate {
                intid,
                priority: irq.priority,
                group1: irq.group1,
                hw: true,
                source: 0,
            },
        )
    }

    /// Whether `irq` (`intid` of `vcpu`) is deliverable to `vcpu` itself.
    fn delivers(&self, vcpu: usize, intid: u32, irq: &Irq) -> bool {
        irq.pending && self.would_deliver(vcpu, intid, irq)
    }

    /// Whether `irq` would be deliverable to `vcpu` itself once pending.
    fn would_deliver(&self, vcpu: usize, intid: u32, irq: &Irq) -> bool {
        irq.enabled
            && self.group_enables & (1 << u8::from(irq.group1)) != 0
            && (intid < PRIVATE_COUNT || self.destination(vcpu, intid) == Some(vcpu))
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
                source: lowest_source(self.sgi_bits(vcpu, intid, Bitmap::Pending)),
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

    /// The first interrupt of `vcpu` active in software, as a candidate
    /// for a list register (an SGI: one source of it), if any: its own
    /// SGIs and PPIs, and the SPIs it holds.
    pub fn first_active(&self, vcpu: usize) -> Option<Candidate> {
        let intid = self
            .active_intids(vcpu)
            .find(|&intid| self.destination(vcpu, intid) == Some(vcpu))?;
        let irq = self.irq(vcpu, intid)?;
        Some(Candidate {
            intid,
            priority: irq.priority,
            group1: irq.group1,
            hw: irq.hw,
            source: lowest_source(self.sgi_bits(vcpu, intid, Bitmap::Active)),
        })
    }

    /// Whether `candidate` (an SGI: from its source) is also pending.
    pub fn is_pending_from(&self, vcpu: usize, candidate: &Candidate) -> bool {
        if candidate.intid < SGI_COUNT {
            let bit = self.source_bit(usize::from(candidate.source));
            return self.sgi_bits(vcpu, candidate.intid, Bitmap::Pending) & bit != 0;
        }
        self.irq(vcpu, candidate.intid)
            .is_some_and(|irq| irq.pending)
    }

    /// An SGI's per-source bits (0 for other INTIDs).
    fn sgi_bits(&self, vcpu: usize, intid: u32, bitmap: Bitmap) -> u8 {
        if intid >= SGI_COUNT {
            return 0;
        }
        self.private.get(vcpu).map_or(0, |bank| {
            let bits = match bitmap {
                Bitmap::Pending => &bank.sgi_sources,
                Bitmap::Active => &bank.sgi_active,
            };
            bits.get(intid as usize).copied().unwrap_or(0)
        })
    }
}

/// An SPI's routing register at reset: GICv2's target byte names CPU
/// interface 0 (and is RAZ with one vCPU: IHI 0048B §4.3.12); GICv3's
/// IROUTER is affinity 0.0.0.0, vCPU 0.
fn reset_routing(version: GicVersion, vcpus: usize) -> u64 {
    match version {
        GicVersion::V2 if vcpus > 1 => 1,
        _ => 0,
    }
}

/// The lowest source in an SGI's per-source bits (GICv3 and non-SGIs: 0).
fn lowest_source(bits: u8) -> u8 {
    if bits == 0 {
        0
    } else {
        u8::try_from(bits.trailing_zeros()).unwrap_or(0)
    }
}

/// The set bits of a private word, then of each SPI word: a plain loop
/// that skips empty words, since it runs at every flush.
struct SetBits<'a> {
    /// What is left of the current word, and the INTID of its bit 0.
    word: u32,
    base: u32,
    spi_words: core::slice::Iter<'a, u32>,
}

impl Iterator for SetBits<'_> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcpu_sets_hold_sixteen_and_ignore_the_rest() {
        let mut set = VcpuSet::first(16);
        assert_eq!(set.bits(), 0xffff);
        assert_eq!(VcpuSet::first(3).bits(), 0b111);
        assert_eq!(VcpuSet::first(40).bits(), 0xffff);
        set.remove(0);
        set.insert(16);
        set.insert(usize::MAX);
        assert_eq!(set.bits(), 0xfffe, "vCPUs beyond 15 are never in a set");
        assert_eq!(set.lowest(), Some(1));
        assert_eq!(VcpuSet::of(99), VcpuSet::EMPTY);
        assert_eq!(
            VcpuSet::from_bits(0b1010_0001).iter().collect::<Vec<_>>(),
            [0, 5, 7]
        );
    }

    #[test]
    fn limits_follow_the_gic_version() {
        assert_eq!(max_vcpus(GicVersion::V2), 8);
        assert_eq!(max_vcpus(GicVersion::V3), 16);
        let state = VgicState::new(GicVersion::V2, 12, &[]);
        assert_eq!(state.vcpus(), 8, "a GICv2 state serves at most 8");
    }
}
