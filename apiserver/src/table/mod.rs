//! Server-side `Table` output (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io`), exactly
//! as a Kubernetes 1.32 API server prints it: the column definitions of a resource and the cells
//! of one object's row, ported from upstream `pkg/printers/internalversion/printers.go`.
//!
//! One file per printed kind holds that kind's columns and its row builder (`pod.rs` is
//! `printPod` with its column list; the kinds' tests are in `tests.rs`); this file holds the
//! kind map (`printer`), the column and cell helpers the printers share, and the entry points
//! the list handler calls:
//! [`column_definitions`], [`row_cells`] and [`row_conditions`]. A new printed kind is a new file
//! here plus one line in `printer`.
//!
//! The API server always generates tables with `Wide: true` (upstream
//! `pkg/printers/storage.TableConvertor`), so every row carries every column and kubectl hides the
//! `priority: 1` ones unless `-o wide`. Ages are formatted by [`human_duration`] (upstream
//! `duration.HumanDuration`). Resources without an upstream printer get the generic
//! `Name`/`Created At` table of `rest.NewDefaultTableConvertor` (`default.rs`).

use std::sync::Arc;

use api::registry::ResourceInfo;
use api::status::ApiError;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use crate::params::Query;

mod configmap;
mod controllerrevision;
mod cronjob;
mod csr;
mod daemonset;
mod default;
mod deployment;
mod endpoints;
mod endpointslice;
mod event;
mod hpa;
mod ingress;
mod job;
mod lease;
mod metrics;
mod namespace;
mod node;
mod pod;
mod poddisruptionbudget;
mod rbac;
mod replicaset;
mod replicationcontroller;
mod runtimeclass;
mod secret;
mod service;
mod serviceaccount;
mod statefulset;
mod storage;
#[cfg(test)]
mod tests;

/// One column of a table, as upstream declares it in `AddHandlers`.
struct Column {
    name: &'static str,
    ty: &'static str,
    format: &'static str,
    description: &'static str,
    priority: i32,
}

/// A priority-0 column without a format.
const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 0,
    }
}

/// A `-o wide` (priority 1) column.
const fn wide(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column {
        name,
        ty,
        format: "",
        description,
        priority: 1,
    }
}

// Descriptions: the swagger docs upstream takes them from (`metav1.ObjectMeta{}.SwaggerDoc()`,
// `extensionsv1beta1.ReplicaSetSpec{}.SwaggerDoc()`, ...), verbatim.
const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATED_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const CONTAINERS_DOC: &str = "Names of each container in the template.";
const IMAGES_DOC: &str = "Images referenced by each container in the template.";

/// The `Name` column every printer starts with.
const NAME: Column = Column {
    name: "Name",
    ty: "string",
    format: "name",
    description: NAME_DOC,
    priority: 0,
};
/// The `Age` column.
const AGE: Column = col("Age", "string", CREATED_DOC);

/// One upstream printer: a kind's columns (as `AddHandlers` declares them) and its row builder.
struct Printer {
    columns: &'static [Column],
    row: RowFn,
}

/// A printer's row builder: the cells of one object's row.
type RowFn = fn(&Rows, &Value) -> Vec<Value>;

/// The kind map: the printer of `info`'s objects, one per resource with an upstream printer.
fn printer(info: &ResourceInfo) -> Printer {
    let (columns, row): (&'static [Column], RowFn) = match (info.group, info.plural) {
        ("", "pods") => (pod::COLUMNS, pod::row),
        ("apps", "deployments") => (deployment::COLUMNS, deployment::row),
        ("apps", "replicasets") => (replicaset::COLUMNS, replicaset::row),
        ("", "replicationcontrollers") => {
            (replicationcontroller::COLUMNS, replicationcontroller::row)
        }
        ("apps", "statefulsets") => (statefulset::COLUMNS, statefulset::row),
        ("apps", "daemonsets") => (daemonset::COLUMNS, daemonset::row),
        ("apps", "controllerrevisions") => (controllerrevision::COLUMNS, controllerrevision::row),
        ("batch", "jobs") => (job::COLUMNS, job::row),
        ("batch", "cronjobs") => (cronjob::COLUMNS, cronjob::row),
        ("", "services") => (service::COLUMNS, service::row),
        ("", "endpoints") => (endpoints::COLUMNS, endpoints::row),
        ("discovery.k8s.io", "endpointslices") => (endpointslice::COLUMNS, endpointslice::row),
        ("", "nodes") => (node::COLUMNS, node::row),
        // events.k8s.io/v1 Events are printed by the same printer upstream (converted to core).
        ("", "events") => (event::COLUMNS, event::row),
        ("", "namespaces") => (namespace::COLUMNS, namespace::row),
        ("", "configmaps") => (configmap::COLUMNS, configmap::row),
        ("", "secrets") => (secret::COLUMNS, secret::row),
        ("", "serviceaccounts") => (serviceaccount::COLUMNS, serviceaccount::row),
        ("coordination.k8s.io", "leases") => (lease::COLUMNS, lease::row),
        ("", "persistentvolumes") => (storage::PV_COLUMNS, storage::pv_row),
        ("", "persistentvolumeclaims") => (storage::PVC_COLUMNS, storage::pvc_row),
        ("storage.k8s.io", "storageclasses") => (storage::SC_COLUMNS, storage::sc_row),
        ("networking.k8s.io", "ingresses") => (ingress::INGRESS_COLUMNS, ingress::ingress_row),
        ("networking.k8s.io", "ingressclasses") => (ingress::CLASS_COLUMNS, ingress::class_row),
        ("policy", "poddisruptionbudgets") => {
            (poddisruptionbudget::COLUMNS, poddisruptionbudget::row)
        }
        ("node.k8s.io", "runtimeclasses") => (runtimeclass::COLUMNS, runtimeclass::row),
        ("certificates.k8s.io", "certificatesigningrequests") => (csr::COLUMNS, csr::row),
        // printRole / printClusterRole: the name and `Created At`, as the default table.
        ("rbac.authorization.k8s.io", "roles" | "clusterroles") => (default::COLUMNS, default::row),
        ("rbac.authorization.k8s.io", "rolebindings") => (rbac::ROLE_BINDING_COLUMNS, rbac::row),
        ("rbac.authorization.k8s.io", "clusterrolebindings") => {
            (rbac::CLUSTER_ROLE_BINDING_COLUMNS, rbac::row)
        }
        ("autoscaling", "horizontalpodautoscalers") => (hpa::COLUMNS, hpa::row),
        ("metrics.k8s.io", "pods" | "nodes") => (metrics::COLUMNS, metrics::row),
        _ => (default::COLUMNS, default::row),
    };
    Printer { columns, row }
}

/// The `columnDefinitions` of a Table of `info`'s objects:
/// `[{"name","type","format","description","priority"}]`, all columns (wide ones have
/// `priority: 1`), in upstream order.
pub fn column_definitions(info: &ResourceInfo) -> Vec<Value> {
    printer(info)
        .columns
        .iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.ty,
                "format": c.format,
                "description": c.description,
                "priority": c.priority,
            })
        })
        .collect()
}

/// The `cells` of `obj`'s row, one per entry of [`column_definitions`], computed as upstream's
/// printer does with `Wide: true`; ages are relative to `now`. Missing fields read as Go zero
/// values (as the internal types upstream prints would hold them).
pub fn row_cells(info: &ResourceInfo, obj: &Value, now: Timestamp) -> Vec<Value> {
    (printer(info).row)(&Rows { now }, obj)
}

/// The `conditions` of `obj`'s row: upstream marks succeeded and failed pods `Completed`
/// (`podSuccessConditions`/`podFailedConditions`); every other row has none (omit the field).
pub fn row_conditions(info: &ResourceInfo, obj: &Value) -> Vec<Value> {
    match (info.group, info.plural) {
        ("", "pods") => pod::conditions(obj),
        _ => Vec::new(),
    }
}

/// `includeObject` of a Table request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    /// No `object` in rows.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The full object.
    Object,
}

/// Parses `includeObject`.
pub fn include(q: &Query) -> Result<Include, ApiError> {
    match q.get("includeObject").unwrap_or("") {
        "" | "Metadata" => Ok(Include::Metadata),
        "None" => Ok(Include::None),
        "Object" => Ok(Include::Object),
        other => Err(ApiError::bad_request(format!(
            "includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\""
        ))),
    }
}

/// Appends one Table row for `obj` (`{"cells":[…],"object":…}`), serialized directly
/// (no copy of the object).
pub fn write_row(
    out: &mut Vec<u8>,
    info: &ResourceInfo,
    obj: &Value,
    table_version: &str,
    inc: Include,
    now: k8s_openapi::jiff::Timestamp,
) {
    out.extend_from_slice(b"{\"cells\":");
    let _ = serde_json::to_writer(&mut *out, &row_cells(info, obj, now));
    match inc {
        Include::None => {}
        Include::Metadata => {
            out.extend_from_slice(
                b",\"object\":{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":\"meta.k8s.io/",
            );
            out.extend_from_slice(table_version.as_bytes());
            out.extend_from_slice(b"\",\"metadata\":");
            match obj.get("metadata") {
                Some(m) => {
                    let _ = serde_json::to_writer(&mut *out, m);
                }
                None => out.extend_from_slice(b"{}"),
            }
            out.push(b'}');
        }
        Include::Object => {
            out.extend_from_slice(b",\"object\":");
            let _ = serde_json::to_writer(&mut *out, obj);
        }
    }
    out.push(b'}');
}

/// A serialized Table of `objs` with `list_meta` as its metadata.
pub fn table_bytes(
    info: &ResourceInfo,
    objs: &[Arc<Value>],
    table_version: &str,
    inc: Include,
    list_meta: &Value,
) -> Vec<u8> {
    let now = crate::meta::now();
    let mut out = Vec::with_capacity(512 + objs.len() * 768);
    out.extend_from_slice(b"{\"kind\":\"Table\",\"apiVersion\":\"meta.k8s.io/");
    out.extend_from_slice(table_version.as_bytes());
    out.extend_from_slice(b"\",\"metadata\":");
    let _ = serde_json::to_writer(&mut out, list_meta);
    out.extend_from_slice(b",\"columnDefinitions\":");
    let _ = serde_json::to_writer(&mut out, &column_definitions(info));
    out.extend_from_slice(b",\"rows\":[");
    for (i, o) in objs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_row(&mut out, info, o, table_version, inc, now);
    }
    out.extend_from_slice(b"]}");
    out
}

/// The content type of a Table response.
pub fn table_content_type(v: &str) -> &'static str {
    if v == "v1beta1" {
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
    } else {
        "application/json;as=Table;v=v1;g=meta.k8s.io"
    }
}

/// Upstream `duration.HumanDuration`: a succinct, 2–3 significant figure rendering of
/// `nanos` nanoseconds (`5s`, `3m2s`, `15m`, `5h3m`, `2d3h`, `45d`, `2y10d`, `9y`); `0s` for up
/// to 2 s in the future (clock skew) and `<invalid>` beyond.
pub fn human_duration(nanos: i128) -> String {
    const SECOND: i128 = 1_000_000_000;
    const MINUTE: i128 = 60 * SECOND;
    const HOUR: i128 = 60 * MINUTE;
    // Go truncates toward zero, as Rust's integer division does.
    let seconds = nanos / SECOND;
    if seconds < -1 {
        return "<invalid>".into();
    } else if seconds < 0 {
        return "0s".into();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = nanos / MINUTE;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = nanos / HOUR;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        format!("{hours}h{m}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        format!("{}d{}h", hours / 24, h)
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        format!("{}y{}d", hours / 24 / 365, dy)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// Go's zero `time.Time` (0001-01-01T00:00:00Z), what a missing timestamp prints as.
const GO_ZERO_TIME: Timestamp = Timestamp::constant(-62_135_596_800, 0);

/// A string field, `""` when absent (Go's zero value).
fn s(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// An integer field, 0 when absent.
fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The elements of an array field, none when absent.
fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Number of entries of a map field.
fn len(v: &Value) -> i64 {
    v.as_object().map_or(0, |m| m.len() as i64)
}

fn name(obj: &Value) -> &str {
    s(&obj["metadata"]["name"])
}

/// A `metav1.Time`/`MicroTime`; `None` is Go's zero time (absent, null or unparsable).
fn timestamp(v: &Value) -> Option<Timestamp> {
    v.as_str().and_then(|t| t.parse::<Timestamp>().ok())
}

/// `layoutContainerCells`: container names and images, comma-joined.
fn container_cells(containers: &Value) -> (String, String) {
    let list = items(containers);
    let names = list.iter().map(|c| s(&c["name"])).collect::<Vec<_>>();
    let images = list.iter().map(|c| s(&c["image"])).collect::<Vec<_>>();
    (names.join(","), images.join(","))
}

/// `<none>` for an empty string.
fn or_none(v: &str) -> &str {
    if v.is_empty() { "<none>" } else { v }
}

/// `spec.replicas`, which defaulting sets to 1 when absent.
fn replicas(v: &Value) -> i64 {
    v.as_i64().unwrap_or(1)
}

/// Row computation for one table, all ages relative to `now`.
struct Rows {
    now: Timestamp,
}

impl Rows {
    /// `translateTimestampSince`: `<unknown>` for the zero time.
    fn since(&self, t: Option<Timestamp>) -> String {
        match t {
            Some(t) => human_duration(self.now.as_nanosecond() - t.as_nanosecond()),
            None => "<unknown>".into(),
        }
    }

    /// The row most printers make: the name, `cells`, then the age.
    fn named(&self, obj: &Value, cells: impl IntoIterator<Item = Value>) -> Vec<Value> {
        let mut row = vec![name(obj).into()];
        row.extend(cells);
        row.push(self.age(obj).into());
        row
    }

    /// The `Age` cell.
    fn age(&self, obj: &Value) -> String {
        self.since(timestamp(&obj["metadata"]["creationTimestamp"]))
    }
}

/// A label map as `labels.FormatLabels` prints it: `k=v` sorted by key, `<none>` when empty.
pub(super) fn format_labels(v: &Value) -> String {
    let set: std::collections::BTreeMap<&str, &str> = v
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    if set.is_empty() {
        return "<none>".into();
    }
    set.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod test_support {
    use api::registry::lookup;
    use k8s_openapi::jiff::Timestamp;
    use serde_json::Value;

    use super::{column_definitions, row_cells};

    pub(super) fn now() -> Timestamp {
        "2024-05-01T12:00:00Z".parse().unwrap()
    }

    /// The row of `obj`, checked to have one cell per column.
    pub(super) fn cells(group: &str, plural: &str, obj: Value) -> Vec<Value> {
        let info = lookup(group, "v1", plural).unwrap();
        let cells = row_cells(info, &obj, now());
        assert_eq!(
            cells.len(),
            column_definitions(info).len(),
            "{plural}: one cell per column"
        );
        cells
    }

    /// The (name, priority) of each column.
    pub(super) fn names(group: &str, plural: &str) -> Vec<(String, i64)> {
        column_definitions(lookup(group, "v1", plural).unwrap())
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_string(),
                    c["priority"].as_i64().unwrap(),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod shared_tests {
    use serde_json::json;

    use super::test_support::now;
    use super::*;

    #[test]
    fn human_duration_matches_upstream() {
        let s = 1_000_000_000i128;
        let cases = [
            (-3 * s, "<invalid>"),
            (-2 * s, "<invalid>"),
            (-s - s / 2, "0s"),
            (0, "0s"),
            (5 * s, "5s"),
            (119 * s, "119s"),
            (120 * s, "2m"),
            (182 * s, "3m2s"),
            (599 * s, "9m59s"),
            (600 * s, "10m"),
            (179 * 60 * s, "179m"),
            (180 * 60 * s, "3h"),
            ((5 * 3600 + 3 * 60) * s, "5h3m"),
            (8 * 3600 * s, "8h"),
            (47 * 3600 * s, "47h"),
            (48 * 3600 * s, "2d"),
            (51 * 3600 * s, "2d3h"),
            (8 * 24 * 3600 * s, "8d"),
            (729 * 24 * 3600 * s, "729d"),
            (730 * 24 * 3600 * s, "2y"),
            (740 * 24 * 3600 * s, "2y10d"),
            (8 * 365 * 24 * 3600 * s, "8y"),
        ];
        for (d, want) in cases {
            assert_eq!(human_duration(d), want, "{d}ns");
        }
    }

    #[test]
    fn every_served_resource_has_consistent_columns() {
        for info in api::registry::resources() {
            let defs = column_definitions(info);
            assert!(!defs.is_empty());
            for d in &defs {
                for key in ["name", "type", "format", "description", "priority"] {
                    assert!(d.get(key).is_some(), "{} column lacks {key}", info.plural);
                }
            }
            let cells = row_cells(info, &json!({"metadata": {"name": "x"}}), now());
            assert_eq!(cells.len(), defs.len(), "{}", info.plural);
        }
    }
}
