//! The node agent (paddock's kubelet): registers its Node, renews its Lease, watches the pods
//! bound to it through the Kubernetes API, runs them through a [`runtime::Runtime`], drives the
//! `probe` crate, and reports pod status and events back through the API.
//! Start at [`runtime`] for how containers run; the pod lifecycle modules come next.

pub mod runtime;
