//! `autoscaling/v1` HorizontalPodAutoscaler ↔ the stored `autoscaling/v2` (upstream
//! `pkg/apis/autoscaling/v1/conversion.go`).
//!
//! v1 has one metric, `targetCPUUtilizationPercentage`. What v1 cannot hold travels in
//! annotations, exactly as upstream writes them, so a v1 client's read-modify-write keeps it:
//! the other metrics (`autoscaling.alpha.kubernetes.io/metrics`, in v1's old metric shape),
//! the current metrics (`…/current-metrics`), the conditions (`…/conditions`) and the
//! behavior (`…/behavior`, upstream marshals its internal type there, so the keys are Go's
//! field names). Coming back, the annotations are read and removed; a v1 object without any
//! metric gets upstream's implicit 80% CPU target.

use k8s_openapi::api::autoscaling::{v1, v2};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `autoscaling.MetricSpecsAnnotation`.
const METRIC_SPECS: &str = "autoscaling.alpha.kubernetes.io/metrics";
/// `autoscaling.MetricStatusesAnnotation`.
const METRIC_STATUSES: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
/// `autoscaling.HorizontalPodAutoscalerConditionsAnnotation`.
const CONDITIONS: &str = "autoscaling.alpha.kubernetes.io/conditions";
/// `autoscaling.BehaviorSpecsAnnotation`.
const BEHAVIOR: &str = "autoscaling.alpha.kubernetes.io/behavior";
/// `autoscaling.DefaultCPUUtilization`.
const DEFAULT_CPU_UTILIZATION: i32 = 80;

// v1's metric types, which exist only inside the annotations (field order and `omitempty`
// as Go marshals them; a Go `resource.Quantity` that is not a pointer is always written, "0"
// when unset).

fn zero() -> Quantity {
    Quantity("0".into())
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CrossVersionObjectReference {
    kind: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    api_version: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct MetricSpec {
    #[serde(rename = "type")]
    type_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<ObjectMetricSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pods: Option<PodsMetricSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<ResourceMetricSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_resource: Option<ContainerResourceMetricSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external: Option<ExternalMetricSource>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ObjectMetricSource {
    target: CrossVersionObjectReference,
    metric_name: String,
    #[serde(default = "zero")]
    target_value: Quantity,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    average_value: Option<Quantity>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PodsMetricSource {
    metric_name: String,
    #[serde(default = "zero")]
    target_average_value: Quantity,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<LabelSelector>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ResourceMetricSource {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_average_utilization: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_average_value: Option<Quantity>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ContainerResourceMetricSource {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_average_utilization: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_average_value: Option<Quantity>,
    container: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ExternalMetricSource {
    metric_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_value: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_average_value: Option<Quantity>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct MetricStatus {
    #[serde(rename = "type")]
    type_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    object: Option<ObjectMetricStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pods: Option<PodsMetricStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<ResourceMetricStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container_resource: Option<ContainerResourceMetricStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    external: Option<ExternalMetricStatus>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ObjectMetricStatus {
    target: CrossVersionObjectReference,
    metric_name: String,
    #[serde(default = "zero")]
    current_value: Quantity,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<LabelSelector>,
    #[serde(skip_serializing_if = "Option::is_none")]
    average_value: Option<Quantity>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PodsMetricStatus {
    metric_name: String,
    #[serde(default = "zero")]
    current_average_value: Quantity,
    #[serde(skip_serializing_if = "Option::is_none")]
    selector: Option<LabelSelector>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ResourceMetricStatus {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_average_utilization: Option<i32>,
    #[serde(default = "zero")]
    current_average_value: Quantity,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ContainerResourceMetricStatus {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_average_utilization: Option<i32>,
    #[serde(default = "zero")]
    current_average_value: Quantity,
    container: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ExternalMetricStatus {
    metric_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_selector: Option<LabelSelector>,
    #[serde(default = "zero")]
    current_value: Quantity,
    #[serde(skip_serializing_if = "Option::is_none")]
    current_average_value: Option<Quantity>,
}

/// A condition in Go's field order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Condition {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_transition_time: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl From<&v2::HorizontalPodAutoscalerCondition> for Condition {
    fn from(c: &v2::HorizontalPodAutoscalerCondition) -> Self {
        Condition {
            type_: c.type_.clone(),
            status: c.status.clone(),
            last_transition_time: c.last_transition_time.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
        }
    }
}

fn ref_to_v1(r: &v2::CrossVersionObjectReference) -> CrossVersionObjectReference {
    CrossVersionObjectReference {
        kind: r.kind.clone(),
        name: r.name.clone(),
        api_version: r.api_version.clone(),
    }
}

fn ref_to_v2(r: CrossVersionObjectReference) -> v2::CrossVersionObjectReference {
    v2::CrossVersionObjectReference {
        kind: r.kind,
        name: r.name,
        api_version: r.api_version,
    }
}

/// A v2 metric in v1's annotation shape (upstream `Convert_autoscaling_MetricSpec_To_v1_…`).
fn metric_to_v1(m: &v2::MetricSpec) -> MetricSpec {
    MetricSpec {
        type_: m.type_.clone(),
        object: m.object.as_ref().map(|o| ObjectMetricSource {
            target: ref_to_v1(&o.described_object),
            metric_name: o.metric.name.clone(),
            target_value: o.target.value.clone().unwrap_or_else(zero),
            selector: o.metric.selector.clone(),
            average_value: o.target.average_value.clone(),
        }),
        pods: m.pods.as_ref().map(|p| PodsMetricSource {
            metric_name: p.metric.name.clone(),
            target_average_value: p.target.average_value.clone().unwrap_or_else(zero),
            selector: p.metric.selector.clone(),
        }),
        resource: m.resource.as_ref().map(|r| ResourceMetricSource {
            name: r.name.clone(),
            target_average_utilization: r.target.average_utilization,
            target_average_value: r.target.average_value.clone(),
        }),
        container_resource: m
            .container_resource
            .as_ref()
            .map(|r| ContainerResourceMetricSource {
                name: r.name.clone(),
                target_average_utilization: r.target.average_utilization,
                target_average_value: r.target.average_value.clone(),
                container: r.container.clone(),
            }),
        external: m.external.as_ref().map(|e| ExternalMetricSource {
            metric_name: e.metric.name.clone(),
            metric_selector: e.metric.selector.clone(),
            target_value: e.target.value.clone(),
            target_average_value: e.target.average_value.clone(),
        }),
    }
}

/// A resource target's type: utilization when one is given (upstream's v1 conversion).
fn resource_target(utilization: Option<i32>, value: Option<Quantity>) -> v2::MetricTarget {
    v2::MetricTarget {
        type_: if utilization.is_some() {
            "Utilization"
        } else {
            "AverageValue"
        }
        .into(),
        average_utilization: utilization,
        average_value: value,
        value: None,
    }
}

/// An annotation metric back in v2 (upstream `Convert_v1_MetricSpec_To_autoscaling_…`).
fn metric_to_v2(m: MetricSpec) -> v2::MetricSpec {
    v2::MetricSpec {
        type_: m.type_,
        object: m.object.map(|o| v2::ObjectMetricSource {
            target: v2::MetricTarget {
                type_: if o.average_value.is_some() {
                    "AverageValue"
                } else {
                    "Value"
                }
                .into(),
                value: Some(o.target_value),
                average_value: o.average_value,
                average_utilization: None,
            },
            described_object: ref_to_v2(o.target),
            metric: v2::MetricIdentifier {
                name: o.metric_name,
                selector: o.selector,
            },
        }),
        pods: m.pods.map(|p| v2::PodsMetricSource {
            target: v2::MetricTarget {
                type_: "AverageValue".into(),
                average_value: Some(p.target_average_value),
                ..v2::MetricTarget::default()
            },
            metric: v2::MetricIdentifier {
                name: p.metric_name,
                selector: p.selector,
            },
        }),
        resource: m.resource.map(|r| v2::ResourceMetricSource {
            name: r.name,
            target: resource_target(r.target_average_utilization, r.target_average_value),
        }),
        container_resource: m
            .container_resource
            .map(|r| v2::ContainerResourceMetricSource {
                name: r.name,
                container: r.container,
                target: resource_target(r.target_average_utilization, r.target_average_value),
            }),
        external: m.external.map(|e| v2::ExternalMetricSource {
            target: v2::MetricTarget {
                type_: if e.target_value.is_some() {
                    "Value"
                } else {
                    "AverageValue"
                }
                .into(),
                value: e.target_value,
                average_value: e.target_average_value,
                average_utilization: None,
            },
            metric: v2::MetricIdentifier {
                name: e.metric_name,
                selector: e.metric_selector,
            },
        }),
    }
}

fn status_to_v1(m: &v2::MetricStatus) -> MetricStatus {
    MetricStatus {
        type_: m.type_.clone(),
        object: m.object.as_ref().map(|o| ObjectMetricStatus {
            target: ref_to_v1(&o.described_object),
            metric_name: o.metric.name.clone(),
            current_value: o.current.value.clone().unwrap_or_else(zero),
            selector: o.metric.selector.clone(),
            average_value: o.current.average_value.clone(),
        }),
        pods: m.pods.as_ref().map(|p| PodsMetricStatus {
            metric_name: p.metric.name.clone(),
            current_average_value: p.current.average_value.clone().unwrap_or_else(zero),
            selector: p.metric.selector.clone(),
        }),
        resource: m.resource.as_ref().map(|r| ResourceMetricStatus {
            name: r.name.clone(),
            current_average_utilization: r.current.average_utilization,
            current_average_value: r.current.average_value.clone().unwrap_or_else(zero),
        }),
        container_resource: m
            .container_resource
            .as_ref()
            .map(|r| ContainerResourceMetricStatus {
                name: r.name.clone(),
                current_average_utilization: r.current.average_utilization,
                current_average_value: r.current.average_value.clone().unwrap_or_else(zero),
                container: r.container.clone(),
            }),
        external: m.external.as_ref().map(|e| ExternalMetricStatus {
            metric_name: e.metric.name.clone(),
            metric_selector: e.metric.selector.clone(),
            current_value: e.current.value.clone().unwrap_or_else(zero),
            current_average_value: e.current.average_value.clone(),
        }),
    }
}

/// A resource metric's current value (upstream's v1 conversion always sets the average).
fn resource_current(utilization: Option<i32>, value: Quantity) -> v2::MetricValueStatus {
    v2::MetricValueStatus {
        average_value: Some(value),
        average_utilization: utilization,
        value: None,
    }
}

fn status_to_v2(m: MetricStatus) -> v2::MetricStatus {
    v2::MetricStatus {
        type_: m.type_,
        object: m.object.map(|o| v2::ObjectMetricStatus {
            current: v2::MetricValueStatus {
                value: Some(o.current_value),
                average_value: o.average_value,
                average_utilization: None,
            },
            described_object: ref_to_v2(o.target),
            metric: v2::MetricIdentifier {
                name: o.metric_name,
                selector: o.selector,
            },
        }),
        pods: m.pods.map(|p| v2::PodsMetricStatus {
            current: v2::MetricValueStatus {
                average_value: Some(p.current_average_value),
                ..v2::MetricValueStatus::default()
            },
            metric: v2::MetricIdentifier {
                name: p.metric_name,
                selector: p.selector,
            },
        }),
        resource: m.resource.map(|r| v2::ResourceMetricStatus {
            name: r.name,
            current: resource_current(r.current_average_utilization, r.current_average_value),
        }),
        container_resource: m
            .container_resource
            .map(|r| v2::ContainerResourceMetricStatus {
                name: r.name,
                container: r.container,
                current: resource_current(r.current_average_utilization, r.current_average_value),
            }),
        external: m.external.map(|e| v2::ExternalMetricStatus {
            current: v2::MetricValueStatus {
                value: Some(e.current_value),
                average_value: e.current_average_value,
                average_utilization: None,
            },
            metric: v2::MetricIdentifier {
                name: e.metric_name,
                selector: e.metric_selector,
            },
        }),
    }
}

/// The behavior as upstream marshals its internal (untagged) type: Go field names, nil
/// pointers as `null`.
fn behavior_to_annotation(b: &v2::HorizontalPodAutoscalerBehavior) -> Value {
    let rules = |r: &Option<v2::HPAScalingRules>| -> Value {
        let Some(r) = r else { return Value::Null };
        let mut m = Map::new();
        m.insert(
            "StabilizationWindowSeconds".into(),
            r.stabilization_window_seconds.into(),
        );
        m.insert("SelectPolicy".into(), r.select_policy.clone().into());
        let policies = r.policies.as_ref().map(|ps| {
            ps.iter()
                .map(|p| {
                    let mut m = Map::new();
                    m.insert("Type".into(), p.type_.clone().into());
                    m.insert("Value".into(), p.value.into());
                    m.insert("PeriodSeconds".into(), p.period_seconds.into());
                    Value::Object(m)
                })
                .collect::<Vec<_>>()
        });
        m.insert("Policies".into(), policies.into());
        if let Some(t) = &r.tolerance {
            m.insert("Tolerance".into(), t.0.clone().into());
        }
        Value::Object(m)
    };
    let mut m = Map::new();
    m.insert("ScaleUp".into(), rules(&b.scale_up));
    m.insert("ScaleDown".into(), rules(&b.scale_down));
    Value::Object(m)
}

/// Go's decoder matches field names case-insensitively: the annotation may carry the internal
/// type's `ScaleUp` or the external `scaleUp`; both become the external spelling.
fn lower_first_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let mut c = k.chars();
                    let k = match c.next() {
                        Some(f) => f.to_lowercase().chain(c).collect(),
                        None => k,
                    };
                    (k, lower_first_keys(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(lower_first_keys).collect()),
        other => other,
    }
}

fn is_cpu_utilization(m: &v2::MetricSpec) -> bool {
    m.type_ == "Resource"
        && m.resource
            .as_ref()
            .is_some_and(|r| r.name == "cpu" && r.target.average_utilization.is_some())
}

fn encode<T: Serialize>(v: &T) -> Result<String, String> {
    serde_json::to_string(v).map_err(|e| e.to_string())
}

/// A stored autoscaling/v2 object as autoscaling/v1 shows it.
pub(super) fn to_v1(stored: &Value) -> Result<Value, String> {
    let hpa: v2::HorizontalPodAutoscaler =
        serde_json::from_value(stored.clone()).map_err(|e| e.to_string())?;
    let mut meta = hpa.metadata;
    let spec = hpa.spec;
    let status = hpa.status.unwrap_or_default();
    let metrics = spec.metrics.unwrap_or_default();
    let mut annotations = meta.annotations.take().unwrap_or_default();
    // Only v1 carries these (upstream's v2 conversion drops any it meets).
    for k in [METRIC_SPECS, METRIC_STATUSES, CONDITIONS, BEHAVIOR] {
        annotations.remove(k);
    }
    let others: Vec<MetricSpec> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .map(metric_to_v1)
        .collect();
    if !others.is_empty() {
        annotations.insert(METRIC_SPECS.into(), encode(&others)?);
    }
    let current = status.current_metrics.unwrap_or_default();
    if !current.is_empty() {
        let v1s: Vec<MetricStatus> = current.iter().map(status_to_v1).collect();
        annotations.insert(METRIC_STATUSES.into(), encode(&v1s)?);
    }
    if let Some(conditions) = status.conditions.as_ref().filter(|c| !c.is_empty()) {
        let v1s: Vec<Condition> = conditions.iter().map(Condition::from).collect();
        annotations.insert(CONDITIONS.into(), encode(&v1s)?);
    }
    if let Some(b) = &spec.behavior {
        annotations.insert(BEHAVIOR.into(), encode(&behavior_to_annotation(b))?);
    }
    meta.annotations = (!annotations.is_empty()).then_some(annotations);
    // The first CPU resource metric decides, even one without a utilization target.
    let target_cpu = metrics
        .iter()
        .find(|m| m.type_ == "Resource" && m.resource.as_ref().is_some_and(|r| r.name == "cpu"))
        .and_then(|m| m.resource.as_ref()?.target.average_utilization);
    // The last CPU utilization reported (upstream loops without stopping).
    let current_cpu = current
        .iter()
        .filter(|m| m.type_ == "Resource")
        .filter_map(|m| m.resource.as_ref())
        .filter(|r| r.name == "cpu")
        .filter_map(|r| r.current.average_utilization)
        .next_back();
    let out = v1::HorizontalPodAutoscaler {
        metadata: meta,
        spec: v1::HorizontalPodAutoscalerSpec {
            scale_target_ref: v1::CrossVersionObjectReference {
                kind: spec.scale_target_ref.kind,
                name: spec.scale_target_ref.name,
                api_version: spec.scale_target_ref.api_version,
            },
            min_replicas: spec.min_replicas,
            max_replicas: spec.max_replicas,
            target_cpu_utilization_percentage: target_cpu,
        },
        status: Some(v1::HorizontalPodAutoscalerStatus {
            observed_generation: status.observed_generation,
            last_scale_time: status.last_scale_time,
            current_replicas: status.current_replicas.unwrap_or(0),
            desired_replicas: status.desired_replicas,
            current_cpu_utilization_percentage: current_cpu,
        }),
    };
    serde_json::to_value(&out).map_err(|e| e.to_string())
}

/// A decoded autoscaling/v1 object in the stored autoscaling/v2.
pub(super) fn to_v2(obj: Value) -> Result<Value, String> {
    let hpa: v1::HorizontalPodAutoscaler =
        serde_json::from_value(obj).map_err(|e| e.to_string())?;
    let mut meta = hpa.metadata;
    let mut annotations = meta.annotations.take().unwrap_or_default();
    let mut metrics = Vec::new();
    if let Some(raw) = annotations.remove(METRIC_SPECS) {
        let others: Vec<MetricSpec> = serde_json::from_str(&raw).map_err(|e| e.to_string())?;
        metrics.extend(others.into_iter().map(metric_to_v2));
    }
    // The spec's own CPU target goes after the annotation's metrics, as upstream orders them.
    if let Some(cpu) = hpa.spec.target_cpu_utilization_percentage {
        metrics.push(cpu_utilization(cpu));
    }
    if metrics.is_empty() {
        metrics.push(cpu_utilization(DEFAULT_CPU_UTILIZATION));
    }
    let behavior = match annotations.remove(BEHAVIOR) {
        Some(raw) => {
            let v: Value = serde_json::from_str(&raw).map_err(|e| e.to_string())?;
            Some(serde_json::from_value(lower_first_keys(v)).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let v1_status = hpa.status;
    let mut current_metrics = v1_status
        .as_ref()
        .and_then(|s| s.current_cpu_utilization_percentage)
        .map(|cpu| {
            vec![v2::MetricStatus {
                type_: "Resource".into(),
                resource: Some(v2::ResourceMetricStatus {
                    name: "cpu".into(),
                    current: v2::MetricValueStatus {
                        average_utilization: Some(cpu),
                        ..v2::MetricValueStatus::default()
                    },
                }),
                ..v2::MetricStatus::default()
            }]
        });
    if let Some(raw) = annotations.remove(METRIC_STATUSES) {
        // These carry more than the single CPU figure: they replace it.
        let all: Vec<MetricStatus> = serde_json::from_str(&raw).map_err(|e| e.to_string())?;
        current_metrics = Some(all.into_iter().map(status_to_v2).collect());
    }
    let conditions = match annotations.remove(CONDITIONS) {
        Some(raw) => Some(serde_json::from_str(&raw).map_err(|e| e.to_string())?),
        None => None,
    };
    meta.annotations = (!annotations.is_empty()).then_some(annotations);
    // Upstream's status is a struct, never absent: what the annotations carry is kept even
    // when the body has no status.
    let has_status = v1_status.is_some() || current_metrics.is_some() || conditions.is_some();
    let status = has_status.then(|| {
        let s = v1_status.unwrap_or_default();
        v2::HorizontalPodAutoscalerStatus {
            observed_generation: s.observed_generation,
            last_scale_time: s.last_scale_time,
            current_replicas: Some(s.current_replicas).filter(|r| *r != 0),
            desired_replicas: s.desired_replicas,
            current_metrics,
            conditions,
        }
    });
    let out = v2::HorizontalPodAutoscaler {
        metadata: meta,
        spec: v2::HorizontalPodAutoscalerSpec {
            scale_target_ref: v2::CrossVersionObjectReference {
                kind: hpa.spec.scale_target_ref.kind,
                name: hpa.spec.scale_target_ref.name,
                api_version: hpa.spec.scale_target_ref.api_version,
            },
            min_replicas: hpa.spec.min_replicas,
            max_replicas: hpa.spec.max_replicas,
            metrics: Some(metrics),
            behavior,
        },
        status,
    };
    serde_json::to_value(&out).map_err(|e| e.to_string())
}

fn cpu_utilization(percent: i32) -> v2::MetricSpec {
    v2::MetricSpec {
        type_: "Resource".into(),
        resource: Some(v2::ResourceMetricSource {
            name: "cpu".into(),
            target: v2::MetricTarget {
                type_: "Utilization".into(),
                average_utilization: Some(percent),
                ..v2::MetricTarget::default()
            },
        }),
        ..v2::MetricSpec::default()
    }
}

#[cfg(test)]
mod tests;
