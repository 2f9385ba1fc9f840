//! `rolebindings` and `clusterrolebindings`: upstream `printRoleBinding` and
//! `printClusterRoleBinding` (roles and cluster roles print `Name`/`Created At` as the
//! default table does, upstream `printRole`).

use serde_json::Value;

use super::{AGE, Column, NAME, Rows, col, items, s, wide};

/// Upstream takes the `Role` descriptions from the rbac/v1beta1 types' docs.
pub(super) const ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Role",
        "string",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    AGE,
    wide("Users", "string", "Users in the roleBinding"),
    wide("Groups", "string", "Groups in the roleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the roleBinding",
    ),
];

pub(super) const CLUSTER_ROLE_BINDING_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Role",
        "string",
        "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error.",
    ),
    AGE,
    wide("Users", "string", "Users in the clusterRoleBinding"),
    wide("Groups", "string", "Groups in the clusterRoleBinding"),
    wide(
        "ServiceAccounts",
        "string",
        "ServiceAccounts in the clusterRoleBinding",
    ),
];

/// `Kind/name` of the role, the age, then (wide) `rbac.SubjectsStrings`: users, groups and
/// `namespace/name` of service accounts, each joined with `, `.
pub(super) fn row(p: &Rows, obj: &Value) -> Vec<Value> {
    let role_ref = &obj["roleRef"];
    let role = format!("{}/{}", s(&role_ref["kind"]), s(&role_ref["name"]));
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for subject in items(&obj["subjects"]) {
        let name = s(&subject["name"]);
        match s(&subject["kind"]) {
            "User" => users.push(name.to_string()),
            "Group" => groups.push(name.to_string()),
            "ServiceAccount" => sas.push(format!("{}/{name}", s(&subject["namespace"]))),
            _ => {}
        }
    }
    let mut row = p.named(obj, [role.into()]);
    row.extend([
        users.join(", ").into(),
        groups.join(", ").into(),
        sas.join(", ").into(),
    ]);
    row
}
