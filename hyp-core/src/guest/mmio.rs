//! An MMIO access to an emulated device, as a guest's data abort describes
//! it (decoded in `guest::exit`), and the value a load leaves in its
//! register.

/// How many bytes one access moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessWidth {
    Byte = 1,
    Half = 2,
    Word = 4,
    Double = 8,
}

impl AccessWidth {
    /// Every width, narrowest first.
    pub const ALL: [AccessWidth; 4] = [
        AccessWidth::Byte,
        AccessWidth::Half,
        AccessWidth::Word,
        AccessWidth::Double,
    ];

    /// The width of log2(bytes) `log2` (ISS.SAS), modulo 4.
    pub fn from_log2(log2: u8) -> AccessWidth {
        match log2 & 0b11 {
            0 => AccessWidth::Byte,
            1 => AccessWidth::Half,
            2 => AccessWidth::Word,
            _ => AccessWidth::Double,
        }
    }

    pub fn bytes(self) -> u32 {
        self as u32
    }

    pub fn bits(self) -> u32 {
        self.bytes() * 8
    }

    /// The bits an access of this width carries.
    pub fn mask(self) -> u64 {
        match self {
            AccessWidth::Double => u64::MAX,
            narrower => (1u64 << narrower.bits()) - 1,
        }
    }

    /// Whether `offset` is a multiple of the width (natural alignment).
    pub fn aligns(self, offset: u64) -> bool {
        offset.is_multiple_of(u64::from(self.bytes()))
    }
}

/// One decoded access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MmioAccess {
    /// Guest physical address.
    pub ipa: u64,
    pub width: AccessWidth,
    pub write: bool,
    /// The general-purpose register: 0-30, or 31 for XZR.
    pub register: u8,
    /// Sign-extend a load.
    pub sign_extend: bool,
    /// Load into the 64-bit register (else the 32-bit W form).
    pub sixty_four: bool,
}

impl MmioAccess {
    /// The value a load puts in its register, from the `width`-byte `value`
    /// the device returned.
    pub fn load_result(&self, value: u64) -> u64 {
        let bits = self.width.bits();
        let value = value & self.width.mask();
        let extended = if self.sign_extend && bits < 64 {
            let shift = 64 - bits;
            (((value << shift) as i64) >> shift) as u64
        } else {
            value
        };
        if self.sixty_four {
            extended
        } else {
            extended & u64::from(u32::MAX)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_are_sign_extended_and_narrowed_as_the_instruction_says() {
        let ldrsb_x = MmioAccess {
            ipa: 0,
            width: AccessWidth::Byte,
            write: false,
            register: 0,
            sign_extend: true,
            sixty_four: true,
        };
        assert_eq!(ldrsb_x.load_result(0x80), 0xffff_ffff_ffff_ff80);
        let ldrsb_w = MmioAccess {
            sixty_four: false,
            ..ldrsb_x
        };
        assert_eq!(ldrsb_w.load_result(0x80), 0xffff_ff80);
        let ldrh = MmioAccess {
            width: AccessWidth::Half,
            sign_extend: false,
            ..ldrsb_x
        };
        assert_eq!(ldrh.load_result(0x1_2345), 0x2345);
    }

    #[test]
    fn any_load_is_narrowed_without_overflow() {
        // Every width and form a guest can cause, with values from a fixed
        // sequence: narrowing runs with overflow checks here.
        let mut value = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            value ^= value << 13;
            value ^= value >> 7;
            value ^= value << 17;
            let access = MmioAccess {
                ipa: 0,
                #[allow(clippy::cast_possible_truncation, reason = "masked")]
                width: AccessWidth::from_log2((value & 0b11) as u8),
                write: false,
                register: 0,
                sign_extend: value & 4 != 0,
                sixty_four: value & 8 != 0,
            };
            let loaded = access.load_result(value);
            if !access.sixty_four {
                assert!(loaded <= u64::from(u32::MAX), "{access:?}");
            }
            if !access.sign_extend {
                assert_eq!(loaded & !access.width.mask(), 0, "{access:?}");
            }
        }
    }
}
