//! The object store: JSON objects keyed by resource, namespace and name, one
//! global resourceVersion counter, and a bounded event history for watches.
//!
//! It knows nothing about kinds; typed validation happens in [`crate::api`].
//! The bounded history is what makes "too old resourceVersion" (410) real:
//! a watch that starts before the oldest kept event cannot be served.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde_json::Value;
use tokio::sync::broadcast;

/// Object key: (group/resource, namespace, name).
pub type Key = (String, String, String);

/// One change, as watch streams deliver it.
#[derive(Debug, Clone)]
pub struct Event {
    /// resourceVersion of the change.
    pub rv: u64,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// Group/resource key of the object.
    pub gr: String,
    /// Namespace of the object.
    pub namespace: String,
    /// The object after the change (the last state for DELETED).
    pub object: Value,
}

/// Why a watch cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooOld {
    /// Requested resourceVersion.
    pub requested: u64,
    /// Oldest resourceVersion still servable.
    pub oldest: u64,
}

struct Inner {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Event>,
    compacted_through: u64,
}

/// The store.
pub struct Store {
    inner: Mutex<Inner>,
    history_cap: usize,
    events: broadcast::Sender<Event>,
}

/// The uids in an object's ownerReferences.
fn owner_uids(v: &Value) -> Vec<&str> {
    v["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["uid"].as_str())
        .collect()
}

fn set_rv(obj: &mut Value, rv: u64) {
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), Value::String(rv.to_string()));
    }
}

impl Store {
    /// An empty store keeping at most `history_cap` events for watches.
    pub fn new(history_cap: usize) -> Self {
        let (events, _) = broadcast::channel(8192);
        Self {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted_through: 1,
            }),
            history_cap: history_cap.max(1),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, inner: &mut Inner, ev: Event) {
        inner.history.push_back(ev.clone());
        while inner.history.len() > self.history_cap {
            if let Some(old) = inner.history.pop_front() {
                inner.compacted_through = old.rv;
            }
        }
        let _ = self.events.send(ev);
    }

    /// Current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, gr: &str, ns: &str, name: &str) -> Option<Value> {
        self.lock()
            .objects
            .get(&(gr.to_string(), ns.to_string(), name.to_string()))
            .cloned()
    }

    /// All objects of a resource (in one namespace, or all when `ns` is None),
    /// with the resourceVersion the list is consistent with.
    ///
    /// Keys sort by (resource, namespace, name), so this is a range scan:
    /// its cost follows the objects returned, not everything stored. Every
    /// request's RBAC check lists bindings, so a whole-store scan here made
    /// each API call slower as a cluster grew.
    pub fn list(&self, gr: &str, ns: Option<&str>) -> (Vec<Value>, u64) {
        let inner = self.lock();
        let start: Key = (
            gr.to_string(),
            ns.unwrap_or_default().to_string(),
            String::new(),
        );
        let items = inner
            .objects
            .range(start..)
            .take_while(|((g, n, _), _)| g == gr && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Inserts a new object; returns it with its resourceVersion, or None if
    /// the key exists.
    pub fn create(&self, gr: &str, ns: &str, name: &str, mut obj: Value) -> Option<Value> {
        let mut inner = self.lock();
        let key = (gr.to_string(), ns.to_string(), name.to_string());
        if inner.objects.contains_key(&key) {
            return None;
        }
        inner.rv += 1;
        let rv = inner.rv;
        set_rv(&mut obj, rv);
        inner.objects.insert(key, obj.clone());
        self.record(
            &mut inner,
            Event {
                rv,
                kind: "ADDED",
                gr: gr.into(),
                namespace: ns.into(),
                object: obj.clone(),
            },
        );
        Some(obj)
    }

    /// Replaces an object through `f`, which sees the current state and
    /// returns the new one (or an error that aborts). Atomic with respect to
    /// other writers.
    pub fn update<E>(
        &self,
        gr: &str,
        ns: &str,
        name: &str,
        f: impl FnOnce(&Value) -> Result<Value, E>,
    ) -> Option<Result<Value, E>> {
        let mut inner = self.lock();
        let key = (gr.to_string(), ns.to_string(), name.to_string());
        let current = inner.objects.get(&key)?;
        let mut new = match f(current) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        if &new == current {
            return Some(Ok(new));
        }
        inner.rv += 1;
        let rv = inner.rv;
        set_rv(&mut new, rv);
        inner.objects.insert(key, new.clone());
        self.record(
            &mut inner,
            Event {
                rv,
                kind: "MODIFIED",
                gr: gr.into(),
                namespace: ns.into(),
                object: new.clone(),
            },
        );
        Some(Ok(new))
    }

    /// Removes an object, returning its last state.
    pub fn delete(&self, gr: &str, ns: &str, name: &str) -> Option<Value> {
        self.delete_checked(gr, ns, name, |_| Ok::<_, ()>(()))
            .and_then(Result::ok)
    }

    /// Removes an object if `check`, which sees its current state, allows
    /// it (admission of a DELETE); atomic with respect to other writers.
    pub fn delete_checked<E>(
        &self,
        gr: &str,
        ns: &str,
        name: &str,
        check: impl FnOnce(&Value) -> Result<(), E>,
    ) -> Option<Result<Value, E>> {
        let mut inner = self.lock();
        let key = (gr.to_string(), ns.to_string(), name.to_string());
        if let Err(e) = check(inner.objects.get(&key)?) {
            return Some(Err(e));
        }
        let mut obj = inner.objects.remove(&key)?;
        inner.rv += 1;
        let rv = inner.rv;
        set_rv(&mut obj, rv);
        self.record(
            &mut inner,
            Event {
                rv,
                kind: "DELETED",
                gr: gr.into(),
                namespace: ns.into(),
                object: obj.clone(),
            },
        );
        Some(Ok(obj))
    }

    /// The objects that garbage collection deletes when the object with
    /// `uid` is gone: those whose ownerReferences name it and no other
    /// owner still stored (upstream's background cascading deletion).
    ///
    /// Read in place under the lock: every API delete asks this, and
    /// cloning the whole store for it made each scan's clean-up cost grow
    /// with the cluster (a third of kubesim's time at 486 pods).
    pub fn orphans_of(&self, uid: &str) -> Vec<Key> {
        let inner = self.lock();
        let candidates: Vec<(&Key, Vec<&str>)> = inner
            .objects
            .iter()
            .map(|(k, v)| (k, owner_uids(v)))
            .filter(|(_, o)| o.contains(&uid))
            .collect();
        if candidates.is_empty() {
            return Vec::new();
        }
        let live: std::collections::BTreeSet<&str> = inner
            .objects
            .values()
            .filter_map(|v| v["metadata"]["uid"].as_str())
            .collect();
        candidates
            .into_iter()
            .filter(|(_, o)| !o.iter().any(|o| live.contains(o)))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The keys of one namespace's objects, of every resource.
    pub fn keys_in(&self, namespace: &str) -> Vec<Key> {
        self.lock()
            .objects
            .keys()
            .filter(|(_, n, _)| n == namespace)
            .cloned()
            .collect()
    }

    /// Starts a watch after `rv`: the kept events newer than `rv` plus a live
    /// receiver, taken atomically so nothing is missed or duplicated.
    pub fn watch_from(&self, rv: u64) -> Result<(Vec<Event>, broadcast::Receiver<Event>), TooOld> {
        let inner = self.lock();
        if rv < inner.compacted_through {
            return Err(TooOld {
                requested: rv,
                oldest: inner.compacted_through,
            });
        }
        let backlog = inner
            .history
            .iter()
            .filter(|e| e.rv > rv)
            .cloned()
            .collect();
        Ok((backlog, self.events.subscribe()))
    }

    /// A live receiver plus a consistent snapshot of one resource, for watches
    /// that start with synthetic ADDED events.
    pub fn snapshot_and_watch(
        &self,
        gr: &str,
        ns: Option<&str>,
    ) -> (Vec<Value>, u64, broadcast::Receiver<Event>) {
        let inner = self.lock();
        let items = inner
            .objects
            .iter()
            .filter(|((g, n, _), _)| g == gr && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv, self.events.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn list_returns_exactly_one_resource_and_namespace() {
        let s = Store::new(10);
        for (gr, ns, name) in [
            ("a", "x", "1"),
            ("a", "x", "2"),
            ("a", "y", "1"),
            ("a/b", "x", "1"),
            ("ab", "x", "1"),
            ("", "x", "1"),
            ("a", "", "cluster-scoped"),
        ] {
            s.create(
                gr,
                ns,
                name,
                json!({"metadata": {"name": format!("{gr}|{ns}|{name}")}}),
            );
        }
        let names = |gr, ns| -> Vec<String> {
            s.list(gr, ns)
                .0
                .iter()
                .map(|v| v["metadata"]["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names("a", Some("x")), ["a|x|1", "a|x|2"]);
        assert_eq!(names("a", Some("y")), ["a|y|1"]);
        assert_eq!(names("a", Some("")), ["a||cluster-scoped"]);
        assert_eq!(
            names("a", None),
            ["a||cluster-scoped", "a|x|1", "a|x|2", "a|y|1"]
        );
        assert_eq!(names("ab", None), ["ab|x|1"]);
        assert!(names("b", None).is_empty());
    }

    #[test]
    fn history_bound_makes_old_versions_expire() {
        let s = Store::new(2);
        for i in 0..4 {
            s.create("pods", "ns", &format!("p{i}"), json!({"metadata": {}}))
                .expect("new key");
        }
        // rv 2..5 were written; only the last two events are kept.
        assert!(s.watch_from(2).is_err());
        let (backlog, _) = s.watch_from(4).expect("recent rv");
        assert_eq!(backlog.len(), 1);
        assert_eq!(backlog[0].rv, 5);
    }

    #[test]
    fn update_bumps_resource_version_only_on_change() {
        let s = Store::new(10);
        s.create("pods", "ns", "p", json!({"metadata": {}, "x": 1}));
        let same = s
            .update("pods", "ns", "p", |v| Ok::<_, ()>(v.clone()))
            .expect("exists")
            .expect("ok");
        assert_eq!(same["metadata"]["resourceVersion"], "2");
        let changed = s
            .update("pods", "ns", "p", |v| {
                let mut v = v.clone();
                v["x"] = json!(2);
                Ok::<_, ()>(v)
            })
            .expect("exists")
            .expect("ok");
        assert_eq!(changed["metadata"]["resourceVersion"], "3");
    }
}
