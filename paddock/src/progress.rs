//! `paddock up`'s progress: what happens to the applied workloads while they start and, on
//! Ctrl-C, while they stop, as `docker compose up` shows it. `--progress` picks the form
//! ([`Mode`]; `auto` is the live view on a terminal, plain lines otherwise):
//!
//! - **plain** (a pipe, a CI log): one line per change — a pod's state (scheduled, waiting
//!   with the kubelet's reason, running but not ready, ready, completed, restarts), probe
//!   failures as the kubelet reports them (`Unhealthy` events), a Deployment's ready count,
//!   where a Service can be reached — then `stopping: …` and `stopped`. No terminal control.
//!   [`run`] and [`Lines`] below.
//! - **tty**: one compact block redrawn in place: a row per workload (ready/desired, its pods'
//!   states, restarts, last probe failure), the Services' and Ingresses' addresses, and a
//!   footer that shows the stop's progress (pods left, then the control plane, then
//!   `stopped`). The state is [`model::Model`] (pure, tested there); the drawing is
//!   [`tty::View`]. Log lines are written around the block ([`LogWriter`]). No colour, so
//!   `NO_COLOR` holds by construction.
//! - **quiet** (`--quiet`): neither; only the kubeconfig line and the applied objects.
//!
//! Both watch through the API with a kube client of the server, like any client. Start at
//! [`Progress`].

mod model;
mod tty;

use std::collections::HashMap;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use kube::runtime::watcher;
use kube::{Api, Client, Resource, ResourceExt};
use tokio_util::sync::CancellationToken;

pub(crate) use model::ViewConfig;

/// A Service's `status.loadBalancer.ingress` addresses (IP, else hostname), for both views.
fn load_balancer_addresses(s: &Service) -> impl Iterator<Item = &str> {
    s.status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ing| ing.ip.as_deref().or(ing.hostname.as_deref()))
}
pub(crate) use tty::LogWriter;

/// `--progress`: how `paddock up` shows progress (docker compose's flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// The live view when stdout is a terminal (and `TERM` is not `dumb`), plain lines
    /// otherwise.
    Auto,
    /// The live view, a terminal or not.
    Tty,
    /// One line per change.
    Plain,
    /// Only the kubeconfig line and the applied objects.
    Quiet,
}

impl Mode {
    /// `Auto` decided for this process's stdout.
    fn resolve(self) -> Mode {
        use std::io::IsTerminal as _;
        match self {
            Mode::Auto => {
                let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
                if std::io::stdout().is_terminal() && !dumb {
                    Mode::Tty
                } else {
                    Mode::Plain
                }
            }
            other => other,
        }
    }
}

/// The progress shown while `paddock up` runs and stops.
pub(crate) enum Progress {
    Quiet,
    /// Plain lines; the watch task stops at the first stop stage.
    Plain(CancellationToken),
    Live(tty::View),
}

impl Progress {
    /// Before the workloads are watched (nothing applied yet, or the apply failed): the stop
    /// stages still print, as plain lines, unless quiet.
    pub(crate) fn idle(mode: Mode) -> Progress {
        match mode {
            Mode::Quiet => Progress::Quiet,
            _ => Progress::Plain(CancellationToken::new()),
        }
    }

    /// Starts watching the workloads through `client` and showing them in `mode`.
    pub(crate) fn start(
        mode: Mode,
        client: anyhow::Result<Client>,
        config: ViewConfig,
    ) -> Progress {
        let mode = mode.resolve();
        if mode == Mode::Quiet {
            return Progress::Quiet;
        }
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "no progress view");
                return Progress::idle(mode);
            }
        };
        if mode == Mode::Tty {
            match tty::View::start(client.clone(), config) {
                Ok(view) => return Progress::Live(view),
                Err(e) => tracing::warn!(error = %e, "no live view; plain lines instead"),
            }
        }
        let stop = CancellationToken::new();
        tokio::spawn(run(client, stop.clone()));
        Progress::Plain(stop)
    }

    /// Ctrl-C: the node stops its pods (`pods` says how many are left).
    pub(crate) async fn stopping_pods(&self, pods: agent::StopProgress) {
        match self {
            Progress::Quiet => {}
            Progress::Plain(watch) => {
                watch.cancel();
                println!(
                    "stopping: the node's pods first (each within its grace period, 30 s at most)"
                );
            }
            Progress::Live(view) => view.stopping_pods(pods).await,
        }
    }

    /// The pods are gone; the controllers and the API server stop.
    pub(crate) async fn stopping_control_plane(&self) {
        if let Progress::Live(view) = self {
            view.stopping_control_plane().await;
        }
    }

    /// Everything stopped.
    pub(crate) async fn stopped(self) {
        match self {
            Progress::Quiet => {}
            Progress::Plain(_) => println!("stopped"),
            Progress::Live(view) => view.finish().await,
        }
    }
}

/// Prints progress lines until `stop`.
async fn run(client: Client, stop: CancellationToken) {
    let mut lines = Lines::default();
    let pods = events(Api::<Pod>::all(client.clone()));
    let deployments = events(Api::<Deployment>::all(client.clone()));
    let services = events(Api::<Service>::all(client.clone()));
    let probe_events = events(Api::<Event>::all(client));
    tokio::pin!(pods, deployments, services, probe_events);
    loop {
        let line = tokio::select! {
            _ = stop.cancelled() => return,
            Some(e) = pods.next() => e.and_then(|(o, gone)| lines.pod(&o, gone)),
            Some(e) = deployments.next() => e.and_then(|(o, gone)| lines.deployment(&o, gone)),
            Some(e) = services.next() => e.and_then(|(o, gone)| lines.service(&o, gone)),
            Some(e) = probe_events.next() => e.and_then(|(o, _)| lines.event(&o)),
            else => return,
        };
        if let Some(l) = line {
            println!("{l}");
        }
    }
}

/// The objects of `api` as they change: (object, deleted). Errors are retried by the
/// watcher's back-off and skipped here.
fn events<K>(api: Api<K>) -> impl Stream<Item = Option<(K, bool)>>
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    K::DynamicType: Default,
{
    use kube::runtime::WatchStreamExt;
    watcher(api, watcher::Config::default())
        .default_backoff()
        .map(|e| match e {
            Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => Some((o, false)),
            Ok(watcher::Event::Delete(o)) => Some((o, true)),
            _ => None,
        })
}

/// `kind/name`, with the namespace when it is not `default`.
fn who(kind: &str, ns: Option<&str>, name: &str) -> String {
    match ns {
        Some(ns) if ns != "default" => format!("{kind}/{name} -n {ns}"),
        _ => format!("{kind}/{name}"),
    }
}

/// What was last printed per object, so only changes are printed.
#[derive(Default)]
struct Lines {
    last: HashMap<String, String>,
}

impl Lines {
    fn changed(&mut self, key: String, state: String) -> Option<String> {
        if self.last.get(&key) == Some(&state) {
            return None;
        }
        self.last.insert(key.clone(), state.clone());
        Some(format!("{key}: {state}"))
    }

    fn gone(&mut self, key: String) -> Option<String> {
        self.last.remove(&key).map(|_| format!("{key}: deleted"))
    }

    fn pod(&mut self, p: &Pod, gone: bool) -> Option<String> {
        // The system's own pods (kube-system) are not the user's workloads.
        if p.namespace().as_deref() == Some("kube-system") {
            return None;
        }
        let key = who("pod", p.namespace().as_deref(), &p.name_any());
        if gone {
            return self.gone(key);
        }
        self.changed(key, pod_state(p))
    }

    fn deployment(&mut self, d: &Deployment, gone: bool) -> Option<String> {
        let key = who("deployment", d.namespace().as_deref(), &d.name_any());
        if gone {
            return self.gone(key);
        }
        let desired = d.spec.replicas.unwrap_or(1);
        let st = d.status.clone().unwrap_or_default();
        let mut state = format!("{}/{desired} ready", st.ready_replicas.unwrap_or(0));
        let updated = st.updated_replicas.unwrap_or(0);
        if updated < desired {
            state.push_str(&format!(", {updated}/{desired} updated"));
        }
        self.changed(key, state)
    }

    fn service(&mut self, s: &Service, gone: bool) -> Option<String> {
        if s.namespace().as_deref() == Some("kube-system") || s.name_any() == "kubernetes" {
            return None;
        }
        let key = who("service", s.namespace().as_deref(), &s.name_any());
        if gone {
            return self.gone(key);
        }
        let spec = s.spec.clone().unwrap_or_default();
        let ip = spec.cluster_ip.clone().unwrap_or_default();
        let mut parts = Vec::new();
        for p in spec.ports.iter().flatten() {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            let mut part = if ip == "None" || ip.is_empty() {
                format!("headless {}/{proto}", p.port)
            } else {
                format!("{ip}:{}/{proto}", p.port)
            };
            if let Some(np) = p.node_port {
                part.push_str(&format!(" (node port {np})"));
            }
            parts.push(part);
        }
        for ip in load_balancer_addresses(s) {
            parts.push(format!("load balancer {ip}"));
        }
        if parts.is_empty() {
            parts.push(spec.type_.unwrap_or_else(|| "ClusterIP".into()));
        }
        self.changed(key, parts.join(", "))
    }

    /// Probe failures and back-offs, as the kubelet reports them.
    fn event(&mut self, e: &Event) -> Option<String> {
        let reason = e.reason.as_deref().unwrap_or("");
        if !matches!(
            reason,
            "Unhealthy" | "BackOff" | "Failed" | "FailedScheduling"
        ) {
            return None;
        }
        let obj = &e.involved_object;
        if obj.kind.as_deref() != Some("Pod") || obj.namespace.as_deref() == Some("kube-system") {
            return None;
        }
        let key = who(
            "pod",
            obj.namespace.as_deref(),
            obj.name.as_deref().unwrap_or(""),
        );
        let message = e.message.as_deref().unwrap_or("").trim();
        let first = message.lines().next().unwrap_or("");
        // Keyed apart from the pod's state line: a repeated failure prints once.
        let line = self.changed(format!("{key} event"), format!("{reason}: {first}"))?;
        Some(line.replacen(" event:", ":", 1))
    }
}

/// A pod's state as one short phrase.
fn pod_state(p: &Pod) -> String {
    let status = p.status.clone().unwrap_or_default();
    let phase = status.phase.as_deref().unwrap_or("Pending");
    let statuses: Vec<_> = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .collect();
    let restarts: i32 = statuses.iter().map(|c| c.restart_count).sum();
    let mut state = if p.metadata.deletion_timestamp.is_some() {
        "terminating".to_string()
    } else if let Some(w) = statuses
        .iter()
        .filter_map(|c| c.state.as_ref().and_then(|s| s.waiting.as_ref()))
        .find(|w| w.reason.as_deref() != Some("PodInitializing"))
    {
        let reason = w.reason.as_deref().unwrap_or("Waiting");
        match w.message.as_deref().filter(|m| !m.is_empty()) {
            Some(m) if reason != "ContainerCreating" => format!("{reason} ({})", short(m)),
            _ => reason.to_string(),
        }
    } else {
        match phase {
            "Succeeded" => "completed".to_string(),
            "Failed" => "failed".to_string(),
            "Running" => {
                let ready = status
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                let n = p.spec.as_ref().map_or(0, |s| s.containers.len());
                let up = status
                    .container_statuses
                    .iter()
                    .flatten()
                    .filter(|c| c.ready)
                    .count();
                if ready {
                    format!("ready {up}/{n}")
                } else {
                    format!("running, not ready {up}/{n}")
                }
            }
            _ => match status
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == "PodScheduled" && c.status == "False")
            {
                Some(c) => format!(
                    "pending ({})",
                    short(c.message.as_deref().unwrap_or("unschedulable"))
                ),
                None if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some() => {
                    "starting".to_string()
                }
                None => "pending".to_string(),
            },
        }
    };
    if restarts > 0 {
        state.push_str(&format!(
            ", {restarts} restart{}",
            if restarts == 1 { "" } else { "s" }
        ));
    }
    state
}

/// The first line of `m`, at most 120 characters.
fn short(m: &str) -> String {
    let first = m.lines().next().unwrap_or("");
    match first.char_indices().nth(120) {
        Some((i, _)) => format!("{}…", &first[..i]),
        None => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pod_states_read_as_a_user_expects() {
        let p = pod(
            serde_json::json!({"metadata": {"name": "a"}, "spec": {"containers": [{"name": "c"}]}}),
        );
        assert_eq!(pod_state(&p), "pending");
        let p = pod(serde_json::json!({"metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Pending", "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container"}}}]}}));
        assert_eq!(
            pod_state(&p),
            "CrashLoopBackOff (back-off 40s restarting failed container), 3 restarts"
        );
        let p = pod(serde_json::json!({"metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"running": {}}}]}}));
        assert_eq!(pod_state(&p), "running, not ready 0/1");
        let p = pod(serde_json::json!({"metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": true, "restartCount": 1, "state": {"running": {}}}]}}));
        assert_eq!(pod_state(&p), "ready 1/1, 1 restart");
    }

    #[test]
    fn only_changes_are_printed() {
        let mut l = Lines::default();
        let p = pod(
            serde_json::json!({"metadata": {"name": "a", "namespace": "default"}, "spec": {"containers": [{"name": "c"}]}}),
        );
        assert_eq!(l.pod(&p, false).as_deref(), Some("pod/a: pending"));
        assert_eq!(l.pod(&p, false), None);
        assert_eq!(l.pod(&p, true).as_deref(), Some("pod/a: deleted"));
        let e: Event = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "e"}, "reason": "Unhealthy",
            "message": "Readiness probe failed: HTTP probe failed with statuscode: 500",
            "involvedObject": {"kind": "Pod", "name": "a", "namespace": "web"}}))
        .unwrap();
        assert_eq!(
            l.event(&e).as_deref(),
            Some(
                "pod/a -n web: Unhealthy: Readiness probe failed: HTTP probe failed with statuscode: 500"
            )
        );
        assert_eq!(l.event(&e), None);
    }
}
