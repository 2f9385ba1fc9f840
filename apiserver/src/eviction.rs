//! `POST pods/{name}/eviction`: a pod deleted only if its PodDisruptionBudget allows it, as
//! upstream's `EvictionREST.Create` (`pkg/registry/core/pod/storage/eviction.go`).
//!
//! Start at [`Registry::evict`]. A pod that is Pending, terminal or already being deleted is
//! deleted without any budget check (with a resourceVersion precondition while it could still
//! become ready). Otherwise the one PDB selecting the pod (more than one: a 500 Status) must
//! allow a disruption: its `disruptionsAllowed` is decremented and the pod recorded in
//! `disruptedPods` by a resourceVersion-checked status write, or the eviction is refused with
//! 429 and the `DisruptionBudget` cause. An unready pod is deleted without spending the budget
//! when the budget is met (`IfHealthyBudget`) or always (`AlwaysAllow`). The pod gets the
//! `DisruptionTarget` condition (`EvictionByEvictionAPI`) before it is deleted with the
//! eviction's DeleteOptions.

use std::sync::Arc;
use std::time::Duration;

use api::registry::ResourceInfo;
use api::status::{ApiError, StatusCause, StatusDetails, go_quote};
use serde_json::{Value, json};

use crate::meta::meta_str;
use crate::options::{DeleteOptions, UpdateMode, WriteOptions};
use crate::registry::{Registry, check_preconditions};

/// Upstream `MaxDisruptedPodSize`: more unconfirmed evictions than this are refused.
const MAX_DISRUPTED_POD_SIZE: usize = 2000;
/// Upstream `EvictionsRetry`: 20 attempts 500 ms apart on conflicts.
const RETRY_STEPS: usize = 20;
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// The message of both 429 refusals.
const VIOLATES: &str = "Cannot evict pod as it would violate the pod's disruption budget.";

/// An eviction request: the pod's name and the DeleteOptions to delete it with.
#[derive(Debug, Clone, Default)]
pub struct Eviction {
    /// `metadata.name` of the Eviction.
    pub name: String,
    /// `deleteOptions`, with the request's dryRun merged in (upstream `propagateDryRun`).
    pub delete_options: DeleteOptions,
}

impl Eviction {
    /// Reads a `policy/v1` (or `policy/v1beta1`, which upstream also accepts) Eviction body;
    /// `dry_run` is the request's `dryRun` parameter.
    pub fn from_body(body: &Value, dry_run: bool) -> Result<Eviction, ApiError> {
        let s = |f: &str| body.get(f).and_then(Value::as_str).unwrap_or("");
        let api_version = s("apiVersion");
        if !matches!(api_version, "" | "policy/v1" | "policy/v1beta1") {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version (policy/v1)"
            )));
        }
        let kind = s("kind");
        if !matches!(kind, "" | "Eviction") {
            return Err(ApiError::bad_request(format!(
                "{kind} in version \"v1\" cannot be handled as a Eviction: the kind in the data ({kind}) does not match the expected kind (Eviction)"
            )));
        }
        let name = body
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let delete_options = match body.get("deleteOptions").filter(|d| !d.is_null()) {
            Some(d) => {
                let bytes = serde_json::to_vec(d).map_err(ApiError::internal)?;
                crate::params::delete_options(&crate::params::Query::default(), &bytes)?
            }
            None => DeleteOptions::default(),
        };
        let mut e = Eviction {
            name,
            delete_options,
        };
        // propagateDryRun: the request's dryRun when the content has none (the only value
        // either can hold is `All`, so they never disagree).
        e.delete_options.dry_run |= dry_run;
        Ok(e)
    }
}

/// What an eviction returns: upstream's `Status` objects.
#[derive(Debug)]
pub enum Evicted {
    /// The pod was deleted (or would be, in a dry run): `Success`, 201.
    Success,
    /// The eviction could not be decided: a `Failure` Status returned as the response body
    /// with its code (upstream's 500 for a pod under more than one budget).
    Failure(ApiError),
}

impl Registry {
    /// Evicts pod `namespace/name` (upstream `EvictionREST.Create`).
    pub async fn evict(
        &self,
        namespace: &str,
        name: &str,
        eviction: &Eviction,
    ) -> Result<Evicted, ApiError> {
        if name != eviction.name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
        let pods = info("", "pods");
        let original = &eviction.delete_options;
        // Conflicts are retried unless the caller gave a resourceVersion precondition.
        let retry_conflicts = original.preconditions_resource_version.is_none();
        let mut attempt = 0;
        let pod = loop {
            attempt += 1;
            let pod = self.get(pods, namespace, name)?;
            if !can_ignore_pdb(&pod) {
                break pod;
            }
            let mut opts = original.clone();
            if should_enforce_resource_version(&pod)
                && original.preconditions_resource_version.is_none()
            {
                opts.preconditions_resource_version =
                    Some(meta_str(&pod, "resourceVersion").into());
            }
            match self.add_condition_and_delete(namespace, name, &opts).await {
                Ok(()) => return Ok(Evicted::Success),
                Err(e) if e.code == 409 && retry_conflicts && attempt < RETRY_STEPS => {
                    tokio::time::sleep(RETRY_DELAY).await;
                }
                Err(e) => return Err(e),
            }
        };

        let pdbs = self.pod_disruption_budgets(&pod)?;
        if pdbs.len() > 1 {
            return Ok(Evicted::Failure(ApiError::new(
                500,
                "",
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            )));
        }
        let mut pdb_name = String::new();
        let mut update_deletion_options = false;
        if let Some(pdb) = pdbs.into_iter().next() {
            pdb_name = meta_str(&pdb, "name").to_string();
            let status_i = |f: &str| pdb["status"][f].as_i64().unwrap_or(0);
            let always_allow =
                pdb["spec"]["unhealthyPodEvictionPolicy"].as_str() == Some("AlwaysAllow");
            if !api::pdb::is_pod_ready(&pod)
                && (always_allow
                    || (status_i("currentHealthy") >= status_i("desiredHealthy")
                        && status_i("desiredHealthy") > 0))
            {
                // An unready pod is not counted as healthy: deleting it spends nothing.
                update_deletion_options = true;
            } else {
                self.check_and_decrement(namespace, name, pdb, original.dry_run)
                    .await?;
            }
        }

        let mut opts = original.clone();
        if update_deletion_options {
            // The pod must not have become ready since it was judged unready.
            opts.preconditions_resource_version = Some(meta_str(&pod, "resourceVersion").into());
        }
        match self.add_condition_and_delete(namespace, name, &opts).await {
            Ok(()) => Ok(Evicted::Success),
            Err(e)
                if e.code == 409
                    && update_deletion_options
                    && original.preconditions_resource_version.is_none() =>
            {
                Err(still_processing(&pdb_name))
            }
            Err(e) => Err(e),
        }
    }

    /// The PDBs of the pod's namespace whose (non-empty, valid) selector matches it.
    fn pod_disruption_budgets(&self, pod: &Value) -> Result<Vec<Arc<Value>>, ApiError> {
        let (all, _) = self.list(
            info("policy", "poddisruptionbudgets"),
            Some(meta_str(pod, "namespace")),
            None,
            None,
        )?;
        Ok(all
            .into_iter()
            .filter(|pdb| {
                let sel = &pdb["spec"]["selector"];
                // A nil or empty selector matches nothing here, not everything.
                match api::selector::LabelSelector::from_json(sel) {
                    Ok(s) => !sel.is_null() && !s.is_empty() && s.matches_value(pod),
                    Err(_) => false,
                }
            })
            .collect())
    }

    /// Upstream `checkAndDecrement` under `RetryOnConflict`: refuses unless the budget allows
    /// a disruption, then (not in a dry run) decrements it and records the pod in
    /// `disruptedPods` through a resourceVersion-checked status write.
    async fn check_and_decrement(
        &self,
        namespace: &str,
        pod_name: &str,
        mut pdb: Arc<Value>,
        dry_run: bool,
    ) -> Result<(), ApiError> {
        let pdbs = info("policy", "poddisruptionbudgets");
        let pdb_name = meta_str(&pdb, "name").to_string();
        for attempt in 1..=RETRY_STEPS {
            if attempt > 1 {
                tokio::time::sleep(RETRY_DELAY).await;
                pdb = self.get(pdbs, namespace, &pdb_name)?;
            }
            let status = &pdb["status"];
            let int = |f: &str| status[f].as_i64().unwrap_or(0);
            let generation = pdb["metadata"]["generation"].as_i64().unwrap_or(0);
            if int("observedGeneration") < generation {
                return Err(still_processing(&pdb_name));
            }
            let allowed = int("disruptionsAllowed");
            if allowed < 0 {
                return Err(ApiError::forbidden(
                    pdbs_singular(),
                    &pdb_name,
                    "pdb disruptions allowed is negative",
                ));
            }
            let disrupted = status["disruptedPods"].as_object().map_or(0, |m| m.len());
            if disrupted > MAX_DISRUPTED_POD_SIZE {
                return Err(ApiError::forbidden(
                    pdbs_singular(),
                    &pdb_name,
                    "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
                ));
            }
            if allowed == 0 {
                let mut e = ApiError::too_many_requests(VIOLATES, 0);
                if let Some(d) = e.details.as_mut() {
                    d.causes.push(StatusCause {
                        reason: "DisruptionBudget".into(),
                        message: format!(
                            "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
                            int("desiredHealthy"),
                            int("currentHealthy")
                        ),
                        field: String::new(),
                    });
                }
                return Err(e);
            }
            if dry_run {
                return Ok(());
            }
            let mut new = Value::clone(&pdb);
            new["status"]["disruptionsAllowed"] = json!(allowed - 1);
            if allowed - 1 == 0 {
                api::pdb::update_disruption_allowed_condition(
                    &mut new,
                    &api::time::rfc3339(api::time::now()),
                );
            }
            if !new["status"]["disruptedPods"].is_object() {
                new["status"]["disruptedPods"] = json!({});
            }
            new["status"]["disruptedPods"][pod_name] = json!(api::time::rfc3339(api::time::now()));
            match self
                .update_status(pdbs, namespace, &pdb_name, new, &WriteOptions::default())
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.code == 409 && attempt < RETRY_STEPS => continue,
                // client-go's `RetryOnConflict` ends with the last conflict (upstream's
                // "couldn't update PodDisruptionBudget … due to conflicts" timeout is never
                // reached since `OnError` returns it instead of the wait's timeout).
                Err(e) => return Err(e),
            }
        }
        Err(ApiError::internal("eviction retries exhausted"))
    }

    /// Upstream `addConditionAndDeletePod`: (not in a dry run) the `DisruptionTarget`
    /// condition on the latest pod, checked against the options' preconditions, then the
    /// delete (its resourceVersion precondition moved to the pod just written).
    async fn add_condition_and_delete(
        &self,
        namespace: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(), ApiError> {
        let pods = info("", "pods");
        let mut opts = opts.clone();
        if !opts.dry_run {
            let pre_uid = opts.preconditions_uid.clone().filter(|u| !u.is_empty());
            let pre_rv = opts
                .preconditions_resource_version
                .clone()
                .filter(|r| !r.is_empty());
            let mut f = |pod: &mut Value| -> Result<bool, ApiError> {
                let conflict = |what: &str, want: &str, field: &str, tail: &str| {
                    pod_conflict(
                        name,
                        &format!(
                            "the {what} in the precondition ({want}) does not match the {what} in record ({}). {tail}",
                            meta_str(pod, field)
                        ),
                    )
                };
                if let Some(uid) = &pre_uid
                    && uid != meta_str(pod, "uid")
                {
                    return Err(conflict(
                        "UID",
                        uid,
                        "uid",
                        "The object might have been deleted and then recreated",
                    ));
                }
                if let Some(rv) = &pre_rv
                    && rv != meta_str(pod, "resourceVersion")
                {
                    return Err(conflict(
                        "ResourceVersion",
                        rv,
                        "resourceVersion",
                        "The object might have been modified",
                    ));
                }
                api::pod_condition::update(
                    pod,
                    json!({"type": "DisruptionTarget", "status": "True",
                           "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}),
                );
                Ok(true)
            };
            let updated = self
                .update_with_mode(
                    pods,
                    namespace,
                    name,
                    UpdateMode::Status,
                    &WriteOptions::default(),
                    &mut f,
                )
                .await?;
            if opts.preconditions_resource_version.is_some() {
                opts.preconditions_resource_version =
                    Some(meta_str(&updated, "resourceVersion").to_string());
            }
        } else {
            // A dry run writes nothing but still answers the preconditions.
            let pod = self.get(pods, namespace, name)?;
            check_preconditions(
                pods,
                name,
                &pod,
                opts.preconditions_uid.as_deref(),
                opts.preconditions_resource_version.as_deref(),
            )?;
        }
        self.delete(pods, namespace, name, &opts).await.map(|_| ())
    }
}

/// Upstream `canIgnorePDB`: terminal, Pending and terminating pods are evicted without a
/// budget check.
fn can_ignore_pdb(pod: &Value) -> bool {
    matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed" | "Pending")
    ) || !pod["metadata"]["deletionTimestamp"].is_null()
}

/// Upstream `shouldEnforceResourceVersion`: all but terminal and terminating pods.
fn should_enforce_resource_version(pod: &Value) -> bool {
    let terminal = matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    !terminal && pod["metadata"]["deletionTimestamp"].is_null()
}

/// Upstream `createTooManyRequestsError`: 429, retry after 10 s.
fn still_processing(pdb_name: &str) -> ApiError {
    let mut e = ApiError::too_many_requests(VIOLATES, 10);
    if let Some(d) = e.details.as_mut() {
        d.causes.push(StatusCause {
            reason: "DisruptionBudget".into(),
            message: format!(
                "The disruption budget {pdb_name} is still being processed by the server."
            ),
            field: String::new(),
        });
    }
    e
}

/// Upstream `NewConflict(schema.GroupResource{Resource: "Pod"}, name, err)`.
fn pod_conflict(name: &str, msg: &str) -> ApiError {
    ApiError {
        code: 409,
        reason: "Conflict".into(),
        message: format!(
            "Operation cannot be fulfilled on Pod {}: {msg}",
            go_quote(name)
        ),
        details: Some(StatusDetails {
            name: name.to_string(),
            kind: "Pod".into(),
            ..StatusDetails::default()
        }),
    }
}

/// `policy.Resource("poddisruptionbudget")`, as upstream names it in its Forbidden errors.
fn pdbs_singular() -> &'static ResourceInfo {
    static SINGULAR: std::sync::OnceLock<ResourceInfo> = std::sync::OnceLock::new();
    SINGULAR.get_or_init(|| ResourceInfo {
        plural: "poddisruptionbudget",
        ..*info("policy", "poddisruptionbudgets")
    })
}

fn info(group: &str, plural: &str) -> &'static ResourceInfo {
    api::registry::lookup(group, "v1", plural).unwrap_or(&api::registry::resources()[0])
}

#[cfg(test)]
mod tests;
