//! `?watch=true`: a chunked stream of newline-delimited `{"type","object"}` events, flushed
//! one by one. `resourceVersion` "" or "0" first replays the current objects as `ADDED`
//! (atomically with the start of the watch); a concrete one streams strictly later changes,
//! and a compacted one gets a single `ERROR` event carrying a 410 `Status`, as upstream.
//! Selectors apply per event the way upstream's watch cache does: an object that stops
//! matching is `DELETED` for this watcher, one that starts matching is `ADDED`. Objects are
//! wrapped in one-row Tables when the `Accept` header asks for them. The stream ends at
//! `timeoutSeconds`, when the store drops a slow watcher, or at shutdown.

use std::convert::Infallible;
use std::time::Duration;

use api::registry::ResourceInfo;
use api::status::ApiError;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Value, json};
use store::{EventType, StoreError};
use tokio::sync::mpsc;

use crate::meta;
use crate::params::{Output, Query};
use crate::response::stream_body;
use crate::select::Selector;
use crate::state::AppState;
use crate::table::{Include, include, table_content_type, write_row};

/// Default watch duration when the client gives no `timeoutSeconds` (upstream picks
/// between 30 and 60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How often a `BOOKMARK` is sent when `allowWatchBookmarks=true`.
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

/// How each event object is rendered.
#[derive(Clone)]
struct Render {
    /// The stored version's resource (selectors, Table rows).
    info: &'static ResourceInfo,
    /// The version the client asked for: objects are converted to it (`api::convert`).
    served: &'static ResourceInfo,
    /// Whether `served` is a converted version (decided once per watch, not per event).
    convert: bool,
    output: Output,
    include: Include,
}

impl Render {
    fn event(&self, ty: &str, obj: &Value) -> Bytes {
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(b"{\"type\":\"");
        out.extend_from_slice(ty.as_bytes());
        out.extend_from_slice(b"\",\"object\":");
        match self.output {
            Output::Json if self.convert => {
                match api::convert::to_served(self.served, obj) {
                    Ok(o) => {
                        let _ = serde_json::to_writer(&mut out, &o);
                    }
                    // An object the conversion cannot show becomes an ERROR event.
                    Err(e) => return error_event(&e),
                }
            }
            Output::Json => {
                let _ = serde_json::to_writer(&mut out, obj);
            }
            Output::Table(v) => {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .cloned()
                    .unwrap_or(json!(""));
                out.extend_from_slice(&table_one(self.info, obj, v, self.include, &rv));
            }
        }
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }

    fn bookmark(&self, rev: u64, initial_end: bool) -> Bytes {
        let mut obj = json!({
            "kind": self.served.kind,
            "apiVersion": self.served.api_version(),
            "metadata": {"resourceVersion": rev.to_string()},
        });
        if initial_end {
            obj["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let mut out = b"{\"type\":\"BOOKMARK\",\"object\":".to_vec();
        let _ = serde_json::to_writer(&mut out, &obj);
        out.extend_from_slice(b"}\n");
        Bytes::from(out)
    }
}

/// A one-row Table for a watch event.
fn table_one(info: &ResourceInfo, obj: &Value, v: &str, inc: Include, rv: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/");
    out.extend_from_slice(v.as_bytes());
    out.extend_from_slice(b"\",\"metadata\":{\"resourceVersion\":");
    let _ = serde_json::to_writer(&mut out, rv);
    out.extend_from_slice(b"},\"columnDefinitions\":");
    let _ = serde_json::to_writer(&mut out, &crate::table::column_definitions(info));
    out.extend_from_slice(b",\"rows\":[");
    write_row(&mut out, info, obj, v, inc, meta::now());
    out.extend_from_slice(b"]}");
    out
}

fn error_event(e: &ApiError) -> Bytes {
    let mut out = b"{\"type\":\"ERROR\",\"object\":".to_vec();
    let _ = serde_json::to_writer(&mut out, &e.to_status());
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

/// Sets `metadata.resourceVersion` of a copy of `obj`.
fn with_rv(obj: &Value, rev: u64) -> Value {
    let mut o = obj.clone();
    meta::meta_mut(&mut o).insert("resourceVersion".into(), json!(rev.to_string()));
    o
}

/// Starts a watch response.
pub async fn serve(
    st: &AppState,
    served: &'static ResourceInfo,
    ns: Option<&str>,
    q: &Query,
    output: Output,
) -> Result<Response, ApiError> {
    let info = api::registry::storage(served);
    let sel = Selector::parse(info, q.get("labelSelector"), q.get("fieldSelector"))?;
    let inc = include(q)?;
    let rv = q.get("resourceVersion").unwrap_or("");
    let after = crate::registry::parse_rv(rv)?;
    let timeout = match q.int("timeoutSeconds")? {
        Some(t) if t > 0 => Duration::from_secs(u64::try_from(t).unwrap_or(u64::MAX / 2)),
        _ => DEFAULT_TIMEOUT,
    };
    let bookmarks = q.bool("allowWatchBookmarks")?;
    // WatchList (`sendInitialEvents=true`): replay the current state whatever the
    // resourceVersion, then a BOOKMARK marking the end of the initial events.
    let send_initial = q.bool("sendInitialEvents")?;
    if send_initial {
        let rvm = q.get("resourceVersionMatch").unwrap_or("");
        if rvm != "NotOlderThan" || !bookmarks {
            return Err(ApiError::invalid_kind(
                "meta.k8s.io",
                "ListOptions",
                "",
                vec![api::status::FieldError::forbidden(
                    "sendInitialEvents",
                    "sendInitialEvents is forbidden for watch unless resourceVersionMatch is \"NotOlderThan\" and allowWatchBookmarks is true",
                )],
            ));
        }
    }
    let resource = info.store_resource();
    let ns = if info.namespaced { ns } else { None };
    let store = st.registry.store();
    let render = Render {
        info,
        served,
        convert: api::registry::is_converted(served),
        output,
        include: inc,
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, Infallible>>(64);

    // Initial state and the watch, chosen by resourceVersion.
    let mut initial: Vec<Bytes> = Vec::new();
    let mut last_rev = after.unwrap_or(0);
    let replay = send_initial || matches!(after, None | Some(0));
    let watch = match after {
        _ if replay => {
            let (items, rev, w) = store.list_and_watch(&resource, ns);
            last_rev = rev;
            for it in items.iter().filter(|o| sel.matches(o)) {
                initial.push(render.event("ADDED", it));
            }
            if send_initial {
                initial.push(render.bookmark(rev, true));
            }
            Some(w)
        }
        None | Some(0) => None,
        Some(after) => match store.watch(&resource, ns, after) {
            Ok(w) => Some(w),
            Err(StoreError::Gone { requested, oldest }) => {
                initial.push(error_event(&ApiError::expired(format!(
                    "too old resource version: {requested} ({oldest})"
                ))));
                None
            }
            Err(e) => return Err(crate::registry::store_error(info, "", e)),
        },
    };
    let mut shutdown = st.shutdown.clone();
    tokio::spawn(async move {
        for b in initial {
            if tx.send(Ok(b)).await.is_err() {
                return;
            }
        }
        let Some(mut watch) = watch else {
            return;
        };
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = shutdown.changed() => return,
                // The client went away: stop at once, not at the next event.
                _ = tx.closed() => return,
                _ = ticker.tick(), if bookmarks => {
                    let rev = watch.bookmark_revision().unwrap_or(last_rev);
                    if rev > 0 && tx.send(Ok(render.bookmark(rev, false))).await.is_err() {
                        return;
                    }
                }
                ev = watch.next_shared() => {
                    let Some(ev) = ev else { return };
                    last_rev = ev.revision;
                    let now_match = sel.matches(&ev.object);
                    let bytes = match ev.kind {
                        EventType::Added => now_match.then(|| render.event("ADDED", &ev.object)),
                        EventType::Deleted => now_match.then(|| render.event("DELETED", &ev.object)),
                        EventType::Modified => {
                            let was = ev.prev.as_ref().is_some_and(|p| sel.matches(p));
                            match (was, now_match) {
                                (true, true) => Some(render.event("MODIFIED", &ev.object)),
                                (false, true) => Some(render.event("ADDED", &ev.object)),
                                (true, false) => {
                                    let prev = ev.prev.as_ref().map(|p| with_rv(p, ev.revision));
                                    prev.map(|p| render.event("DELETED", &p))
                                }
                                (false, false) => None,
                            }
                        }
                    };
                    if let Some(b) = bytes
                        && tx.send(Ok(b)).await.is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    let body = stream_body(tokio_stream::wrappers::ReceiverStream::new(rx));
    let mut r = Response::new(body);
    *r.status_mut() = StatusCode::OK;
    let ct = match output {
        Output::Json => "application/json",
        Output::Table(v) => table_content_type(v),
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(r)
}
