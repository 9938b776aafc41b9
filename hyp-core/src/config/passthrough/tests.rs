//! Passthrough checks on real board trees: each case is an overlay compiled
//! with the real dtc and merged with fdtoverlay into QEMU virt's DTB or the
//! Raspberry Pi 4's, with one defect each. Every error must name both
//! parties: the device and whatever it collides with.

use super::notes;
use crate::config::test_support::{Headers, hardware, merged_into};
use crate::config::{self, PassthroughDevice};
use crate::dt::Fdt;

const QEMU_VIRT: &str = "qemu-virt-gicv3.dtb";
const RPI4: &str = "bcm2711-rpi-4-b-4gb.dtb";

/// A partition on CPU `cpu` with 64 MiB and a kernel; `extra` adds properties.
fn partition(name: &str, cpu: u32, extra: &str) -> String {
    let module = 0x4900_0000 + u64::from(cpu) * 0x10_0000;
    format!(
        "{name} {{ compatible = \"tessera,partition\"; #address-cells = <2>; #size-cells = <2>;
           cpus = \"/cpus/cpu@{cpu}\"; memory-size = <0x0 0x4000000>; {extra}
           module@{module:x} {{ compatible = \"multiboot,kernel\", \"multiboot,module\";
               reg = <0x0 {module:#x} 0x0 0x10000>; }}; }};"
    )
}

fn devices(paths: &[&str]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| format!("\"{p}\"")).collect();
    format!("devices = {};", quoted.join(", "))
}

fn hypervisor(partitions: &[String]) -> String {
    format!(
        "hypervisor {{ compatible = \"tessera,hypervisor\"; {} }};",
        partitions.concat()
    )
}

/// The eight virtio-mmio transports in QEMU virt's first page of them.
fn first_virtio_page() -> Vec<String> {
    (0..8)
        .map(|i| format!("/virtio_mmio@a000{:x}00", i * 2))
        .collect()
}

/// A valid configuration: each device, then every note.
struct Checked {
    devices: Vec<String>,
    notes: Vec<String>,
}

fn describe(partition: &str, device: &PassthroughDevice<'_>) -> String {
    let pages: Vec<String> = device.pages.iter().map(ToString::to_string).collect();
    let spis: Vec<u32> = device.spis().collect();
    let dependencies: Vec<String> = device
        .dependencies
        .iter()
        .map(|d| {
            format!(
                "{} {} {}",
                d.property,
                d.provider.path(),
                if d.carried { "carried" } else { "host" }
            )
        })
        .collect();
    format!(
        "{partition}: {} pages {pages:?} spis {spis:?} dma {:?} deps {dependencies:?}",
        device.path, device.dma
    )
}

fn check(board: &str, body: &str) -> Result<Checked, Vec<String>> {
    let blob = merged_into(board, body);
    let fdt = Fdt::new(&blob).unwrap();
    let hardware = hardware(&fdt);
    match config::read(&fdt, &hardware, &Headers::default()) {
        Ok(plans) => Ok(Checked {
            devices: plans
                .iter()
                .flat_map(|p| p.config.devices.iter().map(|d| describe(p.config.name, d)))
                .collect(),
            notes: plans
                .iter()
                .flat_map(|p| notes(&p.config))
                .map(|n| n.to_string())
                .collect(),
        }),
        Err(errors) => Err(errors.iter().map(ToString::to_string).collect()),
    }
}

fn valid(board: &str, body: &str) -> Checked {
    check(board, body)
        .unwrap_or_else(|errors| panic!("expected a valid configuration: {errors:#?}"))
}

fn errors(board: &str, body: &str) -> Vec<String> {
    match check(board, body) {
        Ok(checked) => panic!(
            "expected errors, got a valid configuration: {:#?}",
            checked.devices
        ),
        Err(errors) => errors,
    }
}

fn assert_reports(errors: &[String], expected: &str) {
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "expected an error containing {expected:?}, got {errors:#?}"
    );
}

/// A device node added at the root of the board's tree.
fn fake(address: u64, extra: &str) -> String {
    format!(
        "fake@{address:x} {{ compatible = \"test,fake\"; reg = <{:#x} {:#x} 0x0 0x1000>; {extra} }};",
        address >> 32,
        address & 0xffff_ffff
    )
}

#[test]
fn the_pl031_is_given_with_its_page_its_spi_and_its_fixed_clock() {
    let body = hypervisor(&[partition("a", 0, &devices(&["/pl031@9010000"]))]);
    let checked = valid(QEMU_VIRT, &body);
    assert_eq!(
        checked.devices,
        [
            "a: /pl031@9010000 pages [\"0x9010000..0x9011000\"] spis [34] dma None \
             deps [\"clocks /apb-pclk carried\"]"
        ]
    );
    assert!(checked.notes.is_empty(), "{:#?}", checked.notes);
}

#[test]
fn a_malformed_devices_property() {
    let body = hypervisor(&[partition("a", 0, "devices = <1>;")]);
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: malformed: expected a list of device node paths",
    );
}

#[test]
fn a_path_that_names_no_node() {
    let body = hypervisor(&[partition("a", 0, &devices(&["/nope@0"]))]);
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /nope@0: no such node in the board's device tree",
    );
}

#[test]
fn a_device_listed_twice() {
    let body = hypervisor(&[partition(
        "a",
        0,
        &devices(&["/pl031@9010000", "/pl031@9010000"]),
    )]);
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /pl031@9010000: listed twice",
    );
}

#[test]
fn a_disabled_device() {
    let body = format!(
        "pl031@9010000 {{ status = \"disabled\"; }}; {}",
        hypervisor(&[partition("a", 0, &devices(&["/pl031@9010000"]))])
    );
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /pl031@9010000: disabled in the board's device tree (status = \"disabled\")",
    );
}

#[test]
fn a_device_without_registers() {
    let body = hypervisor(&[partition("a", 0, &devices(&["/pmu"]))]);
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /pmu: has no `reg`",
    );
}

#[test]
fn a_device_whose_registers_are_not_host_physical() {
    let body = format!(
        "bus {{ #address-cells = <1>; #size-cells = <1>; dev@100 {{ reg = <0x100 0x10>; }}; }}; {}",
        hypervisor(&[partition("a", 0, &devices(&["/bus/dev@100"]))])
    );
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /bus/dev@100: reg: a parent bus has no `ranges`",
    );
}

#[test]
fn a_ppi_cannot_be_passed_through() {
    let body = format!(
        "{} {}",
        fake(0xb00_0000, "interrupts = <1 7 4>;"),
        hypervisor(&[partition("a", 0, &devices(&["/fake@b000000"]))])
    );
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /fake@b000000: interrupt INTID 23 is a PPI",
    );
}

#[test]
fn interrupts_of_another_controller_cannot_be_routed() {
    let body = format!(
        "other: other-intc {{ interrupt-controller; #interrupt-cells = <2>; }};
         {} {}",
        fake(
            0xb00_0000,
            "interrupt-parent = <&other>; interrupts = <5 4>;"
        ),
        hypervisor(&[partition("a", 0, &devices(&["/fake@b000000"]))])
    );
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /fake@b000000: its interrupts go to /other-intc, not to the GIC",
    );
}

#[test]
fn a_page_shared_with_a_device_not_given() {
    let body = hypervisor(&[partition(
        "a",
        0,
        &format!("direct-map; {}", devices(&["/virtio_mmio@a000000"])),
    )]);
    let errors = errors(QEMU_VIRT, &body);
    for other in ["a000200", "a000e00"] {
        assert_reports(
            &errors,
            &format!(
                "partition a: devices: /virtio_mmio@a000000: shares the 4 KiB page \
                 0xa000000..0xa001000 with /virtio_mmio@{other}, which is not given to this partition"
            ),
        );
    }
}

#[test]
fn a_whole_page_of_virtio_transports_goes_to_a_direct_map_partition_with_a_dma_note() {
    let paths = first_virtio_page();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let body = hypervisor(&[partition(
        "a",
        0,
        &format!("direct-map; {}", devices(&paths)),
    )]);
    let checked = valid(QEMU_VIRT, &body);
    assert_eq!(checked.devices.len(), 8);
    assert_eq!(
        checked.devices[0],
        "a: /virtio_mmio@a000000 pages [\"0xa000000..0xa001000\"] spis [48] \
         dma Some(Compatible(\"virtio,mmio\")) deps []"
    );
    assert_eq!(
        checked.notes[0],
        "partition a: /virtio_mmio@a000000 can do DMA, which is not confined to the partition: \
         these boards have no IOMMU, so it can reach all memory"
    );
}

#[test]
fn a_dma_capable_device_needs_direct_map() {
    let paths = first_virtio_page();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let body = hypervisor(&[partition("a", 0, &devices(&paths))]);
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /virtio_mmio@a000000: can do DMA (compatible \"virtio,mmio\"), \
         so it needs a direct-map partition",
    );
}

#[test]
fn a_page_shared_by_two_partitions_names_both_devices_and_both_partitions() {
    let mut for_a = first_virtio_page();
    let for_b = for_a.remove(1);
    let for_a: Vec<&str> = for_a.iter().map(String::as_str).collect();
    let body = hypervisor(&[
        partition("a", 0, &format!("direct-map; {}", devices(&for_a))),
        partition("b", 1, &format!("direct-map; {}", devices(&[&for_b]))),
    ]);
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition b: devices: /virtio_mmio@a000200: shares the 4 KiB page 0xa000000..0xa001000 \
         with /virtio_mmio@a000000, given to partition a",
    );
}

#[test]
fn the_same_device_in_two_partitions() {
    let body = hypervisor(&[
        partition("a", 0, &devices(&["/pl031@9010000"])),
        partition("b", 1, &devices(&["/pl031@9010000"])),
    ]);
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition b: devices: /pl031@9010000: is also given to partition a",
    );
}

#[test]
fn an_spi_given_to_two_partitions_names_both_devices() {
    let body = format!(
        "{} {}",
        fake(0xb00_0000, "interrupts = <0 2 4>;"),
        hypervisor(&[
            partition("a", 0, &devices(&["/pl031@9010000"])),
            partition("b", 1, &devices(&["/fake@b000000"])),
        ])
    );
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition b: devices: /fake@b000000: INTID 34 (SPI 2) is also the interrupt of \
         /pl031@9010000, given to partition a",
    );
}

#[test]
fn tessera_s_console_and_gic_cannot_be_given() {
    let body = hypervisor(&[partition(
        "a",
        0,
        &devices(&["/pl011@9000000", "/intc@8000000"]),
    )]);
    let errors = errors(QEMU_VIRT, &body);
    assert_reports(
        &errors,
        "partition a: devices: /pl011@9000000: is Tessera's console UART",
    );
    assert_reports(
        &errors,
        "partition a: devices: /pl011@9000000: INTID 33 (SPI 1) is also the interrupt of \
         /pl011@9000000, Tessera's console UART",
    );
    assert_reports(
        &errors,
        "partition a: devices: /intc@8000000: is Tessera's interrupt controller (GIC)",
    );
}

#[test]
fn the_gic_s_its_and_msi_frames_are_tessera_s_too() {
    let body = hypervisor(&[partition("a", 0, &devices(&["/intc@8000000/its@8080000"]))]);
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /intc@8000000/its@8080000: is part of /intc@8000000, \
         Tessera's interrupt controller (GIC)",
    );
    let body = hypervisor(&[partition("a", 0, &devices(&["/intc@8000000/v2m@8020000"]))]);
    assert_reports(
        &errors("qemu-virt-gicv2.dtb", &body),
        "partition a: devices: /intc@8000000/v2m@8020000: is part of /intc@8000000, \
         Tessera's interrupt controller (GIC)",
    );
}

#[test]
fn a_page_shared_with_tessera_s_console() {
    let body = format!(
        "{} {}",
        "fake@9000800 { reg = <0x0 0x9000800 0x0 0x100>; };",
        hypervisor(&[partition("a", 0, &devices(&["/fake@9000800"]))])
    );
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /fake@9000800: shares the 4 KiB page 0x9000000..0x9001000 with \
         /pl011@9000000, Tessera's console UART",
    );
}

#[test]
fn the_spi_of_the_guest_s_emulated_uart() {
    let body = format!(
        "{} {}",
        fake(0xb00_0000, "interrupts = <0 1 4>;"),
        hypervisor(&[partition("a", 0, &devices(&["/fake@b000000"]))])
    );
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /fake@b000000: INTID 33 (SPI 1) is the interrupt of the guest's emulated PL011",
    );
}

#[test]
fn a_device_page_in_a_partition_s_ram() {
    let body = format!(
        "{} {}",
        fake(0x5000_0000, ""),
        hypervisor(&[partition(
            "a",
            0,
            &format!(
                "memory-base = <0x0 0x50000000>; {}",
                devices(&["/fake@50000000"])
            ),
        )])
    );
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /fake@50000000: page 0x50000000..0x50001000 overlaps \
         partition a's memory at 0x50000000..0x54000000",
    );
}

#[test]
fn a_device_page_where_the_guest_has_its_ram() {
    let body = hypervisor(&[partition(
        "a",
        0,
        &format!(
            "guest-memory-base = <0x0 0x9010000>; {}",
            devices(&["/pl031@9010000"])
        ),
    )]);
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /pl031@9010000: page 0x9010000..0x9011000 appears at the same \
         guest address, where the guest has its RAM at 0x9010000..0xd010000",
    );
}

#[test]
fn a_device_page_where_the_guest_has_its_emulated_devices() {
    let body = format!(
        "{} {}",
        fake(0x8ff_0000, ""),
        hypervisor(&[partition("a", 0, &devices(&["/fake@8ff0000"]))])
    );
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /fake@8ff0000: page 0x8ff0000..0x8ff1000 appears at the same \
         guest address, where the guest has its emulated GIC and PL011 at 0x8000000..0x9001000",
    );
}

#[test]
fn a_device_page_beyond_the_guest_address_space() {
    let body = format!(
        "{} {}",
        fake(0x80_0000_0000, ""),
        hypervisor(&[partition("a", 0, &devices(&["/fake@8000000000"]))])
    );
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition a: devices: /fake@8000000000: page 0x8000000000..0x8000001000 lies beyond \
         the 39-bit guest physical address space",
    );
}

#[test]
fn console_input_goes_to_one_partition_only() {
    let body = hypervisor(&[
        partition("a", 0, "console-input;"),
        partition("b", 1, "console-input;"),
    ]);
    assert_reports(
        &errors(QEMU_VIRT, &body),
        "partition b: console-input: partition a has it already: at most one partition may",
    );
    let body = hypervisor(&[partition("a", 0, "console-input;"), partition("b", 1, "")]);
    valid(QEMU_VIRT, &body);
}

#[test]
fn raspberry_pi_4_uart0_shares_its_page_with_uart2() {
    let body = hypervisor(&[partition("a", 0, &devices(&["/soc/serial@7e201000"]))]);
    let errors = errors(RPI4, &body);
    for other in ["7e201400", "7e201a00"] {
        assert_reports(
            &errors,
            &format!(
                "partition a: devices: /soc/serial@7e201000: shares the 4 KiB page \
                 0xfe201000..0xfe202000 with /soc/serial@{other}, which is not given to this partition"
            ),
        );
    }
}

/// The Raspberry Pi 4's PL011 UARTs, uart2-5 enabled by the overlay.
fn rpi4_uarts() -> (String, Vec<&'static str>) {
    let uarts = [
        "serial@7e201000",
        "serial@7e201400",
        "serial@7e201600",
        "serial@7e201800",
        "serial@7e201a00",
    ];
    let enable: String = uarts
        .iter()
        .skip(1)
        .map(|u| format!("{u} {{ status = \"okay\"; }}; "))
        .collect();
    let paths = [
        "/soc/serial@7e201000",
        "/soc/serial@7e201400",
        "/soc/serial@7e201600",
        "/soc/serial@7e201800",
        "/soc/serial@7e201a00",
    ];
    (format!("soc {{ {enable} }};"), paths.to_vec())
}

#[test]
fn raspberry_pi_4_uarts_keep_their_clocks_and_pins_with_the_host() {
    let (enable, paths) = rpi4_uarts();
    let body = format!(
        "{enable} {}",
        hypervisor(&[partition("a", 0, &devices(&paths))])
    );
    let checked = valid(RPI4, &body);
    assert!(
        checked.devices[0].contains(
            "/soc/serial@7e201000 pages [\"0xfe201000..0xfe202000\"] spis [153] dma None"
        ),
        "{:#?}",
        checked.devices
    );
    for note in [
        "partition a: /soc/serial@7e201000: clocks: /soc/cprman@7e101000 stays with the host: \
         firmware must leave it set up",
        "partition a: /soc/serial@7e201000: pinctrl-0: /soc/gpio@7e200000/uart0-ctsrts-gpio30 \
         stays with the host",
        "partition a: /soc/serial@7e201000/bluetooth: shutdown-gpios:",
    ] {
        assert!(
            checked.notes.iter().any(|n| n.contains(note)),
            "expected a note containing {note:?}, got {:#?}",
            checked.notes
        );
    }
    assert_eq!(
        checked
            .notes
            .iter()
            .filter(|n| n.contains("serial@7e201000: clocks"))
            .count(),
        1,
        "one note per provider, though cprman is named twice: {:#?}",
        checked.notes
    );
}

#[test]
fn raspberry_pi_4_aux_spi_shares_the_console_s_page_and_spi() {
    let body = format!(
        "soc {{ spi@7e215080 {{ status = \"okay\"; }}; }}; {}",
        hypervisor(&[partition("a", 0, &devices(&["/soc/spi@7e215080"]))])
    );
    let errors = errors(RPI4, &body);
    assert_reports(
        &errors,
        "partition a: devices: /soc/spi@7e215080: shares the 4 KiB page 0xfe215000..0xfe216000 \
         with /soc/serial@7e215040, Tessera's console UART",
    );
    assert_reports(
        &errors,
        "partition a: devices: /soc/spi@7e215080: INTID 125 (SPI 93) is also the interrupt of \
         /soc/serial@7e215040, Tessera's console UART",
    );
}

#[test]
fn a_provider_given_to_the_same_partition_is_carried_and_needs_no_note() {
    let nodes = "clk: clock-controller@b000000 { compatible = \"test,clocks\";
                     reg = <0x0 0xb000000 0x0 0x1000>; #clock-cells = <1>; };
                 consumer@b001000 { compatible = \"test,consumer\";
                     reg = <0x0 0xb001000 0x0 0x1000>; clocks = <&clk 7>; };";
    let body = format!(
        "{nodes} {}",
        hypervisor(&[partition(
            "a",
            0,
            &devices(&["/consumer@b001000", "/clock-controller@b000000"])
        )])
    );
    let checked = valid(QEMU_VIRT, &body);
    assert!(
        checked.devices[0].ends_with("deps [\"clocks /clock-controller@b000000 carried\"]"),
        "{:#?}",
        checked.devices
    );
    assert!(checked.notes.is_empty(), "{:#?}", checked.notes);

    // Given alone, the consumer's clock controller stays with the host.
    let body = format!(
        "{nodes} {}",
        hypervisor(&[partition("a", 0, &devices(&["/consumer@b001000"]))])
    );
    let checked = valid(QEMU_VIRT, &body);
    assert_eq!(
        checked.notes,
        [
            "partition a: /consumer@b001000: clocks: /clock-controller@b000000 stays with the \
             host: firmware must leave it set up"
        ]
    );
}

#[test]
fn passthrough_spis_and_pages_are_what_the_vgic_and_stage_2_get() {
    let mut paths = first_virtio_page();
    paths.truncate(8);
    let mut listed: Vec<&str> = paths.iter().map(String::as_str).collect();
    listed.push("/pl031@9010000");
    let body = hypervisor(&[partition(
        "a",
        0,
        &format!("direct-map; {}", devices(&listed)),
    )]);
    let blob = merged_into(QEMU_VIRT, &body);
    let fdt = Fdt::new(&blob).unwrap();
    let hardware = hardware(&fdt);
    let plans = config::read(&fdt, &hardware, &Headers::default()).unwrap();
    let config = &plans[0].config;
    let spis: Vec<(u32, bool)> = config
        .passthrough_spis()
        .map(|spi| (spi.intid, spi.is_edge_triggered()))
        .collect();
    let mut expected: Vec<(u32, bool)> = (48..56).map(|intid| (intid, true)).collect();
    expected.push((34, false));
    assert_eq!(
        spis, expected,
        "virtio-mmio SPIs 16-23 are edge-triggered, the PL031's SPI 2 is level-sensitive"
    );
    let pages: Vec<String> = config
        .passthrough_pages()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        pages,
        ["0x9010000..0x9011000", "0xa000000..0xa001000"],
        "sorted, and the eight transports' page once"
    );
}

#[test]
fn a_name_the_guest_tree_cannot_have() {
    let long = "a-property-name-of-32-characters";
    assert_eq!(long.len(), 32);
    let body = format!(
        "{} {}",
        fake(0xb00_0000, &format!("{long} = <1>;")),
        hypervisor(&[partition("a", 0, &devices(&["/fake@b000000"]))])
    );
    assert_reports(
        &errors(QEMU_VIRT, &body),
        &format!(
            "partition a: devices: /fake@b000000: /fake@b000000: the name \"{long}\" cannot be \
             copied into the guest's device tree"
        ),
    );
}

#[test]
fn a_disabled_ramdisk_is_no_ramdisk_and_said_so() {
    let ramdisk = "module@4c000000 { compatible = \"multiboot,ramdisk\", \"multiboot,module\";
        reg = <0x0 0x4c000000 0x0 0x1000>; status = \"disabled\"; };";
    let checked = valid(QEMU_VIRT, &hypervisor(&[partition("a", 0, ramdisk)]));
    assert_eq!(
        checked.notes,
        [
            "partition a: module@4c000000, a ramdisk, is disabled: the partition boots without a \
          ramdisk"
        ]
    );
}
