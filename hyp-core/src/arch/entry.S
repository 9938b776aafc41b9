// Tessera's first instructions: the arm64 Image header, the boot CPU's entry
// and the secondary CPUs' entry (Linux Documentation/arch/arm64/booting.rst).
// Everything here runs with the MMU off and must be position-independent:
// only PC-relative addressing until the relocations are applied.

.section .text.head, "ax"
.global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0                       // text_offset: place at a 2 MiB boundary
    .quad   __image_size            // image_size, BSS included
    .quad   {image_flags}           // little-endian, 4 KiB pages, anywhere in RAM
    .quad   0, 0, 0                 // res2-res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5: no PE/COFF header

.section .text.boot, "ax"
primary_entry:
    msr     daifset, #0xf
    mov     x19, x0                 // DTB address
    adrp    x20, _start             // load address (4 KiB-aligned, so adrp is exact)
    mrs     x21, CurrentEL
    ubfx    x21, x21, #2, #2        // exception level
    mov     x22, xzr
    cmp     x21, #2
    b.ne    1f
    isb
    mrs     x22, cntpct_el0         // entry time stamp (only read at EL2, where it cannot trap)
1:
    // Apply R_AARCH64_RELATIVE relocations: *(base + offset) = base + addend.
    // `cargo xtask build` rejects an image with any other relocation type.
    adrp    x0, __rela_start
    add     x0, x0, :lo12:__rela_start
    adrp    x1, __rela_end
    add     x1, x1, :lo12:__rela_end
2:  cmp     x0, x1
    b.hs    3f
    ldp     x2, x3, [x0], #16       // r_offset, r_info
    ldr     x4, [x0], #8            // r_addend
    cmp     w3, #{r_aarch64_relative}
    b.ne    2b
    add     x4, x4, x20
    str     x4, [x20, x2]
    b       2b
3:
    // BSS and the stacks are not part of the loaded file, and booting.rst
    // only promises that the file was cleaned to the point of coherency: a
    // dirty line a loader left over them could be evicted later and
    // overwrite what is written here with caches off. Discard those lines
    // first (Linux did the same for its early page tables). The DMB orders
    // the data cache instructions after earlier Device accesses (MMU off).
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __image_end
    add     x1, x1, :lo12:__image_end
    mrs     x3, ctr_el0
    ubfx    x3, x3, #16, #4         // CTR_EL0.DminLine: log2 of the line size in words
    mov     x4, #4
    lsl     x4, x4, x3              // line size in bytes
    dmb     sy
6:  dc      ivac, x0                // __bss_start is page-aligned (link.ld)
    add     x0, x0, x4
    cmp     x0, x1
    b.lo    6b
    dsb     sy
    // Clear BSS (the linker script aligns the start to a page and the end
    // to 16 bytes): 64 bytes a step, then the tail 16 bytes a step. BSS is
    // about 100 KiB, mostly page tables, so the loop overhead matters.
    adrp    x0, __bss_start
    add     x0, x0, :lo12:__bss_start
    adrp    x1, __bss_end
    add     x1, x1, :lo12:__bss_end
4:  sub     x2, x1, x0
    cmp     x2, #64
    b.lo    7f
    stp     xzr, xzr, [x0]
    stp     xzr, xzr, [x0, #16]
    stp     xzr, xzr, [x0, #32]
    stp     xzr, xzr, [x0, #48]
    add     x0, x0, #64
    b       4b
7:  cmp     x0, x1
    b.hs    5f
    stp     xzr, xzr, [x0], #16
    b       7b
5:
    // Exceptions run on SP_ELx (the exception stack), Tessera's code on SP_EL0.
    adrp    x0, __boot_exception_stack_top
    add     x0, x0, :lo12:__boot_exception_stack_top
    msr     spsel, #1
    mov     sp, x0
    adrp    x0, __boot_stack_top
    add     x0, x0, :lo12:__boot_stack_top
    msr     sp_el0, x0
    msr     spsel, #0
    cmp     x21, #2
    b.ne    wrong_el
    adrp    x0, el2_vectors
    add     x0, x0, :lo12:el2_vectors
    msr     vbar_el2, x0
    mov     x0, #{hcr_el2}
    msr     hcr_el2, x0             // known state: no VHE, nothing trapped yet
    msr     tpidr_el2, xzr          // the boot CPU is CPU 0
    isb
    mov     x0, x19
    mov     x1, x20
    mov     x2, x22
    bl      primary_main
    b       park

wrong_el:
    mov     x0, x19
    mov     x1, x21
    bl      wrong_el_main
    b       park

// Secondary CPUs arrive here from PSCI CPU_ON or a spin table, MMU off, and
// find their stack in the boot slot the boot CPU filled for their MPIDR.
.global secondary_entry
secondary_entry:
    msr     daifset, #0xf
    mrs     x0, mpidr_el1
    and     x1, x0, #0xffffff       // Aff2..Aff0
    ubfx    x2, x0, #32, #8         // Aff3
    orr     x1, x1, x2, lsl #32
    adrp    x2, SECONDARY_BOOT
    add     x2, x2, :lo12:SECONDARY_BOOT
    mov     x3, xzr
1:  cmp     x3, #{max_cpus}
    b.hs    park
    ldr     x4, [x2, #{slot_mpidr}]
    cmp     x4, x1
    b.eq    2f
    add     x2, x2, #{slot_size}
    add     x3, x3, #1
    b       1b
2:  ldr     x4, [x2, #{slot_exception_stack_top}]
    msr     spsel, #1
    mov     sp, x4
    ldr     x4, [x2, #{slot_stack_top}]
    msr     sp_el0, x4
    msr     spsel, #0
    msr     tpidr_el2, x3
    adrp    x0, el2_vectors
    add     x0, x0, :lo12:el2_vectors
    msr     vbar_el2, x0
    mov     x0, #{hcr_el2}
    msr     hcr_el2, x0
    // Turn on the MMU with the boot CPU's tables.
    adrp    x5, EL2_MMU_CONFIG
    add     x5, x5, :lo12:EL2_MMU_CONFIG
    ldp     x6, x7, [x5]            // MAIR_EL2, TCR_EL2
    ldp     x8, x9, [x5, #16]       // TTBR0_EL2, SCTLR_EL2
    msr     mair_el2, x6
    msr     tcr_el2, x7
    msr     ttbr0_el2, x8
    isb
    tlbi    alle2
    dsb     nsh
    ic      iallu                   // as the boot CPU does before caches go on
    dsb     nsh
    isb
    msr     sctlr_el2, x9
    isb
    mov     x0, x3
    bl      secondary_main

park:
    wfe
    b       park
