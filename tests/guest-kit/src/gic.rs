//! The interrupt controller a partition's guest sees: found, set up, used.
//!
//! Tessera gives each partition a virtual GIC of the host's version at fixed
//! guest addresses (`docs/partitions.md`): GICv3 with a distributor and one
//! redistributor frame per vCPU and the `ICC_*` system registers, or GICv2
//! with a distributor and the hardware's virtual CPU interface. This module
//! finds it in the guest DTB by its `compatible` ([`Layout::find`]),
//! never by a fixed address, and sets it up as Linux does: Group 1 on GICv3,
//! Group 0 on GICv2.
//!
//! The pure parts (DT discovery, register offsets, `ICC_SGI1R_EL1` and
//! `GICD_SGIR` encodings, the arrival records of [`record`] and a priority
//! order check) build and are tested on the host; register access
//! ([`Gic`], [`init`], [`init_cpu`], [`handle_irq`]) exists only on the
//! bare-metal target.
//!
//! The kit's IRQ vector calls [`handle_irq`], which acknowledges interrupts
//! until none is pending, records each in this vCPU's [`record::Record`]
//! (only this vCPU writes it; any vCPU may read it), calls the handler
//! registered for it ([`set_handler`]) and ends it.
//!
//! ```ignore
//! let layout = gic::Layout::find(&fdt)?;
//! let gic = gic::init(layout)?;          // the boot vCPU, before CPU_ON
//! gic.enable(5);
//! gic.send_sgi(5, SgiTargets::Vcpus(1 << 0))?;
//! cpu::unmask_irqs();
//! time::wait_until(100, || gic::record(0).count(5) > 0);
//! ```

use core::fmt;

use crate::fdt::{Fdt, FdtError, Region};

pub mod record;
pub mod sweep;
pub mod v2;
pub mod v3;

/// SGIs are INTIDs 0-15, PPIs 16-31, SPIs from 32 (IHI 0069 §2.2.1).
pub const SGI_COUNT: u32 = 16;
pub const FIRST_PPI: u32 = 16;
pub const FIRST_SPI: u32 = 32;
/// INTIDs 1020-1023 are special; 1023 is what an acknowledge returns when
/// nothing is pending (IHI 0069 §2.2.1, IHI 0048 §3.2.5).
pub const FIRST_SPECIAL: u32 = 1020;
pub const SPURIOUS: u32 = 1023;

/// The priority the kit gives every interrupt it sets up (Linux's
/// `GICD_INT_DEF_PRI`) and the priority mask it opens the interface to
/// (Linux's `GICC_INT_PRI_THRESHOLD`). Lower values are higher priorities.
pub const DEFAULT_PRIORITY: u8 = 0xa0;
pub const DEFAULT_PRIORITY_MASK: u8 = 0xf0;
/// The priority bits that are certainly implemented: a virtual CPU
/// interface may have only 5 (`ICH_VTR_EL2.PRIbits`, `GICH_VTR.PRIbits`),
/// so only the top 5 bits of a priority read back or order interrupts.
pub const PRIORITY_IMPLEMENTED: u8 = 0xf8;

/// Whether `intid` is an SGI, a PPI, an SPI or a special INTID.
pub const fn is_sgi(intid: u32) -> bool {
    intid < SGI_COUNT
}

pub const fn is_private(intid: u32) -> bool {
    intid < FIRST_SPI
}

pub fn is_special(intid: u32) -> bool {
    (FIRST_SPECIAL..=SPURIOUS).contains(&intid)
}

/// Banks of one bit per INTID, then one byte per INTID, at the same
/// offsets in a GICv2 distributor (IHI 0048B §4.3), a GICv3 distributor
/// (IHI 0069 §12.9) and a GICv3 redistributor's `SGI_base` (§12.12).
pub const ISENABLER: usize = 0x100;
pub const ICENABLER: usize = 0x180;
pub const ISPENDR: usize = 0x200;
pub const ICPENDR: usize = 0x280;
pub const ISACTIVER: usize = 0x300;
pub const ICACTIVER: usize = 0x380;
pub const IPRIORITYR: usize = 0x400;

/// Where `intid`'s bit lies in a bank of one-bit-per-interrupt registers
/// (`GICD_ISENABLER<n>`, `ISPENDR`, `IGROUPR` …): the byte offset of its
/// 32-bit word from the bank's first register, and the bit's mask.
pub const fn bit_slot(intid: u32) -> (usize, u32) {
    ((intid / 32) as usize * 4, 1 << (intid % 32))
}

/// Where `intid`'s byte lies in a bank of one-byte-per-interrupt registers
/// (`GICD_IPRIORITYR<n>`, `GICD_ITARGETSR<n>`): the byte offset of its
/// 32-bit word from the bank's start, and the byte's shift within it.
pub const fn byte_slot(intid: u32) -> (usize, u32) {
    ((intid / 4) as usize * 4, (intid % 4) * 8)
}

/// The GIC architecture version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V2,
    V3,
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Version::V2 => "GICv2",
            Version::V3 => "GICv3",
        })
    }
}

/// `compatible` strings of a GICv3 and of a GICv2 (Linux
/// `Documentation/devicetree/bindings/interrupt-controller/arm,gic-v3.yaml`
/// and `arm,gic.yaml`). Tessera writes the first of each; the others name
/// the same programming model.
pub const V3_COMPATIBLES: [&str; 1] = ["arm,gic-v3"];
pub const V2_COMPATIBLES: [&str; 4] = [
    "arm,cortex-a15-gic",
    "arm,gic-400",
    "arm,cortex-a7-gic",
    "arm,cortex-a9-gic",
];

/// A node path such as `/intc@8000000`.
pub type NodePath = heapless::String<64>;

/// Where the GIC is, as the guest DTB says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub version: Version,
    /// The node the layout was read from.
    pub node: NodePath,
    /// `reg[0]`: the distributor (GICD).
    pub distributor: Region,
    /// `reg[1]`: on GICv3 the redistributors (one 128 KiB frame per vCPU,
    /// [`v3::FRAME_SIZE`]); on GICv2 the CPU interface (GICC).
    pub cpu: Region,
}

/// Why no usable GIC was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    Fdt(FdtError),
    /// No child of the root is compatible with a GIC this kit knows.
    NoController,
    /// The node's `reg` lacks range `index`.
    MissingReg {
        node: NodePath,
        index: usize,
    },
    /// Range `what` of the node's `reg` is smaller than the architecture's
    /// register block.
    TooSmall {
        node: NodePath,
        what: &'static str,
        size: u64,
        minimum: u64,
    },
    /// The redistributor range is not a whole number of frames.
    PartialFrame {
        node: NodePath,
        size: u64,
    },
}

impl From<FdtError> for LayoutError {
    fn from(error: FdtError) -> LayoutError {
        LayoutError::Fdt(error)
    }
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Fdt(error) => write!(f, "cannot read the device tree: {error}"),
            LayoutError::NoController => write!(
                f,
                "no interrupt controller in the device tree (no child of / is compatible with {} or {})",
                V3_COMPATIBLES[0], V2_COMPATIBLES[0]
            ),
            LayoutError::MissingReg { node, index } => {
                write!(f, "{node}: reg has no range {index}")
            }
            LayoutError::TooSmall {
                node,
                what,
                size,
                minimum,
            } => write!(
                f,
                "{node}: reg: the {what} range is {size:#x} bytes, smaller than its {minimum:#x} bytes of registers"
            ),
            LayoutError::PartialFrame { node, size } => write!(
                f,
                "{node}: reg: the redistributor range of {size:#x} bytes is not a whole number of {:#x}-byte frames",
                v3::FRAME_SIZE
            ),
        }
    }
}

impl Layout {
    /// The first child of the root that is a GICv3 or GICv2, and its
    /// registers.
    pub fn find(fdt: &Fdt<'_>) -> Result<Layout, LayoutError> {
        let mut found: Option<(NodePath, Version)> = None;
        let mut error = None;
        fdt.for_each_child("/", |name| {
            if found.is_some() || error.is_some() {
                return;
            }
            let mut path = NodePath::new();
            if path.push('/').is_err() || path.push_str(name).is_err() {
                // A name this long is no GIC node Tessera writes.
                return;
            }
            let version = |compatibles: &[&str]| -> Result<bool, FdtError> {
                for compatible in compatibles {
                    if fdt.is_compatible(&path, compatible)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            };
            match (version(&V3_COMPATIBLES), version(&V2_COMPATIBLES)) {
                (Ok(true), _) => found = Some((path.clone(), Version::V3)),
                (_, Ok(true)) => found = Some((path.clone(), Version::V2)),
                (Err(e), _) | (_, Err(e)) => error = Some(e),
                _ => {}
            }
        })?;
        if let Some(error) = error {
            return Err(error.into());
        }
        let Some((node, version)) = found else {
            return Err(LayoutError::NoController);
        };
        let range = |index: usize| -> Result<Region, LayoutError> {
            fdt.root_reg(&node, index)?
                .ok_or_else(|| LayoutError::MissingReg {
                    node: node.clone(),
                    index,
                })
        };
        let distributor = range(0)?;
        let cpu = range(1)?;
        let (distributor_minimum, cpu_minimum, cpu_name) = match version {
            Version::V3 => (v3::DISTRIBUTOR_SIZE, v3::FRAME_SIZE, "redistributor"),
            Version::V2 => (
                v2::DISTRIBUTOR_SIZE,
                v2::CPU_INTERFACE_SIZE,
                "CPU interface",
            ),
        };
        for (what, region, minimum) in [
            ("distributor", distributor, distributor_minimum),
            (cpu_name, cpu, cpu_minimum),
        ] {
            if region.size < minimum {
                return Err(LayoutError::TooSmall {
                    node,
                    what,
                    size: region.size,
                    minimum,
                });
            }
        }
        if version == Version::V3 && !cpu.size.is_multiple_of(v3::FRAME_SIZE) {
            return Err(LayoutError::PartialFrame {
                node,
                size: cpu.size,
            });
        }
        Ok(Layout {
            version,
            node,
            distributor,
            cpu,
        })
    }
}

/// Whom an SGI is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SgiTargets {
    /// Bit n: the vCPU with MPIDR Aff0 = n (other affinity fields 0). On
    /// GICv2 bit n is CPU interface n, which Tessera makes the same.
    Vcpus(u16),
    /// Every vCPU but the sender (`ICC_SGI1R_EL1.IRM` = 1 on GICv3,
    /// `GICD_SGIR.TargetListFilter` = 0b01 on GICv2).
    AllButSelf,
}

/// Why an SGI cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SgiError {
    /// Only INTIDs 0-15 are SGIs.
    NotAnSgi(u32),
    /// GICv2 has 8 CPU interfaces: target bits above 7 cannot be named.
    TargetsOutOfRange { targets: u16 },
}

impl fmt::Display for SgiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SgiError::NotAnSgi(intid) => write!(f, "INTID {intid} is not an SGI (0-15)"),
            SgiError::TargetsOutOfRange { targets } => write!(
                f,
                "target list {targets:#06x} names CPU interfaces above 7, which GICv2 cannot address"
            ),
        }
    }
}

/// What an acknowledge returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acknowledged {
    /// The register's value, as the end of interrupt wants it back.
    pub raw: u64,
    pub intid: u32,
    /// For an SGI on GICv2: the CPU interface that sent it
    /// (`GICC_IAR.CPUID`). GICv3 does not say.
    pub source: Option<u8>,
}

/// Why the GIC could not be set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitError {
    /// [`init_cpu`] before [`init`]: no layout is known.
    NotInitialised,
    /// The kit keeps state for vCPUs 0 to [`crate::MAX_VCPUS`] - 1 only.
    VcpuOutOfRange(usize),
    /// A busy or asleep bit did not clear.
    Stuck { register: &'static str, value: u32 },
    /// `GICD_CTLR.ARE_NS` reads 0 after being written 1: GICv3 without
    /// affinity routing, which the kit (and Linux) cannot use.
    AffinityRoutingOff { control: u32 },
    /// No redistributor frame (up to the one marked Last) has this vCPU's
    /// affinity in `GICR_TYPER`.
    NoRedistributor { affinity: u32, frames: usize },
    /// `ICC_SRE_EL1.SRE` reads 0: the system register interface is off.
    NoSystemRegisterInterface { sre: u64 },
    /// An access to `ICC_SRE_EL1` raised an exception.
    SystemRegisterTrap(crate::exception::Trap),
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::NotInitialised => {
                write!(f, "the GIC was not set up by the boot vCPU first")
            }
            InitError::VcpuOutOfRange(vcpu) => write!(
                f,
                "vCPU {vcpu} is beyond the kit's {} vCPUs",
                crate::MAX_VCPUS
            ),
            InitError::Stuck { register, value } => {
                write!(f, "{register} did not clear (register reads {value:#010x})")
            }
            InitError::AffinityRoutingOff { control } => write!(
                f,
                "GICD_CTLR reads {control:#010x} after writing ARE_NS: affinity routing is off"
            ),
            InitError::NoRedistributor { affinity, frames } => write!(
                f,
                "no redistributor has affinity {affinity:#x} in GICR_TYPER (searched {frames} frame(s) up to Last)"
            ),
            InitError::NoSystemRegisterInterface { sre } => write!(
                f,
                "ICC_SRE_EL1 reads {sre:#x} after setting SRE: no system register interface"
            ),
            InitError::SystemRegisterTrap(trap) => {
                write!(f, "accessing ICC_SRE_EL1 raised {trap}")
            }
        }
    }
}

/// Two arrivals in the wrong order: a lower priority (a higher value)
/// before a higher one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderViolation {
    /// The index of the later arrival in the list checked.
    pub index: usize,
    /// (INTID, priority) of the arrival before it and of it.
    pub before: (u32, u8),
    pub after: (u32, u8),
}

impl fmt::Display for OrderViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arrival {}: INTID {} (priority {:#04x}) came after INTID {} (priority {:#04x})",
            self.index, self.after.0, self.after.1, self.before.0, self.before.1
        )
    }
}

/// Checks that `arrivals` (INTIDs in the order they were acknowledged)
/// never go from a lower priority to a higher one, comparing the
/// implemented bits only ([`PRIORITY_IMPLEMENTED`]): all pending at once,
/// the highest priority (lowest value) must come first (IHI 0069 §4.8).
pub fn check_priority_order(
    arrivals: &[u32],
    priority_of: impl Fn(u32) -> u8,
) -> Result<(), OrderViolation> {
    let effective = |intid: u32| priority_of(intid) & PRIORITY_IMPLEMENTED;
    for (index, pair) in arrivals.windows(2).enumerate() {
        let (before, after) = (pair[0], pair[1]);
        if effective(after) < effective(before) {
            return Err(OrderViolation {
                index: index + 1,
                before: (before, priority_of(before)),
                after: (after, priority_of(after)),
            });
        }
    }
    Ok(())
}

#[cfg(target_os = "none")]
mod target;
#[cfg(target_os = "none")]
pub use self::target::*;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fdt::builder::Builder;

    fn reg(ranges: &[(u64, u64)]) -> Vec<u8> {
        ranges
            .iter()
            .flat_map(|&(base, size)| {
                base.to_be_bytes()
                    .into_iter()
                    .chain(size.to_be_bytes())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn dtb_with_gic(name: &str, compatible: &[u8], ranges: &[(u64, u64)]) -> Vec<u8> {
        Builder::default()
            .begin("")
            .u32("#address-cells", 2)
            .u32("#size-cells", 2)
            .begin("cpus")
            .begin("cpu@0")
            .string("compatible", "arm,cortex-a72")
            .end()
            .end()
            .begin("timer")
            .string("compatible", "arm,armv8-timer")
            .end()
            .begin(name)
            .property("compatible", compatible)
            .u32("#interrupt-cells", 3)
            .property("interrupt-controller", &[])
            .property("reg", &reg(ranges))
            .end()
            .end()
            .finish()
    }

    #[test]
    fn a_gicv3_node_is_found_by_compatible() {
        let blob = dtb_with_gic(
            "intc@8000000",
            b"arm,gic-v3\0",
            &[(0x0800_0000, 0x1_0000), (0x080a_0000, 0x4_0000)],
        );
        let layout = Layout::find(&Fdt::new(&blob).unwrap()).unwrap();
        assert_eq!(layout.version, Version::V3);
        assert_eq!(layout.node.as_str(), "/intc@8000000");
        assert_eq!(
            layout.distributor,
            Region {
                base: 0x0800_0000,
                size: 0x1_0000
            }
        );
        assert_eq!(
            layout.cpu,
            Region {
                base: 0x080a_0000,
                size: 0x4_0000
            }
        );
    }

    #[test]
    fn a_gicv2_node_is_found_whatever_its_name_and_place_in_the_list() {
        // GIC-400 as a second compatible string, under another node name.
        let blob = dtb_with_gic(
            "interrupt-controller@8000000",
            b"vendor,thing\0arm,gic-400\0",
            &[(0x0800_0000, 0x1000), (0x0801_0000, 0x2000)],
        );
        let layout = Layout::find(&Fdt::new(&blob).unwrap()).unwrap();
        assert_eq!(layout.version, Version::V2);
        assert_eq!(layout.cpu.base, 0x0801_0000);
    }

    #[test]
    fn no_gic_node_is_a_clear_error() {
        let blob = crate::fdt::builder::guest_dtb("role=irq", Some(1));
        let error = Layout::find(&Fdt::new(&blob).unwrap()).unwrap_err();
        assert_eq!(error, LayoutError::NoController);
        assert!(
            error
                .to_string()
                .starts_with("no interrupt controller in the device tree"),
            "the message should say what is missing: {error}"
        );
    }

    #[test]
    fn short_or_missing_ranges_are_reported_with_the_node() {
        let one_range = dtb_with_gic("intc@8000000", b"arm,gic-v3\0", &[(0x0800_0000, 0x1_0000)]);
        let error = Layout::find(&Fdt::new(&one_range).unwrap()).unwrap_err();
        assert_eq!(error.to_string(), "/intc@8000000: reg has no range 1");

        let small = dtb_with_gic(
            "intc@8000000",
            b"arm,cortex-a15-gic\0",
            &[(0x0800_0000, 0x1000), (0x0801_0000, 0x1000)],
        );
        let error = Layout::find(&Fdt::new(&small).unwrap()).unwrap_err();
        assert!(
            matches!(
                error,
                LayoutError::TooSmall {
                    what: "CPU interface",
                    size: 0x1000,
                    minimum: 0x2000,
                    ..
                }
            ),
            "a 4 KiB GICC range must be refused: {error:?}"
        );

        let partial = dtb_with_gic(
            "intc@8000000",
            b"arm,gic-v3\0",
            &[(0x0800_0000, 0x1_0000), (0x080a_0000, 0x3_0000)],
        );
        let error = Layout::find(&Fdt::new(&partial).unwrap()).unwrap_err();
        assert!(
            matches!(error, LayoutError::PartialFrame { size: 0x3_0000, .. }),
            "1.5 redistributor frames must be refused: {error:?}"
        );
    }

    #[test]
    fn bit_and_byte_slots_follow_the_register_banks() {
        assert_eq!(bit_slot(0), (0, 1));
        assert_eq!(bit_slot(27), (0, 1 << 27));
        assert_eq!(bit_slot(33), (4, 1 << 1));
        assert_eq!(bit_slot(97), (12, 1 << 1));
        assert_eq!(byte_slot(0), (0, 0));
        assert_eq!(byte_slot(10), (8, 16));
        assert_eq!(byte_slot(33), (32, 8));
        assert_eq!(byte_slot(1019), (1016, 24));
    }

    #[test]
    fn intid_classes() {
        assert!(is_sgi(15) && !is_sgi(16));
        assert!(is_private(31) && !is_private(32));
        assert!(!is_special(1019) && is_special(1020) && is_special(SPURIOUS));
        assert!(!is_special(1024));
    }

    #[test]
    fn priority_order_accepts_non_decreasing_values_in_implemented_bits() {
        let priority = |intid: u32| [0x10u8, 0x08, 0x30, 0x30, 0x31][intid as usize];
        assert_eq!(check_priority_order(&[1, 0, 2, 3], priority), Ok(()));
        // 0x31 and 0x30 differ only below the implemented bits: equal.
        assert_eq!(check_priority_order(&[4, 2, 3], priority), Ok(()));
        assert_eq!(check_priority_order(&[], priority), Ok(()));
    }

    #[test]
    fn priority_order_names_the_first_inversion() {
        let priority = |intid: u32| u8::try_from(intid * 8).unwrap();
        let violation = check_priority_order(&[1, 2, 5, 3, 4], priority).unwrap_err();
        assert_eq!(
            violation,
            OrderViolation {
                index: 3,
                before: (5, 0x28),
                after: (3, 0x18)
            }
        );
        assert_eq!(
            violation.to_string(),
            "arrival 3: INTID 3 (priority 0x18) came after INTID 5 (priority 0x28)"
        );
    }
}
