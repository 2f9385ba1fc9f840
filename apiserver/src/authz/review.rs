//! The access-review APIs: `authorization.k8s.io/v1` SelfSubjectAccessReview (may I?),
//! SubjectAccessReview (may they?), LocalSubjectAccessReview (may they, in this namespace?
//! `/apis/authorization.k8s.io/v1/namespaces/<ns>/localsubjectaccessreviews`), SelfSubjectRulesReview (what may I do in a namespace?),
//! and `authentication.k8s.io/v1` SelfSubjectReview (who am I?) — what `kubectl auth can-i`,
//! `kubectl auth can-i --list` and `kubectl auth whoami` ask. Nothing is stored: each POST
//! answers with the review and its status (upstream `pkg/registry/authorization/*` and
//! `pkg/registry/authentication/selfsubjectreview`).

use api::status::{ApiError, FieldError};
use axum::extract::Request;
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::Rbac;
use super::attrs::Attributes;
use crate::response::{error_response, json_response};
use crate::state::AppState;
use crate::user::UserInfo;

/// Handles `/apis/<group>/v1/<rest>` of the review groups.
pub async fn handle(st: &AppState, group: &str, rest: &[&str], req: Request) -> Response {
    match handle_inner(st, group, rest, req).await {
        Ok(v) => json_response(StatusCode::CREATED, &v),
        Err(e) => error_response(&e),
    }
}

fn kind_of(group: &str, resource: &str) -> Option<&'static str> {
    Some(match (group, resource) {
        ("authorization.k8s.io", "selfsubjectaccessreviews") => "SelfSubjectAccessReview",
        ("authorization.k8s.io", "subjectaccessreviews") => "SubjectAccessReview",
        ("authorization.k8s.io", "localsubjectaccessreviews") => "LocalSubjectAccessReview",
        ("authorization.k8s.io", "selfsubjectrulesreviews") => "SelfSubjectRulesReview",
        ("authentication.k8s.io", "selfsubjectreviews") => "SelfSubjectReview",
        _ => return None,
    })
}

async fn handle_inner(
    st: &AppState,
    group: &str,
    rest: &[&str],
    req: Request,
) -> Result<Value, ApiError> {
    let (resource, path_ns) = match rest {
        [resource] => (*resource, None),
        ["namespaces", ns, resource] if !ns.is_empty() => (*resource, Some(*ns)),
        _ => return Err(crate::response::not_found_path()),
    };
    let Some(kind) = kind_of(group, resource) else {
        return Err(crate::response::not_found_path());
    };
    // LocalSubjectAccessReview is the one namespaced kind, and only namespaced.
    if (kind == "LocalSubjectAccessReview") != path_ns.is_some() {
        return Err(crate::response::not_found_path());
    }
    if req.method() != Method::POST {
        return Err(ApiError::new(
            405,
            "MethodNotAllowed",
            format!(
                "{} is not supported on resources of kind {}",
                req.method().as_str(),
                api::status::go_quote(&format!("{resource}.{group}"))
            ),
        ));
    }
    let user = req.extensions().get::<UserInfo>().cloned();
    let (headers, body) = crate::rest::read_body(req).await?;
    let (mut obj, _) = crate::rest::parse_body(&headers, &body)?;
    let Some(user) = user else {
        return Err(ApiError::bad_request("no user present on request"));
    };
    let api_version = format!("{group}/v1");
    check_type(&obj, &api_version, kind)?;
    let rbac = st.registry.rbac();
    let status = match kind {
        "SelfSubjectAccessReview" => {
            let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
            validate_spec(kind, &spec, false, metadata_errors(&obj, false))?;
            access_status(&st.registry, &user, &spec).await
        }
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
            let mut local = Vec::new();
            if let Some(ns) = path_ns {
                local = local_review_errors(&mut obj, ns, &spec)?;
            }
            let mut extra = metadata_errors(&obj, path_ns.is_some());
            extra.extend(local);
            validate_spec(kind, &spec, true, extra)?;
            let subject = UserInfo {
                name: spec["user"].as_str().unwrap_or_default().to_string(),
                uid: spec["uid"].as_str().unwrap_or_default().to_string(),
                groups: spec["groups"]
                    .as_array()
                    .map(|g| {
                        g.iter()
                            .filter_map(|s| s.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                extra: spec["extra"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| {
                                let vals = v
                                    .as_array()
                                    .map(|a| {
                                        a.iter()
                                            .filter_map(|s| s.as_str().map(String::from))
                                            .collect()
                                    })
                                    .unwrap_or_default();
                                (k.clone(), vals)
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            };
            access_status(&st.registry, &subject, &spec).await
        }
        "SelfSubjectRulesReview" => {
            let ns = obj
                .pointer("/spec/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            rules_status(rbac, &user, ns)
        }
        _ => {
            let mut info = json!({"username": user.name, "groups": user.groups});
            if !user.uid.is_empty() {
                info["uid"] = json!(user.uid);
            }
            json!({"userInfo": info})
        }
    };
    obj["apiVersion"] = json!(api_version);
    obj["kind"] = json!(kind);
    let meta = obj
        .get("metadata")
        .filter(|m| m.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}));
    obj["metadata"] = meta;
    if obj["metadata"].get("creationTimestamp").is_none() {
        obj["metadata"]["creationTimestamp"] = Value::Null;
    }
    if kind == "SelfSubjectReview" {
        if let Some(o) = obj.as_object_mut() {
            o.remove("spec");
        }
    } else if !obj.get("spec").is_some_and(Value::is_object) {
        obj["spec"] = json!({});
    }
    obj["status"] = status;
    Ok(obj)
}

fn check_type(obj: &Value, api_version: &str, kind: &str) -> Result<(), ApiError> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
        ));
    }
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {}
        Some(v) if v == api_version => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({api_version})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => Ok(()),
        Some(k) if k == kind => Ok(()),
        Some(k) => Err(ApiError::bad_request(format!(
            "{k} in version \"v1\" cannot be handled as a {kind}: the kind in the data ({k}) does not match the expected kind ({kind})"
        ))),
    }
}

/// Upstream's check that a review's `metadata` is empty (its `managedFields` aside, and for a
/// LocalSubjectAccessReview its namespace): a review is not an object that is stored, so a
/// name, labels or anything else there is a mistake. Empty means Go's zero values (`""`,
/// `null`, `{}`, `[]`), as `apiequality.Semantic.DeepEqual` with an empty `ObjectMeta` sees it.
fn metadata_errors(obj: &Value, allow_namespace: bool) -> Vec<FieldError> {
    fn zero(v: &Value) -> bool {
        match v {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.values().all(zero),
        }
    }
    let Some(meta) = obj.get("metadata").and_then(Value::as_object) else {
        return Vec::new();
    };
    let set = meta
        .iter()
        .any(|(k, v)| k != "managedFields" && !(allow_namespace && k == "namespace") && !zero(v));
    if !set {
        return Vec::new();
    }
    let detail = if allow_namespace {
        "must be empty except for namespace"
    } else {
        "must be empty"
    };
    vec![FieldError::invalid(
        "metadata",
        Value::Object(meta.clone()),
        detail,
    )]
}

/// A LocalSubjectAccessReview's namespace (the request's, into `metadata.namespace` when the
/// body has none; a different one is upstream's 400) and upstream
/// `ValidateLocalSubjectAccessReview`'s own errors: the attributes' namespace must be it, and
/// non-resource attributes are refused.
fn local_review_errors(
    obj: &mut Value,
    ns: &str,
    spec: &Value,
) -> Result<Vec<FieldError>, ApiError> {
    let have = obj
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if have.is_empty() {
        if !obj.get("metadata").is_some_and(Value::is_object) {
            obj["metadata"] = json!({});
        }
        obj["metadata"]["namespace"] = json!(ns);
    } else if have != ns {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    let mut errs = Vec::new();
    if let Some(r) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let given = r["namespace"].as_str().unwrap_or_default();
        if given != ns {
            errs.push(FieldError::invalid(
                "spec.resourceAttributes.namespace",
                given,
                "must match metadata.namespace",
            ));
        }
    }
    if let Some(n) = spec.get("nonResourceAttributes").filter(|v| !v.is_null()) {
        errs.push(FieldError::invalid(
            "spec.nonResourceAttributes",
            n.clone(),
            "disallowed on this kind of request",
        ));
    }
    Ok(errs)
}

/// Upstream `ValidateSubjectAccessReviewSpec` / `ValidateSelfSubjectAccessReviewSpec`, then
/// the kind's `extra` errors.
fn validate_spec(
    kind: &str,
    spec: &Value,
    subject: bool,
    extra: Vec<FieldError>,
) -> Result<(), ApiError> {
    let res = spec.get("resourceAttributes").filter(|v| !v.is_null());
    let non = spec.get("nonResourceAttributes").filter(|v| !v.is_null());
    let mut errs = Vec::new();
    if let (Some(_), Some(n)) = (res, non) {
        errs.push(FieldError::invalid(
            "spec.nonResourceAttributes",
            n.clone(),
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if res.is_none() && non.is_none() {
        errs.push(FieldError::invalid(
            "spec.resourceAttributes",
            // Upstream's field error prints a nil pointer as the string "null".
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    let no_groups = spec["groups"].as_array().is_none_or(Vec::is_empty);
    if subject && spec["user"].as_str().unwrap_or_default().is_empty() && no_groups {
        errs.push(FieldError::invalid(
            "spec.user",
            "",
            "at least one of user or group must be specified",
        ));
    }
    errs.extend(extra);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid_kind(
            "authorization.k8s.io",
            kind,
            "",
            errs,
        ))
    }
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

/// The attributes a review spec asks about (upstream `ResourceAttributesFrom` /
/// `NonResourceAttributesFrom`).
pub fn spec_attributes(spec: &Value) -> Attributes {
    if let Some(r) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        Attributes {
            verb: s(r, "verb"),
            resource_request: true,
            api_group: s(r, "group"),
            api_version: s(r, "version"),
            resource: s(r, "resource"),
            subresource: s(r, "subresource"),
            namespace: s(r, "namespace"),
            name: s(r, "name"),
            path: String::new(),
            ..Attributes::default()
        }
    } else {
        let n = &spec["nonResourceAttributes"];
        Attributes {
            verb: s(n, "verb"),
            path: s(n, "path"),
            ..Attributes::default()
        }
    }
}

async fn access_status(
    registry: &crate::registry::Registry,
    user: &UserInfo,
    spec: &Value,
) -> Value {
    let d = super::decide(registry, user, &spec_attributes(spec)).await;
    let mut status = json!({"allowed": d.allowed});
    if !d.reason.is_empty() {
        status["reason"] = json!(d.reason);
    }
    status
}

pub(super) fn rules_status(rbac: &Rbac, user: &UserInfo, namespace: &str) -> Value {
    let (rules, mut errors) = rbac.rules_for(user, namespace);
    // Upstream's union rule resolver: the Node authorizer cannot enumerate a node's rules.
    let node = super::node_restriction::node_identity(user).is_some();
    if node {
        errors.insert(
            0,
            "node authorizer does not support user rule resolution".to_string(),
        );
    }
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for r in rules {
        if r.resources.as_ref().is_some_and(|x| !x.is_empty()) {
            let mut v = json!({"verbs": r.verbs});
            if let Some(g) = &r.api_groups {
                v["apiGroups"] = json!(g);
            }
            v["resources"] = json!(r.resources);
            if let Some(n) = r.resource_names.as_ref().filter(|n| !n.is_empty()) {
                v["resourceNames"] = json!(n);
            }
            resource_rules.push(v);
        }
        if let Some(u) = r.non_resource_urls.as_ref().filter(|u| !u.is_empty()) {
            non_resource_rules.push(json!({"verbs": r.verbs, "nonResourceURLs": u}));
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": node,
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(super::aggregate_errors(&errors));
    }
    status
}
