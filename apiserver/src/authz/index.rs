//! The binding index the RBAC authorizer decides on: every Role and ClusterRole's rules, and
//! every binding reachable from a user name or a group name (ServiceAccount subjects under
//! their `system:serviceaccount:<ns>:<name>` user name), so a decision visits only the
//! bindings of the requester — ClusterRoleBindings first, then the RoleBindings of the
//! request's namespace, each in name order, as upstream's `VisitRulesFor` does.

use std::collections::HashMap;

use k8s_openapi::api::rbac::v1::{PolicyRule, Subject};
use serde_json::Value;

use super::attrs::Attributes;
use super::rules::rule_allows;
use super::{Decision, aggregate_errors};
use crate::user::UserInfo;

/// One binding, as the index keeps it.
#[derive(Debug)]
struct Binding {
    /// `""` for a ClusterRoleBinding.
    namespace: String,
    name: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

/// A snapshot of the roles and bindings.
#[derive(Debug, Default)]
pub struct Index {
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    /// namespace → name → rules.
    roles: HashMap<String, HashMap<String, Vec<PolicyRule>>>,
    /// ClusterRoleBindings (by name), then RoleBindings (by namespace, name).
    bindings: Vec<Binding>,
    /// User name → (binding, subject) indexes.
    by_user: HashMap<String, Vec<(u32, u32)>>,
    /// Group name → (binding, subject) indexes.
    by_group: HashMap<String, Vec<(u32, u32)>>,
}

const GROUP: &str = "rbac.authorization.k8s.io";

fn list(store: &store::Store, plural: &str) -> Vec<std::sync::Arc<Value>> {
    store
        .list(
            &format!("{GROUP}/{plural}"),
            None,
            &store::ListOptions::default(),
        )
        .map(|r| r.items)
        .unwrap_or_default()
}

fn rules_of(obj: &Value) -> Vec<PolicyRule> {
    obj.get("rules")
        .and_then(|r| serde_json::from_value(r.clone()).ok())
        .unwrap_or_default()
}

fn str_at<'a>(obj: &'a Value, ptr: &str) -> &'a str {
    obj.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// The service account user name (`system:serviceaccount:<ns>:<name>`).
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

impl Index {
    /// Reads every role and binding from `store`.
    pub fn build(store: &store::Store) -> Index {
        let mut idx = Index::default();
        for cr in list(store, "clusterroles") {
            idx.cluster_roles
                .insert(str_at(&cr, "/metadata/name").to_string(), rules_of(&cr));
        }
        for r in list(store, "roles") {
            idx.roles
                .entry(str_at(&r, "/metadata/namespace").to_string())
                .or_default()
                .insert(str_at(&r, "/metadata/name").to_string(), rules_of(&r));
        }
        // Store lists come sorted by (namespace, name).
        for b in list(store, "clusterrolebindings")
            .into_iter()
            .chain(list(store, "rolebindings"))
        {
            idx.add_binding(&b);
        }
        idx
    }

    fn add_binding(&mut self, b: &Value) {
        let subjects: Vec<Subject> = b
            .get("subjects")
            .and_then(|s| serde_json::from_value(s.clone()).ok())
            .unwrap_or_default();
        let binding = Binding {
            namespace: str_at(b, "/metadata/namespace").to_string(),
            name: str_at(b, "/metadata/name").to_string(),
            role_kind: str_at(b, "/roleRef/kind").to_string(),
            role_name: str_at(b, "/roleRef/name").to_string(),
            subjects,
        };
        let Ok(bi) = u32::try_from(self.bindings.len()) else {
            return;
        };
        for (si, s) in binding.subjects.iter().enumerate() {
            let Ok(si) = u32::try_from(si) else { break };
            match s.kind.as_str() {
                "User" => self
                    .by_user
                    .entry(s.name.clone())
                    .or_default()
                    .push((bi, si)),
                "Group" => self
                    .by_group
                    .entry(s.name.clone())
                    .or_default()
                    .push((bi, si)),
                "ServiceAccount" => {
                    let ns = s
                        .namespace
                        .as_deref()
                        .filter(|n| !n.is_empty())
                        .unwrap_or(&binding.namespace);
                    if !ns.is_empty() {
                        self.by_user
                            .entry(service_account_user(ns, &s.name))
                            .or_default()
                            .push((bi, si));
                    }
                }
                _ => {}
            }
        }
        self.bindings.push(binding);
    }

    /// The bindings that apply to `user` in `namespace`, in visiting order, each with the
    /// first of its subjects that names the user.
    fn applicable(&self, user: &UserInfo, namespace: &str) -> Vec<(u32, u32)> {
        let mut found: Vec<(u32, u32)> = Vec::new();
        let lists = std::iter::once(self.by_user.get(&user.name))
            .chain(user.groups.iter().map(|g| self.by_group.get(g)))
            .flatten();
        for l in lists {
            for &(bi, si) in l {
                let b = &self.bindings[bi as usize];
                if !b.namespace.is_empty() && b.namespace != namespace {
                    continue;
                }
                found.push((bi, si));
            }
        }
        found.sort_unstable();
        found.dedup_by_key(|(bi, _)| *bi);
        found
    }

    /// The rules a binding grants, or upstream's not-found error for its role.
    fn role_rules(&self, b: &Binding) -> Result<&[PolicyRule], String> {
        let found = match b.role_kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&b.role_name),
            "Role" => self
                .roles
                .get(&b.namespace)
                .and_then(|m| m.get(&b.role_name)),
            other => {
                return Err(format!(
                    "unsupported role reference kind: {}",
                    api::status::go_quote(other)
                ));
            }
        };
        found.map(Vec::as_slice).ok_or_else(|| {
            format!(
                "{}.{GROUP} {} not found",
                b.role_kind.to_ascii_lowercase(),
                api::status::go_quote(&b.role_name)
            )
        })
    }

    /// Upstream's binding describers: `ClusterRoleBinding "x" of ClusterRole "y" to Group
    /// "z"`, `RoleBinding "x/ns" of Role "y" to User "u"`.
    fn describe(&self, b: &Binding, si: u32) -> String {
        let subject = match b.subjects.get(si as usize) {
            Some(s) if s.kind == "ServiceAccount" => {
                let ns = s
                    .namespace
                    .as_deref()
                    .filter(|n| !n.is_empty())
                    .unwrap_or(&b.namespace);
                format!(
                    "{} {}",
                    s.kind,
                    api::status::go_quote(&format!("{}/{ns}", s.name))
                )
            }
            Some(s) => format!("{} {}", s.kind, api::status::go_quote(&s.name)),
            None => String::new(),
        };
        if b.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {} of {} {} to {subject}",
                api::status::go_quote(&b.name),
                b.role_kind,
                api::status::go_quote(&b.role_name)
            )
        } else {
            format!(
                "RoleBinding {} of {} {} to {subject}",
                api::status::go_quote(&format!("{}/{}", b.name, b.namespace)),
                b.role_kind,
                api::status::go_quote(&b.role_name)
            )
        }
    }

    /// Upstream `RBACAuthorizer.Authorize` (without the privileged group).
    pub fn authorize(&self, user: &UserInfo, a: &Attributes) -> Decision {
        let mut errors = Vec::new();
        for (bi, si) in self.applicable(user, &a.namespace) {
            let b = &self.bindings[bi as usize];
            match self.role_rules(b) {
                Ok(rules) => {
                    if rules.iter().any(|r| rule_allows(a, r)) {
                        return Decision {
                            allowed: true,
                            reason: format!("RBAC: allowed by {}", self.describe(b, si)),
                        };
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        Decision {
            allowed: false,
            reason: if errors.is_empty() {
                String::new()
            } else {
                format!("RBAC: {}", aggregate_errors(&errors))
            },
        }
    }

    /// Upstream `RulesFor`: every rule that applies to `user` in `namespace`, and the
    /// errors met (a binding to a missing role).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for (bi, _) in self.applicable(user, namespace) {
            match self.role_rules(&self.bindings[bi as usize]) {
                Ok(r) => rules.extend_from_slice(r),
                Err(e) => errors.push(e),
            }
        }
        (rules, errors)
    }

    /// The rules of the role a binding in `namespace` references (upstream
    /// `GetRoleReferenceRules`), for the escalation check.
    pub fn role_reference_rules(
        &self,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> Result<Vec<PolicyRule>, String> {
        let b = Binding {
            namespace: namespace.to_string(),
            name: String::new(),
            role_kind: kind.to_string(),
            role_name: name.to_string(),
            subjects: Vec::new(),
        };
        self.role_rules(&b).map(<[PolicyRule]>::to_vec)
    }

    /// How many bindings the index holds.
    pub fn binding_count(&self) -> usize {
        self.bindings.len()
    }
}
