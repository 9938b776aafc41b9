//! Passthrough devices in the guest's device tree: each device's node (and
//! its subnodes) copied from the board's tree, so the guest's own drivers
//! find it as on the bare board.
//!
//! The guest reaches a device at its host address (IPA = PA), so addresses
//! are kept as the board's tree gives them: the buses above the device are
//! copied too (their address cells and `ranges`, nothing else), and `reg`
//! stays as it is. What does change:
//!
//! - interrupts: the device's SPIs, as validated
//!   ([`crate::config::passthrough::Spi`]), rewritten as `interrupts` of
//!   the guest's GIC ([`GIC_PHANDLE`]); a subnode's interrupts are left out
//!   (`check-config` notes it);
//! - phandles: renumbered from [`FIRST_PHANDLE`], apart from the guest
//!   tree's own;
//! - dependencies (`clocks`, `pinctrl-0`, `resets`, ...): a property is
//!   kept, with its phandles renumbered, only when the guest's tree has
//!   every provider it names: a fixed clock (copied, see [`write_clock`])
//!   or a node of a device given to the same partition. Otherwise the
//!   provider stays with the host, the property (and its `*-names`) is left
//!   out, and `check-config` says so.
//!
//! Everything here was checked by [`crate::config::passthrough`] before a
//! partition was planned; what could still not be read is left out rather
//! than copied wrong.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use vm_fdt::{Error, FdtWriter};

use crate::config::PassthroughDevice;
use crate::config::guest_map::GIC_PHANDLE;
use crate::config::passthrough::{DependencyProperty, is_within, providers};
use crate::dt::Node;
use crate::dt::address::{address_cells, size_cells};
use crate::hw::gic::SPI_BASE;

/// First phandle given to passthrough nodes: above the guest tree's own
/// (the PL011's clock and the GIC).
pub const FIRST_PHANDLE: u32 = 0x100;
/// The guest root's `#address-cells` and `#size-cells`.
const ROOT_ADDRESS_CELLS: u32 = 2;
const ROOT_SIZE_CELLS: u32 = 2;
/// `GIC_SPI` in a GIC interrupt specifier (`arm,gic.yaml`).
const GIC_SPI: u32 = 0;

/// Properties of a bus above a device that the guest's copy of the bus
/// keeps: how addresses (and DMA addresses) translate, nothing else.
const BUS_PROPERTIES: &[&str] = &[
    "compatible",
    "#address-cells",
    "#size-cells",
    "ranges",
    "dma-ranges",
    "dma-coherent",
];
/// Properties whose values hold parent-bus addresses, rewritten when the
/// guest's root uses other address cells than the board's.
const RANGES_PROPERTIES: &[&str] = &["ranges", "dma-ranges"];
/// Interrupt properties, replaced by the validated SPIs on the device node
/// and left out on subnodes.
const INTERRUPT_PROPERTIES: &[&str] = &["interrupts", "interrupts-extended", "interrupt-parent"];
/// Properties of a fixed clock the guest's copy leaves out: its output
/// names (Linux names a clock by them, and they could clash with the guest
/// tree's own clock) and a `reg` it should not have.
const CLOCK_DROPPED: &[&str] = &["clock-output-names", "reg"];
const PHANDLE_PROPERTIES: &[&str] = &["phandle", "linux,phandle"];

/// Writes the nodes of `devices` (one partition's) under the guest's root,
/// which already has nodes named `taken`.
pub fn write(
    fdt: &mut FdtWriter,
    devices: &[PassthroughDevice<'_>],
    taken: &[&str],
) -> Result<(), Error> {
    let Some(first) = devices.first() else {
        return Ok(());
    };
    let mut copy = Copy {
        devices,
        phandles: Vec::new(),
        clocks: Vec::new(),
        names: taken.iter().map(|&n| String::from(n)).collect(),
    };
    copy.number_phandles();
    let host_root = first.node.fdt().root();
    copy.write_children(fdt, &host_root)?;
    for clock in copy.clocks.clone() {
        copy.write_clock(fdt, &clock)?;
    }
    Ok(())
}

/// One partition's copy in progress.
struct Copy<'d, 'a> {
    devices: &'d [PassthroughDevice<'a>],
    /// Host phandle to guest phandle, for every node the guest's tree has.
    phandles: Vec<(u32, u32)>,
    /// Fixed clocks outside the devices that kept properties name.
    clocks: Vec<Node<'a>>,
    /// Names of the guest root's children so far.
    names: Vec<String>,
}

impl<'a> Copy<'_, 'a> {
    /// Gives a guest phandle to every node with a phandle inside the
    /// devices, then to every fixed clock a kept property names.
    fn number_phandles(&mut self) {
        let mut next = FIRST_PHANDLE;
        let mut add = |phandles: &mut Vec<(u32, u32)>, host: u32| {
            if !phandles.iter().any(|&(h, _)| h == host) {
                phandles.push((host, next));
                next += 1;
            }
        };
        for device in self.devices {
            each_node(&device.node, &mut |node| {
                if let Some(host) = own_phandle(node) {
                    add(&mut self.phandles, host);
                }
            });
        }
        for device in self.devices {
            for dependency in &device.dependencies {
                let inside = self
                    .devices
                    .iter()
                    .any(|d| is_within(&dependency.provider, &d.node));
                if inside || !self.kept(&dependency.consumer, dependency.property) {
                    continue;
                }
                add(&mut self.phandles, dependency.phandle);
                if !self.clocks.contains(&dependency.provider) {
                    self.clocks.push(dependency.provider);
                }
            }
        }
    }

    /// Whether `consumer`'s dependency property `property` is kept: every
    /// provider it names is carried into the guest's tree.
    fn kept(&self, consumer: &Node<'a>, property: &str) -> bool {
        self.devices
            .iter()
            .flat_map(|d| d.dependencies.iter())
            .filter(|d| d.consumer == *consumer && d.property == property)
            .all(|d| d.carried)
    }

    fn guest_phandle(&self, host: u32) -> Option<u32> {
        self.phandles
            .iter()
            .find(|&&(h, _)| h == host)
            .map(|&(_, guest)| guest)
    }

    /// A name for a new child of the guest's root, apart from those it has:
    /// the host name, or with `-1`, `-2`, ... after its base name.
    fn root_name(&mut self, host_name: &str) -> String {
        let (base, unit) = match host_name.split_once('@') {
            Some((base, unit)) => (base, format!("@{unit}")),
            None => (host_name, String::new()),
        };
        let mut name = String::from(host_name);
        let mut suffix = 0u32;
        while self.names.contains(&name) {
            suffix += 1;
            name = format!("{base}-{suffix}{unit}");
        }
        self.names.push(name.clone());
        name
    }

    /// The children of host node `parent` that are devices, or buses above
    /// one, in the board tree's order.
    fn write_children(&mut self, fdt: &mut FdtWriter, parent: &Node<'a>) -> Result<(), Error> {
        for child in parent.children() {
            if let Some(device) = self.devices.iter().find(|d| d.node == child) {
                self.write_device(fdt, device, &child)?;
            } else if self
                .devices
                .iter()
                .any(|d| d.node.depth() > child.depth() && is_within(&d.node, &child))
            {
                self.write_bus(fdt, &child)?;
            }
        }
        Ok(())
    }

    fn begin(
        &mut self,
        fdt: &mut FdtWriter,
        node: &Node<'a>,
    ) -> Result<vm_fdt::FdtWriterNode, Error> {
        if node.depth() == 1 {
            let name = self.root_name(node.name());
            fdt.begin_node(&name)
        } else {
            fdt.begin_node(node.name())
        }
    }

    /// A bus above a device: its address translation only.
    fn write_bus(&mut self, fdt: &mut FdtWriter, bus: &Node<'a>) -> Result<(), Error> {
        let handle = self.begin(fdt, bus)?;
        for property in bus.properties() {
            if !BUS_PROPERTIES.contains(&property.name) {
                continue;
            }
            if RANGES_PROPERTIES.contains(&property.name) && bus.depth() == 1 {
                if let Some(value) = root_ranges(bus, property.value) {
                    fdt.property(property.name, &value)?;
                }
                continue;
            }
            fdt.property(property.name, property.value)?;
        }
        self.write_children(fdt, bus)?;
        fdt.end_node(handle)
    }

    /// A device node and its subnodes.
    fn write_device(
        &mut self,
        fdt: &mut FdtWriter,
        device: &PassthroughDevice<'a>,
        node: &Node<'a>,
    ) -> Result<(), Error> {
        let is_device = *node == device.node;
        // Interrupts are written only on the device node, from its SPIs.
        let writes_interrupts = is_device && !device.interrupts.is_empty();
        let handle = self.begin(fdt, node)?;
        let dropped = self.dropped(node);
        for property in node.properties() {
            let name = property.name;
            if dropped.contains(&name) || INTERRUPT_PROPERTIES.contains(&name) {
                continue;
            }
            if name == "interrupt-names" && !writes_interrupts {
                continue;
            }
            if PHANDLE_PROPERTIES.contains(&name) {
                if let Some(guest) = property.as_u32().and_then(|h| self.guest_phandle(h)) {
                    fdt.property_u32(name, guest)?;
                }
                continue;
            }
            if name == "reg" && is_device && node.depth() == 1 && !root_cells_match(node) {
                fdt.property_array_u32("reg", &reg_cells(device))?;
                continue;
            }
            if let Some(kind) = DependencyProperty::of(name) {
                if let Some(value) = self.renumber(node, &property, kind) {
                    fdt.property(name, &value)?;
                }
                continue;
            }
            fdt.property(name, property.value)?;
        }
        if writes_interrupts {
            fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;
            let specifiers: Vec<u32> = device
                .interrupts
                .iter()
                .flat_map(|spi| [GIC_SPI, spi.intid.saturating_sub(SPI_BASE), spi.flags])
                .collect();
            fdt.property_array_u32("interrupts", &specifiers)?;
        }
        for child in node.children() {
            self.write_device(fdt, device, &child)?;
        }
        fdt.end_node(handle)
    }

    /// The dependency properties of `node` that are left out, with the
    /// `*-names` that go with them.
    fn dropped(&self, node: &Node<'a>) -> Vec<&'a str> {
        let mut dropped = Vec::new();
        for property in node.properties() {
            let Some(kind) = DependencyProperty::of(property.name) else {
                continue;
            };
            if self.kept(node, property.name) {
                continue;
            }
            dropped.push(property.name);
            if let Some(names) = kind.names {
                dropped.push(names);
            }
        }
        dropped
    }

    /// A kept dependency property with its phandles renumbered; `None` when
    /// it cannot be read or names a provider the guest does not have.
    fn renumber(
        &self,
        node: &Node<'a>,
        property: &crate::dt::Property<'a>,
        kind: &DependencyProperty,
    ) -> Option<Vec<u8>> {
        // Checked readable (every provider found, every argument present).
        providers(node, property, kind)?;
        let mut cells = property.cells()?;
        let mut value = Vec::with_capacity(property.value.len());
        while let Some(phandle) = cells.next() {
            if phandle == 0 {
                value.extend_from_slice(&0u32.to_be_bytes());
                continue;
            }
            let provider = node.fdt().find_phandle(phandle)?;
            value.extend_from_slice(&self.guest_phandle(phandle)?.to_be_bytes());
            let arguments = kind.cells.map_or(0, |c| {
                provider.property(c).and_then(|p| p.as_u32()).unwrap_or(0)
            });
            for _ in 0..arguments {
                value.extend_from_slice(&cells.next()?.to_be_bytes());
            }
        }
        Some(value)
    }

    /// A copy of a fixed clock a device needs, at the guest's root.
    fn write_clock(&mut self, fdt: &mut FdtWriter, clock: &Node<'a>) -> Result<(), Error> {
        let name = self.root_name(clock.base_name());
        let handle = fdt.begin_node(&name)?;
        for property in clock.properties() {
            if CLOCK_DROPPED.contains(&property.name) {
                continue;
            }
            if PHANDLE_PROPERTIES.contains(&property.name) {
                if let Some(guest) = property.as_u32().and_then(|h| self.guest_phandle(h)) {
                    fdt.property_u32(property.name, guest)?;
                }
                continue;
            }
            fdt.property(property.name, property.value)?;
        }
        fdt.end_node(handle)
    }
}

/// `node`'s own phandle, if it has one.
fn own_phandle(node: &Node<'_>) -> Option<u32> {
    PHANDLE_PROPERTIES
        .iter()
        .find_map(|p| node.property(p).and_then(|p| p.as_u32()))
}

/// Calls `f` on `node` and every node below it.
fn each_node<'a>(node: &Node<'a>, f: &mut impl FnMut(&Node<'a>)) {
    f(node);
    for child in node.children() {
        each_node(&child, f);
    }
}

/// Whether the board's root uses the guest root's address and size cells,
/// so a root-level `reg` can be copied as it is.
fn root_cells_match(node: &Node<'_>) -> bool {
    let root = node.fdt().root();
    address_cells(&root) == ROOT_ADDRESS_CELLS && size_cells(&root) == ROOT_SIZE_CELLS
}

/// The device's registers (host physical, translated) as 2 + 2 cells.
fn reg_cells(device: &PassthroughDevice<'_>) -> Vec<u32> {
    device
        .registers
        .iter()
        .flat_map(|r| {
            let (start, size) = (r.start().0, r.size());
            split(start).into_iter().chain(split(size))
        })
        .collect()
}

fn split(value: u64) -> [u32; 2] {
    #[allow(clippy::cast_possible_truncation, reason = "splitting into cells")]
    [(value >> 32) as u32, value as u32]
}

/// A root-level bus's `ranges` (or `dma-ranges`) with its parent addresses
/// in the guest root's address cells; `None` when malformed (validation
/// read the translation through it, so it is not).
fn root_ranges(bus: &Node<'_>, value: &[u8]) -> Option<Vec<u8>> {
    let root = bus.fdt().root();
    let parent_cells = address_cells(&root);
    if parent_cells == ROOT_ADDRESS_CELLS || value.is_empty() {
        return Some(value.to_vec());
    }
    let child_cells = address_cells(bus) as usize;
    let length_cells = size_cells(bus) as usize;
    let entry = (child_cells + parent_cells as usize + length_cells) * 4;
    if entry == 0 || !value.len().is_multiple_of(entry) {
        return None;
    }
    let mut out = Vec::new();
    for chunk in value.chunks_exact(entry) {
        let (child, rest) = chunk.split_at(child_cells * 4);
        let (parent, length) = rest.split_at(parent_cells as usize * 4);
        let mut address = 0u64;
        for cell in parent.chunks_exact(4) {
            address = (address << 32) | u64::from(u32::from_be_bytes(cell.try_into().ok()?));
        }
        out.extend_from_slice(child);
        for cell in split(address) {
            out.extend_from_slice(&cell.to_be_bytes());
        }
        out.extend_from_slice(length);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::*;
    use crate::config::test_support::{Headers, corrupt, hardware, merged_into};
    use crate::config::{self, PartitionPlan};
    use crate::dt::{Fdt, address};
    use crate::guest::device_tree::{self, BootInfo};
    use crate::guest::stage2;
    use crate::hw::gic::GicVersion;
    use crate::mm::address::{PhysAddr, PhysRange};
    use crate::mm::page_table::{Attributes, PageTable, Stage, Table, TablePool};

    const QEMU_VIRT: &str = "qemu-virt-gicv3.dtb";
    const RPI4: &str = "bcm2711-rpi-4-b-4gb.dtb";

    /// A partition `a` on the first CPU with `extra` properties, and the
    /// board's tree with anything `nodes` adds.
    fn body(nodes: &str, extra: &str) -> String {
        format!(
            "{nodes} hypervisor {{ compatible = \"tessera,hypervisor\";
               a {{ compatible = \"tessera,partition\"; #address-cells = <2>; #size-cells = <2>;
                  cpus = \"/cpus/cpu@0\"; memory-size = <0x0 0x4000000>; {extra}
                  module@49000000 {{ compatible = \"multiboot,kernel\", \"multiboot,module\";
                      reg = <0x0 0x49000000 0x0 0x10000>; }}; }}; }};"
        )
    }

    /// Partition `a`'s guest DTB for the board `board` with `body` applied.
    fn guest_tree(board: &str, body: &str) -> Vec<u8> {
        with_plan(board, body, |plan| {
            device_tree::write(
                plan,
                BootInfo {
                    boot_count: 1,
                    gic: GicVersion::V3,
                    seeds: None,
                },
            )
            .expect("the guest DTB is written")
        })
    }

    fn with_plan<R>(board: &str, body: &str, f: impl FnOnce(&PartitionPlan<'_>) -> R) -> R {
        let blob = merged_into(board, body);
        let fdt = Fdt::new(&blob).unwrap();
        let hardware = hardware(&fdt);
        let plans = config::read(&fdt, &hardware, &Headers::default())
            .unwrap_or_else(|e| panic!("a valid configuration: {e:#?}"));
        f(&plans[0])
    }

    fn cells(guest: &Fdt<'_>, path: &str, property: &str) -> Option<Vec<u32>> {
        let node = guest.find_node(path)?;
        Some(node.property(property)?.cells()?.collect())
    }

    fn string(guest: &Fdt<'_>, path: &str, property: &str) -> Option<String> {
        let node = guest.find_node(path)?;
        Some(node.property(property)?.as_str()?.to_string())
    }

    /// Every phandle of the tree appears once.
    fn assert_phandles_unique(guest: &Fdt<'_>) {
        let mut seen: Vec<u32> = Vec::new();
        for node in guest.nodes() {
            if let Some(phandle) = node.property("phandle").and_then(|p| p.as_u32()) {
                assert!(
                    !seen.contains(&phandle),
                    "phandle {phandle:#x} appears twice (second at {})",
                    node.path()
                );
                seen.push(phandle);
            }
        }
    }

    #[test]
    fn the_pl031_appears_with_its_registers_its_spi_on_the_guest_gic_and_its_clock() {
        let blob = guest_tree(QEMU_VIRT, &body("", "devices = \"/pl031@9010000\";"));
        let guest = Fdt::new(&blob).unwrap();
        let rtc = "/pl031@9010000";
        assert_eq!(
            cells(&guest, rtc, "reg"),
            Some(vec![0, 0x901_0000, 0, 0x1000]),
            "reg as the board's tree has it: IPA = PA"
        );
        assert_eq!(
            cells(&guest, rtc, "interrupts"),
            Some(vec![0, 2, 4]),
            "SPI 2, level high"
        );
        assert_eq!(
            cells(&guest, rtc, "interrupt-parent"),
            Some(vec![GIC_PHANDLE]),
            "the guest's GIC"
        );
        assert_eq!(
            string(&guest, rtc, "clock-names").as_deref(),
            Some("apb_pclk")
        );
        let clocks = cells(&guest, rtc, "clocks").expect("the fixed clock is carried");
        assert_eq!(clocks, [FIRST_PHANDLE]);
        let clock = guest.find_phandle(FIRST_PHANDLE).expect("the clock's copy");
        assert_eq!(
            clock.path().to_string(),
            "/apb-pclk-1",
            "named apart from the guest's own apb-pclk"
        );
        assert!(clock.is_compatible(&["fixed-clock"]));
        assert_eq!(
            clock.property("clock-frequency").and_then(|p| p.as_u32()),
            Some(24_000_000)
        );
        assert!(
            !clock.has_property("clock-output-names"),
            "output names left out: the guest's own clock is clk24mhz too"
        );
        assert_phandles_unique(&guest);
    }

    #[test]
    fn a_partition_without_devices_gets_no_extra_nodes() {
        let blob = guest_tree(QEMU_VIRT, &body("", ""));
        let guest = Fdt::new(&blob).unwrap();
        let names: Vec<String> = guest
            .root()
            .children()
            .map(|c| c.name().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "intc@8000000",
                "psci",
                "cpus",
                "memory@40000000",
                "timer",
                "apb-pclk",
                "pl011@9000000",
                "chosen"
            ]
        );
    }

    #[test]
    fn eight_virtio_transports_of_one_page_are_each_copied_and_mapped_once() {
        let paths: Vec<String> = (0..8)
            .map(|i| format!("\"/virtio_mmio@a000{:x}00\"", i * 2))
            .collect();
        let body = body("", &format!("direct-map; devices = {};", paths.join(", ")));
        let blob = guest_tree(QEMU_VIRT, &body);
        let guest = Fdt::new(&blob).unwrap();
        for i in 0..8u32 {
            let path = format!("/virtio_mmio@a000{:x}00", i * 2);
            assert_eq!(
                cells(&guest, &path, "interrupts"),
                Some(vec![0, 16 + i, 1]),
                "{path}: its SPI, edge-triggered as on the board"
            );
            assert!(
                guest.find_node(&path).unwrap().has_property("dma-coherent"),
                "{path}: dma-coherent kept"
            );
        }
        let leaves = with_plan(QEMU_VIRT, &body, stage2_leaves);
        let devices: Vec<_> = leaves
            .iter()
            .filter(|(_, _, a)| *a == Attributes::DEVICE_RW)
            .collect();
        assert_eq!(
            devices,
            [&(
                0xa00_0000,
                PhysRange::new(PhysAddr(0xa00_0000), 0x1000).unwrap(),
                Attributes::DEVICE_RW
            )],
            "one page, at IPA = PA, device memory"
        );
    }

    /// Every leaf of `plan`'s stage 2: (IPA, host range, attributes).
    fn stage2_leaves(plan: &PartitionPlan<'_>) -> Vec<(u64, PhysRange, Attributes)> {
        let count = 4 + stage2::passthrough_tables(plan);
        let mut tables = vec![Table::EMPTY; count];
        let mut pool = TablePool::new(&mut tables, PhysAddr(0x7000_0000));
        let mut table = PageTable::new(&mut pool, Stage::Stage2, 39).unwrap();
        stage2::map_partition(&mut table, plan, None).expect("the tables suffice");
        let mut leaves = Vec::new();
        table.for_each_leaf(|ipa, output, size, attributes| {
            leaves.push((ipa, PhysRange::new(output, size).unwrap(), attributes));
        });
        leaves
    }

    #[test]
    fn stage2_maps_the_pl031_page_at_its_host_address_as_device_memory() {
        let body = body("", "devices = \"/pl031@9010000\";");
        let leaves = with_plan(QEMU_VIRT, &body, stage2_leaves);
        let rtc = leaves
            .iter()
            .find(|(ipa, _, _)| *ipa == 0x901_0000)
            .expect("the PL031 page is mapped");
        assert_eq!(
            (rtc.1, rtc.2),
            (
                PhysRange::new(PhysAddr(0x901_0000), 0x1000).unwrap(),
                Attributes::DEVICE_RW
            ),
            "one page, IPA = PA, Device-nGnRE read-write (execute-never)"
        );
        assert_eq!(
            leaves
                .iter()
                .filter(|(_, _, a)| *a == Attributes::DEVICE_RW)
                .count(),
            1,
            "nothing else is device memory: {leaves:#x?}"
        );
    }

    /// The Raspberry Pi 4's PL011 UARTs 0 and 2-5 (one page), 2-5 enabled.
    fn rpi4_uarts() -> (String, String) {
        let uarts = ["7e201000", "7e201400", "7e201600", "7e201800", "7e201a00"];
        let enable: String = uarts[1..]
            .iter()
            .map(|u| format!("serial@{u} {{ status = \"okay\"; }}; "))
            .collect();
        let paths: Vec<String> = uarts
            .iter()
            .map(|u| format!("\"/soc/serial@{u}\""))
            .collect();
        (
            format!("soc {{ {enable} }};"),
            format!("devices = {};", paths.join(", ")),
        )
    }

    #[test]
    fn a_device_under_a_bus_keeps_its_bus_address_and_its_host_only_dependencies_are_left_out() {
        let (nodes, devices) = rpi4_uarts();
        let blob = guest_tree(RPI4, &body(&nodes, &devices));
        let guest = Fdt::new(&blob).unwrap();
        let uart = "/soc/serial@7e201000";
        assert_eq!(cells(&guest, uart, "reg"), Some(vec![0x7e20_1000, 0x200]));
        let node = guest.find_node(uart).unwrap();
        let translated: Vec<PhysRange> = address::reg(&node).unwrap().map(Result::unwrap).collect();
        assert_eq!(
            translated,
            [PhysRange::new(PhysAddr(0xfe20_1000), 0x200).unwrap()],
            "the copied /soc ranges translate it to its host address"
        );
        assert_eq!(cells(&guest, uart, "interrupts"), Some(vec![0, 121, 4]));
        for left_out in ["clocks", "clock-names", "pinctrl-0", "pinctrl-names"] {
            assert!(
                !node.has_property(left_out),
                "{left_out}: its providers stay with the host"
            );
        }
        assert!(
            node.has_property("arm,primecell-periphid"),
            "the rest is copied"
        );
        let bluetooth = guest.find_node("/soc/serial@7e201000/bluetooth").unwrap();
        assert!(bluetooth.has_property("max-speed"));
        assert!(
            !bluetooth.has_property("shutdown-gpios"),
            "the GPIO controller stays with the host"
        );
        let soc = guest.find_node("/soc").unwrap();
        let soc_properties: Vec<&str> = soc.properties().map(|p| p.name).collect();
        assert!(
            soc_properties.iter().all(|p| BUS_PROPERTIES.contains(p)),
            "the bus keeps only its address translation: {soc_properties:?}"
        );
        assert_eq!(soc.children().count(), 5, "the five UARTs, nothing else");
        assert!(
            node.property("phandle")
                .and_then(|p| p.as_u32())
                .is_some_and(|p| p >= FIRST_PHANDLE),
            "phandles renumbered apart from the guest's own"
        );
        assert_phandles_unique(&guest);
    }

    #[test]
    fn a_provider_given_to_the_same_partition_is_kept_with_its_phandle_renumbered() {
        let nodes = "clk: clock-controller@b000000 { compatible = \"test,clocks\";
                         reg = <0x0 0xb000000 0x0 0x1000>; #clock-cells = <1>; };
                     consumer@b001000 { compatible = \"test,consumer\";
                         reg = <0x0 0xb001000 0x0 0x1000>; clocks = <&clk 7>; };";
        let devices = "devices = \"/consumer@b001000\", \"/clock-controller@b000000\";";
        let blob = guest_tree(QEMU_VIRT, &body(nodes, devices));
        let guest = Fdt::new(&blob).unwrap();
        let clocks = cells(&guest, "/consumer@b001000", "clocks").expect("kept");
        let provider = guest
            .find_phandle(clocks[0])
            .expect("names a node of the guest");
        assert_eq!(provider.path().to_string(), "/clock-controller@b000000");
        assert_eq!(clocks[1], 7, "the specifier's argument is kept");
        assert_phandles_unique(&guest);
    }

    #[test]
    fn a_root_level_device_s_reg_follows_the_guest_root_s_cells() {
        // The Raspberry Pi 4's root has #size-cells = <1>; the guest's has 2.
        let nodes = "fake@600000000 { compatible = \"test,fake\"; reg = <0x6 0x0 0x1000>; };";
        let blob = guest_tree(RPI4, &body(nodes, "devices = \"/fake@600000000\";"));
        let guest = Fdt::new(&blob).unwrap();
        assert_eq!(
            cells(&guest, "/fake@600000000", "reg"),
            Some(vec![0x6, 0x0, 0x0, 0x1000])
        );
    }

    /// Whatever corruption leaves of the devices a configuration names (the
    /// board's device nodes, their clocks, the `devices` property), the
    /// checks and the guest DT writer report or write, and never panic.
    #[test]
    fn corrupted_devices_never_panic_the_checks_or_the_guest_tree() {
        let (nodes, devices) = rpi4_uarts();
        let original = merged_into(RPI4, &body(&nodes, &devices));
        let fdt = Fdt::new(&original).unwrap();
        let total = fdt.total_size();
        let structure_start = u32::from_be_bytes(original[8..12].try_into().unwrap()) as usize;
        let structure_end =
            structure_start + u32::from_be_bytes(original[36..40].try_into().unwrap()) as usize;
        let mut state = 0x5eed_u64;
        let mut outcomes = [0usize; 3];
        for _ in 0..3000 {
            let blob = corrupt(
                &original[..total],
                structure_start..structure_end,
                &mut state,
            );
            let Ok(fdt) = Fdt::new(&blob) else { continue };
            let dtb = PhysRange::new(PhysAddr(crate::config::test_support::DTB), total as u64);
            let Ok(mut hardware) = crate::hw::discover(&fdt, 0, dtb) else {
                continue;
            };
            let image = PhysRange::new(
                PhysAddr(crate::config::test_support::IMAGE),
                crate::config::test_support::IMAGE_SIZE,
            )
            .unwrap();
            if crate::mm::hyp_memory::reserve(&mut hardware.memory, image).is_err() {
                continue;
            }
            match config::read(&fdt, &hardware, &Headers::default()) {
                Err(errors) => {
                    outcomes[0] += 1;
                    errors.iter().for_each(|e| drop(e.to_string()));
                }
                Ok(plans) => {
                    for plan in &plans {
                        let written = device_tree::write(
                            plan,
                            BootInfo {
                                boot_count: 1,
                                gic: GicVersion::V2,
                                seeds: None,
                            },
                        );
                        outcomes[if written.is_ok() { 1 } else { 2 }] += 1;
                        let _ = stage2::passthrough_tables(plan);
                    }
                }
            }
        }
        assert!(
            outcomes[0] > 0 && outcomes[1] > 0,
            "both outcomes seen (errors, trees written, writer errors): {outcomes:?}"
        );
    }

    #[test]
    fn root_ranges_widen_parent_addresses_to_two_cells() {
        let blob = crate::dt::test_builder::Builder::default()
            .begin("")
            .prop_cells("#address-cells", &[1])
            .prop_cells("#size-cells", &[1])
            .begin("soc")
            .prop_cells("#address-cells", &[1])
            .prop_cells("#size-cells", &[1])
            .prop_cells("ranges", &[0x7e00_0000, 0xfe00_0000, 0x100_0000])
            .end()
            .end()
            .build();
        let fdt = Fdt::new(&blob).unwrap();
        let soc = fdt.find_node("/soc").unwrap();
        let ranges = soc.property("ranges").unwrap();
        let widened = root_ranges(&soc, ranges.value).unwrap();
        let cells: Vec<u32> = widened
            .chunks_exact(4)
            .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(cells, [0x7e00_0000, 0, 0xfe00_0000, 0x100_0000]);
    }
}
