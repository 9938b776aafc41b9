//! The one place where an address becomes a typed register block.

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;

/// A register block of layout `T` (a `tock_registers::register_structs!`
/// struct) at a fixed physical address.
pub struct Mmio<T> {
    address: usize,
    _registers: PhantomData<T>,
}

impl<T> Mmio<T> {
    /// # Safety
    ///
    /// `address` must be the start of a device register block laid out as `T`,
    /// mapped as device memory (or the MMU off) for as long as this value and
    /// its copies are used, and never accessed as ordinary Rust memory.
    pub const unsafe fn new(address: usize) -> Self {
        Mmio {
            address,
            _registers: PhantomData,
        }
    }

    /// The block's address.
    pub fn address(&self) -> usize {
        self.address
    }
}

impl<T> Deref for Mmio<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: `new`'s contract: `address` is a mapped register block laid
        // out as `T` that nothing treats as ordinary memory, so a shared
        // reference to it is valid; tock-registers only accesses it volatilely.
        unsafe { &*(self.address as *const T) }
    }
}

impl<T> fmt::Debug for Mmio<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mmio({:#x})", self.address)
    }
}

// SAFETY: device registers are not tied to a CPU; every access is a volatile
// load or store. Mutual exclusion, where a device needs it, is the owner's
// job (the console sits behind a lock).
unsafe impl<T> Send for Mmio<T> {}
// SAFETY: as for Send; shared use only performs volatile register accesses.
unsafe impl<T> Sync for Mmio<T> {}

/// Host-side stand-in memory for a register block, for driver unit tests.
#[cfg(test)]
pub(crate) mod fake {
    extern crate std;
    use std::vec::Vec;

    /// Zeroed, 4 KiB-aligned memory of `bytes` bytes, kept alive by the value.
    pub struct FakeRegisters {
        words: Vec<u64>,
    }

    impl FakeRegisters {
        pub fn new(bytes: usize) -> Self {
            // A Vec<u64> is 8-byte aligned, enough for 32- and 64-bit registers.
            FakeRegisters {
                words: std::vec![0; bytes.div_ceil(8)],
            }
        }

        pub fn address(&mut self) -> usize {
            self.words.as_mut_ptr() as usize
        }

        pub fn read32(&self, offset: usize) -> u32 {
            let bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_ne_bytes()).collect();
            u32::from_ne_bytes(bytes[offset..offset + 4].try_into().unwrap())
        }

        pub fn write32(&mut self, offset: usize, value: u32) {
            let mut bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_ne_bytes()).collect();
            bytes[offset..offset + 4].copy_from_slice(&value.to_ne_bytes());
            for (word, chunk) in self.words.iter_mut().zip(bytes.chunks(8)) {
                *word = u64::from_ne_bytes(chunk.try_into().unwrap());
            }
        }
    }
}
