//! The resource metrics API, `metrics.k8s.io/v1beta1` (`PodMetrics` at `pods`, `NodeMetrics` at
//! `nodes`; get and list), served in-process as metrics-server serves it as an aggregated API:
//! kubectl top, the HorizontalPodAutoscaler and `kubectl get --raw` read it.
//!
//! [`MetricsSource`] is metrics-server's storage: a [`run`] loop scrapes every Ready node's
//! `/metrics/resource` (the kubelet's resource metrics, through the same TLS client as
//! `nodes/{name}/proxy`) each metric resolution (15 s by default), [`decode`]s the Prometheus
//! text and keeps the last two points of each node and container. Usage is computed from two
//! points as metrics-server's `resourceUsage` does: CPU is the cumulative counter's increase over
//! the time between them (the `window`), in nanocores; memory is the last working set. A pod is
//! reported only when every one of its containers has two points, and only while it is Running.
//! [`handle`] serves the REST side (selectors, namespaces, JSON or Table), and the
//! HorizontalPodAutoscaler controller reads [`MetricsSource::pod_metrics`] directly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use api::quantity::{Format, Quantity};
use api::registry::ResourceInfo;
use api::status::ApiError;
use axum::extract::Request;
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{Value, json};
use std::sync::{Mutex, MutexGuard};

use crate::params::{Output, Query};
use crate::response::{bytes_response, json_response};
use crate::select::Selector;
use crate::state::AppState;
use crate::table::{include, table_bytes, table_content_type};

/// The group served here.
pub const GROUP: &str = "metrics.k8s.io";
/// metrics-server's default `--metric-resolution`.
pub const DEFAULT_RESOLUTION: Duration = Duration::from_secs(15);
/// metrics-server does not compute a rate for a container younger than this from its start.
const FRESH_CONTAINER_MIN_RESOLUTION_MS: i64 = 10_000;
/// The most a node's scrape may return (metrics-server's limit).
const MAX_SCRAPE_BYTES: usize = 10 << 20;

/// One point of a node or container: metrics-server's `MetricsPoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// When the container (or node) started, milliseconds since the epoch (0: unknown).
    pub start_ms: i64,
    /// When the point was measured, milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// Cumulative CPU time since the start, nanoseconds.
    pub cpu_ns: u64,
    /// Working set, bytes.
    pub memory: u64,
}

/// One scrape of one node: its point and its pods' containers' points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// The node's point, if it reported CPU and memory.
    pub node: Option<Point>,
    /// `(namespace, pod)` → container → point.
    pub pods: BTreeMap<(String, String), BTreeMap<String, Point>>,
}

/// Usage computed from two points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// CPU in nanocores.
    pub cpu_nanocores: u64,
    /// Working set in bytes.
    pub memory: u64,
}

/// A pod's usage: its containers', the time of the earliest last point, and the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodUsage {
    /// Timestamp (ms since the epoch).
    pub timestamp_ms: i64,
    /// Window (ms).
    pub window_ms: i64,
    /// Container name → usage, in name order.
    pub containers: Vec<(String, Usage)>,
}

/// A node's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeUsage {
    /// Timestamp (ms since the epoch).
    pub timestamp_ms: i64,
    /// Window (ms).
    pub window_ms: i64,
    /// Usage.
    pub usage: Usage,
}

/// metrics-server's `resourceUsage`: `None` when the points are not a pair of one run.
fn resource_usage(last: &Point, prev: &Point) -> Option<(Usage, i64, i64)> {
    if last.start_ms < prev.start_ms || last.cpu_ns < prev.cpu_ns {
        return None;
    }
    let window = last.timestamp_ms - prev.timestamp_ms;
    if window <= 0 {
        return None;
    }
    let cpu = (last.cpu_ns - prev.cpu_ns) as f64 / (window as f64 / 1000.0);
    Some((
        Usage {
            cpu_nanocores: cpu as u64,
            memory: last.memory,
        },
        last.timestamp_ms,
        window,
    ))
}

type PodKey = (String, String);

#[derive(Debug, Default)]
struct Storage {
    last_nodes: HashMap<String, Point>,
    prev_nodes: HashMap<String, Point>,
    last_pods: HashMap<PodKey, BTreeMap<String, Point>>,
    prev_pods: HashMap<PodKey, BTreeMap<String, Point>>,
}

/// The metrics kept from the last two scrapes (metrics-server's `storage`).
#[derive(Debug)]
pub struct MetricsSource {
    storage: Mutex<Storage>,
    resolution: Mutex<Duration>,
}

impl Default for MetricsSource {
    fn default() -> Self {
        Self {
            storage: Mutex::new(Storage::default()),
            resolution: Mutex::new(DEFAULT_RESOLUTION),
        }
    }
}

/// A lock whose holder panicked still guards consistent data here (every write replaces it
/// whole).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MetricsSource {
    /// The metric resolution (the scrape period).
    pub fn resolution(&self) -> Duration {
        *lock(&self.resolution)
    }

    /// Stores one scrape of every node (`node name → batch`), as metrics-server's node and
    /// pod storages do: a new point moves the stored one to `prev` when it is newer; a
    /// container that restarted starts over; a fresh container (started less than a
    /// resolution ago but at least 10 s ago) gets a zero point at its start time.
    pub fn store(&self, batches: &HashMap<String, Batch>) {
        let resolution_ms = self.resolution().as_millis() as i64;
        let mut s = lock(&self.storage);
        let mut last_nodes = HashMap::new();
        let mut prev_nodes = HashMap::new();
        for (node, b) in batches {
            let Some(new) = b.node else { continue };
            last_nodes.insert(node.clone(), new);
            if let Some(last) = s.last_nodes.get(node) {
                if new.timestamp_ms > last.timestamp_ms {
                    prev_nodes.insert(node.clone(), *last);
                } else if let Some(prev) = s.prev_nodes.get(node)
                    && prev.timestamp_ms < new.timestamp_ms
                {
                    prev_nodes.insert(node.clone(), *prev);
                }
            }
        }
        let mut last_pods: HashMap<PodKey, BTreeMap<String, Point>> = HashMap::new();
        let mut prev_pods: HashMap<PodKey, BTreeMap<String, Point>> = HashMap::new();
        for b in batches.values() {
            for (key, containers) in &b.pods {
                if last_pods.contains_key(key) {
                    tracing::debug!(pod = ?key, "duplicate pod point");
                    continue;
                }
                let mut prev_cs = BTreeMap::new();
                for (name, new) in containers {
                    let age = new.timestamp_ms - new.start_ms;
                    if new.start_ms > 0
                        && new.start_ms < new.timestamp_ms
                        && age < resolution_ms
                        && age >= FRESH_CONTAINER_MIN_RESOLUTION_MS
                    {
                        prev_cs.insert(
                            name.clone(),
                            Point {
                                timestamp_ms: new.start_ms,
                                cpu_ns: 0,
                                ..*new
                            },
                        );
                    } else if let Some(last) = s.last_pods.get(key).and_then(|p| p.get(name))
                        && new.start_ms < last.timestamp_ms
                    {
                        if new.timestamp_ms > last.timestamp_ms {
                            prev_cs.insert(name.clone(), *last);
                        } else if let Some(prev) = s.prev_pods.get(key).and_then(|p| p.get(name))
                            && prev.timestamp_ms < new.timestamp_ms
                        {
                            prev_cs.insert(name.clone(), *prev);
                        }
                    }
                }
                if !prev_cs.is_empty() {
                    prev_pods.insert(key.clone(), prev_cs);
                }
                last_pods.insert(key.clone(), containers.clone());
            }
        }
        *s = Storage {
            last_nodes,
            prev_nodes,
            last_pods,
            prev_pods,
        };
    }

    /// A node's usage, once it has two points.
    pub fn node_metrics(&self, node: &str) -> Option<NodeUsage> {
        let s = lock(&self.storage);
        let (usage, timestamp_ms, window_ms) =
            resource_usage(s.last_nodes.get(node)?, s.prev_nodes.get(node)?)?;
        Some(NodeUsage {
            timestamp_ms,
            window_ms,
            usage,
        })
    }

    /// A pod's usage, once every container it reported has two points (metrics-server's
    /// `GetMetrics`: the earliest of the containers' times and its window).
    pub fn pod_metrics(&self, namespace: &str, name: &str) -> Option<PodUsage> {
        let s = lock(&self.storage);
        let key = (namespace.to_string(), name.to_string());
        let last = s.last_pods.get(&key)?;
        let prev = s.prev_pods.get(&key)?;
        let mut containers = Vec::new();
        let mut earliest: Option<(i64, i64)> = None;
        for (c, l) in last {
            let p = prev.get(c)?;
            let Some((usage, ts, window)) = resource_usage(l, p) else {
                tracing::debug!(container = %c, pod = %name, "skipping container usage metric");
                continue;
            };
            containers.push((c.clone(), usage));
            if earliest.is_none_or(|(t, _)| t > ts) {
                earliest = Some((ts, window));
            }
        }
        let (timestamp_ms, window_ms) = earliest.unwrap_or((0, 0));
        Some(PodUsage {
            timestamp_ms,
            window_ms,
            containers,
        })
    }
}

/// The labels of a sample line (`{a="x",b="y"}`), unescaped.
fn parse_labels(s: &str) -> Option<(BTreeMap<String, String>, &str)> {
    let mut out = BTreeMap::new();
    let mut rest = s.strip_prefix('{')?;
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if let Some(r) = rest.strip_prefix('}') {
            return Some((out, r));
        }
        let (key, r) = rest.split_once('=')?;
        let mut r = r.strip_prefix('"')?.chars();
        let mut value = String::new();
        loop {
            match r.next()? {
                '\\' => match r.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        out.insert(key.trim().to_string(), value);
        rest = r.as_str();
    }
}

/// Decodes a node's `/metrics/resource` text (metrics-server's `decodeBatch`): samples without
/// a timestamp take `now_ms`; containers and nodes reporting a zero CPU counter or zero
/// memory are dropped, as metrics-server drops them.
pub fn decode(text: &str, now_ms: i64) -> Batch {
    #[derive(Default, Clone, Copy)]
    struct Partial {
        start_ms: i64,
        cpu: Option<(u64, i64)>,
        memory: Option<u64>,
    }
    let mut node = Partial::default();
    let mut containers: BTreeMap<(String, String, String), Partial> = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        let (labels, rest) = if line[name_end..].starts_with('{') {
            match parse_labels(&line[name_end..]) {
                Some(x) => x,
                None => continue,
            }
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut fields = rest.split_whitespace();
        let Some(value) = fields.next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        if !value.is_finite() || value < 0.0 {
            continue;
        }
        let ts = fields
            .next()
            .and_then(|t| t.parse::<i64>().ok())
            .unwrap_or(now_ms);
        let container = || {
            Some((
                labels.get("namespace")?.clone(),
                labels.get("pod")?.clone(),
                labels.get("container")?.clone(),
            ))
        };
        match name {
            "node_cpu_usage_seconds_total" => node.cpu = Some(((value * 1e9) as u64, ts)),
            "node_memory_working_set_bytes" => node.memory = Some(value as u64),
            "container_cpu_usage_seconds_total" => {
                if let Some(k) = container() {
                    containers.entry(k).or_default().cpu = Some(((value * 1e9) as u64, ts));
                }
            }
            "container_memory_working_set_bytes" => {
                if let Some(k) = container() {
                    containers.entry(k).or_default().memory = Some(value as u64);
                }
            }
            "container_start_time_seconds" => {
                if let Some(k) = container() {
                    containers.entry(k).or_default().start_ms = (value * 1000.0) as i64;
                }
            }
            _ => {}
        }
    }
    let point = |p: Partial| -> Option<Point> {
        let (cpu_ns, timestamp_ms) = p.cpu?;
        let memory = p.memory?;
        (cpu_ns != 0 && memory != 0).then_some(Point {
            start_ms: p.start_ms,
            timestamp_ms,
            cpu_ns,
            memory,
        })
    };
    let mut batch = Batch {
        node: point(node),
        ..Batch::default()
    };
    for ((ns, pod, c), p) in containers {
        let entry = batch.pods.entry((ns, pod)).or_default();
        if let Some(pt) = point(p) {
            entry.insert(c, pt);
        }
    }
    batch
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn is_ready(node: &Value) -> bool {
    node.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Ready")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// Scrapes every Ready node each `resolution` until `shutdown`, storing into `st`'s source.
pub async fn run(
    st: Arc<AppState>,
    resolution: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    *lock(&st.resource_metrics.resolution) = resolution;
    // metrics-server's scrape timeout: most of a resolution.
    let timeout = resolution.mul_f64(0.9).max(Duration::from_millis(500));
    let mut tick = tokio::time::interval(resolution);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let Some(nodes_info) = api::registry::lookup("", "v1", "nodes") else {
            return;
        };
        let nodes = match st.registry.list(nodes_info, None, None, None) {
            Ok((items, _)) => items,
            Err(e) => {
                tracing::warn!(error = %e, "listing nodes to scrape");
                continue;
            }
        };
        let proxy = crate::kubelet_proxy::KubeletProxy {
            tls: st.kubelet_tls.get().cloned(),
        };
        let mut scrapes = tokio::task::JoinSet::new();
        for node in nodes.iter().filter(|n| is_ready(n)) {
            let name = crate::meta::meta_str(node, "name").to_string();
            let (proxy, registry) = (proxy.clone(), st.registry.clone());
            scrapes.spawn(async move {
                let got = tokio::time::timeout(
                    timeout,
                    proxy.fetch_node(&registry, &name, "/metrics/resource", MAX_SCRAPE_BYTES),
                )
                .await;
                (name, got)
            });
        }
        let mut batches = HashMap::new();
        while let Some(done) = scrapes.join_next().await {
            let Ok((node, got)) = done else { continue };
            match got {
                Ok(Ok(body)) => {
                    let text = String::from_utf8_lossy(&body);
                    batches.insert(node, decode(&text, now_ms()));
                }
                Ok(Err(e)) => tracing::warn!(%node, error = %e, "failed to scrape node"),
                Err(_) => tracing::warn!(%node, "scraping the node timed out"),
            }
        }
        st.resource_metrics.store(&batches);
    }
}

/// The resource a not-found error names (`podmetrics.metrics.k8s.io "ns/x" not found`).
fn error_resource(info: &ResourceInfo) -> ResourceInfo {
    ResourceInfo {
        plural: if info.namespaced {
            "podmetrics"
        } else {
            "nodemetrics"
        },
        ..*info
    }
}

/// An RFC 3339 time (seconds precision, as `metav1.Time` marshals) of `ms`.
fn rfc3339(ms: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Go's `time.Duration.String()` of `ms` milliseconds (`15.012s`, `1m0.5s`, `500ms`).
pub fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let neg = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms < 1000 {
        return format!("{neg}{ms}ms");
    }
    let (h, m, s, frac) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let mut secs = s.to_string();
    if frac != 0 {
        let f = format!("{frac:03}");
        secs.push('.');
        secs.push_str(f.trim_end_matches('0'));
    }
    match (h, m) {
        (0, 0) => format!("{neg}{secs}s"),
        (0, m) => format!("{neg}{m}m{secs}s"),
        (h, m) => format!("{neg}{h}h{m}m{secs}s"),
    }
}

/// metrics-server's quantities: CPU in nanocores (decimal), memory in bytes (binary).
pub fn usage_json(u: &Usage) -> Value {
    let cpu = Quantity::parse(&format!("{}n", u.cpu_nanocores))
        .map(|q| q.canonical())
        .unwrap_or_else(|_| "0".into());
    let memory = i64::try_from(u.memory).unwrap_or(i64::MAX);
    json!({
        "cpu": cpu,
        "memory": Quantity::from_value(memory, Format::BinarySI).canonical(),
    })
}

fn metadata(obj: &Value, namespaced: bool, now: &str) -> Value {
    let mut m = json!({
        "name": crate::meta::meta_str(obj, "name"),
        "creationTimestamp": now,
    });
    if namespaced {
        m["namespace"] = json!(crate::meta::meta_str(obj, "namespace"));
    }
    if let Some(l) = obj.pointer("/metadata/labels").filter(|l| l.is_object()) {
        m["labels"] = l.clone();
    }
    m
}

/// The PodMetrics of `pod`, if it is Running and has usage.
fn pod_object(src: &MetricsSource, pod: &Value, now: &str) -> Option<Value> {
    if pod.pointer("/status/phase").and_then(Value::as_str) != Some("Running") {
        return None;
    }
    let ns = crate::meta::meta_str(pod, "namespace");
    let name = crate::meta::meta_str(pod, "name");
    let u = src.pod_metrics(ns, name)?;
    let containers: Vec<Value> = u
        .containers
        .iter()
        .map(|(c, usage)| json!({"name": c, "usage": usage_json(usage)}))
        .collect();
    Some(json!({
        "kind": "PodMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": metadata(pod, true, now),
        "timestamp": rfc3339(u.timestamp_ms),
        "window": go_duration(u.window_ms),
        "containers": containers,
    }))
}

fn node_object(src: &MetricsSource, node: &Value, now: &str) -> Option<Value> {
    let u = src.node_metrics(crate::meta::meta_str(node, "name"))?;
    Some(json!({
        "kind": "NodeMetrics",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": metadata(node, false, now),
        "timestamp": rfc3339(u.timestamp_ms),
        "window": go_duration(u.window_ms),
        "usage": usage_json(&u.usage),
    }))
}

fn accept(req: &Request) -> Result<Output, ApiError> {
    let a = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    crate::params::negotiate(a)
        .ok_or_else(|| ApiError::not_acceptable(&["application/json", "application/yaml"]))
}

/// `GET /apis/metrics.k8s.io/v1beta1/…/{pods,nodes}[/name]`: `name` `None` lists.
pub fn handle(
    st: &AppState,
    info: &'static ResourceInfo,
    ns: Option<&str>,
    name: Option<&str>,
    req: &Request,
    q: &Query,
) -> Result<Response, ApiError> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let verb = match (req.method().clone(), name) {
            (Method::POST, _) => "create",
            (Method::DELETE, None) => "deletecollection",
            (Method::DELETE, Some(_)) => "delete",
            (Method::PUT, _) => "update",
            (Method::PATCH, _) => "patch",
            (m, _) => return Err(ApiError::method_not_allowed(info, m.as_str())),
        };
        return Err(ApiError::method_not_allowed(info, verb));
    }
    if name.is_none() && q.bool("watch")? {
        return Err(ApiError::method_not_allowed(info, "watch"));
    }
    let output = accept(req)?;
    let src = &st.resource_metrics;
    let now = rfc3339(now_ms());
    let source_info = api::registry::lookup("", "v1", info.plural)
        .ok_or_else(|| ApiError::internal("pods and nodes are served"))?;
    let items: Vec<Arc<Value>> = match name {
        Some(name) => {
            let ns = ns.unwrap_or("");
            let obj = st.registry.get(source_info, ns, name)?;
            let m = if info.namespaced {
                pod_object(src, &obj, &now)
            } else {
                node_object(src, &obj, &now)
            };
            let shown = if info.namespaced {
                format!("{ns}/{name}")
            } else {
                name.to_string()
            };
            let m = m.ok_or_else(|| ApiError::not_found(&error_resource(info), &shown))?;
            if let Output::Json = output {
                return Ok(json_response(StatusCode::OK, &m));
            }
            vec![Arc::new(m)]
        }
        None => {
            // Selectors match the pods (nodes) themselves, as metrics-server lists them.
            let labels = q.get("labelSelector");
            let sel = Selector::parse(info, None, q.get("fieldSelector"))?;
            let (objs, _) = st.registry.list(source_info, ns, labels, None)?;
            let mut objs: Vec<Arc<Value>> = objs.into_iter().filter(|o| sel.matches(o)).collect();
            objs.sort_by(|a, b| {
                let k = |o: &Value| {
                    (
                        crate::meta::meta_str(o, "namespace").to_string(),
                        crate::meta::meta_str(o, "name").to_string(),
                    )
                };
                k(a).cmp(&k(b))
            });
            objs.iter()
                .filter_map(|o| {
                    if info.namespaced {
                        pod_object(src, o, &now)
                    } else {
                        node_object(src, o, &now)
                    }
                })
                .map(Arc::new)
                .collect()
        }
    };
    match output {
        Output::Json => {
            let list = json!({
                "kind": info.list_kind,
                "apiVersion": "metrics.k8s.io/v1beta1",
                "metadata": {},
                "items": items.iter().map(|i| (**i).clone()).collect::<Vec<_>>(),
            });
            Ok(json_response(StatusCode::OK, &list))
        }
        Output::Table(v) => {
            let t = table_bytes(info, &items, v, include(q)?, &json!({}));
            Ok(bytes_response(StatusCode::OK, table_content_type(v), t))
        }
    }
}

#[cfg(test)]
mod tests;
