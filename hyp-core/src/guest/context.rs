//! A vCPU's registers as `arch/guest.S` saves and loads them. Only what an
//! exit changes is here: a vCPU owns its core, so its EL1 system registers
//! and FP/SIMD registers simply stay in the hardware while Tessera runs.

/// PSTATE for a guest's first instruction (Linux arm64 boot protocol):
/// EL1h, with D, A, I and F masked.
pub const PSTATE_EL1H_MASKED: u64 = 0b1111 << 6 | 0b0101;

/// The saved state of a guest vCPU, and of Tessera while the guest runs.
#[derive(Debug, Clone, Default)]
#[repr(C)]
pub struct VcpuRegisters {
    /// x0 to x30.
    pub x: [u64; 31],
    pub sp_el0: u64,
    /// ELR_EL2: where the guest resumes.
    pub pc: u64,
    /// SPSR_EL2: the guest's PSTATE.
    pub pstate: u64,
    /// The syndrome of the last exit.
    pub esr: u64,
    pub far: u64,
    pub hpfar: u64,
    /// Tessera's x19-x30 and stack pointer while the guest runs.
    pub host: [u64; 13],
}

impl VcpuRegisters {
    /// A vCPU about to run its first instruction at `entry` with `x0`.
    pub fn at_entry(entry: u64, x0: u64) -> VcpuRegisters {
        let mut registers = VcpuRegisters {
            pc: entry,
            pstate: PSTATE_EL1H_MASKED,
            ..VcpuRegisters::default()
        };
        registers.x[0] = x0;
        registers
    }

    /// General-purpose register `index`, where 31 reads as XZR.
    pub fn get(&self, index: u8) -> u64 {
        self.x.get(usize::from(index)).copied().unwrap_or(0)
    }

    /// Sets register `index`; writes to 31 (XZR) are discarded.
    pub fn set(&mut self, index: u8, value: u64) {
        if let Some(register) = self.x.get_mut(usize::from(index)) {
            *register = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_31_is_the_zero_register() {
        let mut registers = VcpuRegisters::default();
        registers.set(31, 5);
        assert_eq!(registers.get(31), 0);
        registers.set(30, 5);
        assert_eq!(registers.get(30), 5);
    }
}
