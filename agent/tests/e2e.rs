//! End to end: a real API server (memory store), the agent with the process runtime in host
//! mode, real processes. Each test is a few seconds at most.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use agent::runtime::ProcessRuntime;
use agent::runtime::net::{NodeNetwork, PodCidr};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use rustls::pki_types::pem::PemObject;

struct Cluster {
    _dir: tempfile::TempDir,
    server: Option<apiserver::RunningServer>,
    agent: Option<agent::AgentHandle>,
    client: kube::Client,
    node: String,
    _signer: tokio_util::sync::DropGuard,
}

/// A test that fails leaves no processes behind: a fresh runtime on the same directory finds
/// what the agent started (its on-disk state) and stops it.
impl Drop for Cluster {
    fn drop(&mut self) {
        if self.agent.is_none() {
            return;
        }
        let root = self._dir.path().join("rt");
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let mut net = NodeNetwork::new(PodCidr::parse("10.244.0.0/24").unwrap());
                net.isolated = false;
                if let Ok(r) = ProcessRuntime::new(root, net) {
                    let _ = agent::runtime::Runtime::shutdown(&r, Duration::ZERO).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// An API server on a memory store under `dir`, a client for it, and the CSR signer that gives
/// agents their serving certificates (stopped when the guard drops).
async fn start_server(
    dir: &std::path::Path,
) -> (
    apiserver::RunningServer,
    kube::Client,
    tokio_util::sync::DropGuard,
) {
    let server = apiserver::start(apiserver::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.join("server"),
        memory_store: true,
        advertise_host: None,
        extra_sans: Vec::new(),
        max_connections: None,
    })
    .await
    .unwrap();
    let kc = kube::config::Kubeconfig::read_from(server.kubeconfig_path()).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(cfg).unwrap();
    let signer = tokio_util::sync::CancellationToken::new();
    let ca = server.cluster_ca();
    let authority = move |params, key: &rcgen::SubjectPublicKeyInfo, ttl| {
        ca.sign(params, key, ttl).map_err(|e| e.to_string())
    };
    tokio::spawn(controllers::csrsigning::run(
        std::sync::Arc::new(server.registry()),
        std::sync::Arc::new(authority),
        controllers::csrsigning::DEFAULT_DURATION,
        signer.clone(),
    ));
    (server, client, signer.drop_guard())
}

impl Cluster {
    async fn start() -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let (server, client, signer) = start_server(dir.path()).await;
        let node = "node-1".to_string();
        let agent = start_agent(dir.path(), &client, &node).await;
        Cluster {
            _dir: dir,
            server: Some(server),
            agent: Some(agent),
            client,
            node,
            _signer: signer,
        }
    }

    /// Stops the agent without stopping its containers, then starts a new one on the same
    /// runtime directory.
    async fn restart_agent(&mut self) {
        if let Some(a) = self.agent.take() {
            a.detach().await;
        }
        self.agent = Some(start_agent(self._dir.path(), &self.client, &self.node).await);
    }

    async fn detach_agent(&mut self) {
        if let Some(a) = self.agent.take() {
            a.detach().await;
        }
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn create(&self, yaml: &str) -> Pod {
        let mut v: serde_json::Value = serde_json::from_str(yaml).unwrap();
        v["spec"]["nodeName"] = self.node.clone().into();
        let pod: Pod = serde_json::from_value(v).unwrap();
        self.pods()
            .create(&PostParams::default(), &pod)
            .await
            .unwrap()
    }

    /// Polls pod `name` until `f` holds (at most `secs` seconds).
    async fn wait(&self, name: &str, secs: u64, f: impl Fn(&Pod) -> bool) -> Pod {
        let end = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let p = self.pods().get(name).await.unwrap();
            if f(&p) {
                return p;
            }
            if tokio::time::Instant::now() > end {
                panic!(
                    "timed out waiting for pod {name}: {}",
                    serde_json::to_string_pretty(&p.status).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn events(&self, name: &str) -> Vec<Event> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), "default");
        api.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.involved_object.name.as_deref() == Some(name))
            .collect()
    }

    /// The message of the first event `reason` about `name`, waiting up to 10 s for it.
    async fn wait_event(&self, name: &str, reason: &str) -> String {
        let end = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let found = self
                .events(name)
                .await
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(reason))
                .and_then(|e| e.message);
            if let Some(m) = found {
                return m;
            }
            assert!(
                tokio::time::Instant::now() < end,
                "no {reason} event for {name}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(mut self) {
        if let Some(a) = self.agent.take() {
            a.stop(Duration::from_secs(1)).await;
        }
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }
}

async fn start_agent(
    dir: &std::path::Path,
    client: &kube::Client,
    node: &str,
) -> agent::AgentHandle {
    start_agent_with(dir, client, node, Duration::from_secs(10)).await
}

async fn start_agent_with(
    dir: &std::path::Path,
    client: &kube::Client,
    node: &str,
    lease_interval: Duration,
) -> agent::AgentHandle {
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut net = NodeNetwork::new(PodCidr::parse("10.244.0.0/24").unwrap());
    net.isolated = false;
    net.node_ip = ip;
    let rt = ProcessRuntime::new(dir.join("rt"), net).unwrap();
    let mut config = agent::AgentConfig::new(node, client.clone(), Arc::new(rt), dir.into(), ip);
    config.pod_cidr = "10.244.0.0/24".into();
    config.lease_interval = lease_interval;
    config.serve_token = Some(AGENT_TOKEN.into());
    agent::start(config).await.unwrap()
}

fn condition(p: &Pod, t: &str) -> Option<String> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == t)
        .map(|c| c.status.clone())
}

fn restarts(p: &Pod) -> i32 {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .map_or(0, |c| c.restart_count)
}

fn waiting_reason(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .state
        .as_ref()?
        .waiting
        .as_ref()?
        .reason
        .clone()
}

#[tokio::test]
async fn a_pod_runs_becomes_ready_and_is_removed_on_delete() {
    let c = Cluster::start().await;
    c.create(
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"},
            "spec":{"terminationGracePeriodSeconds":5,"containers":[{"name":"app","image":"busybox",
            "command":["sh","-c","echo hello; echo oops >&2; exec sleep 1000"]}]}}"#,
    )
    .await;
    let p = c
        .wait("web", 10, |p| {
            condition(p, "Ready").as_deref() == Some("True")
        })
        .await;
    // Nothing changes: the agent does not rewrite the status.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = c.pods().get("web").await.unwrap();
    assert_eq!(again.metadata.resource_version, p.metadata.resource_version);
    let st = p.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some("Running"));
    assert_eq!(st.host_ip.as_deref(), Some("127.0.0.1"));
    assert!(st.start_time.is_some());
    let cs = &st.container_statuses.unwrap()[0];
    assert!(cs.state.as_ref().unwrap().running.is_some());
    assert_eq!(cs.started, Some(true));
    assert!(
        cs.container_id
            .as_deref()
            .unwrap()
            .starts_with("paddock://")
    );
    // Node and lease exist.
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(c.client.clone());
    let node = nodes.get("node-1").await.unwrap();
    let port = node
        .status
        .as_ref()
        .unwrap()
        .daemon_endpoints
        .as_ref()
        .unwrap()
        .kubelet_endpoint
        .as_ref()
        .unwrap()
        .port;
    assert_eq!(
        port,
        i32::from(c.agent.as_ref().unwrap().local_addr().port())
    );
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(c.client.clone(), "kube-node-lease");
    assert!(leases.get("node-1").await.is_ok());
    // Logs through the agent API.
    let url = format!("https://127.0.0.1:{port}/containerLogs/default/web/app?timestamps=false");
    let body = agent_get(&url).await;
    assert_eq!(body, "hello\noops\n");
    // Events.
    let reasons: Vec<String> = c
        .events("web")
        .await
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    assert!(reasons.contains(&"Started".to_string()), "{reasons:?}");
    // Delete: graceful, then the agent removes the object.
    c.pods()
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if c.pods().get_opt("web").await.unwrap().is_none() {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "pod not removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.stop().await;
}

/// The bearer token the test agents accept.
const AGENT_TOKEN: &str = "agent-test-token";

/// TLS to an agent on loopback (its certificate is checked by the tests of the agent API).
async fn agent_tls(port: u16) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let cfg = probe::handler::http::insecure_tls_config().unwrap();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .unwrap()
}

/// A minimal HTTP/1.1 GET of the agent API with its token; returns the body.
async fn agent_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("https://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let port = host.rsplit_once(':').unwrap().1.parse().unwrap();
    let mut s = agent_tls(port).await;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {AGENT_TOKEN}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    // A TLS peer may close without close_notify; what arrived is the response.
    let _ = s.read_to_end(&mut buf).await;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// A pod `name` with one container `app` built from `container` (merged over a default) and
/// `spec` fields.
fn pod(name: &str, container: serde_json::Value, spec: serde_json::Value) -> String {
    let mut c = serde_json::json!({"name": "app", "image": "busybox"});
    for (k, v) in container.as_object().unwrap() {
        c[k] = v.clone();
    }
    let mut s = serde_json::json!({"containers": [c]});
    for (k, v) in spec.as_object().unwrap() {
        s[k] = v.clone();
    }
    serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": s})
        .to_string()
}

fn exec_probe(cmd: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut p = serde_json::json!({"exec": {"command": ["sh", "-c", cmd]}, "periodSeconds": 1, "failureThreshold": 1});
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

async fn kill_messages(c: &Cluster, name: &str) -> Vec<String> {
    c.wait_event(name, "Killing").await;
    c.events(name)
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Killing"))
        .filter_map(|e| e.message)
        .collect()
}

fn json(v: &str) -> serde_json::Value {
    serde_json::from_str(v).unwrap()
}

#[tokio::test]
async fn exec_liveness_on_a_vanishing_file_restarts_the_container() {
    let c = Cluster::start().await;
    let f = c._dir.path().join("alive");
    let f = f.display();
    c.create(&pod(
        "live",
        serde_json::json!({
            "command": ["sh", "-c", format!("touch {f}; sleep 1; rm -f {f}; exec sleep 600")],
            "livenessProbe": exec_probe(&format!("cat {f}"), json("{}")),
        }),
        json(r#"{"terminationGracePeriodSeconds": 2}"#),
    ))
    .await;
    let p = c.wait("live", 10, |p| restarts(p) >= 1).await;
    let cs = &p.status.unwrap().container_statuses.unwrap()[0];
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(last.reason.as_deref(), Some("Error"), "{last:?}");
    let msgs = kill_messages(&c, "live").await;
    assert!(
        msgs.contains(&"Container app failed liveness probe, will be restarted".to_string()),
        "{msgs:?}"
    );
    c.wait_event("live", "Unhealthy").await;
    let histories = c.agent.as_ref().unwrap().probe_histories("default", "live");
    assert_eq!(histories.len(), 1);
    let (name, ty, h) = &histories[0];
    assert_eq!((name.as_str(), *ty), ("app", probe::ProbeType::Liveness));
    assert!(
        h.snapshot()
            .iter()
            .any(|a| a.outcome == Ok(probe::ProbeResult::Failure))
    );
    c.stop().await;
}

#[tokio::test]
async fn http_liveness_turning_500_restarts_but_tcp_on_the_same_server_does_not() {
    let server = testkit::http::HttpServer::start().await.unwrap();
    let port = server.port();
    let c = Cluster::start().await;
    c.create(&pod(
        "http",
        serde_json::json!({
            "command": ["sleep", "600"],
            "livenessProbe": {"httpGet": {"path": "/health", "port": port}, "periodSeconds": 1, "failureThreshold": 1},
        }),
        json(r#"{"terminationGracePeriodSeconds": 2}"#),
    ))
    .await;
    c.create(&pod(
        "tcp",
        serde_json::json!({
            "command": ["sleep", "600"],
            "livenessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1, "failureThreshold": 1},
        }),
        json(r#"{"terminationGracePeriodSeconds": 2}"#),
    ))
    .await;
    c.wait("http", 10, |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await;
    c.wait("tcp", 10, |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await;
    server.set_health_status(500);
    c.wait("http", 10, |p| restarts(p) >= 1).await;
    let tcp = c.pods().get("tcp").await.unwrap();
    assert_eq!(restarts(&tcp), 0);
    let msg = c.wait_event("http", "Unhealthy").await;
    assert!(
        msg.starts_with("Liveness probe failed: HTTP probe failed with statuscode: 500"),
        "{msg}"
    );
    // Probes identify as the kubelet version the node reports.
    let agents: Vec<String> = server
        .requests()
        .iter()
        .filter_map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k == "user-agent")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert!(
        !agents.is_empty() && agents.iter().all(|a| a == "kube-probe/1.32"),
        "{agents:?}"
    );
    c.stop().await;
}

#[tokio::test]
async fn exec_probe_slower_than_its_timeout_fails() {
    let c = Cluster::start().await;
    c.create(&pod(
        "slow",
        serde_json::json!({
            "command": ["sleep", "600"],
            "readinessProbe": exec_probe("sleep 3", json(r#"{"timeoutSeconds": 1}"#)),
        }),
        json(r#"{"terminationGracePeriodSeconds": 2}"#),
    ))
    .await;
    c.create(&pod(
        "slowlive",
        serde_json::json!({
            "command": ["sleep", "600"],
            "livenessProbe": exec_probe("sleep 3", json(r#"{"timeoutSeconds": 1}"#)),
        }),
        json(r#"{"terminationGracePeriodSeconds": 2}"#),
    ))
    .await;
    c.wait("slowlive", 10, |p| restarts(p) >= 1).await;
    let p = c.pods().get("slow").await.unwrap();
    assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));
    assert_eq!(restarts(&p), 0);
    assert_eq!(
        c.wait_event("slow", "Unhealthy").await,
        "Readiness probe failed: command \"sh -c sleep 3\" timed out"
    );
    c.stop().await;
}

#[tokio::test]
async fn startup_probe_holds_back_a_failing_liveness_probe_and_readiness_waits() {
    let c = Cluster::start().await;
    c.create(&pod(
        "startup",
        serde_json::json!({
            "command": ["sleep", "600"],
            "startupProbe": exec_probe("false", json(r#"{"failureThreshold": 60}"#)),
            "livenessProbe": exec_probe("false", json("{}")),
        }),
        json(r#"{"terminationGracePeriodSeconds": 2}"#),
    ))
    .await;
    c.create(&pod(
        "never",
        serde_json::json!({
            "command": ["sleep", "600"],
            "readinessProbe": exec_probe("false", json("{}")),
        }),
        json(r#"{"terminationGracePeriodSeconds": 2}"#),
    ))
    .await;
    c.create(&pod(
        "delayed",
        serde_json::json!({
            "command": ["sleep", "600"],
            "readinessProbe": exec_probe("true", json(r#"{"initialDelaySeconds": 2}"#)),
        }),
        json(r#"{"terminationGracePeriodSeconds": 2}"#),
    ))
    .await;
    let p = c
        .wait("delayed", 10, |p| {
            condition(p, "Ready").as_deref() == Some("True")
        })
        .await;
    let st = p.status.unwrap();
    let started = st.container_statuses.unwrap()[0]
        .state
        .as_ref()
        .unwrap()
        .running
        .as_ref()
        .unwrap()
        .started_at
        .clone()
        .unwrap()
        .0;
    let ready_at = st
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap()
        .last_transition_time
        .unwrap()
        .0;
    let delay = ready_at.duration_since(started).as_secs_f64();
    assert!(
        delay >= 1.9,
        "ready {delay}s after start, before initialDelaySeconds"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    for name in ["startup", "never"] {
        let p = c.pods().get(name).await.unwrap();
        assert_eq!(restarts(&p), 0, "{name}");
        assert_eq!(condition(&p, "Ready").as_deref(), Some("False"), "{name}");
    }
    let p = c.pods().get("startup").await.unwrap();
    let cs = &p.status.unwrap().container_statuses.unwrap()[0];
    assert_eq!(cs.started, Some(false));
    // The same failure every second is one event with a growing count.
    let unhealthy: Vec<Event> = c
        .events("never")
        .await
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("Unhealthy"))
        .collect();
    assert_eq!(unhealthy.len(), 1, "{unhealthy:?}");
    let e = &unhealthy[0];
    assert!(e.count.unwrap_or(0) >= 2, "{e:?}");
    assert_eq!(e.message.as_deref(), Some("Readiness probe failed: "));
    assert_eq!(
        e.involved_object.field_path.as_deref(),
        Some("spec.containers{app}")
    );
    assert_eq!(
        e.source.as_ref().and_then(|s| s.host.as_deref()),
        Some("node-1")
    );
    assert!(e.last_timestamp.as_ref().unwrap().0 > e.first_timestamp.as_ref().unwrap().0);
    c.stop().await;
}

#[tokio::test]
async fn probe_grace_period_beats_a_long_pod_grace_period() {
    let c = Cluster::start().await;
    c.create(&pod(
        "stubborn",
        serde_json::json!({
            "command": ["sh", "-c", "trap '' TERM; sleep 600 & wait; sleep 600"],
            "livenessProbe": exec_probe("false", json(r#"{"terminationGracePeriodSeconds": 1}"#)),
        }),
        json(r#"{"terminationGracePeriodSeconds": 600}"#),
    ))
    .await;
    let p = c.wait("stubborn", 10, |p| restarts(p) >= 1).await;
    let cs = &p.status.unwrap().container_statuses.unwrap()[0];
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(last.exit_code, 137, "{last:?}");
    c.stop().await;
}

#[tokio::test]
async fn readiness_turns_false_during_termination_without_a_liveness_kill() {
    let c = Cluster::start().await;
    let f = c._dir.path().join("ready");
    let fs = f.display().to_string();
    std::fs::write(&f, "").unwrap();
    c.create(&pod(
        "term",
        serde_json::json!({
            "command": ["sh", "-c", "trap '' TERM; sleep 600 & wait; sleep 600"],
            "readinessProbe": exec_probe(&format!("cat {fs}"), json("{}")),
            "livenessProbe": exec_probe(&format!("cat {fs}"), json("{}")),
        }),
        json(r#"{"terminationGracePeriodSeconds": 6}"#),
    ))
    .await;
    c.wait("term", 10, |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await;
    c.pods()
        .delete("term", &DeleteParams::default())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::remove_file(&f).unwrap();
    let p = c
        .wait("term", 5, |p| {
            condition(p, "Ready").as_deref() == Some("False")
        })
        .await;
    assert!(p.metadata.deletion_timestamp.is_some());
    assert_eq!(restarts(&p), 0);
    let msgs = kill_messages(&c, "term").await;
    assert_eq!(msgs, ["Stopping container app"]);
    c.stop().await;
}

#[tokio::test]
async fn crash_loop_back_off_and_bad_containers_get_clear_statuses() {
    let c = Cluster::start().await;
    c.create(&pod(
        "crash",
        serde_json::json!({"command": ["sh", "-c", "echo bye; exit 3"],
                           "terminationMessagePolicy": "FallbackToLogsOnError"}),
        json("{}"),
    ))
    .await;
    c.create(&pod(
        "nocmd",
        serde_json::json!({"command": ["/no/such/program"]}),
        json("{}"),
    ))
    .await;
    c.create(&pod("empty", json("{}"), json("{}"))).await;
    c.create(&pod(
        "novol",
        serde_json::json!({"command": ["sleep", "600"]}),
        json(r#"{"volumes": [{"name": "cfg", "configMap": {"name": "missing"}}]}"#),
    ))
    .await;
    c.create(&pod(
        "fine",
        serde_json::json!({"command": ["sleep", "600"]}),
        json(r#"{"terminationGracePeriodSeconds": 1}"#),
    ))
    .await;
    let p = c
        .wait("crash", 10, |p| {
            restarts(p) == 1 && waiting_reason(p).as_deref() == Some("CrashLoopBackOff")
        })
        .await;
    let uid = p.metadata.uid.clone().unwrap();
    let st = p.status.unwrap();
    assert_eq!(st.phase.as_deref(), Some("Running"));
    let cs = &st.container_statuses.unwrap()[0];
    assert_eq!(
        cs.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .message
            .as_deref(),
        Some(
            format!("back-off 10s restarting failed container=app pod=crash_default({uid})")
                .as_str()
        )
    );
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
    assert_eq!(last.message.as_deref(), Some("bye\n"));
    let backoff = c.wait_event("crash", "BackOff").await;
    assert_eq!(
        backoff,
        format!("Back-off restarting failed container app in pod crash_default({uid})")
    );

    let p = c
        .wait("nocmd", 10, |p| {
            waiting_reason(p).as_deref() == Some("CrashLoopBackOff")
        })
        .await;
    let cs = &p.status.unwrap().container_statuses.unwrap()[0];
    let last = cs.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
    assert_eq!(
        (last.exit_code, last.reason.as_deref()),
        (128, Some("StartError"))
    );
    assert!(
        last.message
            .as_deref()
            .unwrap()
            .contains("/no/such/program"),
        "{last:?}"
    );

    let p = c
        .wait("empty", 10, |p| {
            waiting_reason(p).as_deref() == Some("CreateContainerConfigError")
        })
        .await;
    assert_eq!(p.status.unwrap().phase.as_deref(), Some("Pending"));
    let failed = c.wait_event("empty", "Failed").await;
    assert!(
        failed.starts_with("Error: container \"app\" has no command"),
        "{failed}"
    );
    assert_eq!(
        c.wait_event("novol", "FailedMount").await,
        "MountVolume.SetUp failed for volume \"cfg\" : configmap \"missing\" not found"
    );
    let p = c.pods().get("novol").await.unwrap();
    assert_eq!(waiting_reason(&p).as_deref(), Some("ContainerCreating"));
    c.wait("fine", 10, |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await;
    c.stop().await;
}

/// Runs `kubectl exec`'s WebSocket exchange against the agent; returns (stdout, stderr,
/// status JSON).
async fn ws_exec(
    port: u16,
    query: &str,
    protocol: &str,
    stdin: Option<&[u8]>,
) -> (String, String, serde_json::Value) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("wss://127.0.0.1:{port}/exec/default/sh/app?{query}");
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
    req.headers_mut().insert(
        "Authorization",
        format!("Bearer {AGENT_TOKEN}").parse().unwrap(),
    );
    let (mut ws, resp) = tokio_tungstenite::client_async(req, agent_tls(port).await)
        .await
        .unwrap();
    assert_eq!(
        resp.headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok()),
        Some(protocol.split(',').next().unwrap().trim())
    );
    if let Some(data) = stdin {
        let mut f = vec![0u8];
        f.extend_from_slice(data);
        ws.send(Message::Binary(f.into())).await.unwrap();
        ws.send(Message::Binary(vec![255u8, 0].into()))
            .await
            .unwrap();
    }
    let (mut out, mut err, mut status) = (Vec::new(), Vec::new(), serde_json::Value::Null);
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Binary(b) => match b.first() {
                Some(1) => out.extend_from_slice(&b[1..]),
                Some(2) => err.extend_from_slice(&b[1..]),
                Some(3) => status = serde_json::from_slice(&b[1..]).unwrap(),
                _ => {}
            },
            Message::Close(_) => break,
            _ => {}
        }
    }
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
        status,
    )
}

#[tokio::test]
async fn exec_over_websocket_v5_and_v4_with_exit_codes_and_logs_options() {
    let c = Cluster::start().await;
    c.create(&pod(
        "sh",
        serde_json::json!({"command": ["sh", "-c", "echo one; echo two; exec sleep 600"],
                           "env": [{"name": "GREETING", "value": "hi"}]}),
        json(r#"{"terminationGracePeriodSeconds": 1}"#),
    ))
    .await;
    c.wait("sh", 10, |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await;
    let port = c.agent.as_ref().unwrap().local_addr().port();
    let q = "command=sh&command=-c&command=echo%20%24GREETING%3B%20echo%20err%20%3E%262%3B%20exit%203&stdout=true&stderr=true";
    let (out, err, status) = ws_exec(port, q, "v5.channel.k8s.io", None).await;
    assert_eq!((out.as_str(), err.as_str()), ("hi\n", "err\n"));
    assert_eq!(status["status"], "Failure");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["reason"], "ExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
    // v4 (what older Python clients offer), stdin closed by the v5 close signal in v5 only.
    let q = "command=echo&command=ok&stdout=true";
    let (out, _, status) = ws_exec(port, q, "v4.channel.k8s.io", None).await;
    assert_eq!(out, "ok\n");
    assert_eq!(status, json(r#"{"metadata":{},"status":"Success"}"#));
    let q = "command=cat&stdin=true&stdout=true";
    let (out, _, status) = ws_exec(port, q, "v5.channel.k8s.io", Some(b"piped\n")).await;
    assert_eq!(out, "piped\n");
    assert_eq!(status["status"], "Success");
    // Logs: tail, limit, timestamps; a waiting container and a missing previous instance.
    let base = format!("https://127.0.0.1:{port}/containerLogs/default/sh/app");
    assert_eq!(agent_get(&format!("{base}?tailLines=1")).await, "two\n");
    assert_eq!(agent_get(&format!("{base}?limitBytes=5")).await, "one\nt");
    let ts = agent_get(&format!("{base}?timestamps=true&tailLines=1")).await;
    assert!(ts.ends_with("Z two\n") && ts.len() > 25, "{ts}");
    let prev = agent_get(&format!("{base}?previous=true")).await;
    assert!(
        prev.contains("previous terminated container \\\"app\\\" in pod \\\"sh\\\" not found"),
        "{prev}"
    );
    c.stop().await;
}

fn container_id(p: &Pod) -> Option<String> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .container_id
        .clone()
}

#[tokio::test]
async fn a_restarted_agent_adopts_running_containers_and_stops_orphans() {
    let mut c = Cluster::start().await;
    let mark = c._dir.path().join("starts");
    // A sleep length unique to this run, so other runs' processes never count.
    let secs = format!("6171.{}", std::process::id());
    let cmd = format!("echo x >> {}; exec sleep {secs}", mark.display());
    for name in ["keep", "gone"] {
        c.create(&pod(
            name,
            serde_json::json!({"command": ["sh", "-c", cmd.clone()],
                               "readinessProbe": exec_probe("true", json("{}"))}),
            json(r#"{"terminationGracePeriodSeconds": 1}"#),
        ))
        .await;
    }
    let before = c
        .wait("keep", 10, |p| {
            condition(p, "Ready").as_deref() == Some("True")
        })
        .await;
    c.wait("gone", 10, |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await;
    c.detach_agent().await;
    // While the agent is away, "gone" is removed from the API for good.
    c.pods()
        .delete("gone", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    c.restart_agent().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = c.pods().get("keep").await.unwrap();
    assert_eq!(container_id(&after), container_id(&before));
    assert_eq!(restarts(&after), 0);
    assert_eq!(condition(&after, "Ready").as_deref(), Some("True"));
    // (Readiness may flap here: the container is younger than the 10 s restart grace, so the
    // probe starts from Failure again, as the kubelet's does.)
    // Two starts in total: nothing was started twice.
    let starts = std::fs::read_to_string(&mark).unwrap();
    assert_eq!(starts.lines().count(), 2);
    // The orphan's process is gone.
    let gone_id = "gone";
    let port = c.agent.as_ref().unwrap().local_addr().port();
    let resp = agent_get(&format!(
        "https://127.0.0.1:{port}/containerLogs/default/{gone_id}/app"
    ))
    .await;
    assert!(resp.contains("NotFound"), "{resp}");
    // Exactly the adopted container remains (the orphan is stopped with a 2 s grace).
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let out = std::process::Command::new("pgrep")
            .args(["-f", &format!("^sleep {secs}$")])
            .output()
            .unwrap();
        let n = String::from_utf8_lossy(&out.stdout).lines().count();
        if n == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "{n} processes instead of 1"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.stop().await;
}

#[tokio::test]
async fn logs_follow_until_exit_and_previous_instance() {
    let c = Cluster::start().await;
    c.create(&pod(
        "follow",
        serde_json::json!({"command": ["sh", "-c", "echo a; sleep 1; echo b; sleep 0.5"]}),
        json(r#"{"restartPolicy": "Never"}"#),
    ))
    .await;
    c.create(&pod(
        "again",
        serde_json::json!({"command": ["sh", "-c", "echo run $(date +%N); exit 1"]}),
        json("{}"),
    ))
    .await;
    c.wait("follow", 10, |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .is_some_and(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()))
    })
    .await;
    let port = c.agent.as_ref().unwrap().local_addr().port();
    let body = agent_get(&format!(
        "https://127.0.0.1:{port}/containerLogs/default/follow/app?follow=true"
    ))
    .await;
    assert_eq!(body, "a\nb\n");
    let p = c
        .wait("follow", 10, |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded")
        })
        .await;
    assert_eq!(condition(&p, "Ready").as_deref(), Some("False"));
    // In CrashLoopBackOff both name the last terminated instance (the status's lastState), as
    // the kubelet's validateContainerLogStatus picks them; asked while the status stands still.
    let base = format!("https://127.0.0.1:{port}/containerLogs/default/again/app");
    let backing_off = |p: &Pod| waiting_reason(p).as_deref() == Some("CrashLoopBackOff");
    let (prev, cur) = loop {
        let before = c.wait("again", 30, backing_off).await;
        let prev = agent_get(&format!("{base}?previous=true")).await;
        let cur = agent_get(&base).await;
        let after = c.pods().get("again").await.unwrap();
        if backing_off(&after) && restarts(&after) == restarts(&before) {
            break (prev, cur);
        }
    };
    assert!(prev.starts_with("run "), "{prev}");
    assert_eq!(prev, cur);
    c.stop().await;
}

#[tokio::test]
async fn lifecycle_hooks_run_and_a_failing_post_start_kills() {
    let c = Cluster::start().await;
    let stopped = c._dir.path().join("prestop");
    let started = c._dir.path().join("poststart");
    c.create(&pod(
        "hooks",
        serde_json::json!({
            "command": ["sleep", "600"],
            "lifecycle": {
                "postStart": {"exec": {"command": ["sh", "-c", format!("echo up > {}", started.display())]}},
                "preStop": {"exec": {"command": ["sh", "-c", format!("echo down > {}", stopped.display())]}},
            },
        }),
        json(r#"{"terminationGracePeriodSeconds": 5}"#),
    ))
    .await;
    c.create(&pod(
        "badhook",
        serde_json::json!({
            "command": ["sleep", "600"],
            "lifecycle": {"postStart": {"exec": {"command": ["sh", "-c", "exit 7"]}}},
        }),
        json(r#"{"terminationGracePeriodSeconds": 1}"#),
    ))
    .await;
    c.wait("hooks", 10, |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await;
    assert_eq!(std::fs::read_to_string(&started).unwrap(), "up\n");
    c.pods()
        .delete("hooks", &DeleteParams::default())
        .await
        .unwrap();
    let msg = c.wait_event("badhook", "FailedPostStartHook").await;
    assert_eq!(msg, "PostStartHook failed");
    let kills = kill_messages(&c, "badhook").await;
    assert_eq!(kills[0], "FailedPostStartHook");
    c.wait("badhook", 10, |p| restarts(p) >= 1).await;
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while c.pods().get_opt("hooks").await.unwrap().is_some() {
        assert!(tokio::time::Instant::now() < end, "pod not removed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read_to_string(&stopped).unwrap(), "down\n");
    c.stop().await;
}

#[tokio::test]
async fn the_lease_is_renewed_and_the_node_reports_itself() {
    let mut c = Cluster::start().await;
    c.detach_agent().await;
    c.agent = Some(
        start_agent_with(
            c._dir.path(),
            &c.client,
            &c.node,
            Duration::from_millis(300),
        )
        .await,
    );
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(c.client.clone(), "kube-node-lease");
    let renew = |l: &k8s_openapi::api::coordination::v1::Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.renew_time.clone())
            .unwrap()
            .0
    };
    let first = leases.get("node-1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let later = leases.get("node-1").await.unwrap();
    assert!(renew(&later) > renew(&first));
    let spec = later.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some("node-1"));
    // Renewed every 300 ms: four intervals, in whole seconds.
    assert_eq!(spec.lease_duration_seconds, Some(1));
    let owner = &later.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", "node-1")
    );
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(c.client.clone());
    let node = nodes.get("node-1").await.unwrap();
    assert_eq!(
        node.spec.unwrap().pod_cidr.as_deref(),
        Some("10.244.0.0/24")
    );
    let st = node.status.unwrap();
    let ready = st
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_deref()),
        ("True", Some("KubeletReady"))
    );
    assert!(st.capacity.unwrap().contains_key("memory"));
    assert_eq!(st.addresses.unwrap()[0].address, "127.0.0.1");
    c.stop().await;
}

/// A client certificate of the cluster CA for `cn` in group `org`, as rustls wants it.
fn client_cert(
    ca: &apiserver::tls::ClusterCa,
    cn: &str,
    org: &str,
) -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, org);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let cert = ca.sign(params, &key, Duration::from_secs(3600)).unwrap();
    (
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
}

/// A GET of the agent API at 127.0.0.1:`port`, verifying its certificate against `ca` for
/// the address 127.0.0.1, with an optional client certificate and bearer token; returns the
/// raw response or the TLS error.
async fn verified_get(
    ca: &rustls::pki_types::CertificateDer<'static>,
    port: u16,
    path: &str,
    client: Option<(
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
    token: Option<&str>,
) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let cfg = match client {
        Some((chain, key)) => builder.with_client_auth_cert(chain, key).unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    // TLS 1.3 reports a refused client certificate on the first read.
    s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// The agent API is HTTPS with a cluster-CA certificate for the node's address, and lets in
/// the API server's client certificate (group system:masters) or the agent's token — nobody
/// else: no credentials and a wrong token are 401, another node's client certificate 403, a
/// certificate of another CA does not get through the handshake.
#[tokio::test]
async fn the_agent_api_authenticates_every_request() {
    let mut c = Cluster::start().await;
    c.detach_agent().await;
    let dir = c._dir.path().to_path_buf();
    let server = c.server.as_ref().unwrap();
    let ca = server.cluster_ca();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut net = NodeNetwork::new(PodCidr::parse("10.244.0.0/24").unwrap());
    net.isolated = false;
    net.node_ip = ip;
    let rt = ProcessRuntime::new(dir.join("rt"), net).unwrap();
    let mut config =
        agent::AgentConfig::new(&c.node, c.client.clone(), Arc::new(rt), dir.clone(), ip);
    config.serve_token = Some("s3cret".into());
    config.serve_client_ca = Some(vec![ca.cert_der().clone()]);
    c.agent = Some(agent::start(config).await.unwrap());
    c.create(&pod(
        "tls",
        serde_json::json!({"command": ["sh", "-c", "echo secure; exec sleep 600"]}),
        json(r#"{"terminationGracePeriodSeconds": 1}"#),
    ))
    .await;
    c.wait("tls", 10, |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await;
    let port = c.agent.as_ref().unwrap().local_addr().port();
    let path = "/containerLogs/default/tls/app";
    let ca_der = ca.cert_der().clone();
    let get = |client, token| verified_get(&ca_der, port, path, client, token);
    let denied = get(None, None).await.unwrap();
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    let denied = get(None, Some("wrong")).await.unwrap();
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    let ok = get(None, Some("s3cret")).await.unwrap();
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.contains("secure\n"),
        "{ok}"
    );
    // The API server's own client certificate, as it dials agents.
    let apiserver_client = client_cert(&ca, "kube-apiserver-kubelet-client", "system:masters");
    let ok = get(Some(apiserver_client), None).await.unwrap();
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.contains("secure\n"),
        "{ok}"
    );
    let node = client_cert(&ca, "system:node:node-2", "system:nodes");
    let forbidden = get(Some(node), Some("s3cret")).await.unwrap();
    assert!(forbidden.starts_with("HTTP/1.1 403"), "{forbidden}");
    assert!(
        forbidden.contains(
            "Forbidden (user=system:node:node-2, verb=get, resource=nodes, subresource=proxy)"
        ),
        "{forbidden}"
    );
    let other_dir = tempfile::tempdir().unwrap();
    let other = apiserver::tls::ClusterCa::load_or_create(other_dir.path()).unwrap();
    let stranger = client_cert(&other, "kube-apiserver-kubelet-client", "system:masters");
    let refused = get(Some(stranger), Some("s3cret")).await;
    assert!(refused.is_err(), "{refused:?}");
    c.stop().await;
}

/// Without a token and without a CA for client certificates the agent does not start (and so
/// never serves its API to anyone).
#[tokio::test]
async fn an_agent_without_authentication_refuses_to_start() {
    let mut c = Cluster::start().await;
    c.detach_agent().await;
    let dir = c._dir.path().to_path_buf();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut net = NodeNetwork::new(PodCidr::parse("10.244.0.0/24").unwrap());
    net.isolated = false;
    net.node_ip = ip;
    let rt = ProcessRuntime::new(dir.join("rt"), net).unwrap();
    let config = agent::AgentConfig::new(&c.node, c.client.clone(), Arc::new(rt), dir, ip);
    let err = agent::start(config).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "refusing to serve the agent API without authentication: give it a bearer token or the cluster CA to verify the API server's client certificate"
    );
    c.stop().await;
}

/// The serving certificate comes from the cluster CA through an approved CSR, names the node,
/// is reused by a restarted agent, and is renewed at its rotation deadline while the agent runs.
#[tokio::test]
async fn the_serving_certificate_is_issued_reused_and_rotated() {
    use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
    let mut c = Cluster::start().await;
    let ca = c.server.as_ref().unwrap().cluster_ca();
    let csrs: Api<CertificateSigningRequest> = Api::all(c.client.clone());
    let list = csrs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 1);
    let spec = &list[0].spec;
    assert_eq!(spec.signer_name, "kubernetes.io/kubelet-serving");
    assert_eq!(spec.username.as_deref(), Some("system:admin"));
    let pki = c._dir.path().join("pki");
    let cert_pem = std::fs::read(pki.join("kubelet-server.crt")).unwrap();
    let der = rustls::pki_types::CertificateDer::from_pem_slice(&cert_pem).unwrap();
    assert!(ca.issued(&der));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(pki.join("kubelet-server.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A restarted agent serves the same certificate (no new request).
    c.restart_agent().await;
    assert_eq!(
        csrs.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    assert_eq!(
        std::fs::read(pki.join("kubelet-server.crt")).unwrap(),
        cert_pem
    );

    // A certificate 69 % through its 20 s life: its rotation deadline (70–90 %) is at most 4 s
    // away. The agent starts with it and replaces it when the deadline passes.
    c.detach_agent().await;
    let now = time::OffsetDateTime::now_utc();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string(), "node-1".into()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "system:node:node-1");
    params.not_before = now - time::Duration::milliseconds(13_800);
    params.not_after = now + time::Duration::milliseconds(6_200);
    let ca_key = std::fs::read_to_string(c._dir.path().join("server/ca.key")).unwrap();
    let ca_key = rcgen::KeyPair::from_pem(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(ca.cert_der(), &ca_key).unwrap();
    let due = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(pki.join("kubelet-server.crt"), due.pem()).unwrap();
    std::fs::write(pki.join("kubelet-server.key"), key.serialize_pem()).unwrap();
    c.agent = Some(start_agent(c._dir.path(), &c.client, &c.node).await);
    let end = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let n = csrs.list(&ListParams::default()).await.unwrap().items.len();
        let now_pem = std::fs::read(pki.join("kubelet-server.crt")).unwrap();
        if n == 2 && now_pem != due.pem().into_bytes() {
            let der = rustls::pki_types::CertificateDer::from_pem_slice(&now_pem).unwrap();
            let (nb, na) = apiserver::tls::validity(&der).unwrap();
            assert_eq!((na - nb).whole_days(), 365);
            break;
        }
        assert!(tokio::time::Instant::now() < end, "not rotated");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.stop().await;
}

#[tokio::test]
async fn env_from_config_maps_secrets_and_the_downward_api() {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    let c = Cluster::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    cms.create(
        &PostParams::default(),
        &serde_json::from_value(serde_json::json!({
            "metadata": {"name": "cfg"}, "data": {"MODE": "fast", "greeting": "hello"}}))
        .unwrap(),
    )
    .await
    .unwrap();
    let secrets: Api<Secret> = Api::namespaced(c.client.clone(), "default");
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "sec"}, "stringData": {"password": "pw1"}}))
            .unwrap(),
        )
        .await
        .unwrap();
    let out = c._dir.path().join("env-out");
    c.create(&pod(
        "env",
        serde_json::json!({
            "command": ["sh", "-c", format!("echo \"$MODE $PASS $POD $GREETING\" > {}; exec sleep 600", out.display())],
            "envFrom": [{"configMapRef": {"name": "cfg"}}],
            "env": [
                {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
                {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "GREETING", "value": "$(greeting) world"},
            ],
        }),
        json(r#"{"terminationGracePeriodSeconds": 1}"#),
    ))
    .await;
    c.wait("env", 10, |p| {
        condition(p, "Ready").as_deref() == Some("True")
    })
    .await;
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    let text = loop {
        if let Ok(t) = std::fs::read_to_string(&out) {
            break t;
        }
        assert!(tokio::time::Instant::now() < end, "no output");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(text, "fast pw1 env hello world\n");
    c.stop().await;
}

/// A node started without a pod CIDR registers its Node not Ready ("network not ready") and
/// waits until the Node gets `spec.podCIDR` (from the server's node IPAM; here the test sets
/// it). The agent's status posts then keep the conditions others own (the pod network's
/// `NetworkUnavailable`): strategic merge by condition type, as the kubelet's.
#[tokio::test]
async fn a_node_without_a_pod_cidr_waits_for_one_and_its_status_keeps_others_conditions() {
    use k8s_openapi::api::core::v1::Node;
    use kube::api::{Patch, PatchParams};
    let dir = tempfile::tempdir().unwrap();
    let (server, client, _signer) = start_server(dir.path()).await;
    let id = agent::node::NodeIdentity {
        name: "waiting".into(),
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        pod_cidr: String::new(),
        port: 0,
        root_dir: dir.path().into(),
        max_pods: agent::node::MAX_PODS,
    };
    let machine = agent::node::MachineInfo::read(dir.path());
    let wait = tokio::spawn({
        let client = client.clone();
        async move { agent::node::await_pod_cidr(&client, &id, &machine).await }
    });
    let nodes: Api<Node> = Api::all(client.clone());
    let cond = |n: &Node, t: &str| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == t).cloned())
    };
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(n) = nodes.get_opt("waiting").await.unwrap()
            && let Some(ready) = cond(&n, "Ready")
        {
            assert_eq!(ready.status, "False");
            assert_eq!(ready.reason.as_deref(), Some("KubeletNotReady"));
            assert_eq!(
                ready.message.as_deref(),
                Some(agent::node::WAITING_FOR_POD_CIDR)
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "the Node was not registered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!wait.is_finished(), "returned before a pod CIDR was set");
    nodes
        .patch(
            "waiting",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"podCIDR": "10.244.3.0/24", "podCIDRs": ["10.244.3.0/24"]}})),
        )
        .await
        .unwrap();
    let cidr = tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the pod CIDR was seen")
        .unwrap()
        .unwrap();
    assert_eq!(cidr, "10.244.3.0/24");

    // The pod network's condition, then the agent's registration and status posts.
    nodes
        .patch_status(
            "waiting",
            &PatchParams::default(),
            &Patch::Strategic(serde_json::json!({"status": {"conditions": [{
                "type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated",
                "message": "RouteController created a route",
                "lastTransitionTime": "2026-01-01T00:00:00Z", "lastHeartbeatTime": "2026-01-01T00:00:00Z",
            }]}})),
        )
        .await
        .unwrap();
    let net = {
        let mut n = NodeNetwork::new(PodCidr::parse(&cidr).unwrap());
        n.isolated = false;
        n
    };
    let rt = ProcessRuntime::new(dir.path().join("rt"), net).unwrap();
    let mut config = agent::AgentConfig::new(
        "waiting",
        client.clone(),
        Arc::new(rt),
        dir.path().into(),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
    );
    config.pod_cidr = cidr;
    config.serve_token = Some(AGENT_TOKEN.into());
    config.node_status_interval = Duration::from_millis(100);
    let agent = agent::start(config).await.unwrap();
    let n = nodes.get("waiting").await.unwrap();
    assert_eq!(cond(&n, "Ready").unwrap().status, "True");
    let net = cond(&n, "NetworkUnavailable").expect("NetworkUnavailable kept");
    assert_eq!(
        (net.status.as_str(), net.reason.as_deref()),
        ("False", Some("RouteCreated"))
    );
    assert_eq!(
        n.spec.and_then(|s| s.pod_cidr).as_deref(),
        Some("10.244.3.0/24")
    );
    agent.stop(Duration::from_secs(1)).await;
    server.shutdown().await;
}
