//! The health check node port of LoadBalancer services with `externalTrafficPolicy: Local`,
//! served as kube-proxy serves it (`pkg/proxy/healthcheck/service_health.go`): on
//! `spec.healthCheckNodePort` of every address NodePorts listen on, any HTTP request is
//! answered 200 while this node has a ready endpoint of the service, 503 otherwise, with
//! kube-proxy's JSON body and `X-Load-Balancing-Endpoint-Weight` header. An external load
//! balancer uses it to send traffic only to nodes that serve it locally.
//!
//! Start at [`serve`] (run by [`Proxy::run`]); [`Proxy::set_health_check_port`] says which
//! services have a port, and the count is read from the proxy's endpoints per request.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::Proxy;

/// A request head larger than this is answered without reading further.
const REQUEST_LIMIT: usize = 16 * 1024;
/// A client that sends no complete request head within this is dropped.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Failed binds are retried this often.
const BIND_RETRY: Duration = Duration::from_secs(5);
/// Open connections per health check port: its clients are load balancers probing every few
/// seconds, one connection per probe (kube-proxy answers with `Connection: close`).
const MAX_CONNECTIONS: usize = 64;

type Key = (String, String);

/// kube-proxy's `LocalReadyEndpoints` for one service: distinct `ip:port` pairs of the
/// service's ports on endpoints of this node whose EndpointSlice says ready.
pub fn local_ready_endpoints(proxy: &Proxy, namespace: &str, name: &str) -> usize {
    let key = (namespace.to_string(), name.to_string());
    let sources = proxy.sources.lock();
    let Some(svc) = sources.services.get(&key) else {
        return 0;
    };
    let node = proxy.node.node_name.as_str();
    let mut seen = HashSet::new();
    for ep in sources.endpoints.get(&key).into_iter().flatten() {
        if !ep.ready || ep.node_name.as_deref() != Some(node) {
            continue;
        }
        for p in &svc.ports {
            if let Some(port) = ep.port(&p.name, p.protocol) {
                seen.insert((ep.ip, port));
            }
        }
    }
    seen.len()
}

/// The response kube-proxy's `hcHandler` writes for `count` local endpoints (the proxy
/// itself is always healthy here).
pub fn response(namespace: &str, name: &str, count: usize) -> String {
    let quote = |s: &str| serde_json::Value::from(s).to_string();
    let body = format!(
        "{{\n\t\"service\": {{\n\t\t\"namespace\": {},\n\t\t\"name\": {}\n\t}},\n\t\"localEndpoints\": {count},\n\t\"serviceProxyHealthy\": true\n}}",
        quote(namespace),
        quote(name)
    );
    let status = if count != 0 {
        "200 OK"
    } else {
        "503 Service Unavailable"
    };
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\nX-Load-Balancing-Endpoint-Weight: {count}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Keeps one listener per (node address, health check port) until `shutdown`.
pub(crate) async fn serve(proxy: Arc<Proxy>, shutdown: CancellationToken) {
    let mut changes = proxy.generation.subscribe();
    let mut open: HashMap<SocketAddr, (Key, CancellationToken)> = HashMap::new();
    loop {
        changes.mark_unchanged();
        let ips = proxy.node.external_ips();
        let wanted: HashMap<SocketAddr, Key> = proxy
            .health_checks
            .lock()
            .iter()
            .flat_map(|(key, port)| {
                ips.iter()
                    .map(move |ip| (SocketAddr::new(*ip, *port), key.clone()))
            })
            .collect();
        open.retain(|addr, (key, token)| {
            let keep = wanted.get(addr) == Some(key);
            if !keep {
                token.cancel();
            }
            keep
        });
        let mut failed = false;
        for (addr, key) in wanted {
            if open.contains_key(&addr) {
                continue;
            }
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    let token = shutdown.child_token();
                    tokio::spawn(accept(proxy.clone(), listener, key.clone(), token.clone()));
                    open.insert(addr, (key, token));
                }
                Err(e) => {
                    failed = true;
                    tracing::warn!(%addr, service = %format!("{}/{}", key.0, key.1), error = %e,
                        "cannot listen on the health check node port; retrying");
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = changes.changed() => if r.is_err() { break },
            _ = tokio::time::sleep(BIND_RETRY), if failed => {}
        }
    }
    for (_, token) in open.values() {
        token.cancel();
    }
}

/// The bounded accept loop ([`accept::Acceptor`]: a cap with the idlest connection closed to
/// make room, back-off on accept errors) of one health check port.
async fn accept(proxy: Arc<Proxy>, listener: TcpListener, key: Key, token: CancellationToken) {
    let mut acceptor = accept::Acceptor::new(listener, accept::fd_share(MAX_CONNECTIONS));
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            (stream, _) = acceptor.accept() => {
                tokio::spawn(answer(proxy.clone(), stream, key.clone()));
            }
        }
    }
}

/// Reads one request head (any method and path, as kube-proxy's handler) and answers it.
async fn answer(proxy: Arc<Proxy>, mut stream: accept::Tracked<TcpStream>, key: Key) {
    let mut head = Vec::new();
    let evicted = stream.evicted();
    let read = async {
        let mut buf = [0u8; 1024];
        while head.len() < REQUEST_LIMIT && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        true
    };
    let complete = tokio::select! {
        r = tokio::time::timeout(REQUEST_TIMEOUT, read) => matches!(r, Ok(true)),
        // At the cap, a client that has not sent its request yet makes room.
        _ = evicted => false,
    };
    if !complete {
        return;
    }
    let count = local_ready_endpoints(&proxy, &key.0, &key.1);
    let reply = response(&key.0, &key.1, count);
    if let Err(e) = stream.write_all(reply.as_bytes()).await {
        tracing::debug!(error = %e, "health check reply not sent");
    }
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests;
