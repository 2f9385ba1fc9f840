//! Cluster DNS, as CoreDNS with the kubernetes plugin serves it in a kubeadm cluster: the
//! names of the Kubernetes DNS specification (`kubernetes/dns` `docs/specification.md`) for
//! the cluster domain, PTR records for service and endpoint addresses, and everything else
//! forwarded to the host's resolvers with a bounded cache.
//!
//! Start at [`Records`]: the table the answers come from, fed by calls ([`Records::update_service`],
//! [`Records::set_endpoint_slice`] from the API watch, [`Records::set_endpoint_ready`] from the
//! node agent's readiness fast path); each change swaps in a new snapshot, so the next query
//! sees it. [`answer`] holds the naming rules and what CoreDNS answers (NXDOMAIN vs NODATA,
//! SOA, SRV weights, ExternalName CNAMEs), [`cache`] the response cache every query passes,
//! [`forward`] the upstream side, and [`Server`] the
//! UDP and TCP sockets with their bounds ([`server`] docs). Wire formats are
//! `hickory-proto`'s; requests are parsed and responses emitted (with truncation) by
//! `hickory-server`'s types.

pub mod answer;
pub mod cache;
pub mod forward;
pub mod metrics;
pub mod records;
pub mod server;

pub use forward::{ForwardConfig, nameservers_from_resolv_conf};
pub use records::{EndpointKey, Records};
pub use server::{Config, Server, bind};

/// Why the DNS server could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The cluster domain is not a domain name.
    #[error("cluster domain {zone:?}: {reason}")]
    Zone {
        /// What was given.
        zone: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A `resolv.conf` could not be read.
    #[error("resolv.conf: {0}")]
    ResolvConf(String),
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was attempted.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}
