//! Command-line definitions (clap derive). Each flag is defined once here; the subcommand
//! modules turn these raw values into validated settings.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Run Kubernetes manifests without a cluster.
#[derive(Debug, Parser)]
#[command(name = "paddock", version, about)]
pub(crate) struct Cli {
    /// More logging (-v info, -vv debug, -vvv trace); PADDOCK_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the API server (control plane) on its own.
    Server(ServerArgs),
    /// Run everything in one process and apply the given manifests (the main job).
    Up(UpArgs),
    /// Run a node (agent and service proxy) of the cluster a server runs.
    Agent(AgentArgs),
    /// Manage the node's images: import, ls, rm, pull.
    Image(crate::images::ImageArgs),
    /// Make credentials for users of the cluster (on the server's machine).
    User(UserArgs),
    /// Manage bootstrap tokens (nodes join with them).
    Token(TokenArgs),
}

/// `paddock user` flags.
#[derive(Debug, Args)]
pub(crate) struct UserArgs {
    /// The server's data dir (its CA signs the certificate)
    /// [default: /var/lib/paddock as root, $XDG_DATA_HOME/paddock otherwise].
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: UserCommand,
}

/// `paddock user` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum UserCommand {
    /// Make a key and a client certificate of the cluster CA for user NAME (the certificate's
    /// common name; each --group an organization) and write a kubeconfig for it (mode 0600).
    Add {
        /// The user name.
        #[arg(value_name = "NAME")]
        name: String,
        /// A group of the user; repeatable.
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// The API server's URL written into the kubeconfig [default: the server's own
        /// kubeconfig's].
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// Where to write the kubeconfig (must not exist) [default: NAME.kubeconfig].
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// How long the certificate is valid [default: 1 year, kubeadm's].
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        ttl: Option<std::time::Duration>,
    },
}

/// `paddock token` flags.
#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// The server's data dir (its admin kubeconfig and CA)
    /// [default: /var/lib/paddock as root, $XDG_DATA_HOME/paddock otherwise].
    #[arg(long, value_name = "DIR", global = true)]
    pub(crate) data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: TokenCommand,
}

/// `paddock token` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a bootstrap token (kubeadm's `token create`) and print it with the CA's hash.
    Create {
        /// How long the token is valid; 0 never expires.
        #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_ttl)]
        ttl: std::time::Duration,
        /// A description of the token.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
}

/// `paddock agent` flags.
#[derive(Args)]
pub(crate) struct AgentArgs {
    /// The server's kubeconfig (what `paddock server` wrote; a `tokenFile:` user works too);
    /// or use --server with a token.
    #[arg(long, value_name = "FILE", conflicts_with = "server")]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// The API server's URL (`https://HOST:PORT`), with --token-file, $PADDOCK_TOKEN or --token.
    #[arg(long, value_name = "URL")]
    pub(crate) server: Option<String>,
    /// A file holding the bearer token for the API server (this agent's API accepts it too).
    #[arg(
        long,
        value_name = "FILE",
        requires = "server",
        conflicts_with = "token"
    )]
    pub(crate) token_file: Option<PathBuf>,
    /// The bearer token itself. Visible to every user of this machine in `ps`: prefer
    /// --token-file, or the environment variable PADDOCK_TOKEN (read when --server is given
    /// without either flag).
    #[arg(long, value_name = "TOKEN", requires = "server")]
    pub(crate) token: Option<String>,
    /// The server's CA certificate (PEM), with --server.
    #[arg(long, value_name = "FILE", requires = "server")]
    pub(crate) certificate_authority: Option<PathBuf>,
    /// Join with a bootstrap token (`paddock token create`; given by --token-file,
    /// $PADDOCK_TOKEN or --token): the hash of the cluster CA's public key it prints
    /// (kubeadm's `--discovery-token-ca-cert-hash`). The node fetches the CA from the server,
    /// refuses to go on unless its hash is this one, and gets a client certificate of its own
    /// (kept in the data dir: a restarted node needs no token).
    #[arg(
        long,
        value_name = "sha256:HEX",
        requires = "server",
        conflicts_with = "certificate_authority"
    )]
    pub(crate) ca_cert_hash: Option<String>,
    /// Where the node keeps its runtime state, logs and volumes
    /// [default: /var/lib/paddock as root, $XDG_DATA_HOME/paddock otherwise].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Name of the node [default: this machine's host name].
    #[arg(long, value_name = "NAME")]
    pub(crate) node_name: Option<String>,
    /// The node's address: reported as InternalIP, where the agent API and NodePorts listen.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub(crate) node_ip: std::net::IpAddr,
    /// The node's pod CIDR (pod addresses come from it), registered in its Node as the
    /// kubelet's --pod-cidr does [default: the one the server's node IPAM allocates from its
    /// --cluster-cidr; the agent waits for it at start].
    #[arg(long, value_name = "CIDR")]
    pub(crate) pod_cidr: Option<String>,
    /// The cluster's pod network: the server's --cluster-cidr. Pod traffic to addresses outside
    /// it is masqueraded (outbound NAT); traffic inside it keeps the pods' addresses.
    #[arg(long, value_name = "CIDR", default_value = "10.244.0.0/16")]
    pub(crate) cluster_cidr: String,
    /// Port of the agent API (logs, exec) on the node's address; 0 picks a free one.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub(crate) port: u16,
    /// Run every pod in the host's network (no pod namespaces), even as root.
    #[arg(long)]
    pub(crate) host_network_only: bool,
    /// Most pods the node takes (the kubelet's `--max-pods`).
    #[arg(long, value_name = "N", default_value_t = 110, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub(crate) max_pods: i64,
    /// The kubelet's `nodeLeaseDurationSeconds`: the node's Lease is renewed every quarter of
    /// it. Lower it with the server's --node-monitor-grace-period (the fast profile): the
    /// grace period must span several renewals.
    #[arg(long, value_name = "SECONDS", default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub(crate) node_lease_duration_seconds: u32,
    /// The runtime of pods without a `runtimeClassName` (k3s's flag): `runc` runs the
    /// container's image, `host` runs its `command` from the node (as RuntimeClass
    /// `paddock-host` does) [default: runc when this node can run images (root, the `runc`
    /// program), else host]
    #[arg(long, value_name = "runc|host", value_parser = ["runc", "host"])]
    pub(crate) default_runtime: Option<String>,
    #[command(flatten)]
    pub(crate) images: NodeImageArgs,
    #[command(flatten)]
    pub(crate) dns: NodeDnsArgs,
    #[command(flatten)]
    pub(crate) ingress: NodeIngressArgs,
}

/// `paddock up` flags.
#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    /// Manifest files or folders to apply (`-` reads stdin); repeatable.
    #[arg(short = 'f', long = "filename", value_name = "PATH")]
    pub(crate) files: Vec<PathBuf>,
    /// Name of the local node [default: this machine's host name].
    #[arg(long, value_name = "NAME")]
    pub(crate) node_name: Option<String>,
    /// Run every pod in the host's network (no pod namespaces), even as root.
    #[arg(long)]
    pub(crate) host_network_only: bool,
    /// Most pods the node takes (the kubelet's `--max-pods`).
    #[arg(long, value_name = "N", default_value_t = 110, value_parser = clap::value_parser!(i64).range(1..=100_000))]
    pub(crate) max_pods: i64,
    /// The runtime of pods without a `runtimeClassName` (k3s's flag): `runc` runs the
    /// container's image, `host` runs its `command` from the node (as RuntimeClass
    /// `paddock-host` does) [default: runc when this node can run images (root, the `runc`
    /// program), else host]
    #[arg(long, value_name = "runc|host", value_parser = ["runc", "host"])]
    pub(crate) default_runtime: Option<String>,
    #[command(flatten)]
    pub(crate) images: NodeImageArgs,
    #[command(flatten)]
    pub(crate) dns: NodeDnsArgs,
    #[command(flatten)]
    pub(crate) ingress: NodeIngressArgs,
    /// Print only the kubeconfig line and the applied objects, not the workloads' progress
    /// (`--progress quiet`).
    #[arg(long, short = 'q')]
    pub(crate) quiet: bool,
    /// How to show the workloads' progress: `auto` is a live view redrawn in place when
    /// stdout is a terminal and one line per change otherwise; `tty` and `plain` force one.
    #[arg(long, value_enum, value_name = "MODE", default_value = "auto")]
    pub(crate) progress: crate::progress::Mode,
}

impl UpArgs {
    /// `--progress`, with `--quiet` winning.
    pub(crate) fn progress_mode(&self) -> crate::progress::Mode {
        if self.quiet {
            crate::progress::Mode::Quiet
        } else {
            self.progress
        }
    }
}

/// The built-in Ingress controller's listeners on a node (`paddock agent`, `paddock up`):
/// on the node's address and 127.0.0.1.
#[derive(Debug, Clone, Args)]
pub(crate) struct NodeIngressArgs {
    /// The port the Ingress controller serves plain HTTP on; 0 turns it off.
    #[arg(long, value_name = "PORT", default_value_t = 80)]
    pub(crate) ingress_http_port: u16,
    /// The port the Ingress controller serves HTTPS on; 0 turns it off.
    #[arg(long, value_name = "PORT", default_value_t = 443)]
    pub(crate) ingress_https_port: u16,
}

/// The DNS flags of a node (`paddock agent`, `paddock up`), with the kubelet's names.
#[derive(Debug, Clone, Args)]
pub(crate) struct NodeDnsArgs {
    /// The cluster DNS addresses (the kubelet's `--cluster-dns`): the nameservers of
    /// `ClusterFirst` pods, where this node's DNS server answers (only with pod namespaces;
    /// pods in the host's network keep the node's resolver).
    #[arg(
        long,
        value_name = "IP[,IP]",
        value_delimiter = ',',
        default_value = "10.96.0.10"
    )]
    pub(crate) cluster_dns: Vec<std::net::IpAddr>,
    /// The cluster domain (the kubelet's `--cluster-domain`).
    #[arg(long, value_name = "DOMAIN", default_value = "cluster.local")]
    pub(crate) cluster_domain: String,
}

/// The image flags of a node (`paddock agent`, `paddock up`): the kubelet's image garbage
/// collection flags and the registry configuration.
#[derive(Debug, Clone, Args)]
pub(crate) struct NodeImageArgs {
    /// Disk usage (percent) of the image file system at which image garbage collection runs
    /// (the kubelet's flag); 100 turns it off.
    #[arg(long, value_name = "PERCENT", default_value_t = 85)]
    pub(crate) image_gc_high_threshold: u32,
    /// Disk usage (percent) image garbage collection frees down to (the kubelet's flag).
    #[arg(long, value_name = "PERCENT", default_value_t = 80)]
    pub(crate) image_gc_low_threshold: u32,
    /// Images detected more recently than this are never collected (the kubelet's flag).
    #[arg(long, value_name = "DURATION", default_value = "2m0s", value_parser = parse_duration)]
    pub(crate) image_minimum_gc_age: std::time::Duration,
    /// The node's registry configuration (k3s's registries.yaml format: mirrors with endpoint
    /// and rewrite, configs with auth and tls.ca_file), used by every pull of the node
    /// [default: <data dir>/registries.yaml when it exists].
    #[arg(long, value_name = "FILE")]
    pub(crate) registry_config: Option<PathBuf>,
}

impl NodeImageArgs {
    /// The image GC policy these flags give, checked as the kubelet checks them.
    pub(crate) fn gc_policy(&self) -> anyhow::Result<agent::images::gc::GcPolicy> {
        let p = agent::images::gc::GcPolicy {
            high_threshold_percent: self.image_gc_high_threshold,
            low_threshold_percent: self.image_gc_low_threshold,
            min_age: self.image_minimum_gc_age,
        };
        p.validate().map_err(anyhow::Error::msg)?;
        Ok(p)
    }
}

/// The token never appears in debug output.
impl std::fmt::Debug for AgentArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentArgs")
            .field("kubeconfig", &self.kubeconfig)
            .field("server", &self.server)
            .field("token_file", &self.token_file)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("node_name", &self.node_name)
            .finish_non_exhaustive()
    }
}

/// Flags shared by every command that runs a server.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Where objects, certificates, the token and the kubeconfig live
    /// [default: /var/lib/paddock as root, $XDG_DATA_HOME/paddock otherwise].
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Address to serve HTTPS on; port 0 picks a free port. Anything but loopback exposes the
    /// API (a root shell on this machine) to the network and is warned about; an unspecified
    /// address (0.0.0.0, ::) puts this machine's addresses into the serving certificate.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:6443")]
    pub(crate) listen: SocketAddr,
    /// The address clients and nodes reach the API server at: written into the kubeconfig and
    /// the serving certificate.
    #[arg(long, value_name = "IP")]
    pub(crate) advertise_address: Option<std::net::IpAddr>,
    /// Another name or address for the serving certificate; repeatable.
    #[arg(long = "tls-san", value_name = "NAME", value_parser = parse_san)]
    pub(crate) tls_san: Vec<String>,
    /// Keep objects in memory only (nothing survives a restart).
    #[arg(long)]
    pub(crate) memory: bool,
    /// Most client connections open at once; at the cap the idlest one is closed to make
    /// room [default: 1024, at most a quarter of the open-file limit].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) max_connections: Option<u32>,
    /// How often the node lifecycle controller looks at the nodes' heartbeats
    /// (kube-controller-manager's flag).
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub(crate) node_monitor_period: std::time::Duration,
    /// How long a node may go without a heartbeat (Lease renewal or status) before its
    /// conditions become Unknown, its pods not ready and it is tainted unreachable.
    #[arg(long, value_name = "DURATION", default_value = "50s", value_parser = parse_duration)]
    pub(crate) node_monitor_grace_period: std::time::Duration,
    /// The same for a node that never posted its status.
    #[arg(long, value_name = "DURATION", default_value = "1m0s", value_parser = parse_duration)]
    pub(crate) node_startup_grace_period: std::time::Duration,
    /// Nodes per second tainted for eviction in a healthy zone.
    #[arg(long, value_name = "QPS", default_value_t = 0.1, value_parser = parse_rate)]
    pub(crate) node_eviction_rate: f32,
    /// Nodes per second tainted in a zone with at least --unhealthy-zone-threshold of its
    /// nodes down, in clusters over --large-cluster-size-threshold nodes (0 below).
    #[arg(long, value_name = "QPS", default_value_t = 0.01, value_parser = parse_rate)]
    pub(crate) secondary_node_eviction_rate: f32,
    /// Zones of at most this many nodes stop tainting when unhealthy.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub(crate) large_cluster_size_threshold: u32,
    /// The share of a zone's nodes down (and more than two) that makes it unhealthy.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.55, value_parser = parse_rate)]
    pub(crate) unhealthy_zone_threshold: f32,
    /// Seconds new pods tolerate a `node.kubernetes.io/not-ready` node before eviction
    /// (kube-apiserver's flag; pods that set their own toleration keep it).
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(i64).range(0..))]
    pub(crate) default_not_ready_toleration_seconds: i64,
    /// Seconds new pods tolerate a `node.kubernetes.io/unreachable` node before eviction.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = clap::value_parser!(i64).range(0..))]
    pub(crate) default_unreachable_toleration_seconds: i64,
    /// How often every Ready node's resource metrics are scraped for the `metrics.k8s.io` API
    /// (kubectl top, HorizontalPodAutoscalers): metrics-server's flag.
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub(crate) metric_resolution: std::time::Duration,
    /// How often each HorizontalPodAutoscaler is reconciled (kube-controller-manager's flag).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_positive_duration)]
    pub(crate) horizontal_pod_autoscaler_sync_period: std::time::Duration,
    /// The pods' network, from which each Node without one gets its `spec.podCIDR`
    /// (kube-controller-manager's node IPAM).
    #[arg(long, value_name = "CIDR", default_value = "10.244.0.0/16", value_parser = parse_cidr)]
    pub(crate) cluster_cidr: controllers::nodeipam::cidrset::Cidr,
    /// The prefix length of each node's pod CIDR.
    #[arg(long, value_name = "BITS", default_value_t = 24, value_parser = clap::value_parser!(u8).range(1..=128))]
    pub(crate) node_cidr_mask_size: u8,
    /// The lifetime of the certificates the CSR signer issues (nodes' client and serving
    /// certificates; a request's `expirationSeconds` may only shorten it):
    /// kube-controller-manager's flag. Nodes renew theirs at 70–90 % of it.
    #[arg(long, value_name = "DURATION", default_value = "8760h0m0s", value_parser = parse_positive_duration)]
    pub(crate) cluster_signing_duration: std::time::Duration,
}

/// A rate or fraction: a finite number, not negative.
fn parse_rate(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!(
            "invalid number {s:?}: expected a number of 0 or more, e.g. 0.1"
        )),
    }
}

fn parse_cidr(s: &str) -> Result<controllers::nodeipam::cidrset::Cidr, String> {
    s.parse()
}

impl ServerArgs {
    /// The controllers' settings these flags give; an error names a flag that does not fit.
    pub(crate) fn controller_options(&self) -> Result<controllers::Options, String> {
        Ok(controllers::Options {
            node_lifecycle: controllers::nodelifecycle::Config {
                node_monitor_period: self.node_monitor_period,
                node_monitor_grace_period: self.node_monitor_grace_period,
                node_startup_grace_period: self.node_startup_grace_period,
                node_eviction_rate: self.node_eviction_rate,
                secondary_node_eviction_rate: self.secondary_node_eviction_rate,
                large_cluster_size_threshold: self.large_cluster_size_threshold as usize,
                unhealthy_zone_threshold: self.unhealthy_zone_threshold,
            },
            node_ipam: Some(controllers::nodeipam::Config::new(
                self.cluster_cidr,
                self.node_cidr_mask_size,
            )?),
            service_accounts: None,
            hpa: None,
            hpa_sync_period: self.horizontal_pod_autoscaler_sync_period,
            csr_approval: None,
            cluster_signing_duration: Some(self.cluster_signing_duration),
        })
    }

    /// The `DefaultTolerationSeconds` admission plugin's settings these flags give.
    pub(crate) fn default_toleration_seconds(&self) -> api::admission::DefaultTolerationSeconds {
        api::admission::DefaultTolerationSeconds {
            not_ready: self.default_not_ready_toleration_seconds,
            unreachable: self.default_unreachable_toleration_seconds,
        }
    }
}

/// A duration above zero.
fn parse_positive_duration(s: &str) -> Result<std::time::Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!("invalid duration {s:?}: must be more than 0")),
        d => Ok(d),
    }
}

/// A positive Go duration (`time.ParseDuration`, as Kubernetes' duration flags take):
/// decimal numbers with units `ns`, `us` (`µs`), `ms`, `s`, `m`, `h`, e.g. `8s`, `1m30s`, `1.5s`.
/// A duration where 0 means "never expires" (kubeadm's `--ttl 0`).
fn parse_ttl(s: &str) -> Result<std::time::Duration, String> {
    if s.trim().trim_end_matches(['s', 'm', 'h']) == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    parse_duration(s)
}

pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let bad = || format!("invalid duration {s:?}: expected e.g. 8s, 500ms, 1m30s");
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    if !(total > 0.0 && total < 1e9) {
        return Err(format!(
            "invalid duration {s:?}: must be more than 0 (and sane)"
        ));
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// A `--tls-san`: an IP address or a DNS name (`*.` wildcards allowed), lower-cased.
fn parse_san(s: &str) -> Result<String, String> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(s.to_string());
    }
    let name = s.to_ascii_lowercase();
    let bare = name.strip_prefix("*.").unwrap_or(&name);
    let problems = api::validation::is_dns1123_subdomain(bare);
    if problems.is_empty() {
        Ok(name)
    } else {
        Err(format!(
            "not an IP address or DNS name: {}",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{parse_duration, parse_rate};

    #[test]
    fn rates_are_numbers_of_zero_or_more() {
        assert_eq!(parse_rate("0.1"), Ok(0.1));
        assert_eq!(parse_rate("0"), Ok(0.0));
        for bad in ["-1", "x", "NaN", "inf"] {
            assert!(
                parse_rate(bad).unwrap_err().contains("invalid number"),
                "{bad}"
            );
        }
    }

    #[test]
    fn durations_as_go_parses_them() {
        assert_eq!(parse_duration("8s"), Ok(Duration::from_secs(8)));
        assert_eq!(parse_duration("1m0s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "8", "s", "8x", "-1s", "0s", "1.2.3s"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains("invalid duration"), "{bad}: {err}");
        }
    }
}
