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
    store: Store,
    zeros: u32,
    count: u64,
}

/// Most sketches are one 10-second slice of one route: a handful of requests in a handful of
/// buckets. Those keep (bucket, count) pairs, a few bytes each; a sketch with many distinct
/// buckets switches to a dense array. (Dense alone cost a kilobyte per slice: with 2,000 routes
/// the traffic windows outgrew a 30 MB budget, and every line touched a cold cache line.)
#[derive(Debug, Clone, PartialEq)]
enum Store {
    /// Sorted by bucket; at most [`SPARSE_MAX`] entries.
    Sparse(Vec<(u16, u32)>),
    Dense {
        /// Bucket index of `counts[0]`.
        offset: i32,
        counts: Vec<u32>,
    },
}

impl Default for Store {
    fn default() -> Store {
        Store::Sparse(Vec::new())
    }
}

/// Distinct buckets kept as pairs before the store turns dense.
const SPARSE_MAX: usize = 24;

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

    /// A bin, or none, as a small number for packing many of them: 0 ..= 1200, none as u16::MAX.
    pub fn pack(bin: Option<Bin>) -> u16 {
        bin.map_or(u16::MAX, |b| b.0 as u16)
    }

    pub fn unpack(packed: u16) -> Option<Bin> {
        (packed != u16::MAX).then(|| Bin(i32::from(packed).min(MAX_INDEX)))
    }
}

/// [`Bin::of`], remembered: gateways log milliseconds, so a few hundred distinct durations
/// recur line after line, and a logarithm for each was a fiftieth of the ingest. Direct-mapped
/// by the value's bits; a clash just computes again.
#[derive(Clone)]
pub struct BinMemo {
    /// (value's bits, its bin); all start as 0.0, whose bin is 0.
    slots: Box<[(u64, Bin); MEMO_SLOTS]>,
}

const MEMO_SLOTS: usize = 256;

impl Default for BinMemo {
    fn default() -> BinMemo {
        BinMemo { slots: Box::new([(0, Bin(0)); MEMO_SLOTS]) }
    }
}

impl BinMemo {
    pub fn of(&mut self, v: f64) -> Bin {
        let bits = v.to_bits();
        let slot = &mut self.slots[(bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize];
        if slot.0 != bits {
            *slot = (bits, Bin::of(v));
        }
        slot.1
    }
}

/// A memo holds nothing of its owner's state: any two are alike.
impl PartialEq for BinMemo {
    fn eq(&self, _: &BinMemo) -> bool {
        true
    }
}

impl std::fmt::Debug for BinMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BinMemo")
    }
}

/// Bins counted up one value at a time, then added to a sketch at once. A slice of traffic
/// gathers its values' bins and brings them here in batches: one increment per value instead of
/// a search in the sketch's store, then one store update per distinct bin.
#[derive(Clone, PartialEq)]
pub struct Tally {
    counts: Box<[u32; BINS]>,
    /// Which bins are non-zero, a bit each: emptying visits only those.
    touched: [u64; BINS.div_ceil(64)],
    total: u64,
}

const BINS: usize = MAX_INDEX as usize + 1;

impl Default for Tally {
    fn default() -> Tally {
        Tally { counts: Box::new([0; BINS]), touched: [0; BINS.div_ceil(64)], total: 0 }
    }
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tally({} values)", self.total)
    }
}

impl Tally {
    pub fn add(&mut self, bin: Bin) {
        let i = bin.0 as usize;
        self.counts[i] += 1;
        self.touched[i / 64] |= 1 << (i % 64);
        self.total += 1;
    }

    /// Adds every value counted to `sketch`, and starts over empty.
    pub fn drain_into(&mut self, sketch: &mut Sketch) {
        if self.total == 0 {
            return;
        }
        sketch.count += std::mem::take(&mut self.total);
        sketch.zeros += std::mem::take(&mut self.counts[0]);
        self.touched[0] &= !1;
        let distinct: u32 = self.touched.iter().map(|w| w.count_ones()).sum();
        let mut pairs = Vec::with_capacity(distinct as usize);
        for (w, word) in self.touched.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                pairs.push((i as u16, std::mem::take(&mut self.counts[i])));
            }
        }
        let (Some(&(first, _)), Some(&(last, _))) = (pairs.first(), pairs.last()) else { return };
        let batch = if pairs.len() <= SPARSE_MAX {
            Store::Sparse(pairs)
        } else {
            let mut counts = vec![0; usize::from(last - first) + 1];
            pairs.iter().for_each(|&(i, c)| counts[usize::from(i - first)] = c);
            Store::Dense { offset: i32::from(first), counts }
        };
        if sketch.store.is_empty() {
            sketch.store = batch;
        } else {
            sketch.store.merge(&batch);
        }
    }
}

impl Store {
    fn is_empty(&self) -> bool {
        match self {
            Store::Sparse(pairs) => pairs.is_empty(),
            Store::Dense { counts, .. } => counts.is_empty(),
        }
    }

    fn add(&mut self, i: i32, c: u32) {
        match self {
            Store::Sparse(pairs) => {
                let key = i as u16;
                match pairs.binary_search_by_key(&key, |p| p.0) {
                    Ok(at) => pairs[at].1 += c,
                    Err(at) if pairs.len() < SPARSE_MAX => pairs.insert(at, (key, c)),
                    Err(_) => {
                        let mut dense = Store::Dense { offset: i, counts: Vec::new() };
                        for &(k, n) in pairs.iter() {
                            dense.add(i32::from(k), n);
                        }
                        dense.add(i, c);
                        *self = dense;
                    }
                }
            }
            Store::Dense { offset, counts } => {
                if counts.is_empty() {
                    *offset = i;
                }
                if i < *offset {
                    let grow = (*offset - i) as usize;
                    counts.splice(0..0, std::iter::repeat_n(0, grow));
                    *offset = i;
                }
                let at = (i - *offset) as usize;
                if at >= counts.len() {
                    counts.resize(at + 1, 0);
                }
                counts[at] += c;
            }
        }
    }

    fn subtract(&mut self, i: i32, c: u32) {
        match self {
            Store::Sparse(pairs) => {
                if let Ok(at) = pairs.binary_search_by_key(&(i as u16), |p| p.0) {
                    pairs[at].1 = pairs[at].1.saturating_sub(c);
                    if pairs[at].1 == 0 {
                        pairs.remove(at);
                    }
                }
            }
            Store::Dense { offset, counts } => {
                if let Some(slot) = usize::try_from(i - *offset).ok().and_then(|at| counts.get_mut(at)) {
                    *slot = slot.saturating_sub(c);
                }
            }
        }
    }

    /// Adds every count of `other`. A dense store goes in as one array added to another: a window
    /// takes in each closing slice's sketches, and bucket by bucket that was a tenth of the ingest.
    fn merge(&mut self, other: &Store) {
        let Store::Dense { offset: from, counts: theirs } = other else {
            return other.iter().for_each(|(i, c)| self.add(i, c));
        };
        let Some(last) = theirs.len().checked_sub(1) else { return };
        if let Store::Sparse(pairs) = self {
            let mut dense = Store::Dense { offset: *from, counts: Vec::new() };
            pairs.iter().for_each(|&(k, c)| dense.add(i32::from(k), c));
            *self = dense;
        }
        // Widen to span `other` (adding nothing), then add element by element.
        self.add(*from, 0);
        self.add(*from + last as i32, 0);
        if let Store::Dense { offset, counts } = self {
            let start = (*from - *offset) as usize;
            counts[start..=start + last].iter_mut().zip(theirs).for_each(|(mine, theirs)| *mine += theirs);
        }
    }

    /// Takes out what `other` added earlier; a dense store from a dense one as two arrays.
    fn subtract_store(&mut self, other: &Store) {
        match (&mut *self, other) {
            (Store::Dense { offset, counts }, Store::Dense { offset: from, counts: theirs }) => {
                // Where the two arrays overlap, as one zip (buckets of `other` outside this store
                // have nothing to take from).
                let skip_mine = usize::try_from(*from - *offset).unwrap_or(0);
                let skip_theirs = usize::try_from(*offset - *from).unwrap_or(0);
                let mine = counts.iter_mut().skip(skip_mine);
                mine.zip(theirs.iter().skip(skip_theirs)).for_each(|(slot, &c)| *slot = slot.saturating_sub(c));
            }
            _ => other.iter().for_each(|(i, c)| self.subtract(i, c)),
        }
    }

    /// (bucket, count) in bucket order, empty buckets skipped.
    fn iter(&self) -> Box<dyn Iterator<Item = (i32, u32)> + '_> {
        match self {
            Store::Sparse(pairs) => Box::new(pairs.iter().map(|&(k, c)| (i32::from(k), c))),
            Store::Dense { offset, counts } => {
                Box::new(counts.iter().enumerate().filter(|(_, c)| **c > 0).map(move |(k, c)| (offset + k as i32, *c)))
            }
        }
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
            self.store.add(bin.0, 1);
        }
    }

    pub fn merge(&mut self, other: &Sketch) {
        self.count += other.count;
        self.zeros += other.zeros;
        self.store.merge(&other.store);
    }

    /// Removes what `other` added earlier (a slice leaving a window).
    pub fn subtract(&mut self, other: &Sketch) {
        self.count = self.count.saturating_sub(other.count);
        self.zeros = self.zeros.saturating_sub(other.zeros);
        self.store.subtract_store(&other.store);
        if self.count == 0 {
            self.store = Store::default();
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
        let mut last = None;
        for (i, c) in self.store.iter() {
            seen += c as u64;
            last = Some(i);
            if seen >= rank {
                return Some(representative(i));
            }
        }
        last.map(representative)
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
    fn a_sketch_turning_dense_keeps_every_count() {
        // Many distinct buckets: the pairs turn into an array midway; the answers do not change.
        let mut values: Vec<f64> = (0..500).map(|i| 0.001 * 1.03f64.powi(i % 200)).collect();
        let mut s = Sketch::default();
        values.iter().for_each(|v| s.add(*v));
        assert!(matches!(s.store, Store::Dense { .. }));
        for q in [0.1, 0.5, 0.99] {
            let (want, got) = (exact(&mut values, q), s.quantile(q).unwrap());
            assert!((got - want).abs() <= want * RELATIVE_ERROR + 1e-12, "q{q}: {got} vs {want}");
        }
        // A sparse slice merged into and taken out of a dense window leaves it as it was.
        let mut slice = Sketch::default();
        [0.002, 0.002, 0.3].iter().for_each(|v| slice.add(*v));
        assert!(matches!(slice.store, Store::Sparse(_)));
        let before = (s.count(), s.quantile(0.5), s.quantile(0.99));
        s.merge(&slice);
        s.subtract(&slice);
        assert_eq!((s.count(), s.quantile(0.5), s.quantile(0.99)), before);
    }

    #[test]
    fn merging_and_subtracting_any_two_stores_is_adding_and_removing_their_values() {
        // Sparse and dense, into sparse and dense, overlapping or not: the same as one sketch of
        // all the values, and back again.
        let values = |n: usize, from: f64| (0..n).map(move |i| from * 1.021f64.powi(i as i32)).collect::<Vec<f64>>();
        let shapes = [values(3, 0.002), values(200, 0.001), values(60, 0.5), values(300, 0.00005), values(0, 1.0)];
        for a in &shapes {
            for b in &shapes {
                let sketch = |vs: &[f64]| {
                    let mut s = Sketch::default();
                    vs.iter().for_each(|v| s.add(*v));
                    s
                };
                let (mut merged, both) = (sketch(a), sketch(&[a.as_slice(), b].concat()));
                merged.merge(&sketch(b));
                let answers = |s: &Sketch| [0.0, 0.1, 0.5, 0.9, 0.99, 1.0].map(|q| s.quantile(q));
                assert_eq!(
                    (merged.count(), answers(&merged)),
                    (both.count(), answers(&both)),
                    "{} + {}",
                    a.len(),
                    b.len()
                );
                merged.subtract(&sketch(b));
                assert_eq!((merged.count(), answers(&merged)), (sketch(a).count(), answers(&sketch(a))));
            }
        }
    }

    #[test]
    fn a_memo_gives_the_bin_of_every_value() {
        let mut memo = BinMemo::default();
        // Milliseconds as gateways log them, twice over (the second time from the memo), and
        // values whose slots clash, zero, negative and NaN.
        let values: Vec<f64> = (0..3000).map(|ms| ms as f64 / 1000.0).chain([0.0, -0.001, f64::NAN, 1e9]).collect();
        for v in values.iter().chain(&values) {
            assert_eq!(memo.of(*v), Bin::of(*v), "{v}");
        }
    }

    #[test]
    fn a_tally_adds_what_adding_one_by_one_would() {
        // Few bins (pairs) and many (an array), into an empty sketch and a filled one.
        let mut tally = Tally::default();
        for values in [vec![0.0, 0.002, 0.002, 0.3], (0..400).map(|i| 0.0001 * 1.05f64.powi(i % 150)).collect()] {
            for start in [0, 30] {
                let (mut one_by_one, mut batched) = (Sketch::default(), Sketch::default());
                for i in 0..start {
                    one_by_one.add(0.01 * f64::from(i));
                    batched.add(0.01 * f64::from(i));
                }
                for &v in &values {
                    one_by_one.add(v);
                    tally.add(Bin::of(v));
                }
                tally.drain_into(&mut batched);
                let answers = |s: &Sketch| [0.0, 0.1, 0.5, 0.9, 0.99, 1.0].map(|q| s.quantile(q));
                assert_eq!((batched.count(), answers(&batched)), (one_by_one.count(), answers(&one_by_one)));
            }
        }
        // Drained, the tally is empty again.
        let mut untouched = Sketch::default();
        tally.drain_into(&mut untouched);
        assert_eq!(untouched, Sketch::default());
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
