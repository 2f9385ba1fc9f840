//! API server benchmark (issue 2). Run: `cargo bench -p paddock --bench apiserver`.
//!
//! Starts the real `paddock server` binary (this build) and measures, each against a baseline
//! measured in the same run so the printed ratios mean something on a shared machine:
//! - durable creates/s with 8 concurrent HTTPS clients (baseline: the same against `--memory`);
//! - LIST of 5,000 pods as a Table, p50/p99 (baseline: the same list as plain JSON);
//! - 100 watchers each receiving 1,000 updates: delivery latency p50/p99;
//! - process start → `/readyz` answering (baseline: start → exit of `paddock --version`);
//! - server RSS idle and with 5,000 pods.
//!
//! Targets (issue 2): ≥ 2,000 durable creates/s, watch delivery p99 ≤ 50 ms, `/readyz` within
//! 100 ms of start, idle RSS ≤ 20 MB. The load generator shares the 2 cores with the server.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_paddock");

struct Proc {
    child: Child,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server; returns it and the wall time from spawn to the kubeconfig line.
fn start(memory: bool) -> (Proc, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(BIN);
    cmd.args(["server", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if memory {
        cmd.arg("--memory");
    }
    let t0 = std::time::SystemTime::now();
    let mut child = cmd.spawn().expect("spawn paddock");
    let stdout = child.stdout.take().expect("stdout");
    let mut kubeconfig = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read stdout");
        if let Some(p) = line.strip_prefix("export KUBECONFIG=") {
            kubeconfig = Some(PathBuf::from(p));
            break;
        }
    }
    let ready = t0.elapsed().expect("clock");
    let kubeconfig = kubeconfig.expect("server printed no kubeconfig");
    (
        Proc {
            child,
            kubeconfig,
            _dir: dir,
        },
        ready,
    )
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "main", "image": "example/web:1.0",
            "command": ["/bin/sleep", "3600"], "ports": [{"containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}}}]}
    }))
    .expect("pod")
}

/// Creates `total` pods with 8 concurrent clients; returns creates per second.
async fn creates_per_sec(c: &kube::Client, prefix: &str, total: usize) -> f64 {
    let t0 = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let api: Api<Pod> = Api::namespaced(c.clone(), "default");
        let prefix = prefix.to_string();
        tasks.push(tokio::spawn(async move {
            for i in (w..total).step_by(8) {
                api.create(&PostParams::default(), &pod(&format!("{prefix}-{i}")))
                    .await
                    .expect("create");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    total as f64 / t0.elapsed().as_secs_f64()
}

async fn list_latencies(c: &kube::Client, table: bool, rounds: usize) -> Vec<f64> {
    let accept = if table {
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    } else {
        "application/json"
    };
    let mut out = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let req = http::Request::get("/api/v1/namespaces/default/pods")
            .header("Accept", accept)
            .body(Vec::new())
            .expect("request");
        let t0 = tokio::time::Instant::now();
        let text = c.request_text(req).await.expect("list");
        out.push(t0.elapsed().as_secs_f64() * 1e3);
        assert!(text.len() > 1000);
    }
    out.sort_by(f64::total_cmp);
    out
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_micros()
}

/// 100 watchers on one ConfigMap; 1,000 updates each stamped with the send time; returns
/// per-delivery latencies in ms.
async fn watch_latencies(c: &kube::Client) -> Vec<f64> {
    const WATCHERS: usize = 100;
    const UPDATES: usize = 1000;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "watched"}, "data": {"t": "0"}
    }))
    .expect("cm");
    let created = api
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let rv = created.metadata.resource_version.clone().expect("rv");
    let lat = Arc::new(std::sync::Mutex::<Vec<f64>>::default());
    let mut tasks = Vec::new();
    for _ in 0..WATCHERS {
        let api = api.clone();
        let rv = rv.clone();
        let lat = lat.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = 0;
            let mut rv = rv;
            let mut mine = Vec::with_capacity(UPDATES);
            while got < UPDATES {
                let wp = WatchParams::default()
                    .fields("metadata.name=watched")
                    .timeout(290);
                let mut stream = api.watch(&wp, &rv).await.expect("watch").boxed();
                while let Some(ev) = stream.try_next().await.expect("watch stream") {
                    if let WatchEvent::Modified(o) = ev {
                        rv = o.metadata.resource_version.clone().unwrap_or_default();
                        let sent: u128 = o
                            .data
                            .as_ref()
                            .and_then(|d| d.get("t"))
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(0);
                        mine.push((now_us().saturating_sub(sent)) as f64 / 1e3);
                        got += 1;
                        if got == UPDATES {
                            break;
                        }
                    }
                }
            }
            lat.lock().expect("latencies").extend(mine);
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // let all watches connect
    for _ in 0..UPDATES {
        let patch = serde_json::json!({"data": {"t": now_us().to_string()}});
        api.patch("watched", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .expect("patch");
    }
    for t in tasks {
        t.await.expect("watcher");
    }
    let mut v = std::mem::take(&mut *lat.lock().expect("latencies"));
    v.sort_by(f64::total_cmp);
    v
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // Start-up: baseline is the binary's own start and exit.
    let mut base = Vec::new();
    for _ in 0..5 {
        let t0 = SystemTime::now();
        Command::new(BIN)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .expect("version");
        base.push(t0.elapsed().expect("clock").as_secs_f64() * 1e3);
    }
    base.sort_by(f64::total_cmp);
    let mut ready = Vec::new();
    for _ in 0..5 {
        let (p, t) = start(false);
        ready.push(t.as_secs_f64() * 1e3);
        drop(p);
    }
    ready.sort_by(f64::total_cmp);
    println!(
        "start → readyz (durable store): p50 {:.1} ms (target ≤ 100 ms); baseline `paddock --version` p50 {:.1} ms; ratio {:.1}×",
        pct(&ready, 0.5),
        pct(&base, 0.5),
        pct(&ready, 0.5) / pct(&base, 0.5)
    );

    let total = if quick { 800 } else { 5000 };
    let (mem, _) = start(true);
    let (dur, _) = start(false);
    std::thread::sleep(Duration::from_millis(300));
    let idle = common::usage(dur.child.id()).0;
    println!(
        "RSS idle (durable): {:.1} MB (target ≤ 20 MB)",
        idle as f64 / 1024.0
    );
    rt.block_on(async {
        let cm = common::client(&mem.kubeconfig).await;
        let cd = common::client(&dur.kubeconfig).await;
        let m = creates_per_sec(&cm, "p", total).await;
        let d = creates_per_sec(&cd, "p", total).await;
        println!(
            "creates/s, 8 clients, {total} pods: durable {d:.0}/s (target ≥ 2,000), memory baseline {m:.0}/s, durable/memory {:.2}",
            d / m
        );
        println!("RSS with {total} pods (durable): {:.1} MB", common::usage(dur.child.id()).0 as f64 / 1024.0);
        let rounds = if quick { 10 } else { 40 };
        let table = list_latencies(&cd, true, rounds).await;
        let json = list_latencies(&cd, false, rounds).await;
        println!(
            "LIST {total} pods: Table p50 {:.1} ms p99 {:.1} ms; JSON baseline p50 {:.1} ms p99 {:.1} ms; Table/JSON p50 {:.2}",
            pct(&table, 0.5),
            pct(&table, 0.99),
            pct(&json, 0.5),
            pct(&json, 0.99),
            pct(&table, 0.5) / pct(&json, 0.5)
        );
        let w = watch_latencies(&cd).await;
        println!(
            "watch delivery, 100 watchers × 1,000 updates ({} deliveries): p50 {:.2} ms p99 {:.2} ms (target p99 ≤ 50 ms)",
            w.len(),
            pct(&w, 0.5),
            pct(&w, 0.99)
        );
    });
}
