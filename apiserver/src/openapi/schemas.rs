//! The schemas of the served kinds, as upstream's generated OpenAPI definitions name and shape
//! them (`io.k8s.api.core.v1.Pod`…): generated from k8s-openapi's types (its `schemars`
//! feature carries the field descriptions, `required`, formats and `x-kubernetes-int-or-string`),
//! with `x-kubernetes-group-version-kind` on each kind and its list, and the patch metadata
//! (`x-kubernetes-patch-strategy`/`-patch-merge-key`, `-list-type`/`-list-map-keys`,
//! `-map-type`) from the same tables the server's strategic merge and server-side apply use, so
//! what kubectl reads here is what the server does.
//!
//! Start at [`Schemas::build`]; [`KINDS`] maps each served kind to its type. A kind served
//! without an entry there fails the `every_served_kind_has_a_schema` test.

use k8s_openapi::api;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{Map, Value, json};

type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn sub<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// `(group, version, kind)` of every served kind with a schema, and its type.
static KINDS: &[(&str, &str, &str, SchemaFn)] = &[
    (
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        sub::<api::autoscaling::v1::HorizontalPodAutoscaler>,
    ),
    (
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        sub::<api::autoscaling::v2::HorizontalPodAutoscaler>,
    ),
    (
        "metrics.k8s.io",
        "v1beta1",
        "NodeMetrics",
        sub::<super::metrics::NodeMetrics>,
    ),
    (
        "metrics.k8s.io",
        "v1beta1",
        "PodMetrics",
        sub::<super::metrics::PodMetrics>,
    ),
    ("", "v1", "Pod", sub::<api::core::v1::Pod>),
    ("", "v1", "Namespace", sub::<api::core::v1::Namespace>),
    ("", "v1", "Service", sub::<api::core::v1::Service>),
    ("", "v1", "Endpoints", sub::<api::core::v1::Endpoints>),
    ("", "v1", "Node", sub::<api::core::v1::Node>),
    ("", "v1", "Event", sub::<api::core::v1::Event>),
    ("", "v1", "ConfigMap", sub::<api::core::v1::ConfigMap>),
    ("", "v1", "Secret", sub::<api::core::v1::Secret>),
    (
        "",
        "v1",
        "ServiceAccount",
        sub::<api::core::v1::ServiceAccount>,
    ),
    (
        "authentication.k8s.io",
        "v1",
        "TokenRequest",
        sub::<api::authentication::v1::TokenRequest>,
    ),
    ("", "v1", "Binding", sub::<api::core::v1::Binding>),
    (
        "",
        "v1",
        "PersistentVolume",
        sub::<api::core::v1::PersistentVolume>,
    ),
    (
        "",
        "v1",
        "PersistentVolumeClaim",
        sub::<api::core::v1::PersistentVolumeClaim>,
    ),
    (
        "storage.k8s.io",
        "v1",
        "StorageClass",
        sub::<api::storage::v1::StorageClass>,
    ),
    (
        "networking.k8s.io",
        "v1",
        "Ingress",
        sub::<api::networking::v1::Ingress>,
    ),
    (
        "networking.k8s.io",
        "v1",
        "IngressClass",
        sub::<api::networking::v1::IngressClass>,
    ),
    ("apps", "v1", "Deployment", sub::<api::apps::v1::Deployment>),
    (
        "",
        "v1",
        "ReplicationController",
        sub::<api::core::v1::ReplicationController>,
    ),
    ("apps", "v1", "ReplicaSet", sub::<api::apps::v1::ReplicaSet>),
    (
        "apps",
        "v1",
        "StatefulSet",
        sub::<api::apps::v1::StatefulSet>,
    ),
    ("apps", "v1", "DaemonSet", sub::<api::apps::v1::DaemonSet>),
    (
        "apps",
        "v1",
        "ControllerRevision",
        sub::<api::apps::v1::ControllerRevision>,
    ),
    ("batch", "v1", "Job", sub::<api::batch::v1::Job>),
    ("batch", "v1", "CronJob", sub::<api::batch::v1::CronJob>),
    (
        "policy",
        "v1",
        "PodDisruptionBudget",
        sub::<api::policy::v1::PodDisruptionBudget>,
    ),
    ("policy", "v1", "Eviction", sub::<api::policy::v1::Eviction>),
    (
        "autoscaling",
        "v1",
        "Scale",
        sub::<api::autoscaling::v1::Scale>,
    ),
    (
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        sub::<api::discovery::v1::EndpointSlice>,
    ),
    (
        "coordination.k8s.io",
        "v1",
        "Lease",
        sub::<api::coordination::v1::Lease>,
    ),
    (
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        sub::<api::certificates::v1::CertificateSigningRequest>,
    ),
    (
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        sub::<api::node::v1::RuntimeClass>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        sub::<api::rbac::v1::Role>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        sub::<api::rbac::v1::ClusterRole>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        sub::<api::rbac::v1::RoleBinding>,
    ),
    (
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        sub::<api::rbac::v1::ClusterRoleBinding>,
    ),
];

/// Where OpenAPI 3 documents keep their schemas.
pub(crate) const V3_PREFIX: &str = "#/components/schemas/";

/// Every definition, in OpenAPI 3 form, and the definition of each kind.
#[derive(Debug, Clone)]
pub(crate) struct Schemas {
    /// Definition name → schema.
    pub(crate) defs: Map<String, Value>,
    /// `(group, version, kind)` → definition name, for kinds and their lists.
    pub(crate) kinds: Vec<((String, String, String), String)>,
}

fn gvk(group: &str, version: &str, kind: &str) -> Value {
    json!([{"group": group, "kind": kind, "version": version}])
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix(V3_PREFIX)
}

/// The patch tables' name of a definition: `io.k8s.api.core.v1.PodSpec` → `core.v1.PodSpec`.
fn table_name(def: &str) -> Option<String> {
    if let Some(rest) = def.strip_prefix("io.k8s.api.") {
        return Some(rest.to_string());
    }
    def.strip_prefix("io.k8s.apimachinery.pkg.apis.meta.v1.")
        .map(|t| format!("meta.v1.{t}"))
}

impl Schemas {
    /// Generates the definitions of every kind in `served` (`(group, version, kind,
    /// list_kind)`).
    pub(crate) fn build<'a>(
        served: impl Iterator<Item = (&'a str, &'a str, &'a str, &'a str)>,
    ) -> Schemas {
        let mut g = SchemaSettings::openapi3().into_generator();
        let mut kinds = Vec::new();
        let mut gvks: Vec<(String, Value)> = Vec::new();
        let mut lists: Vec<(String, String, Value)> = Vec::new();
        for (group, version, kind, list_kind) in served {
            let Some((.., f)) = KINDS
                .iter()
                .find(|(gr, v, k, _)| *gr == group && *v == version && *k == kind)
            else {
                continue;
            };
            let schema = Value::from(f(&mut g));
            let Some(name) = ref_name(&schema).map(str::to_string) else {
                continue;
            };
            let key = (group.to_string(), version.to_string(), kind.to_string());
            if kinds.iter().any(|(k, _)| *k == key) {
                continue;
            }
            kinds.push((key, name.clone()));
            gvks.push((name.clone(), gvk(group, version, kind)));
            if !list_kind.is_empty() {
                let list_name = format!("{}List", name);
                kinds.push((
                    (
                        group.to_string(),
                        version.to_string(),
                        list_kind.to_string(),
                    ),
                    list_name.clone(),
                ));
                lists.push((list_name, name, gvk(group, version, list_kind)));
            }
        }
        let list_meta = Value::from(
            g.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta>(),
        );
        let mut defs = g.take_definitions(true);
        for (name, ext) in gvks {
            if let Some(Value::Object(d)) = defs.get_mut(&name) {
                d.insert("x-kubernetes-group-version-kind".into(), ext);
            }
        }
        for (list_name, item, ext) in lists {
            let kind = item.rsplit('.').next().unwrap_or(&item).to_string();
            defs.insert(
                list_name.clone(),
                list_schema(&kind, &item, &list_meta, ext),
            );
        }
        for (name, def) in defs.iter_mut() {
            add_patch_extensions(name, def);
        }
        Schemas { defs, kinds }
    }

    /// The definition name of `group/version, kind`.
    pub(crate) fn kind(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .iter()
            .find(|((g, v, k), _)| g == group && v == version && k == kind)
            .map(|(_, n)| n.as_str())
    }

    /// The definitions `roots` refer to, directly or not, with the roots themselves.
    pub(crate) fn closure<'a>(&self, roots: impl Iterator<Item = &'a str>) -> Map<String, Value> {
        let mut out = Map::new();
        let mut todo: Vec<String> = roots.map(str::to_string).collect();
        while let Some(name) = todo.pop() {
            if out.contains_key(&name) {
                continue;
            }
            let Some(def) = self.defs.get(&name) else {
                continue;
            };
            collect_refs(def, &mut todo);
            out.insert(name, def.clone());
        }
        out.sort_keys();
        out
    }
}

pub(crate) fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(n) = ref_name(v) {
                out.push(n.to_string());
            }
            m.values().for_each(|c| collect_refs(c, out));
        }
        Value::Array(a) => a.iter().for_each(|c| collect_refs(c, out)),
        _ => {}
    }
}

/// The `XList` schema upstream generates for every kind.
fn list_schema(kind: &str, item: &str, list_meta: &Value, gvk: Value) -> Value {
    json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": {
                "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
                "type": "string"
            },
            "items": {
                "description": format!("List of {kind} objects."),
                "type": "array",
                "items": {"$ref": format!("{V3_PREFIX}{item}")}
            },
            "kind": {
                "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
                "type": "string"
            },
            "metadata": {
                "allOf": [list_meta],
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"
            }
        },
        "x-kubernetes-group-version-kind": gvk
    })
}

fn add_patch_extensions(name: &str, def: &mut Value) {
    let Some(table) = table_name(name) else {
        return;
    };
    let Some(Value::Object(props)) = def.get_mut("properties") else {
        return;
    };
    for (field, ext) in ::api::patch::openapi_extensions(&table) {
        if let Some(Value::Object(p)) = props.get_mut(field) {
            p.extend(ext);
        }
    }
}

/// The same definitions in Swagger 2.0 form: `#/definitions/` references, and a reference with
/// a description written as upstream's v2 document writes it (`$ref` beside `description`, not
/// wrapped in `allOf`).
pub(crate) fn to_v2(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, c) in m {
                if k == "allOf"
                    && let Some([only]) = c.as_array().map(Vec::as_slice)
                    && only.get("$ref").is_some()
                    && !m.contains_key("$ref")
                {
                    if let Value::Object(r) = to_v2(only) {
                        out.extend(r);
                    }
                    continue;
                }
                if k == "nullable" {
                    continue;
                }
                out.insert(k.clone(), to_v2(c));
            }
            if let Some(Value::String(r)) = out.get_mut("$ref")
                && let Some(name) = r.strip_prefix(V3_PREFIX)
            {
                *r = format!("#/definitions/{name}");
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_v2).collect()),
        other => other.clone(),
    }
}
