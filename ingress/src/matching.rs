//! Host and path matching as the Ingress API defines it (`networking.k8s.io/v1`
//! `IngressRule.host`, `HTTPIngressPath.pathType`, and the examples table of the Kubernetes
//! Ingress documentation): exact hosts, `*.` wildcards covering exactly one DNS label, hosts
//! compared case-insensitively; `Exact` paths compared as strings, `Prefix` paths element by
//! element (`/foo` matches `/foo`, `/foo/`, `/foo/bar`, never `/foobar`; a trailing slash is
//! ignored), `ImplementationSpecific` as `Prefix`. Pure functions; the table in
//! [`crate::table`] applies them.

/// How a path of a rule matches a request path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathKind {
    /// `Exact`: the whole path, case-sensitively.
    Exact,
    /// `Prefix` (and `ImplementationSpecific`): element-wise prefix.
    Prefix,
}

impl PathKind {
    /// From `pathType` (anything but `Exact` is matched as a prefix: `ImplementationSpecific`
    /// is ours to define, and we define it as `Prefix`).
    pub fn parse(path_type: &str) -> PathKind {
        if path_type == "Exact" {
            PathKind::Exact
        } else {
            PathKind::Prefix
        }
    }
}

/// A rule's path, ready to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRule {
    /// How it matches.
    pub kind: PathKind,
    /// The path; for `Prefix` without its trailing slashes (`/` stays `/`... as the empty
    /// string: it matches every path).
    pub path: String,
}

impl PathRule {
    /// A rule for `path` (`/` when absent, as for `ImplementationSpecific` without a path).
    pub fn new(kind: PathKind, path: Option<&str>) -> PathRule {
        let path = path.filter(|p| !p.is_empty()).unwrap_or("/");
        let path = match kind {
            PathKind::Exact => path.to_string(),
            PathKind::Prefix => path.trim_end_matches('/').to_string(),
        };
        PathRule { kind, path }
    }

    /// Whether `request` (the request's path, without the query) matches.
    pub fn matches(&self, request: &str) -> bool {
        match self.kind {
            PathKind::Exact => request == self.path,
            PathKind::Prefix => {
                // Element-wise: the rule's elements are a prefix of the request's, which holds
                // when the request starts with the rule's path and continues (if at all) at an
                // element boundary.
                match request.strip_prefix(self.path.as_str()) {
                    Some(rest) => rest.is_empty() || rest.starts_with('/'),
                    None => false,
                }
            }
        }
    }

    /// The length that ranks matches: longer wins (a prefix's trailing slash does not count).
    pub fn rank_len(&self) -> usize {
        self.path.len()
    }
}

/// A rule's host, ready to match.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HostRule {
    /// An exact host, lower-cased.
    Exact(String),
    /// `*.suffix`: the suffix (lower-cased, without `*.`); matches one more label.
    Wildcard(String),
}

impl HostRule {
    /// From `rules[].host` (`None` for an empty host: the rule matches every host).
    pub fn parse(host: &str) -> Option<HostRule> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return None;
        }
        Some(match host.strip_prefix("*.") {
            Some(suffix) => HostRule::Wildcard(suffix.to_string()),
            None => HostRule::Exact(host),
        })
    }

    /// Whether `host` (normalized by [`normalize_host`]) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostRule::Exact(h) => h == host,
            HostRule::Wildcard(suffix) => match host.split_once('.') {
                Some((label, rest)) => !label.is_empty() && rest == suffix,
                None => false,
            },
        }
    }
}

/// Why a request's host is refused (400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadHost;

/// The host of a `Host` header or `:authority`, lower-cased, without port, trailing dot or
/// IPv6 brackets; refuses what is not a host name or address (as nginx answers "client sent
/// invalid host header" with 400).
pub fn normalize_host(authority: &str) -> Result<String, BadHost> {
    let a = authority.trim();
    if a.is_empty() || a.len() > 255 + 6 {
        return Err(BadHost);
    }
    if a.contains('@') {
        return Err(BadHost);
    }
    let host = if let Some(rest) = a.strip_prefix('[') {
        // [v6]:port
        let (inside, after) = rest.split_once(']').ok_or(BadHost)?;
        if !(after.is_empty() || valid_port(after.strip_prefix(':').ok_or(BadHost)?)) {
            return Err(BadHost);
        }
        inside.parse::<std::net::Ipv6Addr>().map_err(|_| BadHost)?;
        return Ok(inside.to_ascii_lowercase());
    } else {
        match a.rsplit_once(':') {
            Some((h, port)) => {
                if !valid_port(port) {
                    return Err(BadHost);
                }
                h
            }
            None => a,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.starts_with('.') || host.contains("..") {
        return Err(BadHost);
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(BadHost);
    }
    Ok(host.to_ascii_lowercase())
}

fn valid_port(p: &str) -> bool {
    // An empty port (`host:`) is allowed by RFC 3986's grammar.
    p.is_empty() || (p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples table of the Kubernetes Ingress documentation ("Examples" under "Path
    /// types"), one rule at a time, plus the element-wise cases of the API reference.
    #[test]
    fn path_types_as_documented() {
        use PathKind::{Exact, Prefix};
        let cases: &[(PathKind, &str, &str, bool)] = &[
            (Prefix, "/", "/", true),
            (Prefix, "/", "/anything/at/all", true),
            (Exact, "/foo", "/foo", true),
            (Exact, "/foo", "/bar", false),
            (Exact, "/foo", "/foo/", false),
            (Exact, "/foo/", "/foo", false),
            (Prefix, "/foo", "/foo", true),
            (Prefix, "/foo", "/foo/", true),
            (Prefix, "/foo/", "/foo", true),
            (Prefix, "/foo/", "/foo/", true),
            (Prefix, "/aaa/bb", "/aaa/bbb", false),
            (Prefix, "/aaa/bbb", "/aaa/bbb", true),
            (Prefix, "/aaa/bbb/", "/aaa/bbb", true),
            (Prefix, "/aaa/bbb", "/aaa/bbb/", true),
            (Prefix, "/aaa/bbb", "/aaa/bbb/ccc", true),
            (Prefix, "/aaa/bbb", "/aaa/bbbxyz", false),
            (Prefix, "/aaa", "/ccc", false),
            (Prefix, "/foo/bar", "/foo/bar/baz", true),
            (Prefix, "/foo/bar", "/foo/barbaz", false),
            (Prefix, "/foo", "/foobar", false),
            // Case-sensitive.
            (Exact, "/foo", "/FOO", false),
            (Prefix, "/foo", "/Foo/bar", false),
        ];
        for (kind, rule, request, want) in cases {
            let r = PathRule::new(*kind, Some(rule));
            assert_eq!(r.matches(request), *want, "{kind:?} {rule} vs {request}");
        }
        // ImplementationSpecific is a prefix here.
        assert_eq!(PathKind::parse("ImplementationSpecific"), Prefix);
        assert_eq!(PathKind::parse("Prefix"), Prefix);
        assert_eq!(PathKind::parse("Exact"), Exact);
        // No path: `/`.
        assert!(PathRule::new(Prefix, None).matches("/x"));
    }

    /// The host examples of the Ingress documentation ("Hostname wildcards") and case.
    #[test]
    fn hosts_as_documented() {
        let cases: &[(&str, &str, bool)] = &[
            ("*.foo.com", "bar.foo.com", true),
            ("*.foo.com", "baz.bar.foo.com", false),
            ("*.foo.com", "foo.com", false),
            ("foo.bar.com", "foo.bar.com", true),
            ("foo.bar.com", "FOO.Bar.com", true),
            ("Foo.Bar.com", "foo.bar.com", true),
            ("foo.bar.com", "bar.com", false),
            ("*.Foo.com", "X.foo.COM", true),
        ];
        for (rule, host, want) in cases {
            let r = HostRule::parse(rule).expect("a host");
            let h = normalize_host(host).expect("valid");
            assert_eq!(r.matches(&h), *want, "{rule} vs {host}");
        }
        assert_eq!(HostRule::parse(""), None);
    }

    #[test]
    fn host_header_normalized() {
        let ok: &[(&str, &str)] = &[
            ("Foo.com", "foo.com"),
            ("foo.com:8080", "foo.com"),
            ("foo.com.", "foo.com"),
            ("foo.com.:80", "foo.com"),
            ("127.0.0.1:80", "127.0.0.1"),
            ("[::1]:443", "::1"),
            ("[::1]", "::1"),
            ("foo.com:", "foo.com"),
        ];
        for (h, want) in ok {
            assert_eq!(normalize_host(h).as_deref(), Ok(*want), "{h}");
        }
        for bad in [
            "",
            "foo com",
            "a..b",
            ".a",
            "foo.com:80x",
            "[::1",
            "[zz]:1",
            "u@foo.com",
            "fo/o",
            "foo.com:123456",
            "\u{e9}.com",
        ] {
            assert_eq!(normalize_host(bad), Err(BadHost), "{bad:?}");
        }
    }
}
