//! Reading a bench run's console: the bench guest's `BENCH` lines and
//! Tessera's stage-2 report.
//!
//! The guest prints (tests/bench-guest):
//!
//! ```text
//! BENCH mode=tessera iterations=1000
//! BENCH boot_entry instructions=1234567
//! BENCH null_hvc samples=1000 min=.. p25=.. median=.. p75=.. p99=.. max=.. el2_total=..
//! BENCH timer_irq samples=1000 min=.. p25=.. median=.. p75=.. p99=.. max=.. el2_total=..
//! BENCH cpu_loop instructions=3000004 el2_total=0
//! BENCH memory_loop skipped: <why>
//! BENCH done
//! ```
//!
//! In a partition each line carries Tessera's `<partition> | ` prefix.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};

/// A latency distribution, in instructions per operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Distribution {
    pub samples: u64,
    pub min: u64,
    pub p25: u64,
    pub median: u64,
    pub p75: u64,
    pub p99: u64,
    pub max: u64,
    /// Instructions executed at EL2 over all samples.
    pub el2_total: u64,
}

impl Distribution {
    /// Instructions at EL2 per operation.
    pub fn el2_per_event(&self) -> f64 {
        self.el2_total as f64 / self.samples.max(1) as f64
    }
}

/// One figure of one run.
#[derive(Debug, Clone, PartialEq)]
pub enum Figure {
    Latency(Distribution),
    /// A single count: instructions in all and at EL2.
    Count {
        instructions: u64,
        el2_total: u64,
    },
    Skipped(String),
}

/// What one guest (a whole native run, or one partition) printed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuestOutput {
    /// `native`, `floor` or `tessera`.
    pub mode: String,
    pub iterations: u64,
    pub figures: BTreeMap<String, Figure>,
    /// `BENCH done` was seen.
    pub done: bool,
}

impl GuestOutput {
    pub fn latency(&self, name: &str) -> Option<&Distribution> {
        match self.figures.get(name) {
            Some(Figure::Latency(distribution)) => Some(distribution),
            _ => None,
        }
    }

    /// A count figure's instructions and EL2 instructions.
    pub fn count(&self, name: &str) -> Option<(u64, u64)> {
        match self.figures.get(name) {
            Some(Figure::Count {
                instructions,
                el2_total,
            }) => Some((*instructions, *el2_total)),
            _ => None,
        }
    }
}

/// The `key=value` fields of a line.
fn fields(text: &str) -> BTreeMap<&str, &str> {
    text.split_whitespace()
        .filter_map(|field| field.split_once('='))
        .collect()
}

fn number(fields: &BTreeMap<&str, &str>, key: &str) -> Result<u64> {
    let value = fields.get(key).with_context(|| format!("no {key}="))?;
    value
        .parse()
        .with_context(|| format!("{key}={value} is not a number"))
}

/// Splits Tessera's `<partition> | ` prefix off a console line.
fn partition_and_text(line: &str) -> (&str, &str) {
    // Partition lines start with Tessera's time stamp: "[    1.234567] ".
    let line = match line.split_once("] ") {
        Some((time, rest)) if time.starts_with('[') => rest,
        _ => line,
    };
    match line.split_once(" | ") {
        Some((name, text))
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            (name, text)
        }
        _ => ("", line),
    }
}

/// Every guest's `BENCH` output in `log`, by partition name (`""` for a
/// guest that ran without Tessera).
pub fn parse(log: &str) -> Result<BTreeMap<String, GuestOutput>> {
    let mut guests: BTreeMap<String, GuestOutput> = BTreeMap::new();
    for line in log.lines() {
        let (partition, text) = partition_and_text(line.trim_end());
        let Some(rest) = text.strip_prefix("BENCH ") else {
            continue;
        };
        let guest = guests.entry(partition.to_owned()).or_default();
        let (name, arguments) = rest.split_once(' ').unwrap_or((rest, ""));
        let fields = fields(arguments);
        let parsed = (|| -> Result<()> {
            if let Some(mode) = name.strip_prefix("mode=") {
                guest.mode = mode.to_owned();
                guest.iterations = number(&fields, "iterations")?;
            } else if name == "done" {
                guest.done = true;
            } else if let Some(why) = arguments.strip_prefix("skipped: ") {
                guest
                    .figures
                    .insert(name.to_owned(), Figure::Skipped(why.to_owned()));
            } else if fields.contains_key("median") {
                let distribution = Distribution {
                    samples: number(&fields, "samples")?,
                    min: number(&fields, "min")?,
                    p25: number(&fields, "p25")?,
                    median: number(&fields, "median")?,
                    p75: number(&fields, "p75")?,
                    p99: number(&fields, "p99")?,
                    max: number(&fields, "max")?,
                    el2_total: number(&fields, "el2_total")?,
                };
                guest
                    .figures
                    .insert(name.to_owned(), Figure::Latency(distribution));
            } else {
                let figure = Figure::Count {
                    instructions: number(&fields, "instructions")?,
                    el2_total: fields
                        .get("el2_total")
                        .map(|_| number(&fields, "el2_total"))
                        .transpose()?
                        .unwrap_or(0),
                };
                guest.figures.insert(name.to_owned(), figure);
            }
            Ok(())
        })();
        parsed.with_context(|| format!("reading the bench line {line:?}"))?;
    }
    if guests.is_empty() {
        bail!("the run printed no BENCH line");
    }
    Ok(guests)
}

/// How a partition's RAM is mapped at stage 2: entries of 1 GiB, 2 MiB and
/// 4 KiB, from Tessera's boot log (`partition a: stage 2: 0 1 GiB, 32 2 MiB,
/// 0 4 KiB entries`).
pub fn stage2_entries(log: &str) -> BTreeMap<String, [u64; 3]> {
    let mut partitions = BTreeMap::new();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once("partition ") else {
            continue;
        };
        let Some((name, counts)) = rest.split_once(": stage 2: ") else {
            continue;
        };
        let numbers: Vec<u64> = counts
            .split(", ")
            .filter_map(|part| part.split_whitespace().next()?.parse().ok())
            .collect();
        if let [gib, two_mib, four_kib] = numbers[..] {
            partitions.insert(name.to_owned(), [gib, two_mib, four_kib]);
        }
    }
    partitions
}

#[cfg(test)]
mod tests {
    use super::*;

    const TESSERA_LOG: &str = "\
[    0.012] INFO  partition a: stage 2: 0 1 GiB, 32 2 MiB, 0 4 KiB entries
[    0.013] INFO  partition a: VMID 1, CPUs (MPIDR) 0x0 0x1, RAM ...
[    0.020000] a | BENCH mode=tessera iterations=100
[    0.020000] a | BENCH boot_entry instructions=2000000
[    0.020000] a | BENCH null_hvc samples=100 min=300 p25=301 median=302 p75=303 p99=310 max=400 el2_total=29000
[    0.020000] a | BENCH timer_irq samples=100 min=3512 p25=3512 median=3512 p75=3512 p99=3512 max=3512 el2_total=351000
[    0.020000] a | BENCH eoi samples=100 min=2 p25=2 median=2 p75=2 p99=2 max=2 el2_total=0
[    0.020000] a | BENCH sgi_self samples=100 min=4015 p25=4015 median=4015 p75=4015 p99=4015 max=4020 el2_total=401400
[    0.020000] a | BENCH cpu_loop instructions=3000010 el2_total=0
[    0.020000] a | BENCH memory_loop skipped: no 4194304 bytes of free RAM
[    0.020000] a | BENCH done
";

    #[test]
    fn partition_lines_are_read_by_partition() {
        let guests = parse(TESSERA_LOG).unwrap();
        let a = &guests["a"];
        assert_eq!(
            (a.mode.as_str(), a.iterations, a.done),
            ("tessera", 100, true)
        );
        let hvc = a.latency("null_hvc").unwrap();
        assert_eq!(
            (hvc.min, hvc.median, hvc.p99, hvc.max),
            (300, 302, 310, 400)
        );
        assert_eq!(hvc.el2_per_event(), 290.0);
        assert_eq!(a.count("boot_entry"), Some((2_000_000, 0)));
        assert_eq!(a.count("cpu_loop"), Some((3_000_010, 0)));
        assert!(matches!(a.figures["memory_loop"], Figure::Skipped(_)));
    }

    #[test]
    fn interrupt_lines_are_latencies_with_their_el2_share() {
        let guests = parse(TESSERA_LOG).unwrap();
        let a = &guests["a"];
        let timer = a.latency("timer_irq").unwrap();
        assert_eq!((timer.samples, timer.median), (100, 3512));
        assert_eq!(timer.el2_per_event(), 3510.0);
        let sgi = a.latency("sgi_self").unwrap();
        assert_eq!(
            (sgi.median, sgi.max, sgi.el2_per_event()),
            (4015, 4020, 4014.0)
        );
        let eoi = a.latency("eoi").unwrap();
        assert_eq!((eoi.median, eoi.el2_total), (2, 0));
    }

    #[test]
    fn the_floor_skips_interrupt_figures_with_a_reason() {
        let log = "\
BENCH mode=floor iterations=5
BENCH timer_irq skipped: the floor routes no interrupt to EL2: it would equal native
BENCH sgi_self skipped: the floor routes no interrupt to EL2: it would equal native
BENCH done
";
        let floor = &parse(log).unwrap()[""];
        assert_eq!(
            floor.figures["timer_irq"],
            Figure::Skipped(
                "the floor routes no interrupt to EL2: it would equal native".to_owned()
            )
        );
        assert!(floor.latency("sgi_self").is_none());
    }

    #[test]
    fn native_lines_have_no_partition() {
        let guests = parse("BENCH mode=native iterations=5\nBENCH done\n").unwrap();
        assert_eq!(guests[""].mode, "native");
    }

    #[test]
    fn a_malformed_line_is_an_error_that_quotes_it() {
        let error = parse("BENCH null_hvc samples=1 min=x median=2").unwrap_err();
        assert!(format!("{error:#}").contains("min=x"), "{error:#}");
        assert!(parse("no bench here").is_err());
    }

    #[test]
    fn stage2_entries_come_from_the_boot_log() {
        assert_eq!(stage2_entries(TESSERA_LOG)["a"], [0, 32, 0]);
    }
}
