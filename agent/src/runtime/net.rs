//! Pod networking for isolated pods: the node bridge (first address of the pod CIDR), a veth
//! pair per pod (node end on the bridge, `eth0` in the pod with loopback up and a default
//! route via the bridge), and pod IP allocation from the node's pod CIDR, persisted as one
//! file per address under `<root>/ipam/` so a restarted agent never hands out a live address.
//! The bridge is kept in place while pods run ([`Bridge`]: recreated with their veths plugged
//! back in when someone deletes it) and deleted at shutdown only when nothing else is plugged
//! into it. The node does not share the bridge or the CIDR with another node: `paddock` runs
//! one node per network namespace. Routes to the other nodes' pod CIDRs and the NAT of pod
//! traffic leaving the cluster are [`crate::podnet`]'s.
//!
//! Links are managed with iproute2's `ip` (run in the agent's network namespace; the pod side
//! through `nsenter --net=/proc/<holder>/ns/net`).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use tokio::process::Command;

use super::RuntimeError;

/// The node's network settings the runtime needs.
#[derive(Debug, Clone)]
pub struct NodeNetwork {
    /// The node's pod CIDR (`10.244.0.0/24`); the first address goes to the bridge.
    pub pod_cidr: PodCidr,
    /// The bridge's name (`paddock0`).
    pub bridge: String,
    /// Whether to isolate pods in namespaces (only honoured when running as root on Linux).
    pub isolated: bool,
    /// The node's address: the pod IP of host-network pods and of all pods in host mode.
    pub node_ip: IpAddr,
}

impl NodeNetwork {
    /// Defaults: pod CIDR `10.244.0.0/24`, bridge `paddock0`, isolated, node IP 127.0.0.1.
    pub fn new(pod_cidr: PodCidr) -> Self {
        Self {
            pod_cidr,
            bridge: "paddock0".to_string(),
            isolated: true,
            node_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

/// An IPv4 pod CIDR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PodCidr {
    /// The network address.
    pub network: Ipv4Addr,
    /// The prefix length (8..=30).
    pub prefix: u8,
}

impl PodCidr {
    /// Parses `a.b.c.d/n` (host bits must be zero; prefix 8..=30).
    pub fn parse(s: &str) -> Result<Self, RuntimeError> {
        let bad = || RuntimeError::Config(format!("invalid pod CIDR {s:?}"));
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let network: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if !(8..=30).contains(&prefix) {
            return Err(RuntimeError::Config(format!(
                "pod CIDR {s:?}: prefix must be between /8 and /30"
            )));
        }
        let cidr = Self { network, prefix };
        if u32::from(network) & !cidr.mask() != 0 {
            return Err(RuntimeError::Config(format!(
                "pod CIDR {s:?} has host bits set"
            )));
        }
        Ok(cidr)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix))
    }

    /// The bridge (gateway) address: the first address.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Addresses pods may get: from the second address to the one before broadcast.
    pub fn pod_range(&self) -> impl Iterator<Item = Ipv4Addr> {
        let base = u32::from(self.network);
        let size = 1u32 << (32 - u32::from(self.prefix));
        (base + 2..base + size - 1).map(Ipv4Addr::from)
    }
}

impl std::fmt::Display for PodCidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The file remembering the last address handed out.
const LAST: &str = "last_reserved_ip";

/// Pod IP allocation backed by one file per address.
#[derive(Debug, Clone)]
pub(crate) struct Ipam {
    dir: PathBuf,
    cidr: PodCidr,
}

impl Ipam {
    pub(crate) fn new(dir: PathBuf, cidr: PodCidr) -> Self {
        Self { dir, cidr }
    }

    /// Allocates a free address for `owner` (a sandbox id).
    pub(crate) fn allocate(&self, owner: &str) -> Result<Ipv4Addr, RuntimeError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| RuntimeError::io(format!("create {}", self.dir.display()), e))?;
        // Like host-local IPAM: continue after the last address handed out, so a freed
        // address is not reused at once (stale endpoints would reach the wrong pod).
        let last: Option<Ipv4Addr> = std::fs::read_to_string(self.dir.join(LAST))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let first = u32::from(self.cidr.gateway()) + 1;
        // All but the network, gateway and broadcast addresses (prefix ≤ 30: at least one).
        let count = (1u32 << (32 - u32::from(self.cidr.prefix))) - 3;
        let start = last
            .map(u32::from)
            .filter(|l| (first..first + count).contains(l))
            .map_or(0, |l| l - first + 1);
        for i in 0..count {
            let ip = Ipv4Addr::from(first + (start + i) % count);
            let path = self.dir.join(ip.to_string());
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    use std::io::Write;
                    f.write_all(owner.as_bytes())
                        .map_err(|e| RuntimeError::io(format!("write {}", path.display()), e))?;
                    let _ = std::fs::write(self.dir.join(LAST), ip.to_string());
                    return Ok(ip);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(RuntimeError::io(format!("create {}", path.display()), e)),
            }
        }
        Err(RuntimeError::NoFreeIp(self.cidr.to_string()))
    }

    /// Releases `ip` if `owner` holds it.
    pub(crate) fn release(&self, ip: IpAddr, owner: &str) {
        let path = self.dir.join(ip.to_string());
        if std::fs::read_to_string(&path).is_ok_and(|o| o == owner) {
            let _ = std::fs::remove_file(&path);
        }
    }

    /// Releases every address whose owner is not in `live`.
    pub(crate) fn release_all_except(&self, live: &[String]) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            if entry.file_name() == LAST {
                continue;
            }
            if let Ok(owner) = std::fs::read_to_string(entry.path())
                && !live.contains(&owner)
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Runs `ip ARGS` (in the network namespace of `netns_of`, else the agent's); returns stdout.
pub(crate) async fn ip(
    args: &[&str],
    stdin: Option<String>,
    netns_of: Option<u32>,
) -> Result<String, RuntimeError> {
    let mut cmd = match netns_of {
        Some(pid) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net=/proc/{pid}/ns/net")).arg("ip");
            c
        }
        None => Command::new("ip"),
    };
    cmd.args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| RuntimeError::Network(format!("ip {}: {e}", args.join(" "))))?;
    if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
        use tokio::io::AsyncWriteExt;
        let _ = w.write_all(text.as_bytes()).await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| RuntimeError::Network(format!("ip {}: {e}", args.join(" "))))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(RuntimeError::Network(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Whether a link exists in the agent's network namespace.
pub(crate) fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists() || {
        // /sys may show another namespace's links (it reflects the namespace of whoever mounted
        // it); ask the kernel through `ip` in that case.
        std::process::Command::new("ip")
            .args(["link", "show", "dev", name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// Creates the bridge with the gateway address if it is missing, and brings it up.
async fn setup_bridge(bridge: &str, cidr: &PodCidr) -> Result<(), RuntimeError> {
    if ip(&["link", "show", "dev", bridge], None, None)
        .await
        .is_err()
    {
        ip(&["link", "add", bridge, "type", "bridge"], None, None).await?;
    }
    let addr = format!("{}/{}", cidr.gateway(), cidr.prefix);
    ip(&["addr", "replace", &addr, "dev", bridge], None, None).await?;
    ip(&["link", "set", bridge, "up"], None, None).await?;
    // The bridge is the pods' gateway: let the node route their traffic (to other nodes' pod
    // CIDRs), as the CNI bridge plugin does for a gateway bridge. This is the sysctl of the
    // agent's network namespace.
    std::fs::write("/proc/sys/net/ipv4/ip_forward", b"1")
        .map_err(|e| RuntimeError::Network(format!("enable IPv4 forwarding: {e}")))
}

/// The index of link `name` in the agent's network namespace (`None`: no such link). An
/// `ioctl` on a socket of the calling thread's namespace: cheap enough to poll, and right even
/// where `/sys` shows another namespace.
fn link_index(name: &str) -> Option<u32> {
    nix::net::if_::if_nametoindex(name).ok()
}

/// The node's bridge as this runtime set it up. A bridge deleted under running pods (`ip link
/// del paddock0`) takes their connectivity with it: its ports stay, masterless. [`Bridge::ensure`]
/// and [`Bridge::check`] notice that by the bridge's index, recreate it and put the live pods'
/// veths back on it; [`Bridge::release`] deletes it only when nothing else is plugged in.
#[derive(Debug)]
pub(crate) struct Bridge {
    name: String,
    cidr: PodCidr,
    state: tokio::sync::Mutex<BridgeState>,
}

#[derive(Debug, Default)]
struct BridgeState {
    /// The index of the bridge this runtime set up (`None`: not set up, or released).
    index: Option<u32>,
    /// Whether a watcher task runs [`Bridge::check`].
    watched: bool,
}

impl Bridge {
    pub(crate) fn new(name: String, cidr: PodCidr) -> Self {
        Self {
            name,
            cidr,
            state: tokio::sync::Mutex::new(BridgeState::default()),
        }
    }

    /// The bridge's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Makes sure the bridge is there as this runtime set it up: when it is new to this runtime
    /// or was replaced since, the veths `live` lists are (re)attached to it. Returns `true`
    /// when the caller should start a watcher calling [`Bridge::check`] (none runs yet).
    pub(crate) async fn ensure(
        &self,
        live: impl FnOnce() -> Vec<String>,
    ) -> Result<bool, RuntimeError> {
        let mut state = self.state.lock().await;
        if state.index.is_none() || state.index != link_index(&self.name) {
            self.rebuild(&mut state, live()).await?;
        }
        let start_watcher = !state.watched;
        state.watched = true;
        Ok(start_watcher)
    }

    /// The watcher's periodic check: recreates the bridge (and re-attaches `live`) when it is
    /// gone or replaced. Returns `false` once the bridge was released: the watcher ends.
    pub(crate) async fn check(&self, live: impl FnOnce() -> Vec<String>) -> bool {
        let mut state = self.state.lock().await;
        let Some(index) = state.index else {
            state.watched = false;
            return false;
        };
        if link_index(&self.name) != Some(index) {
            let veths = live();
            tracing::warn!(bridge = %self.name, pods = veths.len(),
                "the pod bridge was deleted or replaced; recreating it and re-attaching the pods");
            if let Err(e) = self.rebuild(&mut state, veths).await {
                tracing::warn!(bridge = %self.name, error = %e, "cannot recreate the pod bridge; retrying");
            }
        }
        true
    }

    async fn rebuild(
        &self,
        state: &mut BridgeState,
        veths: Vec<String>,
    ) -> Result<(), RuntimeError> {
        setup_bridge(&self.name, &self.cidr).await?;
        if !veths.is_empty() {
            // One `ip` for all; `-force` goes on past a veth that vanished with its pod.
            let batch: String = veths
                .iter()
                .map(|v| format!("link set {v} master {} up\n", self.name))
                .collect();
            if let Err(e) = ip(&["-force", "-batch", "-"], Some(batch), None).await {
                tracing::warn!(bridge = %self.name, error = %e, "some pods could not be re-attached");
            }
        }
        state.index = link_index(&self.name);
        Ok(())
    }

    /// Deletes the bridge if this runtime set it up and no link is plugged into it any more
    /// (another node's or someone else's veth keeps it).
    pub(crate) async fn release(&self) {
        let mut state = self.state.lock().await;
        if state.index.take().is_none() || link_index(&self.name).is_none() {
            return;
        }
        match ip(&["-o", "link", "show", "master", &self.name], None, None).await {
            Ok(ports) if ports.trim().is_empty() => {
                if let Err(e) = ip(&["link", "del", &self.name], None, None).await {
                    tracing::warn!(bridge = %self.name, error = %e, "cannot delete the pod bridge");
                }
            }
            Ok(ports) => {
                let names: Vec<&str> = ports.lines().filter_map(port_name).collect();
                tracing::info!(bridge = %self.name, ports = ?names,
                    "keeping the pod bridge: other links are still plugged into it");
            }
            Err(e) => tracing::warn!(bridge = %self.name, error = %e,
                "cannot list the pod bridge's ports; keeping it"),
        }
    }
}

/// The link name of an `ip -o link` line (`7: pdkab12@if2: <…> …`).
fn port_name(line: &str) -> Option<&str> {
    let name = line.split(": ").nth(1)?;
    Some(name.split('@').next().unwrap_or(name))
}

/// The node-side veth name for a sandbox (≤ 15 bytes, as link names must be).
pub(crate) fn veth_name(sandbox_id: &str) -> String {
    let short: String = sandbox_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(11)
        .collect();
    format!("pdk{short}")
}

/// Joins the network namespace of `holder` to the bridge with address `pod_ip`.
pub(crate) async fn attach_pod(
    holder: u32,
    veth: &str,
    bridge: &str,
    pod_ip: Ipv4Addr,
    cidr: &PodCidr,
) -> Result<(), RuntimeError> {
    // Two `ip -batch` runs: the node side, then the pod side.
    let node = format!(
        "link add {veth} type veth peer name eth0 netns {holder}\nlink set {veth} master {bridge} up\n"
    );
    ip(&["-batch", "-"], Some(node), None).await?;
    let batch = format!(
        "link set lo up\naddr add {pod_ip}/{prefix} dev eth0\nlink set eth0 up\nroute add default via {gw}\n",
        prefix = cidr.prefix,
        gw = cidr.gateway()
    );
    ip(&["-batch", "-"], Some(batch), Some(holder))
        .await
        .map(drop)
}

/// Deletes the node end of a pod's veth pair (gone already is fine).
pub(crate) async fn detach_pod(veth: &str) {
    // Usually already gone with the pod's namespace; an error here means just that.
    let _ = ip(&["link", "del", veth], None, None).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_parse_and_ranges() {
        let c = PodCidr::parse("10.244.3.0/24").expect("valid");
        assert_eq!(c.gateway(), Ipv4Addr::new(10, 244, 3, 1));
        let r: Vec<_> = c.pod_range().collect();
        assert_eq!(r.first(), Some(&Ipv4Addr::new(10, 244, 3, 2)));
        assert_eq!(r.last(), Some(&Ipv4Addr::new(10, 244, 3, 254)));
        assert!(PodCidr::parse("10.244.3.1/24").is_err());
        assert!(PodCidr::parse("10.244.3.0/31").is_err());
        assert!(PodCidr::parse("nonsense").is_err());
    }

    #[test]
    fn ipam_never_hands_out_a_held_address_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cidr = PodCidr::parse("10.1.0.0/29").expect("valid");
        let ipam = Ipam::new(dir.path().to_path_buf(), cidr);
        let a = ipam.allocate("a").expect("a");
        let b = Ipam::new(dir.path().to_path_buf(), cidr)
            .allocate("b")
            .expect("b");
        assert_ne!(a, b);
        for o in ["c", "d", "e"] {
            ipam.allocate(o).expect("room");
        }
        assert!(matches!(ipam.allocate("f"), Err(RuntimeError::NoFreeIp(_))));
        ipam.release(IpAddr::V4(a), "not-the-owner");
        assert!(ipam.allocate("g").is_err());
        ipam.release(IpAddr::V4(a), "a");
        assert_eq!(ipam.allocate("h").expect("freed"), a);
        ipam.release_all_except(&["h".to_string()]);
        // The held address and the last-handed-out marker remain.
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 2);
    }

    #[test]
    fn ipam_does_not_reuse_a_freed_address_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ipam = Ipam::new(
            dir.path().to_path_buf(),
            PodCidr::parse("10.1.0.0/24").expect("cidr"),
        );
        let a = ipam.allocate("a").expect("a");
        ipam.release(IpAddr::V4(a), "a");
        let b = ipam.allocate("b").expect("b");
        assert_ne!(a, b);
        assert_eq!(b, Ipv4Addr::new(10, 1, 0, 3));
    }

    #[test]
    fn port_names_of_ip_link_lines() {
        let line =
            "7: pdkab12cd34ef@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 master paddock0";
        assert_eq!(port_name(line), Some("pdkab12cd34ef"));
        assert_eq!(port_name("3: eth1: <UP> mtu 1500"), Some("eth1"));
        assert_eq!(port_name("garbage"), None);
    }

    #[test]
    fn veth_names_fit_the_kernel_limit() {
        assert!(veth_name("0123456789abcdef0123456789abcdef").len() <= 15);
    }
}
