//! The console: the PL011 UART every partition sees at `0x0900_0000`.
//!
//! Register offsets and bits follow the PL011 Technical Reference Manual
//! (DDI 0183G) §3.3. Accesses are single `ldr`/`str` instructions written in
//! `asm!`, not `read_volatile`/`write_volatile` (or tock-registers, which
//! uses them): the compiler may emit those as a load or store with
//! writeback or a pair, whose data abort has no valid syndrome
//! (`ESR_EL2.ISS.ISV` = 0), and Tessera emulates this UART from the
//! syndrome. The UART is not locked: one vCPU prints at a time.

use core::arch::asm;
use core::fmt;

/// The PL011's guest physical address: fixed by the partition contract
/// (`docs/partitions.md`, "What the guest sees"), and QEMU virt's.
pub const PL011_BASE: usize = 0x0900_0000;

/// UARTDR, data register.
const UARTDR: usize = 0x000;
/// UARTFR, flag register.
const UARTFR: usize = 0x018;
/// UARTCR, control register.
const UARTCR: usize = 0x030;

/// UARTFR.TXFF: the transmit FIFO is full.
const FR_TXFF: u32 = 1 << 5;
/// UARTCR.UARTEN, TXE: the UART and its transmitter are enabled.
const CR_UARTEN: u32 = 1 << 0;
const CR_TXE: u32 = 1 << 8;

/// How often to poll a full FIFO before dropping the byte: a console that
/// never drains must not hang the test.
const TX_POLL_LIMIT: u32 = 1_000_000;

fn read(offset: usize) -> u32 {
    let value: u32;
    // SAFETY: PL011_BASE is the partition's UART, an MMIO block that this
    // module alone accesses; a register read has no effect on memory.
    unsafe {
        asm!("ldr {value:w}, [{address}]", value = out(reg) value,
             address = in(reg) PL011_BASE + offset, options(nostack, preserves_flags));
    }
    value
}

fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`: a store to a UART register.
    unsafe {
        asm!("str {value:w}, [{address}]", value = in(reg) value,
             address = in(reg) PL011_BASE + offset, options(nostack, preserves_flags));
    }
}

/// Enables the UART and its transmitter if nobody has (QEMU's PL011 sends
/// nothing without UARTEN and TXE since QEMU 9.2, and a guest booted
/// directly by QEMU finds them clear). The baud rate stays as it is.
pub fn init() {
    let control = read(UARTCR);
    if control & (CR_UARTEN | CR_TXE) != CR_UARTEN | CR_TXE {
        write(UARTCR, control | CR_UARTEN | CR_TXE);
    }
}

/// Sends one byte, waiting (boundedly) for room in the FIFO.
pub fn write_byte(byte: u8) {
    for _ in 0..TX_POLL_LIMIT {
        if read(UARTFR) & FR_TXFF == 0 {
            write(UARTDR, u32::from(byte));
            return;
        }
        core::hint::spin_loop();
    }
}

/// The console as a [`fmt::Write`] sink; `\n` goes out as `\r\n`.
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for byte in text.bytes() {
            if byte == b'\n' {
                write_byte(b'\r');
            }
            write_byte(byte);
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(arguments: fmt::Arguments<'_>) {
    let _ = fmt::Write::write_fmt(&mut Console, arguments);
}

/// Prints to the console.
#[macro_export]
macro_rules! print {
    ($($argument:tt)*) => {
        $crate::console::_print(::core::format_args!($($argument)*))
    };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => {
        $crate::print!("\n")
    };
    ($($argument:tt)*) => {
        $crate::console::_print(::core::format_args!("{}\n", ::core::format_args!($($argument)*)))
    };
}
