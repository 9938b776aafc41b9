//! Moving a vCPU's interrupts between software and its CPU's list
//! registers. A vCPU is pinned to one CPU, so that CPU's list registers
//! are its own: nothing is saved or restored, only filled and, before an
//! access to the emulated pending and active registers, taken back.

use super::hardware_linked::StateChange;
use super::list_register::{ListRegister, LrState};
use super::state::{Candidate, VcpuSet, VgicState};

/// Most list registers the architecture allows (ICH_VTR_EL2.ListRegs + 1).
pub const MAX_LIST_REGISTERS: usize = 16;

/// The GIC interface of the CPU a vCPU runs on: its list registers, and
/// the physical side of the hardware-linked interrupts it takes.
pub trait CpuInterface {
    /// How many list registers exist.
    fn count(&self) -> usize;
    fn read(&self, index: usize) -> ListRegister;
    fn write(&mut self, index: usize, value: &ListRegister);
    /// A set bit for each empty list register.
    fn empty(&self) -> u64;
    /// Applies `action` to physical `intid`: a PPI of this CPU, or an SPI.
    fn physical(&mut self, intid: u32, action: StateChange);
}

/// The indexes of the non-empty registers (taken at the call: the
/// registers may be written while the indexes are walked).
fn occupied<R: CpuInterface>(registers: &R) -> impl Iterator<Item = usize> + use<R> {
    let count = registers.count().min(MAX_LIST_REGISTERS);
    let empty = registers.empty();
    (0..count).filter(move |&i| empty & (1 << i) == 0)
}

/// What a flush leaves to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flushed {
    /// Interrupts are still waiting: the caller asks for the underflow
    /// maintenance interrupt, so they go in as soon as registers free up.
    pub waiting: bool,
    /// Other vCPUs that may now deliver an SPI this vCPU's guest has ended
    /// (pending again while it was listed here): the caller kicks them.
    pub wake: VcpuSet,
}

/// Fills `registers` from `vcpu`'s software state: first every interrupt
/// active in software (the guest must find it to deactivate it), then the
/// most urgent pending ones.
pub fn flush(state: &mut VgicState, vcpu: usize, registers: &mut impl CpuInterface) -> Flushed {
    let count = registers.count().min(MAX_LIST_REGISTERS);
    // SPIs the guest has ended since they were listed here are no longer
    // this vCPU's.
    let mut wake = VcpuSet::EMPTY;
    if state.has_listed_spis(vcpu) {
        let mut held = heapless::Vec::<u32, MAX_LIST_REGISTERS>::new();
        for index in occupied(registers) {
            let _ = held.push(registers.read(index).intid);
        }
        wake = state.forget_ended(vcpu, |intid| held.contains(&intid));
        wake.remove(vcpu);
    }
    // Disabled since it went in (by another vCPU, whose write kicked this
    // one here): a disabled interrupt is no longer forwarded.
    take_back(state, vcpu, registers, |state, lr| {
        lr.state == LrState::Pending && !state.irq(vcpu, lr.intid).is_some_and(|irq| irq.enabled)
    });
    let mut waiting = list_active(state, vcpu, registers, count);
    let mut candidates = heapless::Vec::<Candidate, MAX_LIST_REGISTERS>::new();
    waiting |= state.most_urgent(vcpu, &mut candidates);
    for candidate in &candidates {
        if let Some(index) = occupied(registers).find(|&i| registers.read(i).holds(candidate)) {
            if merge(registers, index, true, false) {
                hold_pending_in_hardware(state, vcpu, candidate.intid, registers);
            }
        } else if let Some(index) = free(registers, count) {
            registers.write(index, &ListRegister::pending(candidate));
            state.listed(vcpu, candidate.intid);
        } else if let Some(index) = displaceable(registers, count, candidate) {
            // A less urgent interrupt that the guest has not seen yet gives
            // way; it goes back to software and waits for a free register.
            displace(state, vcpu, registers, index);
            registers.write(index, &ListRegister::pending(candidate));
            state.listed(vcpu, candidate.intid);
            waiting = true;
        } else {
            waiting = true;
            continue;
        }
        state.taken(vcpu, candidate);
    }
    Flushed { waiting, wake }
}

/// Lists `vcpu`'s software-active interrupts (each GICv2 SGI source on its
/// own), pending too where they are: into free registers, or displacing a
/// merely pending one. Returns true if some did not fit.
fn list_active(
    state: &mut VgicState,
    vcpu: usize,
    registers: &mut impl CpuInterface,
    count: usize,
) -> bool {
    while let Some(candidate) = state.first_active(vcpu) {
        // Listed already (pending, put in directly since): one register.
        if let Some(index) = occupied(registers).find(|&i| registers.read(i).holds(&candidate)) {
            let pending = state.is_pending_from(vcpu, &candidate);
            if pending {
                state.taken(vcpu, &candidate);
            }
            if merge(registers, index, pending, true) {
                hold_pending_in_hardware(state, vcpu, candidate.intid, registers);
            }
            state.taken_active(vcpu, &candidate);
            continue;
        }
        let index = match free(registers, count) {
            Some(index) => index,
            None => match (0..count).find(|&i| registers.read(i).state == LrState::Pending) {
                Some(index) => {
                    displace(state, vcpu, registers, index);
                    index
                }
                // Every register holds an active interrupt: this one goes
                // in once the guest deactivates one of them.
                None => return true,
            },
        };
        let pending = state.is_pending_from(vcpu, &candidate);
        let lr_state = if pending && !candidate.hw {
            state.taken(vcpu, &candidate);
            LrState::PendingActive
        } else {
            if pending {
                // Hardware-linked: never pending and active in a list
                // register; the physical GIC holds the pending state.
                state.taken(vcpu, &candidate);
                hold_pending_in_hardware(state, vcpu, candidate.intid, registers);
            }
            LrState::Active
        };
        registers.write(index, &ListRegister::holding(&candidate, lr_state));
        state.listed(vcpu, candidate.intid);
        state.taken_active(vcpu, &candidate);
    }
    false
}

/// Register `index` goes back to software pending.
fn displace(state: &mut VgicState, vcpu: usize, registers: &mut impl CpuInterface, index: usize) {
    let displaced = registers.read(index);
    registers.write(index, &ListRegister::empty());
    state.unlisted(vcpu, displaced.intid);
    let _ = state.set_pending(vcpu, displaced.intid, usize::from(displaced.source));
}

/// Moves everything in `registers` back to `vcpu`'s software state:
/// pending, active or both. An access to the emulated registers then sees
/// and acts on the whole state; the next flush lists it again. Returns
/// whether anything moved.
pub fn take_back_all(
    state: &mut VgicState,
    vcpu: usize,
    registers: &mut impl CpuInterface,
) -> bool {
    take_back(state, vcpu, registers, |_, _| true)
}

/// Moves the interrupts in `registers` for which `which` holds back to
/// software; returns whether any moved.
fn take_back(
    state: &mut VgicState,
    vcpu: usize,
    registers: &mut impl CpuInterface,
    which: impl Fn(&VgicState, &ListRegister) -> bool,
) -> bool {
    let mut moved = false;
    for index in occupied(registers) {
        let lr = registers.read(index);
        if !which(state, &lr) {
            continue;
        }
        registers.write(index, &ListRegister::empty());
        state.unlisted(vcpu, lr.intid);
        let source = usize::from(lr.source);
        if lr.state.is_pending() {
            let _ = state.set_pending(vcpu, lr.intid, source);
        }
        if lr.state.is_active() {
            state.set_active(vcpu, lr.intid, source, true);
        }
        moved = true;
    }
    moved
}

/// Puts `candidate` straight into a free register, unless one holds it
/// already (an edge during its handling: the caller goes through software
/// pending state, which merges or waits). Returns whether it went in.
pub fn insert(registers: &mut impl CpuInterface, candidate: &Candidate) -> bool {
    let count = registers.count().min(MAX_LIST_REGISTERS);
    if occupied(registers).any(|i| registers.read(i).holds(candidate)) {
        return false;
    }
    let Some(index) = free(registers, count) else {
        return false;
    };
    registers.write(index, &ListRegister::pending(candidate));
    true
}

/// Register `index` holds the interrupt already; it becomes `pending`
/// and/or `active` as well: an edge that arrives while the guest handles
/// the previous one makes it pending again. A hardware-linked interrupt
/// is never listed pending and active: returns true when its pending
/// state must go to the physical GIC instead
/// ([`hold_pending_in_hardware`]).
fn merge(registers: &mut impl CpuInterface, index: usize, pending: bool, active: bool) -> bool {
    let mut current = registers.read(index);
    let pending = pending || current.state.is_pending();
    let active = active || current.state.is_active();
    let (state, in_hardware) = match (pending, active) {
        (true, true) if current.hw => (LrState::Active, true),
        (true, true) => (LrState::PendingActive, false),
        (false, true) => (LrState::Active, false),
        _ => (LrState::Pending, false),
    };
    current.state = state;
    registers.write(index, &current);
    in_hardware
}

/// Hardware-linked `intid`, active, is pending again: the physical GIC
/// holds that, and the guest's deactivation lets it fire again at EL2.
fn hold_pending_in_hardware(
    state: &mut VgicState,
    vcpu: usize,
    intid: u32,
    registers: &mut impl CpuInterface,
) {
    if let Some(irq) = state.irq_mut(vcpu, intid) {
        irq.pending_in_hardware = true;
    }
    registers.physical(intid, StateChange::SetPending);
}

fn free(registers: &impl CpuInterface, count: usize) -> Option<usize> {
    let empty = registers.empty();
    (0..count).find(|&i| empty & (1 << i) != 0)
}

/// The least urgent register holding a merely pending interrupt that is
/// less urgent than `candidate`.
fn displaceable(
    registers: &impl CpuInterface,
    count: usize,
    candidate: &Candidate,
) -> Option<usize> {
    (0..count)
        .map(|i| (i, registers.read(i)))
        .filter(|(_, lr)| lr.state == LrState::Pending && lr.priority > candidate.priority)
        .max_by_key(|(_, lr)| lr.priority)
        .map(|(i, _)| i)
}
