//! The BCM2835 auxiliary mini-UART (BCM2835 ARM Peripherals §2.2), the
//! Raspberry Pi 4's default console. Its register window in the DT starts at
//! AUX_MU_IO_REG (bus 0x7e215040).

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

use super::TX_POLL_LIMIT;
use crate::mmio::Mmio;

register_bitfields! {u32,
    /// AUX_MU_IER_REG, interrupt enables (§2.2.2, with the errata: bit 0
    /// enables the receive interrupt, bit 1 the transmit one).
    pub IER [
        RECEIVE OFFSET(0) NUMBITS(1) [],
    ],
    /// AUX_MU_LSR_REG, line status (§2.2.2).
    pub LSR [
        DATA_READY OFFSET(0) NUMBITS(1) [],
        /// The transmit FIFO can accept at least one byte.
        TX_EMPTY OFFSET(5) NUMBITS(1) [],
        /// The transmit FIFO is empty and the transmitter idle.
        TX_IDLE OFFSET(6) NUMBITS(1) [],
    ],
}

register_structs! {
    /// The mini-UART registers from AUX_MU_IO_REG on.
    pub MiniUartRegisters {
        (0x00 => pub io: ReadWrite<u32>),
        (0x04 => pub ier: ReadWrite<u32, IER::Register>),
        (0x08 => pub iir: ReadWrite<u32>),
        (0x0c => pub lcr: ReadWrite<u32>),
        (0x10 => pub mcr: ReadWrite<u32>),
        (0x14 => pub lsr: ReadOnly<u32, LSR::Register>),
        (0x18 => pub msr: ReadOnly<u32>),
        (0x1c => pub scratch: ReadWrite<u32>),
        (0x20 => pub cntl: ReadWrite<u32>),
        (0x24 => pub stat: ReadOnly<u32>),
        (0x28 => pub baud: ReadWrite<u32>),
        (0x2c => @END),
    }
}

/// A mini-UART.
#[derive(Debug)]
pub struct MiniUart {
    registers: Mmio<MiniUartRegisters>,
}

impl MiniUart {
    /// # Safety
    ///
    /// As for [`Mmio::new`]: `address` is the mini-UART's AUX_MU_IO_REG,
    /// mapped as device memory, used by nothing else.
    pub unsafe fn new(address: usize) -> MiniUart {
        // SAFETY: forwarded from this function\'s contract.
        let registers = unsafe { Mmio::new(address) };
        MiniUart { registers }
    }

    /// The firmware (`enable_uart=1`) sets up the mini-UART and its clock;
    /// Tessera only masks its interrupts.
    pub fn init(&mut self) {
        self.registers.ier.set(0);
    }

    /// Interrupts while the receive FIFO holds a byte (AUX_MU_IER_REG bit 0).
    pub fn enable_receive_interrupt(&mut self) {
        self.registers.ier.write(IER::RECEIVE::SET);
    }

    /// A received byte, if any.
    pub fn read_byte(&mut self) -> Option<u8> {
        self.registers
            .lsr
            .is_set(LSR::DATA_READY)
            .then(|| self.registers.io.get().to_le_bytes()[0])
    }

    pub fn write_byte(&mut self, byte: u8) {
        for _ in 0..TX_POLL_LIMIT {
            if self.registers.lsr.is_set(LSR::TX_EMPTY) {
                self.registers.io.set(u32::from(byte));
                return;
            }
            core::hint::spin_loop();
        }
    }

    pub fn flush(&mut self) {
        for _ in 0..TX_POLL_LIMIT {
            if self.registers.lsr.is_set(LSR::TX_IDLE) {
                return;
            }
            core::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmio::fake::FakeRegisters;

    #[test]
    fn register_offsets_match_the_peripherals_manual() {
        assert_eq!(core::mem::size_of::<MiniUartRegisters>(), 0x2c);
        assert_eq!(core::mem::offset_of!(MiniUartRegisters, lsr), 0x14);
    }

    #[test]
    fn writes_wait_for_room_in_the_fifo() {
        let mut fake = FakeRegisters::new(0x40);
        fake.write32(0x14, 1 << 5);
        // SAFETY: the fake is 0x40 bytes of memory that lives past `uart`.
        let mut uart = unsafe { MiniUart::new(fake.address()) };
        uart.write_byte(b'P');
        assert_eq!(fake.read32(0x00), u32::from(b'P'));
    }
}
