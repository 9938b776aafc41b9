// The fast half of the trap path for calls: an HVC #0 from AArch64 whose
// answer is a constant (guest/smccc.rs, CONSTANT_CALLS: the null call, the
// PSCI and SMCCC versions, ...) or that names a function of Tessera's own
// vendor-hypervisor range it does not implement (NOT_SUPPORTED) is
// answered here, in the exception vector, touching x0-x3 and nothing else:
// no Rust, no lock, no list register. Everything else goes on to
// guest_exit (guest.S), the slow half, exactly as if nothing had looked.
//
// Entered from the lower-EL AArch64 synchronous vector with the guest's
// x0/x1 pushed on SP_EL2 and x0 still the guest's (the function ID).
// Skipping the run loop skips what it does after an exit (sampling the
// virtual timer's line, filling list registers): an interrupt for this
// vCPU still arrives, as an IRQ exit, as soon as the ERET unmasks it.

.section .text.fast_calls, "ax"
.global guest_sync_exit
guest_sync_exit:
    mrs     x1, esr_el2
    tst     x1, #{call_immediate_mask}
    b.ne    3f                          // not HVC #0
    lsr     x1, x1, #{ec_shift}
    cmp     x1, #{ec_hvc64}
    b.ne    3f
    stp     x2, x3, [sp, #-16]!
    adrp    x1, {constant_calls}
    add     x1, x1, :lo12:{constant_calls}
1:  ldp     x2, x3, [x1], #16           // function, answer
    cbz     x2, 4f                      // the end: not a constant call
    cmp     w2, w0                      // SMCCC: the function ID is W0
    b.ne    1b
    mov     x0, x3
2:  ldp     x2, x3, [sp], #16
    ldr     x1, [sp, #8]
    add     sp, sp, #16
    eret
    // No speculation past the ERET into what follows.
    dsb     nsh
    isb
4:  // Owner 6 (vendor hypervisor) below the general queries: Tessera's
    // own range, and not a call it implements.
    ubfx    w1, w0, #{owner_shift}, #6
    cmp     w1, #{owner_vendor_hypervisor}
    b.ne    5f
    ubfx    w1, w0, #8, #8
    cmp     w1, #({general_queries} >> 8)
    b.eq    5f
    mov     x0, #{not_supported}
    b       2b
5:  ldp     x2, x3, [sp], #16
3:  mov     x0, #{lower_el64_sync}
    b       guest_exit
