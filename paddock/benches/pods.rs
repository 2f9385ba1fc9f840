//! Node agent benchmark (issue 4). Run: `cargo bench -p paddock --bench pods` (add `-- --quick`
//! for 100 pods only).
//!
//! Starts the real `paddock up` (this build, memory store, `--host-network-only` so that 1,000
//! pods fit: a node's pod CIDR is a /24; `--max-pods 1100` since the kubelet's default is 110),
//! applies a Deployment of N replicas (`sleep` with an
//! exec readiness probe), and measures:
//! - time from the apply to all N pods Ready (target: 1,000 in ≤ 30 s), against a floor measured
//!   in the same run: spawning N `sleep` processes and running one `true` for each, directly;
//! - the agent's (whole process's) RSS and CPU per idle running pod over 10 s, against the same
//!   process with no pods (targets: ≤ 50 KiB and ≤ 0.1 % of a core per idle pod).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, PostParams};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_paddock");

struct Up {
    child: Child,
    kubeconfig: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Up {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

fn up() -> Up {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(BIN)
        .args([
            "up",
            "--memory",
            "--host-network-only",
            "--max-pods",
            "1100",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn paddock up");
    let stdout = child.stdout.take().expect("stdout");
    let mut kubeconfig = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("stdout");
        if let Some(p) = line.strip_prefix("export KUBECONFIG=") {
            kubeconfig = Some(p.into());
            break;
        }
    }
    Up {
        child,
        kubeconfig: kubeconfig.expect("kubeconfig line"),
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
    for &n in sizes {
        let base = floor(n);
        let node = up();
        let pid = node.child.id();
        std::thread::sleep(Duration::from_secs(3));
        let (rss0, t0) = common::usage(pid);
        std::thread::sleep(Duration::from_secs(10));
        let (_, t1) = common::usage(pid);
        let idle_cpu0 = (t1 - t0) as f64 / tick / 10.0;
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
        let (rss1, u0) = common::usage(pid);
        std::thread::sleep(Duration::from_secs(10));
        let (_, u1) = common::usage(pid);
        let cpu = (u1 - u0) as f64 / tick / 10.0;
        println!(
            "  idle with {n} pods: RSS {:.1} MB (no pods: {:.1} MB) → {:.1} KiB per pod (target ≤ 50); CPU {:.2} % of a core (no pods: {:.2} %) → {:.4} % per pod (target ≤ 0.1)",
            rss1 as f64 / 1024.0,
            rss0 as f64 / 1024.0,
            (rss1.saturating_sub(rss0)) as f64 / n as f64,
            cpu * 100.0,
            idle_cpu0 * 100.0,
            (cpu - idle_cpu0).max(0.0) * 100.0 / n as f64
        );
        drop(node);
    }
}
