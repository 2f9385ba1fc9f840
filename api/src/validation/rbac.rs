//! `rbac.authorization.k8s.io` validation (upstream `pkg/apis/rbac/validation`): names need
//! only be path segments; policy rules need verbs and either resources (with API groups) or
//! non-resource URLs (cluster roles only); bindings reference a Role or ClusterRole of this
//! group, never change that reference, and name User, Group or ServiceAccount subjects.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, RoleRef, Subject};
use serde_json::{Value, json};

use super::apps::validate_label_selector;
use super::names::{name_is_dns_subdomain, path_segment_name};
use super::{Errors, child, index, typed};
use crate::registry::RBAC_GROUP;
use crate::status::{ApiError, FieldError, go_quote};

/// The rules of a Role (`namespaced`) or ClusterRole after ObjectMeta (`ValidateRole`,
/// `ValidateClusterRole`), with a ClusterRole's aggregation rule.
pub fn validate_role(obj: &Value, namespaced: bool) -> Result<Errors, ApiError> {
    let mut errs = Errors::new();
    let rules: Vec<PolicyRule> = match obj.get("rules") {
        Some(r) if !r.is_null() => typed(r)?,
        _ => Vec::new(),
    };
    for (i, rule) in rules.iter().enumerate() {
        errs.extend(validate_policy_rule(rule, namespaced, &index("rules", i)));
    }
    if !namespaced {
        let role: ClusterRole = typed(obj)?;
        if let Some(agg) = &role.aggregation_rule {
            let path = child("aggregationRule", "clusterRoleSelectors");
            let selectors = agg.cluster_role_selectors.as_deref().unwrap_or(&[]);
            if selectors.is_empty() {
                errs.push(FieldError::required(
                    path.as_str(),
                    "at least one clusterRoleSelector required if aggregationRule is non-nil",
                ));
            }
            for (i, sel) in selectors.iter().enumerate() {
                errs.extend(validate_label_selector(sel, &index(&path, i)));
            }
        }
    }
    Ok(errs)
}

/// Upstream `ValidatePolicyRule`.
pub fn validate_policy_rule(rule: &PolicyRule, namespaced: bool, path: &str) -> Errors {
    let mut errs = Errors::new();
    if rule.verbs.is_empty() {
        errs.push(FieldError::required(
            child(path, "verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = rule.non_resource_urls.as_deref().unwrap_or(&[]);
    let groups = rule.api_groups.as_deref().unwrap_or(&[]);
    let resources = rule.resources.as_deref().unwrap_or(&[]);
    if !urls.is_empty() {
        let field = child(path, "nonResourceURLs");
        if namespaced {
            errs.push(FieldError::invalid(
                field.as_str(),
                json!(urls),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !groups.is_empty()
            || !resources.is_empty()
            || !rule.resource_names.as_deref().unwrap_or(&[]).is_empty()
        {
            errs.push(FieldError::invalid(
                field.as_str(),
                json!(urls),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if groups.is_empty() {
        errs.push(FieldError::required(
            child(path, "apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if resources.is_empty() {
        errs.push(FieldError::required(
            child(path, "resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding` after ObjectMeta: the role reference
/// and the subjects.
pub fn validate_binding(obj: &Value, namespaced: bool) -> Result<Errors, ApiError> {
    let mut errs = Errors::new();
    let role_ref: RoleRef = match obj.get("roleRef") {
        Some(r) if !r.is_null() => typed(r)?,
        _ => RoleRef::default(),
    };
    let ref_group = role_ref.api_group.as_deref().unwrap_or_default();
    if ref_group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            ref_group,
            &[RBAC_GROUP],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&role_ref.kind.as_str()) {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            role_ref.kind.as_str(),
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for msg in path_segment_name(&role_ref.name, false) {
            errs.push(FieldError::invalid(
                "roleRef.name",
                role_ref.name.as_str(),
                msg,
            ));
        }
    }
    let subjects: Vec<Subject> = match obj.get("subjects") {
        Some(s) if !s.is_null() => typed(s)?,
        _ => Vec::new(),
    };
    for (i, s) in subjects.iter().enumerate() {
        errs.extend(validate_subject(s, namespaced, &index("subjects", i)));
    }
    Ok(errs)
}

/// Upstream `ValidateRoleBindingSubject`.
pub fn validate_subject(s: &Subject, namespaced: bool, path: &str) -> Errors {
    let mut errs = Errors::new();
    if s.name.is_empty() {
        errs.push(FieldError::required(child(path, "name"), ""));
    }
    let group = s.api_group.as_deref().unwrap_or_default();
    match s.kind.as_str() {
        "ServiceAccount" => {
            if !s.name.is_empty() {
                for msg in name_is_dns_subdomain(&s.name, false) {
                    errs.push(FieldError::invalid(
                        child(path, "name"),
                        s.name.as_str(),
                        msg,
                    ));
                }
            }
            if !group.is_empty() {
                errs.push(FieldError::not_supported(
                    child(path, "apiGroup"),
                    group,
                    &[""],
                ));
            }
            if !namespaced && s.namespace.as_deref().unwrap_or_default().is_empty() {
                errs.push(FieldError::required(child(path, "namespace"), ""));
            }
        }
        "User" | "Group" => {
            if group != RBAC_GROUP {
                errs.push(FieldError::not_supported(
                    child(path, "apiGroup"),
                    group,
                    &[RBAC_GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            child(path, "kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

/// `ValidateRoleBindingUpdate` / `ValidateClusterRoleBindingUpdate`'s own rule: the role
/// reference never changes.
pub fn validate_binding_update(new: &Value, old: &Value) -> Result<Errors, ApiError> {
    let new_ref: RoleRef = typed(new.get("roleRef").unwrap_or(&Value::Null))?;
    let old_ref: RoleRef = typed(old.get("roleRef").unwrap_or(&Value::Null))?;
    if new_ref == old_ref {
        return Ok(Errors::new());
    }
    let go = format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        go_quote(new_ref.api_group.as_deref().unwrap_or_default()),
        go_quote(&new_ref.kind),
        go_quote(&new_ref.name)
    );
    Ok(vec![FieldError::invalid(
        "roleRef",
        json!({ "$go": go }),
        "cannot change roleRef",
    )])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::status::aggregate;

    fn msgs(errs: &Errors) -> String {
        aggregate(errs)
    }

    #[test]
    fn rules_need_verbs_and_resources_or_urls() {
        let role = json!({"rules": [
            {"apiGroups": [""], "resources": ["pods"]},
            {"verbs": ["get"]},
            {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
        ]});
        let errs = validate_role(&role, true).unwrap();
        assert_eq!(
            msgs(&errs),
            "[rules[0].verbs: Required value: verbs must contain at least one value, \
             rules[1].apiGroups: Required value: resource rules must supply at least one api group, \
             rules[1].resources: Required value: resource rules must supply at least one resource, \
             rules[2].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs]"
        );
        let cluster = json!({"rules": [
            {"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["pods"]},
        ], "aggregationRule": {}});
        assert_eq!(
            msgs(&validate_role(&cluster, false).unwrap()),
            "[rules[0].nonResourceURLs: Invalid value: []string{\"/x\"}: rules cannot apply to both regular resources and non-resource URLs, \
             aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil]"
        );
    }

    #[test]
    fn bindings_reference_roles_and_name_subjects() {
        let b = json!({
            "roleRef": {"apiGroup": "x", "kind": "Role", "name": "a/b"},
            "subjects": [
                {"kind": "ServiceAccount", "name": "Bad_Name"},
                {"kind": "User", "name": "", "apiGroup": ""},
                {"kind": "Robot", "name": "r"},
            ],
        });
        assert_eq!(
            msgs(&validate_binding(&b, false).unwrap()),
            "[roleRef.apiGroup: Unsupported value: \"x\": supported values: \"rbac.authorization.k8s.io\", \
             roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\", \
             roleRef.name: Invalid value: \"a/b\": may not contain '/', \
             subjects[0].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'), \
             subjects[0].namespace: Required value, \
             subjects[1].name: Required value, \
             subjects[1].apiGroup: Unsupported value: \"\": supported values: \"rbac.authorization.k8s.io\", \
             subjects[2].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"]"
        );
        let old = json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "a"}});
        let new = json!({"roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": "b"}});
        assert_eq!(
            msgs(&validate_binding_update(&new, &old).unwrap()),
            "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"b\"}: cannot change roleRef"
        );
    }
}
