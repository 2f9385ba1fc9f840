//! Container start through this crate with real runc (root; Debian packages `runc`,
//! `busybox-static`): N runs of busybox `true` from [`Runtime::run`] to its exit seen by
//! [`Runtime::wait`], then [`Runtime::remove`], against the floor of spawning the same binary as
//! a host process; the CPU the runtime's processes use per container; and the driver's memory
//! per running container. Prints numbers and ratios, asserts nothing.
//!
//!     cargo bench -p oci --bench start          (OCI_BENCH_N=50 by default)

use std::path::Path;
use std::time::Duration;

use oci::cgroups::{ContainerResources, Layout, QosClass};
use oci::runc::{RunRequest, Runtime};
use oci::spec::{ContainerSpec, Namespaces, NsMode, Security};
use tokio::time::Instant;

fn stats(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(|a, b| a.total_cmp(b));
    (v[v.len() / 2], v[(v.len() * 9) / 10])
}

fn children_cpu() -> f64 {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 * 1e3 + tv.tv_usec() as f64 / 1e3;
    t(u.user_time()) + t(u.system_time())
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn spec(layout: &Layout, id: &str, args: &[&str]) -> ContainerSpec {
    ContainerSpec {
        args: args.iter().map(|s| s.to_string()).collect(),
        security: Security::kubelet_default(),
        namespaces: Namespaces {
            network: NsMode::Container,
            ipc: NsMode::Container,
            uts: NsMode::Container,
            pid: NsMode::Container,
        },
        cgroups_path: layout
            .container_path(QosClass::BestEffort, "bench", id)
            .expect("path"),
        resources: ContainerResources::from_kubernetes(None, None, None),
        ..ContainerSpec::default()
    }
}

fn null() -> std::os::fd::OwnedFd {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .expect("/dev/null")
        .into()
}

#[tokio::main]
async fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("oci start bench: needs root");
        std::process::exit(1);
    }
    for (p, pkg) in [
        ("/bin/busybox", "busybox-static"),
        ("/usr/sbin/runc", "runc"),
    ] {
        if !Path::new(p).exists() {
            eprintln!("oci start bench: {p} missing: install the Debian package {pkg}");
            std::process::exit(1);
        }
    }
    let n: usize = std::env::var("OCI_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let tmp = tempfile::Builder::new()
        .prefix("oci-bench")
        .tempdir_in("/var/tmp")
        .expect("tmp");
    let layer = tmp.path().join("layer");
    for d in ["bin", "proc", "dev", "sys", "etc", "tmp"] {
        std::fs::create_dir_all(layer.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", layer.join("bin/busybox")).expect("copy");
    for a in ["true", "sleep", "sh"] {
        std::os::unix::fs::symlink("busybox", layer.join("bin").join(a)).expect("symlink");
    }
    let base = format!("oci-bench-{}", std::process::id());
    let layout = Layout::detect("/sys/fs/cgroup", &base).expect("cgroups");
    let rt = Runtime::new(
        &tmp.path().join("rt"),
        Path::new("runc"),
        Some(layout.clone()),
    )
    .expect("runtime");

    // The floor: the same binary as a host process.
    let mut host = Vec::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let st = tokio::process::Command::new("/bin/busybox")
            .arg("true")
            .status()
            .await
            .expect("spawn");
        assert!(st.success());
        host.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let (hm, hp) = stats(host);

    let mut start = Vec::new();
    let mut remove = Vec::new();
    let cpu0 = children_cpu();
    for i in 0..n {
        let id = format!("b{i}");
        let t0 = Instant::now();
        let c = rt
            .run(RunRequest {
                id: id.clone(),
                layers: vec![layer.clone()],
                spec: spec(&layout, &id, &["/bin/true"]),
                stdin: None,
                stdout: null(),
                stderr: null(),
            })
            .await
            .expect("run");
        let exit = rt.wait(&c).await;
        assert_eq!(exit.code, 0);
        start.push(t0.elapsed().as_secs_f64() * 1e3);
        let t1 = Instant::now();
        rt.remove(&id).await.expect("remove");
        remove.push(t1.elapsed().as_secs_f64() * 1e3);
    }
    let cpu = (children_cpu() - cpu0) / n as f64;
    let (sm, sp) = stats(start);
    let (rm, rp) = stats(remove);
    println!("host process start (busybox true, n={n}): median {hm:.2} ms, p90 {hp:.2} ms");
    println!(
        "container run..exit (overlay + config.json + runc run --detach, n={n}): median {sm:.2} ms, p90 {sp:.2} ms; ratio to host median {:.1}x",
        sm / hm
    );
    println!("container remove (runc delete + unmount + rm): median {rm:.2} ms, p90 {rp:.2} ms");
    println!("CPU of runc and the container per container (user+sys): {cpu:.1} ms");

    // Driver memory per running container.
    let idle = 50;
    let before = rss_kib();
    let mut running = Vec::new();
    for i in 0..idle {
        let id = format!("s{i}");
        running.push(
            rt.run(RunRequest {
                id: id.clone(),
                layers: vec![layer.clone()],
                spec: spec(&layout, &id, &["/bin/sleep", "600"]),
                stdin: None,
                stdout: null(),
                stderr: null(),
            })
            .await
            .expect("run sleeper"),
        );
    }
    let after = rss_kib();
    println!(
        "driver RSS with {idle} running containers: +{} KiB ({:.1} KiB per container)",
        after.saturating_sub(before),
        after.saturating_sub(before) as f64 / idle as f64
    );
    for c in &running {
        rt.stop(c, Duration::from_secs(1)).await.expect("stop");
        rt.remove(&c.id).await.expect("remove");
    }
    let _ = layout.remove(&format!("/{base}"));
}
