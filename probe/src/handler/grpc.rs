//! `grpc`: the standard health protocol, `grpc.health.v1.Health/Check` [pkg/probe/grpc/grpc.go].
//!
//! Plaintext HTTP/2 to `<pod IP>:<port>` with the optional service name, user agent
//! `kube-probe/<major>.<minor>`, dial and RPC under one deadline of `timeoutSeconds`. Never an
//! error: every problem is a failure with the kubelet's exact output. Like grpc-go's blocking
//! dial, a connection that cannot be made is retried (about once a second) until the deadline,
//! so a wrong port reads `timeout: failed to connect service "<addr>" within <timeout>: context
//! deadline exceeded` after the full timeout.

use std::time::Duration;

use http::header::{HeaderValue, USER_AGENT};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::time::{Instant, sleep_until, timeout_at};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::{HandlerEnv, HandlerOutput, dial, join_host_port};
use crate::types::HandlerResult;
use gofmt::{duration, quote};

/// grpc-go's initial reconnect back-off.
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

/// Aborts the spawned HTTP/2 connection task when the probe is done.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

type Sender = hyper::client::conn::http2::SendRequest<tonic::body::Body>;

async fn connect(host: &str, port: i32, deadline: Instant) -> Option<(Sender, AbortOnDrop)> {
    let port = u16::try_from(port).ok().filter(|p| *p > 0)?;
    let tcp = dial(host, port, deadline).await.ok()?;
    let handshake = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake::<_, tonic::body::Body>(TokioIo::new(tcp));
    let (sender, conn) = timeout_at(deadline, handshake).await.ok()?.ok()?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    Some((sender, AbortOnDrop(task)))
}

/// Go's name for a gRPC status code (`NotFound`, `Unavailable`, …).
fn code_name(code: tonic::Code) -> String {
    format!("{code:?}")
}

/// Probes the gRPC health service of the pod at `host` (the pod IP).
pub async fn probe(
    env: &HandlerEnv,
    host: &str,
    port: i32,
    service: &str,
    timeout: Duration,
) -> HandlerOutput {
    let addr = join_host_port(host, port);
    let deadline = Instant::now() + timeout;
    let within = duration(timeout);
    let fail = |msg: String| HandlerOutput::new(HandlerResult::Failure, msg);
    let connect_timeout = || {
        fail(format!(
            "timeout: failed to connect service {} within {within}: context deadline exceeded",
            quote(&addr)
        ))
    };
    let origin: http::Uri = match format!("http://{addr}").parse() {
        Ok(u) => u,
        Err(e) => {
            return fail(format!(
                "error: failed to connect service at {}: {e}",
                quote(&addr)
            ));
        }
    };
    let ua = HeaderValue::from_str(&format!("{} tonic", env.user_agent))
        .unwrap_or_else(|_| HeaderValue::from_static("kube-probe"));
    loop {
        if Instant::now() >= deadline {
            return connect_timeout();
        }
        let attempt_started = Instant::now();
        let Some((sender, _conn)) = connect(host, port, deadline).await else {
            sleep_until(deadline.min(attempt_started + RECONNECT_BACKOFF)).await;
            continue;
        };
        let ua = ua.clone();
        let svc = tower::service_fn(move |mut req: http::Request<tonic::body::Body>| {
            let mut sender = sender.clone();
            req.headers_mut().insert(USER_AGENT, ua.clone());
            async move { sender.send_request(req).await }
        });
        let mut client = HealthClient::with_origin(svc, origin.clone());
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: service.to_string(),
        });
        request.set_timeout(deadline.saturating_duration_since(Instant::now()));
        let status = match timeout_at(deadline, client.check(request)).await {
            Err(_) => {
                return fail(format!(
                    "timeout: health rpc did not complete within {within}"
                ));
            }
            Ok(Ok(resp)) => resp.into_inner().status,
            Ok(Err(st)) => {
                if std::error::Error::source(&st).is_some() {
                    // The connection broke before an answer (not a gRPC server, reset, …):
                    // grpc-go would still be dialing; retry until the deadline.
                    sleep_until(deadline.min(attempt_started + RECONNECT_BACKOFF)).await;
                    continue;
                }
                return match st.code() {
                    tonic::Code::Unimplemented => fail(format!(
                        "error: this server does not implement the grpc health protocol (grpc.health.v1.Health): {}",
                        st.message()
                    )),
                    tonic::Code::DeadlineExceeded => fail(format!(
                        "timeout: health rpc did not complete within {within}"
                    )),
                    code => fail(format!(
                        "error: health rpc probe failed: rpc error: code = {} desc = {}",
                        code_name(code),
                        st.message()
                    )),
                };
            }
        };
        return match ServingStatus::try_from(status) {
            Ok(ServingStatus::Serving) => {
                HandlerOutput::new(HandlerResult::Success, "service healthy")
            }
            Ok(other) => fail(format!(
                "service unhealthy (responded with {})",
                quote(other.as_str_name())
            )),
            Err(_) => fail(format!(
                "service unhealthy (responded with {})",
                quote(&status.to_string())
            )),
        };
    }
}
