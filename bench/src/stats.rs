//! Percentiles and the median of per-block ratios.
//!
//! The machine's vCPUs move between host cores every second or so, which changes
//! cross-core latency several times over. Absolute times pooled over a run mix those
//! regimes; a ratio taken inside one short block (both systems measured back to back on
//! the same pair of cores) does not. So every comparison is the median over blocks of
//! `median(system in block) / median(baseline in block)`.

/// The `p`-th percentile (0..=100) of `v` by nearest rank; sorts `v`.
pub fn percentile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The median of `v` (sorts `v`).
pub fn median(v: &mut [f64]) -> f64 {
    percentile(v, 50.0)
}

/// Samples of several systems, measured in interleaved blocks.
#[derive(Debug, Clone)]
pub struct Blocks {
    names: Vec<String>,
    /// per system: per block: samples
    samples: Vec<Vec<Vec<f64>>>,
}

impl Blocks {
    /// Empty results for the named systems.
    pub fn new(names: &[&str]) -> Blocks {
        Blocks {
            names: names.iter().map(|s| s.to_string()).collect(),
            samples: vec![Vec::new(); names.len()],
        }
    }

    /// Index of a system by name.
    pub fn index(&self, name: &str) -> usize {
        self.names
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("no system {name}"))
    }

    /// Adds one block of samples for system `sys`.
    pub fn push(&mut self, sys: usize, block: Vec<f64>) {
        self.samples[sys].push(block);
    }

    /// Number of systems.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True if there are no systems.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Name of system `sys`.
    pub fn name(&self, sys: usize) -> &str {
        &self.names[sys]
    }

    /// Whether system `sys` has any samples.
    pub fn has(&self, sys: usize) -> bool {
        self.samples[sys].iter().any(|b| !b.is_empty())
    }

    /// Pooled percentile of system `sys` over all blocks.
    pub fn pooled(&self, sys: usize, p: f64) -> f64 {
        let mut all: Vec<f64> = self.samples[sys].iter().flatten().copied().collect();
        percentile(&mut all, p)
    }

    /// Number of samples of system `sys`.
    pub fn count(&self, sys: usize) -> usize {
        self.samples[sys].iter().map(|b| b.len()).sum()
    }

    /// Per-block medians of system `sys`.
    pub fn block_medians(&self, sys: usize) -> Vec<f64> {
        self.samples[sys]
            .iter()
            .map(|b| median(&mut b.clone()))
            .collect()
    }

    /// Median over blocks of `median(sys) / median(base)` in the same block, with the
    /// 25th and 75th percentile of those ratios (how much they scatter).
    pub fn ratio(&self, sys: usize, base: usize) -> Ratio {
        let a = self.block_medians(sys);
        let b = self.block_medians(base);
        let mut r: Vec<f64> = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x.is_finite() && y.is_finite() && **y > 0.0)
            .map(|(x, y)| x / y)
            .collect();
        if r.is_empty() {
            return Ratio {
                median: f64::NAN,
                q1: f64::NAN,
                q3: f64::NAN,
                blocks: 0,
            };
        }
        Ratio {
            median: percentile(&mut r, 50.0),
            q1: percentile(&mut r, 25.0),
            q3: percentile(&mut r, 75.0),
            blocks: r.len(),
        }
    }
}

/// A median of per-block ratios with its interquartile range.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    /// Median of the per-block ratios.
    pub median: f64,
    /// 25th percentile.
    pub q1: f64,
    /// 75th percentile.
    pub q3: f64,
    /// Blocks that gave a ratio.
    pub blocks: usize,
}

impl Ratio {
    /// `1.23× (1.10–1.40)`.
    pub fn show(&self) -> String {
        if !self.median.is_finite() {
            return "–".into();
        }
        format!(
            "{}× ({}–{})",
            fmt_ratio(self.median),
            fmt_ratio(self.q1),
            fmt_ratio(self.q3)
        )
    }
}

/// A ratio with sensible digits.
pub fn fmt_ratio(r: f64) -> String {
    if !r.is_finite() {
        "–".into()
    } else if r >= 100.0 {
        format!("{r:.0}")
    } else if r >= 10.0 {
        format!("{r:.1}")
    } else {
        format!("{r:.2}")
    }
}

/// Nanoseconds with a unit that keeps 3 significant digits.
pub fn fmt_ns(ns: f64) -> String {
    if !ns.is_finite() {
        "–".into()
    } else if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e4 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A rate with an SI prefix: `21.3 M/s`.
pub fn fmt_rate(r: f64) -> String {
    if !r.is_finite() {
        "–".into()
    } else if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k/s", r / 1e3)
    } else {
        format!("{r:.0} /s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_by_nearest_rank() {
        let mut v = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(percentile(&mut v, 50.0), 3.0);
        assert_eq!(percentile(&mut v, 100.0), 5.0);
        assert_eq!(percentile(&mut v, 0.0), 1.0);
        assert_eq!(percentile(&mut v, 99.0), 5.0);
    }

    #[test]
    fn ratio_is_median_of_block_ratios_not_of_pooled_times() {
        // Block 1 runs 10x slower for both systems; a pooled comparison would mix them.
        let mut b = Blocks::new(&["base", "sut"]);
        b.push(0, vec![10.0, 10.0, 10.0]);
        b.push(1, vec![20.0, 20.0, 20.0]);
        b.push(0, vec![100.0, 100.0, 100.0]);
        b.push(1, vec![200.0, 200.0, 200.0]);
        b.push(0, vec![10.0]);
        b.push(1, vec![30.0]);
        let r = b.ratio(1, 0);
        assert_eq!(r.median, 2.0);
        assert_eq!(r.blocks, 3);
    }
}
