//! Starting a container in a sandbox, step by step: what can fail before anything is created
//! (`check_start`: host ports, program, working directory), the mount plan and termination-log
//! file, the log and output FIFOs, the spawn into the pod's namespaces (`child_setup`), the
//! record on disk, and the exit task (`follow_exit`) that owns the container's end.

// The runtime's shared state, record types and helpers this is a part of.
use super::*;
use crate::runtime::state::Launch;

/// Removes a container's termination-log file and output FIFOs when its start fails (once
/// started, the exit task removes them).
pub(super) struct Unstarted<'a>(pub(super) Option<&'a Termination>, pub(super) Vec<PathBuf>);

impl Drop for Unstarted<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.0 {
            t.remove();
        }
        for f in &self.1 {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// Host mode: a declared port another process already holds is a clear start error.
fn check_ports(cfg: &ContainerConfig) -> Result<(), RuntimeError> {
    for p in &cfg.ports {
        let taken = match p.protocol.as_str() {
            "" | "TCP" => std::net::TcpListener::bind(("0.0.0.0", p.container_port)).err(),
            "UDP" => std::net::UdpSocket::bind(("0.0.0.0", p.container_port)).err(),
            _ => None,
        };
        if let Some(e) = taken
            && e.kind() == std::io::ErrorKind::AddrInUse
        {
            let proto = if p.protocol.is_empty() {
                "TCP"
            } else {
                &p.protocol
            };
            return Err(RuntimeError::PortInUse {
                port: p.container_port,
                protocol: proto.to_string(),
                protocol_lower: proto.to_ascii_lowercase(),
            });
        }
    }
    Ok(())
}

/// The container's environment: runtime defaults, then the spec's env, then the marker.
fn container_env(cfg: &ContainerConfig, hostname: &str, id: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOSTNAME".into(), hostname.into()),
    ];
    for (k, v) in &cfg.env {
        if k == MARKER_ENV {
            continue;
        }
        match env.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = v.clone(),
            None => env.push((k.clone(), v.clone())),
        }
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), "/root".into()));
    }
    env.push((MARKER_ENV.into(), id.into()));
    env
}

/// What a container start checks before creating anything: host ports (when the pod shares
/// the node's network), the program (resolved as runc does) and the working directory. Paths
/// inside the container's volumes or `/tmp` only exist once its mount namespace does, so those
/// are left to the spawn to report. Returns the program's path.
fn check_start(
    srec: &SandboxRecord,
    cfg: &ContainerConfig,
    program: &str,
    env: &[(String, String)],
    cwd: &Path,
) -> Result<PathBuf, RuntimeError> {
    let path_env = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let in_volume = |p: &Path| cfg.mounts.iter().any(|m| p.starts_with(&m.mount_path));
    let isolated = srec.isolated;
    if !isolated || srec.host_network {
        check_ports(cfg)?;
    }
    let program_path = resolve_program(
        program,
        &path_env,
        cwd,
        !(isolated && (in_volume(&cwd.join(program)) || cwd.join(program).starts_with("/tmp"))),
    )?;
    if !(isolated && (in_volume(cwd) || cwd.starts_with("/tmp")))
        && let Err(e) = std::fs::read_dir(cwd)
    {
        return Err(RuntimeError::WorkingDir {
            path: cwd.to_path_buf(),
            message: gofmt::errno_text(&e),
        });
    }
    if !isolated && !cfg.mounts.is_empty() {
        tracing::warn!(
            pod = %srec.name, container = %cfg.name,
            "host mode: volume mounts are not applied (they need root for a mount namespace)"
        );
    }
    Ok(program_path)
}

/// How the container's process is set up between fork and exec: in an isolated pod it joins
/// the holder's namespaces, gets its own mount namespace and runs the mount plan (whose labels
/// and subPaths name a failed step); otherwise it only changes to its working directory.
#[allow(clippy::type_complexity)]
fn child_setup(
    plan: Option<volumes::MountPlan>,
    holder: Option<ProcRef>,
    cwd: std::ffi::CString,
) -> Result<
    (
        ChildSetup,
        PidNs,
        Vec<(usize, String)>,
        Vec<(usize, String, String)>,
    ),
    RuntimeError,
> {
    let (Some(mut plan), Some(holder)) = (plan, holder) else {
        return Ok((
            ChildSetup {
                cwd: Some(cwd),
                ..ChildSetup::default()
            },
            PidNs::Inherit,
            Vec::new(),
            Vec::new(),
        ));
    };
    let gone = |e: std::io::Error| {
        RuntimeError::Sandbox(format!(
            "pod namespaces are gone: {}",
            gofmt::errno_text(&e)
        ))
    };
    let join = isolate::join_pod(holder.pid).map_err(gone)?;
    let pid_ns = isolate::open_ns(holder.pid, "pid").map_err(gone)?;
    let ops = std::mem::take(&mut plan.ops);
    Ok((
        ChildSetup {
            join,
            unshare: Some(nix::sched::CloneFlags::CLONE_NEWNS),
            ops,
            cwd: Some(cwd),
            ..ChildSetup::default()
        },
        PidNs::Join(pid_ns),
        plan.labels,
        plan.sub_paths,
    ))
}

/// What identifies a container's processes once its main process is gone.
struct Leftovers {
    pgid: Option<i32>,
    marker: String,
    since: u64,
}

/// The exit task of a started container: waits for its main process, kills what it left
/// running (as a container's PID namespace ends with its init), lets the log copier finish,
/// removes its FIFOs and reports the exit with its termination message.
async fn follow_exit(
    mut child: Child,
    leftovers: Leftovers,
    copier: Option<CopierHandle>,
    files: Vec<PathBuf>,
    (termination, log_path): (Termination, PathBuf),
    tx: watch::Sender<Option<Exited>>,
) {
    let status = child.wait().await;
    kill_leftovers(leftovers.pgid, &leftovers.marker, leftovers.since).await;
    if let Some(copier) = copier {
        copier.finish().await;
    }
    for f in files {
        let _ = std::fs::remove_file(f);
    }
    let exited = exited_from(status);
    let _ = tx.send(Some(
        with_termination_message(exited, termination, log_path).await,
    ));
}

impl Shared {
    /// Starts a container in its sandbox: checks what can fail before anything is created
    /// (`check_start`), plans its mounts and termination-log file, opens its log and output
    /// FIFOs, spawns it in the pod's namespaces (`child_setup`), records it, and hands its
    /// exit to a task (`follow_exit`).
    pub(super) async fn start_container(
        &self,
        sandbox: &Sandbox,
        cfg: &ContainerConfig,
    ) -> Result<Started, RuntimeError> {
        if let Some(run) = &cfg.image_run {
            return self.start_image_container(sandbox, cfg, run).await;
        }
        let sb = self
            .sandbox(&sandbox.id)
            .ok_or_else(|| RuntimeError::SandboxNotFound(sandbox.id.clone()))?;
        let srec = &sb.rec;
        let Some(program) = cfg.argv.first() else {
            return Err(RuntimeError::NoCommand);
        };
        let id = new_id();
        let hostname = volumes::pod_hostname(&SandboxConfig {
            host_network: srec.host_network,
            hostname: srec.hostname.clone(),
            ..SandboxConfig::default()
        });
        let env = container_env(cfg, &hostname, &id);
        let cwd = cfg
            .working_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/"));
        let isolated = srec.isolated;
        let program_path = check_start(srec, cfg, program, &env, &cwd)?;
        let term_path = cfg
            .termination_message_path
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty());
        // Only a mount namespace can show the file at its path (see `termination`).
        let term_file = match term_path {
            Some(_) if isolated => self.termination_file(&srec.id, &id),
            _ => None,
        };
        let termination = Termination::new(term_file.clone(), cfg.termination_message_policy);
        let mut unstarted = Unstarted(Some(&termination), Vec::new());
        let plan = if isolated {
            let term_mount = term_file.as_deref().zip(term_path);
            let plan = volumes::plan_mounts(&srec.volumes, &cfg.name, &cfg.mounts, term_mount)?;
            if !plan.created.is_empty() {
                self.note_mount_points(&srec.id, &plan.created)?;
            }
            Some(plan)
        } else {
            None
        };

        // Logs: this instance's file; older instances than the previous one go.
        let log_path = self.instance_log(&srec.pod_uid, &cfg.name, cfg.restart_count);
        self.prune_logs(&srec.pod_uid, &cfg.name, cfg.restart_count);
        let writer = self.log_writer(&log_path)?;
        unstarted.1 = vec![self.output_fifo(&id, "out"), self.output_fifo(&id, "err")];
        let (child_out, ours) = self.output_fifos(&id)?;
        let [child_stdout, child_stderr] = child_out;

        let mut cmd = Command::new(&program_path);
        cmd.arg0(program)
            .args(&cfg.argv[1..])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(if cfg.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::from(child_stdout))
            .stderr(Stdio::from(child_stderr))
            .process_group(0)
            .kill_on_drop(false);
        let (setup, pid_ns, labels, sub_paths) =
            child_setup(plan, srec.holder, volumes::cstr(&cwd)?)?;
        let mut child = isolate::spawn(cmd, setup, pid_ns)
            .await
            .map_err(|e| spawn_error(program, &cwd, &labels, &sub_paths, e))?;
        // From here the exit task owns the termination-log file and the FIFOs.
        unstarted.0 = None;
        unstarted.1.clear();
        drop(unstarted);
        let started_at = SystemTime::now();
        let Some(pid) = child.id() else {
            return Err(RuntimeError::Spawn {
                program: program.clone(),
                message: "process vanished at start".into(),
            });
        };
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
                runc: None,
            },
        );
        let rec_path = self.container_path(&id);
        if let Err(e) = state::write_json(&rec_path, &rec) {
            tracing::warn!(error = %e, "could not record container state");
        }
        let (tx, rx) = watch::channel(None);
        let stdin = child.stdin.take();
        // The command (with the child's ends of the pipes) is gone: the copier sees end of file
        // when the container's processes are.
        let (tap, _) = tokio::sync::broadcast::channel(container::ATTACH_BUFFER);
        let attach = container::Attach {
            stdin: Arc::new(tokio::sync::Mutex::new(
                stdin.map(|s| Box::pin(s) as container::StdinEnd),
            )),
            stdin_once: cfg.stdin_once,
            output: Some(tap.downgrade()),
            tty: None,
        };
        let copier = self.start_copier(&id, writer, Some(ours), Some(tap));
        tokio::spawn(follow_exit(
            child,
            Leftovers {
                pgid: i32::try_from(pid).ok(),
                marker: format!("{MARKER_ENV}={id}"),
                since: rec.process.start_ticks,
            },
            copier,
            self.container_files(&id),
            (termination, log_path),
            tx,
        ));
        let cid = ContainerId(id);
        self.register(
            cid.clone(),
            Arc::new(ContainerRt {
                rec,
                isolated,
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

    /// Adds a started container to the table, keeping the previous instance of its name (its
    /// status and logs are still asked for) and forgetting older exited ones.
    pub(super) fn register(&self, cid: ContainerId, rt: Arc<ContainerRt>) {
        let mut containers = self.containers.lock();
        containers.retain(|_, c| {
            !(c.rec.sandbox_id == rt.rec.sandbox_id
                && c.rec.name == rt.rec.name
                && c.rec.restart_count < rt.rec.restart_count - 1
                && c.exited.borrow().is_some())
        });
        containers.insert(cid, rt);
    }
}
