//! A fixed-step ring buffer of samples. Missing samples are stored as NaN so charts and sparklines
//! show a gap rather than joining across it.

use std::collections::VecDeque;

use super::time::UnixSecs;

/// A fitted line: its slope, how well it fits (R², 0..1) and how much time the points span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    pub per_sec: f64,
    pub r2: f64,
    pub span_secs: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    step: i64,
    capacity: usize,
    /// Slot (time / step) of the newest sample.
    last_slot: Option<i64>,
    values: VecDeque<f32>,
}

impl Series {
    pub fn new(step_secs: i64, retention_secs: i64) -> Series {
        let step = step_secs.max(1);
        let capacity = (retention_secs / step).max(2) as usize;
        Series { step, capacity, last_slot: None, values: VecDeque::new() }
    }

    /// Records `value` at `at`; a second sample in the same slot replaces the first. Samples older
    /// than the newest are ignored (metrics can arrive late after a reconnect).
    pub fn push(&mut self, at: UnixSecs, value: f64) {
        let slot = at.div_euclid(self.step);
        match self.last_slot {
            Some(last) if slot < last => return,
            Some(last) if slot == last => {
                if let Some(v) = self.values.back_mut() {
                    *v = value as f32;
                }
                return;
            }
            Some(last) => {
                let gap = ((slot - last - 1) as usize).min(self.capacity);
                for _ in 0..gap {
                    self.push_raw(f32::NAN);
                }
            }
            None => {}
        }
        self.push_raw(value as f32);
        self.last_slot = Some(slot);
    }

    fn push_raw(&mut self, v: f32) {
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(v);
    }

    pub fn latest(&self) -> Option<f64> {
        self.values.back().filter(|v| !v.is_nan()).map(|v| *v as f64)
    }

    /// How many samples it keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The slot (time / step) of the newest point: changes exactly when a new sample arrives.
    pub fn newest_slot(&self) -> Option<i64> {
        self.last_slot
    }

    pub fn step(&self) -> i64 {
        self.step
    }

    /// `(time, value)` of every present sample, oldest first; gaps are skipped.
    pub fn points(&self) -> impl Iterator<Item = (UnixSecs, f64)> + '_ {
        let newest = self.last_slot.unwrap_or(0);
        let n = self.values.len() as i64;
        self.values
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_nan())
            .map(move |(i, v)| ((newest - (n - 1 - i as i64)) * self.step, *v as f64))
    }

    /// The newest `n` slots, `None` where a sample is missing.
    pub fn tail(&self, n: usize) -> impl Iterator<Item = Option<f64>> + '_ {
        let skip = self.values.len().saturating_sub(n);
        self.values.iter().skip(skip).map(|v| if v.is_nan() { None } else { Some(*v as f64) })
    }

    /// The least-squares line through the points at or after `since`; None with fewer than three
    /// points.
    pub fn trend(&self, since: UnixSecs) -> Option<Trend> {
        let start = self.index_at(since)?;
        // x in steps from the first slot, y relative to the first value: small numbers, so the
        // sums of squares keep their precision. Called for thousands of series per refresh.
        let base = self.values.range(start..).find(|v| !v.is_nan()).map(|v| *v as f64)?;
        let (mut n, mut sx, mut sy, mut sxx, mut sxy, mut syy) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let (mut first, mut last) = (usize::MAX, 0);
        for (i, v) in self.values.range(start..).enumerate() {
            if v.is_nan() {
                continue;
            }
            first = first.min(i);
            last = i;
            let (x, y) = (i as f64, *v as f64 - base);
            n += 1.0;
            sx += x;
            sy += y;
            sxx += x * x;
            sxy += x * y;
            syy += y * y;
        }
        let var_x = n * sxx - sx * sx;
        if n < 3.0 || var_x <= 0.0 {
            return None;
        }
        let cov = n * sxy - sx * sy;
        let var_y = n * syy - sy * sy;
        let r2 = if var_y > 0.0 { (cov * cov / (var_x * var_y)).min(1.0) } else { 0.0 };
        Some(Trend { per_sec: cov / var_x / self.step as f64, r2, span_secs: (last - first) as i64 * self.step })
    }

    /// The line through the last `span_secs` of samples when they climb: no gap, each above the
    /// one before, and the newest the highest at or after `since` (a climb that began before
    /// `since` is none: it straddles a restart). A load wave's upswing or a GC saw-tooth's edge
    /// climbs too, but not past the highs before it.
    pub fn climb(&self, span_secs: i64, since: UnixSecs) -> Option<Trend> {
        let newest = self.last_slot?;
        let from = (newest * self.step).checked_sub(span_secs)?;
        if from < since {
            return None;
        }
        let start = self.index_at(from)?;
        let window = self.values.range(start..);
        if (window.len() as i64 - 1) * self.step < span_secs
            || window.clone().zip(window.clone().skip(1)).any(|(a, b)| a.is_nan() || b.is_nan() || b <= a)
        {
            return None;
        }
        let latest = *self.values.back()?;
        let earlier = self.index_at(since).map_or(0..0, |s| s.min(start)..start);
        if self.values.range(earlier).any(|v| *v >= latest) {
            return None;
        }
        self.trend(from)
    }

    /// Index of the first slot at or after `at`; None when `at` is after the newest slot.
    fn index_at(&self, at: UnixSecs) -> Option<usize> {
        let newest = self.last_slot?;
        let slot = at.div_euclid(self.step);
        if slot > newest {
            return None;
        }
        let back = (newest - slot) as usize;
        Some(self.values.len().saturating_sub(back + 1))
    }

    /// The median of the points in `[from, to)`; None when there are fewer than `min_points`.
    pub fn median_between(&self, from: UnixSecs, to: UnixSecs, min_points: usize) -> Option<f64> {
        let mut values: Vec<f64> = self.points().filter(|(t, _)| *t >= from && *t < to).map(|(_, v)| v).collect();
        if values.len() < min_points.max(1) {
            return None;
        }
        values.sort_by(f64::total_cmp);
        Some(values[values.len() / 2])
    }

    /// The first value at or after `at`.
    pub fn value_at(&self, at: UnixSecs) -> Option<f64> {
        self.values.range(self.index_at(at)?..).find(|v| !v.is_nan()).map(|v| *v as f64)
    }

    pub fn max(&self) -> Option<f64> {
        self.values.iter().filter(|v| !v.is_nan()).map(|v| *v as f64).reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_and_median() {
        let mut s = Series::new(10, 600);
        for i in 0..20 {
            s.push(1000 + i * 10, 100.0 + 2.0 * (i * 10) as f64);
        }
        let t = s.trend(1000).unwrap();
        assert!((t.per_sec - 2.0).abs() < 1e-3 && t.r2 > 0.999 && t.span_secs == 190, "{t:?}");
        assert!((s.trend(1150).unwrap().per_sec - 2.0).abs() < 1e-3);
        assert_eq!(s.trend(1180), None, "two points are not a trend");
        let mut saw = Series::new(10, 600);
        for i in 0..20 {
            saw.push(1000 + i * 10, if i % 2 == 0 { 100.0 } else { 200.0 });
        }
        assert!(saw.trend(1000).unwrap().r2 < 0.1, "noise around a level is no trend");
        assert_eq!(s.median_between(1000, 1050, 3), Some(140.0));
        assert_eq!(s.value_at(1000), Some(100.0));
        assert_eq!(s.value_at(1150), Some(400.0));
        assert_eq!(s.value_at(0), Some(100.0), "before the first point: the first point");
        assert_eq!(s.value_at(5000), None);
        assert_eq!(s.median_between(1000, 1020, 3), None);
    }

    #[test]
    fn a_climb_is_steady_and_beyond_the_highs_before_it() {
        let mut s = Series::new(10, 600);
        // Flat, then a steady rise over the last 30 s.
        for i in 0..10 {
            s.push(1000 + i * 10, 100.0 + ((i + 1) % 2) as f64);
        }
        for (i, v) in [(10, 105.0), (11, 110.0), (12, 115.0), (13, 120.0)] {
            s.push(1000 + i * 10, v);
        }
        let t = s.climb(30, 1000).unwrap();
        assert!((t.per_sec - 0.5).abs() < 1e-6 && t.r2 > 0.99 && t.span_secs == 30, "{t:?}");
        assert_eq!(s.climb(50, 1000), None, "50 s back the samples were flat");
        // A wave's upswing back to the level it had already reached is no climb.
        let mut wave = Series::new(10, 600);
        for (i, v) in [130.0, 120.0, 100.0, 105.0, 110.0, 115.0, 120.0].into_iter().enumerate() {
            wave.push(1000 + i as i64 * 10, v);
        }
        assert_eq!(wave.climb(30, 1000), None);
        assert!(wave.climb(30, 1020).is_some(), "the highs before `since` do not count");
        assert_eq!(wave.climb(30, 1040), None, "a climb from before `since` (a restart) is none");
        // A gap breaks a climb.
        let mut gap = Series::new(10, 600);
        for (t, v) in [(1000, 1.0), (1010, 2.0), (1030, 4.0)] {
            gap.push(t, v);
        }
        assert_eq!(gap.climb(30, 1000), None);
    }

    #[test]
    fn a_climb_never_panics_whatever_the_window() {
        // Rising, falling and missing samples; `since` and the span anywhere around them.
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) as i64
        };
        for _ in 0..2000 {
            let mut s = Series::new(10, 200);
            for i in 0..next() % 30 {
                s.push(1000 + i * 10 + next() % 25, (next() % 100) as f64);
            }
            let _ = s.climb(next() % 120 - 10, 900 + next() % 400);
        }
    }

    #[test]
    fn gaps_are_kept_as_gaps() {
        let mut s = Series::new(10, 100);
        s.push(100, 1.0);
        s.push(110, 2.0);
        s.push(140, 5.0);
        let tail: Vec<_> = s.tail(10).collect();
        assert_eq!(tail, vec![Some(1.0), Some(2.0), None, None, Some(5.0)]);
        let points: Vec<_> = s.points().collect();
        assert_eq!(points, vec![(100, 1.0), (110, 2.0), (140, 5.0)]);
    }

    #[test]
    fn capacity_bounds_memory_and_late_samples_are_ignored() {
        let mut s = Series::new(1, 5);
        for t in 0..20 {
            s.push(t, t as f64);
        }
        assert_eq!(s.len(), 5);
        s.push(3, 99.0);
        assert_eq!(s.latest(), Some(19.0));
        s.push(19, 7.0);
        assert_eq!(s.latest(), Some(7.0));
        assert_eq!(s.max(), Some(18.0));
        s.push(1_000_000, 1.0);
        assert_eq!(s.len(), 5, "a huge gap must not grow the buffer");
    }
}
