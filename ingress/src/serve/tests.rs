//! The data path against real loopback sockets: retries (refused connects, connections
//! reset before answering), hop-by-hop and forwarded headers, upgrades, and the answers to
//! bad or oversized requests and slow clients (the connection cap and the rest of the
//! client side are [`accept::serve`]'s, tested there). Upstreams are small raw-TCP servers on
//! 127.0.0.x so each test sees exactly what reached them.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::{Ingress, ServeConfig};
use crate::Router;

/// What an upstream does with each request.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Answers 200 with its address and the request head it received.
    Echo,
    /// Reads the request head, then closes without answering.
    Reset,
    /// Answers 101 and echoes bytes afterwards.
    Upgrade,
    /// Reads the request head and never answers.
    Hang,
    /// Reads the whole `Content-Length` body, then answers 200 with its length.
    Sink,
}

/// An upstream on `ip` (port chosen by the first one, reused by the others: endpoints of one
/// slice share a port). Counts the requests it saw.
async fn upstream(ip: &str, port: u16, b: Behaviour) -> (u16, Arc<AtomicUsize>) {
    let l = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), port))
        .await
        .expect("bind upstream");
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let me = ip.to_string();
    tokio::spawn(async move {
        loop {
            let Ok((mut c, _)) = l.accept().await else {
                return;
            };
            let count = count.clone();
            let me = me.clone();
            tokio::spawn(async move {
                loop {
                    let Some(head) = read_head(&mut c).await else {
                        return;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    match b {
                        Behaviour::Reset => return,
                        Behaviour::Sink => {
                            let Some(body) = read_body(&mut c, &head).await else {
                                return;
                            };
                            let len = body.len();
                            let text = format!("{len}");
                            let resp = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                                text.len()
                            );
                            if c.write_all(resp.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Behaviour::Hang => {
                            let _ = c.read(&mut [0u8; 1]).await;
                            return;
                        }
                        Behaviour::Echo => {
                            let body = format!("{me}\n{head}");
                            let resp = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nKeep-Alive: timeout=5\r\nConnection: keep-alive, X-Upstream-Secret\r\nX-Upstream-Secret: 1\r\n\r\n{body}",
                                body.len()
                            );
                            if c.write_all(resp.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        Behaviour::Upgrade => {
                            let _ = c
                                .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
                                .await;
                            let mut buf = [0u8; 64];
                            while let Ok(n) = c.read(&mut buf).await {
                                if n == 0 || c.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                            return;
                        }
                    }
                }
            });
        }
    });
    (port, seen)
}

/// Reads one request head (up to the blank line), lower-cased; `None` at EOF.
async fn read_head(c: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if c.read(&mut b).await.ok()? == 0 {
            return None;
        }
        head.push(b[0]);
    }
    Some(String::from_utf8_lossy(&head).to_ascii_lowercase())
}

/// Reads the `Content-Length` body that follows `head` (lower-cased, from [`read_head`]).
async fn read_body(c: &mut TcpStream, head: &str) -> Option<Vec<u8>> {
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).await.ok()?;
    Some(body)
}

/// A router with Service `s` (port 80 `http`) whose endpoints are `ips` on `port`, all
/// ready, behind an Ingress for host `h.example`.
fn router(ips: &[&str], port: u16) -> Arc<Router> {
    let r = Router::new();
    r.update_service(
        &serde_json::from_value(json!({
            "metadata": {"name": "s", "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80}]},
        }))
        .unwrap(),
    );
    let eps: Vec<serde_json::Value> = ips
        .iter()
        .map(|ip| json!({"addresses": [ip], "conditions": {"ready": true}}))
        .collect();
    r.update_slice(
        &serde_json::from_value(json!({
            "metadata": {"name": "s-1", "namespace": "default", "labels": {"kubernetes.io/service-name": "s"}},
            "addressType": "IPv4",
            "ports": [{"name": "http", "port": port}],
            "endpoints": eps,
        }))
        .unwrap(),
    );
    r.update_ingress(
        serde_json::from_value(json!({
            "metadata": {"name": "i", "namespace": "default"},
            "spec": {"ingressClassName": "paddock", "rules": [{"host": "h.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "s", "port": {"number": 80}}}}]}}]},
        }))
        .unwrap(),
    );
    r
}

/// Serves `router` on a loopback port; returns its address.
async fn listener(router: Arc<Router>, config: ServeConfig) -> (SocketAddr, CancellationToken) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let stop = CancellationToken::new();
    let ing = Ingress::new(router, config).expect("ingress");
    let s = stop.clone();
    tokio::spawn(async move { ing.serve(l, false, s).await });
    (addr, stop)
}

/// Sends `request` raw on a new connection and reads until the server closes or a full
/// response with a `Content-Length` body arrived: (status code, whole response text).
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = c.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .and_then(|v| v.trim().parse::<usize>().ok());
            if len.is_some_and(|len| body.len() >= len) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, text)
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: h.example\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn a_refused_connect_goes_to_another_endpoint() {
    let (port, seen) = upstream("127.0.0.12", 0, Behaviour::Echo).await;
    // 127.0.0.11 sorts first and refuses (nothing listens there).
    let r = router(&["127.0.0.11", "127.0.0.12"], port);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    for _ in 0..4 {
        let (code, text) = raw(addr, &get("/")).await;
        assert_eq!(code, 200, "{text}");
        assert!(text.contains("127.0.0.12\n"), "{text}");
    }
    assert_eq!(seen.load(Ordering::SeqCst), 4);
    // POSTs too: nothing was sent to the refusing endpoint.
    let post =
        b"POST / HTTP/1.1\r\nHost: h.example\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody";
    for _ in 0..2 {
        let (code, text) = raw(addr, post).await;
        assert_eq!(code, 200, "{text}");
    }
}

#[tokio::test]
async fn a_reset_before_answering_is_retried_once_for_idempotent_requests_only() {
    let (port, resets) = upstream("127.0.0.21", 0, Behaviour::Reset).await;
    let (_, answers) = upstream("127.0.0.22", port, Behaviour::Echo).await;
    let r = router(&["127.0.0.21", "127.0.0.22"], port);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    // Round-robin starts at .21: it drops the GET, which is retried on .22.
    let (code, text) = raw(addr, &get("/a")).await;
    assert_eq!(code, 200, "{text}");
    assert!(text.contains("127.0.0.22\n"), "{text}");
    assert_eq!(resets.load(Ordering::SeqCst), 1);
    assert_eq!(answers.load(Ordering::SeqCst), 1);
    // The next pick is .21 again: a POST with a body is not retried.
    let post = b"POST /b HTTP/1.1\r\nHost: h.example\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody";
    let (code, text) = raw(addr, post).await;
    assert_eq!(code, 502, "{text}");
    assert_eq!(resets.load(Ordering::SeqCst), 2);
    assert_eq!(answers.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_second_reset_is_not_retried_again() {
    let (port, a) = upstream("127.0.0.31", 0, Behaviour::Reset).await;
    let (_, b) = upstream("127.0.0.32", port, Behaviour::Reset).await;
    let (_, c) = upstream("127.0.0.33", port, Behaviour::Echo).await;
    let r = router(&["127.0.0.31", "127.0.0.32", "127.0.0.33"], port);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    let (code, text) = raw(addr, &get("/")).await;
    assert_eq!(code, 502, "{text}");
    assert_eq!(
        (
            a.load(Ordering::SeqCst),
            b.load(Ordering::SeqCst),
            c.load(Ordering::SeqCst)
        ),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn headers_hop_by_hop_removed_and_forwarded_set() {
    let (port, _) = upstream("127.0.0.41", 0, Behaviour::Echo).await;
    let r = router(&["127.0.0.41"], port);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    let req = b"GET /p?q=1 HTTP/1.1\r\nHost: H.example:8080\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\nX-Forwarded-For: 6.6.6.6\r\nX-Keep: yes\r\n\r\n";
    let (code, text) = raw(addr, req).await;
    assert_eq!(code, 200, "{text}");
    let (head, seen) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        seen.starts_with("127.0.0.41\nget /p?q=1 http/1.1\r\n"),
        "{seen}"
    );
    for want in [
        "host: h.example:8080\r\n",
        "x-forwarded-host: h.example:8080\r\n",
        "x-forwarded-for: 127.0.0.1\r\n",
        "x-real-ip: 127.0.0.1\r\n",
        "x-forwarded-proto: http\r\n",
        &format!("x-forwarded-port: {}\r\n", addr.port()),
        "x-keep: yes\r\n",
    ] {
        assert!(seen.contains(want), "{want:?} in {seen}");
    }
    for gone in ["x-hop", "keep-alive", "te:", "6.6.6.6"] {
        assert!(!seen.contains(gone), "{gone:?} in {seen}");
    }
    // The upstream's hop-by-hop response headers are not passed on either.
    let head = head.to_ascii_lowercase();
    assert!(
        !head.contains("x-upstream-secret") && !head.contains("keep-alive"),
        "{head}"
    );
}

#[tokio::test]
async fn bad_requests_are_answered_not_forwarded() {
    let (port, seen) = upstream("127.0.0.51", 0, Behaviour::Echo).await;
    let r = router(&["127.0.0.51"], port);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (b"GET / HTTP/1.1\r\nHost: bad host\r\n\r\n".to_vec(), 400),
        (b"GET / HTTP/1.1\r\nHost: a..b\r\n\r\n".to_vec(), 400),
        (
            b"GET / HTTP/1.1\r\nHost: h.example\r\nHost: h.example\r\n\r\n".to_vec(),
            400,
        ),
        (b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), 400),
        (
            b"GET / HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n".to_vec(),
            404,
        ),
        (
            format!(
                "GET / HTTP/1.1\r\nHost: h.example\r\nX-Big: {}\r\n\r\n",
                "a".repeat(70_000)
            )
            .into_bytes(),
            431,
        ),
        (
            b"CONNECT h.example:443 HTTP/1.1\r\nHost: h.example:443\r\nConnection: close\r\n\r\n"
                .to_vec(),
            405,
        ),
        (
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03garbage\r\n\r\n".to_vec(),
            400,
        ),
    ];
    for (req, want) in cases {
        let (code, text) = raw(addr, &req).await;
        assert_eq!(
            code,
            want,
            "{:?}: {text}",
            String::from_utf8_lossy(&req[..req.len().min(60)])
        );
    }
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    // A Service without endpoints: 503.
    let r = router(&[], port);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    assert_eq!(raw(addr, &get("/")).await.0, 503);
}

#[tokio::test]
async fn upgrades_are_spliced() {
    let (port, _) = upstream("127.0.0.61", 0, Behaviour::Upgrade).await;
    let r = router(&["127.0.0.61"], port);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(
        b"GET /ws HTTP/1.1\r\nHost: h.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await
    .unwrap();
    let head = read_head(&mut c).await.expect("a response");
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    c.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    c.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
}

#[tokio::test(start_paused = true)]
async fn a_slow_client_is_cut_off() {
    let r = router(&[], 1);
    let mut config = ServeConfig::default();
    config.limits.header_read_timeout = std::time::Duration::from_secs(10);
    config.limits.idle_timeout = std::time::Duration::from_secs(86_400);
    let (addr, _stop) = listener(r, config).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: h.ex").await.unwrap();
    // Paused time runs ahead while everyone waits: the server gives up on the head.
    let mut buf = Vec::new();
    let n = tokio::time::timeout(std::time::Duration::from_secs(30), c.read_to_end(&mut buf))
        .await
        .expect("closed within the header read timeout, long before the idle timeout")
        .unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
}

#[tokio::test]
async fn every_endpoint_refusing_is_a_502() {
    let r = router(&["127.0.0.81", "127.0.0.82"], 9);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    let (code, text) = raw(addr, &get("/")).await;
    assert_eq!(code, 502, "{text}");
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_that_never_answers_is_a_504() {
    let (port, seen) = upstream("127.0.0.91", 0, Behaviour::Hang).await;
    let r = router(&["127.0.0.91"], port);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    let (code, text) =
        tokio::time::timeout(std::time::Duration::from_secs(120), raw(addr, &get("/")))
            .await
            .expect("answered within the response header timeout");
    assert_eq!(code, 504, "{text}");
    assert_eq!(seen.load(Ordering::SeqCst), 1, "not retried");
}

#[tokio::test(start_paused = true)]
async fn a_slow_upload_that_keeps_moving_is_not_cut() {
    let (port, _) = upstream("127.0.0.101", 0, Behaviour::Sink).await;
    let r = router(&["127.0.0.101"], port);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(
        b"POST /up HTTP/1.1\r\nHost: h.example\r\nContent-Length: 9\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    // 3 pieces 40 s apart: 120 s in all, beyond the 60 s answer timeout, never 60 s idle.
    for piece in [b"abc", b"def", b"ghi"] {
        c.write_all(piece).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_secs(40)).await;
    }
    let mut out = Vec::new();
    c.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("\r\n\r\n9"),
        "{text}"
    );
}

/// An upstream on `ip` answering each request `ok` and counting (connections, requests);
/// with `close_after` it closes each connection after answering (without saying so) once
/// `close` is notified, and then sends on the returned receiver.
async fn counting_upstream(
    ip: &str,
    close_after: bool,
    close: Arc<tokio::sync::Notify>,
) -> (
    u16,
    Arc<AtomicUsize>,
    Arc<AtomicUsize>,
    tokio::sync::mpsc::Receiver<()>,
) {
    let l = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    let port = l.local_addr().unwrap().port();
    let (conns, reqs) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let (c2, r2) = (conns.clone(), reqs.clone());
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            c2.fetch_add(1, Ordering::SeqCst);
            let (r2, tx, close) = (r2.clone(), tx.clone(), close.clone());
            tokio::spawn(async move {
                while let Some(head) = read_head(&mut c).await {
                    if read_body(&mut c, &head).await.is_none() {
                        return;
                    }
                    r2.fetch_add(1, Ordering::SeqCst);
                    if c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if close_after {
                        close.notified().await;
                        drop(c);
                        let _ = tx.send(()).await;
                        return;
                    }
                }
            });
        }
    });
    (port, conns, reqs, rx)
}

/// Reads one response with a `Content-Length` body from a kept-alive connection.
async fn response(c: &mut TcpStream) -> String {
    let head = read_head(c).await.expect("a response");
    let body = read_body(c, &head).await.expect("the response's body");
    format!("{head}{}", String::from_utf8_lossy(&body))
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_and_reused() {
    let (port, conns, reqs, _) = counting_upstream("127.0.0.111", false, Arc::default()).await;
    let r = router(&["127.0.0.111"], port);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    // Two clients one after the other, three requests each.
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        for _ in 0..3 {
            c.write_all(b"GET / HTTP/1.1\r\nHost: h.example\r\n\r\n")
                .await
                .unwrap();
            let text = response(&mut c).await;
            assert!(
                text.starts_with("http/1.1 200") && text.ends_with("ok\n"),
                "{text}"
            );
        }
    }
    assert_eq!(reqs.load(Ordering::SeqCst), 6);
    assert_eq!(
        conns.load(Ordering::SeqCst),
        1,
        "one upstream connection for all"
    );
}

#[tokio::test]
async fn a_parked_connection_its_endpoint_closed_is_not_used() {
    let close = Arc::new(tokio::sync::Notify::new());
    let (port, conns, reqs, mut closed) =
        counting_upstream("127.0.0.121", true, close.clone()).await;
    let r = router(&["127.0.0.121"], port);
    let (addr, _stop) = listener(r, ServeConfig::default()).await;
    let mut c = TcpStream::connect(addr).await.unwrap();
    // A POST is never retried after it was sent: it must not go to the closed connection.
    let post = b"POST / HTTP/1.1\r\nHost: h.example\r\nContent-Length: 4\r\n\r\nbody";
    for i in 1..=3 {
        c.write_all(post).await.unwrap();
        let text = response(&mut c).await;
        assert!(text.starts_with("http/1.1 200"), "request {i}: {text}");
        // Closed while parked idle, after the response went out.
        close.notify_one();
        closed.recv().await.expect("the upstream closed");
    }
    assert_eq!(reqs.load(Ordering::SeqCst), 3);
    assert_eq!(conns.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_on_its_workers_until_shutdown() {
    let (port, _, reqs, _) = counting_upstream("127.0.0.131", false, Arc::default()).await;
    let r = router(&["127.0.0.131"], port);
    // A free port for `run`, which binds it itself.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let stop = CancellationToken::new();
    let config = ServeConfig {
        http: vec![addr],
        workers: 2,
        ..ServeConfig::default()
    };
    let run = tokio::spawn(super::run(r, config, stop.clone()));
    let mut answered = 0;
    for _ in 0..200 {
        match TcpStream::connect(addr).await {
            Ok(mut c) => {
                c.write_all(&get("/")).await.unwrap();
                let mut out = Vec::new();
                let _ = c.read_to_end(&mut out).await;
                assert!(
                    out.starts_with(b"HTTP/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(&out)
                );
                answered += 1;
                if answered == 8 {
                    break;
                }
            }
            // Not bound yet.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
        }
    }
    assert_eq!(answered, 8);
    assert_eq!(reqs.load(Ordering::SeqCst), 8);
    stop.cancel();
    run.await.unwrap().expect("run ends cleanly");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

/// The workers' `SO_REUSEPORT` sockets do not join a group another process (of the same
/// user) already listens with: the port is in use, as with one socket.
#[tokio::test]
async fn a_port_another_reuseport_group_holds_is_in_use() {
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.set_reuseport(true).unwrap();
    other.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = other.local_addr().unwrap();
    let _other = other.listen(16).unwrap();
    let err = super::listening_sockets(addr, 2).expect_err("the port is taken");
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    // A free port still binds one socket per worker.
    drop(_other);
    assert_eq!(super::listening_sockets(addr, 2).unwrap().len(), 2);
}
