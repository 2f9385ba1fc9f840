//! The data dir is its owner's alone: a real `paddock up` running a pod that uses a Secret in
//! its env, as volumes and in a log, leaves nothing under the data dir that another local user
//! can read, keeps Secret volumes on a tmpfs, and writes no resolved secret value to the node's
//! state files. The whole tree is walked as paddock sees it (its mount namespace), not a list
//! of files, and read as `nobody`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::support::{NetNs, Server, manifest};

fn walk(dir: &Path, out: &mut Vec<(PathBuf, std::fs::Metadata)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let is_dir = meta.is_dir();
        out.push((e.path(), meta));
        if is_dir {
            walk(&e.path(), out);
        }
    }
}

#[test]
fn nothing_under_the_data_dir_is_readable_by_others_and_no_secret_lands_on_disk() {
    let secret = format!(
        "paddock-secret-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let yaml = format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: s}}
stringData: {{password: {secret}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: c}}
data: {{greeting: hello}}
---
apiVersion: v1
kind: Pod
metadata: {{name: p, labels: {{app: p}}}}
spec:
  volumes:
  - {{name: whole, secret: {{secretName: s, defaultMode: 256}}}}
  - name: some
    secret:
      secretName: s
      items: [{{key: password, path: nested/pw, mode: 288}}]
  - {{name: labels, downwardAPI: {{items: [{{path: labels, fieldRef: {{fieldPath: metadata.labels}}}}]}}}}
  - {{name: cfg, configMap: {{name: c}}}}
  containers:
  - name: main
    image: x
    command: [/bin/sh, -c, 'echo started; umask > /tmp/umask; echo done > /dev/termination-log; exec sleep 3600']
    env:
    - name: PASSWORD
      valueFrom: {{secretKeyRef: {{name: s, key: password}}}}
    - {{name: URL, value: 'db://user:$(PASSWORD)@db'}}
    envFrom: [{{secretRef: {{name: s}}, prefix: FROM_}}]
    volumeMounts:
    - {{name: whole, mountPath: /whole}}
    - {{name: some, mountPath: /some}}
    - {{name: labels, mountPath: /labels}}
    - {{name: cfg, mountPath: /cfg}}
"#
    );
    let (_m, path) = manifest("app.yaml", &yaml);
    // A parent others may enter, and a data dir and store a looser older run left: both are
    // made private.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(data.join("store.redb"), b"").unwrap();
    std::fs::set_permissions(
        data.join("store.redb"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let s = Server::launch_in(
        dir,
        &[
            "up",
            "--default-runtime",
            "host",
            "-f",
            path.to_str().unwrap(),
        ],
        Some(NetNs::new()),
    );
    s.eventually("pod p running", || {
        let pod = s.get_json(&["get", "pod", "p"]);
        (pod["status"]["containerStatuses"][0]["state"]["running"].is_object()).then_some(())
    });
    // The pod sees everything as the kubelet makes it.
    let exec = |cmd: &str| s.kubectl(&["exec", "p", "--", "/bin/sh", "-c", cmd]);
    assert_eq!(
        exec("echo $PASSWORD $URL $FROM_password").trim(),
        format!("{secret} db://user:{secret}@db {secret}")
    );
    assert_eq!(
        exec("cat /whole/password; echo; cat /some/nested/pw").trim(),
        format!("{secret}\n{secret}")
    );
    let out = exec(
        "stat -Lc %a /whole/password /some/nested/pw /cfg/greeting /labels/labels; stat -c %a /whole/..data/; readlink /whole/password /whole/..data; cat /tmp/umask; umask",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..6],
        ["400", "440", "644", "644", "755", "..data/password"],
        "modes and layout in the pod: {out}"
    );
    assert!(lines[6].starts_with("..20"), "a timestamped dir: {out}");
    // The container and an exec in it get the usual umask, not paddock's 077.
    assert_eq!(lines[7..], ["0022", "0022"], "{out}");

    let pid = s.pid();
    let seen = PathBuf::from(format!("/proc/{pid}/root"));
    let data = s.data_dir();
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let tmpfs: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            let sep = f.iter().position(|x| *x == "-")?;
            (f.get(sep + 1) == Some(&"tmpfs") && f[4].starts_with(data.to_str()?))
                .then(|| PathBuf::from(f[4]))
        })
        .collect();
    for v in ["whole", "some", "labels"] {
        assert!(
            tmpfs.iter().any(|t| t.ends_with(format!("volumes/{v}"))),
            "{v} is not on a tmpfs: {tmpfs:?}"
        );
    }
    assert!(
        !tmpfs.iter().any(|t| t.ends_with("volumes/cfg")),
        "a ConfigMap stays on disk"
    );

    let root = seen.join(data.strip_prefix("/").unwrap());
    let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "the data dir");
    let mut all = Vec::new();
    walk(&root, &mut all);
    assert!(all.len() > 20, "{all:?}");
    let mut bad = Vec::new();
    for (p, meta) in &all {
        let rel = p.strip_prefix(&root).unwrap();
        let rel_s = rel.to_string_lossy();
        let mode = meta.permissions().mode() & 0o7777;
        if meta.file_type().is_symlink() {
            continue;
        }
        // A pod's own content keeps the kubelet's modes (emptyDir 0777, volume files 0644 …):
        // only its containers reach it, through their mounts; the pod's dir above is 0700.
        let in_pod = rel
            .components()
            .nth(3)
            .is_some_and(|c| c.as_os_str() == "volumes" || c.as_os_str() == "etc")
            && rel.starts_with("node/pods")
            && rel.components().count() > 4;
        if in_pod {
            continue;
        }
        let allowed = if rel_s.starts_with("node/logs/") && meta.is_file() {
            0o640
        } else if meta.is_dir() {
            0o700
        } else {
            0o600
        };
        if mode & !allowed != 0 {
            bad.push(format!("{rel_s} {mode:o}"));
        }
        // No resolved secret value in the node's state, logs or anything else on disk but
        // the store (0600) and the tmpfs of the Secret volumes.
        let on_tmpfs = tmpfs.iter().any(|t| {
            seen.join(t.strip_prefix("/").unwrap()) != *p
                && p.starts_with(seen.join(t.strip_prefix("/").unwrap()))
        });
        if meta.is_file() && rel_s != "store.redb" && !on_tmpfs {
            let content = std::fs::read(p).unwrap_or_default();
            if content
                .windows(secret.len())
                .any(|w| w == secret.as_bytes())
            {
                bad.push(format!("{rel_s} holds the secret"));
            }
        }
        assert_eq!(meta.uid(), 0, "{rel_s}");
    }
    assert!(
        bad.is_empty(),
        "too open or holding the secret:\n{}",
        bad.join("\n")
    );

    // Another local user, in paddock's own mount namespace (so the tmpfs volumes are there
    // too), cannot read a single file of it, nor find the secret anywhere in it.
    let files: Vec<String> = all
        .iter()
        .filter(|(_, m)| m.is_file())
        .map(|(p, _)| {
            Path::new("/")
                .join(p.strip_prefix(&seen).unwrap())
                .display()
                .to_string()
        })
        .collect();
    let out = std::process::Command::new("nsenter")
        .arg(format!("--mount=/proc/{pid}/ns/mnt"))
        .args(["--setuid", "65534", "--setgid", "65534", "/bin/sh", "-c",
            r#"s=$1; d=$2; shift 2; for f in "$@"; do cat "$f" >/dev/null 2>&1 && echo "read $f"; done; grep -rl "$s" "$d" 2>/dev/null; ls "$d" >/dev/null 2>&1 && echo "listed $d"; true"#,
            "sh", &secret, data.to_str().unwrap()])
        .args(&files)
        .output()
        .expect("nsenter");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.trim().is_empty(), "nobody got at:\n{stdout}");
    assert!(files.len() > 10, "{files:?}");
}
