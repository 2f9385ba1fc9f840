//! Test support: a DNS server on an ephemeral port of 127.0.0.1, an upstream resolver on
//! another (a real UDP server that answers `*.example.org` and counts the queries it sees),
//! and a client that sends real queries built with hickory-proto over UDP and TCP.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use dns::{Config, ForwardConfig, Records, Server};
use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_util::sync::CancellationToken;

/// The address the upstream gives every `*.example.org` name.
pub const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// A fake upstream resolver: `*.example.org` A → 192.0.2.1, names starting with `nx` (and
/// anything else) NXDOMAIN with the example.org SOA. With `silent`, it never answers.
pub struct Upstream {
    pub addr: SocketAddr,
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Upstream {
    pub async fn start(silent: bool) -> Result<Upstream> {
        let sock = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = sock.local_addr()?;
        let hits: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let counted = hits.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let (n, src) = tokio::select! {
                    _ = &mut rx => return,
                    r = sock.recv_from(&mut buf) => match r { Ok(r) => r, Err(_) => continue },
                };
                let Ok(req) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let Some(q) = req.queries.first().cloned() else {
                    continue;
                };
                let name = q.name().to_lowercase().to_ascii();
                *counted.lock().entry(name.clone()).or_default() += 1;
                if silent {
                    continue;
                }
                let mut resp = Message::response(req.metadata.id, OpCode::Query);
                resp.metadata.recursion_desired = req.metadata.recursion_desired;
                resp.metadata.recursion_available = true;
                resp.queries.push(q.clone());
                let zone = Name::from_ascii("example.org.").expect("name");
                let known = name.ends_with(".example.org.") && !name.starts_with("nx");
                if known && q.query_type() == RecordType::A {
                    // Flood names get 40 addresses, so that caching them all would show.
                    let n = if name.contains(".flood.") { 40 } else { 1 };
                    for i in 0..n {
                        let [a, b, c, d] = UPSTREAM_ANSWER.octets();
                        resp.answers.push(Record::from_rdata(
                            q.name().clone(),
                            300,
                            RData::A(A(Ipv4Addr::new(a, b, c, d + i))),
                        ));
                    }
                } else if !known {
                    resp.metadata.response_code = ResponseCode::NXDomain;
                    resp.authorities.push(Record::from_rdata(
                        zone.clone(),
                        60,
                        RData::SOA(SOA::new(
                            Name::from_ascii("ns.example.org.").expect("name"),
                            Name::from_ascii("admin.example.org.").expect("name"),
                            1,
                            3600,
                            600,
                            86400,
                            60,
                        )),
                    ));
                }
                if let Some(e) = &req.edns {
                    let mut edns = Edns::new();
                    edns.set_max_payload(e.max_payload());
                    resp.set_edns(edns);
                }
                if let Ok(bytes) = resp.to_vec() {
                    let _ = sock.send_to(&bytes, src).await;
                }
            }
        });
        Ok(Upstream {
            addr,
            hits,
            _stop: tx,
        })
    }

    pub fn hits(&self, name: &str) -> usize {
        self.hits.lock().get(name).copied().unwrap_or(0)
    }
}

/// A running DNS server.
pub struct Running {
    pub addr: SocketAddr,
    pub records: Arc<Records>,
    pub metrics: Arc<dns::metrics::DnsMetrics>,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

pub async fn start(upstream: Option<&Upstream>, mut config: Config) -> Result<Running> {
    let records = Arc::new(Records::new("cluster.local")?);
    if let Some(up) = upstream {
        config.forward = ForwardConfig {
            servers: vec![up.addr],
            ..config.forward
        };
    }
    let server = Server::new(records.clone(), config)?;
    let metrics = server.metrics().clone();
    let (udp, tcp) = dns::bind("127.0.0.1:0".parse()?).await?;
    let addr = tcp.local_addr()?;
    let stop = CancellationToken::new();
    tokio::spawn(server.run(udp, tcp, stop.clone()));
    Ok(Running {
        addr,
        records,
        metrics,
        stop,
    })
}

static NEXT_ID: AtomicU16 = AtomicU16::new(1);

/// A query for `name`/`qtype`, with EDNS advertising `edns` bytes when given.
pub fn query(name: &str, qtype: RecordType, edns: Option<u16>) -> Result<(u16, Vec<u8>)> {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut msg = Message::query();
    msg.metadata.id = id;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name)?, qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        msg.set_edns(e);
    }
    Ok((id, msg.to_vec()?))
}

/// Sends `bytes` over UDP and waits (up to 10 s) for one datagram back.
pub async fn udp_exchange(addr: SocketAddr, bytes: &[u8]) -> Result<Option<Vec<u8>>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    sock.send_to(bytes, addr).await?;
    let mut buf = vec![0u8; 65535];
    match tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf)).await {
        Ok(n) => {
            let n = n?;
            Ok(Some(buf[..n].to_vec()))
        }
        Err(_) => Ok(None),
    }
}

/// Whether a UDP message gets no answer within `wait`.
pub async fn udp_silent(addr: SocketAddr, bytes: &[u8], wait: Duration) -> Result<bool> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    sock.send_to(bytes, addr).await?;
    let mut buf = vec![0u8; 65535];
    Ok(tokio::time::timeout(wait, sock.recv(&mut buf))
        .await
        .is_err())
}

/// Queries over UDP.
pub async fn udp(addr: SocketAddr, name: &str, qtype: RecordType) -> Result<Message> {
    udp_edns(addr, name, qtype, None).await
}

/// Queries over UDP with EDNS.
pub async fn udp_edns(
    addr: SocketAddr,
    name: &str,
    qtype: RecordType,
    edns: Option<u16>,
) -> Result<Message> {
    let (id, bytes) = query(name, qtype, edns)?;
    let resp = udp_exchange(addr, &bytes)
        .await?
        .with_context(|| format!("no UDP answer for {name} {qtype}"))?;
    let msg = Message::from_vec(&resp)?;
    if msg.metadata.id != id {
        bail!("answer id {} for query id {id}", msg.metadata.id);
    }
    Ok(msg)
}

/// Writes one length-prefixed message on a TCP stream.
pub async fn tcp_send(conn: &mut TcpStream, bytes: &[u8]) -> Result<()> {
    let len = u16::try_from(bytes.len())?;
    conn.write_all(&len.to_be_bytes()).await?;
    conn.write_all(bytes).await?;
    Ok(())
}

/// Reads one length-prefixed message from a TCP stream.
pub async fn tcp_recv(conn: &mut TcpStream) -> Result<Message> {
    let len = tokio::time::timeout(Duration::from_secs(10), conn.read_u16()).await??;
    let mut buf = vec![0u8; usize::from(len)];
    conn.read_exact(&mut buf).await?;
    Ok(Message::from_vec(&buf)?)
}

/// Queries over a new TCP connection.
pub async fn tcp(addr: SocketAddr, name: &str, qtype: RecordType) -> Result<Message> {
    let mut conn = TcpStream::connect(addr).await?;
    let (id, bytes) = query(name, qtype, None)?;
    tcp_send(&mut conn, &bytes).await?;
    let msg = tcp_recv(&mut conn).await?;
    if msg.metadata.id != id {
        bail!("answer id {} for query id {id}", msg.metadata.id);
    }
    Ok(msg)
}

pub fn service(v: serde_json::Value) -> Service {
    serde_json::from_value(v).expect("service")
}

pub fn slice(v: serde_json::Value) -> EndpointSlice {
    serde_json::from_value(v).expect("endpointslice")
}

/// A ClusterIP service `name` in `default` with the given IPs and ports `(name, port, proto)`.
pub fn cluster_ip(name: &str, ips: &[&str], ports: &[(&str, i32, &str)]) -> Service {
    service(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ips[0],
            "clusterIPs": ips,
            "ports": ports.iter().map(|(n, p, proto)| serde_json::json!({"name": n, "port": p, "protocol": proto})).collect::<Vec<_>>(),
        }
    }))
}

/// A headless service `name` in `default`.
pub fn headless(name: &str, publish_not_ready: bool) -> Service {
    service(serde_json::json!({
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "clusterIP": "None",
            "clusterIPs": ["None"],
            "publishNotReadyAddresses": publish_not_ready,
            "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        }
    }))
}

/// An endpoint: (address, hostname, ready, pod uid).
pub type Ep<'a> = (&'a str, Option<&'a str>, Option<bool>, Option<&'a str>);

/// An EndpointSlice `name` of service `svc` in `default` with port `pg` 5432/TCP.
pub fn endpoints(name: &str, svc: &str, eps: &[Ep<'_>]) -> EndpointSlice {
    slice(serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": eps.iter().map(|(ip, host, ready, uid)| {
            let mut e = serde_json::json!({"addresses": [ip]});
            if let Some(h) = host { e["hostname"] = serde_json::json!(h); }
            if let Some(r) = ready { e["conditions"] = serde_json::json!({"ready": r}); }
            if let Some(u) = uid { e["targetRef"] = serde_json::json!({"kind": "Pod", "name": "p", "namespace": "default", "uid": u}); }
            e
        }).collect::<Vec<_>>(),
    }))
}

/// The A/AAAA addresses of the answer section, as text, sorted.
pub fn addresses(msg: &Message) -> Vec<String> {
    let mut out: Vec<String> = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0.to_string()),
            RData::AAAA(a) => Some(a.0.to_string()),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// The SOA of the authority section, if any.
pub fn soa(msg: &Message) -> Option<(String, SOA, u32)> {
    msg.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(s) => Some((r.name.to_ascii(), s.clone(), r.ttl)),
        _ => None,
    })
}

/// Resident memory of this process in KiB.
pub fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}
