//! Configuration errors: what is wrong, in which partition, in which property.

use alloc::boxed::Box;
use core::fmt;

use super::owner::Owner;
use super::passthrough::DeviceProblem;
use crate::dt::Lookup;
use crate::hw::gic::GicVersion;
use crate::mm::address::{ByteSize, PhysRange};

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem<'a> {
    /// A required property is absent.
    Missing,
    /// A property the binding does not have (on the node `on`, a module
    /// of the partition, when it is not the partition's own), with the
    /// known name it is closest to.
    UnknownProperty {
        name: &'a str,
        on: Option<&'a str>,
        suggestion: Option<&'static str>,
    },
    /// A path (of `cpus` or `devices`) without unit addresses that several
    /// nodes match: which one was meant cannot be guessed.
    AmbiguousPath { path: &'a str, lookup: Lookup<'a> },
    /// A child node the binding does not have, under the node `on` (a
    /// module of the partition) when it is not the partition itself.
    UnknownNode {
        name: &'a str,
        on: Option<&'a str>,
        suggestion: Option<&'static str>,
    },
    /// The value does not have the form the binding gives.
    Malformed { expected: &'static str },
    /// An address or size that must be a multiple of 4 KiB is not.
    NotPageAligned { value: u64 },
    /// A size of zero.
    Zero,
    /// A range that is not all RAM of the board (banks that touch count as one).
    OutsideRam { range: PhysRange },
    /// A range that overlaps something it must not.
    Overlap {
        range: PhysRange,
        with: Owner<'a>,
        other: PhysRange,
    },
    /// A CPU path that names no CPU of the board.
    NoSuchCpu { path: &'a str },
    /// An MPIDR that no CPU of the board has.
    NoSuchMpidr { mpidr: u64 },
    /// A CPU that another partition (or this one) already has.
    CpuTaken { cpu: u64, by: &'a str },
    /// A CPU listed twice in the same partition.
    CpuListedTwice { cpu: u64 },
    /// A partition without CPUs.
    NoCpus,
    /// `cpus` or `cpu-mpidrs` is there but names no CPU at all.
    NoCpuNamed,
    /// The kernel's Image header gives a size or offset no RAM holds.
    ImplausibleHeader {
        module: &'a str,
        file: Option<&'a str>,
        field: &'static str,
        value: u64,
    },
    /// The kernel module is there but disabled (`status`).
    KernelDisabled { module: &'a str },
    /// More vCPUs than the virtual GIC of the board's GIC version serves.
    TooManyVcpus {
        count: usize,
        limit: usize,
        gic: GicVersion,
    },
    /// No `multiboot,kernel` module.
    NoKernel,
    /// More than one module of a kind.
    Duplicate { what: &'static str },
    /// A module whose size was never filled in (the file was not loaded).
    NotLoaded,
    /// The images and the guest DTB need more RAM than the partition has.
    TooLarge { needs: u64, has: u64 },
    /// No free RAM is left for a partition of this size.
    NoRoom { size: u64 },
    /// An unknown enumeration value.
    UnknownValue {
        value: &'a str,
        allowed: &'static [&'static str],
    },
    /// A child of `/hypervisor` that is not a partition.
    NotAPartition,
    /// A partition name that cannot be used.
    BadName,
    /// The guest's RAM would cover its emulated devices or exceed the IPA space.
    GuestRamClash {
        base: u64,
        size: u64,
        why: &'static str,
    },
    /// More partitions than Tessera supports.
    TooMany { limit: usize },
    /// A `/hypervisor` node without partitions.
    NoPartitions,
    /// A passthrough device (named by its path in `devices`) that cannot be
    /// given. Boxed: a device problem holds nodes, which would make every
    /// `Problem` several times larger.
    Device {
        path: &'a str,
        problem: Box<DeviceProblem<'a>>,
    },
    /// A flag only one partition may have, set in another one already.
    OnlyOnePartition { by: &'a str },
}

impl fmt::Display for Problem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => f.write_str("property missing"),
            Problem::UnknownProperty {
                name,
                on,
                suggestion,
            } => unknown(f, "property", name, *on, *suggestion),
            Problem::UnknownNode {
                name,
                on,
                suggestion,
            } => unknown(f, "node", name, *on, *suggestion),
            Problem::AmbiguousPath { path, lookup } => write!(f, "\"{path}\" {lookup}"),
            Problem::Malformed { expected } => write!(f, "malformed: expected {expected}"),
            Problem::NotPageAligned { value } => {
                write!(f, "{value:#x} is not a multiple of 4 KiB")
            }
            Problem::Zero => f.write_str("is zero"),
            Problem::OutsideRam { range } => write!(f, "{range} is not all RAM"),
            Problem::Overlap { range, with, other } => {
                write!(f, "{range} overlaps {with} at {other}")
            }
            Problem::NoSuchCpu { path } => write!(f, "\"{path}\" is not a CPU of this board"),
            Problem::NoSuchMpidr { mpidr } => {
                write!(f, "no CPU of this board has MPIDR {mpidr:#x}")
            }
            Problem::CpuListedTwice { cpu } => {
                write!(f, "the CPU with MPIDR {cpu:#x} is listed twice")
            }
            Problem::CpuTaken { cpu, by } => {
                write!(
                    f,
                    "the CPU with MPIDR {cpu:#x} is already given to partition {by}"
                )
            }
            Problem::NoCpus => f.write_str("no CPUs: give it `cpus` or `cpu-mpidrs`"),
            Problem::NoCpuNamed => f.write_str("names no CPU: the partition would never run"),
            Problem::ImplausibleHeader {
                module,
                file,
                field,
                value,
            } => {
                write!(f, "{field} {value:#x} in the Image header of {module}")?;
                if let Some(file) = file {
                    write!(f, " ({file})")?;
                }
                f.write_str(" is more than any RAM: not a kernel Image, or a damaged one")
            }
            Problem::KernelDisabled { module } => write!(
                f,
                "no kernel: its kernel module {module} is disabled (status is not \"okay\")"
            ),
            Problem::TooManyVcpus { count, limit, gic } => write!(
                f,
                "{count} CPUs, but a partition's virtual {} serves at most {limit} vCPUs",
                match gic {
                    GicVersion::V2 => "GICv2",
                    GicVersion::V3 => "GICv3",
                }
            ),
            Problem::NoKernel => {
                f.write_str("no kernel: add a module with compatible \"multiboot,kernel\"")
            }
            Problem::Duplicate { what } => write!(f, "more than one {what} module"),
            Problem::NotLoaded => f.write_str(
                "size is 0: the file was not loaded (the boot script writes its size here)",
            ),
            Problem::TooLarge {
                needs: u64::MAX,
                has,
            } => write!(
                f,
                "the images and the guest DTB need more than 2^64 bytes; the partition has {}",
                ByteSize(*has)
            ),
            Problem::TooLarge { needs, has } => write!(
                f,
                "the images and the guest DTB need {} but the partition has {}",
                ByteSize(*needs),
                ByteSize(*has)
            ),
            Problem::NoRoom { size } => {
                write!(
                    f,
                    "no free, 2 MiB-aligned {} of RAM is left",
                    ByteSize(*size)
                )
            }
            Problem::UnknownValue { value, allowed } => {
                write!(f, "\"{value}\" is not one of ")?;
                for (index, known) in allowed.iter().enumerate() {
                    let separator = if index == 0 { "" } else { ", " };
                    write!(f, "{separator}\"{known}\"")?;
                }
                Ok(())
            }
            Problem::NotAPartition => {
                f.write_str("not a partition: compatible must be \"tessera,partition\"")
            }
            Problem::BadName => {
                f.write_str("partition names use lower-case letters, digits and '-'")
            }
            Problem::GuestRamClash { base, size, why } => write!(
                f,
                "guest RAM {base:#x}..{:#x} {why}",
                base.saturating_add(*size)
            ),
            Problem::TooMany { limit } => write!(f, "more than {limit} partitions"),
            Problem::NoPartitions => {
                f.write_str("no partitions: add a child node with compatible \"tessera,partition\"")
            }
            Problem::Device { path, problem } => write!(f, "{path}: {problem}"),
            Problem::OnlyOnePartition { by } => {
                write!(
                    f,
                    "partition {by} has it already: at most one partition may"
                )
            }
        }
    }
}

/// `module@49000000: unknown property "x": did you mean "y"?`, the node
/// and the suggestion where there are.
fn unknown(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    name: &str,
    on: Option<&str>,
    suggestion: Option<&str>,
) -> fmt::Result {
    if let Some(node) = on {
        write!(f, "{node}: ")?;
    }
    write!(f, "unknown {what} \"{name}\"")?;
    match suggestion {
        Some(known) => write!(f, ": did you mean \"{known}\"?"),
        None => Ok(()),
    }
}

/// `count` of `noun`, the noun plural unless it is one: "1 error",
/// "5 errors".
#[derive(Debug, Clone, Copy)]
pub struct Count(pub usize, pub &'static str);

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Count(count, noun) = *self;
        let plural = if count == 1 { "" } else { "s" };
        write!(f, "{count} {noun}{plural}")
    }
}

/// Which node an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    /// The `/hypervisor` node itself.
    Hypervisor,
    /// A partition, by name (its modules' errors too).
    Partition(&'a str),
    /// `/chosen` (its `tessera,*` settings).
    Chosen,
}

/// One configuration error: where, property (`""`: the node) and problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError<'a> {
    pub scope: Scope<'a>,
    pub property: &'static str,
    pub problem: Problem<'a>,
}

impl fmt::Display for ConfigError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scope {
            Scope::Partition(name) => write!(f, "partition {name}")?,
            Scope::Hypervisor => f.write_str("/hypervisor")?,
            Scope::Chosen => f.write_str("/chosen")?,
        }
        if !self.property.is_empty() {
            write!(f, ": {}", self.property)?;
        }
        write!(f, ": {}", self.problem)
    }
}

#[cfg(test)]
mod tests {
    use alloc::string::ToString;

    use super::Count;

    #[test]
    fn counts_are_plural_unless_one() {
        assert_eq!(Count(1, "error").to_string(), "1 error");
        assert_eq!(Count(0, "error").to_string(), "0 errors");
        assert_eq!(Count(5, "partition").to_string(), "5 partitions");
    }
}
