//! Who a request comes from (upstream `user.Info`), as authentication established it. The
//! admin bearer token is [`UserInfo::admin`]; in-process callers (controllers, `paddock up`'s
//! manifests) write without a user, as upstream's internal clients of the registry do.

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub name: String,
    /// The user's uid (empty when the authenticator gives none).
    pub uid: String,
    /// The groups, `system:authenticated` included.
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The holder of the admin token: `system:admin` in `system:masters`, the administrator
    /// k3s writes into its kubeconfig.
    pub fn admin() -> UserInfo {
        UserInfo {
            name: "system:admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
        }
    }
}
