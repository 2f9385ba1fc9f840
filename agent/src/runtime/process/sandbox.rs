//! Sandboxes of the process runtime: a pod's directory, its namespace holder (PID 1 of the
//! pod's namespaces when isolated), its veth on the node's bridge and IP, its `/etc` files and
//! volumes; whether it is still whole (its holder alive: `sandbox_ready`); and their teardown.
//! The bridge is set up with the first sandbox and watched while pods run (recreated, pods
//! re-attached, if it goes away).

use std::net::IpAddr;

use super::super::sys::Step;
// The runtime's shared state, record types and helpers this is a part of.
use super::*;

/// How often the bridge watcher checks that the pods' bridge is still there.
pub(super) const BRIDGE_CHECK: Duration = Duration::from_secs(2);

/// Keeps the pods' bridge in place (see [`net::Bridge`]) until it is released or the runtime
/// is dropped.
async fn watch_bridge(shared: std::sync::Weak<Shared>) {
    loop {
        tokio::time::sleep(BRIDGE_CHECK).await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if !shared.bridge.check(|| shared.attached_veths()).await {
            return;
        }
    }
}

impl Shared {
    /// Sets up the bridge (or recreates it if it went away, re-attaching the pods) and starts
    /// the watcher that keeps doing so while pods run.
    pub(super) async fn ensure_bridge(&self) -> Result<(), RuntimeError> {
        if self.bridge.ensure(|| self.attached_veths()).await? {
            tokio::spawn(watch_bridge(self.me.clone()));
        }
        Ok(())
    }

    /// The node ends of the veths of the pods this runtime knows and whose holder lives.
    pub(super) fn attached_veths(&self) -> Vec<String> {
        self.sandboxes
            .lock()
            .values()
            .filter(|sb| sb.rec.holder.is_some_and(|h| h.alive()))
            .filter_map(|sb| sb.rec.veth.clone())
            .collect()
    }

    pub(super) async fn run_sandbox(&self, cfg: &SandboxConfig) -> Result<Sandbox, RuntimeError> {
        let id = new_id();
        let pod_dir = self.pod_dir(&id);
        state::private_dir(&pod_dir)?;
        let mut rec = SandboxRecord {
            id: id.clone(),
            pod_uid: cfg.pod_uid.clone(),
            namespace: cfg.namespace.clone(),
            name: cfg.name.clone(),
            hostname: cfg.hostname.clone(),
            host_network: cfg.host_network,
            isolated: self.isolated,
            pod_ip: self.node.node_ip,
            holder: None,
            veth: None,
            allocated_ip: false,
            created_paths: Vec::new(),
            volumes: Vec::new(),
            attempt: cfg.attempt,
        };
        let result = self.build_sandbox(cfg, &mut rec, &pod_dir).await;
        match result {
            Ok(holder) => {
                state::write_json(&self.sandbox_path(&id), &rec)?;
                let sandbox = Sandbox {
                    id: id.clone(),
                    pod_ip: rec.pod_ip,
                    host_network: rec.host_network,
                    isolated: rec.isolated,
                };
                self.sandboxes.lock().insert(
                    id,
                    Arc::new(SandboxRt {
                        rec,
                        holder: tokio::sync::Mutex::new(holder),
                    }),
                );
                Ok(sandbox)
            }
            Err((e, holder)) => {
                let rt = SandboxRt {
                    rec,
                    holder: tokio::sync::Mutex::new(holder),
                };
                self.teardown(&rt).await;
                Err(e)
            }
        }
    }

    /// Volumes, `/etc` files, the namespace holder and the network; on error the holder (if
    /// any) comes back with the error so the caller can tear everything down.
    pub(super) async fn build_sandbox(
        &self,
        cfg: &SandboxConfig,
        rec: &mut SandboxRecord,
        pod_dir: &Path,
    ) -> Result<Option<Child>, (RuntimeError, Option<Child>)> {
        // Volume content and the /etc files are file I/O (a large ConfigMap, a slow disk):
        // done on the blocking pool, never on a runtime worker.
        let (dir, c, isolated) = (pod_dir.to_path_buf(), cfg.clone(), self.isolated);
        rec.volumes = off_runtime(move || volumes::prepare(&dir, &c, isolated))
            .await
            .map_err(|e| (e, None))?;
        if self.isolated && !cfg.host_network {
            let ip = self.ipam.allocate(&rec.id).map_err(|e| (e, None))?;
            rec.allocated_ip = true;
            rec.pod_ip = IpAddr::V4(ip);
            // Recorded at once: `list` releases addresses whose owner has no record.
            state::write_json(&self.sandbox_path(&rec.id), &*rec).map_err(|e| (e, None))?;
        }
        let (dir, c, ip) = (pod_dir.to_path_buf(), cfg.clone(), rec.pod_ip.to_string());
        let etc = off_runtime(move || volumes::write_etc_files(&dir, &c, &ip))
            .await
            .map_err(|e| (e, None))?;
        if !self.isolated {
            return Ok(None);
        }
        let memory: Vec<&Path> = rec
            .volumes
            .iter()
            .filter(|v| v.memory)
            .map(|v| v.path.as_path())
            .collect();
        let setup = isolate::holder_setup(cfg.host_network, &cfg.hostname, &memory, &etc)
            .map_err(|e| (e, None))?;
        let mut cmd = Command::new(&self.holder_bin);
        cmd.arg("infinity")
            .env_clear()
            .env("PADDOCK_SANDBOX_ID", &rec.id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(false);
        let child = isolate::spawn(cmd, setup, PidNs::New).await.map_err(|e| {
            let what = match e.step {
                Some(Step::Unshare) => "create namespaces",
                Some(Step::Hostname) => "set the hostname",
                Some(Step::Op(_)) => "set up the pod's mounts",
                _ => "start the namespace holder",
            };
            (
                RuntimeError::Sandbox(format!("{what}: {}", gofmt::errno_text(&e.error))),
                None,
            )
        })?;
        let Some(pid) = child.id() else {
            return Err((
                RuntimeError::Sandbox("namespace holder exited".into()),
                Some(child),
            ));
        };
        rec.holder = ProcRef::of(pid);
        // Record the holder before the network work, so a crash now still leaves a trace.
        if let Err(e) = state::write_json(&self.sandbox_path(&rec.id), &*rec) {
            return Err((e, Some(child)));
        }
        if !cfg.host_network
            && let IpAddr::V4(ip) = rec.pod_ip
        {
            let veth = net::veth_name(&rec.id);
            rec.veth = Some(veth.clone());
            let attached = async {
                self.ensure_bridge().await?;
                net::attach_pod(pid, &veth, self.bridge.name(), ip, &self.node.pod_cidr).await
            };
            if let Err(e) = attached.await {
                return Err((e, Some(child)));
            }
        }
        Ok(Some(child))
    }

    /// Kills the holder (and with it the pod's PID namespace), removes the veth, the pod's
    /// files and mount points, and releases the IP.
    pub(super) async fn teardown(&self, sb: &SandboxRt) {
        let rec = &sb.rec;
        if let Some(holder) = rec.holder {
            let mut owned = sb.holder.lock().await;
            if holder.alive() {
                let _ = kill(Pid::from_raw(holder.pid as i32), Signal::SIGKILL);
            }
            if let Some(child) = owned.as_mut() {
                let _ = child.wait().await;
            }
            *owned = None;
            let deadline = Instant::now() + KILL_TIMEOUT;
            while holder.alive() && Instant::now() < deadline {
                tokio::time::sleep(STOP_POLL).await;
            }
        }
        if let Some(veth) = &rec.veth {
            net::detach_pod(veth).await;
        }
        if rec.allocated_ip {
            self.ipam.release(rec.pod_ip, &rec.id);
        }
        // The pod level of the `kubepods` cgroups its image containers had (whatever its QoS
        // class was: absent levels are nothing to remove).
        if let Some(layout) = self.images.get().and_then(|i| i.runc.cgroups()).cloned() {
            let uid = rec.pod_uid.clone();
            let removed = tokio::task::spawn_blocking(move || {
                use oci::cgroups::QosClass;
                for qos in [
                    QosClass::Guaranteed,
                    QosClass::Burstable,
                    QosClass::BestEffort,
                ] {
                    if let Err(e) = layout.remove_pod(qos, &uid) {
                        tracing::warn!(pod_uid = %uid, error = %e, "removing the pod's cgroup");
                    }
                }
            });
            let _ = removed.await;
        }
        // The pod's directory holds its emptyDir volumes, which may be large: removed off the
        // async threads.
        let created = rec.created_paths.clone();
        let dir = self.pod_dir(&rec.id);
        let record = self.sandbox_path(&rec.id);
        let removed = tokio::task::spawn_blocking(move || {
            volumes::remove_mount_points(&created);
            if let Ok(extra) = std::fs::read_to_string(dir.join("mountpoints")) {
                let paths: Vec<PathBuf> = extra.lines().map(PathBuf::from).collect();
                volumes::remove_mount_points(&paths);
            }
            volumes::unmount_volumes(&dir);
            let _ = std::fs::remove_dir_all(&dir);
            let _ = std::fs::remove_file(record);
        });
        if let Err(e) = removed.await {
            tracing::warn!(error = %e, "removing a pod's files failed");
        }
    }

    /// Whether sandbox `id` is whole: known, and its namespace holder (if it has one) lives.
    pub(super) async fn sandbox_ready(&self, id: &str) -> bool {
        let Some(sb) = self.sandbox(id) else {
            return false;
        };
        let Some(holder) = sb.rec.holder else {
            // Host mode: a sandbox is a directory, nothing in it can die.
            return !sb.rec.isolated;
        };
        // Reads `/proc`: off the async threads.
        tokio::task::spawn_blocking(move || holder.alive())
            .await
            .unwrap_or(false)
    }

    pub(super) async fn stop_sandbox(&self, id: &str) -> Result<(), RuntimeError> {
        let Some(sb) = self.sandbox(id) else {
            return Ok(());
        };
        let mut ids: Vec<ContainerId> = self
            .containers
            .lock()
            .iter()
            .filter(|(_, c)| c.rec.sandbox_id == id)
            .map(|(k, _)| k.clone())
            .collect();
        for rec in state::read_all::<ContainerRecord>(&self.root.join("containers")) {
            if rec.sandbox_id == id && !ids.iter().any(|c| c.0 == rec.id) {
                ids.push(ContainerId(rec.id));
            }
        }
        for cid in &ids {
            self.stop_container(cid, Duration::ZERO).await?;
        }
        self.teardown(&sb).await;
        self.sandboxes.lock().remove(id);
        let mut containers = self.containers.lock();
        for cid in &ids {
            containers.remove(cid);
        }
        Ok(())
    }
}

/// Runs blocking file work on tokio's blocking pool.
async fn off_runtime<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RuntimeError> + Send + 'static,
) -> Result<T, RuntimeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RuntimeError::Sandbox(format!("sandbox setup task: {e}")))?
}
