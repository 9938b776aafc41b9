//! The device tree a partition's guest boots with, written by Tessera:
//! its CPUs (renumbered from 0), RAM, PSCI over HVC, the GIC, the timer,
//! the PL011 and `/chosen`.

use alloc::format;
use alloc::vec::Vec;

use vm_fdt::{Error, FdtWriter};

use crate::config::PartitionPlan;
use crate::config::guest_map::{
    GIC_PHANDLE, GUEST_GICC_BASE, GUEST_GICC_SIZE, GUEST_GICD_BASE, GUEST_GICR_BASE,
    GUEST_PL011_BASE, GUEST_PL011_SIZE, GUEST_PL011_SPI,
};
use crate::entropy::Seeds;
use crate::hw::gic::GicVersion;
use crate::vgic::distributor::{GICD_SIZE_V2, GICD_SIZE_V3};
use crate::vgic::redistributor::REDISTRIBUTOR_SIZE;

/// GIC interrupt specifier cells (Linux `arm,gic` bindings).
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
const IRQ_TYPE_LEVEL_HIGH: u32 = 4;
const IRQ_TYPE_LEVEL_LOW: u32 = 8;
/// Architected timer PPIs as the binding numbers them (INTID - 16): secure
/// and non-secure physical, virtual, hypervisor.
const TIMER_PPIS: [u32; 4] = [13, 14, 11, 10];
/// Phandle of the fixed clock the PL011 binding requires.
const CLOCK_PHANDLE: u32 = 1;
/// The PL011's reference clock as QEMU virt describes it.
const PL011_CLOCK_HZ: u32 = 24_000_000;

/// Facts the guest's DT needs that are not in the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootInfo {
    /// 1 at the first boot, +1 at every restart.
    pub boot_count: u32,
    /// The GIC the partition's virtual GIC imitates (the host's version).
    pub gic: GicVersion,
    /// `/chosen/rng-seed` and `kaslr-seed`, where Tessera has entropy.
    pub seeds: Option<Seeds>,
}

fn cells(value: u64) -> [u32; 2] {
    #[allow(clippy::cast_possible_truncation, reason = "splitting into cells")]
    [(value >> 32) as u32, value as u32]
}

/// The guest's DTB.
pub fn write(plan: &PartitionPlan<'_>, boot: BootInfo) -> Result<Vec<u8>, Error> {
    let layout = &plan.layout;
    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "linux,dummy-virt")?;
    fdt.property_string("model", &format!("Tessera partition {}", plan.config.name))?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", GIC_PHANDLE)?;

    write_gic(&mut fdt, boot.gic, plan.config.cpus.len())?;

    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        ["arm,psci-1.0", "arm,psci-0.2"].map(Into::into).to_vec(),
    )?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(psci)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    for index in 0..plan.config.cpus.len() {
        let cpu = fdt.begin_node(&format!("cpu@{index:x}"))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_string("compatible", "arm,armv8")?;
        fdt.property_u32("reg", u32::try_from(index).unwrap_or(u32::MAX))?;
        fdt.property_string("enable-method", "psci")?;
        fdt.end_node(cpu)?;
    }
    fdt.end_node(cpus)?;

    let memory = fdt.begin_node(&format!("memory@{:x}", layout.ram_base))?;
    fdt.property_string("device_type", "memory")?;
    let [base_hi, base_lo] = cells(layout.ram_base);
    let [size_hi, size_lo] = cells(layout.ram_size);
    fdt.property_array_u32("reg", &[base_hi, base_lo, size_hi, size_lo])?;
    fdt.end_node(memory)?;

    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    let mut interrupts = Vec::new();
    for ppi in TIMER_PPIS {
        interrupts.extend_from_slice(&[GIC_PPI, ppi, IRQ_TYPE_LEVEL_LOW]);
    }
    fdt.property_array_u32("interrupts", &interrupts)?;
    // The counter runs while the vCPU is in WFI: the core is never given away.
    fdt.property_null("always-on")?;
    fdt.end_node(timer)?;

    let clock = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", PL011_CLOCK_HZ)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_u32("phandle", CLOCK_PHANDLE)?;
    fdt.end_node(clock)?;

    let uart_name = format!("pl011@{GUEST_PL011_BASE:x}");
    let uart_path = format!("/{uart_name}");
    let uart = fdt.begin_node(&uart_name)?;
    fdt.property_string_list(
        "compatible",
        ["arm,pl011", "arm,primecell"].map(Into::into).to_vec(),
    )?;
    let [ubase_hi, ubase_lo] = cells(GUEST_PL011_BASE);
    let [usize_hi, usize_lo] = cells(GUEST_PL011_SIZE);
    fdt.property_array_u32("reg", &[ubase_hi, ubase_lo, usize_hi, usize_lo])?;
    fdt.property_array_u32(
        "interrupts",
        &[GIC_SPI, GUEST_PL011_SPI, IRQ_TYPE_LEVEL_HIGH],
    )?;
    fdt.property_array_u32("clocks", &[CLOCK_PHANDLE, CLOCK_PHANDLE])?;
    fdt.property_string_list(
        "clock-names",
        ["uartclk", "apb_pclk"].map(Into::into).to_vec(),
    )?;
    fdt.end_node(uart)?;

    let memory_name = format!("memory@{:x}", layout.ram_base);
    let gic_name = format!("intc@{GUEST_GICD_BASE:x}");
    let taken = [
        "psci",
        "cpus",
        "timer",
        "apb-pclk",
        "chosen",
        &memory_name,
        &gic_name,
        &uart_name,
    ];
    super::passthrough::write(&mut fdt, &plan.config.devices, &taken)?;

    let chosen = fdt.begin_node("chosen")?;
    if let Some(bootargs) = plan.config.bootargs {
        fdt.property_string("bootargs", bootargs)?;
    }
    fdt.property_string("stdout-path", &uart_path)?;
    if let Some((start, size)) = layout.ramdisk {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", start + size)?;
    }
    fdt.property_string("tessera,partition", plan.config.name)?;
    fdt.property_u32("tessera,boot-count", boot.boot_count)?;
    if let Some(seeds) = boot.seeds {
        fdt.property("rng-seed", &seeds.rng_seed)?;
        fdt.property_u64("kaslr-seed", seeds.kaslr_seed)?;
    }
    fdt.end_node(chosen)?;

    fdt.end_node(root)?;
    fdt.finish()
}

/// The interrupt controller node, as QEMU virt describes its GIC.
fn write_gic(fdt: &mut FdtWriter, version: GicVersion, vcpus: usize) -> Result<(), Error> {
    let gic = fdt.begin_node(&format!("intc@{GUEST_GICD_BASE:x}"))?;
    let mut reg = Vec::new();
    let (compatible, regions) = match version {
        GicVersion::V3 => (
            "arm,gic-v3",
            [
                (GUEST_GICD_BASE, GICD_SIZE_V3),
                (GUEST_GICR_BASE, REDISTRIBUTOR_SIZE * vcpus as u64),
            ],
        ),
        GicVersion::V2 => (
            "arm,cortex-a15-gic",
            [
                (GUEST_GICD_BASE, GICD_SIZE_V2),
                (GUEST_GICC_BASE, GUEST_GICC_SIZE),
            ],
        ),
    };
    for (base, size) in regions {
        reg.extend_from_slice(&cells(base));
        reg.extend_from_slice(&cells(size));
    }
    fdt.property_string("compatible", compatible)?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_array_u32("reg", &reg)?;
    if version == GicVersion::V3 {
        fdt.property_u32("#redistributor-regions", 1)?;
    }
    fdt.property_u32("phandle", GIC_PHANDLE)?;
    fdt.end_node(gic)
}
