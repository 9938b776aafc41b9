//! The log line format and level selection, shared by the EL2 logger.

use core::fmt;

use crate::time::Timestamp;

/// Writes the prefix of a log line: `[    0.001234] cpu0 INFO  `.
pub fn write_prefix(
    out: &mut impl fmt::Write,
    time: Timestamp,
    cpu: usize,
    level: log::Level,
) -> fmt::Result {
    write!(out, "[{time}] cpu{cpu} {level:<5} ")
}

/// The level named by `/chosen/tessera,log-level` ("error" to "trace").
pub fn parse_level(name: &str) -> Option<log::LevelFilter> {
    match name {
        "off" => Some(log::LevelFilter::Off),
        "error" => Some(log::LevelFilter::Error),
        "warn" => Some(log::LevelFilter::Warn),
        "info" => Some(log::LevelFilter::Info),
        "debug" => Some(log::LevelFilter::Debug),
        "trace" => Some(log::LevelFilter::Trace),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_has_time_cpu_and_level() {
        let mut line = String::new();
        let time = Timestamp {
            ticks: 62_500,
            frequency: 62_500_000,
        };
        write_prefix(&mut line, time, 3, log::Level::Warn).unwrap();
        assert_eq!(line, "[    0.001000] cpu3 WARN  ");
    }

    #[test]
    fn levels_parse_by_name_only() {
        assert_eq!(parse_level("debug"), Some(log::LevelFilter::Debug));
        assert_eq!(parse_level("verbose"), None);
    }
}
