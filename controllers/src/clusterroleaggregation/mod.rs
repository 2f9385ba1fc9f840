//! The ClusterRole aggregation controller (upstream `pkg/controller/clusterroleaggregation`):
//! a ClusterRole with an `aggregationRule` gets as its rules the union of the rules of every
//! other ClusterRole its `clusterRoleSelectors` select (in name order, each rule once). Any
//! ClusterRole change re-queues every aggregated role, so chains (`view` → `edit` → `admin`)
//! settle.

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use api::selector::LabelSelector;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterRef, Subresource};
use crate::queue::{Reconciler, WorkQueue};
use crate::reflector::{Change, Delta};
use crate::{Error, typed};

/// Concurrent reconciles (upstream runs 5 workers; one is plenty here).
const WORKERS: usize = 1;

fn cluster_roles() -> &'static ResourceInfo {
    typed::info::<ClusterRole>()
}

/// Runs the controller until `shutdown` is cancelled.
pub async fn run(cluster: ClusterRef, shutdown: CancellationToken) {
    let controller = Arc::new(Controller {
        cluster: cluster.clone(),
        queue: WorkQueue::controller_default(),
        known: std::sync::Mutex::new(std::collections::BTreeSet::new()),
    });
    crate::queue::drive(&cluster, controller, &[cluster_roles()], WORKERS, &shutdown).await;
}

/// The controller's state.
pub(crate) struct Controller {
    cluster: ClusterRef,
    queue: WorkQueue<String>,
    /// Names of the aggregated ClusterRoles seen (upstream enqueues every aggregated role
    /// from its lister on any change).
    known: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

/// The union of the selected roles' rules (upstream's loop: sorted by name, a rule added
/// unless an equal one is already there).
pub fn aggregate(target: &ClusterRole, all: &[ClusterRole]) -> Option<Vec<PolicyRule>> {
    let selectors = target
        .aggregation_rule
        .as_ref()?
        .cluster_role_selectors
        .as_ref()?;
    let selectors: Vec<LabelSelector> = selectors
        .iter()
        .filter_map(|s| LabelSelector::from_k8s(s).ok())
        .collect();
    let mut sources: Vec<&ClusterRole> = all
        .iter()
        .filter(|r| r.metadata.name != target.metadata.name)
        .filter(|r| {
            let labels = r.metadata.labels.clone().unwrap_or_default();
            selectors.iter().any(|s| s.matches(&labels))
        })
        .collect();
    sources.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut rules: Vec<PolicyRule> = Vec::new();
    for r in sources {
        for rule in r.rules.iter().flatten() {
            if !rules.contains(rule) {
                rules.push(rule.clone());
            }
        }
    }
    Some(rules)
}

impl Reconciler for Controller {
    type Key = String;

    fn queue(&self) -> &WorkQueue<String> {
        &self.queue
    }

    async fn reconcile(self: Arc<Self>, name: String) -> Result<Option<Duration>, Error> {
        let Some(target) = typed::get::<ClusterRole>(&self.cluster, "", &name).await? else {
            return Ok(None);
        };
        if target.aggregation_rule.is_none() {
            return Ok(None);
        }
        let all = typed::list::<ClusterRole>(&self.cluster, None).await?;
        let Some(rules) = aggregate(&target, &all) else {
            return Ok(None);
        };
        if target.rules.as_deref().unwrap_or_default() == rules.as_slice() {
            return Ok(None);
        }
        let value = typed::encode(&rules)?;
        self.cluster
            .update_with(cluster_roles(), "", &name, Subresource::Main, |obj| {
                if obj["rules"] == value {
                    return Ok(false);
                }
                obj["rules"] = value.clone();
                Ok(true)
            })
            .await?;
        tracing::debug!(clusterrole = %name, rules = rules.len(), "aggregated");
        Ok(None)
    }

    fn observe(&self, change: Change) {
        if let Delta::Upsert(obj) = &change.delta
            && obj
                .pointer("/aggregationRule")
                .is_some_and(|a| !a.is_null())
            && let Some(name) = obj.pointer("/metadata/name").and_then(|n| n.as_str())
            && let Ok(mut known) = self.known.lock()
        {
            known.insert(name.to_string());
        }
        if let Delta::Delete(obj) = &change.delta
            && let Some(name) = obj.pointer("/metadata/name").and_then(|n| n.as_str())
            && let Ok(mut known) = self.known.lock()
        {
            known.remove(name);
        }
        let names: Vec<String> = self
            .known
            .lock()
            .map(|k| k.iter().cloned().collect())
            .unwrap_or_default();
        for n in names {
            self.queue.add(n);
        }
    }
}
