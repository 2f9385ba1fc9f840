//! Content digests (`sha256:…`) as opencontainers/go-digest parses and validates them, and the
//! hashing that verifies content against them (ring's SHA-2, already in the build for TLS).

use std::fmt;
use std::str::FromStr;

use ring::digest as rd;

/// A digest string that go-digest's `Digest.Validate` rejects. The messages are go-digest's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not `algorithm:encoded`, or the encoded part has characters the algorithm does not use.
    #[error("invalid checksum digest format")]
    InvalidFormat,
    /// The encoded part is not as long as the algorithm's hash.
    #[error("invalid checksum digest length")]
    InvalidLength,
    /// Well formed, but not sha256, sha384 or sha512.
    #[error("unsupported digest algorithm")]
    Unsupported,
}

/// The algorithms go-digest has when `crypto/sha256` and `crypto/sha512` are linked in (as they
/// are in the kubelet and containerd).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// `sha256`, the one registries use.
    Sha256,
    /// `sha384`.
    Sha384,
    /// `sha512`.
    Sha512,
}

impl Algorithm {
    /// The name in a digest string.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha384 => "sha384",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha384 => 96,
            Algorithm::Sha512 => 128,
        }
    }

    fn ring(self) -> &'static rd::Algorithm {
        match self {
            Algorithm::Sha256 => &rd::SHA256,
            Algorithm::Sha384 => &rd::SHA384,
            Algorithm::Sha512 => &rd::SHA512,
        }
    }
}

/// A validated digest: `algorithm:lowercase-hex`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    hex: String,
}

impl Digest {
    /// go-digest's `Parse`: the string validated as `Digest.Validate` does.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some(i) = s.find(':').filter(|&i| i > 0 && i + 1 < s.len()) else {
            return Err(DigestError::InvalidFormat);
        };
        let (alg, encoded) = (&s[..i], &s[i + 1..]);
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha384" => Algorithm::Sha384,
            "sha512" => Algorithm::Sha512,
            _ => {
                // go-digest's DigestRegexpAnchored decides between "format" and "unsupported".
                let well_formed = alg.split(['.', '+', '_', '-']).all(|c| {
                    !c.is_empty()
                        && c.bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                }) && encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'=' || b == b'_' || b == b'-');
                return Err(if well_formed {
                    DigestError::Unsupported
                } else {
                    DigestError::InvalidFormat
                });
            }
        };
        if encoded.len() != algorithm.hex_len() {
            return Err(DigestError::InvalidLength);
        }
        if !encoded
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(DigestError::InvalidFormat);
        }
        Ok(Digest {
            algorithm,
            hex: encoded.to_string(),
        })
    }

    /// The sha256 digest of `data`.
    pub fn sha256_of(data: &[u8]) -> Digest {
        let mut h = Hasher::new(Algorithm::Sha256);
        h.update(data);
        h.finish()
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lowercase hex part: a safe file name (validated to `[a-f0-9]`).
    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.as_str(), self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(|e| serde::de::Error::custom(format!("digest {s:?}: {e}")))
    }
}

/// Incremental hashing of content, to verify it against a [`Digest`] as it streams by.
pub struct Hasher {
    algorithm: Algorithm,
    ctx: rd::Context,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("algorithm", &self.algorithm)
            .finish()
    }
}

impl Hasher {
    /// A fresh hasher.
    pub fn new(algorithm: Algorithm) -> Hasher {
        Hasher {
            algorithm,
            ctx: rd::Context::new(algorithm.ring()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.ctx.update(data);
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        let out = self.ctx.finish();
        let mut hex = String::with_capacity(out.as_ref().len() * 2);
        for b in out.as_ref() {
            hex.push_str(&format!("{b:02x}"));
        }
        Digest {
            algorithm: self.algorithm,
            hex,
        }
    }
}

/// A reader that hashes what passes through it.
#[derive(Debug)]
pub struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
    read: u64,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`.
    pub fn new(inner: R, algorithm: Algorithm) -> Self {
        HashingReader {
            inner,
            hasher: Hasher::new(algorithm),
            read: 0,
        }
    }

    /// The digest and length of what was read.
    pub fn finish(self) -> (Digest, u64) {
        (self.hasher.finish(), self.read)
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_as_go_digest() {
        let ok = "sha256:e6693c20186f837fc393390135d8a598a96a833917917789d63766cab6c59582";
        assert_eq!(Digest::parse(ok).unwrap().to_string(), ok);
        assert_eq!(
            Digest::parse("sha256:ffff"),
            Err(DigestError::InvalidLength)
        );
        assert_eq!(
            Digest::parse(&format!("sha256:{}", "F".repeat(64))),
            Err(DigestError::InvalidFormat)
        );
        assert_eq!(Digest::parse("sha256"), Err(DigestError::InvalidFormat));
        assert_eq!(Digest::parse(":abc"), Err(DigestError::InvalidFormat));
        assert_eq!(Digest::parse("sha256:"), Err(DigestError::InvalidFormat));
        assert_eq!(Digest::parse("md5:abcd"), Err(DigestError::Unsupported));
        assert_eq!(Digest::parse("Md5:abcd"), Err(DigestError::InvalidFormat));
        assert!(Digest::parse(&format!("sha512:{}", "a".repeat(128))).is_ok());
    }

    #[test]
    fn hashes_known_vector() {
        assert_eq!(
            Digest::sha256_of(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
