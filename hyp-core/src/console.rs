//! The console: the UART and the `log` backend that writes each record as
//! one line, so lines from different CPUs never interleave.
//!
//! Until the MMU and caches are on, every data access is to Device memory,
//! where the exclusive loads and stores behind atomic read-modify-write (and
//! so every spin lock) need a global exclusive monitor that boards like the
//! Raspberry Pi 4 do not have: they fault or never succeed. So the console
//! starts unlocked, used only by the boot CPU (nothing else runs yet), and
//! switches to its lock with [`enable_locking`] once the MMU is on.

use core::cell::UnsafeCell;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use platform::uart::Uart;
use spin::Mutex;

use crate::arch::cpu;
use crate::logging;
use crate::open_line::{OpenLine, Piece};
use crate::time::Timestamp;

/// The UART and the lock that serialises it once locking is enabled.
struct Console {
    uart: UnsafeCell<Option<Uart>>,
    lock: Mutex<()>,
    locking: AtomicBool,
}

// SAFETY: `uart` is reached only through `Console::with` and the crash path,
// which hold `lock` once `locking` is set, and before that run on the boot
// CPU alone (secondary CPUs start after the MMU, and with it locking, is on).
unsafe impl Sync for Console {}

static CONSOLE: Console = Console {
    uart: UnsafeCell::new(None),
    lock: Mutex::new(()),
    locking: AtomicBool::new(false),
};

/// Counter value at Tessera's entry: time stamps count from here.
static ORIGIN: AtomicU64 = AtomicU64::new(0);
static FREQUENCY: AtomicU64 = AtomicU64::new(0);

/// Attempts to take the console lock before a crash report takes it by force.
const CRASH_LOCK_ATTEMPTS: u32 = 1 << 20;

impl Console {
    /// Runs `f` on the UART, under the lock once locking is enabled.
    fn with<R>(&self, f: impl FnOnce(&mut Uart) -> R) -> Option<R> {
        let _guard = self
            .locking
            .load(Ordering::Acquire)
            .then(|| self.lock.lock());
        // SAFETY: either the lock is held, or locking is not enabled yet and
        // only the boot CPU runs (see the `Sync` impl).
        unsafe { (*self.uart.get()).as_mut().map(f) }
    }
}

/// Time stamps count from `origin` ticks of a `frequency` Hz counter.
pub fn set_time_origin(origin: u64, frequency: u64) {
    ORIGIN.store(origin, Ordering::Relaxed);
    FREQUENCY.store(frequency, Ordering::Relaxed);
}

/// Counter ticks in `milliseconds`.
pub fn ticks_in_ms(milliseconds: u64) -> u64 {
    const MS_PER_SECOND: u64 = 1000;
    FREQUENCY
        .load(Ordering::Relaxed)
        .saturating_mul(milliseconds)
        / MS_PER_SECOND
}

/// `ticks` of the counter in nanoseconds.
pub fn ticks_to_ns(ticks: u64) -> u64 {
    const NS_PER_SECOND: u128 = 1_000_000_000;
    let frequency = u128::from(FREQUENCY.load(Ordering::Relaxed).max(1));
    u64::try_from(u128::from(ticks) * NS_PER_SECOND / frequency).unwrap_or(u64::MAX)
}

/// A duration in microseconds to the nanosecond: `3407.016 us`.
pub struct Microseconds(pub u64);

impl core::fmt::Display for Microseconds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const NS_PER_US: u64 = 1000;
        write!(f, "{}.{:03} us", self.0 / NS_PER_US, self.0 % NS_PER_US)
    }
}

/// Counter ticks since entry.
pub fn since_entry() -> Timestamp {
    Timestamp {
        ticks: cpu::counter().saturating_sub(ORIGIN.load(Ordering::Relaxed)),
        frequency: FREQUENCY.load(Ordering::Relaxed),
    }
}

/// Makes `uart` the console. Boot CPU only, before [`enable_locking`].
pub fn install(mut uart: Uart) {
    uart.init();
    if !CONSOLE.locking.load(Ordering::Acquire) {
        // SAFETY: locking is not enabled yet, so only the boot CPU runs and
        // nothing else holds a reference to the UART.
        unsafe { *CONSOLE.uart.get() = Some(uart) };
    }
}

/// From now on the console is used under its lock: call once the MMU and
/// caches are on, before any other CPU starts.
pub fn enable_locking() {
    CONSOLE.locking.store(true, Ordering::Release);
}

/// Waits until the console's output has left the UART (before power-off).
pub fn flush() {
    CONSOLE.with(Uart::flush);
}

/// Runs `f` on the console for a crash report: takes the lock if it can, by
/// force if its holder seems stuck (it may be the CPU that crashed), and not
/// at all before locking is enabled (a crash that early runs alone).
pub fn with_console_for_crash(f: impl FnOnce(&mut Uart)) {
    if CONSOLE.locking.load(Ordering::Acquire) {
        let mut attempts = 0;
        while CONSOLE.lock.is_locked() && attempts < CRASH_LOCK_ATTEMPTS {
            core::hint::spin_loop();
            attempts += 1;
        }
        if CONSOLE.lock.is_locked() {
            // SAFETY: the holder has kept the lock for about a million
            // polls: it crashed or is stopped. Interleaved bytes are a lesser
            // evil than a crash report that never appears.
            unsafe { CONSOLE.lock.force_unlock() };
        }
    }
    CONSOLE.with(f);
}

/// Most bytes taken from the console's receive FIFO per interrupt; more
/// waiting raise the interrupt again, so a flood cannot hold a CPU.
const INPUT_BURST: usize = 64;

/// Passes each byte waiting in the console's receive FIFO to `each`.
pub fn read_input(mut each: impl FnMut(u8)) {
    CONSOLE.with(|uart| {
        for _ in 0..INPUT_BURST {
            let Some(byte) = uart.read_byte() else { break };
            each(byte);
        }
    });
}

/// Lets bytes the console receives raise its interrupt.
pub fn enable_input_interrupt() {
    CONSOLE.with(Uart::enable_receive_interrupt);
}

/// The unfinished line last shown, if any. Locked only under the
/// console's lock, once locking is enabled, so it never waits.
static OPEN_LINE: Mutex<OpenLine> = Mutex::new(OpenLine::new());

/// Writes a partition's output: a line, or (`ended` false) the start of
/// one, which later calls continue. Each line starts with the time (so
/// what a guest does can be timed from outside it) and the name.
pub fn write_partition_output(name: &'static str, text: &[u8], ended: bool) {
    let time = since_entry();
    CONSOLE.with(|uart| {
        let mut out = |piece: Piece<'_>| match piece {
            Piece::Prefix => {
                let _ = write!(uart, "[{time}] {name} | ");
            }
            Piece::Bytes(bytes) => uart.write_bytes(bytes),
        };
        OPEN_LINE
            .lock()
            .write(name.as_ptr() as usize, text, ended, &mut out);
    });
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
        CONSOLE.with(|uart| {
            // No lock before the MMU is on (see the module comment); no
            // partition, and so no open line, exists before then.
            if CONSOLE.locking.load(Ordering::Acquire) {
                OPEN_LINE.lock().interrupt(&mut |piece| {
                    if let Piece::Bytes(bytes) = piece {
                        uart.write_bytes(bytes);
                    }
                });
            }
            let _ = logging::write_prefix(uart, time, cpu::index(), record.level());
            let _ = uart.write_fmt(*record.args());
            uart.write_bytes(b"\n");
        });
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Routes `log` records to the console at `level` and above. Boot CPU only,
/// before [`enable_locking`] (it uses no atomic read-modify-write).
pub fn init_logger(level: log::LevelFilter) {
    // SAFETY: called once, on the boot CPU, before any other CPU runs and
    // before anything logs, which is what the racy variants require.
    unsafe {
        let _ = log::set_logger_racy(&LOGGER);
        log::set_max_level_racy(level);
    }
}
