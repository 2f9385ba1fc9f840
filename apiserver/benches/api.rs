//! API server benchmark (`cargo bench -p apiserver`; plain `harness = false` main).
//!
//! Each figure is printed next to a baseline measured in the same run:
//! 1. Durable creates/s through HTTPS with 8 concurrent clients (HTTP/1.1, one connection
//!    each) vs the same creates straight on the durable store (8 tasks). Target: ≥ 2,000/s.
//! 2. Listing 5,000 pods as a Table (kubectl's Accept): p50/p99 over 20 requests, vs the
//!    same list as plain JSON.
//! 3. Watch delivery with 100 HTTPS watchers: p50/p99 from sending a PATCH to each watcher
//!    reading the event (target p99 ≤ 50 ms), vs 100 watchers on the store directly.

#![allow(clippy::result_large_err)] // closures return the shared ApiError

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use tokio::time::Instant;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

const CLIENTS: usize = 8;
const CREATES: usize = 4_000;
const LIST_PODS: usize = 5_000;
const WATCHERS: usize = 100;
const UPDATES: usize = 200;
const TABLE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "web", "pod-template-hash": "5d8f7c9b6d"}},
        "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx:1.27",
            "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
            "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
            "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
            "env": [{"name": "MODE", "value": "production"}]}]}})
}

async fn connect(addr: std::net::SocketAddr, ca: &str) -> anyhow::Result<Sender> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.as_bytes())?)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(send)
}

fn req(
    method: &str,
    path: &str,
    token: &str,
    accept: &str,
    ct: &str,
    body: Vec<u8>,
) -> anyhow::Result<Request<Full<Bytes>>> {
    Ok(Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {token}"))
        .header("accept", accept)
        .header("content-type", ct)
        .body(Full::new(Bytes::from(body)))?)
}

async fn send(s: &mut Sender, r: Request<Full<Bytes>>) -> anyhow::Result<Bytes> {
    s.ready().await?;
    let resp = s.send_request(r).await?;
    let code = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        code.is_success(),
        "{code}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(body)
}

async fn create_pod(s: &mut Sender, token: &str, name: &str) -> anyhow::Result<Bytes> {
    let body = serde_json::to_vec(&pod(name))?;
    let path = "/api/v1/namespaces/default/pods";
    send(
        s,
        req(
            "POST",
            path,
            token,
            "application/json",
            "application/json",
            body,
        )?,
    )
    .await
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len().saturating_sub(1))]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let server = apiserver::start(apiserver::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.path().to_path_buf(),
        memory_store: false,
        advertise_host: None,
        extra_sans: Vec::new(),
        max_connections: None,
    })
    .await?;
    let addr = server.local_addr();
    let token = server.token().to_string();
    let ca = std::fs::read_to_string(dir.path().join("ca.crt"))?;

    // 1. Creates/s.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let (ca, token) = (ca.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = connect(addr, &ca).await?;
            for i in 0..CREATES / CLIENTS {
                create_pod(&mut s, &token, &format!("p-{c}-{i}")).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let api_rate = CREATES as f64 / start.elapsed().as_secs_f64();
    let store = server.registry().store().clone();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..CREATES / CLIENTS {
                let name = format!("b-{c}-{i}");
                store
                    .create(store::Key::new("pods", "baseline", &name), pod(&name))
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let store_rate = CREATES as f64 / start.elapsed().as_secs_f64();
    println!(
        "creates/s over HTTPS ({CLIENTS} clients, durable): {api_rate:.0}  | store baseline: {store_rate:.0}  | ratio {:.2}  | target >= 2000: {}",
        api_rate / store_rate,
        if api_rate >= 2000.0 { "met" } else { "NOT met" }
    );

    // 2. List 5,000 pods as a Table.
    let mut s = connect(addr, &ca).await?;
    let existing = CREATES;
    for i in existing..LIST_PODS {
        create_pod(&mut s, &token, &format!("l-{i}")).await?;
    }
    let mut table = Vec::new();
    let mut plain = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let b = send(
            &mut s,
            req(
                "GET",
                "/api/v1/namespaces/default/pods",
                &token,
                TABLE,
                "application/json",
                Vec::new(),
            )?,
        )
        .await?;
        table.push(t.elapsed());
        anyhow::ensure!(b.len() > 1000);
        let t = Instant::now();
        send(
            &mut s,
            req(
                "GET",
                "/api/v1/namespaces/default/pods",
                &token,
                "application/json",
                "application/json",
                Vec::new(),
            )?,
        )
        .await?;
        plain.push(t.elapsed());
    }
    let (t50, t99, p50, p99) = (
        pct(&mut table, 0.5),
        pct(&mut table, 0.99),
        pct(&mut plain, 0.5),
        pct(&mut plain, 0.99),
    );
    println!(
        "list {LIST_PODS} pods as Table: p50 {t50:?} p99 {t99:?}  | JSON baseline: p50 {p50:?} p99 {p99:?}  | ratio p50 {:.2}",
        t50.as_secs_f64() / p50.as_secs_f64()
    );

    // 3. Watch delivery with 100 HTTPS watchers.
    let target = "w-target";
    create_pod(&mut s, &token, target).await?;
    let base = Instant::now();
    let rv = store.revision();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(WATCHERS);
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let (ca, token, ready) = (ca.clone(), token.clone(), ready_tx.clone());
        watchers.push(tokio::spawn(async move {
            let mut w = connect(addr, &ca).await?;
            let path = format!("/api/v1/namespaces/default/pods?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3D{target}");
            let resp = w.send_request(req("GET", &path, &token, "application/json", "application/json", Vec::new())?).await?;
            let mut body = resp.into_body();
            ready.send(()).await?;
            let mut seen = Vec::with_capacity(UPDATES);
            let mut buf = Vec::new();
            while seen.len() < UPDATES {
                let Some(frame) = body.frame().await else { break };
                if let Ok(d) = frame?.into_data() {
                    buf.extend_from_slice(&d);
                }
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    let ev: Value = serde_json::from_slice(&line)?;
                    let sent: u64 = ev["object"]["metadata"]["annotations"]["t"].as_str().unwrap_or("0").parse()?;
                    let now = base.elapsed().as_nanos() as u64;
                    seen.push(Duration::from_nanos(now.saturating_sub(sent)));
                }
            }
            anyhow::Ok(seen)
        }));
    }
    for _ in 0..WATCHERS {
        ready_rx.recv().await;
    }
    for _ in 0..UPDATES {
        let t = base.elapsed().as_nanos() as u64;
        let patch = json!({"metadata": {"annotations": {"t": t.to_string()}}});
        send(
            &mut s,
            req(
                "PATCH",
                &format!("/api/v1/namespaces/default/pods/{target}"),
                &token,
                "application/json",
                "application/merge-patch+json",
                serde_json::to_vec(&patch)?,
            )?,
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut lat = Vec::new();
    for w in watchers {
        lat.extend(w.await??);
    }
    // Baseline: the same fan-out on store watchers.
    let mut store_watchers = Vec::new();
    let key_rv = store.revision();
    for _ in 0..WATCHERS {
        let mut w = store.watch("pods", Some("default"), key_rv)?;
        store_watchers.push(tokio::spawn(async move {
            let mut seen = Vec::with_capacity(UPDATES);
            while seen.len() < UPDATES {
                let Some(ev) = w.next_shared().await else {
                    break;
                };
                let sent: u64 = ev.object["metadata"]["annotations"]["t"]
                    .as_str()
                    .unwrap_or("0")
                    .parse()
                    .unwrap_or(0);
                seen.push(Duration::from_nanos(
                    (base.elapsed().as_nanos() as u64).saturating_sub(sent),
                ));
            }
            seen
        }));
    }
    let info = api::registry::lookup("", "v1", "pods").ok_or_else(|| anyhow::anyhow!("pods"))?;
    let registry = server.registry();
    for _ in 0..UPDATES {
        let t = base.elapsed().as_nanos() as u64;
        registry
            .update_with(info, "default", target, false, |p| {
                p["metadata"]["annotations"]["t"] = json!(t.to_string());
                Ok(true)
            })
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let mut base_lat = Vec::new();
    for w in store_watchers {
        base_lat.extend(w.await?);
    }
    let (w50, w99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    let (b50, b99) = (pct(&mut base_lat, 0.5), pct(&mut base_lat, 0.99));
    println!(
        "watch delivery, {WATCHERS} HTTPS watchers: p50 {w50:?} p99 {w99:?}  | store-watcher baseline: p50 {b50:?} p99 {b99:?}  | target p99 <= 50ms: {}",
        if w99 <= Duration::from_millis(50) {
            "met"
        } else {
            "NOT met"
        }
    );
    server.shutdown().await;
    Ok(())
}
