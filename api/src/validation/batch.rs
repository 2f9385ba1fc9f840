//! batch/v1 validation (`pkg/apis/batch/validation/validation.go`): `ValidateJob` (generated
//! selector, spec, Indexed hostnames), `validateJobSpec` (counts, completion modes, pod
//! failure policy, pod replacement policy, the restart policy), `ValidateJobSpecUpdate`
//! (immutable fields), `validateJobStatus`, and the CronJob rules (schedule through
//! [`crate::cron`], time zone, concurrency policy, job template, the 52-character name).

use std::collections::BTreeSet;

use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec, PodFailurePolicyRule};
use serde_json::{Value, json};

use super::apps::validate_label_selector;
use super::pod::{template_labels, validate_pod_template};
use super::{
    Errors, IMMUTABLE_MSG, child, index, is_dns1123_label, is_qualified_name, typed,
    validate_nonnegative,
};
use crate::selector::LabelSelector;
use crate::status::{ApiError, FieldError};

/// `maxParallelismForIndexedJob`.
const MAX_PARALLELISM_INDEXED: i32 = 100_000;
/// `maxFailedIndexesForIndexedJob`.
const MAX_FAILED_INDEXES: i32 = 100_000;
/// `maxPodFailurePolicyRules`.
const MAX_RULES: usize = 20;
/// `maxPodFailurePolicyOnExitCodesValues`.
const MAX_EXIT_CODES: usize = 255;
/// `maxPodFailurePolicyOnPodConditionsPatterns`.
const MAX_CONDITION_PATTERNS: usize = 20;

/// The labels the Job strategy puts on a generated template (`batch.ControllerUidLabel`…).
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// `batch.JobNameLabel`.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// `batch.LegacyControllerUidLabel`.
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
/// `batch.LegacyJobNameLabel`.
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// Upstream `ValidateJob` after ObjectMeta: the generated selector, the spec and its
/// selector, the largest Indexed hostname.
pub fn validate_job(obj: &Value) -> Result<Errors, ApiError> {
    let job: Job = typed(obj)?;
    let spec = job.spec.clone().unwrap_or_default();
    let mut errs = validate_generated_selector(&job, &spec);
    errs.extend(validate_job_spec_with_selector(&spec, "spec"));
    let name = job.metadata.name.as_deref().unwrap_or("");
    if spec.completion_mode.as_deref() == Some("Indexed")
        && let Some(c) = spec.completions.filter(|c| *c > 0)
    {
        let host = format!("{name}-{}", c - 1);
        if !is_dns1123_label(&host).is_empty() {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                format!("will not able to create pod with invalid DNS label: {host}"),
            ));
        }
    }
    Ok(errs)
}

/// `validateGeneratedSelector` (with the `batch.kubernetes.io/` labels required).
fn validate_generated_selector(job: &Job, spec: &JobSpec) -> Errors {
    let mut errs = Errors::new();
    if spec.manual_selector == Some(true) {
        return errs;
    }
    let Some(sel) = spec.selector.as_ref() else {
        return errs;
    };
    let uid = job.metadata.uid.as_deref().unwrap_or("");
    let name = job.metadata.name.as_deref().unwrap_or("");
    if uid.is_empty() {
        errs.push(FieldError::required("metadata.uid", ""));
    }
    let labels = template_labels(&spec.template);
    let expected = [
        (LEGACY_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, name),
        (CONTROLLER_UID_LABEL, uid),
        (JOB_NAME_LABEL, name),
    ];
    for (k, v) in expected {
        // `ValidateHasLabel`.
        let path = "spec.template.metadata";
        match labels.get(k) {
            None => errs.push(FieldError::required(
                child(path, "labels"),
                format!("must be '{v}'"),
            )),
            Some(have) if have != v => errs.push(FieldError::invalid(
                child(path, "labels"),
                json!(labels),
                format!("must be '{v}'"),
            )),
            Some(_) => {}
        }
    }
    if let Ok(parsed) = LabelSelector::from_k8s(sel) {
        let want = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !parsed.matches(&want) {
            errs.push(FieldError::invalid(
                "spec.selector",
                selector_value(sel),
                "`selector` not auto-generated",
            ));
        }
    }
    errs
}

/// A selector as a bad value (its JSON; upstream prints the Go struct).
fn selector_value(sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> Value {
    serde_json::to_value(sel).unwrap_or(Value::Null)
}

/// `ValidateJobSpec`: `validateJobSpec`, the selector required and valid, and matching the
/// template's labels.
fn validate_job_spec_with_selector(spec: &JobSpec, path: &str) -> Errors {
    let mut errs = validate_job_spec(spec, path);
    let spath = child(path, "selector");
    match spec.selector.as_ref() {
        None => errs.push(FieldError::required(spath, "")),
        Some(sel) => {
            errs.extend(validate_label_selector(sel, &spath));
            if let Ok(parsed) = LabelSelector::from_k8s(sel) {
                let labels = template_labels(&spec.template);
                if !parsed.matches(&labels) {
                    errs.push(FieldError::invalid(
                        child(path, "template.metadata.labels"),
                        json!(labels),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
        }
    }
    errs
}

/// `validateJobSpec`.
fn validate_job_spec(spec: &JobSpec, path: &str) -> Errors {
    let mut errs = Errors::new();
    let p = |f: &str| child(path, f);
    for (v, f) in [
        (spec.parallelism, "parallelism"),
        (spec.completions, "completions"),
        (spec.backoff_limit, "backoffLimit"),
        (spec.ttl_seconds_after_finished, "ttlSecondsAfterFinished"),
        (spec.backoff_limit_per_index, "backoffLimitPerIndex"),
        (spec.max_failed_indexes, "maxFailedIndexes"),
    ] {
        if let Some(v) = v {
            errs.extend(validate_nonnegative(i64::from(v), &p(f)));
        }
        if f == "completions"
            && let Some(a) = spec.active_deadline_seconds
        {
            errs.extend(validate_nonnegative(a, &p("activeDeadlineSeconds")));
        }
    }
    if spec.max_failed_indexes.is_some() && spec.backoff_limit_per_index.is_none() {
        errs.push(FieldError::required(
            p("backoffLimitPerIndex"),
            "when maxFailedIndexes is specified",
        ));
    }
    let indexed = spec.completion_mode.as_deref() == Some("Indexed");
    if let Some(mode) = spec.completion_mode.as_deref() {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(FieldError::not_supported(
                p("completionMode"),
                mode,
                &["NonIndexed", "Indexed"],
            ));
        }
        if indexed {
            if spec.completions.is_none() {
                errs.push(FieldError::required(
                    p("completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(par) = spec.parallelism.filter(|v| *v > MAX_PARALLELISM_INDEXED) {
                errs.push(FieldError::invalid(
                    p("parallelism"),
                    par,
                    format!(
                        "must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed"
                    ),
                ));
            }
            if let (Some(c), Some(m)) = (spec.completions, spec.max_failed_indexes)
                && m > c
            {
                errs.push(FieldError::invalid(
                    p("maxFailedIndexes"),
                    m,
                    "must be less than or equal to completions",
                ));
            }
            if let Some(m) = spec.max_failed_indexes.filter(|m| *m > MAX_FAILED_INDEXES) {
                errs.push(FieldError::invalid(
                    p("maxFailedIndexes"),
                    m,
                    format!("must be less than or equal to {MAX_FAILED_INDEXES}"),
                ));
            }
        }
    }
    if !indexed {
        if let Some(b) = spec.backoff_limit_per_index {
            errs.push(FieldError::invalid(
                p("backoffLimitPerIndex"),
                b,
                "requires indexed completion mode",
            ));
        }
        if let Some(m) = spec.max_failed_indexes {
            errs.push(FieldError::invalid(
                p("maxFailedIndexes"),
                m,
                "requires indexed completion mode",
            ));
        }
    }
    if let Some(policy) = spec.pod_failure_policy.as_ref() {
        let rpath = child(&p("podFailurePolicy"), "rules");
        if policy.rules.len() > MAX_RULES {
            errs.push(FieldError::too_many(
                rpath.clone(),
                policy.rules.len(),
                MAX_RULES,
            ));
        }
        let names: BTreeSet<&str> = spec
            .template
            .spec
            .iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
                    .map(|c| c.name.as_str())
            })
            .collect();
        for (i, rule) in policy.rules.iter().enumerate() {
            errs.extend(validate_failure_rule(spec, rule, &index(&rpath, i), &names));
        }
    }
    if let Some(r) = spec.pod_replacement_policy.as_deref() {
        if spec.pod_failure_policy.is_some() {
            if r != "Failed" {
                errs.push(FieldError::not_supported(
                    p("podReplacementPolicy"),
                    r,
                    &["Failed"],
                ));
            }
        } else if r != "Failed" && r != "TerminatingOrFailed" {
            errs.push(FieldError::not_supported(
                p("podReplacementPolicy"),
                r,
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    let tpath = p("template");
    errs.extend(validate_pod_template(&spec.template, &tpath));
    let rp = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("");
    let rp_path = child(&tpath, "spec.restartPolicy");
    if rp == "Always" || rp.is_empty() {
        errs.push(FieldError::required(
            rp_path,
            "valid values: \"OnFailure\", \"Never\"",
        ));
    } else if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(
            rp_path,
            rp,
            &["OnFailure", "Never"],
        ));
    } else if spec.pod_failure_policy.is_some() && rp != "Never" {
        errs.push(FieldError::invalid(
            rp_path,
            rp,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
    errs
}

/// `validatePodFailurePolicyRule` with its OnExitCodes / OnPodConditions parts.
fn validate_failure_rule(
    spec: &JobSpec,
    rule: &PodFailurePolicyRule,
    path: &str,
    containers: &BTreeSet<&str>,
) -> Errors {
    let mut errs = Errors::new();
    const ACTIONS: &[&str] = &["Count", "FailIndex", "FailJob", "Ignore"];
    let apath = child(path, "action");
    match rule.action.as_str() {
        "" => errs.push(FieldError::required(
            apath,
            "valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]",
        )),
        "FailIndex" if spec.backoff_limit_per_index.is_none() => {
            errs.push(FieldError::invalid(
                apath,
                "FailIndex",
                "requires the backoffLimitPerIndex to be set",
            ));
        }
        "FailIndex" => {}
        a if !ACTIONS.contains(&a) => errs.push(FieldError::not_supported(apath, a, ACTIONS)),
        _ => {}
    }
    let conds = rule.on_pod_conditions.as_deref().unwrap_or(&[]);
    if let Some(ec) = rule.on_exit_codes.as_ref() {
        let epath = child(path, "onExitCodes");
        let opath = child(&epath, "operator");
        match ec.operator.as_str() {
            "" => errs.push(FieldError::required(
                opath,
                "valid values: [\"In\" \"NotIn\"]",
            )),
            "In" | "NotIn" => {}
            o => errs.push(FieldError::not_supported(opath, o, &["In", "NotIn"])),
        }
        if let Some(name) = ec.container_name.as_deref()
            && !containers.contains(name)
        {
            errs.push(FieldError::invalid(
                child(&epath, "containerName"),
                name,
                "must be one of the container or initContainer names in the pod template",
            ));
        }
        let vpath = child(&epath, "values");
        if ec.values.is_empty() {
            errs.push(FieldError::invalid(
                vpath.clone(),
                json!({"$go": "[]int32{}"}),
                "at least one value is required",
            ));
        } else if ec.values.len() > MAX_EXIT_CODES {
            errs.push(FieldError::too_many(
                vpath.clone(),
                ec.values.len(),
                MAX_EXIT_CODES,
            ));
        }
        let mut seen = BTreeSet::new();
        let mut ordered = true;
        for (j, v) in ec.values.iter().enumerate() {
            let p = index(&vpath, j);
            if ec.operator == "In" && *v == 0 {
                errs.push(FieldError::invalid(
                    p.clone(),
                    0,
                    "must not be 0 for the In operator",
                ));
            }
            if !seen.insert(*v) {
                errs.push(FieldError::duplicate(p, *v));
            }
            if j > 0 && ec.values[j - 1] > *v {
                ordered = false;
            }
        }
        if !ordered {
            let list: Vec<String> = ec.values.iter().map(i32::to_string).collect();
            errs.push(FieldError::invalid(
                vpath,
                json!({"$go": format!("[]int32{{{}}}", list.join(", "))}),
                "must be ordered",
            ));
        }
    }
    if !conds.is_empty() {
        let cpath = child(path, "onPodConditions");
        if conds.len() > MAX_CONDITION_PATTERNS {
            errs.push(FieldError::too_many(
                cpath.clone(),
                conds.len(),
                MAX_CONDITION_PATTERNS,
            ));
        }
        for (j, pat) in conds.iter().enumerate() {
            let pp = index(&cpath, j);
            for msg in is_qualified_name(&pat.type_) {
                errs.push(FieldError::invalid(
                    child(&pp, "type"),
                    pat.type_.as_str(),
                    msg,
                ));
            }
            let status = pat.status.as_deref().unwrap_or("");
            let spath = child(&pp, "status");
            match status {
                "" => errs.push(FieldError::required(
                    spath,
                    "valid values: [\"False\" \"True\" \"Unknown\"]",
                )),
                "True" | "False" | "Unknown" => {}
                s => errs.push(FieldError::not_supported(
                    spath,
                    s,
                    &["False", "True", "Unknown"],
                )),
            }
        }
    }
    let omit = json!({"$go": "<omitted>"});
    if rule.on_exit_codes.is_some() && !conds.is_empty() {
        errs.push(FieldError::invalid(
            path,
            omit.clone(),
            "specifying both OnExitCodes and OnPodConditions is not supported",
        ));
    }
    if rule.on_exit_codes.is_none() && conds.is_empty() {
        errs.push(FieldError::invalid(
            path,
            omit,
            "specifying one of OnExitCodes and OnPodConditions is required",
        ));
    }
    errs
}

/// `ValidateJobSpecUpdate`'s immutability rules (the spec itself is re-validated by the
/// caller): completions, selector, template, completionMode, podFailurePolicy,
/// backoffLimitPerIndex, managedBy, successPolicy.
pub fn validate_job_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let mut errs = Errors::new();
    for f in [
        "completions",
        "selector",
        "template",
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        let n = new.pointer(&format!("/spec/{f}"));
        let o = old.pointer(&format!("/spec/{f}"));
        if n != o {
            let shown = match n {
                Some(Value::Number(v)) => Value::Number(v.clone()),
                Some(Value::String(s)) => Value::String(s.clone()),
                // Upstream prints the whole Go struct; its JSON is as informative.
                Some(v) => json!({"$go": v.to_string()}),
                None => json!({"$go": "nil"}),
            };
            errs.push(FieldError::invalid(
                format!("spec.{f}"),
                shown,
                IMMUTABLE_MSG,
            ));
        }
    }
    Ok(errs)
}

/// `validateJobStatus` and the counter rules of `ValidateJobStatusUpdate`.
pub fn validate_job_status_update(new: &Value, old: &Value) -> Errors {
    let mut errs = Errors::new();
    let get = |v: &Value, f: &str| v.pointer(&format!("/status/{f}")).and_then(Value::as_i64);
    for f in ["active", "succeeded", "failed", "ready", "terminating"] {
        if let Some(n) = get(new, f) {
            errs.extend(validate_nonnegative(n, &format!("status.{f}")));
        }
    }
    for (f, msg) in [
        ("failed", "cannot decrease the failed counter"),
        ("succeeded", "cannot decrease the succeeded counter"),
    ] {
        let (n, o) = (get(new, f).unwrap_or(0), get(old, f).unwrap_or(0));
        if n < o {
            errs.push(FieldError::invalid(format!("status.{f}"), n, msg));
        }
    }
    let true_cond = |v: &Value, t: &str| {
        v.pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|c| c["type"] == t && c["status"] == "True"))
    };
    let omit = || json!({"$go": "<omitted>"});
    for t in ["Failed", "Complete", "FailureTarget"] {
        if true_cond(old, t) && !true_cond(new, t) {
            errs.push(FieldError::invalid(
                "status.conditions",
                omit(),
                format!("cannot disable the terminal {t}=True condition"),
            ));
        }
    }
    if true_cond(new, "Complete") && true_cond(new, "Failed") {
        errs.push(FieldError::invalid(
            "status.conditions",
            omit(),
            "cannot set Complete=True and Failed=true conditions",
        ));
    }
    errs
}

/// Upstream `ValidateCronJobCreate` after ObjectMeta: the spec, and names of at most 52
/// characters (a Job's name adds `-<minutes>`).
pub fn validate_cron_job_create(obj: &Value) -> Result<Errors, ApiError> {
    let mut errs = validate_cron_job_spec(obj, None)?;
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if name.len() > 52 {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be no more than 52 characters",
        ));
    }
    Ok(errs)
}

/// `validateCronJobSpec` (`old` on updates, which may keep a `TZ=` schedule).
pub fn validate_cron_job_spec(obj: &Value, old: Option<&Value>) -> Result<Errors, ApiError> {
    let cj: CronJob = typed(obj)?;
    let spec = cj.spec;
    let old_spec = old.map(typed::<CronJob>).transpose()?.map(|c| c.spec);
    let mut errs = Errors::new();
    let schedule = spec.schedule.as_str();
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        let allow_tz = old_spec.as_ref().is_some_and(|o| o.schedule.contains("TZ"));
        if let Err(e) = crate::cron::parse_standard(schedule) {
            errs.push(FieldError::invalid("spec.schedule", schedule, e.0));
        }
        if allow_tz && schedule.contains("TZ") && spec.time_zone.is_some() {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(s) = spec.starting_deadline_seconds {
        errs.extend(validate_nonnegative(s, "spec.startingDeadlineSeconds"));
    }
    if old_spec
        .as_ref()
        .is_none_or(|o| o.time_zone != spec.time_zone)
    {
        errs.extend(validate_time_zone(spec.time_zone.as_deref()));
    }
    match spec.concurrency_policy.as_deref().unwrap_or("") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        p => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            p,
            &["Allow", "Forbid", "Replace"],
        )),
    }
    // ValidateJobTemplateSpec.
    let js = spec.job_template.spec.clone().unwrap_or_default();
    errs.extend(validate_job_spec(&js, "spec.jobTemplate.spec"));
    if let Some(sel) = js.selector.as_ref() {
        errs.push(FieldError::invalid(
            "spec.jobTemplate.spec.selector",
            selector_value(sel),
            "`selector` will be auto-generated",
        ));
    }
    if js.manual_selector == Some(true) {
        errs.push(FieldError::not_supported(
            "spec.jobTemplate.spec.manualSelector",
            true,
            &["nil", "false"],
        ));
    }
    for (v, f) in [
        (
            spec.successful_jobs_history_limit,
            "successfulJobsHistoryLimit",
        ),
        (spec.failed_jobs_history_limit, "failedJobsHistoryLimit"),
    ] {
        if let Some(v) = v {
            errs.extend(validate_nonnegative(i64::from(v), &format!("spec.{f}")));
        }
    }
    Ok(errs)
}

/// `validateTimeZone`.
fn validate_time_zone(tz: Option<&str>) -> Errors {
    let Some(tz) = tz else {
        return Vec::new();
    };
    let path = "spec.timeZone";
    if tz.is_empty() {
        return vec![FieldError::invalid(
            path,
            tz,
            "timeZone must be nil or non-empty string",
        )];
    }
    let valid_part = |p: &str| {
        !p.is_empty()
            && p.len() <= 14
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c))
    };
    for part in tz.split('/') {
        if part == "." || part == ".." || part.starts_with('-') || !valid_part(part) {
            return vec![FieldError::invalid(
                path,
                tz,
                format!("unknown time zone {tz}"),
            )];
        }
    }
    let mut errs = Errors::new();
    if tz.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    if let Err(e) = crate::cron::time_zone(tz) {
        errs.push(FieldError::invalid(path, tz, e));
    }
    errs
}
