//! Discovery against real board DTBs (`dtb/boards/`, see its README for
//! their sources) and against corrupted copies of them.

#![allow(
    clippy::cast_possible_truncation,
    reason = "the mutation test truncates random numbers on purpose"
)]

use super::cpus::EnableMethod;
use super::gic::{GicRegions, GicVersion};
use super::memory::ReservedKind;
use super::*;
use crate::dt::Fdt;
use crate::mm::address::{PhysAddr, PhysRange};

const QEMU_VIRT_GICV3: &[u8] = include_bytes!("../../../dtb/boards/qemu-virt-gicv3.dtb");
const QEMU_VIRT_GICV2: &[u8] = include_bytes!("../../../dtb/boards/qemu-virt-gicv2.dtb");
const RPI4: &[u8] = include_bytes!("../../../dtb/boards/bcm2711-rpi-4-b.dtb");
const RPI4_4GB: &[u8] = include_bytes!("../../../dtb/boards/bcm2711-rpi-4-b-4gb.dtb");
const RPI5: &[u8] = include_bytes!("../../../dtb/boards/bcm2712-rpi-5-b.dtb");
const RPI5_8GB: &[u8] = include_bytes!("../../../dtb/boards/bcm2712-rpi-5-b-8gb.dtb");

fn range(start: u64, size: u64) -> PhysRange {
    PhysRange::new(PhysAddr(start), size).unwrap()
}

fn discover_ok<'a>(fdt: &Fdt<'a>, boot_mpidr: u64) -> Hardware<'a> {
    match discover(fdt, boot_mpidr, None) {
        Ok(hw) => hw,
        Err(issues) => panic!(
            "discovery failed: {:?}",
            issues.iter().map(|i| i.to_string()).collect::<Vec<_>>()
        ),
    }
}

fn mpidrs(hw: &Hardware<'_>) -> Vec<u64> {
    hw.cpus.list.iter().map(|c| c.mpidr).collect()
}

#[test]
fn qemu_virt_gicv3() {
    let fdt = Fdt::new(QEMU_VIRT_GICV3).unwrap();
    let hw = discover_ok(&fdt, 0);
    assert_eq!(hw.model, "linux,dummy-virt");
    assert_eq!(
        hw.memory.banks.as_slice(),
        &[range(0x4000_0000, 0x8000_0000)]
    );
    assert_eq!(mpidrs(&hw), [0, 1, 2, 3]);
    assert!(
        hw.cpus
            .list
            .iter()
            .all(|c| c.enable_method == EnableMethod::Psci)
    );
    assert_eq!((hw.cpus.boot, hw.cpus.model), (0, "arm,cortex-a72"));
    assert_eq!(hw.gic.version(), GicVersion::V3);
    let GicRegions::V3 {
        distributor,
        redistributors,
        redistributor_stride,
    } = &hw.gic.regions
    else {
        panic!("expected GICv3 regions")
    };
    assert_eq!(*distributor, range(0x0800_0000, 0x1_0000));
    assert_eq!(redistributors.as_slice(), &[range(0x080a_0000, 0xf6_0000)]);
    assert_eq!(*redistributor_stride, None);
    assert_eq!(hw.gic.maintenance_intid, 25, "PPI 9");
    let t = hw.timer;
    assert_eq!(
        (
            t.secure_physical,
            t.physical,
            t.virtual_timer,
            t.hyp_physical
        ),
        (29, 30, 27, 26)
    );
    assert_eq!(t.hyp_virtual, None);
    assert!(t.always_on);
    assert_eq!(hw.psci.unwrap().compatible, "arm,psci-1.0");
    let console = hw.console.unwrap();
    assert_eq!(
        (console.kind, console.registers),
        (console::UartKind::Pl011, range(0x0900_0000, 0x1000))
    );
    assert!(hw.warnings.is_empty(), "{:?}", hw.warnings);
}

#[test]
fn qemu_virt_gicv2() {
    let fdt = Fdt::new(QEMU_VIRT_GICV2).unwrap();
    let hw = discover_ok(&fdt, 2);
    assert_eq!(
        hw.cpus.boot, 2,
        "the boot CPU is found by MPIDR, not assumed to be the first"
    );
    let GicRegions::V2 {
        distributor,
        cpu_interface,
        hyp_interface,
        virtual_cpu,
    } = hw.gic.regions
    else {
        panic!("expected GICv2 regions")
    };
    assert_eq!(distributor.start(), PhysAddr(0x0800_0000));
    assert_eq!(cpu_interface.start(), PhysAddr(0x0801_0000));
    assert_eq!(hyp_interface.start(), PhysAddr(0x0803_0000));
    assert_eq!(virtual_cpu.start(), PhysAddr(0x0804_0000));
    assert_eq!(hw.gic.maintenance_intid, 25);
    assert_eq!(hw.gic.mmio_regions().count(), 4);
}

#[test]
fn raspberry_pi_4_as_shipped_has_no_ram_until_the_firmware_fills_it() {
    let fdt = Fdt::new(RPI4).unwrap();
    let issues = discover(&fdt, 0, None).unwrap_err();
    let messages: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
    assert_eq!(messages.len(), 1, "only memory is wrong: {messages:?}");
    assert!(
        messages[0].starts_with("/memory: reg: no RAM"),
        "{}",
        messages[0]
    );
}

#[test]
fn raspberry_pi_4() {
    let fdt = Fdt::new(RPI4_4GB).unwrap();
    let hw = discover_ok(&fdt, 0);
    assert_eq!(hw.model, "Raspberry Pi 4 Model B");
    assert_eq!(
        hw.memory.banks.as_slice(),
        &[range(0, 0x3b40_0000), range(0x4000_0000, 0xbc00_0000)]
    );
    assert_eq!(hw.memory.total(), 3956 << 20);
    assert!(
        hw.memory
            .reserved
            .iter()
            .any(|r| r.kind == ReservedKind::MemReserve && r.range == range(0, 0x1000)),
        "the spin table's page is a /memreserve/ entry"
    );
    // Spin-table release addresses: two cells each although /cpus has #address-cells = 1.
    let release: Vec<_> = hw
        .cpus
        .list
        .iter()
        .map(|c| match c.enable_method {
            EnableMethod::SpinTable { release_addr } => release_addr.0,
            other => panic!("expected spin-table, got {other:?}"),
        })
        .collect();
    assert_eq!(release, [0xd8, 0xe0, 0xe8, 0xf0]);
    assert!(hw.psci.is_none(), "no TF-A, no /psci");
    // /soc ranges: 0x40000000 (bus) -> 0xff800000 (CPU) for the GIC-400.
    let GicRegions::V2 {
        distributor,
        cpu_interface,
        hyp_interface,
        virtual_cpu,
    } = hw.gic.regions
    else {
        panic!("expected GICv2 regions")
    };
    assert_eq!(distributor, range(0xff84_1000, 0x1000));
    assert_eq!(cpu_interface, range(0xff84_2000, 0x2000));
    assert_eq!(hyp_interface, range(0xff84_4000, 0x2000));
    assert_eq!(virtual_cpu, range(0xff84_6000, 0x2000));
    assert_eq!(hw.gic.maintenance_intid, 25);
    assert!(!hw.timer.always_on);
    // stdout-path = "serial1:115200n8": the mini-UART, bus 0x7e215040 -> CPU 0xfe215040.
    let console = hw.console.unwrap();
    assert_eq!(console.kind, console::UartKind::MiniUart);
    assert_eq!(console.registers, range(0xfe21_5040, 0x40));
    assert_eq!(console.options, Some("115200n8"));
}

#[test]
fn raspberry_pi_5() {
    let fdt = Fdt::new(RPI5_8GB).unwrap();
    // Booting on the second core: the core number is in Aff1.
    let hw = discover_ok(&fdt, 0x8000_0100);
    assert_eq!(hw.model, "Raspberry Pi 5");
    assert_eq!(mpidrs(&hw), [0x000, 0x100, 0x200, 0x300]);
    assert_eq!(
        hw.cpus.boot, 1,
        "MPIDR_EL1's RES1 bit 31 is ignored when matching"
    );
    assert_eq!(hw.memory.banks.len(), 4);
    assert_eq!(hw.memory.total(), 8188 << 20);
    assert!(
        hw.memory
            .reserved
            .iter()
            .any(|r| r.kind == ReservedKind::ReservedMemory { no_map: true }
                && r.range == range(0, 0x8_0000))
    );
    assert_eq!(hw.psci.unwrap().compatible, "arm,psci-1.0");
    // /soc@107c000000 maps bus 0 to CPU 0x10_0000_0000.
    let GicRegions::V2 {
        distributor,
        virtual_cpu,
        ..
    } = hw.gic.regions
    else {
        panic!("expected GICv2")
    };
    assert_eq!(distributor, range(0x10_7fff_9000, 0x1000));
    assert_eq!(virtual_cpu, range(0x10_7fff_e000, 0x2000));
    assert_eq!(
        hw.timer.hyp_virtual,
        Some(28),
        "five timer interrupts: EL2 virtual timer is PPI 12"
    );
    let console = hw.console.unwrap();
    assert_eq!(
        (console.kind, console.registers),
        (console::UartKind::Pl011, range(0x10_7d00_1000, 0x200))
    );
}

#[test]
fn raspberry_pi_5_as_shipped_has_its_placeholder_bank() {
    let fdt = Fdt::new(RPI5).unwrap();
    let hw = discover_ok(&fdt, 0);
    assert_eq!(hw.memory.banks.as_slice(), &[range(0, 0x2800_0000)]);
}

#[test]
fn boot_cpu_missing_from_the_tree_is_fatal() {
    let fdt = Fdt::new(QEMU_VIRT_GICV3).unwrap();
    let issues = discover(&fdt, 7, None).unwrap_err();
    let message = issues.iter().next().unwrap().to_string();
    assert_eq!(message, "/cpus: 0x7: the boot CPU's MPIDR is not listed");
}

#[test]
fn the_blob_itself_is_reserved() {
    let fdt = Fdt::new(QEMU_VIRT_GICV3).unwrap();
    let hw = discover(&fdt, 0, Some(range(0x4800_0000, 0x10_0000))).unwrap();
    assert!(
        hw.memory
            .reserved
            .iter()
            .any(|r| r.kind == ReservedKind::DeviceTree)
    );
}

/// xorshift64: deterministic, so a failure reproduces.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[test]
fn corrupted_trees_never_panic() {
    let mut state = 0x5eed_u64;
    for original in [QEMU_VIRT_GICV3, RPI4_4GB, RPI5_8GB] {
        let fdt = Fdt::new(original).unwrap();
        // Corrupt only the structure and strings blocks and the header: the
        // QEMU blob is padded to 1 MiB of zeroes that no mutation would reach.
        let used = (blocks_end(original)).min(original.len());
        for round in 0..3000 {
            let mut blob = original[..fdt.total_size()].to_vec();
            for _ in 0..1 + next(&mut state) % 4 {
                let at = (next(&mut state) as usize) % used;
                blob[at] = match next(&mut state) % 4 {
                    0 => 0,
                    1 => 0xff,
                    2 => blob[at] ^ (1 << (next(&mut state) % 8)),
                    _ => next(&mut state) as u8,
                };
            }
            if round % 10 == 0 {
                blob.truncate((next(&mut state) as usize) % blob.len());
            }
            let Ok(fdt) = Fdt::new(&blob) else { continue };
            // Exercise every reader on whatever validation let through.
            for node in fdt.nodes() {
                let _ = node.path().to_string();
                for property in node.properties() {
                    let _ = (
                        property.as_str(),
                        property.as_u64(),
                        property.strings().count(),
                    );
                }
                let _ = crate::dt::address::reg(&node).map(|r| r.count());
            }
            for mpidr in [0, 0x100] {
                match discover(&fdt, mpidr, None) {
                    Ok(hw) => {
                        hw.warnings.iter().for_each(|i| drop(i.to_string()));
                    }
                    Err(issues) => {
                        issues.iter().for_each(|i| drop(i.to_string()));
                    }
                }
            }
        }
    }
}

/// End of the structure or strings block, whichever is later.
fn blocks_end(blob: &[u8]) -> usize {
    let word = |i: usize| u32::from_be_bytes(blob[i..i + 4].try_into().unwrap()) as usize;
    (word(8) + word(36)).max(word(12) + word(32))
}

/// A small machine with everything a bootloader may leave in memory.
fn tree_with_loaded_images() -> Vec<u8> {
    use crate::dt::test_builder::Builder;
    Builder::default()
        .reserve(0x4000_0000, 0x1000)
        .begin("")
        .prop_cells("#address-cells", &[2])
        .prop_cells("#size-cells", &[2])
        .begin("memory@40000000")
        .prop_str("device_type", "memory")
        .prop_cells("reg", &[0, 0x4000_0000, 0, 0x4000_0000])
        .end()
        .begin("reserved-memory")
        .prop_cells("#address-cells", &[2])
        .prop_cells("#size-cells", &[2])
        .prop("ranges", &[])
        .begin("firmware@7f000000")
        .prop_cells("reg", &[0, 0x7f00_0000, 0, 0x10_0000])
        .prop("no-map", &[])
        .end()
        .begin("disabled@7e000000")
        .prop_cells("reg", &[0, 0x7e00_0000, 0, 0x10_0000])
        .prop_str("status", "disabled")
        .end()
        .end()
        .begin("chosen")
        .prop_cells("#address-cells", &[2])
        .prop_cells("#size-cells", &[2])
        .prop_cells("linux,initrd-start", &[0, 0x4800_0000])
        .prop_cells("linux,initrd-end", &[0, 0x4820_0000])
        .begin("module@50000000")
        .prop("compatible", b"multiboot,kernel\0multiboot,module\0")
        .prop_cells("reg", &[0, 0x5000_0000, 0, 0x80_0000])
        .end()
        .end()
        .end()
        .build()
}

#[test]
fn everything_the_bootloader_loaded_is_kept_out_of_free_memory() {
    let blob = tree_with_loaded_images();
    let fdt = Fdt::new(&blob).unwrap();
    let mut issues = Issues::default();
    let map = memory::discover(&fdt, Some(range(0x4f00_0000, 0x2000)), &mut issues);
    assert!(issues.is_empty(), "{issues:?}");
    let kinds: Vec<(ReservedKind, PhysRange)> =
        map.reserved.iter().map(|r| (r.kind, r.range)).collect();
    assert_eq!(
        kinds,
        [
            (ReservedKind::DeviceTree, range(0x4f00_0000, 0x2000)),
            (ReservedKind::MemReserve, range(0x4000_0000, 0x1000)),
            (
                ReservedKind::ReservedMemory { no_map: true },
                range(0x7f00_0000, 0x10_0000)
            ),
            (ReservedKind::Initrd, range(0x4800_0000, 0x20_0000)),
            (ReservedKind::Module, range(0x5000_0000, 0x80_0000)),
        ],
        "a disabled /reserved-memory node reserves nothing"
    );
    let free = crate::mm::free::free_ranges(&map);
    for reserved in &map.reserved {
        assert!(
            free.iter().all(|f| !f.overlaps(&reserved.range)),
            "{reserved:?} is handed out"
        );
    }
    assert_eq!(
        free.iter().map(PhysRange::size).sum::<u64>(),
        0x4000_0000 - 0x1000 - 0x10_0000 - 0x20_0000 - 0x80_0000 - 0x2000
    );
}

#[test]
fn an_initrd_that_ends_before_it_starts_is_fatal() {
    use crate::dt::test_builder::Builder;
    let blob = Builder::default()
        .begin("")
        .begin("memory@0")
        .prop_str("device_type", "memory")
        .prop_cells("reg", &[0, 0, 0x1000_0000])
        .end()
        .begin("chosen")
        .prop_cells("linux,initrd-start", &[0x200_0000])
        .prop_cells("linux,initrd-end", &[0x100_0000])
        .end()
        .end()
        .build();
    let fdt = Fdt::new(&blob).unwrap();
    let mut issues = Issues::default();
    memory::discover(&fdt, None, &mut issues);
    assert!(issues.has_fatal());
    let message = issues.iter().next().unwrap().to_string();
    assert_eq!(
        message,
        "/chosen: linux,initrd-start: 0x1000000: initrd ends before it starts"
    );
}

#[test]
fn boot_modules_found_in_the_one_walk_match_a_walk_of_their_own() {
    use crate::config::test_support::merged;
    // 3 modules fit the single walk's list; 12 overflow it (the tree is
    // walked again for them).
    for count in [3u64, 12] {
        let mut body = String::from("modules { #address-cells = <2>; #size-cells = <2>;\n");
        for i in 0..count {
            let base = 0x5000_0000 + i * 0x10_0000;
            body += &format!(
                "module@{base:x} {{ compatible = \"multiboot,kernel\", \"multiboot,module\"; reg = <0x0 {base:#x} 0x0 0x1000>; }};\n"
            );
        }
        body += "};";
        let blob = merged(&body);
        let fdt = Fdt::new(&blob).unwrap();
        let hw = discover_ok(&fdt, 0);
        let modules = |map: &memory::MemoryMap| -> Vec<PhysRange> {
            map.reserved
                .iter()
                .filter(|r| r.kind == ReservedKind::Module)
                .map(|r| r.range)
                .collect()
        };
        let found = modules(&hw.memory);
        assert_eq!(found.len() as u64, count, "{found:?}");
        let walked = memory::discover(&fdt, None, &mut Issues::default());
        assert_eq!(found, modules(&walked));
    }
}
