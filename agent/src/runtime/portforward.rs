//! `kubectl port-forward`'s last hop: a TCP connection to `localhost:<port>` inside the pod's
//! network namespace, as containerd's `PortForward` dials it (so a port the app binds on
//! 127.0.0.1 only is reachable too), IPv4 first, then IPv6.
//!
//! The sockets are made on a short-lived thread that entered the pod's namespace: a socket
//! stays in the namespace it was created in, so the connect itself runs on the tokio runtime,
//! and no pooled thread is ever left in a pod's namespace.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::Duration;

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
use tokio::net::{TcpSocket, TcpStream};

use super::state::SandboxRecord;

/// How long one connect may take (a local connect answers at once unless the pod is stuck).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `localhost:port` in `rec`'s network namespace (the node's for a host-network
/// or non-isolated pod). The error is the text containerd gives the kubelet.
pub(crate) async fn dial(rec: &SandboxRecord, port: u16) -> Result<TcpStream, String> {
    let own_namespace = rec.isolated && !rec.host_network;
    let (ns_path, sockets) = match rec.holder {
        Some(holder) if own_namespace => {
            let path = format!("/proc/{}/ns/net", holder.pid);
            let p = path.clone();
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::Builder::new()
                .name("portforward-netns".into())
                .spawn(move || {
                    let _ = tx.send(sockets_in(&p, holder));
                })
                .map_err(|e| format!("failed to start the port-forward thread: {e}"))?;
            let sockets = rx
                .await
                .map_err(|_| "the port-forward thread failed".to_string())?
                .map_err(|e| {
                    format!("failed to execute portforward in network namespace {path:?}: {e}")
                })?;
            (path, sockets)
        }
        Some(_) | None if own_namespace => {
            return Err(format!(
                "failed to execute portforward in network namespace of sandbox {:?}: the sandbox has no namespace holder",
                rec.id
            ));
        }
        _ => (
            "/proc/1/ns/net".to_string(),
            (
                new_socket(AddressFamily::Inet),
                new_socket(AddressFamily::Inet6),
            ),
        ),
    };
    let (v4, v6) = sockets;
    let e4 = match connect(v4, IpAddr::V4(Ipv4Addr::LOCALHOST), port).await {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    let e6 = match connect(v6, IpAddr::V6(Ipv6Addr::LOCALHOST), port).await {
        Ok(s) => return Ok(s),
        Err(e) => e,
    };
    Err(format!(
        "failed to execute portforward in network namespace {ns_path:?}: failed to connect to localhost:{port} inside namespace {:?}, IPv4: {e4} IPv6 {e6} ",
        rec.id
    ))
}

type Sockets = (Result<OwnedFd, String>, Result<OwnedFd, String>);

/// On a fresh thread (which ends right after): enters the namespace of `holder` and makes one
/// IPv4 and one IPv6 socket there.
fn sockets_in(path: &str, holder: super::state::ProcRef) -> Result<Sockets, String> {
    let ns = std::fs::File::open(path).map_err(|e| format!("open {path}: {e}"))?;
    // The namespace file was opened from the pid: make sure that pid was still the holder.
    if !holder.alive() {
        return Err("the pod's namespace holder is gone".into());
    }
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("setns {path}: {e}"))?;
    Ok((
        new_socket(AddressFamily::Inet),
        new_socket(AddressFamily::Inet6),
    ))
}

fn new_socket(family: AddressFamily) -> Result<OwnedFd, String> {
    socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| format!("socket: {}", go_errno(e as i32)))
}

/// `dial tcp4 127.0.0.1:80: connect: connection refused`, as Go's net package words it.
async fn connect(
    sock: Result<OwnedFd, String>,
    ip: IpAddr,
    port: u16,
) -> Result<TcpStream, String> {
    let addr = SocketAddr::new(ip, port);
    let net = if ip.is_ipv4() { "tcp4" } else { "tcp6" };
    let fd = sock.map_err(|e| format!("dial {net} {addr}: {e}"))?;
    let sock = TcpSocket::from_std_stream(std::net::TcpStream::from(fd));
    let _ = sock.set_nodelay(true);
    match tokio::time::timeout(CONNECT_TIMEOUT, sock.connect(addr)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!(
            "dial {net} {addr}: connect: {}",
            e.raw_os_error()
                .map(go_errno)
                .unwrap_or_else(|| e.to_string())
        )),
        Err(_) => Err(format!("dial {net} {addr}: i/o timeout")),
    }
}

/// An errno as Go prints it (strerror, first letter lowercase).
fn go_errno(code: i32) -> String {
    let s = nix::errno::Errno::from_raw(code).desc();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_record() -> SandboxRecord {
        SandboxRecord {
            id: "sb1".into(),
            pod_uid: "u".into(),
            namespace: "ns".into(),
            name: "p".into(),
            hostname: "p".into(),
            host_network: true,
            isolated: false,
            pod_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            holder: None,
            veth: None,
            allocated_ip: false,
            created_paths: vec![],
            volumes: vec![],
            attempt: 0,
        }
    }

    #[tokio::test]
    async fn host_pods_dial_the_nodes_localhost() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let s = dial(&host_record(), port).await.unwrap();
        assert_eq!(s.peer_addr().unwrap().port(), port);
    }

    #[tokio::test]
    async fn a_closed_port_is_reported_as_containerd_words_it() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let e = dial(&host_record(), port).await.unwrap_err();
        assert!(
            e.contains(&format!(
                "failed to connect to localhost:{port} inside namespace \"sb1\", IPv4: dial tcp4 127.0.0.1:{port}: connect: connection refused IPv6 dial tcp6 [::1]:{port}: "
            )),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_isolated_pod_without_holder_is_an_error() {
        let mut r = host_record();
        r.host_network = false;
        r.isolated = true;
        assert!(
            dial(&r, 80)
                .await
                .unwrap_err()
                .contains("no namespace holder")
        );
    }
}
