//! Time stamps from the Arm generic counter.

use core::fmt;

/// Counter ticks since an origin, shown as seconds with microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub ticks: u64,
    /// Counter frequency in Hz (CNTFRQ_EL0).
    pub frequency: u64,
}

impl Timestamp {
    /// Whole microseconds (saturating; 0 when the frequency is unknown).
    pub fn micros(&self) -> u64 {
        const MICROS_PER_SECOND: u64 = 1_000_000;
        if self.frequency == 0 {
            return 0;
        }
        // Whole seconds and the remainder apart, so that nothing overflows
        // u64 for any counter frequency below 2^44 Hz.
        let seconds = self.ticks / self.frequency;
        let rest = self.ticks % self.frequency;
        seconds
            .saturating_mul(MICROS_PER_SECOND)
            .saturating_add(rest.saturating_mul(MICROS_PER_SECOND) / self.frequency)
    }
}

impl fmt::Display for Timestamp {
    /// `   12.345678`: seconds, right-aligned like Linux's printk times.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.micros();
        write!(f, "{:5}.{:06}", micros / 1_000_000, micros % 1_000_000)
    }
}

/// A duration in counter ticks, shown in the most readable unit.
#[derive(Debug, Clone, Copy)]
pub struct Elapsed(pub Timestamp);

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.0.micros();
        if micros >= 10_000 {
            write!(f, "{}.{:01} ms", micros / 1000, (micros % 1000) / 100)
        } else {
            write!(f, "{micros} us")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_convert_ticks_at_the_counter_frequency() {
        let t = Timestamp {
            ticks: 62_500_000 + 62_500,
            frequency: 62_500_000,
        };
        assert_eq!(t.to_string(), "    1.001000");
        assert_eq!(
            Timestamp {
                ticks: 5,
                frequency: 0
            }
            .micros(),
            0,
            "unknown frequency must not divide by zero"
        );
        assert_eq!(
            Timestamp {
                ticks: u64::MAX,
                frequency: 1
            }
            .micros(),
            u64::MAX
        );
    }

    #[test]
    fn elapsed_picks_a_readable_unit() {
        assert_eq!(
            Elapsed(Timestamp {
                ticks: 54_000,
                frequency: 54_000_000
            })
            .to_string(),
            "1000 us"
        );
        assert_eq!(
            Elapsed(Timestamp {
                ticks: 54_000_000,
                frequency: 54_000_000
            })
            .to_string(),
            "1000.0 ms"
        );
    }
}
