//! The boot banner: what Tessera found, in a few lines a person reads.

use log::info;

use crate::arch::{cpu, mmu};
use crate::hw::Hardware;
use crate::mm::address::{ByteSize, PhysRange};

pub fn banner(
    hardware: &Hardware<'_>,
    board: Option<&platform::board::Board>,
    gic: &platform::gic::GicInfo,
    mmu: &mmu::MmuSummary,
    heap: PhysRange,
    frequency: u64,
) {
    match board {
        Some(board) => info!("board: {} ({})", hardware.model, board.name),
        None => info!(
            "board: {} (not a board Tessera knows; running from the device tree alone)",
            hardware.model
        ),
    }
    let cpus = &hardware.cpus;
    info!(
        "CPUs: {} x {}, booted on MPIDR {:#x}",
        cpus.list.len(),
        cpus.model,
        cpu::mpidr()
    );
    let banks = &hardware.memory.banks;
    info!(
        "memory: {} in {} bank(s)",
        ByteSize(hardware.memory.total()),
        banks.len()
    );
    for bank in banks {
        info!("  {bank} ({})", ByteSize(bank.size()));
    }
    for reserved in &hardware.memory.reserved {
        info!(
            "  reserved {} ({})",
            reserved.range,
            reserved.kind.describe()
        );
    }
    info!(
        "GIC: v{}, {} interrupt lines, {} list registers, maintenance INTID {}",
        gic.version, gic.lines, gic.list_registers, hardware.gic.maintenance_intid
    );
    let timer = &hardware.timer;
    info!(
        "timer: {} kHz, INTIDs: EL2 physical {}, EL1 virtual {}, EL1 physical {}{}",
        frequency / 1000,
        timer.hyp_physical,
        timer.virtual_timer,
        timer.physical,
        if timer.always_on { ", always-on" } else { "" }
    );
    // Only call PSCI where the DT says it exists: on a board without EL3
    // firmware an SMC goes nowhere (on QEMU's raspi4b it never returns).
    match &hardware.psci {
        Some(psci) => match platform::cpu::psci::version() {
            Some((major, minor)) => info!("PSCI: {major}.{minor} over SMC ({})", psci.compatible),
            None => info!("PSCI: over SMC ({}), version unknown", psci.compatible),
        },
        None => info!("PSCI: none"),
    }
    if let Some(console) = &hardware.console {
        info!(
            "console: {} at {} ({})",
            console.kind.name(),
            console.registers.start(),
            console.node.path()
        );
    }
    info!("heap: {} at {heap}", ByteSize(heap.size()));
    let [_, gib, mib2, kib4] = mmu.leaves;
    info!(
        "EL2 map: {} tables, {gib} x 1 GiB + {mib2} x 2 MiB + {kib4} x 4 KiB, {}-bit physical addresses",
        mmu.tables_used, mmu.physical_bits
    );
}
