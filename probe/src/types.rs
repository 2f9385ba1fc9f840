//! The small vocabulary every other module uses: probe types, handler and cached results,
//! events and their sink.

use std::fmt;

/// Which of a container's three probes a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeType {
    /// `livenessProbe`: failure kills the container.
    Liveness,
    /// `readinessProbe`: decides the container's `ready`.
    Readiness,
    /// `startupProbe`: gates the other two until it succeeds.
    Startup,
}

impl ProbeType {
    /// The capitalised name the kubelet puts in event messages (`Liveness`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeType::Liveness => "Liveness",
            ProbeType::Readiness => "Readiness",
            ProbeType::Startup => "Startup",
        }
    }

    /// The value a worker writes when it first sees a container ID: readiness `Failure`,
    /// liveness `Success`, startup `Unknown` [worker.go `newWorker`].
    pub fn initial_result(self) -> ProbeResult {
        match self {
            ProbeType::Readiness => ProbeResult::Failure,
            ProbeType::Liveness => ProbeResult::Success,
            ProbeType::Startup => ProbeResult::Unknown,
        }
    }
}

impl fmt::Display for ProbeType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a handler returns [pkg/probe/probe.go].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HandlerResult {
    /// The check passed.
    Success,
    /// Logically a success, with debugging information (an unfollowed redirect).
    Warning,
    /// The check failed.
    Failure,
    /// The handler could not tell.
    Unknown,
}

impl HandlerResult {
    /// The lower-case name used in `... resulted in <result> state` messages.
    pub fn as_str(self) -> &'static str {
        match self {
            HandlerResult::Success => "success",
            HandlerResult::Warning => "warning",
            HandlerResult::Failure => "failure",
            HandlerResult::Unknown => "unknown",
        }
    }
}

impl fmt::Display for HandlerResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cached probe result, as the kubelet's results manager holds it [results_manager.go].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeResult {
    /// Passed (for readiness: ready; for startup: started).
    Success,
    /// Failed (for liveness and startup: the container must be restarted).
    Failure,
    /// Not known yet (the startup probe's initial value).
    Unknown,
}

impl fmt::Display for ProbeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProbeResult::Success => "Success",
            ProbeResult::Failure => "Failure",
            ProbeResult::Unknown => "Unknown",
        })
    }
}

/// Kubernetes event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

impl EventType {
    /// `Normal` or `Warning`, as in `Event.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Reason of a failed or errored probe's event.
pub const REASON_UNHEALTHY: &str = "Unhealthy";
/// Reason of a probe that succeeded with a warning (an unfollowed redirect).
pub const REASON_PROBE_WARNING: &str = "ProbeWarning";

/// Where a prober records events. The agent gives each container's probers a sink that knows
/// the involved object (the Pod, `fieldPath: spec.containers{<name>}`).
pub trait EventSink: Send + Sync {
    /// Records one event with its type, reason and message.
    fn event(&self, kind: EventType, reason: &str, message: String);
}

/// An [`EventSink`] that drops everything (benchmarks, tests that do not look at events).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn event(&self, _kind: EventType, _reason: &str, _message: String) {}
}
