//! The guest's PL011 on the bus: the glue between a guest's access and the
//! register model (`guest/pl011.rs`), the partition's console output
//! (`partition/output.rs`) and its interrupt.

use log::debug;

use super::Refusal;
use crate::guest::context::VcpuRegisters;
use crate::guest::mmio::{AccessWidth, MmioAccess};
use crate::guest::pl011;
use crate::partition::{Partition, output};

/// A single load or store to the PL011's registers (8, 16 or 32 bits).
pub fn access(
    partition: &Partition,
    vcpu: usize,
    registers: &mut VcpuRegisters,
    offset: u64,
    access: MmioAccess,
) -> Result<(), Refusal> {
    if access.width == AccessWidth::Double {
        return Err("a 64-bit access to the PL011");
    }
    let mut line_ready = false;
    let rose;
    let result = {
        let mut uart = partition.uart.lock();
        let uart = &mut *uart;
        let result = if access.write {
            let value =
                u32::try_from(registers.get(access.register) & u64::from(u32::MAX)).unwrap_or(0);
            let result = uart.registers.write(offset, value, &mut uart.output);
            if offset == pl011::UARTDR {
                partition.watch_unfinished_line(uart);
            }
            line_ready = partition.has_output(uart);
            result
        } else {
            uart.registers
                .read(offset, &uart.output, &mut uart.input)
                .map(|value| {
                    registers.set(access.register, access.load_result(u64::from(value)));
                })
        };
        rose = uart.line_rose();
        result
    };
    if rose {
        partition.uart_interrupt(Some(vcpu));
    }
    if let Err(unknown) = result {
        // RAZ/WI, as a real PL011 does for reserved offsets.
        if !access.write {
            registers.set(access.register, 0);
        }
        if partition.should_warn() {
            debug!(
                "partition {}: PL011 offset {:#x} is not emulated: reads as 0, writes ignored",
                partition.name(),
                unknown.0
            );
        }
    }
    if line_ready {
        output::drain(partition);
    }
    Ok(())
}
