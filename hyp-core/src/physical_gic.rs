//! The physical GIC instance, set up from the discovered regions.

use core::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use platform::gic::v2::GicV2;
use platform::gic::v3::GicV3;
use platform::gic::{Gic, GicError, GicInfo};

use spin::Once;

use crate::arch::{cpu, hyp_timer};
use crate::hw::cpus::MAX_CPUS;
use crate::hw::gic::{GicRegions, GicVersion};
use crate::mm::address::to_usize;
use crate::vgic::flush::CpuInterface;
use crate::vgic::hardware_linked::{PhysicalOp, StateChange};
use crate::vgic::list_register::{ListRegister, LrState};
use crate::vgic::{TimerAtStart, VIRTUAL_TIMER_INTID};

/// The GIC, once the boot CPU has set it up.
pub static GIC: Once<Gic> = Once::new();

fn address(range: &crate::mm::address::PhysRange) -> usize {
    range.start().as_usize()
}

/// The virtual interface's maintenance interrupt (a PPI, from the DT).
static MAINTENANCE_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
/// List registers of every CPU's virtual interface.
static LIST_REGISTERS: AtomicU32 = AtomicU32::new(0);
/// Tessera's own timer's PPI (CNTHP, from the DT's timer node).
static HYP_TIMER_INTID: AtomicU32 = AtomicU32::new(u32::MAX);
/// The console UART's SPI, once console input is routed (u32::MAX: none).
static CONSOLE_INTID: AtomicU32 = AtomicU32::new(u32::MAX);

/// Creates the driver, resets the distributor and this CPU's interface.
/// The regions must already be mapped as device memory.
pub fn init(
    regions: &GicRegions,
    maintenance_intid: u32,
    hyp_timer_intid: u32,
) -> Result<GicInfo, GicError> {
    MAINTENANCE_INTID.store(maintenance_intid, Ordering::Relaxed);
    HYP_TIMER_INTID.store(hyp_timer_intid, Ordering::Relaxed);
    let gic = GIC.call_once(|| match regions {
        GicRegions::V2 {
            distributor,
            cpu_interface,
            hyp_interface,
            ..
        } => {
            // SAFETY: the regions come from the DT's GIC node and are mapped
            // as device memory by the EL2 map; this is their only driver.
            Gic::V2(unsafe {
                GicV2::new(
                    address(distributor),
                    address(cpu_interface),
                    address(hyp_interface),
                )
            })
        }
        GicRegions::V3 {
            distributor,
            redistributors,
            redistributor_stride,
        } => {
            let mut list = [(0usize, 0usize); platform::gic::v3::MAX_REDISTRIBUTOR_REGIONS];
            for (slot, region) in list.iter_mut().zip(redistributors.iter()) {
                *slot = (address(region), to_usize(region.size()));
            }
            let stride = redistributor_stride.map(to_usize);
            // SAFETY: as above, for the distributor and redistributor regions.
            Gic::V3(unsafe { GicV3::new(address(distributor), &list, stride) })
        }
    });
    gic.init_distributor(cpu::mpidr())?;
    gic.init_cpu(cpu::mpidr())?;
    enable_own_interrupts(gic)?;
    let info = gic.info();
    LIST_REGISTERS.store(info.list_registers, Ordering::Relaxed);
    Ok(info)
}

/// Sets up a secondary CPU's interface.
pub fn init_this_cpu() -> Result<(), GicError> {
    match GIC.get() {
        Some(gic) => {
            gic.init_cpu(cpu::mpidr())?;
            enable_own_interrupts(gic)
        }
        None => Ok(()),
    }
}

/// The SGI one CPU sends another to make it leave its guest and look at
/// what changed (a partition stopping or restarting). Physical SGIs are
/// Tessera's alone: with HCR_EL2.IMO set they reach EL2, never a guest.
pub const KICK_SGI: u32 = 0;

/// GICv2 CPU-interface bits by CPU (GICD_SGIR names targets by these, not
/// by MPIDR): (MPIDR affinity, bit), filled in as each CPU starts.
static V2_TARGETS: [(AtomicU64, AtomicU8); MAX_CPUS] =
    [const { (AtomicU64::new(u64::MAX), AtomicU8::new(0)) }; MAX_CPUS];

/// This CPU's interrupts that are Tessera's: the kick, the maintenance
/// interrupt and its own timer (stopped until something sets it).
fn enable_own_interrupts(gic: &Gic) -> Result<(), GicError> {
    gic.enable_sgi(cpu::mpidr(), KICK_SGI)?;
    hyp_timer::stop();
    for ppi in [&MAINTENANCE_INTID, &HYP_TIMER_INTID] {
        gic.set_private_enabled(cpu::mpidr(), ppi.load(Ordering::Relaxed), true)?;
    }
    if let Gic::V2(v2) = gic
        && let Some((mpidr, target)) = V2_TARGETS.get(cpu::index())
    {
        target.store(v2.this_cpu_target(), Ordering::Relaxed);
        mpidr.store(cpu::mpidr(), Ordering::Release);
    }
    Ok(())
}

/// The GICv2 CPU-interface bit of the CPU with MPIDR affinity `mpidr`.
fn v2_target(mpidr: u64) -> u8 {
    V2_TARGETS
        .iter()
        .find(|(m, _)| m.load(Ordering::Acquire) == mpidr)
        .map_or(0, |(_, t)| t.load(Ordering::Relaxed))
}

/// Makes the CPU with MPIDR affinity `mpidr` take an interrupt to EL2.
pub fn kick(mpidr: u64) {
    let Some(gic) = GIC.get() else { return };
    gic.send_sgi(KICK_SGI, mpidr, v2_target(mpidr));
}

/// SPIs that belong to a partition (passthrough devices'), a bit each:
/// taken at EL2 only to be injected, hardware-linked, into their owner.
static GUEST_SPIS: [AtomicU32; 32] = [const { AtomicU32::new(0) }; 32];

fn guest_spi_bit(intid: u32) -> Option<(&'static AtomicU32, u32)> {
    Some((GUEST_SPIS.get((intid / 32) as usize)?, 1 << (intid % 32)))
}

fn is_guest_spi(intid: u32) -> bool {
    guest_spi_bit(intid).is_some_and(|(word, bit)| word.load(Ordering::Relaxed) & bit != 0)
}

/// Gives SPI `intid` to a partition: disabled until its guest enables it
/// through its virtual GIC, with the trigger its device's DT node gives.
pub fn claim_guest_spi(intid: u32, edge: bool) {
    let Some(gic) = GIC.get() else { return };
    gic.quiesce_spi(intid);
    gic.set_spi_edge_triggered(intid, edge);
    if let Some((word, bit)) = guest_spi_bit(intid) {
        word.fetch_or(bit, Ordering::Relaxed);
    }
}

/// Follows a guest's enable and routing of its SPI `intid`: on (`enabled`)
/// at the CPU with MPIDR affinity `mpidr` (the target vCPU's), or off.
pub fn route_guest_spi(intid: u32, enabled: bool, mpidr: Option<u64>) {
    let Some(gic) = GIC.get() else { return };
    match mpidr {
        Some(mpidr) if enabled => gic.set_spi(intid, true, mpidr, v2_target(mpidr)),
        _ => gic.set_spi(intid, false, 0, 0),
    }
}

/// Turns a partition's SPI off and forgets any state it was left in (its
/// partition stopped or restarts: the next guest starts from reset).
pub fn quiesce_guest_spi(intid: u32) {
    if let Some(gic) = GIC.get() {
        gic.quiesce_spi(intid);
    }
}

/// What a physical interrupt taken at EL2 was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Nothing (spurious), or Tessera's own, already handled: the kick
    /// (the CPU re-reads its partition's state on its way back in) or the
    /// maintenance interrupt (the list registers are refilled then too).
    Handled,
    /// The guest's: hardware-linked, its priority dropped but still
    /// active; the caller injects it, and the guest's deactivation ends it.
    Guest(u32),
    /// The console received input: the caller drains the UART, then calls
    /// [`console_input_taken`] (the interrupt stays active until then, so a
    /// level that is still high does not fire again at once).
    ConsoleInput,
    /// Tessera's own timer fired (it is stopped now): the caller does what
    /// was due and sets it again for what is still to come.
    HypTimer,
}

/// Takes the interrupt that made this CPU leave its guest.
pub fn take_interrupt() -> Taken {
    let Some(gic) = GIC.get() else {
        return Taken::Handled;
    };
    let acknowledged = gic.acknowledge();
    let intid = gic.intid(acknowledged);
    if intid >= platform::gic::SPECIAL_INTIDS_START {
        return Taken::Handled;
    }
    gic.end_of_interrupt(acknowledged);
    if intid == VIRTUAL_TIMER_INTID || is_guest_spi(intid) {
        return Taken::Guest(intid);
    }
    if intid == CONSOLE_INTID.load(Ordering::Relaxed) {
        return Taken::ConsoleInput;
    }
    let hyp_timer = intid == HYP_TIMER_INTID.load(Ordering::Relaxed);
    if hyp_timer {
        // A level interrupt: lowered before it is deactivated.
        hyp_timer::stop();
    }
    gic.deactivate(acknowledged);
    if hyp_timer {
        return Taken::HypTimer;
    }
    if intid != KICK_SGI && intid != MAINTENANCE_INTID.load(Ordering::Relaxed) {
        log::warn!("unexpected interrupt {intid} at EL2");
    }
    Taken::Handled
}

/// Routes the console UART's interrupt (SPI `intid`) to this CPU and
/// enables it: console input goes to the partition whose vCPU runs here.
pub fn route_console_input_here(intid: u32) {
    let Some(gic) = GIC.get() else { return };
    CONSOLE_INTID.store(intid, Ordering::Relaxed);
    let v2_target = match gic {
        Gic::V2(v2) => v2.this_cpu_target(),
        Gic::V3(_) => 0,
    };
    gic.set_spi(intid, true, cpu::mpidr(), v2_target);
}

/// Ends the console interrupt [`take_interrupt`] returned as
/// [`Taken::ConsoleInput`], once the UART has been drained.
pub fn console_input_taken() {
    if let Some(gic) = GIC.get() {
        gic.deactivate(CONSOLE_INTID.load(Ordering::Relaxed));
    }
}

/// Applies a change the virtual GIC asks for to a hardware-linked
/// interrupt: an SGI or PPI of the CPU with MPIDR affinity `mpidr` (on
/// GICv2 only this CPU's own can be reached, and only it asks), or an SPI.
pub fn change_physical(mpidr: u64, intid: u32, change: StateChange) {
    if let Some(gic) = GIC.get()
        && let Err(error) = gic.change(mpidr, intid, change)
    {
        log::warn!("interrupt {intid}: cannot apply {change:?}: {error}");
    }
}

/// Applies `op` for the partition whose vCPU `op.vcpu` runs on `mpidr`.
pub fn apply_physical(op: &PhysicalOp, mpidr: u64) {
    change_physical(mpidr, op.intid, op.action);
}

/// This CPU's GIC interface as the vGIC uses it: its list registers, and
/// the physical state of the hardware-linked interrupts it takes.
#[derive(Debug)]
pub struct ThisCpuInterface {
    gic: &'static Gic,
    version: GicVersion,
    count: usize,
}

impl ThisCpuInterface {
    pub fn get() -> Option<ThisCpuInterface> {
        let gic = GIC.get()?;
        Some(ThisCpuInterface {
            gic,
            version: match gic {
                Gic::V2(_) => GicVersion::V2,
                Gic::V3(_) => GicVersion::V3,
            },
            count: LIST_REGISTERS.load(Ordering::Relaxed) as usize,
        })
    }

    /// Asks for the maintenance interrupt once at most one list register
    /// is in use (`waiting`: interrupts wait for a free one), or stops.
    pub fn set_underflow(&self, waiting: bool) {
        self.gic.set_virtual_interface(waiting);
    }
}

impl CpuInterface for ThisCpuInterface {
    fn count(&self) -> usize {
        self.count
    }

    fn read(&self, index: usize) -> ListRegister {
        ListRegister::decode(self.version, self.gic.list_register(index))
    }

    fn write(&mut self, index: usize, value: &ListRegister) {
        self.gic
            .set_list_register(index, value.encode(self.version));
    }

    fn empty(&self) -> u64 {
        self.gic.empty_list_registers()
    }

    fn physical(&mut self, intid: u32, action: StateChange) {
        change_physical(cpu::mpidr(), intid, action);
    }
}

/// Sets this CPU's virtual interface up for a vCPU that starts: empty list
/// registers, and the virtual timer's physical PPI as its virtual one
/// stands (enabled, active, pending: see `vgic/hardware_linked.rs`),
/// whatever a previous boot or a sibling's writes left.
pub fn vcpu_starting(timer: TimerAtStart) {
    let Some(gic) = GIC.get() else { return };
    gic.reset_virtual_interface();
    gic.set_virtual_interface(false);
    let changes = [
        (timer.enabled, StateChange::Enable, StateChange::Disable),
        (timer.held, StateChange::Activate, StateChange::Deactivate),
        (
            timer.pending_in_hardware,
            StateChange::SetPending,
            StateChange::ClearPending,
        ),
    ];
    for (set, yes, no) in changes {
        change_physical(
            cpu::mpidr(),
            VIRTUAL_TIMER_INTID,
            if set { yes } else { no },
        );
    }
}

/// Undoes what a vCPU that stops left in this CPU's GIC: hardware-linked
/// interrupts still active are deactivated, the list registers emptied and
/// the virtual timer's PPI turned off, not pending and not active.
pub fn vcpu_stopped() {
    let Some(mut registers) = ThisCpuInterface::get() else {
        return;
    };
    let gic = registers.gic;
    let _ = gic.set_private_enabled(cpu::mpidr(), VIRTUAL_TIMER_INTID, false);
    for index in 0..registers.count {
        let lr = registers.read(index);
        if lr.hw && lr.state != LrState::Invalid {
            gic.deactivate(lr.intid);
        }
        registers.write(index, &ListRegister::empty());
    }
    // Fired while the guest had it disabled: dropped but never deactivated;
    // or made pending or active by the guest.
    for change in [StateChange::ClearPending, StateChange::Deactivate] {
        let _ = gic.change(cpu::mpidr(), VIRTUAL_TIMER_INTID, change);
    }
    gic.reset_virtual_interface();
}
