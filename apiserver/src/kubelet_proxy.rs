//! The default [`crate::PodStreams`]: like upstream's pod `LogREST`/`ExecREST`/
//! `AttachREST`/`PortForwardREST`, the API server proxies `pods/{name}/log`, `exec`, `attach`
//! and `portforward` to the node agent that runs the pod. The agent's address is the
//! Node's `InternalIP` and its port `status.daemonEndpoints.kubeletEndpoint.Port`; its API is
//! `GET /containerLogs/{ns}/{pod}/{container}`, `GET /exec|attach/{ns}/{pod}/{container}` and
//! `GET|POST /portForward/{ns}/{pod}` (upgrades, forwarded byte
//! for byte). The container defaults as upstream: the only one, or the
//! `kubectl.kubernetes.io/default-container` annotation.
//!
//! `nodes/{name}/proxy/{path}` goes the same way to the agent's `path` ([`KubeletProxy::proxy_node`]).
//!
//! The connection is TLS, and nothing is sent before the agent proved itself: its certificate
//! must chain to the cluster CA and be valid for the address dialled (a Node object can name
//! any address). The API server authenticates with its client certificate
//! (`apiserver-kubelet-client`), never with a token.

use std::sync::Arc;
use std::time::Duration;

use api::status::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::params::{Query, parse_bool};
use crate::registry::Registry;
use crate::response::error_response;

/// How long connecting to an agent may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the TLS handshake with an agent may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Query parameters the agent reads as booleans (normalized from Go spellings).
const BOOL_PARAMS: [&str; 7] = [
    "follow",
    "timestamps",
    "previous",
    "stdin",
    "stdout",
    "stderr",
    "tty",
];

/// Proxies to node agents over TLS ([`crate::tls::Credentials::kubelet_client_config`]).
#[derive(Debug, Clone)]
pub struct KubeletProxy {
    /// Trusts the cluster CA and presents the API server's client certificate; `None` (a
    /// router without credentials): every request that would reach an agent is refused.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

fn containers(pod: &Value) -> Vec<String> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn all_containers(pod: &Value) -> Vec<String> {
    ["initContainers", "containers", "ephemeralContainers"]
        .iter()
        .flat_map(|f| {
            pod.pointer(&format!("/spec/{f}"))
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The container a request means (upstream `podutil` defaulting and messages).
fn pick_container(pod: &Value, name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    if let Some(c) = requested.filter(|c| !c.is_empty()) {
        if all_containers(pod).iter().any(|n| n == c) {
            return Ok(c.to_string());
        }
        return Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        )));
    }
    if let Some(d) = pod
        .pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container")
        .and_then(Value::as_str)
        && containers(pod).iter().any(|n| n == d)
    {
        return Ok(d.to_string());
    }
    let cs = containers(pod);
    match cs.as_slice() {
        [only] => Ok(only.clone()),
        [] => Err(ApiError::bad_request(format!(
            "pod {name} has no containers"
        ))),
        many => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            many.join(" ")
        ))),
    }
}

/// The agent address (host, port) of the node running `pod`.
fn agent_address(registry: &Registry, pod: &Value, name: &str) -> Result<(String, u16), ApiError> {
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    node_agent_address(registry, node_name)
}

/// The agent address (host, port) of node `node_name`: its first `InternalIP` (else
/// `ExternalIP`, else `Hostname`) and `status.daemonEndpoints.kubeletEndpoint.Port`.
fn node_agent_address(registry: &Registry, node_name: &str) -> Result<(String, u16), ApiError> {
    let nodes = api::registry::lookup("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let node = registry.get(nodes, "", node_name)?;
    let addresses = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ip = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|t| {
            addresses
                .iter()
                .find(|a| a.get("type").and_then(Value::as_str) == Some(t))
                .and_then(|a| a.get("address").and_then(Value::as_str))
        })
        .ok_or_else(|| {
            ApiError::service_unavailable(format!("node {node_name:?} reports no address"))
        })?;
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_i64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(10250);
    Ok((ip.to_string(), port))
}

/// `host:port`, bracketing an IPv6 address.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The agent-side path and query of a request.
fn agent_target(
    sub: &str,
    ns: &str,
    name: &str,
    container: &str,
    q: &Query,
) -> Result<String, ApiError> {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    if sub == "portforward" {
        // The kubelet's `/portForward/{ns}/{pod}`: SPDY clients name the ports in their
        // stream headers; WebSocket clients in `ports`, which reaches the kubelet as one
        // `port` parameter each (upstream's `PortForwardLocation`).
        let mut path = format!("/portForward/{}/{}", enc(ns), enc(name));
        let mut sep = '?';
        for (k, v) in q.pairs() {
            if k != "ports" {
                continue;
            }
            for p in v.split(',') {
                let port: u16 = p.trim().parse().map_err(|_| {
                    ApiError::bad_request(format!("unable to parse {p:?} as a port"))
                })?;
                path.push_str(&format!("{sep}port={port}"));
                sep = '&';
            }
        }
        return Ok(path);
    }
    let base = match sub {
        "log" => "containerLogs",
        "exec" => "exec",
        "attach" => "attach",
        other => {
            return Err(ApiError::bad_request(format!(
                "pods/{other} is not supported by this server"
            )));
        }
    };
    let mut query = Vec::new();
    for (k, v) in q.pairs() {
        if k == "container" {
            continue;
        }
        let v = if BOOL_PARAMS.contains(&k.as_str()) {
            match parse_bool(v) {
                Some(b) => b.to_string(),
                None => v.clone(),
            }
        } else {
            v.clone()
        };
        query.push(format!("{}={}", enc(k), enc(&v)));
    }
    let mut path = format!("/{base}/{}/{}/{}", enc(ns), enc(name), enc(container));
    if !query.is_empty() {
        path.push('?');
        path.push_str(&query.join("&"));
    }
    Ok(path)
}

impl KubeletProxy {
    /// Proxies `req` for `pod`'s `sub` subresource.
    pub async fn proxy(
        &self,
        registry: Registry,
        pod: &Value,
        sub: &str,
        req: Request,
    ) -> Response {
        match self.try_proxy(registry, pod, sub, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    }

    async fn try_proxy(
        &self,
        registry: Registry,
        pod: &Value,
        sub: &str,
        req: Request,
    ) -> Result<Response, ApiError> {
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let ns = pod
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        let q = Query::parse(req.uri().query());
        // Port forwarding is to the pod, not to one of its containers.
        let container = if sub == "portforward" {
            String::new()
        } else {
            pick_container(pod, name, q.get("container"))?
        };
        let target = agent_target(sub, ns, name, &container, &q)?;
        let (host, port) = agent_address(&registry, pod, name)?;
        self.forward(&host, port, &target, req).await
    }

    /// `nodes/{name}/proxy/{path}`: the request goes to the node agent's `path` (with the
    /// query as sent), as upstream's `NodeREST` proxies to the kubelet: `/metrics`,
    /// `/metrics/probes`, `/healthz`, and the streaming endpoints.
    pub async fn proxy_node(
        &self,
        registry: Registry,
        node: &str,
        path: &str,
        req: Request,
    ) -> Response {
        let target = match req.uri().query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
        let result = match node_agent_address(&registry, node) {
            Ok((host, port)) => self.forward(&host, port, &target, req).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(r) => r,
            Err(e) => error_response(&e),
        }
    }

    /// `GET path` on node `node`'s agent, its body read up to `limit` bytes (what the
    /// resource metrics scraper reads: `/metrics/resource`). A status other than 200 is an
    /// error naming it.
    pub async fn fetch_node(
        &self,
        registry: &Registry,
        node: &str,
        path: &str,
        limit: usize,
    ) -> Result<bytes::Bytes, ApiError> {
        use http_body_util::BodyExt as _;
        let (host, port) = node_agent_address(registry, node)?;
        let req = Request::new(Body::empty());
        let resp = self.forward(&host, port, path, req).await?;
        if resp.status() != StatusCode::OK {
            return Err(ApiError::service_unavailable(format!(
                "node {node:?} answered {path} with {}",
                resp.status()
            )));
        }
        let body = http_body_util::Limited::new(resp.into_body(), limit)
            .collect()
            .await
            .map_err(|e| {
                ApiError::service_unavailable(format!("reading {path} from node {node:?}: {e}"))
            })?;
        Ok(body.to_bytes())
    }

    /// Sends `req` to `target` on the agent at `host:port` over TLS and relays the answer (or
    /// the upgraded connection).
    async fn forward(
        &self,
        host: &str,
        port: u16,
        target: &str,
        mut req: Request,
    ) -> Result<Response, ApiError> {
        let host = host.to_string();
        let addr = host_port(&host, port);
        let Some(tls) = &self.tls else {
            return Err(ApiError::service_unavailable(
                "this server has no credentials for node agents",
            ));
        };
        // The agent must prove it is the node at that address before anything is sent.
        let server_name = rustls_pki_types::ServerName::try_from(host.clone()).map_err(|_| {
            ApiError::service_unavailable(format!("node agent address {host:?} is not valid"))
        })?;
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&addr))
            .await
            .map_err(|_| {
                ApiError::service_unavailable(format!(
                    "connecting to the node agent at {addr} timed out"
                ))
            })?
            .map_err(|e| {
                ApiError::service_unavailable(format!(
                    "connecting to the node agent at {addr}: {e}"
                ))
            })?;
        // Interactive streams (exec, attach, port-forward) must not wait out Nagle's delay.
        let _ = tcp.set_nodelay(true);
        let tls = tokio_rustls::TlsConnector::from(tls.clone());
        let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.connect(server_name, tcp))
            .await
            .map_err(|_| {
                ApiError::service_unavailable(format!(
                    "TLS handshake with the node agent at {addr} timed out"
                ))
            })?
            .map_err(|e| {
                ApiError::service_unavailable(format!("node agent at {addr}: tls: {e}"))
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| ApiError::service_unavailable(format!("node agent at {addr}: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        // A SPDY upgrade for port forwarding is a POST; everything else a GET.
        let method = if req.method() == http::Method::POST {
            http::Method::POST
        } else {
            http::Method::GET
        };
        let mut out = http::Request::builder().method(method).uri(target);
        for (k, v) in req.headers() {
            if k == header::HOST || k == header::AUTHORIZATION || k == header::CONTENT_LENGTH {
                continue;
            }
            out = out.header(k, v);
        }
        out = out.header(header::HOST, addr.as_str());
        let out = out
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(ApiError::internal)?;
        let resp = sender
            .send_request(out)
            .await
            .map_err(|e| ApiError::service_unavailable(format!("node agent at {addr}: {e}")))?;
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let headers = resp.headers().clone();
            let client_side = hyper::upgrade::on(&mut req);
            let agent_side = hyper::upgrade::on(resp);
            tokio::spawn(async move {
                let (Ok(client), Ok(agent)) = (client_side.await, agent_side.await) else {
                    tracing::debug!("exec upgrade failed on one side");
                    return;
                };
                let mut client = TokioIo::new(client);
                let mut agent = TokioIo::new(agent);
                // Larger buffers than the default 8 KiB: port-forward moves bulk data here.
                let _ = tokio::io::copy_bidirectional_with_sizes(
                    &mut client,
                    &mut agent,
                    64 * 1024,
                    64 * 1024,
                )
                .await;
            });
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            for (k, v) in &headers {
                r.headers_mut().append(k, v.clone());
            }
            return Ok(r);
        }
        let (parts, body) = resp.into_parts();
        let mut r = Response::new(Body::new(body));
        *r.status_mut() = parts.status;
        for (k, v) in &parts.headers {
            if k == header::TRANSFER_ENCODING || k == header::CONNECTION {
                continue;
            }
            r.headers_mut().append(k, v.clone());
        }
        if !r.headers().contains_key(header::CONTENT_TYPE) {
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn container_defaulting() {
        let one = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(pick_container(&one, "p", None).unwrap(), "a");
        let two = json!({"metadata": {}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let e = pick_container(&two, "p", None).unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert_eq!(pick_container(&two, "p", Some("b")).unwrap(), "b");
        assert!(pick_container(&two, "p", Some("c")).is_err());
        let annotated = json!({"metadata": {"annotations": {"kubectl.kubernetes.io/default-container": "b"}},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(pick_container(&annotated, "p", None).unwrap(), "b");
    }

    #[test]
    fn targets_normalize_bools() {
        let q = Query::parse(Some(
            "container=c&follow=True&tailLines=5&command=echo&command=hi%20there",
        ));
        let t = agent_target("log", "ns", "p", "c", &q).unwrap();
        assert_eq!(
            t,
            "/containerLogs/ns/p/c?follow=true&tailLines=5&command=echo&command=hi%20there"
        );
        assert_eq!(
            agent_target("portforward", "ns", "p", "", &q).unwrap(),
            "/portForward/ns/p"
        );
        let ports = Query::parse(Some("ports=8080,9090&ports=80"));
        assert_eq!(
            agent_target("portforward", "ns", "p", "", &ports).unwrap(),
            "/portForward/ns/p?port=8080&port=9090&port=80"
        );
        assert!(
            agent_target("portforward", "ns", "p", "", &Query::parse(Some("ports=x"))).is_err()
        );
        assert_eq!(
            agent_target(
                "attach",
                "ns",
                "p",
                "c",
                &Query::parse(Some("stdin=1&stdout=1"))
            )
            .unwrap(),
            "/attach/ns/p/c?stdin=true&stdout=true"
        );
        assert!(agent_target("binding", "ns", "p", "c", &q).is_err());
    }
}
