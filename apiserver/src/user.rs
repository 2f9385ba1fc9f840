//! Who a request comes from (upstream `user.Info`), as authentication established it. The
//! admin bearer token is [`UserInfo::admin`]; in-process callers (controllers, `paddock up`'s
//! manifests) write without a user, as upstream's internal clients of the registry do.
//! Service account tokens give their users through [`crate::serviceaccount::TokenIssuer`].

/// The authenticated user of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub name: String,
    /// The user's uid (empty when the authenticator gives none).
    pub uid: String,
    /// The groups, `system:authenticated` included.
    pub groups: Vec<String>,
    /// Extra attributes (a bound service account token's `authentication.kubernetes.io/pod-name`…).
    pub extra: std::collections::BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// The holder of the admin token: `system:admin` in `system:masters`, the administrator
    /// k3s writes into its kubeconfig.
    pub fn admin() -> UserInfo {
        UserInfo {
            name: "system:admin".into(),
            uid: String::new(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            extra: Default::default(),
        }
    }
}

impl UserInfo {
    /// Whether the user is in `system:masters` (the group every authorizer lets do anything).
    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}
