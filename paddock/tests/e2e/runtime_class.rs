//! RuntimeClasses (`node.k8s.io/v1`): every cluster has `paddock-host` (handler `host`: the
//! pod's `command` runs as a host process); a pod naming a class that does not exist is refused
//! by the RuntimeClass admission plugin; a class's overhead and scheduling land in the pod; a
//! pod whose class names a handler the node lacks never gets a sandbox, as on a kubelet.

use crate::support::Server;

const POD: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: NAME}
spec:
  runtimeClassName: CLASS
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: [sh, -c, 'echo from-the-host; sleep 3600']
"#;

fn pod(name: &str, class: &str) -> String {
    POD.replace("NAME", name).replace("CLASS", class)
}

#[test]
fn runtime_classes_choose_the_runtime_and_are_checked_as_upstream_does() {
    let s = Server::up(&[]);
    // Served and printed as upstream prints them.
    let table = s.kubectl(&["get", "runtimeclass"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(header, ["NAME", "HANDLER", "AGE"], "{table}");
    let row: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(&row[..2], ["paddock-host", "host"], "{table}");

    // A pod of the host class runs its command.
    s.kubectl_in(&["apply", "-f", "-"], Some(&pod("on-host", "paddock-host")));
    s.eventually("the paddock-host pod printed", || {
        let out = s.kubectl_full(&["logs", "on-host"], None);
        String::from_utf8_lossy(&out.stdout)
            .contains("from-the-host")
            .then_some(())
    });

    // A class that does not exist: 403 from admission, nothing created.
    let (_, err) = s.kubectl_err(&["apply", "-f", "-"], Some(&pod("lost", "nope")));
    assert!(
        err.contains(r#"pods "lost" is forbidden: pod rejected: RuntimeClass "nope" not found"#),
        "{err}"
    );
    let (_, err) = s.kubectl_err(&["get", "pod", "lost"], None);
    assert!(err.contains("NotFound"), "{err}");

    // Validation: the handler is a DNS label and immutable.
    let bad = "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: bad}\nhandler: Not_A_Label\n";
    let (_, err) = s.kubectl_err(&["apply", "-f", "-"], Some(bad));
    assert!(
        err.contains(r#"RuntimeClass "bad" is invalid: handler: Invalid value: "Not_A_Label": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"#),
        "{err}"
    );
    let (_, err) = s.kubectl_err(
        &[
            "patch",
            "runtimeclass",
            "paddock-host",
            "--type=merge",
            "-p",
            r#"{"handler":"runc"}"#,
        ],
        None,
    );
    assert!(
        err.contains(r#"handler: Invalid value: "runc": field is immutable"#),
        "{err}"
    );

    // Overhead and scheduling of the class land in the pod at admission.
    let with = r#"apiVersion: node.k8s.io/v1
kind: RuntimeClass
metadata: {name: with-overhead}
handler: host
overhead: {podFixed: {cpu: 100m, memory: 20Mi}}
scheduling:
  nodeSelector: {kubernetes.io/os: linux}
  tolerations: [{key: example.com/sandboxed, operator: Exists}]
"#;
    s.kubectl_in(&["apply", "-f", "-"], Some(with));
    s.kubectl_in(
        &["apply", "-f", "-"],
        Some(&pod("overhead", "with-overhead")),
    );
    let spec = s.get_json(&["get", "pod", "overhead"])["spec"].clone();
    assert_eq!(spec["overhead"]["cpu"], "100m", "{spec}");
    assert_eq!(spec["overhead"]["memory"], "20Mi", "{spec}");
    assert_eq!(spec["nodeSelector"]["kubernetes.io/os"], "linux", "{spec}");
    let tolerations = spec["tolerations"].as_array().cloned().unwrap_or_default();
    assert!(
        tolerations
            .iter()
            .any(|t| t["key"] == "example.com/sandboxed" && t["operator"] == "Exists"),
        "{spec}"
    );
    // A pod asking for another overhead than its class's is refused.
    let mismatched = pod("mismatch", "with-overhead").replace(
        "  restartPolicy: Never\n",
        "  restartPolicy: Never\n  overhead: {cpu: 1}\n",
    );
    let (_, err) = s.kubectl_err(&["apply", "-f", "-"], Some(&mismatched));
    assert!(
        err.contains("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"),
        "{err}"
    );

    // A class whose handler this node does not have: the pod stays Pending, the kubelet's
    // event says why.
    let other = "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: gvisor}\nhandler: runsc\n";
    s.kubectl_in(&["apply", "-f", "-"], Some(other));
    s.kubectl_in(&["apply", "-f", "-"], Some(&pod("sandboxed", "gvisor")));
    let msg = s.eventually("the FailedCreatePodSandBox event", || {
        let ev = s.get_json(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=sandboxed,reason=FailedCreatePodSandBox",
        ]);
        ev["items"][0]["message"].as_str().map(str::to_string)
    });
    assert_eq!(
        msg,
        r#"Failed to create pod sandbox: rpc error: code = Unknown desc = failed to get sandbox runtime: no runtime for "runsc" is configured"#
    );
    let phase = s.kubectl(&["get", "pod", "sandboxed", "-o", "jsonpath={.status.phase}"]);
    assert_eq!(phase, "Pending");
}
