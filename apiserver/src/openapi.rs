//! The minimal OpenAPI v3 documents that let `kubectl apply -f` and `kubectl create -f` run
//! with default (`Strict`) validation: per group-version, every resource path with its
//! operations, each carrying `x-kubernetes-group-version-kind` and a `fieldValidation`
//! query parameter, so kubectl's `queryParamVerifierV3` trusts the server to validate
//! (kubectl-wire §4). No schemas: `kubectl explain` is out of scope. `strategic-merge-patch`
//! is deliberately absent from the PATCH request bodies so that kubectl builds apply patches
//! from its compiled-in types instead of from (empty) schemas.

use api::registry::{ResourceInfo, resources};
use serde_json::{Map, Value, json};

/// One served group-version document.
#[derive(Debug, Clone)]
pub struct GvDoc {
    /// `api/v1`, `apis/apps/v1`.
    pub path: String,
    /// Stable hash of the body (used in `?hash=` URLs and as ETag).
    pub hash: String,
    /// The serialized document.
    pub body: bytes::Bytes,
}

/// The index and all group-version documents.
#[derive(Debug, Clone)]
pub struct OpenApi {
    /// `GET /openapi/v3` body.
    pub index: bytes::Bytes,
    /// Per group-version documents.
    pub docs: Vec<GvDoc>,
}

/// FNV-1a over the body twice with different seeds, as 32 hex digits: stable across runs and
/// changing whenever the document changes.
fn hash(bytes: &[u8]) -> String {
    let fnv = |seed: u64| {
        bytes.iter().fold(seed, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    };
    format!(
        "{:016X}{:016X}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    )
}

fn param(name: &str, loc: &str, required: bool) -> Value {
    json!({"name": name, "in": loc, "required": required, "schema": {"type": "string", "uniqueItems": true}})
}

fn operation(
    r: &ResourceInfo,
    action: &str,
    id: &str,
    params: Vec<Value>,
    body: Option<Value>,
) -> Value {
    let mut op = json!({
        "tags": [r.group_version().replace('/', "_")],
        "operationId": id,
        "parameters": params,
        "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
    });
    if let Some(body) = body {
        op["requestBody"] = body;
    }
    op
}

fn write_params(extra: &[&str]) -> Vec<Value> {
    let mut v = vec![
        param("dryRun", "query", false),
        param("fieldManager", "query", false),
        param("fieldValidation", "query", false),
    ];
    v.extend(extra.iter().map(|p| param(p, "query", false)));
    v
}

fn json_body() -> Value {
    json!({"content": {"*/*": {"schema": {"type": "object"}}}, "required": true})
}

fn patch_body() -> Value {
    json!({"content": {
        "application/json-patch+json": {"schema": {"type": "object"}},
        "application/merge-patch+json": {"schema": {"type": "object"}},
        "application/apply-patch+yaml": {"schema": {"type": "object"}},
    }, "required": true})
}

fn resource_paths(r: &ResourceInfo, paths: &mut Map<String, Value>) {
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let (collection, mut path_params) = if r.namespaced {
        (
            format!("{prefix}/namespaces/{{namespace}}/{}", r.plural),
            vec![param("namespace", "path", true)],
        )
    } else {
        (format!("{prefix}/{}", r.plural), Vec::new())
    };
    let kind = r.kind;
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let list_params = |mut p: Vec<Value>| {
        for q in [
            "labelSelector",
            "fieldSelector",
            "limit",
            "continue",
            "resourceVersion",
            "watch",
            "timeoutSeconds",
        ] {
            p.push(param(q, "query", false));
        }
        p
    };
    let mut coll = Map::new();
    coll.insert(
        "get".into(),
        operation(
            r,
            "list",
            &format!("list{scope}{kind}"),
            list_params(Vec::new()),
            None,
        ),
    );
    coll.insert(
        "post".into(),
        operation(
            r,
            "post",
            &format!("create{scope}{kind}"),
            write_params(&[]),
            Some(json_body()),
        ),
    );
    coll.insert(
        "delete".into(),
        operation(
            r,
            "deletecollection",
            &format!("deleteCollection{scope}{kind}"),
            list_params(Vec::new()),
            None,
        ),
    );
    coll.insert("parameters".into(), Value::Array(path_params.clone()));
    paths.insert(collection.clone(), Value::Object(coll));

    path_params.push(param("name", "path", true));
    let mut item = Map::new();
    item.insert(
        "get".into(),
        operation(r, "get", &format!("read{scope}{kind}"), Vec::new(), None),
    );
    item.insert(
        "put".into(),
        operation(
            r,
            "put",
            &format!("replace{scope}{kind}"),
            write_params(&[]),
            Some(json_body()),
        ),
    );
    item.insert(
        "patch".into(),
        operation(
            r,
            "patch",
            &format!("patch{scope}{kind}"),
            write_params(&["force"]),
            Some(patch_body()),
        ),
    );
    item.insert(
        "delete".into(),
        operation(
            r,
            "delete",
            &format!("delete{scope}{kind}"),
            vec![
                param("dryRun", "query", false),
                param("gracePeriodSeconds", "query", false),
                param("propagationPolicy", "query", false),
            ],
            None,
        ),
    );
    item.insert("parameters".into(), Value::Array(path_params.clone()));
    paths.insert(format!("{collection}/{{name}}"), Value::Object(item));

    for s in r
        .subresources
        .iter()
        .filter(|s| matches!(s.name, "status" | "scale"))
    {
        let mut sub = Map::new();
        let suffix = if s.name == "status" {
            "Status"
        } else {
            "Scale"
        };
        let mut gvk_r = *r;
        gvk_r.group = s.group;
        gvk_r.version = s.version;
        gvk_r.kind = s.kind;
        sub.insert(
            "get".into(),
            operation(
                &gvk_r,
                "get",
                &format!("read{scope}{kind}{suffix}"),
                Vec::new(),
                None,
            ),
        );
        sub.insert(
            "put".into(),
            operation(
                &gvk_r,
                "put",
                &format!("replace{scope}{kind}{suffix}"),
                write_params(&[]),
                Some(json_body()),
            ),
        );
        sub.insert(
            "patch".into(),
            operation(
                &gvk_r,
                "patch",
                &format!("patch{scope}{kind}{suffix}"),
                write_params(&["force"]),
                Some(patch_body()),
            ),
        );
        sub.insert("parameters".into(), Value::Array(path_params.clone()));
        paths.insert(
            format!("{collection}/{{name}}/{}", s.name),
            Value::Object(sub),
        );
    }
}

impl OpenApi {
    /// Builds the index and documents for every served group-version.
    pub fn new() -> OpenApi {
        let mut gvs: Vec<(String, Map<String, Value>)> = Vec::new();
        for r in resources() {
            let path = if r.group.is_empty() {
                format!("api/{}", r.version)
            } else {
                format!("apis/{}/{}", r.group, r.version)
            };
            let idx = match gvs.iter().position(|(p, _)| *p == path) {
                Some(i) => i,
                None => {
                    gvs.push((path, Map::new()));
                    gvs.len() - 1
                }
            };
            resource_paths(r, &mut gvs[idx].1);
        }
        let docs: Vec<GvDoc> = gvs
            .into_iter()
            .map(|(path, paths)| {
                let doc = json!({
                    "openapi": "3.0.0",
                    "info": {"title": "Kubernetes", "version": "v1.32.4"},
                    "paths": paths,
                    "components": {"schemas": {}},
                });
                let body = serde_json::to_vec(&doc).unwrap_or_default();
                GvDoc {
                    hash: hash(&body),
                    path,
                    body: body.into(),
                }
            })
            .collect();
        let mut index = Map::new();
        for d in &docs {
            index.insert(
                d.path.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{}?hash={}", d.path, d.hash)}),
            );
        }
        let index = serde_json::to_vec(&json!({"paths": index})).unwrap_or_default();
        OpenApi {
            index: index.into(),
            docs,
        }
    }

    /// The document served at `/openapi/v3/{path}`.
    pub fn doc(&self, path: &str) -> Option<&GvDoc> {
        self.docs.iter().find(|d| d.path == path)
    }
}

impl Default for OpenApi {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_satisfy_kubectl_verifier() {
        let o = OpenApi::new();
        let index: Value = serde_json::from_slice(&o.index).unwrap();
        let url = index["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap();
        let d = o.doc("apis/apps/v1").unwrap();
        assert!(url.ends_with(&d.hash));
        let doc: Value = serde_json::from_slice(&d.body).unwrap();
        let patch =
            &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(
            patch["x-kubernetes-group-version-kind"],
            json!({"group":"apps","version":"v1","kind":"Deployment"})
        );
        assert!(
            patch["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "fieldValidation")
        );
        assert!(
            patch["requestBody"]["content"]
                .get("application/strategic-merge-patch+json")
                .is_none()
        );
        let core: Value = serde_json::from_slice(&o.doc("api/v1").unwrap().body).unwrap();
        assert!(core["paths"]["/api/v1/nodes/{name}"]["patch"].is_object());
        assert_eq!(o.docs.len(), OpenApi::new().docs.len());
        assert_eq!(
            o.doc("api/v1").unwrap().hash,
            OpenApi::new().doc("api/v1").unwrap().hash
        );
    }
}
