//! From the API objects to a resolved probe: handler selection, the kubelet's defaults for
//! zero/absent fields, named-port resolution and `$(VAR)` expansion of exec commands.
//!
//! Start at [`ProbeSpec::new`].

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::error::HandlerError;
use crate::expand::expand_command;
use crate::types::ProbeType;

/// Default `timeoutSeconds` [pkg/apis/core/v1/defaults.go `SetDefaults_Probe`].
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 1;
/// Default `periodSeconds`.
pub const DEFAULT_PERIOD_SECONDS: i32 = 10;
/// Default `successThreshold`.
pub const DEFAULT_SUCCESS_THRESHOLD: i32 = 1;
/// Default `failureThreshold`.
pub const DEFAULT_FAILURE_THRESHOLD: i32 = 3;

/// A probe with every default applied and its handler resolved against the container.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSpec {
    /// Which probe this is.
    pub probe_type: ProbeType,
    /// What to run.
    pub handler: Handler,
    /// `timeoutSeconds` (default 1 s).
    pub timeout: Duration,
    /// `periodSeconds` (default 10 s).
    pub period: Duration,
    /// `initialDelaySeconds` (default 0).
    pub initial_delay_seconds: i32,
    /// `successThreshold` (default 1).
    pub success_threshold: i32,
    /// `failureThreshold` (default 3).
    pub failure_threshold: i32,
}

/// The handler of a probe, resolved. Port errors are kept and returned on every run, since the
/// kubelet resolves the port on each probe and treats a failure as an error (retried, then
/// discarded).
#[derive(Debug, Clone, PartialEq)]
pub enum Handler {
    /// `exec`: argv (already `$(VAR)`-expanded with the container's static env).
    Exec {
        /// The command, not run through a shell.
        command: Vec<String>,
    },
    /// `httpGet`.
    HttpGet(HttpGetSpec),
    /// `tcpSocket`.
    TcpSocket {
        /// `host`; empty means the pod IP.
        host: String,
        /// The resolved port.
        port: Result<u16, HandlerError>,
    },
    /// `grpc`: always against the pod IP.
    Grpc {
        /// `grpc.port` as given (validation keeps it in 1..=65535).
        port: i32,
        /// `grpc.service`, empty when absent.
        service: String,
    },
    /// No handler was given.
    Missing(HandlerError),
}

/// URL scheme of an HTTP probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `http`.
    Http,
    /// `https`, certificate not verified.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A resolved `httpGet` action.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpGetSpec {
    /// The scheme (`httpGet.scheme` lower-cased; empty is `http`).
    pub scheme: Scheme,
    /// `httpGet.host`; empty means the pod IP.
    pub host: String,
    /// The resolved port.
    pub port: Result<u16, HandlerError>,
    /// `httpGet.path` as given (may carry a query).
    pub path: String,
    /// `httpHeaders` in order, names as given.
    pub headers: Vec<(String, String)>,
}

fn or_default(v: Option<i32>, default: i32) -> i32 {
    match v {
        Some(v) if v > 0 => v,
        _ => default,
    }
}

impl ProbeSpec {
    /// Resolves `probe` of `container`. `pod` is the kubelet's pod formatting
    /// (`name_namespace(uid)`), only used in the "missing probe handler" error.
    pub fn new(probe_type: ProbeType, probe: &Probe, container: &Container, pod: &str) -> Self {
        Self {
            probe_type,
            handler: Handler::new(probe, container, pod),
            timeout: secs(or_default(probe.timeout_seconds, DEFAULT_TIMEOUT_SECONDS)),
            period: secs(or_default(probe.period_seconds, DEFAULT_PERIOD_SECONDS)),
            initial_delay_seconds: probe.initial_delay_seconds.unwrap_or(0).max(0),
            success_threshold: or_default(probe.success_threshold, DEFAULT_SUCCESS_THRESHOLD),
            failure_threshold: or_default(probe.failure_threshold, DEFAULT_FAILURE_THRESHOLD),
        }
    }
}

fn secs(s: i32) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(1))
}

impl Handler {
    /// Picks the handler in the kubelet's order (exec, httpGet, tcpSocket, grpc).
    pub fn new(probe: &Probe, container: &Container, pod: &str) -> Self {
        if let Some(exec) = &probe.exec {
            let command = exec.command.clone().unwrap_or_default();
            let env = container.env.as_deref().unwrap_or_default();
            return Handler::Exec {
                command: expand_command(&command, env),
            };
        }
        if let Some(h) = &probe.http_get {
            let scheme = match h.scheme.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("https") => Scheme::Https,
                _ => Scheme::Http,
            };
            return Handler::HttpGet(HttpGetSpec {
                scheme,
                host: h.host.clone().unwrap_or_default(),
                port: resolve_container_port(&h.port, container),
                path: h.path.clone().unwrap_or_default(),
                headers: h
                    .http_headers
                    .iter()
                    .flatten()
                    .map(|hh| (hh.name.clone(), hh.value.clone()))
                    .collect(),
            });
        }
        if let Some(t) = &probe.tcp_socket {
            return Handler::TcpSocket {
                host: t.host.clone().unwrap_or_default(),
                port: resolve_container_port(&t.port, container),
            };
        }
        if let Some(g) = &probe.grpc {
            return Handler::Grpc {
                port: g.port,
                service: g.service.clone().unwrap_or_default(),
            };
        }
        Handler::Missing(HandlerError::MissingHandler {
            pod: pod.to_string(),
            container: container.name.clone(),
        })
    }
}

/// The kubelet's `ResolveContainerPort` [pkg/probe/util.go]: a number is used as is; a name is
/// looked up in `container.ports[].name`; a name that matches nothing is parsed as a number
/// ("last ditch effort"), and the result must be in 1..=65535.
pub fn resolve_container_port(
    port: &IntOrString,
    container: &Container,
) -> Result<u16, HandlerError> {
    let n: i64 = match port {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(name) => {
            let found = container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name.as_str()));
            match found {
                Some(p) => i64::from(p.container_port),
                None => go_atoi(name)?,
            }
        }
    };
    if n > 0 && n < 65536 {
        u16::try_from(n).map_err(|_| HandlerError::InvalidPort(n))
    } else {
        Err(HandlerError::InvalidPort(n))
    }
}

/// Go's `strconv.Atoi` for a 64-bit `int`: optional sign, decimal digits only.
fn go_atoi(s: &str) -> Result<i64, HandlerError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HandlerError::PortSyntax(s.to_string()));
    }
    s.trim_start_matches('+')
        .parse::<i64>()
        .map_err(|_| HandlerError::PortRange(s.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerPort, ExecAction, HTTPGetAction, TCPSocketAction};

    fn container() -> Container {
        Container {
            name: "app".into(),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn ports_resolve_like_the_kubelet() {
        let c = container();
        let s = |v: &str| IntOrString::String(v.into());
        assert_eq!(resolve_container_port(&IntOrString::Int(80), &c), Ok(80));
        assert_eq!(resolve_container_port(&s("http"), &c), Ok(8080));
        assert_eq!(resolve_container_port(&s("9090"), &c), Ok(9090));
        let e = resolve_container_port(&s("metrics"), &c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "strconv.Atoi: parsing \"metrics\": invalid syntax"
        );
        let e = resolve_container_port(&IntOrString::Int(0), &c).unwrap_err();
        assert_eq!(e.to_string(), "invalid port number: 0");
        let e = resolve_container_port(&IntOrString::Int(70000), &c).unwrap_err();
        assert_eq!(e.to_string(), "invalid port number: 70000");
        let e = resolve_container_port(&s("-1"), &c).unwrap_err();
        assert_eq!(e.to_string(), "invalid port number: -1");
        let e = resolve_container_port(&s("99999999999999999999"), &c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "strconv.Atoi: parsing \"99999999999999999999\": value out of range"
        );
    }

    #[test]
    fn defaults_apply_to_zero_and_absent_fields() {
        let probe = Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(80),
                ..Default::default()
            }),
            timeout_seconds: Some(0),
            ..Default::default()
        };
        let spec = ProbeSpec::new(ProbeType::Readiness, &probe, &container(), "p_ns(uid)");
        assert_eq!(spec.timeout, Duration::from_secs(1));
        assert_eq!(spec.period, Duration::from_secs(10));
        assert_eq!(spec.success_threshold, 1);
        assert_eq!(spec.failure_threshold, 3);
        assert_eq!(spec.initial_delay_seconds, 0);
    }

    #[test]
    fn handler_order_and_missing_handler() {
        let probe = Probe {
            exec: Some(ExecAction {
                command: Some(vec!["true".into()]),
            }),
            http_get: Some(HTTPGetAction {
                port: IntOrString::Int(80),
                ..Default::default()
            }),
            ..Default::default()
        };
        let h = Handler::new(&probe, &container(), "p_ns(uid)");
        assert!(matches!(h, Handler::Exec { .. }));
        let h = Handler::new(&Probe::default(), &container(), "p_ns(uid)");
        let Handler::Missing(e) = h else {
            panic!("expected missing handler")
        };
        assert_eq!(e.to_string(), "missing probe handler for p_ns(uid):app");
    }

    #[test]
    fn scheme_is_case_insensitive() {
        let probe = Probe {
            http_get: Some(HTTPGetAction {
                port: IntOrString::String("http".into()),
                scheme: Some("HTTPS".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let Handler::HttpGet(h) = Handler::new(&probe, &container(), "p") else {
            panic!("expected httpGet")
        };
        assert_eq!(h.scheme, Scheme::Https);
        assert_eq!(h.port, Ok(8080));
    }
}
