//! Role `ticker`: a partition that keeps running and shows it. It prints
//! `tick N` every `tick=S` seconds of its virtual counter (`/chosen/bootargs`,
//! default [`DEFAULT_PERIOD_S`]) until Tessera stops it: the witness that
//! stopping or restarting another partition leaves this one alone, and, in
//! the Linux demo, what a person sees of the second partition.

use tessera_guest_kit::{bootargs, println, time};

use crate::context::Context;

/// Seconds between ticks when the bootargs give none: slow enough not to
/// get in the way of a person typing in another partition's shell.
const DEFAULT_PERIOD_S: u64 = 10;

pub fn run(context: &Context) -> ! {
    let period = bootargs::value(context.bootargs, "tick")
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(DEFAULT_PERIOD_S);
    println!("ticker: a tick every {period} s until this partition is stopped");
    let start = time::counter();
    let step = time::ticks(period.saturating_mul(1000));
    let elapsed = || time::counter().wrapping_sub(start);
    let mut n: u64 = 0;
    loop {
        n = n.saturating_add(1);
        // Deadlines counted from the start, so that ticks do not drift.
        let due = step.saturating_mul(n);
        while elapsed() < due {
            time::wait_until(period.saturating_mul(1000), || elapsed() >= due);
        }
        println!("tick {n} ({} s)", n.saturating_mul(period));
    }
}
