//! [`ProbeManager`]: the kubelet's prober manager [pkg/kubelet/prober/prober_manager.go] — one
//! worker per (pod, container, probe type) for regular and restartable init containers, created
//! in the order startup, readiness, liveness; stopping them on termination and removal; and
//! [`ProbeManager::update_pod_status`], which sets each container's `started` and `ready` from
//! the cached results and triggers an immediate readiness probe for containers not yet ready.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodStatus};
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::handler::HandlerEnv;
use crate::handler::exec::ExecRunner;
use crate::history::{DEFAULT_HISTORY, ProbeHistory};
use crate::prober::Prober;
use crate::results::{ResultUpdate, ResultsCache, WorkerKey};
use crate::spec::ProbeSpec;
use crate::types::{EventSink, ProbeResult, ProbeType};
use crate::worker::{
    self, AGENT_RESTART_GRACE, PodStatusView, WorkerConfig, WorkerHandle, WorkerParams,
};

/// Gives each container of a pod what its probers need from the agent: an exec runner (inside
/// the container, with its environment) and an event sink (involved object = the container).
pub trait ContainerContext: Send + Sync {
    /// The exec runner for `container`.
    fn exec_runner(&self, container: &Container) -> Arc<dyn ExecRunner>;
    /// The event sink for `container`.
    fn event_sink(&self, container: &Container) -> Arc<dyn EventSink>;
}

type StatusTx = watch::Sender<Option<Arc<PodStatusView>>>;

/// All probe workers of an agent.
pub struct ProbeManager {
    env: HandlerEnv,
    results: Arc<ResultsCache>,
    agent_started: Instant,
    agent_started_wall: SystemTime,
    history_capacity: usize,
    workers: Mutex<HashMap<WorkerKey, WorkerHandle>>,
    pods: Mutex<HashMap<Arc<str>, StatusTx>>,
}

impl std::fmt::Debug for ProbeManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeManager")
            .field("workers", &self.workers.lock().len())
            .finish_non_exhaustive()
    }
}

/// `name_namespace(uid)`, the kubelet's `format.Pod`.
pub fn format_pod(pod: &Pod) -> String {
    format!(
        "{}_{}({})",
        pod.metadata.name.as_deref().unwrap_or_default(),
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.uid.as_deref().unwrap_or_default()
    )
}

fn is_restartable_init(c: &Container) -> bool {
    c.restart_policy.as_deref() == Some("Always")
}

impl ProbeManager {
    /// A manager whose agent started now; returns the stream of result changes.
    pub fn new(env: HandlerEnv) -> (Self, crate::mailbox::Receiver<ResultUpdate>) {
        let (results, updates) = ResultsCache::new();
        let m = Self {
            env,
            results,
            agent_started: Instant::now(),
            agent_started_wall: SystemTime::now(),
            history_capacity: DEFAULT_HISTORY,
            workers: Mutex::new(HashMap::new()),
            pods: Mutex::new(HashMap::new()),
        };
        (m, updates)
    }

    /// Treats the agent as started `ago` before now (workers jitter their first probe only
    /// while the agent started less than one period ago).
    pub fn started_ago(mut self, ago: Duration) -> Self {
        self.agent_started = Instant::now()
            .checked_sub(ago)
            .unwrap_or(self.agent_started);
        self.agent_started_wall = SystemTime::now()
            .checked_sub(ago)
            .unwrap_or(self.agent_started_wall);
        self
    }

    /// Keeps `n` attempts per probe (default 100).
    pub fn with_history_capacity(mut self, n: usize) -> Self {
        self.history_capacity = n;
        self
    }

    /// The results cache (liveness, readiness and startup results per container ID).
    pub fn results(&self) -> &Arc<ResultsCache> {
        &self.results
    }

    fn status_rx(&self, uid: &Arc<str>) -> watch::Receiver<Option<Arc<PodStatusView>>> {
        self.pods
            .lock()
            .entry(uid.clone())
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// Publishes the agent's current status of a pod to its workers (read on every probe tick).
    pub fn set_pod_status(&self, pod_uid: &str, status: PodStatusView) {
        let uid: Arc<str> = Arc::from(pod_uid);
        let mut pods = self.pods.lock();
        let tx = pods.entry(uid).or_insert_with(|| watch::channel(None).0);
        tx.send_replace(Some(Arc::new(status)));
    }

    /// Starts the workers of a new pod (a pod already known keeps its workers: probes cannot be
    /// changed on a running pod).
    pub fn add_pod(&self, pod: &Pod, ctx: &dyn ContainerContext) {
        let Some(spec) = &pod.spec else { return };
        let uid: Arc<str> = Arc::from(pod.metadata.uid.as_deref().unwrap_or_default());
        let pod_desc = format_pod(pod);
        let sidecars = spec
            .init_containers
            .iter()
            .flatten()
            .filter(|c| is_restartable_init(c))
            .map(|c| (c, true));
        let containers = spec.containers.iter().map(|c| (c, false));
        let mut workers = self.workers.lock();
        for (c, restartable_init) in containers.chain(sidecars) {
            let probes = [
                (ProbeType::Startup, &c.startup_probe),
                (ProbeType::Readiness, &c.readiness_probe),
                (ProbeType::Liveness, &c.liveness_probe),
            ];
            for (ty, probe) in probes {
                let Some(probe) = probe else { continue };
                let key = WorkerKey {
                    pod_uid: uid.clone(),
                    container: Arc::from(c.name.as_str()),
                    probe_type: ty,
                };
                if workers.get(&key).is_some_and(|w| !w.is_finished()) {
                    continue;
                }
                let spec = Arc::new(ProbeSpec::new(ty, probe, c, &pod_desc));
                let config = WorkerConfig::from_spec(&spec, restartable_init, self.agent_started);
                let period = spec.period;
                let prober = Prober::new(
                    spec,
                    self.env.clone(),
                    ctx.exec_runner(c),
                    ctx.event_sink(c),
                );
                let handle = worker::spawn(WorkerParams {
                    key: key.clone(),
                    config,
                    period,
                    status: self.status_rx(&uid),
                    runner: Arc::new(prober),
                    results: self.results.clone(),
                    history: Arc::new(ProbeHistory::new(self.history_capacity)),
                });
                workers.insert(key, handle);
            }
        }
    }

    fn stop_where(&self, pred: impl Fn(&WorkerKey) -> bool) {
        let mut workers = self.workers.lock();
        workers.retain(|k, w| {
            if pred(k) {
                w.stop();
                false
            } else {
                !w.is_finished()
            }
        });
    }

    /// Stops the liveness and startup workers of a terminating pod's regular containers;
    /// readiness keeps probing through the grace period.
    pub fn stop_liveness_and_startup(&self, pod: &Pod) {
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        let regular: HashSet<&str> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter().map(|c| c.name.as_str()))
            .collect();
        self.stop_where(|k| {
            &*k.pod_uid == uid
                && regular.contains(&*k.container)
                && matches!(k.probe_type, ProbeType::Liveness | ProbeType::Startup)
        });
    }

    /// Stops every worker of a removed pod and forgets its status.
    pub fn remove_pod(&self, pod_uid: &str) {
        self.stop_where(|k| &*k.pod_uid == pod_uid);
        self.pods.lock().remove(pod_uid);
    }

    /// Stops the workers of every pod not in `desired` (pod UIDs).
    pub fn cleanup_pods(&self, desired: &HashSet<String>) {
        self.stop_where(|k| !desired.contains(&*k.pod_uid));
        self.pods.lock().retain(|uid, _| desired.contains(&**uid));
    }

    /// The attempts of one worker.
    pub fn history(
        &self,
        pod_uid: &str,
        container: &str,
        probe_type: ProbeType,
    ) -> Option<Arc<ProbeHistory>> {
        let key = WorkerKey {
            pod_uid: Arc::from(pod_uid),
            container: Arc::from(container),
            probe_type,
        };
        self.workers.lock().get(&key).map(|w| w.history().clone())
    }

    fn worker_exists(&self, pod_uid: &str, container: &str, probe_type: ProbeType) -> bool {
        let key = WorkerKey {
            pod_uid: Arc::from(pod_uid),
            container: Arc::from(container),
            probe_type,
        };
        self.workers
            .lock()
            .get(&key)
            .is_some_and(|w| !w.is_finished())
    }

    fn trigger_readiness(&self, pod_uid: &str, container: &str) {
        let key = WorkerKey {
            pod_uid: Arc::from(pod_uid),
            container: Arc::from(container),
            probe_type: ProbeType::Readiness,
        };
        if let Some(w) = self.workers.lock().get(&key) {
            w.trigger();
        }
    }

    /// `isContainerStarted`.
    fn is_started(&self, uid: &str, cs: &ContainerStatus) -> bool {
        let running = cs.state.as_ref().is_some_and(|s| s.running.is_some());
        if !running {
            return false;
        }
        if let Some(r) = self.results.get(
            ProbeType::Startup,
            cs.container_id.as_deref().unwrap_or_default(),
        ) {
            return r == ProbeResult::Success;
        }
        // ChangeContainerStatusOnKubeletRestart is off by default in 1.35.
        if cs.started == Some(true) {
            return true;
        }
        !self.worker_exists(uid, &cs.name, ProbeType::Startup)
    }

    /// Whether a container started before the agent (minus the grace) keeps `ready`
    /// (`setReadyStateOnKubeletRestart`).
    fn ready_on_agent_restart(
        &self,
        pod: &Pod,
        cs: &ContainerStatus,
        spec: &Container,
        ready: bool,
    ) -> bool {
        let started_at = cs
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|r| r.started_at.as_ref())
            .and_then(|t| {
                let secs = u64::try_from(t.0.as_second()).ok()?;
                Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            });
        let limit = self.agent_started_wall.checked_sub(AGENT_RESTART_GRACE);
        let (Some(started_at), Some(limit)) = (started_at, limit) else {
            return ready;
        };
        if started_at >= limit {
            return ready;
        }
        let mut ready = ready;
        if !ready
            && self
                .results
                .get(
                    ProbeType::Readiness,
                    cs.container_id.as_deref().unwrap_or_default(),
                )
                .is_none()
        {
            ready = true;
        }
        if spec.readiness_probe.is_some() {
            let pod_ready = pod
                .status
                .iter()
                .flat_map(|s| s.conditions.iter().flatten())
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if !pod_ready {
                ready = false;
            }
        }
        ready
    }

    fn ready(&self, pod: &Pod, uid: &str, cs: &ContainerStatus, spec: Option<&Container>) -> bool {
        let running = cs.state.as_ref().is_some_and(|s| s.running.is_some());
        if !running {
            return false;
        }
        let id = cs.container_id.as_deref().unwrap_or_default();
        if self.results.get(ProbeType::Readiness, id) == Some(ProbeResult::Success) {
            return true;
        }
        let exists = self.worker_exists(uid, &cs.name, ProbeType::Readiness);
        if exists {
            self.trigger_readiness(uid, &cs.name);
        }
        let ready = !exists;
        match spec {
            Some(spec) => self.ready_on_agent_restart(pod, cs, spec, ready),
            None => ready,
        }
    }

    /// Sets `started` and `ready` of every container status of `pod` as the kubelet's
    /// `UpdatePodStatus` does, triggering a readiness probe for started containers not yet ready.
    pub fn update_pod_status(&self, pod: &Pod, status: &mut PodStatus) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        for cs in status.container_statuses.iter_mut().flatten() {
            let started = self.is_started(&uid, cs);
            cs.started = Some(started);
            if !started {
                continue;
            }
            let c = spec.and_then(|s| s.containers.iter().find(|c| c.name == cs.name));
            cs.ready = self.ready(pod, &uid, cs, c);
        }
        for cs in status.init_container_statuses.iter_mut().flatten() {
            let started = self.is_started(&uid, cs);
            cs.started = Some(started);
            let c = spec.and_then(|s| {
                s.init_containers
                    .iter()
                    .flatten()
                    .find(|c| c.name == cs.name)
            });
            let Some(c) = c else { continue };
            if !is_restartable_init(c) {
                let exited_ok = cs
                    .state
                    .as_ref()
                    .and_then(|s| s.terminated.as_ref())
                    .is_some_and(|t| t.exit_code == 0);
                if exited_ok {
                    cs.ready = true;
                }
                continue;
            }
            if !started {
                continue;
            }
            cs.ready = self.ready(pod, &uid, cs, Some(c));
        }
    }

    /// Number of live workers.
    pub fn worker_count(&self) -> usize {
        self.workers
            .lock()
            .values()
            .filter(|w| !w.is_finished())
            .count()
    }
}

/// Converts a wall-clock `startedAt` into the tokio clock, for [`crate::ContainerState::Running`].
pub fn started_at_instant(started_at: SystemTime) -> Instant {
    let ago = SystemTime::now()
        .duration_since(started_at)
        .unwrap_or(Duration::ZERO);
    Instant::now().checked_sub(ago).unwrap_or_else(Instant::now)
}

#[cfg(test)]
mod tests;
