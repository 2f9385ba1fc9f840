//! The OpenAPI documents kubectl reads: v3 per group-version (`/openapi/v3`, `/openapi/v3/{gv}`)
//! and the Swagger 2.0 document (`/openapi/v2`, JSON or gnostic protobuf), with complete
//! schemas of every served kind ([`schemas`]), so that `kubectl explain` works at any depth and
//! kubectl's client-side validation (which uses v2 for `v1 List` inputs) checks fields.
//!
//! Every path's operations carry `x-kubernetes-group-version-kind` and a `fieldValidation`
//! query parameter, so kubectl's `queryParamVerifierV3` trusts the server to validate
//! ordinary objects. `strategic-merge-patch` is absent from the v3 PATCH request bodies, as it
//! was before schemas were served: kubectl then computes apply patches from the v2 document's
//! patch extensions, which come from the server's own patch tables.
//!
//! Start at [`OpenApi::new`]; documents are built once at start and served with their hash as
//! ETag (`If-None-Match` answers 304), as upstream's aggregator does.

mod metrics;
mod schemas;
mod v2pb;

use api::registry::{ResourceInfo, served};
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
    /// The Swagger 2.0 document.
    pub v2: V2Doc,
}

/// The documents, built on first use on a blocking thread (a second or so in a debug build).
#[derive(Debug, Default)]
pub struct LazyOpenApi(tokio::sync::OnceCell<std::sync::Arc<OpenApi>>);

impl LazyOpenApi {
    /// The documents, building them if this is the first call.
    pub async fn get(&self) -> Option<std::sync::Arc<OpenApi>> {
        self.0
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(|| std::sync::Arc::new(OpenApi::new())).await
            })
            .await
            .ok()
            .cloned()
    }
}

/// `/openapi/v2` in both forms kubectl may ask for.
#[derive(Debug, Clone)]
pub struct V2Doc {
    /// Stable hash of the JSON form (the ETag of both forms, as upstream's is of the spec).
    pub hash: String,
    /// `application/json`.
    pub json: bytes::Bytes,
    /// `application/com.github.proto-openapi.spec.v2@v1.0+protobuf`.
    pub protobuf: bytes::Bytes,
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

/// Points each operation's response (and a create's or replace's body) at its kind's schema.
fn attach_schemas(paths: &mut Map<String, Value>, schemas: &schemas::Schemas) {
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (verb, op) in item.iter_mut() {
            if verb == "parameters" {
                continue;
            }
            let gvk = &op["x-kubernetes-group-version-kind"];
            let (g, v, k) = (
                gvk["group"].as_str().unwrap_or_default(),
                gvk["version"].as_str().unwrap_or_default(),
                gvk["kind"].as_str().unwrap_or_default(),
            );
            let name = match op["x-kubernetes-action"].as_str() {
                Some("list") => schemas.kind(g, v, &format!("{k}List")),
                Some("get" | "post" | "put" | "patch") => schemas.kind(g, v, k),
                _ => None,
            };
            let Some(name) = name else { continue };
            let schema = json!({"$ref": format!("{}{name}", schemas::V3_PREFIX)});
            op["responses"]["200"] = json!({
                "description": "OK",
                "content": {"application/json": {"schema": schema}},
            });
            if matches!(verb.as_str(), "post" | "put") {
                op["requestBody"] =
                    json!({"content": {"*/*": {"schema": schema}}, "required": true});
            }
        }
    }
}

/// The v2 form of one v3 operation: parameters carry their type themselves, a request body is a
/// `body` parameter, and responses name their schema directly.
fn v2_operation(verb: &str, op: &Value) -> Value {
    let mut out = op.clone();
    let Some(o) = out.as_object_mut() else {
        return out;
    };
    let mut params: Vec<Value> = o
        .get("parameters")
        .and_then(Value::as_array)
        .map(|ps| ps.iter().map(v2_param).collect())
        .unwrap_or_default();
    if let Some(body) = o.remove("requestBody") {
        let schema = body["content"]
            .as_object()
            .and_then(|c| c.values().next())
            .map(|c| schemas::to_v2(&c["schema"]))
            .unwrap_or_else(|| json!({"type": "object"}));
        params.insert(
            0,
            json!({"name": "body", "in": "body", "required": true, "schema": schema}),
        );
    }
    o.insert("parameters".into(), Value::Array(params));
    if let Some(Value::Object(responses)) = o.get_mut("responses") {
        for r in responses.values_mut() {
            if let Some(schema) = r.get("content").and_then(|c| c.get("application/json")) {
                let schema = schemas::to_v2(&schema["schema"]);
                *r = json!({"description": r["description"], "schema": schema});
            }
        }
    }
    let consumes = match verb {
        "patch" => json!([
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml"
        ]),
        _ => json!(["*/*"]),
    };
    o.insert("consumes".into(), consumes);
    o.insert(
        "produces".into(),
        json!([
            "application/json",
            "application/yaml",
            "application/vnd.kubernetes.protobuf"
        ]),
    );
    out
}

fn v2_param(p: &Value) -> Value {
    json!({
        "name": p["name"],
        "in": p["in"],
        "required": p["required"],
        "type": "string",
        "uniqueItems": true,
    })
}

/// The Swagger 2.0 document: every path of every group-version and every definition.
fn v2_document(all_paths: &Map<String, Value>, schemas: &schemas::Schemas) -> Value {
    let mut paths = Map::new();
    for (path, item) in all_paths {
        let mut out = Map::new();
        for (verb, op) in item.as_object().into_iter().flatten() {
            let v = if verb == "parameters" {
                Value::Array(
                    op.as_array()
                        .map(|ps| ps.iter().map(v2_param).collect())
                        .unwrap_or_default(),
                )
            } else {
                v2_operation(verb, op)
            };
            out.insert(verb.clone(), v);
        }
        paths.insert(path.clone(), Value::Object(out));
    }
    let mut definitions: Map<String, Value> = schemas
        .defs
        .iter()
        .map(|(k, v)| (k.clone(), schemas::to_v2(v)))
        .collect();
    definitions.sort_keys();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": VERSION},
        "paths": paths,
        "definitions": definitions,
    })
}

/// The version the documents' `info` names (the one `/version` reports).
const VERSION: &str = "v1.32.4";

impl OpenApi {
    /// Builds the index and documents for every served group-version.
    pub fn new() -> OpenApi {
        let schemas = schemas::Schemas::build(
            served()
                .map(|r| (r.group, r.version, r.kind, r.list_kind))
                .chain(served().flat_map(|r| {
                    r.subresources
                        .iter()
                        .map(|s| (s.group, s.version, s.kind, ""))
                })),
        );
        let mut gvs: Vec<(String, Map<String, Value>)> = Vec::new();
        for r in served() {
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
        let mut all_paths = Map::new();
        let docs: Vec<GvDoc> = gvs
            .into_iter()
            .map(|(path, mut paths)| {
                attach_schemas(&mut paths, &schemas);
                let mut refs = Vec::new();
                schemas::collect_refs(&Value::Object(paths.clone()), &mut refs);
                let components = schemas.closure(refs.iter().map(String::as_str));
                all_paths.extend(paths.clone());
                let doc = json!({
                    "openapi": "3.0.0",
                    "info": {"title": "Kubernetes", "version": VERSION},
                    "paths": paths,
                    "components": {"schemas": components},
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
        let v2 = v2_document(&all_paths, &schemas);
        let v2_json = serde_json::to_vec(&v2).unwrap_or_default();
        let v2_protobuf = v2pb::encode(&v2);
        OpenApi {
            index: index.into(),
            docs,
            v2: V2Doc {
                hash: hash(&v2_json),
                json: v2_json.into(),
                protobuf: v2_protobuf.into(),
            },
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
        assert_eq!(
            patch["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/io.k8s.api.apps.v1.Deployment"
        );
        let core: Value = serde_json::from_slice(&o.doc("api/v1").unwrap().body).unwrap();
        assert!(core["paths"]["/api/v1/nodes/{name}"]["patch"].is_object());
        assert_eq!(o.docs.len(), OpenApi::new().docs.len());
        assert_eq!(
            o.doc("api/v1").unwrap().hash,
            OpenApi::new().doc("api/v1").unwrap().hash
        );
    }

    fn v3(o: &OpenApi, gv: &str) -> Value {
        serde_json::from_slice(&o.doc(gv).unwrap().body).unwrap()
    }

    #[test]
    fn every_served_kind_has_a_schema_with_its_group_version_kind() {
        let o = OpenApi::new();
        let v2: Value = serde_json::from_slice(&o.v2.json).unwrap();
        for r in served() {
            let gv = if r.group.is_empty() {
                format!("api/{}", r.version)
            } else {
                format!("apis/{}/{}", r.group, r.version)
            };
            let doc = v3(&o, &gv);
            for kind in [r.kind, r.list_kind] {
                let gvk = json!([{"group": r.group, "kind": kind, "version": r.version}]);
                let has = |defs: &Value| {
                    defs.as_object()
                        .unwrap()
                        .values()
                        .any(|d| d["x-kubernetes-group-version-kind"] == gvk)
                };
                assert!(has(&doc["components"]["schemas"]), "{gv} {kind} in v3");
                assert!(has(&v2["definitions"]), "{gv} {kind} in v2");
            }
        }
        // A subresource's own kind is in the documents of the resources that serve it.
        let apps = v3(&o, "apis/apps/v1");
        assert_eq!(
            apps["components"]["schemas"]["io.k8s.api.autoscaling.v1.Scale"]["x-kubernetes-group-version-kind"],
            json!([{"group": "autoscaling", "kind": "Scale", "version": "v1"}])
        );
    }

    #[test]
    fn schemas_carry_descriptions_required_fields_and_patch_metadata() {
        let o = OpenApi::new();
        let core = v3(&o, "api/v1");
        let defs = &core["components"]["schemas"];
        let spec = &defs["io.k8s.api.core.v1.PodSpec"];
        assert_eq!(spec["required"], json!(["containers"]));
        let containers = &spec["properties"]["containers"];
        assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
        assert_eq!(containers["x-kubernetes-list-type"], "map");
        assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
        assert_eq!(
            containers["items"]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Container"
        );
        let ports = &defs["io.k8s.api.core.v1.Container"]["properties"]["ports"];
        assert_eq!(
            ports["x-kubernetes-list-map-keys"],
            json!(["containerPort", "protocol"])
        );
        assert!(
            defs["io.k8s.api.core.v1.Container"]["properties"]["image"]["description"]
                .as_str()
                .unwrap()
                .starts_with("Container image name.")
        );
        // A reference with a description: allOf in v3, $ref beside description in v2.
        let affinity = &spec["properties"]["affinity"];
        assert_eq!(
            affinity["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Affinity"
        );
        let v2: Value = serde_json::from_slice(&o.v2.json).unwrap();
        let affinity2 = &v2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["affinity"];
        assert_eq!(
            affinity2["$ref"],
            "#/definitions/io.k8s.api.core.v1.Affinity"
        );
        assert!(affinity2["description"].is_string());
        assert_eq!(
            defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["x-kubernetes-int-or-string"],
            true
        );
        let strategy = &v3(&o, "apis/apps/v1")["components"]["schemas"]["io.k8s.api.apps.v1.DeploymentSpec"]
            ["properties"]["strategy"];
        assert_eq!(strategy["x-kubernetes-patch-strategy"], "retainKeys");
        // Every reference resolves inside its own document.
        for d in &o.docs {
            let doc: Value = serde_json::from_slice(&d.body).unwrap();
            let mut refs = Vec::new();
            schemas::collect_refs(&doc, &mut refs);
            for r in refs {
                assert!(
                    doc["components"]["schemas"].get(&r).is_some(),
                    "{} {r}",
                    d.path
                );
            }
        }
    }

    #[test]
    fn the_v2_protobuf_holds_every_definition_and_extension() {
        let o = OpenApi::new();
        let pb = &o.v2.protobuf;
        // Document.swagger (field 1) first, then definitions by name with their extensions.
        assert_eq!(&pb[..5], b"\x0a\x032.0");
        let has = |s: &str| pb.windows(s.len()).any(|w| w == s.as_bytes());
        assert!(has("io.k8s.api.core.v1.PodList"));
        assert!(has("x-kubernetes-patch-merge-key"));
        assert!(has(
            r#"[{"group":"apps","kind":"Deployment","version":"v1"}]"#
        ));
        assert!(pb.len() > 100_000, "{}", pb.len());
    }
}
