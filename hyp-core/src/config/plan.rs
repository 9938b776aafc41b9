//! Checks a configuration against the board and places every partition:
//! host RAM, guest layout, VMID. Every problem is reported, not just the
//! first; with any problem, nothing is returned to run.

use alloc::vec::Vec;

use super::binding::{Module, PartitionConfig};
use super::error::{ConfigError, Problem, Scope};
use super::guest_map::{DEFAULT_GUEST_RAM_BASE, GUEST_DEVICES, GuestLayout, IPA_BITS};
use super::image::{HEADER_SIZE, KernelKind};
use super::owner::Owner;
use crate::hw::cpus::Cpus;
use crate::hw::memory::{MemoryMap, Reserved, ReservedKind};
use crate::mm::address::{PhysAddr, PhysRange};
use crate::mm::free;

/// Most partitions: one per CPU at most, and VMIDs 1..=MAX fit 8 bits.
pub const MAX_PARTITIONS: usize = crate::hw::cpus::MAX_CPUS;
/// Placement alignment of partitions without `memory-base`: 2 MiB blocks
/// for stage 2 (1 GiB when the size is a multiple of 1 GiB).
const PLACEMENT_ALIGN: u64 = 2 << 20;
const LARGE_PLACEMENT_ALIGN: u64 = 1 << 30;

/// A partition ready to be built.
#[derive(Debug, Clone)]
pub struct PartitionPlan<'a> {
    pub config: PartitionConfig<'a>,
    /// Stage-2 VMID: 1 for the first partition (0 is never used for a guest).
    pub vmid: u16,
    /// Host physical RAM.
    pub ram: PhysRange,
    pub kernel_kind: KernelKind,
    pub layout: GuestLayout,
}

impl PartitionPlan<'_> {
    /// Host physical address of guest physical `ipa` inside the guest RAM.
    pub fn host_address(&self, ipa: u64) -> Option<PhysAddr> {
        let offset = ipa.checked_sub(self.layout.ram_base)?;
        (offset < self.ram.size())
            .then(|| self.ram.start().0.checked_add(offset).map(PhysAddr))
            .flatten()
    }
}

/// What the checks need to know about a module's contents: its first
/// [`HEADER_SIZE`] bytes, if they can be read (at boot, from memory; on the
/// host, from the file).
pub trait ModuleContents {
    fn header(&self, module: &Module<'_>) -> Option<[u8; HEADER_SIZE]>;
}

/// Checks `partitions` against the board's CPUs and memory (with Tessera,
/// its heap, the DTB and every module already reserved in `memory`) and
/// places them.
pub fn plan<'a>(
    partitions: Vec<PartitionConfig<'a>>,
    cpus: &Cpus<'a>,
    memory: &MemoryMap,
    contents: &impl ModuleContents,
    errors: &mut Vec<ConfigError<'a>>,
) -> Vec<PartitionPlan<'a>> {
    if partitions.len() > MAX_PARTITIONS {
        errors.push(ConfigError {
            scope: Scope::Hypervisor,
            property: "",
            problem: Problem::TooMany {
                limit: MAX_PARTITIONS,
            },
        });
    }
    check_cpus(&partitions, cpus, errors);
    check_modules(&partitions, memory, errors);
    let rams = place_memory(&partitions, memory, errors);

    // Each kernel's header, read and checked whether or not its partition
    // gets RAM: a memory error must not hide a damaged image.
    let kinds: Vec<Option<KernelKind>> = partitions
        .iter()
        .map(|config| {
            let kernel = config.kernel.as_ref()?;
            let kind = contents
                .header(kernel)
                .map_or(KernelKind::Raw, |h| KernelKind::detect(&h));
            let Some((field, value)) = kind.implausible_field() else {
                return Some(kind);
            };
            errors.push(ConfigError {
                scope: Scope::Partition(config.name),
                property: "",
                problem: Problem::ImplausibleHeader {
                    module: kernel.node.name(),
                    file: kernel.file,
                    field,
                    value,
                },
            });
            None
        })
        .collect();

    let mut plans = Vec::new();
    let placed = partitions.into_iter().zip(rams).zip(kinds);
    for (index, ((config, ram), kernel_kind)) in placed.enumerate() {
        let (Some(ram), Some(kernel), Some(kernel_kind)) = (ram, config.kernel, kernel_kind) else {
            continue;
        };
        let guest_base = guest_ram_base(&config, ram, errors);
        if let KernelKind::Arm64Image { .. } = kernel_kind
            && !guest_base.is_multiple_of(PLACEMENT_ALIGN)
        {
            errors.push(ConfigError {
                scope: Scope::Partition(config.name),
                property: "memory-base",
                problem: Problem::Malformed {
                    expected: "a 2 MiB-aligned guest RAM base for an arm64 Image kernel",
                },
            });
        }
        let layout = match GuestLayout::place(
            guest_base,
            ram.size(),
            kernel_kind.load_offset(),
            kernel_kind.footprint(kernel.range.size()),
            config.ramdisk.map(|r| r.range.size()),
        ) {
            Ok(layout) => layout,
            Err(needs) => {
                errors.push(ConfigError {
                    scope: Scope::Partition(config.name),
                    property: "memory-size",
                    problem: Problem::TooLarge {
                        needs,
                        has: ram.size(),
                    },
                });
                continue;
            }
        };
        plans.push(PartitionPlan {
            vmid: index
                .checked_add(1)
                .and_then(|vmid| u16::try_from(vmid).ok())
                .unwrap_or(u16::MAX),
            config,
            ram,
            kernel_kind,
            layout,
        });
    }
    plans
}

/// Every CPU belongs to at most one partition, once.
fn check_cpus<'a>(
    partitions: &[PartitionConfig<'a>],
    cpus: &Cpus<'a>,
    errors: &mut Vec<ConfigError<'a>>,
) {
    let mut owner: Vec<Option<&'a str>> = cpus.list.iter().map(|_| None).collect();
    for partition in partitions {
        for &cpu in &partition.cpus {
            let Some(slot) = owner.get_mut(cpu) else {
                continue;
            };
            let property = if partition.node.has_property("cpus") {
                "cpus"
            } else {
                "cpu-mpidrs"
            };
            let mpidr = cpus.list.get(cpu).map_or(0, |c| c.mpidr);
            let problem = match slot {
                Some(by) if *by == partition.name => Problem::CpuListedTwice { cpu: mpidr },
                Some(by) => Problem::CpuTaken { cpu: mpidr, by },
                None => {
                    *slot = Some(partition.name);
                    continue;
                }
            };
            errors.push(ConfigError {
                scope: Scope::Partition(partition.name),
                property,
                problem,
            });
        }
    }
}

/// Modules lie in RAM and overlap neither each other nor what is reserved
/// for something else (Tessera, the DTB, firmware).
fn check_modules<'a>(
    partitions: &[PartitionConfig<'a>],
    memory: &MemoryMap,
    errors: &mut Vec<ConfigError<'a>>,
) {
    let modules: Vec<(&'a str, Module<'a>)> = partitions
        .iter()
        .flat_map(|p| {
            p.kernel
                .iter()
                .chain(p.ramdisk.iter())
                .map(|m| (p.name, *m))
        })
        .collect();
    for (i, (name, module)) in modules.iter().enumerate() {
        let mut error = |problem| {
            errors.push(ConfigError {
                scope: Scope::Partition(name),
                property: "reg",
                problem,
            })
        };
        if !memory.is_ram(&module.range) {
            error(Problem::OutsideRam {
                range: module.range,
            });
        }
        for reserved in memory
            .reserved
            .iter()
            .filter(|r| r.kind != ReservedKind::Module && r.range.overlaps(&module.range))
        {
            error(Problem::Overlap {
                range: module.range,
                with: Owner::Reserved(reserved.kind),
                other: reserved.range,
            });
        }
        for (other_name, other) in modules.iter().skip(i.saturating_add(1)) {
            if other.range.overlaps(&module.range) {
                error(Problem::Overlap {
                    range: module.range,
                    with: Owner::Module {
                        partition: other_name,
                        module: other.node.name(),
                    },
                    other: other.range,
                });
            }
        }
    }
}

/// Host RAM for each partition (in order; `None` where it could not be
/// given): fixed bases are checked first, then the others are placed in
/// the highest free RAM that fits.
fn place_memory<'a>(
    partitions: &[PartitionConfig<'a>],
    memory: &MemoryMap,
    errors: &mut Vec<ConfigError<'a>>,
) -> Vec<Option<PhysRange>> {
    let mut placed: Vec<Option<PhysRange>> = partitions.iter().map(|_| None).collect();
    for (index, partition) in partitions.iter().enumerate() {
        let (Some(base), true) = (partition.memory_base, partition.memory_size != 0) else {
            continue;
        };
        let mut error = |property, problem| {
            errors.push(ConfigError {
                scope: Scope::Partition(partition.name),
                property,
                problem,
            })
        };
        let Some(range) = PhysRange::new(base, partition.memory_size) else {
            error(
                "memory-base",
                Problem::Malformed {
                    expected: "a range that does not wrap",
                },
            );
            continue;
        };
        let mut ok = true;
        if !memory.is_ram(&range) {
            // A base in RAM with too much after it: the size is at fault.
            let base_in_ram = PhysRange::new(base, 1).is_some_and(|first| memory.is_ram(&first));
            let property = if base_in_ram {
                "memory-size"
            } else {
                "memory-base"
            };
            error(property, Problem::OutsideRam { range });
            ok = false;
        }
        for reserved in memory.reserved.iter().filter(|r| r.range.overlaps(&range)) {
            error(
                "memory-base",
                Problem::Overlap {
                    range,
                    with: owner_of(reserved, partitions),
                    other: reserved.range,
                },
            );
            ok = false;
        }
        for (other, other_range) in partitions.iter().zip(&placed).take(index) {
            if let Some(other_range) = other_range.filter(|r| r.overlaps(&range)) {
                error(
                    "memory-base",
                    Problem::Overlap {
                        range,
                        with: Owner::Partition(other.name),
                        other: other_range,
                    },
                );
                ok = false;
            }
        }
        if ok && let Some(slot) = placed.get_mut(index) {
            *slot = Some(range);
        }
    }

    let mut free: Vec<PhysRange> = free::free_ranges(memory).into_iter().collect();
    for range in placed.iter().flatten() {
        subtract(&mut free, range);
    }
    for (index, partition) in partitions.iter().enumerate() {
        if partition.memory_base.is_some() || partition.memory_size == 0 {
            continue;
        }
        let size = partition.memory_size;
        let align = if size.is_multiple_of(LARGE_PLACEMENT_ALIGN) {
            LARGE_PLACEMENT_ALIGN
        } else {
            PLACEMENT_ALIGN
        };
        let found = free::place_highest(&free, size, align)
            .or_else(|| free::place_highest(&free, size, PLACEMENT_ALIGN));
        match found {
            Some(range) => {
                subtract(&mut free, &range);
                if let Some(slot) = placed.get_mut(index) {
                    *slot = Some(range);
                }
            }
            None => errors.push(ConfigError {
                scope: Scope::Partition(partition.name),
                property: "memory-size",
                problem: Problem::NoRoom { size },
            }),
        }
    }
    placed
}

/// Who holds `reserved`: the partition and module for a module's range
/// (the memory map knows only that it is a module), else its kind.
fn owner_of<'a>(reserved: &Reserved, partitions: &[PartitionConfig<'a>]) -> Owner<'a> {
    let module = partitions.iter().find_map(|p| {
        p.kernel
            .iter()
            .chain(p.ramdisk.iter())
            .find(|m| m.range == reserved.range)
            .map(|m| (p.name, m.node.name()))
    });
    match (reserved.kind, module) {
        (ReservedKind::Module, Some((partition, module))) => Owner::Module { partition, module },
        (kind, _) => Owner::Reserved(kind),
    }
}

/// Removes `hole` from the ranges in `free`.
fn subtract(free: &mut Vec<PhysRange>, hole: &PhysRange) {
    let mut result = Vec::with_capacity(free.len().saturating_add(1));
    for range in free.iter() {
        if !range.overlaps(hole) {
            result.push(*range);
            continue;
        }
        if range.start() < hole.start()
            && let Some(below) = PhysRange::from_bounds(range.start(), hole.start())
        {
            result.push(below);
        }
        if hole.last() < range.last()
            && let Some(above) = hole
                .end()
                .and_then(|after| PhysRange::spanning(after, range.last()))
        {
            result.push(above);
        }
    }
    *free = result;
}

/// Where the guest sees its RAM, checked against its devices and the IPA size.
fn guest_ram_base<'a>(
    config: &PartitionConfig<'a>,
    ram: PhysRange,
    errors: &mut Vec<ConfigError<'a>>,
) -> u64 {
    let (base, property) = match (config.direct_map, config.guest_memory_base) {
        (true, Some(_)) => {
            errors.push(ConfigError {
                scope: Scope::Partition(config.name),
                property: "guest-memory-base",
                problem: Problem::Malformed {
                    expected: "no guest-memory-base with direct-map (guest addresses are host addresses)",
                },
            });
            (ram.start().0, "direct-map")
        }
        (true, None) => (ram.start().0, "direct-map"),
        (false, Some(base)) => (base, "guest-memory-base"),
        (false, None) => (DEFAULT_GUEST_RAM_BASE, "memory-size"),
    };
    let size = ram.size();
    let end = base.checked_add(size);
    let why = if end.is_none_or(|end| end > 1u64 << IPA_BITS) {
        Some("exceeds the 39-bit guest physical address space")
    } else if base < GUEST_DEVICES.1 && end.is_some_and(|end| end > GUEST_DEVICES.0) {
        Some("covers the guest's emulated GIC and PL011 at 0x8000000..0x9001000")
    } else {
        None
    };
    if let Some(why) = why {
        errors.push(ConfigError {
            scope: Scope::Partition(config.name),
            property,
            problem: Problem::GuestRamClash { base, size, why },
        });
    }
    base
}
