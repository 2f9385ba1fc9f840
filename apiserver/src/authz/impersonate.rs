//! Impersonation (upstream `endpoints/filters/impersonation.go`): `Impersonate-User`,
//! `Impersonate-Group`, `Impersonate-Uid` and `Impersonate-Extra-<key>` ask to act as another
//! user; each is allowed only with the `impersonate` verb on `users`, `groups`,
//! `serviceaccounts` (a `system:serviceaccount:<ns>:<name>` user), `uids` or
//! `userextras/<key>`. The new user gets `system:authenticated` unless the groups asked say
//! otherwise; the headers are removed before the request goes on.

use api::status::ApiError;
use http::HeaderMap;

use super::attrs::Attributes;
use super::{Rbac, forbidden};
use crate::user::UserInfo;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA: &str = "impersonate-extra-";

/// One thing asked for.
#[derive(Debug)]
enum Ask {
    User(String),
    ServiceAccount(String, String),
    Group(String),
    Extra(String, String),
    Uid(String),
}

/// `system:serviceaccount:<ns>:<name>` split, as upstream `SplitUsername` does.
fn split_service_account(user: &str) -> Option<(String, String)> {
    let rest = user.strip_prefix("system:serviceaccount:")?;
    let (ns, name) = rest.split_once(':')?;
    if ns.is_empty() || name.is_empty() || name.contains(':') {
        return None;
    }
    Some((ns.to_string(), name.to_string()))
}

fn header_values<'a>(h: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// Upstream `unescapeExtraKey`: percent-decoded, lower-cased header suffix.
fn unescape_extra_key(k: &str) -> String {
    percent_encoding::percent_decode_str(k)
        .decode_utf8_lossy()
        .into_owned()
}

/// Applies the impersonation headers of a request by `requestor`: `Ok(None)` without any,
/// the new user when every ask is allowed, 403 for the first ask that is not.
pub fn apply(
    rbac: &Rbac,
    requestor: &UserInfo,
    headers: &mut HeaderMap,
) -> Result<Option<UserInfo>, ApiError> {
    let mut asks = Vec::new();
    let user = header_values(headers, USER).first().map(|s| s.to_string());
    if let Some(u) = user.as_deref().filter(|u| !u.is_empty()) {
        asks.push(match split_service_account(u) {
            Some((ns, name)) => Ask::ServiceAccount(ns, name),
            None => Ask::User(u.to_string()),
        });
    }
    let groups = header_values(headers, GROUP);
    let groups_specified = !groups.is_empty();
    for g in groups {
        asks.push(Ask::Group(g.to_string()));
    }
    let mut extra_keys: Vec<String> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with(EXTRA))
        .map(str::to_string)
        .collect();
    extra_keys.sort();
    let mut extra = std::collections::BTreeMap::<String, Vec<String>>::new();
    for k in &extra_keys {
        let key = unescape_extra_key(&k[EXTRA.len()..]);
        for v in header_values(headers, k) {
            asks.push(Ask::Extra(key.clone(), v.to_string()));
            extra.entry(key.clone()).or_default().push(v.to_string());
        }
    }
    if let Some(uid) = header_values(headers, UID)
        .first()
        .filter(|u| !u.is_empty())
    {
        asks.push(Ask::Uid(uid.to_string()));
    }
    if asks.is_empty() {
        return Ok(None);
    }
    if !asks
        .iter()
        .any(|a| matches!(a, Ask::User(_) | Ask::ServiceAccount(..)))
    {
        return Err(ApiError::internal(format!(
            "requested {asks:?} without impersonating a user"
        )));
    }
    let mut name = String::new();
    let mut new_groups: Vec<String> = Vec::new();
    let mut uid = String::new();
    for ask in &asks {
        let mut a = Attributes {
            verb: "impersonate".into(),
            resource_request: true,
            api_version: "v1".into(),
            ..Attributes::default()
        };
        match ask {
            Ask::ServiceAccount(ns, n) => {
                a.resource = "serviceaccounts".into();
                a.namespace = ns.clone();
                a.name = n.clone();
                name = super::index::service_account_user(ns, n);
                if !groups_specified {
                    new_groups = vec![
                        "system:serviceaccounts".into(),
                        format!("system:serviceaccounts:{ns}"),
                    ];
                }
            }
            Ask::User(u) => {
                a.resource = "users".into();
                a.name = u.clone();
                name = u.clone();
            }
            Ask::Group(g) => {
                a.resource = "groups".into();
                a.name = g.clone();
                new_groups.push(g.clone());
            }
            Ask::Extra(k, v) => {
                a.api_group = "authentication.k8s.io".into();
                a.resource = "userextras".into();
                a.subresource = k.clone();
                a.name = v.clone();
            }
            Ask::Uid(u) => {
                a.api_group = "authentication.k8s.io".into();
                a.resource = "uids".into();
                a.name = u.clone();
                uid = u.clone();
            }
        }
        let d = rbac.authorize(requestor, &a);
        if !d.allowed {
            return Err(forbidden(requestor, &a, &d.reason));
        }
    }
    if name != "system:anonymous" {
        if !new_groups
            .iter()
            .any(|g| g == "system:authenticated" || g == "system:unauthenticated")
        {
            new_groups.push("system:authenticated".into());
        }
    } else if !new_groups.iter().any(|g| g == "system:unauthenticated") {
        new_groups.push("system:unauthenticated".into());
    }
    for h in [USER, GROUP, UID] {
        headers.remove(h);
    }
    for k in extra_keys {
        headers.remove(k.as_str());
    }
    Ok(Some(UserInfo {
        name,
        uid,
        groups: new_groups,
        extra,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_names_split_as_upstream() {
        assert_eq!(
            split_service_account("system:serviceaccount:ns:sa"),
            Some(("ns".into(), "sa".into()))
        );
        assert_eq!(split_service_account("system:serviceaccount:ns"), None);
        assert_eq!(split_service_account("jane"), None);
    }
}
