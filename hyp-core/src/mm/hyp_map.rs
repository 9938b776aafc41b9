//! What Tessera maps for itself at EL2, and how.
//!
//! All RAM is mapped (Tessera later copies guest images and scrubs partition
//! memory), never executable; its own image is mapped W^X section by section;
//! the DTB read-only; and of the devices only those Tessera drives (console,
//! GIC, reset watchdog). Later entries override earlier ones where they overlap.

#![deny(clippy::indexing_slicing)]

use heapless::Vec;

use super::address::{PhysAddr, PhysRange};
use super::page_table::{Attributes, PAGE_SIZE};
use crate::hw::Hardware;
use crate::hw::cpus::EnableMethod;
use crate::hw::memory::ReservedKind;

/// Most mappings in the plan.
pub const MAX_MAPPINGS: usize = 40;
/// Most ranges left unmapped (the guard page and `no-map` reserved memory).
pub const MAX_UNMAPPED: usize = 8;

/// Where the parts of the hypervisor image lie (from the linker script).
#[derive(Debug, Clone, Copy)]
pub struct ImageLayout {
    /// Code: read-execute.
    pub text: PhysRange,
    /// Constants and relocated pointers: read-only.
    pub rodata: PhysRange,
    /// Data and BSS: read-write.
    pub data: PhysRange,
    /// Left unmapped below the boot stack, so that an overflow faults.
    pub stack_guard: PhysRange,
    /// The boot CPU's stacks: read-write.
    pub stacks: PhysRange,
}

impl ImageLayout {
    /// The whole image, header to the end of the stacks.
    pub fn whole(&self) -> Option<PhysRange> {
        PhysRange::from_bounds(self.text.start(), self.stacks.end()?)
    }
}

/// One mapping of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mapping {
    /// Page-aligned.
    pub range: PhysRange,
    pub attributes: Attributes,
    /// For diagnostics: "RAM", "console", ...
    pub what: &'static str,
}

/// The plan could not hold every mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooManyMappings;

/// What to map, then what to leave unmapped inside it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Applied in order, later ones overriding earlier ones.
    pub mappings: Vec<Mapping, MAX_MAPPINGS>,
    /// Left unmapped after all mappings: the boot stack's guard page and
    /// `no-map` reserved memory inside RAM banks.
    pub unmapped: Vec<PhysRange, MAX_UNMAPPED>,
}

impl Plan {
    /// Whether `address` ends up mapped.
    pub fn maps(&self, address: PhysAddr) -> bool {
        self.mappings.iter().any(|m| m.range.contains(address))
            && !self.unmapped.iter().any(|g| g.contains(address))
    }
}

/// The mappings Tessera needs, in the order to apply them.
pub fn plan(
    hardware: &Hardware<'_>,
    image: &ImageLayout,
    dtb: PhysRange,
    extra_devices: &[PhysRange],
) -> Result<Plan, TooManyMappings> {
    let mut mappings = Vec::new();
    let mut add = |range: PhysRange, attributes, what| -> Result<(), TooManyMappings> {
        let range = range.align_outward(PAGE_SIZE).ok_or(TooManyMappings)?;
        mappings
            .push(Mapping {
                range,
                attributes,
                what,
            })
            .map_err(|_| TooManyMappings)
    };
    for bank in &hardware.memory.banks {
        add(*bank, Attributes::NORMAL_RW, "RAM")?;
    }
    // Spin-table slots are firmware memory that is not always inside a RAM bank.
    for cpu in &hardware.cpus.list {
        if let EnableMethod::SpinTable { release_addr } = cpu.enable_method {
            let slot = PhysRange::new(release_addr, 8).ok_or(TooManyMappings)?;
            if !hardware.memory.is_ram(&slot) {
                add(slot, Attributes::NORMAL_RW, "spin table")?;
            }
        }
    }
    add(dtb, Attributes::NORMAL_RO, "device tree")?;
    add(image.text, Attributes::NORMAL_RX, "Tessera text")?;
    add(image.rodata, Attributes::NORMAL_RO, "Tessera rodata")?;
    add(image.data, Attributes::NORMAL_RW, "Tessera data")?;
    add(image.stacks, Attributes::NORMAL_RW, "Tessera stacks")?;
    if let Some(console) = &hardware.console {
        add(console.registers, Attributes::DEVICE_RW, "console")?;
    }
    for region in hardware.gic.mmio_regions() {
        add(region, Attributes::DEVICE_RW, "GIC")?;
    }
    for device in extra_devices {
        add(*device, Attributes::DEVICE_RW, "device")?;
    }
    let mut unmapped: Vec<PhysRange, MAX_UNMAPPED> = Vec::new();
    unmapped
        .push(image.stack_guard)
        .map_err(|_| TooManyMappings)?;
    let no_map = hardware
        .memory
        .reserved
        .iter()
        .filter(|r| r.kind == ReservedKind::ReservedMemory { no_map: true });
    for reserved in no_map {
        let range = reserved
            .range
            .align_outward(PAGE_SIZE)
            .ok_or(TooManyMappings)?;
        unmapped.push(range).map_err(|_| TooManyMappings)?;
    }
    Ok(Plan { mappings, unmapped })
}

/// The address Tessera uses to provoke a data abort at EL2 on request
/// (`/chosen/tessera,fault-injection`): the last page of the 48-bit input
/// address space, where no RAM or device of a supported board lies.
pub const UNMAPPED_PROBE: PhysAddr = PhysAddr((1 << 48) - PAGE_SIZE);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dt::Fdt;
    use crate::mm::page_table::{PageTable, Stage, Table, TablePool};

    const QEMU_VIRT_GICV3: &[u8] = include_bytes!("../../../dtb/boards/qemu-virt-gicv3.dtb");
    const RPI4_4GB: &[u8] = include_bytes!("../../../dtb/boards/bcm2711-rpi-4-b-4gb.dtb");
    const RPI5_8GB: &[u8] = include_bytes!("../../../dtb/boards/bcm2712-rpi-5-b-8gb.dtb");

    fn range(start: u64, size: u64) -> PhysRange {
        PhysRange::new(PhysAddr(start), size).unwrap()
    }

    fn image_at(base: u64) -> ImageLayout {
        ImageLayout {
            text: range(base, 0x1_0000),
            rodata: range(base + 0x1_0000, 0x8000),
            data: range(base + 0x1_8000, 0x2_0000),
            stack_guard: range(base + 0x3_8000, 0x1000),
            stacks: range(base + 0x3_9000, 0x1_4000),
        }
    }

    /// Builds the tables for a plan the way the boot CPU does.
    fn build<'p, 't>(pool: &'p mut TablePool<'t>, plan: &Plan) -> PageTable<'p, 't> {
        let mut table = PageTable::new(pool, Stage::Stage1El2, 48).unwrap();
        for m in &plan.mappings {
            table
                .map(
                    m.range.start().0,
                    m.range.start(),
                    m.range.size(),
                    m.attributes,
                )
                .unwrap();
        }
        for guard in &plan.unmapped {
            table.unmap(guard.start().0, guard.size()).unwrap();
        }
        table
    }

    #[test]
    fn qemu_virt_el2_map_is_w_xor_x_and_maps_only_what_tessera_uses() {
        let fdt = Fdt::new(QEMU_VIRT_GICV3).unwrap();
        let hw = crate::hw::discover(&fdt, 0, None).unwrap();
        let dtb = range(0x4800_0000, 0x10_0000);
        let plan = plan(&hw, &image_at(0x4020_0000), dtb, &[]).unwrap();
        let mut tables = vec![Table::EMPTY; 24];
        let mut pool = TablePool::new(&mut tables, PhysAddr(0));
        let table = build(&mut pool, &plan);
        let at = |address: u64| {
            table
                .translate(address)
                .map(|(pa, _, attributes)| (pa.0, attributes))
        };
        assert_eq!(
            at(0x4020_0000),
            Some((0x4020_0000, Attributes::NORMAL_RX)),
            "text"
        );
        assert_eq!(
            at(0x4021_0000),
            Some((0x4021_0000, Attributes::NORMAL_RO)),
            "rodata"
        );
        assert_eq!(
            at(0x4021_8000),
            Some((0x4021_8000, Attributes::NORMAL_RW)),
            "data"
        );
        assert_eq!(
            at(0x4023_8000),
            None,
            "the boot stack's guard page is unmapped"
        );
        assert!(!plan.maps(PhysAddr(0x4023_8000)));
        assert_eq!(
            at(0x4023_9000),
            Some((0x4023_9000, Attributes::NORMAL_RW)),
            "stacks"
        );
        assert_eq!(
            at(0x4800_0000),
            Some((0x4800_0000, Attributes::NORMAL_RO)),
            "the DTB is read-only"
        );
        assert_eq!(
            at(0x7fff_f000),
            Some((0x7fff_f000, Attributes::NORMAL_RW)),
            "other RAM"
        );
        assert_eq!(
            at(0x0900_0000),
            Some((0x0900_0000, Attributes::DEVICE_RW)),
            "console"
        );
        assert_eq!(
            at(0x0800_0000),
            Some((0x0800_0000, Attributes::DEVICE_RW)),
            "GICD"
        );
        assert_eq!(
            at(0x080a_0000),
            Some((0x080a_0000, Attributes::DEVICE_RW)),
            "GICR"
        );
        assert_eq!(at(0x0000_0000), None, "flash is not Tessera's");
        assert_eq!(
            at(0x0901_0000),
            None,
            "the RTC next to the UART is not mapped"
        );
        assert_eq!(at(0x0a00_0000), None, "virtio-mmio is not mapped");
        assert_eq!(
            at(UNMAPPED_PROBE.0),
            None,
            "the fault-injection probe must fault"
        );
        assert!(
            plan.mappings
                .iter()
                .all(|m| m.attributes != Attributes::NORMAL_RX || m.what == "Tessera text")
        );
        assert!(pool.used() <= 24);
    }

    #[test]
    fn raspberry_pi_4_maps_translated_devices() {
        let fdt = Fdt::new(RPI4_4GB).unwrap();
        let hw = crate::hw::discover(&fdt, 0, None).unwrap();
        let plan = plan(&hw, &image_at(0x20_0000), range(0x2eff_2000, 0xa000), &[]).unwrap();
        let mut tables = vec![Table::EMPTY; 24];
        let mut pool = TablePool::new(&mut tables, PhysAddr(0));
        let table = build(&mut pool, &plan);
        assert_eq!(
            table.translate(0xfe21_5040).unwrap().2,
            Attributes::DEVICE_RW,
            "mini-UART at its CPU address"
        );
        assert_eq!(
            table.translate(0xff84_4000).unwrap().2,
            Attributes::DEVICE_RW,
            "GICH"
        );
        assert_eq!(
            table.translate(0x7e21_5000).unwrap().2,
            Attributes::NORMAL_RW,
            "the mini-UART's bus address is plain RAM on a 4 GiB Pi 4, not a device"
        );
        assert_eq!(
            table.translate(0xd8).unwrap().2,
            Attributes::NORMAL_RW,
            "spin table in RAM bank 0"
        );
    }

    #[test]
    fn no_map_reserved_memory_is_left_out_of_the_map() {
        // The Raspberry Pi 5's /reserved-memory/atf@0 (BL31) is no-map: EL2
        // must not even hold a mapping that speculation could use.
        let fdt = Fdt::new(RPI5_8GB).unwrap();
        let hw = crate::hw::discover(&fdt, 0, None).unwrap();
        let plan = plan(&hw, &image_at(0x20_0000), range(0x2eff_2000, 0x2000), &[]).unwrap();
        let mut tables = vec![Table::EMPTY; 24];
        let mut pool = TablePool::new(&mut tables, PhysAddr(0));
        let table = build(&mut pool, &plan);
        assert!(table.translate(0x0).is_none(), "BL31 at 0 is not mapped");
        assert!(table.translate(0x7_f000).is_none());
        assert_eq!(
            table.translate(0x8_0000).unwrap().2,
            Attributes::NORMAL_RW,
            "RAM after it is"
        );
        assert_eq!(
            table.translate(0x10_7d00_1000).unwrap().2,
            Attributes::DEVICE_RW,
            "the debug UART"
        );
    }
}
