//! The proxy's data path over loopback: NodePort listeners on 127.0.0.1 in front of testkit's
//! HTTP servers and small echo servers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use proxy::{EndpointInfo, EndpointState, NodeConfig, PortInfo, Protocol, Proxy, ServiceInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// A running proxy with one NodePort service `web` (port name `p`); stops when dropped.
struct Harness {
    proxy: Arc<Proxy>,
    port: u16,
    stop: CancellationToken,
    protocol: Protocol,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn free_port(protocol: Protocol) -> u16 {
    match protocol {
        Protocol::Udp => UdpSocket::bind((LOCALHOST, 0))
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        _ => TcpListener::bind((LOCALHOST, 0))
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    }
}

async fn harness(protocol: Protocol) -> Harness {
    let proxy = Proxy::new(
        NodeConfig {
            node_name: "n1".into(),
            node_ips: vec![],
            loopback: true,
        },
        false,
    );
    let port = free_port(protocol).await;
    proxy.update_service(ServiceInfo {
        namespace: "default".into(),
        name: "web".into(),
        type_: "NodePort".into(),
        cluster_ips: vec![],
        external_ips: vec![],
        ports: vec![PortInfo {
            name: "p".into(),
            port: 80,
            node_port: Some(port),
            protocol,
        }],
        affinity: None,
        internal_local: false,
        external_local: false,
    });
    let stop = CancellationToken::new();
    tokio::spawn(proxy.clone().run(stop.clone()));
    Harness {
        proxy,
        port,
        stop,
        protocol,
    }
}

impl Harness {
    /// Sets the service's endpoints and, when one is a candidate, waits for its listener (the
    /// proxy listens only while the service has an endpoint).
    async fn set(&self, endpoints: Vec<EndpointInfo>) {
        let any = endpoints
            .iter()
            .any(|e| e.ready || (e.serving && e.terminating));
        self.proxy.set_endpoints("default", "web", endpoints);
        if any {
            self.listening().await;
        }
    }

    /// Waits until the listener is open.
    async fn listening(&self) {
        if self.protocol != Protocol::Tcp {
            tokio::time::sleep(Duration::from_millis(50)).await;
            return;
        }
        for _ in 0..500 {
            if TcpStream::connect((LOCALHOST, self.port)).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("proxy never listened on {}", self.port);
    }
}

fn endpoint(addr: SocketAddr, ready: bool, protocol: Protocol) -> EndpointInfo {
    EndpointInfo {
        ip: addr.ip(),
        ports: vec![("p".into(), protocol, addr.port())],
        ready,
        serving: ready,
        terminating: false,
        node_name: Some("n1".into()),
        pod_uid: None,
    }
}

/// One HTTP/1.1 GET through the proxy; the status line, or the I/O error.
async fn get(port: u16) -> std::io::Result<String> {
    let mut s = TcpStream::connect((LOCALHOST, port)).await?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
        .await?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).await?;
    let text = String::from_utf8_lossy(&body).to_string();
    let line = text.lines().next().unwrap_or("").to_string();
    if line.is_empty() {
        return Err(std::io::Error::other("empty response"));
    }
    Ok(line)
}

#[tokio::test]
async fn spreads_requests_over_ready_endpoints_only() {
    let h = harness(Protocol::Tcp).await;
    let a = testkit::http::HttpServer::start().await.unwrap();
    let b = testkit::http::HttpServer::start().await.unwrap();
    let not_ready = testkit::http::HttpServer::start().await.unwrap();
    h.set(vec![
        endpoint(a.addr(), true, Protocol::Tcp),
        endpoint(b.addr(), true, Protocol::Tcp),
        endpoint(not_ready.addr(), false, Protocol::Tcp),
    ])
    .await;
    for _ in 0..1000 {
        assert_eq!(get(h.port).await.unwrap(), "HTTP/1.1 200 OK");
    }
    let (na, nb) = (a.request_count(), b.request_count());
    assert_eq!(na + nb, 1000);
    assert!((400..=600).contains(&na), "split {na}/{nb}");
    assert_eq!(not_ready.request_count(), 0);
}

#[tokio::test]
async fn no_endpoints_refuses_at_once() {
    let h = harness(Protocol::Tcp).await;
    let started = tokio::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(10), get(h.port))
        .await
        .expect("a refused connection must not hang");
    // Refused by the kernel: no listener is open for a service without endpoints.
    assert_eq!(
        r.as_ref().map_err(|e| e.kind()).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "{r:?}"
    );
    // Only not-ready endpoints: refused as well.
    let not_ready = testkit::http::HttpServer::start().await.unwrap();
    h.set(vec![endpoint(not_ready.addr(), false, Protocol::Tcp)])
        .await;
    assert!(get(h.port).await.is_err());
    assert_eq!(not_ready.request_count(), 0);
    // The agent says it is ready: routed at once, before the API knows.
    h.proxy
        .set_endpoint_state(not_ready.addr().ip(), EndpointState::Ready);
    h.listening().await;
    assert_eq!(get(h.port).await.unwrap(), "HTTP/1.1 200 OK");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn refused_endpoint_is_retried_on_another() {
    let h = harness(Protocol::Tcp).await;
    let dead = testkit::tcp::refused_addr().await.unwrap();
    let live = testkit::http::HttpServer::start().await.unwrap();
    h.set(vec![
        endpoint(dead, true, Protocol::Tcp),
        endpoint(live.addr(), true, Protocol::Tcp),
    ])
    .await;
    for _ in 0..50 {
        assert_eq!(get(h.port).await.unwrap(), "HTTP/1.1 200 OK");
    }
    assert_eq!(live.request_count(), 50);
}

/// An address whose SYNs go unanswered, as a dead node's pod IP's do: a listener that never
/// accepts, with an accept queue of one, filled by `filler` (the kernel drops SYNs to a
/// listener whose accept queue is full). Checks that a connect to it does hang.
async fn blackhole() -> (tokio::net::TcpListener, TcpStream, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((LOCALHOST, 0).into()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let filler = TcpStream::connect(addr).await.unwrap();
    // Filled: a connect now waits for a SYN-ACK that does not come.
    let probe = tokio::time::timeout(Duration::from_millis(200), TcpStream::connect(addr)).await;
    assert!(
        probe.is_err(),
        "the full listener answered a connect: {probe:?}"
    );
    (listener, filler, addr)
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_connect_has_another_endpoint_raced_against_it() {
    let h = harness(Protocol::Tcp).await;
    let (_listener, _filler, dead) = blackhole().await;
    let live = testkit::http::HttpServer::start().await.unwrap();
    h.set(vec![
        endpoint(dead, true, Protocol::Tcp),
        endpoint(live.addr(), true, Protocol::Tcp),
    ])
    .await;
    // Round robin picks the unanswering endpoint first for every other request. On the
    // paused clock, each request takes the race delay at most instead of the connect timeout.
    let mut slowest = Duration::ZERO;
    for _ in 0..10 {
        let began = tokio::time::Instant::now();
        assert_eq!(get(h.port).await.unwrap(), "HTTP/1.1 200 OK");
        slowest = slowest.max(began.elapsed());
    }
    assert_eq!(live.request_count(), 10);
    println!("slowest request on the paused clock: {slowest:?}");
    assert!(
        slowest < proxy::listen::CONNECT_TIMEOUT,
        "a request waited for the connect timeout ({slowest:?})"
    );
}

#[tokio::test(start_paused = true)]
async fn a_connect_raced_by_an_unanswering_endpoint_still_reaches_the_one_that_answers() {
    // The endpoint tried first answers; the race must not hand the connection to the other.
    let h = harness(Protocol::Tcp).await;
    let (_listener, _filler, dead) = blackhole().await;
    let live = testkit::http::HttpServer::start().await.unwrap();
    h.set(vec![endpoint(live.addr(), true, Protocol::Tcp)])
        .await;
    for _ in 0..3 {
        assert_eq!(get(h.port).await.unwrap(), "HTTP/1.1 200 OK");
    }
    // Only the unanswering endpoint left: the client is reset once its connect times out.
    h.set(vec![endpoint(dead, true, Protocol::Tcp)]).await;
    let began = tokio::time::Instant::now();
    assert!(get(h.port).await.is_err());
    assert!(began.elapsed() >= proxy::listen::CONNECT_TIMEOUT);
    assert_eq!(live.request_count(), 3);
}

/// An endpoint whose process is dying: it takes each connection and its request, then resets
/// it without answering (what a killed server's socket does to what it had queued). With
/// `answer`, it first writes that many bytes of an answer; `usize::MAX`: it closes (FIN, as a
/// killed process's kernel does with a request it had read) instead of resetting.
async fn resetting_server(answer: usize) -> (SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    let l = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if answer > 0 && answer != usize::MAX {
                let _ = s.write_all(&b"HTTP/1.1 200 OK\r\n"[..answer]).await;
            }
            if answer != usize::MAX {
                let _ = s.set_zero_linger();
            }
            drop(s);
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn a_reset_before_any_answer_is_replayed_on_another_endpoint() {
    let h = harness(Protocol::Tcp).await;
    let (dying, reset) = resetting_server(0).await;
    let live = testkit::http::HttpServer::start().await.unwrap();
    h.set(vec![
        endpoint(dying, true, Protocol::Tcp),
        endpoint(live.addr(), true, Protocol::Tcp),
    ])
    .await;
    for _ in 0..50 {
        assert_eq!(get(h.port).await.unwrap(), "HTTP/1.1 200 OK");
    }
    assert_eq!(live.request_count(), 50);
    let reset = reset.load(std::sync::atomic::Ordering::SeqCst);
    assert!(reset > 5, "the dying endpoint got {reset} of 50");

    // With nowhere else to go, the client sees the reset (no hang, no endless retry).
    h.set(vec![endpoint(dying, true, Protocol::Tcp)]).await;
    let r = tokio::time::timeout(Duration::from_secs(10), get(h.port))
        .await
        .expect("no hang");
    assert!(r.is_err(), "{r:?}");
}

#[tokio::test]
async fn a_close_without_an_answer_is_replayed_unless_the_client_had_finished_sending() {
    let h = harness(Protocol::Tcp).await;
    let (closing, _) = resetting_server(usize::MAX).await;
    let live = testkit::http::HttpServer::start().await.unwrap();
    h.set(vec![
        endpoint(closing, true, Protocol::Tcp),
        endpoint(live.addr(), true, Protocol::Tcp),
    ])
    .await;
    for _ in 0..30 {
        assert_eq!(get(h.port).await.unwrap(), "HTTP/1.1 200 OK");
    }
    // A client that sent everything and shut down its side: a close is an answer (the
    // endpoint may have acted on what it read), passed on as it is.
    h.set(vec![endpoint(closing, true, Protocol::Tcp)]).await;
    let mut s = TcpStream::connect((LOCALHOST, h.port)).await.unwrap();
    s.write_all(b"fire and forget").await.unwrap();
    s.shutdown().await.unwrap();
    let mut back = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut back))
        .await
        .expect("no hang");
    assert!(matches!(r, Ok(0)), "{r:?}");
}

#[tokio::test]
async fn a_reset_after_the_endpoint_answered_is_not_replayed() {
    let h = harness(Protocol::Tcp).await;
    let (dying, _) = resetting_server(9).await;
    let live = testkit::http::HttpServer::start().await.unwrap();
    h.set(vec![
        endpoint(dying, true, Protocol::Tcp),
        endpoint(live.addr(), true, Protocol::Tcp),
    ])
    .await;
    let mut failed = 0;
    for _ in 0..40 {
        match get(h.port).await {
            Ok(line) if line == "HTTP/1.1 200 OK" => {}
            _ => failed += 1,
        }
    }
    // The half-answered ones reach the client as they are: the request may have been acted on.
    assert!(failed > 5, "{failed} of 40 failed");
    assert_eq!(live.request_count() + failed, 40);
}

/// A TCP echo server on loopback.
async fn echo_server() -> SocketAddr {
    let l = TcpListener::bind((LOCALHOST, 0)).await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn open_connection_keeps_flowing_until_its_endpoint_is_gone() {
    let h = harness(Protocol::Tcp).await;
    let echo = echo_server().await;
    h.set(vec![endpoint(echo, true, Protocol::Tcp)]).await;
    let mut s = TcpStream::connect((LOCALHOST, h.port)).await.unwrap();
    let mut buf = [0u8; 5];
    s.write_all(b"hello").await.unwrap();
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"hello");
    assert_eq!(h.proxy.active_connections(echo.ip()), 1);
    // Not ready any more (say, terminating): new connections are refused…
    h.set(vec![endpoint(echo, false, Protocol::Tcp)]).await;
    assert!(get(h.port).await.is_err());
    // …the open one still flows, and is counted (the agent waits on this to drain).
    s.write_all(b"again").await.unwrap();
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"again");
    assert_eq!(h.proxy.active_connections(echo.ip()), 1);
    // The pod is gone (no slice lists it): the connection is closed, not left hanging.
    h.set(vec![]).await;
    let end = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("closed, not hanging");
    assert!(matches!(end, Ok(0) | Err(_)), "{end:?}");
    for _ in 0..500 {
        if h.proxy.active_connections(echo.ip()) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("connection still counted after close");
}

#[tokio::test]
async fn udp_datagrams_reach_the_endpoint_and_back() {
    let h = harness(Protocol::Udp).await;
    let server = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let server_addr = server.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = server.recv_from(&mut buf).await {
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = server.send_to(&reply, from).await;
        }
    });
    h.set(vec![endpoint(server_addr, true, Protocol::Udp)])
        .await;
    let client = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    client.connect((LOCALHOST, h.port)).await.unwrap();
    let mut buf = [0u8; 1500];
    for msg in [&b"one"[..], b"two"] {
        let mut got = None;
        // The listener may still be coming up: resend until answered.
        for _ in 0..50 {
            client.send(msg).await.unwrap();
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(100), client.recv(&mut buf)).await
            {
                got = Some(buf[..n].to_vec());
                break;
            }
        }
        let mut want = b"echo:".to_vec();
        want.extend_from_slice(msg);
        assert_eq!(got.as_deref(), Some(&want[..]));
    }
}

#[tokio::test]
async fn cluster_ip_listener_with_internal_local_policy() {
    let proxy = Proxy::new(
        NodeConfig {
            node_name: "n1".into(),
            node_ips: vec![],
            loopback: false,
        },
        false,
    );
    // Any 127/8 address is local without adding it to an interface.
    let cluster_ip: IpAddr = "127.0.0.77".parse().unwrap();
    let port = free_port(Protocol::Tcp).await;
    let stop = CancellationToken::new();
    tokio::spawn(proxy.clone().run(stop.clone()));
    proxy.update_service(ServiceInfo {
        namespace: "default".into(),
        name: "web".into(),
        type_: "ClusterIP".into(),
        cluster_ips: vec![cluster_ip],
        external_ips: vec![],
        ports: vec![PortInfo {
            name: "p".into(),
            port,
            node_port: None,
            protocol: Protocol::Tcp,
        }],
        affinity: None,
        internal_local: true,
        external_local: false,
    });
    let here = testkit::http::HttpServer::start().await.unwrap();
    let elsewhere = testkit::http::HttpServer::start().await.unwrap();
    let mut remote = endpoint(elsewhere.addr(), true, Protocol::Tcp);
    remote.node_name = Some("n2".into());
    proxy.set_endpoints(
        "default",
        "web",
        vec![endpoint(here.addr(), true, Protocol::Tcp), remote],
    );
    let get_cluster = || async move {
        let mut s = TcpStream::connect((cluster_ip, port)).await?;
        s.write_all(b"GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")
            .await?;
        let mut body = Vec::new();
        s.read_to_end(&mut body).await?;
        Ok::<_, std::io::Error>(
            String::from_utf8_lossy(&body)
                .lines()
                .next()
                .map(str::to_string),
        )
    };
    let mut ok = 0;
    for _ in 0..500 {
        if let Ok(Some(line)) = get_cluster().await {
            assert_eq!(line, "HTTP/1.1 200 OK");
            ok += 1;
            if ok == 20 {
                break;
            }
        } else {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(ok, 20);
    // internalTrafficPolicy: Local: only this node's endpoint is used.
    assert_eq!(here.request_count(), 20);
    assert_eq!(elsewhere.request_count(), 0);
    stop.cancel();
}

#[tokio::test]
async fn an_address_the_node_lacks_is_skipped_and_the_rest_still_listens() {
    let h = harness(Protocol::Tcp).await;
    // 192.0.2.1 (TEST-NET-1) is on no interface here: its listener is skipped, the
    // NodePort on 127.0.0.1 keeps working.
    let mut svc = ServiceInfo {
        namespace: "default".into(),
        name: "web".into(),
        type_: "NodePort".into(),
        cluster_ips: vec!["192.0.2.1".parse().unwrap()],
        external_ips: vec![],
        ports: vec![PortInfo {
            name: "p".into(),
            port: 80,
            node_port: Some(h.port),
            protocol: Protocol::Tcp,
        }],
        affinity: None,
        internal_local: false,
        external_local: false,
    };
    h.proxy.update_service(svc.clone());
    let server = testkit::http::HttpServer::start().await.unwrap();
    h.set(vec![endpoint(server.addr(), true, Protocol::Tcp)])
        .await;
    assert_eq!(get(h.port).await.unwrap(), "HTTP/1.1 200 OK");
    svc.cluster_ips.clear();
    h.proxy.update_service(svc);
    assert_eq!(get(h.port).await.unwrap(), "HTTP/1.1 200 OK");
}
