//! Service addresses on the node: a ClusterIP (or external IP) can only be bound once the
//! node holds it, so the proxy adds it as a /32 (/128) to the dummy interface [`INTERFACE`],
//! creating that interface when missing, with the `ip` command (needs root). A kernel without
//! the dummy link type (seen on some VM kernels) gets the addresses on `lo` instead, which
//! routes them locally just the same. When neither is possible the listener is skipped and
//! logged by the caller; NodePorts and LoadBalancer ports on the node's own addresses keep
//! working.

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

/// Adds `addr` to [`INTERFACE`], creating it when missing; an address already there is fine.
pub async fn ensure(addr: IpAddr) -> Result<(), Error> {
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
    let cidr = match addr {
        IpAddr::V4(_) => format!("{addr}/32"),
        IpAddr::V6(_) => format!("{addr}/128"),
    };
    let (ok, err) = ip(&["addr", "add", &cidr, "dev", device])
        .await
        .map_err(|e| fail(e.to_string()))?;
    if !ok && !err.contains("File exists") && !err.contains("already assigned") {
        return Err(fail(err));
    }
    Ok(())
}
