//! Bad input and overload: malformed and truncated packets, answers too large for plain UDP,
//! idle and excess TCP connections, too many queries in flight, a flood of random names.

mod support;

use std::time::Duration;

use anyhow::Result;
use dns::{Config, ForwardConfig};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;
use support::*;
use tokio::io::AsyncReadExt;

/// A headless service `big` with `n` ready endpoints 10.2.x.y.
fn big(s: &Running, n: u16) {
    s.records.update_service(&headless("big", false));
    let ips: Vec<String> = (0..n)
        .map(|i| format!("10.2.{}.{}", i / 250, i % 250 + 1))
        .collect();
    let eps: Vec<Ep<'_>> = ips
        .iter()
        .map(|ip| (ip.as_str(), None, None, None))
        .collect();
    s.records
        .set_endpoint_slice(&endpoints("big-1", "big", &eps));
}

#[tokio::test]
async fn large_udp_answers_are_truncated_and_complete_over_tcp() -> Result<()> {
    let s = start(None, Config::default()).await?;
    big(&s, 60);
    let (id, bytes) = query("big.default.svc.cluster.local.", RecordType::A, None)?;
    let raw = udp_exchange(s.addr, &bytes).await?.expect("an answer");
    assert!(raw.len() <= 512, "plain UDP answer of {} bytes", raw.len());
    let m = Message::from_vec(&raw)?;
    assert_eq!(m.metadata.id, id);
    assert!(m.metadata.truncation, "TC bit set");
    // The client retries over TCP and gets everything.
    let full = tcp(s.addr, "big.default.svc.cluster.local.", RecordType::A).await?;
    assert!(!full.metadata.truncation);
    assert_eq!(addresses(&full).len(), 60);
    // With EDNS the UDP answer may be as large as the client says.
    let edns = udp_edns(
        s.addr,
        "big.default.svc.cluster.local.",
        RecordType::A,
        Some(4096),
    )
    .await?;
    assert!(!edns.metadata.truncation);
    assert_eq!(addresses(&edns).len(), 60);
    Ok(())
}

#[tokio::test]
async fn malformed_and_truncated_packets_never_stop_the_server() -> Result<()> {
    let s = start(None, Config::default()).await?;
    s.records
        .update_service(&cluster_ip("web", &["10.96.0.20"], &[("http", 80, "TCP")]));
    let (_, good) = query("web.default.svc.cluster.local.", RecordType::A, None)?;

    // Shorter than a header: no answer.
    assert!(udp_silent(s.addr, &[1, 2, 3], Duration::from_millis(300)).await?);
    // A header claiming a question that is not there: FORMERR with the same id.
    let mut cut = good[..12].to_vec();
    cut[0] = 0xab;
    cut[1] = 0xcd;
    let m = Message::from_vec(&udp_exchange(s.addr, &cut).await?.expect("FORMERR"))?;
    assert_eq!(m.metadata.id, 0xabcd);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
    // Every prefix of a good query, and bytes flipped all over it.
    for n in 12..good.len() {
        let m = Message::from_vec(&udp_exchange(s.addr, &good[..n]).await?.expect("FORMERR"))?;
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::FormErr,
            "prefix of {n} bytes"
        );
    }
    let mut seed: u32 = 0x1234_5678;
    for _ in 0..300 {
        let mut bad = good.clone();
        for _ in 0..4 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let at = (seed as usize) % bad.len();
            bad[at] = (seed >> 24) as u8;
        }
        let (sock, buf) = (tokio::net::UdpSocket::bind("127.0.0.1:0").await?, bad);
        sock.send_to(&buf, s.addr).await?;
    }
    // An answer sent to the server is never answered (no reflection loops).
    let mut response = Message::from_vec(&good)?;
    response.metadata.message_type = hickory_proto::op::MessageType::Response;
    assert!(udp_silent(s.addr, &response.to_vec()?, Duration::from_millis(300)).await?);
    // Two questions: FORMERR.
    let mut two = Message::from_vec(&good)?;
    let q = two.queries[0].clone();
    two.add_query(q);
    let m = Message::from_vec(
        &udp_exchange(s.addr, &two.to_vec()?)
            .await?
            .expect("FORMERR"),
    )?;
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);

    // TCP: a frame promising more than is sent, then the connection closes.
    let mut conn = tokio::net::TcpStream::connect(s.addr).await?;
    tokio::io::AsyncWriteExt::write_all(&mut conn, &[0, 200, 1, 2, 3]).await?;
    drop(conn);
    // Garbage in a well-formed frame gets FORMERR and the connection stays usable.
    let mut conn = tokio::net::TcpStream::connect(s.addr).await?;
    tcp_send(&mut conn, &cut).await?;
    assert_eq!(
        tcp_recv(&mut conn).await?.metadata.response_code,
        ResponseCode::FormErr
    );
    tcp_send(&mut conn, &good).await?;
    assert_eq!(addresses(&tcp_recv(&mut conn).await?), ["10.96.0.20"]);

    // Still answering.
    let m = udp(s.addr, "web.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&m), ["10.96.0.20"]);
    Ok(())
}

#[tokio::test]
async fn idle_tcp_connections_are_closed_and_capped() -> Result<()> {
    let config = Config {
        max_tcp_connections: 4,
        tcp_timeout: Duration::from_millis(500),
        ..Config::default()
    };
    let s = start(None, config).await?;
    s.records
        .update_service(&cluster_ip("web", &["10.96.0.20"], &[("http", 80, "TCP")]));
    // A client that never sends is closed by the server.
    let mut idle = tokio::net::TcpStream::connect(s.addr).await?;
    let mut buf = [0u8; 1];
    let n = tokio::time::timeout(Duration::from_secs(30), idle.read(&mut buf)).await??;
    assert_eq!(n, 0, "closed by the server");

    // More connections than the cap: the idlest make room, new clients are answered.
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(tokio::net::TcpStream::connect(s.addr).await?);
    }
    let m = tcp(s.addr, "web.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&m), ["10.96.0.20"]);
    let mut closed = 0;
    for c in &mut held {
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_secs(30), c.read(&mut buf)).await {
            closed += 1;
        }
    }
    assert_eq!(
        closed, 10,
        "every held connection was closed (evicted or timed out)"
    );
    Ok(())
}

#[tokio::test]
async fn queries_beyond_the_in_flight_bound_are_refused_at_once() -> Result<()> {
    let silent = Upstream::start(true).await?;
    let config = Config {
        max_in_flight: 1,
        forward: ForwardConfig {
            timeout: Duration::from_secs(3),
            ..ForwardConfig::default()
        },
        ..Config::default()
    };
    let s = start(Some(&silent), config).await?;
    s.records
        .update_service(&cluster_ip("web", &["10.96.0.20"], &[("http", 80, "TCP")]));
    // One client waits on the silent upstream, holding the only slot...
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    let (_, slow) = query("slow.example.org.", RecordType::A, None)?;
    sock.send_to(&slow, s.addr).await?;
    // ... so the next query, sent after it on the same path, is refused.
    let (id, next) = query("web.default.svc.cluster.local.", RecordType::A, None)?;
    sock.send_to(&next, s.addr).await?;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf)).await??;
    let m = Message::from_vec(&buf[..n])?;
    assert_eq!(m.metadata.id, id);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    // The slow one ends with SERVFAIL when the upstream never answers.
    let n = tokio::time::timeout(Duration::from_secs(30), sock.recv(&mut buf)).await??;
    let m = Message::from_vec(&buf[..n])?;
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(silent.hits("slow.example.org.") >= 1);
    // The slot is free again.
    let m = udp(s.addr, "web.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&m), ["10.96.0.20"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_random_names_does_not_grow_memory() -> Result<()> {
    let up = Upstream::start(false).await?;
    let config = Config {
        forward: ForwardConfig {
            cache_size: 512,
            ..ForwardConfig::default()
        },
        ..Config::default()
    };
    let s = start(Some(&up), config).await?;
    s.records
        .update_service(&cluster_ip("web", &["10.96.0.20"], &[("http", 80, "TCP")]));
    let addr = s.addr;
    let flood = |from: u32, to: u32| async move {
        let mut tasks = Vec::new();
        for worker in 0..16u32 {
            tasks.push(tokio::spawn(async move {
                let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
                let mut buf = vec![0u8; 4096];
                let mut i = from + worker;
                while i < to {
                    let name = format!("r{i:08x}.flood.example.org.");
                    let (_, q) = query(&name, RecordType::A, None)?;
                    sock.send_to(&q, addr).await?;
                    let _ = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf)).await;
                    i += 16;
                }
                anyhow::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        anyhow::Ok(())
    };
    flood(0, 2_000).await?;
    let after_first = rss_kib()?;
    flood(2_000, 10_000).await?;
    let after_second = rss_kib()?;
    let seen = up.hits.lock().len();
    println!(
        "flood: {seen} names reached the upstream; RSS after 2k names {after_first} KiB, after 10k {after_second} KiB (+{} KiB)",
        after_second.saturating_sub(after_first)
    );
    assert!(seen >= 10_000, "the names were forwarded ({seen})");
    // 8,000 more cached answers of 40 records would take tens of MiB; the cache holds 512.
    assert!(
        after_second <= after_first + 16 * 1024,
        "memory grew from {after_first} to {after_second} KiB"
    );
    let m = udp(s.addr, "web.default.svc.cluster.local.", RecordType::A).await?;
    assert_eq!(addresses(&m), ["10.96.0.20"]);
    Ok(())
}
