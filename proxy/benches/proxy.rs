//! Proxy benchmarks, each printed as a ratio against a baseline measured in the same run:
//! - bulk TCP: bytes per second and per CPU-second through the proxy vs straight to the same
//!   loopback sink;
//! - short connections: one request/response per connection through the proxy vs direct;
//! - readiness → routing: time for `set_endpoint_state` to put a new table in place with
//!   1,000 services, p50/p99, against the 10 ms target.
//!
//! Run: `cargo bench -p proxy --bench proxy`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use proxy::{
    EndpointInfo, EndpointState, Listen, NodeConfig, PortInfo, Protocol, Proxy, ServiceInfo,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const LOCALHOST: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

/// CPU seconds (user + system) used by this process so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 11 and 12 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Echoes every connection's bytes back.
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

fn service(name: &str, node_port: u16) -> ServiceInfo {
    ServiceInfo {
        namespace: "bench".into(),
        name: name.into(),
        type_: "NodePort".into(),
        cluster_ips: vec![],
        external_ips: vec![],
        ports: vec![PortInfo {
            name: "p".into(),
            port: 80,
            node_port: Some(node_port),
            protocol: Protocol::Tcp,
        }],
        affinity: None,
        internal_local: false,
        external_local: false,
    }
}

fn endpoint(addr: SocketAddr, ready: bool) -> EndpointInfo {
    EndpointInfo {
        ip: addr.ip(),
        ports: vec![("p".into(), Protocol::Tcp, addr.port())],
        ready,
        serving: ready,
        terminating: false,
        node_name: None,
        pod_uid: None,
    }
}

/// Sends `total` bytes in 64 KiB writes over 4 parallel connections to `addr` and reads them
/// back; returns (seconds, CPU seconds).
async fn bulk(addr: SocketAddr, total: usize) -> (f64, f64) {
    let cpu = cpu_seconds();
    let start = Instant::now();
    let per = total / 4;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            tokio::spawn(async move {
                let s = TcpStream::connect(addr).await.unwrap();
                let (mut r, mut w) = s.into_split();
                let writer = tokio::spawn(async move {
                    let chunk = vec![7u8; 65536];
                    let mut sent = 0;
                    while sent < per {
                        w.write_all(&chunk).await.unwrap();
                        sent += chunk.len();
                    }
                    w.shutdown().await.unwrap();
                });
                let mut buf = vec![0u8; 65536];
                let mut got = 0;
                while got < per {
                    let n = r.read(&mut buf).await.unwrap();
                    assert!(n > 0, "connection closed early");
                    got += n;
                }
                writer.await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    (start.elapsed().as_secs_f64(), cpu_seconds() - cpu)
}

/// `n` connections each sending 16 bytes and reading them back; connections per second.
async fn short(addr: SocketAddr, n: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"0123456789abcdef").await.unwrap();
        let mut buf = [0u8; 16];
        s.read_exact(&mut buf).await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let echo = echo_server().await;
    let port = TcpListener::bind((LOCALHOST, 0))
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
    proxy.update_service(service("echo", port));
    proxy.set_endpoints("bench", "echo", vec![endpoint(echo, true)]);
    let front = SocketAddr::new(LOCALHOST, port);
    while TcpStream::connect(front).await.is_err() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let total = 1 << 30;
    let (direct_s, direct_cpu) = bulk(echo, total).await;
    let (proxy_s, proxy_cpu) = bulk(front, total).await;
    let gb = total as f64 / 1e9;
    println!(
        "bulk TCP (1 GiB each way, 4 connections, echo): direct {:.2} GB/s ({:.2} GB/CPU-s), via proxy {:.2} GB/s ({:.2} GB/CPU-s); proxy/direct throughput {:.2}, per CPU {:.2}",
        gb / direct_s,
        gb / direct_cpu.max(0.01),
        gb / proxy_s,
        gb / proxy_cpu.max(0.01),
        direct_s / proxy_s,
        (gb / proxy_cpu.max(0.01)) / (gb / direct_cpu.max(0.01)),
    );

    let n = 5000;
    let d = short(echo, n).await;
    let p = short(front, n).await;
    println!(
        "short connections ({n}, sequential): direct {d:.0}/s, via proxy {p:.0}/s; ratio {:.2}",
        p / d
    );

    // Readiness → routing with 1,000 services of 2 endpoints each.
    for i in 0..1000u16 {
        let name = format!("s{i}");
        proxy.update_service(ServiceInfo {
            ports: vec![PortInfo {
                name: "p".into(),
                port: 80,
                node_port: None,
                protocol: Protocol::Tcp,
            }],
            cluster_ips: vec![IpAddr::from([10, 96, (i >> 8) as u8, i as u8])],
            ..service(&name, 0)
        });
        let ip = |k: u16| SocketAddr::new(IpAddr::from([10, 244, (k >> 8) as u8, k as u8]), 8080);
        proxy.set_endpoints(
            "bench",
            &name,
            vec![endpoint(ip(2 * i), true), endpoint(ip(2 * i + 1), false)],
        );
    }
    let target = IpAddr::from([10, 244, 0, 1]);
    let listen = Listen {
        addr: "10.96.0.0:80".parse().unwrap(),
        protocol: Protocol::Tcp,
    };
    let mut samples = Vec::new();
    for k in 0..200 {
        let state = if k % 2 == 0 {
            EndpointState::Ready
        } else {
            EndpointState::NotReady
        };
        let t = Instant::now();
        proxy.set_endpoint_state(target, state);
        samples.push(t.elapsed());
        let routed =
            (0..4).any(|_| proxy.pick(listen, LOCALHOST) == Some(SocketAddr::new(target, 8080)));
        assert_eq!(routed, state == EndpointState::Ready);
    }
    samples.sort();
    println!(
        "readiness -> routing (1,000 services): p50 {:?}, p99 {:?}; p99 / 10 ms target = {:.3}",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99),
        percentile(&samples, 0.99).as_secs_f64() / 0.010
    );
    stop.cancel();
    let _ = Arc::strong_count(&proxy);
}
