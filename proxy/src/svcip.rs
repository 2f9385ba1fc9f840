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
//! Every address on [`INTERFACE`] is the proxy's: those a killed run left behind are adopted
//! at start ([`Held::adopt_leftovers`]) and removed unless a service still needs them; on
//! `lo` only addresses this proxy added itself are removed.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

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
}

impl Held {
    /// Takes over the addresses already on [`INTERFACE`] (left by a run that could not clean
    /// up), so the next [`Held::release_unused`] removes those no service needs.
    pub async fn adopt_leftovers(&mut self) {
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
            slot.insert(ensure(addr).await?);
        }
        Ok(())
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
        for addr in unused {
            self.release(addr).await;
        }
    }

    /// Gives back every held address and deletes [`INTERFACE`] when it is left empty.
    pub async fn release_all(&mut self) {
        let all: Vec<IpAddr> = self.addrs.keys().copied().collect();
        let had_interface = self.addrs.values().any(|p| p.device == INTERFACE);
        for addr in all {
            self.release(addr).await;
        }
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
