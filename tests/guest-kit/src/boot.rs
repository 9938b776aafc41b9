//! The boot stub: from the first instruction to the guest's `main`.
//!
//! The boot vCPU enters `_start`, the image's first byte, as the Linux arm64
//! boot protocol says (EL1h, MMU and caches off, x0 = the DTB). Its first
//! instruction reads the physical counter, so that benchmarks can tell when
//! the guest started ([`entry_counter`]). It applies
//! the image's `R_AARCH64_RELATIVE` relocations for the address it runs at
//! (the code is position-independent, so the image also runs where QEMU's
//! `-kernel` puts a raw binary), clears BSS, takes stack 0, installs the
//! vectors and calls [`kit_start`], which calls the guest's `main(dtb)`.
//!
//! A secondary vCPU enters `_secondary_entry` (the `CPU_ON` entry point,
//! [`crate::cpu::secondary_entry_point`]) with the caller's context id in x0.
//! It takes the stack of its MPIDR Aff0 (1 to [`MAX_VCPUS`] − 1; any other
//! MPIDR parks), installs the vectors and calls the guest's secondary entry.
//! Neither touches BSS or relocations: the boot vCPU has done both.

use core::arch::global_asm;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::fdt::{Fdt, FdtError, Region};
use crate::psci::Psci;
use crate::{LINK_ADDRESS, MAX_VCPUS, STACK_SIZE, console, cpu, println, report};

/// `R_AARCH64_RELATIVE`, the only relocation the stub applies (xtask checks
/// that the image has no other kind).
const R_AARCH64_RELATIVE: u64 = 1027;

global_asm!(
    r#"
.section .text.boot, "ax"
.global _start
_start:
    mrs x21, cntpct_el0             // when the guest started: entry_counter()
    mov x19, x0                     // the DTB, for main

    // Relocate: x20 = where the image runs - where it was linked. Even at
    // the link address (x20 = 0) the relocations must be applied: the
    // linker leaves the pointers they describe as 0 in the file.
    adrp x1, __image_start
    add x1, x1, :lo12:__image_start
    movz x2, #{link_high}, lsl #16
    sub x20, x1, x2
    adrp x3, __rela_start
    add x3, x3, :lo12:__rela_start
    adrp x4, __rela_end
    add x4, x4, :lo12:__rela_end
1:  cmp x3, x4
    b.hs 2f
    ldp x5, x6, [x3]                // r_offset, r_info
    ldr x7, [x3, #16]               // r_addend
    add x3, x3, #24
    cmp x6, #{relative}
    b.ne 1b
    add x7, x7, x20
    str x7, [x5, x20]
    b 1b

    // Clear BSS (16-byte aligned at both ends, see link.ld).
2:  adrp x1, __bss_start
    add x1, x1, :lo12:__bss_start
    adrp x2, __bss_end
    add x2, x2, :lo12:__bss_end
3:  cmp x1, x2
    b.hs 4f
    stp xzr, xzr, [x1]
    add x1, x1, #16
    b 3b

4:  mov x0, #0                      // the boot vCPU uses stack 0
    bl __kit_vcpu_setup
    mov x0, x19
    mov x1, x21
    bl kit_start
    b __kit_park

.global _secondary_entry
_secondary_entry:
    mov x19, x0                     // the context id
    mrs x1, mpidr_el1
    ubfx x2, x1, #8, #16            // Aff1 and Aff2
    cbnz x2, __kit_park
    ubfx x2, x1, #32, #8            // Aff3
    cbnz x2, __kit_park
    and x0, x1, #0xff               // Aff0: the vCPU's index
    cbz x0, __kit_park              // stack 0 belongs to the boot vCPU
    cmp x0, #{max_vcpus}
    b.hs __kit_park
    mov x20, x0
    bl __kit_vcpu_setup
    mov x0, x20
    mov x1, x19
    bl kit_secondary_start
    b __kit_park

// x0 = vCPU index: TPIDR_EL1, the stack and the vectors. Clobbers x1, x2.
__kit_vcpu_setup:
    msr tpidr_el1, x0
    adrp x1, __kit_stacks
    add x1, x1, :lo12:__kit_stacks
    add x2, x0, #1
    mov x0, #{stack_size}
    madd x1, x2, x0, x1             // the top of this vCPU's stack
    mov sp, x1
    adrp x1, __kit_vectors
    add x1, x1, :lo12:__kit_vectors
    msr vbar_el1, x1
    isb
    ret

.global __kit_park
__kit_park:
    wfe
    b __kit_park

.section .stacks, "aw", %nobits
.balign 16
.global __kit_stacks
__kit_stacks:
    .space {stacks_size}
"#,
    link_high = const LINK_ADDRESS >> 16,
    relative = const R_AARCH64_RELATIVE,
    max_vcpus = const MAX_VCPUS,
    stack_size = const STACK_SIZE,
    stacks_size = const STACK_SIZE * MAX_VCPUS,
);

// LINK_ADDRESS is loaded with one `movz ..., lsl #16`.
const _: () = assert!(LINK_ADDRESS & 0xffff == 0 && LINK_ADDRESS >> 32 == 0);

unsafe extern "Rust" {
    /// Defined by [`crate::entry!`].
    fn __tessera_guest_main(dtb: usize) -> !;
    /// Defined by [`crate::entry!`].
    fn __tessera_guest_secondary_main(vcpu: usize, context_id: u64) -> !;
}

unsafe extern "C" {
    static __image_start: u8;
    static __image_end: u8;
}

/// What the boot vCPU found in x0.
static BOOT_DTB: AtomicUsize = AtomicUsize::new(0);
/// `CNTPCT_EL0` at the image's first instruction.
static ENTRY_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The boot vCPU's first Rust code.
#[unsafe(no_mangle)]
extern "C" fn kit_start(dtb: usize, entry_counter: u64) -> ! {
    BOOT_DTB.store(dtb, Ordering::SeqCst);
    ENTRY_COUNTER.store(entry_counter, Ordering::SeqCst);
    console::init();
    cpu::enable_event_stream();
    // SAFETY: `entry!` defines the symbol with this signature; without it
    // the guest does not link.
    unsafe { __tessera_guest_main(dtb) }
}

/// A secondary vCPU's first Rust code.
#[unsafe(no_mangle)]
extern "C" fn kit_secondary_start(vcpu: usize, context_id: u64) -> ! {
    cpu::enable_event_stream();
    // SAFETY: as in `kit_start`.
    unsafe { __tessera_guest_secondary_main(vcpu, context_id) }
}

/// The secondary entry of a guest that defines none: says so and turns the
/// vCPU off.
pub fn default_secondary_main(vcpu: usize, context_id: u64) -> ! {
    println!(
        "vCPU {vcpu} started (context id {context_id:#x}) but the guest has no secondary entry: CPU_OFF"
    );
    let raw = Psci::HVC.cpu_off();
    println!("vCPU {vcpu}: CPU_OFF returned {}", crate::psci::Raw(raw));
    cpu::park()
}

/// The physical counter (`CNTPCT_EL0`) when the boot vCPU executed the
/// image's first instruction: with QEMU's `-icount`, how far into the run
/// the guest started.
pub fn entry_counter() -> u64 {
    ENTRY_COUNTER.load(Ordering::SeqCst)
}

/// The DTB the boot vCPU received in x0.
pub fn boot_dtb_address() -> usize {
    BOOT_DTB.load(Ordering::SeqCst)
}

/// The DTB the boot vCPU received, checked.
pub fn boot_fdt() -> Result<Fdt<'static>, FdtError> {
    // SAFETY: the boot protocol puts a DTB's address in x0, or 0 (refused
    // by `from_address`). The DTB lies in the guest's RAM, outside this
    // image, and nothing in the kit writes it; guests leave its pages out
    // of their memory tests (see `image_region`, `memory::free_ranges`).
    unsafe { Fdt::from_address(boot_dtb_address()) }
}

/// Where this image runs: its code, data, BSS and stacks.
pub fn image_region() -> Region {
    let start = &raw const __image_start as u64;
    let end = &raw const __image_end as u64;
    Region {
        base: start,
        size: end.saturating_sub(start),
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    match info.location() {
        Some(location) => println!(
            "panic on vCPU {} at {}:{}: {}",
            cpu::index(),
            location.file(),
            location.line(),
            info.message()
        ),
        None => println!("panic on vCPU {}: {}", cpu::index(), info.message()),
    }
    report::abort(format_args!("panic: {}", info.message()))
}
