//! Everything outside the cluster domain goes to the host's resolvers (kubeadm's Corefile:
//! `forward . /etc/resolv.conf { max_concurrent 1000 }` and `cache 30`), through
//! `hickory-resolver`: UDP with a retry over TCP when the answer is truncated, a response
//! cache bounded in entries (CoreDNS's cache holds 9984 of each kind), TTLs capped at 30 s as
//! `cache 30` does, and at most `max_concurrent` lookups in flight, beyond which a query is
//! REFUSED at once (CoreDNS's `max_concurrent`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use tokio::sync::Semaphore;

use crate::Error;

/// CoreDNS's `cache` capacity per kind of answer.
pub const DEFAULT_CACHE_SIZE: u64 = 9984;
/// The longest a forwarded answer is cached (`cache 30`).
const MAX_CACHE_TTL: Duration = Duration::from_secs(30);

/// The upstream resolvers and how to ask them.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    /// Upstream servers (UDP and TCP on the same address).
    pub servers: Vec<SocketAddr>,
    /// Responses kept in the cache.
    pub cache_size: u64,
    /// Lookups in flight at once before new ones are refused.
    pub max_concurrent: usize,
    /// How long one lookup may take in all (attempts included).
    pub timeout: Duration,
}

impl Default for ForwardConfig {
    fn default() -> ForwardConfig {
        ForwardConfig {
            servers: Vec::new(),
            cache_size: DEFAULT_CACHE_SIZE,
            max_concurrent: 1000,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The nameservers of a `resolv.conf` text (port 53), in order.
pub fn nameservers_from_resolv_conf(text: &str) -> Result<Vec<SocketAddr>, Error> {
    let (config, _) = hickory_resolver::system_conf::parse_resolv_conf(text.as_bytes())
        .map_err(|e| Error::ResolvConf(e.to_string()))?;
    Ok(config
        .name_servers()
        .iter()
        .map(|ns| SocketAddr::new(ns.ip, 53))
        .collect())
}

/// An upstream answer (positive, or negative with the upstream's SOA).
#[derive(Debug)]
pub(crate) struct Upstream {
    pub(crate) rcode: ResponseCode,
    pub(crate) answers: Vec<Record>,
    pub(crate) authorities: Vec<Record>,
}

/// Why a forwarded query has no upstream answer.
#[derive(Debug)]
pub(crate) enum ForwardError {
    /// `max_concurrent` lookups are in flight.
    Busy,
    /// No upstream answered in time, or none is configured.
    Failed,
}

/// Asks the upstream resolvers (see the module docs).
pub(crate) struct Forwarder {
    resolver: Option<TokioResolver>,
    permits: Arc<Semaphore>,
    timeout: Duration,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("configured", &self.resolver.is_some())
            .finish()
    }
}

impl Forwarder {
    pub(crate) fn new(config: &ForwardConfig) -> Result<Forwarder, Error> {
        let resolver = if config.servers.is_empty() {
            None
        } else {
            let servers = config
                .servers
                .iter()
                .map(|addr| {
                    let conn = |mut c: ConnectionConfig| {
                        c.port = addr.port();
                        c
                    };
                    NameServerConfig::new(
                        addr.ip(),
                        true,
                        vec![conn(ConnectionConfig::udp()), conn(ConnectionConfig::tcp())],
                    )
                })
                .collect();
            let mut builder = TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), servers),
                TokioRuntimeProvider::default(),
            );
            let opts: &mut ResolverOpts = builder.options_mut();
            opts.cache_size = config.cache_size;
            opts.positive_max_ttl = Some(MAX_CACHE_TTL);
            opts.negative_max_ttl = Some(MAX_CACHE_TTL);
            opts.preserve_intermediates = true;
            opts.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
            opts.ndots = 0;
            opts.attempts = 2;
            opts.timeout = config.timeout / 2;
            opts.edns0 = true;
            Some(
                builder
                    .build()
                    .map_err(|e| Error::Upstream(e.to_string()))?,
            )
        };
        Ok(Forwarder {
            resolver,
            permits: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
            timeout: config.timeout,
        })
    }

    /// Looks `name`/`qtype` up upstream.
    pub(crate) async fn lookup(
        &self,
        name: &Name,
        qtype: RecordType,
    ) -> Result<Upstream, ForwardError> {
        let Some(resolver) = &self.resolver else {
            return Err(ForwardError::Failed);
        };
        let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
            return Err(ForwardError::Busy);
        };
        let mut name = name.clone();
        name.set_fqdn(true);
        match tokio::time::timeout(self.timeout, resolver.lookup(name, qtype)).await {
            Ok(Ok(lookup)) => Ok(Upstream {
                rcode: ResponseCode::NoError,
                answers: lookup.answers().to_vec(),
                authorities: Vec::new(),
            }),
            Ok(Err(e)) => match e {
                hickory_resolver::net::NetError::Dns(
                    hickory_resolver::net::DnsError::NoRecordsFound(no),
                ) => Ok(Upstream {
                    rcode: no.response_code,
                    answers: Vec::new(),
                    authorities: no
                        .soa
                        .map(|soa| vec![soa.into_record_of_rdata()])
                        .unwrap_or_default(),
                }),
                e => {
                    tracing::debug!(error = %e, "upstream lookup failed");
                    Err(ForwardError::Failed)
                }
            },
            Err(_) => Err(ForwardError::Failed),
        }
    }

    /// Whether upstream addresses are configured.
    pub(crate) fn configured(&self) -> bool {
        self.resolver.is_some()
    }
}
