//! The names the binding knows (`dtb/bindings/tessera,hypervisor.yaml`, a
//! test keeps the two in step), and what is said of any other: a
//! misspelt or made-up property or node is an error naming it, with the
//! known name it is closest to, never a default silently taken instead.

use super::error::Problem;
use crate::dt::Node;

/// Properties dt-schema accepts on every node.
pub const GENERIC: [&str; 4] = ["phandle", "linux,phandle", "status", "secure-status"];

/// The `/hypervisor` node's properties.
pub const HYPERVISOR: [&str; 1] = ["compatible"];

/// A partition's properties.
pub const PARTITION: [&str; 14] = [
    "compatible",
    "#address-cells",
    "#size-cells",
    "cpus",
    "cpu-mpidrs",
    "memory-size",
    "memory-base",
    "guest-memory-base",
    "direct-map",
    "bootargs",
    "restart",
    "pmu-el2-events",
    "devices",
    "console-input",
];

/// A module's properties.
pub const MODULE: [&str; 3] = ["compatible", "reg", "tessera,file"];

/// The one kind of child node a partition has: `module@<address>`.
pub const MODULE_NODE: &str = "module";
/// How a suggestion names it.
const MODULE_NODE_PATTERN: &str = "module@<address>";

/// Reports each property of `node` that neither `known` nor [`GENERIC`]
/// lists; `on` names the node in the message when it is not the
/// partition (or `/hypervisor`) itself.
pub fn unknown_properties<'a>(
    node: &Node<'a>,
    known: &'static [&'static str],
    on: Option<&'a str>,
    report: &mut dyn FnMut(Problem<'a>),
) {
    for property in node.properties() {
        let name = property.name;
        if !known.contains(&name) && !GENERIC.contains(&name) {
            report(Problem::UnknownProperty {
                name,
                on,
                suggestion: closest(name, known),
            });
        }
    }
}

/// Whether `name` is a module node's: `module@<hex address>`.
pub fn is_module_node(name: &str) -> bool {
    name.split_once('@').is_some_and(|(base, unit)| {
        base == MODULE_NODE
            && !unit.is_empty()
            && unit
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A partition's child that is not a module node, as a problem.
pub fn unknown_partition_child(name: &str) -> Problem<'_> {
    let base = name.split_once('@').map_or(name, |(base, _)| base);
    let close = distance(base, MODULE_NODE) <= tolerance(MODULE_NODE);
    Problem::UnknownNode {
        name,
        on: None,
        suggestion: close.then_some(MODULE_NODE_PATTERN),
    }
}

/// The name of `known` closest to `name`, if it is close enough to be a
/// slip of the keyboard (a few characters swapped, missing or extra) or a
/// known name with more at its end (`direct-mapped`).
pub fn closest(name: &str, known: &[&'static str]) -> Option<&'static str> {
    known
        .iter()
        .map(|&candidate| (distance(name, candidate), candidate))
        .filter(|&(distance, candidate)| {
            distance <= tolerance(candidate)
                || (candidate.len() >= MIN_PREFIX && name.starts_with(candidate))
        })
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

/// The shortest known name a longer one is taken for when it begins with it.
const MIN_PREFIX: usize = 5;

/// Edits forgiven in a name like `known`: two, or a quarter of it.
fn tolerance(known: &str) -> usize {
    (known.len() / 4).max(2)
}

/// Names longer than this are never taken for a known one (the longest
/// known name, `tessera,fault-injection`, has 23 characters).
const MAX_COMPARED: usize = 48;

/// The optimal string alignment distance between `a` and `b`: insertions,
/// deletions, substitutions and swaps of two neighbours, one each; names
/// longer than [`MAX_COMPARED`] are as far as can be.
#[allow(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    reason = "indices stay below MAX_COMPARED + 1 and distances below 2 * MAX_COMPARED: \
              the names are bounded above before the table is filled"
)]
fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() > MAX_COMPARED || b.len() > MAX_COMPARED {
        return usize::MAX;
    }
    // Three rows of the table: two back, one back, this one; after each
    // row they move up one, so the last row filled is `rows[1]`.
    let mut rows = [[0usize; MAX_COMPARED + 1]; 3];
    for (j, cell) in rows[1].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        let [two_back, previous, current] = &mut rows;
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(two_back[j - 2] + 1);
            }
            current[j] = best;
        }
        rows.rotate_left(1);
    }
    rows[1][b.len()]
}

#[cfg(test)]
mod tests {
    use std::string::String;
    use std::vec::Vec;

    use super::*;

    #[test]
    fn distances_count_slips_of_the_keyboard() {
        assert_eq!(distance("memory-size", "memory-size"), 0);
        assert_eq!(
            distance("guest-memroy-base", "guest-memory-base"),
            1,
            "a swap"
        );
        assert_eq!(distance("direct-mapped", "direct-map"), 3);
        assert_eq!(distance("restrat", "restart"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance(&"x".repeat(MAX_COMPARED + 1), "x"), usize::MAX);
    }

    #[test]
    fn misspellings_get_the_name_meant_and_made_up_names_none() {
        assert_eq!(
            closest("guest-memroy-base", &PARTITION),
            Some("guest-memory-base")
        );
        assert_eq!(closest("direct-mapped", &PARTITION), Some("direct-map"));
        assert_eq!(closest("restar", &PARTITION), Some("restart"));
        assert_eq!(closest("memory_size", &PARTITION), Some("memory-size"));
        assert_eq!(closest("tessera,fille", &MODULE), Some("tessera,file"));
        assert_eq!(closest("frobnicate", &PARTITION), None);
        assert_eq!(closest("x", &PARTITION), None);
    }

    #[test]
    fn module_nodes_have_a_hex_unit_address() {
        assert!(is_module_node("module@49000000"));
        assert!(is_module_node("module@4c000000"));
        assert!(!is_module_node("module"));
        assert!(!is_module_node("module@"));
        assert!(!is_module_node("modul@49000000"));
        assert!(!is_module_node("module@0x49000000"));
        assert!(
            !is_module_node("module@4C000000"),
            "lower-case hex, as the binding says"
        );
        let Problem::UnknownNode { suggestion, .. } = unknown_partition_child("modul@49000000")
        else {
            panic!("not an unknown node");
        };
        assert_eq!(suggestion, Some(MODULE_NODE_PATTERN));
        let Problem::UnknownNode { suggestion, .. } = unknown_partition_child("uart@9000000")
        else {
            panic!("not an unknown node");
        };
        assert_eq!(suggestion, None);
    }

    /// The keys of each `properties:` block of the binding, in file order
    /// (the top level, a partition, a module), `$nodename` left out.
    fn binding_properties() -> Vec<Vec<String>> {
        let yaml = std::fs::read_to_string(
            super::super::test_support::workspace().join("dtb/bindings/tessera,hypervisor.yaml"),
        )
        .unwrap();
        let indent = |line: &str| line.len() - line.trim_start().len();
        let mut blocks = Vec::new();
        let lines: Vec<&str> = yaml.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            if line.trim() != "properties:" {
                continue;
            }
            let keys_at = indent(line) + 2;
            let mut keys = Vec::new();
            for line in lines.iter().skip(index + 1) {
                if !line.trim().is_empty() && indent(line) < keys_at {
                    break;
                }
                if indent(line) == keys_at
                    && let Some(key) = line.trim().strip_suffix(':')
                {
                    let key = key.trim_matches('\'');
                    if key != "$nodename" {
                        keys.push(key.to_owned());
                    }
                }
            }
            blocks.push(keys);
        }
        blocks
    }

    #[test]
    fn the_lists_are_the_bindings() {
        let blocks = binding_properties();
        let listed = |known: &[&str]| known.iter().map(|&k| k.to_owned()).collect::<Vec<_>>();
        assert_eq!(
            blocks,
            [listed(&HYPERVISOR), listed(&PARTITION), listed(&MODULE)],
            "dtb/bindings/tessera,hypervisor.yaml and config/vocabulary.rs list different names"
        );
    }
}
