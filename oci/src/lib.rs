//! Real containers: OCI runtime specs as containerd's CRI plugin builds them, overlay root
//! filesystems, the kubelet's cgroup layout, and a driver for `runc`.
//!
//! Start at [`runc::Runtime::run`]: it builds the spec ([`spec::build`], with the seccomp
//! profile of [`seccomp`]), mounts the image's layers as an overlay ([`rootfs`]) and runs the
//! container with `runc`; [`cgroups`] lays out `kubepods` and its QoS and pod levels and reads
//! OOM kills. Images (pulling, layers unpacked in overlay format, the image config) are the
//! `image` crate's; namespaces, volumes and `/etc` files of a pod are the agent's, given here as
//! namespace paths and bind mounts.
//!
//! # Which runtime, measured
//!
//! `bench/oci-runtime.sh` (root; Debian packages `crun`, `runc`, `busybox-static`), on this
//! project's machines (2 cores, kernel 6.18, cgroup v1 controllers mounted per controller with a
//! cgroup2 tree beside them):
//!
//! | | start (create + start + exit of busybox `true`, N = 50) | driver memory | driver SIGKILLed |
//! |---|---|---|---|
//! | runc 1.1.5 (Debian 12) | median 99–131 ms, p90 141–221 ms (three runs; includes polling `runc state`) | each `runc` call peaks at 9.5 MiB and exits; nothing stays between calls | container keeps running, its state stays in `--root`, its 10 v1 cgroup dirs stay until `runc delete -f`, which removes them all; no mount leaks (the container's mounts are in its own namespace) |
//! | crun 1.8.1 (Debian 12) | does not run here: "cgroups in hybrid mode not supported, drop all controllers from cgroupv2" (the cgroup2 tree has `hugetlb`, which no v1 hierarchy mounts), even with `--cgroup-manager=disabled` | — | — |
//! | youki `libcontainer` 0.7 | builds without C libseccomp and systemd (`default-features = false, features = ["v1", "v2"]`: 2 min 18 s on one core), but then has no seccomp at all: `RuntimeDefault` would need the `libseccomp` feature and Debian's `libseccomp-dev` at build time; latency not measured | in process: its code in the agent, and each container forked from the (large, multi-threaded) agent | same as runc (state dir + cgroups stay) |
//!
//! **Decision: runc.** It is the only one of the three that runs containers on these machines
//! with seccomp; the agent holds no memory for it between calls (a pid and a pidfd per
//! container), and containers survive the agent with their state where a restarted agent finds
//! them ([`runc::Runtime::recover`]). The cost is a `runc` process per operation (about 10 MiB
//! for tens of milliseconds) and no exit status for an adopted container.

pub mod cgroups;
pub mod rootfs;
pub mod runc;
pub mod seccomp;
pub mod spec;
#[allow(unsafe_code)]
mod sys;

/// What went wrong, named.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The container's configuration cannot be turned into a spec.
    #[error("{0}")]
    Spec(String),
    /// The root filesystem could not be set up or removed.
    #[error("rootfs: {0}")]
    Rootfs(String),
    /// cgroups.
    #[error("cgroups: {0}")]
    Cgroups(String),
    /// The runtime (`runc`) failed; its message is included.
    #[error("{0}")]
    Runtime(String),
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
