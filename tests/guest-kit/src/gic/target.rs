//! The GIC on the bare-metal target: set-up, one vCPU's view, IRQ handling.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

use super::record::{Record, TRACKED};
use super::{
    Acknowledged, ICENABLER, ICPENDR, IPRIORITYR, ISENABLER, ISPENDR, InitError, Layout, SgiError,
    SgiTargets, Version, bit_slot, byte_slot, is_special, v2, v3,
};
use crate::mmio::Mmio;
use crate::{MAX_VCPUS, cpu};

/// `VERSION` before [`init`].
const NO_GIC: u8 = 0;

/// The layout [`init`] stored, for every vCPU.
static VERSION: AtomicU8 = AtomicU8::new(NO_GIC);
static DISTRIBUTOR_BASE: AtomicUsize = AtomicUsize::new(0);
static DISTRIBUTOR_SIZE: AtomicUsize = AtomicUsize::new(0);
static CPU_BASE: AtomicUsize = AtomicUsize::new(0);
static CPU_SIZE: AtomicUsize = AtomicUsize::new(0);
/// GICv3: each vCPU's redistributor frame (`RD_base`), written by that vCPU.
static FRAMES: [AtomicUsize; MAX_VCPUS] = [const { AtomicUsize::new(0) }; MAX_VCPUS];
/// Whether each vCPU's interface is set up, written by that vCPU.
static READY: [AtomicBool; MAX_VCPUS] = [const { AtomicBool::new(false) }; MAX_VCPUS];
/// What each vCPU received, written by that vCPU's IRQ handler.
static RECORDS: [Record; MAX_VCPUS] = [const { Record::new() }; MAX_VCPUS];
/// Handlers by INTID: a `fn(u32)` as an address, 0 for none.
static HANDLERS: [AtomicUsize; TRACKED] = [const { AtomicUsize::new(0) }; TRACKED];

/// Most interrupts acknowledged in one IRQ exception: a level interrupt
/// whose handler does not quiet it is taken again later, not forever here.
const MAX_ACKNOWLEDGES: usize = 64;

/// A handler for one INTID, called with it between acknowledge and end of
/// interrupt, with interrupts masked. It must not print (the console is not
/// locked) and must quiet a level-sensitive source.
pub type Handler = fn(u32);

/// The GIC as the calling vCPU sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gic {
    V2(v2::Gic),
    V3(v3::Gic),
}

fn vcpu() -> Result<usize, InitError> {
    let vcpu = cpu::index();
    if vcpu < MAX_VCPUS {
        Ok(vcpu)
    } else {
        Err(InitError::VcpuOutOfRange(vcpu))
    }
}

/// The stored layout's version and blocks.
fn blocks() -> Option<(Version, Mmio, Mmio)> {
    let version = match VERSION.load(Ordering::SeqCst) {
        2 => Version::V2,
        3 => Version::V3,
        _ => return None,
    };
    // SAFETY: `init` stored these from the guest DTB's GIC node: device
    // registers that nothing in the program references.
    let (distributor, cpu) = unsafe {
        (
            Mmio::new(
                DISTRIBUTOR_BASE.load(Ordering::SeqCst),
                DISTRIBUTOR_SIZE.load(Ordering::SeqCst),
            ),
            Mmio::new(
                CPU_BASE.load(Ordering::SeqCst),
                CPU_SIZE.load(Ordering::SeqCst),
            ),
        )
    };
    Some((version, distributor, cpu))
}

/// Sets up the GIC of `layout` from the boot vCPU: the distributor, then
/// this vCPU's interface ([`init_cpu`]). Every other vCPU calls
/// [`init_cpu`] afterwards.
pub fn init(layout: &Layout) -> Result<Gic, InitError> {
    let size = |size: u64| usize::try_from(size).unwrap_or(0);
    let base = |base: u64| usize::try_from(base).unwrap_or(0);
    DISTRIBUTOR_BASE.store(base(layout.distributor.base), Ordering::SeqCst);
    DISTRIBUTOR_SIZE.store(size(layout.distributor.size), Ordering::SeqCst);
    CPU_BASE.store(base(layout.cpu.base), Ordering::SeqCst);
    CPU_SIZE.store(size(layout.cpu.size), Ordering::SeqCst);
    VERSION.store(
        match layout.version {
            Version::V2 => 2,
            Version::V3 => 3,
        },
        Ordering::SeqCst,
    );
    let (version, distributor, _) = blocks().ok_or(InitError::NotInitialised)?;
    match version {
        Version::V2 => v2::Gic::init_distributor(&distributor)?,
        Version::V3 => v3::Gic::init_distributor(&distributor)?,
    }
    init_cpu()
}

/// Sets up the calling vCPU's redistributor (GICv3) and CPU interface, as
/// the layout [`init`] stored says. Interrupts stay masked (`PSTATE.I`).
pub fn init_cpu() -> Result<Gic, InitError> {
    let vcpu = vcpu()?;
    let (version, distributor, cpu_block) = blocks().ok_or(InitError::NotInitialised)?;
    let gic = match version {
        Version::V2 => {
            let gic = v2::Gic::new(distributor, cpu_block);
            gic.init_cpu()?;
            Gic::V2(gic)
        }
        Version::V3 => {
            let affinity = v3::affinity_value(cpu::mpidr());
            let frame = v3::Gic::find_frame(&cpu_block, affinity)?;
            let gic = v3::Gic::new(distributor, cpu_block, frame);
            gic.init_cpu()?;
            FRAMES[vcpu].store(frame.base(), Ordering::SeqCst);
            Gic::V3(gic)
        }
    };
    READY[vcpu].store(true, Ordering::SeqCst);
    Ok(gic)
}

/// The GIC as the calling vCPU sees it, once [`init_cpu`] (or [`init`])
/// has run on it.
pub fn get() -> Option<Gic> {
    let vcpu = vcpu().ok()?;
    if !READY[vcpu].load(Ordering::SeqCst) {
        return None;
    }
    let (version, distributor, cpu_block) = blocks()?;
    Some(match version {
        Version::V2 => Gic::V2(v2::Gic::new(distributor, cpu_block)),
        Version::V3 => {
            // SAFETY: the frame `init_cpu` found inside the redistributor
            // region.
            let frame = unsafe { Mmio::new(FRAMES[vcpu].load(Ordering::SeqCst), v3::FRAME_BYTES) };
            Gic::V3(v3::Gic::new(distributor, cpu_block, frame))
        }
    })
}

/// What vCPU `vcpu` has received (vCPU 0's for an index out of range).
pub fn record(vcpu: usize) -> &'static Record {
    RECORDS.get(vcpu).unwrap_or(&RECORDS[0])
}

/// Calls `handler` for every arrival of `intid` (below
/// [`super::record::TRACKED`]; others cannot have one), on any vCPU.
pub fn set_handler(intid: u32, handler: Handler) {
    if let Some(slot) = HANDLERS.get(intid as usize) {
        slot.store(handler as usize, Ordering::SeqCst);
    }
}

fn handler(intid: u32) -> Option<Handler> {
    let address = HANDLERS.get(intid as usize)?.load(Ordering::SeqCst);
    if address == 0 {
        return None;
    }
    // SAFETY: `set_handler` stores only addresses of `fn(u32)` values, and
    // 0 was excluded above.
    Some(unsafe { core::mem::transmute::<usize, Handler>(address) })
}

/// The IRQ vector's work: acknowledges interrupts until none is pending,
/// recording and handling each, then ending it. Returns false if this
/// vCPU's interface is not set up (the IRQ is then unexpected).
pub fn handle_irq() -> bool {
    let Some(gic) = get() else {
        return false;
    };
    let record = record(cpu::index());
    for acknowledged in 0..MAX_ACKNOWLEDGES {
        let interrupt = gic.acknowledge();
        if is_special(interrupt.intid) {
            if acknowledged == 0 {
                record.note_spurious();
            }
            break;
        }
        record.note(interrupt.intid, interrupt.source);
        if let Some(handler) = handler(interrupt.intid) {
            handler(interrupt.intid);
        }
        gic.end_of_interrupt(interrupt);
    }
    true
}

macro_rules! delegate {
    ($(#[$doc:meta])* fn $name:ident(&self $(, $argument:ident: $type:ty)*) $(-> $result:ty)?) => {
        $(#[$doc])*
        pub fn $name(&self $(, $argument: $type)*) $(-> $result)? {
            match self {
                Gic::V2(gic) => gic.$name($($argument),*),
                Gic::V3(gic) => gic.$name($($argument),*),
            }
        }
    };
}

impl Gic {
    pub fn version(&self) -> Version {
        match self {
            Gic::V2(_) => Version::V2,
            Gic::V3(_) => Version::V3,
        }
    }

    delegate!(
        /// The block that holds `intid`'s bits and bytes in the banks of
        /// [`ISENABLER`] and the others.
        fn banks(&self, intid: u32) -> Mmio
    );

    /// Writes `intid`'s bit alone in the write-1 bank at `bank`
    /// ([`ISENABLER`], [`ICENABLER`], [`ISPENDR`], [`ICPENDR`]).
    pub fn set_bit(&self, intid: u32, bank: usize) {
        let (offset, bit) = bit_slot(intid);
        self.banks(intid).write32(bank + offset, bit);
    }

    /// `intid`'s bit in the bank at `bank`.
    pub fn bit(&self, intid: u32, bank: usize) -> bool {
        let (offset, bit) = bit_slot(intid);
        self.banks(intid).read32(bank + offset) & bit != 0
    }

    /// With interrupts masked: acknowledges what the GIC presents until it
    /// presents `intid` (now active: the caller ends it), within
    /// `milliseconds`. Anything else presented meanwhile is ended at once;
    /// the last such INTID is returned beside it.
    pub fn acknowledge_until(
        &self,
        intid: u32,
        milliseconds: u64,
    ) -> (Option<Acknowledged>, Option<u32>) {
        let mut taken = None;
        let mut other = None;
        crate::time::wait_until(milliseconds, || {
            let acknowledged = self.acknowledge();
            if acknowledged.intid == intid {
                taken = Some(acknowledged);
                return true;
            }
            if !is_special(acknowledged.intid) {
                other = Some(acknowledged.intid);
                self.end_of_interrupt(acknowledged);
            }
            false
        });
        (taken, other)
    }

    pub fn enable(&self, intid: u32) {
        self.set_bit(intid, ISENABLER);
    }

    /// Disables `intid` and, on GICv3, waits until the write has taken
    /// effect.
    pub fn disable(&self, intid: u32) {
        self.set_bit(intid, ICENABLER);
        if let Gic::V3(gic) = self {
            gic.wait_for_writes(intid);
        }
    }

    pub fn is_enabled(&self, intid: u32) -> bool {
        self.bit(intid, ISENABLER)
    }

    pub fn set_pending(&self, intid: u32) {
        self.set_bit(intid, ISPENDR);
    }

    pub fn clear_pending(&self, intid: u32) {
        self.set_bit(intid, ICPENDR);
    }

    pub fn is_pending(&self, intid: u32) -> bool {
        self.bit(intid, ISPENDR)
    }

    /// Sets `intid`'s priority with a 32-bit read-modify-write of its word.
    pub fn set_priority(&self, intid: u32, priority: u8) {
        let (offset, shift) = byte_slot(intid);
        let block = self.banks(intid);
        let word = block.read32(IPRIORITYR + offset);
        let word = (word & !(0xff << shift)) | u32::from(priority) << shift;
        block.write32(IPRIORITYR + offset, word);
    }

    /// `intid`'s priority, read as a 32-bit word.
    pub fn priority(&self, intid: u32) -> u8 {
        let (offset, shift) = byte_slot(intid);
        let word = self.banks(intid).read32(IPRIORITYR + offset);
        u8::try_from((word >> shift) & 0xff).unwrap_or(0)
    }

    /// One byte store to `intid`'s priority (the registers are
    /// byte-accessible: IHI 0069 §12.9.18, IHI 0048B §4.3.11).
    pub fn set_priority_byte(&self, intid: u32, priority: u8) {
        self.banks(intid)
            .write8(IPRIORITYR + intid as usize, priority);
    }

    /// One byte load of `intid`'s priority.
    pub fn priority_byte(&self, intid: u32) -> u8 {
        self.banks(intid).read8(IPRIORITYR + intid as usize)
    }
    delegate!(
        /// Routes SPI `intid` to vCPU `vcpu` (GICD_IROUTER or ITARGETSR).
        fn route(&self, intid: u32, vcpu: u8)
    );
    delegate!(
        /// The raw routing of `intid`: GICD_IROUTER on GICv3, the
        /// GICD_ITARGETSR byte on GICv2.
        fn routing(&self, intid: u32) -> u64
    );
    delegate!(fn send_sgi(&self, intid: u32, targets: SgiTargets) -> Result<(), SgiError>);
    delegate!(fn acknowledge(&self) -> Acknowledged);
    delegate!(fn end_of_interrupt(&self, acknowledged: Acknowledged));
    delegate!(fn set_priority_mask(&self, mask: u8));
    delegate!(fn priority_mask(&self) -> u8);
    delegate!(
        /// One past the largest INTID the distributor implements
        /// (`GICD_TYPER.ITLinesNumber`).
        fn lines(&self) -> u32
    );

    /// The raw routing value that means "vCPU `vcpu`" for [`Gic::routing`].
    pub fn routing_for(&self, vcpu: u8) -> u64 {
        match self {
            Gic::V2(_) => u64::from(v2::target_byte(vcpu)),
            Gic::V3(_) => v3::irouter_for(vcpu),
        }
    }
}
