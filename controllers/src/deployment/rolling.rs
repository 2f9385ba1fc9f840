//! The two rollout strategies: RollingUpdate (upstream `rolling.go`) and Recreate (upstream
//! `recreate.go`).

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;

use super::util::*;
use super::{Controller, SyncResult, replace};

impl Controller {
    /// upstream `rolloutRolling`: scale the new set up within maxSurge, else scale old sets
    /// down within maxUnavailable, then clean up and report.
    pub(super) async fn rollout_rolling(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
    ) -> SyncResult<Option<Duration>> {
        let (new_rs, old) = self.all_replica_sets(d, rs_list, true).await?;
        let Some(new_rs) = new_rs else {
            return Ok(None);
        };
        let (scaled_up, new_rs) = self.reconcile_new(d, &old, new_rs).await?;
        if scaled_up {
            return self.sync_rollout_status(d, &old, Some(&new_rs)).await;
        }
        let (scaled_down, old) = self.reconcile_old(d, old, &new_rs).await?;
        if scaled_down {
            return self.sync_rollout_status(d, &old, Some(&new_rs)).await;
        }
        if d.status.as_ref().is_some_and(|s| complete(d, s)) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, &old, Some(&new_rs)).await
    }

    /// upstream `reconcileNewReplicaSet`.
    async fn reconcile_new(
        &self,
        d: &Deployment,
        old: &[ReplicaSet],
        new_rs: ReplicaSet,
    ) -> SyncResult<(bool, ReplicaSet)> {
        let want = replicas(d);
        if rs_replicas(&new_rs) == want {
            return Ok((false, new_rs));
        }
        if rs_replicas(&new_rs) > want {
            return self.scale_and_record(&new_rs, want, d).await;
        }
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new_rs)).collect();
        let count = new_rs_new_replicas(d, &all, &new_rs);
        self.scale_and_record(&new_rs, count, d).await
    }

    /// upstream `reconcileOldReplicaSets` (on the active old sets; updated sets replace
    /// their entries in the returned list).
    async fn reconcile_old(
        &self,
        d: &Deployment,
        old: Vec<ReplicaSet>,
        new_rs: &ReplicaSet,
    ) -> SyncResult<(bool, Vec<ReplicaSet>)> {
        let active: Vec<ReplicaSet> = old
            .iter()
            .filter(|rs| rs_replicas(rs) > 0)
            .cloned()
            .collect();
        if spec_replicas(active.iter()) == 0 {
            return Ok((false, old));
        }
        let all_pods = spec_replicas(old.iter().chain(std::iter::once(new_rs)));
        let min_available = replicas(d) - max_unavailable(d);
        let new_unavailable = rs_replicas(new_rs) - available(new_rs);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok((false, old));
        }
        // Unhealthy replicas go first: they do not add to unavailability.
        let (active, cleaned) = self.cleanup_unhealthy(d, active, max_scaled_down).await?;
        let (active, scaled) = self.scale_down_old_for_rolling(d, active, new_rs).await?;
        let mut old = old;
        for rs in active {
            (_, old) = replace(None, old, rs);
        }
        Ok((cleaned + scaled > 0, old))
    }

    /// upstream `cleanupUnhealthyReplicas`.
    async fn cleanup_unhealthy(
        &self,
        d: &Deployment,
        mut old: Vec<ReplicaSet>,
        max_cleanup: i64,
    ) -> SyncResult<(Vec<ReplicaSet>, i64)> {
        old.sort_by(by_creation);
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= max_cleanup {
                break;
            }
            let available = available(rs);
            if rs_replicas(rs) == 0 || rs_replicas(rs) == available {
                continue;
            }
            let count = (max_cleanup - total).min(rs_replicas(rs) - available);
            let (_, updated) = self
                .scale_and_record(rs, rs_replicas(rs) - count, d)
                .await?;
            *rs = updated;
            total += count;
        }
        Ok((old, total))
    }

    /// upstream `scaleDownOldReplicaSetsForRollingUpdate`: old sets shrink (oldest first)
    /// while the available pods stay above `replicas - maxUnavailable`.
    async fn scale_down_old_for_rolling(
        &self,
        d: &Deployment,
        mut old: Vec<ReplicaSet>,
        new_rs: &ReplicaSet,
    ) -> SyncResult<(Vec<ReplicaSet>, i64)> {
        let min_available = replicas(d) - max_unavailable(d);
        let available = status_sum(old.iter().chain(std::iter::once(new_rs)), available);
        if available <= min_available {
            return Ok((old, 0));
        }
        old.sort_by(by_creation);
        let budget = available - min_available;
        let mut total = 0;
        for rs in old.iter_mut() {
            if total >= budget {
                break;
            }
            if rs_replicas(rs) == 0 {
                continue;
            }
            let count = rs_replicas(rs).min(budget - total);
            let (_, updated) = self
                .scale_and_record(rs, rs_replicas(rs) - count, d)
                .await?;
            *rs = updated;
            total += count;
        }
        Ok((old, total))
    }

    /// upstream `rolloutRecreate`: old sets to zero, wait until none of their pods runs,
    /// then the new set (created only now) to full size.
    pub(super) async fn rollout_recreate(
        &self,
        d: &mut Deployment,
        rs_list: &mut Vec<ReplicaSet>,
        pod_map: &HashMap<String, Vec<Pod>>,
    ) -> SyncResult<Option<Duration>> {
        let (new_rs, mut old) = self.all_replica_sets(d, rs_list, false).await?;
        let mut scaled_down = false;
        for rs in old.iter_mut() {
            if rs_replicas(rs) == 0 {
                continue;
            }
            let (scaled, updated) = self.scale_and_record(rs, 0, d).await?;
            *rs = updated;
            scaled_down |= scaled;
        }
        if scaled_down {
            return self.sync_rollout_status(d, &old, new_rs.as_ref()).await;
        }
        if old_pods_running(new_rs.as_ref(), &old, pod_map) {
            return self.sync_rollout_status(d, &old, new_rs.as_ref()).await;
        }
        let (new_rs, old) = match new_rs {
            Some(rs) => (rs, old),
            None => match self.all_replica_sets(d, rs_list, true).await? {
                (Some(rs), old) => (rs, old),
                (None, _) => return Ok(None),
            },
        };
        let (_, new_rs) = self.scale_and_record(&new_rs, replicas(d), d).await?;
        if d.status.as_ref().is_some_and(|s| complete(d, s)) {
            self.cleanup(d, &old).await?;
        }
        self.sync_rollout_status(d, &old, Some(&new_rs)).await
    }
}

/// upstream `oldPodsRunning`: old sets still report pods, or a pod of an old set has not
/// finished (pods being deleted count until they are gone).
fn old_pods_running(
    new_rs: Option<&ReplicaSet>,
    old: &[ReplicaSet],
    pod_map: &HashMap<String, Vec<Pod>>,
) -> bool {
    if status_sum(old.iter(), actual) > 0 {
        return true;
    }
    let new_uid = new_rs.map(|rs| crate::typed::uid(&rs.metadata));
    pod_map
        .iter()
        .filter(|(uid, _)| Some(uid.as_str()) != new_uid)
        .flat_map(|(_, pods)| pods.iter())
        .any(|p| !crate::pod::typed::is_terminal(p))
}
