//! Containers run from their image (runtime handler `runc`) in a sandbox of this runtime: the
//! pod's namespaces (network, IPC and UTS joined by path from the namespace holder; the
//! container's own PID namespace unless `shareProcessNamespace`; the node's for `hostPID` /
//! `hostIPC`), its volumes, `/etc/hosts`, `/etc/hostname`, `/etc/resolv.conf` and the
//! termination-log file as bind mounts, its cgroup under the kubelet's `kubepods` layout, its
//! stdout/stderr through the same FIFOs and log copier as a host container — and the process
//! started by the `oci` crate's runc driver in an overlay of the image's layers.
//!
//! The rest of the runtime treats such a container as any other: its processes carry the
//! container's marker variable (so stop — SIGTERM, grace, SIGKILL — and the tree walk find
//! them), its record is on disk (so a restarted agent adopts it; `runc` keeps its state in
//! `<dir>/state` meanwhile). What differs: its exit comes from the driver (with `OOMKilled`
//! read from its cgroup), `kubectl exec` and exec probes go through `runc exec` (the
//! container's user, capabilities, seccomp and cgroup), and when it ends `runc delete`
//! removes it — the overlay unmounted, its cgroup and bundle removed.
//!
//! A memory-medium emptyDir is a tmpfs mounted on the node at the volume's directory (the
//! host runtime's lives in the namespace holder's mount namespace, which a bind mount cannot
//! take from). `stdin` is a pipe (or the terminal's input) kept for attach; a `tty` container's terminal output is logged as
//! stdout (as the host runtime logs it) and is lost for an adopted one.

use std::os::fd::OwnedFd;

use oci::cgroups::{Layout, QosClass};
use oci::spec::{BindMount, NsMode};

use super::super::state::{Launch, RuncRef};
use super::super::{ImageRun, MountConfig};
use super::*;

/// The image runtime of a [`ProcessRuntime`] (see [`ProcessRuntime::enable_images`]).
#[derive(Debug)]
pub(crate) struct Images {
    pub(crate) runc: oci::runc::Runtime,
    pub(crate) runc_ref: RuncRef,
    /// `false` on a node with cgroup v1 (or the hybrid layout).
    pub(crate) cgroup_v2: bool,
}

impl ProcessRuntime {
    /// Runs containers of `ImageRun` configs with `runc` (a path, or a name looked up in
    /// `PATH`), its state and bundles under `dir`, cgroups laid out by `cgroups` (`None`: one
    /// flat `/paddock/<id>` cgroup each, no `OOMKilled`). Removes what a killed agent left
    /// half-made; containers still running are adopted by [`Runtime::list`]. Needs pod
    /// namespaces (root).
    pub async fn enable_images(
        &self,
        dir: &Path,
        runc: &Path,
        cgroups: Option<Layout>,
    ) -> Result<(), RuntimeError> {
        if !self.shared.isolated {
            return Err(RuntimeError::Oci(
                "running images needs pod namespaces: start the node as root without --host-network-only"
                    .into(),
            ));
        }
        let cgroup_v2 = cgroups
            .as_ref()
            .is_some_and(|l| l.version == oci::cgroups::Version::V2);
        let rt = oci::runc::Runtime::new(dir, runc, cgroups)
            .map_err(|e| RuntimeError::Oci(e.to_string()))?;
        // The binary as the driver found it (a name is looked up as it does) and its `--root`
        // (documented as `<dir>/state` by the driver), for `runc exec` and `runc delete`.
        let bin = if runc.components().count() > 1 {
            runc.to_path_buf()
        } else {
            find_in_path(
                &runc.to_string_lossy(),
                &format!("{DEFAULT_PATH}:/usr/sbin:/sbin"),
            )
            .unwrap_or_else(|| runc.to_path_buf())
        };
        rt.recover()
            .await
            .map_err(|e| RuntimeError::Oci(format!("recovering runc containers: {e}")))?;
        let images = Images {
            runc: rt,
            runc_ref: RuncRef {
                bin,
                root: dir.join("state"),
            },
            cgroup_v2,
        };
        self.shared
            .images
            .set(images)
            .map_err(|_| RuntimeError::Oci("images are enabled already".into()))
    }

    /// Whether containers can run from images here.
    pub fn runs_images(&self) -> bool {
        self.shared.images.get().is_some()
    }
}

/// A volume mount's node path: the volume's directory, or the `subPath` inside it (created if
/// missing, as the kubelet does), which must not lead out of the volume through a symlink.
fn volume_source(srec: &SandboxRecord, m: &MountConfig) -> Result<(PathBuf, bool), RuntimeError> {
    let v = srec
        .volumes
        .iter()
        .find(|v| v.name == m.volume)
        .ok_or_else(|| RuntimeError::UnknownVolume(m.volume.clone()))?;
    let read_only = m.read_only || v.force_read_only;
    if v.memory {
        memory_volume(&v.path)?;
    }
    let Some(sub) = m.sub_path.as_deref().filter(|s| !s.is_empty()) else {
        return Ok((v.path.clone(), read_only));
    };
    let rel = Path::new(sub);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(RuntimeError::Volume(format!(
            "invalid subPath {sub:?} of volume {:?}",
            m.volume
        )));
    }
    let path = v.path.join(rel);
    if std::fs::symlink_metadata(&path).is_err() {
        std::fs::create_dir_all(&path).map_err(io(format!("create subPath {}", path.display())))?;
    }
    let (base, real) = (
        std::fs::canonicalize(&v.path).map_err(io(format!("resolve {}", v.path.display())))?,
        std::fs::canonicalize(&path).map_err(io(format!("resolve {}", path.display())))?,
    );
    if !real.starts_with(&base) {
        return Err(RuntimeError::Volume(format!(
            "subPath {sub:?} of volume {:?} leads out of the volume",
            m.volume
        )));
    }
    Ok((real, read_only))
}

/// A memory-medium emptyDir of an image pod: a tmpfs on the node at the volume's directory
/// (mounted once, at its first use; the sandbox's teardown unmounts every volume), so the pod's
/// containers share it. The host runtime's tmpfs lives in the namespace holder's mount
/// namespace instead, which a bind mount by runc cannot take from.
fn memory_volume(path: &Path) -> Result<(), RuntimeError> {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev());
    let parent = path.parent().unwrap_or(path);
    let mounted = dev(path).map_err(io(format!("stat {}", path.display())))?
        != dev(parent).map_err(io(format!("stat {}", parent.display())))?;
    if mounted {
        return Ok(());
    }
    nix::mount::mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some("mode=0777"),
    )
    .map_err(|e| RuntimeError::io(format!("mount a tmpfs on {}", path.display()), e.into()))
}

/// The container's bind mounts: volumes, then the pod's `/etc` files and the termination-log
/// file unless a volume is mounted at that path (as the kubelet skips its managed files).
fn bind_mounts(
    srec: &SandboxRecord,
    pod_dir: &Path,
    cfg: &ContainerConfig,
    term: Option<(&Path, &Path)>,
) -> Result<Vec<BindMount>, RuntimeError> {
    let mut out = Vec::new();
    for m in &cfg.mounts {
        let (host_path, read_only) = volume_source(srec, m)?;
        out.push(BindMount {
            host_path,
            container_path: m.mount_path.to_string_lossy().into_owned(),
            read_only,
            ..BindMount::default()
        });
    }
    let taken = |p: &Path| cfg.mounts.iter().any(|m| m.mount_path == p);
    for name in ["hosts", "hostname", "resolv.conf"] {
        let target = Path::new("/etc").join(name);
        if !taken(&target) {
            out.push(BindMount {
                host_path: pod_dir.join("etc").join(name),
                container_path: target.to_string_lossy().into_owned(),
                ..BindMount::default()
            });
        }
    }
    if let Some((file, target)) = term
        && !taken(target)
    {
        out.push(BindMount {
            host_path: file.to_path_buf(),
            container_path: target.to_string_lossy().into_owned(),
            ..BindMount::default()
        });
    }
    Ok(out)
}

/// The exit of an image container as the kubelet reports it: `OOMKilled` when the OOM killer
/// struck in its cgroup (whatever the code), else `Completed`/`Error`; an adopted container's
/// status is unknown.
fn exited_from_runc(exit: &oci::runc::Exit) -> Exited {
    if !exit.known {
        return unknown_exit("The container's exit status was lost when the agent restarted");
    }
    let reason = if exit.oom_killed {
        "OOMKilled"
    } else if exit.code == 0 {
        "Completed"
    } else {
        "Error"
    };
    Exited {
        exit_code: exit.code,
        signal: exit.signal,
        finished_at: SystemTime::now(),
        reason: reason.to_string(),
        message: None,
    }
}

impl Shared {
    /// Starts `cfg` from its image; see the module docs.
    pub(super) async fn start_image_container(
        &self,
        sandbox: &Sandbox,
        cfg: &ContainerConfig,
        run: &ImageRun,
    ) -> Result<Started, RuntimeError> {
        let images = self.images.get().ok_or_else(|| {
            RuntimeError::Oci("this node does not run images (runc is not set up)".into())
        })?;
        let sb = self
            .sandbox(&sandbox.id)
            .ok_or_else(|| RuntimeError::SandboxNotFound(sandbox.id.clone()))?;
        let srec = &sb.rec;
        let holder = srec
            .holder
            .filter(|h| h.alive())
            .ok_or_else(|| RuntimeError::Sandbox("pod namespaces are gone".into()))?;
        let id = new_id();
        let mut spec = run.spec.clone();
        spec.hostname = volumes::pod_hostname(&SandboxConfig {
            host_network: srec.host_network,
            hostname: srec.hostname.clone(),
            ..SandboxConfig::default()
        });
        spec.env
            .retain(|e| !e.starts_with(&format!("{MARKER_ENV}=")));
        spec.env.push(format!("{MARKER_ENV}={id}"));
        spec.cgroup_v2 = images.cgroup_v2;
        let mut ns = oci::spec::Namespaces::pod(holder.pid);
        if run.share_pid {
            ns.pid = NsMode::Pod(PathBuf::from(format!("/proc/{}/ns/pid", holder.pid)));
        }
        if run.host_pid {
            ns.pid = NsMode::Node;
        }
        if run.host_ipc {
            ns.ipc = NsMode::Node;
        }
        spec.namespaces = ns;

        let term_path = cfg
            .termination_message_path
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty());
        let term_file = term_path.and_then(|_| self.termination_file(&srec.id, &id));
        if let Some(f) = &term_file {
            // Any user of the container may write its termination message (the kubelet's 0666).
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o666));
        }
        let termination = Termination::new(term_file.clone(), cfg.termination_message_policy);
        let mut unstarted = start::Unstarted(Some(&termination), Vec::new());
        let pod_dir = self.pod_dir(&srec.id);
        spec.mounts = bind_mounts(srec, &pod_dir, cfg, term_file.as_deref().zip(term_path))?;

        let qos = run.qos.unwrap_or(QosClass::BestEffort);
        spec.cgroups_path = match images.runc.cgroups() {
            Some(layout) => {
                let (l, uid, res) = (
                    layout.clone(),
                    srec.pod_uid.clone(),
                    run.pod_resources.clone(),
                );
                tokio::task::spawn_blocking(move || l.ensure_pod(qos, &uid, &res))
                    .await
                    .map_err(|e| RuntimeError::Oci(format!("pod cgroup: {e}")))?
                    .map_err(|e| RuntimeError::Oci(e.to_string()))?;
                layout
                    .container_path(qos, &srec.pod_uid, &id)
                    .map_err(|e| RuntimeError::Oci(e.to_string()))?
            }
            None => format!("/paddock/{id}"),
        };

        let log_path = self.instance_log(&srec.pod_uid, &cfg.name, cfg.restart_count);
        self.prune_logs(&srec.pod_uid, &cfg.name, cfg.restart_count);
        let writer = self.log_writer(&log_path)?;
        unstarted.1 = vec![self.output_fifo(&id, "out"), self.output_fifo(&id, "err")];
        let (child_out, ours) = self.output_fifos(&id)?;
        let [child_stdout, child_stderr] = child_out;
        let cwd = PathBuf::from(spec.cwd.clone().unwrap_or_else(|| "/".into()));
        let env: Vec<(String, String)> = spec
            .image_env
            .iter()
            .chain(&spec.env)
            .filter_map(|e| e.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let program = spec.args.first().cloned().unwrap_or_default();
        // A tty container's output comes from its terminal; a writer of the stdout FIFO is held
        // for it from now, so the copier never sees the pipe without writers in between.
        let tty_out = if spec.tty {
            let fifo = self.output_fifo(&id, "out");
            Some(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&fifo)
                    .map_err(io(format!("open {}", fifo.display())))?,
            )
        } else {
            None
        };
        // `spec.stdin` without a terminal: a pipe whose write end the agent keeps for attach
        // (with a terminal, the input is the terminal's master end, below).
        let (stdin_child, stdin_ours) = if cfg.stdin && !spec.tty {
            let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| RuntimeError::io("create the stdin pipe", e.into()))?;
            (Some(r), Some(w))
        } else {
            (None, None)
        };
        let mut container = images
            .runc
            .run(oci::runc::RunRequest {
                id: id.clone(),
                layers: run.layers.clone(),
                spec,
                stdin: stdin_child,
                stdout: OwnedFd::from(child_stdout),
                stderr: OwnedFd::from(child_stderr),
            })
            .await
            .map_err(|e| RuntimeError::Oci(e.to_string()))?;
        unstarted.0 = None;
        unstarted.1.clear();
        drop(unstarted);
        let started_at = SystemTime::now();
        let pid = container.pid;
        tracing::debug!(container = %cfg.name, %program, pid, "started from its image");
        let rec = ContainerRecord::started(
            id.clone(),
            srec,
            cfg,
            Launch {
                pid,
                started_at,
                env,
                cwd,
                log_path: log_path.clone(),
                termination: termination.clone(),
                runc: Some(images.runc_ref.clone()),
            },
        );
        if let Err(e) = state::write_json(&self.container_path(&id), &rec) {
            tracing::warn!(error = %e, "could not record container state");
        }
        let (tx, rx) = watch::channel(None);
        let (tap, _) = tokio::sync::broadcast::channel(container::ATTACH_BUFFER);
        let mut attach = container::Attach {
            stdin: Arc::new(tokio::sync::Mutex::new(None)),
            stdin_once: cfg.stdin_once,
            output: Some(tap.downgrade()),
            tty: None,
        };
        if let Some(w) = stdin_ours {
            match tokio::net::unix::pipe::Sender::from_owned_fd(w) {
                Ok(w) => attach.stdin = Arc::new(tokio::sync::Mutex::new(Some(Box::pin(w)))),
                Err(e) => tracing::warn!(error = %e, "container stdin is not attachable"),
            }
        }
        let copier = self.start_copier(&id, writer, Some(ours), Some(tap));
        let mut tty_copy = None;
        if let (Some(master), Some(mut to)) = (container.console.take(), tty_out) {
            // The terminal's input (for attach, when the container asked for stdin) and size.
            if let Ok(dup) = master.try_clone() {
                let dup = Arc::new(dup);
                if cfg.stdin
                    && let Ok(input) = dup.try_clone()
                {
                    let input = tokio::fs::File::from_std(std::fs::File::from(input));
                    attach.stdin = Arc::new(tokio::sync::Mutex::new(Some(Box::pin(input))));
                }
                attach.tty = Some(dup);
            }
            // A tty container writes to its terminal: its output is copied into the stdout
            // FIFO (and so logged as stdout, as the host runtime logs a tty container) until
            // the terminal closes with the container.
            let copied = std::thread::Builder::new()
                .name("paddock-tty".into())
                .spawn(move || {
                    let mut from = std::fs::File::from(master);
                    let _ = std::io::copy(&mut from, &mut to);
                });
            match copied {
                Ok(h) => tty_copy = Some(h),
                Err(e) => tracing::warn!(error = %e, "tty output is not logged"),
            }
        }
        let files = self.container_files(&id);
        let runc = images.runc.clone();
        tokio::spawn(async move {
            let exit = runc.wait(&container).await;
            // Whatever it left (a shared PID namespace keeps them) goes with it; then its
            // overlay, cgroup and bundle.
            if let Err(e) = runc.remove(&container.id).await {
                tracing::warn!(container = %container.id, error = %e, "removing the container");
            }
            // The terminal's last output reaches the FIFO before the copier is told to finish.
            if let Some(h) = tty_copy {
                let _ = tokio::task::spawn_blocking(move || h.join()).await;
            }
            if let Some(copier) = copier {
                copier.finish().await;
            }
            for f in files {
                let _ = std::fs::remove_file(f);
            }
            let exited = exited_from_runc(&exit);
            let _ = tx.send(Some(
                with_termination_message(exited, termination, log_path).await,
            ));
        });
        let cid = ContainerId(id);
        self.register(
            cid.clone(),
            Arc::new(ContainerRt {
                rec,
                isolated: true,
                exited: rx,
                attach,
            }),
        );
        Ok(Started {
            id: cid,
            pid,
            started_at,
        })
    }

    /// `runc delete` of an adopted image container that has ended.
    pub(super) async fn remove_image_container(&self, id: &str) {
        if let Some(images) = self.images.get()
            && let Err(e) = images.runc.remove(id).await
        {
            tracing::warn!(container = id, error = %e, "removing the container");
        }
    }
}
