//! Image references, parsed and normalised exactly as distribution/reference (the package the
//! kubelet and containerd use) does: the grammar of its `regexp.go`, `Parse`,
//! `ParseNormalizedNamed` (Docker Hub short names → `docker.io/library/…`), `ParseDockerRef`
//! (what containerd pulls) and the kubelet's own wrapper that turns a bad reference into
//! `InvalidImageName`. Start at [`Reference::parse_normalized`].

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::digest::{Digest, DigestError};

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag a reference without tag or digest gets.
pub const DEFAULT_TAG: &str = "latest";
/// distribution's `RepositoryNameTotalLengthMax`.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A reference that distribution/reference rejects; each message is upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// `ErrReferenceInvalidFormat`.
    #[error("invalid reference format")]
    InvalidFormat,
    /// `ErrNameContainsUppercase` (from `Parse`).
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    /// `ErrNameEmpty`.
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// `ErrNameTooLong`.
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// `ErrNameNotCanonical` (from `ParseNamed`).
    #[error("repository name must be canonical")]
    NameNotCanonical,
    /// `ParseNormalizedNamed` of a bare 64-hex identifier.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    /// `ParseNormalizedNamed` of a remote name with capitals.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    RemoteNameUppercase(String),
    /// The digest part failed go-digest's validation.
    #[error(transparent)]
    Digest(#[from] DigestError),
}

// The grammar, built from the same pieces as upstream's regexp.go. Go's `\w` is ASCII, so it
// is spelled out (Rust's is Unicode-aware).
const ALPHANUMERIC: &str = "[a-z0-9]+";
const SEPARATOR: &str = "(?:[._]|__|[-]+)";
const DOMAIN_NAME_COMPONENT: &str = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const OPTIONAL_PORT: &str = "(?::[0-9]+)?";
const TAG: &str = "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}";
const DIGEST_PAT: &str = "[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][[:xdigit:]]{32,}";
const IPV6_ADDRESS: &str = r"\[(?:[a-fA-F0-9:]+)\]";

fn domain_and_port() -> String {
    let domain_name = format!("{DOMAIN_NAME_COMPONENT}(?:\\.{DOMAIN_NAME_COMPONENT})*");
    let host = format!("(?:{domain_name}|{IPV6_ADDRESS})");
    format!("{host}{OPTIONAL_PORT}")
}

fn remote_name() -> String {
    let path_component = format!("{ALPHANUMERIC}(?:{SEPARATOR}{ALPHANUMERIC})*");
    format!("{path_component}(?:/{path_component})*")
}

#[allow(clippy::expect_used)] // constant patterns, covered by every test
static REFERENCE_RE: LazyLock<Regex> = LazyLock::new(|| {
    let name = format!("(?:{}/)?{}", domain_and_port(), remote_name());
    Regex::new(&format!("^({name})(?::({TAG}))?(?:@({DIGEST_PAT}))?$")).expect("reference grammar")
});

#[allow(clippy::expect_used)]
static ANCHORED_NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        "^(?:({})/)?({})$",
        domain_and_port(),
        remote_name()
    ))
    .expect("name grammar")
});

#[allow(clippy::expect_used)]
static ANCHORED_TAG_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!("^{TAG}$")).expect("tag grammar"));

fn is_identifier(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A named image reference: `[domain/]path[:tag][@digest]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// distribution's `Parse`: the grammar alone, no normalisation (`nginx` stays `nginx`).
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        let Some(m) = REFERENCE_RE.captures(s) else {
            let lower = s.to_lowercase();
            if lower != s && REFERENCE_RE.is_match(&lower) {
                return Err(ReferenceError::NameContainsUppercase);
            }
            return Err(ReferenceError::InvalidFormat);
        };
        let name = m.get(1).map_or("", |g| g.as_str());
        let (domain, path) = match ANCHORED_NAME_RE.captures(name) {
            Some(n) => (
                n.get(1).map_or("", |g| g.as_str()).to_string(),
                n.get(2).map_or("", |g| g.as_str()).to_string(),
            ),
            None => (String::new(), name.to_string()),
        };
        if path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        let tag = m.get(2).map(|g| g.as_str().to_string());
        let digest = match m.get(3) {
            Some(d) => Some(Digest::parse(d.as_str())?),
            None => None,
        };
        if name.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// distribution's `ParseNormalizedNamed`: Docker Hub short names made whole
    /// (`nginx` → `docker.io/library/nginx`); no default tag is added.
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if is_identifier(s) {
            return Err(ReferenceError::HexIdentifier(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => &remainder[..],
        };
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::RemoteNameUppercase(remote.to_string()));
        }
        Reference::parse(&format!("{domain}/{remainder}"))
    }

    /// distribution's `ParseNamed`: only an already-normalised reference is accepted.
    pub fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        let r = Reference::parse_normalized(s)?;
        if r.to_string() != s {
            return Err(ReferenceError::NameNotCanonical);
        }
        Ok(r)
    }

    /// distribution's `ParseDockerRef` (what containerd's CRI pulls and records): normalised,
    /// `:latest` when neither tag nor digest is given, and the tag dropped when a digest is.
    pub fn parse_docker_ref(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_normalized(s)?;
        if r.digest.is_some() {
            r.tag = None;
        } else if r.tag.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// A name-only reference from `domain/path` (distribution's `WithName`).
    pub fn with_name(name: &str) -> Result<Reference, ReferenceError> {
        let Some(n) = ANCHORED_NAME_RE.captures(name) else {
            return Err(ReferenceError::InvalidFormat);
        };
        let path = n.get(2).map_or("", |g| g.as_str()).to_string();
        if path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        Ok(Reference {
            domain: n.get(1).map_or("", |g| g.as_str()).to_string(),
            path,
            tag: None,
            digest: None,
        })
    }

    /// This reference with `tag` (distribution's `WithTag`).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !ANCHORED_TAG_RE.is_match(tag) {
            return Err(ReferenceError::InvalidFormat);
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// This reference with `digest` and no tag: the pinned form recorded for an image.
    pub fn with_digest_only(&self, digest: Digest) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The domain (`docker.io`, `host:5000`, `[::1]:5000`), empty for an unnormalised short name.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the domain (`library/nginx`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `domain/path` (distribution's `Name()`).
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// distribution's `FamiliarString`: `docker.io/library/nginx:1` → `nginx:1`.
    pub fn familiar(&self) -> String {
        let mut path = self.path.as_str();
        let domain = if self.domain == DEFAULT_DOMAIN {
            if let Some(rest) = path.strip_prefix(OFFICIAL_REPO_PREFIX)
                && !rest.contains('/')
            {
                path = rest;
            }
            ""
        } else {
            self.domain.as_str()
        };
        let mut out = if domain.is_empty() {
            path.to_string()
        } else {
            format!("{domain}/{path}")
        };
        if let Some(t) = &self.tag {
            out.push(':');
            out.push_str(t);
        }
        if let Some(d) = &self.digest {
            out.push('@');
            out.push_str(&d.to_string());
        }
        out
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// upstream `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        return (
            DEFAULT_DOMAIN.to_string(),
            format!("{OFFICIAL_REPO_PREFIX}{name}"),
        );
    };
    // Upstream's switch, in its order: the legacy Hub name is checked before the "has a dot"
    // rule that would otherwise keep it as a domain.
    let (domain, mut remote) = if maybe_domain == "localhost" {
        (maybe_domain.to_string(), maybe_remote.to_string())
    } else if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN.to_string(), maybe_remote.to_string())
    } else if maybe_domain.contains(['.', ':']) || maybe_domain.to_lowercase() != maybe_domain {
        (maybe_domain.to_string(), maybe_remote.to_string())
    } else {
        (DEFAULT_DOMAIN.to_string(), name.to_string())
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        remote = format!("{OFFICIAL_REPO_PREFIX}{remote}");
    }
    (domain, remote)
}

/// The kubelet's `applyDefaultImageTag` (pkg/kubelet/images): the image as given, with
/// `:latest` appended when it has neither tag nor digest. Its error is the message the kubelet
/// puts on the `InvalidImageName` waiting state and `InspectFailed` event.
pub fn kubelet_apply_default_tag(image: &str) -> Result<String, String> {
    // parsers.ParseImageName: ParseNormalizedNamed, then tag "latest" if none and no digest.
    let named = Reference::parse_normalized(image).map_err(|e| {
        let q = gofmt::quote(image);
        format!("Failed to apply default image tag {q}: couldn't parse image name {q}: {e}")
    })?;
    let tag = match (&named.tag, &named.digest) {
        (Some(t), _) => Some(t.clone()),
        (None, None) => Some(DEFAULT_TAG.to_string()),
        (None, Some(_)) => None,
    };
    match tag {
        Some(t) if named.digest.is_none() && !image.ends_with(&format!(":{t}")) => {
            Ok(format!("{image}:{t}"))
        }
        _ => Ok(image.to_string()),
    }
}

#[cfg(test)]
mod tests;
