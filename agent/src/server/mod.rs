//! The agent's own HTTP API, shaped like the kubelet's, which the API server proxies
//! `pods/{name}/log` and `pods/{name}/exec` to. The agent publishes its port in the Node's
//! `status.daemonEndpoints.kubeletEndpoint.Port` and its address in `status.addresses`
//! (`InternalIP`).
//!
//! # Protocol
//! HTTPS when the agent is given a TLS configuration, else plain HTTP/1.1 (paddock's `up`
//! runs it on loopback); when a token is configured every request needs
//! `Authorization: Bearer <token>` (else `401`).
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
//! Errors are `Status` JSON bodies with the API server's messages (`container "c" in pod "p"
//! is waiting to start: ContainerCreating`, 400; unknown pod, 404).

// Handlers return ready-made error responses; boxing them buys nothing.
#![allow(clippy::result_large_err)]

pub mod exec;
pub mod logs;

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

use crate::pod::worker::{ContainerEntry, Directory, PodEntry};
use crate::runtime::{ContainerId, Runtime};

/// What the handlers need.
#[derive(Clone)]
pub struct ServerState {
    /// The runtime (log paths, exec).
    pub runtime: Arc<dyn Runtime>,
    /// Pods and their containers.
    pub directory: Arc<Directory>,
    /// Required bearer token, if any.
    pub token: Option<String>,
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
        .route("/healthz", get(|| async { "ok" }))
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .with_state(state)
}

async fn auth(State(s): State<ServerState>, req: Request, next: Next) -> Response {
    if let Some(token) = &s.token {
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t == token);
        if !ok {
            return status_error(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
        }
    }
    next.run(req).await
}

/// Cap on the agent API's open connections (bounded by the descriptor limit, see
/// [`accept::fd_share`]): its client is the API server, one connection per `logs`, `exec`,
/// `attach` or `port-forward` in progress on this node.
pub const MAX_CONNECTIONS: usize = 512;

/// Serves the router on `listener` until `stop`: HTTPS when `tls` is given, else plain HTTP,
/// on [`accept::serve`] (connection cap, handshake/header/idle timeouts, drain).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ServerState,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: CancellationToken,
) {
    let limits = accept::Limits {
        // `logs -f` streams do not end when the agent stops (its containers stop after it):
        // a short drain keeps a stopping agent from waiting on them.
        drain_timeout: Duration::from_secs(1),
        ..accept::Limits::new(accept::fd_share(MAX_CONNECTIONS))
    };
    accept::serve(listener, tls, router(state), limits, stop.cancelled_owned()).await;
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
    let (path, id): (std::path::PathBuf, Option<ContainerId>) = if previous {
        match &c.previous {
            Some((_, rc)) => (
                s.runtime.instance_log_path(&entry.uid, &container, *rc),
                None,
            ),
            None => {
                return bad_request(&format!(
                    "previous terminated container {container:?} in pod {pod:?} not found"
                ));
            }
        }
    } else {
        match &c.current {
            Some((id, _, _)) => (s.runtime.log_path(id), Some(id.clone())),
            None => {
                return bad_request(&format!(
                    "container {container:?} in pod {pod:?} is waiting to start: {}",
                    c.waiting.as_deref().unwrap_or("ContainerCreating")
                ));
            }
        }
    };
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
