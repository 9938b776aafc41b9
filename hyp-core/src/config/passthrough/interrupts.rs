//! A passthrough device's interrupts: GIC SPIs only, read from
//! `interrupts-extended` or else `interrupts` (Devicetree Specification
//! v0.4 §2.4.1: the former takes precedence when both exist).

use alloc::vec::Vec;

use super::Spi;
use super::problem::DeviceProblem;
use crate::dt::Node;
use crate::hw::gic::{self, Gic, Interrupt, decode_interrupts};
use crate::hw::issue;

/// Bytes in one cell.
const CELL_BYTES: usize = 4;
/// Index of the flags cell in a GIC specifier (`arm,gic.yaml`: type, number, flags).
const FLAGS_CELL: usize = 2;

/// The SPIs of `node`; every PPI, foreign parent or malformed specifier
/// goes to `report`.
pub(super) fn read<'a>(
    node: &Node<'a>,
    gic: &Gic<'a>,
    report: &mut impl FnMut(DeviceProblem<'a>),
) -> Vec<Spi> {
    let mut spis = Vec::new();
    if let Some(extended) = node.property("interrupts-extended") {
        let Some(mut cells) = extended.cells() else {
            report(DeviceProblem::Interrupts(malformed(extended.value.len())));
            return spis;
        };
        let specifier_cells = gic.interrupt_cells as usize;
        while let Some(phandle) = cells.next() {
            let parent = node.fdt().find_phandle(phandle);
            if parent != Some(gic.node) {
                report(DeviceProblem::InterruptParent { parent });
                return spis;
            }
            let specifier: Vec<u32> = cells.by_ref().take(specifier_cells).collect();
            if specifier.len() != specifier_cells {
                report(DeviceProblem::Interrupts(malformed(extended.value.len())));
                return spis;
            }
            let bytes: Vec<u8> = specifier.iter().flat_map(|c| c.to_be_bytes()).collect();
            decode(&bytes, gic.interrupt_cells, &mut spis, report);
        }
        return spis;
    }
    let Some(property) = node.property("interrupts") else {
        return spis;
    };
    let parent = gic::interrupt_parent(node.fdt(), node);
    if parent != Some(gic.node) {
        report(DeviceProblem::InterruptParent { parent });
        return spis;
    }
    let stride = (gic.interrupt_cells as usize).saturating_mul(CELL_BYTES);
    if stride == 0 || !property.value.len().is_multiple_of(stride) {
        report(DeviceProblem::Interrupts(malformed(property.value.len())));
        return spis;
    }
    for specifier in property.value.chunks_exact(stride) {
        decode(specifier, gic.interrupt_cells, &mut spis, report);
    }
    spis
}

/// Decodes one GIC specifier of `cells` cells into `spis`.
fn decode<'a>(
    specifier: &[u8],
    cells: u32,
    spis: &mut Vec<Spi>,
    report: &mut impl FnMut(DeviceProblem<'a>),
) {
    let flags = specifier
        .get(FLAGS_CELL * CELL_BYTES..(FLAGS_CELL + 1) * CELL_BYTES)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes);
    match decode_interrupts(specifier, cells).next() {
        Some(Ok(Interrupt::Spi(intid))) => spis.push(Spi { intid, flags }),
        Some(Ok(Interrupt::Ppi(intid))) => report(DeviceProblem::Ppi { intid }),
        Some(Err(problem)) => report(DeviceProblem::Interrupts(problem)),
        None => report(DeviceProblem::Interrupts(malformed(specifier.len()))),
    }
}

fn malformed(bytes: usize) -> issue::Problem {
    issue::Problem::CellCount {
        found: bytes / CELL_BYTES,
        expected: "whole GIC specifiers (#interrupt-cells each)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dt::Fdt;
    use crate::dt::test_builder::Builder;
    use crate::hw::Issues;

    /// A GIC-400 (phandle 1), another controller (phandle 2) and devices
    /// whose interrupts name them.
    fn tree() -> Vec<u8> {
        Builder::default()
            .begin("")
            .prop_cells("#address-cells", &[1])
            .prop_cells("#size-cells", &[1])
            .prop_cells("interrupt-parent", &[1])
            .begin("intc@1000")
            .prop_str("compatible", "arm,gic-400")
            .prop("interrupt-controller", &[])
            .prop_cells("#interrupt-cells", &[3])
            .prop_cells(
                "reg",
                &[
                    0x1000, 0x1000, 0x2000, 0x2000, 0x4000, 0x2000, 0x6000, 0x2000,
                ],
            )
            .prop_cells("interrupts", &[1, 9, 4])
            .prop_cells("phandle", &[1])
            .end()
            .begin("other-intc")
            .prop("interrupt-controller", &[])
            .prop_cells("#interrupt-cells", &[2])
            .prop_cells("phandle", &[2])
            .end()
            .begin("extended@10000")
            .prop_cells("interrupts-extended", &[1, 0, 5, 4, 1, 0, 6, 1])
            .prop_cells("interrupts", &[0, 99, 4])
            .end()
            .begin("mixed@20000")
            .prop_cells("interrupts-extended", &[1, 0, 5, 4, 2, 3, 4])
            .end()
            .begin("short@30000")
            .prop_cells("interrupts-extended", &[1, 0, 5])
            .end()
            .begin("plain@40000")
            .prop_cells("interrupts", &[0, 7, 4, 1, 3, 8])
            .end()
            .end()
            .build()
    }

    fn read_node(path: &str) -> (Vec<Spi>, Vec<String>) {
        let blob = tree();
        let fdt = Fdt::new(&blob).unwrap();
        let gic = gic::discover(&fdt, &mut Issues::default()).unwrap();
        let mut problems = Vec::new();
        let spis = read(&fdt.find_node(path).unwrap(), &gic, &mut |p| {
            problems.push(p.to_string())
        });
        (spis, problems)
    }

    #[test]
    fn interrupts_extended_takes_precedence_and_keeps_each_specifier_s_flags() {
        let (spis, problems) = read_node("/extended@10000");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            spis,
            [
                Spi {
                    intid: 37,
                    flags: 4
                },
                Spi {
                    intid: 38,
                    flags: 1
                }
            ],
            "SPIs 5 and 6 from interrupts-extended, not SPI 99 from interrupts"
        );
    }

    #[test]
    fn interrupts_extended_naming_another_controller_is_refused() {
        let (spis, problems) = read_node("/mixed@20000");
        assert_eq!(
            spis,
            [Spi {
                intid: 37,
                flags: 4
            }]
        );
        assert_eq!(
            problems,
            [
                "its interrupts go to /other-intc, not to the GIC: only GIC SPIs can be routed to a partition"
            ]
        );
    }

    #[test]
    fn a_truncated_specifier_is_malformed() {
        let (spis, problems) = read_node("/short@30000");
        assert!(spis.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("interrupts: has 3 cells"),
            "{problems:?}"
        );
    }

    #[test]
    fn a_ppi_is_reported_and_the_spis_kept() {
        let (spis, problems) = read_node("/plain@40000");
        assert_eq!(
            spis,
            [Spi {
                intid: 39,
                flags: 4
            }]
        );
        assert_eq!(
            problems,
            ["interrupt INTID 19 is a PPI (each CPU's own): only SPIs can be passed through"]
        );
    }
}
