//! Discovery documents, built once from [`api::registry::served`]: the aggregated
//! `APIGroupDiscoveryList` (v2 and v2beta1) for `/api` and `/apis`, and the legacy
//! `APIVersions`, `APIGroupList`, `APIGroup` and `APIResourceList` documents kubectl falls
//! back to. [`Discovery::negotiate`] picks the aggregated form only when the `Accept` header
//! asks for it, and answers with the exact content type kubectl requires.

use api::registry::{ResourceInfo, served};
use serde_json::{Value, json};

/// The content type kubectl requires for aggregated discovery (v2).
pub const AGGREGATED_V2: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
/// The v2beta1 variant, still accepted by older clients.
pub const AGGREGATED_V2BETA1: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/// Which discovery form a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// `apidiscovery.k8s.io/v2` aggregated.
    V2,
    /// `apidiscovery.k8s.io/v2beta1` aggregated.
    V2Beta1,
    /// Legacy `APIVersions` / `APIGroupList`.
    Legacy,
}

/// Parameters of one media range of an `Accept` header, lower-cased, without spaces.
fn media_ranges(accept: &str) -> impl Iterator<Item = (String, Vec<(String, String)>)> + '_ {
    accept.split(',').map(|range| {
        let mut parts = range.split(';').map(|p| p.trim().to_ascii_lowercase());
        let ty = parts.next().unwrap_or_default();
        let params = parts
            .filter_map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        (ty, params)
    })
}

/// Picks the discovery form for an `Accept` header, honouring the client's order.
pub fn negotiate(accept: Option<&str>) -> Form {
    let Some(accept) = accept else {
        return Form::Legacy;
    };
    for (ty, params) in media_ranges(accept) {
        let get = |k: &str| {
            params
                .iter()
                .find(|(pk, _)| pk == k)
                .map(|(_, v)| v.as_str())
        };
        if ty == "application/json" && get("as") == Some("apigroupdiscoverylist") {
            if get("g") != Some("apidiscovery.k8s.io") {
                continue;
            }
            match get("v") {
                Some("v2") => return Form::V2,
                Some("v2beta1") => return Form::V2Beta1,
                _ => continue,
            }
        }
        if ty == "application/json" || ty == "*/*" || ty == "application/*" {
            return Form::Legacy;
        }
    }
    Form::Legacy
}

/// The resources of one group-version.
type Version = (&'static str, Vec<&'static ResourceInfo>);

/// The API groups served, in order (core group `""` first), each with its versions, the
/// preferred (stored) one first, and their resources.
fn groups() -> Vec<(&'static str, Vec<Version>)> {
    let mut out: Vec<(&str, Vec<Version>)> = Vec::new();
    for r in served() {
        let versions = match out.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, versions)) => versions,
            None => {
                out.push((r.group, Vec::new()));
                let last = out.len() - 1;
                &mut out[last].1
            }
        };
        match versions.iter_mut().find(|(v, _)| *v == r.version) {
            Some((_, list)) => list.push(r),
            None => versions.push((r.version, vec![r])),
        }
    }
    out
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut v = json!({
        "resource": r.plural,
        "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular,
        "verbs": r.verbs,
    });
    if !r.short_names.is_empty() {
        v["shortNames"] = json!(r.short_names);
    }
    if !r.categories.is_empty() {
        v["categories"] = json!(r.categories);
    }
    if !r.subresources.is_empty() {
        v["subresources"] = r
            .subresources
            .iter()
            .map(|s| {
                json!({
                    "subresource": s.name,
                    "responseKind": {"group": s.group, "version": s.version, "kind": s.kind},
                    "verbs": s.verbs,
                })
            })
            .collect();
    }
    v
}

fn aggregated(core: bool, version: &str) -> Value {
    let items: Vec<Value> = groups()
        .into_iter()
        .filter(|(g, _)| g.is_empty() == core)
        .map(|(g, versions)| {
            let metadata = if core {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": g, "creationTimestamp": null})
            };
            let versions: Vec<Value> = versions
                .iter()
                .map(|(v, list)| {
                    json!({
                        "version": v,
                        "resources": list.iter().map(|r| aggregated_resource(r)).collect::<Vec<_>>(),
                        "freshness": "Current",
                    })
                })
                .collect();
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
}

fn api_group(group: &str, versions: &[Version]) -> Value {
    let gvs: Vec<Value> = versions
        .iter()
        .map(|(v, _)| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    let preferred = gvs.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": gvs, "preferredVersion": preferred})
}

fn resource_list(group: &str, version: &str, list: &[&ResourceInfo]) -> Value {
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut entries = Vec::new();
    for r in list {
        let mut e = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
        });
        if !r.short_names.is_empty() {
            e["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            e["categories"] = json!(r.categories);
        }
        entries.push(e);
        for s in r.subresources {
            let mut e = json!({
                "name": format!("{}/{}", r.plural, s.name),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": s.kind,
                "verbs": s.verbs,
            });
            if s.group != r.group || s.version != r.version {
                e["group"] = json!(s.group);
                e["version"] = json!(s.version);
            }
            entries.push(e);
        }
    }
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries})
}

/// Every discovery document, serialized once.
#[derive(Debug, Clone)]
pub struct Discovery {
    api_v2: bytes::Bytes,
    api_v2beta1: bytes::Bytes,
    apis_v2: bytes::Bytes,
    apis_v2beta1: bytes::Bytes,
    api_versions: bytes::Bytes,
    group_list: bytes::Bytes,
    groups: Vec<(String, bytes::Bytes)>,
    resource_lists: Vec<(String, bytes::Bytes)>,
}

fn bytes_of(v: &Value) -> bytes::Bytes {
    bytes::Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

impl Discovery {
    /// Builds all documents; `server_address` is advertised in `APIVersions`.
    pub fn new(server_address: &str) -> Discovery {
        let all = groups();
        let named: Vec<_> = all.iter().filter(|(g, _)| !g.is_empty()).collect();
        let group_list = json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": named.iter().map(|(g, vs)| api_group(g, vs)).collect::<Vec<_>>(),
        });
        let mut groups_docs = Vec::new();
        for (g, vs) in &named {
            let mut doc = api_group(g, vs);
            doc["kind"] = json!("APIGroup");
            doc["apiVersion"] = json!("v1");
            groups_docs.push((g.to_string(), bytes_of(&doc)));
        }
        let resource_lists = all
            .iter()
            .flat_map(|(g, vs)| vs.iter().map(move |(v, list)| (*g, *v, list)))
            .map(|(g, v, list)| {
                let path = if g.is_empty() {
                    format!("/api/{v}")
                } else {
                    format!("/apis/{g}/{v}")
                };
                (path, bytes_of(&resource_list(g, v, list)))
            })
            .collect();
        Discovery {
            api_v2: bytes_of(&aggregated(true, "v2")),
            api_v2beta1: bytes_of(&aggregated(true, "v2beta1")),
            apis_v2: bytes_of(&aggregated(false, "v2")),
            apis_v2beta1: bytes_of(&aggregated(false, "v2beta1")),
            api_versions: bytes_of(&json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
            })),
            group_list: bytes_of(&group_list),
            groups: groups_docs,
            resource_lists,
        }
    }

    /// The document for `/api` (`core`) or `/apis`, with its content type.
    pub fn root(&self, core: bool, form: Form) -> (&'static str, bytes::Bytes) {
        match (core, form) {
            (true, Form::V2) => (AGGREGATED_V2, self.api_v2.clone()),
            (true, Form::V2Beta1) => (AGGREGATED_V2BETA1, self.api_v2beta1.clone()),
            (true, Form::Legacy) => ("application/json", self.api_versions.clone()),
            (false, Form::V2) => (AGGREGATED_V2, self.apis_v2.clone()),
            (false, Form::V2Beta1) => (AGGREGATED_V2BETA1, self.apis_v2beta1.clone()),
            (false, Form::Legacy) => ("application/json", self.group_list.clone()),
        }
    }

    /// `APIGroup` for `/apis/{group}`.
    pub fn group(&self, group: &str) -> Option<bytes::Bytes> {
        self.groups
            .iter()
            .find(|(g, _)| g == group)
            .map(|(_, b)| b.clone())
    }

    /// `APIResourceList` for `/api/v1` or `/apis/{group}/{version}`.
    pub fn resource_list(&self, path: &str) -> Option<bytes::Bytes> {
        self.resource_lists
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECTL_ACCEPT: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

    #[test]
    fn negotiation_follows_accept_order() {
        assert_eq!(negotiate(Some(KUBECTL_ACCEPT)), Form::V2);
        assert_eq!(negotiate(Some("application/json")), Form::Legacy);
        assert_eq!(negotiate(None), Form::Legacy);
        assert_eq!(
            negotiate(Some(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
            )),
            Form::V2Beta1
        );
        assert_eq!(
            negotiate(Some(
                "application/json, application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            )),
            Form::Legacy
        );
    }

    #[test]
    fn documents_carry_kubectl_facts() {
        let d = Discovery::new("127.0.0.1:6443");
        let (ct, body) = d.root(false, Form::V2);
        assert_eq!(ct, AGGREGATED_V2);
        let v: Value = serde_json::from_slice(&body).unwrap();
        let apps = v["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["metadata"]["name"] == "apps")
            .unwrap();
        let deploy = apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deploy["shortNames"], json!(["deploy"]));
        assert_eq!(deploy["categories"], json!(["all"]));
        assert_eq!(deploy["subresources"][0]["responseKind"]["kind"], "Scale");
        let (_, core) = d.root(true, Form::V2);
        let core: Value = serde_json::from_slice(&core).unwrap();
        assert!(core["items"][0]["metadata"].get("name").is_none());
        let list: Value =
            serde_json::from_slice(&d.resource_list("/apis/apps/v1").unwrap()).unwrap();
        let scale = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(scale["group"], "autoscaling");
        assert!(d.resource_list("/api/v1").is_some());
        assert!(d.group("apps").is_some());
        assert!(d.group("nope").is_none());
    }
}
