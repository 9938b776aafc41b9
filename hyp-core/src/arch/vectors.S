// EL2 exception vectors (Arm ARM D1.10.2): 16 entries of 0x80 bytes. Each
// saves x0/x1 and puts its index in x0. The current-EL entries (0-7) join
// the common path, which saves a TrapFrame (hyp-core/src/exception.rs) and
// calls el2_exception(index, frame). The lower-EL entries (8-15) are guest
// exits: they join guest_exit (guest.S), which saves the vCPU's registers
// and returns to the Rust code that entered the guest.
// Every exception runs on SP_EL2, the exception stack. Tessera's own code runs
// on SP_EL0, so its exceptions arrive through the "current EL with SP_EL0"
// entries (0-3) and one that overflowed its stack can still be reported.

.macro VECTOR index
    .balign 0x80
    sub     sp, sp, #{frame_size}
    stp     x0, x1, [sp]
    mov     x0, #\index
    b       el2_exception_entry
.endm

.macro GUEST_VECTOR index
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    mov     x0, #\index
    b       guest_exit
.endm

.section .text.vectors, "ax"
.balign 0x800
.global el2_vectors
el2_vectors:
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 3
    VECTOR 4
    VECTOR 5
    VECTOR 6
    VECTOR 7
    // A guest's synchronous exception: calls with a constant answer are
    // answered at once (fast_calls.S), everything else goes on to guest_exit.
    .balign 0x80
    stp     x0, x1, [sp, #-16]!
    b       guest_sync_exit
    GUEST_VECTOR 9
    GUEST_VECTOR 10
    GUEST_VECTOR 11
    GUEST_VECTOR 12
    GUEST_VECTOR 13
    GUEST_VECTOR 14
    GUEST_VECTOR 15

el2_exception_entry:
    stp     x2, x3, [sp, #16 * 1]
    stp     x4, x5, [sp, #16 * 2]
    stp     x6, x7, [sp, #16 * 3]
    stp     x8, x9, [sp, #16 * 4]
    stp     x10, x11, [sp, #16 * 5]
    stp     x12, x13, [sp, #16 * 6]
    stp     x14, x15, [sp, #16 * 7]
    stp     x16, x17, [sp, #16 * 8]
    stp     x18, x19, [sp, #16 * 9]
    stp     x20, x21, [sp, #16 * 10]
    stp     x22, x23, [sp, #16 * 11]
    stp     x24, x25, [sp, #16 * 12]
    stp     x26, x27, [sp, #16 * 13]
    stp     x28, x29, [sp, #16 * 14]
    // The interrupted stack pointer: SP_EL0 for entries 0-3, else SP_EL2.
    cmp     x0, #4
    b.hs    1f
    mrs     x1, sp_el0
    b       2f
1:  add     x1, sp, #{frame_size}
2:  stp     x30, x1, [sp, #16 * 15]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [sp, #16 * 16]
    mrs     x2, esr_el2
    mrs     x3, far_el2
    stp     x2, x3, [sp, #16 * 17]
    mov     x1, sp
    bl      el2_exception
    // el2_exception returns only for exceptions it handled: resume.
    ldp     x2, x3, [sp, #16 * 16]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    ldp     x0, x1, [sp]
    ldp     x2, x3, [sp, #16 * 1]
    ldp     x4, x5, [sp, #16 * 2]
    ldp     x6, x7, [sp, #16 * 3]
    ldp     x8, x9, [sp, #16 * 4]
    ldp     x10, x11, [sp, #16 * 5]
    ldp     x12, x13, [sp, #16 * 6]
    ldp     x14, x15, [sp, #16 * 7]
    ldp     x16, x17, [sp, #16 * 8]
    ldp     x18, x19, [sp, #16 * 9]
    ldp     x20, x21, [sp, #16 * 10]
    ldp     x22, x23, [sp, #16 * 11]
    ldp     x24, x25, [sp, #16 * 12]
    ldp     x26, x27, [sp, #16 * 13]
    ldp     x28, x29, [sp, #16 * 14]
    ldr     x30, [sp, #16 * 15]
    add     sp, sp, #{frame_size}
    eret
