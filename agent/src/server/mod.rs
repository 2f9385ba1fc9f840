//! The agent's own HTTP API, shaped like the kubelet's, which the API server proxies
//! `pods/{name}/log`, `exec`, `attach` and `portforward` to. The agent
//! publishes its port in the Node's `status.daemonEndpoints.kubeletEndpoint.Port` and its
//! address in `status.addresses` (`InternalIP`).
//!
//! # Protocol
//! HTTPS only, with the serving certificate the cluster CA issued ([`crate::certificate`]).
//! Every request must authenticate, with one of (never neither; [`tls_config`] and the agent's
//! start refuse a configuration that would let anyone in):
//! - a client certificate chained to the cluster CA whose subject is in group
//!   `system:masters` — the API server's `apiserver-kubelet-client`; any other verified
//!   certificate is `403 Forbidden (user=…, verb=…, resource=nodes, subresource=proxy)`,
//!   as a kubelet's authorizer answers;
//! - `Authorization: Bearer <token>` with the agent's own token.
//!
//! Anything else is `401`.
//!
//! - `GET /containerLogs/{namespace}/{pod}/{container}` with the query parameters of the API
//!   (`follow`, `tailLines`, `timestamps`, `previous`, `sinceSeconds`, `sinceTime` (RFC 3339),
//!   `limitBytes`) → `200 text/plain`, the log bytes exactly as `kubectl logs` prints them;
//!   chunked and kept open with `follow=true` until the container instance exits.
//! - `GET /exec/{namespace}/{pod}/{container}?command=…&command=…&stdin=…&stdout=…&stderr=…&tty=…`
//!   as a WebSocket upgrade offering `v5.channel.k8s.io` and/or `v4.channel.k8s.io` in
//!   `Sec-WebSocket-Protocol` (the chosen one is echoed). Binary messages, first byte the
//!   channel: 0 stdin (client → agent), 1 stdout, 2 stderr, 3 status (one JSON `Status`, then
//!   the agent closes), 4 resize (`{"Width":W,"Height":H}`), 255 close (v5 only: `[255, 0]`
//!   closes stdin). The status is `{"metadata":{},"status":"Success"}` on exit 0, else
//!   `status: Failure, reason: NonZeroExitCode, message: "command terminated with non-zero
//!   exit code: …", details: {causes: [{reason: ExitCode, message: "<code>"}]}`. A proxy can
//!   forward the upgrade byte for byte.
//!
//! - `GET /attach/{namespace}/{pod}/{container}?stdin=…&stdout=…&stderr=…&tty=…`: the running
//!   container's output and stdin over the same WebSocket framing as exec ([`attach`]).
//! - `GET|POST /portForward/{namespace}/{pod}`: `kubectl port-forward`, the kubelet's
//!   `portforward.k8s.io` protocol over SPDY/3.1, upgraded from a WebSocket
//!   (`SPDY/3.1+portforward.k8s.io`) or with `Upgrade: SPDY/3.1` ([`portforward`]).
//! - `GET /pods`: a `v1` PodList of the pods the agent runs, with the status it computed;
//!   `GET /configz`: `{"kubeletconfig": {…}}`, its settings in the kubelet's configuration
//!   fields ([`crate::configz`]); `/healthz`, `/metrics`, `/metrics/probes`, `/metrics/resource`.
//!
//! Errors are `Status` JSON bodies with the API server's messages (`container "c" in pod "p"
//! is waiting to start: ContainerCreating`, 400; unknown pod, 404).

// Handlers return ready-made error responses; boxing them buys nothing.
#![allow(clippy::result_large_err)]

pub mod attach;
pub mod exec;
pub mod logs;
pub mod portforward;
pub mod portforward_ws;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::pod::directory::{ContainerEntry, Directory, PodEntry};
use crate::runtime::{ContainerId, Runtime};

/// What the handlers need.
#[derive(Clone)]
pub struct ServerState {
    /// The runtime (log paths, exec).
    pub runtime: Arc<dyn Runtime>,
    /// Pods and their containers.
    pub directory: Arc<Directory>,
    /// The bearer token accepted besides client certificates, if any.
    pub token: Option<String>,
    /// The node's metrics (`/metrics`, `/metrics/probes`).
    pub metrics: Arc<crate::metrics::AgentMetrics>,
    /// `/configz`'s body: the agent's settings in the kubelet's configuration fields.
    pub configz: Arc<serde_json::Value>,
}

/// The group whose client certificates may use the agent API (kubeadm's
/// `apiserver-kubelet-client` is in it).
pub const CLIENT_GROUP: &str = "system:masters";

/// Who a connection's verified client certificate says it is (CN and O).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The subject's common name.
    pub user: String,
    /// The subject's organizations.
    pub groups: Vec<String>,
}

impl Peer {
    /// The identity in a verified client certificate (`None` for an unreadable one).
    pub fn of(cert: &[u8]) -> Option<Peer> {
        let (_, x) = x509_parser::parse_x509_certificate(cert).ok()?;
        let strings =
            |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>| {
                it.filter_map(|a| a.as_str().ok().map(str::to_string))
                    .collect::<Vec<_>>()
            };
        Some(Peer {
            user: strings(&mut x.subject().iter_common_name())
                .into_iter()
                .next()
                .unwrap_or_default(),
            groups: strings(&mut x.subject().iter_organization()),
        })
    }
}

/// Why the agent API cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Neither a token nor a client CA: anyone could run commands as root.
    #[error(
        "refusing to serve the agent API without authentication: give it a bearer token or the cluster CA to verify the API server's client certificate"
    )]
    NoAuthentication,
    /// rustls refused the configuration.
    #[error("agent API TLS: {0}")]
    Tls(String),
}

/// The agent API's TLS: the serving certificate from `cert` and, with `client_ca`, a verifier
/// accepting (not requiring: a bearer token may be used instead) client certificates chained to
/// it. Refuses to build without `client_ca` unless `has_token`.
pub fn tls_config(
    cert: Arc<dyn rustls::server::ResolvesServerCert>,
    client_ca: Option<&[rustls::pki_types::CertificateDer<'static>]>,
    has_token: bool,
) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = |e: &dyn std::fmt::Display| ServeError::Tls(e.to_string());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?;
    let builder = match client_ca {
        Some(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for r in roots {
                store.add(r.clone()).map_err(|e| tls(&e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(store),
                provider,
            )
            .allow_unauthenticated()
            .build()
            .map_err(|e| tls(&e))?;
            builder.with_client_cert_verifier(verifier)
        }
        None if has_token => builder.with_no_client_auth(),
        None => return Err(ServeError::NoAuthentication),
    };
    let mut cfg = builder.with_cert_resolver(cert);
    // Exec upgrades need HTTP/1.1.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A `Status` error response.
pub(crate) fn status_error(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn bad_request(message: &str) -> Response {
    status_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

/// The agent API router.
pub fn router(state: ServerState) -> Router {
    Router::new()
        .route("/containerLogs/{ns}/{pod}/{container}", get(container_logs))
        .route("/exec/{ns}/{pod}/{container}", get(exec::handler))
        .route("/attach/{ns}/{pod}/{container}", get(attach::handler))
        .route(
            "/portForward/{ns}/{pod}",
            get(portforward::handler).post(portforward::handler),
        )
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics_main))
        .route("/metrics/probes", get(metrics_probes))
        .route("/metrics/resource", get(metrics_resource))
        .route("/pods", get(pods))
        .route("/configz", get(configz))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

/// `/metrics`: the kubelet's pod and container counts.
async fn metrics_main(State(s): State<ServerState>) -> Response {
    let text = s.metrics.encode_main(&s.directory);
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

/// `/metrics/resource`: the node's, pods' and containers' CPU and memory, read from their
/// cgroups on the blocking pool.
async fn metrics_resource(State(s): State<ServerState>) -> Response {
    let layout = s.runtime.cgroups();
    let pods = s.directory.entries();
    let snap =
        tokio::task::spawn_blocking(move || crate::resource_stats::collect(layout.as_ref(), &pods))
            .await
            .unwrap_or_else(|_| crate::resource_stats::Snapshot {
                error: true,
                ..Default::default()
            });
    (
        [(header::CONTENT_TYPE, crate::resource_stats::CONTENT_TYPE)],
        snap.encode(),
    )
        .into_response()
}

/// `/pods`: the kubelet's list of the pods it runs, with the status it computed
/// (`kubectl get --raw /api/v1/nodes/NODE/proxy/pods`); encoded off the async threads.
async fn pods(State(s): State<ServerState>) -> Response {
    let dir = s.directory.clone();
    match tokio::task::spawn_blocking(move || serde_json::to_vec(&dir.pod_list())).await {
        Ok(Ok(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        _ => status_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "cannot encode the pod list",
        ),
    }
}

/// `/configz`: `{"kubeletconfig": {…}}`, as the kubelet's configz handler serves it.
async fn configz(State(s): State<ServerState>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        s.configz.to_string(),
    )
        .into_response()
}

/// `/metrics/probes`: the kubelet's prober families.
async fn metrics_probes(State(s): State<ServerState>) -> Response {
    let text = s.metrics.encode_probes();
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Authentication, then the kubelet's authorization for who got in by certificate: only the
/// API server's group may proxy.
async fn auth(State(s): State<ServerState>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<accept::ConnInfo>()
        .and_then(|c| c.peer_certificates.as_ref())
        .and_then(|chain| chain.first())
        .and_then(|cert| Peer::of(cert));
    if let Some(peer) = peer {
        if peer.groups.iter().any(|g| g == CLIENT_GROUP) {
            return next.run(req).await;
        }
        let verb = if req.method() == axum::http::Method::POST {
            "create"
        } else {
            "get"
        };
        let msg = format!(
            "Forbidden (user={}, verb={verb}, resource=nodes, subresource=proxy)",
            peer.user
        );
        return status_error(StatusCode::FORBIDDEN, "Forbidden", &msg);
    }
    let ok = s.token.as_ref().is_some_and(|token| {
        req.headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| constant_time_eq(t.as_bytes(), token.as_bytes()))
    });
    if !ok {
        return status_error(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    next.run(req).await
}

/// Cap on the agent API's open connections (bounded by the descriptor limit, see
/// [`accept::fd_share`]): its client is the API server, one connection per `logs`, `exec`,
/// `attach` or `port-forward` in progress on this node.
pub const MAX_CONNECTIONS: usize = 512;

/// Serves the router over TLS on `listener` until `stop`, on [`accept::serve`] (connection
/// cap, handshake/header/idle timeouts, drain); a request's [`accept::ConnInfo`] carries the
/// client certificate [`auth`] checks.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ServerState,
    tls: Arc<rustls::ServerConfig>,
    stop: CancellationToken,
) {
    let limits = accept::Limits {
        // `logs -f` streams do not end when the agent stops (its containers stop after it):
        // a short drain keeps a stopping agent from waiting on them.
        drain_timeout: Duration::from_secs(1),
        ..accept::Limits::new(accept::fd_share(MAX_CONNECTIONS))
    };
    accept::serve(
        listener,
        Some(tls),
        router(state),
        limits,
        stop.cancelled_owned(),
    )
    .await;
}

/// Finds a container of a pod, with the API server's error texts.
pub(crate) fn find_container(
    dir: &Directory,
    ns: &str,
    pod: &str,
    container: &str,
) -> Result<(PodEntry, ContainerEntry), Response> {
    let Some(entry) = dir.get(ns, pod) else {
        return Err(status_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pod {pod:?} not found on this node"),
        ));
    };
    let Some((_, c)) = entry.containers.iter().find(|(n, _)| n == container) else {
        return Err(bad_request(&format!(
            "container {container} is not valid for pod {pod}"
        )));
    };
    let c = c.clone();
    Ok((entry, c))
}

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| v == "true" || v == "1")
}

async fn container_logs(
    State(s): State<ServerState>,
    Path((ns, pod, container)): Path<(String, String, String)>,
    Query(q): Query<Vec<(String, String)>>,
    _headers: HeaderMap,
) -> Response {
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let (entry, c) = match find_container(&s.directory, &ns, &pod, &container) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let int = |k: &str| -> Result<Option<i64>, Response> {
        match get(k) {
            None => Ok(None),
            Some(v) => v
                .parse::<i64>()
                .map(Some)
                .map_err(|_| bad_request(&format!("invalid {k}: {v:?}"))),
        }
    };
    let tail_lines = match int("tailLines") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let limit_bytes = match int("limitBytes") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let since_seconds = match int("sinceSeconds") {
        Ok(v) => v,
        Err(r) => return r,
    };
    let since = match (since_seconds, get("sinceTime")) {
        (Some(s), _) => Timestamp::now()
            .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(s))
            .ok(),
        (None, Some(t)) => match t.parse::<Timestamp>() {
            Ok(t) => Some(t),
            Err(_) => return bad_request(&format!("invalid sinceTime: {t:?}")),
        },
        _ => None,
    };
    let previous = truthy(get("previous").as_ref());
    let opts = logs::LogOptions {
        follow: truthy(get("follow").as_ref()) && !previous,
        tail_lines,
        timestamps: truthy(get("timestamps").as_ref()),
        since,
        limit_bytes,
    };
    // The instance's file by its restart count: it stays after the container is gone, until
    // the pod is deleted (or two newer instances started), as the kubelet keeps dead
    // containers' logs.
    let (rc, id): (i32, Option<ContainerId>) = if previous {
        match &c.previous {
            Some((_, rc)) => (*rc, None),
            None => {
                return bad_request(&format!(
                    "previous terminated container {container:?} in pod {pod:?} not found"
                ));
            }
        }
    } else {
        match &c.current {
            Some((id, rc, _)) => (*rc, Some(id.clone())),
            None => {
                return bad_request(&format!(
                    "container {container:?} in pod {pod:?} is waiting to start: {}",
                    c.waiting.as_deref().unwrap_or("ContainerCreating")
                ));
            }
        }
    };
    let path = s.runtime.instance_log_path(&entry.uid, &container, rc);
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let dir = s.directory.clone();
    let running = move || {
        let Some(id) = &id else { return false };
        dir.get(&ns, &pod)
            .and_then(|e| {
                e.containers
                    .into_iter()
                    .find(|(n, _)| *n == container)
                    .and_then(|(_, c)| c.current)
            })
            .is_some_and(|(cur, _, running)| &cur == id && running)
    };
    tokio::spawn(logs::stream(path, opts, tx, running));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<Bytes, std::io::Error>(b), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Kept for the exec module: how long a finished exec waits for the client to read.
pub(crate) const CLOSE_GRACE: Duration = Duration::from_secs(1);
