//! Role `gic-sweep`: every row of the kit's register table
//! ([`tessera_guest_kit::gic::sweep`]) at every access width, natively on
//! QEMU or in a partition (which it tells by `/chosen`'s boot count).
//!
//! A width the rule gives a register must show the row's semantics; any
//! other must read 0 and change nothing. A difference from the rule passes
//! only if the table lists it for this environment, and a listed one that
//! does not happen fails too (the list stays true). One `TEST` case per
//! register; interrupts stay masked throughout, so nothing the sweep makes
//! pending is taken, and each register is put back as it was.

use core::fmt::Write as _;

use tessera_guest_kit::gic::sweep::{self, Environment, Frame, Row, Semantics, WIDTHS};
use tessera_guest_kit::gic::{self, Layout, Version};
use tessera_guest_kit::mmio::Mmio;
use tessera_guest_kit::psci::Psci;
use tessera_guest_kit::report::{self, Failure};
use tessera_guest_kit::{cpu, fail, println};

use crate::context::Context;

pub const ROLE: &str = "gic-sweep";

/// GICv3 redistributor frames: RD_base, then SGI_base.
const FRAME_SIZE: usize = 0x1_0000;

/// The blocks the rows' frames name.
struct Blocks {
    distributor: Mmio,
    rd_base: Mmio,
    sgi_base: Mmio,
}

impl Blocks {
    fn of(&self, frame: Frame) -> &Mmio {
        match frame {
            Frame::Distributor => &self.distributor,
            Frame::RdBase => &self.rd_base,
            Frame::SgiBase => &self.sgi_base,
        }
    }
}

pub fn run(context: &Context) -> ! {
    report::begin(ROLE);
    cpu::mask_irqs();
    let environment = if context.boot_count.is_some() {
        Environment::Tessera
    } else {
        Environment::Native
    };
    let mut found = None;
    report::case("gic_found", || {
        let layout =
            Layout::find(&context.fdt).map_err(|error| Failure::new(format_args!("{error}")))?;
        gic::init(&layout)
            .map_err(|error| Failure::new(format_args!("setting up the GIC: {error}")))?;
        found = Some(layout);
        Ok(())
    });
    if let Some(layout) = found {
        println!(
            "gic-sweep: {} {}, {:?}",
            layout.version, layout.node, environment
        );
        let address = |value: u64| usize::try_from(value).unwrap_or(0);
        let (distributor, size) = (
            address(layout.distributor.base),
            address(layout.distributor.size),
        );
        let redistributor = address(layout.cpu.base);
        // SAFETY: the GIC's frames as the DTB gives them: device registers
        // no Rust reference covers; this vCPU's redistributor is the first.
        let blocks = unsafe {
            Blocks {
                distributor: Mmio::new(distributor, size),
                rd_base: Mmio::new(redistributor, FRAME_SIZE),
                sgi_base: Mmio::new(redistributor + FRAME_SIZE, FRAME_SIZE),
            }
        };
        for row in sweep::rows(layout.version) {
            report::case(row.name, || {
                judge(&blocks, row, layout.version, environment)
            });
        }
        report::case("lacking_spis_raz_wi", || lacking_spis(&blocks.distributor));
    }
    report::finish();
    Psci::HVC.system_off()
}

/// Every width of `row` against the rule and the known deviations.
fn judge(
    blocks: &Blocks,
    row: &Row,
    version: Version,
    environment: Environment,
) -> tessera_guest_kit::report::Outcome {
    let block = blocks.of(row.frame);
    let mut wrong: heapless::String<400> = heapless::String::new();
    for width in WIDTHS {
        let Some(offset) = access_offset(row, width) else {
            continue;
        };
        let observed = check(block, row, offset, width);
        let deviation = sweep::known(environment, version, row.name, width);
        match (observed, deviation) {
            (Ok(()), None) => {}
            (Err(what), Some(deviation)) => {
                println!(
                    "gic-sweep: {} at {width} bytes: {what}: known deviation: {}",
                    row.name, deviation.what
                );
            }
            (Err(what), None) => {
                let _ = write!(wrong, " {width} bytes: {what};");
            }
            (Ok(()), Some(deviation)) if !deviation.must_occur() => {}
            (Ok(()), Some(deviation)) => {
                let _ = write!(
                    wrong,
                    " {width} bytes: follows the rule, but is listed as deviating ({});",
                    deviation.what
                );
            }
        }
    }
    if !wrong.is_empty() {
        fail!("{}:{wrong}", row.name);
    }
    Ok(())
}

/// GICD registers of SPIs 32-63 (the second word of each bit bank).
const GICD_IGROUPR1: usize = 0x084;
const GICD_ISENABLER1: usize = 0x104;
const GICD_ICENABLER1: usize = 0x184;
const GICD_ISPENDR1: usize = 0x204;
const GICD_ICPENDR1: usize = 0x284;
const GICD_ISACTIVER1: usize = 0x304;
const GICD_ICACTIVER1: usize = 0x384;
const GICD_IPRIORITYR: usize = 0x400;
const GICD_ICFGR: usize = 0xc00;

/// The SPIs 32-63 the GIC implements are those whose enable bit sticks
/// (GICD_ISENABLER1 written with all ones); the others must read 0 and
/// ignore writes in every bank. Natively QEMU implements them all; a
/// partition, its own SPIs only.
fn lacking_spis(distributor: &Mmio) -> tessera_guest_kit::report::Outcome {
    let enabled = distributor.read32(GICD_ISENABLER1);
    distributor.write32(GICD_ISENABLER1, u32::MAX);
    let implemented = distributor.read32(GICD_ISENABLER1);
    distributor.write32(GICD_ICENABLER1, !enabled);
    let lacking = !implemented;
    println!("gic-sweep: SPIs 32-63 implemented: {implemented:#010x}");
    let Some(spi) = (0..32).find(|bit| lacking & (1 << bit) != 0) else {
        return Ok(());
    };
    let intid = 32 + spi as usize;
    let mut wrong: heapless::String<200> = heapless::String::new();
    for (name, set, clear) in [
        ("GICD_IGROUPR1", GICD_IGROUPR1, None),
        ("GICD_ISPENDR1", GICD_ISPENDR1, Some(GICD_ICPENDR1)),
        ("GICD_ISACTIVER1", GICD_ISACTIVER1, Some(GICD_ICACTIVER1)),
    ] {
        let before = distributor.read32(set);
        distributor.write32(set, before | lacking);
        let after = distributor.read32(set);
        distributor.write32(
            clear.unwrap_or(set),
            if clear.is_some() { lacking } else { before },
        );
        if after & lacking != 0 {
            let _ = write!(wrong, " {name} reads {:#x} of them;", after & lacking);
        }
    }
    distributor.write8(GICD_IPRIORITYR + intid, 0xff);
    let priority = distributor.read8(GICD_IPRIORITYR + intid);
    if priority != 0 {
        let _ = write!(wrong, " SPI {intid}'s priority reads {priority:#x};");
    }
    let (config, edge) = (GICD_ICFGR + intid / 16 * 4, 0b10 << (2 * (intid % 16)));
    let before = distributor.read32(config);
    distributor.write32(config, before | edge);
    let after = distributor.read32(config);
    distributor.write32(config, before);
    if after & edge != 0 {
        let _ = write!(wrong, " SPI {intid} reads edge-triggered;");
    }
    if !wrong.is_empty() {
        fail!("SPIs {lacking:#010x} are not implemented, yet:{wrong}");
    }
    Ok(())
}

/// Where an access of `width` bytes to `row` goes: the naturally aligned
/// lane of the register that holds the bits the row moves (wider than the
/// register: from its start). `None` where no aligned access of that width
/// starts in the register.
fn access_offset(row: &Row, width: usize) -> Option<usize> {
    let interest = match row.semantics {
        Semantics::ReadWrite { mask } | Semantics::ReadWriteEcho { mask, .. } => mask,
        Semantics::SetClear { bit, .. } => 1 << bit,
        _ => 1,
    };
    let byte = (interest.trailing_zeros() / 8) as usize;
    let offset = row.offset + byte / width * width;
    offset.is_multiple_of(width).then_some(offset)
}

/// The 32-bit words from `offset` & !7 on: what any access there covers.
fn words(block: &Mmio, offset: usize) -> u64 {
    let base = offset & !7;
    u64::from(block.read32(base)) | u64::from(block.read32(base + 4)) << 32
}

fn put_words(block: &Mmio, offset: usize, value: u64) {
    let base = offset & !7;
    #[allow(clippy::cast_possible_truncation, reason = "the two halves")]
    {
        block.write32(base, value as u32);
        block.write32(base + 4, (value >> 32) as u32);
    }
}

/// The bits of `words(offset)` an access of `width` at `offset` moves.
fn lanes(offset: usize, width: usize) -> u64 {
    let shift = 8 * (offset % 8);
    let mask = if width >= 8 {
        u64::MAX
    } else {
        (1 << (8 * width)) - 1
    };
    mask << shift
}

/// `value` (the register's bits, from its own offset) placed in
/// `words(row.offset)`.
fn in_words(row: &Row, value: u64) -> u64 {
    value << (8 * (row.offset % 8))
}

/// One access of `width` at `offset` in `row`: `Err` says how it differs
/// from the rule.
fn check(
    block: &Mmio,
    row: &Row,
    offset: usize,
    width: usize,
) -> Result<(), heapless::String<120>> {
    let mut out: heapless::String<120> = heapless::String::new();
    let lane = lanes(offset, width);
    let shift = 8 * (offset % 8);
    let before = words(block, offset);
    let read = block.read(offset, width);
    if !row.widths.contains(&width) {
        if matches!(row.semantics, Semantics::WriteOnly) {
            if read != 0 {
                let _ = write!(out, "reads {read:#x}, expected 0");
                return Err(out);
            }
            return Ok(());
        }
        let probe = match row.semantics {
            Semantics::ReadWrite { mask } | Semantics::ReadWriteEcho { mask, .. } => {
                before ^ in_words(row, mask)
            }
            Semantics::SetClear { bit, .. } => in_words(row, 1 << bit),
            _ => u64::MAX,
        };
        block.write(offset, width, (probe & lane) >> shift);
        let after = words(block, offset);
        restore(block, row, offset, before);
        if read != 0 || after != before {
            let _ = write!(
                out,
                "reads {read:#x} and a write changed {before:#x} to {after:#x}, expected RAZ/WI"
            );
            return Err(out);
        }
        return Ok(());
    }
    let result = match row.semantics {
        Semantics::ReadOnly | Semantics::RazWi => {
            let expected = if matches!(row.semantics, Semantics::RazWi) {
                0
            } else {
                (before & lane) >> shift
            };
            block.write(offset, width, u64::MAX);
            let after = words(block, offset);
            restore(block, row, offset, before);
            if read != expected || after != before {
                let _ = write!(
                    out,
                    "reads {read:#x} (expected {expected:#x}), a write changed {before:#x} to {after:#x}"
                );
            }
            if matches!(row.semantics, Semantics::RazWi) && before & lane != 0 {
                let _ = write!(out, " holds {before:#x}, expected 0");
            }
            out
        }
        Semantics::ReadWrite { mask } | Semantics::ReadWriteEcho { mask, .. } => {
            let echo = match row.semantics {
                Semantics::ReadWriteEcho { echo, .. } => echo,
                _ => 0,
            };
            let moved = in_words(row, mask) & lane;
            let pattern = before ^ moved;
            block.write(offset, width, (pattern & lane) >> shift);
            let after = words(block, offset);
            restore(block, row, offset, before);
            let echoed = if pattern & in_words(row, mask) != 0 {
                pattern | in_words(row, echo)
            } else {
                pattern & !in_words(row, echo)
            };
            let expected =
                (echoed & (in_words(row, mask | echo))) | (before & !in_words(row, mask | echo));
            if read != (before & lane) >> shift || after != expected {
                let _ = write!(
                    out,
                    "read {read:#x} of {before:#x}; writing {pattern:#x} left {after:#x}, expected {expected:#x}"
                );
            }
            out
        }
        Semantics::SetClear { clear_at, bit } => {
            let own = in_words(row, 1 << bit);
            let clear_own = (1u64 << bit) << (8 * (clear_at % 8));
            // Clear first, at 32 bits.
            put_clear(block, clear_at, bit);
            let cleared = words(block, row.offset) & own == 0;
            block.write(offset, width, (own & lane) >> shift);
            let set = words(block, row.offset) & own != 0;
            block.write(
                clear_at + (offset - row.offset),
                width,
                (clear_own & lane) >> shift,
            );
            let cleared_again = words(block, row.offset) & own == 0;
            put_clear(block, clear_at, bit);
            if !(cleared && set && cleared_again) {
                let _ = write!(
                    out,
                    "bit {bit}: clear at 32 bits {cleared}, set {set}, cleared {cleared_again}"
                );
            }
            out
        }
        Semantics::WriteOnly => {
            if read != 0 {
                let _ = write!(out, "reads {read:#x}, expected 0");
            }
            out
        }
    };
    if result.is_empty() {
        Ok(())
    } else {
        Err(result)
    }
}

/// Writes `bit` of the clear register at `clear_at` (32 bits).
fn put_clear(block: &Mmio, clear_at: usize, bit: u32) {
    block.write32(clear_at, 1 << bit);
}

/// Puts back what the register held before the check.
fn restore(block: &Mmio, row: &Row, offset: usize, before: u64) {
    match row.semantics {
        Semantics::SetClear { clear_at, bit } => put_clear(block, clear_at, bit),
        Semantics::ReadWrite { .. } | Semantics::ReadWriteEcho { .. }
            if words(block, offset) != before =>
        {
            put_words(block, offset, before);
        }
        _ => {}
    }
}
