//! A keyed store fed by list+watch changes. A relist (after a reconnect or a 410 Gone) is buffered
//! and swapped in whole at `InitDone`, so rows never vanish or duplicate while it runs.

// foldhash (hashbrown's default) instead of SipHash: 10,000 pods are looked up per refresh.
use hashbrown::HashMap;
use std::hash::Hash;

/// One change from a list+watch stream, already converted to kpulse's trimmed type.
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T> {
    InitStart,
    InitItem(T),
    InitDone,
    Applied(T),
    Deleted(T),
}

#[derive(Debug, Clone)]
pub struct Store<K, T> {
    items: HashMap<K, T>,
    relist: Option<HashMap<K, T>>,
    synced: bool,
}

impl<K: Eq + Hash + Clone, T> Default for Store<K, T> {
    fn default() -> Self {
        Store { items: HashMap::new(), relist: None, synced: false }
    }
}

impl<K: Eq + Hash + Clone, T> Store<K, T> {
    /// Applies a change; returns whether the visible contents changed.
    pub fn apply(&mut self, change: Change<T>, key_of: impl Fn(&T) -> K) -> bool {
        match change {
            Change::InitStart => {
                self.relist = Some(HashMap::new());
                false
            }
            Change::InitItem(item) => {
                let key = key_of(&item);
                match &mut self.relist {
                    Some(buffer) => {
                        buffer.insert(key, item);
                        false
                    }
                    // An item outside a relist (should not happen): treat it as an update.
                    None => {
                        self.items.insert(key, item);
                        true
                    }
                }
            }
            Change::InitDone => {
                if let Some(buffer) = self.relist.take() {
                    self.items = buffer;
                }
                self.synced = true;
                true
            }
            Change::Applied(item) => {
                let key = key_of(&item);
                if let Some(buffer) = &mut self.relist {
                    buffer.insert(key.clone(), item);
                    return false;
                }
                self.items.insert(key, item);
                true
            }
            Change::Deleted(item) => {
                let key = key_of(&item);
                if let Some(buffer) = &mut self.relist {
                    buffer.remove(&key);
                }
                self.items.remove(&key).is_some()
            }
        }
    }

    pub fn get(&self, key: &K) -> Option<&T> {
        self.items.get(key)
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.items.values()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True once a first full list has arrived.
    pub fn synced(&self) -> bool {
        self.synced
    }

    pub fn clear(&mut self) {
        *self = Store { items: HashMap::new(), relist: None, synced: false };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &&'static str) -> &'static str {
        s
    }

    #[test]
    fn relist_keeps_old_rows_until_done_then_swaps() {
        let mut s: Store<&str, &str> = Store::default();
        s.apply(Change::InitStart, key);
        s.apply(Change::InitItem("a"), key);
        s.apply(Change::InitItem("b"), key);
        assert_eq!(s.len(), 0);
        assert!(!s.synced());
        s.apply(Change::InitDone, key);
        assert_eq!(s.len(), 2);
        // Reconnect: "b" was deleted while we were away, "c" was added.
        s.apply(Change::InitStart, key);
        s.apply(Change::InitItem("a"), key);
        assert_eq!(s.len(), 2, "old rows stay visible during the relist");
        s.apply(Change::InitItem("c"), key);
        s.apply(Change::InitDone, key);
        let mut v: Vec<_> = s.values().copied().collect();
        v.sort();
        assert_eq!(v, vec!["a", "c"]);
        assert!(s.apply(Change::Deleted("a"), key));
        assert!(!s.apply(Change::Deleted("zz"), key));
        assert_eq!(s.len(), 1);
    }
}
