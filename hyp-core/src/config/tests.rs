//! Configuration checks on real trees: each case is an overlay compiled with
//! the real dtc and merged into QEMU virt's DTB with fdtoverlay, with one
//! defect each (`cargo xtask setup` installs both tools).

use std::collections::HashMap;

use super::test_support::{
    DTB, Headers, IMAGE, IMAGE_SIZE, corrupt, example_body, hardware, merged,
};
use super::*;
use crate::dt::Fdt;
use crate::hw;
use crate::mm::address::{PhysAddr, PhysRange};
use crate::mm::hyp_memory;

fn check(body: &str, headers: &Headers) -> Result<Vec<String>, Vec<String>> {
    let blob = merged(body);
    let fdt = Fdt::new(&blob).unwrap();
    let hardware = hardware(&fdt);
    match read(&fdt, &hardware, headers) {
        Ok(plans) => Ok(plans
            .iter()
            .map(|p| {
                format!(
                    "{} vmid {} cpus {:?} ram {} guest {:#x} kernel {:#x} dtb {:#x}",
                    p.config.name,
                    p.vmid,
                    p.config.cpus,
                    p.ram,
                    p.layout.ram_base,
                    p.layout.kernel,
                    p.layout.dtb
                )
            })
            .collect()),
        Err(errors) => Err(errors.iter().map(ToString::to_string).collect()),
    }
}

fn errors(body: &str) -> Vec<String> {
    match check(body, &Headers::default()) {
        Ok(plans) => panic!("expected errors, got a valid configuration: {plans:#?}"),
        Err(errors) => errors,
    }
}

fn assert_reports(errors: &[String], expected: &str) {
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "expected an error containing {expected:?}, got {errors:#?}"
    );
}

/// A partition node; `extra` adds or overrides properties.
fn partition(name: &str, cpus: &str, extra: &str, module_at: u64) -> String {
    format!(
        "{name} {{ compatible = \"tessera,partition\"; #address-cells = <2>; #size-cells = <2>;
           cpus = {cpus}; {extra}
           module@{module_at:x} {{ compatible = \"multiboot,kernel\", \"multiboot,module\";
               reg = <0x0 {module_at:#x} 0x0 0x10000>; }}; }};"
    )
}

fn hypervisor(partitions: &str) -> String {
    format!("hypervisor {{ compatible = \"tessera,hypervisor\"; {partitions} }};")
}

const SIZE_64M: &str = "memory-size = <0x0 0x4000000>;";

#[test]
fn the_shipped_example_overlays_are_valid() {
    for file in [
        "qemu-virt-two-partitions.dts",
        "qemu-virt-three-partitions.dts",
    ] {
        let body = example_body(file);
        let plans = check(&body, &Headers::default())
            .unwrap_or_else(|e| panic!("{file} should be valid: {e:#?}"));
        assert!(plans.len() >= 2, "{file}: {plans:#?}");
    }
}

#[test]
fn partitions_get_their_cpus_memory_and_vmids() {
    let body = hypervisor(
        &[
            partition(
                "a",
                "\"/cpus/cpu@0\", \"/cpus/cpu@1\"",
                &format!("{SIZE_64M} memory-base = <0x0 0x50000000>;"),
                0x4900_0000,
            ),
            partition(
                "b",
                "\"/cpus/cpu@2\"",
                "memory-size = <0x0 0x2000000>;",
                0x4a00_0000,
            ),
        ]
        .concat(),
    );
    let plans = check(&body, &Headers::default()).unwrap();
    assert_eq!(
        plans,
        [
            "a vmid 1 cpus [0, 1] ram 0x50000000..0x54000000 guest 0x40000000 kernel 0x40000000 dtb 0x43e00000",
            "b vmid 2 cpus [2] ram 0xbe000000..0xc0000000 guest 0x40000000 kernel 0x40000000 dtb 0x41e00000",
        ],
        "b is placed at the top of RAM"
    );
}

#[test]
fn cpus_can_be_named_by_mpidr_but_not_both_ways() {
    let by_mpidr = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        &format!("{SIZE_64M} cpu-mpidrs = <0x3 0x0>;"),
        0x4900_0000,
    ))
    .replace("cpus = \"/cpus/cpu@0\";", "");
    let plans = check(&by_mpidr, &Headers::default()).unwrap();
    assert!(
        plans[0].contains("cpus [3, 0]"),
        "in the order given: {plans:?}"
    );
    let both = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        &format!("{SIZE_64M} cpu-mpidrs = <0x3>;"),
        0x4900_0000,
    ));
    assert_reports(
        &errors(&both),
        "partition a: cpu-mpidrs: malformed: expected either cpus or cpu-mpidrs, not both",
    );
}

/// `count` CPUs from cpu@4 on, beside QEMU virt's four, as an overlay
/// adds them to `/cpus`.
fn more_cpus(count: u32) -> String {
    let nodes: String = (4..4 + count)
        .map(|n| {
            format!(
                "cpu@{n:x} {{ device_type = \"cpu\"; compatible = \"arm,cortex-a72\"; reg = <{n:#x}>; enable-method = \"psci\"; }};"
            )
        })
        .collect();
    format!("cpus {{ {nodes} }};")
}

/// A partition of the first `count` CPUs of the board.
fn partition_of(count: u32) -> String {
    let cpus: Vec<String> = (0..count).map(|n| format!("\"/cpus/cpu@{n:x}\"")).collect();
    hypervisor(&partition("big", &cpus.join(", "), SIZE_64M, 0x4900_0000))
}

#[test]
fn a_partition_may_have_as_many_vcpus_as_its_gic_version_serves() {
    // GICv2: 8, its architectural limit. A ninth is refused by name.
    let too_many = format!("{}{}", more_cpus(5), partition_of(9));
    let blob = super::test_support::merged_into("qemu-virt-gicv2.dtb", &too_many);
    let fdt = Fdt::new(&blob).unwrap();
    let errors: Vec<String> = read(&fdt, &hardware(&fdt), &Headers::default())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_reports(
        &errors,
        "partition big: cpus: 9 CPUs, but a partition's virtual GICv2 serves at most 8 vCPUs",
    );
    let eight = format!("{}{}", more_cpus(4), partition_of(8));
    let blob = super::test_support::merged_into("qemu-virt-gicv2.dtb", &eight);
    let fdt = Fdt::new(&blob).unwrap();
    assert!(
        read(&fdt, &hardware(&fdt), &Headers::default()).is_ok(),
        "8 on GICv2"
    );
    // GICv3: 16, as many CPUs as Tessera runs.
    let sixteen = format!("{}{}", more_cpus(12), partition_of(16));
    let plans = check(&sixteen, &Headers::default()).unwrap();
    let cpus = plans[0]
        .split("cpus [")
        .nth(1)
        .and_then(|rest| rest.split(']').next());
    assert_eq!(
        cpus.map(|list| list.split(", ").count()),
        Some(16),
        "{plans:?}"
    );
}

#[test]
fn an_arm64_image_is_placed_at_its_text_offset() {
    let body = hypervisor(&partition("a", "\"/cpus/cpu@0\"", SIZE_64M, 0x4900_0000));
    let mut header = [0u8; image::HEADER_SIZE];
    header[8..16].copy_from_slice(&0x8_0000u64.to_le_bytes());
    header[16..24].copy_from_slice(&0x20_0000u64.to_le_bytes());
    header[0x38..0x3c].copy_from_slice(b"ARM\x64");
    let headers = Headers(HashMap::from([(0x4900_0000, header)]));
    let plans = check(&body, &headers).unwrap();
    assert!(plans[0].contains("kernel 0x40080000"), "{plans:?}");
}

#[test]
fn memory_overlapping_another_partition() {
    let body = hypervisor(
        &[
            partition(
                "a",
                "\"/cpus/cpu@0\"",
                &format!("{SIZE_64M} memory-base = <0x0 0x50000000>;"),
                0x4900_0000,
            ),
            partition(
                "b",
                "\"/cpus/cpu@1\"",
                &format!("{SIZE_64M} memory-base = <0x0 0x52000000>;"),
                0x4a00_0000,
            ),
        ]
        .concat(),
    );
    assert_reports(
        &errors(&body),
        "partition b: memory-base: 0x52000000..0x56000000 overlaps partition a's memory at 0x50000000..0x54000000",
    );
}

#[test]
fn memory_overlapping_the_hypervisor() {
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        &format!("{SIZE_64M} memory-base = <0x0 0x40000000>;"),
        0x4900_0000,
    ));
    assert_reports(
        &errors(&body),
        "overlaps Tessera image at 0x40200000..0x40300000",
    );
}

#[test]
fn memory_overlapping_the_device_tree() {
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        &format!("{SIZE_64M} memory-base = <0x0 0x46000000>;"),
        0x4900_0000,
    ));
    assert_reports(&errors(&body), "overlaps device tree at 0x48000000");
}

#[test]
fn memory_overlapping_a_module() {
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        &format!("{SIZE_64M} memory-base = <0x0 0x4a000000>;"),
        0x4b00_0000,
    ));
    // Whose module: the partition and the node, not just "a module".
    assert_reports(
        &errors(&body),
        "partition a: memory-base: 0x4a000000..0x4e000000 overlaps partition a's module@4b000000 \
         at 0x4b000000..0x4b010000",
    );
}

#[test]
fn memory_overlapping_reserved_memory() {
    let body = format!(
        "reserved-memory {{ #address-cells = <2>; #size-cells = <2>; ranges;
             firmware@60000000 {{ reg = <0x0 0x60000000 0x0 0x100000>; no-map; }}; }};
         {}",
        hypervisor(&partition(
            "a",
            "\"/cpus/cpu@0\"",
            &format!("{SIZE_64M} memory-base = <0x0 0x5e000000>;"),
            0x4900_0000
        ))
    );
    assert_reports(
        &errors(&body),
        "overlaps /reserved-memory, no-map at 0x60000000..0x60100000",
    );
}

#[test]
fn memory_outside_ram_or_misaligned() {
    let body = hypervisor(
        &[
            partition(
                "a",
                "\"/cpus/cpu@0\"",
                &format!("{SIZE_64M} memory-base = <0x1 0x0>;"),
                0x4900_0000,
            ),
            partition(
                "b",
                "\"/cpus/cpu@1\"",
                "memory-size = <0x0 0x1001>; memory-base = <0x0 0x50000800>;",
                0x4a00_0000,
            ),
        ]
        .concat(),
    );
    let errors = errors(&body);
    assert_reports(
        &errors,
        "partition a: memory-base: 0x100000000..0x104000000 is not all RAM",
    );
    assert_reports(
        &errors,
        "partition b: memory-size: 0x1001 is not a multiple of 4 KiB",
    );
    assert_reports(
        &errors,
        "partition b: memory-base: 0x50000800 is not a multiple of 4 KiB",
    );
    // The base in RAM, the end past it: memory-size is at fault (QEMU
    // virt's board file has 2 GiB at 0x40000000).
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        "memory-size = <0x0 0x10000000>; memory-base = <0x0 0xb8000000>;",
        0x4900_0000,
    ));
    assert_reports(
        &self::errors(&body),
        "partition a: memory-size: 0xb8000000..0xc8000000 is not all RAM",
    );
}

#[test]
fn a_cpu_given_twice_or_missing() {
    let body = hypervisor(
        &[
            partition(
                "a",
                "\"/cpus/cpu@0\", \"/cpus/cpu@1\"",
                SIZE_64M,
                0x4900_0000,
            ),
            partition(
                "b",
                "\"/cpus/cpu@1\", \"/cpus/cpu@9\"",
                &format!("{SIZE_64M} cpu-mpidrs = <0x100>;"),
                0x4a00_0000,
            ),
        ]
        .concat(),
    );
    let errors = errors(&body);
    assert_reports(
        &errors,
        "partition b: cpus: the CPU with MPIDR 0x1 is already given to partition a",
    );
    assert_reports(
        &errors,
        "partition b: cpus: \"/cpus/cpu@9\" is not a CPU of this board",
    );
    assert_reports(
        &errors,
        "partition b: cpu-mpidrs: no CPU of this board has MPIDR 0x100",
    );
    // Twice in one partition: not "given to" itself.
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\", \"/cpus/cpu@0\"",
        SIZE_64M,
        0x4900_0000,
    ));
    let errors = self::errors(&body);
    assert_reports(
        &errors,
        "partition a: cpus: the CPU with MPIDR 0x0 is listed twice",
    );
    assert!(
        !errors.iter().any(|e| e.contains("already given")),
        "{errors:#?}"
    );
}

#[test]
fn an_image_larger_than_its_partition() {
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        "memory-size = <0x0 0x400000>;",
        0x4900_0000,
    ));
    let mut header = [0u8; image::HEADER_SIZE];
    header[16..24].copy_from_slice(&0x40_0000u64.to_le_bytes());
    header[0x38..0x3c].copy_from_slice(b"ARM\x64");
    let headers = Headers(HashMap::from([(0x4900_0000, header)]));
    let errors = check(&body, &headers).unwrap_err();
    assert_reports(
        &errors,
        "partition a: memory-size: the images and the guest DTB need 6 MiB but the partition has 4 MiB",
    );
}

#[test]
fn a_partition_without_kernel_or_cpus() {
    let body =
        hypervisor("a { compatible = \"tessera,partition\"; memory-size = <0x0 0x400000>; };");
    let errors = errors(&body);
    assert_reports(&errors, "partition a: no kernel");
    assert_reports(&errors, "partition a: cpus: no CPUs");
}

#[test]
fn malformed_properties_are_each_reported() {
    let body = hypervisor(&partition(
        "a",
        "<1>",
        "memory-size = <0x4000000>; restart = \"sometimes\"; direct-map = <1>;",
        0x4900_0000,
    ));
    let errors = errors(&body);
    assert_reports(
        &errors,
        "partition a: cpus: malformed: expected a list of CPU node paths",
    );
    assert_reports(
        &errors,
        "partition a: memory-size: malformed: expected two cells",
    );
    assert_reports(&errors, "partition a: restart: \"sometimes\" is not one of");
    assert_reports(
        &errors,
        "partition a: direct-map: malformed: expected an empty property",
    );
}

#[test]
fn a_module_that_was_not_loaded() {
    let body = hypervisor(&partition("a", "\"/cpus/cpu@0\"", SIZE_64M, 0x4900_0000))
        .replace("0x0 0x10000>", "0x0 0x0>");
    assert_reports(
        &errors(&body),
        "partition a: reg: size is 0: the file was not loaded",
    );
}

#[test]
fn no_room_for_a_partition() {
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        "memory-size = <0x1 0x0>;",
        0x4900_0000,
    ));
    assert_reports(
        &errors(&body),
        "partition a: memory-size: no free, 2 MiB-aligned 4 GiB of RAM is left",
    );
}

#[test]
fn unknown_children_and_empty_hypervisor_nodes() {
    let errors = errors(&hypervisor("typo { compatible = \"tessera,partiton\"; };"));
    assert_reports(&errors, "partition typo: compatible: not a partition");
    let errors = self::errors(&hypervisor(""));
    assert_reports(&errors, "/hypervisor: no partitions");
}

#[test]
fn guest_ram_over_the_emulated_devices() {
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        &format!("{SIZE_64M} guest-memory-base = <0x0 0x8000000>;"),
        0x4900_0000,
    ));
    assert_reports(&errors(&body), "covers the guest's emulated GIC and PL011");
}

#[test]
fn every_error_is_reported_not_just_the_first() {
    let body = hypervisor(
        &[
            partition(
                "a",
                "\"/cpus/cpu@7\"",
                "memory-size = <0x0 0x1001>;",
                0x4900_0000,
            ),
            partition(
                "b",
                "\"/cpus/cpu@1\"",
                "restart = \"sometimes\";",
                0x4a00_0000,
            ),
        ]
        .concat(),
    );
    let errors = errors(&body);
    assert!(errors.len() >= 4, "expected four errors, got {errors:#?}");
}

#[test]
fn a_tree_without_hypervisor_node_configures_nothing() {
    let blob = merged("");
    let fdt = Fdt::new(&blob).unwrap();
    assert!(
        read(&fdt, &hardware(&fdt), &Headers::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_hypervisor_node_with_another_compatible_is_an_error() {
    let body = hypervisor(&partition("a", "\"/cpus/cpu@0\"", SIZE_64M, 0x4900_0000))
        .replace("\"tessera,hypervisor\"", "\"tessera,hypervisr\"");
    assert_reports(
        &errors(&body),
        "/hypervisor: compatible: malformed: expected \"tessera,hypervisor\"",
    );
    let body = hypervisor(&partition("a", "\"/cpus/cpu@0\"", SIZE_64M, 0x4900_0000))
        .replace("compatible = \"tessera,hypervisor\";", "");
    assert_reports(&errors(&body), "/hypervisor: compatible: property missing");
}

/// The configuration reader and checks take whatever a corrupted overlay
/// leaves of the tree (in the `/hypervisor` subtree, where the overlay's
/// bytes are) and never panic: errors, or a plan, but never a crash.
#[test]
fn corrupted_configurations_never_panic() {
    let original = merged(&example_body("qemu-virt-two-partitions.dts"));
    let fdt = Fdt::new(&original).unwrap();
    let total = fdt.total_size();
    // The hypervisor node's bytes: from its name to the end of the structure block.
    let structure_end = u32::from_be_bytes(original[8..12].try_into().unwrap()) as usize
        + u32::from_be_bytes(original[36..40].try_into().unwrap()) as usize;
    let start = original
        .windows(b"hypervisor\0".len())
        .position(|w| w == b"hypervisor\0")
        .unwrap();
    let headers = Headers::default();
    let mut state = 0xc0f1_u64;
    let mut outcomes = [0usize; 2];
    for _ in 0..4000 {
        let blob = corrupt(&original[..total], start..structure_end, &mut state);
        let Ok(fdt) = Fdt::new(&blob) else { continue };
        let dtb = PhysRange::new(PhysAddr(DTB), total as u64);
        let Ok(mut hardware) = hw::discover(&fdt, 0, dtb) else {
            continue;
        };
        if hyp_memory::reserve(
            &mut hardware.memory,
            PhysRange::new(PhysAddr(IMAGE), IMAGE_SIZE).unwrap(),
        )
        .is_err()
        {
            continue;
        }
        match read(&fdt, &hardware, &headers) {
            Ok(_) => outcomes[0] += 1,
            Err(errors) => {
                outcomes[1] += 1;
                errors.iter().for_each(|e| drop(e.to_string()));
            }
        }
    }
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "the corruption should leave some valid and some invalid configurations: {outcomes:?}"
    );
}

#[test]
fn misspelt_and_made_up_properties_are_errors_naming_them() {
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        "memory-size = <0x0 0x4000000>; guest-memroy-base = <0x0 0x80000000>; direct-mapped; \
         restrat = \"always\"; frobnicate = <1>;",
        0x4900_0000,
    ));
    let errors = errors(&body);
    assert_reports(
        &errors,
        "partition a: unknown property \"guest-memroy-base\": did you mean \"guest-memory-base\"?",
    );
    assert_reports(
        &errors,
        "partition a: unknown property \"direct-mapped\": did you mean \"direct-map\"?",
    );
    assert_reports(
        &errors,
        "partition a: unknown property \"restrat\": did you mean \"restart\"?",
    );
    let made_up = errors
        .iter()
        .find(|e| e.contains("\"frobnicate\""))
        .expect("frobnicate reported");
    assert_eq!(made_up, "partition a: unknown property \"frobnicate\"");
}

#[test]
fn a_misspelt_required_property_is_named_beside_the_missing_one() {
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        "memroy-size = <0x0 0x4000000>;",
        0x4900_0000,
    ));
    let errors = errors(&body);
    assert_reports(
        &errors,
        "partition a: unknown property \"memroy-size\": did you mean \"memory-size\"?",
    );
    assert_reports(&errors, "partition a: memory-size: property missing");
}

#[test]
fn modules_and_the_hypervisor_node_take_only_their_own_properties_and_nodes() {
    let body = hypervisor(&partition("a", "\"/cpus/cpu@0\"", SIZE_64M, 0x4900_0000))
        .replace(
            "reg = <0x0 0x49000000 0x0 0x10000>;",
            "reg = <0x0 0x49000000 0x0 0x10000>; tessera,fille = \"a.bin\"; extra { };",
        )
        .replace(
            "compatible = \"tessera,hypervisor\";",
            "compatible = \"tessera,hypervisor\"; partitions = <2>;",
        );
    let errors = errors(&body);
    assert_reports(
        &errors,
        "partition a: module@49000000: unknown property \"tessera,fille\": did you mean \"tessera,file\"?",
    );
    assert_reports(
        &errors,
        "partition a: module@49000000: unknown node \"extra\"",
    );
    assert_reports(&errors, "/hypervisor: unknown property \"partitions\"");
}

#[test]
fn a_partition_has_module_nodes_only() {
    let body = hypervisor(&partition("a", "\"/cpus/cpu@0\"", SIZE_64M, 0x4900_0000))
        .replace("module@49000000", "modul@49000000");
    let errors = errors(&body);
    assert_reports(
        &errors,
        "partition a: unknown node \"modul@49000000\": did you mean \"module@<address>\"?",
    );
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        &format!("{SIZE_64M} serial {{ }};"),
        0x4900_0000,
    ));
    let serial = self::errors(&body);
    let serial = serial
        .iter()
        .find(|e| e.contains("\"serial\""))
        .expect("serial reported");
    assert_eq!(serial, "partition a: unknown node \"serial\"");
}

#[test]
fn generic_properties_are_accepted_everywhere() {
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        &format!("{SIZE_64M} status = \"okay\"; phandle = <0x77>;"),
        0x4900_0000,
    ))
    .replace(
        "compatible = \"tessera,hypervisor\";",
        "compatible = \"tessera,hypervisor\"; status = \"okay\";",
    );
    assert!(check(&body, &Headers::default()).is_ok());
}

#[test]
fn address_and_size_cells_are_two() {
    // The module's reg as the binding gives it (2 + 2 cells), whatever the
    // partition says: the cell counts are the error, not the board.
    let body = hypervisor(&partition("a", "\"/cpus/cpu@0\"", SIZE_64M, 0x4900_0000))
        .replace("#address-cells = <2>;", "#address-cells = <1>;");
    let errors = errors(&body);
    assert_reports(
        &errors,
        "partition a: #address-cells: malformed: expected <2>: a partition's addresses and sizes are two cells each",
    );
    let body = hypervisor(&partition("a", "\"/cpus/cpu@0\"", SIZE_64M, 0x4900_0000))
        .replace("#size-cells = <2>;", "");
    assert_reports(
        &self::errors(&body),
        "partition a: #size-cells: property missing",
    );
}

#[test]
fn chosen_settings_are_checked_by_name_and_value() {
    let valid = hypervisor(&partition("a", "\"/cpus/cpu@0\"", SIZE_64M, 0x4900_0000));
    let with_chosen = |settings: &str| format!("{valid} chosen {{ {settings} }};");
    let errors = errors(&with_chosen(
        "tessera,log-level = \"debgu\"; tessera,crash-acton = \"reset\"; \
         tessera,config-error = <1>; tessera,whatever = \"x\";",
    ));
    assert_reports(
        &errors,
        "/chosen: tessera,log-level: \"debgu\" is not one of \"off\", \"error\", \"warn\", \"info\", \"debug\", \"trace\"",
    );
    assert_reports(
        &errors,
        "/chosen: unknown property \"tessera,crash-acton\": did you mean \"tessera,crash-action\"?",
    );
    assert_reports(
        &errors,
        "/chosen: tessera,config-error: malformed: expected a string",
    );
    assert_reports(&errors, "/chosen: unknown property \"tessera,whatever\"");
    let fine = with_chosen(
        "tessera,log-level = \"debug\"; tessera,crash-action = \"halt\"; \
         tessera,config-error = \"power-off\"; bootargs = \"anything\";",
    );
    assert!(check(&fine, &Headers::default()).is_ok());
    // Without /hypervisor too: a tree that configures nothing.
    let merged = merged("chosen { tessera,log-level = \"loud\"; };");
    let fdt = Fdt::new(&merged).unwrap();
    let hardware = hardware(&fdt);
    let errors = read(&fdt, &hardware, &Headers::default()).unwrap_err();
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "/chosen: tessera,log-level: \"loud\" is not one of \"off\", \"error\", \"warn\", \"info\", \"debug\", \"trace\""
        ]
    );
}

#[test]
fn a_cpu_list_that_names_no_cpu_is_an_error() {
    let body = hypervisor(&partition("a", "<>", SIZE_64M, 0x4900_0000))
        .replace("cpus = <>;", "cpu-mpidrs = <>;");
    assert_reports(
        &errors(&body),
        "partition a: cpu-mpidrs: names no CPU: the partition would never run",
    );
}

#[test]
fn a_disabled_kernel_module_is_no_kernel_and_named() {
    let body = hypervisor(&partition("a", "\"/cpus/cpu@0\"", SIZE_64M, 0x4900_0000)).replace(
        "compatible = \"multiboot,kernel\", \"multiboot,module\";",
        "compatible = \"multiboot,kernel\", \"multiboot,module\"; status = \"disabled\";",
    );
    assert_reports(
        &errors(&body),
        "partition a: no kernel: its kernel module module@49000000 is disabled",
    );
}

#[test]
fn a_path_that_names_several_nodes_is_an_error_listing_them() {
    let body = hypervisor(&partition("a", "\"/cpus/cpu\"", SIZE_64M, 0x4900_0000));
    assert_reports(
        &errors(&body),
        "partition a: cpus: \"/cpus/cpu\" names more than one node: /cpus/cpu@0, /cpus/cpu@1, \
         /cpus/cpu@2, /cpus/cpu@3: give the unit address",
    );
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        &format!("{SIZE_64M} devices = \"/virtio_mmio\"; direct-map;"),
        0x4900_0000,
    ));
    assert_reports(
        &errors(&body),
        "partition a: devices: /virtio_mmio: names more than one node: /virtio_mmio@a000000, ",
    );
    // One match without a unit address is fine.
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        &format!("{SIZE_64M} devices = \"/pl031\";"),
        0x4900_0000,
    ));
    assert!(check(&body, &Headers::default()).is_ok());
}

/// An arm64 Image header with `text_offset` and `image_size`.
fn arm64_header(text_offset: u64, image_size: u64) -> [u8; image::HEADER_SIZE] {
    let mut header = [0u8; image::HEADER_SIZE];
    header[8..16].copy_from_slice(&text_offset.to_le_bytes());
    header[16..24].copy_from_slice(&image_size.to_le_bytes());
    header[0x38..0x3c].copy_from_slice(b"ARM\x64");
    header
}

#[test]
fn image_header_fields_no_ram_holds_are_errors_naming_them() {
    let body = hypervisor(&partition("a", "\"/cpus/cpu@0\"", SIZE_64M, 0x4900_0000))
        .replace("reg = <", "tessera,file = \"a.bin\"; reg = <");
    for (text_offset, image_size, expected) in [
        (
            0x8_0000,
            0xffff_ffff_ffff_f001,
            "partition a: image_size 0xfffffffffffff001 in the Image header of module@49000000 (a.bin) is more than any RAM",
        ),
        (
            u64::MAX,
            0x20_0000,
            "partition a: text_offset 0xffffffffffffffff in the Image header of module@49000000 (a.bin) is more than any RAM",
        ),
    ] {
        let headers = Headers(HashMap::from([(
            0x4900_0000,
            arm64_header(text_offset, image_size),
        )]));
        let errors = check(&body, &headers).unwrap_err();
        assert_reports(&errors, expected);
    }
    // A memory error of the same partition hides nothing.
    let misplaced = body.replace(
        SIZE_64M,
        "memory-size = <0x0 0x4000000>; memory-base = <0x1 0x0>;",
    );
    let headers = Headers(HashMap::from([(
        0x4900_0000,
        arm64_header(0x8_0000, 0xffff_ffff_ffff_f001),
    )]));
    let errors = check(&misplaced, &headers).unwrap_err();
    assert_reports(&errors, "is not all RAM");
    assert_reports(&errors, "image_size 0xfffffffffffff001 in the Image header");
    // Just below the bound: too large for the partition, said in sizes a
    // person reads.
    let headers = Headers(HashMap::from([(
        0x4900_0000,
        arm64_header(0x8_0000, image::MAX_PLAUSIBLE),
    )]));
    let errors = check(&body, &headers).unwrap_err();
    assert_reports(
        &errors,
        "partition a: memory-size: the images and the guest DTB need 256.0 TiB but the partition has 64 MiB",
    );
}

#[test]
fn a_partition_with_a_misspelt_status_is_an_error_not_left_out() {
    let body = hypervisor(&partition(
        "a",
        "\"/cpus/cpu@0\"",
        &format!("{SIZE_64M} status = \"okey\";"),
        0x4900_0000,
    ));
    assert_reports(
        &errors(&body),
        "partition a: status: \"okey\" is not one of \"okay\", \"ok\", \"disabled\"",
    );
}
