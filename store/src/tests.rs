//! Unit tests of the memory backend's semantics (the durable backend is covered in `tests/`).

use std::sync::Arc;

use serde_json::{Value, json};

use crate::{EventType, Key, ListOptions, Store, StoreError};

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"x": 1}})
}

fn rv(v: &Value) -> &str {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("<none>")
}

fn names(items: &[Arc<Value>]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["metadata"]["namespace"].as_str().unwrap_or(""),
                i["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

fn nsobj(ns: &str, name: &str) -> Value {
    json!({"metadata": {"namespace": ns, "name": name}})
}

#[tokio::test]
async fn create_get_update_delete_with_revisions() {
    let s = Store::memory();
    assert_eq!(s.revision(), 0);
    let k = Key::new("pods", "default", "a");
    let created = s.create(k.clone(), pod("a")).await.unwrap();
    assert_eq!(rv(&created), "1");
    assert_eq!(s.revision(), 1);
    assert_eq!(s.get(&k).unwrap(), created);
    assert!(matches!(
        s.create(k.clone(), pod("a")).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(s.revision(), 1, "a failed write takes no revision");

    let err = s.update(k.clone(), pod("a"), Some(7)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 7,
                actual: 1
            }
        ),
        "{err:?}"
    );
    let updated = s.update(k.clone(), pod("a"), Some(1)).await.unwrap();
    assert_eq!(rv(&updated), "2");
    let updated = s.update(k.clone(), pod("a"), None).await.unwrap();
    assert_eq!(rv(&updated), "3");

    assert!(matches!(
        s.delete(&k, Some(2)).await,
        Err(StoreError::Conflict {
            expected: 2,
            actual: 3
        })
    ));
    let deleted = s.delete(&k, Some(3)).await.unwrap();
    assert_eq!(rv(&deleted), "4");
    assert_eq!(deleted["spec"]["x"], 1);
    assert!(s.get(&k).is_none());
    assert!(matches!(
        s.delete(&k, None).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        s.update(k.clone(), pod("a"), None).await,
        Err(StoreError::NotFound)
    ));
}

#[tokio::test]
async fn invalid_objects_and_keys_are_rejected() {
    let s = Store::memory();
    let k = Key::new("pods", "default", "a");
    for bad in [json!([1]), json!("x"), json!({"metadata": 5})] {
        assert!(matches!(
            s.create(k.clone(), bad).await,
            Err(StoreError::InvalidObject(_))
        ));
    }
    for key in [
        Key::new("", "default", "a"),
        Key::new("pods", "default", ""),
        Key::new("pods", "de\0fault", "a"),
    ] {
        assert!(matches!(
            s.create(key, pod("a")).await,
            Err(StoreError::InvalidObject(_))
        ));
    }
    assert_eq!(s.revision(), 0);
    // metadata is created when missing.
    let v = s.create(k, json!({"spec": {}})).await.unwrap();
    assert_eq!(rv(&v), "1");
}

#[tokio::test]
async fn list_is_sorted_and_filtered_by_namespace() {
    let s = Store::memory();
    for (ns, n) in [("b", "x"), ("a", "z"), ("a", "y"), ("ab", "a"), ("", "q")] {
        s.create(Key::new("pods", ns, n), nsobj(ns, n))
            .await
            .unwrap();
    }
    s.create(Key::new("services", "a", "svc"), nsobj("a", "svc"))
        .await
        .unwrap();
    let all = s.list("pods", None, &ListOptions::default()).unwrap();
    assert_eq!(names(&all.items), ["/q", "a/y", "a/z", "ab/a", "b/x"]);
    assert_eq!(all.revision, 6);
    assert!(all.continue_token.is_none() && all.remaining.is_none());
    let a = s.list("pods", Some("a"), &ListOptions::default()).unwrap();
    assert_eq!(names(&a.items), ["a/y", "a/z"]);
    let none = s.list("nothing", None, &ListOptions::default()).unwrap();
    assert!(none.items.is_empty());
}

#[tokio::test]
async fn paged_list_is_consistent_at_the_first_pages_revision() {
    let s = Store::memory();
    for i in 0..5 {
        let n = format!("p{i}");
        s.create(Key::new("pods", "ns", &n), nsobj("ns", &n))
            .await
            .unwrap();
    }
    let opts = ListOptions {
        limit: Some(2),
        continue_token: None,
    };
    let p1 = s.list("pods", Some("ns"), &opts).unwrap();
    assert_eq!(names(&p1.items), ["ns/p0", "ns/p1"]);
    assert_eq!(p1.remaining, Some(3));
    // Writes between pages must not show up in later pages.
    s.delete(&Key::new("pods", "ns", "p2"), None).await.unwrap();
    s.create(Key::new("pods", "ns", "p25"), nsobj("ns", "p25"))
        .await
        .unwrap();
    s.update(Key::new("pods", "ns", "p3"), json!({"changed": true}), None)
        .await
        .unwrap();
    let p2 = s
        .list(
            "pods",
            Some("ns"),
            &ListOptions {
                limit: Some(2),
                continue_token: p1.continue_token.clone(),
            },
        )
        .unwrap();
    assert_eq!(p2.revision, p1.revision);
    assert_eq!(names(&p2.items), ["ns/p2", "ns/p3"]);
    assert_eq!(rv(&p2.items[1]), "4");
    assert_eq!(p2.remaining, Some(1));
    let p3 = s
        .list(
            "pods",
            Some("ns"),
            &ListOptions {
                limit: Some(2),
                continue_token: p2.continue_token.clone(),
            },
        )
        .unwrap();
    assert_eq!(names(&p3.items), ["ns/p4"]);
    assert!(p3.continue_token.is_none() && p3.remaining.is_none());

    // A token of another resource or garbage is rejected; a compacted one is Gone.
    for t in ["%%%", "bm9wZQ", ""] {
        let r = s.list(
            "pods",
            None,
            &ListOptions {
                limit: Some(1),
                continue_token: Some(t.into()),
            },
        );
        if t.is_empty() {
            assert!(r.is_ok());
        } else {
            assert!(
                matches!(r, Err(StoreError::InvalidContinue(_))),
                "{t}: {r:?}"
            );
        }
    }
    let other = s.list(
        "services",
        None,
        &ListOptions {
            limit: Some(1),
            continue_token: p1.continue_token.clone(),
        },
    );
    assert!(matches!(other, Err(StoreError::InvalidContinue(_))));
    s.compact(s.revision()).await.unwrap();
    let gone = s.list(
        "pods",
        Some("ns"),
        &ListOptions {
            limit: Some(2),
            continue_token: p1.continue_token,
        },
    );
    assert!(
        matches!(
            gone,
            Err(StoreError::Gone {
                requested: 5,
                oldest: 8
            })
        ),
        "{gone:?}"
    );
}

#[tokio::test]
async fn watch_replays_the_log_then_follows_live_events() {
    let s = Store::memory();
    let a = Key::new("pods", "a", "p");
    let b = Key::new("pods", "b", "p");
    s.create(a.clone(), pod("p")).await.unwrap(); // 1
    s.create(b.clone(), pod("p")).await.unwrap(); // 2
    s.create(Key::new("services", "a", "s"), pod("s"))
        .await
        .unwrap(); // 3
    let mut all = s.watch("pods", None, 0).unwrap();
    let mut only_a = s.watch("pods", Some("a"), 1).unwrap();
    s.update(a.clone(), pod("p"), None).await.unwrap(); // 4
    s.delete(&b, None).await.unwrap(); // 5

    let got: Vec<_> = [
        all.next().await.unwrap(),
        all.next().await.unwrap(),
        all.next().await.unwrap(),
        all.next().await.unwrap(),
    ]
    .into_iter()
    .map(|e| (e.kind, e.revision, e.key.namespace))
    .collect();
    assert_eq!(
        got,
        [
            (EventType::Added, 1, "a".to_string()),
            (EventType::Added, 2, "b".into()),
            (EventType::Modified, 4, "a".into()),
            (EventType::Deleted, 5, "b".into()),
        ]
    );
    let ev = only_a.next().await.unwrap();
    assert_eq!((ev.kind, ev.revision), (EventType::Modified, 4));
    assert_eq!(rv(ev.prev.as_deref().unwrap()), "1");
    assert_eq!(rv(&ev.prev_at_revision().unwrap()), "4");
    assert_eq!(rv(&ev.object), "4");

    // Deleted carries the last state stamped with the deletion revision.
    let mut from4 = s.watch("pods", None, 4).unwrap();
    let del = from4.next().await.unwrap();
    assert_eq!(del.kind, EventType::Deleted);
    assert_eq!(rv(&del.object), "5");
    assert_eq!(rv(del.prev.as_deref().unwrap()), "2");

    s.compact(3).await.unwrap();
    assert!(matches!(
        s.watch("pods", None, 2),
        Err(StoreError::Gone {
            requested: 2,
            oldest: 3
        })
    ));
    assert!(s.watch("pods", None, 3).is_ok());
    s.close().await;
    assert!(all.next().await.is_none(), "close ends watches");
    assert!(matches!(
        s.create(Key::new("pods", "a", "z"), pod("z")).await,
        Err(StoreError::Closed)
    ));
}

#[tokio::test]
async fn list_and_watch_has_no_gap_and_no_duplicate() {
    let s = Store::memory();
    s.create(Key::new("pods", "n", "a"), pod("a"))
        .await
        .unwrap();
    let (items, rev, mut w) = s.list_and_watch("pods", None);
    assert_eq!((items.len(), rev), (1, 1));
    s.create(Key::new("pods", "n", "b"), pod("b"))
        .await
        .unwrap();
    let e = w.next().await.unwrap();
    assert_eq!((e.kind, e.revision), (EventType::Added, 2));
}

#[tokio::test]
async fn slow_watcher_is_ended_not_blocking_writers() {
    let s = Store::memory_with(crate::StoreConfig {
        watch_buffer: 4,
        ..Default::default()
    });
    let mut slow = s.watch("pods", None, 0).unwrap();
    for i in 0..10 {
        s.create(Key::new("pods", "n", format!("p{i}")), pod("p"))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    while let Some(e) = slow.next().await {
        seen.push(e.revision);
    }
    assert_eq!(seen, [1, 2, 3, 4], "buffered events, then the end");
    assert_eq!(s.watcher_count(), 0);
    // It can resume from its last revision.
    let mut again = s.watch("pods", None, 4).unwrap();
    assert_eq!(again.next().await.unwrap().revision, 5);
}

#[tokio::test(start_paused = true)]
async fn automatic_compaction_keeps_count_or_time_whichever_is_more() {
    let s = Store::memory_with(crate::StoreConfig {
        keep_events: 3,
        keep_for: std::time::Duration::from_secs(60),
        compaction_interval: std::time::Duration::from_secs(10),
        ..Default::default()
    });
    for i in 0..10 {
        s.create(Key::new("pods", "n", format!("p{i}")), pod("p"))
            .await
            .unwrap();
    }
    // Young events are kept even beyond keep_events.
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    assert_eq!(s.compacted_revision(), 0);
    // Once older than keep_for, all but the last keep_events go.
    tokio::time::sleep(std::time::Duration::from_secs(45)).await;
    assert_eq!(s.compacted_revision(), 7);
    assert!(s.watch("pods", None, 6).is_err());
    assert_eq!(
        s.watch("pods", None, 7)
            .unwrap()
            .next()
            .await
            .unwrap()
            .revision,
        8
    );
}

#[tokio::test]
async fn list_at_an_exact_revision() {
    let s = Store::memory();
    for n in ["a", "b", "c"] {
        s.create(Key::new("pods", "n", n), nsobj("n", n))
            .await
            .unwrap();
    }
    s.delete(&Key::new("pods", "n", "b"), None).await.unwrap();
    let at2 = s.list_at("pods", None, 2, &ListOptions::default()).unwrap();
    assert_eq!(names(&at2.items), ["n/a", "n/b"]);
    assert_eq!(at2.revision, 2);
    let opts = ListOptions {
        limit: Some(2),
        continue_token: None,
    };
    let p1 = s.list_at("pods", None, 3, &opts).unwrap();
    assert_eq!(names(&p1.items), ["n/a", "n/b"]);
    let next = ListOptions {
        limit: Some(2),
        continue_token: p1.continue_token,
    };
    assert_eq!(
        names(&s.list_at("pods", None, 3, &next).unwrap().items),
        ["n/c"]
    );
    assert!(matches!(
        s.list_at("pods", None, 2, &next),
        Err(StoreError::InvalidContinue(_))
    ));
    assert!(matches!(
        s.list_at("pods", None, 9, &ListOptions::default()),
        Err(StoreError::InvalidContinue(_))
    ));
    s.compact(3).await.unwrap();
    assert!(matches!(
        s.list_at("pods", None, 2, &ListOptions::default()),
        Err(StoreError::Gone {
            requested: 2,
            oldest: 3
        })
    ));
}

#[tokio::test]
async fn bookmark_revision_only_when_nothing_is_pending() {
    let s = Store::memory();
    s.create(Key::new("pods", "n", "a"), pod("a"))
        .await
        .unwrap();
    let mut w = s.watch("pods", None, 0).unwrap();
    assert_eq!(w.bookmark_revision(), None, "event 1 not yet returned");
    assert_eq!(w.next().await.unwrap().revision, 1);
    assert_eq!(w.bookmark_revision(), Some(1));
    // Writes to other resources advance the bookmark without events for this watch.
    s.create(Key::new("services", "n", "a"), pod("a"))
        .await
        .unwrap();
    assert_eq!(w.bookmark_revision(), Some(2));
    s.create(Key::new("pods", "n", "b"), pod("b"))
        .await
        .unwrap();
    assert_eq!(w.bookmark_revision(), None);
    assert_eq!(w.next().await.unwrap().revision, 3);
    assert_eq!(w.bookmark_revision(), Some(3));
    s.close().await;
    assert_eq!(w.bookmark_revision(), None);
}

#[test]
fn a_store_built_outside_a_runtime_starts_compacting_at_its_first_write() {
    let s = Store::memory_with(crate::StoreConfig {
        keep_events: 2,
        keep_for: std::time::Duration::from_secs(1),
        compaction_interval: std::time::Duration::from_secs(1),
        ..Default::default()
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        for i in 0..5 {
            s.create(Key::new("pods", "n", format!("p{i}")), pod("p"))
                .await
                .unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        assert_eq!(s.compacted_revision(), 3);
    });
}

#[tokio::test]
async fn dropped_watches_are_forgotten() {
    let s = Store::memory();
    let w = s.watch("pods", None, 0).unwrap();
    let (_, _, w2) = s.list_and_watch("pods", Some("n"));
    assert_eq!(s.watcher_count(), 2);
    drop((w, w2));
    let _w3 = s.watch("pods", None, 0).unwrap();
    assert_eq!(s.watcher_count(), 1);
}
