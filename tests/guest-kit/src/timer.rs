//! The EL1 virtual timer: deadlines, its interrupt, and waiting in WFI.
//!
//! A partition owns its vCPUs' virtual timers (`CNTV_CTL_EL0`,
//! `CNTV_CVAL_EL0`, compared with `CNTVCT_EL0`); the EL1 physical timer is
//! inert under Tessera. The virtual timer's interrupt is PPI
//! [`VIRTUAL_TIMER_INTID`], level-sensitive: the kit's handler
//! ([`enable_interrupt`]) records when it ran and stops the timer, so that
//! the level drops before the end of interrupt.
//!
//! [`wait_until`] waits in `WFI` with the timer as its alarm clock once
//! the timer's interrupt has been seen on this vCPU, and in `WFE` (woken
//! by the event stream) until then, so it never hangs on a GIC that does
//! not deliver. Under QEMU TCG a vCPU in `WFI` sleeps; one polling in
//! `WFE` keeps a host thread busy. [`sleep_until`] is the same wait for a
//! caller that has armed the timer itself, to time its interrupt.

/// The virtual timer's PPI (Arm ARM D11.2.4; Tessera's guest DTB
/// `/timer` lists it as PPI 11).
pub const VIRTUAL_TIMER_INTID: u32 = 27;

/// `CNTV_CTL_EL0` bits (Arm ARM D23.8.16): ENABLE, IMASK, ISTATUS.
pub const CNTV_CTL_ENABLE: u64 = 1 << 0;
pub const CNTV_CTL_IMASK: u64 = 1 << 1;
pub const CNTV_CTL_ISTATUS: u64 = 1 << 2;

const NANOSECONDS_PER_SECOND: u128 = 1_000_000_000;

/// The poll alarm of a wait at `now` (counter ticks), given the deadline
/// the timer is `armed` with (`None`: not armed): a new deadline `poll`
/// ahead (not past `end`) unless the armed one is still to come within a
/// poll; `None` to leave it. A deadline moved on every round would never
/// expire where WFE does not wait (QEMU's multi-threaded TCG makes it a
/// no-op), and a vCPU with nothing else to wake it would never see its
/// first timer interrupt.
pub fn next_poll_deadline(armed: Option<u64>, now: u64, poll: u64, end: u64) -> Option<u64> {
    let next = now.saturating_add(poll).min(end.max(now.saturating_add(1)));
    match armed {
        Some(deadline) if now < deadline && deadline <= next => None,
        _ => Some(next),
    }
}

/// `ticks` of a counter running at `frequency` Hz, in nanoseconds
/// (rounded down; saturating; 0 for a frequency of 0).
pub fn ticks_to_ns(ticks: u64, frequency: u64) -> u64 {
    if frequency == 0 {
        return 0;
    }
    let ns = u128::from(ticks) * NANOSECONDS_PER_SECOND / u128::from(frequency);
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// `ns` nanoseconds in ticks of a counter running at `frequency` Hz,
/// rounded up, so that a deadline computed from it is never early.
pub fn ns_to_ticks(ns: u64, frequency: u64) -> u64 {
    let ticks = (u128::from(ns) * u128::from(frequency)).div_ceil(NANOSECONDS_PER_SECOND);
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

/// `ms` milliseconds in ticks (rounded up).
pub fn ms_to_ticks(ms: u64, frequency: u64) -> u64 {
    ns_to_ticks(ms.saturating_mul(1_000_000), frequency)
}

#[cfg(target_os = "none")]
pub use self::target::*;

#[cfg(target_os = "none")]
mod target {
    use core::arch::asm;
    use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    use super::{CNTV_CTL_ENABLE, CNTV_CTL_IMASK, VIRTUAL_TIMER_INTID, next_poll_deadline};
    use crate::gic::{self, Gic};
    use crate::{MAX_VCPUS, cpu, time};

    /// How long [`wait_until`] sleeps at most between checks of its
    /// condition.
    pub const POLL_MS: u64 = 2;

    /// At most this many rounds per millisecond of [`wait_until`]: a bound
    /// for a counter that does not advance (as in `time::wait_until`).
    const MAX_ROUNDS_PER_MS: u64 = 100_000;

    /// Per vCPU, written by its own timer handler: how often the timer
    /// interrupt arrived, and `CNTVCT_EL0` in the handler the last time.
    static FIRED: [AtomicU32; MAX_VCPUS] = [const { AtomicU32::new(0) }; MAX_VCPUS];
    static FIRED_AT: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];
    /// Per vCPU: `CNTV_CTL_EL0` in the handler the last time, before it
    /// stopped the timer (ISTATUS says whether the timer condition held).
    static FIRED_CONTROL: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];

    /// `CNTVCT_EL0`.
    pub fn now() -> u64 {
        time::counter()
    }

    /// Counter ticks per second (`CNTFRQ_EL0`).
    pub fn frequency() -> u64 {
        time::frequency()
    }

    /// Arms the timer to fire when `CNTVCT_EL0` reaches `deadline`.
    pub fn set_deadline(deadline: u64) {
        // SAFETY: this vCPU's own virtual timer; its interrupt is handled
        // by `on_interrupt`, or stays pending while interrupts are masked.
        unsafe {
            asm!(
                "msr cntv_cval_el0, {deadline}",
                "msr cntv_ctl_el0, {enable}",
                "isb",
                deadline = in(reg) deadline,
                enable = in(reg) CNTV_CTL_ENABLE,
                options(nomem, nostack, preserves_flags)
            );
        }
    }

    /// Arms the timer `ticks` from now; returns the deadline.
    pub fn set_deadline_after(ticks: u64) -> u64 {
        let deadline = now().saturating_add(ticks);
        set_deadline(deadline);
        deadline
    }

    /// Disables the timer (its interrupt line drops).
    pub fn stop() {
        // SAFETY: disabling this vCPU's own virtual timer.
        unsafe {
            asm!(
                "msr cntv_ctl_el0, xzr",
                "isb",
                options(nomem, nostack, preserves_flags)
            );
        }
    }

    /// The deadline the timer is armed with: `None` if it is disabled or
    /// its interrupt masked (its handler stops it, a test may mask it).
    fn armed() -> Option<u64> {
        if control() & (CNTV_CTL_ENABLE | CNTV_CTL_IMASK) != CNTV_CTL_ENABLE {
            return None;
        }
        let deadline: u64;
        // SAFETY: reading CNTV_CVAL_EL0 has no side effect.
        unsafe {
            asm!("mrs {}, cntv_cval_el0", out(reg) deadline, options(nomem, nostack, preserves_flags));
        }
        Some(deadline)
    }

    /// `CNTV_CTL_EL0`.
    pub fn control() -> u64 {
        let control: u64;
        // SAFETY: reading CNTV_CTL_EL0 has no side effect.
        unsafe {
            asm!("mrs {}, cntv_ctl_el0", out(reg) control, options(nomem, nostack, preserves_flags));
        }
        control
    }

    fn on_interrupt(_intid: u32) {
        let at = now();
        let state = control();
        stop();
        let vcpu = cpu::index() % MAX_VCPUS;
        FIRED_AT[vcpu].store(at, Ordering::SeqCst);
        FIRED_CONTROL[vcpu].store(state, Ordering::SeqCst);
        FIRED[vcpu].store(
            FIRED[vcpu].load(Ordering::SeqCst).wrapping_add(1),
            Ordering::SeqCst,
        );
    }

    /// Installs the kit's timer handler and enables the timer's PPI on
    /// this vCPU.
    pub fn enable_interrupt(gic: &Gic) {
        gic::set_handler(VIRTUAL_TIMER_INTID, on_interrupt);
        gic.enable(VIRTUAL_TIMER_INTID);
    }

    /// How often the timer interrupt has arrived on vCPU `vcpu`.
    pub fn fired_on(vcpu: usize) -> u32 {
        FIRED
            .get(vcpu)
            .map_or(0, |count| count.load(Ordering::SeqCst))
    }

    /// How often it has arrived on this vCPU.
    pub fn fired() -> u32 {
        fired_on(cpu::index())
    }

    /// `CNTVCT_EL0` when the handler last ran on this vCPU.
    pub fn last_fired_at() -> u64 {
        FIRED_AT
            .get(cpu::index())
            .map_or(0, |at| at.load(Ordering::SeqCst))
    }

    /// `CNTV_CTL_EL0` as the handler found it the last time it ran on this
    /// vCPU (before stopping the timer).
    pub fn last_fired_control() -> u64 {
        FIRED_CONTROL
            .get(cpu::index())
            .map_or(0, |control| control.load(Ordering::SeqCst))
    }

    /// Waits until `done()` holds or `milliseconds` have passed; returns
    /// whether `done()` held. Sleeps in `WFI` with the timer armed at most
    /// [`POLL_MS`] ahead once the timer's interrupt has arrived on this
    /// vCPU (enable it first with [`enable_interrupt`]), in `WFE` before.
    /// Interrupts are unmasked between sleeps (pending ones are taken
    /// then); the mask is as before on return. Uses the virtual timer,
    /// which must stay able to interrupt: a priority mask at or above the
    /// timer's priority (or the timer's PPI disabled) after it has fired
    /// once leaves a `WFI` nothing to end it.
    pub fn wait_until(milliseconds: u64, done: impl FnMut() -> bool) -> bool {
        wait(milliseconds, done, Alarm::Poll)
    }

    /// Like [`wait_until`], for a caller that has armed the timer itself
    /// (to time its interrupt) or otherwise expects an interrupt: the timer
    /// is left alone. Sleeps in `WFI` once the timer has been seen on this
    /// vCPU, until a `WFI` ends without an interrupt arriving (the one
    /// expected is lost: only a physical interrupt at EL2 woke the vCPU);
    /// from then on, and before, it polls in `WFE`, so a lost interrupt
    /// costs a busy wait to the deadline, not a hang. Under QEMU TCG a
    /// vCPU in `WFI` frees its host thread, which keeps the timing of the
    /// other vCPUs honest.
    pub fn sleep_until(milliseconds: u64, done: impl FnMut() -> bool) -> bool {
        wait(milliseconds, done, Alarm::Caller)
    }

    /// What ends a sleep of [`wait`] when nothing else does.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Alarm {
        /// The timer, armed [`POLL_MS`] ahead before each sleep.
        Poll,
        /// An interrupt the caller expects.
        Caller,
    }

    fn wait(milliseconds: u64, mut done: impl FnMut() -> bool, alarm: Alarm) -> bool {
        let was_masked = cpu::irqs_masked();
        let start = now();
        let limit = time::ticks(milliseconds);
        let poll = time::ticks(POLL_MS).max(1);
        let max_rounds = milliseconds.saturating_mul(MAX_ROUNDS_PER_MS).max(1);
        let record = gic::record(cpu::index());
        let end = start.saturating_add(limit).saturating_add(1);
        let mut sleep = true;
        let mut result = false;
        for _ in 0..max_rounds {
            // Masked from the check to the sleep: an interrupt that comes
            // in between stays pending and ends the WFI at once.
            cpu::mask_irqs();
            if done() {
                result = true;
                break;
            }
            let elapsed = now().wrapping_sub(start);
            if elapsed > limit {
                break;
            }
            if alarm == Alarm::Poll
                && let Some(deadline) = next_poll_deadline(armed(), now(), poll, end)
            {
                set_deadline(deadline);
            }
            let arrivals = record.arrivals();
            if sleep && fired() > 0 {
                cpu::wait_for_interrupt();
            } else {
                cpu::wait_for_event();
            }
            cpu::unmask_irqs();
            if alarm == Alarm::Caller && record.arrivals() == arrivals {
                sleep = false;
            }
        }
        cpu::unmask_irqs();
        if !result {
            result = done();
        }
        if was_masked {
            cpu::mask_irqs();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// QEMU virt's counter (cortex-a72) and the Raspberry Pi 4's.
    const QEMU: u64 = 62_500_000;
    const RPI4: u64 = 54_000_000;

    #[test]
    fn ticks_convert_to_nanoseconds_and_back() {
        assert_eq!(ticks_to_ns(QEMU, QEMU), 1_000_000_000);
        assert_eq!(ticks_to_ns(1, QEMU), 16, "one tick is 16 ns at 62.5 MHz");
        assert_eq!(ns_to_ticks(1_000_000, QEMU), 62_500);
        assert_eq!(ms_to_ticks(10, RPI4), 540_000);
    }

    #[test]
    fn deadlines_round_up_never_early() {
        // 1 ns is a fraction of a tick: one whole tick, not 0.
        assert_eq!(ns_to_ticks(1, QEMU), 1);
        assert_eq!(ns_to_ticks(0, QEMU), 0);
        // 1 us at 54 MHz is 54 ticks exactly; 1.001 us rounds up.
        assert_eq!(ns_to_ticks(1000, RPI4), 54);
        assert_eq!(ns_to_ticks(1001, RPI4), 55);
    }

    #[test]
    fn a_poll_alarm_expires_even_when_wfe_does_not_wait() {
        // WFE returns at once (QEMU MTTCG): each round of the wait takes
        // 100 ticks. The timer must come due within one poll period.
        let (poll, end) = (2_000, 1_000_000);
        let mut armed: Option<u64> = None;
        let mut expired_at = None;
        let mut now = 0;
        while now < end && expired_at.is_none() {
            if let Some(deadline) = next_poll_deadline(armed, now, poll, end) {
                armed = Some(deadline);
            }
            now += 100;
            if armed.is_some_and(|deadline| now >= deadline) {
                expired_at = Some(now);
            }
        }
        assert!(
            expired_at.is_some_and(|at| at <= poll + 100),
            "the alarm came due at {expired_at:?}"
        );
    }

    #[test]
    fn a_poll_alarm_never_goes_past_the_end_of_the_wait() {
        assert_eq!(next_poll_deadline(None, 10, 2_000, 500), Some(500));
        assert_eq!(next_poll_deadline(Some(500), 499, 2_000, 500), None);
        assert_eq!(next_poll_deadline(Some(500), 500, 2_000, 500), Some(501));
        assert_eq!(next_poll_deadline(None, u64::MAX, 2_000, 0), Some(u64::MAX));
    }

    #[test]
    fn a_poll_alarm_replaces_a_deadline_beyond_the_next_poll() {
        // Someone armed the timer far ahead: the wait still looks in time.
        assert_eq!(
            next_poll_deadline(Some(1_000_000), 0, 2_000, 50_000),
            Some(2_000)
        );
        assert_eq!(next_poll_deadline(Some(1_500), 0, 2_000, 50_000), None);
    }

    #[test]
    fn conversions_saturate_instead_of_overflowing() {
        assert_eq!(ticks_to_ns(u64::MAX, 1), u64::MAX);
        assert_eq!(ns_to_ticks(u64::MAX, u64::MAX), u64::MAX);
        // u64::MAX ns is about 584 years: past u64::MAX ticks only above 1 GHz.
        assert_eq!(ms_to_ticks(u64::MAX, 2_000_000_000), u64::MAX);
        assert_eq!(
            ms_to_ticks(u64::MAX, QEMU),
            u64::MAX / 16 + 1,
            "saturated ns, then converted (rounded up)"
        );
        assert_eq!(ticks_to_ns(5, 0), 0, "no frequency, no time");
    }
}
