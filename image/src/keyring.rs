//! Registry credentials the way the kubelet gets them from imagePullSecrets: the data of
//! `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`) and `kubernetes.io/dockercfg`
//! (`.dockercfg`) Secrets parsed, then matched to an image's repository as
//! pkg/credentialprovider's `BasicDockerKeyring` does (host globs per dot-separated part, equal
//! ports, path prefixes, more specific keys first, Docker Hub's `index.docker.io` as the
//! fallback for Hub images).

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;

use crate::error::{Error, Result};

/// A username and password for a registry (Basic, or exchanged for a Bearer token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    /// The user name.
    pub username: String,
    /// The password or access token.
    pub password: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: BTreeMap<String, Entry>,
}

fn entry_credential(loc: &str, e: Entry) -> Result<Credential> {
    if e.auth.is_empty() {
        return Ok(Credential {
            username: e.username,
            password: e.password,
        });
    }
    // decodeDockerConfigFieldAuth: base64(username:password); overrides the plain fields.
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(e.auth.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| Error::Format(format!("registry {loc:?}: auth field is not base64")))?;
    let Some((u, p)) = decoded.split_once(':') else {
        return Err(Error::Format(format!(
            "registry {loc:?}: unable to parse auth field, must be formatted as base64(username:password)"
        )));
    };
    Ok(Credential {
        username: u.to_string(),
        password: p.trim_matches('\0').to_string(),
    })
}

/// A set of credentials keyed as the kubelet keys them.
#[derive(Debug, Default, Clone)]
pub struct Keyring {
    // key → credentials; iterated reverse-sorted so longer, more specific keys match first.
    creds: BTreeMap<String, Vec<Credential>>,
}

impl Keyring {
    /// An empty keyring (anonymous pulls).
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Adds the `.dockerconfigjson` of a `kubernetes.io/dockerconfigjson` Secret.
    pub fn add_docker_config_json(&mut self, data: &[u8]) -> Result<()> {
        let cfg: ConfigJson = serde_json::from_slice(data)
            .map_err(|e| Error::Format(format!("invalid .dockerconfigjson: {e}")))?;
        for (loc, e) in cfg.auths {
            let c = entry_credential(&loc, e)?;
            self.add(&loc, c);
        }
        Ok(())
    }

    /// Adds the `.dockercfg` of a `kubernetes.io/dockercfg` Secret (the legacy map of
    /// registry → entry).
    pub fn add_docker_cfg(&mut self, data: &[u8]) -> Result<()> {
        let cfg: BTreeMap<String, Entry> = serde_json::from_slice(data)
            .map_err(|e| Error::Format(format!("invalid .dockercfg: {e}")))?;
        for (loc, e) in cfg {
            let c = entry_credential(&loc, e)?;
            self.add(&loc, c);
        }
        Ok(())
    }

    /// Adds one credential for a registry location (`host[:port][/path]`, a scheme and a
    /// `/v1/` or `/v2/` prefix allowed), keyed as `BasicDockerKeyring.Add` keys it.
    pub fn add(&mut self, loc: &str, cred: Credential) {
        let value = if loc.starts_with("https://") || loc.starts_with("http://") {
            loc.to_string()
        } else {
            format!("https://{loc}")
        };
        let Ok(parsed) = url::Url::parse(&value) else {
            tracing::warn!(entry = loc, "entry in dockercfg invalid, ignoring");
            return;
        };
        let host = host_port(&parsed);
        let mut path = parsed.path().to_string();
        if path.starts_with("/v2/") || path.starts_with("/v1/") {
            path = path[3..].to_string();
        }
        let key = if !path.is_empty() && path != "/" {
            format!("{host}{path}")
        } else {
            host
        };
        self.creds.entry(key).or_default().push(cred);
    }

    /// The credentials for a repository (`docker.io/library/nginx`, `host:5000/team/app`), in
    /// the kubelet's order; empty means pull anonymously.
    pub fn lookup(&self, repo: &str) -> Vec<Credential> {
        let mut out = Vec::new();
        for (k, v) in self.creds.iter().rev() {
            if urls_match(k, repo) {
                out.extend(v.iter().cloned());
            }
        }
        if out.is_empty()
            && is_default_registry_match(repo)
            && let Some(c) = self.creds.get("index.docker.io")
        {
            out.extend(c.iter().cloned());
        }
        out
    }
}

fn host_port(u: &url::Url) -> String {
    let host = match u.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

fn is_default_registry_match(image: &str) -> bool {
    let mut parts = image.splitn(2, '/');
    let first = parts.next().unwrap_or("");
    if first.is_empty() {
        return false;
    }
    if parts.next().is_none() {
        return true;
    }
    if first == "docker.io" || first == "index.docker.io" {
        return true;
    }
    !first.contains(['.', ':'])
}

/// Go's `url.Parse("https://" + s)` split into (host, port, path), as `SplitURL` uses them.
fn split_schemeless(s: &str) -> (Vec<String>, String, String) {
    let (hostport, path) = match s.find('/') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    // net.SplitHostPort: "[v6]:port", "host:port"; anything else has no port.
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        match rest.split_once("]:") {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (hostport.to_string(), String::new()),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h.to_string(), p.to_string()),
            _ => (hostport.to_string(), String::new()),
        }
    };
    (
        host.to_lowercase().split('.').map(str::to_string).collect(),
        port,
        path.to_string(),
    )
}

/// `URLsMatchStr(glob, target)`.
pub fn urls_match(glob: &str, target: &str) -> bool {
    let (gparts, gport, gpath) = split_schemeless(glob);
    let (tparts, tport, tpath) = split_schemeless(target);
    if gport != tport || gparts.len() != tparts.len() || !tpath.starts_with(&gpath) {
        return false;
    }
    gparts
        .iter()
        .zip(&tparts)
        .all(|(g, t)| glob_match(g.as_bytes(), t.as_bytes()))
}

/// Go's `filepath.Match` for one host label (`*`, `?`, `[...]` with ranges and `^`).
fn glob_match(p: &[u8], s: &[u8]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(b'*') => (0..=s.len()).any(|i| glob_match(&p[1..], &s[i..])),
        Some(b'?') => !s.is_empty() && glob_match(&p[1..], &s[1..]),
        Some(b'[') => {
            let Some(end) = p.iter().position(|&b| b == b']') else {
                return false;
            };
            let Some(&c) = s.first() else { return false };
            let mut class = &p[1..end];
            let negate = class.first() == Some(&b'^');
            if negate {
                class = &class[1..];
            }
            let mut hit = false;
            let mut i = 0;
            while i < class.len() {
                if i + 2 < class.len() && class[i + 1] == b'-' {
                    hit |= class[i] <= c && c <= class[i + 2];
                    i += 3;
                } else {
                    hit |= class[i] == c;
                    i += 1;
                }
            }
            hit != negate && glob_match(&p[end + 1..], &s[1..])
        }
        Some(&b) => s.first() == Some(&b) && glob_match(&p[1..], &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cred(u: &str) -> Credential {
        Credential {
            username: u.into(),
            password: "p".into(),
        }
    }

    /// Cases from pkg/credentialprovider's keyring_test.go (TestURLsMatch and the keyring
    /// lookups).
    #[test]
    fn urls_match_upstream_cases() {
        let cases = [
            ("*.kubernetes.io", "prefix.kubernetes.io", true),
            ("prefix.*.io", "prefix.kubernetes.io", true),
            ("prefix.kubernetes.*", "prefix.kubernetes.io", true),
            ("*-good.kubernetes.io", "prefix-good.kubernetes.io", true),
            ("*.kubernetes.io", "kubernetes.io", false),
            ("*.*.kubernetes.io", "prefix.kubernetes.io", false),
            ("prefix.kubernetes.io:8080", "prefix.kubernetes.io", false),
            ("prefix.kubernetes.io", "prefix.kubernetes.io:8080", false),
            ("*.kubernetes.io:8080", "prefix.kubernetes.io:8080", true),
            (
                "prefix.kubernetes.io/foo",
                "prefix.kubernetes.io/foo/bar",
                true,
            ),
            (
                "prefix.kubernetes.io/foo/bar",
                "prefix.kubernetes.io/foo",
                false,
            ),
            (
                "prefix.kubernetes.io/foo",
                "prefix.kubernetes.io/bar",
                false,
            ),
            ("[1-9].kubernetes.io", "5.kubernetes.io", true),
            ("[^a].kubernetes.io", "a.kubernetes.io", false),
            ("127.0.0.1:5000", "127.0.0.1:5000/team/app", true),
        ];
        for (glob, target, want) in cases {
            assert_eq!(urls_match(glob, target), want, "{glob} vs {target}");
        }
    }

    #[test]
    fn lookup_prefers_specific_keys_and_falls_back_to_docker_hub() {
        let mut k = Keyring::new();
        k.add("quay.io", cred("host"));
        k.add("quay.io/coreos", cred("path"));
        k.add("https://index.docker.io/v1/", cred("hub"));
        let users =
            |r: &str| -> Vec<String> { k.lookup(r).into_iter().map(|c| c.username).collect() };
        assert_eq!(users("quay.io/coreos/etcd"), ["path", "host"]);
        assert_eq!(users("quay.io/other/etcd"), ["host"]);
        assert_eq!(users("docker.io/library/nginx"), ["hub"]);
        assert_eq!(users("user/app"), ["hub"]);
        assert!(users("gcr.io/x/y").is_empty());
    }

    #[test]
    fn parses_both_secret_formats() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:x");
        let json = format!(
            r#"{{"auths":{{"127.0.0.1:5000":{{"auth":"{auth}"}},"reg.example":{{"username":"bob","password":"pw"}}}}}}"#
        );
        let mut k = Keyring::new();
        k.add_docker_config_json(json.as_bytes()).unwrap();
        let c = k.lookup("127.0.0.1:5000/team/app");
        assert_eq!(c[0].username, "alice");
        assert_eq!(c[0].password, "s3cret:x");
        assert_eq!(k.lookup("reg.example/a")[0].username, "bob");

        let mut k = Keyring::new();
        k.add_docker_cfg(
            br#"{"https://reg.example/v1/":{"username":"carol","password":"pw","email":"c@x"}}"#,
        )
        .unwrap();
        assert_eq!(k.lookup("reg.example/a")[0].username, "carol");

        let mut k = Keyring::new();
        let err = k
            .add_docker_config_json(br#"{"auths":{"r":{"auth":"bm9jb2xvbg=="}}}"#)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("must be formatted as base64(username:password)")
        );
        assert!(k.add_docker_config_json(b"not json").is_err());
    }
}
