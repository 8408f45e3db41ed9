//! Values by text key, laid out for a lookup per log line: a compact index of slots (the key's
//! length and first bytes held inline, and where its value is) apart from the keys and values
//! themselves. A lookup reads one slot, 32 bytes, and compares the key there; only a key longer
//! than the inline part is compared in full. (A map of `String` to stats had half-kilobyte
//! buckets: each probe read a cold line, then chased the key's pointer, an eighth of the ingest.)
//! Iteration is in insertion order.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

use super::bytes::same_bytes;

/// Key bytes held in a slot: addresses, backend names and most routes fit.
const INLINE: usize = 24;

#[derive(Clone)]
struct Slot {
    /// The key's first bytes (all of a short key), zero-padded.
    head: [u8; INLINE],
    len: u32,
    /// Index of the entry.
    at: u32,
}

impl Slot {
    /// Whether this slot's key is `key` (`entries` holds the whole of a long one).
    #[inline(always)]
    fn holds<V>(&self, key: &[u8], entries: &[(String, V)]) -> bool {
        if self.len as usize != key.len() {
            return false;
        }
        let inline = key.len().min(INLINE);
        same_bytes(&self.head[..inline], &key[..inline])
            && (key.len() <= INLINE || same_bytes(&entries[self.at as usize].0.as_bytes()[INLINE..], &key[INLINE..]))
    }
}

#[derive(Clone)]
pub struct Keyed<V> {
    index: HashTable<Slot>,
    entries: Vec<(String, V)>,
    hasher: DefaultHashBuilder,
}

impl<V> Default for Keyed<V> {
    fn default() -> Keyed<V> {
        Keyed { index: HashTable::new(), entries: Vec::new(), hasher: DefaultHashBuilder::default() }
    }
}

impl<V> Keyed<V> {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[inline]
    fn position(&self, key: &str) -> Option<usize> {
        let bytes = key.as_bytes();
        let hash = self.hasher.hash_one(bytes);
        self.index.find(hash, |slot| slot.holds(bytes, &self.entries)).map(|slot| slot.at as usize)
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        self.position(key).map(|at| &self.entries[at].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// The value of `key`, made with `make` if there is none yet.
    #[inline]
    pub fn get_or_insert_with(&mut self, key: &str, make: impl FnOnce() -> V) -> &mut V {
        let at = match self.position(key) {
            Some(at) => at,
            None => self.insert_new(key, make()),
        };
        &mut self.entries[at].1
    }

    #[cold]
    fn insert_new(&mut self, key: &str, value: V) -> usize {
        let at = self.entries.len();
        let mut head = [0; INLINE];
        let inline = key.len().min(INLINE);
        head[..inline].copy_from_slice(&key.as_bytes()[..inline]);
        let slot = Slot { head, len: key.len() as u32, at: at as u32 };
        let (hasher, entries) = (&self.hasher, &self.entries);
        let hash = hasher.hash_one(key.as_bytes());
        self.index.insert_unique(hash, slot, |s| hasher.hash_one(entries[s.at as usize].0.as_bytes()));
        self.entries.push((key.to_string(), value));
        at
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&String, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    pub fn keys(&self) -> impl ExactSizeIterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    pub fn values_mut(&mut self) -> impl ExactSizeIterator<Item = &mut V> {
        self.entries.iter_mut().map(|(_, v)| v)
    }
}

impl<V> std::ops::Index<&str> for Keyed<V> {
    type Output = V;

    fn index(&self, key: &str) -> &V {
        self.get(key).unwrap_or_else(|| panic!("no entry for {key:?}"))
    }
}

/// Equal as maps: the same keys with the same values, in any order.
impl<V: PartialEq> PartialEq for Keyed<V> {
    fn eq(&self, other: &Keyed<V>) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl<V: std::fmt::Debug> std::fmt::Debug for Keyed<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_short_and_long_find_their_values() {
        // Keys around the inline length, some sharing their first 24 bytes, many enough to make
        // the index grow several times.
        let keys: Vec<String> = (0..2000)
            .map(|i| match i % 4 {
                0 => format!("10.244.{}.{}", i / 250, i % 250),
                1 => format!("/api/orders/{i}/items/:id/with/a/long/tail"),
                2 => format!("/api/orders/shared/prefix{i}"),
                _ => "x".repeat(i % 40),
            })
            .collect();
        let mut keyed = Keyed::default();
        for (i, key) in keys.iter().enumerate() {
            *keyed.get_or_insert_with(key, || 0usize) += i;
        }
        let mut want = std::collections::HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            *want.entry(key.as_str()).or_insert(0usize) += i;
        }
        assert_eq!(keyed.len(), want.len());
        for (key, value) in &want {
            assert_eq!(keyed.get(key), Some(value), "{key:?}");
            assert_eq!(keyed[key], *value);
        }
        for absent in ["", "10.244.9.9", "/api/orders/1/items/:id/with/a/long/taiL", "/api/orders/shared/prefix"] {
            assert!(!want.contains_key(absent) && !keyed.contains_key(absent), "{absent:?}");
        }
        // In insertion order; equal as maps whatever the order.
        let first: Vec<&String> = keyed.keys().take(3).collect();
        assert_eq!(first, [&keys[0], &keys[1], &keys[2]]);
        let mut reversed = Keyed::default();
        for (key, value) in keyed.iter().collect::<Vec<_>>().into_iter().rev() {
            reversed.get_or_insert_with(key, || *value);
        }
        assert_eq!(reversed, keyed);
        *reversed.values_mut().next().unwrap() += 1;
        assert_ne!(reversed, keyed);
    }
}
