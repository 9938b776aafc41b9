//! `/chosen`'s `tessera,*` settings (the README's table of them):
//! every name and value checked, on the host and at boot alike, so that a
//! misspelt setting is an error, never the default taken in silence.

use alloc::vec::Vec;

use super::error::{ConfigError, Problem, Scope};
use super::vocabulary;
use crate::dt::Fdt;

/// The prefix of Tessera's settings in `/chosen`.
pub const PREFIX: &str = "tessera,";

/// Each setting and the values it takes.
pub const SETTINGS: [(&str, &[&str]); 4] = [
    (
        "tessera,log-level",
        &["off", "error", "warn", "info", "debug", "trace"],
    ),
    ("tessera,crash-action", &["halt", "reset"]),
    ("tessera,config-error", &["wait", "power-off"]),
    (
        "tessera,fault-injection",
        &[
            "panic",
            "panic-while-running",
            "data-abort",
            "stack-overflow",
            "undefined-instruction",
        ],
    ),
];

/// Checks every `tessera,*` property of `/chosen` in `fdt`.
pub fn check<'a>(fdt: &Fdt<'a>, errors: &mut Vec<ConfigError<'a>>) {
    let Some(chosen) = fdt.find_node("/chosen") else {
        return;
    };
    let names = SETTINGS.map(|(name, _)| name);
    let mut error = |property: &'static str, problem: Problem<'a>| {
        errors.push(ConfigError {
            scope: Scope::Chosen,
            property,
            problem,
        });
    };
    for property in chosen.properties() {
        if !property.name.starts_with(PREFIX) {
            continue;
        }
        let Some(&(name, values)) = SETTINGS.iter().find(|(n, _)| *n == property.name) else {
            error(
                "",
                Problem::UnknownProperty {
                    name: property.name,
                    on: None,
                    suggestion: vocabulary::closest(property.name, &names),
                },
            );
            continue;
        };
        match property.as_str() {
            Some(value) if values.contains(&value) => {}
            Some(value) => error(
                name,
                Problem::UnknownValue {
                    value,
                    allowed: values,
                },
            ),
            None => error(
                name,
                Problem::Malformed {
                    expected: "a string",
                },
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_log_level_named_is_one_the_logger_takes() {
        let (_, levels) = SETTINGS[0];
        for level in levels {
            assert!(crate::logging::parse_level(level).is_some(), "{level}");
        }
    }
}
