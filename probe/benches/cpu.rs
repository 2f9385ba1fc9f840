//! CPU time per probe against a floor measured in the same run, on one client thread.
//!
//! - httpGet vs a bare `connect` + raw `GET` + read-to-EOF loop;
//! - tcpSocket vs a bare `connect` + close loop;
//! - exec (`HostExecRunner`) vs a bare tokio spawn-and-wait (`output()`) of the same command.
//!
//! Servers run on their own thread, so only the prober's CPU is counted (the client thread's
//! `CLOCK_THREAD_CPUTIME_ID`). Rounds alternate floor and probe; the median ratio is printed.
//! Run: `cargo bench -p probe --bench cpu`.

use std::time::Duration;

use nix::time::{ClockId, clock_gettime};
use probe::handler::{exec, http, tcp};
use probe::{HandlerEnv, HandlerResult, HostExecRunner, HttpGetSpec, Scheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn thread_cpu() -> Duration {
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

async fn cpu_per_op<F, Fut>(n: u32, mut op: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let start = thread_cpu();
    for _ in 0..n {
        op().await;
    }
    (thread_cpu() - start) / n
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn compare<F1, Fut1, F2, Fut2>(
    name: &str,
    rounds: u32,
    n: u32,
    target: f64,
    mut floor: F1,
    mut ours: F2,
) where
    F1: FnMut() -> Fut1,
    Fut1: std::future::Future<Output = ()>,
    F2: FnMut() -> Fut2,
    Fut2: std::future::Future<Output = ()>,
{
    // Warm up both paths.
    cpu_per_op(n / 10 + 1, &mut floor).await;
    cpu_per_op(n / 10 + 1, &mut ours).await;
    let (mut fs, mut os, mut rs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let f = cpu_per_op(n, &mut floor).await.as_secs_f64() * 1e6;
        let o = cpu_per_op(n, &mut ours).await.as_secs_f64() * 1e6;
        fs.push(f);
        os.push(o);
        rs.push(o / f);
    }
    let ratio = median(rs);
    println!(
        "{name:<10} floor {:>7.1} µs/op  probe {:>7.1} µs/op  ratio {ratio:.2}x  (target ≤ {target}x: {})",
        median(fs),
        median(os),
        if ratio <= target { "met" } else { "MISSED" }
    );
}

fn main() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let http = testkit::http::HttpServer::start()
                .await
                .expect("http server");
            // Several listeners: a connect-and-close loop leaves the client side in TIME_WAIT,
            // and spreading over destination ports keeps ephemeral ports available.
            let mut tcp = Vec::new();
            for _ in 0..8 {
                tcp.push(
                    testkit::tcp::CountingListener::start()
                        .await
                        .expect("tcp listener"),
                );
            }
            let ports: Vec<u16> = tcp.iter().map(|l| l.addr().port()).collect();
            tx.send((http.port(), ports)).expect("send ports");
            std::future::pending::<()>().await;
        });
    });
    let (http_port, tcp_ports) = rx.recv().expect("ports");
    let next = std::cell::Cell::new(0usize);
    let tcp_port = || {
        next.set(next.get() + 1);
        tcp_ports[next.get() % tcp_ports.len()]
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("client runtime");
    rt.block_on(async move {
        let env = HandlerEnv::new("kube-probe/1.35").expect("tls");
        let spec = HttpGetSpec {
            scheme: Scheme::Http,
            host: String::new(),
            port: Ok(http_port),
            path: "/".into(),
            headers: Vec::new(),
        };
        let t = Duration::from_secs(1);
        let raw =
            format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{http_port}\r\nConnection: close\r\n\r\n");
        compare(
            "httpGet",
            5,
            600,
            1.5,
            || async {
                let mut s = TcpStream::connect(("127.0.0.1", http_port))
                    .await
                    .expect("connect");
                s.write_all(raw.as_bytes()).await.expect("write");
                let mut buf = Vec::new();
                s.read_to_end(&mut buf).await.expect("read");
                assert!(buf.starts_with(b"HTTP/1.1 200"));
            },
            || async {
                let out = http::probe(&env, &spec, "127.0.0.1", t).await;
                assert_eq!(out.result, HandlerResult::Success);
            },
        )
        .await;
        compare(
            "tcpSocket",
            5,
            400,
            1.5,
            || async {
                let s = TcpStream::connect(("127.0.0.1", tcp_port()))
                    .await
                    .expect("connect");
                drop(s);
            },
            || async {
                let out = tcp::probe("127.0.0.1", tcp_port(), t).await;
                assert_eq!(out.result, HandlerResult::Success, "{}", out.output);
            },
        )
        .await;
        let runner = HostExecRunner::new();
        let argv = vec!["true".to_string()];
        compare(
            "exec",
            7,
            300,
            1.2,
            || async {
                let out = tokio::process::Command::new("true")
                    .output()
                    .await
                    .expect("spawn");
                assert!(out.status.success());
            },
            || async {
                let out = exec::probe(&runner, &argv, t).await;
                assert_eq!(out.result, HandlerResult::Success);
            },
        )
        .await;
    });
}
