//! Joining a node with a bootstrap token (kubeadm's way): `paddock token create` prints a
//! token and the CA hash; `paddock agent --server URL --token-file F --ca-cert-hash H` refuses
//! a wrong hash, else gets a client certificate of its own (`system:node:<name>`, approved by
//! the CSR approver, signed by the signer), keeps it (0600 key) and runs pods with it — logs
//! and exec through the API work; restarted with `--server` alone it rejoins by its
//! certificate. The admin kubeconfig keeps working. With short-lived certificates
//! (`--cluster-signing-duration`), a running node renews its client certificate with
//! requests of its own (`selfnodeclient`) and its serving certificate, and works on past the
//! first certificates' end; a node's request for another node's name is left unapproved.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{NetNs, Server, manifest, run, wait_or_kill};

fn agent(s: &Server, dir: &std::path::Path, args: &[&str]) -> Child {
    let mut cmd = s.command(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(["agent", "--default-runtime", "host"])
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("PADDOCK_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.with_extension("log"))
                .unwrap(),
        ));
    let mut child = cmd.spawn().expect("spawn paddock agent");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    match rx.recv_timeout(Duration::from_secs(90)) {
        Ok(line) => assert!(line.starts_with("node "), "{line}"),
        Err(_) => {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
            panic!(
                "paddock agent did not join within 90 s:\n{log}\nserver:\n{}",
                s.log()
            );
        }
    }
    child
}

fn stop(mut a: Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(a.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .expect("signal agent");
    wait_or_kill(&mut a, Duration::from_secs(40));
}

#[test]
fn a_node_joins_with_a_bootstrap_token_and_keeps_its_certificate() {
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        &["server"],
        Some(NetNs::new()),
    );
    let work = tempfile::tempdir().unwrap();
    let (token_file, hash) = join_token(&s, work.path());
    let token = std::fs::read_to_string(&token_file).unwrap();
    let id = token.split_once('.').unwrap().0.to_string();

    // A wrong hash: the agent refuses to join, says why, and sends nothing.
    let wrong = format!("sha256:{}", "0".repeat(64));
    let bad_dir = work.path().join("bad");
    let mut cmd = s.command(env!("CARGO_BIN_EXE_paddock"));
    cmd.args([
        "agent",
        "--default-runtime",
        "host",
        "--server",
        &s.url,
        "--token-file",
        &token_file,
    ])
    .args([
        "--ca-cert-hash",
        &wrong,
        "--node-name",
        "evil",
        "--data-dir",
    ])
    .arg(&bad_dir);
    let out = run(cmd, None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to join"), "{err}");
    assert!(!err.contains(&token), "the token was printed");
    assert!(s.kubectl(&["get", "csr", "-o", "name"]).trim().is_empty());

    // The right hash: the node joins with a certificate of its own.
    let dir = work.path().join("node");
    let a = agent(
        &s,
        &dir,
        &[
            "--server",
            &s.url,
            "--token-file",
            &token_file,
            "--ca-cert-hash",
            &hash,
            "--node-name",
            "worker-1",
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("pki/kubelet-client-current.pem"), 0o600);
    assert_eq!(mode("pki"), 0o700);
    let csrs = s.get_json(&["get", "csr", "-o", "json"]);
    let client = csrs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet")
        .expect("the node's client CSR");
    assert_eq!(client["spec"]["username"], format!("system:bootstrap:{id}"));
    assert_eq!(client["status"]["conditions"][0]["reason"], "AutoApproved");
    assert_eq!(
        client["status"]["conditions"][0]["message"],
        "Auto approving kubelet client certificate after SubjectAccessReview."
    );
    s.eventually("node worker-1 Ready", || {
        let st = s.kubectl(&[
            "get",
            "node",
            "worker-1",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (st == "True").then_some(())
    });
    let (_m, path) = manifest(
        "join.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: hello}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sh, -c, 'echo started; exec sleep 3600']\n",
    );
    s.kubectl(&["apply", "-f", &path.display().to_string()]);
    s.eventually("the pod runs on worker-1", || {
        let out = s.kubectl(&[
            "get",
            "pod",
            "hello",
            "-o",
            "jsonpath={.spec.nodeName} {.status.phase}",
        ]);
        (out == "worker-1 Running").then_some(())
    });
    s.eventually("its log", || {
        (s.kubectl_full(&["logs", "hello"], None).stdout == b"started\n").then_some(())
    });
    let (code, _) = s.kubectl_err(&["exec", "hello", "--", "sh", "-c", "exit 3"], None);
    assert_eq!(code, 3);
    let lease = s.kubectl(&[
        "get",
        "lease",
        "-n",
        "kube-node-lease",
        "worker-1",
        "-o",
        "jsonpath={.spec.holderIdentity}",
    ]);
    assert_eq!(lease, "worker-1");

    // As the node itself (its own certificate): NodeRestriction lets it modify its own Node
    // only, and the status of its own pods only.
    let pki = dir.join("pki");
    let node_kc = work.path().join("node.kubeconfig");
    std::fs::write(
        &node_kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: node\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: c\n  context: {{cluster: c, user: node}}\ncurrent-context: c\n",
            s.url,
            pki.join("ca.crt").display(),
            pki.join("kubelet-client-current.pem").display(),
            pki.join("kubelet-client-current.pem").display(),
        ),
    )
    .unwrap();
    let as_node = |args: &[&str]| {
        let mut cmd = s.kubectl_cmd(args);
        cmd.env("KUBECONFIG", &node_kc);
        run(cmd, None)
    };
    let who = as_node(&[
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&who.stdout),
        "system:node:worker-1",
        "{}",
        String::from_utf8_lossy(&who.stderr)
    );
    s.kubectl_in(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Node\nmetadata: {name: other}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: elsewhere}\nspec:\n  nodeName: other\n  containers: [{name: c, image: busybox}]\n"),
    );
    let out = as_node(&["label", "node", "other", "example.com/taken=yes"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            r#"nodes "other" is forbidden: node "worker-1" is not allowed to modify node "other""#
        ),
        "{err}"
    );
    // Deleting Nodes is not a node's (the Node authorizer with AuthorizeNodeWithSelectors
    // has no opinion, and RBAC grants nodes nothing of the kind).
    let out = as_node(&["delete", "node", "other"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            r#"nodes "other" is forbidden: User "system:node:worker-1" cannot delete resource "nodes" in API group "" at the cluster scope"#
        ),
        "{err}"
    );
    let out = as_node(&["label", "node", "worker-1", "example.com/joined=yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // (kubectl's `patch --subresource=status` reads pods/status first, which RBAC refuses a
    // node, upstream too; the PATCH itself is what NodeRestriction judges.)
    let mut curl = s.command("curl");
    curl.args([
        "-sS",
        "-X",
        "PATCH",
        "-H",
        "Content-Type: application/merge-patch+json",
    ])
    .args(["--data", r#"{"status":{"message":"mine now"}}"#])
    .arg("--cacert")
    .arg(pki.join("ca.crt"))
    .arg("--cert")
    .arg(pki.join("kubelet-client-current.pem"))
    .arg("--key")
    .arg(pki.join("kubelet-client-current.pem"))
    .arg(format!(
        "{}/api/v1/namespaces/default/pods/elsewhere/status",
        s.url
    ));
    let out = run(curl, None);
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert_eq!(body["code"], 403, "{body}");
    assert_eq!(
        body["message"],
        r#"pods "elsewhere" is forbidden: node "worker-1" can only update pod status for pods with spec.nodeName set to itself"#
    );
    s.kubectl(&["delete", "pod", "elsewhere", "--grace-period=0", "--force"]);
    s.kubectl(&["delete", "node", "other"]);
    stop(a);

    // Restarted with --server alone: the stored certificate is its credential.
    std::fs::remove_file(work.path().join("token")).unwrap();
    let a = agent(&s, &dir, &["--server", &s.url, "--node-name", "worker-1"]);
    s.eventually("the pod runs again", || {
        let out = s.kubectl(&["get", "pod", "hello", "-o", "jsonpath={.status.phase}"]);
        (out == "Running").then_some(())
    });
    s.kubectl(&["exec", "hello", "--", "true"]);
    s.kubectl(&["delete", "pod", "hello", "--wait=false"]);
    stop(a);
    // Nothing the node did was refused.
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("forbidden") || l.contains("Forbidden"))
        .collect();
    assert!(
        refused.is_empty(),
        "the node was refused:\n{}",
        refused.join("\n")
    );
    assert!(!s.log().contains(&token), "the server logged the token");
}

/// A join token and the CA hash from `paddock token create`, the token written to a file.
fn join_token(s: &Server, work: &std::path::Path) -> (String, String) {
    let data = s.data_dir().display().to_string();
    let mut create = s.command(env!("CARGO_BIN_EXE_paddock"));
    create.args(["token", "create", "--data-dir", &data]);
    let out = run(create, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let token = lines.next().unwrap().to_string();
    let hash = lines.next().unwrap().to_string();
    let token_file = work.join("token");
    std::fs::write(&token_file, &token).unwrap();
    (token_file.display().to_string(), hash)
}

/// `notAfter` of the first certificate in a PEM file.
fn not_after(path: &std::path::Path) -> std::time::SystemTime {
    let pem = std::fs::read(path).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let cert = block.parse_x509().unwrap();
    let secs = cert.validity().not_after.timestamp();
    std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap())
}

/// A CSR (PEM) for `cn` in `system:nodes`.
fn node_csr(cn: &str) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.serialize_request(&key).unwrap().pem().unwrap()
}

#[test]
fn a_running_node_renews_its_certificates_before_they_end() {
    // 20 s certificates: signed from 5 minutes back (the signer's backdate), so every
    // rotation deadline is already past when a certificate arrives and the node renews once
    // a second, as a kubelet does.
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        &["server", "--cluster-signing-duration", "20s"],
        Some(NetNs::new()),
    );
    let work = tempfile::tempdir().unwrap();
    let (token_file, hash) = join_token(&s, work.path());
    let dir = work.path().join("node");
    let a = agent(
        &s,
        &dir,
        &[
            "--server",
            &s.url,
            "--token-file",
            &token_file,
            "--ca-cert-hash",
            &hash,
            "--node-name",
            "rotor",
        ],
    );
    let pki = dir.join("pki");
    let current = pki.join("kubelet-client-current.pem");
    let first_end = not_after(&current);
    let (_m, path) = manifest(
        "rotate.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: spinner}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sh, -c, 'echo started; exec sleep 3600']\n",
    );
    s.kubectl(&["apply", "-f", &path.display().to_string()]);
    s.eventually("the pod runs on rotor", || {
        let out = s.kubectl(&[
            "get",
            "pod",
            "spinner",
            "-o",
            "jsonpath={.spec.nodeName} {.status.phase}",
        ]);
        (out == "rotor Running").then_some(())
    });

    // As the node, a request for another node's certificate: the approver leaves it alone.
    let node_kc = work.path().join("node.kubeconfig");
    std::fs::write(
        &node_kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: {}\nusers:\n- name: node\n  user:\n    client-certificate: {}\n    client-key: {}\ncontexts:\n- name: c\n  context: {{cluster: c, user: node}}\ncurrent-context: c\n",
            s.url,
            pki.join("ca.crt").display(),
            current.display(),
            current.display(),
        ),
    )
    .unwrap();
    use base64::Engine;
    let request = base64::engine::general_purpose::STANDARD.encode(node_csr("system:node:victim"));
    let mut create = s.kubectl_cmd(&["create", "-f", "-"]);
    create.env("KUBECONFIG", &node_kc);
    let out = run(
        create,
        Some(&format!(
            "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: not-mine}}\nspec:\n  request: {request}\n  signerName: kubernetes.io/kube-apiserver-client-kubelet\n  usages: [digital signature, client auth]\n"
        )),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Past the end of the certificates the node started with.
    let wait = first_end
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    std::thread::sleep(wait + Duration::from_secs(3));

    // The node's own renewals: requested as itself, approved as self-renewals, signed.
    let csrs = s.get_json(&["get", "csr"]);
    let items = csrs["items"].as_array().unwrap().clone();
    let renewals: Vec<&serde_json::Value> = items
        .iter()
        .filter(|c| {
            c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
                && c["spec"]["username"] == "system:node:rotor"
                && c["metadata"]["name"] != "not-mine"
        })
        .collect();
    assert!(renewals.len() >= 2, "{renewals:#?}");
    for c in &renewals {
        if c["status"]["certificate"].is_string() {
            assert_eq!(c["status"]["conditions"][0]["reason"], "AutoApproved");
            assert_eq!(
                c["status"]["conditions"][0]["message"],
                "Auto approving self kubelet client certificate after SubjectAccessReview."
            );
        }
    }
    // The approver works through requests in order: once a renewal made after `not-mine`
    // is approved, `not-mine` has been decided, and it was not approved.
    let mine_at = items
        .iter()
        .find(|c| c["metadata"]["name"] == "not-mine")
        .map(|c| {
            c["metadata"]["creationTimestamp"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .unwrap();
    assert!(
        renewals.iter().any(|c| {
            c["metadata"]["creationTimestamp"].as_str().unwrap() > mine_at.as_str()
                && c["status"]["certificate"].is_string()
        }),
        "no renewal after not-mine was signed"
    );
    let not_mine = s.get_json(&["get", "csr", "not-mine"]);
    assert!(not_mine["status"]["conditions"].is_null(), "{not_mine}");
    // Serving certificates were renewed too (the node approves nothing itself: the approver
    // does, for the node's own names).
    let serving = items
        .iter()
        .filter(|c| {
            c["spec"]["signerName"] == "kubernetes.io/kubelet-serving"
                && c["spec"]["username"] == "system:node:rotor"
                && c["status"]["certificate"].is_string()
        })
        .count();
    assert!(serving >= 2, "{serving} serving certificates");
    // The certificate on disk now ends later; older pairs do not pile up.
    assert!(not_after(&current) > first_end);
    let pairs = std::fs::read_dir(&pki)
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            n.starts_with("kubelet-client-") && n != "kubelet-client-current.pem"
        })
        .count();
    assert!((1..=2).contains(&pairs), "{pairs} stored pairs");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&current).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // And the node works on: its lease is renewed after the first certificate ended, it is
    // Ready, a new pod runs, and logs and exec reach it (through its serving certificate).
    let renewed_after = |s: &Server| {
        let t = s.kubectl(&[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            "rotor",
            "-o",
            "jsonpath={.spec.renewTime}",
        ]);
        // RFC 3339 in UTC: to the second, later is greater as text.
        let e = time::OffsetDateTime::from(first_end);
        let end = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            e.year(),
            u8::from(e.month()),
            e.day(),
            e.hour(),
            e.minute(),
            e.second()
        );
        (t.get(..19)? > end.as_str()).then_some(())
    };
    s.eventually("the lease renewed past the first certificate's end", || {
        renewed_after(&s)
    });
    s.eventually("node rotor Ready", || {
        let st = s.kubectl(&[
            "get",
            "node",
            "rotor",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (st == "True").then_some(())
    });
    s.kubectl_in(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Pod\nmetadata: {name: later}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: busybox\n    command: [sh, -c, 'echo later; exec sleep 3600']\n"),
    );
    s.eventually("the new pod runs", || {
        let out = s.kubectl(&["get", "pod", "later", "-o", "jsonpath={.status.phase}"]);
        (out == "Running").then_some(())
    });
    s.eventually("its log", || {
        (s.kubectl_full(&["logs", "later"], None).stdout == b"later\n").then_some(())
    });
    assert_eq!(
        s.kubectl_full(&["logs", "spinner"], None).stdout,
        b"started\n"
    );
    let (code, _) = s.kubectl_err(&["exec", "spinner", "--", "sh", "-c", "exit 4"], None);
    assert_eq!(code, 4);
    s.kubectl(&["delete", "pod", "spinner", "later", "--wait=false"]);
    stop(a);
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
    assert!(
        log.contains("the node's client certificate is renewed"),
        "{log}"
    );
}

#[test]
fn a_node_whose_certificate_expired_unrenewed_rejoins_with_its_bootstrap_token() {
    let s = Server::launch_in(
        tempfile::tempdir().expect("tempdir"),
        &["server", "--cluster-signing-duration", "20s"],
        Some(NetNs::new()),
    );
    let work = tempfile::tempdir().unwrap();
    let (token_file, hash) = join_token(&s, work.path());
    let id = std::fs::read_to_string(&token_file).unwrap();
    let id = id.split_once('.').unwrap().0.to_string();
    // Nodes may no longer renew their own certificates (kubeadm's binding is gone): their
    // renewals wait for a human, who denies them.
    s.kubectl(&[
        "delete",
        "clusterrolebinding",
        "kubeadm:node-autoapprove-certificate-rotation",
    ]);
    let dir = work.path().join("node");
    let a = agent(
        &s,
        &dir,
        &[
            "--server",
            &s.url,
            "--token-file",
            &token_file,
            "--ca-cert-hash",
            &hash,
            "--node-name",
            "lapsed",
        ],
    );
    let current = dir.join("pki/kubelet-client-current.pem");
    let first_end = not_after(&current);
    // Deny every renewal the node asks for itself until one by its bootstrap token, made
    // after its certificate ended, is signed.
    let rejoined = s.eventually("a request by the bootstrap token signed", || {
        let csrs = s.get_json(&["get", "csr"]);
        for c in csrs["items"].as_array().unwrap() {
            let own = c["spec"]["username"] == "system:node:lapsed"
                && c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet";
            if own && c["status"]["conditions"].is_null() {
                let name = c["metadata"]["name"].as_str().unwrap();
                let _ = s.kubectl_full(&["certificate", "deny", name], None);
            }
        }
        let signed_after: Vec<serde_json::Value> = csrs["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| {
                c["spec"]["username"] == format!("system:bootstrap:{id}")
                    && c["status"]["certificate"].is_string()
            })
            .cloned()
            .collect();
        (signed_after.len() >= 2).then_some(signed_after)
    });
    // The join, then the rejoin after the first certificate ended.
    assert_eq!(rejoined.len(), 2, "{rejoined:#?}");
    assert!(std::time::SystemTime::now() > first_end);
    let denied = s.get_json(&["get", "csr"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["spec"]["username"] == "system:node:lapsed"
                && c["status"]["conditions"][0]["type"] == "Denied"
        })
        .count();
    assert!(denied >= 1, "no renewal was denied");
    assert!(not_after(&current) > first_end);
    // The node went on with the new certificate.
    s.eventually("node lapsed Ready", || {
        let st = s.kubectl(&[
            "get",
            "node",
            "lapsed",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
        ]);
        (st == "True").then_some(())
    });
    let e = time::OffsetDateTime::from(not_after(&current) - Duration::from_secs(20));
    let issued = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        e.year(),
        u8::from(e.month()),
        e.day(),
        e.hour(),
        e.minute(),
        e.second()
    );
    s.eventually("the lease renewed with the new certificate", || {
        let t = s.kubectl(&[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            "lapsed",
            "-o",
            "jsonpath={.spec.renewTime}",
        ]);
        (t.get(..19)? > issued.as_str()).then_some(())
    });
    stop(a);
    let log = std::fs::read_to_string(dir.with_extension("log")).unwrap_or_default();
    assert!(
        log.contains("the bootstrap token (the current certificate has expired)"),
        "{log}"
    );
}
