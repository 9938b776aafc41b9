//! A partition's virtual GIC: an emulated distributor (and, for GICv3,
//! redistributors) that shows the partition only its own interrupts, and
//! injection through the list registers of the CPUs its vCPUs are pinned to.
//!
//! Any CPU may make an interrupt pending (an SGI from a sibling vCPU,
//! console input); only the CPU a vCPU runs on fills that vCPU's list
//! registers, on its way back into the guest. The sender raises the vCPU's
//! `attention` flag and kicks its CPU; a vCPU whose flag is down enters the
//! guest without taking the lock.
//!
//! What a guest can and cannot do here is in docs/partitions.md
//! ("Interrupts and timers").

pub mod banks;
pub mod distributor;
pub mod flush;
pub mod hardware_linked;
pub mod list_register;
pub mod redistributor;
pub mod register_table;
pub mod rendezvous;
pub mod sgi;
pub mod state;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use spin::Mutex;

pub use banks::Effects;
pub use flush::CpuInterface;
use hardware_linked::StateChange;
use rendezvous::Rendezvous;
use state::{PRIVATE_COUNT, VcpuSet, VgicState};

use crate::guest::mmio::AccessWidth;
use crate::hw::gic::GicVersion;

/// The EL1 virtual timer's PPI (INTID 27), hardware-linked to the same
/// physical PPI of the vCPU's CPU.
pub const VIRTUAL_TIMER_INTID: u32 = 27;

/// A vCPU's virtual timer PPI as the vCPU starts ([`Vgic::timer_at_start`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerAtStart {
    /// The guest has it enabled: so is the physical PPI.
    pub enabled: bool,
    /// Pending or active in software: the physical PPI is active (the
    /// guest's deactivation ends both); otherwise it is not.
    pub held: bool,
    /// Pending in the physical PPI.
    pub pending_in_hardware: bool,
}

/// A guest access to the GIC's emulated frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Distributor { offset: u32 },
    Redistributor { vcpu: usize, offset: u64 },
}

impl Frame {
    /// The distributor's register at `offset` into its frame.
    #[inline]
    pub fn distributor(offset: u64) -> Option<Frame> {
        Some(Frame::Distributor {
            offset: u32::try_from(offset).ok()?,
        })
    }

    /// The register at `offset` into the redistributors' window: one frame
    /// pair per vCPU, in vCPU order.
    #[inline]
    pub fn redistributor(offset: u64) -> Option<Frame> {
        Some(Frame::Redistributor {
            vcpu: usize::try_from(offset / redistributor::REDISTRIBUTOR_SIZE).ok()?,
            offset: offset % redistributor::REDISTRIBUTOR_SIZE,
        })
    }
}

/// One partition's virtual GIC.
#[derive(Debug)]
pub struct Vgic {
    version: GicVersion,
    /// What the identification registers say, read without the lock.
    identity: distributor::Identity,
    owned_spis: Vec<(u32, bool)>,
    state: Mutex<VgicState>,
    /// Per vCPU: something may be waiting for a list register, or the
    /// vCPU is asked to park (the run loop looks at both only then).
    attention: Vec<AtomicBool>,
    /// Per vCPU: its virtual timer's output as last sampled.
    timer: Vec<TimerSample>,
    /// Parks the other vCPUs while one needs what their list registers
    /// hold.
    pub rendezvous: Rendezvous,
}

/// Hardware-linked `intid` fired at EL2: a pending state the physical GIC
/// held for it (set while it was active) is spent, the interrupt is here.
fn fired(state: &mut VgicState, vcpu: usize, intid: u32) {
    if let Some(irq) = state.irq_mut(vcpu, intid).filter(|irq| irq.hw) {
        irq.pending_in_hardware = false;
    }
}

/// A vCPU's virtual timer output as last sampled on its CPU.
#[derive(Debug, Default)]
struct TimerSample {
    /// The output was asserted (written by the vCPU's CPU only).
    line: AtomicBool,
    /// The timer interrupt may be pending or active somewhere, so a
    /// sample that finds the line low must look (raised by whoever makes
    /// it pending, lowered by the vCPU's CPU once nothing is left).
    watch: AtomicBool,
}

impl Vgic {
    /// A virtual GIC in its reset state; `owned_spis` are the partition's
    /// SPIs as (INTID, hardware-linked).
    pub fn new(version: GicVersion, vcpus: usize, owned_spis: Vec<(u32, bool)>) -> Vgic {
        let state = Self::initial(version, vcpus, &owned_spis);
        let vcpus = state.vcpus();
        Vgic {
            version,
            identity: distributor::Identity::of(&state),
            owned_spis,
            state: Mutex::new(state),
            attention: (0..vcpus).map(|_| AtomicBool::new(false)).collect(),
            timer: (0..vcpus).map(|_| TimerSample::default()).collect(),
            rendezvous: Rendezvous::default(),
        }
    }

    fn initial(version: GicVersion, vcpus: usize, owned_spis: &[(u32, bool)]) -> VgicState {
        let mut state = VgicState::new(version, vcpus, owned_spis);
        for vcpu in 0..state.vcpus() {
            if let Some(timer) = state.irq_mut(vcpu, VIRTUAL_TIMER_INTID) {
                timer.hw = true;
            }
        }
        state
    }

    pub fn version(&self) -> GicVersion {
        self.version
    }

    /// Back to the reset state (a partition restart).
    pub fn reset(&self) {
        *self.state.lock() = Self::initial(self.version, self.attention.len(), &self.owned_spis);
        for flag in &self.attention {
            flag.store(false, Ordering::Release);
        }
        for timer in &self.timer {
            timer.line.store(false, Ordering::Release);
            timer.watch.store(false, Ordering::Release);
        }
    }

    /// Whether an access of `width` in `frame` acts on interrupts'
    /// pending, active or routing state, which list registers may hold.
    fn needs_whole_state(&self, frame: Frame, width: AccessWidth) -> bool {
        match frame {
            Frame::Distributor { offset } => {
                distributor::needs_whole_state(self.version, offset, width)
            }
            Frame::Redistributor { offset, .. } => redistributor::needs_whole_state(offset, width),
        }
    }

    /// The other vCPUs whose list registers may hold what an access by
    /// `vcpu` reads or changes: they must park first ([`rendezvous`]).
    pub fn involved(&self, vcpu: usize, frame: Frame, width: AccessWidth, write: bool) -> VcpuSet {
        let mut involved = VcpuSet::EMPTY;
        match frame {
            Frame::Redistributor { vcpu: of, offset } => {
                if redistributor::needs_whole_state(offset, width) {
                    involved.insert(of);
                }
            }
            Frame::Distributor { offset } => {
                let coverage = distributor::covered(self.version, offset, width, write);
                if coverage == distributor::Coverage::None {
                    return involved;
                }
                let state = self.state.lock();
                let mut add = |intid: u32| {
                    if intid >= PRIVATE_COUNT
                        && let Some(destination) = state.destination(0, intid)
                    {
                        involved.insert(destination);
                    }
                };
                match coverage {
                    distributor::Coverage::None => {}
                    distributor::Coverage::Bank => {
                        for (intid, _, _) in banks::fields(offset, width) {
                            add(intid);
                        }
                    }
                    distributor::Coverage::Router(intid) => add(intid),
                }
            }
        }
        involved.remove(vcpu);
        involved
    }

    /// `vcpu` parks for a rendezvous: its list registers go back to
    /// software, listed again once it runs on.
    pub fn park(&self, vcpu: usize, registers: &mut impl CpuInterface) {
        if flush::take_back_all(&mut self.state.lock(), vcpu, registers) {
            self.raise(VcpuSet::of(vcpu));
        }
        self.rendezvous.park(vcpu);
    }

    /// Before an access by `vcpu`: what its list registers hold goes back
    /// to software if the access needs it (see [`Self::involved`] for the
    /// other vCPUs').
    fn prepare(
        &self,
        state: &mut VgicState,
        vcpu: usize,
        frame: Frame,
        width: AccessWidth,
        registers: &mut impl CpuInterface,
    ) {
        let own = match frame {
            Frame::Distributor { .. } => true,
            Frame::Redistributor { vcpu: of, .. } => of == vcpu,
        };
        if own
            && self.needs_whole_state(frame, width)
            && flush::take_back_all(state, vcpu, registers)
        {
            self.raise(VcpuSet::of(vcpu));
        }
    }

    /// An identification register's value: the same for the partition's
    /// life, so read without the lock.
    #[inline]
    pub fn read_identification(&self, frame: Frame, width: AccessWidth) -> Option<u64> {
        match frame {
            Frame::Distributor { offset } => {
                distributor::read_identification(&self.identity, offset, width)
            }
            Frame::Redistributor { vcpu, offset } => {
                redistributor::read_identification(self.identity.vcpus, vcpu, offset, width)
            }
        }
    }

    /// The timer line of `vcpu` as last sampled.
    fn timer_line(&self, vcpu: usize) -> bool {
        self.timer
            .get(vcpu)
            .is_some_and(|timer| timer.line.load(Ordering::Acquire))
    }

    /// A read by `vcpu` of `width` bytes in `frame`; `registers` are its
    /// CPU's.
    pub fn read(
        &self,
        vcpu: usize,
        frame: Frame,
        width: AccessWidth,
        registers: &mut impl CpuInterface,
    ) -> u64 {
        if let Some(value) = self.read_identification(frame, width) {
            return value;
        }
        let mut state = self.state.lock();
        self.prepare(&mut state, vcpu, frame, width, registers);
        match frame {
            Frame::Distributor { offset } => {
                distributor::read(&state, vcpu, offset, width, self.timer_line(vcpu))
            }
            Frame::Redistributor { vcpu: of, offset } => {
                redistributor::read(&state, of, offset, width, self.timer_line(of))
            }
        }
    }

    /// A write by `vcpu`; what it asks beyond the state goes into
    /// `effects` (fresh from the caller, which owns it so that it is never
    /// copied: it is a few hundred bytes): the caller kicks the vCPUs in
    /// `Effects::wake` and applies the hardware changes.
    pub fn write(
        &self,
        vcpu: usize,
        frame: Frame,
        width: AccessWidth,
        value: u64,
        registers: &mut impl CpuInterface,
        effects: &mut Effects,
    ) {
        {
            let mut state = self.state.lock();
            self.prepare(&mut state, vcpu, frame, width, registers);
            match frame {
                Frame::Distributor { offset } => {
                    distributor::write(&mut state, vcpu, offset, width, value, effects);
                }
                Frame::Redistributor { vcpu, offset } => {
                    redistributor::write(&mut state, vcpu, offset, width, value, effects);
                }
            }
        }
        for op in &effects.physical {
            if op.intid == VIRTUAL_TIMER_INTID {
                self.watch_timer(op.vcpu);
            }
        }
        self.raise(effects.wake);
    }

    /// `vcpu` wrote `value` to ICC_SGI1R_EL1 (GICv3); as [`Self::write`]
    /// for `effects`.
    pub fn send_sgi(&self, vcpu: usize, value: u64, effects: &mut Effects) {
        {
            let mut state = self.state.lock();
            let request = sgi::from_sgi1r(value, vcpu, state.vcpus());
            distributor::send_sgi(&mut state, vcpu, request, effects);
        }
        self.raise(effects.wake);
    }

    /// Makes `intid` of `vcpu` pending (a hardware-linked interrupt that
    /// fired, or an emulated device's line); returns the vCPU to kick.
    pub fn inject(&self, vcpu: usize, intid: u32) -> Option<usize> {
        if intid == VIRTUAL_TIMER_INTID {
            self.watch_timer(vcpu);
        }
        let mut state = self.state.lock();
        fired(&mut state, vcpu, intid);
        let woken = state.set_pending(vcpu, intid, vcpu);
        drop(state);
        if let Some(woken) = woken {
            self.raise(VcpuSet::of(woken));
        }
        woken
    }

    /// A hardware-linked interrupt of `vcpu` that fired on the CPU it runs
    /// on, while it runs there (`registers` are its own). When nothing
    /// else waits for a list register, it goes straight into a free one:
    /// the timer's path, which otherwise makes it pending in software only
    /// for the next fill to take it out again. Otherwise as [`Self::inject`],
    /// whose vCPU to kick it returns.
    /// `timer_line` is the vCPU's virtual timer output, read as the
    /// interrupt was taken: a timer interrupt whose output has dropped
    /// since is stale.
    pub fn inject_running(
        &self,
        vcpu: usize,
        intid: u32,
        timer_line: bool,
        registers: &mut impl CpuInterface,
    ) -> Option<usize> {
        if intid == VIRTUAL_TIMER_INTID && !timer_line && self.timer_fired_stale(vcpu, registers) {
            return None;
        }
        if !self.needs_flush(vcpu) {
            if intid == VIRTUAL_TIMER_INTID {
                self.watch_timer(vcpu);
            }
            let mut state = self.state.lock();
            if let Some(candidate) = state.hardware_candidate(vcpu, intid)
                && flush::insert(registers, &candidate)
            {
                fired(&mut state, vcpu, intid);
                state.listed(vcpu, intid);
                return None;
            }
        }
        self.inject(vcpu, intid)
    }

    /// The physical timer PPI of `vcpu`, running here, fired, but the
    /// guest turned its timer off since (the GIC's view of the line lags a
    /// few instructions): unless the guest's ISPENDR latched it, nothing
    /// is pending, and the physical PPI is deactivated for the next expiry
    /// (as KVM's `kvm_arch_timer_handler` checks `kvm_timer_should_fire`).
    fn timer_fired_stale(&self, vcpu: usize, registers: &mut impl CpuInterface) -> bool {
        let latched = self
            .state
            .lock()
            .irq(vcpu, VIRTUAL_TIMER_INTID)
            .is_some_and(|irq| irq.latched || irq.pending_in_hardware);
        if !latched {
            registers.physical(VIRTUAL_TIMER_INTID, StateChange::Deactivate);
        }
        !latched
    }

    fn watch_timer(&self, vcpu: usize) {
        if let Some(timer) = self.timer.get(vcpu) {
            timer.watch.store(true, Ordering::Release);
        }
    }

    /// A sample of `vcpu`'s virtual timer output (`line`: CNTV_CTL_EL0
    /// ENABLE && ISTATUS && !IMASK), taken on its own CPU at each exit.
    /// When the line has dropped, what only the line made pending is
    /// withdrawn ([`hardware_linked::timer_line_low`]).
    #[inline(always)]
    pub fn sample_timer(&self, vcpu: usize, line: bool, registers: &mut impl CpuInterface) {
        if !self.timer_sample_matters(vcpu, line) {
            return;
        }
        if let Some(timer) = self.timer.get(vcpu) {
            self.timer_sampled(timer, line, vcpu, registers);
        }
    }

    /// Whether a sample of `vcpu`'s timer output `line` changes anything:
    /// not when the line is unchanged and nothing waits to be withdrawn
    /// (the usual exit), so the caller need not even reach for its CPU
    /// interface.
    #[inline(always)]
    pub fn timer_sample_matters(&self, vcpu: usize, line: bool) -> bool {
        self.timer.get(vcpu).is_some_and(|timer| {
            timer.line.load(Ordering::Relaxed) != line
                || (!line && timer.watch.load(Ordering::Acquire))
        })
    }

    /// [`Self::sample_timer`] when the line changed or may have withdrawn
    /// something.
    #[inline(never)]
    fn timer_sampled(
        &self,
        timer: &TimerSample,
        line: bool,
        vcpu: usize,
        registers: &mut impl CpuInterface,
    ) {
        timer.line.store(line, Ordering::Release);
        if line || !timer.watch.load(Ordering::Acquire) {
            return;
        }
        // Lowered under the lock, which whoever raises it holds too.
        let mut state = self.state.lock();
        let still = hardware_linked::timer_line_low(&mut state, vcpu, registers);
        timer.watch.store(still, Ordering::Release);
    }

    /// `vcpu` stops running (CPU_OFF, or its partition stops): the SPIs it
    /// holds are released, so that they reach the vCPUs they are routed
    /// to. One still pending in its list registers (and not
    /// hardware-linked: a physical one fires again if still asserted)
    /// stays pending; one it holds active can no longer be ended there and
    /// is deactivated. Returns the vCPUs to kick. The caller then empties
    /// the list registers (`physical_gic::vcpu_stopped`).
    pub fn vcpu_stopping(&self, vcpu: usize, registers: &mut impl CpuInterface) -> VcpuSet {
        let mut state = self.state.lock();
        let count = registers.count().min(flush::MAX_LIST_REGISTERS);
        let empty = registers.empty();
        let mut wake = VcpuSet::EMPTY;
        for index in (0..count).filter(|&i| empty & (1 << i) == 0) {
            let lr = registers.read(index);
            if lr.intid >= PRIVATE_COUNT && lr.state.is_pending() && !lr.hw {
                state.unlisted(vcpu, lr.intid);
                if let Some(destination) = state.set_pending(vcpu, lr.intid, vcpu) {
                    wake.insert(destination);
                }
            }
        }
        wake = wake.union(state.forget_ended(vcpu, |_| false));
        for intid in state.spis_active_on(vcpu) {
            let hw = state.irq(vcpu, intid).is_some_and(|irq| irq.hw);
            state.set_active(vcpu, intid, vcpu, false);
            if hw {
                registers.physical(intid, StateChange::Deactivate);
            }
            if let Some(destination) = state.pending_destination(vcpu, intid) {
                wake.insert(destination);
            }
        }
        wake.remove(vcpu);
        drop(state);
        self.raise(wake);
        wake
    }

    /// How `vcpu`'s virtual timer PPI stands as it starts: the physical
    /// PPI is set up to match (a sibling may have written its redistributor
    /// while it was off, or the partition restarted since).
    pub fn timer_at_start(&self, vcpu: usize) -> TimerAtStart {
        let state = self.state.lock();
        let irq = state.irq(vcpu, VIRTUAL_TIMER_INTID);
        TimerAtStart {
            enabled: irq.is_some_and(|irq| irq.enabled),
            held: irq.is_some_and(|irq| irq.pending || irq.active),
            pending_in_hardware: irq.is_some_and(|irq| irq.pending_in_hardware),
        }
    }

    fn raise(&self, vcpus: VcpuSet) {
        for vcpu in vcpus.iter() {
            if let Some(flag) = self.attention.get(vcpu) {
                flag.store(true, Ordering::Release);
            }
        }
    }

    /// Asks `vcpus` to park for `vcpu`'s access ([`rendezvous`]): they see
    /// it through their attention flag, which their run loop checks.
    pub fn request_park(&self, vcpus: VcpuSet) {
        self.rendezvous.request(vcpus);
        for vcpu in vcpus.iter() {
            if let Some(flag) = self.attention.get(vcpu) {
                flag.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Whether `vcpu` must fill its list registers (or park) before
    /// entering the guest.
    pub fn needs_flush(&self, vcpu: usize) -> bool {
        self.attention
            .get(vcpu)
            .is_some_and(|flag| flag.load(Ordering::Acquire))
    }

    /// Fills `vcpu`'s list registers; the caller asks for the underflow
    /// maintenance interrupt if interrupts are still waiting, and kicks the
    /// vCPUs to wake.
    pub fn flush(&self, vcpu: usize, registers: &mut impl CpuInterface) -> flush::Flushed {
        let Some(flag) = self.attention.get(vcpu) else {
            return flush::Flushed::default();
        };
        flag.store(false, Ordering::SeqCst);
        let flushed = flush::flush(&mut self.state.lock(), vcpu, registers);
        self.raise(flushed.wake);
        let waiting = flushed.waiting;
        // A rendezvous request raised the flag just before it was lowered
        // here: it stays up, so the kick that follows finds it. (The
        // request is stored before the flag is raised, and both sides use
        // SeqCst: if the raise was lost, the request is seen here.)
        if waiting || self.rendezvous.is_requested(vcpu) {
            flag.store(true, Ordering::SeqCst);
        }
        flushed
    }
}
