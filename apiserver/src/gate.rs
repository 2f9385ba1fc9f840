//! TEMPORARY AUTHORIZATION GATE — replaced by RBAC at merge time.
//!
//! Until RBAC authorizes requests, only `system:masters` may do anything: every other
//! authenticated user (service accounts) gets upstream's 403 Forbidden Status for any resource
//! request, and may read only what upstream's default ClusterRoles give every authenticated
//! user (`system:discovery`, `system:public-info-viewer`: discovery, `/version`, health,
//! OpenAPI) and service accounts (`system:service-account-issuer-discovery`: the OIDC
//! documents). [`request_info`] is upstream's `RequestInfoFactory` (which verb, resource,
//! namespace a request means), which the RBAC authorizer needs as well.

use api::status::{ApiError, StatusDetails};
use http::Method;

use crate::user::UserInfo;

/// What a request asks for (upstream `request.RequestInfo`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Whether it names a resource (else it is a non-resource path).
    pub is_resource: bool,
    /// The request path.
    pub path: String,
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`;
    /// the lowercase method for non-resource paths.
    pub verb: String,
    /// API group (`""` for core).
    pub api_group: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Namespace.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

/// Upstream `RequestInfoFactory.NewRequestInfo` over a decoded path and its query.
pub fn request_info(method: &Method, path: &str, watch: bool) -> RequestInfo {
    let mut ri = RequestInfo {
        path: path.to_string(),
        verb: method.as_str().to_ascii_lowercase(),
        ..Default::default()
    };
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest: &[&str] = match parts.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", group, _version, rest @ ..] => {
            ri.api_group = (*group).to_string();
            rest
        }
        _ => {
            return RequestInfo {
                api_group: String::new(),
                ..ri
            };
        }
    };
    if rest.is_empty() {
        ri.api_group.clear();
        return ri;
    }
    ri.is_resource = true;
    ri.verb = match *method {
        Method::POST => "create",
        Method::GET | Method::HEAD => "get",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "",
    }
    .to_string();
    let mut cur: &[&str] = rest;
    if cur[0] == "namespaces" && cur.len() > 1 {
        ri.namespace = cur[1].to_string();
        if cur.len() > 2 && !matches!(cur[2], "status" | "finalize") {
            cur = &cur[2..];
        }
    }
    ri.resource = cur[0].to_string();
    if let Some(n) = cur.get(1) {
        ri.name = (*n).to_string();
    }
    if let Some(s) = cur.get(2) {
        ri.subresource = (*s).to_string();
    }
    if ri.name.is_empty() && ri.verb == "get" {
        ri.verb = if watch { "watch" } else { "list" }.to_string();
    } else if ri.verb == "get" && watch {
        ri.verb = "watch".to_string();
    }
    if ri.name.is_empty() && ri.verb == "delete" {
        ri.verb = "deletecollection".to_string();
    }
    ri
}

/// Non-resource paths every authenticated user may read (`system:discovery`,
/// `system:public-info-viewer`, `system:basic-user`'s reads).
fn public_read(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    matches!(
        p,
        "/api" | "/apis" | "/version" | "/healthz" | "/livez" | "/readyz"
    ) || p.starts_with("/api/")
        || p.starts_with("/apis/")
        || p.starts_with("/openapi/")
        || p.starts_with("/healthz/")
        || p.starts_with("/livez/")
        || p.starts_with("/readyz/")
}

/// The OIDC discovery documents (`system:service-account-issuer-discovery`).
fn issuer_discovery(path: &str) -> bool {
    matches!(
        path,
        "/.well-known/openid-configuration" | "/openid/v1/jwks"
    )
}

/// Upstream's Forbidden answer for `user` asking `ri` (`responsewriters.Forbidden`).
pub fn forbidden(user: &UserInfo, ri: &RequestInfo) -> ApiError {
    if !ri.is_resource {
        let msg = format!(
            "forbidden: User {:?} cannot {} path {:?}",
            user.name, ri.verb, ri.path
        );
        return ApiError::new(403, "Forbidden", msg);
    }
    let mut resource = ri.resource.clone();
    if !ri.subresource.is_empty() {
        resource = format!("{resource}/{}", ri.subresource);
    }
    let reason = if ri.namespace.is_empty() {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} at the cluster scope",
            user.name, ri.verb, resource, ri.api_group
        )
    } else {
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} in the namespace {:?}",
            user.name, ri.verb, resource, ri.api_group, ri.namespace
        )
    };
    let qualified = if ri.api_group.is_empty() {
        ri.resource.clone()
    } else {
        format!("{}.{}", ri.resource, ri.api_group)
    };
    let message = if ri.name.is_empty() {
        format!("{qualified} is forbidden: {reason}")
    } else {
        format!("{qualified} {:?} is forbidden: {reason}", ri.name)
    };
    let mut e = ApiError::new(403, "Forbidden", message);
    e.details = Some(StatusDetails {
        name: ri.name.clone(),
        group: ri.api_group.clone(),
        kind: ri.resource.clone(),
        causes: Vec::new(),
        retry_after_seconds: None,
    });
    e
}

/// TEMPORARY GATE: `Ok` when `user` may make the request `ri`.
pub fn check(user: &UserInfo, ri: &RequestInfo) -> Result<(), ApiError> {
    if user.is_master() {
        return Ok(());
    }
    let read = matches!(ri.verb.as_str(), "get" | "head");
    if !ri.is_resource && read && (public_read(&ri.path) || issuer_discovery(&ri.path)) {
        return Ok(());
    }
    Err(forbidden(user, ri))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa() -> UserInfo {
        UserInfo {
            name: "system:serviceaccount:t:default".into(),
            uid: "u".into(),
            groups: crate::serviceaccount::groups("t"),
            extra: Default::default(),
        }
    }

    #[test]
    fn request_info_as_upstream() {
        let ri = request_info(&Method::GET, "/api/v1/namespaces/t/pods", false);
        assert_eq!(
            (
                ri.verb.as_str(),
                ri.resource.as_str(),
                ri.namespace.as_str()
            ),
            ("list", "pods", "t")
        );
        let ri = request_info(&Method::GET, "/api/v1/namespaces/t/pods", true);
        assert_eq!(ri.verb, "watch");
        let ri = request_info(
            &Method::POST,
            "/api/v1/namespaces/t/serviceaccounts/d/token",
            false,
        );
        assert_eq!(
            (
                ri.verb.as_str(),
                ri.resource.as_str(),
                ri.name.as_str(),
                ri.subresource.as_str()
            ),
            ("create", "serviceaccounts", "d", "token")
        );
        let ri = request_info(
            &Method::DELETE,
            "/apis/apps/v1/namespaces/t/deployments",
            false,
        );
        assert_eq!(
            (ri.verb.as_str(), ri.api_group.as_str()),
            ("deletecollection", "apps")
        );
        let ri = request_info(&Method::GET, "/api/v1/namespaces/t", false);
        assert_eq!(
            (
                ri.resource.as_str(),
                ri.name.as_str(),
                ri.namespace.as_str()
            ),
            ("namespaces", "t", "t")
        );
        let ri = request_info(&Method::GET, "/apis/apps/v1", false);
        assert!(!ri.is_resource);
    }

    #[test]
    fn non_masters_are_forbidden_with_upstream_message() {
        let ri = request_info(&Method::GET, "/api/v1/namespaces/t/pods", false);
        let e = check(&sa(), &ri).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "pods is forbidden: User \"system:serviceaccount:t:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"t\""
        );
        let ri = request_info(
            &Method::GET,
            "/apis/apps/v1/namespaces/t/deployments/d",
            false,
        );
        assert_eq!(
            check(&sa(), &ri).unwrap_err().message,
            "deployments.apps \"d\" is forbidden: User \"system:serviceaccount:t:default\" cannot get resource \"deployments\" in API group \"apps\" in the namespace \"t\""
        );
        let ri = request_info(&Method::GET, "/api/v1/nodes", false);
        assert!(
            check(&sa(), &ri)
                .unwrap_err()
                .message
                .ends_with("at the cluster scope")
        );
        let ri = request_info(&Method::GET, "/metrics", false);
        assert_eq!(
            check(&sa(), &ri).unwrap_err().message,
            "forbidden: User \"system:serviceaccount:t:default\" cannot get path \"/metrics\""
        );
        // Discovery, version and the issuer documents are open to them; masters get all.
        for p in ["/api", "/apis/apps/v1", "/version", "/openid/v1/jwks"] {
            assert!(
                check(&sa(), &request_info(&Method::GET, p, false)).is_ok(),
                "{p}"
            );
        }
        let ri = request_info(&Method::DELETE, "/api/v1/nodes", false);
        assert!(check(&UserInfo::admin(), &ri).is_ok());
    }
}
