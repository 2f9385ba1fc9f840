//! The service proxy's Prometheus metrics, with kube-proxy's names and buckets
//! (`pkg/proxy/metrics`): the time to build and swap in a routing table
//! (`kubeproxy_sync_proxy_rules_duration_seconds`, the table swap being this proxy's "sync"),
//! when the last swap happened (`kubeproxy_sync_proxy_rules_last_timestamp_seconds`), and the
//! in-cluster network programming latency (`kubeproxy_network_programming_duration_seconds`:
//! from the endpoint change an EndpointSlice's `endpoints.kubernetes.io/last-change-trigger-time`
//! records to the swap that routes it, for changes made after the proxy started, as
//! kube-proxy counts them).
//!
//! The node agent serves them on its `/metrics` ([`Metrics::register`]).

use std::str::FromStr as _;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The annotation the endpoints controllers set to the time of the change a slice reflects.
pub const LAST_CHANGE_TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";

/// kube-proxy's `NetworkProgrammingLatency` buckets: 0.25 s and 0.5 s, every second to 59 s,
/// every 5 s to 115 s, every 30 s to 300 s.
fn programming_buckets() -> Vec<f64> {
    let mut b = vec![0.25, 0.5];
    b.extend((1..60).map(f64::from));
    b.extend((0..12).map(|i| 60.0 + 5.0 * f64::from(i)));
    b.extend((0..7).map(|i| 120.0 + 30.0 * f64::from(i)));
    b
}

/// The proxy's metrics. Cheap to clone (the values are shared).
#[derive(Debug, Clone)]
pub struct Metrics {
    sync_duration: Histogram,
    last_sync: Gauge<f64, AtomicU64>,
    programming: Histogram,
    /// Changes from before this are not counted (they were not this proxy's to program).
    started: SystemTime,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            // kube-proxy's SyncProxyRulesLatency: 1 ms doubling, 15 buckets.
            sync_duration: Histogram::new(exponential_buckets(0.001, 2.0, 15)),
            last_sync: Gauge::default(),
            programming: Histogram::new(programming_buckets()),
            started: SystemTime::now(),
        }
    }
}

impl Metrics {
    /// Adds the proxy's families to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "kubeproxy_sync_proxy_rules_duration_seconds",
            "SyncProxyRules latency in seconds",
            self.sync_duration.clone(),
        );
        registry.register(
            "kubeproxy_sync_proxy_rules_last_timestamp_seconds",
            "The last time proxy rules were successfully synced",
            self.last_sync.clone(),
        );
        registry.register(
            "kubeproxy_network_programming_duration_seconds",
            "In Cluster Network Programming Latency in seconds",
            self.programming.clone(),
        );
    }

    /// A table was built and swapped in, taking `took`.
    pub(crate) fn synced(&self, took: Duration) {
        self.sync_duration.observe(took.as_secs_f64());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.last_sync.set(now.as_secs_f64());
    }

    /// A change triggered at `trigger` (RFC 3339, the annotation's value) is now routed.
    pub fn programmed(&self, trigger: &str) {
        let Some(at) = parse_rfc3339(trigger) else {
            return;
        };
        if at <= self.started {
            return;
        }
        if let Ok(latency) = SystemTime::now().duration_since(at) {
            self.programming.observe(latency.as_secs_f64());
        }
    }
}

/// `2026-01-02T03:04:05Z` (with optional fractional seconds), as `metav1.Time` writes it.
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let t = k8s_openapi::jiff::Timestamp::from_str(s).ok()?;
    let nanos = u64::try_from(t.as_nanosecond()).ok()?;
    Some(UNIX_EPOCH + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        let mut r = Registry::default();
        m.register(&mut r);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        out
    }

    #[test]
    fn syncs_are_timed_and_stamped() {
        let m = Metrics::default();
        m.synced(Duration::from_micros(1500));
        let t = text(&m);
        assert!(
            t.contains("kubeproxy_sync_proxy_rules_duration_seconds_count 1"),
            "{t}"
        );
        assert!(
            t.contains("kubeproxy_sync_proxy_rules_duration_seconds_bucket{le=\"0.002\"} 1"),
            "{t}"
        );
        assert!(!t.contains("kubeproxy_sync_proxy_rules_last_timestamp_seconds 0.0"));
    }

    #[tokio::test]
    async fn every_table_swap_is_a_sync() {
        let proxy = crate::Proxy::new(crate::NodeConfig::default(), false);
        proxy.remove_service("default", "none");
        assert!(
            text(proxy.metrics()).contains("kubeproxy_sync_proxy_rules_duration_seconds_count 0")
        );
        proxy.update_service(crate::model::ServiceInfo {
            namespace: "default".into(),
            name: "web".into(),
            type_: "ClusterIP".into(),
            cluster_ips: vec!["10.96.0.20".parse().unwrap()],
            external_ips: Vec::new(),
            ports: Vec::new(),
            affinity: None,
            internal_local: false,
            external_local: false,
        });
        let t = text(proxy.metrics());
        assert!(
            t.contains("kubeproxy_sync_proxy_rules_duration_seconds_count 1"),
            "{t}"
        );
    }

    #[test]
    fn only_changes_after_the_start_count_for_programming_latency() {
        let m = Metrics {
            started: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
            ..Metrics::default()
        };
        m.programmed("2020-01-01T00:00:00Z");
        m.programmed("not a time");
        let recent =
            k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(3);
        m.programmed(&recent.to_string());
        let t = text(&m);
        assert!(
            t.contains("kubeproxy_network_programming_duration_seconds_count 1"),
            "{t}"
        );
        assert!(
            t.contains("kubeproxy_network_programming_duration_seconds_bucket{le=\"2.0\"} 0"),
            "{t}"
        );
        assert!(
            t.contains("kubeproxy_network_programming_duration_seconds_bucket{le=\"4.0\"} 1"),
            "{t}"
        );
    }
}
