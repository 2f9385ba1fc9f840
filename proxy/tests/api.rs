//! The proxy fed from a real API server through kube-rs: a LoadBalancer Service and a
//! hand-written EndpointSlice (no controllers run here) become a listener on 127.0.0.1 that
//! follows the slice's `ready` condition, and the Service's `status.loadBalancer.ingress`
//! names 127.0.0.1.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, Config};
use proxy::{NodeConfig, Proxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

async fn get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).await?;
    let text = String::from_utf8_lossy(&body).to_string();
    match text.lines().next() {
        Some(l) if !l.is_empty() => Ok(l.to_string()),
        _ => Err(std::io::Error::other("empty response")),
    }
}

/// Polls `f` every 20 ms for up to 10 s.
async fn eventually<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

/// An API server on a memory store under `dir`, and a client for it.
async fn start_server(dir: &std::path::Path) -> anyhow::Result<(apiserver::RunningServer, Client)> {
    let server = apiserver::start(apiserver::Config {
        listen: "127.0.0.1:0".parse()?,
        data_dir: dir.to_path_buf(),
        memory_store: true,
        advertise_host: None,
        extra_sans: Vec::new(),
        max_connections: None,
    })
    .await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig_path())?;
    let config =
        Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default())
            .await?;
    Ok((server, Client::try_from(config)?))
}

#[tokio::test]
async fn follows_services_and_slices_from_the_api() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (server, client) = start_server(dir.path()).await?;

    let proxy = Proxy::new(
        NodeConfig {
            node_name: "n1".into(),
            node_ips: vec![],
            loopback: true,
        },
        false,
    );
    let stop = CancellationToken::new();
    tokio::spawn(proxy.clone().run(stop.clone()));
    tokio::spawn(proxy::feed::run_from_api(
        client.clone(),
        proxy.clone(),
        true,
        stop.clone(),
    ));

    let backend = testkit::http::HttpServer::start().await?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false,
                 "selector": {"app": "web"},
                 "ports": [{"name": "http", "port": port, "targetPort": "http"}]}
    }))?;
    services.create(&PostParams::default(), &svc).await?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    let slice = |ready: bool| {
        serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "web-abcde",
                         "labels": {"kubernetes.io/service-name": "web"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "protocol": "TCP", "port": backend.port()}],
            "endpoints": [{"addresses": ["127.0.0.1"],
                           "conditions": {"ready": ready, "serving": ready, "terminating": false}}]
        })
    };
    slices
        .create(
            &PostParams::default(),
            &serde_json::from_value(slice(true))?,
        )
        .await?;

    eventually("routed", || async { get(port).await.is_ok() }).await;
    assert_eq!(get(port).await?, "HTTP/1.1 200 OK");
    eventually("load balancer status", || async {
        services.get("web").await.ok().is_some_and(|s| {
            s.status
                .and_then(|s| s.load_balancer)
                .and_then(|l| l.ingress)
                .is_some_and(|i| i.first().and_then(|i| i.ip.as_deref()) == Some("127.0.0.1"))
        })
    })
    .await;

    // Not ready any more: refused.
    slices
        .patch(
            "web-abcde",
            &PatchParams::default(),
            &Patch::Merge(&slice(false)),
        )
        .await?;
    eventually("refused", || async { get(port).await.is_err() }).await;
    let served = backend.request_count();
    assert!(get(port).await.is_err());
    assert_eq!(backend.request_count(), served);

    // The service goes: so does the listener.
    services
        .delete("web", &kube::api::DeleteParams::default())
        .await?;
    eventually("closed", || async {
        TcpStream::connect(("127.0.0.1", port)).await.is_err()
    })
    .await;
    stop.cancel();
    server.shutdown().await;
    Ok(())
}

/// Records what the feed tells an observer.
#[derive(Default)]
struct Recorder(parking_lot::Mutex<Vec<String>>);

impl proxy::feed::Observer for Recorder {
    fn service(&self, svc: &Service) {
        let name = svc.metadata.name.clone().unwrap_or_default();
        self.0.lock().push(format!("service {name}"));
    }
    fn service_deleted(&self, namespace: &str, name: &str) {
        self.0
            .lock()
            .push(format!("service deleted {namespace}/{name}"));
    }
    fn slice(&self, slice: &EndpointSlice) {
        let name = slice.metadata.name.clone().unwrap_or_default();
        self.0.lock().push(format!("slice {name}"));
    }
    fn slice_deleted(&self, namespace: &str, name: &str) {
        self.0
            .lock()
            .push(format!("slice deleted {namespace}/{name}"));
    }
}

#[tokio::test]
async fn an_observer_sees_what_the_proxy_sees() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_server, client) = start_server(dir.path()).await?;
    let proxy = Proxy::new(
        NodeConfig {
            node_name: "n1".into(),
            node_ips: vec![],
            loopback: true,
        },
        false,
    );
    let recorder = std::sync::Arc::new(Recorder::default());
    let stop = CancellationToken::new();
    tokio::spawn(proxy::feed::run_from_api_with(
        client.clone(),
        proxy.clone(),
        false,
        Some(recorder.clone()),
        stop.clone(),
    ));
    let has = |what: &str| recorder.0.lock().iter().any(|e| e == what);
    // Bootstrap objects arrive through the initial list: the cluster DNS Service.
    eventually("the listed kube-dns service", || async {
        has("service kube-dns")
    })
    .await;
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "ext"},
                "spec": {"type": "ExternalName", "externalName": "example.org"}
            }))?,
        )
        .await?;
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "default");
    slices
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"name": "db-1", "labels": {"kubernetes.io/service-name": "db"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.1.0.1"]}]
            }))?,
        )
        .await?;
    // The proxy ignores ExternalName services; the observer still hears of them.
    eventually("the ExternalName service", || async { has("service ext") }).await;
    eventually("the slice", || async { has("slice db-1") }).await;
    services
        .delete("ext", &kube::api::DeleteParams::default())
        .await?;
    slices
        .delete("db-1", &kube::api::DeleteParams::default())
        .await?;
    eventually("the deletions", || async {
        has("service deleted default/ext") && has("slice deleted default/db-1")
    })
    .await;
    stop.cancel();
    Ok(())
}
