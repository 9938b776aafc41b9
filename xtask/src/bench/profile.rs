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
use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

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

/// The `count` largest functions of `elf`: (bytes, name).
pub fn largest_functions(elf: &[u8], count: usize) -> Result<Vec<(u64, String)>> {
    let file = object::File::parse(elf).context("parsing Tessera's ELF")?;
    let mut functions: Vec<(u64, String)> = file
        .symbols()
        .filter(|s| matches!(s.kind(), SymbolKind::Text) && s.size() > 0)
        .filter_map(|s| Some((s.size(), demangle(s.name().ok()?))))
        .collect();
    functions.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    functions.truncate(count);
    Ok(functions)
}

/// A function of the image: its start (link address) and name.
struct Symbols {
    /// (start, end, name), by start.
    functions: Vec<(u64, u64, String)>,
}

impl Symbols {
    fn read(elf: &[u8]) -> Result<Symbols> {
        let file = object::File::parse(elf).context("parsing Tessera's ELF")?;
        let mut functions: Vec<(u64, u64, String)> = file
            .symbols()
            .filter(|s| matches!(s.kind(), SymbolKind::Text) && s.address() != 0)
            .filter_map(|s| {
                let name = s.name().ok()?;
                Some((s.address(), s.address() + s.size().max(4), name.to_owned()))
            })
            .collect();
        functions.sort_by_key(|f| f.0);
        Ok(Symbols { functions })
    }

    fn find(&self, address: u64) -> Option<&str> {
        let index = self.functions.partition_point(|f| f.0 <= address);
        let (start, end, name) = self.functions.get(index.checked_sub(1)?)?;
        (*start <= address && address < *end).then_some(name.as_str())
    }
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

/// The address the image is linked at: its lowest loadable byte.
fn link_base(elf: &[u8]) -> Result<u64> {
    let file = object::File::parse(elf).context("parsing Tessera's ELF")?;
    file.segments()
        .filter(|s| s.data().is_ok_and(|d| !d.is_empty()))
        .map(|s| s.address())
        .min()
        .context("the ELF has no loadable data")
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

/// A Rust v0/legacy symbol, shortened for reading: the path without the hash.
pub fn demangle(name: &str) -> String {
    // Legacy mangling: _ZN<len><ident>...17h<hash>E.
    let Some(mut rest) = name.strip_prefix("_ZN") else {
        return name.to_owned();
    };
    let mut parts = Vec::new();
    while let Some(digits) = rest.get(..rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(0)) {
        let Ok(length) = digits.parse::<usize>() else {
            break;
        };
        let Some(part) = rest.get(digits.len()..digits.len() + length) else {
            break;
        };
        if !(part.starts_with('h') && part.len() == 17) {
            parts.push(
                part.replace("$LT$", "<")
                    .replace("$GT$", ">")
                    .replace("$u20$", " "),
            );
        }
        rest = &rest[digits.len() + length..];
    }
    if parts.is_empty() {
        name.to_owned()
    } else {
        parts.join("::")
    }
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

    #[test]
    fn legacy_symbols_lose_their_hash() {
        assert_eq!(
            demangle("_ZN8hyp_core9partition4exit6handle17h0123456789abcdefE"),
            "hyp_core::partition::exit::handle"
        );
        assert_eq!(demangle("guest_exit"), "guest_exit");
    }
}
