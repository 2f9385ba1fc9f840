//! Store benchmark (plain `harness = false` main; run with `cargo bench -p store`).
//!
//! 1. Creates/s with 8 concurrent tasks: durable redb backend vs the memory backend (the
//!    baseline, same run); prints the ratio and the 2,000/s target.
//! 2. Watch delivery: 100 watchers while 8 tasks make 1,000 updates on the durable backend;
//!    prints p50/p99 latency from issuing the write to the watcher receiving it (target p99
//!    <= 50 ms), against the same fan-out on the memory backend.

use std::time::Duration;

use serde_json::{Value, json};
use store::{Key, Store};
use tokio::time::Instant;

const TASKS: usize = 8;
const CREATES: usize = 8_000;
const WATCHERS: usize = 100;
const UPDATES: usize = 1_000;

/// A pod-sized object (~1.5 KB of JSON).
fn pod(name: &str, t: u64) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "bench", "uid": "0d3c7f4e-4b8b-4a57-9d55-0f7c0b7b9e11",
            "labels": {"app": "web", "pod-template-hash": "5d8f7c9b6d"},
            "annotations": {"t": t.to_string()},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7c9b6d",
                "uid": "6f1c2a0e-9a4e-4f4b-8a8e-7e0c1d2b3a4f", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "command": ["/bin/sh", "-c", "exec nginx -g 'daemon off;'"],
            "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5, "failureThreshold": 3},
            "livenessProbe": {"tcpSocket": {"port": 80}, "initialDelaySeconds": 10},
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            "env": [{"name": "MODE", "value": "production"}, {"name": "LOG_LEVEL", "value": "info"}]}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "nodeName": "node-1",
            "schedulerName": "default-scheduler", "dnsPolicy": "ClusterFirst"},
        "status": {"phase": "Running", "podIP": "10.244.0.17", "hostIP": "192.168.1.10",
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}]}
    })
}

async fn creates_per_sec(store: &Store) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..CREATES / TASKS {
                let name = format!("p-{t}-{i}");
                s.create(Key::new("pods", "bench", &name), pod(&name, 0))
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(CREATES as f64 / start.elapsed().as_secs_f64())
}

/// Returns (p50, p99) delivery latency of `UPDATES` updates to `WATCHERS` watchers.
async fn watch_latency(store: &Store) -> anyhow::Result<(Duration, Duration)> {
    let base = Instant::now();
    for t in 0..TASKS {
        let name = format!("w-{t}");
        store
            .create(Key::new("pods", "bench", &name), pod(&name, 0))
            .await?;
    }
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let mut w = store.watch("pods", Some("bench"), store.revision())?;
        watchers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(UPDATES);
            while lat.len() < UPDATES {
                let Some(ev) = w.next_shared().await else {
                    break;
                };
                let now = base.elapsed().as_nanos() as u64;
                let sent: u64 = ev.object["metadata"]["annotations"]["t"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(now);
                lat.push(Duration::from_nanos(now.saturating_sub(sent)));
            }
            lat
        }));
    }
    let mut writers = Vec::new();
    for t in 0..TASKS {
        let s = store.clone();
        writers.push(tokio::spawn(async move {
            let name = format!("w-{t}");
            for _ in 0..UPDATES / TASKS {
                let sent = base.elapsed().as_nanos() as u64;
                s.update(Key::new("pods", "bench", &name), pod(&name, sent), None)
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for w in writers {
        w.await??;
    }
    let mut all = Vec::with_capacity(WATCHERS * UPDATES);
    for w in watchers {
        let lat = w.await?;
        anyhow::ensure!(
            lat.len() == UPDATES,
            "a watcher got {} of {UPDATES} events",
            lat.len()
        );
        all.extend(lat);
    }
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 - 1.0) * p) as usize];
    Ok((pct(0.50), pct(0.99)))
}

fn main() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::tempdir()?;
        let memory = Store::memory();
        let mem_rate = creates_per_sec(&memory).await?;
        let durable = Store::open(&dir.path().join("bench.redb")).await?;
        let durable_rate = creates_per_sec(&durable).await?;
        println!("creates, {TASKS} concurrent tasks, {CREATES} pod-sized objects:");
        println!("  memory backend (baseline): {mem_rate:>10.0} creates/s");
        println!(
            "  redb, durable:             {durable_rate:>10.0} creates/s  = {:.3} x memory, {:.2} x the 2,000/s target",
            durable_rate / mem_rate,
            durable_rate / 2000.0
        );

        let (m50, m99) = watch_latency(&Store::memory()).await?;
        let (d50, d99) = watch_latency(&durable).await?;
        println!("watch delivery, {WATCHERS} watchers x {UPDATES} updates from {TASKS} tasks (write issued -> watcher received):");
        println!("  memory backend (baseline): p50 {m50:>10.2?}  p99 {m99:>10.2?}");
        println!(
            "  redb, durable:             p50 {d50:>10.2?}  p99 {d99:>10.2?}  = p99 {:.2} x the 50 ms target",
            d99.as_secs_f64() / 0.050
        );
        durable.close().await;
        anyhow::Ok(())
    })
}
