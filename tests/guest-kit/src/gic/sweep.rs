//! A sweep of the GIC's distributor and redistributor registers at every
//! access width: each row states a register's semantics (read-only,
//! read-write, write-1-to-set/clear, write-only, RAZ/WI) and the widths the
//! architecture has it take (issue 14's rule, as Tessera's
//! docs/partitions.md "Access widths" gives it); any other width must read
//! as zero and ignore writes.
//!
//! The same guest runs natively on QEMU and in a Tessera partition. Where
//! either differs from the rule, the difference must be one listed in
//! [`DEVIATIONS`] for that environment (each of Tessera's is in
//! docs/partitions.md, which a host test checks); anything else fails.
//!
//! This module is the table and the judgement; `test-guest`'s role
//! `gic-sweep` does the accesses.

use super::Version;

/// Which frame a row's offset is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame {
    Distributor,
    /// GICv3: the vCPU's redistributor, RD_base frame.
    RdBase,
    /// GICv3: the vCPU's redistributor, SGI_base frame.
    SgiBase,
}

/// What a register does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantics {
    /// Reads a value writes do not change.
    ReadOnly,
    /// The bits of `mask` read back as written (others as they were).
    ReadWrite { mask: u64 },
    /// As `ReadWrite`, and the bits of `echo` read as set exactly when the
    /// bits of `mask` are (GICR_WAKER's ChildrenAsleep).
    ReadWriteEcho { mask: u64, echo: u64 },
    /// Writing 1 to bit `bit` sets it (this register) or clears it (the
    /// register at offset `clear_at`); both read the state.
    SetClear { clear_at: usize, bit: u32 },
    /// Reads 0; writes act (not checked: they send interrupts).
    WriteOnly,
    /// Reads 0, ignores writes.
    RazWi,
}

/// One register the sweep checks.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    pub name: &'static str,
    pub frame: Frame,
    pub offset: usize,
    /// 4, or 8 for a 64-bit register.
    pub size: usize,
    /// The widths the rule gives it, in bytes.
    pub widths: &'static [usize],
    pub semantics: Semantics,
}

/// Every access width, in bytes.
pub const WIDTHS: [usize; 4] = [1, 2, 4, 8];

const WORD: &[usize] = &[4];
const WORD_OR_BYTE: &[usize] = &[1, 4];
const WORD_OR_DOUBLE: &[usize] = &[4, 8];

/// A PPI no device uses, and an SPI the partition owns (its emulated
/// PL011's), whose bits the set/clear and read-write rows move.
pub const PROBE_PPI: u32 = 22;
pub const PROBE_SPI: u32 = 33;

const fn row(
    name: &'static str,
    frame: Frame,
    offset: usize,
    widths: &'static [usize],
    semantics: Semantics,
) -> Row {
    Row {
        name,
        frame,
        offset,
        size: 4,
        widths,
        semantics,
    }
}

/// Bit `intid % 32` of a one-bit-per-INTID register.
const fn bit(intid: u32) -> u64 {
    1 << (intid % 32)
}

/// The top five priority bits of `intid`'s byte (what a virtual CPU
/// interface surely implements).
const fn priority(intid: u32) -> u64 {
    0xf8 << (8 * (intid % 4))
}

/// The edge bit of `intid`'s two-bit GICD_ICFGR field.
const fn edge(intid: u32) -> u64 {
    0b10 << (2 * (intid % 16))
}

/// A set/clear pair's rows for the bank at `set` (`clear` at +0x80),
/// moving `intid`'s bit.
const fn set_clear(
    set_name: &'static str,
    clear_name: &'static str,
    frame: Frame,
    set: usize,
    intid: u32,
) -> [Row; 2] {
    let offset = set + (intid as usize / 32) * 4;
    [
        row(
            set_name,
            frame,
            offset,
            WORD,
            Semantics::SetClear {
                clear_at: offset + 0x80,
                bit: intid % 32,
            },
        ),
        row(clear_name, frame, offset + 0x80, WORD, Semantics::ReadOnly),
    ]
}

const D: Frame = Frame::Distributor;
const R: Frame = Frame::RdBase;
const S: Frame = Frame::SgiBase;

/// The distributor rows both versions have (SPI registers through
/// [`PROBE_SPI`]).
const DISTRIBUTOR: [Row; 12] = {
    let [isenabler, icenabler] =
        set_clear("GICD_ISENABLER1", "GICD_ICENABLER1", D, 0x100, PROBE_SPI);
    let [ispendr, icpendr] = set_clear("GICD_ISPENDR1", "GICD_ICPENDR1", D, 0x200, PROBE_SPI);
    let [isactiver, icactiver] =
        set_clear("GICD_ISACTIVER1", "GICD_ICACTIVER1", D, 0x300, PROBE_SPI);
    [
        row(
            "GICD_CTLR",
            D,
            0x0,
            WORD,
            Semantics::ReadWrite { mask: 0b11 },
        ),
        row("GICD_TYPER", D, 0x4, WORD, Semantics::ReadOnly),
        row("GICD_IIDR", D, 0x8, WORD, Semantics::ReadOnly),
        row(
            "GICD_IGROUPR1",
            D,
            0x84,
            WORD,
            Semantics::ReadWrite {
                mask: bit(PROBE_SPI),
            },
        ),
        isenabler,
        icenabler,
        ispendr,
        icpendr,
        isactiver,
        icactiver,
        row(
            "GICD_IPRIORITYR8",
            D,
            0x420,
            WORD_OR_BYTE,
            Semantics::ReadWrite {
                mask: priority(PROBE_SPI),
            },
        ),
        row(
            "GICD_ICFGR2",
            D,
            0xc08,
            WORD,
            Semantics::ReadWrite {
                mask: edge(PROBE_SPI),
            },
        ),
    ]
};

/// GICv3's own: routing, identification, the redistributor (SGIs and
/// PPIs through [`PROBE_PPI`]), and what affinity routing makes reserved.
const GICV3: [Row; 17] = {
    let [isenabler, icenabler] =
        set_clear("GICR_ISENABLER0", "GICR_ICENABLER0", S, 0x100, PROBE_PPI);
    let [ispendr, icpendr] = set_clear("GICR_ISPENDR0", "GICR_ICPENDR0", S, 0x200, PROBE_PPI);
    let [isactiver, icactiver] =
        set_clear("GICR_ISACTIVER0", "GICR_ICACTIVER0", S, 0x300, PROBE_PPI);
    [
        Row {
            name: "GICD_IROUTER33",
            frame: D,
            offset: 0x6000 + 8 * PROBE_SPI as usize,
            size: 8,
            widths: WORD_OR_DOUBLE,
            // Aff0 names vCPU 1 (an affinity both environments have).
            semantics: Semantics::ReadWrite { mask: 0x1 },
        },
        row("GICD_PIDR2", D, 0xffe8, WORD, Semantics::ReadOnly),
        // GICD_ITARGETSR<n> is RES0 with affinity routing.
        row("GICD_ITARGETSR8", D, 0x820, WORD_OR_BYTE, Semantics::RazWi),
        row("GICD_reserved_0x10", D, 0x10, WORD, Semantics::RazWi),
        Row {
            name: "GICR_TYPER",
            frame: R,
            offset: 0x8,
            size: 8,
            widths: WORD_OR_DOUBLE,
            semantics: Semantics::ReadOnly,
        },
        row("GICR_IIDR", R, 0x4, WORD, Semantics::ReadOnly),
        row(
            "GICR_WAKER",
            R,
            0x14,
            WORD,
            Semantics::ReadWriteEcho {
                mask: 0b10,
                echo: 0b100,
            },
        ),
        row("GICR_PIDR2", R, 0xffe8, WORD, Semantics::ReadOnly),
        row(
            "GICR_IGROUPR0",
            S,
            0x80,
            WORD,
            Semantics::ReadWrite {
                mask: bit(PROBE_PPI),
            },
        ),
        isenabler,
        icenabler,
        ispendr,
        icpendr,
        isactiver,
        icactiver,
        row(
            "GICR_IPRIORITYR5",
            S,
            0x414,
            WORD_OR_BYTE,
            Semantics::ReadWrite {
                mask: priority(PROBE_PPI),
            },
        ),
        row("GICR_ICFGR0", S, 0xc00, WORD, Semantics::ReadOnly),
    ]
};

/// GICv2's own: the banked SGI and PPI registers (through [`PROBE_PPI`]),
/// targets, and the SGI registers.
const GICV2: [Row; 16] = {
    let [isenabler, icenabler] =
        set_clear("GICD_ISENABLER0", "GICD_ICENABLER0", D, 0x100, PROBE_PPI);
    let [ispendr, icpendr] = set_clear("GICD_ISPENDR0", "GICD_ICPENDR0", D, 0x200, PROBE_PPI);
    let [isactiver, icactiver] =
        set_clear("GICD_ISACTIVER0", "GICD_ICACTIVER0", D, 0x300, PROBE_PPI);
    [
        row(
            "GICD_IGROUPR0",
            D,
            0x80,
            WORD,
            Semantics::ReadWrite {
                mask: bit(PROBE_PPI),
            },
        ),
        isenabler,
        icenabler,
        ispendr,
        icpendr,
        isactiver,
        icactiver,
        row(
            "GICD_IPRIORITYR5",
            D,
            0x414,
            WORD_OR_BYTE,
            Semantics::ReadWrite {
                mask: priority(PROBE_PPI),
            },
        ),
        row(
            "GICD_ITARGETSR0",
            D,
            0x800,
            WORD_OR_BYTE,
            Semantics::ReadOnly,
        ),
        // Byte 1 is SPI 33: its bit for CPU interface 0 moves.
        row(
            "GICD_ITARGETSR8",
            D,
            0x820,
            WORD_OR_BYTE,
            Semantics::ReadWrite { mask: 0x100 },
        ),
        row("GICD_ICFGR0", D, 0xc00, WORD, Semantics::ReadOnly),
        row("GICD_SGIR", D, 0xf00, WORD, Semantics::WriteOnly),
        // SGI 1's byte; bit 0 is the source CPU interface 0.
        row(
            "GICD_SPENDSGIR0",
            D,
            0xf20,
            WORD_OR_BYTE,
            Semantics::SetClear {
                clear_at: 0xf10,
                bit: 8,
            },
        ),
        row(
            "GICD_CPENDSGIR0",
            D,
            0xf10,
            WORD_OR_BYTE,
            Semantics::ReadOnly,
        ),
        row("GICD_PIDR2", D, 0xfe8, WORD, Semantics::ReadOnly),
        row("GICD_reserved_0xf04", D, 0xf04, WORD, Semantics::RazWi),
    ]
};

/// The rows for a GIC of `version`.
pub fn rows(version: Version) -> impl Iterator<Item = &'static Row> {
    let own: &'static [Row] = match version {
        Version::V3 => &GICV3,
        Version::V2 => &GICV2,
    };
    DISTRIBUTOR.iter().chain(own.iter())
}

/// Where the sweep runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// QEMU's own GIC, no hypervisor.
    Native,
    /// A Tessera partition.
    Tessera,
}

/// A known difference from the rule: in `environment`, on `version`,
/// accesses of `widths` bytes to register `row` (`None`: to any register)
/// do `what`.
#[derive(Debug, Clone, Copy)]
pub struct Deviation {
    pub environment: Environment,
    pub version: Version,
    pub row: Option<&'static str>,
    pub widths: &'static [usize],
    pub what: &'static str,
}

impl Deviation {
    /// Whether it covers the access: then the access may differ from the
    /// rule, and one named for its register must.
    fn covers(&self, environment: Environment, version: Version, row: &str, width: usize) -> bool {
        self.environment == environment
            && self.version == version
            && self.row.is_none_or(|name| name == row)
            && self.widths.contains(&width)
    }

    /// Whether an access it covers must differ from the rule (one named
    /// for its register), or may (one for every register).
    pub fn must_occur(&self) -> bool {
        self.row.is_some()
    }
}

/// Every known difference. Tessera's are listed in docs/partitions.md
/// ("Deviations"); QEMU's are its own model's.
pub const DEVIATIONS: &[Deviation] = &[Deviation {
    environment: Environment::Native,
    version: Version::V2,
    row: None,
    widths: &[1, 2, 8],
    what: "QEMU's GICv2 model acts on 8- and 16-bit accesses to every register, and splits 64-bit ones into two 32-bit accesses",
}];

/// The known deviation covering an access, if any.
pub fn known(
    environment: Environment,
    version: Version,
    row: &str,
    width: usize,
) -> Option<&'static Deviation> {
    DEVIATIONS
        .iter()
        .find(|d| d.covers(environment, version, row, width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_named_once_and_aligned_to_their_widths() {
        for version in [Version::V3, Version::V2] {
            let mut names: Vec<(Frame, &str)> = Vec::new();
            for row in rows(version) {
                assert!(
                    !names.contains(&(row.frame, row.name)),
                    "{version:?}: {} twice",
                    row.name
                );
                names.push((row.frame, row.name));
                assert!(row.offset.is_multiple_of(row.size), "{}", row.name);
                assert!(
                    row.widths.contains(&4),
                    "{}: every register takes 32 bits",
                    row.name
                );
            }
        }
    }

    #[test]
    fn every_tessera_deviation_is_documented() {
        let docs = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/partitions.md"),
        )
        .expect("docs/partitions.md");
        for deviation in DEVIATIONS
            .iter()
            .filter(|d| d.environment == Environment::Tessera)
        {
            assert!(
                docs.contains(deviation.what),
                "docs/partitions.md does not list Tessera's deviation {deviation:?}"
            );
        }
    }
}
