//! The agent's Prometheus metrics, with the kubelet's names and endpoints: `/metrics` has
//! `kubelet_running_pods` and `kubelet_running_containers{container_state}`, `/metrics/probes`
//! has `prober_probe_total{probe_type,result,container,pod,namespace,pod_uid}` and
//! `prober_probe_duration_seconds{probe_type,container,pod,namespace}` (the kubelet's
//! `pkg/kubelet/prober` families). Both are served by the agent's API, and so through the API
//! server's `nodes/{name}/proxy/metrics[/probes]`.
//!
//! A probe worker's runner is wrapped by [`AgentMetrics::metered`]: each attempt with a result
//! counts as upstream's `doProbe` counts it (an attempt whose result is thrown away counts
//! nothing), and the worker's series go when its runner is dropped with the worker, as the
//! kubelet's worker deletes them on stop — so the series follow the pods on the node.

use std::sync::Arc;

use futures::future::BoxFuture;
use probe::{ProbeResult, ProbeRun, ProbeRunner, ProbeType};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::pod::directory::Directory;

/// The content type of both scrapes (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Prometheus' default buckets, which the kubelet's `prober_probe_duration_seconds` uses.
const PROBE_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    probe_type: String,
    result: String,
    container: String,
    pod: String,
    namespace: String,
    pod_uid: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    probe_type: String,
    container: String,
    pod: String,
    namespace: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    container_state: String,
}

/// Whose probe a metered runner runs.
#[derive(Clone, Debug)]
pub struct ProbeLabels {
    /// Liveness, Readiness or Startup.
    pub probe_type: ProbeType,
    /// The container's name.
    pub container: String,
    /// The pod's name.
    pub pod: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's UID.
    pub pod_uid: String,
}

impl ProbeLabels {
    fn result(&self, result: &str) -> ResultLabels {
        ResultLabels {
            probe_type: self.probe_type.as_str().into(),
            result: result.into(),
            container: self.container.clone(),
            pod: self.pod.clone(),
            namespace: self.namespace.clone(),
            pod_uid: self.pod_uid.clone(),
        }
    }

    fn duration(&self) -> DurationLabels {
        DurationLabels {
            probe_type: self.probe_type.as_str().into(),
            container: self.container.clone(),
            pod: self.pod.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

/// The agent's metric families and the two registries that expose them.
pub struct AgentMetrics {
    main: Registry,
    probes: Registry,
    running_pods: Gauge,
    running_containers: Family<StateLabels, Gauge>,
    probe_total: Family<ResultLabels, Counter>,
    probe_duration: Family<DurationLabels, Histogram>,
    readiness_routing: Histogram,
}

/// Buckets of the readiness→routing latency: half a millisecond to a few seconds (the pod
/// worker syncs at most once a second, so most land below that).
const ROUTING_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl std::fmt::Debug for AgentMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AgentMetrics")
    }
}

impl Default for AgentMetrics {
    fn default() -> Self {
        let mut main = Registry::default();
        let running_pods = Gauge::default();
        main.register(
            "kubelet_running_pods",
            "Number of pods that have a running pod sandbox",
            running_pods.clone(),
        );
        let running_containers = Family::<StateLabels, Gauge>::default();
        main.register(
            "kubelet_running_containers",
            "Number of containers currently running",
            running_containers.clone(),
        );
        let mut probes = Registry::default();
        let probe_total = Family::<ResultLabels, Counter>::default();
        probes.register(
            "prober_probe",
            "Cumulative number of a liveness, readiness or startup probe for a container by result.",
            probe_total.clone(),
        );
        let probe_duration = Family::<DurationLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(PROBE_BUCKETS)) as fn() -> Histogram,
        );
        probes.register(
            "prober_probe_duration_seconds",
            "Duration in seconds for a probe response.",
            probe_duration.clone(),
        );
        let readiness_routing = Histogram::new(ROUTING_BUCKETS);
        main.register(
            "paddock_readiness_routing_duration_seconds",
            "Time from a probe result that changes a pod's readiness to the local service proxy routing by it (or no longer routing to it)",
            readiness_routing.clone(),
        );
        AgentMetrics {
            main,
            probes,
            running_pods,
            running_containers,
            probe_total,
            probe_duration,
            readiness_routing,
        }
    }
}

fn encode(registry: &Registry) -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry).is_err() {
        out.clear();
    }
    out
}

impl AgentMetrics {
    /// The agent's metrics, with the families of the in-process service proxy behind `hook`
    /// (if any) on `/metrics` too.
    pub fn new(hook: Option<&dyn crate::routing::RoutingHook>) -> AgentMetrics {
        let mut m = AgentMetrics::default();
        if let Some(h) = hook {
            h.register_metrics(&mut m.main);
        }
        m
    }

    /// A readiness change took `took` from its probe result to routing.
    pub fn readiness_routed(&self, took: std::time::Duration) {
        self.readiness_routing.observe(took.as_secs_f64());
    }

    /// `/metrics`: the pod and container counts read from `directory` now.
    pub fn encode_main(&self, directory: &Directory) -> String {
        let (pods, running, exited) = directory.running_counts();
        self.running_pods.set(pods as i64);
        for (state, n) in [("running", running), ("exited", exited)] {
            self.running_containers
                .get_or_create(&StateLabels {
                    container_state: state.into(),
                })
                .set(n as i64);
        }
        encode(&self.main)
    }

    /// `/metrics/probes`.
    pub fn encode_probes(&self) -> String {
        encode(&self.probes)
    }

    /// `inner`, counting each attempt under `labels`.
    pub fn metered(
        self: &Arc<Self>,
        inner: Arc<dyn ProbeRunner>,
        labels: ProbeLabels,
    ) -> Arc<dyn ProbeRunner> {
        Arc::new(Metered {
            inner,
            metrics: self.clone(),
            labels,
        })
    }
}

/// A probe runner that records what it runs.
struct Metered {
    inner: Arc<dyn ProbeRunner>,
    metrics: Arc<AgentMetrics>,
    labels: ProbeLabels,
}

impl ProbeRunner for Metered {
    fn run<'a>(&'a self, pod_ip: &'a str) -> BoxFuture<'a, ProbeRun> {
        Box::pin(async move {
            let run = self.inner.run(pod_ip).await;
            // upstream `doProbe`: an error throws the result away and counts nothing.
            if let Ok(result) = &run.outcome {
                let result = match result {
                    ProbeResult::Success => "successful",
                    ProbeResult::Failure => "failed",
                    ProbeResult::Unknown => "unknown",
                };
                self.metrics
                    .probe_total
                    .get_or_create(&self.labels.result(result))
                    .inc();
                self.metrics
                    .probe_duration
                    .get_or_create(&self.labels.duration())
                    .observe(run.duration.as_secs_f64());
            }
            run
        })
    }
}

impl Drop for Metered {
    fn drop(&mut self) {
        for result in ["successful", "failed", "unknown"] {
            self.metrics.probe_total.remove(&self.labels.result(result));
        }
        self.metrics.probe_duration.remove(&self.labels.duration());
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use probe::HandlerResult;

    use super::*;

    struct Scripted(Result<ProbeResult, ()>);

    impl ProbeRunner for Scripted {
        fn run<'a>(&'a self, _: &'a str) -> BoxFuture<'a, ProbeRun> {
            let outcome = self
                .0
                .map_err(|()| probe::HandlerError::Exec("boom".into()));
            Box::pin(async move {
                ProbeRun {
                    started_at: SystemTime::now(),
                    duration: Duration::from_millis(30),
                    outcome,
                    handler_result: HandlerResult::Success,
                    output: String::new(),
                    tries: 1,
                }
            })
        }
    }

    fn labels(ty: ProbeType) -> ProbeLabels {
        ProbeLabels {
            probe_type: ty,
            container: "c".into(),
            pod: "p".into(),
            namespace: "ns".into(),
            pod_uid: "u1".into(),
        }
    }

    #[tokio::test]
    async fn attempts_count_by_result_and_series_go_with_the_worker() {
        let m = Arc::new(AgentMetrics::default());
        let ok = m.metered(
            Arc::new(Scripted(Ok(ProbeResult::Success))),
            labels(ProbeType::Readiness),
        );
        let bad = m.metered(
            Arc::new(Scripted(Ok(ProbeResult::Failure))),
            labels(ProbeType::Liveness),
        );
        let err = m.metered(Arc::new(Scripted(Err(()))), labels(ProbeType::Startup));
        ok.run("10.0.0.1").await;
        ok.run("10.0.0.1").await;
        bad.run("10.0.0.1").await;
        err.run("10.0.0.1").await;
        let text = m.encode_probes();
        assert!(
            text.contains(r#"prober_probe_total{probe_type="Readiness",result="successful",container="c",pod="p",namespace="ns",pod_uid="u1"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"prober_probe_total{probe_type="Liveness",result="failed",container="c",pod="p",namespace="ns",pod_uid="u1"} 1"#),
            "{text}"
        );
        assert!(!text.contains("Startup"), "an error counts nothing: {text}");
        assert!(
            text.contains(r#"prober_probe_duration_seconds_bucket{le="0.05",probe_type="Readiness",container="c",pod="p",namespace="ns"} 2"#),
            "{text}"
        );
        drop(ok);
        let text = m.encode_probes();
        assert!(!text.contains("Readiness"), "{text}");
        assert!(text.contains("Liveness"), "{text}");
    }
}
