//! Summaries of latency samples: the order statistics the bench reports.

/// The figures of one latency distribution, in instructions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub samples: usize,
    pub min: u64,
    pub p25: u64,
    pub median: u64,
    pub p75: u64,
    pub p99: u64,
    pub max: u64,
}

/// The nearest-rank `percent` percentile of `sorted` (ascending, non-empty):
/// the smallest sample that at least `percent`% of the samples do not
/// exceed.
fn percentile(sorted: &[u64], percent: usize) -> u64 {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Sorts `samples` and summarises them; `None` for no samples.
pub fn summarise(samples: &mut [u64]) -> Option<Summary> {
    samples.sort_unstable();
    let (&min, &max) = (samples.first()?, samples.last()?);
    Some(Summary {
        samples: samples.len(),
        min,
        p25: percentile(samples, 25),
        median: percentile(samples, 50),
        p75: percentile(samples, 75),
        p99: percentile(samples, 99),
        max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<u64> = (1..=100).rev().collect();
        let summary = summarise(&mut samples).unwrap();
        assert_eq!(
            summary,
            Summary {
                samples: 100,
                min: 1,
                p25: 25,
                median: 50,
                p75: 75,
                p99: 99,
                max: 100
            }
        );
    }

    #[test]
    fn one_sample_is_every_percentile() {
        let summary = summarise(&mut [7]).unwrap();
        assert_eq!(
            (summary.min, summary.median, summary.p99, summary.max),
            (7, 7, 7, 7)
        );
    }

    #[test]
    fn a_rare_outlier_shows_in_p99_only_when_over_one_percent() {
        let mut samples = vec![10; 1000];
        samples[3] = 5000;
        let summary = summarise(&mut samples).unwrap();
        assert_eq!((summary.p99, summary.max), (10, 5000));
        samples.iter_mut().take(20).for_each(|s| *s = 5000);
        assert_eq!(summarise(&mut samples).unwrap().p99, 5000);
    }

    #[test]
    fn no_samples_no_summary() {
        assert_eq!(summarise(&mut []), None);
    }
}
