//! The HTTP surface: one axum router whose fallback parses Kubernetes paths by hand
//! (`/api/v1/namespaces/{ns}/{plural}/{name}/{sub}`, `/apis/{group}/{version}/…`), the
//! bearer-token filter, `/version`, health endpoints, discovery and OpenAPI. Resource
//! requests go to [`crate::rest`]. Every error leaves as a Kubernetes `Status`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use api::status::ApiError;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::discovery;
use crate::openapi::OpenApi;
use crate::params::Query;
use crate::response::{bytes_response, error_response, json_response, not_found_path};
use crate::rest;
use crate::state::AppState;

/// Builds the router over `state`.
pub fn router(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .fallback(dispatch)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::authz::authorize,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::track,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .with_state(state)
}

/// Paths anyone may read (upstream's `system:public-info-viewer`); the per-check health paths
/// (`/readyz/etcd`), which tell why a check fails, need credentials as upstream's
/// `system:monitoring` does.
fn public_path(path: &str) -> bool {
    matches!(
        path,
        "/version" | "/version/" | "/healthz" | "/livez" | "/readyz"
    )
}

/// Authentication, as kube-apiserver's union of authenticators: the client certificate first
/// ([`crate::x509::X509Authenticator`]), then the bearer token — the admin token (a
/// constant-time compare), then service account JWTs
/// ([`crate::serviceaccount::TokenIssuer::authenticate`]), then bootstrap tokens
/// ([`crate::bootstrap_token::authenticate`]). The first that accepts the request
/// names its user; a certificate that does not verify is no user (and is logged, as
/// upstream logs it), so a valid token on the same request still counts. A request nobody
/// authenticates is 401 (with no detail), except without any credential on public paths.
/// The authenticated user goes into the request's extensions; [`crate::authz::authorize`]
/// decides next.
async fn authenticate(State(st): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let certs = req
        .extensions()
        .get::<accept::ConnInfo>()
        .and_then(|c| c.peer_certificates.clone())
        .filter(|c| !c.is_empty());
    let mut user = None;
    if let (Some(chain), Some(x509)) = (&certs, st.x509.get()) {
        match x509.authenticate(chain, rustls_pki_types::UnixTime::now()) {
            Ok(u) => user = u,
            Err(e) => tracing::info!(error = %e, "client certificate refused"),
        }
    }
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if user.is_none()
        && let Some(a) = auth
    {
        let token = a
            .strip_prefix("Bearer ")
            .or_else(|| a.strip_prefix("bearer "))
            .map(str::trim);
        user = match token {
            Some(t) if constant_time_eq(t.as_bytes(), st.token.as_bytes()) => {
                Some(crate::user::UserInfo::admin())
            }
            Some(t) if !t.is_empty() => st
                .sa_tokens
                .get()
                .and_then(|issuer| {
                    issuer.authenticate(&st.registry, t, crate::serviceaccount::unix_now())
                })
                .or_else(|| {
                    crate::bootstrap_token::authenticate(
                        &st.registry,
                        t,
                        time::OffsetDateTime::now_utc(),
                    )
                }),
            _ => None,
        };
    }
    let ok = match user {
        Some(user) => {
            // Authorization (RBAC) follows in `crate::authz::authorize`.
            req.extensions_mut().insert(user);
            true
        }
        None if auth.is_none() && certs.is_none() => {
            decoded_path(req.uri().path()).is_ok_and(|p| public_path(&p))
        }
        None => false,
    };
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let mut resp = if ok {
        next.run(req).await
    } else {
        error_response(&ApiError::unauthorized())
    };
    tracing::debug!(%method, %path, status = resp.status().as_u16(), "request");
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        h.insert("audit-id", v);
    }
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
    }
    resp
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `/version` (all fields of upstream `version.Info`).
fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.4-paddock",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-22T00:00:00Z",
        "goVersion": "go1.23.6",
        "compiler": "gc",
        "platform": format!("linux/{}", match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        }),
    })
}

/// `/healthz`, `/livez`, `/readyz` in upstream's format (`apiserver/pkg/server/healthz`):
/// `ok`, or with `?verbose` (and always on failure) one `[+]name ok` / `[-]name failed:
/// reason withheld` line per check and `<endpoint> check passed|failed`; `?exclude=name`
/// skips a check; `/<endpoint>/<check>` runs one check and tells its reason. `etcd` (and
/// `etcd-readiness` on `/readyz`) is whether the store takes writes.
async fn health(st: &AppState, path: &str, q: &Query) -> Response {
    let mut parts = path.trim_matches('/').splitn(2, '/');
    let endpoint = parts.next().unwrap_or("");
    let check = parts.next();
    let store = st
        .registry
        .store()
        .check()
        .await
        .err()
        .map(|e| e.to_string());
    let mut checks: Vec<(&str, Option<String>)> =
        vec![("ping", None), ("log", None), ("etcd", store.clone())];
    if endpoint == "readyz" {
        checks.push(("etcd-readiness", store));
        let stopping = st.stopping.load(Ordering::Relaxed);
        checks.push((
            "shutdown",
            stopping.then(|| "process is shutting down".to_string()),
        ));
    }
    let text = |code, body: String| {
        let mut r = bytes_response(code, "text/plain; charset=utf-8", body);
        r.headers_mut().insert(
            "x-content-type-options",
            HeaderValue::from_static("nosniff"),
        );
        r
    };
    if let Some(c) = check {
        return match checks.iter().find(|(n, _)| *n == c) {
            Some((_, None)) => text(StatusCode::OK, "ok".into()),
            Some((_, Some(reason))) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal server error: {reason}\n"),
            ),
            None => error_response(&not_found_path()),
        };
    }
    let mut excluded: Vec<&str> = q
        .pairs()
        .iter()
        .filter(|(k, _)| k == "exclude")
        .map(|(_, v)| v.as_str())
        .collect();
    let mut lines = String::new();
    let mut failed = false;
    for (name, reason) in &checks {
        if let Some(i) = excluded.iter().position(|e| e == name) {
            excluded.remove(i);
            lines.push_str(&format!("[+]{name} excluded: ok\n"));
        } else if let Some(reason) = reason {
            tracing::debug!(check = name, %reason, "{endpoint} check failed");
            failed = true;
            lines.push_str(&format!("[-]{name} failed: reason withheld\n"));
        } else {
            lines.push_str(&format!("[+]{name} ok\n"));
        }
    }
    if !excluded.is_empty() {
        let quoted: Vec<String> = excluded.iter().map(|e| format!("{e:?}")).collect();
        lines.push_str(&format!(
            "warn: some health checks cannot be excluded: no matches for {}\n",
            quoted.join(",")
        ));
    }
    if failed {
        text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("{lines}{endpoint} check failed\n"),
        )
    } else if q.get("verbose").is_some() {
        text(StatusCode::OK, format!("{lines}{endpoint} check passed\n"))
    } else {
        text(StatusCode::OK, "ok".into())
    }
}

/// The request path percent-decoded as Go decodes `URL.Path`, which kube-apiserver routes
/// and authorizes on (`…/configmaps/a%2Eb` names `a.b`; a decoded `/` separates segments). A
/// `%` without two hex digits after it is refused, as Go's `url.ParseRequestURI` refuses it.
pub(crate) fn decoded_path(raw: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
        {
            let bad: String = raw[i..].chars().take(3).collect();
            return Err(ApiError::bad_request(format!(
                "invalid URL escape {bad:?} in path {raw:?}"
            )));
        }
    }
    Ok(percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned())
}

/// Routes every request.
async fn dispatch(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let path = match decoded_path(req.uri().path()) {
        Ok(p) => p,
        Err(e) => return error_response(&e),
    };
    let q = Query::parse(req.uri().query());
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let segs: Vec<&str> = match segs.last() {
        Some(&"") if segs.len() > 1 => segs[..segs.len() - 1].to_vec(),
        _ => segs,
    };
    let method = req.method().clone();
    let read_only = method == Method::GET || method == Method::HEAD;
    match segs.as_slice() {
        ["version"] if read_only => json_response(StatusCode::OK, &version()),
        ["metrics"] if read_only => bytes_response(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            st.metrics.encode(),
        ),
        ["healthz" | "livez" | "readyz", ..] if read_only => health(&st, &path, &q).await,
        [".well-known", "openid-configuration"] if read_only => match st.sa_tokens.get() {
            Some(i) => json_response(StatusCode::OK, &i.openid_configuration()),
            None => error_response(&not_found_path()),
        },
        ["openid", "v1", "jwks"] if read_only => match st.sa_tokens.get() {
            Some(i) => {
                let body = serde_json::to_vec(&i.jwks()).unwrap_or_default();
                bytes_response(StatusCode::OK, "application/jwk-set+json", body)
            }
            None => error_response(&not_found_path()),
        },
        ["api"] if read_only => discovery_root(&st, &req, true),
        ["apis"] if read_only => discovery_root(&st, &req, false),
        ["apis", g] if read_only => match st.discovery.group(g) {
            Some(b) => bytes_response(StatusCode::OK, "application/json", b),
            None => error_response(&not_found_path()),
        },
        ["api", _] | ["apis", _, _] if read_only => match st.discovery.resource_list(&path) {
            Some(b) => bytes_response(StatusCode::OK, "application/json", b),
            None => error_response(&not_found_path()),
        },
        ["openapi", ..] if read_only => {
            let Some(docs) = st.openapi.get().await else {
                return error_response(&ApiError::internal(
                    "the OpenAPI documents could not be built",
                ));
            };
            match &segs[1..] {
                ["v3"] => bytes_response(StatusCode::OK, "application/json", docs.index.clone()),
                ["v3", rest @ ..] => openapi_doc(&docs, &req, &rest.join("/"), &q),
                ["v2"] => openapi_v2(&docs, &req),
                _ => error_response(&not_found_path()),
            }
        }
        ["api", "v1", rest @ ..] => rest::handle(&st, "", "v1", rest, req, &q).await,
        [
            "apis",
            g @ ("authorization.k8s.io" | "authentication.k8s.io"),
            "v1",
            rest @ ..,
        ] => {
            let g = g.to_string();
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            crate::authz::review::handle(&st, &g, &rest, req).await
        }
        ["apis", g, v, rest @ ..] => {
            let (g, v) = (g.to_string(), v.to_string());
            let rest: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            rest::handle(&st, &g, &v, &rest, req, &q).await
        }
        _ => error_response(&not_found_path()),
    }
}

fn discovery_root(st: &AppState, req: &Request, core: bool) -> Response {
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let form = discovery::negotiate(accept);
    let (ct, body) = st.discovery.root(core, form);
    let mut r = bytes_response(StatusCode::OK, ct, body);
    if form != discovery::Form::Legacy {
        r.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept"));
    }
    r
}

/// Whether the request's `If-None-Match` names `etag` (then the answer is 304).
fn not_modified(req: &Request, etag: &str) -> Option<Response> {
    let inm = req.headers().get(header::IF_NONE_MATCH)?.to_str().ok()?;
    let quoted = format!("\"{etag}\"");
    inm.split(',')
        .map(str::trim)
        .any(|t| t == quoted || t == "*")
        .then(|| {
            let mut r = bytes_response(
                StatusCode::NOT_MODIFIED,
                "application/json",
                bytes::Bytes::new(),
            );
            if let Ok(v) = HeaderValue::from_str(&quoted) {
                r.headers_mut().insert(header::ETAG, v);
            }
            r
        })
}

/// `/openapi/v2`: protobuf when the client asks for it (kubectl does), JSON otherwise.
fn openapi_v2(docs: &OpenApi, req: &Request) -> Response {
    // kubectl asks with '@', which is not a MIME token character: upstream answers with the
    // dotted form, the only one Go's mime.ParseMediaType accepts.
    const PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
    const ASKED: [&str; 2] = [
        "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
        PROTOBUF,
    ];
    let doc = &docs.v2;
    if let Some(r) = not_modified(req, &doc.hash) {
        return r;
    }
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let protobuf = accept
        .split(',')
        .any(|a| ASKED.contains(&a.split(';').next().unwrap_or_default().trim()));
    let mut r = if protobuf {
        bytes_response(StatusCode::OK, PROTOBUF, doc.protobuf.clone())
    } else {
        bytes_response(StatusCode::OK, "application/json", doc.json.clone())
    };
    let h = r.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", doc.hash)) {
        h.insert(header::ETAG, v);
    }
    r
}

fn openapi_doc(docs: &OpenApi, req: &Request, path: &str, q: &Query) -> Response {
    let Some(doc) = docs.doc(path) else {
        return error_response(&not_found_path());
    };
    if let Some(r) = not_modified(req, &doc.hash) {
        return r;
    }
    let mut r = bytes_response(StatusCode::OK, "application/json", doc.body.clone());
    let h = r.headers_mut();
    if q.get("hash") == Some(doc.hash.as_str()) {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
    } else {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache, private"),
        );
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", doc.hash)) {
        h.insert(header::ETAG, v);
    }
    r
}

#[cfg(test)]
mod tests;
