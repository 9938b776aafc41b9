//! The emulated PL011 UART every partition gets (Arm PrimeCell UART PL011
//! TRM, DDI 0183G), enough for unmodified guests to print: Linux's
//! amba-pl011 driver and earlycon, and bare-metal code that polls UARTFR.
//!
//! Output goes into a bounded per-partition [`OutputBuffer`]; Tessera drains
//! whole lines to the physical console. While the buffer is full the guest
//! sees TXFF and waits on its own output, never on another partition's.
//! Input from the physical console (for the partition the overlay marks
//! `console-input`) waits in the receive FIFO ([`InputFifo`]).
//!
//! Interrupts: receive (and receive timeout) while the FIFO holds bytes,
//! transmit while output is accepted; the line to the virtual GIC is their
//! OR under UARTIMSC, and [`Pl011::line`] reports it so the caller can
//! inject the UART's SPI when it rises.

/// Register offsets (DDI 0183G §3.2).
pub const UARTDR: u64 = 0x000;
pub const UARTRSR: u64 = 0x004;
pub const UARTFR: u64 = 0x018;
pub const UARTILPR: u64 = 0x020;
pub const UARTIBRD: u64 = 0x024;
pub const UARTFBRD: u64 = 0x028;
pub const UARTLCR_H: u64 = 0x02c;
pub const UARTCR: u64 = 0x030;
pub const UARTIFLS: u64 = 0x034;
pub const UARTIMSC: u64 = 0x038;
pub const UARTRIS: u64 = 0x03c;
pub const UARTMIS: u64 = 0x040;
pub const UARTICR: u64 = 0x044;
pub const UARTDMACR: u64 = 0x048;
/// UARTPeriphID0-3 and UARTPCellID0-3: what the AMBA bus code probes.
const UARTPERIPHID0: u64 = 0xfe0;
const UARTPCELLID3: u64 = 0xffc;
const ID_REGISTERS: [u32; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// UARTFR bits.
const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
const FR_TXFE: u32 = 1 << 7;
/// UARTRIS/UARTMIS bits: receive, transmit, receive timeout.
const INT_RX: u32 = 1 << 4;
const INT_TX: u32 = 1 << 5;
const INT_RT: u32 = 1 << 6;
/// UARTFR.RXFF: the receive FIFO is full.
const FR_RXFF: u32 = 1 << 6;
/// Bytes of input held for the guest. A PL011's FIFO holds 32, but the
/// physical console's bytes arrive in bursts (a pasted line) while the guest
/// may not be scheduled to drain them; guests read until RXFE, so a deeper
/// FIFO is invisible to them and loses less.
pub const INPUT_CAPACITY: usize = 256;
/// UARTCR reset value: TXE and RXE set (DDI 0183G §3.3.8).
const CR_RESET: u32 = 0x300;
/// UARTIFLS reset value: both FIFOs at half.
const IFLS_RESET: u32 = 0x12;

/// Bytes of guest output held before the guest sees TXFF.
pub const OUTPUT_CAPACITY: usize = 1024;
/// A line longer than this is printed in pieces.
pub const MAX_LINE: usize = 160;

/// A partition's console output, waiting for the physical console.
#[derive(Debug)]
pub struct OutputBuffer {
    bytes: [u8; OUTPUT_CAPACITY],
    start: usize,
    len: usize,
    /// `\n` bytes held: whether a line is waiting is asked at every byte
    /// the guest writes, so it is counted, not searched for.
    newlines: usize,
}

impl Default for OutputBuffer {
    fn default() -> Self {
        OutputBuffer {
            bytes: [0; OUTPUT_CAPACITY],
            start: 0,
            len: 0,
            newlines: 0,
        }
    }
}

impl OutputBuffer {
    pub fn is_full(&self) -> bool {
        self.len == OUTPUT_CAPACITY
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `byte`; false (and nothing stored) when full.
    pub fn push(&mut self, byte: u8) -> bool {
        if self.is_full() {
            return false;
        }
        let index = (self.start + self.len) % OUTPUT_CAPACITY;
        if let Some(slot) = self.bytes.get_mut(index) {
            *slot = byte;
        }
        self.len += 1;
        self.newlines += usize::from(byte == b'\n');
        true
    }

    fn at(&self, i: usize) -> u8 {
        self.bytes
            .get((self.start + i) % OUTPUT_CAPACITY)
            .copied()
            .unwrap_or(0)
    }

    /// Whether a whole line (or a piece of [`MAX_LINE`] bytes) is waiting.
    pub fn has_line(&self) -> bool {
        self.len >= MAX_LINE || self.newlines > 0
    }

    /// Whether what is held is only the start of a line (a prompt).
    pub fn has_unfinished_line(&self) -> bool {
        self.len > 0 && !self.has_line()
    }

    /// Moves the next line (without its `\n`, `\r` dropped) into `line`:
    /// returns its length, or `None` if no whole line is waiting.
    pub fn take_line(&mut self, line: &mut [u8; MAX_LINE]) -> Option<usize> {
        self.take(line, false).map(|(length, _)| length)
    }

    /// Moves what is waiting into `line`, up to and without the next `\n`
    /// (`\r` dropped): its length and whether it ended a line. With
    /// `partial`, bytes that end no line are taken too (a shell's prompt).
    pub fn take(&mut self, line: &mut [u8; MAX_LINE], partial: bool) -> Option<(usize, bool)> {
        let newline = if self.newlines > 0 {
            (0..self.len.min(MAX_LINE)).find(|&i| self.at(i) == b'\n')
        } else {
            None
        };
        let (taken, consumed, ended) = match newline {
            Some(i) => (i, i + 1, true),
            None if self.len >= MAX_LINE => (MAX_LINE, MAX_LINE, true),
            None if partial && self.len > 0 => (self.len, self.len, false),
            None => return None,
        };
        let mut written = 0;
        for i in 0..taken {
            let byte = self.at(i);
            if byte != b'\r'
                && let Some(slot) = line.get_mut(written)
            {
                *slot = byte;
                written += 1;
            }
        }
        self.start = (self.start + consumed) % OUTPUT_CAPACITY;
        self.len -= consumed;
        self.newlines -= usize::from(newline.is_some());
        Some((written, ended))
    }

    /// Forgets everything (at a partition restart).
    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
        self.newlines = 0;
    }
}

/// Input waiting for the guest to read UARTDR.
#[derive(Debug)]
pub struct InputFifo {
    bytes: [u8; INPUT_CAPACITY],
    start: usize,
    len: usize,
}

impl Default for InputFifo {
    fn default() -> Self {
        InputFifo {
            bytes: [0; INPUT_CAPACITY],
            start: 0,
            len: 0,
        }
    }
}

impl InputFifo {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len == INPUT_CAPACITY
    }

    /// Appends `byte`; false (the byte is lost, as on a real UART) if full.
    pub fn push(&mut self, byte: u8) -> bool {
        if self.is_full() {
            return false;
        }
        if let Some(slot) = self.bytes.get_mut((self.start + self.len) % INPUT_CAPACITY) {
            *slot = byte;
        }
        self.len += 1;
        true
    }

    pub fn pop(&mut self) -> Option<u8> {
        if self.is_empty() {
            return None;
        }
        let byte = self.bytes.get(self.start).copied();
        self.start = (self.start + 1) % INPUT_CAPACITY;
        self.len -= 1;
        byte
    }

    pub fn clear(&mut self) {
        self.start = 0;
        self.len = 0;
    }
}

/// The UART's programmable state (what a guest writes and reads back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pl011 {
    ibrd: u32,
    fbrd: u32,
    lcr_h: u32,
    cr: u32,
    ifls: u32,
    imsc: u32,
    ilpr: u32,
    dmacr: u32,
}

impl Default for Pl011 {
    fn default() -> Self {
        Pl011 {
            ibrd: 0,
            fbrd: 0,
            lcr_h: 0,
            cr: CR_RESET,
            ifls: IFLS_RESET,
            imsc: 0,
            ilpr: 0,
            dmacr: 0,
        }
    }
}

/// The result of a register access the model does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownRegister(pub u64);

impl Pl011 {
    /// UARTRIS: which interrupt conditions hold.
    fn raw_interrupts(output: &OutputBuffer, input: &InputFifo) -> u32 {
        let tx = if output.is_full() { 0 } else { INT_TX };
        let rx = if input.is_empty() { 0 } else { INT_RX | INT_RT };
        tx | rx
    }

    /// Whether the UART's interrupt line is asserted.
    pub fn line(&self, output: &OutputBuffer, input: &InputFifo) -> bool {
        Self::raw_interrupts(output, input) & self.imsc != 0
    }

    /// A read of the register at `offset`; a read of UARTDR takes a byte of
    /// input. Unknown offsets are reported (they read as zero).
    pub fn read(
        &self,
        offset: u64,
        output: &OutputBuffer,
        input: &mut InputFifo,
    ) -> Result<u32, UnknownRegister> {
        let raw = Self::raw_interrupts(output, input);
        Ok(match offset {
            UARTDR => input.pop().map_or(0, u32::from),
            UARTRSR => 0,
            UARTFR => {
                let full = if output.is_full() { FR_TXFF } else { 0 };
                // Output leaves the guest's view at once: the FIFO is empty
                // unless the buffer is full.
                let empty = if output.is_full() { 0 } else { FR_TXFE };
                let rx_empty = if input.is_empty() { FR_RXFE } else { 0 };
                let rx_full = if input.is_full() { FR_RXFF } else { 0 };
                rx_empty | rx_full | full | empty
            }
            UARTILPR => self.ilpr,
            UARTIBRD => self.ibrd,
            UARTFBRD => self.fbrd,
            UARTLCR_H => self.lcr_h,
            UARTCR => self.cr,
            UARTIFLS => self.ifls,
            UARTIMSC => self.imsc,
            UARTRIS => raw,
            UARTMIS => raw & self.imsc,
            UARTDMACR => self.dmacr,
            UARTPERIPHID0..=UARTPCELLID3 if offset.is_multiple_of(4) => {
                let index = usize::try_from((offset - UARTPERIPHID0) / 4).unwrap_or(0);
                ID_REGISTERS.get(index).copied().unwrap_or(0)
            }
            _ => return Err(UnknownRegister(offset)),
        })
    }

    /// A write of `value` to the register at `offset`. A byte written to
    /// UARTDR goes to `output` (dropped if full: the guest was told TXFF).
    pub fn write(
        &mut self,
        offset: u64,
        value: u32,
        output: &mut OutputBuffer,
    ) -> Result<(), UnknownRegister> {
        match offset {
            UARTDR => {
                let _ = output.push(value.to_le_bytes()[0]);
            }
            UARTRSR | UARTICR => {}
            UARTILPR => self.ilpr = value & 0xff,
            UARTIBRD => self.ibrd = value & 0xffff,
            UARTFBRD => self.fbrd = value & 0x3f,
            UARTLCR_H => self.lcr_h = value & 0xff,
            UARTCR => self.cr = value & 0xff87,
            UARTIFLS => self.ifls = value & 0x3f,
            UARTIMSC => self.imsc = value & 0x7ff,
            UARTDMACR => self.dmacr = value & 0x7,
            UARTFR | UARTRIS | UARTMIS => {}
            _ => return Err(UnknownRegister(offset)),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(output: &mut OutputBuffer) -> Vec<String> {
        let mut line = [0u8; MAX_LINE];
        let mut all = Vec::new();
        while let Some(n) = output.take_line(&mut line) {
            all.push(String::from_utf8_lossy(&line[..n]).into_owned());
        }
        all
    }

    #[test]
    fn a_partial_line_is_taken_only_when_asked_for() {
        let mut output = OutputBuffer::default();
        let mut line = [0u8; MAX_LINE];
        assert!(!output.has_unfinished_line(), "nothing held");
        for byte in b"ok\n~ # " {
            assert!(output.push(*byte));
        }
        assert!(!output.has_unfinished_line(), "a whole line waits first");
        assert_eq!(output.take(&mut line, true), Some((2, true)));
        assert!(output.has_unfinished_line(), "only the prompt is left");
        assert_eq!(
            output.take(&mut line, false),
            None,
            "the prompt ends no line"
        );
        assert_eq!(output.take(&mut line, true), Some((4, false)));
        assert_eq!(&line[..4], b"~ # ");
        assert_eq!(output.take(&mut line, true), None, "nothing left");
    }

    #[test]
    fn bytes_written_to_uartdr_come_out_as_lines() {
        let mut uart = Pl011::default();
        let mut output = OutputBuffer::default();
        for byte in b"hello\r\nworld\npartial" {
            uart.write(UARTDR, u32::from(*byte), &mut output).unwrap();
        }
        assert_eq!(lines(&mut output), ["hello", "world"]);
        assert!(
            !output.has_line(),
            "an unfinished line waits for its newline"
        );
    }

    #[test]
    fn a_full_buffer_shows_txff_and_drops_nothing_it_accepted() {
        let uart = Pl011::default();
        let mut output = OutputBuffer::default();
        assert_eq!(
            uart.read(UARTFR, &output, &mut InputFifo::default())
                .unwrap()
                & FR_TXFF,
            0
        );
        for i in 0..OUTPUT_CAPACITY {
            assert!(output.push(b"abcdefghijklmnopqrstuvwxyz"[i % 26]));
        }
        assert!(!output.push(b'!'), "a full buffer refuses bytes");
        assert_ne!(
            uart.read(UARTFR, &output, &mut InputFifo::default())
                .unwrap()
                & FR_TXFF,
            0,
            "TXFF when full"
        );
        let taken = lines(&mut output);
        assert_eq!(
            taken.len(),
            OUTPUT_CAPACITY / MAX_LINE,
            "long output in MAX_LINE pieces"
        );
        assert_eq!(
            uart.read(UARTFR, &output, &mut InputFifo::default())
                .unwrap()
                & FR_TXFF,
            0
        );
    }

    #[test]
    fn the_primecell_id_registers_identify_a_pl011() {
        let uart = Pl011::default();
        let output = OutputBuffer::default();
        let id: Vec<u32> = (0..8)
            .map(|i| {
                uart.read(UARTPERIPHID0 + 4 * i, &output, &mut InputFifo::default())
                    .unwrap()
            })
            .collect();
        assert_eq!(id, ID_REGISTERS);
    }

    #[test]
    fn control_registers_read_back_and_unknown_offsets_are_reported() {
        let mut uart = Pl011::default();
        let mut output = OutputBuffer::default();
        uart.write(UARTIBRD, 13, &mut output).unwrap();
        uart.write(UARTCR, 0x301, &mut output).unwrap();
        assert_eq!(
            uart.read(UARTIBRD, &output, &mut InputFifo::default()),
            Ok(13)
        );
        assert_eq!(
            uart.read(UARTCR, &output, &mut InputFifo::default()),
            Ok(0x301)
        );
        assert_eq!(
            uart.read(0x800, &output, &mut InputFifo::default()),
            Err(UnknownRegister(0x800))
        );
        assert_eq!(
            uart.write(0x800, 1, &mut output),
            Err(UnknownRegister(0x800))
        );
    }

    #[test]
    fn input_is_read_from_uartdr_and_raises_the_receive_interrupt() {
        let mut uart = Pl011::default();
        let mut output = OutputBuffer::default();
        let mut input = InputFifo::default();
        uart.write(UARTIMSC, INT_RX | INT_RT, &mut output).unwrap();
        assert!(!uart.line(&output, &input), "nothing to read: line low");
        assert!(input.push(b'l') && input.push(b's'));
        assert!(uart.line(&output, &input), "input raises the line");
        assert_eq!(uart.read(UARTFR, &output, &mut input).unwrap() & FR_RXFE, 0);
        assert_eq!(uart.read(UARTMIS, &output, &mut input), Ok(INT_RX | INT_RT));
        assert_eq!(uart.read(UARTDR, &output, &mut input), Ok(u32::from(b'l')));
        assert_eq!(uart.read(UARTDR, &output, &mut input), Ok(u32::from(b's')));
        assert_ne!(uart.read(UARTFR, &output, &mut input).unwrap() & FR_RXFE, 0);
        assert!(!uart.line(&output, &input), "drained: line low");
        for byte in (0..=u8::MAX).cycle().take(INPUT_CAPACITY) {
            assert!(input.push(byte));
        }
        assert!(!input.push(b'!'), "a full FIFO loses the byte");
        assert_ne!(uart.read(UARTFR, &output, &mut input).unwrap() & FR_RXFF, 0);
    }

    #[test]
    fn the_transmit_interrupt_follows_the_output_buffer() {
        let mut uart = Pl011::default();
        let mut output = OutputBuffer::default();
        let input = InputFifo::default();
        uart.write(UARTIMSC, INT_TX, &mut output).unwrap();
        assert!(uart.line(&output, &input));
        while output.push(b'x') {}
        assert!(!uart.line(&output, &input), "full: no room, no interrupt");
    }
}
