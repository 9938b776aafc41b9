//! The reference run recorded in docs/: `cargo xtask bench --record` writes
//! it, and every full run lists the figures that moved since, so that a
//! change that moves a figure is noticed and the reference updated with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::workspace::root;

/// The recorded run: the JSON (compared) and the table (for people).
pub fn json_path() -> PathBuf {
    root().join("docs").join("bench-reference.json")
}

pub fn table_path() -> PathBuf {
    root().join("docs").join("bench-reference.txt")
}

/// Fields that are not figures of Tessera: they change with the host.
const NOT_COMPARED: [&str; 2] = ["wall_clock_seconds", "method"];

/// Every number in `value`, by a path that names array elements by their
/// `name` field where they have one (`traps.null_hvc.tessera.median`).
fn flatten(value: &Value, path: String, out: &mut BTreeMap<String, f64>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match value {
        Value::Number(number) => {
            if let Some(number) = number.as_f64() {
                out.insert(path, number);
            }
        }
        Value::Object(map) => {
            for (key, value) in map {
                if !NOT_COMPARED.contains(&key.as_str()) {
                    flatten(value, join(key), out);
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                let key = item
                    .get("name")
                    .and_then(Value::as_str)
                    .map_or_else(|| index.to_string(), str::to_owned);
                flatten(item, join(&key), out);
            }
        }
        _ => {}
    }
}

/// The figures of `current` that differ from `reference`, as
/// `path: before -> after` (or a figure only one of them has).
pub fn moved(reference: &Value, current: &Value) -> Vec<String> {
    let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
    flatten(reference, String::new(), &mut before);
    flatten(current, String::new(), &mut after);
    let mut moved = Vec::new();
    for (path, old) in &before {
        match after.get(path) {
            Some(new) if new == old => {}
            Some(new) => moved.push(format!("{path}: {old} -> {new}")),
            None => moved.push(format!("{path}: {old} -> (gone)")),
        }
    }
    for (path, new) in &after {
        if !before.contains_key(path) {
            moved.push(format!("{path}: (new) {new}"));
        }
    }
    moved
}

/// Reads the recorded JSON, if there is one.
pub fn read() -> Result<Option<Value>> {
    let path = json_path();
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Some(value))
}

/// Writes `json` and `table` as the reference run.
pub fn record(json: &str, table: &str) -> Result<()> {
    write(&json_path(), json)?;
    write(&table_path(), table)
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn figures_are_compared_by_name_and_host_fields_are_not() {
        let reference = json!({
            "traps": [{"name": "null_hvc", "tessera": {"median": 148}}],
            "wall_clock_seconds": {"native": 0.1},
            "method": "QEMU 10.0.2",
        });
        let same = json!({
            "traps": [{"name": "null_hvc", "tessera": {"median": 148}}],
            "wall_clock_seconds": {"native": 0.7},
            "method": "QEMU 10.1",
        });
        assert!(moved(&reference, &same).is_empty());
        let faster = json!({
            "traps": [{"name": "null_hvc", "tessera": {"median": 120}}, {"name": "psci", "x": 1}],
        });
        assert_eq!(
            moved(&reference, &faster),
            [
                "traps.null_hvc.tessera.median: 148 -> 120",
                "traps.psci.x: (new) 1"
            ]
        );
    }
}
