//! A fixed-step ring buffer of samples. Missing samples are stored as NaN so charts and sparklines
//! show a gap rather than joining across it.

use std::collections::VecDeque;

use super::time::UnixSecs;

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

    pub fn max(&self) -> Option<f64> {
        self.values.iter().filter(|v| !v.is_nan()).map(|v| *v as f64).reduce(f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
