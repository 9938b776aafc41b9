//! `init-clock`: a static arm64 Linux program, with no libc, that prints
//!
//! ```text
//! BENCH linux_init counter=<CNTVCT_EL0> frequency=<CNTFRQ_EL0>
//! ```
//!
//! and exits. The bench's Linux initramfs runs it as the first command of
//! its `/init` (`cargo xtask bench`, `xtask/src/bench/linux.rs`): the
//! virtual counter starts with the kernel's first instruction, natively
//! (QEMU starts the kernel at once) and in a partition (Tessera's offset
//! makes it start at the guest's first instruction), and Linux lets EL0
//! read it (`CNTKCTL_EL1.EL0VCTEN`).
//!
//! Built for the bare-metal target, whose linker makes a static
//! executable Linux runs as it is: `_start` is entered with a stack and
//! nothing else; the two system calls are made directly.

#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

/// Room for the line: its 36 fixed bytes and two numbers of at most
/// [`U64_DIGITS`] digits.
const LINE_BYTES: usize = 96;
/// The most decimal digits a `u64` has.
const U64_DIGITS: usize = 20;

/// Renders `BENCH linux_init counter=<counter> frequency=<frequency>\n`
/// into `buffer`; returns the bytes used.
fn render(counter: u64, frequency: u64, buffer: &mut [u8; LINE_BYTES]) -> usize {
    let mut used = 0;
    let mut put = |bytes: &[u8]| {
        for &byte in bytes {
            if let Some(slot) = buffer.get_mut(used) {
                *slot = byte;
                used += 1;
            }
        }
    };
    put(b"BENCH linux_init counter=");
    put(decimal(counter, &mut [0; U64_DIGITS]));
    put(b" frequency=");
    put(decimal(frequency, &mut [0; U64_DIGITS]));
    put(b"\n");
    used
}

/// `value` in decimal, in the tail of `digits`.
fn decimal(mut value: u64, digits: &mut [u8; U64_DIGITS]) -> &[u8] {
    let mut start = digits.len();
    loop {
        start -= 1;
        if let Some(slot) = digits.get_mut(start) {
            // `value % 10` is below 10: the cast cannot truncate.
            *slot = b'0' + (value % 10) as u8;
        }
        value /= 10;
        if value == 0 || start == 0 {
            break;
        }
    }
    digits.get(start..).unwrap_or_default()
}

#[cfg(target_os = "none")]
mod linux {
    use core::arch::asm;

    /// arm64 Linux system call numbers (`include/uapi/asm-generic/unistd.h`).
    const WRITE: u64 = 64;
    const EXIT: u64 = 93;
    const STDOUT: u64 = 1;

    #[unsafe(no_mangle)]
    extern "C" fn _start() -> ! {
        let (counter, frequency): (u64, u64);
        // SAFETY: reads of the virtual counter and its frequency, which
        // Linux lets EL0 read; no memory is touched.
        unsafe {
            asm!(
                "isb",
                "mrs {counter}, cntvct_el0",
                "mrs {frequency}, cntfrq_el0",
                counter = out(reg) counter,
                frequency = out(reg) frequency,
                options(nomem, nostack, preserves_flags),
            );
        }
        let mut line = [0u8; super::LINE_BYTES];
        let length = super::render(counter, frequency, &mut line);
        // SAFETY: write(2) of `length` bytes of `line`, which lives across
        // the call; the kernel writes only x0.
        unsafe {
            asm!(
                "svc #0",
                inout("x0") STDOUT => _,
                in("x1") line.as_ptr(),
                in("x2") length,
                in("x8") WRITE,
                options(nostack),
            );
        }
        // SAFETY: exit(2); it does not return.
        unsafe {
            asm!("svc #0", in("x0") 0u64, in("x8") EXIT, options(noreturn, nostack));
        }
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
        // SAFETY: exit(2) with a failure status; it does not return.
        unsafe {
            asm!("svc #0", in("x0") 1u64, in("x8") EXIT, options(noreturn, nostack));
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    let mut line = [0u8; LINE_BYTES];
    let length = render(0, 0, &mut line);
    eprint!(
        "init-clock runs in the bench's Linux initramfs; built for the bare-metal target it prints {}",
        core::str::from_utf8(line.get(..length).unwrap_or_default()).unwrap_or_default()
    );
    std::process::exit(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_both_values_in_decimal() {
        let mut line = [0u8; LINE_BYTES];
        let length = render(62_500_000, 62_500_000, &mut line);
        assert_eq!(
            &line[..length],
            b"BENCH linux_init counter=62500000 frequency=62500000\n"
        );
        let length = render(0, u64::MAX, &mut line);
        assert_eq!(
            &line[..length],
            b"BENCH linux_init counter=0 frequency=18446744073709551615\n"
        );
    }
}
