//! Property tests of the store's invariants against a simple model (a `BTreeMap`), on both
//! backends: revisions +1 per successful write, get/list return exactly what was written with
//! the right resourceVersion, conflict iff the precondition differs, paged lists (any limit)
//! concatenate to the full list at the first page's revision despite writes between pages, and
//! watch-from-R applied to the list at R gives the list now.

use std::collections::BTreeMap;
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use store::{EventType, Key, ListOptions, Store, StoreError};

const RESOURCES: [&str; 2] = ["pods", "apps/deployments"];
const NAMESPACES: [&str; 3] = ["", "a", "b"];
const NAMES: [&str; 3] = ["x", "y", "z"];

fn key(i: u8) -> Key {
    let i = usize::from(i);
    Key::new(
        RESOURCES[i % 2],
        NAMESPACES[(i / 2) % 3],
        NAMES[(i / 6) % 3],
    )
}

#[derive(Clone, Debug)]
enum Pre {
    Any,
    Current,
    Stale(u64),
}

#[derive(Clone, Debug)]
enum Op {
    Create(u8),
    Update(u8, Pre),
    Delete(u8, Pre),
}

fn pre() -> impl Strategy<Value = Pre> {
    prop_oneof![
        Just(Pre::Any),
        Just(Pre::Current),
        (1u64..5).prop_map(Pre::Stale)
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..18).prop_map(Op::Create),
        2 => (0u8..18, pre()).prop_map(|(k, p)| Op::Update(k, p)),
        1 => (0u8..18, pre()).prop_map(|(k, p)| Op::Delete(k, p)),
    ]
}

/// The model: key -> (value with RV, mod revision).
type Model = BTreeMap<Key, (Value, u64)>;

fn rv(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn with_rv(mut v: Value, rev: u64) -> Value {
    v["metadata"]["resourceVersion"] = Value::String(rev.to_string());
    v
}

/// Model items of a resource (namespace filter) in (namespace, name) order.
fn model_list(m: &Model, resource: &str, ns: Option<&str>) -> Vec<Value> {
    m.iter()
        .filter(|(k, _)| k.resource == resource && ns.is_none_or(|n| k.namespace == n))
        .map(|(_, (v, _))| v.clone())
        .collect()
}

fn values(items: &[Arc<Value>]) -> Vec<Value> {
    items.iter().map(|v| Value::clone(v)).collect()
}

/// Applies one op to store and model, checking the outcome and the revision step.
async fn step(s: &Store, m: &mut Model, op: &Op, seq: usize) -> Result<(), TestCaseError> {
    let before = s.revision();
    let expected_of = |k: &Key, p: &Pre| {
        let cur = m.get(k).map(|(_, r)| *r).unwrap_or(0);
        match p {
            Pre::Any => None,
            Pre::Current => Some(cur),
            Pre::Stale(d) => Some(cur + d),
        }
    };
    let (k, res) = match op {
        Op::Create(i) => {
            let k = key(*i);
            let v = json!({"metadata": {"name": k.name, "namespace": k.namespace}, "seq": seq});
            let res = s.create(k.clone(), v.clone()).await;
            match (&res, m.contains_key(&k)) {
                (Ok(_), false) => {
                    m.insert(k.clone(), (with_rv(v, before + 1), before + 1));
                }
                (Err(StoreError::AlreadyExists), true) => {}
                (r, exists) => {
                    return Err(TestCaseError::fail(format!(
                        "create {k:?} (exists {exists}): {r:?}"
                    )));
                }
            }
            (k, res)
        }
        Op::Update(i, p) | Op::Delete(i, p) => {
            let k = key(*i);
            let expected = expected_of(&k, p);
            let is_update = matches!(op, Op::Update(..));
            let v = json!({"metadata": {"name": k.name}, "seq": seq, "updated": true});
            let res = if is_update {
                s.update(k.clone(), v.clone(), expected).await
            } else {
                s.delete(&k, expected).await
            };
            match (&res, m.get(&k)) {
                (Err(StoreError::NotFound), None) => {}
                (
                    Err(StoreError::Conflict {
                        expected: e,
                        actual,
                    }),
                    Some((_, cur)),
                ) => {
                    prop_assert_eq!(Some(*e), expected);
                    prop_assert_eq!(actual, cur);
                    prop_assert_ne!(e, cur, "conflict although the precondition matched");
                }
                (Ok(out), Some((old, cur))) => {
                    prop_assert!(
                        expected.is_none_or(|e| e == *cur),
                        "no conflict on stale RV"
                    );
                    if is_update {
                        m.insert(k.clone(), (with_rv(v, before + 1), before + 1));
                    } else {
                        prop_assert_eq!(&**out, &with_rv(old.clone(), before + 1));
                        m.remove(&k);
                    }
                }
                (r, cur) => {
                    return Err(TestCaseError::fail(format!(
                        "{op:?}: {r:?} vs model {cur:?}"
                    )));
                }
            }
            (k, res)
        }
    };
    match &res {
        Ok(out) => {
            prop_assert_eq!(s.revision(), before + 1, "one revision per write");
            prop_assert_eq!(rv(out), before + 1);
        }
        Err(_) => prop_assert_eq!(s.revision(), before, "failed writes take no revision"),
    }
    prop_assert_eq!(
        s.get(&k).map(|v| Value::clone(&v)),
        m.get(&k).map(|(v, _)| v.clone())
    );
    Ok(())
}

/// Pages through a list, running `between` ops after each page; returns the concatenation.
async fn paged(
    s: &Store,
    m: &mut Model,
    resource: &str,
    ns: Option<&str>,
    limit: usize,
    between: &[Op],
) -> Result<(Vec<Value>, u64), TestCaseError> {
    let mut out = Vec::new();
    let mut token = None;
    let mut rev = None;
    let mut between = between.iter();
    let mut expect_total = None;
    loop {
        let page = s
            .list(
                resource,
                ns,
                &ListOptions {
                    limit: Some(limit),
                    continue_token: token,
                },
            )
            .map_err(|e| TestCaseError::fail(format!("list: {e}")))?;
        prop_assert!(page.items.len() <= limit);
        prop_assert_eq!(*rev.get_or_insert(page.revision), page.revision);
        out.extend(values(&page.items));
        let total =
            *expect_total.get_or_insert(page.items.len() as u64 + page.remaining.unwrap_or(0));
        prop_assert_eq!(out.len() as u64 + page.remaining.unwrap_or(0), total);
        prop_assert_eq!(page.continue_token.is_some(), page.remaining.is_some());
        token = page.continue_token;
        if token.is_none() {
            return Ok((out, rev.unwrap_or(0)));
        }
        for (i, op) in between.by_ref().take(2).enumerate() {
            step(s, m, op, 10_000 + i).await?;
        }
    }
}

async fn check(
    s: Store,
    ops: Vec<Op>,
    mark: usize,
    limit: usize,
    between: Vec<Op>,
) -> Result<(), TestCaseError> {
    let mut m = Model::new();
    let mut at_mark = (s.revision(), m.clone());
    for (i, op) in ops.iter().enumerate() {
        if i == mark {
            at_mark = (s.revision(), m.clone());
        }
        step(&s, &mut m, op, i).await?;
        for r in RESOURCES {
            let all = s
                .list(r, None, &ListOptions::default())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(
                values(&all.items),
                model_list(&m, r, None),
                "list complete and sorted"
            );
        }
    }
    // Paged lists with writes between pages equal the full list at the first page's revision.
    for ns in [None, Some("a"), Some("")] {
        let snapshot = model_list(&m, "pods", ns);
        let (got, _) = paged(&s, &mut m, "pods", ns, limit, &between).await?;
        prop_assert_eq!(got, snapshot, "paged list at revision, ns {:?}", ns);
    }
    // Watch from the mark, applied to the list at the mark, gives the list now.
    let (mark_rev, mark_model) = at_mark;
    for (r, ns) in [("pods", None), ("apps/deployments", Some("b"))] {
        let mut state: BTreeMap<Key, Value> = mark_model
            .iter()
            .filter(|(k, _)| k.resource == r && ns.is_none_or(|n| k.namespace == n))
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect();
        let mut w = s
            .watch(r, ns, mark_rev)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected_events = s
            .list(r, ns, &ListOptions::default())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        // Drain exactly the events up to the current revision (none for this filter is possible).
        let head = s.revision();
        let mut last = mark_rev;
        while last < head {
            let Some(ev) = futures::FutureExt::now_or_never(w.next()).flatten() else {
                break;
            };
            prop_assert!(ev.revision > last, "revisions increase");
            last = ev.revision;
            prop_assert_eq!(&ev.key.resource, r);
            match ev.kind {
                EventType::Added | EventType::Modified => {
                    state.insert(ev.key, Value::clone(&ev.object));
                }
                EventType::Deleted => {
                    prop_assert_eq!(rv(&ev.object), ev.revision);
                    state.remove(&ev.key);
                }
            }
        }
        prop_assert_eq!(
            state.into_values().collect::<Vec<_>>(),
            values(&expected_events.items)
        );
    }
    s.close().await;
    Ok(())
}

fn rt() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("tokio runtime: {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn memory_backend_invariants(
        ops in prop::collection::vec(op(), 1..60),
        mark in 0usize..60,
        limit in 1usize..6,
        between in prop::collection::vec(op(), 0..12),
    ) {
        rt().block_on(check(Store::memory(), ops, mark, limit, between))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn durable_backend_invariants(
        ops in prop::collection::vec(op(), 1..40),
        mark in 0usize..40,
        limit in 1usize..6,
        between in prop::collection::vec(op(), 0..8),
    ) {
        let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let path = dir.path().join("p.redb");
        rt().block_on(async {
            let s = Store::open(&path).await.map_err(|e| TestCaseError::fail(e.to_string()))?;
            check(s, ops, mark, limit, between).await
        })?;
    }
}
