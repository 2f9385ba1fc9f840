//! What a pod worker publishes after a sync: the pod status (written only when it changed,
//! the last write kept as [`Written`] bytes), the probe workers' view of it, the routing state
//! of its endpoint and the directory entry of its containers.

// The driver's state, ports and helpers this is a part of.
use super::*;

/// The status last written, kept as its JSON: an idle pod keeps it for its whole life, and
/// the decoded form of even a one-container status is several times bigger. Decoded when a
/// status is generated (every sync), compared as bytes.
#[derive(PartialEq, Eq)]
pub(super) struct Written(Arc<[u8]>);

impl Written {
    pub(super) fn new(st: &PodStatus) -> Self {
        Self(encode(st).into())
    }

    /// The bytes, shared (the directory's `/pods` shows them).
    fn shared(&self) -> Arc<[u8]> {
        self.0.clone()
    }

    pub(super) fn status(&self) -> PodStatus {
        serde_json::from_slice(&self.0).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot decode the last written pod status");
            PodStatus::default()
        })
    }

    /// Whether `st` is the status written.
    pub(super) fn is(&self, st: &PodStatus) -> bool {
        *self.0 == *encode(st)
    }
}

fn encode(st: &PodStatus) -> Vec<u8> {
    // A PodStatus has only string-keyed maps and plain values: serializing cannot fail.
    serde_json::to_vec(st).unwrap_or_default()
}

impl Driver {
    /// Pushes the status if it changed, updates the probe view and the directory; records the
    /// terminal phase.
    pub(super) async fn publish(&mut self) {
        let pod = self.pod();
        let phase = status::phase(&self.state, &self.probes);
        if (phase == "Succeeded" || phase == "Failed")
            && self.state.terminal_phase.is_none()
            && !self.state.deleting()
        {
            self.state.terminal_phase = Some(phase);
        }
        // Decoded once: while the API holds our last write, it is also the API's status.
        let last = self.last_status.as_ref().map(Written::status);
        let api_status = if self.api_status_ours {
            last.clone()
        } else {
            self.state.pod.status.clone()
        }
        .unwrap_or_default();
        let mut old = last.unwrap_or_else(|| api_status.clone());
        // Foreign conditions come from the API; ours keep their transition times.
        let mut conds: Vec<_> = old
            .conditions
            .take()
            .unwrap_or_default()
            .into_iter()
            .filter(|c| {
                [
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                ]
                .contains(&c.type_.as_str())
            })
            .collect();
        for c in api_status.conditions.iter().flatten() {
            if !conds.iter().any(|o| o.type_ == c.type_) {
                conds.push(c.clone());
            }
        }
        old.conditions = Some(conds);
        old.qos_class = api_status.qos_class.clone();
        let host_ip = self.shared.node.host_ip.to_string();
        let st = status::generate(
            &self.state,
            &self.probes,
            &StatusInputs {
                host_ip: &host_ip,
                old: Some(&old),
                now: Timestamp::now(),
            },
        );
        // The fast path first: routing learns a readiness change before the API does.
        let result_at = self.probe_result_at.take();
        if let Some(ep) = self
            .pod_endpoint()
            .filter(|_| self.shared.routing.enabled())
        {
            let state = self.route_state(&st);
            if self.shared.routing.set(&ep, state)
                && state != RouteState::Draining
                && let Some(at) = result_at
            {
                self.shared.metrics.readiness_routed(at.elapsed());
            }
        }
        let view = status::probe_view(&self.state, &self.probes, st.phase.as_deref().unwrap_or(""));
        self.view.send_replace(Some(Arc::new(view)));
        let written = Written::new(&st);
        // An unchanged status shares the bytes of the last write (an idle pod holds one copy).
        let shown = match &self.last_status {
            Some(last) if *last == written => last.shared(),
            _ => written.shared(),
        };
        self.update_directory(shown);
        if self.state.removed {
            return;
        }
        // Our last write is the reference; on the periodic resync the API's copy is checked
        // too, so a status overwritten by someone else is put right.
        let unchanged = self.last_status.as_ref() == Some(&written)
            && (!self.resync
                || self.api_status_ours
                || (self.state.pod.status.as_ref()).is_some_and(|s| same_status(s, &st)));
        if unchanged {
            return;
        }
        match self.shared.status.write(&pod, &st).await {
            Ok(()) => self.last_status = Some(written),
            Err(e) => {
                tracing::warn!(error = %e, pod = %self.state.format_pod(), "cannot write pod status");
                // Not written: the API's status is not ours (the resync writes it again).
                self.api_status_ours = false;
                self.last_status = Some(written);
                self.requeue_in(Duration::from_secs(1));
            }
        }
    }

    /// The pod as routing knows it (once it has a sandbox, hence an IP).
    pub(super) fn pod_endpoint(&self) -> Option<PodEndpoint> {
        let sb = self.state.sandbox.as_ref()?;
        let m = &self.state.pod.metadata;
        Some(PodEndpoint {
            uid: m.uid.clone().unwrap_or_default(),
            name: format!(
                "{}/{}",
                m.namespace.as_deref().unwrap_or(""),
                m.name.as_deref().unwrap_or("")
            ),
            ip: sb.pod_ip,
            own_ip: sb.isolated && !sb.host_network,
        })
    }

    /// How routing should treat the pod given the status about to be published: draining
    /// while it is deleted or a container of it is being killed (whatever its probes still
    /// say), else its `Ready` condition.
    pub(super) fn route_state(&self, st: &PodStatus) -> RouteState {
        if self.state.deleting() || !self.state.killing.is_empty() {
            return RouteState::Draining;
        }
        let ready = st
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready {
            RouteState::Ready
        } else {
            RouteState::NotReady
        }
    }

    pub(super) fn update_directory(&self, status: Arc<[u8]>) {
        let pod = &self.state.pod;
        let mut entry = PodEntry {
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            containers: Vec::new(),
            pod: Some(pod.clone()),
            status: Some(status),
        };
        let containers = self.state.containers();
        let default_reason = if containers.iter().any(|c| c.init) {
            "PodInitializing"
        } else {
            "ContainerCreating"
        };
        // Ephemeral containers too: `kubectl debug` attaches to them, logs and exec reach them.
        for c in containers
            .into_iter()
            .chain(self.state.ephemeral_containers())
        {
            let name = &c.container.name;
            let latest = self.state.latest(name);
            let waiting = match latest {
                Some(i) if i.running() => None,
                _ => Some(
                    self.state
                        .waiting
                        .get(name)
                        .map(|(r, _)| r.clone())
                        .unwrap_or_else(|| default_reason.into()),
                ),
            };
            entry.containers.push((
                name.clone(),
                ContainerEntry {
                    current: latest.map(|i| (i.id.clone(), i.restart_count, i.running())),
                    previous: self
                        .state
                        .last_terminated(c)
                        .map(|i| (i.id.clone(), i.restart_count)),
                    waiting,
                },
            ));
        }
        self.shared.directory.set(
            pod.metadata.namespace.as_deref().unwrap_or(""),
            pod.metadata.name.as_deref().unwrap_or(""),
            entry,
        );
    }
}

/// Whether the API's status already says what we would write (ignoring fields we do not own).
fn same_status(api: &PodStatus, ours: &PodStatus) -> bool {
    api.phase == ours.phase
        && api.container_statuses == ours.container_statuses
        && api.init_container_statuses == ours.init_container_statuses
        && api.ephemeral_container_statuses == ours.ephemeral_container_statuses
        && api.pod_ip == ours.pod_ip
        && api.host_ip == ours.host_ip
        && api.start_time == ours.start_time
        && api.conditions == ours.conditions
}
