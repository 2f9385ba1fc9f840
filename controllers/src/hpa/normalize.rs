//! Stabilization and rate limits of a proposed replica count (upstream
//! `normalizeDesiredReplicas` without a `behavior`: the highest recommendation of the
//! downscale stabilization window, then min/max and a scale-up limit of max(2×current, 4);
//! `normalizeDesiredReplicasWithBehaviors` with one: the scale-up and scale-down windows, and
//! the policies applied to the scale events of their periods). Times are tokio's, so tests
//! run them on paused time.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

/// (reason, message) of the `AbleToScale` condition.
pub type Able = (&'static str, &'static str);
/// (status, reason, message) of the `ScalingLimited` condition.
pub type Limited = (bool, &'static str, &'static str);

const WITHIN: (&str, &str) = (
    "DesiredWithinRange",
    "the desired count is within the acceptable range",
);
const UP_LIMIT: (&str, &str) = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const TOO_MANY: (&str, &str) = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const TOO_FEW: (&str, &str) = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);
const DOWN_LIMIT: (&str, &str) = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);
const READY: Able = ("ReadyForNewScale", "recommended size matches current size");
const DOWN_STABILIZED: Able = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent recommendation",
);
const UP_STABILIZED: Able = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
);

#[derive(Debug, Clone, Copy)]
struct Recommendation {
    replicas: i32,
    at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    change: i32,
    at: Instant,
}

/// One direction's rules (`HPAScalingRules`, defaulted).
#[derive(Debug, Clone)]
struct Rules {
    window: Duration,
    select: String,
    policies: Vec<(String, i32, Duration)>,
}

fn rules(v: &Value, default_window: u64) -> Rules {
    Rules {
        window: Duration::from_secs(
            v["stabilizationWindowSeconds"]
                .as_u64()
                .unwrap_or(default_window),
        ),
        select: v["selectPolicy"].as_str().unwrap_or("Max").to_string(),
        policies: v["policies"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| {
                        (
                            p["type"].as_str().unwrap_or("").to_string(),
                            p["value"].as_i64().unwrap_or(0) as i32,
                            Duration::from_secs(p["periodSeconds"].as_u64().unwrap_or(0)),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The controller's memory of recent recommendations and scale events, per HPA.
#[derive(Debug)]
pub struct Normalizer {
    downscale_window: Duration,
    recommendations: HashMap<String, Vec<Recommendation>>,
    scale_up: HashMap<String, Vec<ScaleEvent>>,
    scale_down: HashMap<String, Vec<ScaleEvent>>,
}

impl Normalizer {
    /// With `--horizontal-pod-autoscaler-downscale-stabilization`.
    pub fn new(downscale_window: Duration) -> Normalizer {
        Normalizer {
            downscale_window,
            recommendations: HashMap::new(),
            scale_up: HashMap::new(),
            scale_down: HashMap::new(),
        }
    }

    /// Forgets HPAs that are gone.
    pub fn retain(&mut self, keys: &[String]) {
        self.recommendations.retain(|k, _| keys.contains(k));
        self.scale_up.retain(|k, _| keys.contains(k));
        self.scale_down.retain(|k, _| keys.contains(k));
    }

    /// `normalizeDesiredReplicas` (no behavior): (replicas, AbleToScale, ScalingLimited).
    pub fn normalize(
        &mut self,
        key: &str,
        current: i32,
        proposed: i32,
        min: i32,
        max: i32,
    ) -> (i32, Able, Limited) {
        let now = Instant::now();
        let cutoff = now.checked_sub(self.downscale_window);
        let recs = self.recommendations.entry(key.to_string()).or_default();
        let mut stabilized = proposed;
        let mut old = None;
        for (i, r) in recs.iter().enumerate() {
            if cutoff.is_some_and(|c| r.at < c) {
                old = Some(i);
            } else if r.replicas > stabilized {
                stabilized = r.replicas;
            }
        }
        let rec = Recommendation {
            replicas: proposed,
            at: now,
        };
        match old {
            Some(i) => recs[i] = rec,
            None => recs.push(rec),
        }
        let able = if stabilized != proposed {
            DOWN_STABILIZED
        } else {
            READY
        };
        // convertDesiredReplicasWithRules.
        let up_limit = (2 * current).max(4);
        let (max_allowed, limit) = if max > up_limit {
            (up_limit, UP_LIMIT)
        } else {
            (max, TOO_MANY)
        };
        let min_allowed = if min == 0 { 1 } else { min };
        let (desired, why) = if stabilized < min_allowed {
            (min_allowed, TOO_FEW)
        } else if stabilized > max_allowed {
            (max_allowed, limit)
        } else {
            (stabilized, WITHIN)
        };
        (desired, able, (desired != stabilized, why.0, why.1))
    }

    /// `normalizeDesiredReplicasWithBehaviors`.
    pub fn normalize_with_behavior(
        &mut self,
        key: &str,
        current: i32,
        proposed: i32,
        min: i32,
        max: i32,
        behavior: &Value,
    ) -> (i32, Able, Limited) {
        let up = rules(&behavior["scaleUp"], 0);
        let down = rules(&behavior["scaleDown"], self.downscale_window.as_secs());
        let now = Instant::now();
        // stabilizeRecommendationWithBehaviors.
        let up_cutoff = now.checked_sub(up.window);
        let down_cutoff = now.checked_sub(down.window);
        let after = |c: Option<Instant>, t: Instant| c.is_none_or(|c| t > c);
        let recs = self.recommendations.entry(key.to_string()).or_default();
        let (mut up_rec, mut down_rec) = (proposed, proposed);
        let mut old = None;
        for (i, r) in recs.iter().enumerate() {
            if after(up_cutoff, r.at) {
                up_rec = up_rec.min(r.replicas);
            }
            if after(down_cutoff, r.at) {
                down_rec = down_rec.max(r.replicas);
            }
            if !after(up_cutoff, r.at) && !after(down_cutoff, r.at) {
                old = Some(i);
            }
        }
        let mut stabilized = current.max(up_rec);
        stabilized = stabilized.min(down_rec);
        let rec = Recommendation {
            replicas: proposed,
            at: now,
        };
        match old {
            Some(i) => recs[i] = rec,
            None => recs.push(rec),
        }
        let able = if stabilized == proposed {
            READY
        } else if proposed >= current {
            UP_STABILIZED
        } else {
            DOWN_STABILIZED
        };
        // convertDesiredReplicasWithBehaviorRate.
        let ups = self.scale_up.get(key).cloned().unwrap_or_default();
        let downs = self.scale_down.get(key).cloned().unwrap_or_default();
        let (desired, why) = if stabilized > current {
            let limit = scale_up_limit(current, &ups, &downs, &up, now).max(current);
            let (max_allowed, why) = if max > limit {
                (limit, UP_LIMIT)
            } else {
                (max, TOO_MANY)
            };
            if stabilized > max_allowed {
                (max_allowed, why)
            } else {
                (stabilized, WITHIN)
            }
        } else if stabilized < current {
            let limit = scale_down_limit(current, &ups, &downs, &down, now).min(current);
            let (min_allowed, why) = if min < limit {
                (limit, DOWN_LIMIT)
            } else {
                (min, TOO_FEW)
            };
            if stabilized < min_allowed {
                (min_allowed, why)
            } else {
                (stabilized, WITHIN)
            }
        } else {
            (stabilized, WITHIN)
        };
        (desired, able, (desired != stabilized, why.0, why.1))
    }

    /// `storeScaleEvent`: records a rescale, dropping events older than the longest policy
    /// period of its direction.
    pub fn store_scale_event(&mut self, key: &str, behavior: &Value, prev: i32, new: i32) {
        let now = Instant::now();
        let (events, rules) = if new > prev {
            (&mut self.scale_up, rules(&behavior["scaleUp"], 0))
        } else {
            (
                &mut self.scale_down,
                rules(&behavior["scaleDown"], self.downscale_window.as_secs()),
            )
        };
        let longest = rules.policies.iter().map(|p| p.2).max().unwrap_or_default();
        let list = events.entry(key.to_string()).or_default();
        list.retain(|e| now.duration_since(e.at) <= longest);
        list.push(ScaleEvent {
            change: (new - prev).abs(),
            at: now,
        });
    }
}

/// `getReplicasChangePerPeriod`.
fn change_in(period: Duration, events: &[ScaleEvent], now: Instant) -> i32 {
    events
        .iter()
        .filter(|e| now.duration_since(e.at) < period)
        .map(|e| e.change)
        .sum()
}

/// `calculateScaleUpLimitWithScalingRules`.
fn scale_up_limit(
    current: i32,
    ups: &[ScaleEvent],
    downs: &[ScaleEvent],
    r: &Rules,
    now: Instant,
) -> i32 {
    if r.select == "Disabled" {
        return current;
    }
    let min_change = r.select == "Min";
    let mut result = if min_change { i32::MAX } else { i32::MIN };
    for (ty, value, period) in &r.policies {
        let start = current - change_in(*period, ups, now) + change_in(*period, downs, now);
        let proposed = match ty.as_str() {
            "Pods" => start + value,
            _ => (f64::from(start) * (1.0 + f64::from(*value) / 100.0)).ceil() as i32,
        };
        result = if min_change {
            result.min(proposed)
        } else {
            result.max(proposed)
        };
    }
    result
}

/// `calculateScaleDownLimitWithBehaviors`.
fn scale_down_limit(
    current: i32,
    ups: &[ScaleEvent],
    downs: &[ScaleEvent],
    r: &Rules,
    now: Instant,
) -> i32 {
    if r.select == "Disabled" {
        return current;
    }
    let min_change = r.select == "Min";
    let mut result = if min_change { i32::MIN } else { i32::MAX };
    for (ty, value, period) in &r.policies {
        let start = current - change_in(*period, ups, now) + change_in(*period, downs, now);
        let proposed = match ty.as_str() {
            "Pods" => start - value,
            _ => (f64::from(start) * (1.0 - f64::from(*value) / 100.0)) as i32,
        };
        result = if min_change {
            result.max(proposed)
        } else {
            result.min(proposed)
        };
    }
    result
}
