//! `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`: the TokenRequest API
//! (upstream `pkg/registry/core/serviceaccount/storage/token.go`), what `kubectl create
//! token` and the node agent's projected token volumes call. Nothing is stored: the answer is
//! the request with its `status` (the signed token and when it expires).

use api::status::{ApiError, FieldError};
use k8s_openapi::api::authentication::v1::TokenRequest;
use serde_json::{Value, json};

use super::{Ref, TokenIssuer, TokenSubject, info, unix_now};
use crate::meta::meta_str;
use crate::registry::Registry;

/// The shortest token lifetime a request may ask for (`MinTokenAgeSec`).
pub const MIN_EXPIRATION_SECONDS: i64 = 10 * 60;
/// The longest (`MaxTokenAgeSec`, 2^32 s).
pub const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;
/// The default lifetime (`SetDefaults_TokenRequestSpec`: one hour).
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;

const GROUP: &str = "authentication.k8s.io";
const KIND: &str = "TokenRequest";

fn invalid(name: &str, errs: Vec<FieldError>) -> ApiError {
    ApiError::invalid_kind(GROUP, KIND, name, errs)
}

/// Issues a token for the service account `ns/name` as `body` (a TokenRequest) asks.
pub fn create(
    registry: &Registry,
    issuer: &TokenIssuer,
    ns: &str,
    name: &str,
    body: Value,
) -> Result<Value, ApiError> {
    if let Some(v) = body.get("apiVersion").and_then(Value::as_str)
        && !v.is_empty()
        && v != "authentication.k8s.io/v1"
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({v}) does not match the expected API version (authentication.k8s.io/v1)"
        )));
    }
    if let Some(k) = body.get("kind").and_then(Value::as_str)
        && !k.is_empty()
        && k != KIND
    {
        return Err(ApiError::bad_request(format!(
            "{k} in version \"v1\" cannot be handled as a TokenRequest: the kind in the data ({k}) does not match the expected kind (TokenRequest)"
        )));
    }
    let req: TokenRequest = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: {e}"
        ))
    })?;
    let body_name = req.metadata.name.clone().unwrap_or_default();
    if !body_name.is_empty() && body_name != name {
        return Err(invalid(
            name,
            vec![FieldError::invalid(
                "metadata.name",
                body_name,
                "must match the service account name if specified",
            )],
        ));
    }
    let body_ns = req.metadata.namespace.clone().unwrap_or_default();
    if !body_ns.is_empty() && body_ns != ns {
        return Err(invalid(
            name,
            vec![FieldError::invalid(
                "metadata.namespace",
                body_ns,
                "must match the service account namespace if specified",
            )],
        ));
    }
    let sa = registry.get(info("serviceaccounts"), ns, name)?;
    let spec_in = req.spec.clone().unwrap_or_default();
    let mut audiences = spec_in.audiences.clone().unwrap_or_default();
    if audiences.is_empty() {
        audiences = issuer.audiences().to_vec();
    }
    let expiration = spec_in
        .expiration_seconds
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    // ValidateTokenRequest.
    let mut errs = Vec::new();
    if expiration < MIN_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > MAX_EXPIRATION_SECONDS {
        errs.push(FieldError::invalid(
            "spec.expirationSeconds",
            expiration,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if !errs.is_empty() {
        return Err(invalid(name, errs));
    }
    let mut subject = TokenSubject {
        namespace: ns.to_string(),
        name: name.to_string(),
        uid: meta_str(&sa, "uid").to_string(),
        ..Default::default()
    };
    if let Some(r) = &spec_in.bound_object_ref {
        let api_version = r.api_version.clone().unwrap_or_default();
        let kind = r.kind.clone().unwrap_or_default();
        let ref_name = r.name.clone().unwrap_or_default();
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), api_version.clone()),
        };
        let uid = match (group.as_str(), kind.as_str()) {
            ("", "Pod") => {
                let pod = registry.get(info("pods"), ns, &ref_name)?;
                let pod_sa = pod
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if pod_sa != name {
                    return Err(ApiError::bad_request(format!(
                        "cannot bind token for serviceaccount \"{name}\" to pod running with different serviceaccount name."
                    )));
                }
                let uid = meta_str(&pod, "uid").to_string();
                subject.pod = Some(Ref {
                    name: ref_name.clone(),
                    uid: uid.clone(),
                });
                let node_name = pod
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !node_name.is_empty() {
                    // A node that does not exist (yet) is named without its uid.
                    let node_uid = registry
                        .get(info("nodes"), "", node_name)
                        .map(|n| meta_str(&n, "uid").to_string())
                        .unwrap_or_default();
                    subject.node = Some(Ref {
                        name: node_name.to_string(),
                        uid: node_uid,
                    });
                }
                uid
            }
            ("", "Secret") => {
                let secret = registry.get(info("secrets"), ns, &ref_name)?;
                let uid = meta_str(&secret, "uid").to_string();
                subject.secret = Some(Ref {
                    name: ref_name.clone(),
                    uid: uid.clone(),
                });
                uid
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token to object of type {group}/{version}, Kind={kind}"
                )));
            }
        };
        let want = r.uid.clone().unwrap_or_default();
        if !want.is_empty() && want != uid {
            let msg = format!(
                "Operation cannot be fulfilled on {kind} {:?}: the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated",
                ref_name
            );
            let mut e = ApiError::new(409, "Conflict", msg);
            e.details = Some(api::status::StatusDetails {
                name: ref_name.clone(),
                group,
                kind: kind.clone(),
                causes: Vec::new(),
                retry_after_seconds: None,
            });
            return Err(e);
        }
    }
    let now = unix_now();
    let claims = issuer.claims(&subject, &audiences, now, expiration);
    let token = issuer
        .sign(&claims)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let ts = |secs: i64| {
        k8s_openapi::jiff::Timestamp::from_second(secs)
            .map(api::time::rfc3339)
            .unwrap_or_default()
    };
    let mut spec = json!({"audiences": audiences, "expirationSeconds": expiration});
    if let Some(r) = &spec_in.bound_object_ref {
        spec["boundObjectRef"] = serde_json::to_value(r).map_err(ApiError::internal)?;
    }
    let mut metadata = json!({
        "name": name,
        "namespace": ns,
        "creationTimestamp": ts(now),
    });
    if let Some(m) = serde_json::to_value(&req.metadata)
        .ok()
        .and_then(|v| v.as_object().cloned())
    {
        for (k, v) in m {
            if !matches!(k.as_str(), "name" | "namespace" | "creationTimestamp") {
                metadata[k] = v;
            }
        }
    }
    Ok(json!({
        "kind": KIND,
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": metadata,
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": ts(now + expiration)},
    }))
}
