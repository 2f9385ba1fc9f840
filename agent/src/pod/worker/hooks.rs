//! Lifecycle hooks (postStart, preStop) of a pod worker [pkg/kubelet/lifecycle/handlers.go]:
//! [`HookCtx`], what running one needs, detached from the driver so a kill task can run a
//! preStop hook while the driver keeps serving.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::LifecycleHandler;
use probe::{ExecOutput, HandlerEnv, ProbeSpec, ProbeType};

use super::Driver;
use crate::events::{EventRecorder, ObjectRef};
use crate::runtime::{ContainerId, Runtime};

/// What a preStop hook needs, detached from the driver.
pub(super) struct HookCtx {
    pub(super) runtime: Arc<dyn Runtime>,
    pub(super) env: HandlerEnv,
    pub(super) events: EventRecorder,
    pub(super) obj: ObjectRef,
    pub(super) pod: String,
    pub(super) pod_ip: String,
}

impl HookCtx {
    /// Runs a lifecycle hook [pkg/kubelet/lifecycle/handlers.go]; `Err` carries the
    /// handler's message (logged; events only say `PostStartHook failed` / `PreStopHook failed`).
    pub(super) async fn run(
        &self,
        h: &LifecycleHandler,
        id: &ContainerId,
        c: &k8s_openapi::api::core::v1::Container,
        limit: Duration,
    ) -> Result<(), String> {
        let pod = &self.pod;
        if let Some(e) = &h.exec {
            let argv = e.command.clone().unwrap_or_default();
            let go_argv = format!("[{}]", argv.join(" "));
            let (err, output) = match self.runtime.exec_runner(id).run(&argv, limit).await {
                Ok(ExecOutput {
                    status: probe::ExecStatus::Exited(0),
                    ..
                }) => return Ok(()),
                Ok(ExecOutput { status, output }) => (
                    match status {
                        probe::ExecStatus::Exited(code) => {
                            format!("command '{}' exited with {code}: ", argv.join(" "))
                        }
                        probe::ExecStatus::TimedOut => "command timed out".into(),
                    },
                    String::from_utf8_lossy(&output).into_owned(),
                ),
                Err(e) => (e.to_string(), String::new()),
            };
            return Err(format!(
                "Exec lifecycle hook ({go_argv}) for Container {:?} in Pod {pod:?} failed - error: {err}, message: {output:?}",
                c.name
            ));
        }
        if let Some(g) = &h.http_get {
            let probe = k8s_openapi::api::core::v1::Probe {
                http_get: Some(g.clone()),
                ..Default::default()
            };
            let spec = ProbeSpec::new(ProbeType::Liveness, &probe, c, pod);
            let probe::Handler::HttpGet(hs) = &spec.handler else {
                return Ok(());
            };
            let out = probe::handler::http::probe(&self.env, hs, &self.pod_ip, limit).await;
            return match (out.result, out.error) {
                (probe::HandlerResult::Success | probe::HandlerResult::Warning, None) => Ok(()),
                (_, e) => Err(format!(
                    "Http lifecycle hook ({}) for Container {:?} in Pod {pod:?} failed - error: {}",
                    g.path.clone().unwrap_or_default(),
                    c.name,
                    e.map_or(out.output, |e| e.to_string())
                )),
            };
        }
        if let Some(s) = &h.sleep {
            let d = Duration::from_secs(u64::try_from(s.seconds).unwrap_or(0)).min(limit);
            tokio::time::sleep(d).await;
        }
        Ok(())
    }
}

impl Driver {
    /// What running a lifecycle hook of container `name` needs.
    pub(super) fn hook_ctx(&self, name: &str) -> HookCtx {
        HookCtx {
            runtime: self.shared.runtime.clone(),
            env: self.shared.handler_env.clone(),
            events: self.shared.events.clone(),
            obj: self.container_ref(name),
            pod: self.state.format_pod(),
            pod_ip: self
                .state
                .sandbox
                .as_ref()
                .map(|s| s.pod_ip.to_string())
                .unwrap_or_default(),
        }
    }
}
