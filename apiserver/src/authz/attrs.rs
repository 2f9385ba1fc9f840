//! The attributes an authorizer decides on (upstream `authorizer.Attributes`), derived from a
//! request as upstream's `RequestInfoFactory` derives them
//! (`apiserver/pkg/endpoints/request/requestinfo.go`): a resource request under `/api/v1` or
//! `/apis/<group>/<version>` with its verb (`list`/`watch` for a GET without a name,
//! `deletecollection` for a DELETE without one), namespace, resource, subresource and name;
//! anything else is a non-resource request with the lower-cased method as verb. A `list`,
//! `watch` or `deletecollection` carries its field selector's requirements
//! (`AuthorizeWithSelectors`, on by default since 1.32), which the Node authorizer reads.

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
    /// The requirements of a collection request's `fieldSelector` (upstream
    /// `GetFieldSelector()`; none when it does not parse).
    pub field_selector: Vec<FieldRequirement>,
}

/// One term of a field selector (upstream `fields.Requirement`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field (`spec.nodeName`).
    pub field: String,
    /// `=` and `==` are both equality; `!=` is not.
    pub equals: bool,
    /// The value, unescaped.
    pub value: String,
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
        if matches!(a.verb.as_str(), "list" | "watch" | "deletecollection") {
            a.field_selector = query
                .get("fieldSelector")
                .map(field_requirements)
                .unwrap_or_default();
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

/// Upstream `fields.ParseSelector(s).Requirements()`: terms split at unescaped commas, each
/// `field!=value`, `field==value` or `field=value` with the value unescaped (`\\`, `\,`,
/// `\=`); nothing when a term does not parse.
fn field_requirements(s: &str) -> Vec<FieldRequirement> {
    let mut terms = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        match c {
            _ if escaped => {
                cur.push('\\');
                cur.push(c);
                escaped = false;
            }
            '\\' => escaped = true,
            ',' => terms.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if escaped {
        return Vec::new();
    }
    terms.push(cur);
    let mut out = Vec::new();
    for term in terms.iter().filter(|t| !t.is_empty()) {
        let Some((field, equals, value)) = split_term(term) else {
            return Vec::new();
        };
        let Some(value) = unescape(&value) else {
            return Vec::new();
        };
        out.push(FieldRequirement {
            field,
            equals,
            value,
        });
    }
    out
}

/// Upstream `splitTerm`: at the first position where `!=`, `==` or `=` starts (tried in
/// that order), the field, whether it is an equality, and the (still escaped) value.
fn split_term(term: &str) -> Option<(String, bool, String)> {
    term.char_indices().find_map(|(i, _)| {
        let rest = &term[i..];
        ["!=", "==", "="]
            .iter()
            .find(|op| rest.starts_with(**op))
            .map(|op| {
                (
                    term[..i].to_string(),
                    *op != "!=",
                    rest[op.len()..].to_string(),
                )
            })
    })
}

/// Upstream `fields.UnescapeValue`: `\\`, `\,` and `\=` stand for themselves; any other
/// escape is invalid.
fn unescape(v: &str) -> Option<String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                _ => return None,
            }
        } else if c == ',' || c == '=' {
            return None;
        } else {
            out.push(c);
        }
    }
    Some(out)
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
    fn collection_requests_carry_their_field_selector() {
        let a = attrs(
            Method::GET,
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1%2Cstatus.phase!%3DFailed&watch=true",
        );
        assert_eq!(a.verb, "watch");
        assert_eq!(
            a.field_selector,
            vec![
                FieldRequirement {
                    field: "spec.nodeName".into(),
                    equals: true,
                    value: "n1".into()
                },
                FieldRequirement {
                    field: "status.phase".into(),
                    equals: false,
                    value: "Failed".into()
                },
            ]
        );
        let a = attrs(
            Method::GET,
            "/api/v1/pods?fieldSelector=spec.nodeName%3D%3Da%5C%2Cb",
        );
        assert_eq!(a.field_selector[0].value, "a,b");
        // Unparsable: no requirements.
        let a = attrs(Method::GET, "/api/v1/pods?fieldSelector=spec.nodeName");
        assert!(a.field_selector.is_empty());
        // Not a collection request: none.
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/x/pods/p?fieldSelector=a%3Db",
        );
        assert!(a.field_selector.is_empty());
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
