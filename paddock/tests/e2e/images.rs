//! Pods that run their image (RuntimeClass handler `runc`), through kubectl: an image built
//! here as an OCI layout from Debian's `busybox-static` and `paddock image import`ed into the
//! node's data dir; a real registry (Debian's `docker-registry`) for a missing tag; `runc`
//! (Debian's `runc`) running the containers.
//!
//! `Server::up` runs the node in a network namespace through `ip netns exec`, which gives it a
//! fresh `/sys` without the cgroup mounts runc needs: the node is started through a wrapper
//! that mounts the host's cgroup hierarchies again in that mount namespace.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use image::Digest;
use serde_json::json;

use crate::support::{NetNs, Server, run};

pub fn tool(name: &str, package: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/sbin", "/bin", "/sbin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: install the Debian package `{package}`");
}

pub fn blob(dir: &Path, media_type: &str, data: &[u8]) -> serde_json::Value {
    let d = Digest::sha256_of(data);
    std::fs::write(dir.join("blobs/sha256").join(d.hex()), data).expect("write blob");
    json!({"mediaType": media_type, "digest": d.to_string(), "size": data.len()})
}

/// An OCI layout at `dir/layout` with two images of one busybox layer (`/bin/busybox`, `/bin/sh`,
/// `/etc/passwd` with root and `www` (33), `/etc/group`, `/www/index.html`): `web` (USER www,
/// ENTRYPOINT busybox httpd on 8080 serving /www, an `Env`), `root` (no USER, CMD sh) and `bare`
/// (neither ENTRYPOINT nor CMD).
pub fn layouts(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for d in ["bin", "etc", "www", "tmp"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy(tool("busybox", "busybox-static"), root.join("bin/busybox")).expect("copy");
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).expect("symlink");
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/www:/bin/sh\n",
    )
    .expect("write");
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nwww:x:33:\nlogs:x:40:www\n",
    )
    .expect("write");
    std::fs::write(root.join("www/index.html"), "served from the image\n").expect("write");
    let layer = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .args(["-cf", "-", "bin", "etc", "www", "tmp"])
        .output()
        .expect("tar");
    assert!(layer.status.success());
    let layout = dir.join("layout");
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("mkdir");
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("write");
    let l = blob(
        &layout,
        "application/vnd.oci.image.layer.v1.tar",
        &layer.stdout,
    );
    let diff_ids = json!([Digest::sha256_of(&layer.stdout).to_string()]);
    let mut manifests = Vec::new();
    for (tag, config) in [
        (
            "web",
            json!({"User": "www", "WorkingDir": "/www",
                "Env": ["PATH=/bin", "GREETING=from-the-image", "OVERRIDDEN=image"],
                "Entrypoint": ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]}),
        ),
        ("root", json!({"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]})),
        ("bare", json!({"Env": ["PATH=/bin"]})),
    ] {
        let config = json!({"architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
            "os": "linux", "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids}});
        let c = blob(
            &layout,
            "application/vnd.oci.image.config.v1+json",
            config.to_string().as_bytes(),
        );
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": c, "layers": [l]});
        let mut md = blob(
            &layout,
            "application/vnd.oci.image.manifest.v1+json",
            m.to_string().as_bytes(),
        );
        md["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        manifests.push(md);
    }
    let index = json!({"schemaVersion": 2, "manifests": manifests});
    std::fs::write(layout.join("index.json"), index.to_string()).expect("write");
    layout
}

/// A `sh -c` script that mounts the host's cgroup hierarchies in the mount namespace `ip netns
/// exec` gives the node (see the module docs), then runs its arguments.
fn cgroup_wrapper() -> String {
    tool("runc", "runc");
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("mounts");
    let mut script = String::from("set -e; mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup; ");
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 4
            && (f[2] == "cgroup" || f[2] == "cgroup2")
            && f[1].starts_with("/sys/fs/cgroup")
        {
            script.push_str(&format!(
                "mkdir -p {t}; mount -t {ty} -o {o} {s} {t}; ",
                t = f[1],
                ty = f[2],
                o = f[3],
                s = f[0]
            ));
        }
    }
    script.push_str("exec \"$0\" \"$@\"");
    script
}

/// `paddock up` in its own network namespace (`netns`, or a new one) on `dir`, with cgroups.
pub fn up_with_cgroups_in(dir: tempfile::TempDir, netns: NetNs, args: &[&str]) -> Server {
    let script = cgroup_wrapper();
    let mut all = vec!["up"];
    all.extend(args);
    Server::launch_wrapped(dir, &["sh", "-c", &script], &all, Some(netns))
}

/// `paddock up` in its own network namespace, with cgroups.
pub fn up_with_cgroups() -> Server {
    up_with_cgroups_in(tempfile::tempdir().expect("tempdir"), NetNs::new(), &[])
}

pub fn import(s: &Server, layout: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["image", "--data-dir"])
        .arg(s.data_dir())
        .args(["import", "--name", "example.com/demo/busybox"])
        .arg(layout)
        .output()
        .expect("run paddock image import");
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub const RUNC_CLASS: &str =
    "apiVersion: node.k8s.io/v1\nkind: RuntimeClass\nmetadata: {name: runc}\nhandler: runc\n";

pub const WEB: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      runtimeClassName: runc
      securityContext: {seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: web
        image: example.com/demo/busybox:web
        securityContext: {allowPrivilegeEscalation: false}
        env: [{name: OVERRIDDEN, value: pod}, {name: FROM_POD, value: "yes"}]
        ports: [{containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /index.html, port: 8080}
          periodSeconds: 1
        livenessProbe:
          exec: {command: [/bin/busybox, test, -f, /www/index.html]}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"#;

fn pod_json(s: &Server, name: &str) -> serde_json::Value {
    s.get_json(&["get", "pod", name])
}

fn events(s: &Server, pod: &str) -> Vec<(String, String)> {
    let ev = s.get_json(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod}"),
    ]);
    ev["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or("").to_string(),
                e["message"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn images_run_their_entrypoint_as_their_user_are_probed_serve_and_are_confined() {
    let work = tempfile::tempdir().expect("tempdir");
    let layout = layouts(work.path());
    let s = up_with_cgroups();
    import(&s, &layout);
    s.kubectl_in(&["apply", "-f", "-"], Some(RUNC_CLASS));
    s.kubectl_in(&["apply", "-f", "-"], Some(WEB));

    // No command: the image's ENTRYPOINT runs, is probed Ready and serves through the Service.
    s.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/web",
        "--timeout=60s",
    ]);
    let pods = s.get_json(&["get", "pods", "-l", "app=web"]);
    let pod = pods["items"][0].clone();
    let name = pod["metadata"]["name"]
        .as_str()
        .expect("pod name")
        .to_string();
    let cs = &pod["status"]["containerStatuses"][0];
    assert_eq!(cs["ready"], true, "{cs}");
    assert_eq!(
        cs["restartCount"], 0,
        "the exec liveness probe passes: {cs}"
    );
    assert_eq!(cs["image"], "example.com/demo/busybox:web", "{cs}");
    let image_id = cs["imageID"].as_str().unwrap_or("");
    assert!(
        image_id.starts_with("example.com/demo/busybox@sha256:")
            && image_id.len() == "example.com/demo/busybox@sha256:".len() + 64,
        "{cs}"
    );
    let cluster_ip = s.kubectl(&["get", "svc", "web", "-o", "jsonpath={.spec.clusterIP}"]);
    let body = s.eventually("the Service serves the image's page", || {
        let out = s
            .command("curl")
            .args([
                "-sS",
                "--max-time",
                "5",
                &format!("http://{cluster_ip}/index.html"),
            ])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    });
    assert_eq!(body, "served from the image\n");
    let evs = events(&s, &name);
    assert!(
        evs.contains(&(
            "Pulled".into(),
            "Container image \"example.com/demo/busybox:web\" already present on machine".into()
        )),
        "{evs:?}"
    );

    // Its user (USER www, groups from the image's /etc/group), env (the image's under the
    // container's), working dir and root: the image's, not the host's.
    let id = s.kubectl(&["exec", &name, "--", "/bin/busybox", "id"]);
    assert_eq!(id.trim(), "uid=33(www) gid=33(www) groups=33(www),40(logs)");
    let env = s.kubectl(&["exec", &name, "--", "/bin/busybox", "env"]);
    for want in [
        "GREETING=from-the-image",
        "OVERRIDDEN=pod",
        "FROM_POD=yes",
        "PATH=/bin",
    ] {
        assert!(env.lines().any(|l| l == want), "{want} in {env}");
    }
    let pwd = s.kubectl(&["exec", &name, "--", "/bin/busybox", "pwd"]);
    assert_eq!(pwd.trim(), "/www");
    let ls = s.kubectl(&["exec", &name, "--", "/bin/busybox", "ls", "/"]);
    let entries: Vec<&str> = ls.split_whitespace().collect();
    assert!(
        entries.contains(&"www") && !entries.contains(&"usr") && !entries.contains(&"home"),
        "{ls}"
    );
    // Its securityContext: the pod's RuntimeDefault seccomp profile (filter mode), no new
    // privileges, no capabilities for a non-root user.
    let status = s.kubectl(&[
        "exec",
        &name,
        "--",
        "/bin/busybox",
        "cat",
        "/proc/self/status",
    ]);
    for want in ["Seccomp:\t2", "NoNewPrivs:\t1", "CapEff:\t0000000000000000"] {
        assert!(status.lines().any(|l| l == want), "{want} in {status}");
    }
    // The pod's /etc files are mounted into the image's root.
    let hostname = s.kubectl(&["exec", &name, "--", "/bin/busybox", "cat", "/etc/hostname"]);
    assert_eq!(hostname.trim(), name);

    // runAsNonRoot on an image that runs as root: refused with the kubelet's message.
    let nonroot = r#"apiVersion: v1
kind: Pod
metadata: {name: nonroot}
spec:
  runtimeClassName: runc
  securityContext: {runAsNonRoot: true}
  containers:
  - {name: c, image: "example.com/demo/busybox:root", command: [/bin/sh, -c, "sleep 3600"]}
"#;
    s.kubectl_in(&["apply", "-f", "-"], Some(nonroot));
    let uid = s.kubectl(&["get", "pod", "nonroot", "-o", "jsonpath={.metadata.uid}"]);
    let waiting = s.eventually("nonroot refused", || {
        let st = pod_json(&s, "nonroot");
        let w = st["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "CreateContainerConfigError").then_some(w)
    });
    assert_eq!(
        waiting["message"],
        format!(
            "container has runAsNonRoot and image will run as root (pod: \"nonroot_default({uid})\", container: c)"
        )
    );

    // readOnlyRootFilesystem: a write to the root fails, one to a volume works.
    let ro = r#"apiVersion: v1
kind: Pod
metadata: {name: ro}
spec:
  runtimeClassName: runc
  restartPolicy: Never
  volumes: [{name: scratch, emptyDir: {}}, {name: mem, emptyDir: {medium: Memory}}]
  containers:
  - name: c
    image: "example.com/demo/busybox:root"
    command: [/bin/sh, -c, "echo x > /file || echo root-write-failed; echo y > /scratch/f && echo volume-write-ok; /bin/busybox grep CapEff /proc/self/status; /bin/busybox grep ' /mem ' /proc/mounts"]
    securityContext: {readOnlyRootFilesystem: true, capabilities: {drop: [ALL], add: [CHOWN, KILL]}}
    volumeMounts: [{name: scratch, mountPath: /scratch}, {name: mem, mountPath: /mem}]
"#;
    s.kubectl_in(&["apply", "-f", "-"], Some(ro));
    s.eventually("ro finished", || {
        let st = pod_json(&s, "ro");
        (st["status"]["phase"] == "Succeeded").then_some(())
    });
    let logs = s.kubectl(&["logs", "ro"]);
    assert!(
        logs.contains("Read-only file system")
            && logs.contains("root-write-failed")
            && logs.contains("volume-write-ok"),
        "{logs}"
    );
    // capabilities drop ALL, add CHOWN (bit 0) and KILL (bit 5).
    assert!(logs.contains("CapEff:\t0000000000000021"), "{logs}");
    // A memory-medium emptyDir is a tmpfs.
    assert!(logs.contains("tmpfs /mem tmpfs"), "{logs}");

    // A tty container has a terminal; its output is logged.
    let tty = r#"apiVersion: v1
kind: Pod
metadata: {name: tty}
spec:
  runtimeClassName: runc
  restartPolicy: Never
  containers:
  - {name: c, image: "example.com/demo/busybox:root", tty: true, command: [/bin/sh, -c, "/bin/busybox tty && echo has-a-terminal"]}
"#;
    s.kubectl_in(&["apply", "-f", "-"], Some(tty));
    s.eventually("tty finished", || {
        let st = pod_json(&s, "tty");
        (st["status"]["phase"] == "Succeeded").then_some(())
    });
    let logs = s.kubectl(&["logs", "tty"]);
    assert!(logs.contains("has-a-terminal"), "{logs}");

    // Over limits.memory: the OOM killer ends it, reported as the kubelet does.
    let oom = r#"apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  runtimeClassName: runc
  containers:
  - name: c
    image: "example.com/demo/busybox:root"
    command: [/bin/busybox, dd, if=/dev/zero, of=/dev/null, bs=64M, count=1]
    resources: {limits: {memory: 16Mi}}
"#;
    s.kubectl_in(&["apply", "-f", "-"], Some(oom));
    let last = s.eventually("oom's lastState", || {
        let st = pod_json(&s, "oom");
        let t = st["status"]["containerStatuses"][0]["lastState"]["terminated"].clone();
        t.is_object().then_some(t)
    });
    assert_eq!(last["reason"], "OOMKilled", "{last}");
    assert_eq!(last["exitCode"], 137, "{last}");
    let qos = s.kubectl(&["get", "pod", "oom", "-o", "jsonpath={.status.qosClass}"]);
    assert_eq!(qos, "Burstable");
    let oom_uid = s.kubectl(&["get", "pod", "oom", "-o", "jsonpath={.metadata.uid}"]);
    let oom_cgroup =
        Path::new("/sys/fs/cgroup/memory/kubepods/burstable").join(format!("pod{oom_uid}"));
    let v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
    if v1 {
        assert!(oom_cgroup.exists(), "{}", oom_cgroup.display());
    }

    // Deleting the pods removes their containers: no overlay of theirs stays mounted.
    s.kubectl(&["delete", "deployment", "web", "--wait=true"]);
    s.kubectl(&[
        "delete",
        "pod",
        "ro",
        "oom",
        "nonroot",
        "tty",
        "--wait=true",
    ]);
    // Their cgroups go with them (the pod level too).
    if v1 {
        s.eventually("the pod's cgroup removed", || {
            (!oom_cgroup.exists()).then_some(())
        });
    }
    let oci = s.data_dir().join("node").join("oci").join("bundles");
    s.eventually("bundles removed", || {
        let left = std::fs::read_dir(&oci).map(|d| d.count()).unwrap_or(0);
        (left == 0).then_some(())
    });
    // The node's mount namespace (the one `ip netns exec` made for it).
    let mounts =
        std::fs::read_to_string(format!("/proc/{}/mounts", s.pid())).expect("node's mounts");
    assert!(
        !mounts.contains(&oci.display().to_string()),
        "overlay mounts left"
    );
}

#[test]
fn a_missing_tag_is_err_image_pull_then_image_pull_back_off() {
    let s = up_with_cgroups();
    s.kubectl_in(&["apply", "-f", "-"], Some(RUNC_CLASS));
    // A real registry on the node's loopback (plain HTTP, as Docker allows for loopback).
    let _registry = start_registry(&s, None);
    let image = format!("{REGISTRY}/demo/web:missing");
    let pod = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: missing}}\nspec:\n  runtimeClassName: runc\n  containers:\n  - {{name: c, image: \"{image}\"}}\n"
    );
    s.kubectl_in(&["apply", "-f", "-"], Some(&pod));
    let waiting = s.eventually("ErrImagePull", || {
        let st = pod_json(&s, "missing");
        let w = st["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "ErrImagePull").then_some(w)
    });
    let msg = waiting["message"].as_str().unwrap_or("");
    assert!(
        msg.starts_with(&format!(
            "rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\""
        )) && msg.ends_with("not found"),
        "{waiting}"
    );
    s.eventually("ImagePullBackOff", || {
        let st = pod_json(&s, "missing");
        let w = st["status"]["containerStatuses"][0]["state"]["waiting"].clone();
        (w["reason"] == "ImagePullBackOff").then_some(())
    });
    let evs = events(&s, "missing");
    let has = |reason: &str, text: &str| evs.iter().any(|(r, m)| r == reason && m.contains(text));
    assert!(
        has("Pulling", &format!("Pulling image \"{image}\"")),
        "{evs:?}"
    );
    assert!(
        has(
            "Failed",
            &format!("Failed to pull image \"{image}\": rpc error: code = NotFound")
        ),
        "{evs:?}"
    );
    assert!(has("Failed", "Error: ErrImagePull"), "{evs:?}");
    assert!(
        has("BackOff", &format!("Back-off pulling image \"{image}\"")),
        "{evs:?}"
    );
}

/// Also the default runtime of a root node with runc: a pod without a RuntimeClass runs its
/// image.
#[test]
fn an_image_container_is_adopted_by_a_restarted_node_and_removed_with_its_pod() {
    let work = tempfile::tempdir().expect("tempdir");
    let layout = layouts(work.path());
    let default: [&str; 0] = [];
    let s = up_with_cgroups_in(
        tempfile::tempdir().expect("tempdir"),
        NetNs::new(),
        &default,
    );
    import(&s, &layout);
    let pod = r#"apiVersion: v1
kind: Pod
metadata: {name: kept}
spec:
  containers:
  - {name: c, image: "example.com/demo/busybox:root", command: [/bin/sh, -c, "echo started; exec /bin/busybox sleep 3600"]}
"#;
    s.kubectl_in(&["apply", "-f", "-"], Some(pod));
    s.kubectl(&["wait", "--for=condition=Ready", "pod/kept", "--timeout=60s"]);
    let before = pod_json(&s, "kept")["status"]["containerStatuses"][0].clone();
    let bundles = s.data_dir().join("node").join("oci").join("bundles");

    // The node is SIGKILLed; the container runs on, and a new node adopts it.
    let (dir, netns) = s.kill9_keep_netns();
    let s = up_with_cgroups_in(dir, netns, &default);
    s.eventually("the pod is Ready again", || {
        let st = pod_json(&s, "kept");
        let cs = st["status"]["containerStatuses"][0].clone();
        (cs["ready"] == true).then_some(())
    });
    let after = pod_json(&s, "kept")["status"]["containerStatuses"][0].clone();
    assert_eq!(after["containerID"], before["containerID"], "{after}");
    assert_eq!(after["restartCount"], 0, "{after}");
    assert_eq!(after["imageID"], before["imageID"], "{after}");
    // runc exec reaches the adopted container.
    let out = s.kubectl(&[
        "exec",
        "kept",
        "--",
        "/bin/busybox",
        "cat",
        "/proc/1/cmdline",
    ]);
    assert!(out.starts_with("/bin/busybox"), "{out:?}");
    // Its root is the image's (the host has /usr).
    let ls = s.kubectl(&["exec", "kept", "--", "/bin/busybox", "ls", "/"]);
    assert!(!ls.split_whitespace().any(|e| e == "usr"), "{ls}");

    // Every image removed from the store meanwhile, by another process as a user would: the
    // names go; the layers the running container's root is made of stay (its pod's pin,
    // written by the node before the restart).
    let image_cmd = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_paddock"))
            .args(["image", "--data-dir"])
            .arg(s.data_dir())
            .args(args)
            .output()
            .expect("run paddock image");
        assert!(
            out.status.success(),
            "paddock image {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ids: std::collections::BTreeSet<String> = image_cmd(&["ls", "-q"])
        .split_whitespace()
        .map(str::to_string)
        .collect();
    assert!(!ids.is_empty());
    for id in &ids {
        image_cmd(&["rm", id]);
    }
    assert_eq!(image_cmd(&["ls", "-q"]).trim(), "");
    let store = s.data_dir().join("images");
    let entries = |sub: &str| {
        std::fs::read_dir(store.join(sub))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert!(
        entries("layers/sha256") > 0,
        "the running container's layers"
    );
    assert_eq!(entries("pins"), 1, "one pod pinned");
    let bin = s.kubectl(&["exec", "kept", "--", "/bin/busybox", "ls", "/bin"]);
    assert!(bin.contains("busybox"), "{bin}");

    s.kubectl(&["delete", "pod", "kept", "--wait=true"]);
    s.eventually("its bundle removed", || {
        let left = std::fs::read_dir(&bundles).map(|d| d.count()).unwrap_or(0);
        (left == 0).then_some(())
    });
    // Gone with the pod: its pin, and the content only the pin kept.
    s.eventually("its pin and layers removed", || {
        (entries("pins") == 0 && entries("layers/sha256") == 0 && entries("blobs/sha256") == 0)
            .then_some(())
    });
}

/// The README's image example, as a user runs it without the internet: the image built by
/// `examples/busybox-image.sh`, imported with `paddock image import`, then `paddock up -f
/// examples/image.yaml` on the node's default runtime: both replicas Ready, serving the page
/// from the image through the Service.
#[test]
fn the_readme_image_example_runs_from_an_imported_image() {
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let work = tempfile::tempdir().expect("tempdir");
    let layout = work.path().join("busybox-oci");
    let built = Command::new("sh")
        .arg(format!("{examples}/busybox-image.sh"))
        .arg(&layout)
        .output()
        .expect("run busybox-image.sh");
    assert!(
        built.status.success(),
        "busybox-image.sh: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let imported = Command::new(env!("CARGO_BIN_EXE_paddock"))
        .args(["image", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["import", "--name", "paddock.example/busybox-httpd"])
        .arg(&layout)
        .output()
        .expect("run paddock image import");
    assert!(
        imported.status.success(),
        "import: {}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let example = format!("{examples}/image.yaml");
    let s = up_with_cgroups_in(dir, NetNs::new(), &["-f", &example]);
    s.kubectl(&[
        "wait",
        "--for=condition=Available",
        "deployment/from-image",
        "--timeout=90s",
    ]);
    let ready = s.kubectl(&[
        "get",
        "deployment",
        "from-image",
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]);
    assert_eq!(ready, "2");
    let ip = s.kubectl(&[
        "get",
        "svc",
        "from-image",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let page = s.eventually("the page from the image through the Service", || {
        let mut curl = s.command("curl");
        curl.args(["-s", "--max-time", "5", &format!("http://{ip}/")]);
        let out = run(curl, None);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        body.contains("hello from an image").then_some(body)
    });
    assert_eq!(page, "hello from an image\n");
    let status = pod_json_by_label(&s, "app=from-image");
    assert_eq!(
        status["image"], "paddock.example/busybox-httpd:1",
        "{status}"
    );
    assert!(
        status["imageID"]
            .as_str()
            .is_some_and(|i| i.contains("sha256:")),
        "{status}"
    );
}

fn pod_json_by_label(s: &Server, selector: &str) -> serde_json::Value {
    s.get_json(&["get", "pods", "-l", selector])["items"][0]["status"]["containerStatuses"][0]
        .clone()
}

/// A real registry (Debian's `docker-registry`) in the node's network namespace on
/// `127.0.0.1:5000`, with htpasswd basic auth for `basic` (Debian's `apache2-utils`); killed on
/// drop.
struct LocalRegistry {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const REGISTRY: &str = "127.0.0.1:5000";

fn start_registry(s: &Server, basic: Option<(&str, &str)>) -> LocalRegistry {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut auth = String::new();
    if let Some((u, p)) = basic {
        let out = Command::new(tool("htpasswd", "apache2-utils"))
            .args(["-Bbn", u, p])
            .output()
            .expect("htpasswd");
        assert!(out.status.success(), "htpasswd");
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, &out.stdout).expect("write");
        auth = format!(
            "auth:\n  htpasswd:\n    realm: paddock-e2e\n    path: {}\n",
            file.display()
        );
    }
    let cfg = dir.path().join("registry.yml");
    std::fs::write(
        &cfg,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {REGISTRY}\n  secret: t\n{auth}",
            dir.path().join("registry").display()
        ),
    )
    .expect("write");
    let child = s
        .command(
            tool("docker-registry", "docker-registry")
                .to_str()
                .expect("utf-8"),
        )
        .arg("serve")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    s.eventually("the registry answers", || {
        let out = s
            .command("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                &format!("http://{REGISTRY}/v2/"),
            ])
            .output()
            .ok()?;
        let code = String::from_utf8_lossy(&out.stdout).into_owned();
        (code == "200" || code == "401").then_some(())
    });
    LocalRegistry { child, _dir: dir }
}

/// Pushes `oci:<layout>:<tag>` to `127.0.0.1:5000/<repo>:<tag>` with skopeo (Debian's
/// `skopeo`), from the node's network namespace.
fn push(s: &Server, layout: &Path, tag: &str, repo: &str, creds: &str) {
    let skopeo = tool("skopeo", "skopeo");
    let mut cmd = s.command(skopeo.to_str().expect("utf-8"));
    cmd.args([
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("--dest-creds={creds}"),
    ]);
    cmd.arg(format!("oci:{}:{tag}", layout.display()));
    cmd.arg(format!("docker://{REGISTRY}/{repo}:{tag}"));
    let out = cmd.output().expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo copy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn waiting(s: &Server, pod: &str) -> serde_json::Value {
    pod_json(s, pod)["status"]["containerStatuses"][0]["state"]["waiting"].clone()
}

/// A private registry (basic auth): without `imagePullSecrets` the pull is refused
/// (ErrImagePull); with a `kubernetes.io/dockerconfigjson` Secret made by `kubectl create
/// secret docker-registry` the pod runs. The pulled image is then listed in the Node's
/// `status.images` by tag and repo digest.
#[test]
fn image_pull_secrets_authenticate_to_a_private_registry() {
    let work = tempfile::tempdir().expect("tempdir");
    let layout = layouts(work.path());
    let s = up_with_cgroups();
    s.kubectl_in(&["apply", "-f", "-"], Some(RUNC_CLASS));
    let _registry = start_registry(&s, Some(("e2e-user", "e2e-pass")));
    push(&s, &layout, "web", "private/busybox", "e2e-user:e2e-pass");
    let image = format!("{REGISTRY}/private/busybox:web");
    let pod = |name: &str, secret: bool| {
        let secrets = if secret {
            "  imagePullSecrets: [{name: regcred}]\n"
        } else {
            ""
        };
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}}}\nspec:\n  runtimeClassName: runc\n{secrets}  containers:\n  - {{name: c, image: \"{image}\"}}\n"
        )
    };

    s.kubectl_in(&["apply", "-f", "-"], Some(&pod("without", false)));
    let w = s.eventually("ErrImagePull without credentials", || {
        let w = waiting(&s, "without");
        (w["reason"] == "ErrImagePull").then_some(w)
    });
    let msg = w["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("failed to authorize: pull access denied") && msg.contains("401"),
        "{w}"
    );

    s.kubectl(&[
        "create",
        "secret",
        "docker-registry",
        "regcred",
        &format!("--docker-server={REGISTRY}"),
        "--docker-username=e2e-user",
        "--docker-password=e2e-pass",
    ]);
    let secret = s.get_json(&["get", "secret", "regcred"]);
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    s.kubectl_in(&["apply", "-f", "-"], Some(&pod("with", true)));
    s.kubectl(&["wait", "--for=condition=Ready", "pod/with", "--timeout=90s"]);
    let cs = pod_json(&s, "with")["status"]["containerStatuses"][0].clone();
    assert_eq!(cs["image"], image.as_str(), "{cs}");
    assert!(
        cs["imageID"]
            .as_str()
            .is_some_and(|i| i.starts_with(&format!("{REGISTRY}/private/busybox@sha256:"))),
        "{cs}"
    );
    let evs = events(&s, "with");
    assert!(
        evs.iter().any(|(r, m)| r == "Pulled"
            && m.starts_with(&format!("Successfully pulled image \"{image}\" in "))),
        "{evs:?}"
    );
    // Still refused without the secret (another pod's credentials are not shared).
    let w = waiting(&s, "without");
    assert!(
        w["reason"] == "ErrImagePull" || w["reason"] == "ImagePullBackOff",
        "{w}"
    );

    // Node.status.images: the pulled image by repo digest and tag, with its size.
    let node = s.kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let listed = s.eventually("the image in the Node's status.images", || {
        let n = s.get_json(&["get", "node", &node]);
        n["status"]["images"]
            .as_array()?
            .iter()
            .find(|i| {
                i["names"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|n| n == image.as_str()))
            })
            .cloned()
    });
    let names: Vec<&str> = listed["names"]
        .as_array()
        .expect("names")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert!(
        names[0].starts_with(&format!("{REGISTRY}/private/busybox@sha256:")),
        "repo digest first: {listed}"
    );
    assert!(
        listed["sizeBytes"].as_i64().is_some_and(|n| n > 100_000),
        "{listed}"
    );
}

/// The node's registries.yaml (k3s's format) in its data dir: a Docker Hub name
/// (`busybox:web`, i.e. `docker.io/library/busybox:web`) is served by a local mirror that wants
/// basic auth and keeps the image under another path (`rewrite`); and a container whose image
/// has neither ENTRYPOINT nor CMD, and no `command`, waits with containerd's
/// `CreateContainerError`.
#[test]
fn a_registries_yaml_mirror_serves_docker_hub_names_and_no_command_is_create_container_error() {
    let work = tempfile::tempdir().expect("tempdir");
    let layout = layouts(work.path());
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("data")).expect("mkdir");
    std::fs::write(
        dir.path().join("data/registries.yaml"),
        format!(
            "mirrors:\n  docker.io:\n    endpoint: [\"http://{REGISTRY}\"]\n    rewrite:\n      \"^library/(.*)$\": \"hub-mirror/$1\"\nconfigs:\n  \"{REGISTRY}\":\n    auth: {{username: mirror-user, password: mirror-pass}}\n"
        ),
    )
    .expect("write registries.yaml");
    let s = up_with_cgroups_in(dir, NetNs::new(), &[]);
    s.kubectl_in(&["apply", "-f", "-"], Some(RUNC_CLASS));
    let _registry = start_registry(&s, Some(("mirror-user", "mirror-pass")));
    push(
        &s,
        &layout,
        "web",
        "hub-mirror/busybox",
        "mirror-user:mirror-pass",
    );
    s.kubectl_in(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Pod\nmetadata: {name: hub}\nspec:\n  runtimeClassName: runc\n  containers:\n  - {name: c, image: \"busybox:web\"}\n"),
    );
    s.kubectl(&["wait", "--for=condition=Ready", "pod/hub", "--timeout=90s"]);
    let cs = pod_json(&s, "hub")["status"]["containerStatuses"][0].clone();
    assert_eq!(cs["image"], "docker.io/library/busybox:web", "{cs}");

    import(&s, &layout);
    s.kubectl_in(
        &["apply", "-f", "-"],
        Some("apiVersion: v1\nkind: Pod\nmetadata: {name: bare}\nspec:\n  runtimeClassName: runc\n  containers:\n  - {name: c, image: \"example.com/demo/busybox:bare\"}\n"),
    );
    let w = s.eventually("CreateContainerError", || {
        let w = waiting(&s, "bare");
        (w["reason"] == "CreateContainerError").then_some(w)
    });
    let msg = w["message"].as_str().unwrap_or("");
    assert!(is_containerd_no_command(msg), "{w}");
    let evs = events(&s, "bare");
    assert!(
        evs.iter()
            .any(|(r, m)| r == "Failed" && m == &format!("Error: {msg}")),
        "{evs:?}"
    );
}

/// `failed to generate container "<32 hex>" spec: failed to generate spec: no command specified`.
fn is_containerd_no_command(msg: &str) -> bool {
    let Some(rest) = msg.strip_prefix("failed to generate container \"") else {
        return false;
    };
    let Some((id, tail)) = rest.split_once('"') else {
        return false;
    };
    id.len() == 32
        && id.chars().all(|c| c.is_ascii_hexdigit())
        && tail == " spec: failed to generate spec: no command specified"
}
