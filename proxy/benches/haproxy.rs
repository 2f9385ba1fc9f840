//! The service proxy against HAProxy (the Debian package, `mode tcp`, `balance roundrobin`) and
//! against a direct connection (the floor), over the same two loopback HTTP/1.1 backends:
//! - open-loop fixed-rate load (request start times scheduled at the rate; latency measured
//!   from the scheduled time, so a stall is not hidden by coordinated omission), one new
//!   connection per request (the proxy's per-connection work): p50/p99, the latency each proxy
//!   adds over direct, and requests per proxy CPU-second;
//! - closed-loop saturation, new connection per request and keep-alive: requests/s and
//!   requests per proxy CPU-second;
//! - readiness → routing: from `Proxy::set_endpoint_state` to a new connection actually going
//!   to (or no longer going to) the endpoint, p50/p99, in a table of 1 and of 1,001 services.
//!
//! Each proxy runs in a process of its own, so its CPU time is read from `/proc/<pid>/stat`:
//! HAProxy as a child with a config in a temporary directory, paddock's proxy as this same
//! bench binary re-executed in helper mode ([`HELPER_ENV`]). The load generator and the
//! backends share this process; on a small machine they compete with the proxy for CPU, and
//! the table reports how busy the machine was (all processes) during each run.
//!
//! Run: `bench/proxy.sh` (installs haproxy, then `cargo bench -p proxy --bench haproxy`).
//! `PROXY_BENCH_SECS` sets the seconds per run (default 5), `PROXY_BENCH_RATES` the fixed
//! rates (default `1000,3000,5000`: through either proxy this 2-core machine saturates near
//! 6,000 new connections/s, see the closed-loop runs), `PROXY_BENCH_ROUNDS` how often every run is repeated
//! (default 3; the proxies take turns going first, and the ratios printed are medians).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use proxy::{EndpointInfo, EndpointState, NodeConfig, PortInfo, Protocol, Proxy, ServiceInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Set (to `LISTEN BACKEND BACKEND`) in the environment of the re-executed bench binary: it
/// then runs only paddock's proxy for one service until its stdin closes.
const HELPER_ENV: &str = "PADDOCK_PROXY_BENCH_HELPER";

const BACKEND_A: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const BACKEND_B: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const PADDOCK_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);
const HAPROXY_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);
const FLIP_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 6);

/// Open-loop requests outstanding at once before new ones are shed (counted as errors): the
/// file descriptor limit here is 20,000 and each costs two in this process; HAProxy is given
/// `maxconn 9000` to fit under the same limit.
const MAX_IN_FLIGHT: usize = 8000;

const REQ_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
const REQ_KEEP: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
/// The responses end in the backend's tag (`a` or `b`) and a newline.
const RESP_CLOSE: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n";
const RESP_KEEP: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";

fn main() -> anyhow::Result<()> {
    if let Ok(spec) = std::env::var(HELPER_ENV) {
        return helper(&spec);
    }
    // `cargo test --all-targets` runs bench targets without `--bench`: nothing to do there.
    if !std::env::args().any(|a| a == "--bench") {
        println!("benchmark: run it with `cargo bench -p proxy --bench haproxy` or bench/proxy.sh");
        return Ok(());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(bench())
}

// ---------------------------------------------------------------------------------------
// paddock's proxy in its own process

fn bench_service(name: &str, listen: SocketAddr) -> ServiceInfo {
    ServiceInfo {
        namespace: "bench".into(),
        name: name.into(),
        type_: "ClusterIP".into(),
        cluster_ips: vec![listen.ip()],
        external_ips: vec![],
        ports: vec![PortInfo {
            name: "http".into(),
            port: listen.port(),
            node_port: None,
            protocol: Protocol::Tcp,
        }],
        affinity: None,
        internal_local: false,
        external_local: false,
    }
}

fn bench_endpoint(addr: SocketAddr) -> EndpointInfo {
    EndpointInfo {
        ip: addr.ip(),
        ports: vec![("http".into(), Protocol::Tcp, addr.port())],
        ready: true,
        serving: true,
        terminating: false,
        node_name: Some("bench".into()),
        pod_uid: None,
    }
}

fn bench_proxy() -> Arc<Proxy> {
    Proxy::new(
        NodeConfig {
            node_name: "bench".into(),
            node_ips: vec![],
            loopback: false,
        },
        false,
    )
}

/// Runs paddock's proxy for `LISTEN BACKEND BACKEND` until stdin closes (the parent exits or
/// drops the pipe).
fn helper(spec: &str) -> anyhow::Result<()> {
    let addrs = spec
        .split_whitespace()
        .map(|s| s.parse::<SocketAddr>())
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{HELPER_ENV}={spec}"))?;
    let [listen, a, b] = addrs[..] else {
        bail!("{HELPER_ENV} wants LISTEN BACKEND BACKEND, got {spec}");
    };
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let proxy = bench_proxy();
        proxy.update_service(bench_service("web", listen));
        proxy.set_endpoints("bench", "web", vec![bench_endpoint(a), bench_endpoint(b)]);
        proxy.run(CancellationToken::new()).await;
    });
    Ok(())
}

/// A child process killed when dropped (also when the bench panics).
struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_paddock(listen: SocketAddr, a: SocketAddr, b: SocketAddr) -> anyhow::Result<Proc> {
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .env(HELPER_ENV, format!("{listen} {a} {b}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("starting paddock's proxy")?;
    Ok(Proc {
        name: "paddock",
        child,
    })
}

fn start_haproxy(
    dir: &std::path::Path,
    listen: SocketAddr,
    a: SocketAddr,
    b: SocketAddr,
) -> anyhow::Result<Proc> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cfg = format!(
        "global\n    maxconn 9000\n    nbthread {threads}\n\
         defaults\n    mode tcp\n    timeout connect 3s\n    timeout client 30s\n    timeout server 30s\n\
         frontend fe\n    bind {listen}\n    default_backend be\n\
         backend be\n    balance roundrobin\n    server a {a}\n    server b {b}\n"
    );
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg)?;
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("haproxy.log"))?)
        .spawn()
        .context(
            "starting haproxy (install it with `apt-get install haproxy`, or run bench/proxy.sh)",
        )?;
    Ok(Proc {
        name: "haproxy",
        child,
    })
}

fn haproxy_version() -> String {
    Command::new("haproxy")
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "haproxy (version unknown)".into())
}

// ---------------------------------------------------------------------------------------
// CPU accounting

fn clock_ticks_per_second() -> f64 {
    // Linux reports `USER_HZ` ticks, 100 on every mainstream architecture.
    100.0
}

/// CPU time of a proxy process in seconds: the nanosecond run times of its live threads
/// (`/proc/<pid>/task/*/schedstat`; both proxies keep their threads for the whole run), or
/// [`process_cpu`] where schedstat is missing.
fn proxy_cpu(pid: &str) -> f64 {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .collect::<Vec<_>>();
    if !threads.is_empty() {
        return threads.iter().sum::<f64>() / 1e9;
    }
    process_cpu(pid)
}

/// utime + stime of a process (all its threads, live and exited), in seconds.
fn process_cpu(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 11 and 12 after the name.
    (tick(11) + tick(12)) / clock_ticks_per_second()
}

/// Busy CPU-seconds of the whole machine (every process, all cores).
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let line = stat.lines().next().unwrap_or("");
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy: f64 = v
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .take(8)
        .map(|(_, x)| x)
        .sum();
    busy / clock_ticks_per_second()
}

/// CPU counters around one run.
#[derive(Clone, Copy)]
struct Cpu {
    proxy: f64,
    me: f64,
    machine: f64,
}

fn cpu_now(proxy: Option<u32>) -> Cpu {
    Cpu {
        proxy: proxy.map_or(0.0, |p| proxy_cpu(&p.to_string())),
        me: process_cpu("self"),
        machine: machine_busy(),
    }
}

// ---------------------------------------------------------------------------------------
// Backends and client

/// A tiny HTTP/1.1 server answering every request with `tag`; keep-alive unless the request
/// says `Connection: close`.
async fn backend(ip: Ipv4Addr, tag: u8) -> anyhow::Result<SocketAddr> {
    let l = TcpListener::bind((ip, 0)).await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move {
        loop {
            match l.accept().await {
                Ok((s, _)) => {
                    tokio::spawn(serve(s, tag));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    });
    Ok(addr)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn serve(mut s: TcpStream, tag: u8) {
    let _ = s.set_nodelay(true);
    let mut buf = [0u8; 2048];
    let mut have = 0;
    let mut out = Vec::with_capacity(128);
    loop {
        let n = match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        have += n;
        out.clear();
        let mut close = false;
        while let Some(end) = find(&buf[..have], b"\r\n\r\n") {
            close = find(&buf[..end], b"Connection: close").is_some();
            out.extend_from_slice(if close { RESP_CLOSE } else { RESP_KEEP }.as_bytes());
            out.extend_from_slice(&[tag, b'\n']);
            buf.copy_within(end + 4..have, 0);
            have -= end + 4;
            if close {
                break;
            }
        }
        if !out.is_empty() && s.write_all(&out).await.is_err() {
            return;
        }
        if close || have == buf.len() {
            return;
        }
    }
}

/// Where requests go: straight to the backends (alternating) or through a proxy.
#[derive(Clone, Copy)]
enum Target {
    Direct(SocketAddr, SocketAddr),
    Via(SocketAddr),
}

impl Target {
    fn addr(&self, i: usize) -> SocketAddr {
        match *self {
            Target::Direct(a, b) => {
                if i.is_multiple_of(2) {
                    a
                } else {
                    b
                }
            }
            Target::Via(p) => p,
        }
    }
}

/// One request on a new connection (`Connection: close`, read to EOF); the backend's tag.
async fn get_close(addr: SocketAddr) -> std::io::Result<u8> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    s.write_all(REQ_CLOSE).await?;
    let mut buf = [0u8; 256];
    let mut n = 0;
    loop {
        let k = s.read(&mut buf[n..]).await?;
        if k == 0 {
            break;
        }
        n += k;
        if n == buf.len() {
            return Err(std::io::Error::other("response too long"));
        }
    }
    if n != RESP_CLOSE.len() + 2 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("short response ({n} bytes)"),
        ));
    }
    Ok(buf[n - 2])
}

/// One request on an open keep-alive connection.
async fn get_keep(s: &mut TcpStream) -> std::io::Result<u8> {
    s.write_all(REQ_KEEP).await?;
    let mut buf = [0u8; 64];
    let want = RESP_KEEP.len() + 2;
    s.read_exact(&mut buf[..want]).await?;
    Ok(buf[want - 2])
}

// ---------------------------------------------------------------------------------------
// Runs

/// What one run measured.
struct Sample {
    /// Completed requests.
    ok: usize,
    errors: usize,
    /// Completed requests per wall second.
    rate: f64,
    /// Latencies in nanoseconds, sorted.
    lat: Vec<u64>,
    /// CPU-seconds of the proxy process, this process, and the whole machine.
    cpu: Cpu,
}

impl Sample {
    fn pct_us(&self, p: f64) -> f64 {
        if self.lat.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat.len() as f64 - 1.0) * p).round() as usize;
        self.lat[i] as f64 / 1000.0
    }

    fn per_proxy_cpu(&self) -> f64 {
        self.ok as f64 / self.cpu.proxy.max(0.01)
    }
}

fn finish(mut lat: Vec<u64>, errors: usize, wall: Duration, before: Cpu, after: Cpu) -> Sample {
    lat.sort_unstable();
    Sample {
        ok: lat.len(),
        errors,
        rate: lat.len() as f64 / wall.as_secs_f64(),
        lat,
        cpu: Cpu {
            proxy: after.proxy - before.proxy,
            me: after.me - before.me,
            machine: after.machine - before.machine,
        },
    }
}

/// Open loop: `rate` requests/s for `secs`, each on a new connection started at its
/// scheduled time by a pacing thread; latency from the scheduled time to the response's end.
async fn open_loop(target: Target, rate: u32, secs: u64, proxy: Option<u32>) -> Sample {
    let handle = tokio::runtime::Handle::current();
    let total = (u64::from(rate) * secs) as usize;
    let interval = Duration::from_secs_f64(1.0 / f64::from(rate));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let before = cpu_now(proxy);
    let start = Instant::now() + Duration::from_millis(10);
    let pacer = std::thread::spawn(move || {
        let mut tasks: Vec<JoinHandle<Option<u64>>> = Vec::with_capacity(total);
        let mut shed = 0usize;
        let mut i = 0usize;
        while i < total {
            let now = Instant::now();
            let due = start + interval * i as u32;
            if due > now {
                std::thread::sleep(due - now);
                continue;
            }
            while i < total {
                let due = start + interval * i as u32;
                if due > now {
                    break;
                }
                // An overloaded target is not given unbounded work: count it as failed.
                if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
                    shed += 1;
                    i += 1;
                    continue;
                }
                in_flight.fetch_add(1, Ordering::Relaxed);
                let addr = target.addr(i);
                let in_flight = in_flight.clone();
                tasks.push(handle.spawn(async move {
                    let r = get_close(addr).await;
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    r.ok().map(|_| due.elapsed().as_nanos() as u64)
                }));
                i += 1;
            }
        }
        (tasks, shed)
    });
    let (tasks, shed) = tokio::task::spawn_blocking(move || pacer.join())
        .await
        .expect("pacer task")
        .expect("pacer thread");
    let mut lat = Vec::with_capacity(tasks.len());
    let mut errors = shed;
    for t in tasks {
        match t.await {
            Ok(Some(ns)) => lat.push(ns),
            _ => errors += 1,
        }
    }
    let wall = start.elapsed();
    finish(lat, errors, wall, before, cpu_now(proxy))
}

/// Closed loop: `conc` clients each sending requests back to back for `secs` seconds, on a
/// new connection each (`keep == false`) or on one keep-alive connection each.
async fn closed_loop(
    target: Target,
    conc: usize,
    secs: u64,
    keep: bool,
    proxy: Option<u32>,
) -> Sample {
    let before = cpu_now(proxy);
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let workers: Vec<JoinHandle<(Vec<u64>, usize)>> = (0..conc)
        .map(|w| {
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut errors = 0;
                let mut conn = None;
                let mut i = w;
                while Instant::now() < end {
                    let t = Instant::now();
                    let r = if keep {
                        if conn.is_none() {
                            conn = TcpStream::connect(target.addr(w)).await.ok();
                            if let Some(c) = &conn {
                                let _ = c.set_nodelay(true);
                            }
                        }
                        match conn.as_mut() {
                            Some(c) => get_keep(c).await,
                            None => Err(std::io::Error::other("connect failed")),
                        }
                    } else {
                        get_close(target.addr(i)).await
                    };
                    i += 1;
                    match r {
                        Ok(_) => lat.push(t.elapsed().as_nanos() as u64),
                        Err(_) => {
                            errors += 1;
                            conn = None;
                        }
                    }
                }
                (lat, errors)
            })
        })
        .collect();
    let mut lat = Vec::new();
    let mut errors = 0;
    for w in workers {
        if let Ok((l, e)) = w.await {
            lat.extend(l);
            errors += e;
        }
    }
    let wall = start.elapsed();
    finish(lat, errors, wall, before, cpu_now(proxy))
}

async fn wait_listening(addr: SocketAddr, who: &str) -> anyhow::Result<()> {
    for _ in 0..500 {
        if get_close(addr).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("{who} never answered on {addr}")
}

async fn free_port(ip: Ipv4Addr) -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind((ip, 0)).await?.local_addr()?)
}

// ---------------------------------------------------------------------------------------
// Readiness → routing

/// Flips backend B between not ready and ready `flips` times through `set_endpoint_state` on
/// an in-process proxy (as the node agent does) and measures, per flip, the time from the
/// call to the first response that shows the new routing: for "ready", the first response
/// from B; for "not ready", the first response after the call (and the next three must come
/// from A as well, else it is counted as a violation). Also the call's own duration (the
/// table rebuild and swap).
async fn readiness(
    a: SocketAddr,
    b: SocketAddr,
    extra_services: u16,
    flips: usize,
) -> anyhow::Result<()> {
    let proxy = bench_proxy();
    let stop = CancellationToken::new();
    tokio::spawn(proxy.clone().run(stop.clone()));
    for i in 0..extra_services {
        // Tables entries only: these ClusterIPs are not held here, so no listener opens.
        let name = format!("other{i}");
        let ip = IpAddr::from([10, 96, (i >> 8) as u8, i as u8]);
        proxy.update_service(bench_service(&name, SocketAddr::new(ip, 80)));
        let ep = |k: u16| SocketAddr::new(IpAddr::from([10, 244, (k >> 8) as u8, k as u8]), 8080);
        proxy.set_endpoints(
            "bench",
            &name,
            vec![bench_endpoint(ep(2 * i)), bench_endpoint(ep(2 * i + 1))],
        );
    }
    let front = free_port(FLIP_IP).await?;
    proxy.update_service(bench_service("flip", front));
    proxy.set_endpoints("bench", "flip", vec![bench_endpoint(a), bench_endpoint(b)]);
    wait_listening(front, "paddock (in-process)").await?;
    let mut to_ready = Vec::new();
    let mut to_not_ready = Vec::new();
    let mut swap = Vec::new();
    let mut plain = Vec::new();
    let mut requests_needed = 0usize;
    let mut violations = 0usize;
    for k in 0..flips {
        let ready = k % 2 == 1;
        let state = if ready {
            EndpointState::Ready
        } else {
            EndpointState::NotReady
        };
        // A request with no change under way, for scale: the routing times below include
        // at least one such request.
        let t = Instant::now();
        get_close(front).await?;
        plain.push(t.elapsed().as_nanos() as u64);
        let t = Instant::now();
        proxy.set_endpoint_state(b.ip(), state);
        swap.push(t.elapsed().as_nanos() as u64);
        if ready {
            loop {
                requests_needed += 1;
                if get_close(front).await? == b'b' {
                    break;
                }
                if requests_needed > 10 * flips {
                    bail!("endpoint B never received traffic after becoming ready");
                }
            }
            to_ready.push(t.elapsed().as_nanos() as u64);
        } else {
            let first = get_close(front).await?;
            to_not_ready.push(t.elapsed().as_nanos() as u64);
            for _ in 0..3 {
                if get_close(front).await? != b'a' {
                    violations += 1;
                }
            }
            if first != b'a' {
                violations += 1;
            }
        }
    }
    stop.cancel();
    let show = |name: &str, mut v: Vec<u64>| {
        v.sort_unstable();
        let s = Sample {
            ok: v.len(),
            errors: 0,
            rate: 0.0,
            lat: v,
            cpu: cpu_now(None),
        };
        println!(
            "  {:<44} p50 {:>8.1} µs  p99 {:>8.1} µs  p99/10 ms target = {:.4}",
            name,
            s.pct_us(0.5),
            s.pct_us(0.99),
            s.pct_us(0.99) / 10_000.0
        );
    };
    println!(
        "readiness -> routing, {} services in the table, {flips} flips of one endpoint:",
        extra_services + 1
    );
    show("set_endpoint_state (table rebuilt and swapped)", swap);
    show("one request through the proxy (no change)", plain);
    show("call -> first response from the ready one", to_ready);
    show("call -> first response after not-ready", to_not_ready);
    println!(
        "  requests needed per ready flip: {:.2} (round robin over 2); not-ready endpoint reached after the call: {violations}",
        requests_needed as f64 / (flips / 2).max(1) as f64
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------

/// One kind of load run.
#[derive(Clone, Copy)]
enum Kind {
    /// Open loop at this many requests/s, a new connection per request.
    Open(u32),
    /// Closed loop with 32 clients, a new connection per request or keep-alive.
    Closed { keep: bool },
}

impl Kind {
    fn label(&self) -> String {
        match self {
            Kind::Open(rate) => format!("open {rate}/s"),
            Kind::Closed { keep: false } => "sat close c=32".into(),
            Kind::Closed { keep: true } => "sat keep c=32".into(),
        }
    }

    async fn run(&self, target: Target, secs: u64, proxy: Option<u32>) -> Sample {
        match *self {
            Kind::Open(rate) => open_loop(target, rate, secs, proxy).await,
            Kind::Closed { keep } => closed_loop(target, 32, secs, keep, proxy).await,
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn row(label: &str, who: &str, s: &Sample, direct: Option<&Sample>) {
    let added = |p: f64| match direct {
        Some(d) if who != "direct" => format!("{:>+9.1}", s.pct_us(p) - d.pct_us(p)),
        _ => format!("{:>9}", "-"),
    };
    let per_cpu = if who == "direct" {
        format!("{:>10}", "-")
    } else {
        format!("{:>10.0}", s.per_proxy_cpu())
    };
    let proxy_cpu = if who == "direct" {
        format!("{:>6}", "-")
    } else {
        format!("{:>6.2}", s.cpu.proxy)
    };
    println!(
        "{label:<18} {who:<8} {:>9.0} {:>9.1} {:>9.1} {} {} {proxy_cpu} {per_cpu} {:>6.2} {:>6.2} {:>6}",
        s.rate,
        s.pct_us(0.5),
        s.pct_us(0.99),
        added(0.5),
        added(0.99),
        s.cpu.me,
        s.cpu.machine - s.cpu.me - s.cpu.proxy,
        s.errors,
    );
}

fn header() {
    println!(
        "{:<18} {:<8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>6} {:>10} {:>6} {:>6} {:>6}",
        "run",
        "target",
        "req/s",
        "p50 µs",
        "p99 µs",
        "+p50 µs",
        "+p99 µs",
        "pxCPU",
        "req/pxCPU",
        "genCPU",
        "other",
        "errors"
    );
}

async fn bench() -> anyhow::Result<()> {
    let secs: u64 = std::env::var("PROXY_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rates: Vec<u32> = std::env::var("PROXY_BENCH_RATES")
        .ok()
        .map(|s| s.split(',').filter_map(|r| r.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 3000, 5000]);
    let rounds: usize = std::env::var("PROXY_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let a = backend(BACKEND_A, b'a').await?;
    let b = backend(BACKEND_B, b'b').await?;
    let dir = tempfile::tempdir()?;
    let pd_addr = free_port(PADDOCK_IP).await?;
    let ha_addr = free_port(HAPROXY_IP).await?;
    let paddock = start_paddock(pd_addr, a, b)?;
    let haproxy = start_haproxy(dir.path(), ha_addr, a, b)?;
    wait_listening(pd_addr, "paddock's proxy").await?;
    wait_listening(ha_addr, "haproxy").await?;

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "proxy benchmark: {cores} cores, load average {}; {}; {secs} s per run, {rounds} rounds",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        haproxy_version()
    );
    println!(
        "backends {a} and {b} (tiny HTTP/1.1), paddock on {pd_addr} (pid {}), haproxy on {ha_addr} (pid {}, mode tcp, roundrobin)",
        paddock.pid(),
        haproxy.pid()
    );
    println!(
        "pxCPU = proxy process CPU-s; genCPU = load generator + backends CPU-s (this process); other = the rest of the machine (other processes) CPU-s, from /proc/stat clock ticks, so approximate (can read slightly negative on a quiet machine)"
    );
    println!();
    header();

    let proxies: [(&Proc, SocketAddr); 2] = [(&paddock, pd_addr), (&haproxy, ha_addr)];
    let mut kinds: Vec<Kind> = rates.iter().map(|r| Kind::Open(*r)).collect();
    kinds.push(Kind::Closed { keep: false });
    kinds.push(Kind::Closed { keep: true });
    // Per kind and round: (req per CPU-s ratio, paddock's added p99, haproxy's added p99).
    let mut results: Vec<Vec<(f64, f64, f64)>> = vec![Vec::new(); kinds.len()];
    for round in 0..rounds {
        for (k, kind) in kinds.iter().enumerate() {
            let label = format!("{} #{}", kind.label(), round + 1);
            let direct = kind.run(Target::Direct(a, b), secs, None).await;
            row(&label, "direct", &direct, None);
            // Which proxy goes first alternates, so drift in the machine's load is shared.
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            let mut via: [Option<Sample>; 2] = [None, None];
            for i in order {
                let (p, addr) = proxies[i];
                let s = kind.run(Target::Via(addr), secs, Some(p.pid())).await;
                row(&label, p.name, &s, Some(&direct));
                via[i] = Some(s);
            }
            if let [Some(pd), Some(ha)] = &via {
                let added = |s: &Sample| s.pct_us(0.99) - direct.pct_us(0.99);
                results[k].push((
                    pd.per_proxy_cpu() / ha.per_proxy_cpu(),
                    added(pd),
                    added(ha),
                ));
            }
        }
    }
    println!();
    println!(
        "paddock vs haproxy, median over {rounds} rounds (targets: req per proxy CPU-s ratio >= 1; added p99 <= haproxy's):"
    );
    let met = |ok: bool| if ok { "(met)" } else { "(MISSED)" };
    for (kind, r) in kinds.iter().zip(&results) {
        let per_cpu = median(r.iter().map(|x| x.0).collect());
        let (pd, ha) = (
            median(r.iter().map(|x| x.1).collect()),
            median(r.iter().map(|x| x.2).collect()),
        );
        let rounds: Vec<String> = r.iter().map(|x| format!("{:.2}", x.0)).collect();
        print!(
            "  {:<16} req/CPU-s paddock/haproxy {per_cpu:.2} {:<8} (rounds {})",
            kind.label(),
            met(per_cpu >= 1.0),
            rounds.join(" ")
        );
        match kind {
            Kind::Open(_) => println!(
                "   added p99 paddock {pd:+.1} µs vs haproxy {ha:+.1} µs {}",
                met(pd <= ha)
            ),
            Kind::Closed { .. } => println!(),
        }
    }
    drop(paddock);
    drop(haproxy);
    println!();
    readiness(a, b, 0, 400).await?;
    readiness(a, b, 1000, 400).await?;
    Ok(())
}
