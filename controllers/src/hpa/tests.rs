use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use serde_json::json;

use super::normalize::Normalizer;
use super::replicas::{CalcError, PodUsage, Target, resource_replicas};

const NOW: i64 = 1_700_000_000_000;

/// A Running, Ready pod started an hour ago, requesting `cpu` millicores.
fn pod(name: &str, cpu: &str, phase: &str, ready: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]},
        "status": {
            "phase": phase,
            "startTime": "2023-11-14T21:13:20Z",
            "conditions": [{"type": "Ready", "status": ready,
                "lastTransitionTime": "2023-11-14T21:13:30Z"}],
        },
    }))
    .expect("pod")
}

fn usage(pairs: &[(&str, i64)]) -> BTreeMap<String, PodUsage> {
    pairs
        .iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                PodUsage {
                    value: *v,
                    timestamp_ms: NOW,
                    window_ms: 15_000,
                },
            )
        })
        .collect()
}

#[test]
fn utilization_scales_by_the_usage_ratio() {
    let pods = [
        pod("a", "100m", "Running", "True"),
        pod("b", "100m", "Running", "True"),
    ];
    // 150% of request against a 50% target: ratio 3, two pods → 6.
    let p = resource_replicas(
        2,
        Target::Utilization(50),
        "cpu",
        None,
        &pods,
        usage(&[("a", 150), ("b", 150)]),
        NOW,
    )
    .expect("proposal");
    assert_eq!((p.replicas, p.utilization, p.raw), (6, Some(150), 150));
    // Within the 10% tolerance: no change.
    let p = resource_replicas(
        2,
        Target::Utilization(50),
        "cpu",
        None,
        &pods,
        usage(&[("a", 54), ("b", 54)]),
        NOW,
    )
    .expect("proposal");
    assert_eq!(p.replicas, 2);
    // Average value (memory, milli-bytes): 300 against 100 per pod → 6.
    let p = resource_replicas(
        2,
        Target::AverageValue(100),
        "memory",
        None,
        &pods,
        usage(&[("a", 300), ("b", 300)]),
        NOW,
    )
    .expect("proposal");
    assert_eq!((p.replicas, p.utilization), (6, None));
}

#[test]
fn missing_and_unready_pods_are_counted_conservatively() {
    // Scale-down with a pod missing metrics: it counts at 100% of its request, so the
    // proposal stays above what the two measured pods alone would give.
    let pods = [
        pod("a", "100m", "Running", "True"),
        pod("b", "100m", "Running", "True"),
        pod("c", "100m", "Running", "True"),
    ];
    let p = resource_replicas(
        3,
        Target::Utilization(50),
        "cpu",
        None,
        &pods,
        usage(&[("a", 10), ("b", 10)]),
        NOW,
    )
    .expect("proposal");
    // (10 + 10 + 100) / 300 = 40% → ratio 0.8 → ceil(2.4) = 3.
    assert_eq!(p.replicas, 3);
    // Scale-up with a Pending pod: it counts at zero.
    let pods = [
        pod("a", "100m", "Running", "True"),
        pod("p", "100m", "Pending", "False"),
    ];
    let p = resource_replicas(
        2,
        Target::Utilization(50),
        "cpu",
        None,
        &pods,
        usage(&[("a", 100)]),
        NOW,
    )
    .expect("proposal");
    // (100 + 0) / 200 = 50% → within tolerance: stay at 2.
    assert_eq!(p.replicas, 2);
    // Failed pods are ignored; no pods at all is an error.
    assert_eq!(
        resource_replicas(
            1,
            Target::Utilization(50),
            "cpu",
            None,
            &[],
            usage(&[]),
            NOW
        ),
        Err(CalcError::NoPods)
    );
    let no_request: Pod = serde_json::from_value(json!({
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Running"},
    }))
    .expect("pod");
    assert_eq!(
        resource_replicas(
            1,
            Target::Utilization(50),
            "cpu",
            None,
            &[no_request],
            usage(&[("x", 5)]),
            NOW
        )
        .map(|p| p.replicas)
        .map_err(|e| e.to_string()),
        Err("missing request for cpu in container c of Pod x".to_string())
    );
}

#[tokio::test(start_paused = true)]
async fn scale_down_waits_out_the_stabilization_window() {
    let mut n = Normalizer::new(Duration::from_secs(300));
    let (d, able, limited) = n.normalize("ns/h", 4, 4, 1, 10);
    assert_eq!(d, 4);
    assert_eq!(able.0, "ReadyForNewScale");
    assert_eq!((limited.0, limited.1), (false, "DesiredWithinRange"));
    tokio::time::advance(Duration::from_secs(60)).await;
    // A lower recommendation within five minutes of a higher one is held.
    let (d, able, _) = n.normalize("ns/h", 4, 1, 1, 10);
    assert_eq!(d, 4);
    assert_eq!(able.0, "ScaleDownStabilized");
    tokio::time::advance(Duration::from_secs(301)).await;
    let (d, ..) = n.normalize("ns/h", 4, 1, 1, 10);
    assert_eq!(d, 1);
    // Scale-up: at most max(2×current, 4), and never above max.
    let (d, _, limited) = n.normalize("ns/h", 1, 20, 1, 10);
    assert_eq!(d, 4);
    assert_eq!((limited.0, limited.1), (true, "ScaleUpLimit"));
    let (d, _, limited) = n.normalize("ns/h", 4, 20, 1, 5);
    assert_eq!(d, 5);
    assert_eq!(limited.1, "TooManyReplicas");
    let (d, _, limited) = n.normalize("ns/h", 4, 0, 2, 5);
    assert_eq!(
        d, 5,
        "the window still holds the recommendation of 20, limited to max"
    );
    assert_eq!((limited.0, limited.1), (true, "TooManyReplicas"));
}

#[tokio::test(start_paused = true)]
async fn behavior_policies_limit_each_period() {
    let mut n = Normalizer::new(Duration::from_secs(300));
    let behavior = json!({
        "scaleUp": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]},
    });
    let (d, _, limited) = n.normalize_with_behavior("k", 2, 10, 1, 20, &behavior);
    assert_eq!(d, 4);
    assert_eq!((limited.0, limited.1), (true, "ScaleUpLimit"));
    n.store_scale_event("k", &behavior, 2, 4);
    tokio::time::advance(Duration::from_secs(10)).await;
    // Within the same minute the two pods already added count against the policy.
    let (d, ..) = n.normalize_with_behavior("k", 4, 10, 1, 20, &behavior);
    assert_eq!(d, 4);
    tokio::time::advance(Duration::from_secs(60)).await;
    let (d, ..) = n.normalize_with_behavior("k", 4, 10, 1, 20, &behavior);
    assert_eq!(d, 6);
    // Scale down by at most half per minute.
    let (d, _, limited) = n.normalize_with_behavior("k", 8, 1, 1, 20, &behavior);
    assert_eq!(d, 4);
    assert_eq!(limited.1, "ScaleDownLimit");
    // A disabled direction does not move.
    let off = json!({"scaleUp": {"selectPolicy": "Disabled", "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]}});
    let (d, ..) = n.normalize_with_behavior("k2", 3, 9, 1, 20, &off);
    assert_eq!(d, 3);
}

#[derive(Debug)]
struct NoMetrics;

impl super::MetricsSource for NoMetrics {
    fn pod_metrics(&self, _: &str, _: &str) -> Option<super::PodMetric> {
        None
    }
}

fn deployment(name: &str, app: &str) -> serde_json::Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": app}},
            "template": {"metadata": {"labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
}

fn hpa(name: &str, target: &str) -> serde_json::Value {
    json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": 1, "maxReplicas": 5}})
}

/// Two HPAs whose targets select the same pods: upstream's `AmbiguousSelector`, and neither
/// scales; a third HPA on other pods is not affected.
#[tokio::test]
async fn pods_selected_by_two_hpas_targets_are_ambiguous() {
    use crate::testutil::*;
    let registry = registry_with_namespace("default").await;
    for (d, app) in [("one", "web"), ("two", "web"), ("other", "db")] {
        create(&registry, "deployments", "default", deployment(d, app)).await;
    }
    for (p, app) in [("web-1", "web"), ("db-1", "db")] {
        create(
            &registry,
            "pods",
            "default",
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": p, "labels": {"app": app}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .await;
    }
    for (h, d) in [("a", "one"), ("b", "two"), ("c", "other")] {
        create(&registry, "horizontalpodautoscalers", "default", hpa(h, d)).await;
    }
    let c = super::Controller::new(
        cluster(&registry),
        super::Config::new(std::sync::Arc::new(NoMetrics)),
    );
    // The first pass learns the selectors; the second sees the overlap.
    c.sync_all().await;
    c.sync_all().await;
    let hpas = info("horizontalpodautoscalers");
    let msg = "pods by selector app=web are controlled by multiple HPAs: [default/a default/b]";
    for name in ["a", "b"] {
        let h = registry.get(hpas, "default", name).unwrap();
        let conds = h["status"]["conditions"].as_array().unwrap();
        let active = conds.iter().find(|c| c["type"] == "ScalingActive").unwrap();
        assert_eq!(active["status"], "False", "{h}");
        assert_eq!(active["reason"], "AmbiguousSelector", "{h}");
        assert_eq!(active["message"], msg, "{h}");
    }
    let h = registry.get(hpas, "default", "c").unwrap();
    let conds = h["status"]["conditions"].as_array().unwrap();
    let active = conds.iter().find(|c| c["type"] == "ScalingActive").unwrap();
    assert_ne!(active["reason"], "AmbiguousSelector", "{h}");
    let (events, _) = registry
        .list(info("events"), Some("default"), None, None)
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "AmbiguousSelector" && e["message"] == msg),
        "{events:?}"
    );
    // Once one of them goes, the other is no longer ambiguous.
    delete(&registry, "horizontalpodautoscalers", "default", "b", None).await;
    c.sync_all().await;
    let h = registry.get(hpas, "default", "a").unwrap();
    let conds = h["status"]["conditions"].as_array().unwrap();
    let active = conds.iter().find(|c| c["type"] == "ScalingActive").unwrap();
    assert_ne!(active["reason"], "AmbiguousSelector", "{h}");
}
