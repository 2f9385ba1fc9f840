//! Schemas of the resource metrics kinds (`metrics.k8s.io/v1beta1` `PodMetrics`,
//! `NodeMetrics` and `ContainerMetrics`), which k8s-openapi does not carry: shaped and named as
//! metrics-server publishes them (`k8s.io/metrics/pkg/apis/metrics/v1beta1`).

use std::borrow::Cow;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

const API_VERSION_DOC: &str = "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources";
const KIND_DOC: &str = "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds";
const METADATA_DOC: &str = "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const TIMESTAMP_DOC: &str = "The following fields define time interval from which metrics were collected from the interval [Timestamp-Window, Timestamp].";
const USAGE_DOC: &str = "The memory usage is the memory working set.";

fn described(mut s: Schema, doc: &str) -> Schema {
    s.ensure_object().insert("description".into(), doc.into());
    s
}

fn usage(g: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": USAGE_DOC,
        "type": "object",
        "additionalProperties": g.subschema_for::<Quantity>(),
    })
}

/// `io.k8s.metrics.pkg.apis.metrics.v1beta1.ContainerMetrics`.
pub(crate) struct ContainerMetrics;

impl JsonSchema for ContainerMetrics {
    fn schema_name() -> Cow<'static, str> {
        "io.k8s.metrics.pkg.apis.metrics.v1beta1.ContainerMetrics".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "ContainerMetrics sets resource usage metrics of a container.",
            "type": "object",
            "properties": {
                "name": {
                    "description": "Container name corresponding to the one from pod.spec.containers.",
                    "type": "string",
                },
                "usage": usage(g),
            },
            "required": ["name", "usage"],
        })
    }
}

/// `io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics`.
pub(crate) struct PodMetrics;

impl JsonSchema for PodMetrics {
    fn schema_name() -> Cow<'static, str> {
        "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "PodMetrics sets resource usage metrics of a pod.",
            "type": "object",
            "properties": {
                "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
                "kind": {"description": KIND_DOC, "type": "string"},
                "metadata": described(g.subschema_for::<ObjectMeta>(), METADATA_DOC),
                "timestamp": described(g.subschema_for::<Time>(), TIMESTAMP_DOC),
                "window": {"type": "string"},
                "containers": {
                    "description": "Metrics for all containers are collected within the same time window.",
                    "type": "array",
                    "items": g.subschema_for::<ContainerMetrics>(),
                    "x-kubernetes-list-type": "atomic",
                },
            },
            "required": ["timestamp", "window", "containers"],
        })
    }
}

/// `io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics`.
pub(crate) struct NodeMetrics;

impl JsonSchema for NodeMetrics {
    fn schema_name() -> Cow<'static, str> {
        "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "NodeMetrics sets resource usage metrics of a node.",
            "type": "object",
            "properties": {
                "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
                "kind": {"description": KIND_DOC, "type": "string"},
                "metadata": described(g.subschema_for::<ObjectMeta>(), METADATA_DOC),
                "timestamp": described(g.subschema_for::<Time>(), TIMESTAMP_DOC),
                "window": {"type": "string"},
                "usage": usage(g),
            },
            "required": ["timestamp", "window", "usage"],
        })
    }
}
