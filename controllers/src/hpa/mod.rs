//! The HorizontalPodAutoscaler controller (upstream `pkg/controller/podautoscaler/horizontal.go`)
//! for resource metrics: every sync period (15 s) each `autoscaling/v2` HPA's target is read
//! through its scale (`spec.replicas`, the selector), its pods' CPU or memory usage is read
//! from the in-process resource metrics ([`MetricsSource`], what `metrics.k8s.io` serves), a
//! replica count is proposed per metric ([`replicas`]), the highest one is stabilized and
//! limited ([`Normalizer`]: the downscale window, or a `behavior`'s windows and policies, and
//! min/max), the target is rescaled, and the status is written with upstream's conditions
//! (`AbleToScale`, `ScalingActive`, `ScalingLimited`) and events (`SuccessfulRescale`,
//! `FailedGetResourceMetric`, `FailedComputeMetricsReplicas`, `FailedGetScale`,
//! `FailedRescale`, `AmbiguousSelector`: pods that the targets of two HPAs select are
//! autoscaled by neither, as upstream's `validateAndParseSelector` refuses them).
//!
//! Start at [`run`] and [`Controller::reconcile`].

pub mod normalize;
pub mod replicas;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, Subresource};
use crate::events::{Recorder, Style};
use normalize::Normalizer;
use replicas::{PodUsage, Target};

/// One container's usage as the metrics API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerUsage {
    /// The container's name.
    pub name: String,
    /// CPU in millicores.
    pub cpu_milli: i64,
    /// Memory in milli-bytes (the metrics client's `MilliValue`).
    pub memory_milli: i64,
}

/// A pod's usage (one `PodMetrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodMetric {
    /// When it was measured (ms since the epoch).
    pub timestamp_ms: i64,
    /// Its window (ms).
    pub window_ms: i64,
    /// Its containers.
    pub containers: Vec<ContainerUsage>,
}

/// Where the pods' usage comes from (the API server's resource metrics, in-process).
pub trait MetricsSource: Send + Sync + std::fmt::Debug {
    /// Pod `namespace/name`'s usage, if the metrics API has it.
    fn pod_metrics(&self, namespace: &str, name: &str) -> Option<PodMetric>;
}

/// The controller's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The pods' usage.
    pub metrics: Arc<dyn MetricsSource>,
    /// `--horizontal-pod-autoscaler-sync-period` (15 s).
    pub sync_period: Duration,
    /// `--horizontal-pod-autoscaler-downscale-stabilization` (5 min).
    pub downscale_stabilization: Duration,
}

impl Config {
    /// Upstream's periods over `metrics`.
    pub fn new(metrics: Arc<dyn MetricsSource>) -> Config {
        Config {
            metrics,
            sync_period: Duration::from_secs(15),
            downscale_stabilization: Duration::from_secs(300),
        }
    }
}

fn hpas() -> &'static ResourceInfo {
    crate::resource("autoscaling", "horizontalpodautoscalers")
}

fn pods() -> &'static ResourceInfo {
    crate::resource("", "pods")
}

/// The controller.
#[derive(Debug)]
pub struct Controller {
    cluster: ClusterRef,
    config: Config,
    recorder: Recorder,
    normalizer: tokio::sync::Mutex<Normalizer>,
    /// Each HPA's target selector as its last sync read it (upstream's `hpaSelectors`), by
    /// `namespace/name`: the pods two HPAs would both scale are ambiguous.
    selectors: tokio::sync::Mutex<HashMap<String, (String, api::selector::LabelSelector)>>,
}

/// Runs the controller until `shutdown`.
pub async fn run(cluster: ClusterRef, config: Config, shutdown: CancellationToken) {
    let c = Controller::new(cluster, config);
    let mut tick = tokio::time::interval(c.config.sync_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        c.sync_all().await;
    }
}

/// `setCondition`: replaces the condition of `type`, keeping its transition time when the
/// status did not change.
fn set_condition(conditions: &mut Vec<Value>, ty: &str, status: bool, reason: &str, message: &str) {
    let status = if status { "True" } else { "False" };
    let now = api::time::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let old = conditions.iter().position(|c| c["type"] == ty);
    let transition = match old.map(|i| &conditions[i]) {
        Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
        _ => json!(now),
    };
    let cond = json!({"type": ty, "status": status, "lastTransitionTime": transition,
        "reason": reason, "message": message});
    match old {
        Some(i) => conditions[i] = cond,
        None => conditions.push(cond),
    }
}

fn now_ms() -> i64 {
    api::time::now().as_millisecond()
}

/// What [`Controller::compute`] found for all metrics.
struct Computed {
    replicas: i32,
    metric: String,
    statuses: Vec<Value>,
}

impl Controller {
    /// A controller over `cluster`.
    pub fn new(cluster: ClusterRef, config: Config) -> Controller {
        Controller {
            recorder: Recorder::new(cluster.clone(), "horizontal-pod-autoscaler", Style::Legacy),
            normalizer: tokio::sync::Mutex::new(Normalizer::new(config.downscale_stabilization)),
            selectors: tokio::sync::Mutex::default(),
            cluster,
            config,
        }
    }

    /// Reconciles every HPA once.
    pub async fn sync_all(&self) {
        let list = match self.cluster.list(hpas(), None).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing HorizontalPodAutoscalers");
                return;
            }
        };
        let seen: Vec<String> = list
            .items
            .iter()
            .map(|hpa| format!("{}/{}", meta_str(hpa, "namespace"), meta_str(hpa, "name")))
            .collect();
        // A deleted HPA's selector goes before the others are checked against it (upstream
        // drops it on the delete event).
        self.selectors.lock().await.retain(|k, _| seen.contains(k));
        for (hpa, key) in list.items.iter().zip(&seen) {
            if let Err(e) = self.reconcile(key, hpa).await {
                tracing::info!(hpa = %key, error = %e, "reconciling HorizontalPodAutoscaler");
            }
        }
        self.normalizer.lock().await.retain(&seen);
    }

    async fn event(&self, hpa: &Value, ty: &str, reason: &str, message: &str) {
        let Ok(meta) = crate::typed::metadata(hpa) else {
            return;
        };
        self.recorder
            .event(hpas(), &meta, ty, reason, "", message)
            .await;
    }

    /// Upstream `reconcileAutoscaler` for one HPA.
    pub async fn reconcile(&self, key: &str, hpa: &Value) -> Result<(), crate::Error> {
        let ns = meta_str(hpa, "namespace").to_string();
        let name = meta_str(hpa, "name").to_string();
        let spec = &hpa["spec"];
        let original_status = hpa["status"].clone();
        let mut conditions: Vec<Value> = hpa["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let target_ref = &spec["scaleTargetRef"];
        let (api_version, kind, target_name) = (
            target_ref["apiVersion"].as_str().unwrap_or(""),
            target_ref["kind"].as_str().unwrap_or(""),
            target_ref["name"].as_str().unwrap_or(""),
        );
        let current_metrics_status = hpa["status"]["currentMetrics"].clone();
        // The target's scale.
        let scale = match self.get_scale(&ns, api_version, kind, target_name).await {
            Ok(s) => s,
            Err(msg) => {
                self.event(hpa, "Warning", "FailedGetScale", &msg).await;
                set_condition(
                    &mut conditions,
                    "AbleToScale",
                    false,
                    "FailedGetScale",
                    &format!(
                        "the HPA controller was unable to get the target's current scale: {msg}"
                    ),
                );
                let current = hpa["status"]["currentReplicas"].as_i64().unwrap_or(0) as i32;
                let status = status_json(
                    &original_status,
                    current,
                    None,
                    current_metrics_status,
                    conditions,
                    false,
                );
                self.write_status(&ns, &name, &original_status, status)
                    .await?;
                return Ok(());
            }
        };
        let (target_info, current, selector) = scale;
        set_condition(
            &mut conditions,
            "AbleToScale",
            true,
            "SucceededGetScale",
            "the HPA controller was able to get the target's current scale",
        );
        let min = spec["minReplicas"].as_i64().unwrap_or(1) as i32;
        let max = spec["maxReplicas"].as_i64().unwrap_or(0) as i32;
        let behavior = spec.get("behavior").filter(|b| !b.is_null());
        let mut desired = 0;
        let mut reason = String::new();
        let mut rescale = true;
        let mut statuses = Value::Null;
        if current == 0 && min != 0 {
            desired = 0;
            rescale = false;
            set_condition(
                &mut conditions,
                "ScalingActive",
                false,
                "ScalingDisabled",
                "scaling is disabled since the replica count of the target is zero",
            );
        } else if current > max {
            reason = "Current number of replicas above Spec.MaxReplicas".into();
            desired = max;
        } else if current < min {
            reason = "Current number of replicas below Spec.MinReplicas".into();
            desired = min;
        } else {
            let specs = spec["metrics"].as_array().cloned().unwrap_or_default();
            self.selectors
                .lock()
                .await
                .insert(key.to_string(), (ns.clone(), selector.clone()));
            let computed = self
                .compute(hpa, key, &ns, &selector, current, &specs, &mut conditions)
                .await;
            match computed {
                Err((statuses, err)) => {
                    let status = status_json(
                        &original_status,
                        current,
                        None,
                        Value::Array(statuses),
                        conditions,
                        false,
                    );
                    self.write_status(&ns, &name, &original_status, status)
                        .await?;
                    self.event(hpa, "Warning", "FailedComputeMetricsReplicas", &err)
                        .await;
                    return Ok(());
                }
                Ok(c) => {
                    statuses = Value::Array(c.statuses);
                    let mut rescale_metric = String::new();
                    if c.replicas > desired {
                        desired = c.replicas;
                        rescale_metric = c.metric;
                    }
                    if desired > current {
                        reason = format!("{rescale_metric} above target");
                    }
                    if desired < current {
                        reason = "All metrics below target".into();
                    }
                    let mut n = self.normalizer.lock().await;
                    let (d, able, limited) = match behavior {
                        None => n.normalize(key, current, desired, min, max),
                        Some(b) => n.normalize_with_behavior(key, current, desired, min, max, b),
                    };
                    desired = d;
                    set_condition(&mut conditions, "AbleToScale", true, able.0, able.1);
                    set_condition(
                        &mut conditions,
                        "ScalingLimited",
                        limited.0,
                        limited.1,
                        limited.2,
                    );
                    rescale = desired != current;
                }
            }
        }
        if rescale {
            let written = self
                .cluster
                .update_with(target_info, &ns, target_name, Subresource::Main, |obj| {
                    obj["spec"]["replicas"] = json!(desired);
                    Ok(true)
                })
                .await;
            if let Err(e) = written {
                let msg = e.to_string();
                self.event(
                    hpa,
                    "Warning",
                    "FailedRescale",
                    &format!("New size: {desired}; reason: {reason}; error: {msg}"),
                )
                .await;
                set_condition(
                    &mut conditions,
                    "AbleToScale",
                    false,
                    "FailedUpdateScale",
                    &format!("the HPA controller was unable to update the target scale: {msg}"),
                );
                let status =
                    status_json(&original_status, current, None, statuses, conditions, false);
                self.write_status(&ns, &name, &original_status, status)
                    .await?;
                return Ok(());
            }
            set_condition(
                &mut conditions,
                "AbleToScale",
                true,
                "SucceededRescale",
                &format!("the HPA controller was able to update the target scale to {desired}"),
            );
            self.event(
                hpa,
                "Normal",
                "SuccessfulRescale",
                &format!("New size: {desired}; reason: {reason}"),
            )
            .await;
            if let Some(b) = behavior {
                self.normalizer
                    .lock()
                    .await
                    .store_scale_event(key, b, current, desired);
            }
            tracing::info!(hpa = %key, current, desired, %reason, "successful rescale");
        } else {
            desired = current;
        }
        let status = status_json(
            &original_status,
            current,
            Some(desired),
            statuses,
            conditions,
            rescale,
        );
        self.write_status(&ns, &name, &original_status, status)
            .await
    }

    /// The target's (resource, `spec.replicas`, selector) as its `scale` subresource shows them;
    /// `Err` carries upstream's message.
    async fn get_scale(
        &self,
        ns: &str,
        api_version: &str,
        kind: &str,
        name: &str,
    ) -> Result<(&'static ResourceInfo, i32, api::selector::LabelSelector), String> {
        let (group, _) = api::registry::split_api_version(api_version);
        let Some(info) =
            api::registry::by_kind(api_version, kind).filter(|i| i.subresource("scale").is_some())
        else {
            return Err(format!(
                "no matches for kind \"{kind}\" in group \"{group}\""
            ));
        };
        let obj = self
            .cluster
            .get(info, ns, name)
            .await
            .map_err(|e| e.message.clone())?;
        let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1) as i32;
        let sel = &obj["spec"]["selector"];
        // A ReplicationController's selector is a plain map.
        let selector = if info.kind == "ReplicationController" {
            let map: BTreeMap<String, String> =
                serde_json::from_value(sel.clone()).unwrap_or_default();
            api::selector::LabelSelector::from_map(&map)
        } else {
            api::selector::LabelSelector::from_json(sel)
        }
        .map_err(|e| e.message.clone())?;
        Ok((info, replicas, selector))
    }

    /// Upstream `computeReplicasForMetrics`: `Err` (the statuses, the error) when every metric
    /// is invalid, or some are and the rest would scale down.
    #[allow(clippy::too_many_arguments)]
    async fn compute(
        &self,
        hpa: &Value,
        key: &str,
        ns: &str,
        selector: &api::selector::LabelSelector,
        current: i32,
        specs: &[Value],
        conditions: &mut Vec<Value>,
    ) -> Result<Computed, (Vec<Value>, String)> {
        let mut statuses = vec![Value::Null; specs.len()];
        let mut replicas = 0;
        let mut metric = String::new();
        let mut invalid = 0;
        let mut first: Option<(String, String)> = None;
        let listed = match self.cluster.list(pods(), Some(ns)).await {
            Ok(l) => l.items,
            Err(e) => return Err((Vec::new(), e.message.clone())),
        };
        let selected: Vec<&Value> = listed
            .iter()
            .map(|p| &**p)
            .filter(|p| selector.matches_value(p))
            .collect();
        if let Some(msg) = self.ambiguous(key, ns, selector, &selected).await {
            self.event(hpa, "Warning", "AmbiguousSelector", &msg).await;
            set_condition(
                conditions,
                "ScalingActive",
                false,
                "AmbiguousSelector",
                &msg,
            );
            return Err((Vec::new(), msg));
        }
        let pods: Vec<Pod> = selected
            .into_iter()
            .filter_map(|p| serde_json::from_value(p.clone()).ok())
            .collect();
        for (i, spec) in specs.iter().enumerate() {
            match self.compute_metric(spec, ns, current, &pods) {
                Ok((proposal, name, status)) => {
                    statuses[i] = status;
                    if replicas == 0 || proposal > replicas {
                        replicas = proposal;
                        metric = name;
                    }
                }
                Err((reason, err)) => {
                    self.event(hpa, "Warning", &reason, &err).await;
                    if first.is_none() {
                        first = Some((reason, err));
                    }
                    invalid += 1;
                }
            }
        }
        let statuses: Vec<Value> = statuses.into_iter().filter(|s| !s.is_null()).collect();
        if let Some((reason, err)) = &first
            && (invalid >= specs.len() || replicas < current)
        {
            set_condition(
                conditions,
                "ScalingActive",
                false,
                reason,
                &format!("the HPA was unable to compute the replica count: {err}"),
            );
            return Err((
                statuses,
                format!(
                    "invalid metrics ({invalid} invalid out of {}), first error is: {err}",
                    specs.len()
                ),
            ));
        }
        set_condition(
            conditions,
            "ScalingActive",
            true,
            "ValidMetricFound",
            &format!("the HPA was able to successfully calculate a replica count from {metric}"),
        );
        Ok(Computed {
            replicas,
            metric,
            statuses,
        })
    }

    /// Upstream `hpasControllingPodsUnderSelector`: the message when the pods `selected` for
    /// HPA `key` are also selected by another HPA's target.
    async fn ambiguous(
        &self,
        key: &str,
        ns: &str,
        selector: &api::selector::LabelSelector,
        selected: &[&Value],
    ) -> Option<String> {
        let selectors = self.selectors.lock().await;
        let controlling: BTreeSet<&str> = selectors
            .iter()
            .filter(|(_, (hpa_ns, s))| hpa_ns == ns && selected.iter().any(|p| s.matches_value(p)))
            .map(|(k, _)| k.as_str())
            .collect();
        (controlling.len() > 1 && controlling.contains(key)).then(|| {
            let list: Vec<&str> = controlling.into_iter().collect();
            format!(
                "pods by selector {selector} are controlled by multiple HPAs: [{}]",
                list.join(" ")
            )
        })
    }

    /// One metric: (proposal, its name for messages, its status) or (event reason, error).
    fn compute_metric(
        &self,
        spec: &Value,
        ns: &str,
        current: i32,
        pods: &[Pod],
    ) -> Result<(i32, String, Value), (String, String)> {
        let ty = spec["type"].as_str().unwrap_or("");
        let (source, container) = match ty {
            "Resource" => ("resource", None),
            "ContainerResource" => (
                "containerResource",
                spec["containerResource"]["container"].as_str(),
            ),
            "Pods" | "Object" | "External" => {
                return Err((
                    format!("FailedGet{ty}Metric"),
                    format!(
                        "unable to get metric {}: no custom or external metrics API is served",
                        spec[ty.to_ascii_lowercase()]["metric"]["name"]
                            .as_str()
                            .unwrap_or("")
                    ),
                ));
            }
            other => {
                return Err((
                    "InvalidMetricSourceType".into(),
                    format!("unknown metric source type \"{other}\""),
                ));
            }
        };
        let reason = if ty == "Resource" {
            "FailedGetResourceMetric"
        } else {
            "FailedGetContainerResourceMetric"
        };
        let src = &spec[source];
        let resource = src["name"].as_str().unwrap_or("");
        let target = &src["target"];
        let target = if let Some(v) = target["averageValue"].as_str() {
            let q = api::quantity::Quantity::parse(v)
                .map_err(|e| (reason.to_string(), e.to_string()))?;
            Target::AverageValue(q.milli_value())
        } else if let Some(u) = target["averageUtilization"].as_i64() {
            Target::Utilization(u as i32)
        } else {
            return Err((
                reason.into(),
                "invalid resource metric source: neither an average utilization target nor an average value (usage) target was set".into(),
            ));
        };
        let what = match target {
            Target::Utilization(_) => "utilization",
            Target::AverageValue(_) => "usage",
        };
        let fail = |e: String| {
            (
                reason.to_string(),
                format!("failed to get {resource} {what}: {e}"),
            )
        };
        let metrics = self
            .resource_metrics(ns, pods, resource, container)
            .map_err(|e| {
                fail(format!(
                    "unable to get metrics for resource {resource}: {e}"
                ))
            })?;
        let p = replicas::resource_replicas(
            current,
            target,
            resource,
            container,
            pods,
            metrics,
            now_ms(),
        )
        .map_err(|e| fail(e.to_string()))?;
        let raw = api::quantity::Quantity::from_milli(p.raw, api::quantity::Format::DecimalSI)
            .canonical();
        let mut cur = json!({"averageValue": raw});
        if let Some(u) = p.utilization {
            cur["averageUtilization"] = json!(u);
        }
        let mut status_src = json!({"name": resource, "current": cur});
        if let Some(c) = container {
            status_src["container"] = json!(c);
        }
        let name = match (target, ty) {
            (Target::AverageValue(_), _) => format!("{resource} resource"),
            (_, "ContainerResource") => {
                format!("{resource} container resource utilization (percentage of request)")
            }
            _ => format!("{resource} resource utilization (percentage of request)"),
        };
        Ok((p.replicas, name, json!({"type": ty, source: status_src})))
    }

    /// The metrics client's `GetResourceMetric`: each Running pod's usage summed over its
    /// containers (or `container`); a pod missing a container's value is left out.
    fn resource_metrics(
        &self,
        ns: &str,
        pods: &[Pod],
        resource: &str,
        container: Option<&str>,
    ) -> Result<BTreeMap<String, PodUsage>, String> {
        let mut out = BTreeMap::new();
        for pod in pods {
            let name = pod.metadata.name.as_deref().unwrap_or("");
            if pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running") {
                continue;
            }
            let Some(m) = self.config.metrics.pod_metrics(ns, name) else {
                continue;
            };
            let mut value = 0;
            let mut found = false;
            for c in &m.containers {
                if container.is_some_and(|want| want != c.name) {
                    continue;
                }
                found = true;
                value += match resource {
                    "cpu" => c.cpu_milli,
                    "memory" => c.memory_milli,
                    _ => return Err(format!("unsupported resource {resource}")),
                };
            }
            if found {
                out.insert(
                    name.to_string(),
                    PodUsage {
                        value,
                        timestamp_ms: m.timestamp_ms,
                        window_ms: m.window_ms,
                    },
                );
            }
        }
        if out.is_empty() {
            return Err("no metrics returned from resource metrics API".into());
        }
        Ok(out)
    }

    /// Writes the status when it changed.
    async fn write_status(
        &self,
        ns: &str,
        name: &str,
        original: &Value,
        status: Value,
    ) -> Result<(), crate::Error> {
        if &status == original {
            return Ok(());
        }
        self.cluster
            .update_with(hpas(), ns, name, Subresource::Status, |obj| {
                obj["status"] = status.clone();
                Ok(true)
            })
            .await?;
        Ok(())
    }
}

/// Upstream `setStatus` / `setCurrentReplicasAndMetricsInStatus`.
fn status_json(
    original: &Value,
    current: i32,
    desired: Option<i32>,
    metrics: Value,
    conditions: Vec<Value>,
    rescaled: bool,
) -> Value {
    let mut s = json!({
        "desiredReplicas": desired.unwrap_or_else(|| original["desiredReplicas"].as_i64().unwrap_or(0) as i32),
        "conditions": conditions,
    });
    if current != 0 {
        s["currentReplicas"] = json!(current);
    }
    if metrics.as_array().is_some_and(|m| !m.is_empty()) {
        s["currentMetrics"] = metrics;
    }
    let last = if rescaled {
        json!(api::time::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
    } else {
        original["lastScaleTime"].clone()
    };
    if !last.is_null() {
        s["lastScaleTime"] = last;
    }
    s
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj["metadata"][field].as_str().unwrap_or("")
}
