//! Parking a partition's other vCPUs while one vCPU's register access
//! needs the interrupts their list registers hold (as KVM halts every vCPU
//! for an access to the active registers).
//!
//! A list register changes without a trap (the guest acknowledges and
//! deactivates through it), and only its own CPU can read it. So when a
//! vCPU reads or writes the pending or active state of an interrupt whose
//! destination is another vCPU (an SPI routed there, a GICv3 guest's
//! access to another redistributor) or moves such an SPI elsewhere, it
//! holds the partition's rendezvous, asks those vCPUs to park, and waits
//! until each has moved its list registers back to software and stopped
//! at EL2. It then acts on the whole state in software and releases them;
//! each lists what is still pending or active on its way back in.
//!
//! Every CPU of the partition serves requests wherever it waits: at the
//! top of its run loop, while its vCPU is off, and while it waits to hold
//! the rendezvous itself, so two vCPUs that want it at once never wait for
//! each other.

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicUsize, Ordering};

use super::state::VcpuSet;

/// One partition's rendezvous.
#[derive(Debug, Default)]
pub struct Rendezvous {
    /// The vCPU holding it, plus one; 0 when free.
    holder: AtomicUsize,
    /// vCPUs asked to park.
    requested: AtomicU16,
    /// vCPUs parked: their list registers are in software.
    parked: AtomicU16,
    /// Counts requests: a vCPU still waiting from the previous one when
    /// the next comes (released and asked again before it noticed) parks
    /// again for the new one.
    generation: AtomicU32,
}

impl Rendezvous {
    /// Takes the rendezvous for `vcpu`, if nobody holds it.
    pub fn try_hold(&self, vcpu: usize) -> bool {
        self.holder
            .compare_exchange(0, vcpu + 1, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Asks `vcpus` to park (the holder then kicks their CPUs).
    pub fn request(&self, vcpus: VcpuSet) {
        self.parked.store(0, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.requested.store(vcpus.bits(), Ordering::SeqCst);
    }

    /// Which request is current.
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether every vCPU asked has parked.
    pub fn all_parked(&self) -> bool {
        let requested = self.requested.load(Ordering::Acquire);
        self.parked.load(Ordering::Acquire) & requested == requested
    }

    /// Releases the parked vCPUs and the rendezvous.
    pub fn release(&self) {
        self.requested.store(0, Ordering::Release);
        self.parked.store(0, Ordering::Release);
        self.holder.store(0, Ordering::Release);
    }

    /// Whether `vcpu` is asked to park.
    pub fn is_requested(&self, vcpu: usize) -> bool {
        VcpuSet::from_bits(self.requested.load(Ordering::SeqCst)).contains(vcpu)
    }

    /// `vcpu` has parked: its list registers are in software.
    pub fn park(&self, vcpu: usize) {
        self.parked
            .fetch_or(VcpuSet::of(vcpu).bits(), Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_release_frees_everyone() {
        let rendezvous = Rendezvous::default();
        assert!(rendezvous.try_hold(1));
        assert!(!rendezvous.try_hold(0), "held by vCPU 1");
        rendezvous.request(VcpuSet::from_bits(0b101));
        assert!(rendezvous.is_requested(0) && rendezvous.is_requested(2));
        assert!(!rendezvous.is_requested(1));
        rendezvous.park(0);
        assert!(!rendezvous.all_parked(), "vCPU 2 has not parked");
        rendezvous.park(2);
        assert!(rendezvous.all_parked());
        rendezvous.release();
        assert!(!rendezvous.is_requested(0));
        assert!(rendezvous.try_hold(0));
    }

    #[test]
    fn a_new_request_is_a_new_generation_with_nobody_parked() {
        let rendezvous = Rendezvous::default();
        assert!(rendezvous.try_hold(0));
        rendezvous.request(VcpuSet::of(1));
        let first = rendezvous.generation();
        rendezvous.park(1);
        rendezvous.release();
        assert!(rendezvous.try_hold(0));
        rendezvous.request(VcpuSet::of(1));
        assert_ne!(rendezvous.generation(), first);
        assert!(
            !rendezvous.all_parked(),
            "vCPU 1 parked for the previous request, not this one"
        );
    }
}
