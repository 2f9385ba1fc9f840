//! The attributes an authorizer decides on (upstream `authorizer.Attributes`), derived from a
//! request as upstream's `RequestInfoFactory` derives them
//! (`apiserver/pkg/endpoints/request/requestinfo.go`): a resource request under `/api/v1` or
//! `/apis/<group>/<version>` with its verb (`list`/`watch` for a GET without a name,
//! `deletecollection` for a DELETE without one), namespace, resource, subresource and name;
//! anything else is a non-resource request with the lower-cased method as verb.

use crate::params::Query;

/// What a request asks to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, `deletecollection`,
    /// `proxy`, or for non-resource requests the lower-cased method.
    pub verb: String,
    /// Whether the path names a resource (else it is a non-resource URL).
    pub resource_request: bool,
    /// The API group (`""` for core).
    pub api_group: String,
    /// The API version (`v1`, or `*` for checks that do not name one).
    pub api_version: String,
    /// The resource (`pods`).
    pub resource: String,
    /// The subresource (`status`, `log`).
    pub subresource: String,
    /// The namespace (`""` at the cluster scope).
    pub namespace: String,
    /// The object's name, if the request names one.
    pub name: String,
    /// The request path of a non-resource request.
    pub path: String,
}

/// Verbs named by a path prefix (`/api/v1/watch/...`, `/api/v1/proxy/...`).
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
/// Namespace subresources that stay on the `namespaces` resource.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

impl Attributes {
    /// Derives the attributes of a request with `method` on the decoded `path` and `query`.
    pub fn from_request(method: &http::Method, path: &str, query: &Query) -> Attributes {
        let mut a = Attributes {
            verb: method.as_str().to_ascii_lowercase(),
            path: path.to_string(),
            ..Attributes::default()
        };
        let parts: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        if parts.len() < 3 || !matches!(parts[0], "api" | "apis") {
            return a;
        }
        let mut rest = &parts[1..];
        if parts[0] == "apis" {
            if rest.len() < 3 {
                return a;
            }
            a.api_group = rest[0].to_string();
            rest = &rest[1..];
        }
        a.resource_request = true;
        a.api_version = rest[0].to_string();
        rest = &rest[1..];
        if SPECIAL_VERBS.contains(&rest[0]) {
            if rest.len() < 2 {
                // Upstream refuses the request; nothing is allowed on it.
                a.resource_request = false;
                return a;
            }
            a.verb = rest[0].to_string();
            rest = &rest[1..];
        } else {
            a.verb = match method.as_str() {
                "POST" => "create",
                "GET" | "HEAD" => "get",
                "PUT" => "update",
                "PATCH" => "patch",
                "DELETE" => "delete",
                _ => "",
            }
            .to_string();
        }
        if rest[0] == "namespaces" && rest.len() > 1 {
            a.namespace = rest[1].to_string();
            if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
                rest = &rest[2..];
            }
        }
        if rest.len() >= 3 && a.verb != "proxy" {
            a.subresource = rest[2].to_string();
        }
        if rest.len() >= 2 {
            a.name = rest[1].to_string();
        }
        a.resource = rest[0].to_string();
        if a.name.is_empty() && a.verb == "get" {
            let watch = query
                .get("watch")
                .is_some_and(|w| !matches!(w.to_ascii_lowercase().as_str(), "false" | "0"));
            a.verb = if watch { "watch" } else { "list" }.to_string();
            if let Some(name) = query.get("fieldSelector").and_then(exact_name) {
                a.name = name;
            }
        }
        if a.name.is_empty() && a.verb == "delete" {
            a.verb = "deletecollection".to_string();
        }
        a
    }

    /// `resource/subresource`, or the resource alone.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }
}

/// The name a field selector pins (`metadata.name=x` or `metadata.name==x`, alone or among
/// other terms), when it is a valid path segment.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (k, v) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .filter(|(k, _)| !k.ends_with('!'))?;
        (k.trim() == "metadata.name"
            && !v.is_empty()
            && v != "."
            && v != ".."
            && !v.contains('/')
            && !v.contains('%'))
        .then(|| v.to_string())
    })
}

#[cfg(test)]
mod tests {
    use http::Method;

    use super::*;

    fn attrs(method: Method, path_query: &str) -> Attributes {
        let (path, query) = path_query.split_once('?').unwrap_or((path_query, ""));
        Attributes::from_request(&method, path, &Query::parse(Some(query)))
    }

    #[test]
    fn resource_requests_as_request_info_factory_derives_them() {
        let a = attrs(Method::GET, "/api/v1/namespaces/x/pods");
        assert_eq!(
            (a.verb.as_str(), a.namespace.as_str(), a.resource.as_str()),
            ("list", "x", "pods")
        );
        assert!(a.resource_request);
        let a = attrs(Method::GET, "/api/v1/namespaces/x/pods?watch=true");
        assert_eq!(a.verb, "watch");
        let a = attrs(Method::GET, "/api/v1/watch/namespaces/x/pods/p");
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "p"));
        let a = attrs(Method::GET, "/api/v1/namespaces/x/pods/p/log");
        assert_eq!(
            (a.verb.as_str(), a.name.as_str(), a.subresource.as_str()),
            ("get", "p", "log")
        );
        let a = attrs(Method::DELETE, "/apis/apps/v1/namespaces/x/deployments");
        assert_eq!(
            (a.verb.as_str(), a.api_group.as_str()),
            ("deletecollection", "apps")
        );
        let a = attrs(Method::GET, "/api/v1/namespaces/x");
        assert_eq!(
            (a.resource.as_str(), a.name.as_str(), a.namespace.as_str()),
            ("namespaces", "x", "x")
        );
        let a = attrs(Method::PUT, "/api/v1/namespaces/x/finalize");
        assert_eq!(
            (a.resource.as_str(), a.subresource.as_str(), a.verb.as_str()),
            ("namespaces", "finalize", "update")
        );
        let a = attrs(
            Method::GET,
            "/api/v1/nodes?fieldSelector=metadata.name%3Dn1",
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("list", "n1"));
        let a = attrs(
            Method::PATCH,
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/r",
        );
        assert_eq!((a.verb.as_str(), a.namespace.as_str()), ("patch", ""));
    }

    #[test]
    fn everything_else_is_a_non_resource_request() {
        for p in ["/version", "/healthz", "/api", "/apis/apps", "/openapi/v2"] {
            let a = attrs(Method::GET, p);
            assert!(!a.resource_request, "{p}");
            assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", p));
        }
        assert_eq!(attrs(Method::POST, "/metrics").verb, "post");
    }
}
