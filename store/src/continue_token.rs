//! Opaque `continue` tokens of paged lists: URL-safe base64 of a small JSON document holding the
//! list's revision, its resource and the map key of the last item returned. Shaped like the
//! tokens of the Kubernetes apiserver (`{"v":"meta.k8s.io/v1","rv":…,"start":…}`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::{Revision, StoreError};

const VERSION: &str = "meta.k8s.io/v1";

#[derive(Serialize, Deserialize)]
struct Token {
    v: String,
    rv: Revision,
    r: String,
    start: String,
}

/// Encodes (revision, resource, last key) into a token.
pub(crate) fn encode(rev: Revision, resource: &str, last_key: &str) -> String {
    let t = Token {
        v: VERSION.into(),
        rv: rev,
        r: resource.into(),
        start: last_key.into(),
    };
    // Serializing this plain struct cannot fail; fall back to an empty token to stay panic-free.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&t).unwrap_or_default())
}

/// Decodes a token into (revision, last key), checking it belongs to `resource`.
pub(crate) fn decode(token: &str, resource: &str) -> Result<(Revision, String), StoreError> {
    let bad = |why: String| StoreError::InvalidContinue(why);
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| bad(format!("not base64: {e}")))?;
    let t: Token = serde_json::from_slice(&bytes).map_err(|e| bad(format!("malformed: {e}")))?;
    if t.v != VERSION {
        return Err(bad(format!("unknown version {:?}", t.v)));
    }
    if t.r != resource {
        return Err(bad(format!("token is for {:?}, not {resource:?}", t.r)));
    }
    Ok((t.rv, t.start))
}
