//! Runs one process, reads its console output line by line, and checks it
//! against a scenario's steps with a deadline: no sleeps, every wait ends on
//! output, exit or timeout. A step may type a line on the console once it
//! is complete (the process's standard input). A failure carries the reason
//! and the log's tail.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::scenario::{End, Interval, Step};

/// How a line sent to the console shows in the log and the tail.
pub const SENT_PREFIX: &str = "[scenario types] ";

/// Lines of console output shown when a scenario fails.
pub const TAIL_LINES: usize = 40;

/// What to watch for.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Groups of substrings: every substring of a group must appear, in any
    /// order, after the previous group is complete.
    pub steps: Vec<Step>,
    /// Substrings that fail the scenario wherever they appear.
    pub forbidden: Vec<String>,
    /// How the run must end once every step is seen.
    pub end: End,
    pub timeout: Duration,
    /// Times between expected lines to check.
    pub intervals: Vec<Interval>,
}

/// How a run went.
#[derive(Debug)]
pub enum Outcome {
    Passed {
        elapsed: Duration,
        /// What was not checked, and why (an interval without time stamps).
        notes: Vec<String>,
    },
    Failed {
        reason: String,
        tail: Vec<String>,
        elapsed: Duration,
    },
}

impl Outcome {
    pub fn passed(&self) -> bool {
        matches!(self, Outcome::Passed { .. })
    }
}

enum Event {
    Line(String),
    Closed,
}

/// Kills the child's whole process group when dropped, so nothing it
/// started outlives the scenario or keeps its output pipes open.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `command` (its stdout and stderr are the console) and checks the
/// output against `watch`, writing everything to `log`.
pub fn run(mut command: Command, watch: &Watch, log: &Path) -> Outcome {
    let started = Instant::now();
    let failed = |reason: String, tail: Vec<String>| Outcome::Failed {
        reason,
        tail,
        elapsed: started.elapsed(),
    };
    let mut log_file = match File::create(log) {
        Ok(file) => file,
        Err(error) => {
            return failed(
                format!("cannot create {}: {error}", log.display()),
                Vec::new(),
            );
        }
    };
    let sends_input = watch.steps.iter().any(|s| s.input().is_some());
    command
        .stdin(if sends_input {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return failed(
                format!("cannot start {:?}: {error}", command.get_program()),
                Vec::new(),
            );
        }
    };
    let (sender, receiver) = mpsc::channel();
    let mut readers = Vec::new();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let sender = sender.clone();
        readers.push(thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut buffer = Vec::new();
            // Lines, not strings: a guest may print bytes that are not UTF-8.
            while reader.read_until(b'\n', &mut buffer).unwrap_or(0) > 0 {
                let line = String::from_utf8_lossy(&buffer)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                if sender.send(Event::Line(line)).is_err() {
                    return;
                }
                buffer.clear();
            }
            let _ = sender.send(Event::Closed);
        }));
    }
    drop(sender);
    let mut input = child.stdin.take();
    let mut child = Reaper(child);

    let deadline = started + watch.timeout;
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    let remember = |tail: &mut VecDeque<String>, line: String| {
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    };
    let mut step_index = 0;
    let mut pending: Vec<&str> = watch.steps.first().map(|s| s.pending()).unwrap_or_default();
    // When each interval end was seen: the line's time stamp, if it has one.
    let mut seen_at: HashMap<&str, Option<Duration>> = HashMap::new();
    let mut open_streams = readers.len();
    let outcome = loop {
        let now = Instant::now();
        if now >= deadline {
            break Some(format!(
                "timed out after {:?} waiting for {}",
                watch.timeout,
                describe(&pending)
            ));
        }
        match receiver.recv_timeout(deadline - now) {
            Ok(Event::Line(line)) => {
                let _ = writeln!(log_file, "{line}");
                if let Some(bad) = watch.forbidden.iter().find(|f| line.contains(f.as_str())) {
                    remember(&mut tail, line.clone());
                    break Some(format!("forbidden output {bad:?} in: {line}"));
                }
                for expected in pending.iter().filter(|e| line.contains(**e)) {
                    if watch
                        .intervals
                        .iter()
                        .any(|i| i.from == *expected || i.to == *expected)
                    {
                        seen_at.insert(expected, timestamp(&line));
                    }
                }
                pending.retain(|expected| !line.contains(expected));
                remember(&mut tail, line);
                let mut send_failed = None;
                while pending.is_empty() && step_index < watch.steps.len() {
                    if let Some(text) = watch.steps.get(step_index).and_then(Step::input) {
                        let shown = format!("{SENT_PREFIX}{text}");
                        let _ = writeln!(log_file, "{shown}");
                        remember(&mut tail, shown);
                        if let Err(error) = send(input.as_mut(), text) {
                            send_failed = Some(format!("cannot type {text:?}: {error}"));
                            break;
                        }
                    }
                    step_index += 1;
                    pending = watch
                        .steps
                        .get(step_index)
                        .map(|s| s.pending())
                        .unwrap_or_default();
                }
                if send_failed.is_some() {
                    break send_failed;
                }
                if step_index == watch.steps.len() && watch.end == End::Halt {
                    // Every step seen and the machine is meant to stay up: done.
                    break None;
                }
            }
            Ok(Event::Closed) => {
                open_streams -= 1;
                if open_streams == 0 {
                    break finish(&mut child.0, watch, step_index, &pending, deadline);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                break finish(&mut child.0, watch, step_index, &pending, deadline);
            }
        }
    };
    drop(child);
    for reader in readers {
        let _ = reader.join();
    }
    drop(input);
    let mut notes = Vec::new();
    let outcome = outcome.or_else(|| {
        watch
            .intervals
            .iter()
            .find_map(|interval| match check_interval(interval, &seen_at) {
                Ok(None) => None,
                Ok(Some(note)) => {
                    notes.push(note);
                    None
                }
                Err(reason) => Some(reason),
            })
    });
    match outcome {
        None => Outcome::Passed {
            elapsed: started.elapsed(),
            notes,
        },
        Some(reason) => failed(reason, tail.into_iter().collect()),
    }
}

/// Types `text` and a newline on the console.
fn send(input: Option<&mut ChildStdin>, text: &str) -> std::io::Result<()> {
    let input = input.ok_or_else(|| std::io::Error::other("the process has no input pipe"))?;
    input.write_all(format!("{text}\n").as_bytes())?;
    input.flush()
}

/// The time stamp at the start of a console line: `[   12.345678]`, as
/// Tessera's log lines (and Linux's printk times) print it.
pub fn timestamp(line: &str) -> Option<Duration> {
    let inside = line.strip_prefix('[')?.split_once(']')?.0.trim();
    let (seconds, fraction) = inside.split_once('.')?;
    if fraction.is_empty() || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let seconds: u64 = seconds.parse().ok()?;
    let nanos: u32 = format!("{fraction:0<9}").parse().ok()?;
    Some(Duration::new(seconds, nanos))
}

/// `Ok(None)`: within tolerance. `Ok(Some(note))`: not measurable.
/// `Err(reason)`: measured and out of tolerance.
fn check_interval(
    interval: &Interval,
    seen_at: &HashMap<&str, Option<Duration>>,
) -> Result<Option<String>, String> {
    let name = format!("{:?} to {:?}", interval.from, interval.to);
    let (Some(Some(from)), Some(Some(to))) = (
        seen_at.get(interval.from.as_str()),
        seen_at.get(interval.to.as_str()),
    ) else {
        return Ok(Some(format!(
            "{name} not timed: its console lines carry no time stamp"
        )));
    };
    let measured = to.saturating_sub(*from);
    let expected = interval.expected;
    let slack = expected * interval.tolerance_percent / 100;
    if measured + slack < expected || measured > expected + slack {
        return Err(format!(
            "{name} took {:.3} s by the console's time stamps; expected {:.3} s ± {}%",
            measured.as_secs_f64(),
            expected.as_secs_f64(),
            interval.tolerance_percent
        ));
    }
    Ok(None)
}

/// The output has ended: judge by the steps seen and the exit status.
fn finish(
    child: &mut Child,
    watch: &Watch,
    step_index: usize,
    pending: &[&str],
    deadline: Instant,
) -> Option<String> {
    let status = wait_until(child, deadline);
    if step_index < watch.steps.len() {
        return Some(format!(
            "the process ended ({}) before printing {}",
            show(status),
            describe(pending)
        ));
    }
    match (watch.end, status) {
        (End::Exit(code), Some(status)) if status.code() == Some(code) => None,
        (End::Exit(code), status) => {
            Some(format!("expected exit status {code}, got {}", show(status)))
        }
        (End::Halt, status) => Some(format!(
            "expected the machine to stay up, but it ended ({})",
            show(status)
        )),
    }
}

fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                // The streams are closed, so the process is exiting; poll its status.
                thread::yield_now();
            }
            _ => return None,
        }
    }
}

fn show(status: Option<ExitStatus>) -> String {
    status.map_or_else(|| "no exit status".to_owned(), |s| s.to_string())
}

/// Most pending strings a failure names; a step can expect thousands.
const DESCRIBED: usize = 5;

fn describe(pending: &[&str]) -> String {
    let quoted: Vec<String> = pending
        .iter()
        .take(DESCRIBED)
        .map(|p| format!("{p:?}"))
        .collect();
    match pending.len().checked_sub(DESCRIBED) {
        Some(more) if more > 0 => format!("{} and {more} more", quoted.join(", ")),
        _ => quoted.join(" and "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_pending_list_is_cut_short() {
        assert_eq!(describe(&["a", "b"]), "\"a\" and \"b\"");
        let many: Vec<String> = (0..1000).map(|n| format!("line {n}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            describe(&many),
            "\"line 0\", \"line 1\", \"line 2\", \"line 3\", \"line 4\" and 995 more"
        );
    }

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    fn watch(steps: &[&[&str]], end: End) -> Watch {
        Watch {
            steps: steps.iter().map(|s| Step::all(s)).collect(),
            forbidden: vec!["PANIC".into()],
            end,
            timeout: Duration::from_secs(10),
            intervals: Vec::new(),
        }
    }

    fn log() -> tempfile_path::Path {
        tempfile_path::Path::new()
    }

    #[test]
    fn ordered_steps_and_exit_status_pass() {
        let log = log();
        let outcome = run(
            shell("echo boot; echo b; echo a; echo done"),
            &watch(&[&["boot"], &["a", "b"], &["done"]], End::Exit(0)),
            &log.0,
        );
        assert!(outcome.passed(), "{outcome:?}");
    }

    #[test]
    fn a_step_seen_before_its_turn_does_not_count() {
        let log = log();
        let outcome = run(
            shell("echo second; echo first"),
            &watch(&[&["first"], &["second"]], End::Exit(0)),
            &log.0,
        );
        let Outcome::Failed { reason, tail, .. } = outcome else {
            panic!("out-of-order output must fail")
        };
        assert!(reason.contains("before printing \"second\""), "{reason}");
        assert_eq!(tail, ["second", "first"], "the tail shows what was printed");
    }

    #[test]
    fn forbidden_output_fails_at_once() {
        let log = log();
        let outcome = run(
            shell("echo '*** TESSERA PANIC'; sleep 5"),
            &watch(&[&["never"]], End::Exit(0)),
            &log.0,
        );
        let Outcome::Failed {
            reason, elapsed, ..
        } = outcome
        else {
            panic!("forbidden output must fail")
        };
        assert!(reason.starts_with("forbidden output \"PANIC\""), "{reason}");
        assert!(
            elapsed < Duration::from_secs(4),
            "the process is killed, not waited for"
        );
    }

    #[test]
    fn silence_times_out_with_what_was_awaited() {
        let log = log();
        let mut w = watch(&[&["banner"]], End::Halt);
        w.timeout = Duration::from_millis(300);
        let Outcome::Failed { reason, .. } = run(shell("echo hello; sleep 5"), &w, &log.0) else {
            panic!("must time out")
        };
        assert!(
            reason.contains("timed out") && reason.contains("\"banner\""),
            "{reason}"
        );
    }

    #[test]
    fn halting_scenarios_pass_once_everything_is_seen() {
        let log = log();
        let outcome = run(
            shell("echo halted; sleep 30"),
            &watch(&[&["halted"]], End::Halt),
            &log.0,
        );
        let Outcome::Passed { elapsed, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            elapsed < Duration::from_secs(5),
            "a halted machine is stopped by the engine"
        );
    }

    #[test]
    fn wrong_exit_status_fails() {
        let log = log();
        let outcome = run(
            shell("echo done; exit 3"),
            &watch(&[&["done"]], End::Exit(0)),
            &log.0,
        );
        let Outcome::Failed { reason, .. } = outcome else {
            panic!("exit 3 is not exit 0")
        };
        assert!(reason.contains("expected exit status 0"), "{reason}");
    }

    #[test]
    fn a_line_is_typed_once_its_step_is_seen() {
        let log = log();
        let mut w = watch(&[], End::Exit(0));
        w.steps = vec![
            Step::one("ready").then_send("hello"),
            Step::one("got:hello"),
        ];
        let outcome = run(
            shell("echo ready; read line; echo \"got:$line\""),
            &w,
            &log.0,
        );
        assert!(
            outcome.passed(),
            "the child read what the step sent: {outcome:?}"
        );
        let written = std::fs::read_to_string(&log.0).unwrap();
        assert!(
            written.contains(&format!("{SENT_PREFIX}hello")),
            "the log shows what was typed:\n{written}"
        );
    }

    #[test]
    fn lines_are_typed_in_step_order_each_after_its_step() {
        let log = log();
        let mut w = watch(&[], End::Exit(0));
        w.steps = vec![
            Step::one("first?").then_send("one"),
            Step::one("second?").then_send("two"),
            Step::all(&["a=one", "b=two"]),
        ];
        let script = "echo first?; read a; echo second?; read b; echo \"a=$a\"; echo \"b=$b\"";
        let outcome = run(shell(script), &w, &log.0);
        assert!(outcome.passed(), "{outcome:?}");
    }

    #[test]
    fn nothing_is_typed_before_its_step_completes() {
        let log = log();
        let mut w = watch(&[], End::Exit(0));
        // The child reads with a timeout: input typed too early would be
        // read before "now" is printed.
        w.steps = vec![
            Step::all(&["one", "now"]).then_send("x"),
            Step::one("got:x"),
        ];
        w.timeout = Duration::from_secs(5);
        let script = "echo one; if read -t 1 early; then echo early:$early; exit 1; fi; \
                      echo now; read line; echo got:$line";
        let outcome = run(shell(script), &w, &log.0);
        assert!(outcome.passed(), "{outcome:?}");
    }

    #[test]
    fn typing_into_a_process_that_is_gone_fails_with_a_reason() {
        let log = log();
        let mut w = watch(&[], End::Exit(0));
        w.steps = vec![Step::one("bye").then_send("anyone?"), Step::one("never")];
        // The child closes its input first, so the write cannot succeed.
        let outcome = run(shell("exec 0<&-; echo bye; sleep 1"), &w, &log.0);
        let Outcome::Failed { reason, tail, .. } = outcome else {
            panic!("writing to a closed pipe must fail the run")
        };
        assert!(reason.contains("cannot type \"anyone?\""), "{reason}");
        assert!(tail.iter().any(|l| l.starts_with(SENT_PREFIX)), "{tail:?}");
    }

    #[test]
    fn time_stamps_are_read_only_at_the_start_of_a_line() {
        assert_eq!(
            timestamp("[   12.345678] cpu0 INFO  partition linux: boot 2"),
            Some(Duration::new(12, 345_678_000))
        );
        assert_eq!(timestamp("[0.5] x"), Some(Duration::from_millis(500)));
        assert_eq!(
            timestamp("linux | [    1.000000] Linux version 6.12"),
            None,
            "the guest's own printk time is not the physical counter"
        );
        assert_eq!(timestamp("[ 1.2.3] x"), None);
        assert_eq!(timestamp("[   12] x"), None);
    }

    fn interval_watch() -> Watch {
        let mut w = watch(&[&["start"], &["end"]], End::Exit(0));
        w.intervals = vec![Interval {
            from: "start".into(),
            to: "end".into(),
            expected: Duration::from_secs(2),
            tolerance_percent: 10,
        }];
        w
    }

    #[test]
    fn an_interval_within_tolerance_passes() {
        let log = log();
        let outcome = run(
            shell("echo '[    1.000000] start'; echo '[    3.150000] end'"),
            &interval_watch(),
            &log.0,
        );
        let Outcome::Passed { notes, .. } = outcome else {
            panic!("2.15 s is within 2 s ± 10%: {outcome:?}")
        };
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn an_interval_out_of_tolerance_fails_with_the_measured_time() {
        let log = log();
        let outcome = run(
            shell("echo '[    1.000000] start'; echo '[    3.300000] end'"),
            &interval_watch(),
            &log.0,
        );
        let Outcome::Failed { reason, .. } = outcome else {
            panic!("2.3 s is outside 2 s ± 10%")
        };
        assert!(reason.contains("took 2.300 s"), "{reason}");
    }

    #[test]
    fn an_interval_without_time_stamps_passes_with_a_note() {
        let log = log();
        let outcome = run(shell("echo start; echo end"), &interval_watch(), &log.0);
        let Outcome::Passed { notes, .. } = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(
            notes,
            ["\"start\" to \"end\" not timed: its console lines carry no time stamp"]
        );
    }

    /// A unique log path under the system's temporary directory, removed on drop.
    mod tempfile_path {
        use std::path::PathBuf;
        use std::sync::atomic::{AtomicUsize, Ordering};

        pub struct Path(pub PathBuf);

        impl Path {
            pub fn new() -> Path {
                static NEXT: AtomicUsize = AtomicUsize::new(0);
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                Path(
                    std::env::temp_dir()
                        .join(format!("tessera-engine-{}-{n}.log", std::process::id())),
                )
            }
        }

        impl Drop for Path {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }
}
