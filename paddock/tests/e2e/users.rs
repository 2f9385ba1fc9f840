//! Client-certificate users: `paddock user add jane --group dev` writes a private kubeconfig
//! whose certificate the API server authenticates (`kubectl auth whoami` shows the user and
//! groups); jane gets upstream's 403 until a RoleBinding grants her `view`; the admin's
//! kubeconfig keeps working beside it. Bootstrap tokens: `paddock token create` prints a token
//! and the CA hash; the token authenticates as `system:bootstrap:<id>`; an expired one is 401.

use std::process::Command;

use crate::support::{Server, run};

fn paddock(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(args);
    run(cmd, None)
}

fn kubectl_as(s: &Server, kubeconfig: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = s.kubectl_cmd(args);
    cmd.env("KUBECONFIG", kubeconfig);
    run(cmd, None)
}

#[test]
fn a_certificate_user_is_its_common_name_and_organizations() {
    let s = Server::start();
    let out_dir = tempfile::tempdir().unwrap();
    let kc = out_dir.path().join("jane.kubeconfig");
    let data = s.data_dir();
    let out = paddock(&[
        "user",
        "add",
        "jane",
        "--group",
        "dev",
        "--group",
        "ops",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        kc.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&kc).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // An existing file is never overwritten.
    let again = paddock(&[
        "user",
        "add",
        "jane",
        "--data-dir",
        data.to_str().unwrap(),
        "--out",
        kc.to_str().unwrap(),
    ]);
    assert!(!again.status.success());

    let who = kubectl_as(&s, &kc, &["auth", "whoami", "-o", "json"]);
    assert!(
        who.status.success(),
        "{}",
        String::from_utf8_lossy(&who.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(v["status"]["userInfo"]["username"], "jane");
    assert_eq!(
        v["status"]["userInfo"]["groups"],
        serde_json::json!(["dev", "ops", "system:authenticated"])
    );

    let pods = kubectl_as(&s, &kc, &["get", "pods"]);
    assert!(!pods.status.success());
    let err = String::from_utf8_lossy(&pods.stderr);
    assert!(
        err.contains(r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{err}"
    );
    s.kubectl(&[
        "create",
        "rolebinding",
        "jane-view",
        "--clusterrole=view",
        "--user=jane",
    ]);
    s.eventually("jane may list pods", || {
        kubectl_as(&s, &kc, &["get", "pods"])
            .status
            .success()
            .then_some(())
    });
    // The admin kubeconfig works as before.
    s.kubectl(&["get", "pods"]);
}

#[test]
fn bootstrap_tokens_authenticate_until_they_expire() {
    let s = Server::start();
    let data = s.data_dir();
    let out = paddock(&["token", "create", "--data-dir", data.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    let token = lines.next().unwrap().to_string();
    let hash = lines.next().unwrap().to_string();
    let (id, secret) = token.split_once('.').unwrap();
    assert_eq!(id.len(), 6);
    assert_eq!(secret.len(), 16);
    assert!(hash.starts_with("sha256:") && hash.len() == 71, "{hash}");
    // The token never reaches the server's log.
    let secret_json = s.get_json(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        &format!("bootstrap-token-{id}"),
        "-o",
        "json",
    ]);
    assert_eq!(secret_json["type"], "bootstrap.kubernetes.io/token");
    for key in [
        "token-id",
        "token-secret",
        "expiration",
        "usage-bootstrap-authentication",
        "usage-bootstrap-signing",
        "auth-extra-groups",
    ] {
        assert!(secret_json["data"][key].is_string(), "{key}");
    }

    let whoami = |token: &str| {
        let mut cmd = s.kubectl_cmd(&["auth", "whoami", "-o", "json", "--token", token]);
        cmd.env("KUBECONFIG", &s.kubeconfig);
        run(cmd, None)
    };
    let who = whoami(&token);
    assert!(
        who.status.success(),
        "{}",
        String::from_utf8_lossy(&who.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&who.stdout).unwrap();
    assert_eq!(
        v["status"]["userInfo"]["username"],
        format!("system:bootstrap:{id}")
    );
    assert_eq!(
        v["status"]["userInfo"]["groups"],
        serde_json::json!([
            "system:bootstrappers",
            "system:bootstrappers:kubeadm:default-node-token",
            "system:authenticated"
        ])
    );
    // A token whose expiration has passed is refused with a bare 401.
    use base64::Engine;
    let past = base64::engine::general_purpose::STANDARD.encode("2020-01-01T00:00:00Z");
    let patch = format!(r#"{{"data":{{"expiration":"{past}"}}}}"#);
    let name = format!("bootstrap-token-{id}");
    s.kubectl(&[
        "patch",
        "secret",
        "-n",
        "kube-system",
        &name,
        "--type=merge",
        "-p",
        &patch,
    ]);
    let who = whoami(&token);
    assert!(!who.status.success());
    let err = String::from_utf8_lossy(&who.stderr);
    assert!(err.contains("Unauthorized"), "{err}");
    // The token cleaner deletes the expired token's Secret.
    s.eventually("the expired token's secret is deleted", || {
        let out = s.kubectl_full(&["get", "secret", "-n", "kube-system", &name], None);
        (!out.status.success()).then_some(())
    });
    assert!(!s.log().contains(secret), "the server logged the token");
}
