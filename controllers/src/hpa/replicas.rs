//! The replica calculation of upstream's `pkg/controller/podautoscaler/replica_calculator.go`
//! for resource metrics: pods grouped into ready, unready (Pending, or for CPU not yet
//! initialised) and missing (no metrics) ones, failed and deleted pods ignored; the usage
//! ratio against the target; the tolerance; and the conservative re-computation that counts
//! missing pods at 100% of their request (scale down) or 0 (scale up) and unready pods at 0.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

/// upstream `--horizontal-pod-autoscaler-tolerance`.
pub const TOLERANCE: f64 = 0.1;
/// `--horizontal-pod-autoscaler-cpu-initialization-period`.
pub const CPU_INITIALIZATION_PERIOD_MS: i64 = 5 * 60 * 1000;
/// `--horizontal-pod-autoscaler-initial-readiness-delay`.
pub const INITIAL_READINESS_DELAY_MS: i64 = 30 * 1000;

/// One pod's usage of a resource (milli-units: millicores, millibytes), as the HPA's metrics
/// client sums its containers'.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodUsage {
    /// Sum over the containers considered.
    pub value: i64,
    /// When it was measured (ms since the epoch).
    pub timestamp_ms: i64,
    /// Over which window (ms).
    pub window_ms: i64,
}

/// Why no replica count could be computed (upstream's error texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalcError {
    /// The selector matched no pod.
    #[error("no pods returned by selector while calculating replica count")]
    NoPods,
    /// A container declares no request for the resource.
    #[error("missing request for {resource} in container {container} of Pod {pod}")]
    MissingRequest {
        /// The resource.
        resource: String,
        /// The container.
        container: String,
        /// The pod.
        pod: String,
    },
    /// No metric for any counted pod.
    #[error("did not receive metrics for targeted pods (pods might be unready)")]
    NoMetrics,
    /// Metrics and requests do not overlap.
    #[error("no metrics returned matched known pods")]
    NoMatch,
}

fn time_ms(t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Option<i64> {
    t.as_ref().map(|t| t.0.as_millisecond())
}

/// Upstream `groupPods`: (ready count, unready, missing, ignored).
fn group_pods(
    pods: &[Pod],
    metrics: &BTreeMap<String, PodUsage>,
    resource: &str,
    now_ms: i64,
) -> (usize, Vec<String>, Vec<String>, Vec<String>) {
    let (mut ready, mut unready, mut missing, mut ignored) =
        (0, Vec::new(), Vec::new(), Vec::new());
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let phase = pod
            .status
            .as_ref()
            .and_then(|s| s.phase.as_deref())
            .unwrap_or("");
        if pod.metadata.deletion_timestamp.is_some() || phase == "Failed" {
            ignored.push(name);
            continue;
        }
        if phase == "Pending" {
            unready.push(name);
            continue;
        }
        let Some(metric) = metrics.get(&name) else {
            missing.push(name);
            continue;
        };
        if resource == "cpu" {
            let status = pod.status.as_ref();
            let condition = status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"));
            let start = status.and_then(|s| time_ms(&s.start_time));
            let is_unready = match (condition, start) {
                (Some(c), Some(start)) => {
                    let transition = time_ms(&c.last_transition_time).unwrap_or(0);
                    if start + CPU_INITIALIZATION_PERIOD_MS > now_ms {
                        c.status == "False" || metric.timestamp_ms < transition + metric.window_ms
                    } else {
                        c.status == "False" && start + INITIAL_READINESS_DELAY_MS > transition
                    }
                }
                _ => true,
            };
            if is_unready {
                unready.push(name);
                continue;
            }
        }
        ready += 1;
    }
    (ready, unready, missing, ignored)
}

/// Upstream `calculatePodRequests`: each pod's request (milli), summed over its containers
/// (or only `container`).
fn pod_requests(
    pods: &[Pod],
    container: Option<&str>,
    resource: &str,
) -> Result<BTreeMap<String, i64>, CalcError> {
    let mut out = BTreeMap::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let mut total = 0i64;
        for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
            if container.is_some_and(|want| want != c.name) {
                continue;
            }
            let req = c
                .resources
                .as_ref()
                .and_then(|r| r.requests.as_ref())
                .and_then(|r| r.get(resource))
                .and_then(|q| api::quantity::Quantity::parse(&q.0).ok());
            match req {
                Some(q) => total += q.milli_value(),
                None => {
                    return Err(CalcError::MissingRequest {
                        resource: resource.to_string(),
                        container: c.name.clone(),
                        pod: name,
                    });
                }
            }
        }
        out.insert(name, total);
    }
    Ok(out)
}

/// Upstream `GetResourceUtilizationRatio`: (ratio, utilization %, raw average).
fn utilization_ratio(
    metrics: &BTreeMap<String, PodUsage>,
    requests: &BTreeMap<String, i64>,
    target: i32,
) -> Result<(f64, i32, i64), CalcError> {
    let (mut used, mut requested, mut count) = (0i64, 0i64, 0i64);
    for (pod, m) in metrics {
        if let Some(r) = requests.get(pod) {
            used += m.value;
            requested += r;
            count += 1;
        }
    }
    if requested == 0 || count == 0 {
        return Err(CalcError::NoMatch);
    }
    let utilization = (used * 100 / requested) as i32;
    Ok((
        f64::from(utilization) / f64::from(target),
        utilization,
        used / count,
    ))
}

/// The outcome of one metric's calculation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proposal {
    /// Replica count proposed.
    pub replicas: i32,
    /// Utilization (% of request), for a utilization target.
    pub utilization: Option<i32>,
    /// Average usage (milli) over the pods with metrics.
    pub raw: i64,
    /// The oldest metric's time (ms).
    pub timestamp_ms: i64,
}

/// What a target asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `averageUtilization` (% of the pods' requests).
    Utilization(i32),
    /// `averageValue` (milli-units per pod).
    AverageValue(i64),
}

/// Upstream `GetResourceReplicas` (utilization) and `GetRawResourceReplicas` (average value).
pub fn resource_replicas(
    current: i32,
    target: Target,
    resource: &str,
    container: Option<&str>,
    pods: &[Pod],
    mut metrics: BTreeMap<String, PodUsage>,
    now_ms: i64,
) -> Result<Proposal, CalcError> {
    let timestamp_ms = metrics.values().map(|m| m.timestamp_ms).min().unwrap_or(0);
    if pods.is_empty() {
        return Err(CalcError::NoPods);
    }
    let (ready, unready, missing, ignored) = group_pods(pods, &metrics, resource, now_ms);
    for p in ignored.iter().chain(&unready) {
        metrics.remove(p);
    }
    let requests = match target {
        Target::Utilization(_) => pod_requests(pods, container, resource)?,
        Target::AverageValue(_) => BTreeMap::new(),
    };
    if metrics.is_empty() {
        return Err(CalcError::NoMetrics);
    }
    // (ratio, utilization, raw) of the current metrics.
    let ratio_of = |m: &BTreeMap<String, PodUsage>| -> Result<(f64, Option<i32>, i64), CalcError> {
        match target {
            Target::Utilization(t) => {
                let (r, u, raw) = utilization_ratio(m, &requests, t)?;
                Ok((r, Some(u), raw))
            }
            Target::AverageValue(t) => {
                let total: i64 = m.values().map(|u| u.value).sum();
                let avg = total as f64 / m.len() as f64;
                Ok((avg / t as f64, None, total / m.len() as i64))
            }
        }
    };
    let (ratio, utilization, raw) = ratio_of(&metrics)?;
    let proposal = |replicas: i32| Proposal {
        replicas,
        utilization,
        raw,
        timestamp_ms,
    };
    let scale_up_with_unready = !unready.is_empty() && ratio > 1.0;
    if !scale_up_with_unready && missing.is_empty() {
        if (1.0 - ratio).abs() <= TOLERANCE {
            return Ok(proposal(current));
        }
        return Ok(proposal((ratio * ready as f64).ceil() as i32));
    }
    if !missing.is_empty() {
        for p in &missing {
            let value = if ratio < 1.0 {
                match target {
                    Target::Utilization(t) => {
                        let fallback = i64::from(t.max(100));
                        requests.get(p).copied().unwrap_or(0) * fallback / 100
                    }
                    Target::AverageValue(t) => t,
                }
            } else {
                0
            };
            metrics.insert(
                p.clone(),
                PodUsage {
                    value,
                    timestamp_ms,
                    window_ms: 0,
                },
            );
        }
    }
    if scale_up_with_unready {
        for p in &unready {
            metrics.insert(
                p.clone(),
                PodUsage {
                    value: 0,
                    timestamp_ms,
                    window_ms: 0,
                },
            );
        }
    }
    let (new_ratio, ..) = ratio_of(&metrics)?;
    if (1.0 - new_ratio).abs() <= TOLERANCE
        || (ratio < 1.0 && new_ratio > 1.0)
        || (ratio > 1.0 && new_ratio < 1.0)
    {
        return Ok(proposal(current));
    }
    let replicas = (new_ratio * metrics.len() as f64).ceil() as i32;
    if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
        return Ok(proposal(current));
    }
    Ok(proposal(replicas))
}
