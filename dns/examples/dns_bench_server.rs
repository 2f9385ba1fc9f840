//! The cluster DNS server alone, for `bench/dns.sh`: answers `svcN.default.svc.cluster.local`
//! (N in 0..COUNT, ClusterIP 10.96.N/250.N%250+1, port `http` 80) on LISTEN over UDP and TCP,
//! with no upstream, on a multi-threaded runtime as in the node agent, until its stdin closes.
//!
//! `dns_bench_server LISTEN COUNT`

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

// The allocator the paddock binary runs with.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen: SocketAddr = args.next().context("LISTEN")?.parse()?;
    let count: u32 = args.next().context("COUNT")?.parse()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let records = Arc::new(dns::Records::new("cluster.local")?);
        for i in 0..count {
            let ip = format!("10.96.{}.{}", i / 250, i % 250 + 1);
            let svc: k8s_openapi::api::core::v1::Service =
                serde_json::from_value(serde_json::json!({
                    "metadata": {"name": format!("svc{i}"), "namespace": "default"},
                    "spec": {"type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip],
                             "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]},
                }))?;
            records.update_service(&svc);
        }
        let server = dns::Server::new(records, dns::Config::default())?;
        let (udp, tcp) = dns::bind(listen).await?;
        let stop = CancellationToken::new();
        let run = tokio::spawn(server.run(udp, tcp, stop.clone()));
        println!("ready");
        let mut stdin = tokio::io::stdin();
        let mut buf = [0u8; 64];
        while stdin.read(&mut buf).await.map(|n| n > 0).unwrap_or(false) {}
        stop.cancel();
        let _ = run.await;
        anyhow::Ok(())
    })
}
