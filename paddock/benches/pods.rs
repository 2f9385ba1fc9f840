//! Node agent benchmark (issue 4). Run: `cargo bench -p paddock --bench pods` (add `-- --quick`
//! for 100 pods only).
//!
//! Starts the real `paddock server` (this build, memory store) and, as a separate process, the
//! real `paddock agent` joining it (`--host-network-only` so that 1,000 pods fit: a node's pod
//! CIDR is a /24; `--max-pods 1100` since the kubelet's default is 110), applies a Deployment of
//! N replicas (`sleep` with an exec readiness probe), and measures:
//! - time from the apply to all N pods Ready (target: 1,000 in ≤ 30 s), against a floor measured
//!   in the same run: spawning N `sleep` processes and running one `true` for each, directly;
//! - the agent process's RSS and CPU per idle running pod over 10 s, against the same process
//!   with no pods (targets: ≤ 50 KiB and ≤ 0.1 % of a core per idle pod); the server's too, for
//!   reference (it holds the objects, not the pods). RSS is read after those 10 s (15 s after
//!   the last pod became Ready), and also 5 s after, to show what the burst still held;
//! - how long the agent takes to stop N pods on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_paddock");

/// A child process stopped with SIGTERM (and waited for) on drop.
struct Proc(Child);

impl Proc {
    fn id(&self) -> u32 {
        self.0.id()
    }

    /// SIGTERM, then waits; how long the process took to exit.
    fn stop(&mut self) -> Duration {
        let t0 = SystemTime::now();
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.0.wait();
        t0.elapsed().unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Node {
    agent: Proc,
    server: Proc,
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Spawns `paddock ARGS` and returns it with the first stdout line starting with `prefix`.
fn spawn(args: &[&str], dir: &std::path::Path, prefix: &str) -> (Proc, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn paddock");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = loop {
        let line = lines.next().expect("a line").expect("stdout");
        if line.starts_with(prefix) {
            break line;
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (Proc(child), line)
}

fn node() -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let (server, line) = spawn(
        &["server", "--memory", "--listen", "127.0.0.1:0"],
        &dir.path().join("server"),
        "export KUBECONFIG=",
    );
    let kubeconfig: std::path::PathBuf = line["export KUBECONFIG=".len()..].into();
    let kc = kubeconfig.display().to_string();
    let (agent, _) = spawn(
        &[
            "agent",
            "--kubeconfig",
            &kc,
            "--node-name",
            "bench",
            "--host-network-only",
            "--max-pods",
            "1100",
        ],
        &dir.path().join("agent"),
        "node ",
    );
    Node {
        agent,
        server,
        kubeconfig,
        _dir: dir,
    }
}

fn deployment(n: usize) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "sleepers"},
        "spec": {"replicas": n, "selector": {"matchLabels": {"app": "sleepers"}},
            "template": {"metadata": {"labels": {"app": "sleepers"}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "image": "none",
                    "command": ["sleep", "3600"],
                    "readinessProbe": {"exec": {"command": ["true"]}}}]}}}
    }))
    .expect("deployment")
}

/// The floor: spawn N sleeps and run one `true` per pod, directly.
fn floor(n: usize) -> Duration {
    let t0 = SystemTime::now();
    let mut sleeps: Vec<Child> = (0..n)
        .map(|_| Command::new("sleep").arg("3600").spawn().expect("sleep"))
        .collect();
    for _ in 0..n {
        Command::new("true").status().expect("true");
    }
    let took = t0.elapsed().expect("clock");
    for s in &mut sleeps {
        let _ = s.kill();
        let _ = s.wait();
    }
    took
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes: &[usize] = if quick { &[100] } else { &[100, 1000] };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tick = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    // CPU share of a core over `secs`, per process.
    let cpu = |pids: &[u32], secs: u64| -> Vec<f64> {
        let before: Vec<u64> = pids.iter().map(|p| common::usage(*p).1).collect();
        std::thread::sleep(Duration::from_secs(secs));
        pids.iter()
            .zip(before)
            .map(|(p, b)| (common::usage(*p).1 - b) as f64 / tick / secs as f64)
            .collect()
    };
    // (pods, agent RSS, agent anonymous memory) of each size, for the slope between sizes.
    let mut idle: Vec<(usize, u64, u64)> = Vec::new();
    for &n in sizes {
        let base = floor(n);
        let mut node = node();
        let pids = [node.agent.id(), node.server.id()];
        std::thread::sleep(Duration::from_secs(3));
        let rss0: Vec<u64> = pids.iter().map(|p| common::usage(*p).0).collect();
        let anon0 = common::anon_kib(pids[0]);
        let cpu0 = cpu(&pids, 10);
        let ready_in = rt.block_on(async {
            let c = common::client(&node.kubeconfig).await;
            let api: Api<Deployment> = Api::namespaced(c, "default");
            let start = tokio::time::Instant::now();
            api.create(&PostParams::default(), &deployment(n))
                .await
                .expect("create");
            loop {
                let d = api.get("sleepers").await.expect("get");
                let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or(0);
                if ready as usize >= n {
                    break start.elapsed();
                }
                if start.elapsed() > Duration::from_secs(600) {
                    panic!("only {ready}/{n} ready after 600 s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        println!(
            "{n} pods Ready in {:.2} s (target for 1,000: ≤ 30 s); floor (spawn {n} sleeps + {n} probes directly) {:.2} s; ratio {:.1}×",
            ready_in.as_secs_f64(),
            base.as_secs_f64(),
            ready_in.as_secs_f64() / base.as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(5));
        // Memory is read twice: 5 s after the last pod became Ready (the agent may still be
        // handing back what the burst took: jemalloc returns freed pages over ~10 s) and again
        // after the 10 s idle CPU window, which is what "idle" means here.
        let settling = common::usage(pids[0]).0;
        let cpu1 = cpu(&pids, 10);
        let rss1: Vec<u64> = pids.iter().map(|p| common::usage(*p).0).collect();
        let anon1 = common::anon_kib(pids[0]);
        idle.push((n, rss1[0], anon1));
        for (i, what) in ["agent", "server"].iter().enumerate() {
            let target = if i == 0 {
                " (targets ≤ 50 KiB, ≤ 0.1 %)"
            } else {
                " (for reference)"
            };
            println!(
                "  {what} idle with {n} pods: RSS {:.1} MB (no pods: {:.1} MB) → {:.1} KiB per pod; CPU {:.2} % of a core (no pods: {:.2} %) → {:.4} % per pod{target}",
                rss1[i] as f64 / 1024.0,
                rss0[i] as f64 / 1024.0,
                rss1[i].saturating_sub(rss0[i]) as f64 / n as f64,
                cpu1[i] * 100.0,
                cpu0[i] * 100.0,
                (cpu1[i] - cpu0[i]).max(0.0) * 100.0 / n as f64
            );
        }
        println!(
            "  agent anonymous memory (heap and stacks, no code pages) with {n} pods: {:.1} MB (no pods: {:.1} MB) → {:.1} KiB per pod",
            anon1 as f64 / 1024.0,
            anon0 as f64 / 1024.0,
            anon1.saturating_sub(anon0) as f64 / n as f64
        );
        println!(
            "  agent RSS 5 s after all Ready (before the idle window): {:.1} MB → {:.1} KiB per pod",
            settling as f64 / 1024.0,
            settling.saturating_sub(rss0[0]) as f64 / n as f64
        );
        let stopped = node.agent.stop();
        println!(
            "  agent stopped {n} pods and exited in {:.2} s",
            stopped.as_secs_f64()
        );
    }
    // The cost of one more pod, free of fixed costs (code pages touched once, buffers sized
    // by the first burst): the slope between the smallest and the largest run.
    if let (Some(&(n0, r0, a0)), Some(&(n1, r1, a1))) = (idle.first(), idle.last())
        && n1 > n0
    {
        let d = (n1 - n0) as f64;
        println!(
            "agent memory per additional idle pod ({n0} → {n1} pods): RSS {:.1} KiB, anonymous {:.1} KiB (target ≤ 50 KiB)",
            (r1 as f64 - r0 as f64) / d,
            (a1 as f64 - a0 as f64) / d
        );
    }
}
