//! [`Prober`]: one probe execution as the kubelet's `prober.probe` does it — the handler run with
//! up to three tries while it *errors*, the mapping to a cached result, and the events
//! [pkg/kubelet/prober/prober.go].
//!
//! | handler said | result | event (Warning) |
//! |---|---|---|
//! | success | Success | — |
//! | warning | Success | `ProbeWarning`: `<Type> probe warning: <output>` |
//! | failure | Failure | `Unhealthy`: `<Type> probe failed: <output>` |
//! | unknown | Failure | — |
//! | error (3 times) | discarded | `Unhealthy`: `<Type> probe errored and resulted in <result> state: <err>` |

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::error::HandlerError;
use crate::handler::exec::ExecRunner;
use crate::handler::{HandlerEnv, HandlerOutput, run_handler};
use crate::spec::ProbeSpec;
use crate::types::{
    EventSink, EventType, HandlerResult, ProbeResult, REASON_PROBE_WARNING, REASON_UNHEALTHY,
};

/// Tries per probe execution while the handler errors (`maxProbeRetries`).
pub const MAX_PROBE_RETRIES: u8 = 3;

/// One probe execution, with what the history needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeRun {
    /// Wall-clock start, for display.
    pub started_at: SystemTime,
    /// How long all tries took.
    pub duration: Duration,
    /// The result for the worker, or the error that makes it throw the result away.
    pub outcome: Result<ProbeResult, HandlerError>,
    /// What the handler said on the last try.
    pub handler_result: HandlerResult,
    /// The handler's output on the last try.
    pub output: String,
    /// Tries made (1..=3).
    pub tries: u8,
}

/// Runs a probe once; the worker's only dependency on handlers, so tests can script it.
pub trait ProbeRunner: Send + Sync {
    /// Probes the container of a pod whose IP is `pod_ip` (empty if unknown).
    fn run<'a>(&'a self, pod_ip: &'a str) -> BoxFuture<'a, ProbeRun>;
}

/// The real [`ProbeRunner`]: a resolved probe, its handlers and the event sink.
pub struct Prober {
    spec: Arc<ProbeSpec>,
    env: HandlerEnv,
    exec: Arc<dyn ExecRunner>,
    events: Arc<dyn EventSink>,
}

impl std::fmt::Debug for Prober {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prober")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Prober {
    /// A prober for `spec`, running exec commands through `exec` and recording to `events`.
    pub fn new(
        spec: Arc<ProbeSpec>,
        env: HandlerEnv,
        exec: Arc<dyn ExecRunner>,
        events: Arc<dyn EventSink>,
    ) -> Self {
        Self {
            spec,
            env,
            exec,
            events,
        }
    }

    /// The probe this prober runs.
    pub fn spec(&self) -> &ProbeSpec {
        &self.spec
    }

    /// One probe execution (up to three tries while the handler errors), with events.
    pub async fn probe(&self, pod_ip: &str) -> ProbeRun {
        let started_at = SystemTime::now();
        let start = Instant::now();
        let mut tries = 0;
        let out = loop {
            tries += 1;
            let out = run_handler(
                &self.env,
                &*self.exec,
                &self.spec.handler,
                pod_ip,
                self.spec.timeout,
            )
            .await;
            if out.error.is_none() || tries >= MAX_PROBE_RETRIES {
                break out;
            }
        };
        let outcome = self.judge(&out);
        ProbeRun {
            started_at,
            duration: start.elapsed(),
            outcome,
            handler_result: out.result,
            output: out.output,
            tries,
        }
    }

    /// Maps a handler output to the worker's result and records the event.
    fn judge(&self, out: &HandlerOutput) -> Result<ProbeResult, HandlerError> {
        let ty = self.spec.probe_type;
        if let Some(err) = &out.error {
            self.events.event(
                EventType::Warning,
                REASON_UNHEALTHY,
                format!(
                    "{ty} probe errored and resulted in {} state: {err}",
                    out.result
                ),
            );
            return Err(err.clone());
        }
        match out.result {
            HandlerResult::Success => Ok(ProbeResult::Success),
            HandlerResult::Warning => {
                self.events.event(
                    EventType::Warning,
                    REASON_PROBE_WARNING,
                    format!("{ty} probe warning: {}", out.output),
                );
                Ok(ProbeResult::Success)
            }
            HandlerResult::Failure => {
                self.events.event(
                    EventType::Warning,
                    REASON_UNHEALTHY,
                    format!("{ty} probe failed: {}", out.output),
                );
                Ok(ProbeResult::Failure)
            }
            HandlerResult::Unknown => Ok(ProbeResult::Failure),
        }
    }
}

impl ProbeRunner for Prober {
    fn run<'a>(&'a self, pod_ip: &'a str) -> BoxFuture<'a, ProbeRun> {
        Box::pin(self.probe(pod_ip))
    }
}
