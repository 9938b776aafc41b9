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
//! Three sources, on GICv3 and on GICv2:
//!
//! - the EL1 virtual timer (PPI 27), armed with a deadline already passed
//!   ([`Sources::timer`]);
//! - an SGI sent to this vCPU through `ICC_SGI1R_EL1` (GICv3) or
//!   `GICD_SGIR` (GICv2) ([`Sources::sgi`]), which Tessera traps and
//!   emulates;
//! - an SGI sent to vCPU 1, whose own IRQ entry ([`pong_main`]) answers at
//!   once with an SGI back ([`Sources::round_trip`]). vCPU 0 waits for the
//!   answer in `WFI` and vCPU 1 waits for the SGI in `WFI` (neither traps
//!   to Tessera), so that under `-icount` neither is charged for spinning
//!   while the other works: the figure is the instructions both vCPUs and
//!   Tessera run from the send to the answer's handler.
//!
//! On GICv2 the handler acknowledges and ends the interrupt through
//! `GICC_IAR` and `GICC_EOIR`, which under Tessera are the hardware's
//! virtual CPU interface (no trap).
//!
//! For the timer and the SGI to itself, the guest raises the interrupt
//! with IRQs unmasked, so that it is taken at once, and polls for the
//! handler's time stamp, which is there before the poll begins (so the
//! figure is the same as with a wait). The GIC is found in the DT and set
//! up by the kit ([`tessera_guest_kit::gic`]), natively on QEMU's GIC as in
//! a partition on Tessera's virtual one.

use core::arch::{asm, global_asm};
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aarch64_cpu::asm::barrier;
use aarch64_cpu::registers::VBAR_EL1;
use tessera_guest_kit::boot::boot_fdt;
use tessera_guest_kit::cpu::{self, secondary_entry_point};
use tessera_guest_kit::fdt::FdtError;
use tessera_guest_kit::gic::{
    self, Gic, InitError, Layout, LayoutError, SgiError, SgiTargets, Version, v2, v3,
};
use tessera_guest_kit::psci::Psci;
use tessera_guest_kit::timer::{CNTV_CTL_ENABLE, VIRTUAL_TIMER_INTID};
use tessera_guest_kit::{time, timer};
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
/// vCPU 1's answer: the value its IRQ entry writes to `ICC_SGI1R_EL1`
/// (GICv3) or to `GICD_SGIR` at [`PONG_SGIR`] (GICv2); set before vCPU 1
/// starts. [`PONG_READY`]: vCPU 1 waits for SGIs.
static PONG: AtomicU64 = AtomicU64::new(0);
static PONG_SGIR: AtomicU64 = AtomicU64::new(0);
static PONG_READY: AtomicBool = AtomicBool::new(false);
/// INTIDs 1020-1023 are special (IHI 0069H §2.2.1): 1023 is a spurious
/// acknowledge, nothing to end or answer.
const FIRST_SPECIAL_INTID: u32 = 1020;
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

// Entries `first` to `last`, each forwarded to the kit's.
.macro bench_forward_all first, last
    .set bench_index, \first
    .rept \last - \first + 1
    bench_forward bench_index
    .set bench_index, bench_index + 1
    .endr
.endm

.section .text.bench_vectors, "ax"
.balign 2048
.global __bench_vectors
__bench_vectors:
    bench_forward_all 0, 4
    .balign 0x80
    stp x0, x1, [sp, #-48]!
    mrs x0, pmccntr_el0
    b __bench_irq
    bench_forward_all 6, 15

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

// vCPU 1's vector table: its IRQ entry acknowledges the SGI, ends it and
// sends PONG to vCPU 0 (nothing for a spurious acknowledge: INTIDs 1020 and
// up), with four registers saved; every other entry goes to the kit's
// table.
.section .text.bench_pong_vectors, "ax"
.balign 2048
.global __bench_pong_vectors
__bench_pong_vectors:
    bench_forward_all 0, 4
    .balign 0x80
    stp x0, x1, [sp, #-32]!
    b __bench_pong
    bench_forward_all 6, 15

__bench_pong:
    stp x2, x3, [sp, #16]
    adrp x1, {cpu_interface}
    ldr x1, [x1, :lo12:{cpu_interface}]
    adrp x2, {pong}
    ldr x2, [x2, :lo12:{pong}]
    cbnz x1, 2f
    mrs x0, S3_0_C12_C12_0      // ICC_IAR1_EL1: acknowledge
    and x3, x0, #0xffffff       // ICC_IAR1_EL1.INTID
    cmp x3, #{first_special}
    b.hs 3f
    msr S3_0_C12_C12_1, x0      // ICC_EOIR1_EL1: end of interrupt
    msr S3_0_C12_C11_5, x2      // ICC_SGI1R_EL1: the answer
    b 3f
2:  ldr w0, [x1, #{gicc_iar}]   // GICC_IAR: acknowledge
    and w3, w0, #0x3ff          // GICC_IAR.InterruptID
    cmp w3, #{first_special}
    b.hs 3f
    str w0, [x1, #{gicc_eoir}]  // GICC_EOIR: end of interrupt
    adrp x1, {pong_sgir}
    ldr x1, [x1, :lo12:{pong_sgir}]
    str w2, [x1]                // GICD_SGIR: the answer
3:  isb
    ldp x2, x3, [sp, #16]
    ldp x0, x1, [sp], #32
    eret
"#,
    state = sym STATE,
    pong = sym PONG,
    pong_sgir = sym PONG_SGIR,
    first_special = const FIRST_SPECIAL_INTID,
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
    static __bench_pong_vectors: u8;
}

/// Why the interrupt figures cannot be taken.
#[derive(Debug)]
pub enum Unavailable {
    Fdt(FdtError),
    Layout(LayoutError),
    Init(InitError),
    Sgi(SgiError),
    /// vCPU 1 did not start (CPU_ON's answer) or did not get ready.
    NoSecondVcpu(u64),
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Fdt(error) => write!(f, "cannot read the DTB: {error}"),
            Unavailable::Layout(error) => write!(f, "no GIC: {error}"),
            Unavailable::Init(error) => write!(f, "GIC set-up failed: {error}"),
            Unavailable::Sgi(error) => write!(f, "cannot address this vCPU's SGI: {error}"),
            Unavailable::NoSecondVcpu(answer) => {
                write!(
                    f,
                    "vCPU 1 did not start (CPU_ON answered {answer:#x}) or set up"
                )
            }
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

/// How this vCPU sends an SGI.
enum SgiSender {
    /// GICv3: this value to `ICC_SGI1R_EL1` (a system-register trap).
    Sgi1r(u64),
    /// GICv2: this value to `GICD_SGIR` at this address (an MMIO trap).
    Sgir { address: usize, value: u32 },
}

/// The GIC set up for the sources, and how to send this vCPU an SGI and
/// vCPU 1 one (if the machine has a second CPU).
pub struct Sources {
    sgi: SgiSender,
    to_vcpu_1: SgiSender,
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
        let distributor = usize::try_from(layout.distributor.base).unwrap_or(0);
        let sender = |targets| -> Result<SgiSender, Unavailable> {
            Ok(match layout.version {
                Version::V3 => {
                    SgiSender::Sgi1r(v3::sgi1r(BENCH_SGI, targets).map_err(Unavailable::Sgi)?)
                }
                Version::V2 => SgiSender::Sgir {
                    address: distributor + v2::GICD_SGIR,
                    value: v2::sgir(BENCH_SGI, targets).map_err(Unavailable::Sgi)?,
                },
            })
        };
        let sgi = sender(itself)?;
        let to_vcpu_1 = sender(SgiTargets::Vcpus(1 << 1))?;
        // vCPU 1's answer, to this vCPU.
        match sender(itself)? {
            SgiSender::Sgi1r(value) => PONG.store(value, Ordering::SeqCst),
            SgiSender::Sgir { address, value } => {
                PONG.store(u64::from(value), Ordering::SeqCst);
                PONG_SGIR.store(address as u64, Ordering::SeqCst);
            }
        }
        if layout.version == Version::V2 {
            CPU_INTERFACE.store(layout.cpu.base, Ordering::SeqCst);
        }
        gic.enable(VIRTUAL_TIMER_INTID);
        gic.enable(BENCH_SGI);
        Ok(Sources { sgi, to_vcpu_1 })
    }

    /// Starts vCPU 1 ([`pong_main`]) and waits until it waits for SGIs.
    pub fn start_vcpu_1(&self) -> Result<(), Unavailable> {
        let answer = Psci::HVC.cpu_on(1, secondary_entry_point(), 0);
        if answer != 0 {
            return Err(Unavailable::NoSecondVcpu(answer));
        }
        if !time::wait_until(VCPU_1_READY_MS, || PONG_READY.load(Ordering::SeqCst)) {
            return Err(Unavailable::NoSecondVcpu(answer));
        }
        Ok(())
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
        event(BENCH_SGI, || send(&self.sgi))
    }

    /// One SGI to vCPU 1 and its answer: from the write that sends it to
    /// the answer's handler on this vCPU, which waits in `WFI`.
    pub fn round_trip(&self) -> Result<Event, Missed> {
        event_waiting(BENCH_SGI, || send(&self.to_vcpu_1))
    }
}

/// Sends the SGI of `sender`; returns the counter read just before.
fn send(sender: &SgiSender) -> u64 {
    let start: u64;
    match *sender {
        // SAFETY: raises an SGI on this vCPU or on vCPU 1, whose IRQ
        // entries the bench installed. Not `nomem`: this vCPU's handler
        // writes STATE.
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

/// [`event`] for an interrupt that comes late (another vCPU's answer):
/// this vCPU waits for it in `WFI`, with IRQs masked between the check and
/// the `WFI` so that an interrupt taken in between cannot leave it asleep.
/// The virtual timer, armed [`BACKSTOP_MS`] ahead, ends a wait for an
/// interrupt that never comes (its INTID is then the one acknowledged).
fn event_waiting(expected: u32, raise: impl FnOnce() -> u64) -> Result<Event, Missed> {
    STATE[ENTERED].store(0, Ordering::SeqCst);
    STATE[INTID].store(u64::from(gic::SPURIOUS), Ordering::SeqCst);
    timer::set_deadline_after(timer::ms_to_ticks(BACKSTOP_MS, timer::frequency()));
    cpu::mask_irqs();
    let start = raise();
    while STATE[ENTERED].load(Ordering::SeqCst) == 0 {
        cpu::wait_for_interrupt();
        cpu::unmask_irqs();
        cpu::mask_irqs();
    }
    // Read with IRQs still masked: a later interrupt cannot overwrite it.
    // The handler stopped the timer, whichever interrupt it took.
    let intid = STATE[INTID].load(Ordering::SeqCst);
    let event = Event {
        latency: STATE[ENTERED].load(Ordering::SeqCst).wrapping_sub(start),
        handling: STATE[HANDLING].load(Ordering::SeqCst),
        handling_el2: STATE[HANDLING_EL2].load(Ordering::SeqCst),
    };
    cpu::unmask_irqs();
    if intid != u64::from(expected) {
        return Err(Missed::Other { intid, expected });
    }
    Ok(event)
}

/// How long [`event_waiting`] waits before the timer ends the wait.
const BACKSTOP_MS: u64 = 10;
/// How long vCPU 1 may take to start and set up its GIC interface.
const VCPU_1_READY_MS: u64 = 1000;

/// vCPU 1: sets up its GIC interface, installs the answering vectors and
/// waits for SGIs for as long as the bench runs.
pub fn pong_main(_vcpu: usize, _context_id: u64) -> ! {
    match gic::init_cpu() {
        Ok(gic) => {
            gic.enable(BENCH_SGI);
            VBAR_EL1.set(&raw const __bench_pong_vectors as u64);
            barrier::isb(barrier::SY);
            cpu::unmask_irqs();
            PONG_READY.store(true, Ordering::SeqCst);
            cpu::send_event();
            loop {
                cpu::wait_for_interrupt();
            }
        }
        Err(error) => {
            tessera_guest_kit::println!("BENCH vCPU 1: GIC interface: {error}");
            Psci::HVC.cpu_off();
            cpu::park()
        }
    }
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
