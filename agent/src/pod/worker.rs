//! The tokio driver of one pod: runs [`plan`] on every event (pod update, container exit,
//! probe result change, back-off expiry, a 10 s resync), carries out its actions through the
//! runtime, and pushes the status derived from the state when it changed.
//!
//! Some of those syncs are what the kubelet calls pod syncs, and only these run readiness
//! probes early (one trigger per pod sync, as `UpdatePodStatus`). They are paced as the
//! kubelet's (see [`PLEG_RELIST`]): a container is probed by the pod sync that follows its
//! start, and again by the one its first result causes, a relist later — not in a burst.
//!
//! Kills run as tasks so the worker keeps serving probe results while a container shuts down
//! (readiness keeps being reported during termination). Probe workers (one per container ×
//! probe type, from the `probe` crate) read the pod status through a `watch` channel the
//! driver updates after every sync, and report through a per-pod [`ResultsCache`].
//!
//! Start at [`PodWorker::spawn`] and the driver's `sync_once`. The probe wiring is in
//! `worker/probes.rs`, lifecycle hooks in `worker/hooks.rs`; status goes out through
//! [`super::status_writer`] and container instances are published in [`super::directory`],
//! after each sync, by `worker/publish.rs`.
//!
//! Why ~900 lines: what is left is the driver's sync loop and the actions it carries out
//! (sandbox, start, kill, finish), which share the driver's state and its ordering rules; the
//! separable concepts (probes, hooks, publication) are in `worker/`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use parking_lot::Mutex;
use probe::mailbox;
use probe::{HandlerEnv, ProbeType, ResultsCache};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until};

use super::admit;
use super::config::{self, NodeFacts, Objects};
use super::directory::{ContainerEntry, Directory, PodEntry};
use super::model::{ExitInfo, Instance, KillReason, PodState, SpecRef};
use super::plan::{Action, plan};
use super::port_error::PortError;
use super::status::{self, StatusInputs};
use super::status_writer::StatusWriter;
use crate::events::{EventRecorder, EventType, ObjectRef};
use crate::routing::{PodEndpoint, RouteState, Routing};
use crate::runtime::{ContainerId, Exited, Recovered, Runtime, SandboxConfig};

mod hooks;
mod probes;
mod publish;

use probes::PodProbes;
use publish::Written;

/// How often a pod is synced without any event (the status manager's `syncPeriod`).
pub const RESYNC: Duration = Duration::from_secs(10);
/// Retry delay after a failed sandbox creation, mount or container configuration.
pub const RETRY: Duration = Duration::from_secs(10);
/// The smallest grace period a kill gets (`minimumGracePeriodInSeconds`).
pub const MIN_GRACE: Duration = crate::runtime::MIN_KILL_GRACE;

/// What every pod worker shares.
#[derive(Clone)]
pub struct Shared {
    /// The container runtime.
    pub runtime: Arc<dyn Runtime>,
    /// Status writes and pod removal.
    pub status: Arc<dyn StatusWriter>,
    /// ConfigMaps and Secrets.
    pub objects: Arc<dyn Objects>,
    /// Events.
    pub events: EventRecorder,
    /// Node facts for env and volumes.
    pub node: NodeFacts,
    /// Probe handler environment.
    pub handler_env: HandlerEnv,
    /// When the agent started (probe jitter, adoption).
    pub agent_started: Instant,
    /// Running containers by pod, for logs and exec.
    pub directory: Arc<Directory>,
    /// The in-process fast path into a local service proxy (readiness, draining before a
    /// kill); see [`crate::routing`].
    pub routing: Routing,
    /// Running containers from images (`None`: this node runs host processes only).
    pub images: Option<Arc<crate::images::NodeImages>>,
    /// The handler of pods without a RuntimeClass (`host` or `runc`).
    pub default_runtime: String,
    /// The node's cluster DNS (`--cluster-dns`, `--cluster-domain`) for pods' `resolv.conf`.
    pub cluster_dns: crate::pod::dns::ClusterDns,
    /// The node's metrics (probe attempts).
    pub metrics: Arc<crate::metrics::AgentMetrics>,
}

/// How the kubelet's `rejectPod` starts a rejected pod's status message.
const REJECTED_PREFIX: &str = "Pod was rejected: ";

/// Messages from the pod manager.
#[derive(Debug)]
pub enum PodMsg {
    /// A new version of the pod object.
    Update(Arc<Pod>),
    /// The pod object is gone from the API.
    Removed,
}

#[derive(Debug)]
enum Internal {
    Exited(ContainerId, Exited),
    Killed(ContainerId),
}

/// A running pod worker.
#[derive(Debug)]
pub struct PodWorker {
    tx: mailbox::Sender<PodMsg>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWorker {
    /// Starts the worker of `pod`; `adopt` is what a previous agent run left of it.
    pub fn spawn(shared: Shared, pod: Arc<Pod>, adopt: Option<Recovered>) -> Self {
        let (tx, rx) = mailbox::channel();
        let task = tokio::spawn(run(shared, pod, adopt, rx));
        Self { tx, task }
    }

    /// Sends a message; false when the worker has finished. Dropping the worker detaches it:
    /// it stops its probes and leaves the containers running.
    /// A pod version still queued is replaced by a newer one (only the newest is synced; a
    /// busy node's workers would otherwise hold every version in between).
    pub fn send(&self, msg: PodMsg) -> bool {
        let update = matches!(msg, PodMsg::Update(_));
        self.tx
            .send_replacing(msg, |last| update && matches!(last, PodMsg::Update(_)))
            .is_ok()
    }

    /// Whether the worker finished.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits for the worker to finish.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// How often token-carrying projected volumes are resolved again (the kubelet's volume
/// manager remounts a pod's volumes about once a minute).
const TOKEN_VOLUME_SYNC: Duration = Duration::from_secs(60);

struct Driver {
    shared: Shared,
    state: PodState,
    probes: PodProbes,
    view: watch::Sender<Option<Arc<probe::PodStatusView>>>,
    internal: mailbox::Sender<Internal>,
    current: HashMap<String, Arc<Mutex<Option<ContainerId>>>>,
    last_status: Option<Written>,
    requeue: Option<Instant>,
    /// When the pod's service account token volumes are next resolved and rewritten.
    token_refresh_at: Option<Instant>,
    sandbox_stopped: bool,
    done: bool,
    /// This sync is the periodic resync (no event woke the worker).
    resync: bool,
    /// Something the kubelet runs a pod sync for (`SyncPod`: a spec change, a container event,
    /// a probe result, a requeue, or the minutely resync [`POD_SYNC`]) happened, as opposed to
    /// the status manager's 10 s reconciliation or the echo of our own status write. Only a pod
    /// sync triggers readiness probes early; otherwise every status write would.
    pod_sync: bool,
    /// Whether the sync running now is a pod sync (image pulls are retried only in one).
    in_pod_sync: bool,
    /// When the last pod sync ended.
    last_pod_sync: Option<Instant>,
    /// The earliest the next pod sync may run ([`PLEG_RELIST`]); until then, a wanted pod sync
    /// waits and the syncs in between are plain ones.
    pod_sync_not_before: Option<Instant>,
    /// This sync started a container, which the kubelet's PLEG reports (`ContainerStarted`): a
    /// pod sync follows.
    started: bool,
    /// When the oldest probe result not yet published arrived: the start of the
    /// readiness→routing latency the next publish measures.
    probe_result_at: Option<Instant>,
    /// The API's status of the pod is exactly our last write: its copy was dropped from
    /// `state.pod` (an idle pod's status is otherwise kept twice), `last_status` stands for it.
    api_status_ours: bool,
}

/// The kubelet's `--sync-frequency` (pod syncs without any event).
pub const POD_SYNC: Duration = Duration::from_secs(60);

/// The kubelet's PLEG relist period (`genericPlegRelistPeriod`). A kubelet pod sync first waits
/// for a pod status the PLEG refreshed after the previous sync ended (`podCache.GetNewerThan` in
/// pod_workers.go), so every pod sync but a pod's first runs at a relist, at least one relist
/// after the one before; and a container a sync starts is seen by the next. Here a pod sync
/// runs at the earliest moment a kubelet's could: the one after the pod's first sync at once,
/// every later one no sooner than this after the previous one began (and not before it ended).
pub const PLEG_RELIST: Duration = Duration::from_secs(1);

/// Whether an API update of the pod is more than its status (the kubelet's pod config only
/// sends those to `SyncPod`; a status-only change is a reconcile, which syncs only when
/// readiness gates may need it — `NeedToReconcilePodReadiness`).
fn needs_pod_sync(old: &Pod, new: &Pod) -> bool {
    let meta = |p: &Pod| {
        let mut m = p.metadata.clone();
        m.resource_version = None;
        m.managed_fields = None;
        m
    };
    old.spec != new.spec
        || meta(old) != meta(new)
        || new
            .spec
            .as_ref()
            .is_some_and(|s| s.readiness_gates.as_ref().is_some_and(|g| !g.is_empty()))
}

async fn run(
    shared: Shared,
    pod: Arc<Pod>,
    adopt: Option<Recovered>,
    mut rx: mailbox::Receiver<PodMsg>,
) {
    let (results, mut results_rx) = ResultsCache::new();
    let (view, _) = watch::channel(None);
    let (internal, mut internal_rx) = mailbox::channel();
    let mut state = PodState::new(pod.clone());
    state.start_time = pod
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map(|t| t.0)
        .or_else(|| Some(Timestamp::now()));
    if let Some(p) = pod.status.as_ref().and_then(|s| s.phase.as_deref())
        && (p == "Succeeded" || p == "Failed")
    {
        state.terminal_phase = Some(if p == "Succeeded" {
            "Succeeded"
        } else {
            "Failed"
        });
        // A pod-level verdict stays as written (an agent restart must not rewrite it).
        let st = pod.status.as_ref();
        if let (Some(r), Some(m)) = (
            st.and_then(|s| s.reason.clone()),
            st.and_then(|s| s.message.clone()),
        ) {
            state.rejected = m.starts_with(REJECTED_PREFIX);
            state.failure = Some((r, m));
        }
    }
    let mut d = Driver {
        shared,
        state,
        probes: PodProbes {
            results,
            workers: HashMap::new(),
        },
        view,
        internal,
        current: HashMap::new(),
        last_status: pod.status.as_ref().map(Written::new),
        requeue: None,
        token_refresh_at: None,
        sandbox_stopped: false,
        done: false,
        resync: false,
        pod_sync: true,
        in_pod_sync: false,
        last_pod_sync: None,
        pod_sync_not_before: None,
        probe_result_at: None,
        started: false,
        api_status_ours: false,
    };
    // Held to the end of this function otherwise: the first version of the pod would stay in
    // memory next to the current one for the pod's whole life.
    drop(pod);
    if adopt.is_none() {
        d.admit();
    }
    if let Some(r) = adopt {
        d.adopt(r);
    }
    d.start_probe_workers();
    // The sync and event futures are boxed: they are big (container starts, status writes) but
    // short-lived, and inline they would make every idle pod's task carry their size.
    loop {
        let began = Instant::now();
        let pod_sync = d.pod_sync && d.pod_sync_not_before.is_none_or(|t| t <= began);
        // What this pod sync sees running (`UpdatePodStatus` runs as the sync generates the
        // status, before its actions): a container it starts is the next one's.
        let seen = if pod_sync {
            d.pod_sync = false;
            d.running()
        } else {
            Vec::new()
        };
        d.in_pod_sync = pod_sync;
        Box::pin(d.sync()).await;
        d.in_pod_sync = false;
        if pod_sync {
            // After the sync, once the probe view says what its results changed (a startup
            // success: started), as the kubelet's status cache does before it syncs.
            if !d.done {
                d.trigger_readiness(&seen);
            }
            let ended = Instant::now();
            d.pod_sync_not_before = d.last_pod_sync.map(|_| (began + PLEG_RELIST).max(ended));
            d.last_pod_sync = Some(ended);
        }
        d.pod_sync |= std::mem::take(&mut d.started);
        d.resync = false;
        if d.done {
            break;
        }
        let now = Instant::now();
        let pod_sync_at = d
            .pod_sync
            .then(|| d.pod_sync_not_before.unwrap_or(now).max(now));
        let wake = d
            .requeue
            .into_iter()
            .chain(pod_sync_at)
            .fold(now + RESYNC, Instant::min);
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(msg) => d.message(msg),
                // The manager is gone (agent detached): leave the containers running for the
                // next agent to adopt.
                None => break,
            },
            Some(ev) = internal_rx.recv() => {
                d.pod_sync = true;
                Box::pin(d.internal(ev)).await;
            }
            Some(_) = results_rx.recv() => {
                d.pod_sync = true;
                d.probe_result_at.get_or_insert_with(Instant::now);
            }
            _ = sleep_until(wake) => {
                let now = Instant::now();
                let requeued = d.requeue.is_some_and(|r| r <= now);
                let pod_sync_due = d.pod_sync
                    && d.pod_sync_not_before.is_none_or(|t| t <= now);
                d.resync = !requeued && !pod_sync_due;
                d.pod_sync |= requeued || d.last_pod_sync.is_none_or(|t| t + POD_SYNC <= now);
                d.requeue = None;
            }
        }
        // Take everything that is already queued before syncing again.
        while let Ok(ev) = internal_rx.try_recv() {
            d.pod_sync = true;
            Box::pin(d.internal(ev)).await;
        }
        while let Ok(msg) = rx.try_recv() {
            d.message(msg);
        }
        while results_rx.try_recv().is_ok() {
            d.pod_sync = true;
            d.probe_result_at.get_or_insert_with(Instant::now);
        }
    }
    for (_, w) in d.probes.workers.drain() {
        w.stop();
    }
    if d.done {
        d.shared
            .routing
            .forget(d.state.pod.metadata.uid.as_deref().unwrap_or(""));
    }
    let m = &d.state.pod.metadata;
    d.shared.directory.remove(
        m.namespace.as_deref().unwrap_or(""),
        m.name.as_deref().unwrap_or(""),
        m.uid.as_deref().unwrap_or(""),
    );
}

fn kill_message(c: Option<SpecRef<'_>>, name: &str, reason: KillReason, restart: bool) -> String {
    let who = if c.is_some_and(|c| c.init) {
        "Init container"
    } else {
        "Container"
    };
    let suffix = if restart { ", will be restarted" } else { "" };
    match reason {
        KillReason::Liveness => format!("{who} {name} failed liveness probe{suffix}"),
        KillReason::Startup => format!("{who} {name} failed startup probe{suffix}"),
        KillReason::PostStartHook => "FailedPostStartHook".to_string(),
        KillReason::DefinitionChanged => format!("{who} {name} definition changed{suffix}"),
        KillReason::Stop => format!("Stopping container {name}"),
    }
}

impl Driver {
    /// The running container instances.
    fn running(&self) -> Vec<ContainerId> {
        self.state
            .containers()
            .iter()
            .filter_map(|c| self.state.latest(&c.container.name))
            .filter(|i| i.running())
            .map(|i| i.id.clone())
            .collect()
    }

    /// Takes a message from the pod manager.
    fn message(&mut self, msg: PodMsg) {
        match msg {
            PodMsg::Update(mut p) => {
                self.pod_sync |= needs_pod_sync(&self.state.pod, &p);
                self.api_status_ours = p
                    .status
                    .as_ref()
                    .zip(self.last_status.as_ref())
                    .is_some_and(|(api, ours)| ours.is(api));
                if self.api_status_ours {
                    Arc::make_mut(&mut p).status = None;
                }
                self.state.set_pod(p);
            }
            PodMsg::Removed => {
                self.pod_sync = true;
                self.state.removed = true;
            }
        }
    }

    fn pod(&self) -> Arc<Pod> {
        self.state.pod.clone()
    }

    fn container_ref(&self, name: &str) -> ObjectRef {
        let init = self.state.spec_of(name).is_some_and(|c| c.init);
        ObjectRef::container(&self.state.pod, name, init)
    }

    fn event(&self, name: Option<&str>, kind: EventType, reason: &str, message: String) {
        let obj = match name {
            Some(n) => self.container_ref(n),
            None => ObjectRef::pod(&self.state.pod),
        };
        self.shared.events.record(&obj, kind, reason, message);
    }

    fn current_slot(&mut self, name: &str) -> Arc<Mutex<Option<ContainerId>>> {
        self.current
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Mutex::new(None)))
            .clone()
    }

    fn watch_exit(&self, id: ContainerId) {
        let rt = self.shared.runtime.clone();
        let tx = self.internal.clone();
        tokio::spawn(async move {
            let ex = rt.wait_container(&id).await;
            let _ = tx.send(Internal::Exited(id, ex));
        });
    }

    fn adopt(&mut self, r: Recovered) {
        self.state.sandbox = Some(r.sandbox);
        // Its namespaces are gone (the machine rebooted, or its holder was killed while no
        // agent ran): the first sync re-creates it (`SandboxChanged`).
        self.state.sandbox_ready = r.alive;
        self.state.sandbox_attempt = r.attempt;
        let now = Instant::now();
        let limit = self
            .shared
            .agent_started
            .checked_sub(probe::worker::AGENT_RESTART_GRACE);
        let status = self.state.pod.status.clone().unwrap_or_default();
        let pod_ready = status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        for cs in status
            .container_statuses
            .iter()
            .flatten()
            .chain(status.init_container_statuses.iter().flatten())
        {
            self.state.prior.insert(
                cs.name.clone(),
                (cs.ready && pod_ready, cs.started == Some(true)),
            );
            if !cs.image_id.is_empty() {
                self.state
                    .images
                    .insert(cs.name.clone(), (cs.image.clone(), cs.image_id.clone()));
            }
        }
        self.lost_containers(&status, &r.containers);
        for c in r.containers {
            let age = SystemTime::now()
                .duration_since(c.started_at)
                .unwrap_or_default();
            let started = now.checked_sub(age).unwrap_or(now);
            let inst = Instance {
                id: c.id.clone(),
                restart_count: c.restart_count,
                started_at: Some(c.started_at),
                started,
                exit: None,
                adopted: limit.is_some_and(|l| started < l),
                spec_hash: None,
            };
            *self.current_slot(&c.name).lock() = Some(c.id.clone());
            self.state.push_instance(&c.name, inst);
            self.watch_exit(c.id);
        }
    }

    /// Containers the API says were running but that no longer exist (they died while no agent
    /// ran): an instance that ended as `ContainerStatusUnknown` stands for each, so the status
    /// shows it in `lastState` and its restart follows on its count — what the kubelet's
    /// `convertToAPIContainerStatuses` infers for a container that "could not be located".
    fn lost_containers(
        &mut self,
        status: &PodStatus,
        found: &[crate::runtime::RecoveredContainer],
    ) {
        let now = Instant::now();
        for cs in status
            .container_statuses
            .iter()
            .flatten()
            .chain(status.init_container_statuses.iter().flatten())
            .chain(status.ephemeral_container_statuses.iter().flatten())
        {
            let ephemeral = status
                .ephemeral_container_statuses
                .iter()
                .flatten()
                .any(|e| e.name == cs.name);
            if ephemeral
                && !found.iter().any(|c| c.name == cs.name)
                && let Some(t) = cs.state.as_ref().and_then(|s| s.terminated.as_ref())
            {
                // An ephemeral container that ended runs no more: keep its end.
                self.state.push_instance(
                    &cs.name,
                    Instance {
                        id: ContainerId(format!("{}-ended", cs.name)),
                        restart_count: 0,
                        started_at: t.started_at.as_ref().map(|t| SystemTime::from(t.0)),
                        started: now,
                        exit: Some(ExitInfo {
                            exit_code: t.exit_code,
                            reason: t.reason.clone().unwrap_or_default(),
                            message: t.message.clone(),
                            finished_at: t
                                .finished_at
                                .as_ref()
                                .map_or_else(SystemTime::now, |f| SystemTime::from(f.0)),
                            finished: now,
                        }),
                        adopted: false,
                        spec_hash: None,
                    },
                );
                continue;
            }
            let Some(running) = cs.state.as_ref().and_then(|s| s.running.as_ref()) else {
                continue;
            };
            if found.iter().any(|c| c.name == cs.name) || self.state.spec_of(&cs.name).is_none() {
                continue;
            }
            let id = cs
                .container_id
                .as_deref()
                .and_then(|i| i.strip_prefix(super::model::ID_PREFIX))
                .map_or_else(|| format!("{}-lost", cs.name), str::to_string);
            let started_at = running.started_at.as_ref().map(|t| SystemTime::from(t.0));
            self.state.push_instance(
                &cs.name,
                Instance {
                    id: ContainerId(id),
                    restart_count: cs.restart_count,
                    started_at,
                    started: now,
                    exit: Some(ExitInfo {
                        exit_code: 137,
                        reason: "ContainerStatusUnknown".into(),
                        message: Some(
                            "The container could not be located when the pod was terminated".into(),
                        ),
                        finished_at: SystemTime::now(),
                        finished: now,
                    }),
                    adopted: false,
                    spec_hash: None,
                },
            );
        }
    }

    /// Whether the sandbox is still whole; asked at pod syncs (the kubelet's PLEG relist sees a
    /// sandbox that is no longer ready).
    async fn check_sandbox(&mut self) {
        if !self.in_pod_sync || !self.state.sandbox_ready || self.sandbox_stopped {
            return;
        }
        let Some(sb) = self.state.sandbox.clone() else {
            return;
        };
        if !self.shared.runtime.sandbox_ready(&sb).await {
            tracing::info!(pod = %self.state.format_pod(), sandbox = %sb.id, "the pod's sandbox is gone");
            self.state.sandbox_ready = false;
        }
    }

    async fn internal(&mut self, ev: Internal) {
        match ev {
            // The runtime's message already holds the termination log (or the log tail).
            Internal::Exited(id, ex) => {
                self.state.killing.remove(&id);
                if let Some(inst) = self.state.instance_mut(&id)
                    && inst.exit.is_none()
                {
                    inst.exit = Some(ExitInfo {
                        exit_code: ex.exit_code,
                        reason: ex.reason,
                        message: ex.message,
                        finished_at: ex.finished_at,
                        finished: Instant::now(),
                    });
                }
                for slot in self.current.values() {
                    let mut s = slot.lock();
                    if s.as_ref() == Some(&id) {
                        *s = None;
                    }
                }
            }
            Internal::Killed(id) => {
                // The exit arrives through the waiter; nothing else to do.
                tracing::debug!(%id, "kill finished");
            }
        }
    }

    fn requeue_in(&mut self, d: Duration) {
        let at = Instant::now() + d;
        self.requeue = Some(self.requeue.map_or(at, |r| r.min(at)));
    }

    async fn sync(&mut self) {
        // Creating the sandbox or starting a sidecar lets the next step go at once (one
        // kubelet `SyncPod` creates the sandbox and starts containers together; a started
        // sidecar lets the next init container start at the following sync), so plan again
        // while something was started, a bounded number of rounds.
        let rounds = self.state.containers().len() + 2;
        for _ in 0..rounds {
            if !self.sync_once().await || self.done {
                break;
            }
        }
        self.refresh_token_volumes().await;
    }

    /// The kubelet's periodic remount of projected volumes, for those with service account
    /// tokens: every [`TOKEN_VOLUME_SYNC`] they are resolved again (the token manager hands
    /// out a new token once the old one is 80 % through its life) and rewritten in place.
    async fn refresh_token_volumes(&mut self) {
        let Some(sandbox) = self.state.sandbox.clone() else {
            self.token_refresh_at = None;
            return;
        };
        if self.done {
            return;
        }
        let now = Instant::now();
        match self.token_refresh_at {
            // The sandbox was just made with fresh content.
            None => {
                self.token_refresh_at = Some(now + TOKEN_VOLUME_SYNC);
                return;
            }
            Some(at) if now < at => return,
            Some(_) => {}
        }
        self.token_refresh_at = Some(now + TOKEN_VOLUME_SYNC);
        let pod = self.pod();
        let vols = match config::token_volumes(
            &*self.shared.objects,
            &pod,
            &sandbox.pod_ip.to_string(),
            &self.shared.node,
        )
        .await
        {
            Ok(v) => v,
            Err(msg) => {
                self.event(None, EventType::Warning, "FailedMount", msg);
                self.requeue_in(TOKEN_VOLUME_SYNC);
                return;
            }
        };
        if vols.is_empty() {
            return;
        }
        self.requeue_in(TOKEN_VOLUME_SYNC);
        for v in vols {
            if let Err(e) = self.shared.runtime.update_volume(&sandbox, &v).await {
                self.event(
                    None,
                    EventType::Warning,
                    "FailedMount",
                    format!("MountVolume.SetUp failed for volume {:?} : {e}", v.name),
                );
            }
        }
    }

    /// The kubelet's admission of a pod new to this node: a rejected pod is `Failed` with
    /// the handler's reason, never runs, and gets a Warning event.
    fn admit(&mut self) {
        if self.state.terminal_phase.is_some() || self.state.deleting() {
            return;
        }
        if let Err((reason, message)) = admit::admit(&self.state.pod, self.shared.node.apparmor) {
            tracing::info!(pod = %self.state.format_pod(), %reason, %message, "pod rejected");
            self.event(None, EventType::Warning, &reason, message.clone());
            self.state.terminal_phase = Some("Failed");
            self.state.rejected = true;
            self.state.failure = Some((reason, format!("{REJECTED_PREFIX}{message}")));
        }
    }

    /// `activeDeadlineSeconds` (the kubelet's active deadline handler): past it, the pod is
    /// `Failed` with `DeadlineExceeded` and its containers are stopped; before it, a sync is
    /// due when it runs out.
    fn check_deadline(&mut self) {
        if self.state.terminal_phase.is_some() || self.state.deleting() {
            return;
        }
        let Some(left) =
            admit::deadline_left(&self.state.pod, self.state.start_time, Timestamp::now())
        else {
            return;
        };
        if left.is_zero() {
            self.event(
                None,
                EventType::Normal,
                admit::DEADLINE_REASON,
                admit::DEADLINE_MESSAGE.into(),
            );
            self.state.terminal_phase = Some("Failed");
            self.state.failure = Some((
                admit::DEADLINE_REASON.into(),
                admit::DEADLINE_MESSAGE.into(),
            ));
        } else {
            self.requeue_in(left);
        }
    }

    /// One plan and its actions; true when it created the sandbox or started a container.
    async fn sync_once(&mut self) -> bool {
        self.check_sandbox().await;
        self.check_deadline();
        let now = Instant::now();
        let p = plan(&self.state, &self.probes, now);
        if let Some(r) = p.requeue {
            self.requeue_in(r);
        }
        let mut progressed = false;
        for a in p.actions {
            match a {
                Action::CreateSandbox => {
                    self.create_sandbox().await;
                    progressed |= self.state.sandbox.is_some();
                }
                Action::Start { name } => {
                    if self.state.spec_of(&name).is_some_and(|c| !c.init) {
                        // The init containers ran again: regular containers start now.
                        self.state.reinit = false;
                    }
                    let before = self.state.latest(&name).map(|i| i.id.clone());
                    self.start(&name).await;
                    let after = self.state.latest(&name);
                    let started =
                        after.is_some_and(|i| i.running() && Some(&i.id) != before.as_ref());
                    self.started |= started;
                    progressed |= started;
                }
                Action::Kill {
                    id,
                    name,
                    reason,
                    restart,
                } => self.kill(id, &name, reason, restart),
                Action::BackOff {
                    name,
                    remaining: _,
                    message,
                } => {
                    self.state
                        .waiting
                        .insert(name.clone(), ("CrashLoopBackOff".into(), message));
                    let msg = format!(
                        "Back-off restarting failed container {name} in pod {}",
                        self.state.format_pod()
                    );
                    self.event(Some(&name), EventType::Warning, "BackOff", msg);
                }
                Action::StopLivenessAndStartup => {
                    for ((name, ty), w) in &self.probes.workers {
                        if matches!(ty, ProbeType::Liveness | ProbeType::Startup) {
                            w.stop();
                        }
                        self.state.quiet.insert(name.clone());
                    }
                    let names: Vec<String> = self
                        .state
                        .containers()
                        .iter()
                        .map(|c| c.container.name.clone())
                        .collect();
                    self.state.quiet.extend(names);
                }
                Action::StopSandbox => self.stop_sandbox().await,
                Action::Finish => {
                    self.finish().await;
                    return false;
                }
            }
        }
        self.publish().await;
        progressed
    }

    async fn stop_sandbox(&mut self) {
        if self.sandbox_stopped {
            return;
        }
        if let Some(sb) = &self.state.sandbox
            && let Err(e) = self.shared.runtime.stop_sandbox(sb).await
        {
            tracing::warn!(error = %e, pod = %self.state.format_pod(), "cannot stop sandbox");
        }
        self.sandbox_stopped = true;
    }

    async fn finish(&mut self) {
        for (_, w) in self.probes.workers.drain() {
            w.stop();
        }
        self.stop_sandbox().await;
        let uid = self.state.pod.metadata.uid.clone().unwrap_or_default();
        if let Some(images) = &self.shared.images {
            // Its containers (and their roots) are gone with the sandbox.
            let store = images.service.store().clone();
            let pinned = uid.clone();
            let unpinned = tokio::task::spawn_blocking(move || {
                if pinned.is_empty() {
                    return Ok(());
                }
                store.unpin(&pinned).map_err(|e| e.to_string())
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r);
            if let Err(e) = unpinned {
                tracing::warn!(error = %e, pod = %self.state.format_pod(), "cannot unpin the pod's images");
            }
            images.in_use.forget_pod(&uid);
        }
        if let Err(e) = self.shared.runtime.remove_pod_logs(&uid).await {
            tracing::warn!(error = %e, pod = %self.state.format_pod(), "cannot remove pod logs");
        }
        if !self.state.removed {
            let phase = status::phase(&self.state, &self.probes);
            self.state.terminal_phase = Some(phase);
            self.publish().await;
            let pod = self.pod();
            match self.shared.status.delete(&pod).await {
                // Gone already, or replaced by a pod of another UID: nothing left to remove.
                Ok(()) | Err(PortError::NotFound { .. } | PortError::Conflict { .. }) => {}
                Err(e) => {
                    tracing::warn!(error = %e, pod = %self.state.format_pod(), "cannot remove pod");
                    self.requeue_in(RETRY);
                    return;
                }
            }
        }
        self.done = true;
    }

    /// The sandbox's namespaces are gone: kills what is left of the pod and removes the old
    /// sandbox (SyncPod's "kill the pod if the sandbox has changed"); the caller makes the new
    /// one. Nothing in the old sandbox can be reached any more, so what is left gets no grace
    /// period. The init containers' instances go with it (`purgeInitContainers`): they run
    /// again, from the first.
    async fn replace_sandbox(&mut self, old: crate::runtime::Sandbox) {
        self.event(
            None,
            EventType::Normal,
            "SandboxChanged",
            "Pod sandbox changed, it will be killed and re-created.".into(),
        );
        tracing::info!(pod = %self.state.format_pod(), sandbox = %old.id, "stopping the pod's sandbox, will start a new one");
        for id in self.running() {
            if let Err(e) = self
                .shared
                .runtime
                .stop_container(&id, Duration::ZERO)
                .await
            {
                tracing::warn!(%id, error = %e, "cannot stop a container of a sandbox that is gone");
            }
        }
        if let Err(e) = self.shared.runtime.stop_sandbox(&old).await {
            tracing::warn!(error = %e, pod = %self.state.format_pod(), "cannot stop a sandbox that is gone");
        }
        let inits: Vec<String> = self
            .state
            .containers()
            .iter()
            .filter(|c| c.init)
            .map(|c| c.container.name.clone())
            .collect();
        self.state.reinit = !inits.is_empty();
        for name in inits {
            self.state.instances.remove(&name);
            if let Some(slot) = self.current.get(&name) {
                *slot.lock() = None;
            }
        }
        self.state.sandbox = None;
        self.state.sandbox_ready = true;
        self.state.sandbox_attempt += 1;
    }

    async fn create_sandbox(&mut self) {
        if let Some(old) = self.state.sandbox.clone()
            && !self.state.sandbox_ready
        {
            self.replace_sandbox(old).await;
        }
        let pod = self.pod();
        if let Err(msg) = self.handler(&pod).await {
            self.event(
                None,
                EventType::Warning,
                "FailedCreatePodSandBox",
                format!("Failed to create pod sandbox: {msg}"),
            );
            self.requeue_in(RETRY);
            return;
        }
        let vols = match config::volumes(
            &*self.shared.objects,
            &pod,
            &self.shared.node.host_ip.to_string(),
            &self.shared.node,
        )
        .await
        {
            Ok(v) => v,
            Err(msg) => {
                self.event(None, EventType::Warning, "FailedMount", msg);
                self.requeue_in(RETRY);
                return;
            }
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let name = pod.metadata.name.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let host_resolv_conf = read_host_resolv_conf().await;
        let (dns, dns_warnings) = crate::pod::dns::pod_dns(
            &spec,
            &namespace,
            &self.shared.cluster_dns,
            &host_resolv_conf,
        );
        for w in dns_warnings {
            self.event(None, EventType::Warning, "DNSConfigForming", w);
        }
        let cfg = SandboxConfig {
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: name.clone(),
            hostname: spec.hostname.clone().unwrap_or(name),
            host_network: spec.host_network == Some(true),
            volumes: vols,
            dns,
            extra_hosts: spec
                .host_aliases
                .iter()
                .flatten()
                .map(|h| (h.ip.clone(), h.hostnames.clone().unwrap_or_default()))
                .collect(),
            attempt: self.state.sandbox_attempt,
        };
        match self.shared.runtime.run_sandbox(&cfg).await {
            Ok(sb) => self.state.sandbox = Some(sb),
            Err(e) => {
                self.event(
                    None,
                    EventType::Warning,
                    "FailedCreatePodSandBox",
                    format!("Failed to create pod sandbox: {e}"),
                );
                self.requeue_in(RETRY);
            }
        }
    }

    async fn start(&mut self, name: &str) {
        let Some(sandbox) = self.state.sandbox.clone() else {
            return;
        };
        let Some(c) = self.state.spec_of(name).map(|c| c.container.clone()) else {
            return;
        };
        let now = Instant::now();
        self.state.force_restart.remove(name);
        let restart_count = match self.state.latest(name) {
            Some(i) => i.restart_count + 1,
            // No instance known (its record went with a reboot, or with the sandbox): the
            // count goes on from its log files, as the kubelet's does.
            None => {
                let uid = self.state.pod.metadata.uid.clone().unwrap_or_default();
                self.shared
                    .runtime
                    .restart_count_from_logs(&uid, name)
                    .await
            }
        };
        if let Some(exit) = self.state.latest(name).and_then(|i| i.exit.clone()) {
            self.state.backoff.advance(name, exit.finished, now);
        }
        let pod = self.pod();
        let pod_ip = sandbox.pod_ip.to_string();
        let from_image = match self.handler(&pod).await {
            Ok(h) => h == "runc",
            Err(msg) => {
                tracing::warn!(pod = %self.state.format_pod(), %msg, "runtime handler");
                self.requeue_in(RETRY);
                return;
            }
        };
        let built = config::container_config_for(
            &*self.shared.objects,
            &pod,
            &c,
            restart_count,
            &pod_ip,
            &self.shared.node,
            from_image,
        )
        .await;
        let mut cfg = match built {
            Ok((cfg, warnings)) => {
                for (reason, msg) in warnings {
                    self.event(None, EventType::Warning, &reason, msg);
                }
                cfg
            }
            Err(msg) => {
                self.config_error(name, msg);
                return;
            }
        };
        if from_image {
            match self.image_run(&pod, &c, &cfg).await {
                Some(run) => cfg.image_run = Some(Box::new(run)),
                None => return,
            }
        } else {
            // A host container has no image to pull: the kubelet's text for one present.
            self.event(
                Some(name),
                EventType::Normal,
                "Pulled",
                image::kubelet::already_present(&cfg.image),
            );
        }
        match self.shared.runtime.start_container(&sandbox, &cfg).await {
            Ok(started) => {
                self.state.waiting.remove(name);
                self.state.push_instance(
                    name,
                    Instance {
                        id: started.id.clone(),
                        restart_count,
                        started_at: Some(started.started_at),
                        started: Instant::now(),
                        exit: None,
                        adopted: false,
                        spec_hash: Some(super::model::spec_hash(&c)),
                    },
                );
                *self.current_slot(name).lock() = Some(started.id.clone());
                self.event(
                    Some(name),
                    EventType::Normal,
                    "Created",
                    format!("Created container: {name}"),
                );
                self.event(
                    Some(name),
                    EventType::Normal,
                    "Started",
                    format!("Started container {name}"),
                );
                self.watch_exit(started.id.clone());
                let limit = Duration::from_secs(
                    u64::try_from(self.grace_seconds(None)).unwrap_or(30).max(2),
                );
                if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref())
                    && let Err(msg) = self.hook_ctx(name).run(h, &started.id, &c, limit).await
                {
                    // Like the kubelet, the event does not carry the hook's output (it may
                    // hold secrets); the log does.
                    tracing::warn!(pod = %self.state.format_pod(), container = %name, %msg, "postStart hook failed");
                    self.event(
                        Some(name),
                        EventType::Warning,
                        "FailedPostStartHook",
                        "PostStartHook failed".into(),
                    );
                    self.kill(started.id, name, KillReason::PostStartHook, false);
                }
            }
            // Found while making its mounts (a subPath out of its volume): as the kubelet's
            // `makeMounts`, the container is not created.
            Err(e) if e.is_config_error() => self.config_error(name, e.to_string()),
            Err(e) => {
                let msg = e.to_string();
                let now_wall = SystemTime::now();
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                self.state.waiting.remove(name);
                self.state.push_instance(
                    name,
                    Instance {
                        id: ContainerId(format!("{uid}-{name}-{restart_count}-failed")),
                        restart_count,
                        started_at: None,
                        started: Instant::now(),
                        exit: Some(ExitInfo {
                            exit_code: 128,
                            reason: "StartError".into(),
                            message: Some(msg.clone()),
                            finished_at: now_wall,
                            finished: Instant::now(),
                        }),
                        adopted: false,
                        spec_hash: Some(super::model::spec_hash(&c)),
                    },
                );
                self.event(
                    Some(name),
                    EventType::Warning,
                    "Failed",
                    format!("Error: {msg}"),
                );
            }
        }
    }

    /// The container could not be configured: it waits with `CreateContainerConfigError`
    /// (no instance, no restart counted) and is tried again later, as the kubelet does.
    /// The pod's runtime handler with the node's default applied (`host` or `runc`).
    async fn handler(&self, pod: &Pod) -> Result<String, String> {
        let h = config::runtime_handler(&*self.shared.objects, pod).await?;
        config::effective_handler(
            &h,
            &self.shared.default_runtime,
            self.shared.images.is_some(),
        )
    }

    /// The pod's imagePullSecrets that exist (the kubelet warns about the others and pulls
    /// with what it found).
    async fn pull_secrets(&self, pod: &Pod) -> Vec<k8s_openapi::api::core::v1::Secret> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let refs = pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        let mut missing = false;
        for r in refs {
            match self.shared.objects.secret(&ns, &r.name).await {
                Ok(Some(s)) => out.push(s),
                _ => missing = true,
            }
        }
        if missing {
            self.event(
                None,
                EventType::Warning,
                "FailedToRetrieveImagePullSecret",
                "Unable to retrieve some image pull secrets; attempting to pull the image may not succeed.".into(),
            );
        }
        out
    }

    /// Makes sure the container's image is here (the image manager: events, waiting reasons,
    /// back-off) and builds how it runs; `None` when it cannot start now (the waiting reason
    /// is set and a retry queued).
    async fn image_run(
        &mut self,
        pod: &Pod,
        c: &k8s_openapi::api::core::v1::Container,
        cfg: &crate::runtime::ContainerConfig,
    ) -> Option<crate::runtime::ImageRun> {
        let name = c.name.clone();
        // The kubelet pulls within a pod sync only: the echo of our own status write (or the
        // status manager's reconciliation) does not retry a failed pull at once.
        if !self.in_pod_sync
            && self
                .state
                .waiting
                .get(&name)
                .is_some_and(|(r, _)| r == "ErrImagePull" || r == "ImagePullBackOff")
        {
            self.requeue_in(RETRY);
            return None;
        }
        let Some(images) = self.shared.images.clone() else {
            self.config_error(&name, "this node does not run images".into());
            return None;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let secrets = self.pull_secrets(pod).await;
        let ensured = images.manager.ensure(&uid, c, &secrets).await;
        for ev in ensured.events {
            self.event(Some(&name), ev.kind, ev.reason, ev.message);
        }
        if let Err((e, msg)) = ensured.result {
            self.state
                .waiting
                .insert(name.clone(), (e.reason().to_string(), msg));
            self.event(
                Some(&name),
                EventType::Warning,
                "Failed",
                format!("Error: {}", e.reason()),
            );
            self.requeue_in(RETRY);
            return None;
        }
        let image = c.image.clone().unwrap_or_default();
        let found = match images.service.resolve(&image).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                self.config_error(&name, format!("image {image:?} is not on the node"));
                return None;
            }
            Err(e) => {
                self.config_error(&name, e);
                return None;
            }
        };
        let (reference, record) = found;
        // In use (for the image GC) before pinned (for prunes): the agent's start-up
        // reconciliation of pins reads the pins first, then what is in use.
        images.in_use.add(&uid, &record.config.to_string());
        let store = images.service.store().clone();
        let rec = record.clone();
        let pin_as = uid.clone();
        let read = tokio::task::spawn_blocking(move || {
            // The layers stay while this pod's containers run from them, whatever removes
            // the image meanwhile (`paddock image rm`, the image GC of an agent restart).
            if !pin_as.is_empty() {
                store.pin(&pin_as, &rec).map_err(|e| e.to_string())?;
            }
            let files = super::image_run::read_image_files(&store, &rec);
            let mut layers = store.lower_dirs(&rec);
            layers.reverse();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            if let Err(e) = store.touch(&rec.config, now) {
                tracing::warn!(error = %e, "noting the image's use");
            }
            files.map(|f| (f, layers))
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        let ((config, passwd, group), layers) = match read {
            Ok(r) => r,
            Err(e) => {
                self.config_error(&name, e);
                return None;
            }
        };
        let built = super::image_run::build(
            pod,
            &self.state.format_pod(),
            c,
            &cfg.env,
            super::image_run::ImageInputs {
                record: &record,
                config: &config,
                layers,
                passwd,
                group,
                seccomp_root: &images.seccomp_root,
                memory_capacity: self.shared.node.memory,
            },
        );
        match built {
            Ok(run) => {
                self.state.images.insert(
                    name,
                    (
                        reference.to_string(),
                        image::kubelet::image_id(&reference, &record),
                    ),
                );
                Some(run)
            }
            // Neither the container nor its image names a command: containerd's CRI fails
            // CreateContainer while generating the spec (its `WithProcessArgs`), which the
            // kubelet reports as `CreateContainerError` with containerd's whole message.
            Err(msg) if msg == image::config::NO_COMMAND => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                let msg = format!(
                    "failed to generate container {id:?} spec: failed to generate spec: {msg}"
                );
                self.waiting_error(&name, "CreateContainerError", msg);
                None
            }
            Err(msg) => {
                self.config_error(&name, msg);
                None
            }
        }
    }

    fn config_error(&mut self, name: &str, msg: String) {
        self.waiting_error(name, "CreateContainerConfigError", msg);
    }

    /// The container was not created: it waits with `reason` (no instance, no restart
    /// counted) and is tried again later, as the kubelet does.
    fn waiting_error(&mut self, name: &str, reason: &str, msg: String) {
        self.state
            .waiting
            .insert(name.to_string(), (reason.into(), msg.clone()));
        self.event(
            Some(name),
            EventType::Warning,
            "Failed",
            format!("Error: {msg}"),
        );
        self.requeue_in(RETRY);
    }

    /// The grace period for a kill [kuberuntime_container.go `killContainer`].
    fn grace_seconds(&self, reason: Option<(KillReason, &str)>) -> i64 {
        let pod = &self.state.pod;
        if let Some(g) = pod.metadata.deletion_grace_period_seconds {
            return g;
        }
        let spec = pod.spec.as_ref();
        let mut g = spec
            .and_then(|s| s.termination_grace_period_seconds)
            .unwrap_or(30);
        if let Some((reason, name)) = reason
            && let Some(c) = self.state.spec_of(name)
        {
            let probe = match reason {
                KillReason::Liveness => c.container.liveness_probe.as_ref(),
                KillReason::Startup => c.container.startup_probe.as_ref(),
                _ => None,
            };
            if let Some(t) = probe.and_then(|p| p.termination_grace_period_seconds) {
                g = t;
            }
        }
        g
    }

    fn kill(&mut self, id: ContainerId, name: &str, reason: KillReason, restart: bool) {
        if self.state.killing.contains_key(&id) {
            return;
        }
        self.state.killing.insert(id.clone(), reason);
        if reason == KillReason::DefinitionChanged {
            self.state.force_restart.insert(name.to_string());
        }
        let spec = self.state.spec_of(name);
        let msg = kill_message(spec, name, reason, restart);
        self.event(Some(name), EventType::Normal, "Killing", msg);
        let grace = Duration::from_secs(
            u64::try_from(self.grace_seconds(Some((reason, name)))).unwrap_or(0),
        );
        let pre_stop = spec
            .and_then(|c| c.container.lifecycle.as_ref())
            .and_then(|l| l.pre_stop.clone());
        let container = spec.map(|c| c.container.clone());
        // No new connection may reach a process about to get SIGTERM: routing drains the pod
        // now, and the kill waits for the proxy's connections to it (bounded) first.
        let drain = self
            .pod_endpoint()
            .filter(|_| self.shared.routing.enabled());
        if let Some(ep) = &drain {
            self.shared.routing.set(ep, RouteState::Draining);
        }
        let routing = self.shared.routing.clone();
        let rt = self.shared.runtime.clone();
        let tx = self.internal.clone();
        // The hook needs `self`; run it through a detached copy of what it needs.
        let hook = match (pre_stop, container) {
            (Some(h), Some(c)) if !grace.is_zero() => Some((h, c)),
            _ => None,
        };
        let hook_ctx = hook.map(|(h, c)| (h, c, self.hook_ctx(name)));
        tokio::spawn(async move {
            let start = Instant::now();
            let drained_by = start + crate::routing::drain_limit(grace);
            if let Some((h, c, ctx)) = hook_ctx {
                let res = tokio::time::timeout(grace, ctx.run(&h, &id, &c, grace)).await;
                if let Ok(Err(msg)) = res {
                    tracing::warn!(pod = %ctx.pod, %msg, "preStop hook failed");
                    ctx.events.record(
                        &ctx.obj,
                        EventType::Warning,
                        "FailedPreStopHook",
                        "PreStopHook failed".into(),
                    );
                }
            }
            if let Some(ep) = &drain {
                routing.wait_drained(ep, drained_by).await;
            }
            let left = grace.saturating_sub(start.elapsed()).max(MIN_GRACE);
            if let Err(e) = rt.stop_container(&id, left).await {
                tracing::warn!(%id, error = %e, "cannot stop container");
            }
            let _ = tx.send(Internal::Killed(id));
        });
    }
}

/// The node's `/etc/resolv.conf` (the kubelet's `--resolv-conf`), at most
/// [`crate::pod::dns::MAX_RESOLV_CONF`] bytes; empty when unreadable.
async fn read_host_resolv_conf() -> String {
    use tokio::io::AsyncReadExt;
    let Ok(f) = tokio::fs::File::open("/etc/resolv.conf").await else {
        return String::new();
    };
    let mut bytes = Vec::new();
    let limit = u64::try_from(crate::pod::dns::MAX_RESOLV_CONF).unwrap_or(u64::MAX);
    if f.take(limit).read_to_end(&mut bytes).await.is_err() {
        return String::new();
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
