//! Readiness → routing: the time from a readiness probe result to the service proxy's routing
//! table changing, through the agent's in-process path (probe worker → results cache → pod
//! worker sync and status generation → [`agent::routing::RoutingHook`] → `proxy::Proxy` table
//! rebuilt and swapped). Kubernetes takes this path through the API server, the endpoints
//! controllers and kube-proxy's sync (≥ 1 s, `minSyncPeriod`); issue 5's target is ≤ 10 ms p99.
//!
//! `PODS` pods run real pod workers over a runtime that starts nothing; each readiness probe
//! is an exec probe whose result alternates (success, failure, …) with `periodSeconds: 1` and
//! thresholds 1, so every probe flips the pod's readiness. The probe result's instant is taken
//! as the exec runner returns it, the table's as `set_endpoint_state` returns. The floor,
//! measured in the same run on the same proxy (same service, same endpoints), is
//! `set_endpoint_state` called directly: the table rebuild alone.
//! Run: `cargo bench -p agent --bench routing`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use agent::events::EventRecorder;
use agent::pod::config::{NodeFacts, Objects};
use agent::pod::directory::Directory;
use agent::pod::port_error::PortError;
use agent::pod::status_writer::StatusWriter;
use agent::pod::worker::{PodWorker, Shared};
use agent::routing::{PodEndpoint, RouteState, Routing, RoutingHook};
use agent::runtime::{
    ContainerConfig, ContainerId, ExecSession, Exited, Recovered, Runtime, RuntimeError, Sandbox,
    SandboxConfig, Started,
};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodStatus, Secret, Service};
use parking_lot::Mutex;
use probe::{ExecError, ExecOutput, ExecRunner, ExecStatus};
use proxy::{EndpointId, EndpointInfo, EndpointState, PortInfo, Protocol, Proxy, ServiceInfo};
use tokio::time::Instant;

/// Pods on the node (and endpoints behind the one service).
const PODS: usize = 50;
/// How long probes flip.
const RUN: Duration = Duration::from_secs(12);

/// When each pod's last probe result was produced.
type ResultTimes = Arc<Mutex<HashMap<String, Instant>>>;

/// An exec probe whose result alternates; records when each result is returned.
#[derive(Debug)]
struct Flip {
    uid: String,
    ok: AtomicBool,
    times: ResultTimes,
}

impl ExecRunner for Flip {
    fn run<'a>(
        &'a self,
        _argv: &'a [String],
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, ExecError>> {
        let ok = !self.ok.fetch_xor(true, Ordering::SeqCst);
        Box::pin(async move {
            self.times.lock().insert(self.uid.clone(), Instant::now());
            Ok(ExecOutput {
                status: ExecStatus::Exited(if ok { 0 } else { 1 }),
                output: Vec::new(),
            })
        })
    }
}

/// A runtime that runs nothing: containers "run" until stopped.
#[derive(Debug, Default)]
struct Idle {
    times: ResultTimes,
    runners: Mutex<HashMap<String, Arc<Flip>>>,
    sandboxes: Mutex<HashMap<String, String>>,
}

fn pod_ip(i: usize) -> std::net::IpAddr {
    std::net::IpAddr::from([10, 244, (i / 250) as u8, (i % 250 + 2) as u8])
}

#[async_trait::async_trait]
impl Runtime for Idle {
    async fn run_sandbox(&self, cfg: &SandboxConfig) -> Result<Sandbox, RuntimeError> {
        let i: usize = cfg.name.trim_start_matches("p").parse().unwrap_or(0);
        Ok(Sandbox {
            id: cfg.pod_uid.clone(),
            pod_ip: pod_ip(i),
            host_network: false,
            isolated: true,
        })
    }
    async fn stop_sandbox(&self, _sandbox: &Sandbox) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn start_container(
        &self,
        sandbox: &Sandbox,
        _cfg: &ContainerConfig,
    ) -> Result<Started, RuntimeError> {
        let id = ContainerId(format!("c-{}", sandbox.id));
        self.sandboxes
            .lock()
            .insert(id.0.clone(), sandbox.id.clone());
        Ok(Started {
            id,
            pid: 1,
            started_at: SystemTime::now(),
        })
    }
    async fn wait_container(&self, _id: &ContainerId) -> Exited {
        std::future::pending().await
    }
    async fn stop_container(
        &self,
        _id: &ContainerId,
        _grace: Duration,
    ) -> Result<(), RuntimeError> {
        Ok(())
    }
    fn exec_runner(&self, id: &ContainerId) -> Arc<dyn ExecRunner> {
        let uid = self
            .sandboxes
            .lock()
            .get(&id.0)
            .cloned()
            .unwrap_or_default();
        self.runners
            .lock()
            .entry(uid.clone())
            .or_insert_with(|| {
                Arc::new(Flip {
                    uid,
                    ok: AtomicBool::new(false),
                    times: self.times.clone(),
                })
            })
            .clone()
    }
    async fn exec(
        &self,
        _id: &ContainerId,
        _argv: &[String],
        _tty: bool,
        _stdin: bool,
    ) -> Result<ExecSession, RuntimeError> {
        Err(RuntimeError::NoCommand)
    }
    fn log_path(&self, id: &ContainerId) -> PathBuf {
        PathBuf::from(format!("/nonexistent/{id}"))
    }
    fn instance_log_path(&self, _pod: &str, _c: &str, _n: i32) -> PathBuf {
        PathBuf::from("/nonexistent")
    }
    async fn remove_pod_logs(&self, _pod_uid: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn list(&self) -> Result<Vec<Recovered>, RuntimeError> {
        Ok(Vec::new())
    }
    async fn shutdown(&self, _grace: Duration) -> Result<(), RuntimeError> {
        Ok(())
    }
}

/// Status writes go nowhere (the hook runs before them anyway).
struct NoStatus;

impl StatusWriter for NoStatus {
    fn write<'a>(&'a self, _: &'a Pod, _: &'a PodStatus) -> BoxFuture<'a, Result<(), PortError>> {
        Box::pin(async { Ok(()) })
    }
    fn delete<'a>(&'a self, _: &'a Pod) -> BoxFuture<'a, Result<(), PortError>> {
        Box::pin(async { Ok(()) })
    }
}

struct NoObjects;

impl Objects for NoObjects {
    fn runtime_class<'a>(
        &'a self,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<k8s_openapi::api::node::v1::RuntimeClass>, PortError>> {
        Box::pin(async { Ok(None) })
    }
    fn config_map<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, PortError>> {
        Box::pin(async { Ok(None) })
    }
    fn secret<'a>(
        &'a self,
        _: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, PortError>> {
        Box::pin(async { Ok(None) })
    }
    fn services<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Vec<Service>, PortError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// The hook `paddock up` installs, plus the measurement.
struct Measured {
    proxy: Arc<Proxy>,
    times: ResultTimes,
    samples: Mutex<Vec<Duration>>,
}

impl RoutingHook for Measured {
    fn set_state(&self, pod: &PodEndpoint, state: RouteState) {
        let st = match state {
            RouteState::Ready => EndpointState::Ready,
            RouteState::NotReady => EndpointState::NotReady,
            RouteState::Draining => EndpointState::Draining,
        };
        self.proxy
            .set_endpoint_state(EndpointId::Pod(pod.uid.clone()), st);
        let now = Instant::now();
        if state != RouteState::Draining
            && let Some(t) = self.times.lock().get(&pod.uid)
        {
            self.samples.lock().push(now - *t);
        }
    }
    fn forget(&self, pod: &PodEndpoint) {
        self.proxy
            .release_endpoint_state(EndpointId::Pod(pod.uid.clone()));
    }
    fn active_connections(&self, pod: &PodEndpoint) -> usize {
        self.proxy.active_connections(pod.ip)
    }
}

fn proxy_with_endpoints() -> Arc<Proxy> {
    let proxy = Proxy::new(proxy::NodeConfig::default(), false);
    proxy.update_service(ServiceInfo {
        namespace: "default".into(),
        name: "web".into(),
        type_: "ClusterIP".into(),
        cluster_ips: vec![std::net::IpAddr::from([10, 96, 0, 10])],
        external_ips: vec![],
        ports: vec![PortInfo {
            name: "http".into(),
            port: 80,
            node_port: None,
            protocol: Protocol::Tcp,
        }],
        affinity: None,
        internal_local: false,
        external_local: false,
    });
    let eps = (0..PODS)
        .map(|i| EndpointInfo {
            ip: pod_ip(i),
            ports: vec![("http".into(), Protocol::Tcp, 8080)],
            ready: false,
            serving: false,
            terminating: false,
            node_name: Some("n1".into()),
            pod_uid: Some(format!("uid-{i}")),
        })
        .collect();
    proxy.set_endpoints("default", "web", eps);
    proxy
}

fn pod(i: usize) -> Arc<Pod> {
    let v = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("p{i}"), "namespace": "default", "uid": format!("uid-{i}")},
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "x", "command": ["run"],
            "readinessProbe": {"exec": {"command": ["check"]}, "periodSeconds": 1,
                               "successThreshold": 1, "failureThreshold": 1}}]},
    });
    Arc::new(serde_json::from_value(v).expect("pod"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Floor: the table rebuild alone, on the same proxy shape.
        let floor_proxy = proxy_with_endpoints();
        let mut floor = Vec::new();
        for n in 0..2000 {
            // Every call changes one pod's state (a pod alternates on each round over all).
            let st = if (n / PODS).is_multiple_of(2) {
                EndpointState::Ready
            } else {
                EndpointState::NotReady
            };
            let t = Instant::now();
            floor_proxy.set_endpoint_state(EndpointId::Pod(format!("uid-{}", n % PODS)), st);
            floor.push(t.elapsed());
        }
        floor.sort();

        let idle = Arc::new(Idle::default());
        let hook = Arc::new(Measured {
            proxy: proxy_with_endpoints(),
            times: idle.times.clone(),
            samples: Mutex::new(Vec::new()),
        });
        let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move { while events.recv().await.is_some() {} });
        let shared = Shared {
            runtime: idle.clone(),
            status: Arc::new(NoStatus),
            objects: Arc::new(NoObjects),
            events: EventRecorder::to_channel(tx),
            node: NodeFacts {
                host_ip: "10.0.0.1".parse().expect("ip"),
                node_name: "n1".into(),
                cpu_milli: 2000,
                memory: 1 << 30,
                storage: 1 << 34,
                storage_root: "/nonexistent/storage".into(),
                apparmor: false,
            },
            handler_env: probe::HandlerEnv::new(probe::DEFAULT_USER_AGENT).expect("env"),
            agent_started: Instant::now() - Duration::from_secs(3600),
            directory: Arc::new(Directory::default()),
            routing: Routing::new(Some(hook.clone())),
            images: None,
            default_runtime: "host".into(),
            cluster_dns: Default::default(),
            metrics: Default::default(),
        };
        let workers: Vec<PodWorker> = (0..PODS)
            .map(|i| PodWorker::spawn(shared.clone(), pod(i), None))
            .collect();
        tokio::time::sleep(RUN).await;
        let mut s = hook.samples.lock().clone();
        // Containers here never exit, so the workers are left as they are (the process ends).
        drop(workers);
        s.sort();
        let (p50, p99) = (percentile(&s, 0.5), percentile(&s, 0.99));
        let (f50, f99) = (percentile(&floor, 0.5), percentile(&floor, 0.99));
        println!(
            "readiness → routing, in-process, {PODS} pods behind one service, {} flips:",
            s.len()
        );
        println!("  probe result → table swapped: p50 {p50:?}  p99 {p99:?}  max {:?}", s[s.len() - 1]);
        println!("  floor (set_endpoint_state alone): p50 {f50:?}  p99 {f99:?}");
        println!(
            "  ratio to floor: p50 {:.1}x  p99 {:.1}x;  p99 against the 10 ms target: {:.2}x;  kube-proxy minSyncPeriod 1 s: {:.0}x faster at p99",
            p50.as_secs_f64() / f50.as_secs_f64(),
            p99.as_secs_f64() / f99.as_secs_f64(),
            p99.as_secs_f64() / 0.010,
            1.0 / p99.as_secs_f64()
        );
    });
}
