//! Service addresses on the node: a ClusterIP (or external IP) can only be bound once the
//! node holds it, so the proxy adds it as a /32 (/128) to the dummy interface [`INTERFACE`],
//! creating that interface when missing, with the `ip` command (needs root). A kernel without
//! the dummy link type (seen on some VM kernels) gets the addresses on `lo` instead, which
//! routes them locally just the same. When neither is possible the listener is skipped and
//! logged by the caller; NodePorts and LoadBalancer ports on the node's own addresses keep
//! working.
//!
//! Addresses are given back as kube-proxy's IPVS mode unbinds them from `kube-ipvs0`: the
//! listener reconciler keeps a [`Held`] set, [`Held::release_unused`] removes an address once
//! no listener needs it (its Service was deleted or changed), and [`Held::release_all`] removes
//! them all when the proxy stops, then deletes [`INTERFACE`] if nothing else is left on it.
//! Every address on [`INTERFACE`] is the proxy's; on `lo` only addresses this proxy added
//! itself are removed. A killed run cannot give its addresses back, so the addresses a node
//! adds are recorded in its state (`Held::new`'s record file, mode 0600, one `ADDRESS DEVICE`
//! line each, under the network namespace's identity): the next start adopts what the record
//! lists and what is on [`INTERFACE`] ([`Held::adopt_leftovers`]) and removes those no service
//! needs. An address on `lo` that is not in the record is never touched.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::path::PathBuf;

use crate::Error;

/// The dummy interface holding service addresses.
pub const INTERFACE: &str = "paddock-svc";

async fn ip(args: &[&str]) -> Result<(bool, String), std::io::Error> {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    ))
}

fn cidr(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(_) => format!("{addr}/32"),
        IpAddr::V6(_) => format!("{addr}/128"),
    }
}

/// Where [`ensure`] put an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    /// The interface: [`INTERFACE`] or `lo`.
    pub device: &'static str,
    /// Whether this call added it (`false`: it was there already).
    pub added: bool,
}

impl Placed {
    /// Whether the proxy removes the address when done with it: everything on its own
    /// interface, and on `lo` only what it added.
    pub fn owned(&self) -> bool {
        self.device == INTERFACE || self.added
    }
}

/// Adds `addr` to [`INTERFACE`], creating it when missing (or to `lo` when the kernel has no
/// dummy links); an address already there is fine.
pub async fn ensure(addr: IpAddr) -> Result<Placed, Error> {
    let fail = |message: String| Error::ServiceIp {
        ip: addr,
        interface: INTERFACE.to_string(),
        message,
    };
    let (exists, _) = ip(&["link", "show", INTERFACE])
        .await
        .map_err(|e| fail(e.to_string()))?;
    let mut device = INTERFACE;
    if !exists {
        let (ok, err) = ip(&["link", "add", INTERFACE, "type", "dummy"])
            .await
            .map_err(|e| fail(e.to_string()))?;
        if !ok && err.contains("Unknown device type") {
            device = "lo";
        } else if !ok && !err.contains("File exists") {
            return Err(fail(err));
        } else {
            let (ok, err) = ip(&["link", "set", INTERFACE, "up"])
                .await
                .map_err(|e| fail(e.to_string()))?;
            if !ok {
                return Err(fail(err));
            }
        }
    }
    let (ok, err) = ip(&["addr", "add", &cidr(addr), "dev", device])
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !ok && !err.contains("File exists") && !err.contains("already assigned") {
        return Err(fail(err));
    }
    Ok(Placed { device, added: ok })
}

/// Removes `addr` from `device`; an address already gone is fine.
pub async fn remove(addr: IpAddr, device: &str) -> Result<(), Error> {
    let fail = |message: String| Error::ServiceIpRemove {
        ip: addr,
        interface: device.to_string(),
        message,
    };
    let (ok, err) = ip(&["addr", "del", &cidr(addr), "dev", device])
        .await
        .map_err(|e| fail(e.to_string()))?;
    // "Cannot assign requested address": not (or no longer) on the device.
    if !ok && !err.contains("Cannot assign requested address") && !err.contains("does not exist") {
        return Err(fail(err));
    }
    Ok(())
}

/// Deletes [`INTERFACE`] when no address is left on it.
async fn delete_interface_if_empty() -> Result<(), Error> {
    let fail = |message: String| Error::ServiceIpRemove {
        ip: IpAddr::from([0, 0, 0, 0]),
        interface: INTERFACE.to_string(),
        message,
    };
    let out = tokio::process::Command::new("ip")
        .args(["-o", "addr", "show", "dev", INTERFACE])
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !out.status.success() || !out.stdout.is_empty() {
        // Gone already, or still carrying addresses someone else put there.
        return Ok(());
    }
    let (ok, err) = ip(&["link", "del", INTERFACE])
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !ok && !err.contains("Cannot find device") {
        return Err(fail(err));
    }
    Ok(())
}

/// The service addresses the proxy holds, with where each one is.
#[derive(Debug, Default)]
pub struct Held {
    addrs: HashMap<IpAddr, Placed>,
    /// Where the addresses this proxy added are recorded (see the module docs).
    record: Option<PathBuf>,
}

/// The most a record file is read (a line per service address).
const RECORD_MAX: u64 = 1 << 20;

impl Held {
    /// An empty set; `record` is the file where the addresses the proxy adds are kept.
    pub fn new(record: Option<PathBuf>) -> Self {
        Self {
            addrs: HashMap::new(),
            record,
        }
    }

    /// Takes over the addresses a run that could not clean up left behind: those in the record
    /// and every one on [`INTERFACE`], so the next [`Held::release_unused`] removes those no
    /// service needs.
    pub async fn adopt_leftovers(&mut self) {
        if let Some(path) = self.record.clone() {
            let read = tokio::task::spawn_blocking(move || read_record(&path)).await;
            match read {
                Ok(Ok(recorded)) => {
                    for (addr, device) in recorded {
                        self.addrs.insert(
                            addr,
                            Placed {
                                device,
                                added: true,
                            },
                        );
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot read the service address record"),
                Err(e) => tracing::warn!(error = %e, "cannot read the service address record"),
            }
        }
        let out = tokio::process::Command::new("ip")
            .args(["-o", "addr", "show", "dev", INTERFACE])
            .kill_on_drop(true)
            .output()
            .await;
        let Ok(out) = out else { return };
        if !out.status.success() {
            return;
        }
        for addr in parse_addrs(&String::from_utf8_lossy(&out.stdout)) {
            self.addrs.entry(addr).or_insert(Placed {
                device: INTERFACE,
                added: false,
            });
        }
    }

    /// Makes sure the node holds `addr` ([`ensure`] the first time, nothing after).
    pub async fn hold(&mut self, addr: IpAddr) -> Result<(), Error> {
        if let std::collections::hash_map::Entry::Vacant(slot) = self.addrs.entry(addr) {
            let placed = ensure(addr).await?;
            slot.insert(placed);
            // Recorded once it is there: a crash right before leaves this one address behind,
            // never takes someone else's.
            if placed.owned() {
                self.save().await;
            }
        }
        Ok(())
    }

    /// Writes the record: every owned address, or no file when there is none.
    async fn save(&self) {
        let Some(path) = self.record.clone() else {
            return;
        };
        let owned: Vec<(IpAddr, &'static str)> = self
            .addrs
            .iter()
            .filter(|(_, p)| p.owned())
            .map(|(a, p)| (*a, p.device))
            .collect();
        let written = tokio::task::spawn_blocking(move || write_record(&path, &owned)).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot write the service address record"),
            Err(e) => tracing::warn!(error = %e, "cannot write the service address record"),
        }
    }

    /// Gives back every held address not in `needed` (failures are logged: a stale address
    /// is harmless, and the next release tries again).
    pub async fn release_unused(&mut self, needed: &HashSet<IpAddr>) {
        let unused: Vec<IpAddr> = self
            .addrs
            .keys()
            .filter(|a| !needed.contains(a))
            .copied()
            .collect();
        let changed = !unused.is_empty();
        for addr in unused {
            self.release(addr).await;
        }
        if changed {
            self.save().await;
        }
    }

    /// Gives back every held address and deletes [`INTERFACE`] when it is left empty.
    pub async fn release_all(&mut self) {
        let all: Vec<IpAddr> = self.addrs.keys().copied().collect();
        let had_interface = self.addrs.values().any(|p| p.device == INTERFACE);
        for addr in all {
            self.release(addr).await;
        }
        self.save().await;
        if had_interface && let Err(e) = delete_interface_if_empty().await {
            tracing::warn!(error = %e, "cannot delete the service address interface");
        }
    }

    async fn release(&mut self, addr: IpAddr) {
        let Some(placed) = self.addrs.get(&addr).copied() else {
            return;
        };
        if placed.owned()
            && let Err(e) = remove(addr, placed.device).await
        {
            tracing::warn!(%addr, error = %e, "cannot remove service address");
            return;
        }
        tracing::debug!(%addr, device = placed.device, "service address released");
        self.addrs.remove(&addr);
    }
}

/// This thread's network namespace (`net:[inode]` on device `dev`), which a record belongs to.
fn netns_id() -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    // `thread-self`: a thread may have entered a namespace of its own (as the tests do).
    let m = std::fs::metadata("/proc/thread-self/ns/net")?;
    Ok(format!("{}:{}", m.dev(), m.ino()))
}

/// Writes the record file (mode 0600) through a temporary file, or removes it when `owned`
/// is empty.
fn write_record(path: &std::path::Path, owned: &[(IpAddr, &'static str)]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if owned.is_empty() {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    }
    let mut text = format!("netns {}\n", netns_id()?);
    for (addr, device) in owned {
        text.push_str(&format!("{addr} {device}\n"));
    }
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The addresses a record lists, if it was written in this network namespace (a data dir
/// moved to another namespace must not take addresses there). Only [`INTERFACE`] and `lo`
/// are accepted as devices.
fn read_record(path: &std::path::Path) -> std::io::Result<Vec<(IpAddr, &'static str)>> {
    use std::io::Read;
    let mut text = String::new();
    match std::fs::File::open(path) {
        Ok(f) => f.take(RECORD_MAX).read_to_string(&mut text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut lines = text.lines();
    let here = netns_id()?;
    if lines.next().and_then(|l| l.strip_prefix("netns ")) != Some(here.as_str()) {
        tracing::warn!(record = %path.display(),
            "the service address record is from another network namespace; ignoring it");
        return Ok(Vec::new());
    }
    Ok(lines
        .filter_map(|line| {
            let (addr, device) = line.split_once(' ')?;
            let device = match device {
                INTERFACE => INTERFACE,
                "lo" => "lo",
                _ => return None,
            };
            Some((addr.parse().ok()?, device))
        })
        .collect())
}

/// The addresses of `ip -o addr show` output (`… inet 10.96.0.10/32 scope global …`).
fn parse_addrs(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            let cidr = words.next()?;
            cidr.split('/').next()?.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests;
