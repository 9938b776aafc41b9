//! Roles `pl031` and `pl031-denied`: device passthrough of QEMU virt's
//! PL031 RTC (`tests/overlays/qemu-virt-passthrough.dts`).
//!
//! - `pl031`: the partition given `/pl031@9010000`. Its device tree has the
//!   node as Tessera copies it (host address, SPI 2 on the guest's GIC),
//!   and its registers answer at their host address: the PrimeCell
//!   identification registers read what the PL031 TRM gives. Its alarm
//!   interrupt arrives, and still does after a restart from inside its
//!   handler ([`crate::pl031_alarm`]).
//! - `pl031-denied`: a partition beside it, without the device. Its tree
//!   has no such node and a read of the same address aborts.
//!
//! Both then power off their partition.

use tessera_guest_kit::probe::probe_read;
use tessera_guest_kit::psci::Psci;
use tessera_guest_kit::report::{self, Outcome};
use tessera_guest_kit::{ensure, fail, println};

use crate::context::{Context, cells};
use crate::pl031_alarm;

/// Where QEMU virt has its PL031, and the guest finds it (IPA = PA).
const PL031_BASE: u64 = 0x0901_0000;
const PL031_PATH: &str = "/pl031@9010000";
/// PL031 TRM (ARM DDI 0224) §3.3: RTCPeriphID0-3 at 0xFE0-0xFEC and
/// RTCPCellID0-3 at 0xFF0-0xFFC, one byte each in the low 8 bits.
const RTC_PERIPH_ID0: u64 = 0xfe0;
const RTC_PCELL_ID0: u64 = 0xff0;
/// Part number 0x031, designer 0x41 (ARM), revision 1 (as QEMU models
/// it), then the PrimeCell identification 0xB105F00D.
const PERIPH_ID: [u32; 4] = [0x31, 0x10, 0x14, 0x00];
const PCELL_ID: [u32; 4] = [0x0d, 0xf0, 0x05, 0xb1];
/// The guest's GIC, every passthrough node's interrupt parent
/// (`hyp-core/src/guest/device_tree.rs`).
const GIC_PHANDLE: u32 = 2;

pub fn run(context: &Context) -> ! {
    report::begin("pl031");
    report::case("pl031_node", || node(context));
    report::case("pl031_periph_id", || {
        identification(RTC_PERIPH_ID0, PERIPH_ID)
    });
    report::case("pl031_pcell_id", || identification(RTC_PCELL_ID0, PCELL_ID));
    let mut ready = None;
    report::case("pl031_gic_set_up", || {
        ready = Some(pl031_alarm::set_up(context)?);
        Ok(())
    });
    if let Some(gic) = ready {
        if context.boot_count.unwrap_or(1) <= 1 {
            report::case("pl031_alarm", || pl031_alarm::alarm_arrives(&gic));
            report::case("pl031_alarm_cleared_then_fires_again", || {
                pl031_alarm::cleared_then_fires_again(&gic)
            });
            report::case("pl031_alarm_pending_while_active", || {
                pl031_alarm::pending_while_active(&gic)
            });
            report::case(
                "pl031_restart_while_active",
                pl031_alarm::restart_while_active,
            );
        } else {
            report::case("pl031_reset_after_restart", || {
                pl031_alarm::reset_after_restart(&gic)
            });
            report::case("pl031_alarm_after_restart", || {
                pl031_alarm::alarm_arrives(&gic)
            });
        }
    }
    report::finish();
    Psci::HVC.system_off()
}

pub fn run_denied(context: &Context) -> ! {
    report::begin("pl031-denied");
    report::case("pl031_not_in_tree", || {
        match context.fdt.property(PL031_PATH, "compatible") {
            Ok(None) => Ok(()),
            Ok(Some(_)) => fail!("{PL031_PATH} is in the tree of a partition not given it"),
            Err(error) => fail!("reading the tree: {error}"),
        }
    });
    report::case("pl031_aborts", || {
        let address = PL031_BASE + RTC_PERIPH_ID0;
        match probe_read(address) {
            Ok(value) => fail!("read of {address:#x} returned {value:#x} instead of a data abort"),
            Err(trap) => {
                ensure!(
                    trap.is_data_abort(),
                    "read of {address:#x} raised {trap}, expected a data abort"
                );
                Ok(())
            }
        }
    });
    report::finish();
    Psci::HVC.system_off()
}

/// The copied node: its `reg` at the host address, SPI 2 level-high on the
/// guest's GIC.
fn node(context: &Context) -> Outcome {
    let property = |name| match context.fdt.property(PL031_PATH, name) {
        Ok(Some(value)) => Ok(value),
        Ok(None) => fail!("{PL031_PATH} has no {name}"),
        Err(error) => fail!("{PL031_PATH}: {name}: {error}"),
    };
    let compatible = property("compatible")?;
    ensure!(
        compatible.starts_with(b"arm,pl031\0"),
        "{PL031_PATH}: compatible does not start with \"arm,pl031\""
    );
    ensure!(
        cells::<4>(property("reg")?) == [0, 0x0901_0000, 0, 0x1000],
        "{PL031_PATH}: reg is not <0x0 0x9010000 0x0 0x1000>"
    );
    ensure!(
        cells::<4>(property("interrupts")?) == [0, 2, 4],
        "{PL031_PATH}: interrupts is not <0 2 4> (SPI 2, level high)"
    );
    ensure!(
        cells::<4>(property("interrupt-parent")?) == [GIC_PHANDLE],
        "{PL031_PATH}: interrupt-parent is not the guest's GIC (phandle {GIC_PHANDLE})"
    );
    Ok(())
}

/// Four identification registers from `first`, each the byte `expected`.
fn identification(first: u64, expected: [u32; 4]) -> Outcome {
    for (index, want) in (0u64..).zip(expected) {
        let address = PL031_BASE + first + 4 * index;
        match probe_read(address) {
            Ok(value) => ensure!(
                value & 0xff == want,
                "{address:#x} read {value:#x}, expected {want:#x}"
            ),
            Err(trap) => fail!("read of {address:#x} raised {trap}"),
        }
    }
    println!(
        "pl031: identification at {:#x} as the TRM gives it",
        PL031_BASE + first
    );
    Ok(())
}
