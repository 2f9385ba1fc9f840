//! Bootstrap tokens (upstream `plugin/pkg/auth/authenticator/token/bootstrap` and kubeadm's
//! `bootstraptoken`): a token `<id>.<secret>` (`[a-z0-9]{6}.[a-z0-9]{16}`) lives in the
//! `kube-system` Secret `bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`; it
//! authenticates as `system:bootstrap:<id>` in `system:bootstrappers` (and the Secret's
//! `auth-extra-groups`) while unexpired and marked for authentication. Nodes join with one
//! (see the approver and the agent's join). Also the CA hash nodes pin the cluster CA with
//! (kubeadm's `sha256:<hex of the SubjectPublicKeyInfo>`).
//!
//! Start at [`authenticate`] and [`secret`].

use base64::Engine;
use rand::Rng;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::registry::Registry;
use crate::user::UserInfo;

/// The Secret type (upstream `SecretTypeBootstrapToken`).
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The Secrets' name prefix.
pub const SECRET_PREFIX: &str = "bootstrap-token-";
/// The namespace holding them.
pub const NAMESPACE: &str = "kube-system";
/// The group of every bootstrap token user.
pub const GROUP: &str = "system:bootstrappers";
/// kubeadm's extra group of the tokens it makes (and binds the node-joining roles to).
pub const DEFAULT_NODE_TOKEN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";
/// The user name prefix.
pub const USER_PREFIX: &str = "system:bootstrap:";

const ID_LEN: usize = 6;
const SECRET_LEN: usize = 16;
const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn valid_part(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| CHARS.contains(&b))
}

/// A token's (id, secret), if it has the form `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let (id, secret) = token.split_once('.')?;
    (valid_part(id, ID_LEN) && valid_part(secret, SECRET_LEN)).then_some((id, secret))
}

/// A new random token (id, secret).
pub fn generate() -> (String, String) {
    let mut rng = rand::rng();
    let mut part = |n: usize| -> String {
        (0..n)
            .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
            .collect()
    };
    (part(ID_LEN), part(SECRET_LEN))
}

/// The Secret of token `id`/`secret` (kubeadm's `BootstrapToken.ToSecret`): usable for
/// authentication and signing, in [`DEFAULT_NODE_TOKEN_GROUP`], expiring at `expires`
/// (never when `None`).
pub fn secret(
    id: &str,
    token_secret: &str,
    expires: Option<OffsetDateTime>,
    description: Option<&str>,
) -> Value {
    let b64 = |s: &str| Value::String(base64::engine::general_purpose::STANDARD.encode(s));
    let mut data = serde_json::Map::new();
    data.insert("token-id".into(), b64(id));
    data.insert("token-secret".into(), b64(token_secret));
    if let Some(d) = description {
        data.insert("description".into(), b64(d));
    }
    if let Some(t) = expires {
        data.insert("expiration".into(), b64(&rfc3339(t)));
    }
    data.insert("usage-bootstrap-authentication".into(), b64("true"));
    data.insert("usage-bootstrap-signing".into(), b64("true"));
    data.insert("auth-extra-groups".into(), b64(DEFAULT_NODE_TOKEN_GROUP));
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": format!("{SECRET_PREFIX}{id}"), "namespace": NAMESPACE},
        "type": SECRET_TYPE,
        "data": data,
    })
}

fn rfc3339(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A Secret's `data` key, decoded.
fn data(secret: &Value, key: &str) -> Option<String> {
    let b = secret.get("data")?.get(key)?.as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b).ok()?;
    String::from_utf8(bytes).ok()
}

/// Whether a token Secret has expired at `now` (upstream `bootstrapsecretutil.HasExpired`): an
/// `expiration` that does not parse counts as expired.
pub fn expired(secret: &Value, now: OffsetDateTime) -> bool {
    match data(secret, "expiration") {
        None => false,
        Some(s) => {
            match OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339) {
                Ok(t) => t <= now,
                Err(_) => true,
            }
        }
    }
}

/// When a token Secret expires (None: never, or unparseable).
pub fn expiration(secret: &Value) -> Option<OffsetDateTime> {
    let s = data(secret, "expiration")?;
    OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).ok()
}

/// Upstream `ValidateBootstrapGroupName`: `^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$`.
pub fn valid_group(g: &str) -> bool {
    g.strip_prefix("system:bootstrappers:").is_some_and(|rest| {
        (1..=256).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b':' || b == b'-')
            && rest
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    })
}

fn secrets_info() -> Option<&'static api::registry::ResourceInfo> {
    api::registry::resources()
        .iter()
        .find(|i| i.group.is_empty() && i.plural == "secrets")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The user of bootstrap `token` at `now`, or `None` (malformed, unknown, expired, deleted,
/// not for authentication: upstream logs why at debug level and the request is a 401).
pub fn authenticate(registry: &Registry, token: &str, now: OffsetDateTime) -> Option<UserInfo> {
    let (id, token_secret) = parse(token)?;
    let name = format!("{SECRET_PREFIX}{id}");
    let secret = registry.get(secrets_info()?, NAMESPACE, &name).ok()?;
    let refuse = |why: &str| {
        tracing::debug!(secret = %name, "bootstrap token refused: {why}");
        None
    };
    if secret.pointer("/metadata/deletionTimestamp").is_some() {
        return refuse("the secret is being deleted");
    }
    if secret.get("type").and_then(Value::as_str) != Some(SECRET_TYPE) {
        return refuse("the secret has the wrong type");
    }
    let stored = data(&secret, "token-secret").unwrap_or_default();
    if !constant_time_eq(stored.as_bytes(), token_secret.as_bytes()) {
        return refuse("the secret does not match");
    }
    if data(&secret, "token-id").as_deref() != Some(id) {
        return refuse("the token id does not match");
    }
    if expired(&secret, now) {
        return refuse("the token has expired");
    }
    if data(&secret, "usage-bootstrap-authentication").as_deref() != Some("true") {
        return refuse("the token is not for authentication");
    }
    let mut groups = vec![GROUP.to_string()];
    if let Some(extra) = data(&secret, "auth-extra-groups") {
        for g in extra.split(',').map(str::trim).filter(|g| !g.is_empty()) {
            if !valid_group(g) {
                return refuse("the secret has an invalid auth-extra-groups value");
            }
            if !groups.iter().any(|x| x == g) {
                groups.push(g.to_string());
            }
        }
    }
    groups.push(crate::x509::ALL_AUTHENTICATED.to_string());
    Some(UserInfo {
        name: format!("{USER_PREFIX}{id}"),
        uid: String::new(),
        groups,
        extra: Default::default(),
    })
}

/// kubeadm's CA hash: `sha256:` and the hex SHA-256 of the certificate's
/// SubjectPublicKeyInfo (DER).
pub fn ca_cert_hash(cert_der: &[u8]) -> Result<String, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|e| e.to_string())?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    let digest = ring::digest::digest(&ring::digest::SHA256, spki);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("sha256:{hex}"))
}

#[cfg(test)]
mod tests;
