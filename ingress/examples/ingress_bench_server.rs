//! The Ingress data path alone, for `bench/ingress.sh`: plain HTTP on LISTEN for one Ingress
//! (class `paddock`, host `bench.example`, `/` Prefix) to a Service whose ready endpoints are
//! the BACKEND addresses (same port), started from a multi-threaded runtime as in the node
//! agent (`ingress::serve::run` serves on worker threads of its own), until its stdin closes.
//!
//! `ingress_bench_server LISTEN BACKEND...`

use std::net::SocketAddr;

use anyhow::Context;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

// The allocator the paddock binary runs with.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args.next().context("LISTEN")?.parse()?;
    let backends: Vec<SocketAddr> = args.map(|a| a.parse()).collect::<Result<_, _>>()?;
    let port = backends.first().context("BACKEND")?.port();
    let router = ingress::Router::new();
    router.update_service(&serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"clusterIP": "10.96.0.9", "ports": [{"name": "http", "port": 80, "targetPort": port}]},
    }))?);
    let endpoints: Vec<serde_json::Value> = backends
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({"addresses": [b.ip().to_string()], "conditions": {"ready": true, "serving": true},
                   "targetRef": {"kind": "Pod", "name": format!("web-{i}"), "uid": format!("uid-{i}")}})
        })
        .collect();
    router.update_slice(&serde_json::from_value(json!({
        "metadata": {"name": "web-abc", "namespace": "default",
                     "labels": {"kubernetes.io/service-name": "web"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints,
    }))?);
    router.update_ingress(serde_json::from_value(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"ingressClassName": "paddock", "rules": [{"host": "bench.example", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
        ]}}]},
    }))?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let config = ingress::serve::ServeConfig {
            http: vec![listen],
            ..ingress::serve::ServeConfig::default()
        };
        let stop = CancellationToken::new();
        let run = tokio::spawn(ingress::serve::run(router, config, stop.clone()));
        println!("ready");
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while stdin.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
        stop.cancel();
        let _ = run.await;
        anyhow::Ok(())
    })
}
