// Entering and leaving a guest (see hyp-core/src/guest/context.rs for the
// VcpuRegisters layout).
//
// guest_enter(registers) runs on Tessera's stack (SP_EL0). It saves
// Tessera's callee-saved registers and stack pointer in `registers`,
// switches to SP_EL2 (the top of this CPU's exception stack, where it
// leaves the `registers` pointer), loads the guest's registers and ERETs.
// A guest exception enters a lower-EL vector (vectors.S), which pushes the
// guest's x0/x1, puts the vector index in x0 and branches to guest_exit:
// it saves the guest, switches back to SP_EL0 and returns from guest_enter
// with the vector index, unless the fast half (partition/fast_exit.rs),
// which guest_exit offers every exit first, handled it and resumed the
// guest.

// Loads the guest's x0-x30 from the registers at x0 and enters it (ELR_EL2
// and SPSR_EL2 already set).
.macro ENTER_GUEST
    ldp     x2, x3, [x0, #16 * 1]
    ldp     x4, x5, [x0, #16 * 2]
    ldp     x6, x7, [x0, #16 * 3]
    ldp     x8, x9, [x0, #16 * 4]
    ldp     x10, x11, [x0, #16 * 5]
    ldp     x12, x13, [x0, #16 * 6]
    ldp     x14, x15, [x0, #16 * 7]
    ldp     x16, x17, [x0, #16 * 8]
    ldp     x18, x19, [x0, #16 * 9]
    ldp     x20, x21, [x0, #16 * 10]
    ldp     x22, x23, [x0, #16 * 11]
    ldp     x24, x25, [x0, #16 * 12]
    ldp     x26, x27, [x0, #16 * 13]
    ldp     x28, x29, [x0, #16 * 14]
    ldr     x30, [x0, #16 * 15]
    ldp     x0, x1, [x0]
    eret
    // No speculation past the ERET into what follows.
    dsb     nsh
    isb
.endm

.section .text.guest, "ax"
.global guest_enter
guest_enter:
    stp     x19, x20, [x0, #{host} + 16 * 0]
    stp     x21, x22, [x0, #{host} + 16 * 1]
    stp     x23, x24, [x0, #{host} + 16 * 2]
    stp     x25, x26, [x0, #{host} + 16 * 3]
    stp     x27, x28, [x0, #{host} + 16 * 4]
    stp     x29, x30, [x0, #{host} + 16 * 5]
    mov     x1, sp
    str     x1, [x0, #{host} + 16 * 6]
    msr     spsel, #1
    str     x0, [sp, #-16]!
    ldr     x1, [x0, #{sp_el0}]
    msr     sp_el0, x1
    ldp     x1, x2, [x0, #{pc}]
    msr     elr_el2, x1
    msr     spsr_el2, x2
    ENTER_GUEST

// x0 = vector index; [sp] = guest x0/x1; [sp + 16] = registers pointer.
// Saves the guest, then offers the exit to the fast half (fast_exit, in
// partition/fast_exit.rs) right here on the exception stack: if it handled
// the exit, the guest resumes at once; otherwise (or if the run loop must
// look) back to the run loop, with the vector index or {handled}.
.global guest_exit
guest_exit:
    ldr     x1, [sp, #16]
    stp     x2, x3, [x1, #16 * 1]
    stp     x4, x5, [x1, #16 * 2]
    stp     x6, x7, [x1, #16 * 3]
    stp     x8, x9, [x1, #16 * 4]
    stp     x10, x11, [x1, #16 * 5]
    stp     x12, x13, [x1, #16 * 6]
    stp     x14, x15, [x1, #16 * 7]
    stp     x16, x17, [x1, #16 * 8]
    stp     x18, x19, [x1, #16 * 9]
    stp     x20, x21, [x1, #16 * 10]
    stp     x22, x23, [x1, #16 * 11]
    stp     x24, x25, [x1, #16 * 12]
    stp     x26, x27, [x1, #16 * 13]
    stp     x28, x29, [x1, #16 * 14]
    str     x30, [x1, #16 * 15]
    ldp     x2, x3, [sp], #16
    stp     x2, x3, [x1]
    mrs     x2, elr_el2
    mrs     x3, spsr_el2
    stp     x2, x3, [x1, #{pc}]
    mrs     x2, esr_el2
    mrs     x3, far_el2
    stp     x2, x3, [x1, #{esr}]
    mrs     x2, hpfar_el2
    str     x2, [x1, #{hpfar}]
    // x19/x20 are the guest's no more (saved above) and survive the call.
    mov     x19, x0
    mov     x20, x1
    mov     x0, x1
    mov     x1, x19
    bl      fast_exit
    cmp     x0, #{resume}
    b.ne    1f
    // Handled: back into the guest with what the fast half left.
    ldp     x2, x3, [x20, #{pc}]
    msr     elr_el2, x2
    msr     spsr_el2, x3
    mov     x0, x20
    ENTER_GUEST
1:  // To the run loop: the vector index, or {handled} if nothing is left
    // to do but look.
    cmp     x0, #{slow}
    mov     x0, #{handled}
    csel    x0, x19, x0, eq
    mov     x1, x20
    add     sp, sp, #16             // SP_EL2 is back at the top of the stack
    mrs     x2, sp_el0
    str     x2, [x1, #{sp_el0}]
    ldr     x2, [x1, #{host} + 16 * 6]
    msr     sp_el0, x2
    msr     spsel, #0
    ldp     x19, x20, [x1, #{host} + 16 * 0]
    ldp     x21, x22, [x1, #{host} + 16 * 1]
    ldp     x23, x24, [x1, #{host} + 16 * 2]
    ldp     x25, x26, [x1, #{host} + 16 * 3]
    ldp     x27, x28, [x1, #{host} + 16 * 4]
    ldp     x29, x30, [x1, #{host} + 16 * 5]
    ret
