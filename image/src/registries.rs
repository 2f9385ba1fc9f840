//! A node's registry configuration in the format of k3s's `registries.yaml`: `mirrors` (per
//! registry host, or `"*"` for every registry: an `endpoint` list tried in order before the
//! registry itself, and `rewrite` rules for the repository path at those endpoints) and
//! `configs` (per endpoint `host[:port]`: `auth` and `tls`).
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000"]
//!     rewrite: {"^library/(.*)": "mirrored/$1"}
//! configs:
//!   "127.0.0.1:5000":
//!     auth: {username: u, password: p}      # or auth: base64(user:pass)
//!     tls: {ca_file: /etc/ssl/private-ca.pem}
//! ```
//!
//! As in k3s, the registry's own endpoint is always tried last and rewrites never apply to it,
//! and an `http://` endpoint is plain HTTP. `tls` applies to that endpoint only, as containerd
//! applies k3s's configs: `ca_file` is trusted besides the system's roots, `cert_file` and
//! `key_file` (together) are the client certificate, `insecure_skip_verify: true` accepts any
//! server certificate. `identitytoken` is refused at start rather than silently ignored. [`Registries::check`] is the validation; [`Registries::apply`] turns
//! it into a pull's [`PullOptions`]. The file is parsed by the caller (the YAML reader lives
//! in the binary); the field names are those of the YAML.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use serde::Deserialize;

use crate::keyring::Credential;
use crate::pull::PullOptions;
use crate::reference::Reference;

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    /// Registry host (or `*`) → its mirror endpoints.
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    /// Endpoint `host[:port]` → auth and TLS.
    #[serde(default)]
    pub configs: BTreeMap<String, RegistryConfig>,
}

/// `mirrors.<registry>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    /// Endpoint URLs (`http://…` or `https://…`), tried in order.
    #[serde(default)]
    pub endpoint: Vec<String>,
    /// Regular expression on the repository path → replacement (`$1`).
    #[serde(default)]
    pub rewrite: BTreeMap<String, String>,
}

/// `configs.<host>`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Credentials for the endpoint.
    pub auth: Option<AuthConfig>,
    /// TLS settings for the endpoint.
    pub tls: Option<TlsConfig>,
}

/// `configs.<host>.auth`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// `base64(username:password)`, as in a Docker config.
    pub auth: Option<String>,
    /// An OAuth2 refresh token (not supported).
    pub identitytoken: Option<String>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `configs.<host>.tls`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// A PEM bundle of CA certificates to trust.
    pub ca_file: Option<PathBuf>,
    /// A PEM client certificate (chain) presented to the endpoint.
    pub cert_file: Option<PathBuf>,
    /// Its PEM private key.
    pub key_file: Option<PathBuf>,
    /// Accept any server certificate.
    pub insecure_skip_verify: Option<bool>,
}

/// One endpoint's TLS files, each with its field (`configs.reg:5000.tls.ca_file`).
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// `ca_file`.
    pub ca: Option<(String, PathBuf)>,
    /// `cert_file`.
    pub cert: Option<(String, PathBuf)>,
    /// `key_file`.
    pub key: Option<(String, PathBuf)>,
    /// `insecure_skip_verify: true`.
    pub insecure_skip_verify: bool,
}

/// A field of the file that is wrong: its path (`configs.reg:5000.auth.auth`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct ConfigError {
    /// Where, as a dotted path of the YAML's keys.
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

fn bad(field: String, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        problem: problem.into(),
    }
}

impl AuthConfig {
    fn credential(&self, field: &str) -> Result<Credential, ConfigError> {
        if self.identitytoken.is_some() {
            return Err(bad(
                format!("{field}.identitytoken"),
                "identity tokens are not supported: give username and password",
            ));
        }
        if let Some(a) = &self.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| bad(format!("{field}.auth"), "not base64 of username:password"))?;
            let (u, p) = decoded.split_once(':').ok_or_else(|| {
                bad(
                    format!("{field}.auth"),
                    "the decoded value has no ':' between username and password",
                )
            })?;
            return Ok(Credential {
                username: u.to_string(),
                password: p.to_string(),
            });
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) => Ok(Credential {
                username: u.clone(),
                password: p.clone(),
            }),
            (Some(_), None) => Err(bad(format!("{field}.password"), "missing")),
            (None, _) => Err(bad(
                format!("{field}.username"),
                "missing (give username and password, or auth)",
            )),
        }
    }
}

impl Registries {
    /// Every problem with the file that can be seen without reading other files; the first
    /// one is returned.
    pub fn check(&self) -> Result<(), ConfigError> {
        for (reg, m) in &self.mirrors {
            for (i, e) in m.endpoint.iter().enumerate() {
                let field = format!("mirrors.{reg}.endpoint[{i}]");
                let u = url::Url::parse(e)
                    .map_err(|err| bad(field.clone(), format!("{e:?}: {err}")))?;
                if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
                    return Err(bad(
                        field,
                        format!("{e:?} must be an http:// or https:// URL"),
                    ));
                }
            }
            for re in m.rewrite.keys() {
                regex::Regex::new(re).map_err(|err| {
                    bad(
                        format!("mirrors.{reg}.rewrite.{re}"),
                        format!("not a regular expression: {err}"),
                    )
                })?;
            }
        }
        for (host, c) in &self.configs {
            if let Some(a) = &c.auth {
                a.credential(&format!("configs.{host}.auth"))?;
            }
            if let Some(t) = &c.tls {
                let field = format!("configs.{host}.tls");
                match (&t.cert_file, &t.key_file) {
                    (Some(_), None) => {
                        return Err(bad(format!("{field}.key_file"), "required with cert_file"));
                    }
                    (None, Some(_)) => {
                        return Err(bad(format!("{field}.cert_file"), "required with key_file"));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// The endpoints with TLS settings: `host[:port]` → the files to read (with their
    /// fields, for errors) and whether verification is skipped.
    pub fn tls_files(&self) -> Vec<(String, TlsFiles)> {
        self.configs
            .iter()
            .filter_map(|(h, c)| {
                let t = c.tls.as_ref()?;
                let field = |f: &str, p: &Option<PathBuf>| {
                    p.clone().map(|p| (format!("configs.{h}.tls.{f}"), p))
                };
                Some((
                    h.clone(),
                    TlsFiles {
                        ca: field("ca_file", &t.ca_file),
                        cert: field("cert_file", &t.cert_file),
                        key: field("key_file", &t.key_file),
                        insecure_skip_verify: t.insecure_skip_verify == Some(true),
                    },
                ))
            })
            .collect()
    }

    /// Adds what this file says about `reference`'s registry to `opts`: mirror endpoints
    /// (its own entry, else `"*"`) before any already there, rewrites, endpoint credentials,
    /// and plain HTTP for a registry whose own host is listed with an `http://` endpoint.
    /// Call [`Registries::check`] first: entries that do not check are skipped here.
    pub fn apply(&self, reference: &Reference, opts: &mut PullOptions) {
        let domain = reference.domain();
        if let Some(m) = self.mirrors.get(domain).or_else(|| self.mirrors.get("*")) {
            let mut mirrors = m.endpoint.clone();
            // The registry's own host as an http:// endpoint means "this registry is plain
            // HTTP" (k3s's way of configuring an insecure registry).
            mirrors.retain(|e| {
                let own = e.trim_end_matches('/') == format!("http://{domain}");
                if own {
                    opts.insecure_registries.push(domain.to_string());
                }
                !own
            });
            mirrors.append(&mut opts.mirrors);
            opts.mirrors = mirrors;
            for (re, to) in &m.rewrite {
                if let Ok(re) = regex::Regex::new(re) {
                    opts.rewrites.push((re, to.clone()));
                }
            }
        }
        for (host, c) in &self.configs {
            if let Some(Ok(cred)) = c.auth.as_ref().map(|a| a.credential(host)) {
                opts.endpoint_credentials.insert(host.clone(), cred);
            }
            // A registry configured with TLS is reached over HTTPS, on loopback too.
            if c.tls.is_some() && host == domain {
                opts.tls_registries.push(host.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Registries {
        serde_json::from_value(v).expect("parse")
    }

    #[test]
    fn mirrors_rewrites_and_auth_apply_as_in_k3s() {
        let r = parse(serde_json::json!({
            "mirrors": {
                "docker.io": {"endpoint": ["http://127.0.0.1:5000", "https://m.example"],
                              "rewrite": {"^library/(.*)$": "mirrored/$1"}},
                "reg.example:5000": {"endpoint": ["http://reg.example:5000"]},
                "*": {"endpoint": ["https://any.example"]}
            },
            "configs": {
                "m.example": {"auth": {"username": "u", "password": "p"}},
                "127.0.0.1:5000": {"auth": {"auth": "dXNlcjpwYXNz"}}
            }
        }));
        assert_eq!(r.check(), Ok(()));
        let mut o = PullOptions::default();
        r.apply(&Reference::parse_docker_ref("busybox").unwrap(), &mut o);
        assert_eq!(o.mirrors, ["http://127.0.0.1:5000", "https://m.example"]);
        assert_eq!(o.rewrites.len(), 1);
        assert_eq!(o.endpoint_credentials["127.0.0.1:5000"].username, "user");
        assert_eq!(o.endpoint_credentials["127.0.0.1:5000"].password, "pass");
        assert_eq!(o.endpoint_credentials["m.example"].username, "u");
        // The registry's own host over http: plain HTTP for it, no mirror.
        let mut o = PullOptions::default();
        r.apply(
            &Reference::parse_docker_ref("reg.example:5000/a:1").unwrap(),
            &mut o,
        );
        assert!(o.mirrors.is_empty());
        assert_eq!(o.insecure_registries, ["reg.example:5000"]);
        // Any other registry: the "*" entry.
        let mut o = PullOptions::default();
        r.apply(
            &Reference::parse_docker_ref("quay.io/a/b:1").unwrap(),
            &mut o,
        );
        assert_eq!(o.mirrors, ["https://any.example"]);
        assert!(o.tls_registries.is_empty());
        // A loopback registry with TLS settings is HTTPS.
        let r =
            parse(serde_json::json!({"configs": {"127.0.0.1:5000": {"tls": {"ca_file": "/c"}}}}));
        let mut o = PullOptions::default();
        r.apply(
            &Reference::parse_docker_ref("127.0.0.1:5000/a:1").unwrap(),
            &mut o,
        );
        assert_eq!(o.tls_registries, ["127.0.0.1:5000"]);
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                serde_json::json!({"mirrors": {"docker.io": {"endpoint": ["ftp://x"]}}}),
                "mirrors.docker.io.endpoint[0]",
            ),
            (
                serde_json::json!({"mirrors": {"docker.io": {"endpoint": ["not a url"]}}}),
                "mirrors.docker.io.endpoint[0]",
            ),
            (
                serde_json::json!({"mirrors": {"docker.io": {"rewrite": {"(": "x"}}}}),
                "mirrors.docker.io.rewrite.(",
            ),
            (
                serde_json::json!({"configs": {"r:1": {"auth": {"auth": "%%%"}}}}),
                "configs.r:1.auth.auth",
            ),
            (
                serde_json::json!({"configs": {"r:1": {"auth": {"username": "u"}}}}),
                "configs.r:1.auth.password",
            ),
            (
                serde_json::json!({"configs": {"r:1": {"auth": {"identitytoken": "t"}}}}),
                "configs.r:1.auth.identitytoken",
            ),
            (
                serde_json::json!({"configs": {"r:1": {"tls": {"cert_file": "/c"}}}}),
                "configs.r:1.tls.key_file",
            ),
            (
                serde_json::json!({"configs": {"r:1": {"tls": {"key_file": "/k"}}}}),
                "configs.r:1.tls.cert_file",
            ),
        ];
        for (v, field) in cases {
            let err = parse(v.clone()).check().unwrap_err();
            assert_eq!(err.field, field, "{v}: {err}");
        }
        // Client certificates and skipping verification are per endpoint.
        let r = parse(serde_json::json!({"configs": {
            "r:1": {"tls": {"cert_file": "/c", "key_file": "/k", "ca_file": "/ca"}},
            "s": {"tls": {"insecure_skip_verify": true}},
            "t": {"auth": {"username": "u", "password": "p"}},
        }}));
        r.check().unwrap();
        let files = r.tls_files();
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[0].0, "r:1");
        assert_eq!(
            files[0].1.key,
            Some(("configs.r:1.tls.key_file".into(), "/k".into()))
        );
        assert!(!files[0].1.insecure_skip_verify);
        assert_eq!(files[1].0, "s");
        assert!(files[1].1.insecure_skip_verify && files[1].1.ca.is_none());
        // Unknown keys are refused by the parser.
        assert!(serde_json::from_value::<Registries>(serde_json::json!({"mirror": {}})).is_err());
        assert!(
            serde_json::from_value::<Registries>(
                serde_json::json!({"configs": {"r": {"tls": {"ca": "/x"}}}})
            )
            .is_err()
        );
    }
}
