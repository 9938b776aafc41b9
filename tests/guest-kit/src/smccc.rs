//! SMC Calling Convention calls (Arm DEN 0028, SMCCC v1.1 and later).
//!
//! Calls go through a [`Conduit`]: `HVC` to the hypervisor, or `SMC`, which
//! Tessera traps and answers in the same way (it never forwards a guest's SMC
//! to firmware). Each call returns x0..x3 raw; [`try_call`] also survives a
//! conduit that raises an exception (an `SMC` or an unknown `HVC` on a
//! machine without EL2 or EL3), and [`call_with_canaries`] checks that the
//! callee preserved x4-x17, as SMCCC v1.1 §2.6 requires of calls that do not
//! return results in them.

/// How calls reach the callee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conduit {
    Hvc,
    Smc,
}

impl Conduit {
    pub fn name(self) -> &'static str {
        match self {
            Conduit::Hvc => "HVC",
            Conduit::Smc => "SMC",
        }
    }
}

/// Arm Architecture Service calls (DEN 0028 §7).
pub const SMCCC_VERSION: u32 = 0x8000_0000;
pub const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
pub const SMCCC_ARCH_SOC_ID: u32 = 0x8000_0002;
pub const SMCCC_ARCH_WORKAROUND_1: u32 = 0x8000_8000;
pub const SMCCC_ARCH_WORKAROUND_2: u32 = 0x8000_7fff;
pub const SMCCC_ARCH_WORKAROUND_3: u32 = 0x8000_3fff;

/// Vendor Specific Hypervisor Service calls (DEN 0028 §6, table 6-4).
pub const VENDOR_HYP_CALL_COUNT: u32 = 0x8600_ff00;
pub const VENDOR_HYP_CALL_UID: u32 = 0x8600_ff01;
pub const VENDOR_HYP_REVISION: u32 = 0x8600_ff03;
/// Tessera's null call (docs/partitions.md), vendor-hypervisor function 1:
/// does nothing, returns 0.
pub const TESSERA_NULL: u32 = 0xc600_0001;
/// Vendor-hypervisor function 0, kept for the FEATURES bitmap: not
/// implemented yet, so NOT_SUPPORTED.
pub const TESSERA_FEATURES: u32 = 0x8600_0000;

/// The generic error of SMCCC calls: "not supported" (DEN 0028 §7.1).
pub const NOT_SUPPORTED: i32 = -1;
/// `SMCCC_ARCH_FEATURES(SMCCC_ARCH_WORKAROUND_*)`: not required (§7.5).
pub const NOT_REQUIRED: i32 = -2;

/// SMCCC version 1.1, as `SMCCC_VERSION` encodes it (major << 16 | minor).
pub const VERSION_1_1: u32 = 0x1_0001;

/// Tessera's UUID, `6b1cb0b5-8b21-4e8f-9a5f-2f3ad5c0e1a7`, in RFC 4122 byte
/// order (the order the string is written in).
pub const TESSERA_UUID: [u8; 16] = [
    0x6b, 0x1c, 0xb0, 0xb5, 0x8b, 0x21, 0x4e, 0x8f, 0x9a, 0x5f, 0x2f, 0x3a, 0xd5, 0xc0, 0xe1, 0xa7,
];

/// The words `VENDOR_HYP_CALL_UID` returns for a UUID. DEN 0028 (the "Call
/// UID" query, §6.2) returns the UUID's bytes 0..3 in w0, 4..7 in w1, 8..11
/// in w2 and 12..15 in w3, each word little-endian (byte 0 is w0's least
/// significant byte). KVM's `28b46fb6-2ec5-11e9-a9ca-4b564d003a74` thus reads
/// w0 = 0xb66fb428 (Linux `ARM_SMCCC_VENDOR_HYP_UID_KVM_REG_0`).
pub const fn uid_words(uuid: [u8; 16]) -> [u32; 4] {
    const fn word(uuid: &[u8; 16], i: usize) -> u32 {
        u32::from_le_bytes([uuid[i], uuid[i + 1], uuid[i + 2], uuid[i + 3]])
    }
    [
        word(&uuid, 0),
        word(&uuid, 4),
        word(&uuid, 8),
        word(&uuid, 12),
    ]
}

/// What `VENDOR_HYP_CALL_UID` returns under Tessera, in w0..w3.
pub const TESSERA_UID_W0: u32 = 0xb5b0_1c6b;
pub const TESSERA_UID_W1: u32 = 0x8f4e_218b;
pub const TESSERA_UID_W2: u32 = 0x3a2f_5f9a;
pub const TESSERA_UID_W3: u32 = 0xa7e1_c0d5;
pub const TESSERA_UID: [u32; 4] = [
    TESSERA_UID_W0,
    TESSERA_UID_W1,
    TESSERA_UID_W2,
    TESSERA_UID_W3,
];

/// The low 32 bits of a result register: what an SMC32/HVC32 function
/// returns (in w0..w3).
#[allow(
    clippy::cast_possible_truncation,
    reason = "w registers are the low halves of x registers"
)]
pub const fn w(register: u64) -> u32 {
    register as u32
}

/// A 32-bit result as the signed value SMCCC and PSCI error codes are.
pub const fn signed(register: u64) -> i32 {
    i32::from_ne_bytes(w(register).to_ne_bytes())
}

/// The registers x4..x17 that SMCCC v1.1 says a call preserves.
pub const PRESERVED: core::ops::RangeInclusive<u8> = 4..=17;

/// The value [`call_with_canaries`] puts in register `x<n>`: distinct per
/// register and unlikely to be produced by accident.
pub const fn canary(register: u8) -> u64 {
    0xca11_ab1e_0000_0000 | (register as u64) << 16 | 0x5a5a
}

/// What came back from a call made with canaries in x4..x17.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryCheck {
    /// x0 after the call.
    pub x0: u64,
    /// x4..x17 after the call.
    pub after: [u64; 14],
}

impl CanaryCheck {
    /// The first register that did not keep its canary, with its value.
    pub fn first_clobbered(&self) -> Option<(u8, u64)> {
        PRESERVED
            .zip(self.after)
            .find(|&(register, value)| value != canary(register))
    }

    /// How many of x4..x17 lost their canary.
    pub fn clobbered_count(&self) -> usize {
        PRESERVED
            .zip(self.after)
            .filter(|&(register, value)| value != canary(register))
            .count()
    }
}

#[cfg(target_os = "none")]
pub use self::target::*;

#[cfg(target_os = "none")]
mod target {
    use core::arch::asm;

    use super::{CanaryCheck, Conduit, canary};
    use crate::exception::{Trap, catch};

    /// The same `asm!` with `hvc #0` or `smc #0`, as `$conduit` says.
    macro_rules! conduit_asm {
        ($conduit:expr, $($operands:tt)*) => {
            match $conduit {
                Conduit::Hvc => asm!("hvc #0", $($operands)*),
                Conduit::Smc => asm!("smc #0", $($operands)*),
            }
        };
    }

    /// Calls `function` with arguments x1..x3 and returns x0..x3. x4..x17
    /// are treated as clobbered, whatever the callee promises.
    pub fn call(conduit: Conduit, function: u32, arguments: [u64; 3]) -> [u64; 4] {
        let mut x0 = u64::from(function);
        let [mut x1, mut x2, mut x3] = arguments;
        // SAFETY: an SMCCC call changes only the registers declared here
        // and the state the callee owns; memory may change (CPU_ON starts a
        // vCPU that writes it), so no `nomem`.
        unsafe {
            conduit_asm!(
                conduit,
                inout("x0") x0, inout("x1") x1, inout("x2") x2, inout("x3") x3,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _,
                out("x8") _, out("x9") _, out("x10") _, out("x11") _,
                out("x12") _, out("x13") _, out("x14") _, out("x15") _,
                out("x16") _, out("x17") _,
                options(nostack),
            );
        }
        [x0, x1, x2, x3]
    }

    /// [`call`], with an exception raised by the `HVC` or `SMC` instruction
    /// itself (no callee at that level: undefined instruction) returned as
    /// an error instead of failing the run.
    pub fn try_call(
        conduit: Conduit,
        function: u32,
        arguments: [u64; 3],
    ) -> Result<[u64; 4], Trap> {
        match catch(|| call(conduit, function, arguments)) {
            (result, None) => Ok(result),
            (_, Some(trap)) => Err(trap),
        }
    }

    /// Calls `function` (without arguments) with [`canary`] values in
    /// x4..x17, and returns what x0 and x4..x17 hold afterwards. An
    /// exception raised by the instruction is returned as an error.
    pub fn call_with_canaries(conduit: Conduit, function: u32) -> Result<CanaryCheck, Trap> {
        let mut x0 = u64::from(function);
        let mut r = [0u64; 14];
        for (slot, register) in r.iter_mut().zip(super::PRESERVED) {
            *slot = canary(register);
        }
        let [
            mut r4,
            mut r5,
            mut r6,
            mut r7,
            mut r8,
            mut r9,
            mut r10,
            mut r11,
            mut r12,
            mut r13,
            mut r14,
            mut r15,
            mut r16,
            mut r17,
        ] = r;
        // SAFETY: as for `call`; every register the callee may change is
        // an output here.
        let (_, trap) = catch(|| unsafe {
            conduit_asm!(
                conduit,
                inout("x0") x0, inout("x1") 0u64 => _, inout("x2") 0u64 => _, inout("x3") 0u64 => _,
                inout("x4") r4, inout("x5") r5, inout("x6") r6, inout("x7") r7,
                inout("x8") r8, inout("x9") r9, inout("x10") r10, inout("x11") r11,
                inout("x12") r12, inout("x13") r13, inout("x14") r14, inout("x15") r15,
                inout("x16") r16, inout("x17") r17,
                options(nostack),
            );
        });
        if let Some(trap) = trap {
            return Err(trap);
        }
        Ok(CanaryCheck {
            x0,
            after: [
                r4, r5, r6, r7, r8, r9, r10, r11, r12, r13, r14, r15, r16, r17,
            ],
        })
    }

    /// `VENDOR_HYP_CALL_UID`: w0..w3.
    pub fn hypervisor_uid(conduit: Conduit) -> Result<[u32; 4], Trap> {
        let [x0, x1, x2, x3] = try_call(conduit, super::VENDOR_HYP_CALL_UID, [0; 3])?;
        Ok([super::w(x0), super::w(x1), super::w(x2), super::w(x3)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tessera_uid_words_follow_den0028_byte_order() {
        assert_eq!(uid_words(TESSERA_UUID), TESSERA_UID);
    }

    #[test]
    fn kvm_uid_words_match_linux() {
        // 28b46fb6-2ec5-11e9-a9ca-4b564d003a74, Linux include/linux/arm-smccc.h.
        let kvm = [
            0x28, 0xb4, 0x6f, 0xb6, 0x2e, 0xc5, 0x11, 0xe9, 0xa9, 0xca, 0x4b, 0x56, 0x4d, 0x00,
            0x3a, 0x74,
        ];
        assert_eq!(
            uid_words(kvm),
            [0xb66f_b428, 0xe911_c52e, 0x564b_caa9, 0x743a_004d]
        );
    }

    #[test]
    fn tessera_uuid_bytes_spell_the_documented_string() {
        let mut text = String::new();
        for (index, byte) in TESSERA_UUID.iter().enumerate() {
            if [4, 6, 8, 10].contains(&index) {
                text.push('-');
            }
            text.push_str(&format!("{byte:02x}"));
        }
        assert_eq!(text, "6b1cb0b5-8b21-4e8f-9a5f-2f3ad5c0e1a7");
    }

    #[test]
    fn results_are_read_as_signed_32_bit_values() {
        assert_eq!(signed(0xffff_ffff), NOT_SUPPORTED);
        assert_eq!(signed(0xffff_ffff_ffff_fffe), NOT_REQUIRED);
        assert_eq!(signed(0x1_0001), 0x1_0001);
        assert_eq!(w(0x1234_5678_9abc_def0), 0x9abc_def0);
    }

    #[test]
    fn canaries_are_distinct_and_checked() {
        let mut values: Vec<u64> = PRESERVED.map(canary).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), 14, "each register gets its own canary");
        let mut after = [0; 14];
        for (slot, register) in after.iter_mut().zip(PRESERVED) {
            *slot = canary(register);
        }
        let intact = CanaryCheck { x0: 0, after };
        assert_eq!(intact.first_clobbered(), None);
        after[3] = 0;
        after[13] = 1;
        let clobbered = CanaryCheck { x0: 0, after };
        assert_eq!(clobbered.first_clobbered(), Some((7, 0)));
        assert_eq!(clobbered.clobbered_count(), 2);
    }
}
