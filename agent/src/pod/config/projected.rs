//! Projected volumes (upstream `pkg/volume/projected`): the files of every source in one
//! directory — configMap and secret keys, downwardAPI items, and serviceAccountToken, a token
//! of the pod's service account bound to the pod (a TokenRequest with the source's audience and
//! lifetime, as the kubelet's token manager asks for it; see [`crate::token`], which caches
//! and refreshes it). A failed source fails the volume, as upstream's `collectData` does.

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ProjectedVolumeSource};

use super::{
    NodeFacts, Objects, config_map_data, downward_files, key_files, mode, not_found, secret_data,
};
use crate::runtime::ProjectedFile;

/// The lifetime a serviceAccountToken source asks for when it names none (API defaulting).
pub(crate) const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;

/// Whether the volume source projects a service account token (its content changes over
/// time: the agent rewrites it).
pub(crate) fn has_token(p: &ProjectedVolumeSource) -> bool {
    p.sources
        .iter()
        .flatten()
        .any(|s| s.service_account_token.is_some())
}

/// The TokenRequest the kubelet makes for a serviceAccountToken source of `pod`.
pub(crate) fn token_request(
    pod: &Pod,
    audience: &str,
    expiration_seconds: Option<i64>,
) -> TokenRequest {
    TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: (!audience.is_empty()).then(|| vec![audience.to_string()]),
            expiration_seconds: Some(
                expiration_seconds.unwrap_or(DEFAULT_TOKEN_EXPIRATION_SECONDS),
            ),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The files of projected volume `p` of `pod`.
pub(super) async fn files(
    objects: &dyn Objects,
    pod: &Pod,
    p: &ProjectedVolumeSource,
    pod_ip: &str,
    node: &NodeFacts,
    default_mode: u32,
) -> Result<Vec<ProjectedFile>, String> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for source in p.sources.iter().flatten() {
        let got: Result<Vec<ProjectedFile>, String> = if let Some(c) = &source.config_map {
            let optional = c.optional == Some(true);
            match objects.config_map(&ns, &c.name).await {
                Err(e) => Err(e.to_string()),
                Ok(None) if optional => Ok(Vec::new()),
                Ok(None) => Err(not_found("configmap", &c.name)),
                Ok(Some(cm)) => key_files(
                    config_map_data(cm),
                    c.items.as_ref(),
                    default_mode,
                    &format!("ConfigMap {ns}/{}", c.name),
                    optional,
                ),
            }
        } else if let Some(s) = &source.secret {
            let optional = s.optional == Some(true);
            match objects.secret(&ns, &s.name).await {
                Err(e) => Err(e.to_string()),
                Ok(None) if optional => Ok(Vec::new()),
                Ok(None) => Err(not_found("secret", &s.name)),
                Ok(Some(sec)) => key_files(
                    secret_data(sec),
                    s.items.as_ref(),
                    default_mode,
                    &format!("Secret {ns}/{}", s.name),
                    optional,
                ),
            }
        } else if let Some(d) = &source.downward_api {
            downward_files(
                d.items.as_deref().unwrap_or_default(),
                pod,
                pod_ip,
                node,
                default_mode,
            )
        } else if let Some(t) = &source.service_account_token {
            let sa = pod
                .spec
                .as_ref()
                .and_then(|s| s.service_account_name.clone())
                .unwrap_or_default();
            let req = token_request(
                pod,
                t.audience.as_deref().unwrap_or(""),
                t.expiration_seconds,
            );
            match objects.token_request(&ns, &sa, req).await {
                Ok(tr) => match tr.status.and_then(|s| s.token).filter(|t| !t.is_empty()) {
                    Some(token) => Ok(vec![ProjectedFile {
                        path: t.path.clone(),
                        data: token.into_bytes(),
                        mode: mode(None, default_mode),
                    }]),
                    _ => Err("failed to fetch token: the answer has no token".to_string()),
                },
                Err(e) => Err(format!("failed to fetch token: {e}")),
            }
        } else if source.cluster_trust_bundle.is_some() {
            Err("clusterTrustBundle projections are not supported by paddock".to_string())
        } else {
            Ok(Vec::new())
        };
        match got {
            Ok(f) => out.extend(f),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join(", "))
    }
}
