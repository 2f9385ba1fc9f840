//! Container start latency of [`ProcessRuntime`] against a floor measured in the same run: a
//! bare tokio spawn-and-wait of the same command (`true`).
//!
//! - host mode: `start_container` + `wait_container` (log files, state record, process group);
//! - isolated mode (root): the same inside a pod (namespaces entered, private `/tmp` mounted);
//! - sandbox: `run_sandbox` + `stop_sandbox` of an isolated pod (holder, veth, IP, `/etc`).
//!
//! Isolated runs happen inside a network namespace this bench creates and deletes. Rounds
//! alternate floor and measured path; medians and the ratio are printed.
//! Run: `cargo bench -p agent --bench runtime`.

use std::path::Path;
use std::time::Duration;

use agent::runtime::net::{NodeNetwork, PodCidr};
use agent::runtime::{ContainerConfig, ProcessRuntime, Runtime, SandboxConfig};
use tokio::time::Instant;

const ROUNDS: usize = 30;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn floor() -> Duration {
    let t = Instant::now();
    let _ = tokio::process::Command::new("true").status().await;
    t.elapsed()
}

fn runtime(dir: &Path, isolated: bool) -> ProcessRuntime {
    let mut node = NodeNetwork::new(PodCidr::parse("10.244.0.0/24").expect("cidr"));
    node.isolated = isolated;
    ProcessRuntime::new(dir.to_path_buf(), node).expect("runtime")
}

fn sandbox_cfg(i: usize) -> SandboxConfig {
    SandboxConfig {
        pod_uid: format!("bench-{i}"),
        namespace: "default".into(),
        name: format!("bench-{i}"),
        hostname: format!("bench-{i}"),
        ..Default::default()
    }
}

async fn start_latency(rt: &ProcessRuntime, label: &str) {
    let sb = rt.run_sandbox(&sandbox_cfg(0)).await.expect("sandbox");
    let (mut fl, mut ours) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        fl.push(floor().await);
        let cfg = ContainerConfig {
            name: "c".into(),
            argv: vec!["true".into()],
            restart_count: i as i32,
            ..Default::default()
        };
        let t = Instant::now();
        let started = rt.start_container(&sb, &cfg).await.expect("start");
        rt.wait_container(&started.id).await;
        ours.push(t.elapsed());
    }
    rt.stop_sandbox(&sb).await.expect("stop");
    let (f, o) = (median(fl), median(ours));
    println!(
        "{label:<28} floor {:>8.2?}  ours {:>8.2?}  ratio {:.1}x",
        f,
        o,
        o.as_secs_f64() / f.as_secs_f64()
    );
}

async fn sandbox_latency(rt: &ProcessRuntime) {
    let (mut fl, mut ours) = (Vec::new(), Vec::new());
    for i in 0..ROUNDS {
        fl.push(floor().await);
        let t = Instant::now();
        let sb = rt.run_sandbox(&sandbox_cfg(i)).await.expect("sandbox");
        rt.stop_sandbox(&sb).await.expect("stop");
        ours.push(t.elapsed());
    }
    let (f, o) = (median(fl), median(ours));
    println!(
        "{:<28} floor {:>8.2?}  ours {:>8.2?}  ratio {:.1}x",
        "isolated sandbox run+stop",
        f,
        o,
        o.as_secs_f64() / f.as_secs_f64()
    );
}

/// A network namespace for the isolated runs, deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
        .block_on(start_latency(
            &runtime(&dir.path().join("host"), false),
            "host container start+exit",
        ));
    if !nix::unistd::geteuid().is_root() {
        println!("isolated mode: skipped (needs root)");
        return;
    }
    let ns = Netns(format!("paddock-bench-{}", std::process::id()));
    let added = std::process::Command::new("ip")
        .args(["netns", "add", &ns.0])
        .status();
    assert!(added.is_ok_and(|s| s.success()), "ip netns add");
    let path = format!("/run/netns/{}", ns.0);
    let root = dir.path().join("isolated");
    std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).expect("netns");
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let _ = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio")
            .block_on(async {
                let rt = runtime(&root, true);
                start_latency(&rt, "isolated container start+exit").await;
                sandbox_latency(&rt).await;
                rt.shutdown(Duration::ZERO).await.expect("shutdown");
            });
    })
    .join()
    .expect("isolated runs");
    drop(ns);
}
