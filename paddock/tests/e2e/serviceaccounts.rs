//! ServiceAccounts end to end: every namespace gets `default` and `kube-root-ca.crt`;
//! `kubectl create token` issues a JWT the server authenticates (RBAC then
//! answers 403 naming the service account until a binding grants it); legacy token
//! Secrets are filled and authenticate while they exist; a pod's program using the Python
//! client's `load_incluster_config()` reaches the server through the `kubernetes` Service with
//! its projected token, and that token dies with the pod.
//!
//! [`InCluster`] is what the pod's program is expected to see; once RBAC binds the account
//! to `view`, it lists its namespace's pods ([`InCluster::Listed`]), not its Secrets and not
//! another namespace's pods.

use crate::support::Server;

const NS: &str = "sa-e2e";

fn user(ns: &str) -> String {
    format!("system:serviceaccount:{ns}:default")
}

/// GET `path` with `token`: (status, body).
fn get(s: &Server, path: &str, token: &str) -> (u16, String) {
    s.curl("GET", path, Some(token), None, None)
}

fn create_token(s: &Server, ns: &str, extra: &[&str]) -> String {
    let mut args = vec!["create", "token", "default", "-n", ns];
    args.extend_from_slice(extra);
    s.kubectl(&args).trim().to_string()
}

#[test]
fn service_accounts_tokens_and_authentication() {
    let s = Server::start();
    s.kubectl(&["create", "namespace", NS]);
    // The default account, printed as upstream prints it.
    let table = s.eventually("the default service account", || {
        let out = s.kubectl_full(&["get", "sa", "-n", NS], None);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.contains("default").then_some(text)
    });
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "SECRETS", "AGE"], "{table}");
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(&row[..2], ["default", "0"], "{table}");
    // The root CA every namespace gets is the cluster CA.
    let ca = std::fs::read_to_string(s.ca_file()).expect("ca");
    let published = s.eventually("kube-root-ca.crt", || {
        let out = s.kubectl_full(
            &[
                "get",
                "cm",
                "kube-root-ca.crt",
                "-n",
                NS,
                "-o",
                r"jsonpath={.data.ca\.crt}",
            ],
            None,
        );
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(published.trim(), ca.trim());

    // kubectl create token: a JWT the server authenticates as the account.
    let token = create_token(&s, NS, &["--duration", "10m"]);
    assert_eq!(token.split('.').count(), 3, "{token}");
    let (code, body) = get(&s, &format!("/api/v1/namespaces/{NS}/pods"), &token);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(&format!(
            r#"pods is forbidden: User \"{}\" cannot list resource \"pods\" in API group \"\" in the namespace \"{NS}\""#,
            user(NS)
        )),
        "{body}"
    );
    // Discovery and the issuer documents are open to it.
    let (code, _) = get(&s, "/api", &token);
    assert_eq!(code, 200);
    let (code, body) = get(&s, "/.well-known/openid-configuration", &token);
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains(r#""issuer":"https://kubernetes.default.svc.cluster.local""#),
        "{body}"
    );
    let (code, body) = get(&s, "/openid/v1/jwks", &token);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains(r#""alg":"ES256""#), "{body}");
    // A tampered or foreign token is 401 with no detail.
    let mut forged = token.clone();
    forged.pop();
    forged.push(if token.ends_with('A') { 'B' } else { 'A' });
    let (code, body) = get(&s, "/api", &forged);
    assert_eq!(code, 401, "{body}");
    // Too short a lifetime: upstream's validation.
    let (_, err) = s.kubectl_err(
        &["create", "token", "default", "-n", NS, "--duration", "5m"],
        None,
    );
    assert!(
        err.contains("may not specify a duration less than 10 minutes"),
        "{err}"
    );
    // An audience the server does not serve is not accepted by it.
    let foreign = create_token(&s, NS, &["--audience", "vault"]);
    let (code, _) = get(&s, "/api", &foreign);
    assert_eq!(code, 401);

    // A legacy token Secret: filled by the token controller, valid while it exists.
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: legacy\n  namespace: {NS}\n  annotations:\n    kubernetes.io/service-account.name: default\ntype: kubernetes.io/service-account-token\n"
    );
    s.kubectl_in(&["apply", "-f", "-"], Some(&secret));
    let legacy = s.eventually("the legacy token", || {
        let out = s.kubectl_full(
            &[
                "get",
                "secret",
                "legacy",
                "-n",
                NS,
                "-o",
                "jsonpath={.data.token}",
            ],
            None,
        );
        let b64 = String::from_utf8_lossy(&out.stdout).trim().to_string();
        (!b64.is_empty()).then_some(b64)
    });
    let legacy = String::from_utf8(base64_decode(&legacy)).expect("token text");
    let (code, body) = get(&s, &format!("/api/v1/namespaces/{NS}/pods"), &legacy);
    assert_eq!(code, 403, "{body}");
    s.kubectl(&["delete", "secret", "legacy", "-n", NS]);
    let (code, _) = get(&s, "/api", &legacy);
    assert_eq!(code, 401);

    // Deleting the account invalidates its tokens (the recreated `default` has another uid).
    s.kubectl(&["delete", "sa", "default", "-n", NS]);
    let (code, _) = get(&s, "/api", &token);
    assert_eq!(code, 401);
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .expect("base64")
}

/// The program the pod runs: the Python client's in-cluster configuration, then one list of
/// the pod's namespace's pods every second, each outcome printed.
const PROGRAM: &str = r#"
import json, time
from kubernetes import client, config
from kubernetes.client.rest import ApiException
config.load_incluster_config()
ns = open('/var/run/secrets/kubernetes.io/serviceaccount/namespace').read()
api = client.CoreV1Api()
while True:
    try:
        pods = api.list_namespaced_pod(ns)
        print('LISTED', ' '.join(p.metadata.name for p in pods.items), flush=True)
    except ApiException as e:
        try:
            msg = json.loads(e.body)['message']
        except Exception:
            msg = str(e.body)
        print('STATUS', e.status, msg, flush=True)
    except Exception as e:
        print('ERROR', repr(e), flush=True)
    time.sleep(1)
"#;

/// What the in-cluster program sees.
enum InCluster {
    /// Authenticated, not authorized (until RBAC binds the account).
    Forbidden,
    /// Authorized to list pods (once bound to `view`): it lists itself.
    Listed,
}

impl InCluster {
    fn matches(&self, line: &str, ns: &str) -> bool {
        match self {
            InCluster::Forbidden => {
                line.starts_with("STATUS 403")
                    && line.contains(&format!(
                        r#"User "{}" cannot list resource "pods""#,
                        user(ns)
                    ))
            }
            InCluster::Listed => line.starts_with("LISTED") && line.contains("in-cluster"),
        }
    }
}

#[test]
fn a_pod_reaches_the_server_as_its_service_account() {
    let s = Server::up(&[]);
    // The interpreter that has the client (the pod's PATH is a container's default one, where
    // `python3` may be another interpreter).
    let out = crate::support::run(
        {
            let mut c = std::process::Command::new("python3");
            c.args(["-c", "import kubernetes, sys; print(sys.executable)"]);
            c
        },
        None,
    );
    assert!(
        out.status.success(),
        "the Python kubernetes client is installed"
    );
    let python = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let pod = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "in-cluster", "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": "python",
                "command": [python, "-c", PROGRAM]}],
        },
    });
    s.kubectl_in(&["apply", "-f", "-"], Some(&pod.to_string()));
    // Admission: the default account and its token volume.
    let got = s.get_json(&["get", "pod", "in-cluster"]);
    assert_eq!(got["spec"]["serviceAccountName"], "default");
    let vol = &got["spec"]["volumes"][0];
    assert!(
        vol["name"]
            .as_str()
            .unwrap_or("")
            .starts_with("kube-api-access-"),
        "{vol}"
    );
    assert_eq!(
        vol["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3607
    );
    assert_eq!(
        got["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/var/run/secrets/kubernetes.io/serviceaccount"
    );

    let expect = InCluster::Forbidden;
    let mut logs = String::new();
    for _ in 0..120 {
        let out = s.kubectl_full(&["logs", "in-cluster"], None);
        logs = String::from_utf8_lossy(&out.stdout).into_owned();
        if logs.lines().any(|l| expect.matches(l, "default")) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert!(
        logs.lines().any(|l| expect.matches(l, "default")),
        "the pod's program did not reach the server as expected; its log:\n{logs}\ndescribe:\n{}",
        String::from_utf8_lossy(
            &s.kubectl_full(&["describe", "pod", "in-cluster"], None)
                .stdout
        )
    );
    assert!(!logs.contains("STATUS 401"), "{logs}");

    // Bound to `view` in its namespace (RBAC), the same program lists the pods.
    s.kubectl(&[
        "create",
        "rolebinding",
        "in-cluster-view",
        "--clusterrole=view",
        "--serviceaccount=default:default",
    ]);
    let expect = InCluster::Listed;
    let listed = s.eventually("the pod's program to list pods once bound to view", || {
        let out = s.kubectl_full(&["logs", "in-cluster"], None);
        let logs = String::from_utf8_lossy(&out.stdout).into_owned();
        logs.lines()
            .any(|l| expect.matches(l, "default"))
            .then_some(logs)
    });
    assert!(!listed.contains("STATUS 401"), "{listed}");

    // The projected token is bound to the pod: it authenticates while the pod exists …
    let token = s
        .kubectl(&[
            "exec",
            "in-cluster",
            "--",
            "cat",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
        ])
        .trim()
        .to_string();
    let (code, body) = get(&s, "/api/v1/namespaces/default/pods", &token);
    assert_eq!(code, 200, "{body}");
    // `view` reads no Secrets, and the binding is only for its namespace.
    let (code, body) = get(&s, "/api/v1/namespaces/default/secrets", &token);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(&format!(
            r#"secrets is forbidden: User \"{}\" cannot list resource \"secrets\" in API group \"\" in the namespace \"default\""#,
            user("default")
        )),
        "{body}"
    );
    let (code, body) = get(&s, "/api/v1/namespaces/kube-system/pods", &token);
    assert_eq!(code, 403, "{body}");
    let ns_file = s.kubectl(&[
        "exec",
        "in-cluster",
        "--",
        "cat",
        "/var/run/secrets/kubernetes.io/serviceaccount/namespace",
    ]);
    assert_eq!(ns_file, "default");
    // … and not once it is gone.
    s.kubectl(&[
        "delete",
        "pod",
        "in-cluster",
        "--wait=true",
        "--timeout=60s",
    ]);
    let (code, body) = get(&s, "/api", &token);
    assert_eq!(code, 401, "{body}");
}
