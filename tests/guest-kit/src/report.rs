//! Machine-readable test results on the console.
//!
//! A run prints one line per test case and one at the end, exactly:
//!
//! ```text
//! TEST <name>: ok
//! TEST <name>: FAILED: <reason>
//! RESULT <role>: <passed> passed, <failed> failed
//! ```
//!
//! Names are short snake_case words without spaces or colons; a reason is one
//! line (newlines become spaces) of at most [`FAILURE_CAPACITY`] bytes. An
//! unexpected exception or a panic in the middle of a case prints that case's
//! `FAILED` line and the `RESULT` line before the partition powers off
//! ([`abort`]), so a scenario always sees the run end.
//!
//! ```ignore
//! report::begin("a");
//! report::case("psci_version", || {
//!     let version = Psci::HVC.version();
//!     ensure!(version == 0x1_0001, "PSCI_VERSION returned {version:#x}, expected 1.1");
//!     Ok(())
//! });
//! report::finish();
//! ```

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};

/// The longest failure reason kept; longer ones end in `...`.
pub const FAILURE_CAPACITY: usize = 240;
/// The longest role or case name kept.
const LABEL_CAPACITY: usize = 48;
const TRUNCATION_MARK: &str = "...";

/// Why a test case failed: one line of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    message: heapless::String<FAILURE_CAPACITY>,
}

/// Writes into a bounded string, turning line breaks into spaces and
/// remembering whether anything was cut.
struct OneLine<'a> {
    message: &'a mut heapless::String<FAILURE_CAPACITY>,
    truncated: bool,
}

impl Write for OneLine<'_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        for character in text.chars() {
            let character = if character == '\n' || character == '\r' {
                ' '
            } else {
                character
            };
            let room = FAILURE_CAPACITY - TRUNCATION_MARK.len();
            if self.message.len() + character.len_utf8() > room {
                self.truncated = true;
                return Ok(());
            }
            // Cannot fail: the length was checked above.
            let _ = self.message.push(character);
        }
        Ok(())
    }
}

impl Failure {
    /// A failure whose reason is `message` (use [`crate::fail!`]).
    pub fn new(message: fmt::Arguments<'_>) -> Failure {
        let mut text = heapless::String::new();
        let mut line = OneLine {
            message: &mut text,
            truncated: false,
        };
        let _ = line.write_fmt(message);
        if line.truncated {
            let _ = text.push_str(TRUNCATION_MARK);
        }
        Failure { message: text }
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a test case returns.
pub type Outcome = Result<(), Failure>;

/// Fails the current test case: `return Err(Failure)` with a formatted reason.
#[macro_export]
macro_rules! fail {
    ($($argument:tt)+) => {
        return ::core::result::Result::Err($crate::report::Failure::new(
            ::core::format_args!($($argument)+),
        ))
    };
}

/// Fails the current test case with the reason given unless `condition` holds.
#[macro_export]
macro_rules! ensure {
    ($condition:expr, $($argument:tt)+) => {
        if !$condition {
            $crate::fail!($($argument)+);
        }
    };
}

/// The line for one test case.
pub struct CaseLine<'a> {
    pub name: &'a str,
    pub outcome: &'a Outcome,
}

impl fmt::Display for CaseLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.outcome {
            Ok(()) => write!(f, "TEST {}: ok", self.name),
            Err(failure) => write!(f, "TEST {}: FAILED: {}", self.name, failure),
        }
    }
}

/// The counts at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    pub passed: u32,
    pub failed: u32,
}

/// The final line of a run.
pub struct ResultLine<'a> {
    pub role: &'a str,
    pub summary: Summary,
}

impl fmt::Display for ResultLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "RESULT {}: {} passed, {} failed",
            self.role, self.summary.passed, self.summary.failed
        )
    }
}

/// A short string in static memory, written by one vCPU and readable from an
/// exception handler on any: bytes in atomics, so a torn read gives a
/// garbled name, never undefined behaviour.
struct Label {
    bytes: [AtomicU8; LABEL_CAPACITY],
    length: AtomicUsize,
}

impl Label {
    const fn new() -> Label {
        Label {
            bytes: [const { AtomicU8::new(0) }; LABEL_CAPACITY],
            length: AtomicUsize::new(0),
        }
    }

    fn set(&self, text: &str) {
        let mut length = text.len().min(LABEL_CAPACITY);
        while !text.is_char_boundary(length) {
            length -= 1;
        }
        self.length.store(0, Ordering::SeqCst);
        for (slot, &byte) in self.bytes.iter().zip(&text.as_bytes()[..length]) {
            slot.store(byte, Ordering::Relaxed);
        }
        self.length.store(length, Ordering::SeqCst);
    }

    /// Copies the label into `buffer` and returns it as text.
    fn get<'b>(&self, buffer: &'b mut [u8; LABEL_CAPACITY]) -> &'b str {
        let length = self.length.load(Ordering::SeqCst).min(LABEL_CAPACITY);
        for (byte, slot) in buffer.iter_mut().zip(&self.bytes).take(length) {
            *byte = slot.load(Ordering::Relaxed);
        }
        let bytes = &buffer[..length];
        match core::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => core::str::from_utf8(&bytes[..error.valid_up_to()]).unwrap_or(""),
        }
    }
}

/// The state of a run: its role, the case in progress and the counts.
/// Counters are only loaded and stored (no read-modify-write, see the crate
/// documentation): cases run on one vCPU at a time.
pub struct Tally {
    role: Label,
    current: Label,
    passed: AtomicU32,
    failed: AtomicU32,
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

impl Tally {
    pub const fn new() -> Tally {
        Tally {
            role: Label::new(),
            current: Label::new(),
            passed: AtomicU32::new(0),
            failed: AtomicU32::new(0),
        }
    }

    /// Starts a run of `role` with no results.
    pub fn begin(&self, role: &str) {
        self.role.set(role);
        self.current.set("");
        self.passed.store(0, Ordering::SeqCst);
        self.failed.store(0, Ordering::SeqCst);
    }

    /// Runs test case `name`, writes its line to `out` and counts it.
    /// Returns whether it passed.
    pub fn case(&self, out: &mut impl Write, name: &str, test: impl FnOnce() -> Outcome) -> bool {
        self.current.set(name);
        let outcome = test();
        self.current.set("");
        self.count(outcome.is_ok());
        let _ = writeln!(
            out,
            "{}",
            CaseLine {
                name,
                outcome: &outcome
            }
        );
        outcome.is_ok()
    }

    fn count(&self, passed: bool) {
        let counter = if passed { &self.passed } else { &self.failed };
        counter.store(
            counter.load(Ordering::SeqCst).saturating_add(1),
            Ordering::SeqCst,
        );
    }

    pub fn summary(&self) -> Summary {
        Summary {
            passed: self.passed.load(Ordering::SeqCst),
            failed: self.failed.load(Ordering::SeqCst),
        }
    }

    /// Writes the `RESULT` line.
    pub fn finish(&self, out: &mut impl Write) -> Summary {
        let summary = self.summary();
        let mut buffer = [0; LABEL_CAPACITY];
        let role = self.role.get(&mut buffer);
        let role = if role.is_empty() { "guest" } else { role };
        let _ = writeln!(out, "{}", ResultLine { role, summary });
        summary
    }

    /// Ends the run early because of `reason`: fails the case in progress
    /// (or counts one failure if none is), then writes the `RESULT` line.
    pub fn abort(&self, out: &mut impl Write, reason: fmt::Arguments<'_>) -> Summary {
        let mut buffer = [0; LABEL_CAPACITY];
        let current = self.current.get(&mut buffer);
        if !current.is_empty() {
            let outcome = Err(Failure::new(reason));
            let _ = writeln!(
                out,
                "{}",
                CaseLine {
                    name: current,
                    outcome: &outcome
                }
            );
        }
        self.current.set("");
        self.count(false);
        self.finish(out)
    }
}

#[cfg(target_os = "none")]
pub use self::target::*;

#[cfg(target_os = "none")]
mod target {
    use core::fmt;

    use super::{Outcome, Summary, Tally};
    use crate::console::Console;
    use crate::psci::Psci;

    /// The run of this guest.
    static TALLY: Tally = Tally::new();

    /// Starts the run: results will be reported for `role`.
    pub fn begin(role: &str) {
        TALLY.begin(role);
    }

    /// Runs one test case and prints its `TEST` line.
    pub fn case(name: &str, test: impl FnOnce() -> Outcome) -> bool {
        TALLY.case(&mut Console, name, test)
    }

    /// Prints the `RESULT` line.
    pub fn finish() -> Summary {
        TALLY.finish(&mut Console)
    }

    /// The counts so far.
    pub fn summary() -> Summary {
        TALLY.summary()
    }

    /// Fails the run for `reason` (an unexpected exception, a panic), prints
    /// the `RESULT` line and powers the partition off.
    pub fn abort(reason: fmt::Arguments<'_>) -> ! {
        TALLY.abort(&mut Console, reason);
        Psci::HVC.system_off()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_documented_format() {
        let ok: Outcome = Ok(());
        let failed: Outcome = Err(Failure::new(format_args!("expected {}, got {}", 1, 2)));
        assert_eq!(
            CaseLine {
                name: "psci_version",
                outcome: &ok
            }
            .to_string(),
            "TEST psci_version: ok"
        );
        assert_eq!(
            CaseLine {
                name: "psci_version",
                outcome: &failed
            }
            .to_string(),
            "TEST psci_version: FAILED: expected 1, got 2"
        );
        assert_eq!(
            ResultLine {
                role: "a",
                summary: Summary {
                    passed: 15,
                    failed: 2
                }
            }
            .to_string(),
            "RESULT a: 15 passed, 2 failed"
        );
    }

    #[test]
    fn reasons_stay_on_one_bounded_line() {
        let failure = Failure::new(format_args!("first\nsecond\r\nthird"));
        assert_eq!(failure.message(), "first second  third");
        let long = "x".repeat(FAILURE_CAPACITY * 2);
        let failure = Failure::new(format_args!("{long}"));
        assert_eq!(failure.message().len(), FAILURE_CAPACITY);
        assert!(failure.message().ends_with("..."));
    }

    fn check(value: u32) -> Outcome {
        ensure!(value == 1, "value is {value}, expected 1");
        if value > 10 {
            fail!("unreachable in this test");
        }
        Ok(())
    }

    #[test]
    fn ensure_and_fail_return_failures() {
        assert_eq!(check(1), Ok(()));
        assert_eq!(check(2).unwrap_err().message(), "value is 2, expected 1");
    }

    #[test]
    fn a_tally_counts_cases_and_prints_lines() {
        let tally = Tally::new();
        tally.begin("b");
        let mut out = String::new();
        assert!(tally.case(&mut out, "first", || Ok(())));
        assert!(!tally.case(&mut out, "second", || check(3)));
        let summary = tally.finish(&mut out);
        assert_eq!(
            summary,
            Summary {
                passed: 1,
                failed: 1
            }
        );
        assert_eq!(
            out,
            "TEST first: ok\nTEST second: FAILED: value is 3, expected 1\nRESULT b: 1 passed, 1 failed\n"
        );
    }

    #[test]
    fn abort_fails_the_case_in_progress_and_ends_the_run() {
        let tally = Tally::new();
        tally.begin("a");
        let mut out = String::new();
        tally.case(&mut out, "fine", || Ok(()));
        // The case in progress is what an exception handler would see.
        tally.current.set("probe");
        tally.abort(&mut out, format_args!("unexpected data abort"));
        assert_eq!(
            out,
            "TEST fine: ok\nTEST probe: FAILED: unexpected data abort\nRESULT a: 1 passed, 1 failed\n"
        );
    }

    #[test]
    fn abort_outside_a_case_still_counts_a_failure() {
        let tally = Tally::new();
        let mut out = String::new();
        tally.abort(&mut out, format_args!("panic"));
        assert_eq!(out, "RESULT guest: 0 passed, 1 failed\n");
    }

    #[test]
    fn labels_truncate_at_character_boundaries() {
        let label = Label::new();
        let long = "é".repeat(LABEL_CAPACITY);
        label.set(&long);
        let mut buffer = [0; LABEL_CAPACITY];
        let text = label.get(&mut buffer);
        assert_eq!(text.len(), LABEL_CAPACITY);
        assert!(text.chars().all(|c| c == 'é'));
    }
}
