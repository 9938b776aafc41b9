//! Moving a vCPU's pending interrupts into its CPU's list registers, most
//! urgent first. A vCPU is pinned to one CPU, so that CPU's list registers
//! are its own: nothing is saved or restored, only filled.

use super::list_register::{ListRegister, LrState};
use super::state::{Candidate, VgicState};

/// Most list registers the architecture allows (ICH_VTR_EL2.ListRegs + 1).
pub const MAX_LIST_REGISTERS: usize = 16;

/// The list registers of the CPU a vCPU runs on.
pub trait ListRegisters {
    /// How many exist.
    fn count(&self) -> usize;
    fn read(&self, index: usize) -> ListRegister;
    fn write(&mut self, index: usize, value: &ListRegister);
    /// A set bit for each empty register.
    fn empty(&self) -> u64;
}

/// The interrupts a vCPU's list registers hold at one moment.
pub type Held = heapless::Vec<ListRegister, MAX_LIST_REGISTERS>;

/// What `registers` hold. The guest's acknowledgements and deactivations
/// change their state without a trap, so an emulated register read goes by
/// them for the vCPU that reads.
pub fn held(registers: &impl ListRegisters) -> Held {
    let count = registers.count().min(MAX_LIST_REGISTERS);
    let empty = registers.empty();
    (0..count)
        .filter(|&i| empty & (1 << i) == 0)
        .map(|i| registers.read(i))
        .collect()
}

/// Fills `registers` from `vcpu`'s pending interrupts; true if some are
/// still waiting (the caller then asks for the underflow maintenance
/// interrupt, so they go in as soon as registers free up).
pub fn flush(state: &mut VgicState, vcpu: usize, registers: &mut impl ListRegisters) -> bool {
    let count = registers.count().min(MAX_LIST_REGISTERS);
    // Disabled since it went in (by another vCPU, whose write kicked this
    // one here): a disabled interrupt is no longer forwarded.
    take_back(state, vcpu, registers, |state, lr| {
        !state.irq(vcpu, lr.intid).is_some_and(|irq| irq.enabled)
    });
    let mut candidates = heapless::Vec::<Candidate, MAX_LIST_REGISTERS>::new();
    let mut waiting = state.most_urgent(vcpu, &mut candidates);
    for candidate in &candidates {
        let occupied = !registers.empty();
        if let Some(index) = (0..count)
            .filter(|&i| occupied & (1 << i) != 0)
            .find(|&i| registers.read(i).holds(candidate))
        {
            if !merge(registers, index) {
                waiting = true;
                continue;
            }
        } else if let Some(index) = free(registers, count) {
            registers.write(index, &ListRegister::pending(candidate));
        } else if let Some(index) = displaceable(registers, count, candidate) {
            // A less urgent interrupt that the guest has not seen yet gives
            // way; it goes back to software and waits for a free register.
            let displaced = registers.read(index);
            let _ = state.set_pending(vcpu, displaced.intid, usize::from(displaced.source));
            registers.write(index, &ListRegister::pending(candidate));
            waiting = true;
        } else {
            waiting = true;
            continue;
        }
        state.taken(vcpu, candidate);
    }
    waiting
}

/// Moves every interrupt in `registers` that the guest has not
/// acknowledged yet back to `vcpu`'s software state, so that its emulated
/// registers show them (GICD_ISPENDR reads them pending) and its writes act
/// on them (a disable withdraws them). The next flush puts them back.
/// Returns whether any moved.
pub fn take_back_pending(
    state: &mut VgicState,
    vcpu: usize,
    registers: &mut impl ListRegisters,
) -> bool {
    take_back(state, vcpu, registers, |_, _| true)
}

/// Moves the pending-only interrupts in `registers` for which `which`
/// holds back to software pending; returns whether any moved.
fn take_back(
    state: &mut VgicState,
    vcpu: usize,
    registers: &mut impl ListRegisters,
    which: impl Fn(&VgicState, &ListRegister) -> bool,
) -> bool {
    let count = registers.count().min(MAX_LIST_REGISTERS);
    let empty = registers.empty();
    let mut moved = false;
    for index in (0..count).filter(|&i| empty & (1 << i) == 0) {
        let lr = registers.read(index);
        if lr.state == LrState::Pending && which(state, &lr) {
            registers.write(index, &ListRegister::decode(state.version, 0));
            let _ = state.set_pending(vcpu, lr.intid, usize::from(lr.source));
            moved = true;
        }
    }
    moved
}

/// Puts `candidate` straight into a free register, unless one holds it
/// already (an edge during its handling: the caller goes through software
/// pending state, which merges or waits). Returns whether it went in.
pub fn insert(registers: &mut impl ListRegisters, candidate: &Candidate) -> bool {
    let count = registers.count().min(MAX_LIST_REGISTERS);
    let occupied = !registers.empty();
    let held = (0..count)
        .filter(|&i| occupied & (1 << i) != 0)
        .any(|i| registers.read(i).holds(candidate));
    if held {
        return false;
    }
    let Some(index) = free(registers, count) else {
        return false;
    };
    registers.write(index, &ListRegister::pending(candidate));
    true
}

/// The interrupt is already in register `index`: an edge that arrives
/// while the guest handles the previous one makes it pending again.
/// Returns false if it must wait (it can only go in once inactive).
fn merge(registers: &mut impl ListRegisters, index: usize) -> bool {
    let mut current = registers.read(index);
    match current.state {
        LrState::Pending | LrState::PendingActive => true,
        LrState::Active if !current.hw => {
            current.state = LrState::PendingActive;
            registers.write(index, &current);
            true
        }
        _ => false,
    }
}

fn free(registers: &impl ListRegisters, count: usize) -> Option<usize> {
    let empty = registers.empty();
    (0..count).find(|&i| empty & (1 << i) != 0)
}

/// The least urgent register holding a merely pending interrupt that is
/// less urgent than `candidate`.
fn displaceable(
    registers: &impl ListRegisters,
    count: usize,
    candidate: &Candidate,
) -> Option<usize> {
    (0..count)
        .map(|i| (i, registers.read(i)))
        .filter(|(_, lr)| lr.state == LrState::Pending && lr.priority > candidate.priority)
        .max_by_key(|(_, lr)| lr.priority)
        .map(|(i, _)| i)
}
