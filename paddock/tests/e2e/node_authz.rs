//! A node's certificate under the Node authorizer and NodeRestriction, tried with kubectl as
//! an attacker holding node `na`'s credentials would: it reads the Secrets and ConfigMaps of
//! pods bound to it and nothing else (upstream's 403 texts), cannot list Secrets, cannot
//! create a pod of its own that names a Secret, cannot give itself `node-restriction`
//! labels or touch another Node, and gets ServiceAccount tokens only bound to its own pods.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Server, manifest, run};

/// A kubeconfig for the node `name` (`system:node:<name>` in `system:nodes`, signed by the
/// cluster CA as a joined node's certificate is).
fn node_kubeconfig(s: &Server, dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.kubeconfig"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_paddock"));
    cmd.args(["user", "add", &format!("system:node:{name}")])
        .args(["--group", "system:nodes", "--data-dir"])
        .arg(s.data_dir())
        .arg("--out")
        .arg(&out);
    let o = run(cmd, None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// kubectl as the node: Ok(stdout) or Err(stderr).
fn as_node(s: &Server, kc: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut cmd = s.kubectl_cmd(args);
    cmd.env("KUBECONFIG", kc);
    let o = run(cmd, stdin);
    if o.status.success() {
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&o.stderr).trim().to_string())
    }
}

const OBJECTS: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: na}
---
apiVersion: v1
kind: Node
metadata: {name: nb}
---
apiVersion: v1
kind: Secret
metadata: {name: s-a}
stringData: {k: a}
---
apiVersion: v1
kind: Secret
metadata: {name: s-b}
stringData: {k: b}
---
apiVersion: v1
kind: Secret
metadata: {name: lonely}
stringData: {k: nobody uses me}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cm-a}
data: {k: a}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: runner}
---
apiVersion: v1
kind: Pod
metadata: {name: pa}
spec:
  nodeName: na
  serviceAccountName: runner
  containers:
  - name: c
    image: busybox
    envFrom: [{configMapRef: {name: cm-a}}]
  volumes:
  - {name: v, secret: {secretName: s-a}}
---
apiVersion: v1
kind: Pod
metadata: {name: pb}
spec:
  nodeName: nb
  containers:
  - name: c
    image: busybox
  volumes:
  - {name: v, secret: {secretName: s-b}}
"#;

fn forbidden(verb: &str, resource: &str, name: &str, reason: &str) -> String {
    let subject = if name.is_empty() {
        format!("{resource} is forbidden")
    } else {
        format!("{resource} \"{name}\" is forbidden")
    };
    format!(
        "Error from server (Forbidden): {subject}: User \"system:node:na\" cannot {verb} resource \"{resource}\" in API group \"\" in the namespace \"default\"{reason}"
    )
}

#[test]
fn a_node_reads_only_what_its_pods_use_and_cannot_widen_that() {
    let s = Server::start();
    let (_d, objects) = manifest("objects.yaml", OBJECTS);
    s.kubectl(&["create", "-f", &objects.display().to_string()]);
    let dir = tempfile::tempdir().unwrap();
    let na = node_kubeconfig(&s, dir.path(), "na");

    // What pa (on na) uses: its Secret, ConfigMap, and the projected token's CA ConfigMap.
    assert_eq!(
        as_node(&s, &na, &["get", "secret", "s-a", "-o", "name"], None),
        Ok("secret/s-a\n".into())
    );
    assert_eq!(
        as_node(&s, &na, &["get", "configmap", "cm-a", "-o", "name"], None),
        Ok("configmap/cm-a\n".into())
    );
    assert_eq!(
        as_node(
            &s,
            &na,
            &["get", "configmap", "kube-root-ca.crt", "-o", "name"],
            None
        ),
        Ok("configmap/kube-root-ca.crt\n".into())
    );
    let unrelated = ": no relationship found between node 'na' and this object";
    // A Secret of a pod on another node, and one no pod uses.
    assert_eq!(
        as_node(&s, &na, &["get", "secret", "s-b"], None),
        Err(forbidden("get", "secrets", "s-b", unrelated))
    );
    assert_eq!(
        as_node(&s, &na, &["get", "secret", "lonely"], None),
        Err(forbidden("get", "secrets", "lonely", unrelated))
    );
    // Every Secret at once.
    assert_eq!(
        as_node(&s, &na, &["get", "secrets"], None),
        Err(forbidden("list", "secrets", "", ": No Object name found"))
    );
    assert_eq!(
        as_node(&s, &na, &["auth", "can-i", "get", "secret/s-a"], None),
        Ok("yes\n".into())
    );

    // A pod of its own naming the Secret it wants: NodeRestriction allows only mirror pods,
    // and ServiceAccount admission (before it) lets mirror pods reference no Secret.
    let steal = |annotations: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: steal, {annotations}}}\nspec:\n  nodeName: na\n  containers: [{{name: c, image: busybox}}]\n  volumes: [{{name: v, secret: {{secretName: lonely}}}}]\n"
        )
    };
    assert_eq!(
        as_node(&s, &na, &["create", "-f", "-"], Some(&steal("labels: {}"))),
        Err("Error from server (Forbidden): error when creating \"STDIN\": pods \"steal\" is forbidden: pod does not have \"kubernetes.io/config.mirror\" annotation, node \"na\" can only create mirror pods".into())
    );
    let uid = s.kubectl(&["get", "node", "na", "-o", "jsonpath={.metadata.uid}"]);
    let mirror = format!(
        "annotations: {{kubernetes.io/config.mirror: x}}, ownerReferences: [{{apiVersion: v1, kind: Node, name: na, uid: {uid}, controller: true}}]"
    );
    assert_eq!(
        as_node(&s, &na, &["create", "-f", "-"], Some(&steal(&mirror))),
        Err("Error from server (Forbidden): error when creating \"STDIN\": pods \"steal\" is forbidden: a mirror pod may not reference secrets".into())
    );
    assert_eq!(
        as_node(&s, &na, &["get", "secret", "lonely"], None),
        Err(forbidden("get", "secrets", "lonely", unrelated))
    );

    // Its own labels: kubelet ones yes, node-restriction ones no; another Node not at all.
    assert_eq!(
        as_node(&s, &na, &["label", "node", "na", "team=a"], None),
        Ok("node/na labeled\n".into())
    );
    assert_eq!(
        as_node(&s, &na, &["label", "node", "na", "node-restriction.kubernetes.io/x=y"], None),
        Err("Error from server (Forbidden): nodes \"na\" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/x".into())
    );
    assert_eq!(
        as_node(&s, &na, &["label", "node", "nb", "team=a"], None),
        Err("Error from server (Forbidden): nodes \"nb\" is forbidden: node \"na\" is not allowed to modify node \"nb\"".into())
    );

    // Tokens: for the account of its own pod, bound to that pod; nothing else.
    assert_eq!(
        as_node(&s, &na, &["create", "token", "default"], None),
        Err("error: failed to create token: serviceaccounts \"default\" is forbidden: User \"system:node:na\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"default\": no relationship found between node 'na' and this object".into())
    );
    assert_eq!(
        as_node(&s, &na, &["create", "token", "runner"], None),
        Err("error: failed to create token: serviceaccounts \"runner\" is forbidden: node requested token not bound to a pod".into())
    );
    let pod_uid = s.kubectl(&["get", "pod", "pa", "-o", "jsonpath={.metadata.uid}"]);
    let token = as_node(
        &s,
        &na,
        &[
            "create",
            "token",
            "runner",
            "--bound-object-kind",
            "Pod",
            "--bound-object-name",
            "pa",
            "--bound-object-uid",
            &pod_uid,
        ],
        None,
    )
    .expect("a token bound to its own pod");
    assert_eq!(token.trim().split('.').count(), 3, "{token}");

    // The pod gone, what it used is no longer the node's to read.
    s.kubectl(&["delete", "pod", "pa", "--grace-period=0", "--force"]);
    assert_eq!(
        as_node(&s, &na, &["get", "secret", "s-a"], None),
        Err(forbidden("get", "secrets", "s-a", unrelated))
    );
    // The admin is unaffected.
    s.kubectl(&["get", "secrets", "lonely"]);
}
