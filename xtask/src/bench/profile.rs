//! `cargo xtask bench --profile [boot]`: where Tessera's instructions go.
//!
//! Runs the one-partition bench (or only its boot, with `boot`) under QEMU
//! with one instruction per translation block and `-d exec,nochain`, so
//! that QEMU logs every instruction it executes with its address; counts
//! those in Tessera's image by function (from the ELF's symbols); and
//! prints the functions that ran the most instructions. Deterministic under
//! `-icount`, as every bench figure: two runs give the same profile.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::elf::{Symbols, demangle, link_base};

/// Functions listed.
const SHOWN: usize = 40;
/// Samples per latency figure: enough for a steady state, small enough for
/// a log of every instruction.
pub const ITERATIONS: u64 = 20;

/// What to profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The whole bench run in one partition.
    Bench,
    /// Power-on to the guest's first instruction.
    Boot,
}

/// QEMU's arguments that log every executed instruction to `log`.
pub fn qemu_args(log: &Path) -> Vec<String> {
    vec![
        "-accel".into(),
        "tcg,one-insn-per-tb=on".into(),
        "-d".into(),
        "exec,nochain".into(),
        "-D".into(),
        log.display().to_string(),
    ]
}

/// The program counter of an exec-log line:
/// `Trace 0: 0x7f.. [00000000/0000000040201234/00000000/ff020000] `.
fn traced_pc(line: &str) -> Option<u64> {
    let fields = line.strip_prefix("Trace ")?.split_once('[')?.1;
    let pc = fields.split('/').nth(1)?;
    u64::from_str_radix(pc, 16).ok()
}

/// Where Tessera was loaded, from its first log line
/// (`Tessera 0.1.0 (...), loaded at 0x40200000, ...`).
fn load_address(console: &str) -> Option<u64> {
    let rest = console.split_once("loaded at 0x")?.1;
    let digits: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
    u64::from_str_radix(&digits, 16).ok()
}

/// Counts the instructions of `log` that ran in Tessera's image (whose
/// console is `console`), by function, and prints the largest.
pub fn report(elf: &[u8], console: &str, log: &Path) -> Result<()> {
    let Some(load) = load_address(console) else {
        bail!("Tessera's console does not say where it was loaded");
    };
    let link_base = link_base(elf)?;
    let symbols = Symbols::read(elf)?;
    let reader = BufReader::new(
        std::fs::File::open(log).with_context(|| format!("opening {}", log.display()))?,
    );
    let mut by_function: HashMap<&str, u64> = HashMap::new();
    let (mut total, mut tessera) = (0u64, 0u64);
    for line in reader.lines() {
        let Some(pc) = traced_pc(&line?) else {
            continue;
        };
        total += 1;
        let Some(linked) = pc.checked_sub(load).map(|o| o + link_base) else {
            continue;
        };
        if let Some(name) = symbols.find(linked) {
            tessera += 1;
            *by_function.entry(name).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, u64)> = by_function.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    println!(
        "{total} instructions executed, {tessera} of them in Tessera's image; the {SHOWN} functions that ran the most:"
    );
    for (name, count) in ranked.iter().take(SHOWN) {
        println!("{count:>12}  {}", demangle(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exec_line_gives_its_pc() {
        let line = "Trace 0: 0x7f12c4000100 [00000000/0000000040201234/00000000/ff020000] ";
        assert_eq!(traced_pc(line), Some(0x4020_1234));
        assert_eq!(traced_pc("IN: "), None);
    }

    #[test]
    fn the_load_address_comes_from_the_banner() {
        let console = "[    0.000167] cpu0 INFO  Tessera 0.1.0 (8527df0), loaded at 0x40200000, device tree at 0x48000000";
        assert_eq!(load_address(console), Some(0x4020_0000));
    }
}
