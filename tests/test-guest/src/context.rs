//! What the guest learns at boot, and the RAM it may overwrite.

use core::fmt;

use tessera_guest_kit::boot::{boot_fdt, image_region};
use tessera_guest_kit::fdt::{Fdt, FdtError, Region};
use tessera_guest_kit::memory::{self, MAX_FREE_RANGES};
use tessera_guest_kit::report::{Failure, Outcome};
use tessera_guest_kit::{ensure, fail};

/// The boot's device tree, read once.
pub struct Context {
    pub dtb: usize,
    pub fdt: Fdt<'static>,
    /// `/chosen/bootargs` (empty when absent or unreadable).
    pub bootargs: &'static str,
    /// `/chosen/tessera,boot-count`.
    pub boot_count: Option<u32>,
    /// `/memory` (`None` when absent), or why it could not be read.
    pub ram: Result<Option<Region>, FdtError>,
}

impl Context {
    pub fn read(dtb: usize) -> Result<Context, FdtError> {
        let fdt = boot_fdt()?;
        let ram = fdt.memory();
        Ok(Context {
            dtb,
            fdt,
            bootargs: fdt.bootargs().ok().flatten().unwrap_or(""),
            boot_count: fdt.boot_count().ok().flatten(),
            ram,
        })
    }

    /// The guest's RAM, or a failure saying why it is unknown.
    pub fn ram(&self) -> Result<Region, Failure> {
        match self.ram {
            Ok(Some(ram)) => Ok(ram),
            Ok(None) => Err(Failure::new(format_args!("the DTB has no /memory reg"))),
            Err(error) => Err(Failure::new(format_args!("cannot read /memory: {error}"))),
        }
    }

    /// The DTB's pages.
    pub fn dtb_region(&self) -> Region {
        Region {
            base: self.dtb as u64,
            size: self.fdt.total_size() as u64,
        }
    }

    /// RAM that holds neither this image (code, data, stacks) nor the DTB.
    pub fn free_ram(&self) -> Result<heapless::Vec<Region, MAX_FREE_RANGES>, Failure> {
        let ram = self.ram()?;
        let free = memory::free_ranges(ram, &[image_region(), self.dtb_region()]);
        if free.is_empty() {
            fail!("no free RAM in {:#x}..{:#x}", ram.base, ram.end());
        }
        Ok(free)
    }
}

/// Writes the pattern of `round` to all free RAM and reads it back.
pub fn ram_round(context: &Context, round: u32) -> Outcome {
    let free = context.free_ram()?;
    let mut bytes = 0;
    for range in &free {
        // SAFETY: `free_ram` leaves out this image (its stacks and statics
        // included) and the DTB; nothing else in the guest's RAM is in use.
        unsafe { memory::fill(*range, round) };
        bytes += range.size;
    }
    for range in &free {
        // SAFETY: as above.
        if let Err((mismatch, count)) = unsafe { memory::verify(*range, round) } {
            fail!(
                "{count} word(s) of {bytes:#x} bytes wrong; first at {:#x}: wrote {:#x}, read {:#x}",
                mismatch.address,
                mismatch.expected,
                mismatch.found
            );
        }
    }
    ensure!(bytes > 0, "no free RAM to test");
    Ok(())
}

/// A boot count for messages: the number, or `unknown`.
pub struct BootCount(pub Option<u32>);

impl fmt::Display for BootCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(count) => write!(f, "{count}"),
            None => f.write_str("unknown (no /chosen/tessera,boot-count)"),
        }
    }
}

/// Up to `N` big-endian cells of a property (the rest ignored).
pub fn cells<const N: usize>(value: &[u8]) -> heapless::Vec<u32, N> {
    value
        .chunks_exact(4)
        .take(N)
        .filter_map(|c| c.try_into().ok().map(u32::from_be_bytes))
        .collect()
}
