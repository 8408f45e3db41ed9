//! The simulator's watchable object store: the part of the apiserver's semantics kpulse relies on.
//! One global resourceVersion counter (as etcd's revision), a bounded change log per kind for
//! watches, and compaction so a stale resourceVersion gets 410 Gone exactly as from a real server.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use tokio::sync::broadcast;

/// The values a field or label selector can be matched against.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selectable {
    pub labels: BTreeMap<String, String>,
    pub fields: Vec<(&'static str, String)>,
}

#[derive(Debug, Clone)]
pub struct Stored {
    pub rv: u64,
    pub namespace: String,
    pub json: Arc<Vec<u8>>,
    pub select: Selectable,
}

#[derive(Debug, Clone)]
pub struct WatchRecord {
    pub rv: u64,
    pub event_type: &'static str,
    pub namespace: String,
    pub json: Arc<Vec<u8>>,
    pub select: Selectable,
}

pub struct Collection {
    pub kind: &'static str,
    pub api_version: &'static str,
    pub namespaced: bool,
    pub objects: BTreeMap<(String, String), Stored>,
    log: VecDeque<Arc<WatchRecord>>,
    log_capacity: usize,
    /// Watches from a resourceVersion below this get 410 Gone.
    pub compacted_rv: u64,
    pub tx: broadcast::Sender<Arc<WatchRecord>>,
}

impl Collection {
    pub fn new(kind: &'static str, api_version: &'static str, namespaced: bool) -> Collection {
        let (tx, _) = broadcast::channel(16_384);
        Collection {
            kind,
            api_version,
            namespaced,
            objects: BTreeMap::new(),
            log: VecDeque::new(),
            log_capacity: 50_000,
            compacted_rv: 0,
            tx,
        }
    }

    pub fn upsert(&mut self, rv: u64, namespace: &str, name: &str, json: Vec<u8>, select: Selectable) {
        let key = (namespace.to_string(), name.to_string());
        let event_type = if self.objects.contains_key(&key) { "MODIFIED" } else { "ADDED" };
        let json = Arc::new(json);
        self.objects
            .insert(key, Stored { rv, namespace: namespace.to_string(), json: json.clone(), select: select.clone() });
        self.record(WatchRecord { rv, event_type, namespace: namespace.to_string(), json, select });
    }

    /// Deletes an object; the DELETED event carries the object as last seen with the new RV.
    pub fn delete(&mut self, rv: u64, namespace: &str, name: &str, final_json: Vec<u8>) -> bool {
        let Some(old) = self.objects.remove(&(namespace.to_string(), name.to_string())) else { return false };
        self.record(WatchRecord {
            rv,
            event_type: "DELETED",
            namespace: namespace.to_string(),
            json: Arc::new(final_json),
            select: old.select,
        });
        true
    }

    fn record(&mut self, rec: WatchRecord) {
        let rec = Arc::new(rec);
        if self.log.len() == self.log_capacity
            && let Some(old) = self.log.pop_front()
        {
            self.compacted_rv = old.rv;
        }
        self.log.push_back(rec.clone());
        // No receivers is fine: nobody is watching.
        let _ = self.tx.send(rec);
    }

    /// Changes after `rv`, or `Err(oldest)` when `rv` has been compacted away.
    pub fn since(&self, rv: u64) -> Result<Vec<Arc<WatchRecord>>, u64> {
        if rv < self.compacted_rv {
            return Err(self.compacted_rv);
        }
        Ok(self.log.iter().filter(|r| r.rv > rv).cloned().collect())
    }

    /// Forgets the change log up to `rv`, as etcd compaction does.
    pub fn compact(&mut self, rv: u64) {
        while self.log.front().is_some_and(|r| r.rv <= rv) {
            self.log.pop_front();
        }
        self.compacted_rv = self.compacted_rv.max(rv);
    }
}

/// A parsed `labelSelector` / `fieldSelector`: `a=b`, `a==b`, `a!=b`, comma-separated (AND).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selector {
    terms: Vec<(String, bool, String)>,
}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, String> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, equal, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!("unable to parse requirement: {part:?}: only =, == and != are supported"));
            };
            terms.push((key.trim().to_string(), equal, value.trim().to_string()));
        }
        Ok(Selector { terms })
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|(k, _, _)| k.as_str())
    }

    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|(k, eq, v)| (labels.get(k) == Some(v)) == *eq)
    }

    pub fn matches_fields(&self, fields: &[(&'static str, String)]) -> bool {
        self.terms.iter().all(|(k, eq, v)| {
            let actual = fields.iter().find(|(f, _)| f == k).map(|(_, val)| val.as_str()).unwrap_or("");
            (actual == v) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        let s = Selector::parse("app=cart,tier!=db").unwrap();
        let mut labels = BTreeMap::new();
        labels.insert("app".to_string(), "cart".to_string());
        assert!(s.matches_labels(&labels));
        labels.insert("tier".to_string(), "db".to_string());
        assert!(!s.matches_labels(&labels));
        let f = Selector::parse("type=Warning").unwrap();
        assert!(f.matches_fields(&[("type", "Warning".into())]));
        assert!(!f.matches_fields(&[("type", "Normal".into())]));
        assert!(Selector::parse("app in (a,b)").is_err());
    }

    #[test]
    fn compaction_makes_old_versions_gone() {
        let mut c = Collection::new("Pod", "v1", true);
        c.upsert(1, "n", "a", b"{}".to_vec(), Selectable::default());
        c.upsert(2, "n", "a", b"{}".to_vec(), Selectable::default());
        c.upsert(3, "n", "b", b"{}".to_vec(), Selectable::default());
        assert_eq!(c.since(1).unwrap().len(), 2);
        c.compact(2);
        assert_eq!(c.since(1).unwrap_err(), 2);
        assert_eq!(c.since(2).unwrap().len(), 1);
        assert!(c.delete(4, "n", "a", b"{}".to_vec()));
        assert_eq!(c.since(3).unwrap()[0].event_type, "DELETED");
    }
}
