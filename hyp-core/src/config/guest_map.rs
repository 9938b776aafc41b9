//! The guest's physical address map (docs/partitions.md): QEMU virt's, so
//! software written for QEMU virt runs unchanged in a partition.

/// Guest RAM starts here unless the overlay says otherwise.
pub const DEFAULT_GUEST_RAM_BASE: u64 = 0x4000_0000;
/// QEMU virt's GIC distributor; the region up to the PL011 is the GIC's.
pub const GUEST_GIC_BASE: u64 = 0x0800_0000;
/// The emulated distributor (GICv3 and GICv2).
pub const GUEST_GICD_BASE: u64 = GUEST_GIC_BASE;
/// GICv2: the CPU interface, where the GIC's virtual CPU interface (GICV)
/// is mapped; 8 KiB (GICC_DIR is on the second page).
pub const GUEST_GICC_BASE: u64 = 0x0801_0000;
pub const GUEST_GICC_SIZE: u64 = 0x2000;
/// GICv3: the emulated redistributors, 128 KiB per vCPU.
pub const GUEST_GICR_BASE: u64 = 0x080a_0000;
/// The emulated PL011 (QEMU virt's UART0) and its interrupt, SPI 1.
pub const GUEST_PL011_BASE: u64 = 0x0900_0000;
pub const GUEST_PL011_SIZE: u64 = 0x1000;
pub const GUEST_PL011_SPI: u32 = 1;
/// Guest addresses that guest RAM must not cover: the emulated devices.
pub const GUEST_DEVICES: (u64, u64) = (GUEST_GIC_BASE, GUEST_PL011_BASE + GUEST_PL011_SIZE);
/// Phandle of the guest's interrupt controller in the DT Tessera writes
/// for it: every node's interrupt parent, passthrough devices' too.
pub const GIC_PHANDLE: u32 = 2;
/// Guest physical address bits (stage-2 input size): 512 GiB, with the
/// stage-2 walk starting at level 1.
pub const IPA_BITS: u32 = 39;
/// The guest DTB lives in the top 2 MiB-aligned 2 MiB of guest RAM.
pub const GUEST_DTB_SLOT: u64 = 2 << 20;
/// Largest guest DTB Tessera writes (booting.rst allows up to 2 MiB).
pub const GUEST_DTB_MAX_SIZE: usize = 64 << 10;

/// Where things go in one partition's guest physical space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestLayout {
    pub ram_base: u64,
    pub ram_size: u64,
    /// Load address and entry point of the kernel.
    pub kernel: u64,
    /// Bytes reserved for the kernel from `kernel` (BSS included).
    pub kernel_footprint: u64,
    /// Guest address and size of the ramdisk.
    pub ramdisk: Option<(u64, u64)>,
    pub dtb: u64,
}

impl GuestLayout {
    /// The layout for a kernel at `load_offset` taking `footprint` bytes and
    /// an optional ramdisk of `ramdisk_size` bytes, or the RAM it would need
    /// (`u64::MAX`: more than any, the sizes add up past 2^64).
    pub fn place(
        ram_base: u64,
        ram_size: u64,
        load_offset: u64,
        footprint: u64,
        ramdisk_size: Option<u64>,
    ) -> Result<GuestLayout, u64> {
        let page = 4096u64;
        let round_up = |size: u64| size.div_ceil(page).checked_mul(page);
        let ramdisk_space = match ramdisk_size {
            Some(size) => round_up(size).ok_or(u64::MAX)?,
            None => 0,
        };
        // Every sum checked: sizes come from image headers and the DTB.
        let needs = round_up(footprint)
            .and_then(|kernel| load_offset.checked_add(kernel))
            .and_then(|sum| sum.checked_add(ramdisk_space))
            .and_then(|sum| sum.checked_add(GUEST_DTB_SLOT))
            .ok_or(u64::MAX)?;
        // The DTB slot is the top 2 MiB-aligned 2 MiB inside RAM.
        let ram_end = ram_base.checked_add(ram_size).ok_or(u64::MAX)?;
        let dtb = (ram_end.saturating_sub(GUEST_DTB_SLOT)) & !(GUEST_DTB_SLOT - 1);
        let kernel = ram_base.checked_add(load_offset).ok_or(needs)?;
        let kernel_end = kernel.checked_add(footprint).ok_or(needs)?;
        let ramdisk = ramdisk_size.map(|size| (dtb.saturating_sub(ramdisk_space), size));
        let below_dtb = ramdisk.map_or(dtb, |(start, _)| start);
        if needs > ram_size || dtb < ram_base || kernel_end > below_dtb {
            return Err(needs);
        }
        Ok(GuestLayout {
            ram_base,
            ram_size,
            kernel,
            kernel_footprint: footprint,
            ramdisk,
            dtb,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtb_goes_to_the_top_2mib_and_the_ramdisk_below_it() {
        let layout =
            GuestLayout::place(DEFAULT_GUEST_RAM_BASE, 64 << 20, 0, 0x1_0000, Some(0x1234))
                .unwrap();
        assert_eq!(layout.dtb, DEFAULT_GUEST_RAM_BASE + (62 << 20));
        assert_eq!(layout.ramdisk, Some((layout.dtb - 0x2000, 0x1234)));
        assert_eq!(layout.kernel, DEFAULT_GUEST_RAM_BASE);
    }

    #[test]
    fn a_kernel_that_does_not_fit_reports_what_it_needs() {
        let needs = GuestLayout::place(DEFAULT_GUEST_RAM_BASE, 4 << 20, 0x20_0000, 3 << 20, None)
            .unwrap_err();
        assert_eq!(needs, (2 << 20) + (3 << 20) + GUEST_DTB_SLOT);
    }
}
