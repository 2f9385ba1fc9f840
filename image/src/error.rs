//! The crate's error: one enum whose variants are the kubelet's pull failures, so the agent maps
//! them to waiting reasons with [`Error::kubelet_reason`] and shows [`Error`]'s text (worded
//! like containerd's, which is what the kubelet prints after `Failed to pull image "…": `).

use std::path::PathBuf;
use std::sync::Arc;

use crate::digest::Digest;
use crate::reference::ReferenceError;

/// What went wrong with an image operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The image string is not a reference (the kubelet's `InvalidImageName`).
    // The complaint is part of the message and deliberately not `source()`: printed as a
    // chain (`{:#}`) it would appear twice.
    #[error("couldn't parse image name {}: {reason}", gofmt::quote(.image))]
    InvalidReference {
        /// The image as written.
        image: String,
        /// The grammar's complaint.
        reason: ReferenceError,
    },
    /// The registry has no such tag, digest or repository (404, `MANIFEST_UNKNOWN`,
    /// `NAME_UNKNOWN`, `BLOB_UNKNOWN`).
    #[error("failed to resolve reference {}: {reference}: not found", gofmt::quote(.reference))]
    NotFound {
        /// The reference asked for.
        reference: String,
    },
    /// 401/403 after the auth flows this client knows, or credentials refused.
    #[error(
        "failed to authorize: pull access denied for {reference}, repository does not exist or may require authorization: {detail}"
    )]
    Unauthorized {
        /// The reference asked for.
        reference: String,
        /// The registry's status and message.
        detail: String,
    },
    /// Content whose digest or size is not the one its descriptor names; nothing was stored.
    #[error(
        "failed commit on ref {}: unexpected commit digest {actual}, expected {expected}: failed precondition",
        gofmt::quote(.what)
    )]
    DigestMismatch {
        /// Which blob (`layer-sha256:…`, `manifest-sha256:…`).
        what: String,
        /// The descriptor's digest.
        expected: Digest,
        /// What the content hashed to.
        actual: Digest,
    },
    /// Content longer or shorter than its descriptor says.
    #[error("failed commit on ref {}: unexpected size {actual}, expected {expected}", gofmt::quote(.what))]
    SizeMismatch {
        /// Which blob.
        what: String,
        /// The descriptor's size.
        expected: u64,
        /// Bytes received (so far, when too many).
        actual: u64,
    },
    /// A multi-arch index without an entry for this node.
    #[error("no match for platform in manifest {digest}: not found (want {platform})")]
    NoMatchingPlatform {
        /// The index's digest.
        digest: Digest,
        /// This node's platform, `linux/amd64`.
        platform: String,
    },
    /// The registry could not be reached or the connection broke.
    #[error("failed to do request: {method} {url}: {detail}")]
    Network {
        /// The HTTP method.
        method: String,
        /// The URL.
        url: String,
        /// What the connection said.
        detail: String,
    },
    /// Any other unexpected registry answer.
    #[error("unexpected status from {method} request to {url}: {status}{detail}")]
    Registry {
        /// The HTTP method.
        method: String,
        /// The URL.
        url: String,
        /// The status line.
        status: String,
        /// ": message" from the registry's error body, or empty.
        detail: String,
    },
    /// A manifest, index, config or archive that is not what the OCI/Docker formats allow.
    #[error("{0}")]
    Format(String),
    /// A registry that would need plain HTTP but is not loopback or configured as insecure.
    #[error(
        "registry {0} is not on a loopback address: refusing plain HTTP (configure it as insecure to allow)"
    )]
    PlainHttpRefused(String),
    /// A layer that cannot be unpacked (bad tar, an entry that cannot be created).
    #[error("failed to extract layer {layer}: {detail}")]
    Unpack {
        /// The layer's digest.
        layer: String,
        /// What went wrong, with the entry's name.
        detail: String,
    },
    /// No image by that name in the store.
    #[error("image {}: not found", gofmt::quote(.0))]
    ImageNotKnown(String),
    /// A file-system operation failed.
    #[error("{op} {path}: {error}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error (in the message, so not `source()`: see `InvalidReference`).
        error: Arc<std::io::Error>,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, e: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            error: Arc::new(e),
        }
    }

    /// The kubelet waiting reason this failure gives a container: `InvalidImageName` for a bad
    /// reference, `ErrImagePull` for everything else (the kubelet turns repeated
    /// `ErrImagePull` into `ImagePullBackOff` itself).
    pub fn kubelet_reason(&self) -> &'static str {
        match self {
            Error::InvalidReference { .. } => "InvalidImageName",
            _ => "ErrImagePull",
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
