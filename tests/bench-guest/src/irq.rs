//! Interrupt figures: an interrupt raised by the guest, timed from the
//! instruction that raises it to the first instructions of its handler.
//!
//! The kit's IRQ vector saves every register and goes through Rust before
//! it acknowledges anything, which would bury the delivery cost in the
//! kit's own. While the interrupt figures run, the bench installs its own
//! vector table ([`Vectors::install`]): its IRQ entry reads the cycle
//! counter as its second instruction (the first frees a register), then
//! times the acknowledge (`ICC_IAR1_EL1`) and the end of interrupt
//! (`ICC_EOIR1_EL1`, EOImode 0: priority drop and deactivation) each
//! between two counter reads, and counts the instructions executed at EL2
//! over both. Between them it stops the virtual timer, so that the timer's
//! level drops before its end of interrupt (under Tessera the timer is
//! hardware-linked: ending the virtual interrupt deactivates the physical
//! one, which would fire again at once with the level still up). Every
//! other exception goes on to the kit's vectors.
//!
//! Two sources, on GICv3 and on GICv2:
//!
//! - the EL1 virtual timer (PPI 27), armed with a deadline already passed
//!   ([`Sources::timer`]);
//! - an SGI sent to this vCPU through `ICC_SGI1R_EL1` (GICv3) or
//!   `GICD_SGIR` (GICv2) ([`Sources::sgi`]), which Tessera traps and
//!   emulates.
//!
//! On GICv2 the handler acknowledges and ends the interrupt through
//! `GICC_IAR` and `GICC_EOIR`, which under Tessera are the hardware's
//! virtual CPU interface (no trap).
//!
//! The guest raises the interrupt with IRQs unmasked, so that it is taken
//! at once, then polls for the handler's time stamp (a `WFI` would trap to
//! Tessera and add an exit of its own). The GIC is found in the DT and set
//! up by the kit ([`tessera_guest_kit::gic`]), natively on QEMU's GIC as in
//! a partition on Tessera's virtual one.

use core::arch::{asm, global_asm};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::VBAR_EL1;
use tessera_guest_kit::boot::boot_fdt;
use tessera_guest_kit::cpu;
use tessera_guest_kit::fdt::FdtError;
use tessera_guest_kit::gic::{
    self, Gic, InitError, Layout, LayoutError, SgiError, SgiTargets, Version, v2, v3,
};
use tessera_guest_kit::timer::{CNTV_CTL_ENABLE, VIRTUAL_TIMER_INTID};
use tock_registers::interfaces::{Readable, Writeable};

/// The SGI the bench sends itself (any SGI would do; the kit's tests use
/// others, none is Tessera's).
pub const BENCH_SGI: u32 = 1;

/// Polls of the handler's time stamp before an interrupt counts as lost:
/// far more than a delivery of a few thousand instructions needs, few
/// enough that a lost interrupt fails the run in well under a second.
const MAX_POLLS: u64 = 1_000_000;

/// What the IRQ entry writes, in the order of the offsets below.
/// `ENTERED`: the cycle counter at the handler's second instruction (0
/// until the interrupt is taken); `HANDLING`: the acknowledge's and the end
/// of interrupt's intervals added up, each with one pair of counter reads;
/// `HANDLING_EL2`: instructions at EL2 from before the acknowledge to after
/// the end of interrupt; `INTID`: what the acknowledge returned.
static STATE: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
/// GICv2: the CPU interface's address, whose GICC_IAR and GICC_EOIR the
/// handler uses (the hardware's virtual CPU interface under Tessera, no
/// trap); 0 on GICv3, whose system registers it uses.
static CPU_INTERFACE: AtomicU64 = AtomicU64::new(0);
const ENTERED: usize = 0;
const HANDLING: usize = 1;
const HANDLING_EL2: usize = 2;
const INTID: usize = 3;

// The vector table (Arm ARM D1.3.1): 16 entries of 0x80 bytes. Entry 5 is
// an IRQ taken at EL1 on SP_EL1 (the guest runs at EL1h); every other entry
// branches to the same entry of the kit's table, registers untouched.
//
// The IRQ handler runs with IRQs masked (PSTATE.I set on entry) and never
// unmasks them, so ELR_EL1 and SPSR_EL1 need no saving; it saves the six
// registers it uses.
global_asm!(
    r#"
.macro bench_forward index
    .balign 0x80
    b __kit_vectors + \index * 0x80
.endm

.section .text.bench_vectors, "ax"
.balign 2048
.global __bench_vectors
__bench_vectors:
    bench_forward 0
    bench_forward 1
    bench_forward 2
    bench_forward 3
    bench_forward 4
    .balign 0x80
    stp x0, x1, [sp, #-48]!
    mrs x0, pmccntr_el0
    b __bench_irq
    bench_forward 6
    bench_forward 7
    bench_forward 8
    bench_forward 9
    bench_forward 10
    bench_forward 11
    bench_forward 12
    bench_forward 13
    bench_forward 14
    bench_forward 15

__bench_irq:
    stp x2, x3, [sp, #16]
    stp x4, x5, [sp, #32]
    adrp x1, {state}
    add x1, x1, :lo12:{state}
    str x0, [x1, #{entered}]
    adrp x5, {cpu_interface}
    ldr x5, [x5, :lo12:{cpu_interface}]
    cbnz x5, 2f
    isb
    mrs x4, pmevcntr0_el0
    isb
    mrs x2, pmccntr_el0
    mrs x0, S3_0_C12_C12_0      // ICC_IAR1_EL1: acknowledge
    isb
    mrs x3, pmccntr_el0
    sub x2, x3, x2
    msr cntv_ctl_el0, xzr       // the virtual timer off: its level drops
    isb
    mrs x3, pmccntr_el0
    msr S3_0_C12_C12_1, x0      // ICC_EOIR1_EL1: end of interrupt
    isb
    mrs x5, pmccntr_el0
    and x0, x0, #0xffffff       // ICC_IAR1_EL1.INTID
    b 3f
2:  isb
    mrs x4, pmevcntr0_el0
    isb
    mrs x2, pmccntr_el0
    ldr w0, [x5, #{gicc_iar}]   // GICC_IAR: acknowledge
    isb
    mrs x3, pmccntr_el0
    sub x2, x3, x2
    msr cntv_ctl_el0, xzr       // the virtual timer off: its level drops
    isb
    mrs x3, pmccntr_el0
    str w0, [x5, #{gicc_eoir}]  // GICC_EOIR: end of interrupt
    isb
    mrs x5, pmccntr_el0
    and x0, x0, #0x3ff          // GICC_IAR.InterruptID
3:  sub x3, x5, x3
    add x2, x2, x3
    str x2, [x1, #{handling}]
    isb
    mrs x5, pmevcntr0_el0
    sub x5, x5, x4
    str x5, [x1, #{handling_el2}]
    str x0, [x1, #{intid}]
    ldp x4, x5, [sp, #32]
    ldp x2, x3, [sp, #16]
    ldp x0, x1, [sp], #48
    eret
"#,
    state = sym STATE,
    cpu_interface = sym CPU_INTERFACE,
    gicc_iar = const v2::GICC_IAR,
    gicc_eoir = const v2::GICC_EOIR,
    entered = const ENTERED * 8,
    handling = const HANDLING * 8,
    handling_el2 = const HANDLING_EL2 * 8,
    intid = const INTID * 8,
);

unsafe extern "C" {
    static __bench_vectors: u8;
}

/// Why the interrupt figures cannot be taken.
#[derive(Debug)]
pub enum Unavailable {
    Fdt(FdtError),
    Layout(LayoutError),
    Init(InitError),
    Sgi(SgiError),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Fdt(error) => write!(f, "cannot read the DTB: {error}"),
            Unavailable::Layout(error) => write!(f, "no GIC: {error}"),
            Unavailable::Init(error) => write!(f, "GIC set-up failed: {error}"),
            Unavailable::Sgi(error) => write!(f, "cannot address this vCPU's SGI: {error}"),
        }
    }
}

/// An interrupt that did not arrive as expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    /// The handler did not run within [`MAX_POLLS`] polls.
    NotTaken,
    /// The handler acknowledged another INTID.
    Other { intid: u64, expected: u32 },
}

impl fmt::Display for Missed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missed::NotTaken => write!(f, "no interrupt within {MAX_POLLS} polls"),
            Missed::Other { intid, expected } => write!(
                f,
                "the handler acknowledged INTID {intid}, expected {expected}"
            ),
        }
    }
}

/// One interrupt, as the handler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// From the counter read before raising it to the handler's, in
    /// instructions, with one pair of counter reads.
    pub latency: u64,
    /// Acknowledge plus end of interrupt, with two pairs of counter reads.
    pub handling: u64,
    /// Instructions at EL2 during the acknowledge and end of interrupt.
    pub handling_el2: u64,
}

/// How this vCPU sends itself an SGI.
enum SgiSender {
    /// GICv3: this value to `ICC_SGI1R_EL1` (a system-register trap).
    Sgi1r(u64),
    /// GICv2: this value to `GICD_SGIR` at this address (an MMIO trap).
    Sgir { address: usize, value: u32 },
}

/// The GIC set up for the two sources, and how to send this vCPU an SGI.
pub struct Sources {
    sgi: SgiSender,
}

impl Sources {
    /// Finds and sets up the GIC (distributor, this vCPU's redistributor
    /// and CPU interface), enables the virtual timer's PPI and
    /// [`BENCH_SGI`]. IRQs stay masked.
    pub fn set_up() -> Result<Sources, Unavailable> {
        let fdt = boot_fdt().map_err(Unavailable::Fdt)?;
        let layout = Layout::find(&fdt).map_err(Unavailable::Layout)?;
        let gic: Gic = gic::init(&layout).map_err(Unavailable::Init)?;
        // This vCPU alone: Aff0 of its MPIDR (Aff1-Aff3 are 0, natively
        // and in a partition), which is also its GICv2 CPU interface.
        let aff0 = v3::affinity_value(cpu::mpidr()) & 0xff;
        let itself = SgiTargets::Vcpus(1 << aff0);
        let sgi = match layout.version {
            Version::V3 => {
                SgiSender::Sgi1r(v3::sgi1r(BENCH_SGI, itself).map_err(Unavailable::Sgi)?)
            }
            Version::V2 => {
                let base = |region: u64| usize::try_from(region).unwrap_or(0);
                CPU_INTERFACE.store(layout.cpu.base, Ordering::SeqCst);
                SgiSender::Sgir {
                    address: base(layout.distributor.base) + v2::GICD_SGIR,
                    value: v2::sgir(BENCH_SGI, itself).map_err(Unavailable::Sgi)?,
                }
            }
        };
        gic.enable(VIRTUAL_TIMER_INTID);
        gic.enable(BENCH_SGI);
        Ok(Sources { sgi })
    }

    /// One virtual-timer interrupt: the timer armed with a deadline of 0
    /// (long passed), then its handler awaited.
    pub fn timer(&self) -> Result<Event, Missed> {
        event(VIRTUAL_TIMER_INTID, || {
            let start: u64;
            // SAFETY: arms this vCPU's own virtual timer, whose interrupt
            // the bench's handler takes and stops. Not `nomem`: that
            // handler writes STATE.
            unsafe {
                asm!(
                    "isb",
                    "mrs {start}, pmccntr_el0",
                    "msr cntv_cval_el0, xzr",
                    "msr cntv_ctl_el0, {enable}",
                    "isb",
                    start = out(reg) start,
                    enable = in(reg) CNTV_CTL_ENABLE,
                    options(nostack, preserves_flags),
                );
            }
            start
        })
    }

    /// One SGI to this vCPU, from the write of `ICC_SGI1R_EL1` (GICv3) or
    /// `GICD_SGIR` (GICv2) to its handler.
    pub fn sgi(&self) -> Result<Event, Missed> {
        event(BENCH_SGI, || {
            let start: u64;
            match self.sgi {
                // SAFETY: raises an SGI on this vCPU, which the bench's
                // handler takes. Not `nomem`: that handler writes STATE.
                SgiSender::Sgi1r(sgi1r) => unsafe {
                    asm!(
                        "isb",
                        "mrs {start}, pmccntr_el0",
                        "msr S3_0_C12_C11_5, {sgi1r}", // ICC_SGI1R_EL1
                        "isb",
                        start = out(reg) start,
                        sgi1r = in(reg) sgi1r,
                        options(nostack, preserves_flags),
                    );
                },
                // SAFETY: as above, through the distributor's GICD_SGIR, a
                // register of this guest's GIC.
                SgiSender::Sgir { address, value } => unsafe {
                    asm!(
                        "isb",
                        "mrs {start}, pmccntr_el0",
                        "str {value:w}, [{address}]",
                        "isb",
                        start = out(reg) start,
                        value = in(reg) value,
                        address = in(reg) address,
                        options(nostack, preserves_flags),
                    );
                },
            }
            start
        })
    }
}

/// Clears the handler's record, runs `raise` (which returns the counter
/// read just before it raises the interrupt), waits for the handler and
/// reads what it wrote. The interrupt is taken as soon as it is raised
/// (IRQs are unmasked), so the wait adds nothing to the latency unless
/// the delivery is late.
fn event(expected: u32, raise: impl FnOnce() -> u64) -> Result<Event, Missed> {
    STATE[ENTERED].store(0, Ordering::SeqCst);
    STATE[INTID].store(u64::from(gic::SPURIOUS), Ordering::SeqCst);
    let start = raise();
    let entered = (0..MAX_POLLS)
        .map(|_| STATE[ENTERED].load(Ordering::SeqCst))
        .find(|&entered| entered != 0)
        .ok_or(Missed::NotTaken)?;
    let intid = STATE[INTID].load(Ordering::SeqCst);
    if intid != u64::from(expected) {
        return Err(Missed::Other { intid, expected });
    }
    Ok(Event {
        latency: entered.wrapping_sub(start),
        handling: STATE[HANDLING].load(Ordering::SeqCst),
        handling_el2: STATE[HANDLING_EL2].load(Ordering::SeqCst),
    })
}

/// The bench's vectors in place, IRQs unmasked; the kit's vectors and the
/// mask come back when it is dropped.
pub struct Vectors {
    kit: u64,
}

impl Vectors {
    pub fn install() -> Vectors {
        let kit = VBAR_EL1.get();
        VBAR_EL1.set(&raw const __bench_vectors as u64);
        barrier::isb(barrier::SY);
        cpu::unmask_irqs();
        Vectors { kit }
    }
}

impl Drop for Vectors {
    fn drop(&mut self) {
        cpu::mask_irqs();
        VBAR_EL1.set(self.kit);
        barrier::isb(barrier::SY);
    }
}
