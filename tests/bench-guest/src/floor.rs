//! The floor: the least a hypervisor can do for a trap.
//!
//! Booted by QEMU at EL2 with no hypervisor (`virtualization=on`), the bench
//! guest installs the handler below as its own EL2, turns on a stage-2
//! translation that leaves one device page range unmapped, and drops to EL1
//! to run the same measurements it runs in a Tessera partition. The handler
//! returns from an HVC at once and steps over a data abort's instruction:
//! the cost of taking and returning from a trap, and of decoding its class,
//! with nothing emulated. Every trap figure of the bench is shown beside
//! this one.
//!
//! Stage 2 maps the first GiB only for the PL011's 2 MiB block (Device) and
//! the second GiB (RAM) as one 1 GiB block; anything else, such as
//! [`UNMAPPED_MMIO`], takes a stage-2 data abort to the handler.

use core::arch::{asm, global_asm};
use core::cell::UnsafeCell;

use aarch64_cpu::registers::{
    CNTHCTL_EL2, CNTVOFF_EL2, CPTR_EL2, CurrentEL, HCR_EL2, SPSR_EL2, VBAR_EL2, VTCR_EL2, VTTBR_EL2,
};
use tessera_guest_kit::console::PL011_BASE;
use tock_registers::interfaces::{Readable, Writeable};

/// An address in the first GiB outside the PL011's block, which the floor's
/// stage 2 leaves unmapped: the floor's "MMIO register" (QEMU virt's
/// virtio-mmio window, never touched for real).
pub const UNMAPPED_MMIO: usize = 0x0a00_0000;

/// Exception classes (ESR_ELx.EC) the handler tells apart.
const EC_DATA_ABORT_LOWER: u64 = 0x24;

global_asm!(
    r#"
.section .text.floor, "ax"
.balign 2048
.global __floor_vectors
__floor_vectors:
    // Exceptions from EL2 itself: there are none in a working floor.
    .rept 8
    .balign 0x80
    b __floor_hang
    .endr

    // Synchronous, from EL1 (AArch64): HVC returns at once (ELR_EL2 is
    // already past it); a data abort steps over its instruction.
    .balign 0x80
    msr tpidr_el2, x0
    mrs x0, esr_el2
    ubfx x0, x0, #26, #6
    cmp x0, #{ec_data_abort}
    b.ne 1f
    mrs x0, elr_el2
    add x0, x0, #4
    msr elr_el2, x0
1:  mrs x0, tpidr_el2
    eret

    // IRQ, FIQ, SError from EL1, and everything from AArch32.
    .rept 7
    .balign 0x80
    b __floor_hang
    .endr

__floor_hang:
    wfe
    b __floor_hang
"#,
    ec_data_abort = const EC_DATA_ABORT_LOWER,
);

unsafe extern "C" {
    static __floor_vectors: u8;
}

const ENTRIES: usize = 512;
const GIB: u64 = 1 << 30;
const BLOCK_2MIB: u64 = 2 << 20;
/// The guest RAM base (QEMU virt's), mapped by one level-1 block.
const RAM_BASE: u64 = 0x4000_0000;

/// Stage-2 descriptor bits (Arm ARM D8.3): valid; table (at levels 0-2);
/// MemAttr[5:2] Normal write-back or Device-nGnRE; S2AP read/write;
/// inner shareable; access flag.
const DESC_VALID: u64 = 1 << 0;
const DESC_TABLE: u64 = 1 << 1;
const MEMATTR_NORMAL_WB: u64 = 0b1111 << 2;
const MEMATTR_DEVICE_NGNRE: u64 = 0b0001 << 2;
const S2AP_READ_WRITE: u64 = 0b11 << 6;
const SH_INNER: u64 = 0b11 << 8;
const ACCESS_FLAG: u64 = 1 << 10;

/// The input size: 39 bits (T0SZ = 25), so the walk starts at level 1.
const IPA_BITS: u64 = 39;

/// CPTR_EL2 with its RES1 bits (13:12, 9:0 without TFP) and no trap.
const CPTR_EL2_RES1: u64 = 0x33ff;
/// MDCR_EL2.HPMN: how many event counters EL1 owns (all of them); HPMD
/// stays 0, so EL2 events are counted.
const PMCR_N_SHIFT: u64 = 11;
const PMCR_N_BITS: u64 = 5;

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

/// The floor's two stage-2 tables: level 1 (the root) and level 2 for the
/// first GiB.
struct Tables(UnsafeCell<[Table; 2]>);

// SAFETY: written once, by the boot vCPU, before stage 2 is turned on.
unsafe impl Sync for Tables {}

static TABLES: Tables = Tables(UnsafeCell::new([Table([0; ENTRIES]), Table([0; ENTRIES])]));

/// Whether the guest was entered at EL2 (booted with no hypervisor).
pub fn at_el2() -> bool {
    CurrentEL.read(CurrentEL::EL) == 2
}

/// Builds the stage-2 tables; returns the root's address.
fn build_stage2() -> u64 {
    let tables = TABLES.0.get();
    // SAFETY: nothing else uses the tables yet (see `Sync` above); each
    // entry is a single aligned store.
    unsafe {
        let level1 = &raw mut (*tables)[0].0;
        let level2 = &raw mut (*tables)[1].0;
        let block_attributes = DESC_VALID | S2AP_READ_WRITE | ACCESS_FLAG;
        (*level1)[0] = level2 as u64 | DESC_VALID | DESC_TABLE;
        (*level1)[(RAM_BASE / GIB) as usize] =
            RAM_BASE | block_attributes | MEMATTR_NORMAL_WB | SH_INNER;
        let uart_block = PL011_BASE as u64 & !(BLOCK_2MIB - 1);
        (*level2)[(uart_block / BLOCK_2MIB) as usize] =
            uart_block | block_attributes | MEMATTR_DEVICE_NGNRE;
        level1 as u64
    }
}

/// Makes this CPU's EL2 the floor and continues at EL1 on the same stack.
pub fn enter_el1() {
    let root = build_stage2();
    VTCR_EL2.write(
        VTCR_EL2::RES1::SET
            + VTCR_EL2::PS::PA_40B_1TB
            + VTCR_EL2::TG0::Granule4KB
            + VTCR_EL2::SH0::Inner
            + VTCR_EL2::ORGN0::NormalWBRAWA
            + VTCR_EL2::IRGN0::NormalWBRAWA
            + VTCR_EL2::SL0::Granule4KBLevel1
            + VTCR_EL2::T0SZ.val(64 - IPA_BITS),
    );
    VTTBR_EL2.set(root);
    VBAR_EL2.set(&raw const __floor_vectors as u64);
    CPTR_EL2.set(CPTR_EL2_RES1);
    CNTHCTL_EL2.write(CNTHCTL_EL2::EL1PCTEN::SET + CNTHCTL_EL2::EL1PCEN::SET);
    CNTVOFF_EL2.set(0);
    HCR_EL2.write(HCR_EL2::RW::EL1IsAarch64 + HCR_EL2::VM::Enable);
    SPSR_EL2.write(
        SPSR_EL2::D::Masked
            + SPSR_EL2::A::Masked
            + SPSR_EL2::I::Masked
            + SPSR_EL2::F::Masked
            + SPSR_EL2::M::EL1h,
    );
    // SAFETY: the EL1 that the ERET enters runs this same code with this
    // same stack (SP_EL1 = SP) and vectors (the kit set VBAR_EL1); the
    // stage 2 built above maps all of its RAM and its UART. Registers
    // other than the scratch one are unchanged across the ERET.
    unsafe {
        asm!(
            "mrs {scratch}, pmcr_el0",
            "ubfx {scratch}, {scratch}, #{n_shift}, #{n_bits}",
            "msr mdcr_el2, {scratch}",
            "tlbi vmalls12e1",
            "dsb ish",
            "isb",
            "mov {scratch}, sp",
            "msr sp_el1, {scratch}",
            "adr {scratch}, 1f",
            "msr elr_el2, {scratch}",
            "eret",
            "1:",
            n_shift = const PMCR_N_SHIFT,
            n_bits = const PMCR_N_BITS,
            scratch = out(reg) _,
            options(nostack),
        );
    }
}
