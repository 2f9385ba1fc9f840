//! [`ProcessRuntime`] with real processes: host mode everywhere, isolated mode (root) inside a
//! network namespace each test creates and deletes (see [`TestNetns`]).

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use nix::sys::signal::killpg;

use super::sandbox::BRIDGE_CHECK;

use super::*;
use crate::runtime::net::PodCidr;
use crate::runtime::{MountConfig, PortConfig, ProjectedFile, VolumeConfig, VolumeSource};

fn host_runtime(dir: &Path) -> ProcessRuntime {
    let mut node = NodeNetwork::new(PodCidr::parse("10.244.0.0/24").expect("cidr"));
    node.isolated = false;
    ProcessRuntime::new(dir.to_path_buf(), node).expect("runtime")
}

fn sandbox_cfg(name: &str) -> SandboxConfig {
    SandboxConfig {
        pod_uid: format!("uid-{name}"),
        namespace: "default".into(),
        name: name.into(),
        hostname: name.into(),
        ..Default::default()
    }
}

fn container(name: &str, argv: &[&str]) -> ContainerConfig {
    ContainerConfig {
        name: name.into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        image: "busybox".into(),
        ..Default::default()
    }
}

/// Polls `cond` (real time, 10 ms) and fails the test after 10 s instead of hanging.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn marker_pids(id: &ContainerId) -> Vec<i32> {
    state::tree_pids(None, &format!("{MARKER_ENV}={id}"), 0)
}

fn log_texts(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let p = logs::parse_line(l.as_bytes())?;
            Some(format!("{} {}", p.stream, String::from_utf8_lossy(p.text)))
        })
        .collect()
}

/// A one-thread tokio runtime: whatever blocks its only async thread stops everything on it
/// (and dropping it ends its tasks, as an agent's death would).
fn one_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

#[tokio::test]
async fn host_mode_runs_waits_and_logs_in_cri_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let rt = host_runtime(dir.path());
    let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
    assert_eq!(sb.pod_ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
    let mut cfg = container(
        "c",
        &["sh", "-c", "echo out $FOO $HOSTNAME; echo err >&2; exit 3"],
    );
    cfg.env = vec![("FOO".into(), "bar".into())];
    let started = rt.start_container(&sb, &cfg).await.expect("start");
    let (a, b) = tokio::join!(
        rt.wait_container(&started.id),
        rt.wait_container(&started.id)
    );
    assert_eq!(a, b, "every waiter sees the same exit");
    assert_eq!(
        (a.exit_code, a.signal, a.reason.as_str()),
        (3, None, "Error")
    );
    let mut lines = log_texts(&rt.log_path(&started.id));
    lines.sort();
    assert_eq!(
        lines,
        vec!["stderr err".to_string(), "stdout out bar p".to_string()]
    );
    assert_eq!(
        rt.log_path(&started.id),
        rt.instance_log_path("uid-p", "c", 0)
    );
    // A later wait still resolves.
    assert_eq!(rt.wait_container(&started.id).await.exit_code, 3);
    let ok = rt
        .start_container(
            &sb,
            &ContainerConfig {
                restart_count: 1,
                ..container("c", &["true"])
            },
        )
        .await
        .expect("start");
    assert_eq!(rt.wait_container(&ok.id).await.reason, "Completed");
    // The previous instance's log stays for --previous.
    assert!(rt.instance_log_path("uid-p", "c", 0).exists());
    rt.stop_sandbox(&sb).await.expect("stop");
    rt.stop_sandbox(&sb).await.expect("idempotent");
    rt.remove_pod_logs("uid-p").await.expect("remove logs");
    assert!(!rt.instance_log_path("uid-p", "c", 0).exists());
}

#[tokio::test]
async fn stop_sigterm_then_sigkill_reaches_the_whole_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let rt = host_runtime(dir.path());
    let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
    // Ignores SIGTERM (inherited by its children), has a child in its group and one that left
    // the group with setsid.
    let cfg = container(
        "stubborn",
        &[
            "sh",
            "-c",
            "trap '' TERM; sleep 1000 & setsid sleep 1001 & echo ready; wait",
        ],
    );
    let started = rt.start_container(&sb, &cfg).await.expect("start");
    let log = rt.log_path(&started.id);
    eventually("the container says ready", || {
        log_texts(&log).iter().any(|l| l == "stdout ready")
    })
    .await;
    assert!(
        marker_pids(&started.id).len() >= 3,
        "{:?}",
        marker_pids(&started.id)
    );
    rt.stop_container(&started.id, Duration::from_millis(300))
        .await
        .expect("stop");
    assert_eq!(
        marker_pids(&started.id),
        Vec::<i32>::new(),
        "nothing survives"
    );
    let exited = rt.wait_container(&started.id).await;
    assert_eq!((exited.exit_code, exited.signal), (137, Some(9)));
    rt.stop_container(&started.id, Duration::ZERO)
        .await
        .expect("idempotent");

    // A process that honours SIGTERM ends within the grace period with 143.
    let polite = rt
        .start_container(&sb, &container("polite", &["sleep", "1000"]))
        .await
        .expect("start");
    rt.stop_container(&polite.id, Duration::from_secs(30))
        .await
        .expect("stop");
    let exited = rt.wait_container(&polite.id).await;
    assert_eq!((exited.exit_code, exited.signal), (143, Some(15)));
    rt.stop_sandbox(&sb).await.expect("stop sandbox");
}

#[tokio::test]
async fn what_a_container_leaves_behind_dies_with_its_main_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let rt = host_runtime(dir.path());
    let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
    let cfg = container(
        "c",
        &["sh", "-c", "sleep 1000 & setsid sleep 1001 & exit 2"],
    );
    let started = rt.start_container(&sb, &cfg).await.expect("start");
    assert_eq!(rt.wait_container(&started.id).await.exit_code, 2);
    assert_eq!(marker_pids(&started.id), Vec::<i32>::new());
    rt.stop_sandbox(&sb).await.expect("stop");
}

#[tokio::test]
async fn start_errors_name_the_cause() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let rt = host_runtime(dir.path());
    let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
    let err = |argv: &'static [&'static str]| {
        let rt = rt.clone();
        let sb = sb.clone();
        async move {
            rt.start_container(&sb, &container("c", argv))
                .await
                .expect_err("must fail")
                .to_string()
        }
    };
    assert_eq!(
        err(&["no-such-command-xyz"]).await,
        "exec: \"no-such-command-xyz\": executable file not found in $PATH"
    );
    assert_eq!(
        err(&["/no/such/file"]).await,
        "exec: \"/no/such/file\": stat /no/such/file: no such file or directory"
    );
    let script = dir.path().join("noexec.sh");
    std::fs::write(&script, "#!/bin/sh\n").expect("write");
    let script: &'static str = Box::leak(script.display().to_string().into_boxed_str());
    let argv: &'static [&'static str] = Box::leak(vec![script].into_boxed_slice());
    assert_eq!(
        err(argv).await,
        format!("exec: \"{script}\": permission denied")
    );
    let mut bad_cwd = container("c", &["true"]);
    bad_cwd.working_dir = Some("/no/such/dir".into());
    let e = rt.start_container(&sb, &bad_cwd).await.expect_err("cwd");
    assert_eq!(
        e.to_string(),
        "chdir to cwd (\"/no/such/dir\") set in config.json failed: no such file or directory"
    );
    let e = rt
        .start_container(&sb, &container("c", &[]))
        .await
        .expect_err("empty");
    assert!(matches!(e, RuntimeError::NoCommand));
    rt.stop_sandbox(&sb).await.expect("stop");
}

#[tokio::test]
async fn host_mode_port_clash_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let rt = host_runtime(dir.path());
    let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let mut cfg = container("web", &["true"]);
    cfg.ports = vec![PortConfig {
        container_port: port,
        protocol: "TCP".into(),
    }];
    let e = rt.start_container(&sb, &cfg).await.expect_err("clash");
    assert_eq!(
        e.to_string(),
        format!(
            "port {port}/TCP is already in use on the node (host network): listen tcp 0.0.0.0:{port}: bind: address already in use"
        )
    );
    drop(taken);
    let ok = rt.start_container(&sb, &cfg).await.expect("free now");
    assert_eq!(rt.wait_container(&ok.id).await.exit_code, 0);
    rt.stop_sandbox(&sb).await.expect("stop");
}

#[tokio::test]
async fn exec_probe_runner_uses_the_container_env_and_kills_on_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let rt = host_runtime(dir.path());
    let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
    let mut cfg = container("c", &["sleep", "1000"]);
    cfg.env = vec![("GREETING".into(), "hello".into())];
    cfg.working_dir = Some(dir.path().to_path_buf());
    let started = rt.start_container(&sb, &cfg).await.expect("start");
    let runner = rt.exec_runner(&started.id);
    let argv: Vec<String> = ["sh", "-c", "echo $GREETING $(pwd); echo e >&2; exit 4"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = runner
        .run(&argv, Duration::from_secs(10))
        .await
        .expect("ran");
    assert_eq!(out.status, probe::ExecStatus::Exited(4));
    assert_eq!(
        String::from_utf8_lossy(&out.output),
        format!("hello {}\ne\n", dir.path().display())
    );
    let slow: Vec<String> = ["sh", "-c", "sleep 1000 & sleep 1001; echo never"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let out = runner
        .run(&slow, Duration::from_millis(200))
        .await
        .expect("ran");
    assert_eq!(out.status, probe::ExecStatus::TimedOut);
    // A probe that exits at once but leaves a child in its group (not holding the output), and
    // one whose child escaped the group but holds the output pipe: each is gone when the result
    // comes back.
    for script in [
        "sleep 1002 >/dev/null 2>&1 & exit 1",
        "setsid sleep 1003 & exit 1",
    ] {
        let argv = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        let out = runner
            .run(&argv, Duration::from_secs(5))
            .await
            .expect("ran");
        assert_eq!(out.status, probe::ExecStatus::Exited(1), "{script}");
        assert_eq!(
            marker_pids(&started.id),
            vec![started.pid as i32],
            "{script} left something"
        );
    }
    let missing = runner
        .run(&["nope-xyz".to_string()], Duration::from_secs(1))
        .await;
    assert!(
        matches!(missing, Err(probe::ExecError::NotFound(_))),
        "{missing:?}"
    );
    // Only the container's own processes remain: the probe's sleepers are gone.
    assert_eq!(marker_pids(&started.id), vec![started.pid as i32]);
    rt.stop_container(&started.id, Duration::ZERO)
        .await
        .expect("stop");
    let after = runner.run(&argv, Duration::from_secs(1)).await;
    assert!(
        matches!(after, Err(probe::ExecError::Runtime(_))),
        "{after:?}"
    );
    rt.stop_sandbox(&sb).await.expect("stop");
}

#[tokio::test]
async fn exec_sessions_with_pipes_and_a_tty() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let rt = host_runtime(dir.path());
    let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
    let started = rt
        .start_container(&sb, &container("c", &["sleep", "1000"]))
        .await
        .expect("start");
    let mut s = rt
        .exec(&started.id, &["cat".to_string()], false, true)
        .await
        .expect("exec");
    let mut stdin = s.stdin.take().expect("stdin");
    stdin.write_all(b"ping\n").await.expect("write");
    drop(stdin);
    let mut out = String::new();
    s.stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .await
        .expect("read");
    assert_eq!(out, "ping\n");
    assert_eq!(s.wait().await, 0);

    let argv: Vec<String> = ["sh", "-c", "tty; stty size; exit 7"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut s = rt
        .exec(&started.id, &argv, true, true)
        .await
        .expect("exec tty");
    s.resize(100, 40).expect("resize");
    let mut out = Vec::new();
    let mut r = s.stdout.take().expect("pty");
    let code = s.wait().await;
    r.read_to_end(&mut out).await.expect("read");
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("/dev/pts/"), "{out}");
    assert_eq!(code, 7);
    rt.stop_sandbox(&sb).await.expect("stop");
}

/// The numbers of `tick <n>` lines in a log, in order.
fn ticks(path: &Path) -> Vec<u32> {
    log_texts(path)
        .iter()
        .filter_map(|l| l.strip_prefix("stdout tick ")?.parse().ok())
        .collect()
}

#[tokio::test]
async fn a_restarted_runtime_adopts_what_the_last_one_left_and_keeps_its_logs_flowing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let root = dir.path().to_path_buf();
    // The first agent runs on its own tokio runtime, dropped at the end like a dead process.
    let (sb, started) = std::thread::spawn(move || {
        one_thread().block_on(async {
            let rt = host_runtime(&root);
            let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
            let cfg = container(
                "c",
                &[
                    "sh",
                    "-c",
                    "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.02; done",
                ],
            );
            let started = rt.start_container(&sb, &cfg).await.expect("start");
            let log = rt.log_path(&started.id);
            eventually("three ticks", || ticks(&log).len() >= 3).await;
            (sb, started)
        })
    })
    .join()
    .expect("first agent");
    // Output written while no agent runs must neither kill the container nor be lost.
    std::thread::sleep(Duration::from_millis(200));
    let rt = host_runtime(dir.path());
    let found = rt.list().await.expect("list");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].sandbox.id, sb.id);
    assert_eq!(found[0].pod_uid, "uid-p");
    assert!(found[0].alive);
    let ids: Vec<_> = found[0]
        .containers
        .iter()
        .map(|c| (c.id.clone(), c.pid))
        .collect();
    assert_eq!(ids, vec![(started.id.clone(), started.pid)]);
    let log = rt.log_path(&started.id);
    let seen = ticks(&log).len();
    eventually("20 more ticks after adoption", || {
        ticks(&log).len() >= seen + 20
    })
    .await;
    let waiter = {
        let rt = rt.clone();
        let id = started.id.clone();
        tokio::spawn(async move { rt.wait_container(&id).await })
    };
    rt.shutdown(Duration::from_secs(5)).await.expect("shutdown");
    assert_eq!(marker_pids(&started.id), Vec::<i32>::new());
    assert_eq!(
        waiter.await.expect("waiter").reason,
        "ContainerStatusUnknown"
    );
    let got = ticks(&log);
    let expected: Vec<u32> = (0..got.len() as u32).collect();
    assert_eq!(
        got, expected,
        "every line once, in order, across the restart"
    );
    assert!(rt.list().await.expect("list").is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("containers"))
            .expect("dir")
            .count(),
        0
    );
}

#[test]
fn a_container_writing_as_fast_as_it_can_never_blocks_the_async_threads() {
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let ticks = Arc::new(AtomicU64::new(0));
    let pid = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // A watchdog outside the runtime: if the one async thread stops ticking for 3 s, the flood
    // is killed (so a failing run ends) and the stall recorded.
    let watchdog = {
        let (ticks, pid, done) = (ticks.clone(), pid.clone(), done.clone());
        std::thread::spawn(move || {
            let mut last = (0, 0);
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(100));
                let now = ticks.load(Ordering::SeqCst);
                if now != last.0 {
                    last = (now, 0);
                } else {
                    last.1 += 1;
                }
                if last.1 >= 30 && pid.load(Ordering::SeqCst) != 0 {
                    let p = Pid::from_raw(pid.load(Ordering::SeqCst) as i32);
                    let _ = killpg(p, Signal::SIGKILL);
                    return true;
                }
            }
            false
        })
    };
    let root = dir.path().to_path_buf();
    let lines = one_thread().block_on(async {
        let rt = host_runtime(&root);
        let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
        let started = rt
            .start_container(
                &sb,
                &container("c", &["sh", "-c", "yes | head -c 200000000"]),
            )
            .await
            .expect("start");
        pid.store(started.pid, Ordering::SeqCst);
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(10)).await;
            ticks.fetch_add(1, Ordering::SeqCst);
        }
        rt.stop_container(&started.id, Duration::ZERO)
            .await
            .expect("stop");
        let lines = log_texts(&rt.log_path(&started.id)).len();
        rt.stop_sandbox(&sb).await.expect("stop sandbox");
        lines
    });
    done.store(true, Ordering::SeqCst);
    assert!(
        !watchdog.join().expect("watchdog"),
        "the async thread stalled for 3 s while a container wrote its output"
    );
    assert!(
        lines > 1000,
        "the output was copied meanwhile: {lines} lines"
    );
}

#[test]
fn stopping_a_pod_removes_its_files_off_the_async_threads() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let root = dir.path().to_path_buf();
    let during = one_thread().block_on(async {
        let rt = host_runtime(&root);
        let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
        // What an emptyDir full of small files leaves in the pod's directory.
        let data = root.join("pods").join(&sb.id).join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        for i in 0..20_000 {
            std::fs::write(data.join(i.to_string()), b"x").expect("file");
        }
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = {
            let ticks = ticks.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        tokio::task::yield_now().await;
        let before = ticks.load(Ordering::SeqCst);
        rt.stop_sandbox(&sb).await.expect("stop");
        let during = ticks.load(Ordering::SeqCst) - before;
        ticker.abort();
        assert!(!data.exists(), "the pod's files are removed");
        during
    });
    assert!(
        during > 0,
        "the only async thread ran nothing else while the pod's files were removed"
    );
}

// ---------------------------------------------------------------------------------------------
// Isolated mode (root): each test runs the runtime inside its own network namespace.

/// A network namespace created for one test and deleted on drop (also when the test fails).
struct TestNetns {
    name: String,
}

impl TestNetns {
    fn new() -> Self {
        let name = format!("paddock-test-{}", &new_id()[..10]);
        let ok = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name}");
        Self { name }
    }

    /// Runs `body` on a thread inside the namespace, on a tokio runtime whose threads are all
    /// created there (so every task, process and thread the runtime starts is in it).
    fn run<F, Fut>(&self, body: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let path = format!("/run/netns/{}", self.name);
        let handle = std::thread::spawn(move || {
            let fd = std::fs::File::open(&path).expect("open netns");
            nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let st = std::process::Command::new("ip")
                .args(["link", "set", "lo", "up"])
                .status()
                .expect("ip");
            assert!(st.success());
            // A multi-thread runtime, as the agent uses: its worker threads are created from
            // this thread, so they are in the namespace too.
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio")
                .block_on(body());
        });
        if let Err(panic) = handle.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Kills what a runtime rooted at `root` left running and removes the mount points it made,
/// from its on-disk state: runs on drop, so a failing test leaves nothing behind either.
struct RootGuard(PathBuf);

impl Drop for RootGuard {
    fn drop(&mut self) {
        for rec in state::read_all::<ContainerRecord>(&self.0.join("containers")) {
            for pid in state::tree_pids(None, &format!("{MARKER_ENV}={}", rec.id), 0) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        for rec in state::read_all::<SandboxRecord>(&self.0.join("sandboxes")) {
            if let Some(h) = rec.holder.filter(|h| h.alive()) {
                let _ = kill(Pid::from_raw(h.pid as i32), Signal::SIGKILL);
            }
            let list = self.0.join("pods").join(&rec.id).join("mountpoints");
            if let Ok(text) = std::fs::read_to_string(list) {
                let paths: Vec<PathBuf> = text.lines().map(PathBuf::from).collect();
                volumes::remove_mount_points(&paths);
            }
        }
    }
}

/// A runtime on `dir` that isolates pods (inside a [`TestNetns`]).
fn isolated_runtime(dir: &Path) -> ProcessRuntime {
    let node = NodeNetwork::new(PodCidr::parse("10.244.0.0/24").expect("cidr"));
    ProcessRuntime::new(dir.to_path_buf(), node).expect("runtime")
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

async fn http_get(ip: IpAddr, port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect((ip, port)).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.ok()?;
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

async fn wait_get(ip: IpAddr, port: u16, path: &str) -> String {
    for _ in 0..500 {
        if let Some(body) = http_get(ip, port, path).await {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no HTTP answer from {ip}:{port}");
}

/// `ip ARGS` in the current namespace: its stdout.
fn ip_out(args: &[&str]) -> String {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("ip");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn links() -> String {
    ip_out(&["-o", "link"])
}

#[test]
fn isolated_pods_get_their_own_network_hostname_volumes_and_leave_nothing() {
    if !is_root() {
        // Isolation needs root; these machines run tests as root (design.md).
        panic!("isolated-mode tests need root");
    }
    let ns = TestNetns::new();
    ns.run(|| async {
        let dir = tempfile::tempdir().expect("tempdir");
        let _guard = RootGuard(dir.path().to_path_buf());
        let host_dir = tempfile::tempdir().expect("hostpath");
        std::fs::write(host_dir.path().join("seed"), b"from-node").expect("seed");
        let node = NodeNetwork::new(PodCidr::parse("10.244.0.0/24").expect("cidr"));
        let rt = ProcessRuntime::new(dir.path().to_path_buf(), node).expect("runtime");
        assert!(rt.is_isolated());
        let missing_mount = PathBuf::from(format!("/paddock-test-mnt-{}", &new_id()[..8]));
        let shm_name = format!("paddock-test-{}", &new_id()[..8]);

        let mut pods = Vec::new();
        for name in ["pod-a", "pod-b"] {
            let mut cfg = sandbox_cfg(name);
            cfg.volumes = vec![
                VolumeConfig { name: "data".into(), source: VolumeSource::EmptyDir { memory: false } },
                VolumeConfig { name: "mem".into(), source: VolumeSource::EmptyDir { memory: true } },
                VolumeConfig {
                    name: "cfg".into(),
                    source: VolumeSource::Files {
                        files: vec![ProjectedFile { path: "key".into(), data: name.as_bytes().to_vec(), mode: 0o644 }],
                        default_mode: 0o644,
                        memory: true,
                    },
                },
                VolumeConfig {
                    name: "host".into(),
                    source: VolumeSource::HostPath {
                        path: host_dir.path().to_path_buf(),
                        kind: crate::runtime::HostPathType::Directory,
                    },
                },
            ];
            let sb = rt.run_sandbox(&cfg).await.expect("sandbox");
            assert!(sb.isolated);
            let web = rt
                .start_container(
                    &sb,
                    &container("web", &["python3", "-m", "http.server", "8080", "--bind", "0.0.0.0", "--directory", "/etc"]),
                )
                .await
                .expect("web");
            pods.push((name, sb, web));
        }
        let (ip_a, ip_b) = (pods[0].1.pod_ip, pods[1].1.pod_ip);
        assert_ne!(ip_a, ip_b);
        assert_eq!(ip_a, IpAddr::V4(Ipv4Addr::new(10, 244, 0, 2)));
        // Both listen on 8080, each reachable at its own IP from the node, each with its own
        // /etc/hostname.
        assert_eq!(wait_get(ip_a, 8080, "/hostname").await, "pod-a\n");
        assert_eq!(wait_get(ip_b, 8080, "/hostname").await, "pod-b\n");
        let hosts = wait_get(ip_a, 8080, "/hosts").await;
        assert!(hosts.contains(&format!("{ip_a}\tpod-a\n")), "{hosts}");

        // Containers of one pod share localhost; volumes at their mountPath, readOnly honoured.
        let (_, sb_a, web_a) = &pods[0];
        let script = format!(
            "python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:8080/hostname').read().decode().strip())\"; \
             cat /etc/cfg/key; echo; \
             echo x > /data/f && echo data-rw; \
             (echo x > /etc/cfg/new) 2>/dev/null || echo cfg-ro; \
             (echo x > /mnt/host/new) 2>/dev/null || echo host-ro; cat /mnt/host/seed; echo; \
             echo x > {m}/f && echo missing-rw; \
             touch /tmp/mine && ls /tmp; \
             touch /dev/shm/{shm} && echo shm; grep ' /mem ' /proc/mounts | cut -d' ' -f3; \
             hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo",
            m = missing_mount.display(),
            shm = shm_name,
        );
        let mut side = container("side", &["sh", "-c", &script]);
        side.mounts = vec![
            MountConfig { volume: "data".into(), mount_path: "/data".into(), ..Default::default() },
            MountConfig { volume: "mem".into(), mount_path: "/mem".into(), ..Default::default() },
            MountConfig { volume: "cfg".into(), mount_path: "/etc/cfg".into(), ..Default::default() },
            MountConfig { volume: "host".into(), mount_path: "/mnt/host".into(), read_only: true, ..Default::default() },
            MountConfig { volume: "data".into(), mount_path: missing_mount.clone(), sub_path: Some("sub".into()), ..Default::default() },
        ];
        let side = rt.start_container(sb_a, &side).await.expect("side");
        let exited = rt.wait_container(&side.id).await;
        let lines = log_texts(&rt.log_path(&side.id));
        assert_eq!(exited.exit_code, 0, "{lines:?}");
        let holder_cmd = format!("{} infinity ", rt.shared.holder_bin.display());
        let expected: Vec<String> = [
            "pod-a", "pod-a", "data-rw", "cfg-ro", "host-ro", "from-node", "missing-rw", "mine", "shm",
            "tmpfs", "pod-a", &holder_cmd,
        ]
        .iter()
        .map(|s| format!("stdout {s}"))
        .collect();
        assert_eq!(lines, expected);
        assert!(missing_mount.is_dir(), "mount point made on the node while the pod lives");
        assert!(!host_dir.path().join("new").exists());
        // The private /tmp did not touch the node's.
        assert!(!Path::new("/tmp/mine").exists());
        assert!(!Path::new("/dev/shm").join(&shm_name).exists(), "private /dev/shm");

        // Exec probes run in the container's namespaces.
        let runner = rt.exec_runner(&web_a.id);
        let argv: Vec<String> = ["sh", "-c", "hostname; cat /etc/hostname; ls /proc | grep -c '^[0-9]'"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let out = runner.run(&argv, Duration::from_secs(10)).await.expect("exec");
        let text = String::from_utf8_lossy(&out.output).into_owned();
        assert_eq!(out.status, probe::ExecStatus::Exited(0), "{text}");
        let mut it = text.lines();
        assert_eq!((it.next(), it.next()), (Some("pod-a"), Some("pod-a")));
        // holder, web, sh, ls, grep: the pod's PID namespace only.
        let n: usize = it.next().and_then(|s| s.parse().ok()).expect("count");
        assert!((3..=6).contains(&n), "{text}");

        // kubectl exec -t enters the container too.
        let argv: Vec<String> = ["sh", "-c", "tty; hostname"].iter().map(|s| s.to_string()).collect();
        let mut session = rt.exec(&web_a.id, &argv, true, true).await.expect("exec tty");
        let mut pty = session.stdout.take().expect("pty");
        assert_eq!(session.wait().await, 0);
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut pty, &mut out).await.expect("read");
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("/dev/pts/") && out.contains("pod-a"), "{out}");

        // Tear down: nothing of the pods is left.
        let holders: Vec<u32> = pods
            .iter()
            .filter_map(|(_, sb, _)| rt.shared.sandbox(&sb.id).and_then(|s| s.rec.holder).map(|h| h.pid))
            .collect();
        assert_eq!(holders.len(), 2);
        let ids: Vec<ContainerId> = pods.iter().map(|(_, _, w)| w.id.clone()).chain([side.id.clone()]).collect();
        for (_, sb, web) in &pods {
            rt.stop_container(&web.id, Duration::from_secs(5)).await.expect("stop web");
            rt.stop_sandbox(sb).await.expect("stop sandbox");
        }
        for id in &ids {
            assert_eq!(marker_pids(id), Vec::<i32>::new());
        }
        for pid in holders {
            assert!(!Path::new(&format!("/proc/{pid}")).exists(), "holder {pid} gone");
        }
        let l = links();
        assert!(!l.contains("pdk"), "{l}");
        let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
        assert!(!mounts.contains(&dir.path().display().to_string()), "{mounts}");
        assert!(!missing_mount.exists(), "created mount point removed");
        let held: Vec<_> = std::fs::read_dir(dir.path().join("ipam"))
            .expect("ipam")
            .flatten()
            .map(|e| e.file_name())
            .filter(|n| n != "last_reserved_ip")
            .collect();
        assert_eq!(held, Vec::<std::ffi::OsString>::new(), "pod IPs released");
        rt.shutdown(Duration::ZERO).await.expect("shutdown");
        assert!(!links().contains("paddock0"), "bridge removed at shutdown");
    });
    drop(ns);
}

#[test]
fn a_sandbox_whose_holder_died_is_not_ready_and_a_new_one_takes_its_place() {
    if !is_root() {
        panic!("isolated-mode tests need root");
    }
    let ns = TestNetns::new();
    ns.run(|| async {
        let dir = tempfile::tempdir().expect("tempdir");
        let _guard = RootGuard(dir.path().to_path_buf());
        let node = NodeNetwork::new(PodCidr::parse("10.244.0.0/24").expect("cidr"));
        let rt = ProcessRuntime::new(dir.path().to_path_buf(), node.clone()).expect("runtime");
        let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
        let c = rt
            .start_container(&sb, &container("c", &["sleep", "1000"]))
            .await
            .expect("start");
        assert!(rt.sandbox_ready(&sb).await);
        // The machine "reboots": the agent and the pod's holder die.
        drop(rt);
        let rec: SandboxRecord =
            state::read_one(&dir.path().join("sandboxes").join(format!("{}.json", sb.id)))
                .expect("sandbox record");
        let holder = rec.holder.expect("holder");
        kill(Pid::from_raw(holder.pid as i32), Signal::SIGKILL).expect("kill the holder");
        eventually("the holder is gone", || !holder.alive()).await;
        let rt2 = ProcessRuntime::new(dir.path().to_path_buf(), node).expect("runtime");
        let found = rt2.list().await.expect("list");
        assert_eq!(found.len(), 1);
        assert!(!found[0].alive);
        assert_eq!(found[0].attempt, 0);
        let old = found[0].sandbox.clone();
        assert!(!rt2.sandbox_ready(&old).await);
        // What the agent did before: every start fails.
        let err = rt2
            .start_container(&old, &container("d", &["true"]))
            .await
            .expect_err("a start in a sandbox that is gone");
        assert!(err.to_string().contains("pod namespaces are gone"), "{err}");
        // What the pod worker does now: the old one goes, with what is left of it.
        rt2.stop_sandbox(&old).await.expect("stop the old sandbox");
        assert_eq!(marker_pids(&c.id), Vec::<i32>::new());
        assert!(!dir.path().join("pods").join(&old.id).exists());
        let mut cfg = sandbox_cfg("p");
        cfg.attempt = 1;
        let new = rt2.run_sandbox(&cfg).await.expect("a new sandbox");
        assert_ne!(new.id, old.id);
        assert!(rt2.sandbox_ready(&new).await);
        let e = rt2
            .start_container(&new, &container("e", &["hostname"]))
            .await
            .expect("start in the new sandbox");
        assert_eq!(rt2.wait_container(&e.id).await.exit_code, 0);
        assert_eq!(
            log_texts(&rt2.log_path(&e.id)),
            vec!["stdout p".to_string()]
        );
        let listed = rt2.list().await.expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].attempt, 1);
        rt2.shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
        assert!(!links().contains("pdk"));
    });
    drop(ns);
}

#[test]
fn isolated_stop_kills_the_tree_and_a_new_runtime_adopts_the_sandbox() {
    if !is_root() {
        panic!("isolated-mode tests need root");
    }
    let ns = TestNetns::new();
    ns.run(|| async {
        let dir = tempfile::tempdir().expect("tempdir");
        let _guard = RootGuard(dir.path().to_path_buf());
        let node = NodeNetwork::new(PodCidr::parse("10.244.0.0/24").expect("cidr"));
        let rt = ProcessRuntime::new(dir.path().to_path_buf(), node.clone()).expect("runtime");
        let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
        let cfg = container(
            "c",
            &[
                "sh",
                "-c",
                "trap '' TERM; sleep 1000 & setsid sleep 1001 & echo ready; wait",
            ],
        );
        let started = rt.start_container(&sb, &cfg).await.expect("start");
        let log = rt.log_path(&started.id);
        eventually("the container says ready", || {
            log_texts(&log).iter().any(|l| l == "stdout ready")
        })
        .await;
        rt.stop_container(&started.id, Duration::from_millis(200))
            .await
            .expect("stop");
        assert_eq!(marker_pids(&started.id), Vec::<i32>::new());
        assert_eq!(rt.wait_container(&started.id).await.exit_code, 137);

        let other = rt
            .start_container(&sb, &container("d", &["sleep", "1000"]))
            .await
            .expect("start");
        // A new runtime on the same root (agent restart) finds the sandbox and the container.
        let rt2 = ProcessRuntime::new(dir.path().to_path_buf(), node).expect("runtime");
        let found = rt2.list().await.expect("list");
        assert_eq!(found.len(), 1);
        assert!(found[0].alive);
        assert_eq!(found[0].sandbox.pod_ip, sb.pod_ip);
        assert_eq!(found[0].containers.len(), 1);
        assert_eq!(found[0].containers[0].id, other.id);
        // The adopted sandbox takes new containers.
        let again = rt2
            .start_container(&found[0].sandbox, &container("e", &["hostname"]))
            .await
            .expect("start");
        assert_eq!(rt2.wait_container(&again.id).await.exit_code, 0);
        assert_eq!(
            log_texts(&rt2.log_path(&again.id)),
            vec!["stdout p".to_string()]
        );
        rt2.shutdown(Duration::from_secs(5))
            .await
            .expect("shutdown");
        assert_eq!(marker_pids(&other.id), Vec::<i32>::new());
        assert!(!links().contains("pdk"));
        drop(rt);
    });
    drop(ns);
}

/// `ip` in the current namespace; panics with its stderr when it fails.
fn ip_ok(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The links plugged into `bridge`, one `ip -o link` line each.
fn ports_of(bridge: &str) -> String {
    ip_out(&["-o", "link", "show", "master", bridge])
}

#[test]
fn a_deleted_bridge_is_recreated_with_the_running_pods_plugged_back_in() {
    if !is_root() {
        panic!("isolated-mode tests need root");
    }
    let ns = TestNetns::new();
    ns.run(|| async {
        let dir = tempfile::tempdir().expect("tempdir");
        let _guard = RootGuard(dir.path().to_path_buf());
        let rt = isolated_runtime(dir.path());
        let web = container(
            "web",
            &[
                "python3",
                "-m",
                "http.server",
                "8080",
                "--bind",
                "0.0.0.0",
                "--directory",
                "/etc",
            ],
        );
        let mut pods = Vec::new();
        for name in ["pod-a", "pod-b"] {
            let sb = rt.run_sandbox(&sandbox_cfg(name)).await.expect("sandbox");
            rt.start_container(&sb, &web).await.expect("web");
            assert_eq!(
                wait_get(sb.pod_ip, 8080, "/hostname").await,
                format!("{name}\n")
            );
            pods.push((name, sb));
        }
        let veths: Vec<String> = pods.iter().map(|(_, sb)| net::veth_name(&sb.id)).collect();
        let plugged = |veths: &[String]| {
            let ports = ports_of("paddock0");
            veths.iter().all(|v| ports.contains(&format!(": {v}@")))
        };

        // Someone deletes the bridge under the running pods: its ports stay, masterless.
        ip_ok(&["link", "del", "paddock0"]);
        eventually("the bridge back with both pods on it", || plugged(&veths)).await;
        for (name, sb) in &pods {
            assert_eq!(
                wait_get(sb.pod_ip, 8080, "/hostname").await,
                format!("{name}\n")
            );
        }
        // New pods start on the new bridge.
        let sb_c = rt
            .run_sandbox(&sandbox_cfg("pod-c"))
            .await
            .expect("sandbox");
        rt.start_container(&sb_c, &web).await.expect("web");
        assert_eq!(wait_get(sb_c.pod_ip, 8080, "/hostname").await, "pod-c\n");
        pods.push(("pod-c", sb_c));

        // Deleted while no agent ran: the next one plugs the pods back in when it lists them.
        drop(rt);
        tokio::time::sleep(BRIDGE_CHECK * 2).await;
        ip_ok(&["link", "del", "paddock0"]);
        let rt = isolated_runtime(dir.path());
        assert_eq!(rt.list().await.expect("list").len(), 3);
        let veths: Vec<String> = pods.iter().map(|(_, sb)| net::veth_name(&sb.id)).collect();
        assert!(plugged(&veths), "{}", ports_of("paddock0"));
        for (name, sb) in &pods {
            assert_eq!(
                wait_get(sb.pod_ip, 8080, "/hostname").await,
                format!("{name}\n")
            );
        }
        rt.shutdown(Duration::from_secs(5)).await.expect("shutdown");
        assert!(!links().contains("paddock0"), "nothing else on it: removed");
    });
    drop(ns);
}

#[test]
fn shutdown_keeps_a_bridge_that_other_links_are_plugged_into() {
    if !is_root() {
        panic!("isolated-mode tests need root");
    }
    let ns = TestNetns::new();
    ns.run(|| async {
        let dir = tempfile::tempdir().expect("tempdir");
        let _guard = RootGuard(dir.path().to_path_buf());
        let rt = isolated_runtime(dir.path());
        let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
        // Another node's (or anyone's) veth on the same bridge.
        ip_ok(&[
            "link", "add", "foreign0", "type", "veth", "peer", "name", "foreign1",
        ]);
        ip_ok(&["link", "set", "foreign0", "master", "paddock0"]);
        rt.shutdown(Duration::from_secs(5)).await.expect("shutdown");
        let ports = ports_of("paddock0");
        assert!(
            ports.contains(": foreign0@"),
            "bridge and foreign port kept: {ports}"
        );
        assert!(
            !ports.contains(&net::veth_name(&sb.id)),
            "own pod gone: {ports}"
        );
    });
    drop(ns);
}

#[test]
fn host_network_pods_share_the_node_network_but_keep_their_own_mounts_and_pids() {
    if !is_root() {
        panic!("isolated-mode tests need root");
    }
    let ns = TestNetns::new();
    ns.run(|| async {
        let dir = tempfile::tempdir().expect("tempdir");
        let _guard = RootGuard(dir.path().to_path_buf());
        let node = NodeNetwork::new(PodCidr::parse("10.244.0.0/24").expect("cidr"));
        let rt = ProcessRuntime::new(dir.path().to_path_buf(), node).expect("runtime");
        let mut cfg = sandbox_cfg("hostnet");
        cfg.host_network = true;
        let sb = rt.run_sandbox(&cfg).await.expect("sandbox");
        assert_eq!(
            sb.pod_ip,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            "pod IP = node IP"
        );
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let port_s = port.to_string();
        let mut web = container(
            "web",
            &[
                "python3",
                "-m",
                "http.server",
                &port_s,
                "--bind",
                "127.0.0.1",
                "--directory",
                "/etc",
            ],
        );
        web.ports = vec![PortConfig {
            container_port: port,
            protocol: "TCP".into(),
        }];
        let started = rt.start_container(&sb, &web).await.expect("web");
        let node_name = nix::unistd::gethostname()
            .expect("hostname")
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            wait_get(sb.pod_ip, port, "/hostname").await,
            format!("{node_name}\n")
        );
        // A second container on the same port is refused with a clear error, not a hang.
        let err = rt.start_container(&sb, &web).await.expect_err("clash");
        assert!(matches!(err, RuntimeError::PortInUse { .. }), "{err}");
        let out = rt
            .exec_runner(&started.id)
            .run(
                &[
                    "sh".to_string(),
                    "-c".to_string(),
                    "ls /proc | grep -c '^[0-9]'".to_string(),
                ],
                Duration::from_secs(10),
            )
            .await
            .expect("exec");
        let n: usize = String::from_utf8_lossy(&out.output)
            .trim()
            .parse()
            .expect("count");
        assert!(n <= 6, "own PID namespace: {n}");
        rt.shutdown(Duration::from_secs(5)).await.expect("shutdown");
        assert_eq!(marker_pids(&started.id), Vec::<i32>::new());
    });
    drop(ns);
}

#[tokio::test]
async fn a_second_runtime_stops_an_adopted_container_while_the_first_still_reaps_it() {
    // As in an agent restart inside one process (the first runtime's tasks live on).
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let first = host_runtime(dir.path());
    let sb = first.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
    let cfg = container("c", &["sh", "-c", "echo x; exec sleep 6172"]);
    let started = first.start_container(&sb, &cfg).await.expect("start");
    let second = host_runtime(dir.path());
    let found = second.list().await.expect("list");
    assert_eq!(found[0].containers.len(), 1);
    second
        .stop_container(&started.id, Duration::from_secs(2))
        .await
        .expect("stop");
    assert_eq!(marker_pids(&started.id), Vec::<i32>::new());
    second
        .stop_sandbox(&found[0].sandbox)
        .await
        .expect("stop sandbox");
    assert!(second.list().await.expect("list").is_empty());
    let exited = first.wait_container(&started.id).await;
    assert_eq!(exited.signal, Some(15));
}

/// `container(name, argv)` with a termination-message path and policy.
fn with_termination(
    mut c: ContainerConfig,
    path: &str,
    policy: crate::runtime::TerminationMessagePolicy,
) -> ContainerConfig {
    c.termination_message_path = Some(path.into());
    c.termination_message_policy = policy;
    c
}

#[test]
fn isolated_containers_report_their_own_termination_log_file() {
    use crate::runtime::TerminationMessagePolicy::{FallbackToLogsOnError, File};
    if !is_root() {
        panic!("isolated-mode tests need root");
    }
    assert!(
        !Path::new("/dev/termination-log").exists(),
        "the node has no /dev/termination-log to begin with"
    );
    let ns = TestNetns::new();
    ns.run(|| async {
        let dir = tempfile::tempdir().expect("tempdir");
        let _guard = RootGuard(dir.path().to_path_buf());
        let rt = isolated_runtime(dir.path());
        let mut cfg = sandbox_cfg("p");
        cfg.volumes = vec![VolumeConfig {
            name: "data".into(),
            source: VolumeSource::EmptyDir { memory: false },
        }];
        let sb = rt.run_sandbox(&cfg).await.expect("sandbox");
        let run = |c: ContainerConfig| {
            let rt = rt.clone();
            let sb = sb.clone();
            async move {
                let started = rt.start_container(&sb, &c).await.expect("start");
                let ex = rt.wait_container(&started.id).await;
                (ex, log_texts(&rt.log_path(&started.id)))
            }
        };
        // The default path, in a /dev of the container's own: written, read back, and a
        // minimal /dev (no node disks) with the usual devices.
        let (ex, log) = run(with_termination(
            container(
                "a",
                &["sh", "-c", "ls /dev | tr '\\n' ' '; echo; echo -n DONE > /dev/termination-log; echo -n x > /dev/null"],
            ),
            "/dev/termination-log",
            File,
        ))
        .await;
        assert_eq!((ex.exit_code, ex.message.as_deref()), (0, Some("DONE")), "{log:?}");
        let listing = log.first().cloned().unwrap_or_default();
        for want in ["null", "zero", "urandom", "tty", "pts", "shm", "fd", "termination-log"] {
            assert!(listing.split(' ').any(|n| n == want), "{want} in {listing}");
        }
        assert!(!listing.split(' ').any(|n| n == "vda" || n == "kvm"), "{listing}");
        // Another container of the pod gets a file of its own (empty), then fails with the
        // file message only, even with FallbackToLogsOnError.
        let (ex, log) = run(with_termination(
            container(
                "b",
                &["sh", "-c", "echo size=$(wc -c < /dev/termination-log); echo mine > /dev/termination-log; exit 3"],
            ),
            "/dev/termination-log",
            FallbackToLogsOnError,
        ))
        .await;
        assert_eq!(log, vec!["stdout size=0".to_string()]);
        assert_eq!((ex.exit_code, ex.message.as_deref()), (3, Some("mine\n")));
        // Nothing written and failed: the end of the log.
        let (ex, _) = run(with_termination(
            container("c", &["sh", "-c", "echo first; echo oops >&2; exit 1"]),
            "/dev/termination-log",
            FallbackToLogsOnError,
        ))
        .await;
        assert_eq!(ex.message.as_deref(), Some("first\noops\n"));
        // Nothing written and succeeded: no message.
        let (ex, _) = run(with_termination(
            container("d", &["sh", "-c", "echo fine"]),
            "/dev/termination-log",
            FallbackToLogsOnError,
        ))
        .await;
        assert_eq!((ex.exit_code, ex.message), (0, None));
        // A non-default path in the private /tmp, and one inside a volume (its parent made
        // there, not on the node).
        let (ex, _) = run(with_termination(
            container("e", &["sh", "-c", "echo -n tmp > /tmp/term/msg"]),
            "/tmp/term/msg",
            File,
        ))
        .await;
        assert_eq!(ex.message.as_deref(), Some("tmp"));
        let mut in_volume = with_termination(
            container("f", &["sh", "-c", "echo -n vol > /data/sub/msg"]),
            "/data/sub/msg",
            File,
        );
        in_volume.mounts = vec![MountConfig {
            volume: "data".into(),
            mount_path: "/data".into(),
            ..Default::default()
        }];
        let (ex, _) = run(in_volume).await;
        assert_eq!(ex.message.as_deref(), Some("vol"));
        assert!(!Path::new("/data/sub").exists(), "made in the volume, not on the node");
        // More than 4 KiB: the last 4 KiB.
        let (ex, _) = run(with_termination(
            container(
                "g",
                &["sh", "-c", "head -c 5000 /dev/zero | tr '\\0' a > /dev/termination-log; echo -n END >> /dev/termination-log"],
            ),
            "/dev/termination-log",
            File,
        ))
        .await;
        let msg = ex.message.unwrap_or_default();
        assert_eq!(msg.len(), 4096);
        assert!(msg.ends_with("aEND"));

        // A start that fails after the file was made removes it again.
        let mut bad = with_termination(container("h", &["true"]), "/dev/termination-log", File);
        bad.working_dir = Some("/tmp/no/such/dir".into());
        rt.start_container(&sb, &bad).await.expect_err("no working dir");

        // Each file is gone once read; nothing is left on the node or under the root.
        let term_dir = rt.shared.pod_dir(&sb.id).join("termination");
        let left: Vec<_> = std::fs::read_dir(&term_dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert_eq!(left, Vec::<PathBuf>::new());
        assert!(!Path::new("/dev/termination-log").exists());
        rt.stop_sandbox(&sb).await.expect("stop");
        assert!(!rt.shared.pod_dir(&sb.id).exists());
        rt.shutdown(Duration::ZERO).await.expect("shutdown");
    });
    drop(ns);
}

#[tokio::test]
async fn host_mode_has_no_termination_file_but_falls_back_to_logs() {
    use crate::runtime::TerminationMessagePolicy::{FallbackToLogsOnError, File};
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let rt = host_runtime(dir.path());
    let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
    let failing = |policy| {
        with_termination(
            container("c", &["sh", "-c", "echo bad; exit 2"]),
            "/dev/termination-log",
            policy,
        )
    };
    let started = rt
        .start_container(&sb, &failing(FallbackToLogsOnError))
        .await
        .expect("start");
    let ex = rt.wait_container(&started.id).await;
    assert_eq!((ex.exit_code, ex.message.as_deref()), (2, Some("bad\n")));
    let started = rt
        .start_container(&sb, &failing(File))
        .await
        .expect("start");
    assert_eq!(rt.wait_container(&started.id).await.message, None);
    assert!(!Path::new("/dev/termination-log").exists());
    rt.stop_sandbox(&sb).await.expect("stop");
}

#[test]
fn an_adopted_container_still_reports_its_termination_log() {
    if !is_root() {
        panic!("isolated-mode tests need root");
    }
    let ns = TestNetns::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let root = dir.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    // The first agent starts the container, then goes away with its tokio runtime (its exit
    // watcher with it), leaving the container running.
    let first_root = root.clone();
    ns.run(move || async move {
        let rt = isolated_runtime(&first_root);
        let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
        let c = with_termination(
            container(
                "c",
                &[
                    "sh",
                    "-c",
                    "echo -n adopted > /dev/termination-log; echo ready; exec sleep 1000",
                ],
            ),
            "/dev/termination-log",
            crate::runtime::TerminationMessagePolicy::File,
        );
        let started = rt.start_container(&sb, &c).await.expect("start");
        let log = rt.log_path(&started.id);
        eventually("the container wrote its message", || {
            log_texts(&log).iter().any(|l| l == "stdout ready")
        })
        .await;
        let _ = tx.send(started.id);
    });
    let id = rx.recv().expect("container id");
    ns.run(move || async move {
        let rt = isolated_runtime(&root);
        assert_eq!(rt.list().await.expect("list")[0].containers[0].id, id);
        rt.stop_container(&id, Duration::ZERO).await.expect("stop");
        let ex = rt.wait_container(&id).await;
        assert_eq!(
            (ex.reason.as_str(), ex.message.as_deref()),
            (
                "ContainerStatusUnknown",
                Some("The container's exit status was lost when the agent restarted: adopted")
            )
        );
        rt.shutdown(Duration::ZERO).await.expect("shutdown");
    });
    drop(ns);
}

#[test]
fn an_output_file_that_is_not_a_pipe_is_not_replayed_into_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("c.out");
    std::fs::write(&raw, b"old output\n").expect("raw");
    assert!(open_fifo_reader(&raw).is_err());
    let fifo = dir.path().join("c.err");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    assert!(open_fifo_reader(&fifo).is_ok());
}

#[test]
fn isolated_containers_get_the_open_file_limit_paddock_started_with() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if !is_root() {
        panic!("isolated-mode tests need root");
    }
    // As `paddock` does at start: this process raises its soft limit to the hard one.
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let hard = hard.max(4096);
    setrlimit(Resource::RLIMIT_NOFILE, 1000, hard).expect("setrlimit");
    let (old, new) = accept::raise_nofile_limit().expect("raise");
    assert_eq!((old, new), (1000, hard));
    let ns = TestNetns::new();
    ns.run(move || async move {
        let dir = tempfile::tempdir().expect("tempdir");
        let _guard = RootGuard(dir.path().to_path_buf());
        let rt = isolated_runtime(dir.path());
        let sb = rt.run_sandbox(&sandbox_cfg("p")).await.expect("sandbox");
        let c = container("c", &["sh", "-c", "ulimit -Sn; ulimit -Hn"]);
        let started = rt.start_container(&sb, &c).await.expect("start");
        assert_eq!(rt.wait_container(&started.id).await.exit_code, 0);
        let log = log_texts(&rt.log_path(&started.id));
        assert_eq!(log, ["stdout 1000".to_string(), format!("stdout {hard}")]);
        rt.stop_sandbox(&sb).await.expect("stop");
    });
}

/// During a shutdown the runtime says how many pods still have containers stopping: a pod
/// whose container ignores SIGTERM stays counted until the grace period ends, one that exits
/// at once is not; none once the shutdown is over.
#[tokio::test]
async fn shutdown_counts_the_pods_still_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _guard = RootGuard(dir.path().to_path_buf());
    let rt = host_runtime(dir.path());
    assert_eq!(rt.pods_stopping(), None, "not stopping yet");
    let quick = rt
        .run_sandbox(&sandbox_cfg("quick"))
        .await
        .expect("sandbox");
    rt.start_container(&quick, &container("c", &["sleep", "600"]))
        .await
        .expect("start");
    let slow = rt.run_sandbox(&sandbox_cfg("slow")).await.expect("sandbox");
    let started = rt
        .start_container(
            &slow,
            &container(
                "c",
                &[
                    "sh",
                    "-c",
                    "trap '' TERM; echo trapped; while :; do sleep 0.1; done",
                ],
            ),
        )
        .await
        .expect("start");
    // SIGTERM before the trap is set would end it at once.
    let log = rt.log_path(&started.id);
    eventually("the trap set", || {
        log_texts(&log).contains(&"stdout trapped".to_string())
    })
    .await;
    let stopping = {
        let rt = rt.clone();
        tokio::spawn(async move { rt.shutdown(Duration::from_secs(3)).await })
    };
    eventually("only the pod ignoring SIGTERM left", || {
        rt.pods_stopping() == Some(1)
    })
    .await;
    stopping.await.expect("join").expect("shutdown");
    assert_eq!(rt.pods_stopping(), Some(0));
}
