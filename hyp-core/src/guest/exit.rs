//! A guest exit, decoded once: from the vector it came through and the
//! syndrome registers (ESR_EL2, FAR_EL2, HPFAR_EL2) into one [`Exit`]. The
//! fast path (`partition/fast_exit.rs`) and the run loop
//! (`partition/exit.rs`) both act on this, never on raw syndrome bits.

use crate::esr::{Syndrome, ec, fault_ipa};
use crate::exception::VectorKind;
use crate::guest::mmio::{AccessWidth, MmioAccess};
use crate::guest::sysreg::SysRegAccess;

/// How a call reached Tessera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conduit {
    /// HVC: the guest resumes after it (ELR_EL2 already points there).
    Hvc,
    /// A trapped SMC: ELR_EL2 points at the SMC itself (Arm ARM D1.11.2).
    Smc,
}

/// Why a data abort is not an access Tessera can emulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotMmio {
    /// A permission, alignment or external fault, or one in the guest's
    /// own table walk: not an access to an unmapped address.
    NotTranslationFault { status: u64 },
    /// ISV is 0: a load/store pair, an atomic, a register-writeback form
    /// or a SIMD access, whose syndrome does not describe it.
    NoSyndrome,
}

/// What made a guest's vCPU leave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// An SMCCC call: the function ID is in x0, its arguments after it.
    Call { conduit: Conduit, immediate: u16 },
    /// A single load or store to an address with no stage-2 mapping.
    Mmio(MmioAccess),
    /// A data abort that is not such an access.
    DataAbort {
        ipa: u64,
        write: bool,
        reason: NotMmio,
    },
    /// An instruction fetch from an address with no stage-2 mapping.
    InstructionAbort { ipa: u64, address: u64 },
    /// A trapped MSR or MRS.
    SystemRegister(SysRegAccess),
    /// A trapped WFI or WFE.
    Wait,
    /// A physical IRQ or FIQ (every one is routed to EL2).
    Interrupt,
    /// An SError, or a vector that is never a guest's.
    SError,
    /// Any other exception class.
    Unknown { class: u8 },
}

/// MSR/MRS ISS fields (Arm ARM D17.2.37, EC 0x18): (shift, bits).
const SYSREG_OP0: (u32, u32) = (20, 2);
const SYSREG_OP2: (u32, u32) = (17, 3);
const SYSREG_OP1: (u32, u32) = (14, 3);
const SYSREG_CRN: (u32, u32) = (10, 4);
const SYSREG_RT: (u32, u32) = (5, 5);
const SYSREG_CRM: (u32, u32) = (1, 4);
const SYSREG_READ: (u32, u32) = (0, 1);

impl Exit {
    /// Decodes the exit that came through `vector` with these syndrome
    /// registers.
    pub fn decode(vector: VectorKind, esr: u64, far: u64, hpfar: u64) -> Exit {
        use VectorKind::*;
        match vector {
            LowerEl64Sync | LowerEl32Sync => synchronous(Syndrome(esr), far, hpfar),
            LowerEl64Irq | LowerEl64Fiq | LowerEl32Irq | LowerEl32Fiq => Exit::Interrupt,
            _ => Exit::SError,
        }
    }
}

/// A synchronous exit from its syndrome registers (the fast half decodes
/// the classes it handles through [`data_abort`] and [`system_register`]
/// directly, without building an [`Exit`]).
fn synchronous(syndrome: Syndrome, far: u64, hpfar: u64) -> Exit {
    match syndrome.class() {
        ec::HVC64 => Exit::Call {
            conduit: Conduit::Hvc,
            immediate: syndrome.call_immediate(),
        },
        ec::SMC64 => Exit::Call {
            conduit: Conduit::Smc,
            immediate: syndrome.call_immediate(),
        },
        ec::DATA_ABORT_LOWER => data_abort(syndrome, fault_ipa(hpfar, far)),
        ec::INSTRUCTION_ABORT_LOWER => Exit::InstructionAbort {
            ipa: fault_ipa(hpfar, far),
            address: far,
        },
        ec::SYSREG => Exit::SystemRegister(system_register(syndrome)),
        ec::WFX => Exit::Wait,
        class => Exit::Unknown { class },
    }
}

/// A data abort (EC 0x24) at guest address `ipa`.
#[inline(always)]
pub fn data_abort(syndrome: Syndrome, ipa: u64) -> Exit {
    let write = syndrome.is_write();
    let reason = if !syndrome.is_translation_fault() {
        NotMmio::NotTranslationFault {
            status: syndrome.fault_status(),
        }
    } else if !syndrome.describes_access() {
        NotMmio::NoSyndrome
    } else {
        return Exit::Mmio(MmioAccess {
            ipa,
            width: AccessWidth::from_log2(syndrome.access_size_log2()),
            write,
            register: syndrome.transfer_register(),
            sign_extend: syndrome.sign_extends(),
            sixty_four: syndrome.sixty_four_bit_register(),
        });
    };
    Exit::DataAbort { ipa, write, reason }
}

/// A trapped MSR or MRS (EC 0x18).
#[inline(always)]
pub fn system_register(syndrome: Syndrome) -> SysRegAccess {
    let field = |(shift, bits): (u32, u32)| syndrome.system_register_field(shift, bits);
    SysRegAccess {
        op0: field(SYSREG_OP0),
        op1: field(SYSREG_OP1),
        crn: field(SYSREG_CRN),
        crm: field(SYSREG_CRM),
        op2: field(SYSREG_OP2),
        register: field(SYSREG_RT),
        read: field(SYSREG_READ) != 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An independent encoder, written from the Arm ARM's field tables
    /// (D17.2.37), that the decoder is checked against.
    mod encode {
        pub fn esr(class: u64, il: bool, iss: u64) -> u64 {
            class << 26 | u64::from(il) << 25 | iss
        }

        pub struct DataAbortIss {
            pub isv: bool,
            pub sas: u64,
            pub sse: bool,
            pub srt: u64,
            pub sf: bool,
            pub s1ptw: bool,
            pub wnr: bool,
            pub dfsc: u64,
        }

        pub fn data_abort(f: &DataAbortIss) -> u64 {
            u64::from(f.isv) << 24
                | f.sas << 22
                | u64::from(f.sse) << 21
                | f.srt << 16
                | u64::from(f.sf) << 15
                | u64::from(f.s1ptw) << 7
                | u64::from(f.wnr) << 6
                | f.dfsc
        }

        pub fn sysreg(
            op0: u64,
            op2: u64,
            op1: u64,
            crn: u64,
            rt: u64,
            crm: u64,
            read: bool,
        ) -> u64 {
            op0 << 20 | op2 << 17 | op1 << 14 | crn << 10 | rt << 5 | crm << 1 | u64::from(read)
        }
    }

    /// A fixed xorshift sequence: every run checks the same values.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn bits(&mut self, n: u32) -> u64 {
            self.next() & ((1 << n) - 1)
        }

        fn flag(&mut self) -> bool {
            self.next() & 1 != 0
        }
    }

    fn sync(esr: u64, far: u64, hpfar: u64) -> Exit {
        Exit::decode(VectorKind::LowerEl64Sync, esr, far, hpfar)
    }

    #[test]
    fn data_aborts_decode_as_the_architecture_encodes_them() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for _ in 0..100_000 {
            let fields = encode::DataAbortIss {
                isv: random.flag(),
                sas: random.bits(2),
                sse: random.flag(),
                srt: random.bits(5),
                sf: random.flag(),
                s1ptw: random.bits(3) == 0,
                wnr: random.flag(),
                dfsc: random.bits(6),
            };
            let (page, offset) = (random.bits(36), random.bits(12));
            let esr = encode::esr(0x24, true, encode::data_abort(&fields));
            let (far, hpfar) = (random.bits(52) << 12 | offset, page << 4);
            let ipa = page << 12 | offset;
            let translation = fields.dfsc & 0b11_1100 == 0b00_0100 && !fields.s1ptw;
            let expected = match (translation, fields.isv) {
                (false, _) => Exit::DataAbort {
                    ipa,
                    write: fields.wnr,
                    reason: NotMmio::NotTranslationFault {
                        status: fields.dfsc,
                    },
                },
                (true, false) => Exit::DataAbort {
                    ipa,
                    write: fields.wnr,
                    reason: NotMmio::NoSyndrome,
                },
                (true, true) => Exit::Mmio(MmioAccess {
                    ipa,
                    width: AccessWidth::ALL[usize::try_from(fields.sas).unwrap()],
                    write: fields.wnr,
                    register: u8::try_from(fields.srt).unwrap(),
                    sign_extend: fields.sse,
                    sixty_four: fields.sf,
                }),
            };
            assert_eq!(sync(esr, far, hpfar), expected, "ESR {esr:#x}");
        }
    }

    #[test]
    fn system_register_traps_decode_as_the_architecture_encodes_them() {
        let mut random = Random(0x2545_f491_4f6c_dd1d);
        for _ in 0..10_000 {
            let (op0, op2, op1, crn, rt, crm) = (
                random.bits(2),
                random.bits(3),
                random.bits(3),
                random.bits(4),
                random.bits(5),
                random.bits(4),
            );
            let read = random.flag();
            let esr = encode::esr(
                0x18,
                true,
                encode::sysreg(op0, op2, op1, crn, rt, crm, read),
            );
            let Exit::SystemRegister(access) = sync(esr, 0, 0) else {
                panic!("ESR {esr:#x} is not a system register trap");
            };
            let fields = [access.op0, access.op1, access.crn, access.crm, access.op2];
            let expected = [op0, op1, crn, crm, op2].map(|f| u8::try_from(f).unwrap());
            assert_eq!(fields, expected);
            assert_eq!(access.register, u8::try_from(rt).unwrap());
            assert_eq!(access.read, read);
        }
    }

    #[test]
    fn calls_carry_their_conduit_and_immediate() {
        assert_eq!(
            sync(encode::esr(0x16, true, 0), 0, 0),
            Exit::Call {
                conduit: Conduit::Hvc,
                immediate: 0
            }
        );
        assert_eq!(
            sync(encode::esr(0x17, true, 0x1234), 0, 0),
            Exit::Call {
                conduit: Conduit::Smc,
                immediate: 0x1234
            }
        );
    }

    #[test]
    fn every_class_and_vector_decodes_to_one_exit() {
        let mut random = Random(0x1234_5678_9abc_def1);
        for class in 0..64u64 {
            let esr = encode::esr(class, true, random.bits(25));
            let exit = sync(esr, random.next(), random.next());
            let expected_kind = match class {
                0x01 => "wait",
                0x16 | 0x17 => "call",
                0x18 => "sysreg",
                0x20 => "instruction abort",
                0x24 => "data abort",
                _ => "unknown",
            };
            let kind = match exit {
                Exit::Wait => "wait",
                Exit::Call { .. } => "call",
                Exit::SystemRegister(_) => "sysreg",
                Exit::InstructionAbort { .. } => "instruction abort",
                Exit::Mmio(_) | Exit::DataAbort { .. } => "data abort",
                Exit::Unknown { class: c } => {
                    assert_eq!(u64::from(c), class);
                    "unknown"
                }
                Exit::Interrupt | Exit::SError => "asynchronous",
            };
            assert_eq!(kind, expected_kind, "class {class:#x}");
        }
        for index in 8..16 {
            let vector = VectorKind::from_index(index).unwrap();
            let exit = Exit::decode(vector, encode::esr(0x16, true, 0), 0, 0);
            let expected = match index {
                8 | 12 => Exit::Call {
                    conduit: Conduit::Hvc,
                    immediate: 0,
                },
                11 | 15 => Exit::SError,
                _ => Exit::Interrupt,
            };
            assert_eq!(exit, expected, "vector {index}");
        }
    }

    #[test]
    fn instruction_aborts_name_the_ipa_and_the_address() {
        let exit = sync(
            encode::esr(0x20, true, 0b00_0111),
            0x1234_5678,
            0x0900_0000 >> 8,
        );
        assert_eq!(
            exit,
            Exit::InstructionAbort {
                ipa: 0x0900_0678,
                address: 0x1234_5678
            }
        );
    }
}
