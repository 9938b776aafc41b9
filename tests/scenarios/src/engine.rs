//! Runs one process, reads its console output line by line, and checks it
//! against a scenario's steps with a deadline: no sleeps, every wait ends on
//! output, exit or timeout. A failure carries the reason and the log's tail.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::scenario::{End, Step};

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
}

/// How a run went.
#[derive(Debug)]
pub enum Outcome {
    Passed {
        elapsed: Duration,
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
    command
        .stdin(Stdio::null())
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
    let mut child = Reaper(child);

    let deadline = started + watch.timeout;
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    let mut step_index = 0;
    let mut pending: Vec<&str> = watch.steps.first().map(|s| s.pending()).unwrap_or_default();
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
                    tail.push_back(line.clone());
                    break Some(format!("forbidden output {bad:?} in: {line}"));
                }
                pending.retain(|expected| !line.contains(expected));
                while pending.is_empty() && step_index < watch.steps.len() {
                    step_index += 1;
                    pending = watch
                        .steps
                        .get(step_index)
                        .map(|s| s.pending())
                        .unwrap_or_default();
                }
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
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
    match outcome {
        None => Outcome::Passed {
            elapsed: started.elapsed(),
        },
        Some(reason) => failed(reason, tail.into_iter().collect()),
    }
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

fn describe(pending: &[&str]) -> String {
    let quoted: Vec<String> = pending.iter().map(|p| format!("{p:?}")).collect();
    quoted.join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let Outcome::Passed { elapsed } = outcome else {
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
