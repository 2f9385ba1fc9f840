//! The process's descriptor limit: raised from soft to hard at start, as Go's runtime does
//! (since Go 1.19), with the original soft limit remembered so that child processes can get
//! it back (Go restores it in every child it starts; a program that sizes a `select` set or
//! a close-all loop by the soft limit breaks at a million).

use std::sync::OnceLock;

use nix::sys::resource::{Resource, getrlimit, setrlimit};

static ORIGINAL_SOFT: OnceLock<u64> = OnceLock::new();

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. Returns the (old, new) soft limit; the
/// old one is what [`original_nofile_soft`] reports from then on.
pub fn raise_nofile_limit() -> Result<(u64, u64), nix::Error> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= hard {
        return Ok((soft, soft));
    }
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard)?;
    let _ = ORIGINAL_SOFT.set(soft);
    Ok((soft, hard))
}

/// The soft `RLIMIT_NOFILE` the process started with, if [`raise_nofile_limit`] raised it.
/// Reading it is a plain load, so it may be used between `fork` and `exec`.
pub fn original_nofile_soft() -> Option<u64> {
    ORIGINAL_SOFT.get().copied()
}

/// The current soft `RLIMIT_NOFILE`.
pub fn nofile_soft_limit() -> Option<u64> {
    getrlimit(Resource::RLIMIT_NOFILE)
        .ok()
        .map(|(soft, _)| soft)
}
