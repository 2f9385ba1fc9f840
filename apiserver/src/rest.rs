//! Resource endpoints: path resolution under `/api/v1` and `/apis/{group}/{version}`, and
//! the verbs get, list, watch, create, update, patch, delete and deletecollection on the main
//! resource and its `status`, `scale`, `finalize`, `binding`, `eviction`, (CSRs) `approval` and
//! (service accounts) `token` subresources. Bodies are
//! read with the 3 MiB limit; output is JSON or a `Table` as the `Accept` header asks.
//! A version served by conversion (`autoscaling/v1`, see `api::convert`) is handled here at
//! the edge: bodies are decoded in it and converted to the stored version
//! ([`body_to_storage`]), answers are converted back; the registry sees only stored objects.

use std::borrow::Cow;

use api::registry::ResourceInfo;
use api::status::{ApiError, FieldError};
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::meta::meta_str;
use crate::params::{self, Output, Query};
use crate::patch::FromHeaders;
use crate::registry::{
    Deleted, FieldValidation, PatchOptions, UpdateMode, WriteOptions, list_page,
};
use crate::response::{
    bytes_response, error_response, json_response, not_found_path, with_warnings,
};
use crate::select::Selector;
use crate::state::AppState;
use crate::table::{include, table_bytes, table_content_type};
use crate::user::UserInfo;
use crate::{patch, watch};

/// What a path names.
#[derive(Debug)]
enum Target<'a> {
    /// A collection, in one namespace or (`None`) across all.
    Collection {
        info: &'static ResourceInfo,
        ns: Option<&'a str>,
    },
    /// One object, or one of its subresources.
    Item {
        info: &'static ResourceInfo,
        ns: &'a str,
        name: &'a str,
        sub: Option<&'a str>,
    },
}

fn resolve<'a>(group: &str, version: &str, rest: &[&'a str]) -> Option<Target<'a>> {
    if rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    if rest.len() >= 3
        && rest[0] == "namespaces"
        && let Some(info) = api::registry::lookup(group, version, rest[2]).filter(|i| i.namespaced)
    {
        let ns = rest[1];
        return match &rest[3..] {
            [] => Some(Target::Collection { info, ns: Some(ns) }),
            [name] => Some(Target::Item {
                info,
                ns,
                name,
                sub: None,
            }),
            [name, sub] => Some(Target::Item {
                info,
                ns,
                name,
                sub: Some(sub),
            }),
            _ => None,
        };
    }
    let info = api::registry::lookup(group, version, rest.first()?)?;
    match (&rest[1..], info.namespaced) {
        ([], _) => Some(Target::Collection { info, ns: None }),
        ([name], false) => Some(Target::Item {
            info,
            ns: "",
            name,
            sub: None,
        }),
        ([name, sub], false) => Some(Target::Item {
            info,
            ns: "",
            name,
            sub: Some(sub),
        }),
        _ => None,
    }
}

/// Handles a request under a group-version; `rest` are the path segments after it.
pub async fn handle(
    st: &AppState,
    group: &str,
    version: &str,
    rest: &[&str],
    req: Request,
    q: &Query,
) -> Response {
    if group.is_empty()
        && version == "v1"
        && let [
            "namespaces",
            ns,
            plural @ ("services" | "pods"),
            id,
            "proxy",
            ..,
        ] = rest
        && let Some(info) = api::registry::lookup("", "v1", plural)
    {
        // The remainder goes on as the client wrote it (still escaped, trailing slash kept).
        let raw = req.uri().path().trim_start_matches('/').to_string();
        let remainder = raw.splitn(8, '/').nth(7).map(|r| format!("/{r}"));
        let remainder = remainder.unwrap_or_default();
        return match crate::resource_proxy::handle(st, info, ns, id, &remainder, req).await {
            Ok(r) => r,
            Err(e) => error_response(&e),
        };
    }
    if group.is_empty()
        && version == "v1"
        && let ["nodes", node, "proxy", ..] = rest
    {
        // The remainder as the client wrote it (still escaped), `/` when there is none.
        let raw = req.uri().path().trim_start_matches('/').to_string();
        let remainder = raw.splitn(6, '/').nth(5).unwrap_or_default();
        let remainder = format!("/{remainder}");
        let proxy = crate::kubelet_proxy::KubeletProxy {
            tls: st.kubelet_tls.get().cloned(),
        };
        return proxy
            .proxy_node(st.registry.clone(), node, &remainder, req)
            .await;
    }
    if group == crate::resource_metrics::GROUP {
        let served = match resolve(group, version, rest) {
            Some(Target::Collection { info, ns }) => {
                crate::resource_metrics::handle(st, info, ns, None, &req, q)
            }
            Some(Target::Item {
                info,
                ns,
                name,
                sub: None,
            }) => crate::resource_metrics::handle(st, info, Some(ns), Some(name), &req, q),
            _ => Err(not_found_path()),
        };
        return served.unwrap_or_else(|e| error_response(&e));
    }
    let Some(target) = resolve(group, version, rest) else {
        return error_response(&not_found_path());
    };
    match handle_target(st, target, req, q).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn accept(headers: &HeaderMap) -> Result<Output, ApiError> {
    let a = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    params::negotiate(a).ok_or_else(|| {
        ApiError::not_acceptable(&[
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf",
        ])
    })
}

async fn handle_target(
    st: &AppState,
    target: Target<'_>,
    req: Request,
    q: &Query,
) -> Result<Response, ApiError> {
    let method = req.method().clone();
    // `info` is what the URL names: the handlers below read and write the stored version
    // and convert bodies and answers when `info` is a converted version (`api::convert`).
    match target {
        Target::Collection { info, ns } => match method {
            Method::GET | Method::HEAD => {
                let output = accept(req.headers())?;
                if q.bool("watch")? {
                    watch::serve(st, info, ns, q, output).await
                } else {
                    list(st, info, ns, q, output)
                }
            }
            Method::POST => {
                let Some(ns) = ns.or((!info.namespaced).then_some("")) else {
                    return Err(ApiError::method_not_allowed(info, "create"));
                };
                let user = req.extensions().get::<UserInfo>().cloned();
                let (headers, body) = read_body(req).await?;
                create(st, info, ns, q, &headers, &body, user).await
            }
            Method::DELETE => {
                let Some(ns) = ns.or((!info.namespaced).then_some("")) else {
                    return Err(ApiError::method_not_allowed(info, "deletecollection"));
                };
                let (headers, body) = read_body(req).await?;
                delete_collection(st, info, ns, q, &headers, &body).await
            }
            _ => Err(ApiError::method_not_allowed(info, method.as_str())),
        },
        Target::Item {
            info,
            ns,
            name,
            sub: None,
        } => match method {
            Method::GET | Method::HEAD => get(st, info, ns, name, q, accept(req.headers())?),
            Method::PUT => {
                let user = req.extensions().get::<UserInfo>().cloned();
                let (headers, body) = read_body(req).await?;
                update(
                    st,
                    info,
                    ns,
                    name,
                    UpdateMode::Main,
                    q,
                    &headers,
                    &body,
                    user,
                )
                .await
            }
            Method::PATCH => {
                let user = req.extensions().get::<UserInfo>().cloned();
                let (headers, body) = read_body(req).await?;
                patch_item(st, info, ns, name, None, q, &headers, &body, user).await
            }
            Method::DELETE => {
                let (headers, body) = read_body(req).await?;
                delete(st, info, ns, name, q, &headers, &body).await
            }
            _ => Err(ApiError::method_not_allowed(info, method.as_str())),
        },
        Target::Item {
            info,
            ns,
            name,
            sub: Some(sub),
        } => {
            let Some(s) = info
                .subresource(sub)
                .filter(|_| sub != "finalize")
                .or_else(|| (info.kind == "Namespace" && sub == "finalize").then_some(&FINALIZE))
            else {
                return Err(not_found_path());
            };
            if info.kind == "Pod" && STREAMED.contains(&s.name) {
                let pod = st.registry.get(info, ns, name)?;
                let handler = st.pod_streams();
                return Ok(match handler {
                    Some(h) => h.handle(st.registry.clone(), pod, s.name, req).await,
                    None => {
                        let proxy = crate::kubelet_proxy::KubeletProxy {
                            tls: st.kubelet_tls.get().cloned(),
                        };
                        proxy.proxy(st.registry.clone(), &pod, s.name, req).await
                    }
                });
            }
            match (s.name, method) {
                ("status" | "approval" | "ephemeralcontainers", Method::GET) => {
                    get(st, info, ns, name, q, accept(req.headers())?)
                }
                ("status", Method::PUT) => {
                    let (headers, body) = read_body(req).await?;
                    update(
                        st,
                        info,
                        ns,
                        name,
                        UpdateMode::Status,
                        q,
                        &headers,
                        &body,
                        None,
                    )
                    .await
                }
                ("approval", Method::PUT) => {
                    let (headers, body) = read_body(req).await?;
                    update(
                        st,
                        info,
                        ns,
                        name,
                        UpdateMode::Approval,
                        q,
                        &headers,
                        &body,
                        None,
                    )
                    .await
                }
                ("ephemeralcontainers", Method::PUT) => {
                    let (headers, body) = read_body(req).await?;
                    let mode = UpdateMode::EphemeralContainers;
                    update(st, info, ns, name, mode, q, &headers, &body, None).await
                }
                (sub @ ("status" | "approval" | "ephemeralcontainers"), Method::PATCH) => {
                    let (headers, body) = read_body(req).await?;
                    patch_item(st, info, ns, name, Some(sub), q, &headers, &body, None).await
                }
                ("finalize", Method::PUT) => {
                    let (headers, body) = read_body(req).await?;
                    update(
                        st,
                        info,
                        ns,
                        name,
                        UpdateMode::Finalize,
                        q,
                        &headers,
                        &body,
                        None,
                    )
                    .await
                }
                ("scale", Method::GET) => {
                    let obj = st.registry.get(info, ns, name)?;
                    Ok(json_response(
                        StatusCode::OK,
                        &crate::scale::to_scale(info, &obj)?,
                    ))
                }
                ("scale", Method::PUT) => {
                    let (headers, body) = read_body(req).await?;
                    let scale = parse_body(&headers, &body)?.0;
                    let opts = write_options(q, &headers)?;
                    let out =
                        crate::scale::update(&st.registry, info, ns, name, scale, &opts).await?;
                    Ok(json_response(StatusCode::OK, &out))
                }
                ("scale", Method::PATCH) => {
                    let (headers, body) = read_body(req).await?;
                    let pt = patch::PatchKind::from_headers(&headers)?;
                    let opts = write_options(q, &headers)?;
                    let out =
                        crate::scale::patch(&st.registry, info, ns, name, pt, &body, &opts).await?;
                    Ok(json_response(StatusCode::OK, &out))
                }
                ("token", Method::POST) => {
                    let Some(issuer) = st.sa_tokens.get() else {
                        return Err(not_found_path());
                    };
                    let user = req.extensions().get::<UserInfo>().cloned();
                    let (headers, body) = read_body(req).await?;
                    let request = parse_body(&headers, &body)?.0;
                    crate::authz::node_restriction::admit_token_request(
                        &st.registry,
                        user.as_ref(),
                        ns,
                        name,
                        &request,
                    )?;
                    let out = crate::serviceaccount::token_request::create(
                        &st.registry,
                        issuer,
                        ns,
                        name,
                        request,
                    )?;
                    Ok(json_response(StatusCode::CREATED, &out))
                }
                ("eviction", Method::POST) => {
                    let (headers, body) = read_body(req).await?;
                    let body = parse_body(&headers, &body)?.0;
                    let eviction = crate::eviction::Eviction::from_body(&body, q.dry_run()?)?;
                    Ok(match st.registry.evict(ns, name, &eviction).await? {
                        crate::eviction::Evicted::Success => {
                            let mut status = api::status::success_status(None);
                            status["code"] = json!(201);
                            json_response(StatusCode::CREATED, &status)
                        }
                        crate::eviction::Evicted::Failure(e) => error_response(&e),
                    })
                }
                ("binding", Method::POST) => {
                    let (headers, body) = read_body(req).await?;
                    let binding = parse_body(&headers, &body)?.0;
                    let opts = write_options(q, &headers)?;
                    bind(st, ns, name, binding, &opts).await
                }
                (_, m) => Err(ApiError::method_not_allowed(info, m.as_str())),
            }
        }
    }
}

/// Pod subresources served by a [`crate::PodStreams`] handler (the node agent).
const STREAMED: [&str; 4] = ["log", "exec", "portforward", "attach"];

/// The namespace `finalize` subresource (not advertised in discovery, as upstream).
static FINALIZE: api::registry::Subresource = api::registry::Subresource {
    name: "finalize",
    kind: "Namespace",
    group: "",
    version: "v1",
    verbs: &["update"],
};

/// Largest request body accepted (upstream's 3 MiB limit on JSON bodies).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Reads a request body, refusing more than [`MAX_BODY`] bytes with 413 (upstream's
/// `limitedReadBody`: `Request entity too large: limit is 3145728`).
pub(crate) async fn read_body(req: Request) -> Result<(HeaderMap, Bytes), ApiError> {
    use http_body_util::BodyExt;
    let (parts, mut body) = req.into_parts();
    let h2 = parts.version == http::Version::HTTP_2;
    let too_large = |body: Body| {
        if h2 {
            drain(body);
        }
        ApiError::request_entity_too_large(&format!("limit is {MAX_BODY}"))
    };
    if let Some(len) = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > MAX_BODY as u64
    {
        return Err(too_large(body));
    }
    let mut buf = bytes::BytesMut::new();
    let deadline = tokio::time::Instant::now() + BODY_TIMEOUT;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break,
            Err(_) => {
                return Err(ApiError::timeout(
                    "request did not complete within requested timeout - context deadline exceeded",
                    0,
                ));
            }
        };
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_BODY {
                return Err(too_large(body));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok((parts.headers, buf.freeze()))
}

/// How long a client may take to send a request body: kube-apiserver's `--request-timeout`
/// (1 minute) bounds every request that is not a watch or a stream, and answers 504 `Timeout`
/// when it runs out; a slow upload must not hold a connection (and a slot under the
/// connection cap) forever.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Most of a refused HTTP/2 upload [`drain`] reads and discards, and for how long.
const DRAIN_LIMIT: usize = 16 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads and discards the rest of a refused HTTP/2 upload in the background. Answering
/// while the client still uploads ends the stream with `RST_STREAM(NO_ERROR)` after the
/// response, which Go clients read as the 413 but curl and other clients report as a failed
/// stream without the `Status`; read to its end (bounded by [`DRAIN_LIMIT`] and
/// [`DRAIN_TIME`]) the stream closes normally. HTTP/1.1 needs none of this: the connection
/// is closed after the answer (and a client that sent `Expect: 100-continue` never uploads).
fn drain(mut body: Body) {
    use http_body_util::BodyExt;
    tokio::spawn(async move {
        let mut read = 0usize;
        let _ = tokio::time::timeout(DRAIN_TIME, async {
            while let Some(Ok(frame)) = body.frame().await {
                read += frame.data_ref().map_or(0, Bytes::len);
                if read > DRAIN_LIMIT {
                    break;
                }
            }
        })
        .await;
    });
}

/// The media type of a request (`application/json` when absent).
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "application/json".to_string())
}

/// Parses a JSON (or YAML) body into a value and its duplicate-key paths.
pub fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<(Value, Vec<String>), ApiError> {
    let ct = content_type(headers);
    match ct.as_str() {
        "application/json" | "*/*" => api::object::parse_json(body),
        api::protobuf::CONTENT_TYPE => api::protobuf::decode_body(body)
            .map(|v| (v, Vec::new()))
            .map_err(|e| ApiError::bad_request(e.to_string())),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            parse_yaml(body).map(|v| (v, Vec::new()))
        }
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

/// Parses a YAML document (JSON is YAML too).
pub fn parse_yaml(body: &[u8]) -> Result<Value, ApiError> {
    if let Ok((v, _)) = api::object::parse_json(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("yaml: body is not valid UTF-8"))?;
    api::yaml::from_str(text)
        .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
}

/// `fieldManager`, `fieldValidation`, `dryRun`.
pub fn write_options(q: &Query, headers: &HeaderMap) -> Result<WriteOptions, ApiError> {
    let field_manager = q
        .get("fieldManager")
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .or_else(|| default_manager(headers));
    if let Some(m) = &field_manager
        && (m.len() > 128 || m.chars().any(|c| c.is_control()))
    {
        return Err(ApiError::invalid_kind(
            "meta.k8s.io",
            "CreateOptions",
            "",
            vec![FieldError::too_long("fieldManager", 128)],
        ));
    }
    Ok(WriteOptions {
        field_manager,
        field_validation: FieldValidation::parse(q.get("fieldValidation"))?,
        dry_run: q.dry_run()?,
        user: None,
    })
}

fn object_response(code: StatusCode, obj: &Value) -> Response {
    json_response(code, obj)
}

/// `obj` (stored version) as the client's version `info` shows it: itself unless `info` is
/// a converted version.
fn served<'a>(info: &ResourceInfo, obj: &'a Value) -> Result<Cow<'a, Value>, ApiError> {
    if api::registry::is_converted(info) {
        Ok(Cow::Owned(api::convert::to_served(info, obj)?))
    } else {
        Ok(Cow::Borrowed(obj))
    }
}

/// A write body of the client's version `info` in the stored version, with the duplicate
/// fields still to report and the decoding warnings already found: a converted version's body
/// is decoded (unknown fields, defaults) in its own version first, then converted.
pub fn body_to_storage(
    info: &ResourceInfo,
    obj: Value,
    dups: Vec<String>,
    fv: FieldValidation,
) -> Result<(Value, Vec<String>, Vec<String>), ApiError> {
    if !api::registry::is_converted(info) {
        return Ok((obj, dups, Vec::new()));
    }
    let decoded = api::object::decode_with_duplicates(info, obj, &dups, fv)?;
    let stored = api::convert::to_storage(info, decoded.value)?;
    Ok((stored, Vec::new(), decoded.warnings))
}

/// The answer to a write: the object in the client's version, with the warnings.
fn write_response(
    info: &ResourceInfo,
    code: StatusCode,
    obj: &Value,
    mut warnings: Vec<String>,
    earlier: Vec<String>,
) -> Result<Response, ApiError> {
    let mut all = earlier;
    all.append(&mut warnings);
    Ok(with_warnings(
        object_response(code, served(info, obj)?.as_ref()),
        &all,
    ))
}

fn get(
    st: &AppState,
    info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    q: &Query,
    output: Output,
) -> Result<Response, ApiError> {
    let client_info = info;
    let info = api::registry::storage(info);
    let obj = st.registry.get(info, ns, name)?;
    match output {
        Output::Json => Ok(object_response(
            StatusCode::OK,
            served(client_info, &obj)?.as_ref(),
        )),
        Output::Table(v) => {
            let rv = meta_str(&obj, "resourceVersion").to_string();
            let t = table_bytes(
                info,
                &[obj],
                v,
                include(q)?,
                &json!({"resourceVersion": rv}),
            );
            Ok(bytes_response(StatusCode::OK, table_content_type(v), t))
        }
    }
}

fn list(
    st: &AppState,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    q: &Query,
    output: Output,
) -> Result<Response, ApiError> {
    let client_info = info;
    let info = api::registry::storage(info);
    let sel = Selector::parse(info, q.get("labelSelector"), q.get("fieldSelector"))?;
    let rv = q.get("resourceVersion").unwrap_or("");
    let cont = q.get("continue").filter(|c| !c.is_empty());
    if cont.is_some() && !rv.is_empty() {
        return Err(ApiError::bad_request(
            "specifying resource version is not allowed when using continue",
        ));
    }
    let at = match q.get("resourceVersionMatch").unwrap_or("") {
        "" | "NotOlderThan" => None,
        "Exact" => match crate::registry::parse_rv(rv)? {
            Some(r) if r > 0 => Some(r),
            _ => {
                return Err(invalid_list_options(
                    "resourceVersionMatch",
                    "Exact",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\" or unset",
                ));
            }
        },
        other => {
            return Err(invalid_list_options(
                "resourceVersionMatch",
                other,
                "supported values: \"Exact\", \"NotOlderThan\", \"\"",
            ));
        }
    };
    crate::registry::parse_rv(rv)?;
    let limit = q
        .int("limit")?
        .filter(|l| *l > 0 && rv != "0")
        .map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    let page = list_page(&st.registry, info, ns, &sel, limit, cont, at)?;
    let mut list_meta = serde_json::Map::new();
    list_meta.insert("resourceVersion".into(), json!(page.revision.to_string()));
    if let Some(c) = &page.continue_token {
        list_meta.insert("continue".into(), json!(c));
    }
    if let Some(r) = page.remaining {
        list_meta.insert("remainingItemCount".into(), json!(r));
    }
    match output {
        Output::Table(v) => {
            let t = table_bytes(info, &page.items, v, include(q)?, &Value::Object(list_meta));
            Ok(bytes_response(StatusCode::OK, table_content_type(v), t))
        }
        Output::Json => {
            // Written by hand: no copy of the items into a new tree.
            let mut out = Vec::with_capacity(256 + page.items.len() * 1024);
            out.extend_from_slice(b"{\"kind\":");
            serde_json::to_writer(&mut out, client_info.list_kind).map_err(ApiError::internal)?;
            out.extend_from_slice(b",\"apiVersion\":");
            serde_json::to_writer(&mut out, &client_info.api_version())
                .map_err(ApiError::internal)?;
            out.extend_from_slice(b",\"metadata\":");
            serde_json::to_writer(&mut out, &list_meta).map_err(ApiError::internal)?;
            out.extend_from_slice(b",\"items\":[");
            let convert = api::registry::is_converted(client_info);
            for (i, item) in page.items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                if convert {
                    let shown = api::convert::to_served(client_info, item)?;
                    serde_json::to_writer(&mut out, &shown).map_err(ApiError::internal)?;
                } else {
                    serde_json::to_writer(&mut out, item.as_ref()).map_err(ApiError::internal)?;
                }
            }
            out.extend_from_slice(b"]}");
            Ok(bytes_response(StatusCode::OK, "application/json", out))
        }
    }
}

fn invalid_list_options(field: &str, value: &str, detail: &str) -> ApiError {
    ApiError::invalid_kind(
        "meta.k8s.io",
        "ListOptions",
        "",
        vec![FieldError::invalid(field, value, detail)],
    )
}

async fn create(
    st: &AppState,
    info: &'static ResourceInfo,
    ns: &str,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
    user: Option<UserInfo>,
) -> Result<Response, ApiError> {
    let (obj, dups) = parse_body(headers, body)?;
    let mut opts = write_options(q, headers)?;
    opts.user = user;
    let (obj, dups, earlier) = body_to_storage(info, obj, dups, opts.field_validation)?;
    let (created, warnings) = st
        .registry
        .create_checked(api::registry::storage(info), ns, obj, &dups, &opts)
        .await?;
    write_response(info, StatusCode::CREATED, &created, warnings, earlier)
}

#[allow(clippy::too_many_arguments)]
async fn update(
    st: &AppState,
    info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    mode: UpdateMode,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
    user: Option<UserInfo>,
) -> Result<Response, ApiError> {
    let (obj, dups) = parse_body(headers, body)?;
    let mut opts = write_options(q, headers)?;
    opts.user = user;
    let (obj, dups, earlier) = body_to_storage(info, obj, dups, opts.field_validation)?;
    let (out, created, warnings) = st
        .registry
        .update_checked(
            api::registry::storage(info),
            ns,
            name,
            obj,
            &dups,
            &opts,
            mode,
        )
        .await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    write_response(info, code, &out, warnings, earlier)
}

#[allow(clippy::too_many_arguments)]
async fn patch_item(
    st: &AppState,
    info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
    user: Option<UserInfo>,
) -> Result<Response, ApiError> {
    let kind = patch::PatchKind::from_headers(headers)?;
    let mut write = write_options(q, &HeaderMap::new())?;
    // Server-side apply may create the object.
    write.user = user;
    if kind == patch::PatchKind::Apply && write.field_manager.is_none() {
        return Err(ApiError::invalid_kind(
            "meta.k8s.io",
            "PatchOptions",
            "",
            vec![FieldError::required(
                "fieldManager",
                "is required for apply patch",
            )],
        ));
    }
    if write.field_manager.is_none() {
        write.field_manager = default_manager(headers);
    }
    let opts = PatchOptions {
        write,
        force: q.bool("force")?,
    };
    let (out, created, warnings) =
        patch::patch(&st.registry, info, ns, name, kind, body, sub, &opts).await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    write_response(info, code, &out, warnings, Vec::new())
}

/// Upstream derives a missing field manager from the user agent's program name.
fn default_manager(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(api::patch::manager_from_user_agent)
        .filter(|s| !s.is_empty())
}

/// A DeleteOptions body as JSON bytes (typed clients may send protobuf).
fn delete_body_json<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
) -> Result<std::borrow::Cow<'a, [u8]>, ApiError> {
    if content_type(headers) == api::protobuf::CONTENT_TYPE && !body.is_empty() {
        let v =
            api::protobuf::decode_body(body).map_err(|e| ApiError::bad_request(e.to_string()))?;
        return Ok(std::borrow::Cow::Owned(
            serde_json::to_vec(&v).unwrap_or_default(),
        ));
    }
    Ok(std::borrow::Cow::Borrowed(body))
}

/// Kinds whose DELETE answers with the object rather than a `Status` (upstream
/// `ReturnDeletedObject`).
fn returns_deleted_object(info: &ResourceInfo) -> bool {
    matches!(info.kind, "Pod" | "Service" | "Namespace")
}

async fn delete(
    st: &AppState,
    info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let client_info = info;
    let info = api::registry::storage(info);
    let opts = params::delete_options(q, &delete_body_json(headers, body)?)?;
    match st.registry.delete(info, ns, name, &opts).await? {
        Deleted::Gone(obj) => {
            if returns_deleted_object(info) {
                Ok(object_response(
                    StatusCode::OK,
                    served(client_info, &obj)?.as_ref(),
                ))
            } else {
                let mut details = api::status::object_details(info, name);
                details.causes.clear();
                let mut v = api::status::success_status(Some(&details));
                let uid = meta_str(&obj, "uid");
                if !uid.is_empty() {
                    v["details"]["uid"] = json!(uid);
                }
                Ok(json_response(StatusCode::OK, &v))
            }
        }
        // Upstream answers 200 for objects kept by finalizers or grace periods (202 only for
        // the deprecated orphanDependents=false).
        Deleted::Pending(obj) => Ok(object_response(
            StatusCode::OK,
            served(client_info, &obj)?.as_ref(),
        )),
    }
}

async fn delete_collection(
    st: &AppState,
    info: &'static ResourceInfo,
    ns: &str,
    q: &Query,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let client_info = info;
    let info = api::registry::storage(info);
    let opts = params::delete_options(q, &delete_body_json(headers, body)?)?;
    let sel = Selector::parse(info, q.get("labelSelector"), q.get("fieldSelector"))?;
    let page = list_page(&st.registry, info, Some(ns), &sel, None, None, None)?;
    let mut deleted = Vec::new();
    for item in &page.items {
        let name = meta_str(item, "name");
        let item_ns = meta_str(item, "namespace");
        match st.registry.delete(info, item_ns, name, &opts).await {
            Ok(Deleted::Gone(o)) | Ok(Deleted::Pending(o)) => deleted.push(o),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let items = deleted
        .iter()
        .map(|o| served(client_info, o).map(Cow::into_owned))
        .collect::<Result<Vec<_>, _>>()?;
    let list = json!({
        "kind": client_info.list_kind,
        "apiVersion": client_info.api_version(),
        "metadata": {"resourceVersion": st.registry.store().revision().to_string()},
        "items": items,
    });
    Ok(json_response(StatusCode::OK, &list))
}

/// `POST pods/{name}/binding`: assigns the pod to a node (upstream `BindingREST.Create`:
/// the Binding is validated here, written by [`Registry::bind`]).
async fn bind(
    st: &AppState,
    ns: &str,
    name: &str,
    binding: Value,
    opts: &WriteOptions,
) -> Result<Response, ApiError> {
    let str_at = |p: &str| {
        binding
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let node = str_at("/target/name").unwrap_or_default();
    if node.is_empty() {
        return Err(ApiError::invalid_kind(
            "",
            "Binding",
            name,
            vec![FieldError::required("target.name", "")],
        ));
    }
    let annotations = binding
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .map(|a| {
            a.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let binding = api::cluster::Binding {
        uid: str_at("/metadata/uid"),
        resource_version: str_at("/metadata/resourceVersion"),
        annotations,
        node,
    };
    st.registry.bind(ns, name, &binding, opts.dry_run).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &api::status::success_status(None),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert!(matches!(
            resolve("", "v1", &["namespaces", "d", "pods"]),
            Some(Target::Collection { ns: Some("d"), .. })
        ));
        assert!(matches!(
            resolve("", "v1", &["namespaces", "d", "pods", "p", "status"]),
            Some(Target::Item {
                ns: "d",
                name: "p",
                sub: Some("status"),
                ..
            })
        ));
        assert!(matches!(
            resolve("", "v1", &["namespaces", "d", "status"]),
            Some(Target::Item {
                name: "d",
                sub: Some("status"),
                ..
            })
        ));
        assert!(matches!(
            resolve("", "v1", &["namespaces", "d"]),
            Some(Target::Item {
                name: "d",
                sub: None,
                ..
            })
        ));
        assert!(matches!(
            resolve("", "v1", &["pods"]),
            Some(Target::Collection { ns: None, .. })
        ));
        assert!(resolve("", "v1", &["pods", "x"]).is_none());
        assert!(resolve("", "v1", &["nodes", "x", "status"]).is_some());
        assert!(
            resolve(
                "apps",
                "v1",
                &["namespaces", "d", "deployments", "x", "scale"]
            )
            .is_some()
        );
        assert!(resolve("", "v1", &["nope"]).is_none());
        assert!(resolve("", "v1", &["namespaces", "", "pods"]).is_none());
    }
}
