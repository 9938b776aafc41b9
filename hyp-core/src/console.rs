//! The console: the UART behind one lock, and the `log` backend that writes
//! each record as one line under that lock, so lines from different CPUs
//! never interleave.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use platform::uart::Uart;
use spin::Mutex;

use crate::arch::cpu;
use crate::logging;
use crate::time::Timestamp;

static CONSOLE: Mutex<Option<Uart>> = Mutex::new(None);
/// Counter value at Tessera's entry: time stamps count from here.
static ORIGIN: AtomicU64 = AtomicU64::new(0);
static FREQUENCY: AtomicU64 = AtomicU64::new(0);

/// Attempts to take the console lock before a crash report takes it by force.
const CRASH_LOCK_ATTEMPTS: u32 = 1 << 20;

/// Time stamps count from `origin` ticks of a `frequency` Hz counter.
pub fn set_time_origin(origin: u64, frequency: u64) {
    ORIGIN.store(origin, Ordering::Relaxed);
    FREQUENCY.store(frequency, Ordering::Relaxed);
}

/// Counter ticks since entry.
pub fn since_entry() -> Timestamp {
    Timestamp {
        ticks: cpu::counter().saturating_sub(ORIGIN.load(Ordering::Relaxed)),
        frequency: FREQUENCY.load(Ordering::Relaxed),
    }
}

/// Makes `uart` the console.
pub fn install(mut uart: Uart) {
    uart.init();
    *CONSOLE.lock() = Some(uart);
}

/// Waits until the console's output has left the UART (before power-off).
pub fn flush() {
    if let Some(uart) = CONSOLE.lock().as_mut() {
        uart.flush();
    }
}

/// Runs `f` on the console for a crash report: takes the lock if it can, by
/// force if its holder seems stuck (it may be the CPU that crashed).
pub fn with_console_for_crash(f: impl FnOnce(&mut Uart)) {
    for _ in 0..CRASH_LOCK_ATTEMPTS {
        if let Some(mut guard) = CONSOLE.try_lock() {
            if let Some(uart) = guard.as_mut() {
                f(uart);
            }
            return;
        }
        core::hint::spin_loop();
    }
    // SAFETY: the holder has kept the lock for about a million attempts: it
    // crashed or is stopped. Interleaved bytes are a lesser evil than a crash
    // report that never appears; nothing else relies on the lock for memory safety
    // beyond the Option it guards, which a holder only reads.
    unsafe { CONSOLE.force_unlock() };
    if let Some(uart) = CONSOLE.lock().as_mut() {
        f(uart);
    }
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let time = since_entry();
        let mut guard = CONSOLE.lock();
        if let Some(uart) = guard.as_mut() {
            let _ = logging::write_prefix(uart, time, cpu::index(), record.level());
            let _ = uart.write_fmt(*record.args());
            uart.write_bytes(b"\n");
        }
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Routes `log` records to the console at `level` and above.
pub fn init_logger(level: log::LevelFilter) {
    // Fails only if a logger is already set, and then that one stays.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}
