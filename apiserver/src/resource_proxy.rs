//! `services/{name}/proxy` and `pods/{name}/proxy`: HTTP requests forwarded through the API
//! server to a Service's ready endpoint or to a pod, as `kubectl proxy` users browse them
//! (`/api/v1/namespaces/default/services/web:80/proxy/`). A port of upstream's
//! `ResourceLocation` of the service and pod registries (pkg/registry/core/service/storage,
//! pkg/registry/core/pod/strategy.go): the name is `name`, `name:port` or `scheme:name:port`; a
//! service port given by number is turned into its name; one of the ready addresses of the
//! Endpoints subset that has the port is picked at random; a pod without a port uses its first
//! declared container port.
//!
//! The request goes on with its method, remaining path, query, headers and body, and the answer
//! comes back streamed. Hop-by-hop headers are dropped both ways and so is `Authorization`
//! (kube-apiserver removes it once the caller is authenticated, so a proxied app never sees
//! the administrator's token). Plain HTTP only: `https:` names are refused with 400 (upstream
//! dials them with TLS), and upgrades (WebSocket) are not forwarded yet.

use std::time::Duration;

use api::registry::ResourceInfo;
use api::status::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::response::bytes_response;
use crate::state::AppState;

/// How long connecting to the backend may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the backend may take to start answering.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// `scheme:name:port` split as upstream's `SplitSchemeNamePort`; `None` when invalid.
fn split_scheme_name_port(id: &str) -> Option<(&str, &str, &str)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    if name.is_empty() || !matches!(scheme, "" | "http" | "https") {
        return None;
    }
    Some((scheme, name, port))
}

/// Headers that belong to one connection (RFC 9110 §7.6.1), plus those the connection names.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<String> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    for n in named {
        h.remove(n.as_str());
    }
    for n in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        h.remove(n);
    }
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

/// Upstream `IsProxyableIP`: an address the API server may be asked to dial for a pod.
fn proxyable(ip: &str) -> Result<std::net::IpAddr, ApiError> {
    let not_allowed = || ApiError::bad_request("address not allowed");
    let addr: std::net::IpAddr = ip.parse().map_err(|_| not_allowed())?;
    let bad = match addr {
        std::net::IpAddr::V4(a) => a.is_loopback() || a.is_link_local() || a.is_unspecified(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    if bad {
        return Err(not_allowed());
    }
    Ok(addr)
}

/// Where `services/{id}/proxy` goes: upstream's service `ResourceLocation`.
fn service_location(
    st: &AppState,
    svc_info: &ResourceInfo,
    ns: &str,
    id: &str,
) -> Result<(String, String), ApiError> {
    let (scheme, name, port) = split_scheme_name_port(id)
        .ok_or_else(|| ApiError::bad_request(format!("invalid service request {id:?}")))?;
    let mut port_name = port.to_string();
    if let Ok(num) = port.parse::<i64>() {
        let svc = st.registry.get(svc_info, ns, name)?;
        let found = svc
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| p.get("port").and_then(Value::as_i64) == Some(num));
        match found {
            Some(p) => port_name = str_at(p, "/name").to_string(),
            None => {
                return Err(ApiError::service_unavailable(format!(
                    "no service port {num} found for service {name:?}"
                )));
            }
        }
    }
    let ep_info = api::registry::lookup("", "v1", "endpoints")
        .ok_or_else(|| ApiError::internal("endpoints are not served"))?;
    let eps = st.registry.get(ep_info, ns, name)?;
    let subsets = eps
        .get("subsets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if subsets.is_empty() {
        return Err(ApiError::service_unavailable(format!(
            "no endpoints available for service {name:?}"
        )));
    }
    let seed = rand::random::<u32>() as usize;
    for i in 0..subsets.len() {
        let ss = &subsets[(seed + i) % subsets.len()];
        let addrs = ss
            .get("addresses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if addrs.is_empty() {
            continue;
        }
        let Some(p) = ss
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|p| str_at(p, "/name") == port_name)
        else {
            continue;
        };
        let ip = str_at(&addrs[seed % addrs.len()], "/ip");
        let port = p.get("port").and_then(Value::as_i64).unwrap_or_default();
        if !ip.is_empty() {
            return Ok((scheme.to_string(), host_port(ip, &port.to_string())));
        }
    }
    Err(ApiError::service_unavailable(format!(
        "no endpoints available for service {id:?}"
    )))
}

fn host_port(ip: &str, port: &str) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// Where `pods/{id}/proxy` goes: upstream's pod `ResourceLocation`.
fn pod_location(
    st: &AppState,
    pod_info: &ResourceInfo,
    ns: &str,
    id: &str,
) -> Result<(String, String), ApiError> {
    let (scheme, name, port) = split_scheme_name_port(id)
        .ok_or_else(|| ApiError::bad_request(format!("invalid pod request {id:?}")))?;
    let pod = st.registry.get(pod_info, ns, name)?;
    let mut port = port.to_string();
    if port.is_empty() {
        port = pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|c| c.pointer("/ports/0/containerPort").and_then(Value::as_i64))
            .map(|p| p.to_string())
            .unwrap_or_else(|| "80".to_string());
    }
    let ip = proxyable(str_at(&pod, "/status/podIP"))?;
    Ok((scheme.to_string(), host_port(&ip.to_string(), &port)))
}

/// Serves `{services,pods}/{id}/proxy{rest}`; `rest` is the raw remainder of the path (`""`,
/// `/`, `/a/b`).
pub async fn handle(
    st: &AppState,
    info: &'static ResourceInfo,
    ns: &str,
    id: &str,
    rest: &str,
    req: Request,
) -> Result<Response, ApiError> {
    let (scheme, authority) = match info.kind {
        "Service" => service_location(st, info, ns, id)?,
        _ => pod_location(st, info, ns, id)?,
    };
    if scheme == "https" {
        return Err(ApiError::bad_request(
            "https backends are not supported by this server's proxy",
        ));
    }
    if rest.is_empty() {
        // As upstream: the bare `/proxy` moves to `/proxy/`, so relative links resolve.
        let mut to = format!("{}/", req.uri().path());
        if let Some(q) = req.uri().query() {
            to = format!("{to}?{q}");
        }
        let mut r = bytes_response(
            StatusCode::MOVED_PERMANENTLY,
            "text/html; charset=utf-8",
            bytes::Bytes::new(),
        );
        if let Ok(v) = HeaderValue::from_str(&to) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(r);
    }
    let path_and_query = match req.uri().query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    parts.headers.remove(header::AUTHORIZATION);
    if let Ok(v) = HeaderValue::from_str(&authority) {
        parts.headers.insert(header::HOST, v);
    }
    let uri: http::Uri = path_and_query
        .parse()
        .map_err(|_| ApiError::bad_request(format!("invalid proxy path {rest:?}")))?;
    let mut out = http::Request::builder()
        .method(parts.method)
        .uri(uri)
        .version(http::Version::HTTP_11);
    if let Some(h) = out.headers_mut() {
        *h = parts.headers;
    }
    let out = out
        .body(body)
        .map_err(|e| ApiError::internal(format!("building the proxied request: {e}")))?;
    let unavailable =
        |e: String| ApiError::service_unavailable(format!("error trying to reach service: {e}"));
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&authority))
        .await
        .map_err(|_| unavailable(format!("dial tcp {authority}: i/o timeout")))?
        .map_err(|e| unavailable(format!("dial tcp {authority}: {e}")))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "proxied connection ended");
        }
    });
    let resp = tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(out))
        .await
        .map_err(|_| unavailable("timeout awaiting response headers".into()))?
        .map_err(|e| unavailable(e.to_string()))?;
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Ok(Response::from_parts(parts, Body::new(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_as_upstream() {
        assert_eq!(split_scheme_name_port("web"), Some(("", "web", "")));
        assert_eq!(split_scheme_name_port("web:80"), Some(("", "web", "80")));
        assert_eq!(
            split_scheme_name_port("http:web:http"),
            Some(("http", "web", "http"))
        );
        assert_eq!(split_scheme_name_port("ftp:web:21"), None);
        assert_eq!(split_scheme_name_port(":80"), None);
        assert_eq!(split_scheme_name_port("a:b:c:d"), None);
    }

    #[test]
    fn loopback_and_link_local_pods_are_not_proxied() {
        for ip in ["127.0.0.1", "169.254.1.1", "::1", "fe80::1", "", "0.0.0.0"] {
            assert!(proxyable(ip).is_err(), "{ip}");
        }
        assert!(proxyable("10.244.0.5").is_ok());
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-private"),
        );
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::ACCEPT, HeaderValue::from_static("text/html"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key(header::ACCEPT));
    }
}
