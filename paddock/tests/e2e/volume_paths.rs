//! Volume paths cannot escape their volume: the API refuses `..` and absolute paths in
//! subPath, subPathExpr, items and downwardAPI paths with upstream's 422 (field path and
//! message), and the node refuses a subPath that resolves out of its volume through a symlink
//! with the kubelet's error instead of mounting what it points to.

use crate::support::Server;

fn pod(volume: &str, mount: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  volumes:\n  - name: v\n{volume}  containers:\n  - name: main\n    image: x\n    command: [/bin/sleep, '60']\n    volumeMounts:\n    - name: v\n      mountPath: /v\n{mount}"
    )
}

#[test]
fn kubectl_apply_of_escaping_volume_paths_answers_422() {
    let s = Server::start();
    let empty = "    emptyDir: {}\n";
    let cases = [
        (
            pod(empty, "      subPath: ../..\n"),
            r#"spec.containers[0].volumeMounts.subPath: Invalid value: "../..": must not contain '..'"#,
        ),
        (
            pod(empty, "      subPath: /etc\n"),
            r#"spec.containers[0].volumeMounts.subPath: Invalid value: "/etc": must be a relative path"#,
        ),
        (
            pod(empty, "      subPathExpr: $(POD)/../..\n"),
            r#"spec.containers[0].volumeMounts.subPathExpr: Invalid value: "$(POD)/../..": must not contain '..'"#,
        ),
        (
            pod(
                "    secret:\n      secretName: s\n      items: [{key: k, path: ../../etc/shadow}]\n",
                "",
            ),
            r#"spec.volumes[0].secret.items[0].path: Invalid value: "../../etc/shadow": must not contain '..'"#,
        ),
        (
            pod(
                "    configMap:\n      name: c\n      items: [{key: k, path: /etc/x}]\n",
                "",
            ),
            r#"spec.volumes[0].configMap.items[0].path: Invalid value: "/etc/x": must be a relative path"#,
        ),
        (
            pod(
                "    downwardAPI:\n      items: [{path: a/../../x, fieldRef: {fieldPath: metadata.name}}]\n",
                "",
            ),
            r#"spec.volumes[0].downwardAPI.path: Invalid value: "a/../../x": must not contain '..'"#,
        ),
        (
            pod(
                "    projected:\n      sources: [{secret: {name: s, items: [{key: k, path: ..data}]}}]\n",
                "",
            ),
            r#"spec.volumes[0].projected.sources[0].secret.items[0].path: Invalid value: "..data": must not start with '..'"#,
        ),
    ];
    for (doc, want) in cases {
        for verb in ["apply", "create"] {
            let out = s.kubectl_full(&[verb, "-f", "-"], Some(&doc));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{verb} accepted:\n{doc}");
            assert!(err.contains(r#"The Pod "p" is invalid: "#), "{err}");
            assert!(err.contains(want), "want {want:?} from {verb} in:\n{err}");
        }
    }
    // The raw answer is a 422 Status with the field in its causes.
    let body = serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"volumes": [{"name": "v", "emptyDir": {}}], "containers": [{"name": "main",
        "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v", "subPath": "../.."}]}]}});
    let out = s
        .command("curl")
        .args(["-sk", "-w", "\n%{http_code}", "-X", "POST", "-H"])
        .arg(format!("Authorization: Bearer {}", s.token))
        .args(["-H", "Content-Type: application/json", "--data-binary"])
        .arg(body.to_string())
        .arg(format!("{}/api/v1/namespaces/default/pods", s.url))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout);
    let (json, code) = text.trim_end().rsplit_once('\n').expect("body and code");
    assert_eq!(code, "422", "{text}");
    let status: serde_json::Value = serde_json::from_str(json).expect("a Status");
    assert_eq!(status["reason"], "Invalid", "{status}");
    assert_eq!(
        status["details"]["causes"][0]["field"], "spec.containers[0].volumeMounts.subPath",
        "{status}"
    );
    let (_, err) = s.kubectl_err(&["get", "pod", "p"], None);
    assert!(err.contains("not found"), "nothing was created: {err}");
}

/// A container makes symlinks out of an emptyDir (to the node's `/etc`, and to `..`); its
/// neighbours mount them by subPath. The kubelet refuses such a subPath
/// (`CreateContainerConfigError`, "failed to prepare subPath …") instead of mounting what the
/// link points to; so does paddock, for a volume on disk (checked by the agent too) and a
/// memory one (checked only where it is mounted, in the pod).
#[test]
fn a_subpath_symlinked_out_of_its_volume_is_refused_with_the_kubelets_error() {
    let marker = format!("paddock-escape-{}", std::process::id());
    let escaped = std::path::Path::new("/etc").join(&marker);
    // Removed on drop, also when the test fails (as it does where the escape works).
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _cleanup = Cleanup(escaped.clone());
    // `b` and `c` exit after a moment and are restarted, so whichever starts before the links
    // exist starts again after.
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: p}}
spec:
  volumes:
  - {{name: disk, emptyDir: {{}}}}
  - {{name: mem, emptyDir: {{medium: Memory}}}}
  containers:
  - name: a
    image: x
    command: [/bin/sh, -c, 'while :; do for d in /disk /mem; do [ -L $d/etc ] || {{ rm -rf $d/etc; ln -s /etc $d/etc; }}; [ -L $d/up ] || {{ rm -rf $d/up; ln -s .. $d/up; }}; done; sleep 0.2; done']
    volumeMounts:
    - {{name: disk, mountPath: /disk}}
    - {{name: mem, mountPath: /mem}}
  - name: b
    image: x
    command: [/bin/sh, -c, 'touch /escape/{marker}; sleep 1; exit 1']
    volumeMounts:
    - {{name: disk, mountPath: /escape, subPath: etc}}
  - name: c
    image: x
    command: [/bin/sh, -c, 'touch /escape/{marker}; sleep 1; exit 1']
    volumeMounts:
    - {{name: mem, mountPath: /escape, subPath: etc}}
  - name: d
    image: x
    command: [/bin/sh, -c, 'ls /escape; sleep 1; exit 1']
    volumeMounts:
    - {{name: disk, mountPath: /escape, subPath: up}}
"#
    );
    let (_d, path) = crate::support::manifest("pod.yaml", &yaml);
    let s = Server::up(&[&path]);
    for c in ["b", "c", "d"] {
        let want = format!(
            r#"failed to prepare subPath for volumeMount "{}" of container "{c}""#,
            if c == "c" { "mem" } else { "disk" }
        );
        // Each refusal is an event (the kubelet's `Failed`, "Error: …").
        s.eventually(&format!("container {c} refused"), || {
            let events = s.kubectl(&[
                "get",
                "events",
                "--field-selector",
                &format!("involvedObject.fieldPath=spec.containers{{{c}}}"),
                "-o",
                "jsonpath={.items[*].message}",
            ]);
            events.contains(&format!("Error: {want}")).then_some(())
        });
        // And it never runs again: it waits with the kubelet's reason — or, when it had run
        // and exited before the link existed, in CrashLoopBackOff between the refused starts
        // (each start attempt grows the back-off, as the kubelet's does).
        let pod = s.get_json(&["get", "pod", "p"]);
        let st = pod["status"]["containerStatuses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["name"] == c)
            .unwrap()
            .clone();
        let waiting = &st["state"]["waiting"];
        assert!(
            (waiting["reason"] == "CreateContainerConfigError"
                && waiting["message"] == want.as_str())
                || waiting["reason"] == "CrashLoopBackOff",
            "{st}"
        );
    }
    assert!(
        !escaped.exists(),
        "a container wrote the node's /etc through a subPath symlink"
    );
    // The one that makes the links is fine: the refusal is per container.
    let pod = s.get_json(&["get", "pod", "p"]);
    let a = pod["status"]["containerStatuses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["name"] == "a")
        .unwrap()
        .clone();
    assert!(a["state"]["running"].is_object(), "{a}");
}
