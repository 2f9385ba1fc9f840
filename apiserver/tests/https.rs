//! The real listener: TLS with the generated CA, bearer tokens, watch streaming over a
//! socket, the body limit, ALPN, restart on the same data directory and shutdown.

#![allow(clippy::result_large_err)] // closures return the shared ApiError

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

fn tls_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(cfg)
}

async fn connect(addr: std::net::SocketAddr, ca_pem: &str) -> Sender {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(tls_config(ca_pem, &[b"http/1.1"]))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

async fn call(
    send: &mut Sender,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> (StatusCode, Value) {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let req = b
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap();
    send.ready().await.unwrap();
    let resp = send.send_request(req).await.unwrap();
    let code = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// POSTs `obj` as JSON and asserts 201.
async fn create(send: &mut Sender, token: &str, path: &str, obj: &Value) -> Value {
    let (code, body) = call(
        send,
        "POST",
        path,
        Some(token),
        Some(serde_json::to_vec(obj).unwrap()),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    body
}

fn config(dir: &std::path::Path, memory: bool) -> apiserver::Config {
    apiserver::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.to_path_buf(),
        memory_store: memory,
        advertise_host: None,
        extra_sans: Vec::new(),
        max_connections: None,
    }
}

#[tokio::test]
async fn tls_token_watch_limit_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let server = apiserver::start(config(dir.path(), true)).await.unwrap();
    let addr = server.local_addr();
    let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let token = server.token().to_string();
    assert!(
        !format!("{server:?}").contains(&token),
        "debug output shows the token"
    );

    // The kubeconfig names the real port, carries CA and token, and is private.
    let kc = std::fs::read_to_string(server.kubeconfig_path()).unwrap();
    assert!(kc.contains(&format!("server: https://127.0.0.1:{}", addr.port())));
    assert!(kc.contains(&format!("token: {token}")));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(server.kubeconfig_path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let mut c = connect(addr, &ca).await;
    let (code, body) = call(&mut c, "GET", "/api/v1/pods", None, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(body["reason"], "Unauthorized");
    let (code, _) = call(&mut c, "GET", "/api/v1/pods", Some("wrong"), None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, body) = call(&mut c, "GET", "/api/v1/pods", Some(&token), None).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["items"], json!([]));
    let (code, _) = call(&mut c, "GET", "/readyz", None, None).await;
    assert_eq!(code, StatusCode::OK);

    // A watch streams events over the socket as they happen.
    let mut w = connect(addr, &ca).await;
    let req = Request::get("/api/v1/namespaces/default/pods?watch=true")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = w.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.into_body();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}});
    create(&mut c, &token, "/api/v1/namespaces/default/pods", &pod).await;
    let frame = tokio::time::timeout(Duration::from_secs(5), stream.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let data = frame.into_data().unwrap();
    assert!(data.ends_with(b"\n"));
    let ev: Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(ev["type"], "ADDED");
    assert_eq!(ev["object"]["metadata"]["name"], "p");

    // 4 MiB body: 413, and the server keeps serving.
    let mut big = connect(addr, &ca).await;
    let (code, body) = call(
        &mut big,
        "POST",
        "/api/v1/namespaces/default/pods",
        Some(&token),
        Some(vec![b' '; 4 * 1024 * 1024]),
    )
    .await;
    assert_eq!(code, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], 413);
    let mut c2 = connect(addr, &ca).await;
    let (code, _) = call(
        &mut c2,
        "GET",
        "/api/v1/namespaces/default/pods/p",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);

    // ALPN offers h2.
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(tls_config(&ca, &[b"h2", b"http/1.1"]))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    drop(tls);

    // Shutdown ends the open watch.
    tokio::time::timeout(Duration::from_secs(10), server.shutdown())
        .await
        .unwrap();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = stream.frame().await {}
    })
    .await;
    assert!(end.is_ok());
}

#[tokio::test]
async fn restart_keeps_objects_and_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let first = apiserver::start(config(dir.path(), false)).await.unwrap();
    let token = first.token().to_string();
    let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let mut c = connect(first.local_addr(), &ca).await;
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "keep"}, "data": {"a": "1"}});
    let created = create(&mut c, &token, "/api/v1/namespaces/default/configmaps", &cm).await;
    first.shutdown().await;

    let second = apiserver::start(config(dir.path(), false)).await.unwrap();
    assert_eq!(second.token(), token);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ca.crt")).unwrap(),
        ca
    );
    let mut c = connect(second.local_addr(), &ca).await;
    let (code, got) = call(
        &mut c,
        "GET",
        "/api/v1/namespaces/default/configmaps/keep",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(got["metadata"]["uid"], created["metadata"]["uid"]);
    assert_eq!(got["data"]["a"], "1");
    second.shutdown().await;
}

/// A serving certificate of the cluster CA for `ip` (what an agent gets through its CSR).
fn agent_cert(
    server: &apiserver::RunningServer,
    ip: &str,
) -> (
    CertificateDer<'static>,
    rustls_pki_types::PrivateKeyDer<'static>,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![ip.to_string()]).unwrap();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = server
        .cluster_ca()
        .sign(params, &key, Duration::from_secs(3600))
        .unwrap();
    (
        cert.der().clone(),
        rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
}

/// A stand-in node agent on 127.0.0.1 serving TLS with `cert` and asking for a client
/// certificate of `client_ca`: logs echo the request path and query, the Authorization
/// header's length and the client certificate's common name; `/exec/…` upgrades and echoes
/// bytes back.
async fn fake_agent(
    cert: (
        CertificateDer<'static>,
        rustls_pki_types::PrivateKeyDer<'static>,
    ),
    client_ca: &str,
) -> std::net::SocketAddr {
    use axum::response::IntoResponse;
    #[derive(Clone)]
    struct Peer(String);
    async fn logs(req: axum::extract::Request) -> axum::response::Response {
        let auth = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let peer = req.extensions().get::<Peer>().map(|p| p.0.clone());
        format!(
            "{} auth={} client={}",
            req.uri(),
            auth.len(),
            peer.unwrap_or_default()
        )
        .into_response()
    }
    async fn exec(mut req: axum::extract::Request) -> axum::response::Response {
        let on = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(up) = on.await {
                let mut io = TokioIo::new(up);
                let (mut r, mut w) = tokio::io::split(&mut io);
                let _ = tokio::io::copy(&mut r, &mut w).await;
            }
        });
        let mut r = axum::response::Response::new(axum::body::Body::empty());
        *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert("upgrade", "websocket".parse().unwrap());
        r.headers_mut()
            .insert("connection", "Upgrade".parse().unwrap());
        r.headers_mut().insert(
            "sec-websocket-protocol",
            "v5.channel.k8s.io".parse().unwrap(),
        );
        r
    }
    let app = axum::Router::new()
        .route("/containerLogs/{ns}/{pod}/{c}", axum::routing::get(logs))
        .route("/exec/{ns}/{pod}/{c}", axum::routing::get(exec));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(client_ca.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![cert.0], cert.1)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let cn = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|c| c.first())
                    .and_then(|c| {
                        let (_, x) = x509_parser::parse_x509_certificate(c).ok()?;
                        let cn = x.subject().iter_common_name().next()?.as_str().ok()?;
                        Some(cn.to_string())
                    })
                    .unwrap_or_default();
                let svc = hyper::service::service_fn(move |mut req| {
                    use tower::ServiceExt;
                    req.extensions_mut().insert(Peer(cn.clone()));
                    app.clone().oneshot(req)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// A Node `n1` at `ip:port` and a pod `p` bound to it.
async fn node_and_pod(server: &apiserver::RunningServer, c: &mut Sender, ip: &str, port: u16) {
    let token = server.token().to_string();
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
        "status": {"addresses": [{"type": "InternalIP", "address": ip}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}});
    create(c, &token, "/api/v1/nodes", &node).await;
    let info = api::registry::lookup("", "v1", "nodes").unwrap();
    server
        .registry()
        .update_with(info, "", "n1", true, |n| {
            n["status"] = node["status"].clone();
            Ok(true)
        })
        .await
        .unwrap();
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"nodeName": "n1", "containers": [{"name": "main", "image": "i"}]}});
    create(c, &token, "/api/v1/namespaces/default/pods", &pod).await;
}

#[tokio::test]
async fn logs_and_exec_are_proxied_to_the_node_agent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let server = apiserver::start(config(dir.path(), true)).await.unwrap();
    let token = server.token().to_string();
    let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let agent = fake_agent(agent_cert(&server, "127.0.0.1"), &ca).await;
    let mut c = connect(server.local_addr(), &ca).await;
    node_and_pod(&server, &mut c, "127.0.0.1", agent.port()).await;

    // Logs: container defaulted, Python's `True` normalized; the API server authenticated
    // with its client certificate, not the admin token.
    c.ready().await.unwrap();
    let req = Request::get("/api/v1/namespaces/default/pods/p/log?follow=True&tailLines=3")
        .header("host", "localhost")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = c.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert_eq!(
        text,
        "/containerLogs/default/p/main?follow=true&tailLines=3 auth=0 client=kube-apiserver-kubelet-client"
    );

    // Exec: the upgrade is forwarded and bytes flow both ways.
    let tcp = tokio::net::TcpStream::connect(server.local_addr())
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(tls_config(&ca, &[b"http/1.1"]))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let head = format!(
        "GET /api/v1/namespaces/default/pods/p/exec?command=sh&stdout=true HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "connection closed before the 101");
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-protocol: v5.channel.k8s.io")
    );
    tls.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut echo))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&echo, b"ping");
    server.shutdown().await;
}

/// `GET …/pods/p/log`, which must be refused with 503; returns the Status.
async fn refused_log(c: &mut Sender, token: &str) -> Value {
    let (code, body) = call(
        c,
        "GET",
        "/api/v1/namespaces/default/pods/p/log",
        Some(token),
        None,
    )
    .await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    body
}

/// Whatever a Node object claims, the API server sends nothing — no token, no request — to an
/// address whose listener cannot prove with a cluster-CA certificate that it is that address:
/// a plain TCP listener, a self-signed certificate, another node's certificate.
#[tokio::test]
async fn agents_that_cannot_prove_their_address_get_no_request() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let server = apiserver::start(config(dir.path(), true)).await.unwrap();
    let token = server.token().to_string();
    let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let mut c = connect(server.local_addr(), &ca).await;

    // A plain listener that records every byte it gets.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut all = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(2), tcp.read(&mut buf)).await
                {
                    if n == 0 {
                        break;
                    }
                    all.extend_from_slice(&buf[..n]);
                }
                let _ = tx.send(all);
            });
        }
    });
    node_and_pod(&server, &mut c, "127.0.0.1", port).await;
    let body = refused_log(&mut c, &token).await;
    assert!(body["message"].as_str().unwrap().contains("tls"), "{body}");
    let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(!got.is_empty(), "the proxy never tried");
    assert!(!text.contains(&token), "the token was sent: {text}");
    assert!(
        !text.contains("authorization") && !text.contains("get /"),
        "{text}"
    );

    // Listeners that speak TLS: self-signed, and the cluster CA's but for another address.
    let key = rcgen::KeyPair::generate().unwrap();
    let self_signed = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let own = (
        self_signed.der().clone(),
        rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    );
    for (cert, why) in [
        (own, "invalid peer certificate: UnknownIssuer"),
        (
            agent_cert(&server, "127.0.0.2"),
            "invalid peer certificate: certificate not valid for name",
        ),
    ] {
        let agent = fake_agent(cert, &ca).await;
        let info = api::registry::lookup("", "v1", "nodes").unwrap();
        server
            .registry()
            .update_with(info, "", "n1", true, |n| {
                n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] = json!(agent.port());
                Ok(true)
            })
            .await
            .unwrap();
        let body = refused_log(&mut c, &token).await;
        let msg = body["message"].as_str().unwrap();
        assert!(msg.contains(why), "{msg}");
    }
    server.shutdown().await;
}

async fn connect_with_cert(
    addr: std::net::SocketAddr,
    ca_pem: &str,
    key_pem: &str,
    cert_pem: &str,
) -> Sender {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![cert], key)
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    send
}

#[tokio::test]
async fn client_certificates_authenticate_their_common_name_and_organizations() {
    let dir = tempfile::tempdir().unwrap();
    let server = apiserver::start(config(dir.path(), true)).await.unwrap();
    let addr = server.local_addr();
    let ca = std::fs::read_to_string(dir.path().join("ca.crt")).unwrap();
    let token = server.token().to_string();
    let (key, cert) = apiserver::x509::issue_client_certificate(
        &server.cluster_ca(),
        "jane",
        &["dev".into()],
        Duration::from_secs(3600),
    )
    .unwrap();
    let mut c = connect_with_cert(addr, &ca, &key, &cert).await;
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"});
    let (code, body) = call(
        &mut c,
        "POST",
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        None,
        Some(review.to_string().into_bytes()),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["userInfo"]["username"], "jane");
    assert_eq!(
        body["status"]["userInfo"]["groups"],
        json!(["dev", "system:authenticated"])
    );
    let (code, body) = call(&mut c, "GET", "/api/v1/namespaces/default/pods", None, None).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        body["message"],
        "pods is forbidden: User \"jane\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    // Token clients are unaffected.
    let mut t = connect(addr, &ca).await;
    let (code, _) = call(&mut t, "GET", "/api/v1/pods", Some(&token), None).await;
    assert_eq!(code, StatusCode::OK);

    // A certificate of another CA passes the handshake but authenticates nobody: 401, even on
    // a public path; a valid token on the same request still counts (upstream's union).
    let other_dir = tempfile::tempdir().unwrap();
    let other = apiserver::tls::ClusterCa::load_or_create(other_dir.path()).unwrap();
    let (key, cert) = apiserver::x509::issue_client_certificate(
        &other,
        "system:admin",
        &["system:masters".into()],
        Duration::from_secs(3600),
    )
    .unwrap();
    let mut f = connect_with_cert(addr, &ca, &key, &cert).await;
    let (code, body) = call(&mut f, "GET", "/api/v1/pods", None, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(body["message"], "Unauthorized");
    let (code, _) = call(&mut f, "GET", "/version", None, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = call(&mut f, "GET", "/api/v1/pods", Some(&token), None).await;
    assert_eq!(code, StatusCode::OK);
    server.shutdown().await;
}
