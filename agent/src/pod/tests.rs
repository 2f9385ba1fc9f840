//! Pod worker tests on paused tokio time with a scripted runtime: the timing rules
//! (CrashLoopBackOff schedule and reset, grace periods) that real processes would make slow.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, PodStatus, Secret};
use parking_lot::Mutex;
use probe::{ExecError, ExecOutput, ExecRunner, ExecStatus};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::config::{NodeFacts, Objects};
use super::directory::Directory;
use super::port_error::PortError;
use super::status_writer::StatusWriter;
use super::worker::{PodMsg, PodWorker, Shared};
use crate::events::{EventRecorder, Recorded};
use crate::runtime::{
    ContainerConfig, ContainerId, ExecSession, Exited, Recovered, Runtime, RuntimeError, Sandbox,
    SandboxConfig, Started,
};

/// How a scripted container behaves.
#[derive(Debug, Clone, Copy)]
enum Script {
    /// Exits with `code` after running this long.
    ExitAfter(Duration, i32),
    /// Runs until stopped; SIGTERM ends it at once.
    Run,
    /// Runs until stopped and ignores SIGTERM (ends at the SIGKILL after the grace period).
    IgnoreTerm,
}

#[derive(Debug)]
struct Container {
    script: Script,
    exit: watch::Sender<Option<Exited>>,
}

#[derive(Debug, Default)]
struct Fake {
    scripts: Mutex<HashMap<String, Script>>,
    containers: Mutex<HashMap<ContainerId, Arc<Container>>>,
    /// (container name, start time) of every start.
    starts: Mutex<Vec<(String, Instant)>>,
    /// Grace periods of stop calls.
    stops: Mutex<Vec<Duration>>,
    /// Ids of stopped containers, in order.
    stopped: Mutex<Vec<String>>,
    healthy: Arc<AtomicBool>,
    /// Exec probe runs.
    execs: Arc<std::sync::atomic::AtomicUsize>,
    next: Mutex<u32>,
    /// Shared with the status writer and the routing hook: what happened, in order.
    journal: Journal,
    /// Ids of sandboxes whose namespaces are gone.
    dead_sandboxes: Mutex<Vec<String>>,
    /// The highest instance number among a container's log files (`restart_count_from_logs`).
    log_counts: Mutex<HashMap<String, i32>>,
}

/// (tokio time, what) of runtime stops, status writes and routing calls, in order.
type Journal = Arc<Mutex<Vec<(Instant, String)>>>;

fn note(j: &Journal, what: String) {
    j.lock().push((Instant::now(), what));
}

fn exited(code: i32) -> Exited {
    Exited {
        exit_code: code,
        signal: None,
        finished_at: SystemTime::now(),
        reason: if code == 0 { "Completed" } else { "Error" }.into(),
        message: None,
    }
}

/// Exec probes: pass while `healthy`; every run is counted and journaled as `probe <argv[0]>`.
struct Health {
    healthy: Arc<AtomicBool>,
    runs: Arc<std::sync::atomic::AtomicUsize>,
    journal: Journal,
}

impl ExecRunner for Health {
    fn run<'a>(
        &'a self,
        argv: &'a [String],
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, ExecError>> {
        let ok = self.healthy.load(Ordering::SeqCst);
        self.runs.fetch_add(1, Ordering::SeqCst);
        let what = argv.first().map_or("", String::as_str);
        note(&self.journal, format!("probe {what}"));
        Box::pin(async move {
            Ok(ExecOutput {
                status: ExecStatus::Exited(if ok { 0 } else { 1 }),
                output: Vec::new(),
            })
        })
    }
}

#[async_trait::async_trait]
impl Runtime for Fake {
    async fn run_sandbox(&self, cfg: &SandboxConfig) -> Result<Sandbox, RuntimeError> {
        note(
            &self.journal,
            format!("sandbox run attempt {}", cfg.attempt),
        );
        Ok(Sandbox {
            id: format!("{}-{}", cfg.pod_uid, cfg.attempt),
            pod_ip: "10.244.0.5".parse().unwrap(),
            host_network: false,
            isolated: false,
        })
    }
    async fn stop_sandbox(&self, sandbox: &Sandbox) -> Result<(), RuntimeError> {
        note(&self.journal, format!("sandbox stopped {}", sandbox.id));
        Ok(())
    }
    async fn sandbox_ready(&self, sandbox: &Sandbox) -> bool {
        !self.dead_sandboxes.lock().contains(&sandbox.id)
    }
    async fn restart_count_from_logs(&self, _pod_uid: &str, container: &str) -> i32 {
        self.log_counts.lock().get(container).copied().unwrap_or(0)
    }
    async fn start_container(
        &self,
        _sandbox: &Sandbox,
        cfg: &ContainerConfig,
    ) -> Result<Started, RuntimeError> {
        let script = self
            .scripts
            .lock()
            .get(&cfg.name)
            .copied()
            .unwrap_or(Script::Run);
        let id = {
            let mut n = self.next.lock();
            *n += 1;
            ContainerId(format!("c{n}"))
        };
        let (tx, _) = watch::channel(None);
        let c = Arc::new(Container { script, exit: tx });
        self.containers.lock().insert(id.clone(), c.clone());
        self.starts.lock().push((cfg.name.clone(), Instant::now()));
        if let Script::ExitAfter(d, code) = script {
            tokio::spawn(async move {
                tokio::time::sleep(d).await;
                c.exit.send_if_modified(|e| {
                    e.get_or_insert_with(|| exited(code));
                    true
                });
            });
        }
        Ok(Started {
            id,
            pid: 1,
            started_at: SystemTime::now(),
        })
    }
    async fn wait_container(&self, id: &ContainerId) -> Exited {
        let c = self.containers.lock().get(id).cloned();
        let Some(c) = c else {
            return exited(137);
        };
        let mut rx = c.exit.subscribe();
        loop {
            if let Some(e) = rx.borrow_and_update().clone() {
                return e;
            }
            if rx.changed().await.is_err() {
                return exited(137);
            }
        }
    }
    async fn stop_container(&self, id: &ContainerId, grace: Duration) -> Result<(), RuntimeError> {
        self.stops.lock().push(grace);
        self.stopped.lock().push(id.0.clone());
        note(&self.journal, format!("stop {id}"));
        let c = self.containers.lock().get(id).cloned();
        let Some(c) = c else { return Ok(()) };
        let code = match c.script {
            Script::IgnoreTerm => {
                tokio::time::sleep(grace).await;
                137
            }
            _ => 143,
        };
        c.exit.send_if_modified(|e| {
            e.get_or_insert_with(|| exited(code));
            true
        });
        Ok(())
    }
    fn exec_runner(&self, _id: &ContainerId) -> Arc<dyn ExecRunner> {
        Arc::new(Health {
            healthy: self.healthy.clone(),
            runs: self.execs.clone(),
            journal: self.journal.clone(),
        })
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
    async fn list(&self) -> Result<Vec<Recovered>, RuntimeError> {
        Ok(Vec::new())
    }
    async fn shutdown(&self, _grace: Duration) -> Result<(), RuntimeError> {
        Ok(())
    }
    async fn remove_pod_logs(&self, _pod_uid: &str) -> Result<(), RuntimeError> {
        Ok(())
    }
}

#[derive(Default)]
struct Writer {
    statuses: Mutex<Vec<PodStatus>>,
    deleted: AtomicBool,
    /// Answers of the next deletes, in order (then `Ok`).
    delete_errors: Mutex<Vec<PortError>>,
    /// Delete calls so far.
    delete_calls: std::sync::atomic::AtomicUsize,
    journal: Journal,
}

impl StatusWriter for Writer {
    fn write<'a>(
        &'a self,
        _pod: &'a Pod,
        status: &'a PodStatus,
    ) -> BoxFuture<'a, Result<(), PortError>> {
        self.statuses.lock().push(status.clone());
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map_or("-", |c| c.status.as_str());
        note(&self.journal, format!("status Ready={ready}"));
        Box::pin(async { Ok(()) })
    }
    fn delete<'a>(&'a self, _pod: &'a Pod) -> BoxFuture<'a, Result<(), PortError>> {
        self.delete_calls.fetch_add(1, Ordering::SeqCst);
        let mut errors = self.delete_errors.lock();
        if !errors.is_empty() {
            let e = errors.remove(0);
            return Box::pin(async move { Err(e) });
        }
        self.deleted.store(true, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

struct NoObjects;

impl Objects for NoObjects {
    fn runtime_class<'a>(
        &'a self,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Option<k8s_openapi::api::node::v1::RuntimeClass>, PortError>> {
        Box::pin(async { Ok(None) })
    }
    fn config_map<'a>(
        &'a self,
        _ns: &'a str,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Option<ConfigMap>, PortError>> {
        Box::pin(async { Ok(None) })
    }
    fn secret<'a>(
        &'a self,
        _ns: &'a str,
        _name: &'a str,
    ) -> BoxFuture<'a, Result<Option<Secret>, PortError>> {
        Box::pin(async { Ok(None) })
    }
    fn services<'a>(
        &'a self,
        _ns: &'a str,
    ) -> BoxFuture<'a, Result<Vec<k8s_openapi::api::core::v1::Service>, PortError>> {
        Box::pin(async { Ok(Vec::new()) })
    }
}

struct Env {
    fake: Arc<Fake>,
    writer: Arc<Writer>,
    events: mpsc::UnboundedReceiver<Recorded>,
    shared: Shared,
}

fn env() -> Env {
    let fake = Arc::new(Fake::default());
    fake.healthy.store(true, Ordering::SeqCst);
    let writer = Arc::new(Writer {
        journal: fake.journal.clone(),
        ..Writer::default()
    });
    let (tx, events) = mpsc::unbounded_channel();
    let shared = Shared {
        runtime: fake.clone(),
        status: writer.clone(),
        objects: Arc::new(NoObjects),
        events: EventRecorder::to_channel(tx),
        node: NodeFacts {
            host_ip: "10.0.0.1".parse().unwrap(),
            node_name: "n1".into(),
            cpu_milli: 2000,
            memory: 1 << 30,
            storage: 1 << 34,
            storage_root: "/nonexistent/storage".into(),
            apparmor: false,
        },
        handler_env: probe::HandlerEnv::new(probe::DEFAULT_USER_AGENT).unwrap(),
        agent_started: Instant::now() - Duration::from_secs(3600),
        directory: Arc::new(Directory::default()),
        routing: crate::routing::Routing::default(),
        images: None,
        default_runtime: "host".into(),
        cluster_dns: Default::default(),
        metrics: Default::default(),
    };
    Env {
        fake,
        writer,
        events,
        shared,
    }
}

fn pod(v: serde_json::Value) -> Arc<Pod> {
    let mut p = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "busybox", "command": ["run"]}]},
    });
    for (k, val) in v.as_object().unwrap() {
        for (k2, v2) in val.as_object().unwrap() {
            p[k][k2] = v2.clone();
        }
    }
    Arc::new(serde_json::from_value(p).unwrap())
}

fn start_gaps(fake: &Fake) -> Vec<u64> {
    let starts = fake.starts.lock();
    starts
        .windows(2)
        .map(|w| (w[1].1 - w[0].1).as_secs())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn crash_loop_back_off_follows_the_kubelet_schedule() {
    let e = env();
    e.fake
        .scripts
        .lock()
        .insert("app".into(), Script::ExitAfter(Duration::ZERO, 1));
    let w = PodWorker::spawn(e.shared.clone(), pod(serde_json::json!({})), None);
    tokio::time::sleep(Duration::from_secs(1200)).await;
    let gaps = start_gaps(&e.fake);
    assert_eq!(gaps[..8], [0, 10, 20, 40, 80, 160, 300, 300]);
    let last = e.writer.statuses.lock().last().cloned().unwrap();
    let cs = &last.container_statuses.unwrap()[0];
    assert!(cs.restart_count >= 8);
    w.send(PodMsg::Removed);
    w.join().await;
}

#[tokio::test(start_paused = true)]
async fn back_off_resets_after_ten_minutes_of_running() {
    let e = env();
    e.fake
        .scripts
        .lock()
        .insert("app".into(), Script::ExitAfter(Duration::from_secs(5), 1));
    let w = PodWorker::spawn(e.shared.clone(), pod(serde_json::json!({})), None);
    // 0: start, 5: exit → immediate, 10: exit → +10 s, 25: exit → +20 s ...
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(start_gaps(&e.fake)[..3], [5, 15, 25]);
    // Now it runs long: 601 s of running resets the back-off (immediate restart, then 10 s).
    e.fake
        .scripts
        .lock()
        .insert("app".into(), Script::ExitAfter(Duration::from_secs(700), 1));
    tokio::time::sleep(Duration::from_secs(1500)).await;
    let gaps = start_gaps(&e.fake);
    let long: Vec<u64> = gaps.iter().copied().filter(|g| *g >= 700).collect();
    assert!(long.len() >= 2, "{gaps:?}");
    assert!(long.iter().all(|g| *g == 700), "{gaps:?}");
    w.send(PodMsg::Removed);
    w.join().await;
}

#[tokio::test(start_paused = true)]
async fn liveness_kill_uses_the_probe_grace_period_and_never_policy_does_not_restart() {
    let mut e = env();
    e.fake
        .scripts
        .lock()
        .insert("app".into(), Script::IgnoreTerm);
    let p = pod(serde_json::json!({"spec": {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 600,
        "containers": [{"name": "app", "image": "busybox", "command": ["run"],
            "livenessProbe": {"exec": {"command": ["check"]}, "periodSeconds": 1,
                              "failureThreshold": 2, "terminationGracePeriodSeconds": 5}}],
    }}));
    let w = PodWorker::spawn(e.shared.clone(), p, None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    e.fake.healthy.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(*e.fake.stops.lock(), [Duration::from_secs(5)]);
    assert_eq!(e.fake.starts.lock().len(), 1);
    let last = e.writer.statuses.lock().last().cloned().unwrap();
    assert_eq!(last.phase.as_deref(), Some("Failed"));
    let cs = &last.container_statuses.unwrap()[0];
    assert_eq!(cs.restart_count, 0);
    let t = cs.state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(t.exit_code, 137);
    let mut msgs = Vec::new();
    while let Ok(ev) = e.events.try_recv() {
        msgs.push((ev.reason, ev.message));
    }
    assert!(
        msgs.contains(&(
            "Killing".into(),
            "Container app failed liveness probe".into()
        )),
        "{msgs:?}"
    );
    w.send(PodMsg::Removed);
    w.join().await;
}

#[tokio::test(start_paused = true)]
async fn deletion_uses_the_deletion_grace_period_floored_at_two_seconds() {
    let e = env();
    let w = PodWorker::spawn(
        e.shared.clone(),
        pod(serde_json::json!({"spec": {"terminationGracePeriodSeconds": 30}})),
        None,
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut deleting = (*pod(serde_json::json!({}))).clone();
    deleting.metadata.deletion_timestamp = Some(
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now()),
    );
    deleting.metadata.deletion_grace_period_seconds = Some(1);
    w.send(PodMsg::Update(Arc::new(deleting)));
    w.join().await;
    assert_eq!(*e.fake.stops.lock(), [Duration::from_secs(2)]);
    assert!(e.writer.deleted.load(Ordering::SeqCst));
    let last = e.writer.statuses.lock().last().cloned().unwrap();
    assert_eq!(last.phase.as_deref(), Some("Failed"));
}

/// A pod the API no longer has (404) or that was replaced by one of another UID (409) needs no
/// removal; any other failure is retried.
#[tokio::test(start_paused = true)]
async fn pod_removal_branches_on_the_port_error() {
    let deleting = || {
        let mut p = (*pod(serde_json::json!({}))).clone();
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            k8s_openapi::jiff::Timestamp::now(),
        ));
        p.metadata.deletion_grace_period_seconds = Some(0);
        Arc::new(p)
    };
    for (error, calls) in [
        (
            PortError::NotFound {
                message: "gone".into(),
            },
            1,
        ),
        (
            PortError::Conflict {
                message: "uid".into(),
            },
            1,
        ),
        (PortError::other("connection refused"), 2),
    ] {
        let e = env();
        e.writer.delete_errors.lock().push(error.clone());
        let w = PodWorker::spawn(e.shared.clone(), pod(serde_json::json!({})), None);
        tokio::time::sleep(Duration::from_secs(1)).await;
        w.send(PodMsg::Update(deleting()));
        w.join().await;
        assert_eq!(
            e.writer.delete_calls.load(Ordering::SeqCst),
            calls,
            "{error:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn init_containers_run_in_order_before_the_app() {
    let e = env();
    {
        let mut s = e.fake.scripts.lock();
        s.insert("init1".into(), Script::ExitAfter(Duration::from_secs(2), 0));
        s.insert("init2".into(), Script::ExitAfter(Duration::from_secs(3), 0));
    }
    let p = pod(serde_json::json!({"spec": {
        "initContainers": [
            {"name": "init1", "image": "busybox", "command": ["a"]},
            {"name": "init2", "image": "busybox", "command": ["b"]},
        ],
    }}));
    let w = PodWorker::spawn(e.shared.clone(), p, None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = e.writer.statuses.lock().last().cloned().unwrap();
    assert_eq!(first.phase.as_deref(), Some("Pending"));
    let init = first
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Initialized")
        .unwrap();
    assert_eq!(
        init.message.as_deref(),
        Some("containers with incomplete status: [init1 init2]")
    );
    let app = &first.container_statuses.unwrap()[0];
    assert_eq!(
        app.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("PodInitializing")
    );
    tokio::time::sleep(Duration::from_secs(10)).await;
    let names: Vec<String> = e.fake.starts.lock().iter().map(|s| s.0.clone()).collect();
    assert_eq!(names, ["init1", "init2", "app"]);
    assert_eq!(start_gaps(&e.fake), [2, 3]);
    let last = e.writer.statuses.lock().last().cloned().unwrap();
    assert_eq!(last.phase.as_deref(), Some("Running"));
    w.send(PodMsg::Removed);
    w.join().await;
}

#[tokio::test(start_paused = true)]
async fn sidecars_start_first_restart_always_and_stop_last() {
    let e = env();
    e.fake
        .scripts
        .lock()
        .insert("side".into(), Script::ExitAfter(Duration::from_secs(30), 1));
    let p = pod(serde_json::json!({"spec": {
        "restartPolicy": "Never",
        "initContainers": [
            {"name": "side", "image": "busybox", "command": ["s"], "restartPolicy": "Always"},
        ],
    }}));
    let w = PodWorker::spawn(e.shared.clone(), p.clone(), None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let names: Vec<String> = e.fake.starts.lock().iter().map(|s| s.0.clone()).collect();
    assert_eq!(names, ["side", "app"]);
    let st = e.writer.statuses.lock().last().cloned().unwrap();
    assert_eq!(st.phase.as_deref(), Some("Running"));
    let ready = st
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "ContainersReady")
        .unwrap();
    assert_eq!(ready.status, "True");
    // The sidecar fails: restarted at once although the pod's policy is Never.
    tokio::time::sleep(Duration::from_secs(30)).await;
    let names: Vec<String> = e.fake.starts.lock().iter().map(|s| s.0.clone()).collect();
    assert_eq!(names, ["side", "app", "side"]);
    // Deletion: the app is stopped before the sidecar.
    w.send(PodMsg::Update(deleted(&p, 30)));
    w.join().await;
    assert_eq!(e.fake.stopped.lock().as_slice(), ["c2", "c3"]);
}

#[test]
fn readiness_gates_and_transition_times() {
    use super::model::{Instance, NoProbes, PodState};
    use super::status::{StatusInputs, generate};
    use k8s_openapi::api::core::v1::PodCondition;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    let p =
        pod(serde_json::json!({"spec": {"readinessGates": [{"conditionType": "example.com/lb"}]}}));
    let mut state = PodState::new(p);
    state.sandbox = Some(Sandbox {
        id: "s".into(),
        pod_ip: "10.244.0.5".parse().unwrap(),
        host_network: false,
        isolated: false,
    });
    state.push_instance(
        "app",
        Instance {
            id: ContainerId("c1".into()),
            restart_count: 0,
            started_at: Some(SystemTime::now()),
            started: Instant::now(),
            exit: None,
            adopted: false,
            spec_hash: None,
        },
    );
    let t0 = Timestamp::from_second(1_000).unwrap();
    let t1 = Timestamp::from_second(2_000).unwrap();
    let st = generate(
        &state,
        &NoProbes,
        &StatusInputs {
            host_ip: "10.0.0.1",
            old: None,
            now: t0,
        },
    );
    let cond = |st: &PodStatus, t: &str| {
        st.conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == t)
            .cloned()
            .unwrap()
    };
    assert_eq!(cond(&st, "ContainersReady").status, "True");
    let ready = cond(&st, "Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("False", Some("ReadinessGatesNotReady"))
    );
    assert_eq!(
        ready.message.as_deref(),
        Some("corresponding condition of pod readiness gate \"example.com/lb\" does not exist.")
    );
    // Someone sets the gate's condition: Ready turns True at t1, ContainersReady keeps t0,
    // and the foreign condition is kept.
    let mut old = st.clone();
    old.conditions.as_mut().unwrap().push(PodCondition {
        type_: "example.com/lb".into(),
        status: "True".into(),
        ..Default::default()
    });
    let st = generate(
        &state,
        &NoProbes,
        &StatusInputs {
            host_ip: "10.0.0.1",
            old: Some(&old),
            now: t1,
        },
    );
    assert_eq!(cond(&st, "Ready").status, "True");
    assert_eq!(cond(&st, "Ready").last_transition_time, Some(Time(t1)));
    assert_eq!(
        cond(&st, "ContainersReady").last_transition_time,
        Some(Time(t0))
    );
    assert_eq!(cond(&st, "example.com/lb").status, "True");
    let types: Vec<String> = st
        .conditions
        .unwrap()
        .into_iter()
        .map(|c| c.type_)
        .collect();
    assert_eq!(
        types,
        [
            "PodReadyToStartContainers",
            "Initialized",
            "Ready",
            "ContainersReady",
            "PodScheduled",
            "example.com/lb"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_changed_image_restarts_the_container_even_under_never() {
    let mut e = env();
    let p = pod(serde_json::json!({"spec": {"restartPolicy": "Never"}}));
    let w = PodWorker::spawn(e.shared.clone(), p.clone(), None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut updated = (*p).clone();
    if let Some(spec) = updated.spec.as_mut() {
        spec.containers[0].image = Some("busybox:2".into());
    }
    w.send(PodMsg::Update(Arc::new(updated)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(e.fake.starts.lock().len(), 2);
    let last = e.writer.statuses.lock().last().cloned().unwrap();
    let cs = &last.container_statuses.unwrap()[0];
    assert_eq!(cs.restart_count, 1);
    assert_eq!(cs.image, "busybox:2");
    let mut msgs = Vec::new();
    while let Ok(ev) = e.events.try_recv() {
        if ev.reason == "Killing" {
            msgs.push(ev.message);
        }
    }
    assert_eq!(
        msgs,
        ["Container app definition changed, will be restarted"]
    );
    w.send(PodMsg::Removed);
    w.join().await;
}

#[tokio::test(start_paused = true)]
async fn an_adopted_ready_container_stays_ready_across_an_agent_restart() {
    use crate::runtime::RecoveredContainer;
    let e = env();
    // A container started long before this agent (more than the 10 s restart grace).
    let started_at = SystemTime::now() - Duration::from_secs(4000);
    let (tx, _) = watch::channel(None);
    let id = ContainerId("old".into());
    e.fake.containers.lock().insert(
        id.clone(),
        Arc::new(Container {
            script: Script::Run,
            exit: tx,
        }),
    );
    let p = pod(serde_json::json!({
        "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["run"],
            "readinessProbe": {"exec": {"command": ["check"]}, "periodSeconds": 5}}]},
        "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "image": "busybox", "imageID": "",
                "ready": true, "started": true, "restartCount": 2,
                "containerID": "paddock://old", "state": {"running": {}}}]},
    }));
    let recovered = Recovered {
        sandbox: Sandbox {
            id: "u1".into(),
            pod_ip: "10.244.0.5".parse().unwrap(),
            host_network: false,
            isolated: false,
        },
        pod_uid: "u1".into(),
        namespace: "ns".into(),
        name: "p".into(),
        alive: true,
        attempt: 0,
        containers: vec![RecoveredContainer {
            id: id.clone(),
            name: "app".into(),
            restart_count: 2,
            pid: 1,
            started_at,
        }],
    };
    let w = PodWorker::spawn(e.shared.clone(), p, Some(recovered));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let statuses = e.writer.statuses.lock().clone();
    let first = &statuses[0];
    let cs = &first.container_statuses.as_ref().unwrap()[0];
    assert!(cs.ready, "readiness flapped on adoption");
    assert_eq!(cs.restart_count, 2);
    assert_eq!(cs.container_id.as_deref(), Some("paddock://old"));
    assert!(e.fake.starts.lock().is_empty(), "nothing is started again");
    w.send(PodMsg::Removed);
    w.join().await;
}

fn events_named(e: &mut Env, reason: &str) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(ev) = e.events.try_recv() {
        if ev.reason == reason {
            out.push(ev.message);
        }
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_sandbox_gone_with_the_machine_is_re_created_and_its_containers_restarted() {
    let mut e = env();
    // The agent and the pod's processes died (a reboot); the API still says it runs.
    let p = pod(serde_json::json!({
        "spec": {"containers": [{"name": "app", "image": "busybox", "command": ["run"]}]},
        "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [{"name": "app", "image": "busybox", "imageID": "",
                "ready": true, "started": true, "restartCount": 2,
                "containerID": "paddock://old",
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]},
    }));
    let recovered = Recovered {
        sandbox: Sandbox {
            id: "u1-0".into(),
            pod_ip: "10.244.0.5".parse().unwrap(),
            host_network: false,
            isolated: true,
        },
        pod_uid: "u1".into(),
        namespace: "ns".into(),
        name: "p".into(),
        alive: false,
        attempt: 0,
        containers: Vec::new(),
    };
    let w = PodWorker::spawn(e.shared.clone(), p, Some(recovered));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        journal(&e.fake, &["sandbox"]),
        ["sandbox stopped u1-0", "sandbox run attempt 1"]
    );
    assert_eq!(
        events_named(&mut e, "SandboxChanged"),
        ["Pod sandbox changed, it will be killed and re-created."]
    );
    let names: Vec<String> = e.fake.starts.lock().iter().map(|s| s.0.clone()).collect();
    assert_eq!(names, ["app"]);
    let last = e.writer.statuses.lock().last().cloned().expect("a status");
    let cs = &last.container_statuses.as_ref().unwrap()[0];
    assert_eq!(cs.restart_count, 3, "{cs:?}");
    assert!(cs.state.as_ref().unwrap().running.is_some(), "{cs:?}");
    let lost = cs
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .clone()
        .expect("lastState");
    assert_eq!(lost.reason.as_deref(), Some("ContainerStatusUnknown"));
    assert_eq!(lost.exit_code, 137);
    assert_eq!(lost.container_id.as_deref(), Some("paddock://old"));
    let ready = last
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "PodReadyToStartContainers")
        .expect("condition");
    assert_eq!(ready.status, "True");
    w.send(PodMsg::Removed);
    w.join().await;
}

#[tokio::test(start_paused = true)]
async fn a_sandbox_that_dies_under_a_running_pod_is_re_created_init_containers_first() {
    let mut e = env();
    e.fake.scripts.lock().insert(
        "init".into(),
        Script::ExitAfter(Duration::from_millis(100), 0),
    );
    let p = pod(serde_json::json!({
        "spec": {"initContainers": [{"name": "init", "image": "busybox", "command": ["i"]}],
            "containers": [{"name": "app", "image": "busybox", "command": ["run"]}]},
    }));
    let w = PodWorker::spawn(e.shared.clone(), p, None);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let names =
        |e: &Env| -> Vec<String> { e.fake.starts.lock().iter().map(|s| s.0.clone()).collect() };
    assert_eq!(names(&e), ["init", "app"]);
    // The holder dies: the pod's namespaces and its processes with it.
    e.fake.dead_sandboxes.lock().push("u1-0".into());
    e.fake.log_counts.lock().insert("init".into(), 1);
    let app = ContainerId("c2".into());
    e.fake
        .stop_container(&app, Duration::ZERO)
        .await
        .expect("stop");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(names(&e), ["init", "app", "init", "app"]);
    assert_eq!(
        journal(&e.fake, &["sandbox"]),
        [
            "sandbox run attempt 0",
            "sandbox stopped u1-0",
            "sandbox run attempt 1"
        ]
    );
    assert_eq!(events_named(&mut e, "SandboxChanged").len(), 1);
    let last = e.writer.statuses.lock().last().cloned().expect("a status");
    let app = &last.container_statuses.as_ref().unwrap()[0];
    assert_eq!(app.restart_count, 1, "{app:?}");
    assert!(app.state.as_ref().unwrap().running.is_some(), "{app:?}");
    let init = &last.init_container_statuses.as_ref().unwrap()[0];
    // Its record went with the old sandbox: the count goes on from its log files.
    assert_eq!(init.restart_count, 1, "{init:?}");
    w.send(PodMsg::Removed);
    w.join().await;
}

#[tokio::test(start_paused = true)]
async fn a_never_restarted_pod_whose_sandbox_is_gone_gets_no_new_one() {
    let e = env();
    let p = pod(serde_json::json!({
        "spec": {"restartPolicy": "Never",
            "containers": [{"name": "app", "image": "busybox", "command": ["run"]}]},
    }));
    let w = PodWorker::spawn(e.shared.clone(), p, None);
    tokio::time::sleep(Duration::from_secs(2)).await;
    e.fake.dead_sandboxes.lock().push("u1-0".into());
    let app = ContainerId("c1".into());
    e.fake
        .stop_container(&app, Duration::ZERO)
        .await
        .expect("stop");
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        journal(&e.fake, &["sandbox run"]),
        ["sandbox run attempt 0"],
        "no second sandbox"
    );
    assert_eq!(e.fake.starts.lock().len(), 1);
    let last = e.writer.statuses.lock().last().cloned().expect("a status");
    assert_eq!(last.phase.as_deref(), Some("Failed"));
    w.send(PodMsg::Removed);
    w.join().await;
}

/// A routing hook that writes to the journal; once told to drain, the proxy still holds one
/// connection to the pod for `hold`.
struct Hook {
    journal: Journal,
    hold: Mutex<Duration>,
    open_until: Mutex<Option<Instant>>,
}

impl crate::routing::RoutingHook for Hook {
    fn set_state(&self, pod: &crate::routing::PodEndpoint, state: crate::routing::RouteState) {
        assert_eq!((pod.uid.as_str(), pod.name.as_str()), ("u1", "ns/p"));
        note(&self.journal, format!("route {state:?}"));
        if state == crate::routing::RouteState::Draining {
            *self.open_until.lock() = Some(Instant::now() + *self.hold.lock());
        }
    }
    fn forget(&self, pod: &crate::routing::PodEndpoint) {
        note(&self.journal, format!("forget {}", pod.uid));
    }
    fn active_connections(&self, _pod: &crate::routing::PodEndpoint) -> usize {
        usize::from(self.open_until.lock().is_some_and(|t| Instant::now() < t))
    }
}

fn env_with_hook() -> (Env, Arc<Hook>) {
    let mut e = env();
    let hook = Arc::new(Hook {
        journal: e.fake.journal.clone(),
        hold: Mutex::new(Duration::ZERO),
        open_until: Mutex::new(None),
    });
    e.shared.routing = crate::routing::Routing::new(Some(hook.clone()));
    (e, hook)
}

/// The journal's entries (without times) that start with one of `prefixes`.
fn journal(fake: &Fake, prefixes: &[&str]) -> Vec<String> {
    fake.journal
        .lock()
        .iter()
        .map(|(_, w)| w.clone())
        .filter(|w| prefixes.iter().any(|p| w.starts_with(p)))
        .collect()
}

fn when(fake: &Fake, what: &str) -> Instant {
    fake.journal
        .lock()
        .iter()
        .find(|(_, w)| w == what)
        .map(|(t, _)| *t)
        .unwrap_or_else(|| panic!("{what} not in the journal"))
}

/// `p` with a deletion timestamp and grace period.
fn deleted(p: &Pod, grace: i64) -> Arc<Pod> {
    let mut p = p.clone();
    p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    p.metadata.deletion_grace_period_seconds = Some(grace);
    Arc::new(p)
}

const READY_AND_LIVE: &str = r#"{"spec": {"terminationGracePeriodSeconds": 30, "containers": [
    {"name": "app", "image": "busybox", "command": ["run"],
     "readinessProbe": {"exec": {"command": ["ready"]}, "periodSeconds": 1, "failureThreshold": 5},
     "livenessProbe": {"exec": {"command": ["live"]}, "periodSeconds": 1, "failureThreshold": 1}}]}}"#;

#[tokio::test(start_paused = true)]
async fn readiness_reaches_routing_before_the_status_write() {
    let (e, _hook) = env_with_hook();
    let p = pod(serde_json::from_str(READY_AND_LIVE).unwrap());
    let w = PodWorker::spawn(e.shared.clone(), p, None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let seen = journal(&e.fake, &["route", "status"]);
    let ready_route = seen.iter().position(|w| w == "route Ready");
    let ready_status = seen.iter().position(|w| w == "status Ready=True");
    assert!(
        ready_route.is_some() && ready_route < ready_status,
        "{seen:?}"
    );
    // Not ready before the probe passed; the flip went out at the same instant.
    assert_eq!(seen[0], "route NotReady", "{seen:?}");
    assert_eq!(
        when(&e.fake, "route Ready"),
        when(&e.fake, "status Ready=True")
    );
    // The flip is measured from its probe result (the first NotReady had none); paused
    // time makes it take no time at all.
    let metrics = e.shared.metrics.encode_main(&e.shared.directory);
    assert!(
        metrics.contains("paddock_readiness_routing_duration_seconds_count 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("paddock_readiness_routing_duration_seconds_bucket{le=\"0.0005\"} 1\n"),
        "{metrics}"
    );
    w.send(PodMsg::Removed);
    w.join().await;
    assert_eq!(journal(&e.fake, &["forget"]), ["forget u1"]);
}

#[tokio::test(start_paused = true)]
async fn a_liveness_kill_drains_before_sigterm_and_the_restart_comes_back_through_readiness() {
    let (e, hook) = env_with_hook();
    let p = pod(serde_json::from_str(READY_AND_LIVE).unwrap());
    let w = PodWorker::spawn(e.shared.clone(), p, None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A request is in flight through the proxy for 300 ms after the probe fails.
    *hook.hold.lock() = Duration::from_millis(300);
    e.fake.healthy.store(false, Ordering::SeqCst);
    while journal(&e.fake, &["route Draining"]).is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    e.fake.healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seen = journal(&e.fake, &["route", "stop"]);
    assert_eq!(
        seen,
        [
            "route NotReady",
            "route Ready",
            "route Draining",
            "stop c1",
            "route NotReady",
            "route Ready"
        ]
    );
    // SIGTERM waited for the connection (polled every 5 ms), and the grace period lost that.
    let drained = when(&e.fake, "route Draining");
    let stopped = when(&e.fake, "stop c1");
    let waited = stopped - drained;
    assert!(
        waited >= Duration::from_millis(300) && waited <= Duration::from_millis(310),
        "{waited:?}"
    );
    assert_eq!(*e.fake.stops.lock(), [Duration::from_secs(30) - waited]);
    w.send(PodMsg::Removed);
    w.join().await;
}

#[tokio::test(start_paused = true)]
async fn deletion_drains_first_and_a_connection_that_stays_open_delays_sigterm_only_boundedly() {
    let (e, hook) = env_with_hook();
    let p = pod(serde_json::from_str(READY_AND_LIVE).unwrap());
    let w = PodWorker::spawn(e.shared.clone(), p.clone(), None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A keep-alive connection that never closes.
    *hook.hold.lock() = Duration::from_secs(3600);
    w.send(PodMsg::Update(deleted(&p, 30)));
    w.join().await;
    let seen = journal(&e.fake, &["route", "stop", "forget"]);
    assert_eq!(
        seen,
        [
            "route NotReady",
            "route Ready",
            "route Draining",
            "stop c1",
            "forget u1"
        ]
    );
    let waited = when(&e.fake, "stop c1") - when(&e.fake, "route Draining");
    assert_eq!(waited, crate::routing::DRAIN_LIMIT);
    // Readiness probes keep running during termination, but routing stays drained.
    assert!(e.writer.deleted.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn without_a_hook_a_kill_does_not_wait() {
    let e = env();
    let p = pod(serde_json::from_str(READY_AND_LIVE).unwrap());
    let w = PodWorker::spawn(e.shared.clone(), p.clone(), None);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sent = Instant::now();
    w.send(PodMsg::Update(deleted(&p, 30)));
    w.join().await;
    assert_eq!(when(&e.fake, "stop c1"), sent);
    assert_eq!(*e.fake.stops.lock(), [Duration::from_secs(30)]);
}

/// The echo of the agent's own status writes (every write comes back through the watch) and the
/// status manager's 10 s reconciliation must not run readiness probes early: with period 10 and
/// successThreshold 3 a pod becomes Ready no sooner than 20 s after its probe starts passing,
/// as on a kubelet.
#[tokio::test(start_paused = true)]
async fn status_echoes_do_not_trigger_readiness_probes() {
    let e = env();
    e.fake.healthy.store(false, Ordering::SeqCst);
    let p = pod(serde_json::json!({"spec": {"containers": [
        {"name": "app", "image": "busybox", "command": ["run"],
         "readinessProbe": {"exec": {"command": ["ready"]}, "periodSeconds": 10, "successThreshold": 3}}]}}));
    let w = PodWorker::spawn(e.shared.clone(), p.clone(), None);
    let echo = |rv: u64| {
        let mut echoed = (*p).clone();
        echoed.status = e.writer.statuses.lock().last().cloned();
        echoed.metadata.resource_version = Some(rv.to_string());
        w.send(PodMsg::Update(Arc::new(echoed)));
    };
    for t in 0..35 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        echo(t);
    }
    let runs = e.fake.execs.load(Ordering::SeqCst);
    // The triggers of the start and, a second later, of the first result, then one per period
    // (11, 21, 31 s); an echo-triggered probe made it 37.
    assert_eq!(runs, 5, "probe runs in 35 s");
    e.fake.healthy.store(true, Ordering::SeqCst);
    let passing = Instant::now();
    let ready = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        echo(100);
        let ready = e.writer.statuses.lock().iter().any(|s| {
            s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        });
        if ready {
            break Instant::now() - passing;
        }
        assert!(
            Instant::now() - passing < Duration::from_secs(60),
            "never Ready"
        );
    };
    assert!(
        ready >= Duration::from_secs(20),
        "Ready {ready:?} after the probe started passing"
    );
    w.send(PodMsg::Removed);
    w.join().await;
}

/// The echo of our own status write is not kept twice, yet a status someone else changed is
/// still seen: a foreign condition joins our next write, and on the periodic resync a status
/// overwritten by someone else is written again.
#[tokio::test(start_paused = true)]
async fn status_echoes_and_foreign_changes() {
    use k8s_openapi::api::core::v1::PodCondition;
    let e = env();
    let p = pod(serde_json::json!({}));
    let w = PodWorker::spawn(e.shared.clone(), p.clone(), None);
    let with_status = |st: PodStatus, rv: &str| {
        let mut echoed = (*p).clone();
        echoed.status = Some(st);
        echoed.metadata.resource_version = Some(rv.into());
        Arc::new(echoed)
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ours = e
        .writer
        .statuses
        .lock()
        .last()
        .cloned()
        .expect("a status write");
    let writes = e.writer.statuses.lock().len();
    // The echo: nothing to write.
    w.send(PodMsg::Update(with_status(ours.clone(), "2")));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        e.writer.statuses.lock().len(),
        writes,
        "an echo caused a write"
    );
    // Someone adds a condition of theirs: it is kept in what we write next.
    let mut foreign = ours.clone();
    foreign
        .conditions
        .get_or_insert_with(Vec::new)
        .push(PodCondition {
            type_: "example.com/Checked".into(),
            status: "True".into(),
            ..Default::default()
        });
    w.send(PodMsg::Update(with_status(foreign, "3")));
    // Someone overwrites the phase: the resync (10 s) puts ours back, with their condition.
    let mut overwritten = ours.clone();
    overwritten.phase = Some("Unknown".into());
    overwritten
        .conditions
        .get_or_insert_with(Vec::new)
        .push(PodCondition {
            type_: "example.com/Checked".into(),
            status: "True".into(),
            ..Default::default()
        });
    tokio::time::sleep(Duration::from_secs(1)).await;
    w.send(PodMsg::Update(with_status(overwritten, "4")));
    tokio::time::sleep(Duration::from_secs(12)).await;
    let last = e.writer.statuses.lock().last().cloned().expect("writes");
    assert_eq!(last.phase, ours.phase, "the resync restores our phase");
    assert!(
        last.conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "example.com/Checked"),
        "{last:?}"
    );
    w.send(PodMsg::Removed);
    w.join().await;
}

/// When each `probe <argv[0]>` ran and when the pod first went `status Ready=True`, as
/// durations since the first start of container `app`.
fn probe_timeline(fake: &Fake, probe: &str) -> (Vec<Duration>, Option<Duration>) {
    let start = fake
        .starts
        .lock()
        .iter()
        .find(|(name, _)| name == "app")
        .expect("app started")
        .1;
    let journal = fake.journal.lock();
    let at = |what: &str| {
        journal
            .iter()
            .filter(|(_, w)| w == what)
            .map(|(t, _)| *t - start)
            .collect::<Vec<_>>()
    };
    let ready = at("status Ready=True").first().copied();
    (at(&format!("probe {probe}")), ready)
}

/// The first probes after a container start, as on a kubelet. A readiness probe is run early
/// only by a pod sync (one trigger per sync, `UpdatePodStatus`), and the kubelet's pod syncs
/// after a pod's first follow one another by at least a PLEG relist (1 s): the sync that sees
/// the container start probes at once, the sync its first result (the initial Failure) causes
/// probes a second later, and the period runs from there. So successThreshold 3 with period 2
/// is Ready 3 s after the start — paddock used to run all three probes within milliseconds of
/// it. A container started by a later sync (after an init container) is first seen a relist
/// after that sync. Startup and liveness probes are never triggered: their period runs from
/// the worker's start.
#[tokio::test(start_paused = true)]
async fn early_probe_timeline_after_a_container_start() {
    let s = Duration::from_secs;
    let cases = [
        (
            "readiness, successThreshold 3, period 2",
            serde_json::json!({"readinessProbe": {"exec": {"command": ["ready"]},
                "periodSeconds": 2, "successThreshold": 3}}),
            "ready",
            vec![s(0), s(1), s(3), s(5), s(7), s(9)],
            Some(s(3)),
        ),
        (
            // The triggers at 0 and 1 s fall within the delay; the ticker, reset by the second,
            // reaches 5 s at its second tick.
            "readiness, successThreshold 3, period 2, initialDelaySeconds 5",
            serde_json::json!({"readinessProbe": {"exec": {"command": ["ready"]},
                "periodSeconds": 2, "successThreshold": 3, "initialDelaySeconds": 5}}),
            "ready",
            vec![s(5), s(7), s(9)],
            Some(s(9)),
        ),
        (
            // Startup is probed at its first tick; its success is a pod sync, which triggers
            // the readiness probe at once.
            "startup period 3, then readiness period 2",
            serde_json::json!({
                "startupProbe": {"exec": {"command": ["started"]}, "periodSeconds": 3},
                "readinessProbe": {"exec": {"command": ["ready"]}, "periodSeconds": 2}}),
            "started",
            vec![s(3)],
            Some(s(3)),
        ),
        (
            // The init container exits at 2 s; the sync that starts app is at a relist, the
            // sync that sees app running one relist later.
            "readiness, successThreshold 3, period 2, after an init container",
            serde_json::json!({"readinessProbe": {"exec": {"command": ["ready"]},
                "periodSeconds": 2, "successThreshold": 3}}),
            "ready",
            vec![s(1), s(2), s(4), s(6)],
            Some(s(4)),
        ),
        (
            // The first look is at the worker's creation, before the container started.
            "liveness, period 2",
            serde_json::json!({"livenessProbe": {"exec": {"command": ["live"]},
                "periodSeconds": 2}}),
            "live",
            vec![s(2), s(4), s(6), s(8)],
            Some(s(0)),
        ),
        (
            "liveness, period 2, initialDelaySeconds 3",
            serde_json::json!({"livenessProbe": {"exec": {"command": ["live"]},
                "periodSeconds": 2, "initialDelaySeconds": 3}}),
            "live",
            vec![s(4), s(6), s(8)],
            Some(s(0)),
        ),
    ];
    for (name, probes, probe, want, want_ready) in cases {
        let e = env();
        let mut c = serde_json::json!({"name": "app", "image": "busybox", "command": ["run"]});
        for (k, v) in probes.as_object().unwrap() {
            c[k] = v.clone();
        }
        let mut spec = serde_json::json!({"containers": [c]});
        if name.contains("init container") {
            e.fake
                .scripts
                .lock()
                .insert("init".into(), Script::ExitAfter(s(2), 0));
            spec["initContainers"] =
                serde_json::json!([{"name": "init", "image": "busybox", "command": ["init"]}]);
        }
        let p = pod(serde_json::json!({ "spec": spec }));
        let w = PodWorker::spawn(e.shared.clone(), p, None);
        tokio::time::sleep(s(10) - Duration::from_millis(1)).await;
        let (runs, ready) = probe_timeline(&e.fake, probe);
        assert_eq!(runs, want, "{name}: {probe} probe runs");
        assert_eq!(ready, want_ready, "{name}: Ready");
        w.send(PodMsg::Removed);
        w.join().await;
    }
}

#[tokio::test(start_paused = true)]
async fn an_ephemeral_container_starts_once_is_never_restarted_and_is_reported_apart() {
    let e = env();
    e.fake.scripts.lock().insert(
        "debugger".into(),
        Script::ExitAfter(Duration::from_secs(5), 1),
    );
    let p = pod(serde_json::json!({}));
    let w = PodWorker::spawn(e.shared.clone(), p.clone(), None);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // `kubectl debug` adds one through the ephemeralcontainers subresource.
    let mut updated = (*p).clone();
    if let Some(spec) = updated.spec.as_mut() {
        spec.ephemeral_containers = Some(vec![
            serde_json::from_value(serde_json::json!({
                "name": "debugger", "image": "busybox", "command": ["sh"],
                "targetContainerName": "app", "stdin": true, "tty": true
            }))
            .unwrap(),
        ]);
    }
    w.send(PodMsg::Update(Arc::new(updated)));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let last = e.writer.statuses.lock().last().cloned().unwrap();
    let eph = last.ephemeral_container_statuses.clone().unwrap();
    assert_eq!(eph.len(), 1);
    assert_eq!(eph[0].name, "debugger");
    assert!(eph[0].state.as_ref().unwrap().running.is_some(), "{eph:?}");
    assert!(!eph[0].ready);
    // Not a container of the pod's readiness or of `containerStatuses`.
    assert_eq!(last.container_statuses.as_ref().unwrap().len(), 1);
    assert!(
        last.conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    // It exits with 1: terminated, never started again.
    tokio::time::sleep(Duration::from_secs(600)).await;
    let starts: Vec<String> = e.fake.starts.lock().iter().map(|s| s.0.clone()).collect();
    assert_eq!(
        starts.iter().filter(|n| *n == "debugger").count(),
        1,
        "{starts:?}"
    );
    let last = e.writer.statuses.lock().last().cloned().unwrap();
    let eph = last.ephemeral_container_statuses.unwrap();
    let t = eph[0].state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(t.exit_code, 1);
    assert_eq!(eph[0].restart_count, 0);
    assert_eq!(last.phase.as_deref(), Some("Running"));
    w.send(PodMsg::Removed);
    w.join().await;
}
