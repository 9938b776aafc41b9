//! One model for every hardware-linked interrupt (the virtual timer's PPI,
//! passthrough SPIs): the guest's virtual interrupt and the physical one
//! with the same INTID move together.
//!
//! When the physical interrupt fires, Tessera acknowledges it and drops
//! its priority but leaves it active; the virtual one goes into a list
//! register with the HW bit, so that the guest's deactivation deactivates
//! the physical one too (IHI 0069H §4.2.1; IHI 0048B §5.3.11). Invariant:
//! while the virtual interrupt is pending or active, the physical one is
//! active, so it cannot fire again until the guest is done with it.
//!
//! The guest's writes to the pending and active registers therefore act on
//! the physical interrupt as well (as KVM's `vgic_hw_irq_spending`,
//! `vgic_hw_irq_cpending` and `vgic_hw_irq_change_active` do):
//!
//! - ISPENDR while the virtual interrupt is active makes the *physical* one
//!   pending: the guest's deactivation through the HW bit then lets it fire
//!   again at EL2, and it is injected like any other firing. A list
//!   register cannot hold a hardware-linked interrupt pending and active,
//!   so Tessera never waits for one to free up (no underflow maintenance:
//!   only the guest's deactivation can release it). Otherwise ISPENDR makes
//!   the virtual one pending and the physical one active.
//! - ICPENDR clears the physical pending state and deactivates the physical
//!   interrupt unless the virtual one is active: a level source that is
//!   still asserted fires again, one that was cleared never comes back
//!   stale, and a timer cleared while it had fired works again.
//! - ISACTIVER and ICACTIVER activate and deactivate the physical one.
//! - The enable of a hardware-linked PPI follows the guest's, so that a
//!   disabled timer interrupt stays in the GIC, pending only while its
//!   line is high.
//!
//! The virtual timer's PPI is level-sensitive: pending while the timer's
//! output is asserted (CNTV_CTL_EL0 ENABLE && ISTATUS && !IMASK on the
//! owning CPU) or while the guest's ISPENDR latch holds. Tessera samples
//! the output at every exit of the owning vCPU; a sample that finds it low
//! withdraws what only the line made pending, and deactivates the physical
//! PPI ([`timer_line_low`]).

pub use platform::gic::StateChange;

use super::list_register::LrState;
use super::state::{PRIVATE_COUNT, VgicState};
use super::{CpuInterface, VIRTUAL_TIMER_INTID};

/// One change to a physical interrupt: `intid`, on the CPU of `vcpu` if
/// it is an SGI or PPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysicalOp {
    pub intid: u32,
    pub vcpu: usize,
    pub action: StateChange,
}

/// Most physical changes one register access asks for: two for each of
/// the 32 INTIDs one register covers.
pub const MAX_PHYSICAL_OPS: usize = 64;

/// The physical changes a register access asks for.
pub type PhysicalOps = heapless::Vec<PhysicalOp, MAX_PHYSICAL_OPS>;

fn push(ops: &mut PhysicalOps, vcpu: usize, intid: u32, action: StateChange) {
    // Two per INTID, 32 INTIDs per access: never full.
    let _ = ops.push(PhysicalOp {
        intid,
        vcpu,
        action,
    });
}

/// The guest's ISPENDR of hardware-linked `intid` of `vcpu`; returns the
/// vCPU to wake.
pub fn set_pending(
    state: &mut VgicState,
    vcpu: usize,
    intid: u32,
    ops: &mut PhysicalOps,
) -> Option<usize> {
    let owner = state.destination(vcpu, intid).unwrap_or(vcpu);
    let irq = state.irq_mut(owner, intid)?;
    irq.latched = true;
    if irq.active {
        irq.pending_in_hardware = true;
        push(ops, owner, intid, StateChange::SetPending);
        return None;
    }
    push(ops, owner, intid, StateChange::Activate);
    state.set_pending(owner, intid, owner)
}

/// The guest's ICPENDR of hardware-linked `intid` of `vcpu`.
pub fn clear_pending(state: &mut VgicState, vcpu: usize, intid: u32, ops: &mut PhysicalOps) {
    let Some(irq) = state.irq_mut(vcpu, intid) else {
        return;
    };
    irq.latched = false;
    irq.pending_in_hardware = false;
    let active = irq.active;
    state.clear_pending(vcpu, intid);
    let owner = state.destination(vcpu, intid).unwrap_or(vcpu);
    push(ops, owner, intid, StateChange::ClearPending);
    if !active {
        push(ops, owner, intid, StateChange::Deactivate);
    }
}

/// The guest's ISACTIVER (`active`) or ICACTIVER of hardware-linked
/// `intid` of `vcpu`.
pub fn set_active(
    state: &mut VgicState,
    vcpu: usize,
    intid: u32,
    active: bool,
    ops: &mut PhysicalOps,
) {
    let owner = state.destination(vcpu, intid).unwrap_or(vcpu);
    let Some(irq) = state.irq_mut(owner, intid) else {
        return;
    };
    let pending = irq.pending;
    if active {
        // Pending and active at once lives in the physical GIC.
        if pending {
            irq.pending_in_hardware = true;
            state.clear_pending(owner, intid);
            push(ops, owner, intid, StateChange::SetPending);
        }
        push(ops, owner, intid, StateChange::Activate);
    } else if !pending {
        // Still pending: the physical one stays active for it.
        push(ops, owner, intid, StateChange::Deactivate);
    }
    state.set_active(owner, intid, vcpu, active);
}

/// The guest enabled or disabled hardware-linked PPI `intid` of `vcpu`.
pub fn follow_enable(vcpu: usize, intid: u32, enabled: bool, ops: &mut PhysicalOps) {
    if intid < PRIVATE_COUNT {
        let action = if enabled {
            StateChange::Enable
        } else {
            StateChange::Disable
        };
        push(ops, vcpu, intid, action);
    }
}

/// A sample on `vcpu`'s own CPU found its virtual timer's output low.
/// Unless the guest's ISPENDR latch holds it, the timer interrupt is no
/// longer pending: it leaves software and the list registers (if the guest
/// has not acknowledged it), and the physical PPI is deactivated so that
/// the next expiry fires. Returns whether the interrupt may still be
/// pending or active anywhere (then later samples look again).
pub fn timer_line_low(
    state: &mut VgicState,
    vcpu: usize,
    registers: &mut impl CpuInterface,
) -> bool {
    let intid = VIRTUAL_TIMER_INTID;
    let count = registers.count().min(super::flush::MAX_LIST_REGISTERS);
    let occupied = !registers.empty();
    let listed = (0..count)
        .filter(|&i| occupied & (1 << i) != 0)
        .map(|i| (i, registers.read(i)))
        .find(|(_, lr)| lr.intid == intid);
    let Some(irq) = state.irq(vcpu, intid) else {
        return false;
    };
    let (pending, active, latched) = (irq.pending, irq.active, irq.latched);
    if latched {
        // Acknowledged (or withdrawn) since: the latch is spent. Pending
        // in hardware, it has yet to fire again.
        let spent = !pending && listed.is_none() && !active && !irq.pending_in_hardware;
        if !spent {
            return true;
        }
        if let Some(irq) = state.irq_mut(vcpu, intid) {
            irq.latched = false;
        }
    }
    let mut withdrawn = pending;
    if let Some(irq) = state.irq_mut(vcpu, intid) {
        withdrawn |= irq.pending_in_hardware;
        irq.pending_in_hardware = false;
    }
    state.clear_pending(vcpu, intid);
    let mut held_active = active;
    if let Some((index, lr)) = listed {
        match lr.state {
            LrState::Pending => {
                registers.write(index, &super::list_register::ListRegister::empty());
                withdrawn = true;
            }
            _ => held_active = true,
        }
    }
    if withdrawn {
        // A pending state Tessera latched into the physical PPI goes too.
        registers.physical(intid, StateChange::ClearPending);
        if !held_active {
            registers.physical(intid, StateChange::Deactivate);
        }
    }
    held_active
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hw::gic::GicVersion;

    const SPI: u32 = 40;

    fn state() -> VgicState {
        let mut state = VgicState::new(GicVersion::V3, 2, &[(SPI, true)]);
        state.group_enables = 0b11;
        if let Some(irq) = state.irq_mut(0, SPI) {
            irq.enabled = true;
        }
        state
    }

    fn actions(ops: &PhysicalOps) -> Vec<StateChange> {
        ops.iter().map(|op| op.action).collect()
    }

    #[test]
    fn pending_while_active_goes_to_the_physical_interrupt() {
        let mut state = state();
        state.set_active(0, SPI, 0, true);
        let mut ops = PhysicalOps::new();
        assert_eq!(set_pending(&mut state, 0, SPI, &mut ops), None);
        assert_eq!(actions(&ops), [StateChange::SetPending]);
        assert!(
            !state.irq(0, SPI).unwrap().pending,
            "a hardware-linked interrupt is never pending in software while active"
        );
    }

    #[test]
    fn pending_while_inactive_activates_the_physical_interrupt() {
        let mut state = state();
        let mut ops = PhysicalOps::new();
        assert_eq!(set_pending(&mut state, 0, SPI, &mut ops), Some(0));
        assert_eq!(actions(&ops), [StateChange::Activate]);
        assert!(state.irq(0, SPI).unwrap().pending);
    }

    #[test]
    fn clear_pending_deactivates_unless_the_virtual_one_is_active() {
        let mut state = state();
        state.set_pending(0, SPI, 0);
        let mut ops = PhysicalOps::new();
        clear_pending(&mut state, 0, SPI, &mut ops);
        assert_eq!(
            actions(&ops),
            [StateChange::ClearPending, StateChange::Deactivate]
        );
        state.set_active(0, SPI, 0, true);
        let mut ops = PhysicalOps::new();
        clear_pending(&mut state, 0, SPI, &mut ops);
        assert_eq!(actions(&ops), [StateChange::ClearPending]);
    }

    #[test]
    fn active_changes_follow_to_the_physical_interrupt() {
        let mut state = state();
        state.set_pending(0, SPI, 0);
        let mut ops = PhysicalOps::new();
        set_active(&mut state, 0, SPI, true, &mut ops);
        assert_eq!(
            actions(&ops),
            [StateChange::SetPending, StateChange::Activate],
            "pending and active is kept by the physical GIC"
        );
        let mut ops = PhysicalOps::new();
        set_active(&mut state, 0, SPI, false, &mut ops);
        assert_eq!(actions(&ops), [StateChange::Deactivate]);
        assert!(!state.irq(0, SPI).unwrap().active);
    }
}
