//! The four probe handlers and what they share: the `(result, output, error)` triple of the
//! kubelet's handlers, the TCP dialer with Go-shaped error texts, and [`run_handler`], which
//! dispatches a resolved [`Handler`].
//!
//! Read [`http`] for the most involved one (redirect rules, body limit, timeouts).

pub mod exec;
pub mod grpc;
pub mod host_exec;
pub mod http;
pub mod tcp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::error::HandlerError;
use crate::spec::Handler;
use crate::types::HandlerResult;
use gofmt::errno_text;

/// What one handler run produced, as the kubelet's handlers return `(result, output, err)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerOutput {
    /// The handler's verdict.
    pub result: HandlerResult,
    /// The output (response body, command output, error text of a failure).
    pub output: String,
    /// Set when the handler errored: the kubelet retries and then discards the result.
    pub error: Option<HandlerError>,
}

impl HandlerOutput {
    /// A result without error.
    pub fn new(result: HandlerResult, output: impl Into<String>) -> Self {
        Self {
            result,
            output: output.into(),
            error: None,
        }
    }

    /// An error with the given result (normally `Unknown`).
    pub fn error(result: HandlerResult, error: HandlerError) -> Self {
        Self {
            result,
            output: String::new(),
            error: Some(error),
        }
    }
}

/// What handlers need beyond the probe itself; shared by all probers of an agent.
#[derive(Clone)]
pub struct HandlerEnv {
    /// `User-Agent` of HTTP and gRPC probes (`kube-probe/<major>.<minor>`).
    pub user_agent: Arc<str>,
    /// TLS client configuration of HTTPS probes (no certificate verification).
    pub tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for HandlerEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandlerEnv")
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

/// The Kubernetes version whose prober this crate reproduces; the default user agent is
/// `kube-probe/1.35`.
pub const DEFAULT_USER_AGENT: &str = "kube-probe/1.35";

impl HandlerEnv {
    /// An environment with the given user agent and an accept-any TLS configuration.
    pub fn new(user_agent: &str) -> Result<Self, rustls::Error> {
        Ok(Self {
            user_agent: Arc::from(user_agent),
            tls: http::insecure_tls_config()?,
        })
    }
}

/// Runs `handler` once against a container whose pod has IP `pod_ip`.
pub async fn run_handler(
    env: &HandlerEnv,
    exec: &dyn exec::ExecRunner,
    handler: &Handler,
    pod_ip: &str,
    timeout: Duration,
) -> HandlerOutput {
    match handler {
        Handler::Exec { command } => exec::probe(exec, command, timeout).await,
        Handler::HttpGet(spec) => http::probe(env, spec, pod_ip, timeout).await,
        Handler::TcpSocket { host, port } => {
            let port = match port {
                Ok(p) => *p,
                Err(e) => return HandlerOutput::error(HandlerResult::Unknown, e.clone()),
            };
            let host = if host.is_empty() { pod_ip } else { host };
            tcp::probe(host, port, timeout).await
        }
        Handler::Grpc { port, service } => grpc::probe(env, pod_ip, *port, service, timeout).await,
        Handler::Missing(e) => HandlerOutput::error(HandlerResult::Unknown, e.clone()),
    }
}

/// Go's `net.JoinHostPort`.
pub fn join_host_port(host: &str, port: impl std::fmt::Display) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A failed dial, printed as Go's `*net.OpError`.
#[derive(Debug)]
pub(crate) enum DialError {
    /// The deadline passed.
    Timeout { addr: String },
    /// Name resolution failed.
    Lookup { host: String, msg: String },
    /// `connect(2)` failed.
    Connect { addr: String, err: std::io::Error },
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Timeout { addr } => write!(f, "dial tcp {addr}: i/o timeout"),
            DialError::Lookup { host, msg } => write!(f, "dial tcp: lookup {host}: {msg}"),
            DialError::Connect { addr, err } => {
                write!(f, "dial tcp {addr}: connect: {}", errno_text(err))
            }
        }
    }
}

/// Opens a fresh TCP connection to `host:port` before `deadline`. An empty host means the local
/// system, as Go's dialer treats `:port`.
pub(crate) async fn dial(host: &str, port: u16, deadline: Instant) -> Result<TcpStream, DialError> {
    let addr = join_host_port(host, port);
    let timeout = || DialError::Timeout { addr: addr.clone() };
    let candidates: Vec<SocketAddr> = if host.is_empty() {
        vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)]
    } else if let Ok(ip) = host.parse::<IpAddr>() {
        vec![SocketAddr::new(ip, port)]
    } else {
        let lookup = tokio::time::timeout_at(deadline, tokio::net::lookup_host((host, port)));
        match lookup.await {
            Err(_) => return Err(timeout()),
            Ok(Err(_)) => {
                return Err(DialError::Lookup {
                    host: host.to_string(),
                    msg: "no such host".to_string(),
                });
            }
            Ok(Ok(addrs)) => addrs.collect(),
        }
    };
    let mut last = None;
    for sa in candidates {
        match tokio::time::timeout_at(deadline, TcpStream::connect(sa)).await {
            Err(_) => return Err(timeout()),
            Ok(Ok(s)) => {
                let _ = s.set_nodelay(true);
                return Ok(s);
            }
            Ok(Err(err)) => {
                let addr = if host.is_empty() {
                    addr.clone()
                } else {
                    join_host_port(&sa.ip().to_string(), port)
                };
                last = Some(DialError::Connect { addr, err })
            }
        }
    }
    Err(last.unwrap_or(DialError::Lookup {
        host: host.to_string(),
        msg: "no such host".to_string(),
    }))
}
