//! Checks over whole partitions built from the shipped example overlays:
//! their stage-2 tables as the MMU would walk them, and their device trees.

use crate::config::guest_map::{GUEST_DEVICES, IPA_BITS};
use crate::config::test_support::{DTB, Headers, example_body, hardware, merged};
use crate::config::{self, PartitionPlan};
use crate::dt::Fdt;
use crate::guest::{device_tree, stage2};
use crate::hw::memory::ReservedKind;
use crate::mm::address::{PhysAddr, PhysRange};
use crate::mm::page_table::{Attributes, PageTable, Stage, Table, TablePool};

/// Every leaf of `plan`'s stage-2 tables: (IPA, host range, attributes).
fn stage2_leaves(plan: &PartitionPlan<'_>) -> (Vec<(u64, PhysRange, Attributes)>, [u64; 4]) {
    let mut tables = vec![Table::EMPTY; 16];
    let mut pool = TablePool::new(&mut tables, PhysAddr(0x7000_0000));
    let mut table = PageTable::new(&mut pool, Stage::Stage2, IPA_BITS).unwrap();
    stage2::map_partition(&mut table, plan, None).unwrap();
    let mut leaves = Vec::new();
    table.for_each_leaf(|ipa, output, size, attributes| {
        leaves.push((ipa, PhysRange::new(output, size).unwrap(), attributes));
    });
    (leaves, table.leaf_counts())
}

#[test]
fn stage2_maps_only_each_partitions_own_ram_disjoint_from_everything_else() {
    for file in [
        "qemu-virt-two-partitions.dts",
        "qemu-virt-three-partitions.dts",
    ] {
        let blob = merged(&example_body(file));
        let fdt = Fdt::new(&blob).unwrap();
        let hardware = hardware(&fdt);
        let plans = config::read(&fdt, &hardware, &Headers::default()).unwrap();
        let mut owned: Vec<(String, PhysRange)> = Vec::new();
        for plan in &plans {
            let (leaves, _) = stage2_leaves(plan);
            assert!(
                !leaves.is_empty(),
                "{file}: {} maps nothing",
                plan.config.name
            );
            for (ipa, host, attributes) in &leaves {
                let name = plan.config.name;
                assert!(
                    plan.ram.contains_range(host),
                    "{file}: {name} maps {host} outside its RAM {}",
                    plan.ram
                );
                assert_eq!(
                    *attributes,
                    Attributes::GUEST_RAM,
                    "{file}: {name}: RAM only"
                );
                assert!(
                    *ipa >= GUEST_DEVICES.1 || ipa + host.size() <= GUEST_DEVICES.0,
                    "{file}: {name}: emulated devices must stay unmapped"
                );
                for reserved in &hardware.memory.reserved {
                    assert!(
                        !reserved.range.overlaps(host),
                        "{file}: {name} maps {host}, which overlaps {} at {}",
                        reserved.kind.describe(),
                        reserved.range
                    );
                }
                for (other, range) in &owned {
                    assert!(
                        !range.overlaps(host),
                        "{file}: {name} maps {host}, partition {other}'s"
                    );
                }
            }
            for (_, host, _) in leaves {
                owned.push((plan.config.name.to_string(), host));
            }
        }
        let kinds: Vec<ReservedKind> = hardware.memory.reserved.iter().map(|r| r.kind).collect();
        for kind in [
            ReservedKind::Hypervisor,
            ReservedKind::HypervisorHeap,
            ReservedKind::DeviceTree,
            ReservedKind::Module,
        ] {
            assert!(
                kinds.contains(&kind),
                "{file}: the check saw no {kind:?} to compare with"
            );
        }
        assert!(
            hardware
                .memory
                .reserved
                .iter()
                .any(|r| r.range.contains(PhysAddr(DTB))),
            "the DTB is reserved"
        );
    }
}

#[test]
fn stage2_uses_2mib_blocks_for_2mib_aligned_ram() {
    let blob = merged(&example_body("qemu-virt-two-partitions.dts"));
    let fdt = Fdt::new(&blob).unwrap();
    let hardware = hardware(&fdt);
    let plans = config::read(&fdt, &hardware, &Headers::default()).unwrap();
    for plan in &plans {
        let (_, counts) = stage2_leaves(plan);
        assert_eq!(
            counts[3], 0,
            "{}: no 4 KiB pages, got {counts:?}",
            plan.config.name
        );
        assert_eq!(
            counts[2] * (2 << 20),
            plan.ram.size(),
            "{}: all 2 MiB blocks",
            plan.config.name
        );
    }
}

#[test]
fn the_guest_device_tree_carries_the_seeds_it_is_given() {
    let blob = merged(&example_body("qemu-virt-two-partitions.dts"));
    let fdt = Fdt::new(&blob).unwrap();
    let hardware = hardware(&fdt);
    let plans = config::read(&fdt, &hardware, &Headers::default()).unwrap();
    let seeds = crate::entropy::Seeds {
        rng_seed: [7; 32],
        kaslr_seed: 0x1234_5678_9abc_def0,
    };
    let write = |seeds| {
        device_tree::write(
            &plans[0],
            device_tree::BootInfo {
                boot_count: 1,
                gic: crate::hw::gic::GicVersion::V3,
                seeds,
            },
        )
        .unwrap()
    };
    let with = write(Some(seeds));
    let guest = Fdt::new(&with).unwrap();
    let chosen = guest.find_node("/chosen").unwrap();
    assert_eq!(chosen.property("rng-seed").unwrap().value, [7; 32]);
    assert_eq!(
        chosen.property("kaslr-seed").unwrap().value,
        0x1234_5678_9abc_def0u64.to_be_bytes()
    );
    let without = write(None);
    let guest = Fdt::new(&without).unwrap();
    let chosen = guest.find_node("/chosen").unwrap();
    assert!(chosen.property("rng-seed").is_none() && chosen.property("kaslr-seed").is_none());
}

#[test]
fn the_guest_device_tree_describes_the_partition() {
    let blob = merged(&example_body("qemu-virt-two-partitions.dts"));
    let fdt = Fdt::new(&blob).unwrap();
    let hardware = hardware(&fdt);
    let plans = config::read(&fdt, &hardware, &Headers::default()).unwrap();
    let plan = plans.iter().find(|p| p.config.name == "b").unwrap();
    let guest_blob = device_tree::write(
        plan,
        device_tree::BootInfo {
            boot_count: 3,
            gic: crate::hw::gic::GicVersion::V3,
            seeds: None,
        },
    )
    .unwrap();
    let guest = Fdt::new(&guest_blob).unwrap();
    let cpus: Vec<String> = guest
        .find_node("/cpus")
        .unwrap()
        .children()
        .map(|c| c.name().to_string())
        .collect();
    assert_eq!(cpus, ["cpu@0", "cpu@1"], "CPUs renumbered from 0");
    assert_eq!(
        guest
            .find_node("/psci")
            .unwrap()
            .property("method")
            .unwrap()
            .as_str(),
        Some("hvc")
    );
    let memory = guest
        .find_node("/memory@40000000")
        .expect("RAM at the guest base");
    assert_eq!(memory.property("reg").unwrap().value.len(), 16);
    let chosen = guest.find_node("/chosen").unwrap();
    assert_eq!(
        chosen.property("bootargs").unwrap().as_str(),
        Some("role=b")
    );
    assert_eq!(
        chosen.property("stdout-path").unwrap().as_str(),
        Some("/pl011@9000000")
    );
    assert_eq!(
        chosen.property("tessera,boot-count").unwrap().as_u32(),
        Some(3)
    );
    assert!(guest.find_node("/pl011@9000000").is_some());
    assert!(guest_blob.len() <= crate::config::guest_map::GUEST_DTB_MAX_SIZE);
}

#[test]
fn a_direct_mapped_partition_sees_its_host_addresses() {
    let blob = merged(&example_body("qemu-virt-three-partitions.dts"));
    let fdt = Fdt::new(&blob).unwrap();
    let hardware = hardware(&fdt);
    let plans = config::read(&fdt, &hardware, &Headers::default()).unwrap();
    let plan = plans.iter().find(|p| p.config.name == "c").unwrap();
    assert!(plan.config.direct_map);
    let (leaves, _) = stage2_leaves(plan);
    for (ipa, host, _) in leaves {
        assert_eq!(ipa, host.start().0, "IPA equals host address");
    }
    let guest = device_tree::write(
        plan,
        device_tree::BootInfo {
            boot_count: 1,
            gic: crate::hw::gic::GicVersion::V3,
            seeds: None,
        },
    )
    .unwrap();
    assert!(
        Fdt::new(&guest)
            .unwrap()
            .find_node("/memory@60000000")
            .is_some()
    );
}

#[test]
fn a_ramdisk_is_placed_below_the_dtb_and_named_in_chosen() {
    let body = example_body("qemu-virt-two-partitions.dts").replace(
        "tessera,file = \"test-guest.bin\";\n\t\t\t\t\t};\n\t\t\t\t};\n\n\t\t\t\tb {",
        "tessera,file = \"test-guest.bin\";\n\t\t\t\t\t};\n\t\t\t\t\tmodule@4c000000 {\n\t\t\t\t\t\tcompatible = \"multiboot,ramdisk\", \"multiboot,module\";\n\t\t\t\t\t\treg = <0x0 0x4c000000 0x0 0x3000>;\n\t\t\t\t\t};\n\t\t\t\t};\n\n\t\t\t\tb {",
    );
    assert!(
        body.contains("multiboot,ramdisk"),
        "the test overlay gained a ramdisk"
    );
    let blob = merged(&body);
    let fdt = Fdt::new(&blob).unwrap();
    let hardware = hardware(&fdt);
    let plans = config::read(&fdt, &hardware, &Headers::default()).unwrap();
    let plan = plans.iter().find(|p| p.config.name == "a").unwrap();
    let (start, size) = plan.layout.ramdisk.expect("a ramdisk");
    assert_eq!(size, 0x3000);
    assert_eq!(start + 0x3000, plan.layout.dtb, "right below the DTB");
    let guest_blob = device_tree::write(
        plan,
        device_tree::BootInfo {
            boot_count: 1,
            gic: crate::hw::gic::GicVersion::V3,
            seeds: None,
        },
    )
    .unwrap();
    let guest = Fdt::new(&guest_blob).unwrap();
    let chosen = guest.find_node("/chosen").unwrap();
    assert_eq!(
        chosen.property("linux,initrd-start").unwrap().as_u64(),
        Some(start)
    );
    assert_eq!(
        chosen.property("linux,initrd-end").unwrap().as_u64(),
        Some(start + size)
    );
}
