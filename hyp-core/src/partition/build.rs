//! Building partitions from their plans: stage-2 tables, vCPUs, the boot
//! log line; then the first start of each.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use log::info;
use spin::Mutex;

use super::{PARTITIONS, Partition, RUNNING_PARTITIONS, SPECULATION, Uart};
use crate::arch::virtualization;
use crate::config::PartitionPlan;
use crate::config::guest_map::{GUEST_PL011_BASE, GUEST_PL011_SPI, IPA_BITS};
use crate::guest::mmio_bus::MmioBus;
use crate::guest::stage2;
use crate::hw::Hardware;
use crate::hw::gic::GicRegions;
use crate::lifecycle::Lifecycle;
use crate::mm::address::ByteSize;
use crate::mm::address::PhysAddr;
use crate::mm::page_table::{MapError, PageTable, Stage, Table, TablePool};
use crate::vgic::Vgic;
use crate::vgic::state::PRIVATE_COUNT as FIRST_SPI;
use crate::{physical_gic, smp};

/// Why partitions could not be built.
#[derive(Debug)]
pub enum BuildError {
    Stage2 {
        partition: &'static str,
        error: MapError,
    },
    /// A CPU the partition is given did not come online.
    CpuOffline { partition: &'static str, mpidr: u64 },
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::Stage2 { partition, error } => {
                write!(f, "partition {partition}: stage-2 tables: {error}")
            }
            BuildError::CpuOffline { partition, mpidr } => write!(
                f,
                "partition {partition}: its CPU with MPIDR {mpidr:#x} did not come online; no partition starts"
            ),
        }
    }
}

/// Stage-2 tables for `plan`, never freed (partitions live as long as
/// Tessera). Returns the root's physical address.
fn build_stage2(
    plan: &PartitionPlan<'_>,
    virtual_cpu_interface: Option<PhysAddr>,
) -> Result<u64, MapError> {
    const GIB: u64 = 1 << 30;
    const TWO_MIB: u64 = 2 << 20;
    let size = plan.ram.size();
    let blocks_only = (plan.ram.start().0 | plan.layout.ram_base | size).is_multiple_of(TWO_MIB);
    // The root, a level-2 table per GiB touched (+1 for misalignment), and
    // level-3 tables only when 2 MiB blocks cannot be used.
    let level3 = if blocks_only {
        0
    } else {
        size.div_ceil(TWO_MIB) + 2
    };
    // The GICv2 virtual CPU interface's pages need a level-2 and a level-3 table.
    let gic = if virtual_cpu_interface.is_some() {
        2
    } else {
        0
    };
    let count = usize::try_from(2 + size.div_ceil(GIB) + level3 + gic)
        .unwrap_or(usize::MAX)
        .saturating_add(stage2::passthrough_tables(plan));
    let tables: &'static mut [Table] =
        Box::leak(alloc::vec![Table::EMPTY; count].into_boxed_slice());
    let base = PhysAddr(tables.as_ptr() as u64);
    let pool: &'static mut TablePool<'static> = Box::leak(Box::new(TablePool::new(tables, base)));
    let mut table = PageTable::new(pool, Stage::Stage2, IPA_BITS)?;
    stage2::map_partition(&mut table, plan, virtual_cpu_interface)?;
    let counts = table.leaf_counts();
    info!(
        "partition {}: stage 2: {} 1 GiB, {} 2 MiB, {} 4 KiB entries",
        plan.config.name, counts[1], counts[2], counts[3]
    );
    let root = table.root_address().0;
    // The tables are written with caches on; the walker may read memory.
    platform::cpu::cache::clean(base.as_usize(), count * core::mem::size_of::<Table>());
    Ok(root)
}

/// Builds every partition, loads its images and starts its first vCPU.
/// Called once, on the boot CPU, after the secondary CPUs are online.
pub fn start_all(
    plans: Vec<PartitionPlan<'static>>,
    hardware: &Hardware<'static>,
) -> Result<(), BuildError> {
    SPECULATION.call_once(virtualization::speculation_state);
    let gic_version = hardware.gic.version();
    let virtual_cpu_interface = match &hardware.gic.regions {
        GicRegions::V2 { virtual_cpu, .. } => Some(virtual_cpu.start()),
        GicRegions::V3 { .. } => None,
    };
    let mut built = Vec::with_capacity(plans.len());
    for plan in plans {
        let stage2_root =
            build_stage2(&plan, virtual_cpu_interface).map_err(|error| BuildError::Stage2 {
                partition: plan.config.name,
                error,
            })?;
        if let Some(offline) = plan
            .config
            .cpus
            .iter()
            .filter_map(|&i| hardware.cpus.list.get(i))
            .find(|cpu| !smp::is_online(cpu.mpidr))
        {
            return Err(BuildError::CpuOffline {
                partition: plan.config.name,
                mpidr: offline.mpidr,
            });
        }
        let lifecycle = Lifecycle::new(
            plan.config
                .cpus
                .iter()
                .filter_map(|&i| hardware.cpus.list.get(i))
                .map(|cpu| cpu.mpidr),
            plan.config.restart,
        );
        for index in 0..lifecycle.vcpu_count() {
            if let Some(mpidr) = lifecycle.physical_mpidr(index) {
                smp::runs_guests(mpidr);
            }
        }
        // The emulated PL011's SPI, and the passthrough devices' SPIs,
        // hardware-linked: the guest's deactivation reaches the GIC.
        let mut owned_spis = alloc::vec![(FIRST_SPI + GUEST_PL011_SPI, false)];
        for spi in plan.config.passthrough_spis() {
            physical_gic::claim_guest_spi(spi.intid, spi.is_edge_triggered());
            owned_spis.push((spi.intid, true));
        }
        let vgic = Vgic::new(gic_version, lifecycle.vcpu_count(), owned_spis);
        built.push(Partition {
            vgic,
            bus: MmioBus::new(gic_version, lifecycle.vcpu_count()),
            counter_offset: AtomicU64::new(0),
            plan,
            stage2_root,
            lifecycle,
            boots: AtomicU32::new(0),
            has_printed: AtomicBool::new(false),
            uart: Mutex::new(Uart::default()),
            warnings: AtomicU32::new(0),
        });
    }
    for partition in &built {
        describe(partition);
    }
    RUNNING_PARTITIONS.store(built.len(), Ordering::SeqCst);
    let partitions = PARTITIONS.call_once(|| built);
    super::console_input::init(hardware.console.as_ref().and_then(|c| c.interrupt));
    for partition in partitions {
        partition.start();
    }
    Ok(())
}

fn describe(partition: &Partition) {
    let plan = &partition.plan;
    let mut cpus = heapless::String::<96>::new();
    for index in 0..partition.lifecycle.vcpu_count() {
        if let Some(mpidr) = partition.lifecycle.physical_mpidr(index) {
            let _ = core::fmt::Write::write_fmt(&mut cpus, format_args!(" {mpidr:#x}"));
        }
    }
    info!(
        "partition {}: VMID {}, CPUs (MPIDR){cpus}, RAM {} ({}) at guest {:#x}, kernel ({}) at guest {:#x}, PL011 at guest {GUEST_PL011_BASE:#x}",
        plan.config.name,
        plan.vmid,
        plan.ram,
        ByteSize(plan.ram.size()),
        plan.layout.ram_base,
        plan.kernel_kind,
        plan.layout.kernel,
    );
    for device in &plan.config.devices {
        let mut found = heapless::String::<96>::new();
        for page in &device.pages {
            let _ = core::fmt::Write::write_fmt(&mut found, format_args!(" {page}"));
        }
        for spi in device.spis() {
            let _ = core::fmt::Write::write_fmt(&mut found, format_args!(" INTID {spi}"));
        }
        info!(
            "partition {}: device {}:{found} (at guest = host addresses)",
            plan.config.name, device.path
        );
    }
    for note in crate::config::passthrough::notes(&plan.config) {
        info!("{note}");
    }
}
