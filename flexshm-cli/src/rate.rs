//! Commit rates: periods between commits over a window of commits (`hz`), and a rate
//! over the last seconds (`watch`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Periods between commits over the last `window` commits.
///
/// A sample is the time between two observations of the head and the number of
/// commits it covers; when several commits land between two observations, each is
/// given the average period of the sample (they are "coalesced").
#[derive(Debug, Clone)]
pub struct Periods {
    window: u64,
    samples: VecDeque<(f64, u64)>,
    commits: u64,
}

/// Statistics of a window of periods, in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeriodStats {
    pub rate_hz: f64,
    pub min: f64,
    pub mean: f64,
    pub max: f64,
    /// Standard deviation of the periods.
    pub jitter: f64,
    /// Commits in the window.
    pub commits: u64,
    /// Commits that shared a sample with others (their periods are averages).
    pub coalesced: u64,
}

impl Periods {
    pub fn new(window: u64) -> Periods {
        Periods {
            window: window.max(1),
            samples: VecDeque::new(),
            commits: 0,
        }
    }

    /// Adds `commits` (> 0) commits observed `dt` seconds after the previous ones.
    pub fn push(&mut self, dt: f64, commits: u64) {
        if commits == 0 {
            return;
        }
        self.samples.push_back((dt, commits));
        self.commits += commits;
        while self.commits > self.window && self.samples.len() > 1 {
            if let Some((_, k)) = self.samples.pop_front() {
                self.commits -= k;
            }
        }
    }

    pub fn stats(&self) -> Option<PeriodStats> {
        if self.commits == 0 {
            return None;
        }
        let n = self.commits as f64;
        let total: f64 = self.samples.iter().map(|&(dt, _)| dt).sum();
        let mean = total / n;
        let mut min = f64::INFINITY;
        let mut max = 0.0f64;
        let mut var = 0.0;
        let mut coalesced = 0;
        for &(dt, k) in &self.samples {
            let p = dt / k as f64;
            min = min.min(p);
            max = max.max(p);
            var += k as f64 * (p - mean) * (p - mean);
            if k > 1 {
                coalesced += k;
            }
        }
        Some(PeriodStats {
            rate_hz: if mean > 0.0 {
                1.0 / mean
            } else {
                f64::INFINITY
            },
            min,
            mean,
            max,
            jitter: (var / n).sqrt(),
            commits: self.commits,
            coalesced,
        })
    }
}

/// Commits per second over the last `span`, from (time, commits so far) observations.
#[derive(Debug, Clone)]
pub struct RateMeter {
    span: Duration,
    seen: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    pub fn new(span: Duration) -> RateMeter {
        RateMeter {
            span,
            seen: VecDeque::new(),
        }
    }

    /// Records that `total` commits had happened by `now` (counting from any start).
    pub fn observe(&mut self, now: Instant, total: u64) {
        self.seen.push_back((now, total));
        // Keep one observation at or before the span's start, to measure from.
        while self.seen.len() > 2 && now.duration_since(self.seen[1].0) >= self.span {
            self.seen.pop_front();
        }
    }

    /// The rate, once observations cover at least a tenth of the span.
    pub fn rate(&self) -> Option<f64> {
        let (&(t0, c0), &(t1, c1)) = (self.seen.front()?, self.seen.back()?);
        let dt = t1.duration_since(t0);
        (dt >= self.span / 10).then(|| (c1 - c0) as f64 / dt.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_of_a_steady_writer() {
        let mut p = Periods::new(3);
        assert_eq!(p.stats(), None);
        for dt in [0.5, 0.1, 0.1, 0.1] {
            p.push(dt, 1);
        }
        let s = p.stats().unwrap();
        assert_eq!(s.commits, 3, "the oldest sample left the window");
        assert!((s.mean - 0.1).abs() < 1e-12 && (s.rate_hz - 10.0).abs() < 1e-9);
        assert!(s.jitter < 1e-12);
        assert_eq!(s.coalesced, 0);
    }

    #[test]
    fn coalesced_commits_share_a_period() {
        let mut p = Periods::new(100);
        p.push(0.2, 1);
        p.push(0.2, 2);
        let s = p.stats().unwrap();
        assert_eq!((s.commits, s.coalesced), (3, 2));
        assert!((s.min - 0.1).abs() < 1e-12 && (s.max - 0.2).abs() < 1e-12);
        assert!((s.mean - 0.4 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn rate_over_a_span() {
        let t = Instant::now();
        let mut m = RateMeter::new(Duration::from_secs(2));
        m.observe(t, 0);
        assert_eq!(m.rate(), None);
        for i in 1..=40u64 {
            m.observe(t + Duration::from_millis(100 * i), 5 * i);
        }
        let r = m.rate().unwrap();
        assert!((r - 50.0).abs() < 1e-9, "{r}");
        // The writer stops: the rate falls to 0 once the span holds no commit.
        m.observe(t + Duration::from_millis(7000), 200);
        m.observe(t + Duration::from_millis(7100), 200);
        assert_eq!(m.rate(), Some(0.0));
    }
}
