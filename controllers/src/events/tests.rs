use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::meta;
use crate::testutil::*;

async fn pod(registry: &apiserver::registry::Registry) -> ObjectMeta {
    let pod = create(
        registry,
        "pods",
        "ns",
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
    )
    .await;
    crate::typed::metadata(&pod).unwrap()
}

fn with_reason(registry: &apiserver::registry::Registry, reason: &str) -> Vec<Value> {
    list_events(registry, "ns")
        .into_iter()
        .filter(|e| e["reason"] == reason)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn legacy_repeats_patch_the_first_event_and_recreate_it_when_gone() {
    let registry = registry_with_namespace("ns").await;
    let pod = pod(&registry).await;
    let legacy = Recorder::new(cluster(&registry), "replicaset-controller", Style::Legacy);
    for _ in 0..3 {
        legacy
            .event(info("pods"), &pod, NORMAL, "Tested", "", "same message")
            .await;
    }
    legacy
        .event(info("pods"), &pod, WARNING, "Tested", "", "other message")
        .await;
    let evs = list_events(&registry, "ns");
    assert_eq!(evs.len(), 2, "{evs:?}");
    let same = evs.iter().find(|e| e["message"] == "same message").unwrap();
    // What `kubectl get events` shows in COUNT.
    assert_eq!(same["count"], 3);
    assert_eq!(same["source"]["component"], "replicaset-controller");
    assert_eq!(same["reportingComponent"], "replicaset-controller");
    assert_eq!(same["involvedObject"]["kind"], "Pod");
    assert_eq!(same["involvedObject"]["uid"], pod.uid.as_deref().unwrap());
    assert_eq!(same["involvedObject"]["namespace"], "ns");
    assert_eq!(same["type"], NORMAL);
    assert!(same["firstTimestamp"].is_string() && same["lastTimestamp"].is_string());
    let name = meta::str(same, "name").to_string();
    assert!(name.starts_with("p."), "{name}");

    // The event is deleted (as by its TTL): the next repeat creates it again under its
    // name, counting on.
    cluster(&registry)
        .delete(info("events"), "ns", &name, &Default::default())
        .await
        .unwrap();
    legacy
        .event(info("pods"), &pod, NORMAL, "Tested", "", "same message")
        .await;
    let evs = list_events(&registry, "ns");
    let same = evs.iter().find(|e| e["message"] == "same message").unwrap();
    assert_eq!(meta::str(same, "name"), name);
    assert_eq!(same["count"], 4);
}

#[tokio::test(start_paused = true)]
async fn legacy_messages_are_truncated() {
    let registry = registry_with_namespace("ns").await;
    let pod = pod(&registry).await;
    let legacy = Recorder::new(cluster(&registry), "deployment-controller", Style::Legacy);
    let long = "x".repeat(2000);
    legacy
        .event(info("pods"), &pod, NORMAL, "Long", "", &long)
        .await;
    let evs = with_reason(&registry, "Long");
    assert_eq!(evs[0]["message"].as_str().unwrap().len(), MAX_MESSAGE);
}

/// The scheduler's recorder (instance `default-scheduler-h`) with its upkeep running until
/// the token is cancelled.
fn scheduler_recorder(
    registry: &apiserver::registry::Registry,
) -> (
    Arc<Recorder>,
    CancellationToken,
    tokio::task::JoinHandle<()>,
) {
    let series = Arc::new(Recorder::new(
        cluster(registry),
        "default-scheduler",
        Style::Series {
            instance: "default-scheduler-h".into(),
        },
    ));
    let shutdown = CancellationToken::new();
    let upkeep = {
        let (series, shutdown) = (series.clone(), shutdown.clone());
        tokio::spawn(async move { series.run_upkeep(&shutdown).await })
    };
    (series, shutdown, upkeep)
}

/// The scheduler's `FailedScheduling` event about `pod`.
async fn failed_scheduling(series: &Recorder, pod: &ObjectMeta, message: &str) {
    series
        .event(
            info("pods"),
            pod,
            WARNING,
            "FailedScheduling",
            "Scheduling",
            message,
        )
        .await
}

#[tokio::test(start_paused = true)]
async fn series_events_count_in_memory_and_finish_after_six_minutes() {
    let registry = registry_with_namespace("ns").await;
    let pod = pod(&registry).await;
    let (series, shutdown, upkeep) = scheduler_recorder(&registry);
    let failed = |message: &'static str| failed_scheduling(&series, &pod, message);
    failed("0/1 nodes are available").await;
    let evs = with_reason(&registry, "FailedScheduling");
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(evs[0]["series"].is_null());
    assert_eq!(evs[0]["action"], "Scheduling");
    assert_eq!(evs[0]["reportingInstance"], "default-scheduler-h");
    assert!(evs[0]["eventTime"].as_str().unwrap().contains('.'));
    assert!(evs[0]["firstTimestamp"].is_null());
    assert!(evs[0]["count"].is_null());

    // The second occurrence starts the series at once; the message is not part of the key.
    failed("0/2 nodes are available").await;
    let evs = with_reason(&registry, "FailedScheduling");
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["series"]["count"], 2);
    assert_eq!(evs[0]["message"], "0/1 nodes are available");
    assert!(evs[0]["series"]["lastObservedTime"].is_string());

    // Later ones are counted in memory only…
    failed("0/1 nodes are available").await;
    assert_eq!(
        with_reason(&registry, "FailedScheduling")[0]["series"]["count"],
        2
    );
    // …until the series has not been seen for 6 minutes: the next 6-minute check writes its
    // final count and forgets it (at 12 minutes: at 6 it was seen exactly 6 minutes ago).
    tokio::time::sleep(Duration::from_secs(11 * 60)).await;
    assert_eq!(
        with_reason(&registry, "FailedScheduling")[0]["series"]["count"],
        2
    );
    tokio::time::sleep(Duration::from_secs(2 * 60)).await;
    let evs = with_reason(&registry, "FailedScheduling");
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["series"]["count"], 3);

    // A new occurrence is a new event.
    failed("0/1 nodes are available").await;
    let evs = with_reason(&registry, "FailedScheduling");
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert_eq!(evs.iter().filter(|e| e["series"].is_null()).count(), 1);

    // Another reason (or action) is another event.
    series
        .event(info("pods"), &pod, NORMAL, "Scheduled", "Binding", "bound")
        .await;
    assert_eq!(with_reason(&registry, "Scheduled").len(), 1);

    shutdown.cancel();
    upkeep.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn series_counts_are_refreshed_every_30_minutes() {
    let registry = registry_with_namespace("ns").await;
    let pod = pod(&registry).await;
    let (series, shutdown, upkeep) = scheduler_recorder(&registry);
    // Observed every minute: the series never finishes; its count is written at 30 min.
    for _ in 0..30 {
        failed_scheduling(&series, &pod, "m").await;
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let evs = with_reason(&registry, "FailedScheduling");
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert_eq!(evs[0]["series"]["count"], 30);

    shutdown.cancel();
    upkeep.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn series_beyond_the_cache_bound_are_written_unremembered() {
    let registry = registry_with_namespace("ns").await;
    let pod = pod(&registry).await;
    let (series, shutdown, upkeep) = scheduler_recorder(&registry);
    {
        let now = tokio::time::Instant::now();
        let mut cache = series.series.lock();
        for i in 0..api::events::MAX_LRU_CACHE_ENTRIES {
            let key = SeriesKey {
                event_type: String::new(),
                action: String::new(),
                reason: format!("filler-{i}"),
                reporting_controller: String::new(),
                reporting_instance: String::new(),
                regarding: Default::default(),
            };
            let cached = Cached {
                event: Default::default(),
                first: now,
                last: now,
            };
            cache.insert(key, cached);
        }
    }
    failed_scheduling(&series, &pod, "0/1 nodes are available").await;
    failed_scheduling(&series, &pod, "0/1 nodes are available").await;
    // Both written, as first occurrences: the full cache took neither.
    let evs = with_reason(&registry, "FailedScheduling");
    assert_eq!(evs.len(), 2, "{evs:?}");
    assert!(evs.iter().all(|e| e["series"].is_null()), "{evs:?}");
    assert_eq!(
        series.series.lock().len(),
        api::events::MAX_LRU_CACHE_ENTRIES
    );
    shutdown.cancel();
    upkeep.await.unwrap();
}
