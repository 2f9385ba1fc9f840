//! Certificates end to end: CertificateSigningRequests with kubectl (`get csr`, `certificate
//! approve|deny`) and the in-process signer; the API server's certificates (kubeadm lifetimes,
//! renewal at start, the names `--listen 0.0.0.0`, `--advertise-address` and `--tls-san` put
//! in them); and what the API server sends to whatever address a Node claims (nothing, unless
//! a cluster-CA certificate proves that address).

use std::io::Read;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{NetNs, Server, manifest, run};

/// A PEM CSR for `cn` in `orgs` with IP `sans`, from a fresh key.
fn request_pem(cn: &str, orgs: &[&str], sans: &[&str]) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    for o in orgs {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, *o);
    }
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

fn csr_yaml(name: &str, pem: &str, signer: &str, usages: &str, extra: &str) -> String {
    use base64::Engine as _;
    let request = base64::engine::general_purpose::STANDARD.encode(pem);
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: {name}}}\nspec:\n  request: {request}\n  signerName: {signer}\n  usages: {usages}\n{extra}"
    )
}

fn parse(der: &[u8]) -> x509_parser::certificate::X509Certificate<'_> {
    x509_parser::parse_x509_certificate(der).unwrap().1
}

fn pem_der(pem: &[u8]) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::from_pem_slice(pem)
        .unwrap()
        .to_vec()
}

fn lifetime_days(der: &[u8]) -> i64 {
    let c = parse(der);
    let v = c.validity();
    (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_days()
}

fn sans(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let c = parse(der);
    let Ok(Some(san)) = c.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::DNSName(d) => Some(d.to_string()),
            GeneralName::IPAddress(b) => <[u8; 4]>::try_from(*b)
                .map(|a| std::net::IpAddr::from(a).to_string())
                .ok(),
            _ => None,
        })
        .collect()
}

#[test]
fn kubectl_lists_approves_and_denies_certificate_requests_and_the_signer_signs() {
    let s = Server::start();
    let serving = csr_yaml(
        "node-serving",
        &request_pem("system:node:n1", &["system:nodes"], &["10.0.0.7"]),
        "kubernetes.io/kubelet-serving",
        "[digital signature, server auth]",
        "  expirationSeconds: 86400\n",
    );
    let bad = csr_yaml(
        "not-a-node",
        &request_pem("system:admin", &["system:masters"], &["10.0.0.8"]),
        "kubernetes.io/kubelet-serving",
        "[digital signature, server auth]",
        "",
    );
    let denied = csr_yaml(
        "to-deny",
        &request_pem("x", &[], &["10.0.0.9"]),
        "example.com/mine",
        "[client auth]",
        "",
    );
    let (_d, path) = manifest("csrs.yaml", &format!("{serving}---\n{bad}---\n{denied}"));
    s.kubectl(&["create", "-f", &path.display().to_string()]);
    let table = s.kubectl(&["get", "csr"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ]
    );
    let row = |name: &str| -> Vec<String> {
        s.kubectl(&["get", "csr", name, "--no-headers"])
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let r = row("node-serving");
    assert_eq!(
        [&r[2], &r[3], &r[4], &r[5]],
        [
            "kubernetes.io/kubelet-serving",
            "system:admin",
            "24h",
            "Pending"
        ]
    );
    assert_eq!(
        s.kubectl(&["certificate", "approve", "node-serving", "not-a-node"]),
        "certificatesigningrequest.certificates.k8s.io/node-serving approved\ncertificatesigningrequest.certificates.k8s.io/not-a-node approved\n"
    );
    assert_eq!(
        s.kubectl(&["certificate", "deny", "to-deny"]),
        "certificatesigningrequest.certificates.k8s.io/to-deny denied\n"
    );
    s.eventually("node-serving issued", || {
        (row("node-serving")[5] == "Approved,Issued").then_some(())
    });
    s.eventually("not-a-node failed", || {
        (row("not-a-node")[5] == "Approved,Failed").then_some(())
    });
    assert_eq!(row("to-deny")[5], "Denied");
    let message = s.kubectl(&[
        "get",
        "csr",
        "not-a-node",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Failed\")].message}",
    ]);
    assert_eq!(message, "subject organization is not system:nodes");
    // The certificate: from the cluster CA, for the requested address, a day long.
    let cert = s.kubectl(&[
        "get",
        "csr",
        "node-serving",
        "-o",
        "jsonpath={.status.certificate}",
    ]);
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(cert.trim())
        .unwrap();
    let der = pem_der(&pem);
    assert_eq!(sans(&der), ["10.0.0.7"]);
    let ca = std::fs::read(s.data_dir().join("ca.crt")).unwrap();
    let ca = pem_der(&ca);
    let ca = parse(&ca);
    assert!(parse(&der).verify_signature(Some(ca.public_key())).is_ok());
    let c = parse(&der);
    let v = c.validity();
    assert_eq!(
        (v.not_after.to_datetime() - v.not_before.to_datetime()).whole_hours(),
        24
    );
}

/// A Node can name any address. `kubectl logs` of a pod "on" it must not send the token (or
/// anything but a TLS hello) to a listener that cannot prove that address with a cluster-CA
/// certificate.
#[test]
fn kubectl_logs_for_a_fake_node_sends_no_token_to_its_address() {
    let s = Server::start();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(3)));
                let mut all = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    all.extend_from_slice(&buf[..n]);
                }
                let _ = tx.send(all);
            });
        }
    });
    let (_d, path) = manifest(
        "fake.yaml",
        &format!(
            "apiVersion: v1\nkind: Node\nmetadata: {{name: fake}}\nstatus:\n  addresses: [{{type: InternalIP, address: 127.0.0.1}}]\n  daemonEndpoints: {{kubeletEndpoint: {{Port: {port}}}}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: victim}}\nspec:\n  nodeName: fake\n  containers: [{{name: main, image: busybox}}]\n"
        ),
    );
    s.kubectl(&["create", "-f", &path.display().to_string()]);
    assert_eq!(
        s.kubectl(&[
            "get",
            "node",
            "fake",
            "-o",
            "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}"
        ]),
        port.to_string()
    );
    let logs = s.kubectl_full(&["logs", "victim"], None);
    let exec = s.kubectl_full(&["exec", "victim", "--", "id"], None);
    let mut seen = Vec::new();
    while let Ok(bytes) = rx.recv_timeout(Duration::from_secs(5)) {
        seen.push(bytes);
    }
    assert!(!seen.is_empty(), "the API server never dialled the node");
    for bytes in seen {
        let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        assert!(!text.contains(&s.token), "the admin token was sent: {text}");
        assert!(
            !text.contains("authorization") && !text.contains("containerlogs"),
            "a request was sent: {text}"
        );
    }
    assert!(!logs.status.success() && !exec.status.success());
    let err = String::from_utf8_lossy(&logs.stderr);
    assert!(err.contains("tls"), "{err}");
}

/// The certificates the server makes: CA ten years and `pathlen:0`, serving certificate one
/// year (what a client sees in the handshake); one within 90 days of its end is replaced when
/// the server starts again.
#[test]
fn server_certificates_have_kubeadm_lifetimes_and_are_renewed_at_start() {
    let s = Server::start();
    let data = s.data_dir();
    let ca_pem = std::fs::read(data.join("ca.crt")).unwrap();
    let ca_der = pem_der(&ca_pem);
    assert_eq!(lifetime_days(&ca_der), 3650);
    let ca = parse(&ca_der);
    let bc = ca.basic_constraints().unwrap().unwrap().value;
    assert_eq!((bc.ca, bc.path_len_constraint), (true, Some(0)));
    let served = served_certificate(&s, &ca_der);
    assert_eq!(lifetime_days(&served), 365);
    assert_eq!(
        served,
        pem_der(&std::fs::read(data.join("server.crt")).unwrap())
    );

    // Stopped, its serving certificate replaced by one of the same CA ending in 30 days.
    let dir = s.stop();
    let data = dir.path().join("data");
    let ca_key = std::fs::read_to_string(data.join("ca.key")).unwrap();
    let ca_key = rcgen::KeyPair::from_pem(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_der(
        &rustls::pki_types::CertificateDer::from(ca_der.clone()),
        &ca_key,
    )
    .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![
        "127.0.0.1".to_string(),
        "::1".into(),
        "localhost".into(),
    ])
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(335);
    params.not_after = now + time::Duration::days(30);
    let short = params.signed_by(&key, &issuer).unwrap();
    std::fs::write(data.join("server.crt"), short.pem()).unwrap();
    std::fs::write(data.join("server.key"), key.serialize_pem()).unwrap();
    let s = Server::start_in(dir);
    let served = served_certificate(&s, &ca_der);
    assert_ne!(served, short.der().to_vec());
    assert_eq!(lifetime_days(&served), 365);
    assert_eq!(std::fs::read(s.data_dir().join("ca.crt")).unwrap(), ca_pem);
}

/// The certificate the server at `s.url` presents, checked against `ca`.
fn served_certificate(s: &Server, ca: &[u8]) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca.to_vec()))
        .unwrap();
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let addr = s.url.strip_prefix("https://").unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    conn.peer_certificates().unwrap()[0].to_vec()
}

/// `--listen 0.0.0.0` is warned about and certifies this machine's addresses (here a test
/// host's 192.0.2.10) and the `--tls-san` names; `--advertise-address` is what the kubeconfig
/// names, and kubectl verifies the server there.
#[test]
fn listening_everywhere_warns_and_certifies_the_hosts_addresses() {
    let ns = NetNs::new();
    for args in [
        vec!["link", "add", "paddock-e2e0", "type", "bridge"],
        vec!["addr", "add", "192.0.2.10/24", "dev", "paddock-e2e0"],
        vec!["link", "set", "paddock-e2e0", "up"],
    ] {
        let mut c = std::process::Command::new("ip");
        c.args(["-n", &ns.name]).args(&args);
        assert!(run(c, None).status.success(), "ip {args:?}");
    }
    let s = Server::launch_in(
        tempfile::tempdir().unwrap(),
        &[
            "server",
            "--listen",
            "0.0.0.0:0",
            "--tls-san",
            "Paddock.Example",
            "--advertise-address",
            "192.0.2.10",
        ],
        Some(ns),
    );
    assert!(s.url.starts_with("https://192.0.2.10:"), "{}", s.url);
    let log = s.log();
    assert!(log.contains("reachable from the network"), "{log}");
    assert!(
        log.contains("serves every address of this machine"),
        "{log}"
    );
    // kubectl (verifying the certificate) through the advertised address.
    s.kubectl(&["get", "namespaces"]);
    let served = pem_der(&std::fs::read(s.data_dir().join("server.crt")).unwrap());
    let names = sans(&served);
    for want in ["127.0.0.1", "192.0.2.10", "paddock.example", "localhost"] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    // A bad --tls-san is refused by name.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(["server", "--tls-san", "not a name", "--memory"]);
    let out = run(cmd, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--tls-san") && err.contains("not an IP address or DNS name"),
        "{err}"
    );
}
