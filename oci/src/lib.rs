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
//! # Wiring (for the agent)
//!
//! One [`runc::Runtime`] per agent, under a 0700 directory of its data dir. Per container:
//! [`spec::Namespaces::pod`] with the pod holder's pid (network and UTS as [`spec::NsMode::Node`]
//! for `hostNetwork`, IPC for `hostIPC`, PID [`spec::NsMode::Pod`] of the holder for
//! `shareProcessNamespace` or `Node` for `hostPID`); volumes, the pod's `/etc/hosts`,
//! `/etc/hostname`, `/etc/resolv.conf`, its `/dev/shm` and the termination-log file as
//! [`spec::BindMount`]s; [`cgroups::Layout::ensure_pod`] before the first container and
//! [`cgroups::Layout::remove_pod`] after the last. [`runc::Runtime::new`] makes the agent a child
//! subreaper: orphans of its host-mode processes then become its children too, so the agent must
//! reap the children it does not know (not with a blanket `waitpid(-1)`, which would take the
//! containers' and tokio's statuses: walk `/proc/self/task/*/children` and reap those pids).
//!
//! # Which runtime, measured
//!
//! `bench/oci-runtime.sh --youki` (root; Debian packages `crun`, `runc`, `busybox-static`) and
//! `cargo bench -p oci --bench start`, on this project's machines (2 cores shared with other
//! builds — load average 3 to 8, so the numbers vary by ±30 % between runs —, kernel 6.18,
//! cgroup v1 controllers mounted one per hierarchy with a cgroup2 tree beside them):
//!
//! | | start: create + start + exit of busybox `true` (N = 50) | CPU per container | driver memory | driver SIGKILLed |
//! |---|---|---|---|---|
//! | runc 1.1.5 (Debian 12), CLI loop | median 99–131 ms, p90 141–221 ms (polls `runc state`) | — | each `runc` call peaks at 9.5 MiB and exits | container keeps running; its state stays in `--root`, its cgroup dirs (10 here) until `runc delete -f`, which removes them all; no mount leaks (its mounts are in its own namespace) |
//! | runc through this crate ([`runc::Runtime::run`] → [`runc::Runtime::wait`], overlay and `config.json` included; `runc run --detach`) | median 64–76 ms, p90 93–150 ms (a host process: 0.6–3.9 ms); remove 19–36 ms | 39–41 ms (user + sys of runc and the container, remove included; 52 ms with separate `create` and `start`) | +0.3–0.6 KiB per running container (a pid and a pidfd) | as above; [`runc::Runtime::recover`] adopts it and removes half-made bundles |
//! | crun 1.8.1 (Debian 12) | does not run here: "cgroups in hybrid mode not supported, drop all controllers from cgroupv2" (the cgroup2 tree has `hugetlb`, which no v1 hierarchy mounts), even with `--cgroup-manager=disabled` | — | — | — |
//! | youki `libcontainer` 0.7 in process (`bench/oci-youki`) | median 11–28 ms, p90 22–43 ms | 12 ms | 5.6 MiB peak for the whole probe process; in the agent: its code, and each container cloned from the agent | same as runc (state dir and cgroups stay until delete) |
//!
//! libcontainer builds here without C libseccomp and systemd (`default-features = false,
//! features = ["v1", "v2"]`, 2 min 18 s on one core) — but then it **ignores a spec's seccomp
//! profile with only a log warning**, so `RuntimeDefault` would silently not apply; with the
//! `libseccomp` feature it needs Debian's `libseccomp-dev` to build and links the C library.
//!
//! **Decision: runc, for now.** It runs containers with seccomp on these machines and on cgroup
//! v2, needs no C library in our build, holds nothing in the agent between calls and leaves a
//! container running with its state where a restarted agent finds it. Its cost is CPU: about
//! 40 ms per container (`runc` is a Go binary, started twice per container: `run --detach` and
//! `delete`), so 1,000 pods spend about 20 s of the 30 s target on 2 cores in runc alone;
//! libcontainer spends a third of that. If the 1,000-pod target is missed, the next step is
//! libcontainer with the `libseccomp` feature run in a short-lived helper process (the agent
//! binary re-executed) rather than in the agent: it clones the container's processes from the
//! calling process with the raw `clone3` syscall, which runs no fork handlers (the allocator's
//! included) — unsafe in a multi-threaded agent.

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
