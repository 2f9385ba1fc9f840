//! Storage through kubectl, as the Kubernetes docs and k3s's local-path class use it: the
//! default `local-path` StorageClass, a claim that waits for its first consumer, a pod writing
//! into it and a later pod reading the file back (the data outlives the pod), the upstream
//! `kubectl get pvc,pv,sc` columns, a bound claim's immutable spec refused with upstream's 422,
//! a claim used by a running pod staying `Terminating` until the pod is gone, and the volume's
//! directory removed under the `Delete` reclaim policy.

use std::path::PathBuf;

use crate::support::Server;

const CLAIM: &str = r#"apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
"#;

/// A pod mounting the claim `data` at /data and running `script`.
fn pod(name: &str, restart: &str, script: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 1
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: data}}}}]
  containers:
  - name: main
    image: busybox
    volumeMounts: [{{name: data, mountPath: /data}}]
    command: [sh, -c, '{script}']
"#
    )
}

fn jsonpath(s: &Server, what: &[&str], path: &str) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let p = format!("-o=jsonpath={path}");
    args.push(&p);
    s.kubectl(&args)
}

fn header(table: &str) -> Vec<String> {
    // Column names with spaces (`ACCESS MODES`) are split by whitespace like the rest.
    table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn wait_phase(s: &Server, pod: &str, phase: &str) {
    s.kubectl(&[
        "wait",
        &format!("--for=jsonpath={{.status.phase}}={phase}"),
        &format!("pod/{pod}"),
        "--timeout=120s",
    ]);
}

#[test]
fn a_claim_keeps_its_data_across_pods_and_goes_with_its_volume() {
    let s = Server::up(&[]);

    // The default class, as k3s ships it.
    let sc = s.kubectl(&["get", "sc"]);
    assert_eq!(
        header(&sc),
        [
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE"
        ],
        "{sc}"
    );
    let row: Vec<&str> = sc.lines().nth(1).unwrap_or("").split_whitespace().collect();
    assert_eq!(
        row[..6],
        [
            "local-path",
            "(default)",
            "rancher.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            "false"
        ],
        "{sc}"
    );

    // A claim without a class gets the default one and waits for its first consumer.
    s.kubectl_in(&["apply", "-f", "-"], Some(CLAIM));
    assert_eq!(
        jsonpath(&s, &["pvc", "data"], "{.spec.storageClassName}"),
        "local-path"
    );
    let fin = jsonpath(&s, &["pvc", "data"], "{.metadata.finalizers}");
    assert!(fin.contains("kubernetes.io/pvc-protection"), "{fin}");
    s.eventually("the WaitForFirstConsumer event", || {
        let ev = s.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=data",
            "-o=jsonpath={.items[*].message}",
        ]);
        ev.contains("waiting for first consumer to be created before binding")
            .then_some(())
    });
    assert_eq!(jsonpath(&s, &["pvc", "data"], "{.status.phase}"), "Pending");

    // A pod writes into it: the claim is provisioned on the pod's node and bound.
    s.kubectl_in(
        &["apply", "-f", "-"],
        Some(&pod("writer", "Never", "echo kept-across-pods > /data/f")),
    );
    wait_phase(&s, "writer", "Succeeded");
    assert_eq!(jsonpath(&s, &["pvc", "data"], "{.status.phase}"), "Bound");
    let volume = jsonpath(&s, &["pvc", "data"], "{.spec.volumeName}");
    assert!(volume.starts_with("pvc-"), "{volume}");
    let pvc = s.kubectl(&["get", "pvc", "data"]);
    assert_eq!(
        header(&pvc),
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE"
        ],
        "{pvc}"
    );
    let row: Vec<&str> = pvc
        .lines()
        .nth(1)
        .unwrap_or("")
        .split_whitespace()
        .collect();
    assert_eq!(
        row[..7],
        [
            "data",
            "Bound",
            volume.as_str(),
            "1Gi",
            "RWO",
            "local-path",
            "<unset>"
        ],
        "{pvc}"
    );
    let pv = s.kubectl(&["get", "pv", &volume]);
    assert!(
        pv.contains("Delete") && pv.contains("Bound") && pv.contains("default/data"),
        "{pv}"
    );
    let path = PathBuf::from(jsonpath(&s, &["pv", &volume], "{.spec.hostPath.path}"));
    assert!(
        path.ends_with(format!("{volume}_default_data")),
        "{}",
        path.display()
    );
    assert_eq!(
        std::fs::read_to_string(path.join("f")).unwrap_or_default(),
        "kept-across-pods\n"
    );
    let node = jsonpath(&s, &["pod", "writer"], "{.spec.nodeName}");
    let affinity = jsonpath(
        &s,
        &["pv", &volume],
        "{.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0].values[0]}",
    );
    assert_eq!(affinity, node);

    // A bound claim's spec is immutable but for its size (upstream's 422).
    let (_, err) = s.kubectl_err(
        &[
            "patch",
            "pvc",
            "data",
            "--type=merge",
            "-p",
            r#"{"spec":{"accessModes":["ReadWriteMany"]}}"#,
        ],
        None,
    );
    assert!(
        err.contains("spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"),
        "{err}"
    );
    let (_, err) = s.kubectl_err(
        &[
            "patch",
            "pvc",
            "data",
            "--type=merge",
            "-p",
            r#"{"spec":{"resources":{"requests":{"storage":"500Mi"}}}}"#,
        ],
        None,
    );
    assert!(
        err.contains(
            "spec.resources.requests.storage: Forbidden: field can not be less than status.capacity"
        ),
        "{err}"
    );

    // The writer is gone; a new pod reads the file back.
    s.kubectl(&["delete", "pod", "writer"]);
    s.kubectl_in(
        &["apply", "-f", "-"],
        Some(&pod("reader", "Never", "cat /data/f")),
    );
    wait_phase(&s, "reader", "Succeeded");
    assert_eq!(s.kubectl(&["logs", "reader"]), "kept-across-pods\n");
    s.kubectl(&["delete", "pod", "reader"]);

    // A claim a running pod uses stays Terminating until the pod is gone.
    s.kubectl_in(
        &["apply", "-f", "-"],
        Some(&pod("holder", "Always", "sleep 3600")),
    );
    wait_phase(&s, "holder", "Running");
    s.kubectl(&["delete", "pvc", "data", "--wait=false"]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let table = s.kubectl(&["get", "pvc", "data"]);
    assert!(table.contains("Terminating"), "{table}");
    assert!(path.join("f").exists(), "the data went while in use");
    s.kubectl(&["delete", "pod", "holder"]);

    // Then the claim goes, its volume is released and (reclaim Delete) deleted with its
    // directory.
    s.eventually("the claim to go", || {
        let out = s.kubectl_full(&["get", "pvc", "data"], None);
        (!out.status.success()).then_some(())
    });
    s.eventually("the volume to go", || {
        let out = s.kubectl_full(&["get", "pv", &volume], None);
        (!out.status.success()).then_some(())
    });
    assert!(!path.exists(), "{} still exists", path.display());
}

const EPHEMERAL: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: scratchy}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: scratch
    ephemeral:
      volumeClaimTemplate:
        spec:
          accessModes: [ReadWriteOnce]
          resources: {requests: {storage: 100Mi}}
  containers:
  - name: main
    image: busybox
    volumeMounts: [{name: scratch, mountPath: /scratch}]
    command: [sh, -c, 'echo mine > /scratch/f; sleep 3600']
"#;

/// A static hostPath volume and a claim without a class: the pod waits with the scheduler's
/// message until the volume exists, then runs on it; generic ephemeral volumes come and go
/// with their pod.
#[test]
fn static_volumes_and_ephemeral_claims() {
    let s = Server::up(&[]);

    // No class and no volume: the claim waits, and so does its pod.
    let claim = CLAIM.replace("  accessModes", "  storageClassName: \"\"\n  accessModes");
    s.kubectl_in(&["apply", "-f", "-"], Some(&claim));
    s.kubectl_in(
        &["apply", "-f", "-"],
        Some(&pod("waiter", "Never", "echo static > /data/f")),
    );
    s.eventually("FailedScheduling for the unbound claim", || {
        let ev = s.kubectl(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=waiter,reason=FailedScheduling",
            "-o=jsonpath={.items[*].note}{.items[*].message}",
        ]);
        ev.contains("pod has unbound immediate PersistentVolumeClaims")
            .then_some(())
    });
    assert_eq!(
        jsonpath(&s, &["pod", "waiter"], "{.status.phase}"),
        "Pending"
    );
    // An administrator's volume arrives: the claim binds, the pod runs and writes there.
    let dir = tempfile::tempdir().expect("tempdir");
    let pv = format!(
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {{name: static}}\nspec:\n  capacity: {{storage: 2Gi}}\n  accessModes: [ReadWriteOnce]\n  storageClassName: \"\"\n  hostPath: {{path: {}}}\n",
        dir.path().display()
    );
    s.kubectl_in(&["apply", "-f", "-"], Some(&pv));
    wait_phase(&s, "waiter", "Succeeded");
    assert_eq!(
        jsonpath(&s, &["pvc", "data"], "{.spec.volumeName}"),
        "static"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("f")).unwrap_or_default(),
        "static\n"
    );
    let pv_table = s.kubectl(&["get", "pv", "static"]);
    assert!(
        pv_table.contains("Retain")
            && pv_table.contains("Bound")
            && pv_table.contains("default/data"),
        "{pv_table}"
    );
    // Retain: the claim goes, the volume stays Released with its data.
    s.kubectl(&["delete", "pod", "waiter"]);
    s.kubectl(&["delete", "pvc", "data"]);
    s.eventually("the volume released", || {
        (jsonpath(&s, &["pv", "static"], "{.status.phase}") == "Released").then_some(())
    });
    assert!(dir.path().join("f").exists());

    // A generic ephemeral volume: a claim named after the pod, gone with it.
    s.kubectl_in(&["apply", "-f", "-"], Some(EPHEMERAL));
    wait_phase(&s, "scratchy", "Running");
    assert_eq!(
        jsonpath(&s, &["pvc", "scratchy-scratch"], "{.status.phase}"),
        "Bound"
    );
    let owner = jsonpath(
        &s,
        &["pvc", "scratchy-scratch"],
        "{.metadata.ownerReferences[0].name}",
    );
    assert_eq!(owner, "scratchy");
    let volume = jsonpath(&s, &["pvc", "scratchy-scratch"], "{.spec.volumeName}");
    let path = PathBuf::from(jsonpath(&s, &["pv", &volume], "{.spec.hostPath.path}"));
    s.eventually("the file written", || path.join("f").exists().then_some(()));
    s.kubectl(&["delete", "pod", "scratchy"]);
    s.eventually("the ephemeral claim and volume gone", || {
        let claim = s.kubectl_full(&["get", "pvc", "scratchy-scratch"], None);
        let pv = s.kubectl_full(&["get", "pv", &volume], None);
        (!claim.status.success() && !pv.status.success()).then_some(())
    });
    assert!(!path.exists(), "{} still exists", path.display());
}

/// The Kubernetes docs' StatefulSet `web` with `volumeClaimTemplates`, on the default
/// local-path class: one claim per ordinal (`www-web-0`, `www-web-1`), each bound to a volume
/// of its own; a pod deleted and re-created by its StatefulSet finds the file its predecessor
/// wrote; scaling down keeps the claims (the default retention policy).
#[test]
fn a_statefulset_keeps_each_ordinals_data_across_pod_deletion() {
    let s = Server::up(&[]);
    let web = r#"apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  clusterIP: None
  selector: {app: nginx}
  ports: [{port: 80, name: web}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  serviceName: nginx
  replicas: 2
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: busybox
        command: [sh, -c, 'test -f /data/first || hostname > /data/first; hostname >> /data/seen; exec sleep 3600']
        volumeMounts: [{name: www, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;
    s.kubectl_in(&["apply", "-f", "-"], Some(web));
    s.kubectl(&["rollout", "status", "statefulset/web", "--timeout=120s"]);
    for claim in ["www-web-0", "www-web-1"] {
        assert_eq!(
            jsonpath(&s, &["pvc", claim], "{.status.phase}"),
            "Bound",
            "{claim}"
        );
    }
    let v0 = jsonpath(&s, &["pvc", "www-web-0"], "{.spec.volumeName}");
    let v1 = jsonpath(&s, &["pvc", "www-web-1"], "{.spec.volumeName}");
    assert_ne!(v0, v1);
    let uid = jsonpath(&s, &["pod", "web-0"], "{.metadata.uid}");
    s.kubectl(&["delete", "pod", "web-0", "--wait=true"]);
    s.eventually("web-0 back, a new pod", || {
        let now = s
            .kubectl_full(
                &["get", "pod", "web-0", "-o=jsonpath={.metadata.uid}"],
                None,
            )
            .stdout;
        let now = String::from_utf8_lossy(&now).into_owned();
        (!now.is_empty() && now != uid).then_some(())
    });
    wait_phase(&s, "web-0", "Running");
    let seen = s.eventually("the new web-0 to have written", || {
        let out = s.kubectl_full(&["exec", "web-0", "--", "cat", "/data/seen"], None);
        let seen = String::from_utf8_lossy(&out.stdout).into_owned();
        (seen.lines().count() == 2).then_some(seen)
    });
    assert_eq!(seen, "web-0\nweb-0\n", "two pods wrote here");
    let first = s.kubectl(&["exec", "web-0", "--", "cat", "/data/first"]);
    assert_eq!(first.trim(), "web-0");
    // web-1 has its own volume.
    let other = s.kubectl(&["exec", "web-1", "--", "cat", "/data/first"]);
    assert_eq!(other.trim(), "web-1");
    s.kubectl(&["scale", "statefulset", "web", "--replicas=1"]);
    s.eventually("web-1 gone", || {
        let out = s.kubectl_full(&["get", "pod", "web-1"], None);
        (!out.status.success()).then_some(())
    });
    assert_eq!(
        jsonpath(&s, &["pvc", "www-web-1"], "{.status.phase}"),
        "Bound",
        "claims are kept on scale-down"
    );
}
