//! Real containers with real `runc` (Debian packages `runc` and `busybox-static`), as root: a
//! layer directory holding a static busybox is the image.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use oci::cgroups::{ContainerResources, Layout, PodResources, QosClass};
use oci::runc::{RunRequest, Runtime};
use oci::spec::{ContainerSpec, Namespaces, NsMode, Seccomp, Security, UserSpec};

const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "grep", "id", "touch", "mount", "echo", "tail", "sleep", "true", "readlink",
    "head", "cut", "kill", "unshare", "tty",
];

/// Fails (never skips) when what the tests need is missing.
fn require() -> Result<PathBuf> {
    ensure!(
        nix::unistd::geteuid().is_root(),
        "the oci container tests need root"
    );
    ensure!(
        Path::new("/usr/sbin/runc").exists() || Path::new("/usr/bin/runc").exists(),
        "runc is missing: install the Debian package runc"
    );
    let bb = PathBuf::from("/bin/busybox");
    ensure!(
        bb.exists(),
        "/bin/busybox is missing: install the Debian package busybox-static"
    );
    ensure!(
        !has_interpreter(&std::fs::read(&bb)?),
        "/bin/busybox is dynamically linked (Debian's busybox): install busybox-static, whose \
         binary runs in a root filesystem without a C library"
    );
    Ok(bb)
}

#[test]
fn dynamic_binaries_are_told_apart() -> Result<()> {
    // /bin/ls is dynamically linked on every Debian.
    assert!(has_interpreter(&std::fs::read("/bin/ls")?));
    assert!(has_interpreter(b"not an ELF file"));
    Ok(())
}

/// This process's children that are zombies.
fn zombie_children() -> Result<Vec<String>> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task")? {
        let children = std::fs::read_to_string(t?.path().join("children")).unwrap_or_default();
        for pid in children.split_whitespace() {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // The state follows the parenthesised command name.
            if stat
                .rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
            {
                out.push(stat);
            }
        }
    }
    Ok(out)
}

/// Whether an ELF64 binary names a program interpreter (is dynamically linked).
fn has_interpreter(elf: &[u8]) -> bool {
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(|b: [u8; 8]| u64::from_le_bytes(b) as usize)
    };
    let (Some(phoff), Some(size), Some(num)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return true;
    };
    (0..num).any(|i| {
        let o = phoff + i * size;
        elf.get(o..o + 4) == Some(&3u32.to_le_bytes()[..])
    })
}

struct Env {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    layer: PathBuf,
    rt: Runtime,
    layout: Layout,
    base: String,
}

impl Drop for Env {
    fn drop(&mut self) {
        // The test's own kubepods copy; containers are removed by the tests themselves.
        let _ = self.layout.remove(&format!("/{}", self.base));
    }
}

fn env(name: &str) -> Result<Env> {
    let bb = require()?;
    let tmp = tempfile::Builder::new()
        .prefix("oci-test")
        .tempdir_in("/var/tmp")?;
    let dir = tmp.path().to_path_buf();
    let layer = dir.join("layers/busybox");
    for d in ["bin", "proc", "dev", "sys", "etc", "tmp", "mnt"] {
        std::fs::create_dir_all(layer.join(d))?;
    }
    std::fs::copy(&bb, layer.join("bin/busybox")).context("copy busybox")?;
    for a in APPLETS {
        std::os::unix::fs::symlink("busybox", layer.join("bin").join(a))?;
    }
    std::fs::write(layer.join("etc/layer-marker"), "from the image\n")?;
    let base = format!("oci-test-{name}-{}", std::process::id());
    let layout = Layout::detect("/sys/fs/cgroup", &base)?;
    let rt = Runtime::new(&dir.join("rt"), Path::new("runc"), Some(layout.clone()))?;
    Ok(Env {
        _tmp: tmp,
        dir,
        layer,
        rt,
        layout,
        base,
    })
}

fn spec(e: &Env, id: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        args: vec!["/bin/sh".into(), "-c".into(), script.into()],
        hostname: "pod-0".into(),
        security: Security::kubelet_default(),
        namespaces: Namespaces {
            network: NsMode::Container,
            ipc: NsMode::Container,
            uts: NsMode::Container,
            pid: NsMode::Container,
        },
        cgroups_path: e
            .layout
            .container_path(QosClass::BestEffort, "u1", id)
            .expect("path"),
        resources: ContainerResources::from_kubernetes(None, None, None),
        ..ContainerSpec::default()
    }
}

/// An output file opened for appending, so stdout and stderr can share it.
fn file_fd(path: &Path) -> Result<OwnedFd> {
    Ok(std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .into())
}

struct Ran {
    exit: oci::runc::Exit,
    out: String,
}

/// Runs a container to its end and removes it, checking nothing is left.
/// A run of `spec` as container `id` on the test image's layer, stdout and stderr to `out`.
fn request(e: &Env, id: &str, spec: ContainerSpec, out: &Path) -> Result<RunRequest> {
    Ok(RunRequest {
        id: id.into(),
        layers: vec![e.layer.clone()],
        spec,
        stdin: None,
        stdout: file_fd(out)?,
        stderr: file_fd(out)?,
    })
}

async fn run_to_end(e: &Env, id: &str, s: ContainerSpec) -> Result<Ran> {
    let out = e.dir.join(format!("{id}.out"));
    let c = e.rt.run(request(e, id, s, &out)?).await?;
    let exit = e.rt.wait(&c).await;
    e.rt.remove(id).await?;
    let bundle = e.rt.bundle(id);
    ensure!(!bundle.exists(), "bundle {} left behind", bundle.display());
    ensure!(
        !oci::rootfs::is_mounted(&oci::rootfs::rootfs(&bundle)),
        "overlay left mounted"
    );
    ensure!(
        !e.layout.exists(&c.cgroups_path),
        "cgroup {} left behind",
        c.cgroups_path
    );
    Ok(Ran {
        exit,
        out: std::fs::read_to_string(&out)?,
    })
}

fn line<'a>(out: &'a str, key: &str) -> Result<&'a str> {
    out.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(str::trim)
        .with_context(|| format!("no {key:?} in output:\n{out}"))
}

#[tokio::test]
async fn default_container_is_confined() -> Result<()> {
    let e = env("confined")?;
    // A pod namespace holder, as the agent makes one: the container joins its network, IPC
    // and UTS namespaces by path.
    let mut holder = tokio::process::Command::new("unshare")
        .args(["--net", "--ipc", "--uts", "/bin/busybox", "sleep", "600"])
        .kill_on_drop(true)
        .spawn()
        .context("unshare (util-linux)")?;
    let hpid = holder.id().context("holder pid")?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let holder_net = std::fs::read_link(format!("/proc/{hpid}/ns/net"))?;
    let mut s = spec(
        &e,
        "confined",
        "echo ROOT: $(ls /); grep -E '^(CapEff|Seccomp|NoNewPrivs):' /proc/self/status; \
         echo NET: $(readlink /proc/self/ns/net); cat /etc/layer-marker; \
         echo x > /proc/sys/kernel/hostname && echo PROCSYS: writable || echo PROCSYS: denied; \
         mount -t tmpfs t /mnt && echo MOUNT: mounted || echo MOUNT: denied; \
         cat /proc/kcore > /dev/null 2>&1 && echo KCORE: readable || echo KCORE: masked; \
         echo ENV: $HOSTNAME $PATH; \
         unshare -U true 2>/dev/null && echo USERNS: created || echo USERNS: denied",
    );
    s.namespaces = Namespaces::pod(hpid);
    s.security.seccomp = Seccomp::RuntimeDefault;
    s.security.no_new_privs = true;
    let r = run_to_end(&e, "confined", s).await?;
    holder.kill().await?;
    let out = &r.out;
    ensure!(r.exit.code == 0 && r.exit.known, "{:?}\n{out}", r.exit);
    let root = line(out, "ROOT:")?;
    let mut entries: Vec<&str> = root.split_whitespace().collect();
    entries.sort();
    // The image's directories only (no /usr, /var, /work of the node).
    assert_eq!(
        entries,
        ["bin", "dev", "etc", "mnt", "proc", "sys", "tmp"],
        "{out}"
    );
    assert!(out.contains("from the image"), "{out}");
    // containerd's default capability set, exactly.
    assert_eq!(line(out, "CapEff:")?, "00000000a80425fb", "{out}");
    assert_eq!(line(out, "Seccomp:")?, "2", "{out}");
    assert_eq!(line(out, "NoNewPrivs:")?, "1", "{out}");
    assert_eq!(
        line(out, "NET:")?,
        holder_net.to_string_lossy(),
        "joined the pod's network namespace"
    );
    assert_eq!(line(out, "PROCSYS:")?, "denied", "{out}");
    assert_eq!(line(out, "MOUNT:")?, "denied", "{out}");
    assert_eq!(line(out, "KCORE:")?, "masked", "{out}");
    assert_eq!(
        line(out, "ENV:")?,
        "pod-0 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    // The profile, not only the mode: `unshare` needs CAP_SYS_ADMIN under RuntimeDefault ...
    assert_eq!(line(out, "USERNS:")?, "denied", "{out}");
    // ... while the same container unconfined may create a user namespace.
    let mut s = spec(
        &e,
        "unconfined",
        "unshare -U true 2>/dev/null && echo USERNS: created || echo USERNS: denied",
    );
    s.security.seccomp = Seccomp::Unconfined;
    let r = run_to_end(&e, "unconfined", s).await?;
    assert_eq!(line(&r.out, "USERNS:")?, "created", "{}", r.out);
    Ok(())
}

#[tokio::test]
async fn user_groups_and_read_only_root() -> Result<()> {
    let e = env("user")?;
    let mut s = spec(
        &e,
        "user",
        "echo UID: $(id -u); echo GID: $(id -g); echo GROUPS: $(id -G); \
         grep '^CapEff:' /proc/self/status; \
         touch /etc/new 2>/dev/null && echo ROOTFS: writable || echo ROOTFS: readonly; exit 3",
    );
    s.user = UserSpec {
        uid: 1000,
        gid: 3000,
        additional_gids: vec![3000],
    };
    s.supplemental_groups = vec![4000];
    s.security.read_only_rootfs = true;
    let r = run_to_end(&e, "user", s).await?;
    let out = &r.out;
    assert_eq!(r.exit.code, 3, "{out}");
    assert_eq!(r.exit.signal, None);
    assert!(!r.exit.oom_killed);
    assert_eq!(line(out, "UID:")?, "1000");
    assert_eq!(line(out, "GID:")?, "3000");
    assert_eq!(line(out, "GROUPS:")?, "3000 4000");
    assert_eq!(line(out, "CapEff:")?, "0000000000000000");
    assert_eq!(line(out, "ROOTFS:")?, "readonly", "{out}");
    Ok(())
}

#[tokio::test]
async fn memory_limit_oom_kill_is_reported() -> Result<()> {
    let e = env("oom")?;
    // `tail` of an endless line keeps all of it in memory.
    let mut s = spec(&e, "oom", "tail /dev/zero");
    s.resources = ContainerResources::from_kubernetes(None, None, Some(32 << 20));
    let r = run_to_end(&e, "oom", s).await?;
    assert_eq!(r.exit.code, 137, "{:?} {}", r.exit, r.out);
    assert_eq!(r.exit.signal, Some(9));
    assert!(r.exit.oom_killed, "OOM kill not seen: {:?}", r.exit);
    // A container that exits by itself under the same limit is not OOMKilled.
    let mut s = spec(&e, "fits", "head -c 1000000 /dev/zero > /dev/null");
    s.resources = ContainerResources::from_kubernetes(None, None, Some(32 << 20));
    let r = run_to_end(&e, "fits", s).await?;
    assert_eq!((r.exit.code, r.exit.oom_killed), (0, false), "{}", r.out);
    Ok(())
}

#[tokio::test]
async fn cpu_limit_writes_the_quota_and_pod_cgroup() -> Result<()> {
    let e = env("cpu")?;
    let pod = e.layout.ensure_pod(
        QosClass::Burstable,
        "u2",
        &PodResources {
            cpu_shares: 256,
            cpu_quota: Some(50_000),
            memory_limit: Some(64 << 20),
            pids_limit: Some(100),
        },
    )?;
    assert_eq!(e.layout.cpu_quota(&pod), Some(50_000));
    assert_eq!(
        e.layout.pods(),
        vec![(QosClass::Burstable, "u2".to_string())]
    );
    // A shell as PID 1 has no default SIGTERM action: it traps it.
    let mut s = spec(
        &e,
        "cpu",
        "trap 'exit 42' TERM; echo ready; while true; do sleep 1; done",
    );
    s.cgroups_path = e.layout.container_path(QosClass::Burstable, "u2", "cpu")?;
    s.resources = ContainerResources::from_kubernetes(Some(250), Some(500), None);
    let out = e.dir.join("cpu.out");
    let c = e.rt.run(request(&e, "cpu", s, &out)?).await?;
    // The trap is set once the shell says so.
    for _ in 0..500 {
        if std::fs::read_to_string(&out)?.contains("ready") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let quota = e.layout.cpu_quota(&c.cgroups_path);
    let in_pod = e
        .layout
        .memory_dir(&c.cgroups_path)
        .starts_with(e.layout.memory_dir(&pod));
    e.rt.stop(&c, Duration::from_secs(5)).await?;
    let exit = e.rt.wait(&c).await;
    e.rt.remove("cpu").await?;
    assert_eq!(quota, Some(50_000));
    assert!(in_pod);
    assert_eq!(exit.code, 42, "SIGTERM was trapped: {exit:?}");
    e.layout.remove_pod(QosClass::Burstable, "u2")?;
    ensure!(!e.layout.exists(&pod), "pod cgroup left behind");
    assert!(e.layout.pods().is_empty());
    Ok(())
}

#[tokio::test]
async fn exec_runs_in_the_container() -> Result<()> {
    let e = env("exec")?;
    let mut s = spec(&e, "exec", "sleep 600");
    s.env = vec!["GREETING=hello".into()];
    s.user = UserSpec {
        uid: 1234,
        gid: 1234,
        additional_gids: vec![],
    };
    let out = e.dir.join("exec.out");
    let running = e.rt.run(request(&e, "exec", s, &out)?).await?;
    let (code, stdout, _) =
        e.rt.exec_sync(
            "exec",
            &[
                "/bin/sh".into(),
                "-c".into(),
                "echo $GREETING $(id -u); ls /; exit 4".into(),
            ],
            Duration::from_secs(30),
        )
        .await?;
    let timed_out =
        e.rt.exec_sync(
            "exec",
            &[
                "/bin/sh".into(),
                "-c".into(),
                "echo $$ > /tmp/pid; exec sleep 30".into(),
            ],
            Duration::from_millis(500),
        )
        .await;
    // Nothing of it was left to this process (the subreaper) as a zombie, which would keep
    // the container's cgroup busy.
    let zombies = zombie_children()?;
    // The timed-out command was killed, not left running in the container.
    let (_, ps, _) =
        e.rt.exec_sync(
            "exec",
            &[
                "/bin/sh".into(),
                "-c".into(),
                "kill -0 $(cat /tmp/pid) && echo alive || echo gone".into(),
            ],
            Duration::from_secs(30),
        )
        .await?;
    e.rt.remove("exec").await?;
    let exit = tokio::time::timeout(Duration::from_secs(60), e.rt.wait(&running))
        .await
        .context("the removed container never ended")?;
    let text = String::from_utf8_lossy(&stdout);
    assert_eq!(zombies, Vec::<String>::new());
    assert_eq!((exit.code, exit.known), (137, true), "removed: SIGKILL");
    assert_eq!(code, 4, "{text}");
    assert!(text.starts_with("hello 1234\n"), "{text}");
    assert!(text.contains("etc") && !text.contains("usr"), "{text}");
    let err = timed_out.expect_err("a 30 s command in 500 ms");
    assert_eq!(String::from_utf8_lossy(&ps).trim(), "gone");
    assert!(err.to_string().contains("timed out"), "{err}");
    Ok(())
}

#[tokio::test]
async fn bad_input_is_named() -> Result<()> {
    let e = env("bad")?;
    let s = spec(&e, "bad", "true");
    let missing = e.dir.join("no-such-layer");
    let err =
        e.rt.run(RunRequest {
            id: "bad".into(),
            layers: vec![missing],
            spec: s.clone(),
            stdin: None,
            stdout: file_fd(&e.dir.join("b.out"))?,
            stderr: file_fd(&e.dir.join("b.out"))?,
        })
        .await
        .expect_err("missing layer");
    assert!(err.to_string().contains("no-such-layer"), "{err}");
    ensure!(!e.rt.bundle("bad").exists(), "half-made bundle left");
    let mut s2 = s.clone();
    s2.args = vec!["/bin/nonexistent".into()];
    let err =
        e.rt.run(request(&e, "bad2", s2, &e.dir.join("b.out"))?)
            .await
            .expect_err("missing executable");
    assert!(err.to_string().contains("nonexistent"), "{err}");
    ensure!(
        !e.rt.bundle("bad2").exists(),
        "failed container left its bundle"
    );
    let err =
        e.rt.run(request(&e, "../x", s, &e.dir.join("b.out"))?)
            .await
            .expect_err("bad id");
    assert!(err.to_string().contains("invalid container id"), "{err}");
    Ok(())
}

/// Not a test on its own: the driver that `driver_killed_container_survives` SIGKILLs.
#[tokio::test]
#[ignore = "run by driver_killed_container_survives"]
async fn driver_helper() -> Result<()> {
    let Some(dir) = std::env::var_os("OCI_TEST_HELPER_DIR") else {
        bail!("only run by driver_killed_container_survives");
    };
    let dir = PathBuf::from(dir);
    let base = std::env::var("OCI_TEST_HELPER_BASE")?;
    let layout = Layout::detect("/sys/fs/cgroup", &base)?;
    let rt = Runtime::new(&dir.join("rt"), Path::new("runc"), Some(layout.clone()))?;
    let mut s = ContainerSpec {
        args: vec!["/bin/sleep".into(), "600".into()],
        security: Security::kubelet_default(),
        namespaces: Namespaces {
            network: NsMode::Container,
            ipc: NsMode::Container,
            uts: NsMode::Container,
            pid: NsMode::Container,
        },
        cgroups_path: layout.container_path(QosClass::BestEffort, "u3", "survivor")?,
        ..ContainerSpec::default()
    };
    s.resources = ContainerResources::from_kubernetes(None, None, None);
    let c = rt
        .run(RunRequest {
            id: "survivor".into(),
            layers: vec![dir.join("layers/busybox")],
            spec: s,
            stdin: None,
            stdout: file_fd(&dir.join("survivor.out"))?,
            stderr: file_fd(&dir.join("survivor.out"))?,
        })
        .await?;
    // And one left half-made: its overlay mounted, runc never told.
    oci::rootfs::mount(&rt.bundle("halfmade"), &[dir.join("layers/busybox")])?;
    println!("READY {}", c.pid);
    tokio::time::sleep(Duration::from_secs(600)).await;
    Ok(())
}

#[tokio::test]
async fn driver_killed_container_survives() -> Result<()> {
    use tokio::io::AsyncBufReadExt;
    let e = env("survive")?;
    let mut helper = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--exact", "driver_helper", "--ignored", "--nocapture"])
        .env("OCI_TEST_HELPER_DIR", &e.dir)
        .env("OCI_TEST_HELPER_BASE", &e.base)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = helper.stdout.take().context("helper stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut pid = None;
    while let Some(l) = lines.next_line().await? {
        if let Some(p) = l.strip_prefix("READY ") {
            pid = Some(p.trim().parse::<u32>()?);
            break;
        }
    }
    let pid = pid.context("the helper never got its container running")?;
    // SIGKILL the driver.
    helper.kill().await?;
    helper.wait().await?;
    let state = e.rt.state("survivor").await?;
    assert_eq!(state.status, "running");
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "container died with its driver"
    );
    assert!(oci::rootfs::is_mounted(&oci::rootfs::rootfs(
        &e.rt.bundle("halfmade")
    )));
    // A new driver adopts the survivor and cleans the half-made one.
    let adopted = e.rt.recover().await?;
    assert_eq!(adopted.len(), 1);
    assert_eq!((adopted[0].id.as_str(), adopted[0].pid), ("survivor", pid));
    assert!(!adopted[0].child);
    assert!(
        !e.rt.bundle("halfmade").exists(),
        "half-made bundle not removed"
    );
    assert!(!oci::rootfs::is_mounted(&oci::rootfs::rootfs(
        &e.rt.bundle("halfmade")
    )));
    // Its end is seen (status unknown: not our child).
    e.rt.kill("survivor", nix::sys::signal::Signal::SIGKILL, true)
        .await?;
    let exit = e.rt.wait(&adopted[0]).await;
    assert!(!exit.known);
    e.rt.remove("survivor").await?;
    assert!(!e.layout.exists(&adopted[0].cgroups_path));
    Ok(())
}

#[tokio::test]
async fn privileged_host_network_and_shared_pid() -> Result<()> {
    let e = env("priv")?;
    // A pod PID namespace to share (shareProcessNamespace), with a process in it.
    let mut holder = tokio::process::Command::new("unshare")
        .args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "/bin/busybox",
            "sleep",
            "600",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("unshare (util-linux)")?;
    let upid = holder.id().context("holder pid")?;
    // The PID namespace's init is unshare's child.
    let mut ns_init = None;
    for _ in 0..100 {
        ns_init = std::fs::read_to_string(format!("/proc/{upid}/task/{upid}/children"))
            .ok()
            .and_then(|s| s.split_whitespace().next().map(str::to_string));
        if ns_init.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ns_init = ns_init.context("no process in the pod PID namespace")?;
    let host_net = std::fs::read_link("/proc/self/ns/net")?;
    let mut s = spec(
        &e,
        "priv",
        "grep '^CapEff:' /proc/self/status; grep '^Seccomp:' /proc/self/status; \
         echo NET: $(readlink /proc/self/ns/net); echo PS: $(ls /proc | grep -c '^[0-9]'); \
         cat /proc/1/cmdline | tr '\\0' ' ' | sed 's/^/INIT: /'; echo; \
         ls /dev/kmsg >/dev/null 2>&1 && echo KMSG: present || echo KMSG: absent; \
         mount -t tmpfs t /mnt && echo MOUNT: mounted || echo MOUNT: denied",
    );
    s.security.privileged = true;
    s.security.seccomp = Seccomp::RuntimeDefault;
    s.namespaces.network = NsMode::Node;
    s.namespaces.uts = NsMode::Node;
    s.namespaces.pid = NsMode::Pod(format!("/proc/{ns_init}/ns/pid").into());
    let r = run_to_end(&e, "priv", s).await?;
    // With --kill-child the namespace's init dies with unshare.
    holder.kill().await?;
    let out = &r.out;
    assert_eq!(r.exit.code, 0, "{out}");
    // All the capabilities the driver has (containerd's `cap.Current`).
    let ours = std::fs::read_to_string("/proc/self/status")?
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:").map(|v| v.trim().to_string()))
        .context("CapEff")?;
    assert_eq!(line(out, "CapEff:")?, ours, "all capabilities: {out}");
    assert_eq!(line(out, "Seccomp:")?, "0", "privileged: no seccomp");
    assert_eq!(
        line(out, "NET:")?,
        host_net.to_string_lossy(),
        "hostNetwork"
    );
    assert_eq!(line(out, "KMSG:")?, "present", "host devices: {out}");
    assert_eq!(line(out, "MOUNT:")?, "mounted", "{out}");
    // In the pod's PID namespace: its init (sleep) is PID 1 there.
    assert!(line(out, "INIT:")?.contains("sleep"), "{out}");
    Ok(())
}

#[tokio::test]
async fn many_layers_use_relative_lowerdirs() -> Result<()> {
    let e = env("layers")?;
    // 60 layers under one long common parent: the absolute lowerdir list is over a page, the
    // list relative to that parent is not.
    let dir = e.dir.join("store").join("x".repeat(200));
    let mut layers = Vec::new();
    for i in 0..60 {
        let l = dir.join(format!("{i:03}")).join("fs");
        std::fs::create_dir_all(l.join("etc"))?;
        std::fs::write(l.join("etc").join("layer"), format!("{i}\n"))?;
        layers.push(l);
    }
    // The busybox image is the base layer.
    let status = std::process::Command::new("cp")
        .args(["-a", "--"])
        .arg(e.layer.join("."))
        .arg(&layers[0])
        .status()?;
    ensure!(status.success(), "cp of the base layer");
    let joined: usize = layers.iter().map(|l| l.as_os_str().len() + 1).sum();
    ensure!(joined > 4096, "the test needs a lowerdir list over a page");
    let out = e.dir.join("layers.out");
    let c =
        e.rt.run(RunRequest {
            id: "layers".into(),
            layers: layers.clone(),
            spec: spec(&e, "layers", "cat /etc/layer"),
            stdin: None,
            stdout: file_fd(&out)?,
            stderr: file_fd(&out)?,
        })
        .await?;
    let exit = e.rt.wait(&c).await;
    e.rt.remove("layers").await?;
    // The top-most (last) layer wins.
    assert_eq!(std::fs::read_to_string(&out)?, "59\n");
    assert_eq!(exit.code, 0);
    // Too many even when relative: a clear error, nothing left.
    let mut too_many = Vec::new();
    for i in 0..600 {
        let l = e
            .dir
            .join("scattered")
            .join(format!("{i:04}-{}", "y".repeat(20)));
        std::fs::create_dir_all(&l)?;
        too_many.push(l);
    }
    let err =
        e.rt.run(RunRequest {
            id: "toomany".into(),
            layers: too_many,
            spec: spec(&e, "toomany", "true"),
            stdin: None,
            stdout: file_fd(&out)?,
            stderr: file_fd(&out)?,
        })
        .await
        .expect_err("600 layers");
    assert!(err.to_string().contains("600 layers"), "{err}");
    ensure!(!e.rt.bundle("toomany").exists());
    Ok(())
}

#[tokio::test]
async fn stdin_reaches_the_container_and_exec() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let e = env("stdin")?;
    let (r, w) = nix::unistd::pipe()?;
    let out = e.dir.join("stdin.out");
    let c =
        e.rt.run(RunRequest {
            id: "stdin".into(),
            layers: vec![e.layer.clone()],
            spec: spec(&e, "stdin", "read line; echo got: $line; sleep 600"),
            stdin: Some(r),
            stdout: file_fd(&out)?,
            stderr: file_fd(&out)?,
        })
        .await?;
    let mut w = std::fs::File::from(w);
    std::io::Write::write_all(&mut w, b"hello container\n")?;
    drop(w);
    for _ in 0..500 {
        if std::fs::read_to_string(&out)?.contains("got:") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // kubectl exec -i: stdin piped to a command in the container.
    let mut child = e.rt.exec("stdin", &["/bin/cat".into()])?;
    let mut stdin = child.stdin.take().context("exec stdin")?;
    stdin.write_all(b"through exec\n").await?;
    drop(stdin);
    let mut echoed = String::new();
    child
        .stdout
        .take()
        .context("exec stdout")?
        .read_to_string(&mut echoed)
        .await?;
    let st = child.wait().await?;
    e.rt.stop(&c, Duration::from_secs(1)).await?;
    let exit = e.rt.wait(&c).await;
    e.rt.remove("stdin").await?;
    assert_eq!(std::fs::read_to_string(&out)?, "got: hello container\n");
    assert_eq!(echoed, "through exec\n");
    assert!(st.success());
    // A shell as PID 1 ignores SIGTERM: the grace period ends in SIGKILL.
    assert_eq!((exit.code, exit.signal), (137, Some(9)));
    Ok(())
}

#[tokio::test]
async fn tty_container_gets_a_terminal() -> Result<()> {
    let e = env("tty")?;
    let mut s = spec(&e, "tty", "tty; echo on-the-terminal");
    s.tty = true;
    let out = e.dir.join("tty.out");
    let mut c = e.rt.run(request(&e, "tty", s, &out)?).await?;
    let console = c.console.take().context("no terminal handed over")?;
    let exit = e.rt.wait(&c).await;
    // The master end reads until the terminal is gone (EIO).
    let text = tokio::task::spawn_blocking(move || {
        let mut f = std::fs::File::from(console);
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut f, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
    .await?;
    e.rt.remove("tty").await?;
    assert_eq!(exit.code, 0, "{text}");
    assert!(text.contains("/dev/pts/0"), "{text:?}");
    assert!(text.contains("on-the-terminal"), "{text:?}");
    assert_eq!(std::fs::read_to_string(&out)?, "", "nothing on the pipes");
    Ok(())
}
