//! The EL2 stage-1 MMU: build the identity map from the plan of
//! [`crate::mm::hyp_map`] and turn it on, caches included.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use aarch64_cpu::registers::{ID_AA64MMFR0_EL1, Readable, TCR_EL2};

use crate::mm::address::{PhysAddr, to_usize};
use crate::mm::hyp_map::{ImageLayout, Plan};
use crate::mm::page_table::{
    LeafCounts, MAIR_EL2_VALUE, MapError, PageTable, Stage, Table, TablePool,
};

/// Translation tables for Tessera's own map. QEMU virt and the Raspberry Pis
/// need 8 to 12 (root, one level-1 table, level-2/3 tables around the image,
/// the DTB and each device page).
const TABLE_COUNT: usize = 24;
/// Input address size of the EL2 regime: 48 bits (T0SZ = 16), enough for
/// every physical address of the supported boards; walks start at level 0.
const INPUT_BITS: u32 = 48;

/// SCTLR_EL2 RES1 bits in the non-VHE layout (Arm ARM D19.2.120):
/// 4, 5, 11, 16, 18, 22, 23, 28, 29.
const SCTLR_EL2_RES1: u64 = 0x30c5_0830;
/// SCTLR_EL2 M, C, SA, I and WXN (bits 0, 2, 3, 12, 19): MMU and caches
/// on, stack alignment checked, writable memory never executable.
const SCTLR_EL2_ON: u64 = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 19);
/// TCR_EL2 RES1 bits (non-VHE): 23 and 31.
const TCR_EL2_RES1: u64 = (1 << 31) | (1 << 23);

/// The register values secondary CPUs load in entry.S (MMU off, hence
/// written before the boot CPU turns its caches on).
#[derive(Debug)]
#[repr(C)]
pub struct MmuConfig {
    mair: AtomicU64,
    tcr: AtomicU64,
    ttbr0: AtomicU64,
    sctlr: AtomicU64,
}

#[unsafe(no_mangle)]
pub static EL2_MMU_CONFIG: MmuConfig = MmuConfig {
    mair: AtomicU64::new(0),
    tcr: AtomicU64::new(0),
    ttbr0: AtomicU64::new(0),
    sctlr: AtomicU64::new(0),
};

/// The tables, handed out once.
struct TableStore {
    taken: AtomicBool,
    tables: UnsafeCell<[Table; TABLE_COUNT]>,
}

// SAFETY: `tables` is reachable only through `take`, which hands out the one
// mutable reference at most once (on the boot CPU, before any other starts).
unsafe impl Sync for TableStore {}

static TABLES: TableStore = TableStore {
    taken: AtomicBool::new(false),
    tables: UnsafeCell::new([Table::EMPTY; TABLE_COUNT]),
};

impl TableStore {
    /// Runs with the MMU off, so it must not use atomic read-modify-write (a
    /// swap would be an exclusive access to Device memory): a plain load and
    /// store suffice because only the boot CPU runs at this point.
    fn take(&self) -> Option<&'static mut [Table; TABLE_COUNT]> {
        if self.taken.load(Ordering::Acquire) {
            return None;
        }
        self.taken.store(true, Ordering::Release);
        // SAFETY: the flag lets one caller through (there is only one CPU
        // running), so this is the only reference to the tables for good.
        Some(unsafe { &mut *TABLES.tables.get() })
    }
}

/// What the MMU setup produced, for the boot log.
#[derive(Debug, Clone, Copy)]
pub struct MmuSummary {
    pub tables_used: usize,
    pub leaves: LeafCounts,
    pub physical_bits: u32,
}

/// Why the MMU could not be turned on.
#[derive(Debug, Clone, Copy)]
pub enum MmuError {
    Map { what: &'static str, error: MapError },
    AlreadyOn,
}

impl core::fmt::Display for MmuError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MmuError::Map { what, error } => write!(f, "cannot map {what}: {error}"),
            MmuError::AlreadyOn => f.write_str("the MMU tables were already built"),
        }
    }
}

fn physical_address_size() -> (u64, u32) {
    use ID_AA64MMFR0_EL1::PARange::Value;
    // TCR_EL2.PS uses the same encoding as PARange; above 48 bits would need
    // 52-bit descriptors, so cap there.
    match ID_AA64MMFR0_EL1.read_as_enum(ID_AA64MMFR0_EL1::PARange) {
        Some(Value::Bits_32) => (0b000, 32),
        Some(Value::Bits_36) => (0b001, 36),
        Some(Value::Bits_40) => (0b010, 40),
        Some(Value::Bits_42) => (0b011, 42),
        Some(Value::Bits_44) => (0b100, 44),
        _ => (0b101, 48),
    }
}

/// Builds the tables for `plan` and turns the MMU and caches on for this
/// CPU; records the configuration for the secondaries.
///
/// # Safety
///
/// The MMU must be off, and `plan` must map (with the right permissions)
/// everything this CPU touches from here on: the image, the stack, the
/// console. `image` is the running image, which the caller wrote with caches off.
pub unsafe fn enable(plan: &Plan, image: &ImageLayout) -> Result<MmuSummary, MmuError> {
    let tables = TABLES.take().ok_or(MmuError::AlreadyOn)?;
    let base = PhysAddr(tables.as_ptr() as u64);
    let mut pool = TablePool::new(tables, base);
    let mut table =
        PageTable::new(&mut pool, Stage::Stage1El2, INPUT_BITS).map_err(|error| MmuError::Map {
            what: "the root table",
            error,
        })?;
    for mapping in &plan.mappings {
        let start = mapping.range.start();
        table
            .map(start.0, start, mapping.range.size(), mapping.attributes)
            .map_err(|error| MmuError::Map {
                what: mapping.what,
                error,
            })?;
    }
    for guard in &plan.unmapped {
        table
            .unmap(guard.start().0, guard.size())
            .map_err(|error| MmuError::Map {
                what: "a guard page",
                error,
            })?;
    }
    let leaves = table.leaf_counts();
    let root = table.root_address();
    let tables_used = pool.used();

    let (ps, physical_bits) = physical_address_size();
    let tcr = TCR_EL2_RES1
        | (TCR_EL2::T0SZ.val(64 - u64::from(INPUT_BITS))
            + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL2::SH0::Inner
            + TCR_EL2::TG0::KiB_4
            + TCR_EL2::PS.val(ps))
        .value;
    let sctlr = SCTLR_EL2_RES1 | SCTLR_EL2_ON;
    EL2_MMU_CONFIG.mair.store(MAIR_EL2_VALUE, Ordering::Relaxed);
    EL2_MMU_CONFIG.tcr.store(tcr, Ordering::Relaxed);
    EL2_MMU_CONFIG.ttbr0.store(root.0, Ordering::Relaxed);
    EL2_MMU_CONFIG.sctlr.store(sctlr, Ordering::Relaxed);

    // Everything Tessera wrote so far (relocations, BSS, the tables) went to
    // memory with caches off. Discard any stale lines of those addresses
    // before caches come on (booting.rst lets the loader leave clean lines).
    if let Some(whole) = image.whole() {
        platform::cpu::cache::invalidate(whole.start().as_usize(), to_usize(whole.size()));
    }
    // SAFETY: the caller guarantees the MMU is off and the plan covers what
    // this CPU uses; the registers are written in the order the Arm ARM
    // requires (translation registers, barrier, TLB invalidation, then SCTLR).
    unsafe {
        core::arch::asm!(
            "msr mair_el2, {mair}",
            "msr tcr_el2, {tcr}",
            "msr ttbr0_el2, {ttbr}",
            "isb",
            "tlbi alle2",
            "dsb nsh",
            "ic iallu",
            "dsb nsh",
            "isb",
            "msr sctlr_el2, {sctlr}",
            "isb",
            mair = in(reg) MAIR_EL2_VALUE,
            tcr = in(reg) tcr,
            ttbr = in(reg) root.0,
            sctlr = in(reg) sctlr,
            options(nostack, preserves_flags),
        );
    }
    Ok(MmuSummary {
        tables_used,
        leaves,
        physical_bits,
    })
}
