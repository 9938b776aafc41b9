//! Console UARTs.
//!
//! The firmware or U-Boot leaves the console UART configured (baud rate,
//! clocks, pins); Tessera only makes sure the transmitter is on and sends
//! bytes, so it works whatever clock the board feeds the UART.

pub mod mini_uart;
pub mod pl011;

use core::fmt;

/// UARTs Tessera drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartKind {
    /// Arm PrimeCell PL011 (QEMU virt, Raspberry Pi UART0, Raspberry Pi 5 debug UART).
    Pl011,
    /// The BCM2835 auxiliary mini-UART, 8250-like (Raspberry Pi 4's default console).
    MiniUart,
}

impl UartKind {
    pub fn name(self) -> &'static str {
        match self {
            UartKind::Pl011 => "PL011",
            UartKind::MiniUart => "mini-UART",
        }
    }
}

/// How many times to poll a full transmit FIFO before dropping a byte: a
/// UART that never drains (unclocked, disabled by firmware) must not hang
/// the hypervisor.
const TX_POLL_LIMIT: u32 = 1 << 20;

/// A console UART.
#[derive(Debug)]
pub enum Uart {
    Pl011(pl011::Pl011),
    MiniUart(mini_uart::MiniUart),
}

impl Uart {
    /// # Safety
    ///
    /// `address` must be the register block of a UART of `kind`, mapped as
    /// device memory (or the MMU off) for as long as the value is used, and
    /// not used by anything else.
    pub unsafe fn new(kind: UartKind, address: usize) -> Uart {
        match kind {
            // SAFETY: forwarded from this function's contract.
            UartKind::Pl011 => Uart::Pl011(unsafe { pl011::Pl011::new(address) }),
            // SAFETY: forwarded from this function's contract.
            UartKind::MiniUart => Uart::MiniUart(unsafe { mini_uart::MiniUart::new(address) }),
        }
    }

    /// Makes sure the transmitter is enabled.
    pub fn init(&mut self) {
        match self {
            Uart::Pl011(uart) => uart.init(),
            Uart::MiniUart(uart) => uart.init(),
        }
    }

    /// Lets received bytes raise the UART's interrupt.
    pub fn enable_receive_interrupt(&mut self) {
        match self {
            Uart::Pl011(uart) => uart.enable_receive_interrupt(),
            Uart::MiniUart(uart) => uart.enable_receive_interrupt(),
        }
    }

    /// A received byte, if one is waiting.
    pub fn read_byte(&mut self) -> Option<u8> {
        match self {
            Uart::Pl011(uart) => uart.read_byte(),
            Uart::MiniUart(uart) => uart.read_byte(),
        }
    }

    pub fn write_byte(&mut self, byte: u8) {
        match self {
            Uart::Pl011(uart) => uart.write_byte(byte),
            Uart::MiniUart(uart) => uart.write_byte(byte),
        }
    }

    /// Writes `bytes`, turning "\n" into "\r\n" for terminals.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
    }

    /// Waits until everything written has left the UART (before power-off).
    pub fn flush(&mut self) {
        match self {
            Uart::Pl011(uart) => uart.flush(),
            Uart::MiniUart(uart) => uart.flush(),
        }
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        self.write_bytes(text.as_bytes());
        Ok(())
    }
}
