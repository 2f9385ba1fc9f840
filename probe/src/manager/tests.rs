//! The prober manager: worker set per pod, `started`/`ready` computation, triggers (paused time).

use std::sync::atomic::{AtomicUsize, Ordering};

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{
    ContainerState as K8sState, ContainerStateRunning, ContainerStateTerminated, ExecAction,
    PodSpec, Probe,
};
use tokio::time::sleep;

use super::*;
use crate::handler::exec::{ExecError, ExecOutput, ExecStatus};
use crate::types::NoEvents;
use crate::worker::{ContainerState, ContainerStatusView};

/// Exits with `code` and counts calls.
struct FakeExec {
    code: AtomicUsize,
    calls: AtomicUsize,
}

impl ExecRunner for FakeExec {
    fn run<'a>(
        &'a self,
        _argv: &'a [String],
        _timeout: Duration,
    ) -> BoxFuture<'a, Result<ExecOutput, ExecError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let code = self.code.load(Ordering::SeqCst) as i32;
        Box::pin(async move {
            Ok(ExecOutput {
                status: ExecStatus::Exited(code),
                output: Vec::new(),
            })
        })
    }
}

struct Ctx(Arc<FakeExec>);

impl ContainerContext for Ctx {
    fn exec_runner(&self, _c: &Container) -> Arc<dyn ExecRunner> {
        self.0.clone()
    }
    fn event_sink(&self, _c: &Container) -> Arc<dyn EventSink> {
        Arc::new(NoEvents)
    }
}

fn exec_probe(period: i32) -> Option<Probe> {
    Some(Probe {
        exec: Some(ExecAction {
            command: Some(vec!["check".into()]),
        }),
        period_seconds: Some(period),
        ..Default::default()
    })
}

fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
    Pod {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("uid-1".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers,
            init_containers: Some(init),
            ..Default::default()
        }),
        status: None,
    }
}

fn running_status(name: &str, id: &str) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        container_id: Some(id.into()),
        state: Some(K8sState {
            running: Some(ContainerStateRunning {
                started_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::from_second(
                        i64::try_from(
                            SystemTime::now()
                                .duration_since(SystemTime::UNIX_EPOCH)
                                .map(|d| d.as_secs())
                                .unwrap_or(0),
                        )
                        .unwrap_or(0),
                    )
                    .expect("timestamp"),
                )),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn view(name: &str, id: &str, started: bool) -> PodStatusView {
    PodStatusView {
        pod_ip: "10.0.0.9".into(),
        containers: vec![ContainerStatusView {
            name: name.into(),
            container_id: Arc::from(id),
            state: ContainerState::Running {
                started_at: Instant::now(),
            },
            started: Some(started),
        }],
        ..Default::default()
    }
}

fn manager() -> ProbeManager {
    let env = HandlerEnv::new("kube-probe/1.35").expect("tls");
    ProbeManager::new(env)
        .0
        .started_ago(Duration::from_secs(3600))
}

fn fake(code: usize) -> Arc<FakeExec> {
    Arc::new(FakeExec {
        code: AtomicUsize::new(code),
        calls: AtomicUsize::new(0),
    })
}

#[tokio::test(start_paused = true)]
async fn workers_for_regular_and_restartable_init_containers_only() {
    let m = manager();
    let app = Container {
        name: "app".into(),
        startup_probe: exec_probe(10),
        readiness_probe: exec_probe(10),
        liveness_probe: exec_probe(10),
        ..Default::default()
    };
    let sidecar = Container {
        name: "proxy".into(),
        restart_policy: Some("Always".into()),
        readiness_probe: exec_probe(10),
        ..Default::default()
    };
    let init = Container {
        name: "migrate".into(),
        ..Default::default()
    };
    let p = pod(vec![app], vec![init, sidecar]);
    m.add_pod(&p, &Ctx(fake(0)));
    assert_eq!(m.worker_count(), 4);
    // Adding the same pod again creates nothing.
    m.add_pod(&p, &Ctx(fake(0)));
    assert_eq!(m.worker_count(), 4);
    m.stop_liveness_and_startup(&p);
    assert_eq!(m.worker_count(), 2);
    m.remove_pod("uid-1");
    assert_eq!(m.worker_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn no_probes_means_started_and_ready_once_running() {
    let m = manager();
    let p = pod(
        vec![Container {
            name: "app".into(),
            ..Default::default()
        }],
        vec![],
    );
    m.add_pod(&p, &Ctx(fake(0)));
    let mut st = PodStatus {
        container_statuses: Some(vec![running_status("app", "c://1")]),
        ..Default::default()
    };
    m.update_pod_status(&p, &mut st);
    let cs = &st.container_statuses.as_ref().expect("statuses")[0];
    assert_eq!(cs.started, Some(true));
    assert!(cs.ready);
}

#[tokio::test(start_paused = true)]
async fn startup_probe_gates_started_until_it_succeeds() {
    let m = manager();
    let exec = fake(1);
    let app = Container {
        name: "app".into(),
        startup_probe: exec_probe(1),
        ..Default::default()
    };
    let p = pod(vec![app], vec![]);
    m.set_pod_status("uid-1", view("app", "c://1", false));
    m.add_pod(&p, &Ctx(exec.clone()));
    let mut st = PodStatus {
        container_statuses: Some(vec![running_status("app", "c://1")]),
        ..Default::default()
    };
    sleep(Duration::from_millis(100)).await;
    m.update_pod_status(&p, &mut st);
    assert_eq!(
        st.container_statuses.as_ref().expect("statuses")[0].started,
        Some(false)
    );
    exec.code.store(0, Ordering::SeqCst);
    sleep(Duration::from_secs(1)).await;
    m.update_pod_status(&p, &mut st);
    let cs = &st.container_statuses.as_ref().expect("statuses")[0];
    assert_eq!(cs.started, Some(true));
    assert!(cs.ready, "no readiness probe: ready once started");
}

#[tokio::test(start_paused = true)]
async fn unready_container_gets_an_immediate_readiness_probe() {
    let m = manager();
    let exec = fake(1);
    let app = Container {
        name: "app".into(),
        readiness_probe: exec_probe(60),
        ..Default::default()
    };
    let p = pod(vec![app], vec![]);
    // As in the kubelet's SyncPod: the status first (SetPodStatus), then the workers (AddPod),
    // whose first look sees it.
    m.set_pod_status("uid-1", view("app", "c://1", true));
    m.add_pod(&p, &Ctx(exec.clone()));
    sleep(Duration::from_millis(100)).await;
    assert_eq!(exec.calls.load(Ordering::SeqCst), 1);
    let mut st = PodStatus {
        container_statuses: Some(vec![running_status("app", "c://1")]),
        ..Default::default()
    };
    exec.code.store(0, Ordering::SeqCst);
    m.update_pod_status(&p, &mut st);
    assert!(!st.container_statuses.as_ref().expect("statuses")[0].ready);
    // The trigger ran the probe at once, not 60 s later.
    sleep(Duration::from_millis(100)).await;
    assert_eq!(exec.calls.load(Ordering::SeqCst), 2);
    m.update_pod_status(&p, &mut st);
    assert!(st.container_statuses.as_ref().expect("statuses")[0].ready);
}

#[tokio::test(start_paused = true)]
async fn regular_init_container_is_ready_when_it_exited_zero() {
    let m = manager();
    let init = Container {
        name: "migrate".into(),
        ..Default::default()
    };
    let p = pod(
        vec![Container {
            name: "app".into(),
            ..Default::default()
        }],
        vec![init],
    );
    let mut done = ContainerStatus {
        name: "migrate".into(),
        container_id: Some("c://i".into()),
        state: Some(K8sState {
            terminated: Some(ContainerStateTerminated {
                exit_code: 0,
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut st = PodStatus {
        init_container_statuses: Some(vec![done.clone()]),
        ..Default::default()
    };
    m.update_pod_status(&p, &mut st);
    assert!(st.init_container_statuses.as_ref().expect("statuses")[0].ready);
    if let Some(t) = done.state.as_mut().and_then(|s| s.terminated.as_mut()) {
        t.exit_code = 1;
    }
    let mut st = PodStatus {
        init_container_statuses: Some(vec![done]),
        ..Default::default()
    };
    m.update_pod_status(&p, &mut st);
    assert!(!st.init_container_statuses.as_ref().expect("statuses")[0].ready);
}
