//! Escalation prevention on role and binding writes (upstream
//! `pkg/registry/rbac/escalation_check.go` and the `policybased` storages): a user may only
//! create or update a Role/ClusterRole whose rules it already holds, unless it may `escalate`
//! that role, and may only bind a role whose rules it already holds, unless it may `bind`
//! it. `system:masters` and in-process writers (no user) are exempt.

use api::registry::ResourceInfo;
use api::status::ApiError;
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

use super::attrs::Attributes;
use super::rules::{compact, compact_string, covers, go_quote_list};
use super::{PRIVILEGED_GROUP, Rbac, forbidden_status};
use crate::user::UserInfo;

fn allowed(rbac: &Rbac, user: &UserInfo, verb: &str, resource: &str, ns: &str, name: &str) -> bool {
    let a = Attributes {
        verb: verb.into(),
        resource_request: true,
        api_group: api::registry::RBAC_GROUP.into(),
        api_version: "*".into(),
        resource: resource.into(),
        namespace: ns.into(),
        name: name.into(),
        ..Attributes::default()
    };
    rbac.authorize(user, &a).allowed
}

/// Checks a create or update (`name` is the request's: empty for a create) of `obj`, a role
/// or binding of `info` in `namespace`, by `user`.
pub fn check(
    rbac: &Rbac,
    info: &ResourceInfo,
    namespace: &str,
    request_name: &str,
    obj: &Value,
    user: Option<&UserInfo>,
) -> Result<(), ApiError> {
    let Some(user) = user else { return Ok(()) };
    if info.group != api::registry::RBAC_GROUP || user.groups.iter().any(|g| g == PRIVILEGED_GROUP)
    {
        return Ok(());
    }
    let obj_name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let rules: Vec<PolicyRule> = match info.kind {
        "Role" | "ClusterRole" => {
            if allowed(rbac, user, "escalate", info.plural, namespace, request_name) {
                return Ok(());
            }
            obj.get("rules")
                .and_then(|r| serde_json::from_value(r.clone()).ok())
                .unwrap_or_default()
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let kind = obj
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let role = obj
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let resource = match kind {
                "Role" => "roles",
                _ => "clusterroles",
            };
            let bind_ns = if kind == "ClusterRole" && info.kind == "ClusterRoleBinding" {
                ""
            } else {
                namespace
            };
            if allowed(rbac, user, "bind", resource, bind_ns, role) {
                return Ok(());
            }
            match rbac.index().role_reference_rules(kind, role, namespace) {
                Ok(r) => r,
                Err(e) if e.ends_with("not found") => {
                    let res = if kind == "Role" {
                        "roles"
                    } else {
                        "clusterroles"
                    };
                    let info = api::registry::lookup(api::registry::RBAC_GROUP, "v1", res)
                        .ok_or_else(|| ApiError::internal("rbac roles are not served"))?;
                    return Err(ApiError::not_found(info, role));
                }
                Err(e) => return Err(ApiError::internal(e)),
            }
        }
        _ => return Ok(()),
    };
    confirm_no_escalation(rbac, user, namespace, &rules)
        .map_err(|msg| forbidden_status(info.group, info.plural, obj_name, &msg))
}

/// Upstream `ConfirmNoEscalation`: the user's rules in `namespace` must cover `rules`.
pub fn confirm_no_escalation(
    rbac: &Rbac,
    user: &UserInfo,
    namespace: &str,
    rules: &[PolicyRule],
) -> Result<(), String> {
    let (owned, errors) = rbac.rules_for(user, namespace);
    let (ok, missing) = covers(&owned, rules);
    if ok {
        return Ok(());
    }
    let mut lines: Vec<String> = compact(missing).iter().map(compact_string).collect();
    lines.sort();
    lines.dedup();
    let mut msg = format!(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        api::status::go_quote(&user.name),
        go_quote_list(&user.groups),
        lines.join("\n")
    );
    if !errors.is_empty() {
        msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
    }
    Err(msg)
}
