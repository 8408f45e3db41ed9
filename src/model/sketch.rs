//! A mergeable latency sketch (DDSketch-style log buckets): every value above 0.1 ms falls in a
//! bucket whose representative is within 1 % of it, so any quantile is within 1 % relative
//! error; sketches add and subtract bucket by bucket, which makes sliding windows cheap.

/// Bucket growth: representative error (γ−1)/(γ+1) ≈ 0.99 %.
const GAMMA: f64 = 1.02;
/// Values at or below this (0.1 ms) are counted as zero: gateways log milliseconds.
const MIN_VALUE: f64 = 1e-4;
/// Largest bucket index kept: 0.1 ms × 1.02^1200 ≈ 2×10⁶ s; larger values land in it.
const MAX_INDEX: i32 = 1200;

/// The stated bound, for tests and documentation.
pub const RELATIVE_ERROR: f64 = (GAMMA - 1.0) / (GAMMA + 1.0);

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sketch {
    /// Bucket index of `counts[0]`.
    offset: i32,
    counts: Vec<u32>,
    zeros: u32,
    count: u64,
}

fn index(v: f64) -> i32 {
    ((v / MIN_VALUE).ln() / GAMMA.ln()).ceil().clamp(1.0, MAX_INDEX as f64) as i32
}

fn representative(i: i32) -> f64 {
    MIN_VALUE * GAMMA.powi(i) * 2.0 / (1.0 + GAMMA)
}

/// Where a value goes in any sketch: computed once per value, then added to several sketches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bin(i32);

impl Bin {
    /// Zero, negative (clock steps) and NaN values share the zero bin.
    pub fn of(v: f64) -> Bin {
        if v.is_nan() || v <= MIN_VALUE { Bin(0) } else { Bin(index(v)) }
    }
}

impl Sketch {
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn add(&mut self, v: f64) {
        self.add_bin(Bin::of(v));
    }

    pub fn add_bin(&mut self, bin: Bin) {
        self.count += 1;
        if bin.0 == 0 {
            self.zeros += 1;
        } else {
            *self.slot(bin.0) += 1;
        }
    }

    fn slot(&mut self, i: i32) -> &mut u32 {
        if self.counts.is_empty() {
            self.offset = i;
        }
        if i < self.offset {
            let grow = (self.offset - i) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = i;
        }
        let at = (i - self.offset) as usize;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        &mut self.counts[at]
    }

    pub fn merge(&mut self, other: &Sketch) {
        self.count += other.count;
        self.zeros += other.zeros;
        for (k, c) in other.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            *self.slot(other.offset + k as i32) += c;
        }
    }

    /// Removes what `other` added earlier (a slice leaving a window).
    pub fn subtract(&mut self, other: &Sketch) {
        self.count = self.count.saturating_sub(other.count);
        self.zeros = self.zeros.saturating_sub(other.zeros);
        for (k, c) in other.counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let at = other.offset + k as i32 - self.offset;
            if let Some(slot) = usize::try_from(at).ok().and_then(|at| self.counts.get_mut(at)) {
                *slot = slot.saturating_sub(*c);
            }
        }
        if self.count == 0 {
            self.counts.clear();
        }
    }

    /// The value at rank ⌈q·n⌉ (lower quantile), within [`RELATIVE_ERROR`]; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = self.zeros as u64;
        if seen >= rank {
            return Some(0.0);
        }
        for (k, c) in self.counts.iter().enumerate() {
            seen += *c as u64;
            if seen >= rank {
                return Some(representative(self.offset + k as i32));
            }
        }
        self.counts.iter().rposition(|c| *c > 0).map(|k| representative(self.offset + k as i32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(values: &mut [f64], q: f64) -> f64 {
        values.sort_by(f64::total_cmp);
        let rank = ((q * values.len() as f64).ceil() as usize).max(1);
        values[rank - 1]
    }

    #[test]
    fn quantiles_are_within_the_stated_error() {
        let mut values: Vec<f64> = (1..=10_000).map(|i| 0.0005 * (i as f64).powf(1.3)).collect();
        let mut s = Sketch::default();
        values.iter().for_each(|v| s.add(*v));
        for q in [0.01, 0.5, 0.9, 0.95, 0.99, 1.0] {
            let (want, got) = (exact(&mut values, q), s.quantile(q).unwrap());
            assert!((got - want).abs() <= want * RELATIVE_ERROR + 1e-12, "q{q}: {got} vs {want}");
        }
    }

    #[test]
    fn merge_then_subtract_gives_back_the_original() {
        let (mut a, mut b) = (Sketch::default(), Sketch::default());
        [0.001, 0.002, 0.5, 0.0].iter().for_each(|v| a.add(*v));
        [0.00001, 30.0, 0.25].iter().for_each(|v| b.add(*v));
        let mut sum = a.clone();
        sum.merge(&b);
        assert_eq!(sum.count(), 7);
        assert!(sum.quantile(1.0).unwrap() > 29.0);
        sum.subtract(&b);
        assert_eq!((sum.count(), sum.quantile(0.5), sum.quantile(1.0)), (a.count(), a.quantile(0.5), a.quantile(1.0)));
        sum.subtract(&a);
        assert_eq!(sum.quantile(0.5), None);
    }

    #[test]
    fn odd_values_do_not_break_it() {
        let mut s = Sketch::default();
        for v in [f64::NAN, -1.0, 0.0, f64::INFINITY, 1e300, 1e-300] {
            s.add(v);
        }
        assert_eq!(s.count(), 6);
        assert_eq!(s.quantile(0.5), Some(0.0));
        assert!(s.quantile(1.0).unwrap() > 1e5);
    }
}
