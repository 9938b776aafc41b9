//! Arm PrimeCell UART (PL011), per the PL011 Technical Reference Manual (DDI 0183G) §3.

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use super::TX_POLL_LIMIT;
use crate::mmio::Mmio;

register_bitfields! {u32,
    /// UARTFR, flag register (§3.3.3).
    pub FR [
        BUSY OFFSET(3) NUMBITS(1) [],
        RXFE OFFSET(4) NUMBITS(1) [],
        TXFF OFFSET(5) NUMBITS(1) [],
        TXFE OFFSET(7) NUMBITS(1) [],
    ],
    /// UARTCR, control register (§3.3.8).
    pub CR [
        UARTEN OFFSET(0) NUMBITS(1) [],
        TXE OFFSET(8) NUMBITS(1) [],
        RXE OFFSET(9) NUMBITS(1) [],
    ],
    /// UARTIMSC, UARTRIS, UARTMIS and UARTICR share one layout (§3.3.10).
    pub INT [
        /// Receive: the FIFO reached its trigger level.
        RX OFFSET(4) NUMBITS(1) [],
        /// Receive timeout: bytes below the level wait 32 bit periods.
        RT OFFSET(6) NUMBITS(1) [],
    ],
}

register_structs! {
    /// The PL011 register block.
    pub Pl011Registers {
        (0x000 => pub dr: ReadWrite<u32>),
        (0x004 => pub rsr_ecr: ReadWrite<u32>),
        (0x008 => _reserved0),
        (0x018 => pub fr: ReadOnly<u32, FR::Register>),
        (0x01c => _reserved1),
        (0x020 => pub ilpr: ReadWrite<u32>),
        (0x024 => pub ibrd: ReadWrite<u32>),
        (0x028 => pub fbrd: ReadWrite<u32>),
        (0x02c => pub lcr_h: ReadWrite<u32>),
        (0x030 => pub cr: ReadWrite<u32, CR::Register>),
        (0x034 => pub ifls: ReadWrite<u32>),
        (0x038 => pub imsc: ReadWrite<u32, INT::Register>),
        (0x03c => pub ris: ReadOnly<u32>),
        (0x040 => pub mis: ReadOnly<u32>),
        (0x044 => pub icr: WriteOnly<u32, INT::Register>),
        (0x048 => pub dmacr: ReadWrite<u32>),
        (0x04c => _reserved2),
        (0xfe0 => pub periph_id: [ReadOnly<u32>; 4]),
        (0xff0 => pub cell_id: [ReadOnly<u32>; 4]),
        (0x1000 => @END),
    }
}

/// A PL011.
#[derive(Debug)]
pub struct Pl011 {
    registers: Mmio<Pl011Registers>,
}

impl Pl011 {
    /// # Safety
    ///
    /// As for [`Mmio::new`]: `address` is a PL011 register block, mapped as
    /// device memory, used by nothing else.
    pub unsafe fn new(address: usize) -> Pl011 {
        // SAFETY: forwarded from this function\'s contract.
        let registers = unsafe { Mmio::new(address) };
        Pl011 { registers }
    }

    /// Enables the UART and its transmitter if firmware left them off (QEMU's
    /// PL011 has transmitted nothing until UARTEN and TXE were set since
    /// QEMU 9.2). The baud rate stays as firmware set it.
    pub fn init(&mut self) {
        let cr = &self.registers.cr;
        if !cr.is_set(CR::UARTEN) || !cr.is_set(CR::TXE) {
            cr.modify(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
        }
        // Output is polled; input interrupts are enabled separately.
        self.registers.imsc.set(0);
    }

    /// Interrupts on received bytes (and on the receive timeout, for bytes
    /// below the FIFO's trigger level).
    pub fn enable_receive_interrupt(&mut self) {
        self.registers.imsc.write(INT::RX::SET + INT::RT::SET);
    }

    /// A received byte, if any (reading UARTDR also clears the receive
    /// interrupt once the FIFO is below its level; the timeout needs UARTICR).
    pub fn read_byte(&mut self) -> Option<u8> {
        if self.registers.fr.is_set(FR::RXFE) {
            self.registers.icr.write(INT::RX::SET + INT::RT::SET);
            return None;
        }
        Some(self.registers.dr.get().to_le_bytes()[0])
    }

    pub fn write_byte(&mut self, byte: u8) {
        for _ in 0..TX_POLL_LIMIT {
            if !self.registers.fr.is_set(FR::TXFF) {
                self.registers.dr.set(u32::from(byte));
                return;
            }
            core::hint::spin_loop();
        }
    }

    pub fn flush(&mut self) {
        for _ in 0..TX_POLL_LIMIT {
            if !self.registers.fr.is_set(FR::BUSY) {
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
    fn register_block_is_one_4k_frame() {
        assert_eq!(core::mem::size_of::<Pl011Registers>(), 0x1000);
    }

    #[test]
    fn init_enables_transmitter_and_writes_go_to_dr() {
        let mut fake = FakeRegisters::new(0x1000);
        // SAFETY: the fake is 0x1000 bytes of memory that lives past `uart`.
        let mut uart = unsafe { Pl011::new(fake.address()) };
        uart.init();
        uart.write_byte(b'T');
        let cr = fake.read32(0x30);
        assert_eq!(cr & 0x301, 0x301, "UARTEN, TXE and RXE set, got {cr:#x}");
        assert_eq!(fake.read32(0x00), u32::from(b'T'));
    }

    #[test]
    fn a_full_fifo_drops_the_byte_instead_of_hanging() {
        let mut fake = FakeRegisters::new(0x1000);
        fake.write32(0x18, 1 << 5); // TXFF
        // SAFETY: the fake is 0x1000 bytes of memory that lives past `uart`.
        let mut uart = unsafe { Pl011::new(fake.address()) };
        uart.write_byte(b'X');
        assert_eq!(fake.read32(0x00), 0);
    }
}
