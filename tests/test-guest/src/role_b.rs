//! Role `b`: isolation and restart.
//!
//! On its first boot it checks that every guest physical address outside its
//! RAM and its PL011 aborts (one `TEST` line per class of address, each
//! address read and written), fills its free RAM four times, and asks for a
//! restart (SYSTEM_RESET). Tessera restarts the partition with a scrubbed
//! RAM and `/chosen/tessera,boot-count` one higher; the second boot checks
//! that its free RAM reads zero, tests the RAM twice, prints `b: done` and powers off.

use tessera_guest_kit::console::PL011_BASE;
use tessera_guest_kit::fdt::Region;
use tessera_guest_kit::memory;
use tessera_guest_kit::probe::{probe_execute, probe_read, probe_write};
use tessera_guest_kit::psci::Psci;
use tessera_guest_kit::report::{self, Outcome};
use tessera_guest_kit::{ensure, exception::Trap, fail, println};

use crate::context::{BootCount, Context, ram_round};

const PAGE: u64 = 4096;
const GIB: u64 = 1 << 30;
/// The guest's intermediate physical address space: 39 bits, the smallest
/// stage-2 input size Tessera configures.
const IPA_LIMIT: u64 = 1 << 39;
/// Inside the guest's GIC region but in none of the frames its virtual GIC
/// has: where a GICv2 host keeps its hypervisor control interface (GICH),
/// which must never be a guest's.
const GIC_HYPERVISOR_INTERFACE: u64 = 0x0803_0000;
/// Host physical addresses on QEMU virt of Tessera's DTB, of the boot
/// modules and of another partition's RAM: a guest must not reach them.
const HOST_ADDRESSES: [u64; 3] = [0x4800_0000, 0x4900_0000, 0x5000_0000];
/// What probe writes store: zero disables what it lands on, if anything.
const PROBE_VALUE: u32 = 0;

/// Names of the RAM test cases, by round.
const RAM_ROUNDS: [&str; 4] = ["ram_round_1", "ram_round_2", "ram_round_3", "ram_round_4"];

pub fn run(context: &Context) -> ! {
    report::begin("b");
    println!("b: boot {}", BootCount(context.boot_count));
    let boot = match context.boot_count {
        Some(count) => count,
        None => {
            println!("b: no /chosen/tessera,boot-count: taking this as boot 1");
            1
        }
    };
    if boot <= 1 {
        first_boot(context)
    } else {
        report::case("ram_scrubbed", || ram_scrubbed(context));
        for (round, name) in (1..).zip(&RAM_ROUNDS[..2]) {
            report::case(name, || ram_round(context, 100 + round));
        }
        report::finish();
        println!("b: done");
        Psci::HVC.system_off()
    }
}

fn first_boot(context: &Context) -> ! {
    let ram = context.ram();
    let class = |name: &str, addresses: &mut dyn Iterator<Item = u64>| {
        report::case(name, || {
            let ram = ram.clone()?;
            probe_all(ram, addresses)
        });
    };
    class("probe_zero", &mut [0].into_iter());
    class("probe_gic", &mut [GIC_HYPERVISOR_INTERFACE].into_iter());
    class(
        "probe_past_pl011",
        &mut [PL011_BASE as u64 + PAGE].into_iter(),
    );
    if let Ok(ram) = ram.clone() {
        class(
            "probe_below_ram",
            &mut [ram.base.saturating_sub(PAGE)].into_iter(),
        );
        class("probe_ram_end", &mut [ram.end()].into_iter());
    }
    class("probe_host_addresses", &mut HOST_ADDRESSES.into_iter());
    class("probe_4gib", &mut [4 * GIB].into_iter());
    class("probe_ipa_limit", &mut [IPA_LIMIT - PAGE].into_iter());
    class(
        "probe_every_gib",
        &mut (0..IPA_LIMIT / GIB).map(|step| step * GIB),
    );

    report::case("execute_outside_ram", || execute_aborts(4 * GIB));

    for (round, name) in (1..).zip(RAM_ROUNDS) {
        report::case(name, || ram_round(context, round));
    }
    report::finish();
    Psci::HVC.system_reset()
}

/// After a restart every free word reads zero, not what the previous boot
/// wrote there: Tessera scrubs a partition's RAM before each boot.
fn ram_scrubbed(context: &Context) -> Outcome {
    for range in &context.free_ram()? {
        // SAFETY: free RAM of this guest, only read.
        if let Err((mismatch, count)) = unsafe { memory::verify_zero(*range) } {
            fail!(
                "{count} word(s) of {:#x}..{:#x} not scrubbed; first at {:#x}: {:#x}",
                range.base,
                range.end(),
                mismatch.address,
                mismatch.found
            );
        }
    }
    Ok(())
}

/// Whether a probe may touch `address`: not the guest's RAM (the probe
/// would write it) nor its UART.
fn may_probe(ram: Region, address: u64) -> bool {
    let uart = PL011_BASE as u64;
    !ram.contains(address) && !(uart..uart + PAGE).contains(&address)
}

/// Reads and writes each address outside RAM; each access must abort.
fn probe_all(ram: Region, addresses: &mut dyn Iterator<Item = u64>) -> Outcome {
    let mut probed = 0;
    let mut failures = 0;
    let mut first = None;
    for address in addresses.filter(|&address| may_probe(ram, address)) {
        probed += 1;
        if let Err(failure) = expect_aborts(ram, address) {
            failures += 1;
            first.get_or_insert(failure);
        }
    }
    if let Some(failure) = first {
        fail!("{failures} of {probed} address(es) wrong; first: {failure}");
    }
    Ok(())
}

fn expect_aborts(ram: Region, address: u64) -> Outcome {
    match probe_read(address) {
        Ok(value) => fail!("read of {address:#x} returned {value:#x} instead of a data abort"),
        Err(trap) => is_abort_at(trap, "read", address)?,
    }
    ensure!(
        may_probe(ram, address),
        "{address:#x} is the guest's own RAM or UART: not probed"
    );
    // SAFETY: `may_probe` says `address` is neither the guest's RAM (where
    // its image, stacks and DTB are) nor its UART: nothing the guest uses.
    match unsafe { probe_write(address, PROBE_VALUE) } {
        Ok(()) => fail!("write to {address:#x} completed instead of a data abort"),
        Err(trap) => is_abort_at(trap, "write", address),
    }
}

/// A branch to `address`, outside everything the partition has, takes an
/// instruction abort there (Tessera injects it for the stage-2 fault).
fn execute_aborts(address: u64) -> Outcome {
    // SAFETY: `address` lies outside the guest's RAM and devices (the
    // probe_4gib case checks its loads and stores abort), so the fetch
    // aborts and nothing runs there.
    match unsafe { probe_execute(address) } {
        Ok(()) => fail!("a branch to {address:#x} returned instead of an instruction abort"),
        Err(trap) => {
            ensure!(
                trap.is_instruction_abort(),
                "a branch to {address:#x} raised {trap}, expected an instruction abort"
            );
            ensure!(
                trap.far == address,
                "the instruction abort at {address:#x} has FAR {:#x}",
                trap.far
            );
            Ok(())
        }
    }
}

fn is_abort_at(trap: Trap, access: &str, address: u64) -> Outcome {
    ensure!(
        trap.is_data_abort(),
        "{access} of {address:#x} raised {trap}, expected a data abort"
    );
    ensure!(
        !trap.far_valid() || trap.far == address,
        "{access} of {address:#x} aborted with FAR {:#x}",
        trap.far
    );
    Ok(())
}
