//! One wrapper for memory-mapped registers: a block found in the device tree.
//!
//! Every access is a single `ldr`/`str` (or `ldrb`/`strb`) written in
//! `asm!`, for the reason [`crate::console`] gives: Tessera emulates the
//! GIC distributor and redistributors from the data abort's syndrome, which
//! is only valid (`ESR_EL2.ISS.ISV` = 1) for a plain load or store without
//! writeback. `read_volatile` may compile to a pair or a writeback form.
//!
//! An offset outside the block is a bug in the kit: it is not accessed
//! (reads give 0) rather than touching whatever lies beyond.

use core::arch::asm;

/// A block of device registers at a guest physical address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mmio {
    base: usize,
    size: usize,
}

impl Mmio {
    /// The block of `size` bytes at `base`.
    ///
    /// # Safety
    ///
    /// `base..base + size` must be device registers (the MMU is off, so
    /// every access is Device-nGnRnE) that no Rust reference covers, and
    /// accesses to them must have no effect on memory the program uses.
    pub const unsafe fn new(base: usize, size: usize) -> Mmio {
        Mmio { base, size }
    }

    pub fn base(&self) -> usize {
        self.base
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// The address of `width` bytes at `offset`, if they lie inside the
    /// block and are naturally aligned.
    fn address(&self, offset: usize, width: usize) -> Option<usize> {
        let end = offset.checked_add(width)?;
        (end <= self.size && offset.is_multiple_of(width)).then(|| self.base + offset)
    }

    pub fn read32(&self, offset: usize) -> u32 {
        let Some(address) = self.address(offset, 4) else {
            return 0;
        };
        let value: u32;
        // SAFETY: `new`'s contract: a device register inside the block,
        // aligned (checked above); a load has no effect on Rust memory.
        unsafe {
            asm!("ldr {value:w}, [{address}]", value = out(reg) value,
                 address = in(reg) address, options(nostack, preserves_flags));
        }
        value
    }

    pub fn write32(&self, offset: usize, value: u32) {
        let Some(address) = self.address(offset, 4) else {
            return;
        };
        // SAFETY: as in `read32`: a store to a device register.
        unsafe {
            asm!("str {value:w}, [{address}]", value = in(reg) value,
                 address = in(reg) address, options(nostack, preserves_flags));
        }
    }

    pub fn read64(&self, offset: usize) -> u64 {
        let Some(address) = self.address(offset, 8) else {
            return 0;
        };
        let value: u64;
        // SAFETY: as in `read32`.
        unsafe {
            asm!("ldr {value}, [{address}]", value = out(reg) value,
                 address = in(reg) address, options(nostack, preserves_flags));
        }
        value
    }

    pub fn write64(&self, offset: usize, value: u64) {
        let Some(address) = self.address(offset, 8) else {
            return;
        };
        // SAFETY: as in `read32`: a store to a device register.
        unsafe {
            asm!("str {value}, [{address}]", value = in(reg) value,
                 address = in(reg) address, options(nostack, preserves_flags));
        }
    }

    pub fn read8(&self, offset: usize) -> u8 {
        let Some(address) = self.address(offset, 1) else {
            return 0;
        };
        let value: u32;
        // SAFETY: as in `read32`.
        unsafe {
            asm!("ldrb {value:w}, [{address}]", value = out(reg) value,
                 address = in(reg) address, options(nostack, preserves_flags));
        }
        u8::try_from(value & 0xff).unwrap_or(0)
    }

    pub fn write8(&self, offset: usize, value: u8) {
        let Some(address) = self.address(offset, 1) else {
            return;
        };
        // SAFETY: as in `read32`: a store to a device register.
        unsafe {
            asm!("strb {value:w}, [{address}]", value = in(reg) u32::from(value),
                 address = in(reg) address, options(nostack, preserves_flags));
        }
    }

    pub fn read16(&self, offset: usize) -> u16 {
        let Some(address) = self.address(offset, 2) else {
            return 0;
        };
        let value: u32;
        // SAFETY: as in `read32`.
        unsafe {
            asm!("ldrh {value:w}, [{address}]", value = out(reg) value,
                 address = in(reg) address, options(nostack, preserves_flags));
        }
        u16::try_from(value & 0xffff).unwrap_or(0)
    }

    pub fn write16(&self, offset: usize, value: u16) {
        let Some(address) = self.address(offset, 2) else {
            return;
        };
        // SAFETY: as in `read32`: a store to a device register.
        unsafe {
            asm!("strh {value:w}, [{address}]", value = in(reg) u32::from(value),
                 address = in(reg) address, options(nostack, preserves_flags));
        }
    }

    /// Reads `width` bytes (1, 2, 4 or 8) at `offset`.
    pub fn read(&self, offset: usize, width: usize) -> u64 {
        match width {
            1 => u64::from(self.read8(offset)),
            2 => u64::from(self.read16(offset)),
            4 => u64::from(self.read32(offset)),
            _ => self.read64(offset),
        }
    }

    /// Writes the low `width` bytes (1, 2, 4 or 8) of `value` at `offset`.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "each width keeps its own bytes"
    )]
    pub fn write(&self, offset: usize, width: usize, value: u64) {
        match width {
            1 => self.write8(offset, value as u8),
            2 => self.write16(offset, value as u16),
            4 => self.write32(offset, value as u32),
            _ => self.write64(offset, value),
        }
    }
}
