//! Reading Tessera's ELF: its functions by address and by size, where it is
//! linked, and their names made readable.

use anyhow::{Context, Result};
use object::{Object, ObjectSegment, ObjectSymbol, SymbolKind};

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
pub struct Symbols {
    /// (start, end, name), by start.
    functions: Vec<(u64, u64, String)>,
}

impl Symbols {
    pub fn read(elf: &[u8]) -> Result<Symbols> {
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

    pub fn find(&self, address: u64) -> Option<&str> {
        let index = self.functions.partition_point(|f| f.0 <= address);
        let (start, end, name) = self.functions.get(index.checked_sub(1)?)?;
        (*start <= address && address < *end).then_some(name.as_str())
    }
}

/// The address the image is linked at: its lowest loadable byte.
pub fn link_base(elf: &[u8]) -> Result<u64> {
    let file = object::File::parse(elf).context("parsing Tessera's ELF")?;
    file.segments()
        .filter(|s| s.data().is_ok_and(|d| !d.is_empty()))
        .map(|s| s.address())
        .min()
        .context("the ELF has no loadable data")
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
    fn legacy_symbols_lose_their_hash() {
        assert_eq!(
            demangle("_ZN8hyp_core9partition4exit6handle17h0123456789abcdefE"),
            "hyp_core::partition::exit::handle"
        );
        assert_eq!(demangle("guest_exit"), "guest_exit");
    }
}
