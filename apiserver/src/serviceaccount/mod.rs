//! ServiceAccount tokens: the signing key in the data directory, the claims upstream puts
//! in a token (`pkg/serviceaccount/claims.go`, legacy ones in `legacy.go`), signing
//! (`jwt.go`'s generator) and the authenticator that turns a presented token back into a
//! user (`jwt.go`'s validator: signature, issuer, time, audience, then the objects the token
//! is bound to must still exist with the same uid).
//!
//! Start at [`TokenIssuer`]; the `token` subresource is [`token_request`], the
//! ServiceAccount admission plugin is [`admission`], the OIDC discovery documents are
//! [`TokenIssuer::openid_configuration`] and [`TokenIssuer::jwks`].

pub mod admission;
pub mod token_request;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rcgen::{KeyPair, PublicKeyData};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::meta::meta_str;
use crate::registry::Registry;
use crate::tls::TlsError;
use crate::user::UserInfo;

/// The default issuer (`--service-account-issuer` as kubeadm sets it).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The issuer of legacy (Secret-stored) tokens.
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// The signing key's file in the data directory (kubeadm's name).
const KEY_FILE: &str = "sa.key";
/// Objects deleted less than this long ago still validate tokens bound to them (upstream's
/// 60 s grace in `claims.go`: a pod being deleted may still need to talk to the server).
const DELETION_GRACE_SECONDS: i64 = 60;
/// The leeway on `exp`/`nbf` (go-jose's `DefaultLeeway`).
const LEEWAY_SECONDS: u64 = 60;

/// The user name of a service account (`serviceaccount.MakeUsername`).
pub fn username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// The groups of a service account's user (`serviceaccount.MakeGroupNames`), with
/// `system:authenticated`.
pub fn groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
        "system:authenticated".to_string(),
    ]
}

/// A name and uid in the `kubernetes.io` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    /// Object name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Object uid.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

/// The `kubernetes.io` private claim.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KubernetesClaim {
    /// The service account's namespace.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// The service account.
    #[serde(default)]
    pub serviceaccount: Ref,
    /// The pod the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    /// The Secret the token is bound to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    /// The node the bound pod runs on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
}

/// The claims of a bound (TokenRequest) token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// `system:serviceaccount:<ns>:<name>`.
    pub sub: String,
    /// Audiences.
    pub aud: Vec<String>,
    /// Expiry (seconds since the epoch).
    pub exp: i64,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Token id.
    pub jti: String,
    /// The private claim.
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
}

/// The claims of a legacy token stored in a `kubernetes.io/service-account-token` Secret
/// (`legacy.go`): no expiry, no audience.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LegacyClaims {
    /// [`LEGACY_ISSUER`].
    pub iss: String,
    /// `system:serviceaccount:<ns>:<name>`.
    pub sub: String,
    /// Namespace.
    #[serde(rename = "kubernetes.io/serviceaccount/namespace")]
    pub namespace: String,
    /// The Secret holding the token.
    #[serde(rename = "kubernetes.io/serviceaccount/secret.name")]
    pub secret_name: String,
    /// The service account's name.
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.name")]
    pub service_account_name: String,
    /// The service account's uid.
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.uid")]
    pub service_account_uid: String,
}

/// What a bound token is issued for.
#[derive(Debug, Clone, Default)]
pub struct TokenSubject {
    /// The service account's namespace.
    pub namespace: String,
    /// The service account's name.
    pub name: String,
    /// The service account's uid.
    pub uid: String,
    /// The bound pod.
    pub pod: Option<Ref>,
    /// The bound Secret.
    pub secret: Option<Ref>,
    /// The bound pod's node.
    pub node: Option<Ref>,
}

/// Why a token could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("signing a service account token: {0}")]
pub struct SignError(String);

/// The service account token signer and verifier (one ES256 key).
pub struct TokenIssuer {
    issuer: String,
    audiences: Vec<String>,
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// The public key as a JWK.
    jwk: Value,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("issuer", &self.issuer)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl TokenIssuer {
    /// Loads `sa.key` from `dir` (0600, next to the CA key), creating it when missing.
    pub fn load_or_create(dir: &Path) -> Result<TokenIssuer, TlsError> {
        let path = dir.join(KEY_FILE);
        let pem = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = KeyPair::generate()?;
                let pem = key.serialize_pem();
                crate::tls::write_private(&path, pem.as_bytes())?;
                pem
            }
            Err(source) => {
                return Err(TlsError::Io {
                    path: path.display().to_string(),
                    source,
                });
            }
        };
        TokenIssuer::from_pem(&pem, DEFAULT_ISSUER).map_err(|message| TlsError::Pem {
            path: path.display().to_string(),
            message,
        })
    }

    /// A signer over a PKCS#8 P-256 key; its API audiences are the issuer alone.
    pub fn from_pem(pem: &str, issuer: &str) -> Result<TokenIssuer, String> {
        let key = KeyPair::from_pem(pem).map_err(|e| e.to_string())?;
        if key.algorithm() != &rcgen::PKCS_ECDSA_P256_SHA256 {
            return Err("the service account key must be an ECDSA P-256 key".into());
        }
        let encoding = EncodingKey::from_ec_pem(pem.as_bytes()).map_err(|e| e.to_string())?;
        let raw = key.public_key_raw();
        if raw.len() != 65 || raw[0] != 4 {
            return Err("unexpected P-256 public key encoding".into());
        }
        let x = URL_SAFE_NO_PAD.encode(&raw[1..33]);
        let y = URL_SAFE_NO_PAD.encode(&raw[33..65]);
        let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
        // Upstream's key id: the unpadded base64url SHA-256 of the DER public key.
        let kid = URL_SAFE_NO_PAD.encode(ring::digest::digest(
            &ring::digest::SHA256,
            &key.subject_public_key_info(),
        ));
        let jwk = json!({
            "use": "sig",
            "kty": "EC",
            "kid": kid,
            "crv": "P-256",
            "alg": "ES256",
            "x": x,
            "y": y,
        });
        Ok(TokenIssuer {
            issuer: issuer.to_string(),
            audiences: vec![issuer.to_string()],
            kid,
            encoding,
            decoding,
            jwk,
        })
    }

    /// The issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The API server's audiences (tokens must name one of them).
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    fn header(&self) -> Header {
        let mut h = Header::new(Algorithm::ES256);
        h.kid = Some(self.kid.clone());
        h
    }

    /// The claims of a token for `subject` (upstream `token.Claims` plus the issuer), issued
    /// at `now` (seconds since the epoch) for `expiration_seconds`.
    pub fn claims(
        &self,
        subject: &TokenSubject,
        audiences: &[String],
        now: i64,
        expiration_seconds: i64,
    ) -> Claims {
        Claims {
            iss: self.issuer.clone(),
            sub: username(&subject.namespace, &subject.name),
            aud: audiences.to_vec(),
            exp: now.saturating_add(expiration_seconds),
            iat: now,
            nbf: now,
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: KubernetesClaim {
                namespace: subject.namespace.clone(),
                serviceaccount: Ref {
                    name: subject.name.clone(),
                    uid: subject.uid.clone(),
                },
                pod: subject.pod.clone(),
                secret: if subject.pod.is_some() {
                    None
                } else {
                    subject.secret.clone()
                },
                node: subject.pod.as_ref().and(subject.node.clone()),
            },
        }
    }

    /// Signs `claims`.
    pub fn sign(&self, claims: &Claims) -> Result<String, SignError> {
        jsonwebtoken::encode(&self.header(), claims, &self.encoding)
            .map_err(|e| SignError(e.to_string()))
    }

    /// A legacy token for the service account `(namespace, name, uid)` stored in Secret
    /// `secret` (upstream `LegacyClaims`).
    pub fn sign_legacy(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        secret: &str,
    ) -> Result<String, SignError> {
        let claims = LegacyClaims {
            iss: LEGACY_ISSUER.to_string(),
            sub: username(namespace, name),
            namespace: namespace.to_string(),
            secret_name: secret.to_string(),
            service_account_name: name.to_string(),
            service_account_uid: uid.to_string(),
        };
        jsonwebtoken::encode(&self.header(), &claims, &self.encoding)
            .map_err(|e| SignError(e.to_string()))
    }

    /// `/.well-known/openid-configuration` (upstream `openIDMetadata`).
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/openid/v1/jwks", self.issuer),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }

    /// `/openid/v1/jwks`: the public key set.
    pub fn jwks(&self) -> Value {
        json!({"keys": [self.jwk]})
    }

    /// Authenticates a bearer token as a service account (upstream's JWT authenticator with
    /// its validator); `None` for anything that does not fully check out, `now` in seconds
    /// since the epoch.
    pub fn authenticate(&self, registry: &Registry, token: &str, now: i64) -> Option<UserInfo> {
        // Only tokens that look like ours (a JWS whose payload names one of our issuers)
        // are checked further, as upstream's `hasCorrectIssuer`.
        let payload = token.split('.').nth(1)?;
        let unverified: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        match unverified.get("iss").and_then(Value::as_str)? {
            iss if iss == self.issuer => self.authenticate_bound(registry, token, now),
            LEGACY_ISSUER => self.authenticate_legacy(registry, token),
            _ => None,
        }
    }

    fn validation(&self, issuer: &str, audiences: Option<&[String]>) -> Validation {
        let mut v = Validation::new(Algorithm::ES256);
        v.leeway = LEEWAY_SECONDS;
        v.set_issuer(&[issuer]);
        match audiences {
            Some(a) => {
                v.set_audience(a);
                v.validate_nbf = true;
                v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
            }
            None => {
                v.validate_aud = false;
                v.validate_exp = false;
                v.set_required_spec_claims(&["iss", "sub"]);
            }
        }
        v
    }

    fn authenticate_bound(&self, registry: &Registry, token: &str, now: i64) -> Option<UserInfo> {
        let v = self.validation(&self.issuer, Some(&self.audiences));
        let claims = match jsonwebtoken::decode::<Claims>(token, &self.decoding, &v) {
            Ok(d) => d.claims,
            Err(e) => {
                tracing::debug!(error = %e, "service account token refused");
                return None;
            }
        };
        // jsonwebtoken checks exp/nbf against the system clock; check against `now` as well
        // (callers and tests pass the time they mean).
        let leeway = LEEWAY_SECONDS as i64;
        if claims.exp.saturating_add(leeway) < now || claims.nbf.saturating_sub(leeway) > now {
            return None;
        }
        let k = &claims.kubernetes;
        if k.namespace.is_empty() || k.serviceaccount.name.is_empty() {
            return None;
        }
        if claims.sub != username(&k.namespace, &k.serviceaccount.name) {
            return None;
        }
        let sa = live(
            registry,
            "serviceaccounts",
            &k.namespace,
            &k.serviceaccount.name,
            now,
        )?;
        if meta_str(&sa, "uid") != k.serviceaccount.uid {
            tracing::debug!("service account token refused: the service account was recreated");
            return None;
        }
        let mut extra = BTreeMap::new();
        if let Some(s) = &k.secret {
            let secret = live(registry, "secrets", &k.namespace, &s.name, now)?;
            if meta_str(&secret, "uid") != s.uid {
                return None;
            }
        }
        if let Some(p) = &k.pod {
            let pod = live(registry, "pods", &k.namespace, &p.name, now)?;
            if meta_str(&pod, "uid") != p.uid {
                tracing::debug!("service account token refused: the bound pod was recreated");
                return None;
            }
            extra.insert(
                "authentication.kubernetes.io/pod-name".to_string(),
                vec![p.name.clone()],
            );
            extra.insert(
                "authentication.kubernetes.io/pod-uid".to_string(),
                vec![p.uid.clone()],
            );
        }
        if let Some(n) = &k.node {
            extra.insert(
                "authentication.kubernetes.io/node-name".to_string(),
                vec![n.name.clone()],
            );
            if !n.uid.is_empty() {
                extra.insert(
                    "authentication.kubernetes.io/node-uid".to_string(),
                    vec![n.uid.clone()],
                );
            }
        }
        if !claims.jti.is_empty() {
            extra.insert(
                "authentication.kubernetes.io/credential-id".to_string(),
                vec![format!("JTI={}", claims.jti)],
            );
        }
        Some(UserInfo {
            name: claims.sub,
            uid: k.serviceaccount.uid.clone(),
            groups: groups(&k.namespace),
            extra,
        })
    }

    fn authenticate_legacy(&self, registry: &Registry, token: &str) -> Option<UserInfo> {
        let v = self.validation(LEGACY_ISSUER, None);
        let claims = jsonwebtoken::decode::<LegacyClaims>(token, &self.decoding, &v)
            .ok()?
            .claims;
        if claims.namespace.is_empty()
            || claims.service_account_name.is_empty()
            || claims.secret_name.is_empty()
            || claims.sub != username(&claims.namespace, &claims.service_account_name)
        {
            return None;
        }
        // The Secret must still exist and hold this very token.
        let secret = registry
            .get(info("secrets"), &claims.namespace, &claims.secret_name)
            .ok()?;
        if secret.pointer("/metadata/deletionTimestamp").is_some() {
            return None;
        }
        let stored = secret
            .pointer("/data/token")
            .and_then(Value::as_str)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())?;
        if stored != token.as_bytes() {
            return None;
        }
        let sa = registry
            .get(
                info("serviceaccounts"),
                &claims.namespace,
                &claims.service_account_name,
            )
            .ok()?;
        if sa.pointer("/metadata/deletionTimestamp").is_some()
            || meta_str(&sa, "uid") != claims.service_account_uid
        {
            return None;
        }
        let mut extra = BTreeMap::new();
        extra.insert(
            "authentication.kubernetes.io/credential-id".to_string(),
            vec![format!(
                "JTI={}",
                URL_SAFE_NO_PAD.encode(ring::digest::digest(
                    &ring::digest::SHA256,
                    token.as_bytes()
                ))
            )],
        );
        Some(UserInfo {
            name: claims.sub,
            uid: claims.service_account_uid,
            groups: groups(&claims.namespace),
            extra,
        })
    }
}

fn info(plural: &str) -> &'static api::registry::ResourceInfo {
    api::registry::resources()
        .iter()
        .find(|i| i.group.is_empty() && i.plural == plural)
        .expect("the resource table serves the core kinds")
}

/// The object `ns/name` of core `plural`, unless it is gone or was deleted more than the
/// grace period before `now`.
fn live(
    registry: &Registry,
    plural: &str,
    ns: &str,
    name: &str,
    now: i64,
) -> Option<std::sync::Arc<Value>> {
    let obj = registry.get(info(plural), ns, name).ok()?;
    if let Some(ts) = obj
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
    {
        let deleted = ts
            .parse::<k8s_openapi::jiff::Timestamp>()
            .ok()
            .map(|t| t.as_second());
        match deleted {
            Some(d) if d + DELETION_GRACE_SECONDS >= now => {}
            _ => {
                tracing::debug!(
                    plural,
                    ns,
                    name,
                    "service account token refused: object deleted"
                );
                return None;
            }
        }
    }
    Some(obj)
}

/// Seconds since the epoch now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests;
