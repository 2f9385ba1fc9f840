//! `/metrics` in the OpenMetrics text format (which Prometheus scrapes), with upstream kube-apiserver's names and labels
//! where one exists: `apiserver_request_total{verb,group,version,resource,subresource,scope,
//! component,code}`, `apiserver_request_duration_seconds` (same labels without `code`,
//! upstream's buckets, long-running requests left out as upstream does) and
//! `apiserver_current_inflight_requests{request_kind}`. Labels come from the served resource
//! table, never from free text in a URL, so their number stays bounded whatever clients send.
//!
//! Start at [`track`], the middleware; [`Metrics::encode`] answers the scrape. `/metrics`
//! needs the same credentials as every other non-public path.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::Method;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::state::AppState;

/// Upstream's `apiserver_request_duration_seconds` buckets.
const BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// What a request was, as upstream's `RequestInfo` and `CleanVerb` describe it.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    verb: String,
    group: String,
    version: String,
    resource: String,
    subresource: String,
    scope: String,
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    #[prometheus(flatten)]
    request: RequestLabels,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    request_kind: String,
}

/// The API server's metrics.
pub struct Metrics {
    registry: Registry,
    total: Family<CodeLabels, Counter>,
    duration: Family<RequestLabels, Histogram>,
    read_only: AtomicI64,
    mutating: AtomicI64,
    inflight: Family<KindLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let total = Family::<CodeLabels, Counter>::default();
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            total.clone(),
        );
        let duration = Family::<RequestLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(BUCKETS)) as fn() -> Histogram,
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            duration.clone(),
        );
        let inflight = Family::<KindLabels, Gauge>::default();
        registry.register(
            "apiserver_current_inflight_requests",
            "Maximal number of currently used inflight request limit of this apiserver per request kind in last second.",
            inflight.clone(),
        );
        Metrics {
            registry,
            total,
            duration,
            read_only: AtomicI64::new(0),
            mutating: AtomicI64::new(0),
            inflight,
        }
    }
}

impl Metrics {
    /// The text exposition.
    pub fn encode(&self) -> String {
        for (kind, n) in [("readOnly", &self.read_only), ("mutating", &self.mutating)] {
            self.inflight
                .get_or_create(&KindLabels {
                    request_kind: kind.into(),
                })
                .set(n.load(Ordering::Relaxed));
        }
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Describes a request (path already percent-decoded) for the labels, and whether it is
/// long-running (watches and connections: not in the latency histogram, as upstream).
pub fn describe(
    method: &Method,
    path: &str,
    query: Option<&str>,
    content_type: &str,
) -> (RequestLabels, bool) {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let mut l = RequestLabels {
        component: "apiserver".into(),
        verb: method.as_str().to_string(),
        ..Default::default()
    };
    let (group, version, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return (l, false),
    };
    let (ns, rest) = match rest {
        ["namespaces", ns, r, more @ ..] => (Some(*ns), [&[*r][..], more].concat()),
        other => (None, other.to_vec()),
    };
    let Some(info) = rest
        .first()
        .and_then(|p| api::registry::lookup(group, version, p))
    else {
        return (l, false);
    };
    l.group = group.into();
    l.version = version.into();
    l.resource = info.plural.into();
    let name = rest.get(1).copied();
    let sub = rest
        .get(2)
        .and_then(|s| info.subresource(s).map(|s| s.name));
    l.subresource = sub.unwrap_or_default().into();
    let watch = query.is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
    let connect = matches!(sub, Some("exec" | "attach" | "portforward" | "proxy"));
    l.verb = match (method, name) {
        _ if connect => "CONNECT".into(),
        (&Method::GET, None) if watch => "WATCH".into(),
        (&Method::GET, None) => "LIST".into(),
        (&Method::PATCH, _) if content_type.starts_with("application/apply-patch") => {
            "APPLY".into()
        }
        (m, _) => m.as_str().into(),
    };
    l.scope = if name.is_some() || *method == Method::POST {
        "resource"
    } else if ns.is_some() {
        "namespace"
    } else {
        "cluster"
    }
    .into();
    let long_running = watch || connect || sub == Some("log");
    (l, long_running)
}

/// The middleware that counts and times every authenticated request.
pub async fn track(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = percent_encoding::percent_decode_str(req.uri().path())
        .decode_utf8_lossy()
        .into_owned();
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (labels, long_running) = describe(req.method(), &path, req.uri().query(), &content_type);
    let m = &st.metrics;
    let counter = if matches!(*req.method(), Method::GET | Method::HEAD) {
        &m.read_only
    } else {
        &m.mutating
    };
    let start = tokio::time::Instant::now();
    if !long_running {
        counter.fetch_add(1, Ordering::Relaxed);
    }
    let resp = next.run(req).await;
    if !long_running {
        counter.fetch_sub(1, Ordering::Relaxed);
        m.duration
            .get_or_create(&labels)
            .observe(start.elapsed().as_secs_f64());
    }
    m.total
        .get_or_create(&CodeLabels {
            request: labels,
            code: resp.status().as_u16().to_string(),
        })
        .inc();
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_described_as_upstream() {
        let d = |m: Method, p: &str, q: Option<&str>, ct: &str| describe(&m, p, q, ct);
        let (l, lr) = d(Method::GET, "/api/v1/namespaces/default/pods", None, "");
        assert_eq!(
            (l.verb.as_str(), l.resource.as_str(), l.scope.as_str(), lr),
            ("LIST", "pods", "namespace", false)
        );
        let (l, lr) = d(Method::GET, "/api/v1/pods", Some("watch=true"), "");
        assert_eq!(
            (l.verb.as_str(), l.scope.as_str(), lr),
            ("WATCH", "cluster", true)
        );
        let (l, _) = d(
            Method::PATCH,
            "/apis/apps/v1/namespaces/x/deployments/web",
            None,
            "application/apply-patch+yaml",
        );
        assert_eq!(
            (l.verb.as_str(), l.group.as_str(), l.scope.as_str()),
            ("APPLY", "apps", "resource")
        );
        let (l, lr) = d(Method::POST, "/api/v1/namespaces/x/pods/p/exec", None, "");
        assert_eq!(
            (l.verb.as_str(), l.subresource.as_str(), lr),
            ("CONNECT", "exec", true)
        );
        let (l, _) = d(Method::PUT, "/api/v1/namespaces/x/pods/p/status", None, "");
        assert_eq!((l.verb.as_str(), l.subresource.as_str()), ("PUT", "status"));
        // Free text in a URL never becomes a label.
        let (l, _) = d(
            Method::GET,
            "/api/v1/namespaces/x/widgets-abc123/y",
            None,
            "",
        );
        assert_eq!(l.resource, "");
        let (l, _) = d(Method::GET, "/healthz", None, "");
        assert_eq!((l.verb.as_str(), l.resource.as_str()), ("GET", ""));
    }

    #[test]
    fn the_exposition_has_upstream_names() {
        let m = Metrics::default();
        let (labels, _) = describe(&Method::GET, "/api/v1/pods", None, "");
        m.total
            .get_or_create(&CodeLabels {
                request: labels.clone(),
                code: "200".into(),
            })
            .inc();
        m.duration.get_or_create(&labels).observe(0.01);
        let text = m.encode();
        assert!(text.contains("# TYPE apiserver_request counter"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(text.contains("apiserver_request_total{verb=\"LIST\",group=\"\",version=\"v1\",resource=\"pods\",subresource=\"\",scope=\"cluster\",component=\"apiserver\",code=\"200\"} 1"), "{text}");
        assert!(
            text.contains("apiserver_request_duration_seconds_bucket{"),
            "{text}"
        );
        assert!(
            text.lines().any(|l| l
                .starts_with("apiserver_request_duration_seconds_bucket{le=\"0.025\",")
                && l.ends_with("} 1")),
            "{text}"
        );
        assert!(
            text.contains("apiserver_current_inflight_requests{request_kind=\"readOnly\"} 0"),
            "{text}"
        );
    }
}
